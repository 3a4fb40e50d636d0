//! Colours (TOML files in `themes/`, three shipped built in) and symbols (Unicode or ASCII).
//!
//! Meaning never rests on colour alone: every state also has a symbol and a word, and with
//! `NO_COLOR` the theme drops colours and keeps bold / reversed / dim.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::path::Path;
use std::str::FromStr;

/// The themes shipped with the binary, in the order `t` cycles through them.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("no theme named {0:?}: use dark, light, high-contrast or a path to a TOML file")]
    Unknown(String),
    #[error("cannot read the theme file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the theme {name} is not valid: {message}")]
    Invalid { name: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    text: String,
    dim: String,
    accent: String,
    header: String,
    header_bg: String,
    selected_bg: String,
    on: String,
    off: String,
    pending: String,
    ok: String,
    warn: String,
    error: String,
    offline: String,
    stale: String,
    border: String,
}

/// Resolved styles. With `NO_COLOR` every colour is `Reset`.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub dim: Style,
    pub accent: Style,
    pub header: Style,
    pub selected: Style,
    pub on: Style,
    pub off: Style,
    pub pending: Style,
    pub ok: Style,
    pub warn: Style,
    pub error: Style,
    pub offline: Style,
    pub stale: Style,
    pub border: Style,
}

impl Theme {
    /// A built-in theme by name, or a TOML file by path.
    pub fn load(name_or_path: &str, no_color: bool) -> Result<Theme, ThemeError> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Theme::parse(name_or_path, text, no_color);
        }
        let path = Path::new(name_or_path);
        if path.extension().is_some_and(|e| e == "toml") || path.exists() {
            let text = std::fs::read_to_string(path).map_err(|source| ThemeError::Read {
                path: name_or_path.to_string(),
                source,
            })?;
            return Theme::parse(name_or_path, &text, no_color);
        }
        Err(ThemeError::Unknown(name_or_path.to_string()))
    }

    pub fn parse(origin: &str, text: &str, no_color: bool) -> Result<Theme, ThemeError> {
        let invalid = |message: String| ThemeError::Invalid {
            name: origin.to_string(),
            message,
        };
        let f: ThemeFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let colour = |field: &str, v: &str| -> Result<Color, ThemeError> {
            if no_color {
                return Ok(Color::Reset);
            }
            Color::from_str(v).map_err(|_| {
                invalid(format!(
                    "{field} = {v:?} is not a colour (use a name such as lightgreen or #rrggbb)"
                ))
            })
        };
        let fg = |field: &str, v: &str| colour(field, v).map(|c| Style::new().fg(c));
        let bold = Modifier::BOLD;
        Ok(Theme {
            name: f.name.clone(),
            text: fg("text", &f.text)?,
            dim: fg("dim", &f.dim)?.add_modifier(Modifier::DIM),
            accent: fg("accent", &f.accent)?.add_modifier(bold),
            header: fg("header", &f.header)?
                .bg(colour("header_bg", &f.header_bg)?)
                .add_modifier(bold),
            selected: if no_color {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new().bg(colour("selected_bg", &f.selected_bg)?)
            },
            on: fg("on", &f.on)?.add_modifier(bold),
            off: fg("off", &f.off)?,
            pending: fg("pending", &f.pending)?.add_modifier(Modifier::ITALIC),
            ok: fg("ok", &f.ok)?,
            warn: fg("warn", &f.warn)?.add_modifier(bold),
            error: fg("error", &f.error)?.add_modifier(bold),
            offline: fg("offline", &f.offline)?.add_modifier(Modifier::DIM),
            stale: fg("stale", &f.stale)?.add_modifier(Modifier::ITALIC),
            border: fg("border", &f.border)?,
        })
    }

    /// The built-in theme after `current` (wrapping), for the `t` key.
    pub fn next_name(current: &str) -> &'static str {
        let i = BUILT_IN.iter().position(|(n, _)| *n == current);
        match i {
            Some(i) => BUILT_IN[(i + 1) % BUILT_IN.len()].0,
            None => BUILT_IN[0].0,
        }
    }
}

/// Single-width symbols, with an ASCII set for old consoles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Symbols {
    pub on: &'static str,
    pub off: &'static str,
    pub online: &'static str,
    pub offline: &'static str,
    pub pending: &'static str,
    pub confirmed: &'static str,
    pub failed: &'static str,
    pub warn: &'static str,
    pub selected: &'static str,
    pub sort_desc: &'static str,
    pub sort_asc: &'static str,
    pub arrow: &'static str,
    pub dash: &'static str,
    pub rupee: &'static str,
    pub bars: &'static [char],
    pub gauge_full: char,
    pub gauge_empty: char,
    pub enter: &'static str,
    pub tab: &'static str,
    pub sep: &'static str,
    pub rule: &'static str,
    pub le: &'static str,
    pub times: &'static str,
    /// Box-drawing borders, or `+ - |`.
    pub borders: ratatui::symbols::border::Set<'static>,
}

pub const UNICODE: Symbols = Symbols {
    on: "■",
    off: "□",
    online: "●",
    offline: "○",
    pending: "…",
    confirmed: "✓",
    failed: "✕",
    warn: "⚠",
    selected: "▶",
    sort_desc: "▼",
    sort_asc: "▲",
    arrow: "→",
    dash: "—",
    rupee: "₹",
    bars: &['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'],
    gauge_full: '█',
    gauge_empty: '░',
    enter: "⏎",
    tab: "⇥",
    sep: "·",
    rule: "─",
    le: "≤",
    times: "×",
    borders: ratatui::symbols::border::PLAIN,
};

pub const ASCII: Symbols = Symbols {
    on: "#",
    off: "-",
    online: "*",
    offline: "o",
    pending: "...",
    confirmed: "ok",
    failed: "x",
    warn: "!",
    selected: ">",
    sort_desc: "v",
    sort_asc: "^",
    arrow: "->",
    dash: "-",
    rupee: "Rs",
    bars: &['.', ':', '-', '=', '+', '*', '#', '@'],
    gauge_full: '#',
    gauge_empty: '.',
    enter: "enter",
    tab: "tab",
    sep: "-",
    rule: "-",
    le: "<=",
    times: "x",
    borders: ratatui::symbols::border::Set {
        top_left: "+",
        top_right: "+",
        bottom_left: "+",
        bottom_right: "+",
        vertical_left: "|",
        vertical_right: "|",
        horizontal_top: "-",
        horizontal_bottom: "-",
    },
};

impl Symbols {
    /// ASCII when asked, or when the locale does not say UTF-8.
    pub fn detect(force_ascii: bool, locale: Option<&str>) -> Symbols {
        let utf8 = locale.is_some_and(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("utf-8") || l.contains("utf8")
        });
        if force_ascii || !utf8 {
            ASCII
        } else {
            UNICODE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_themes_parse_with_and_without_colour() {
        for (name, _) in BUILT_IN {
            let t = Theme::load(name, false).unwrap();
            assert_eq!(&t.name, name);
            assert_ne!(t.on.fg, Some(Color::Reset));
            let plain = Theme::load(name, true).unwrap();
            assert_eq!(plain.on.fg, Some(Color::Reset));
            assert!(plain.on.add_modifier.contains(Modifier::BOLD));
            assert!(plain.selected.add_modifier.contains(Modifier::REVERSED));
        }
    }

    #[test]
    fn bad_themes_say_what_is_wrong() {
        let err = Theme::load("solarized", false).unwrap_err().to_string();
        assert!(err.contains("dark, light, high-contrast"), "{err}");
        let text = include_str!("../../themes/dark.toml").replace("#5fd75f", "greenish");
        let err = Theme::parse("x", &text, false).unwrap_err().to_string();
        assert!(err.contains("greenish"), "{err}");
    }

    #[test]
    fn theme_cycle_wraps() {
        assert_eq!(Theme::next_name("dark"), "light");
        assert_eq!(Theme::next_name("high-contrast"), "dark");
        assert_eq!(Theme::next_name("/some/file.toml"), "dark");
    }

    #[test]
    fn ascii_unless_the_locale_is_utf8() {
        assert_eq!(Symbols::detect(false, Some("en_IN.UTF-8")), UNICODE);
        assert_eq!(Symbols::detect(false, Some("C")), ASCII);
        assert_eq!(Symbols::detect(false, None), ASCII);
        assert_eq!(Symbols::detect(true, Some("en_US.utf8")), ASCII);
    }
}
