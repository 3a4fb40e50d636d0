//! Reading daily and monthly rollups by range, classroom and device.

mod support;

use autovolt::domain::aggregate::DailyTotal;
use autovolt::domain::{DailyAggregate, MonthlyAggregate};
use autovolt::store::AggregateQuery;

fn daily(date: &str, classroom: &str, device: &str, kwh: f64) -> DailyAggregate {
    DailyAggregate {
        id: None,
        date_string: date.into(),
        classroom: classroom.into(),
        device_id: device.into(),
        esp32_name: format!("{classroom}-A"),
        total_kwh: kwh,
        on_time_sec: 3600.0,
        cost_at_calc_time: kwh * 7.5,
        cost_per_kwh_used: 7.5,
        switch_count: 2,
        switch_breakdown: vec![],
        quality_score: 100.0,
        created_at: None,
        updated_at: None,
    }
}

#[tokio::test]
async fn daily_and_monthly_rollups_by_range_classroom_and_device() {
    let s = support::store("aggregates").await;
    let days = s.collection::<DailyAggregate>("dailyaggregates");
    for (date, room, dev) in [
        ("2026-11-22", "CS-101", "d1"),
        ("2026-11-23", "CS-101", "d1"),
        ("2026-11-23", "CS-102", "d2"),
        ("2026-11-24", "CS-101", "d1"),
        ("2026-11-30", "CS-101", "d1"),
    ] {
        days.insert_one(daily(date, room, dev, 1.5)).await.unwrap();
    }
    let q = AggregateQuery {
        from: Some("2026-11-23".into()),
        to: Some("2026-11-24".into()),
        ..Default::default()
    };
    let got: Vec<_> = s
        .daily_aggregates(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.date_string, d.classroom))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-11-23".to_string(), "CS-101".to_string()),
            ("2026-11-23".into(), "CS-102".into()),
            ("2026-11-24".into(), "CS-101".into())
        ]
    );
    let by_room = AggregateQuery {
        classroom: Some("CS-101".into()),
        ..Default::default()
    };
    assert_eq!(s.daily_aggregates(&by_room).await.unwrap().len(), 4);
    let by_dev = AggregateQuery {
        device_id: Some("d2".into()),
        ..Default::default()
    };
    assert_eq!(s.daily_aggregates(&by_dev).await.unwrap()[0].total_kwh, 1.5);

    let months = s.collection::<MonthlyAggregate>("monthlyaggregates");
    for (m, dev) in [("2026-10", "d1"), ("2026-11", "d1"), ("2026-11", "d2")] {
        months
            .insert_one(MonthlyAggregate {
                id: None,
                month_string: m.into(),
                year: 2026,
                month: m[5..].parse().unwrap(),
                classroom: "CS-101".into(),
                device_id: dev.into(),
                esp32_name: "CS-101-A".into(),
                total_kwh: 10.0,
                on_time_sec: 36000.0,
                cost_at_calc_time: 75.0,
                daily_totals: vec![DailyTotal {
                    date_string: format!("{m}-01"),
                    total_kwh: 10.0,
                    cost: 75.0,
                }],
                created_at: None,
                updated_at: None,
            })
            .await
            .unwrap();
    }
    let nov = AggregateQuery {
        from: Some("2026-11".into()),
        to: Some("2026-11".into()),
        device_id: Some("d1".into()),
        ..Default::default()
    };
    let got = s.monthly_aggregates(&nov).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].daily_totals[0].date_string, "2026-11-01");
    assert_eq!(
        s.monthly_aggregates(&AggregateQuery::default())
            .await
            .unwrap()
            .len(),
        3
    );
}
