//! Running totals loaded from a real server: closed rows, history, open switches.

mod books_common;
mod support;

use autovolt::domain::tariff::{TariffChange, TariffTarget};
use autovolt::store::collections;
use books_common::{campus, date, ist, IST};
use bson::doc;

#[tokio::test]
async fn totals_combine_closed_rows_history_and_open_switches() {
    let c = campus("totals_load", 2, 1, 7.5).await;
    c.store
        .set_tariff(&TariffChange {
            price: 8.0,
            target: TariffTarget::Global,
            from: Some(ist(2026, 11, 1, 0, 0)),
            note: None,
            by: autovolt::domain::Actor::at_database("asha"),
        })
        .await
        .unwrap();
    // History: every day from Nov 17 to Nov 23, one hour of the 1500 W AC on board 0 (1.5 kWh).
    for day in 17..=23 {
        c.bill(0, 5, ist(2026, 11, day, 10, 0), ist(2026, 11, day, 11, 0))
            .await;
    }
    // Only the first days are aggregated; the rest come from the ledger.
    c.aggregate(date(2026, 11, 17), date(2026, 11, 20)).await;
    // Today: a closed hour of a 40 W light on board 1.
    c.bill(1, 0, ist(2026, 11, 24, 8, 0), ist(2026, 11, 24, 9, 0))
        .await;
    // Board 0's fan (75 W) on since 10:00 today.
    let d0 = c.boards[0].1.id.unwrap();
    c.store
        .collection::<bson::Document>(collections::DEVICES)
        .update_one(
            doc! {"_id": d0, "switches.2.switchId": "sw3"},
            doc! {"$set": {
                "switches.2.state": true,
                "switches.2.lastStateChange": bson::DateTime::from_chrono(ist(2026, 11, 24, 10, 0)),
            }},
        )
        .await
        .unwrap();

    let now = ist(2026, 11, 24, 12, 0);
    let totals = c.store.running_totals(now, IST).await.unwrap();
    let campus = totals.campus();
    // 0.04 kWh closed + 2 h × 75 W open.
    assert!((campus.today.kwh - 0.19).abs() < 1e-9, "{campus:?}");
    assert!((campus.today.cost - 0.19 * 8.0).abs() < 1e-9);
    assert_eq!(campus.power_w, 75.0);
    let fan = totals.switch(&c.device_id(0), "sw3").unwrap();
    assert!((fan.today.kwh - 0.15).abs() < 1e-9);
    let room = totals.classroom("CS-102").unwrap();
    assert!((room.today.kwh - 0.04).abs() < 1e-9);
    // Month to date: 7 days × 1.5 kWh + today.
    assert!((campus.month_to_date.kwh - (10.5 + 0.19)).abs() < 1e-9);
    // Projection: the trailing 7 days average 1.5 kWh; 6.5 days left at noon on the 24th.
    let projection = campus.month_projection.expect("seven full days of data");
    assert!((projection.kwh - (10.69 + 1.5 * 6.5)).abs() < 1e-9);

    // A tick later: more energy, no database.
    let mut totals = totals;
    totals.tick(now + chrono::Duration::hours(1));
    assert!((totals.campus().today.kwh - 0.265).abs() < 1e-9);
}
