//! Figures for people, the same on the command line and in the dashboard: rounded only here (kWh
//! to 3 decimals where exact, ₹ to 2), never in the books.

use crate::domain::Instant;
use chrono::TimeZone;

/// `0 W`, `75 W`, `3.21 kW`.
pub fn watts(w: f64) -> String {
    // An empty sum is -0.0: no power is "0 W", not "-0 W".
    let w = if w == 0.0 { 0.0 } else { w };
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
    format!("{}{}.{frac:02}", if neg { "-" } else { "" }, grouped(whole))
}

/// `1,204`: a whole number with thousands separated by commas.
pub fn grouped(n: impl Into<u128>) -> String {
    let digits = n.into().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `512 B`, `36.0 KiB`, `1.5 GiB`, or `unknown`.
pub fn size(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "unknown".into(),
        |b| bytesize::ByteSize::b(b).to_string(),
    )
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

/// `3s`, `4m`, `2h`, `3d`: the age of `t` at `now` in whole seconds, by [`seconds_ago`].
pub fn age(now: Instant, t: Instant) -> String {
    seconds_ago((now - t).num_seconds() as f64)
}

/// `0.4s`, `3s`, `4m`, `2h`, `3d`: an age or a lag of `secs` seconds, in its largest whole unit
/// (tenths below a second, where a lag lives); nothing negative.
pub fn seconds_ago(secs: f64) -> String {
    let s = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
    if s > 0.0 && s < 1.0 {
        return format!("{s:.1}s");
    }
    let whole = s as u64;
    match whole {
        0..=59 => format!("{whole}s"),
        60..=3599 => format!("{}m", whole / 60),
        3600..=86_399 => format!("{}h", whole / 3600),
        _ => format!("{}d", whole / 86_400),
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
        assert_eq!(
            watts(std::iter::empty::<f64>().sum()),
            "0 W",
            "an empty campus"
        );
        assert_eq!(kwh(14_820.0), "14.82");
        assert_eq!(money(1_234_567.891), "1,234,567.89");
        assert_eq!(money(45.75), "45.75");
        assert_eq!(money(0.005), "0.01");
        assert_eq!(money(-3.5), "-3.50");
        assert_eq!(money_whole(14_880.4), "14,880");
        assert_eq!(money_whole(999.6), "1,000");
        assert_eq!(grouped(12u64), "12");
        assert_eq!(grouped(1_204u64), "1,204");
        assert_eq!(grouped(1_000_000u64), "1,000,000");
        assert_eq!(size(None), "unknown");
        assert_eq!(size(Some(512)), "512 B");
        assert_eq!(size(Some(2048)), "2.0 KiB");
        assert_eq!(size(Some(3 << 30)), "3.0 GiB");
    }

    #[test]
    fn ages_and_cuts() {
        let t = chrono::DateTime::from_timestamp(1_000_000, 0).unwrap();
        assert_eq!(age(t + chrono::Duration::seconds(3), t), "3s");
        assert_eq!(age(t + chrono::Duration::seconds(250), t), "4m");
        assert_eq!(age(t + chrono::Duration::hours(2), t), "2h");
        assert_eq!(age(t, t + chrono::Duration::seconds(5)), "0s");
        assert_eq!(age(t + chrono::Duration::milliseconds(400), t), "0s");
        assert_eq!(seconds_ago(0.4), "0.4s");
        assert_eq!(seconds_ago(0.0), "0s");
        assert_eq!(seconds_ago(-3.0), "0s");
        assert_eq!(seconds_ago(f64::NAN), "0s");
        assert_eq!(seconds_ago(59.9), "59s");
        assert_eq!(seconds_ago(240.0), "4m");
        assert_eq!(seconds_ago(7200.0), "2h");
        assert_eq!(seconds_ago(3.0 * 86_400.0), "3d");
        assert_eq!(fit("Front lights", 6), "Front~");
        assert_eq!(fit("AC", 6), "AC");
    }
}
