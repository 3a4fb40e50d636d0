//! The layering of `src/`, checked: every `.rs` file is read as text and each path it names
//! (`use crate::…`, an inline `crate::x::y`, `super::super::` climbing out of a folder, an outside
//! crate such as `tokio::…`) is held against the rules that the Layout section of `src/lib.rs`
//! states. A forbidden import fails with its file, line and the rule it breaks.

use std::fmt;
use std::path::{Path, PathBuf};

/// Outside paths that do I/O (files, network, processes, the terminal, the database, the broker):
/// none of them belongs in the pure layers.
const IO_PATHS: &[&[&str]] = &[
    &["tokio"],
    &["tokio_util"],
    &["mongodb"],
    &["rumqttc"],
    &["rumqttd"],
    &["reqwest"],
    &["hyper"],
    &["ratatui"],
    &["crossterm"],
    &["dirs"],
    &["std", "fs"],
    &["std", "net"],
    &["std", "process"],
    &["std", "env"],
    &["std", "thread"],
];

/// Folders (top-level modules) whose code is pure: the domain's rules, and figures formatted for
/// people. `domain` may import only itself; `format` only the domain.
const PURE: &[(&str, &[&str])] = &[("domain", &["domain"]), ("format", &["domain", "format"])];

/// `(from, forbidden, why)`: modules a folder must not import.
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "store",
        &["config", "tui", "collect", "cli", "mqtt"],
        "the data layer takes plain values (a URI, a lease, a time zone) and knows no front end, \
         no configuration and no broker",
    ),
    (
        "mqtt",
        &["config", "tui", "collect", "cli", "store"],
        "the broker layer takes plain values (a URL, credentials) and knows no front end, no \
         configuration and no database",
    ),
    (
        "tui",
        &["collect", "simulate", "seed", "servers"],
        "the dashboard receives what it shows; wiring daemons and servers is the command line's job",
    ),
];

/// A path named in a source file, resolved to what it reaches.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// A top-level module of this crate (`store`, `domain`, …).
    Module(String),
    /// A path outside the crate, as written (`std::fs::read`).
    Outside(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Violation {
    file: String,
    line: usize,
    what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.what)
    }
}

/// Whether `path` begins with the segments `prefix`.
fn starts_with(path: &[String], prefix: &[&str]) -> bool {
    path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b)
}

/// Why `from` may not reach `target`, if it may not.
fn verdict(from: &str, target: &Target) -> Option<String> {
    if let Some((_, allowed)) = PURE.iter().find(|(layer, _)| *layer == from) {
        return match target {
            Target::Module(m) if !allowed.contains(&m.as_str()) => Some(format!(
                "{from} imports crate::{m}: {from} is pure and may import only {}",
                allowed.join(", ")
            )),
            Target::Outside(path) if IO_PATHS.iter().any(|io| starts_with(path, io)) => Some(
                format!("{from} uses {}: {from} does no I/O", path.join("::")),
            ),
            _ => None,
        };
    }
    let Target::Module(m) = target else {
        return None;
    };
    FORBIDDEN
        .iter()
        .find(|(layer, banned, _)| *layer == from && banned.contains(&m.as_str()))
        .map(|(_, _, why)| format!("{from} imports crate::{m}: {why}"))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
}

/// The tokens of `source` with their line numbers, comments and the contents of string and
/// character literals left out (a URL such as `"mqtt://host"` or a doc comment naming
/// `crate::config` is no import).
fn tokens(source: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |k: usize| chars.get(k).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
        } else if c == '"' || ((c == 'r' || c == 'b') && raw_string_start(&chars, i).is_some()) {
            // A string: plain (with escapes) or raw (`r#"…"#`, `br"…"`).
            let (hashes, open) = if c == '"' {
                (None, i)
            } else {
                raw_string_start(&chars, i).unwrap_or((None, i))
            };
            i = open + 1;
            while i < chars.len() {
                match (chars[i], hashes) {
                    ('\\', None) => i += 1,
                    ('"', None) => break,
                    ('"', Some(n)) if (1..=n).all(|k| at(i + k) == '#') => {
                        i += n;
                        break;
                    }
                    ('\n', _) => line += 1,
                    _ => {}
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}'), else a lifetime ('a).
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), line));
        } else if c == ':' && at(i + 1) == ':' {
            out.push((Tok::Sep, line));
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push((Tok::Punct(c), line));
            }
            i += 1;
        }
    }
    out
}

/// At `i`, the start of a raw string (`r"`, `r#"`, `br"`, `b"`): how many `#` close it (`None`
/// for a byte string with escapes) and where its opening quote is.
fn raw_string_start(chars: &[char], i: usize) -> Option<(Option<usize>, usize)> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut k = i;
    if chars.get(k) == Some(&'b') {
        k += 1;
        if chars.get(k) == Some(&'"') {
            return Some((None, k));
        }
    }
    if chars.get(k) != Some(&'r') {
        return None;
    }
    k += 1;
    let mut hashes = 0;
    while chars.get(k) == Some(&'#') {
        hashes += 1;
        k += 1;
    }
    (chars.get(k) == Some(&'"')).then_some((Some(hashes), k))
}

/// A path as written: its segments and the line of each.
type Segments = Vec<(String, usize)>;

/// The paths of the `use` tree starting at `i` (after `use`), under `prefix`; returns the index
/// after the tree.
fn use_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    prefix: Segments,
    out: &mut Vec<Segments>,
) -> usize {
    let mut path = prefix;
    loop {
        match toks.get(i) {
            Some((Tok::Ident(s), line)) => {
                path.push((s.clone(), *line));
                i += 1;
                if matches!(toks.get(i), Some((Tok::Sep, _))) {
                    i += 1;
                    continue;
                }
                break;
            }
            Some((Tok::Sep, _)) => i += 1,
            Some((Tok::Punct('*'), line)) => {
                path.push(("*".into(), *line));
                i += 1;
                break;
            }
            Some((Tok::Punct('{'), _)) => {
                i += 1;
                while i < toks.len() && toks[i].0 != Tok::Punct('}') {
                    i = use_tree(toks, i, path.clone(), out);
                    if toks.get(i).map(|t| &t.0) == Some(&Tok::Punct(',')) {
                        i += 1;
                    }
                }
                return i + 1;
            }
            _ => break,
        }
    }
    if matches!(toks.get(i), Some((Tok::Ident(a), _)) if a == "as") {
        i += 2;
    }
    if !path.is_empty() {
        out.push(path);
    }
    i
}

/// What `path`, written in module `module` (folders, file and inline `mod`s), reaches, and the
/// line of the segment that decides it. `self::…` stays in the module: `None`.
fn resolve(path: &[(String, usize)], module: &[String]) -> Option<(Target, usize)> {
    let (first, line) = path.first()?;
    match first.as_str() {
        "crate" => {
            let (m, line) = path.get(1)?;
            Some((Target::Module(m.clone()), *line))
        }
        "super" => {
            let mut m = module.to_vec();
            let mut k = 0;
            while path.get(k).is_some_and(|(s, _)| s == "super") {
                m.pop()?;
                k += 1;
            }
            match m.first() {
                Some(top) => Some((Target::Module(top.clone()), path[k - 1].1)),
                None => {
                    let (name, line) = path.get(k)?;
                    (name != "*").then(|| (Target::Module(name.clone()), *line))
                }
            }
        }
        "self" | "Self" => None,
        _ => Some((
            Target::Outside(path.iter().map(|(s, _)| s.clone()).collect()),
            *line,
        )),
    }
}

/// The module path of a file under `src/`: `store/error.rs` is `store::error`, `tui/mod.rs` is
/// `tui`, `lib.rs` the crate root.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The forbidden paths of one file, `relative` to `src/`.
fn check_file(relative: &Path, source: &str) -> Vec<Violation> {
    let file_module = module_of(relative);
    let Some(layer) = file_module.first().cloned() else {
        return Vec::new();
    };
    let toks = tokens(source);
    let mut found = Vec::new();
    // Inline `mod name { … }` blocks, with the brace depth inside each.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let module = || {
            let mut m = file_module.clone();
            m.extend(inline.iter().map(|(n, _)| n.clone()));
            m
        };
        let mut paths = Vec::new();
        match &toks[i].0 {
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
                continue;
            }
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
                i += 1;
                continue;
            }
            Tok::Ident(k) if k == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Punct('{'), _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    depth += 1;
                    inline.push((name.clone(), depth));
                    i += 3;
                    continue;
                }
                i += 1;
                continue;
            }
            Tok::Ident(k) if k == "use" => {
                i = use_tree(&toks, i + 1, Vec::new(), &mut paths);
            }
            Tok::Ident(_) => {
                let after_sep_or_dollar =
                    i > 0 && matches!(toks[i - 1].0, Tok::Sep | Tok::Punct('$') | Tok::Punct('.'));
                let mut path = Vec::new();
                let mut k = i;
                while let Some((Tok::Ident(s), line)) = toks.get(k) {
                    path.push((s.clone(), *line));
                    if !matches!(toks.get(k + 1), Some((Tok::Sep, _))) {
                        break;
                    }
                    k += 2;
                }
                let is_macro = matches!(toks.get(k + 1), Some((Tok::Punct('!'), _)));
                if !after_sep_or_dollar && !is_macro && path.len() > 1 {
                    paths.push(path);
                }
                i = k + 1;
            }
            Tok::Punct('.') => {
                // `x.collection::<T>(…)` / `x.collection(…)`: a raw collection of the store.
                let raw = matches!(toks.get(i + 1), Some((Tok::Ident(m), _)) if m == "collection")
                    && matches!(toks.get(i + 2), Some((Tok::Sep | Tok::Punct('('), _)));
                if raw && layer != "store" {
                    found.push(Violation {
                        file: Path::new("src").join(relative).display().to_string(),
                        line: toks[i + 1].1,
                        what: format!(
                            "{layer} opens a raw collection: the store's collections stay inside \
                             store; ask it with a named method"
                        ),
                    });
                }
                i += 1;
            }
            _ => i += 1,
        }
        let module = module();
        for path in paths {
            if let Some((target, line)) = resolve(&path, &module) {
                if let Some(what) = verdict(&layer, &target) {
                    found.push(Violation {
                        file: Path::new("src").join(relative).display().to_string(),
                        line,
                        what,
                    });
                }
            }
        }
    }
    // `use crate::x::{self, Y}` names `x` twice on one line.
    found.dedup();
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_folder_imports_what_the_layout_forbids() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 50, "only {} files under src/", files.len());
    let mut found = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src/");
        // The binary is a crate of its own: its `crate::` is not the library's.
        if relative == Path::new("main.rs") {
            continue;
        }
        let source = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        found.extend(check_file(relative, &source));
    }
    let listed: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(
        found.is_empty(),
        "{} forbidden imports (see the Layout section of src/lib.rs):\n{}",
        found.len(),
        listed.join("\n")
    );
}

#[cfg(test)]
mod the_checker {
    use super::*;

    fn check(file: &str, source: &str) -> Vec<String> {
        check_file(Path::new(file), source)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn catches_a_forbidden_use_with_its_file_and_line() {
        let found = check(
            "store/aggregation.rs",
            "//! Books.\n\nuse crate::domain::Instant;\nuse crate::config::Config;\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("src/store/aggregation.rs:4: store imports crate::config"),
            "{found:?}"
        );
    }

    #[test]
    fn catches_grouped_inline_and_climbing_paths() {
        let grouped = "use crate::{\n    domain::Instant,\n    store::Store,\n};\n";
        assert_eq!(
            check("mqtt/relay.rs", grouped),
            ["src/mqtt/relay.rs:3: mqtt imports crate::store: the broker layer takes plain values \
              (a URL, credentials) and knows no front end, no configuration and no database"]
        );
        let inline = "fn f() {\n    let x = crate::config::REDACTED;\n}\n";
        assert_eq!(check("store/error.rs", inline).len(), 1);
        // From `tui/demo.rs`, `super::super` is the crate root.
        let climbing = "fn f() { super::super::collect::run(); }\n";
        assert_eq!(check("tui/demo.rs", climbing).len(), 1);
        assert!(
            check("tui/views/board.rs", climbing).is_empty(),
            "still tui"
        );
        // Inside an inline module of `domain/dates.rs`, `super::super` is `domain`.
        let nested = "mod lenient_date {\n    fn f() { super::super::lenient::describe(); }\n}\n\
                      fn g() { super::super::store::Store::x(); }\n";
        let found = check("domain/dates.rs", nested);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("src/domain/dates.rs:4:"), "{found:?}");
    }

    #[test]
    fn catches_io_in_the_pure_layers() {
        let source = "use std::{collections::BTreeMap, fs};\nfn f() { tokio::spawn(g()); }\n";
        let found = check("domain/energy.rs", source);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("domain uses std::fs"), "{found:?}");
        assert!(found[1].contains("domain uses tokio::spawn"), "{found:?}");
        assert_eq!(check("format.rs", "use crate::store::Store;\n").len(), 1);
        assert!(check("format.rs", "use crate::domain::Instant;\n").is_empty());
        assert!(check("store/x.rs", "use std::fs;\nuse tokio::spawn;\n").is_empty());
    }

    #[test]
    fn catches_a_raw_collection_outside_the_store() {
        let source = "async fn f(store: &Store) {\n    store\n        .collection::<Document>(USERS)\n        .estimated_document_count();\n}\n";
        let found = check("tui/follow.rs", source);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("src/tui/follow.rs:3: tui opens a raw collection"));
        assert!(check("store/users.rs", source).is_empty());
    }

    #[test]
    fn comments_strings_macros_and_allowed_paths_pass() {
        let source = r####"
//! Reads [`crate::config::Config`] /* crate::tui */.
use crate::domain::Instant;
use super::collections::DEVICES;
const URL: &str = "mqtt://crate::tui";
const RAW: &str = r#"crate::cli "quoted" crate::collect"#;
const C: char = '"';
fn f<'a>(x: &'a str) -> &'a str { x }
crate::string_enum! { A {} }
"####;
        assert_eq!(check("store/devices.rs", source), Vec::<String>::new());
        assert!(check("tui/app.rs", "use crate::store::Store;\n").is_empty());
        assert!(check("cli/demo.rs", "use crate::collect::run;\n").is_empty());
    }
}
