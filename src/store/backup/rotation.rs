//! `backup --keep N`: each backup in a subdirectory named for its UTC start time, to the
//! millisecond (`2026-12-01T173400.123Z`), so that names sort as times do; the oldest beyond N go.
//! These are the naming rules only; [`super`] does the writing and deleting.

use chrono::{DateTime, NaiveDateTime, Utc};

const NAME_FORMAT: &str = "%Y-%m-%dT%H%M%S%.3fZ";

/// The directory name of a backup started at `at`.
pub fn name_for(at: DateTime<Utc>) -> String {
    at.format(NAME_FORMAT).to_string()
}

/// The start time a directory name stands for, if it is one of ours (exactly as [`name_for`]
/// writes it: anything else, even a time written differently, is not ours to delete).
pub fn parse_name(name: &str) -> Option<DateTime<Utc>> {
    let t = NaiveDateTime::parse_from_str(name, NAME_FORMAT)
        .ok()?
        .and_utc();
    (name_for(t) == name).then_some(t)
}

/// The name a backup is written under until it is complete and verified: hidden, and not a
/// backup's name, so that neither pruning nor a restore ever takes it for one.
pub fn partial_name(name: &str) -> String {
    format!(".{name}.partial")
}

/// Of `names` (every backup in the directory, the new one included), those to delete so that
/// the newest `keep` remain, oldest first. `keep` is at least one: the new backup always stays.
pub fn beyond(names: &[String], keep: usize) -> Vec<String> {
    let mut ours: Vec<(DateTime<Utc>, &String)> = names
        .iter()
        .filter_map(|n| parse_name(n).map(|t| (t, n)))
        .collect();
    ours.sort();
    let surplus = ours.len().saturating_sub(keep.max(1));
    ours.into_iter()
        .take(surplus)
        .map(|(_, n)| n.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn names_are_utc_times_to_the_millisecond() {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 17, 34, 0).unwrap()
            + chrono::Duration::milliseconds(7);
        assert_eq!(name_for(t), "2026-12-01T173400.007Z");
        assert_eq!(parse_name("2026-12-01T173400.007Z"), Some(t));
    }

    #[test]
    fn other_names_are_not_ours() {
        for n in [
            "2026-12-01T173400Z",
            "2026-12-01T17:34:00.000Z",
            "2026-12-01T173400.000Z.partial",
            ".2026-12-01T173400.000Z.partial",
            "2026-13-01T173400.000Z",
            "notes",
            "",
        ] {
            assert_eq!(parse_name(n), None, "{n}");
        }
    }

    #[test]
    fn the_oldest_beyond_keep_go_and_nothing_else() {
        let names: Vec<String> = [
            "2026-12-03T000000.000Z",
            "notes",
            "2026-12-01T000000.000Z",
            "2026-12-02T000000.000Z",
            ".2026-11-01T000000.000Z.partial",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            beyond(&names, 2),
            vec!["2026-12-01T000000.000Z".to_string()]
        );
        assert_eq!(beyond(&names, 3), Vec::<String>::new());
        assert_eq!(beyond(&names, 0).len(), 2, "the newest always stays");
    }

    proptest! {
        #[test]
        fn a_name_reads_back_as_its_time(ms in 0i64..4_102_444_800_000) {
            let t = Utc.timestamp_millis_opt(ms).unwrap();
            prop_assert_eq!(parse_name(&name_for(t)), Some(t));
        }

        #[test]
        fn names_sort_as_times_do(a in 0i64..4_102_444_800_000, b in 0i64..4_102_444_800_000) {
            let (ta, tb) = (Utc.timestamp_millis_opt(a).unwrap(), Utc.timestamp_millis_opt(b).unwrap());
            prop_assert_eq!(name_for(ta).cmp(&name_for(tb)), ta.cmp(&tb));
        }

        #[test]
        fn pruning_keeps_exactly_the_newest(
            times in proptest::collection::btree_set(0i64..4_102_444_800_000, 0..12),
            keep in 1usize..6,
        ) {
            let names: Vec<String> =
                times.iter().map(|&ms| name_for(Utc.timestamp_millis_opt(ms).unwrap())).collect();
            let gone = beyond(&names, keep);
            prop_assert_eq!(gone.len(), names.len().saturating_sub(keep));
            let newest_gone = gone.iter().filter_map(|n| parse_name(n)).max();
            let oldest_kept = names
                .iter()
                .filter(|n| !gone.contains(n))
                .filter_map(|n| parse_name(n))
                .min();
            if let (Some(g), Some(k)) = (newest_gone, oldest_kept) {
                prop_assert!(g < k);
            }
        }
    }
}
