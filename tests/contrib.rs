//! What ships in `contrib/` matches the program: the sample configuration names every key the
//! configuration has and no other, with its default; the systemd unit runs a command line the
//! binary accepts, with environment variables it reads, hardened, and with no secret in it. The
//! Prometheus alert rules pass promtool's check and their own unit tests; the Grafana dashboard is
//! JSON. (That every metric they use is one a collector exports is checked against a live
//! collector in `live_binaries.rs`.)

mod support;

use autovolt::cli::{self, live::LiveCommand, Command};
use autovolt::config::{Config, FileLayer, Flags};
use clap::CommandFactory;
use serde::de::{self, Deserialize, Visitor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn contrib(name: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (path, text)
}

/// The field names a type's `Deserialize` asks for: its keys, from the type itself.
#[derive(Debug)]
struct Fields(Vec<&'static str>);

impl std::fmt::Display for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fields {:?}", self.0)
    }
}

impl std::error::Error for Fields {}

impl de::Error for Fields {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Fields(vec![])
    }
}

/// A deserializer that answers nothing and notes the fields a struct asks for.
struct FieldNames;

impl<'de> de::Deserializer<'de> for FieldNames {
    type Error = Fields;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
        Err(Fields(vec![]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Fields> {
        Err(Fields(fields.to_vec()))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn config_keys() -> BTreeSet<String> {
    match Config::deserialize(FieldNames) {
        Err(Fields(f)) if !f.is_empty() => f.iter().map(|s| s.to_string()).collect(),
        other => panic!("the configuration's keys cannot be listed: {other:?}"),
    }
}

/// A line of the sample that sets a key: `key = value`, or `# key = value` left for the reader
/// to uncomment (a key whose default is "unset", or an example of a table's entries).
struct Setting {
    table: Option<String>,
    key: String,
    commented: bool,
    line: usize,
}

fn settings(text: &str) -> Vec<Setting> {
    let mut table = None;
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push(Setting {
                table: None,
                key: name.to_string(),
                commented: false,
                line: n,
            });
            table = Some(name.to_string());
            continue;
        }
        let (body, commented) = match line.strip_prefix("# ") {
            Some(b) => (b, true),
            None => (line, false),
        };
        // A description is a comment that is not itself one setting.
        if let Ok(t) = toml::from_str::<toml::Table>(body) {
            if t.len() == 1 {
                let key = t.keys().next().expect("one key").clone();
                out.push(Setting {
                    table: table.clone(),
                    key,
                    commented,
                    line: n,
                });
            }
        }
    }
    out
}

#[test]
fn the_sample_configuration_has_every_key_and_only_those() {
    let (path, text) = contrib("autovolt.toml");
    let keys = config_keys();
    assert!(
        keys.contains("mongodb_uri") && keys.contains("keys"),
        "{keys:?}"
    );
    let found = settings(&text);
    let top: BTreeSet<String> = found
        .iter()
        .filter(|s| s.table.is_none())
        .map(|s| s.key.clone())
        .collect();
    let missing: Vec<_> = keys.difference(&top).collect();
    let unknown: Vec<_> = top.difference(&keys).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "{}: keys missing from it {missing:?}; keys the configuration does not have {unknown:?}",
        path.display()
    );

    // Every key says what it is, in a comment just above it (or above its table).
    let lines: Vec<&str> = text.lines().collect();
    for s in found.iter().filter(|s| s.table.is_none()) {
        let above = lines[..s.line].last().copied().unwrap_or_default().trim();
        let described =
            above.starts_with('#') && !found.iter().any(|o| o.line + 1 == s.line && o.commented);
        assert!(described, "{} has no comment above it", s.key);
    }

    // As shipped it parses, passes the checks and sets every key to its default.
    let no_env = |_: &str| None;
    let layer = FileLayer {
        path: path.clone(),
        text: text.clone(),
    };
    let sample = Config::resolve(Some(&layer), &no_env, &Flags::new())
        .expect("the sample parses and its values are valid");
    let defaults = Config::resolve(None, &no_env, &Flags::new()).expect("the defaults");
    assert_eq!(
        toml::Value::try_from(&sample).unwrap(),
        toml::Value::try_from(&defaults).unwrap(),
        "the sample shows the defaults"
    );

    // Uncommented, its examples are valid too.
    let commented: BTreeSet<usize> = found
        .iter()
        .filter(|s| s.commented)
        .map(|s| s.line)
        .collect();
    assert!(!commented.is_empty());
    let uncommented: String = lines
        .iter()
        .enumerate()
        .map(|(n, l)| {
            let l = if commented.contains(&n) {
                l.trim().trim_start_matches("# ")
            } else {
                l
            };
            format!("{l}\n")
        })
        .collect();
    let mut examples: Config = toml::from_str(&uncommented).expect("the examples parse");
    // The secure-link examples only fit an mqtts:// URL and a URI with a user, which the defaults
    // are not, and a password excludes its file: they are checked for their types above, and the
    // combinations by the configuration's own tests.
    examples.mongodb_password = None;
    examples.mongodb_password_file = None;
    examples.mqtt_password = None;
    examples.mqtt_ca_file = None;
    examples.mqtt_client_cert_file = None;
    examples.mqtt_client_key_file = None;
    examples.check().expect("the examples are valid");
    assert!(examples.log_file.is_some() && !examples.keys.is_empty());
    autovolt::tui::keymap::Keymap::with_overrides(&examples.keys)
        .expect("the key binding examples name real actions");
}

/// `[Section]` → key → values, in order (a key may repeat, as `Environment=` does).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(text: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(!line.ends_with('\\'), "no continued lines: {line}");
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        assert!(!section.is_empty(), "{line} is outside a section");
        unit.entry(section.clone())
            .or_default()
            .entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    unit
}

/// Every environment variable a flag of the command line reads, with that flag's long name.
fn flag_envs() -> BTreeMap<String, String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeMap<String, String>) {
        for a in cmd.get_arguments() {
            if let (Some(env), Some(long)) = (a.get_env(), a.get_long()) {
                out.insert(env.to_string_lossy().into_owned(), long.to_string());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&cli::Cli::command(), &mut out);
    out
}

#[test]
fn the_systemd_unit_runs_a_command_the_binary_accepts() {
    let (_, text) = contrib("autovolt-collector.service");
    let unit = parse_unit(&text);
    let service = &unit["Service"];
    let one = |k: &str| -> &str {
        match service.get(k).map(Vec::as_slice) {
            Some([v]) => v,
            other => panic!("[Service] {k}= should be set once: {other:?}"),
        }
    };

    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert!(
        exec[0].starts_with('/') && exec[0].ends_with("/autovolt"),
        "ExecStart runs {}",
        exec[0]
    );
    let args: Vec<String> = exec[1..].iter().map(|s| s.to_string()).collect();
    let parsed = cli::parse(std::iter::once("autovolt".to_string()).chain(args.clone()))
        .unwrap_or_else(|f| panic!("ExecStart's command line is refused: {}", f.message));
    match parsed.command {
        Some(Command::Live(LiveCommand::Collect { metrics, .. })) => {
            let addr = metrics.expect("the unit serves metrics");
            assert!(
                addr.ip().is_loopback(),
                "metrics have no authentication: {addr}"
            );
        }
        other => panic!("ExecStart does not run the collector: {other:?}"),
    }

    // Each variable set in the unit is one the binary reads, with a value its flag accepts.
    let envs = flag_envs();
    for assignment in service.get("Environment").into_iter().flatten() {
        let (name, value) = assignment
            .split_once('=')
            .unwrap_or_else(|| panic!("Environment={assignment} is not NAME=VALUE"));
        let long = envs
            .get(name)
            .unwrap_or_else(|| panic!("autovolt reads no variable {name}"));
        let with_flag = std::iter::once("autovolt".to_string())
            .chain([format!("--{long}"), value.to_string()])
            .chain(args.clone());
        if let Err(f) = cli::parse(with_flag) {
            panic!("{name}={value} is refused: {}", f.message);
        }
        assert!(
            !name.contains("URI") && !name.contains("PASSWORD"),
            "{name} is a secret: it belongs in the EnvironmentFile"
        );
    }

    // Secrets come from a file only root reads; the service runs unprivileged, and restarts.
    assert!(one("EnvironmentFile").starts_with("/etc/autovolt/"));
    assert!(
        one("DynamicUser") == "yes" || service.contains_key("User"),
        "a user of its own"
    );
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("Restart", "on-failure"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(one(k), v, "[Service] {k}=");
    }
    assert_eq!(
        unit["Install"]["WantedBy"],
        vec!["multi-user.target".to_string()]
    );
    assert!(unit["Unit"]["After"][0].contains("network-online.target"));
}

#[test]
fn the_alert_rules_pass_promtools_check() {
    let (ok, said) = support::promtool(
        &["check", "rules", "autovolt.rules.yml"],
        &support::prometheus_contrib(),
        "",
    );
    assert!(ok, "promtool check rules:\n{said}");
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn every_alert_fires_and_stays_quiet_as_its_unit_tests_say() {
    let dir = support::prometheus_contrib();
    let (ok, said) = support::promtool(&["test", "rules", "autovolt.rules.test.yml"], &dir, "");
    assert!(ok, "promtool test rules:\n{said}");
    // Every alert has a test that makes it fire (an `exp_alerts` entry) and one that expects none.
    let (_, rules) = contrib("prometheus/autovolt.rules.yml");
    let (_, tests) = contrib("prometheus/autovolt.rules.test.yml");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for alert in alerts {
        let (mut fires, mut quiet) = (false, false);
        for (i, l) in lines.iter().enumerate() {
            if *l == format!("alertname: {alert}") {
                match lines.get(i + 1) {
                    Some(next) if next.starts_with("exp_alerts:") => fires = true,
                    _ => quiet = true,
                }
            }
        }
        assert!(
            fires && quiet,
            "{alert}: fires tested {fires}, quiet tested {quiet}"
        );
    }
}

#[test]
fn the_grafana_dashboard_is_json_with_panels_that_query_prometheus() {
    let (path, text) = contrib("prometheus/autovolt-grafana.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    for p in panels {
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{p}");
        for t in targets {
            let expr = t["expr"].as_str().expect("a PromQL expression");
            assert!(expr.contains("autovolt_") || expr.contains("up{"), "{expr}");
        }
    }
    assert!(!support::autovolt_metric_names(&text).is_empty());
}
