//! The database stopped for ten seconds in the middle of the stream: the collector stops
//! acknowledging, retries, says so in its status record, and afterwards nothing is lost or doubled.

mod live;
mod support;

use autovolt::clock::ManualClock;
use autovolt::store::Store;
use chrono::{Duration, TimeZone};
use live::*;
use std::sync::Arc;

const N: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_holds_messages_at_the_broker_and_loses_nothing() {
    let (mut ferret, base) = support::own_ferretdb();
    let uri = support::with_database(&base, "outage");
    let store = Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .expect("database");
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let boot = chrono_tz::Asia::Kolkata
        .with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let clock = ManualClock::new(boot);
    let mut c = start(&store, &url, options("outage"), Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "outage-pub").await;
    anchor_boards(&p).await;
    c.wait_committed(2).await;
    clock.set(boot + Duration::hours(1));
    let steps: Vec<_> = cycles(MAC_A, SECRET_A, N)
        .into_iter()
        .zip(cycles(MAC_B, SECRET_B, N))
        .flat_map(|(a, b)| [a, b])
        .collect();
    let half = steps.len() / 2;
    let mut sent = 2;
    for step in &steps[..half] {
        for (topic, payload) in step {
            p.publish(topic, payload).await;
        }
        sent += step.len();
    }
    c.wait_committed(sent).await;

    ferret.stop();
    for step in &steps[half..] {
        for (topic, payload) in step {
            p.publish(topic, payload).await;
        }
        sent += step.len();
    }
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    c.drain();
    assert!(
        c.committed < sent,
        "nothing can be committed while the database is down"
    );
    ferret.restart().expect("FerretDB restart");

    c.wait_committed(sent).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let statuses = store.collector_statuses().await.unwrap();
    c.stop().await;
    assert_cycles_counted_once(&store, N, 0.01).await;
    let status = statuses
        .iter()
        .find(|s| s.client_id == "outage")
        .expect("status record");
    assert!(status.database_outages >= 1, "{status:?}");
    assert!(status.database_down_since.is_none(), "{status:?}");
    assert!(status.last_database_error.is_some());
}
