//! Display formatting: rounded only here (kWh to 3 decimals where exact, ₹ to 2), never in the books.

use crate::domain::Instant;
use chrono::TimeZone;

/// `0 W`, `75 W`, `3.21 kW`.
pub fn watts(w: f64) -> String {
    if w.abs() >= 1000.0 {
        format!("{:.2} kW", w / 1000.0)
    } else {
        format!("{:.0} W", w)
    }
}

/// Energy in kWh with two decimals (the tables' precision).
pub fn kwh(wh: f64) -> String {
    format!("{:.2}", wh / 1000.0)
}

/// `1,234,567.89`: money with two decimals and thousands separators.
pub fn money(v: f64) -> String {
    let neg = v < 0.0;
    let cents = (v.abs() * 100.0).round() as u128;
    let (whole, frac) = (cents / 100, cents % 100);
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}{out}.{frac:02}", if neg { "-" } else { "" })
}

/// Money without decimals for headline figures (`14,880`).
pub fn money_whole(v: f64) -> String {
    let s = money(v.round());
    s.trim_end_matches(".00").to_string()
}

/// `45 s`, `15 min`, `2.5 h`: a period for people.
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 90.0 * 60.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// `3s`, `4m`, `2h`, `3d`: the age of `t` at `now`.
pub fn age(now: Instant, t: Instant) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `HH:MM` in the campus time zone.
pub fn hhmm(t: Instant, tz: chrono_tz::Tz) -> String {
    tz.from_utc_datetime(&t.naive_utc())
        .format("%H:%M")
        .to_string()
}

/// `Tue 24 Nov 14:32 IST`.
pub fn clock(t: Instant, tz: chrono_tz::Tz) -> String {
    tz.from_utc_datetime(&t.naive_utc())
        .format("%a %d %b %H:%M %Z")
        .to_string()
}

/// `24 Nov 14:32` in the campus time zone.
pub fn date_time(t: Instant, tz: chrono_tz::Tz) -> String {
    tz.from_utc_datetime(&t.naive_utc())
        .format("%d %b %Y %H:%M")
        .to_string()
}

/// Cuts `s` to `width` characters, marking the cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('~');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_round_only_for_display() {
        assert_eq!(watts(40.0), "40 W");
        assert_eq!(watts(3210.0), "3.21 kW");
        assert_eq!(watts(0.0), "0 W");
        assert_eq!(kwh(14_820.0), "14.82");
        assert_eq!(money(1_234_567.891), "1,234,567.89");
        assert_eq!(money(45.75), "45.75");
        assert_eq!(money(0.005), "0.01");
        assert_eq!(money(-3.5), "-3.50");
        assert_eq!(money_whole(14_880.4), "14,880");
        assert_eq!(money_whole(999.6), "1,000");
    }

    #[test]
    fn ages_and_cuts() {
        let t = chrono::DateTime::from_timestamp(1_000_000, 0).unwrap();
        assert_eq!(age(t + chrono::Duration::seconds(3), t), "3s");
        assert_eq!(age(t + chrono::Duration::seconds(250), t), "4m");
        assert_eq!(age(t + chrono::Duration::hours(2), t), "2h");
        assert_eq!(age(t, t + chrono::Duration::seconds(5)), "0s");
        assert_eq!(fit("Front lights", 6), "Front~");
        assert_eq!(fit("AC", 6), "AC");
    }
}
