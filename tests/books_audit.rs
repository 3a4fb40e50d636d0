//! The audit against a real server, through the library and through the binary's exit codes.

mod books_common;
mod support;

use autovolt::domain::audit::Finding;
use autovolt::store::collections;
use books_common::{campus, date, ist, Campus, IST};
use bson::doc;

async fn books(label: &str) -> Campus {
    let c = campus(label, 1, 2, 7.5).await;
    for board in 0..2 {
        for day in 23..=24 {
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
                ist(2026, 11, day, 12, 45),
            )
            .await;
        }
    }
    c.aggregate(date(2026, 11, 23), date(2026, 11, 24)).await;
    c
}

/// Runs `autovolt audit ARGS` against the campus's database: (exit code, stdout).
fn audit_cli(uri: &str, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_autovolt"))
        .arg("audit")
        .args(args)
        .env("AUTOVOLT_MONGODB_URI", uri)
        .env_remove("AUTOVOLT_CONFIG")
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("autovolt-audit-no-config"),
        )
        .env_remove("AUTOVOLT_TIMEZONE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[tokio::test]
async fn clean_books_pass() {
    let c = books("audit_clean").await;
    let report = c
        .store
        .audit(date(2026, 11, 23), date(2026, 11, 24), IST)
        .await
        .unwrap();
    assert!(report.is_clean(), "{:#?}", report.findings);
    assert_eq!(report.rows_checked, 8);
    assert_eq!(report.daily_checked, 4);
    assert_eq!(report.monthly_checked, 2);
    assert!(report.days_not_aggregated.is_empty());
}

#[tokio::test]
async fn a_tampered_row_is_caught() {
    let c = books("audit_tampered").await;
    let ledger = c.store.collection::<bson::Document>(collections::LEDGER);
    let victim = ledger
        .find_one(doc! {"device_id": c.device_id(0), "switch_id": "sw6"})
        .sort(doc! {"start_ts": 1})
        .await
        .unwrap()
        .unwrap();
    let id = victim.get_object_id("_id").unwrap();
    // Someone halves the energy of a row and leaves the cost.
    let wh = victim.get_f64("delta_wh").unwrap();
    ledger
        .update_one(doc! {"_id": id}, doc! {"$set": {"delta_wh": wh / 2.0}})
        .await
        .unwrap();
    let report = c
        .store
        .audit(date(2026, 11, 23), date(2026, 11, 24), IST)
        .await
        .unwrap();
    let invalid: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| matches!(f, Finding::InvalidRow { row_id, .. } if *row_id == id.to_hex()))
        .collect();
    assert_eq!(invalid.len(), 1, "{:#?}", report.findings);
    // The day's stored aggregate no longer matches its ledger either.
    assert!(report.findings.iter().any(|f| matches!(
        f,
        Finding::StaleDaily { date_string, device_id, .. } if date_string == "2026-11-23" && *device_id == c.device_id(0)
    )));

    let (code, out) = audit_cli(&c.uri, &["--from", "2026-11-23", "--to", "2026-11-24"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&id.to_hex()), "{out}");
}

#[tokio::test]
async fn a_stale_aggregate_and_an_overlap_are_caught() {
    let c = books("audit_stale").await;
    c.store
        .collection::<bson::Document>(collections::DAILY)
        .update_one(
            doc! {"device_id": c.device_id(1), "date_string": "2026-11-24"},
            doc! {"$set": {"total_kwh": 99.0}},
        )
        .await
        .unwrap();
    // A second row for a switch over time already billed (written around the unique key).
    let rows = c
        .bill(0, 2, ist(2026, 11, 24, 10, 30), ist(2026, 11, 24, 11, 30))
        .await;
    assert_eq!(rows.len(), 1);

    let (code, out) = audit_cli(&c.uri, &["--date", "2026-11-24", "--json"]);
    assert_eq!(code, 1, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"overlap"), "{kinds:?}");
    assert!(kinds.contains(&"stale_monthly"), "{kinds:?}");
    let stale: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "stale_daily")
        .collect();
    // Device 1 was edited; device 0 gained a row after aggregation.
    assert_eq!(stale.len(), 2, "{stale:?}");
    assert!(stale
        .iter()
        .any(|f| f["device_id"] == c.device_id(1).as_str() && f["stored_kwh"] == 99.0));

    // Re-aggregating fixes the aggregates; the overlap stays until the ledger is corrected.
    c.aggregate(date(2026, 11, 24), date(2026, 11, 24)).await;
    let report = c
        .store
        .audit(date(2026, 11, 24), date(2026, 11, 24), IST)
        .await
        .unwrap();
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    assert!(matches!(report.findings[0], Finding::Overlap { .. }));
}

#[tokio::test]
async fn clean_books_exit_zero_and_an_absent_server_exits_two() {
    let c = books("audit_exit").await;
    let (code, out) = audit_cli(&c.uri, &["--date", "2026-11-23"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("everything agrees"), "{out}");

    let port = autovolt::servers::free_port().unwrap();
    let (code, _) = audit_cli(
        &format!("mongodb://127.0.0.1:{port}/x?serverSelectionTimeoutMS=300"),
        &["--date", "2026-11-23"],
    );
    assert_eq!(code, 2);
}
