//! The activity view: the newest entries first, filtered by any of their words.

use crate::domain::ActivityLog;
use crate::tui::model::Campus;

/// The entries shown, newest first: those whose action, classroom, switch, user or trigger holds
/// `filter` (any case).
pub fn visible<'a>(campus: &'a Campus, filter: &str) -> Vec<&'a ActivityLog> {
    let f = filter.to_lowercase();
    campus
        .activity
        .iter()
        .rev()
        .filter(|a| {
            f.is_empty()
                || [
                    Some(a.action.as_str()),
                    a.classroom.as_deref(),
                    a.switch_name.as_deref(),
                    a.user_name.as_deref(),
                    Some(a.triggered_by.as_str()),
                ]
                .iter()
                .flatten()
                .any(|t| t.to_lowercase().contains(&f))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::sample;

    #[test]
    fn newest_first_and_filtered_by_any_word() {
        let now = sample::now();
        let mut c = Campus::new(chrono_tz::Asia::Kolkata, now);
        let (snap, books) = sample::campus(2, 1, 2);
        c.load(snap, now);
        for change in books {
            if let crate::tui::event::DbChange::RecentActivity(recent) = change {
                c.set_activity(recent);
            }
        }
        let all = visible(&c, "");
        assert!(!all.is_empty());
        assert_eq!(all.len(), c.activity.len());
        assert!(std::ptr::eq(all[0], c.activity.iter().last().unwrap()));
        let word = all[0].action.to_uppercase();
        assert!(visible(&c, &word)
            .iter()
            .all(|a| a.action.to_uppercase().contains(&word)
                || a.classroom
                    .as_deref()
                    .is_some_and(|r| r.to_uppercase().contains(&word))
                || a.switch_name
                    .as_deref()
                    .is_some_and(|r| r.to_uppercase().contains(&word))
                || a.user_name
                    .as_deref()
                    .is_some_and(|r| r.to_uppercase().contains(&word))
                || a.triggered_by.as_str().to_uppercase().contains(&word)));
        assert!(visible(&c, "nothing matches this").is_empty());
    }
}
