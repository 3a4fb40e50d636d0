//! Actions and the keys bound to them: defaults, overridden by the config file's `[keys]` table
//! (`toggle = "t"`, `quit = "ctrl-q"`).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::{BTreeMap, HashMap};

/// What a key asks for, independent of which key it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Open,
    Toggle,
    Back,
    AllOff,
    NextBoard,
    BoardInfo,
    Filter,
    Sort,
    Classrooms,
    Waste,
    Activity,
    Health,
    Tariff,
    Schedules,
    Trends,
    EditTariff,
    Aggregate,
    Theme,
    Dismiss,
}

impl Action {
    /// Every action, with its config name and what it does (the help overlay lists these).
    pub const ALL: &'static [(Action, &'static str, &'static str)] = &[
        (Action::Up, "up", "move up"),
        (Action::Down, "down", "move down"),
        (Action::Top, "top", "first row"),
        (Action::Bottom, "bottom", "last row"),
        (Action::PageUp, "page_up", "page up"),
        (Action::PageDown, "page_down", "page down"),
        (
            Action::Open,
            "open",
            "open the selected classroom / board; toggle a switch",
        ),
        (Action::Toggle, "toggle", "toggle the selected switch"),
        (
            Action::AllOff,
            "all_off",
            "switch a classroom's loads off (asks first)",
        ),
        (
            Action::NextBoard,
            "next_board",
            "next board of the classroom",
        ),
        (Action::BoardInfo, "board_info", "board details"),
        (Action::Back, "back", "back / cancel"),
        (Action::Filter, "filter", "filter the list"),
        (Action::Sort, "sort", "change the sort order"),
        (Action::Classrooms, "classrooms", "classrooms (home)"),
        (
            Action::Waste,
            "waste",
            "waste: loads on in empty rooms or after hours",
        ),
        (Action::Activity, "activity", "activity log"),
        (Action::Health, "health", "health of servers and boards"),
        (Action::Tariff, "tariff", "tariff and its history"),
        (
            Action::Schedules,
            "schedules",
            "schedules: what switches when",
        ),
        (
            Action::Trends,
            "trends",
            "trends: 30 days, today's load, costliest rooms",
        ),
        (
            Action::EditTariff,
            "edit_tariff",
            "change the tariff (admin)",
        ),
        (
            Action::Aggregate,
            "aggregate",
            "run the aggregation (admin)",
        ),
        (Action::Theme, "theme", "next colour theme"),
        (Action::Dismiss, "dismiss", "dismiss the last error"),
        (Action::Help, "help", "this help"),
        (Action::Quit, "quit", "quit"),
    ];

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(a, _, _)| *a)
    }

    pub fn name(self) -> &'static str {
        Action::ALL
            .iter()
            .find(|(a, _, _)| *a == self)
            .map(|(_, n, _)| *n)
            .unwrap_or("?")
    }
}

/// A key with its modifiers, comparable and printable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

impl Key {
    pub fn from_event(e: &KeyEvent) -> Key {
        // Shift is already in the character ('G' vs 'g'); only Ctrl changes the meaning.
        Key {
            code: e.code,
            ctrl: e.modifiers.contains(KeyModifiers::CONTROL),
        }
    }

    fn plain(code: KeyCode) -> Key {
        Key { code, ctrl: false }
    }

    fn ch(c: char) -> Key {
        Key::plain(KeyCode::Char(c))
    }

    /// Parses `"t"`, `"G"`, `"enter"`, `"space"`, `"ctrl-q"`, `"f1"`, `"pgdn"`.
    pub fn parse(text: &str) -> Result<Key, String> {
        let t = text.trim();
        let (ctrl, rest) = match t.strip_prefix("ctrl-").or_else(|| t.strip_prefix("C-")) {
            Some(r) => (true, r),
            None => (false, t),
        };
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "space" => KeyCode::Char(' '),
                "esc" | "escape" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" => KeyCode::PageDown,
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                f if f.starts_with('f')
                    && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) =>
                {
                    KeyCode::F(f[1..].parse().unwrap_or(1))
                }
                _ => {
                    return Err(format!(
                        "{text:?} is not a key (use a character, enter, space, esc, tab, up, down, \
                         pgup, pgdn, home, end, f1-f12, optionally prefixed by ctrl-)"
                    ))
                }
            },
        };
        Ok(Key { code, ctrl })
    }

    /// How the key is shown; `ascii` spells out the keys that have a symbol.
    pub fn label(&self, ascii: bool) -> String {
        let named = match self.code {
            KeyCode::Enter => Some("enter"),
            KeyCode::Tab => Some("tab"),
            KeyCode::BackTab => Some("backtab"),
            KeyCode::Up => Some("up"),
            KeyCode::Down => Some("down"),
            KeyCode::Left => Some("left"),
            KeyCode::Right => Some("right"),
            _ => None,
        };
        let base = match self.code {
            _ if ascii && named.is_some() => named.unwrap_or_default().to_string(),
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "⏎".into(),
            KeyCode::Esc => "esc".into(),
            KeyCode::Tab => "⇥".into(),
            KeyCode::BackTab => "⇤".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::Home => "home".into(),
            KeyCode::End => "end".into(),
            KeyCode::PageUp => "pgup".into(),
            KeyCode::PageDown => "pgdn".into(),
            KeyCode::F(n) => format!("f{n}"),
            other => format!("{other:?}").to_lowercase(),
        };
        if self.ctrl {
            format!("ctrl-{base}")
        } else {
            base
        }
    }
}

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: HashMap<Key, Action>,
    /// Show keys in ASCII (`enter` rather than `⏎`).
    pub ascii: bool,
}

impl Default for Keymap {
    fn default() -> Self {
        use Action::*;
        let mut b = HashMap::new();
        let mut bind = |k: Key, a: Action| {
            b.insert(k, a);
        };
        bind(Key::ch('q'), Quit);
        bind(
            Key {
                code: KeyCode::Char('c'),
                ctrl: true,
            },
            Quit,
        );
        bind(Key::ch('?'), Help);
        bind(Key::plain(KeyCode::F(1)), Help);
        bind(Key::plain(KeyCode::Up), Up);
        bind(Key::ch('k'), Up);
        bind(Key::plain(KeyCode::Down), Down);
        bind(Key::ch('j'), Down);
        bind(Key::ch('g'), Top);
        bind(Key::plain(KeyCode::Home), Top);
        bind(Key::ch('G'), Bottom);
        bind(Key::plain(KeyCode::End), Bottom);
        bind(Key::plain(KeyCode::PageUp), PageUp);
        bind(Key::plain(KeyCode::PageDown), PageDown);
        bind(Key::plain(KeyCode::Enter), Open);
        bind(Key::plain(KeyCode::Right), Open);
        bind(Key::ch('l'), Open);
        bind(Key::ch(' '), Toggle);
        bind(Key::plain(KeyCode::Esc), Back);
        bind(Key::plain(KeyCode::Left), Back);
        bind(Key::ch('h'), Back);
        bind(Key::plain(KeyCode::Backspace), Back);
        bind(Key::ch('o'), AllOff);
        bind(Key::plain(KeyCode::Tab), NextBoard);
        bind(Key::ch('i'), BoardInfo);
        bind(Key::ch('/'), Filter);
        bind(Key::ch('s'), Sort);
        bind(Key::ch('c'), Classrooms);
        bind(Key::ch('1'), Classrooms);
        bind(Key::ch('w'), Waste);
        bind(Key::ch('2'), Waste);
        bind(Key::ch('v'), Activity);
        bind(Key::ch('3'), Activity);
        bind(Key::ch('H'), Health);
        bind(Key::ch('4'), Health);
        bind(Key::ch('r'), Tariff);
        bind(Key::ch('5'), Tariff);
        bind(Key::ch('S'), Schedules);
        bind(Key::ch('T'), Trends);
        bind(Key::ch('6'), Trends);
        bind(Key::ch('e'), EditTariff);
        bind(Key::ch('a'), Aggregate);
        bind(Key::ch('t'), Theme);
        bind(Key::ch('x'), Dismiss);
        Keymap {
            bindings: b,
            ascii: false,
        }
    }
}

impl Keymap {
    /// The defaults with the config's overrides applied; an override replaces every default key of
    /// its action.
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> Result<Keymap, String> {
        let mut map = Keymap::default();
        for (name, key) in overrides {
            let action = Action::from_name(name).ok_or_else(|| {
                format!(
                    "keys.{name}: no such action (one of: {})",
                    Action::ALL
                        .iter()
                        .map(|(_, n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let key = Key::parse(key).map_err(|e| format!("keys.{name}: {e}"))?;
            map.bindings.retain(|_, a| *a != action);
            map.bindings.insert(key, action);
        }
        Ok(map)
    }

    pub fn action(&self, key: &KeyEvent) -> Option<Action> {
        self.bindings.get(&Key::from_event(key)).copied()
    }

    /// The key to show for `action` in footers: ⏎ / esc / space / ⇥ first, then a single key,
    /// then anything else.
    pub fn label(&self, action: Action) -> String {
        self.labels(action)
            .into_iter()
            .next()
            .unwrap_or_else(|| "-".into())
    }

    /// Every key of `action`, for the help overlay.
    pub fn labels(&self, action: Action) -> Vec<String> {
        let mut keys: Vec<String> = self
            .bindings
            .iter()
            .filter(|(_, a)| **a == action)
            .map(|(k, _)| k.label(self.ascii))
            .collect();
        let rank = |k: &str| match k {
            "⏎" | "enter" | "esc" | "space" | "⇥" | "tab" => 0,
            _ if k.chars().count() == 1 && !k.chars().all(|c| c.is_ascii_digit()) => 1,
            _ => 2,
        };
        keys.sort_by_key(|k| (rank(k), k.clone()));
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(c, m)
    }

    #[test]
    fn defaults_cover_arrows_and_vim_keys() {
        let k = Keymap::default();
        assert_eq!(
            k.action(&key(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(
            k.action(&key(KeyCode::Down, KeyModifiers::NONE)),
            Some(Action::Down)
        );
        assert_eq!(
            k.action(&key(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Action::Bottom)
        );
        assert_eq!(
            k.action(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        for (a, _, _) in Action::ALL {
            assert!(!k.labels(*a).is_empty(), "{a:?} has no key");
        }
    }

    #[test]
    fn overrides_replace_the_action_keys() {
        let mut o = BTreeMap::new();
        o.insert("toggle".to_string(), "T".to_string());
        o.insert("quit".to_string(), "ctrl-q".to_string());
        let k = Keymap::with_overrides(&o).unwrap();
        assert_eq!(
            k.action(&key(KeyCode::Char('T'), KeyModifiers::SHIFT)),
            Some(Action::Toggle)
        );
        assert_eq!(k.action(&key(KeyCode::Char(' '), KeyModifiers::NONE)), None);
        assert_eq!(
            k.action(&key(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(k.action(&key(KeyCode::Char('q'), KeyModifiers::NONE)), None);
    }

    #[test]
    fn bad_overrides_are_explained() {
        let mut o = BTreeMap::new();
        o.insert("launch".to_string(), "l".to_string());
        assert!(Keymap::with_overrides(&o)
            .unwrap_err()
            .contains("no such action"));
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), "hyper-q".to_string());
        assert!(Keymap::with_overrides(&o)
            .unwrap_err()
            .contains("is not a key"));
    }

    #[test]
    fn keys_parse_and_print() {
        for t in ["enter", "space", "esc", "tab", "pgdn", "f5", "ctrl-x", "G"] {
            let k = Key::parse(t).unwrap();
            assert_eq!(Key::parse(&k.label(true)).ok(), Some(k), "{t}");
        }
    }
}
