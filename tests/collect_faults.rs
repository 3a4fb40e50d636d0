//! A batch is all or nothing for what a retry reads: a failure injected before each write of a batch,
//! then the retry, leaves the same books as a run without failure; and bursts with equal, reordered
//! and repeated board timestamps leave every switch's state, last activity entry and open interval
//! in agreement.

mod live;
mod support;

use autovolt::collect::{Faults, Incoming, Processor, Step};
use autovolt::domain::audit::{action_turns_on, check_switch, SwitchBooks};
use autovolt::domain::{Instant, Mac};
use autovolt::store::{Store, StoreError};
use chrono::{Duration, TimeZone};
use futures::TryStreamExt;
use live::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const IST: chrono_tz::Tz = chrono_tz::Asia::Kolkata;

fn boot() -> Instant {
    IST.with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// Fails the `n`-th write of the run (counting from 0), once.
#[derive(Debug)]
struct FailAt {
    n: usize,
    seen: AtomicUsize,
}

impl Faults for FailAt {
    fn before(&self, step: Step, _board: Option<Mac>) -> Result<(), StoreError> {
        if self.seen.fetch_add(1, Ordering::SeqCst) == self.n {
            return Err(StoreError::Unreachable {
                address: format!("injected before {step:?}"),
                timeout: std::time::Duration::from_secs(0),
                reason: "injected".into(),
            });
        }
        Ok(())
    }
}

fn msg(topic: &str, payload: Vec<u8>, received: Instant) -> Incoming {
    Incoming {
        topic: topic.into(),
        payload,
        received,
        redelivered: false,
    }
}

fn manual(mac: &str, secret: &str, gpio: i32, state: bool, ts: u32) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "mac": mac, "secret": secret, "type": "manual_switch", "gpio": gpio, "state": state,
        "physicalPin": 26, "timestamp": ts,
    }))
    .unwrap()
}

/// Two batches: the boards' first contact, then a burst with equal board timestamps, both boards,
/// a snapshot, an unregistered board and a malformed message.
fn batches() -> Vec<Vec<Incoming>> {
    let t = boot();
    let later = t + Duration::seconds(60);
    vec![
        vec![
            msg("esp32/telemetry", heartbeat(MAC_A, UP), t),
            msg("esp32/telemetry", heartbeat(MAC_B, UP), t),
        ],
        vec![
            msg(
                "esp32/telemetry",
                switch_event(MAC_A, SECRET_A, 16, true, "manual", up(10_000)),
                later,
            ),
            msg(
                "esp32/telemetry",
                manual(MAC_A, SECRET_A, 16, false, up(10_000)),
                later,
            ),
            msg(
                "esp32/telemetry",
                manual(MAC_A, SECRET_A, 16, true, up(10_000)),
                later,
            ),
            msg(
                "esp32/telemetry",
                switch_event(MAC_A, SECRET_A, 17, true, "motion", up(20_000)),
                later,
            ),
            msg(
                "esp32/telemetry",
                switch_event(MAC_B, SECRET_B, 16, true, "manual", up(15_000)),
                later,
            ),
            msg(
                "esp32/telemetry",
                switch_event(MAC_B, SECRET_B, 16, false, "manual", up(45_000)),
                later,
            ),
            msg("esp32/state", snapshot(MAC_A, SECRET_A, &[16, 17]), later),
            msg(
                "esp32/telemetry",
                switch_event(MAC_A, SECRET_A, 17, false, "motion", up(50_000)),
                later,
            ),
            msg(
                "esp32/telemetry",
                switch_event("DE:AD:BE:EF:00:01", "x", 16, true, "manual", 5),
                later,
            ),
            msg("esp32/state", b"{\"mac\":".to_vec(), later),
        ],
    ]
}

/// Everything of the books that does not depend on generated ids, in a stable order.
async fn books(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    let names: std::collections::HashMap<String, String> = store
        .devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.ledger_id().unwrap(), d.name.clone()))
        .collect();
    for d in store.devices().await.unwrap() {
        out.push(format!("device {} {:?}", d.name, d.status));
        for s in &d.switches {
            out.push(format!(
                "  {} {} {:?}",
                s.switch_id, s.state, s.last_state_change
            ));
        }
    }
    for r in ledger(store).await {
        out.push(format!(
            "row {} {} {} {} {:.6} {:.6}",
            r.esp32_name,
            r.switch_id,
            r.start_ts,
            r.end_ts,
            r.delta_wh,
            r.cost()
        ));
    }
    let mut acts: Vec<String> = store
        .recent_activity(10_000, None, &autovolt::store::ActivityFilter::default())
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|a| {
            let device = a
                .device_id
                .map(|d| names.get(&d.to_hex()).cloned().unwrap_or_default())
                .unwrap_or_default();
            format!(
                "activity {} {device} {:?} {}",
                a.timestamp, a.switch_id, a.action
            )
        })
        .collect();
    acts.sort();
    out.extend(acts);
    let count = |c: &'static str| async move {
        store
            .collection::<bson::Document>(c)
            .count_documents(bson::doc! {})
            .await
            .unwrap()
    };
    out.push(format!("telemetry {}", count("telemetryevents").await));
    out.push(format!("dead letters {}", count("deadletters").await));
    for u in store.unregistered_devices().await.unwrap() {
        out.push(format!("unregistered {} {}", u.mac, u.count));
    }
    out
}

/// Runs the batches, retrying each failed one as the collector does; whether a fault fired.
async fn run(store: &Store, faults: Option<Arc<FailAt>>) -> bool {
    let mut p = Processor::new(store.clone(), IST);
    if let Some(f) = &faults {
        p = p.with_faults(f.clone());
    }
    let mut failed = false;
    for batch in batches() {
        if p.process(&batch).await.is_err() {
            failed = true;
            p.process(&batch).await.expect("the retry commits");
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_before_any_write_of_a_batch_leaves_nothing_a_retry_takes_as_done() {
    let reference = support::store("faults-ref").await;
    campus(&reference).await;
    assert!(!run(&reference, None).await);
    let expected = books(&reference).await;
    // The scenario bills, logs and records what it should.
    assert!(expected.iter().any(|l| l.starts_with("row CS-101-B sw1")));
    assert!(expected.iter().any(|l| l.contains("manual_off")));
    assert!(expected
        .iter()
        .any(|l| l == "unregistered DE:AD:BE:EF:00:01 1"));
    assert!(expected.iter().any(|l| l == "dead letters 1"));
    assert_invariant(&reference).await;
    // The rows are of a day that has ended: the collector noted it for aggregating again.
    let day = boot().with_timezone(&IST).date_naive();
    let late = reference
        .collection::<bson::Document>("aggregationruns")
        .find_one(bson::doc! {"_id": "late:days"})
        .await
        .unwrap()
        .expect("late days noted");
    assert!(
        late.get_document("days")
            .unwrap()
            .contains_key(day.to_string()),
        "{late:?}"
    );
    // The audit checks the same invariant, and finds a switch flipped behind the log's back.
    let report = reference.audit(day, day, IST).await.unwrap();
    assert!(report.switches_checked >= 3, "{report:?}");
    assert!(report.is_clean(), "{:?}", report.findings);
    let a = reference
        .device_by_mac(Mac::parse(MAC_A).unwrap())
        .await
        .unwrap()
        .unwrap();
    reference
        .collection::<bson::Document>("devices")
        .update_one(
            bson::doc! {"_id": a.id.unwrap()},
            bson::doc! {"$set": {"switches.0.state": false}},
        )
        .await
        .unwrap();
    let report = reference.audit(day, day, IST).await.unwrap();
    assert!(
        report.findings.iter().any(|f| matches!(
            f,
            autovolt::domain::audit::Finding::SwitchDisagrees { switch_id, .. } if switch_id == "sw1"
        )),
        "{:?}",
        report.findings
    );
    let mut n = 0;
    loop {
        let store = support::store(&format!("faults-{n}")).await;
        campus(&store).await;
        let fault = Arc::new(FailAt {
            n,
            seen: AtomicUsize::new(0),
        });
        if !run(&store, Some(fault.clone())).await {
            // Past the last write: every one has been failed once.
            assert!(n > 10, "only {n} writes in the scenario");
            break;
        }
        let got = books(&store).await;
        assert_eq!(got, expected, "after a failure before write {n}");
        assert_invariant(&store).await;
        n += 1;
    }
}

/// Every switch: its activity entries alternate on/off from off, a millisecond or more apart; the
/// last is its state at its `lastStateChange`; its ledger rows are exactly the closed on-intervals;
/// and the audit's check agrees.
async fn assert_invariant(store: &Store) {
    let acts: Vec<bson::Document> = store
        .collection::<bson::Document>("activitylogs")
        .find(bson::doc! {"context.reportedBy": {"$exists": true}})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let rows = ledger(store).await;
    for d in store.devices().await.unwrap() {
        let id = d.id.unwrap();
        for sw in &d.switches {
            let mut mine: Vec<(Instant, String)> = acts
                .iter()
                .filter(|a| {
                    a.get_object_id("deviceId").ok() == Some(id)
                        && a.get_str("switchId").ok() == Some(sw.switch_id.as_str())
                })
                .map(|a| {
                    (
                        a.get_datetime("timestamp").unwrap().to_chrono(),
                        a.get_str("action").unwrap().to_string(),
                    )
                })
                .collect();
            mine.sort();
            let mut on_since = None;
            let mut intervals = Vec::new();
            for w in mine.windows(2) {
                assert!(w[0].0 < w[1].0, "{} {}: {mine:?}", d.name, sw.switch_id);
            }
            for (t, a) in &mine {
                match (action_turns_on(a), on_since) {
                    (true, None) => on_since = Some(*t),
                    (false, Some(s)) => {
                        intervals.push((s, *t));
                        on_since = None;
                    }
                    _ => panic!(
                        "{} {}: entries do not alternate: {mine:?}",
                        d.name, sw.switch_id
                    ),
                }
            }
            assert_eq!(
                sw.state,
                on_since.is_some(),
                "{} {}: {mine:?}",
                d.name,
                sw.switch_id
            );
            assert_eq!(sw.last_state_change, mine.last().map(|(t, _)| *t));
            // The rows of the switch, merged where they touch, are the closed intervals.
            let mut billed: Vec<(Instant, Instant)> = Vec::new();
            for r in rows
                .iter()
                .filter(|r| r.device_id == id.to_hex() && r.switch_id == sw.switch_id)
            {
                match billed.last_mut() {
                    Some(last) if last.1 == r.start_ts => last.1 = r.end_ts,
                    _ => billed.push((r.start_ts, r.end_ts)),
                }
            }
            assert_eq!(billed, intervals, "{} {}", d.name, sw.switch_id);
            let books = SwitchBooks {
                device_id: id.to_hex(),
                switch_id: sw.switch_id.clone(),
                state: sw.state,
                last_state_change: sw.last_state_change,
                last_activity: mine
                    .last()
                    .map(|(t, a)| vec![(a.clone(), *t)])
                    .unwrap_or_default(),
                offline_at: None,
                rows_end: billed.last().map(|b| b.1),
            };
            assert_eq!(check_switch(&books, IST), None);
        }
    }
}

/// One board event of a generated burst.
#[derive(Debug, Clone)]
struct Ev {
    pin: usize,
    state: bool,
    /// Board time in seconds: few values, so many are equal and out of order.
    ts: u32,
    manual: bool,
    /// Delivered again later in the burst (a QoS 1 redelivery).
    again: bool,
}

fn ev() -> impl Strategy<Value = Ev> {
    (
        0usize..2,
        any::<bool>(),
        0u32..4,
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(pin, state, ts, manual, again)| Ev {
            pin,
            state,
            ts,
            manual,
            again,
        })
}

fn burst() -> impl Strategy<Value = (Vec<Ev>, Vec<usize>)> {
    (
        prop::collection::vec(ev(), 1..24),
        prop::collection::vec(1usize..6, 1..8),
    )
}

proptest! {
    // Each case is a database's worth of writes: few by default, PROPTEST_CASES for more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(16),
        ..ProptestConfig::default()
    })]

    #[test]
    fn bursts_with_equal_reordered_and_repeated_timestamps_keep_switches_billable(
        (events, chunks) in burst()
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let store = support::store("burst").await;
            campus(&store).await;
            let mut p = Processor::new(store.clone(), IST);
            p.process(&[msg("esp32/telemetry", heartbeat(MAC_A, UP), boot())])
                .await
                .unwrap();
            // The burst arrives at once, a minute after the board (up a day) was heard.
            let at = boot() + Duration::seconds(60);
            let mut msgs = Vec::new();
            let mut again = Vec::new();
            for e in &events {
                let pin = PINS[e.pin];
                let payload = if e.manual {
                    manual(MAC_A, SECRET_A, pin, e.state, up(e.ts * 1000))
                } else {
                    switch_event(MAC_A, SECRET_A, pin, e.state, "manual", up(e.ts * 1000))
                };
                if e.again {
                    again.push(payload.clone());
                }
                msgs.push(msg("esp32/telemetry", payload, at));
            }
            msgs.extend(again.into_iter().map(|payload| Incoming {
                redelivered: true,
                ..msg("esp32/telemetry", payload, at)
            }));
            let mut rest = &msgs[..];
            let mut sizes = chunks.iter().cycle();
            while !rest.is_empty() {
                let n = (*sizes.next().unwrap()).min(rest.len());
                p.process(&rest[..n]).await.unwrap();
                rest = &rest[n..];
            }
            assert_invariant(&store).await;
        });
    }
}
