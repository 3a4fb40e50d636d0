//! Export and report against a real server, through the binary: the export's sums are the stored
//! rollups' and the audit of the same range passes; the report names the month's figures.

mod books_common;
mod support;

use autovolt::store::AggregateQuery;
use books_common::{campus, date, ist, Campus, IST};

/// Two classrooms of two boards, billed on three days of November (one of them after closing
/// time), and aggregated.
async fn books(label: &str) -> Campus {
    let c = campus(label, 2, 2, 7.5).await;
    for board in 0..4 {
        for day in 19..=21 {
            c.bill(
                board,
                2,
                ist(2026, 11, day, 9, 0),
                ist(2026, 11, day, 11, 0),
            )
            .await;
            c.bill(
                board,
                5,
                ist(2026, 11, day, 12, 0),
                ist(2026, 11, day, 12, 45 + board as u32),
            )
            .await;
        }
    }
    // After hours (campus hours are 08:00-18:00): waste.
    c.bill(0, 5, ist(2026, 11, 21, 19, 0), ist(2026, 11, 21, 21, 0))
        .await;
    c.aggregate(date(2026, 11, 19), date(2026, 11, 21)).await;
    c
}

/// Runs `autovolt ARGS` against the campus's database: (exit code, stdout, stderr).
fn cli(uri: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_autovolt"))
        .args(args)
        .env("AUTOVOLT_MONGODB_URI", uri)
        .env_remove("AUTOVOLT_CONFIG")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("autovolt-export-no-config"),
        )
        .env_remove("AUTOVOLT_TIMEZONE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The sums of a CSV export's kWh and ₹ columns, and its row count.
fn csv_sums(csv: &str) -> (f64, f64, usize) {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .split(',')
        .collect();
    let kwh = header.iter().position(|h| *h == "kwh").unwrap();
    let cost = header.iter().position(|h| *h == "cost_inr").unwrap();
    let (mut k, mut c, mut n) = (0.0, 0.0, 0);
    for line in lines {
        // The test's names hold no comma: a plain split is enough.
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), header.len(), "{line}");
        k += f[kwh].parse::<f64>().unwrap();
        c += f[cost].parse::<f64>().unwrap();
        n += 1;
    }
    (k, c, n)
}

#[tokio::test]
async fn the_export_sums_to_the_stored_rollups_and_the_audit_passes() {
    let c = books("export_sums").await;
    let stored = c
        .store
        .daily_aggregates(&AggregateQuery {
            from: Some("2026-11-19".into()),
            to: Some("2026-11-21".into()),
            ..AggregateQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 12, "4 boards × 3 days");
    let kwh: f64 = stored.iter().map(|a| a.total_kwh).sum();
    let cost: f64 = stored.iter().map(|a| a.cost_at_calc_time).sum();
    assert!(cost > 0.0);
    let switches: usize = stored.iter().map(|a| a.switch_breakdown.len()).sum();
    for (by, rows) in [("device", 12), ("switch", switches), ("classroom", 6)] {
        let (code, out, err) = cli(
            &c.uri,
            &[
                "export",
                "--from",
                "2026-11-19",
                "--to",
                "2026-11-21",
                "--by",
                by,
            ],
        );
        assert_eq!(code, 0, "{err}");
        let (k, cst, n) = csv_sums(&out);
        assert_eq!(n, rows, "--by {by}:\n{out}");
        assert!((k - kwh).abs() < 1e-5, "--by {by}: {k} kWh against {kwh}");
        assert!(
            (cst - cost).abs() < 1e-3,
            "--by {by}: ₹{cst} against ₹{cost}"
        );
    }
    let (code, out, err) = cli(
        &c.uri,
        &[
            "export",
            "--from",
            "2026-11-19",
            "--to",
            "2026-11-21",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let json_cost: f64 = rows.iter().map(|r| r["cost_inr"].as_f64().unwrap()).sum();
    assert!((json_cost - cost).abs() < 1e-9);
    assert!(c
        .store
        .audit(date(2026, 11, 19), date(2026, 11, 21), IST)
        .await
        .unwrap()
        .is_clean());
    let (code, _, err) = cli(
        &c.uri,
        &["audit", "--from", "2026-11-19", "--to", "2026-11-21"],
    );
    assert_eq!(code, 0, "{err}");
}

#[tokio::test]
async fn an_export_to_a_file_is_complete_or_absent() {
    let c = books("export_file").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("november.csv");
    let p = path.to_str().unwrap();
    let (code, out, err) = cli(
        &c.uri,
        &[
            "--json",
            "export",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--out",
            p,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["rows"], 12);
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(csv_sums(&written).2, 12);
    assert!(!dir.path().join("november.csv.part").exists());
    // A directory that does not exist: refused with the reason, nothing left behind.
    let bad = dir.path().join("no/such/dir/x.csv");
    let (code, _, err) = cli(
        &c.uri,
        &[
            "export",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--out",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("cannot write"), "{err}");
    // A reversed range is refused before connecting.
    let (code, _, err) = cli(
        "mongodb://127.0.0.1:1/x",
        &["export", "--from", "2026-11-02", "--to", "2026-11-01"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--from"), "{err}");
}

#[tokio::test]
async fn the_month_report_names_totals_top_rooms_and_waste() {
    let c = books("export_report").await;
    let (code, md, err) = cli(&c.uri, &["report", "--month", "2026-11"]);
    assert_eq!(code, 0, "{err}");
    let (_, json, _) = cli(&c.uri, &["--json", "report", "--month", "2026-11"]);
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    let stored: f64 = c
        .store
        .daily_aggregates(&AggregateQuery::default())
        .await
        .unwrap()
        .iter()
        .map(|a| a.cost_at_calc_time)
        .sum();
    assert!((r["total"]["cost_inr"].as_f64().unwrap() - stored).abs() < 1e-6);
    assert_eq!(r["top_rooms"][0]["classroom"], "CS-101", "{r}");
    // Board 0's AC (1.5 kW) ran 19:00-21:00 on the 21st: 3 kWh after hours, in CS-101.
    let waste = &r["waste_outside_hours"];
    assert_eq!(waste.as_array().unwrap().len(), 1, "{r}");
    assert_eq!(waste[0]["classroom"], "CS-101");
    assert!(
        (waste[0]["kwh"].as_f64().unwrap() - 3.0).abs() < 1e-9,
        "{r}"
    );
    assert!(
        md.contains("## Top rooms") && md.contains("| 1 | CS-101 |"),
        "{md}"
    );
    let (code, html, _) = cli(
        &c.uri,
        &["report", "--month", "2026-11", "--format", "html"],
    );
    assert_eq!(code, 0);
    assert!(
        html.starts_with("<!doctype html>") && html.contains("<svg"),
        "{html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
}
