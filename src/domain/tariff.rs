//! Tariff history (`costversions`) and the one function that answers "what did a kWh cost then?".

use super::{dates, Id, Instant};
use serde::{Deserialize, Serialize};

crate::string_enum! {
    #[derive(Default)]
    pub enum TariffScope {
        #[default]
        Global => "global",
        Classroom => "classroom",
        Device => "device",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedBy {
    #[serde(
        default,
        deserialize_with = "super::lenient::optional_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<String>,
    #[serde(default)]
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostVersion {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    /// ₹/kWh.
    pub cost_per_kwh: f64,
    #[serde(with = "dates::required")]
    pub effective_from: Instant,
    /// `None` while this version is current.
    #[serde(with = "dates::optional", default)]
    pub effective_until: Option<Instant>,
    #[serde(default)]
    pub scope: TariffScope,
    /// The classroom's name, for `classroom` scope.
    #[serde(
        default,
        deserialize_with = "super::lenient::optional_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub classroom: Option<String>,
    /// The device's `_id` in hex, for `device` scope.
    #[serde(
        default,
        deserialize_with = "super::lenient::optional_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<CreatedBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}

fn yes() -> bool {
    true
}

impl CostVersion {
    /// Whether this version is in force at `t`: from `effective_from` (inclusive) to
    /// `effective_until` (exclusive). A version switched off without an end is never in force.
    pub fn in_force_at(&self, t: Instant) -> bool {
        if t < self.effective_from {
            return false;
        }
        match self.effective_until {
            Some(until) => t < until,
            None => self.is_active,
        }
    }

    /// Whether this version applies to a device (its ledger id) in a classroom (its name).
    pub fn applies_to(&self, device_id: &str, classroom: &str) -> bool {
        match self.scope {
            TariffScope::Global => true,
            TariffScope::Classroom => self.classroom.as_deref() == Some(classroom),
            TariffScope::Device => self.device_id.as_deref() == Some(device_id),
            TariffScope::Other(_) => false,
        }
    }

    fn specificity(&self) -> u8 {
        match self.scope {
            TariffScope::Device => 3,
            TariffScope::Classroom => 2,
            TariffScope::Global => 1,
            TariffScope::Other(_) => 0,
        }
    }
}

/// What a tariff applies to: the whole campus, one classroom (its name) or one device (its `_id` in
/// hex, as the ledger stores it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TariffTarget {
    Global,
    Classroom(String),
    Device(String),
}

impl TariffTarget {
    pub fn scope(&self) -> TariffScope {
        match self {
            TariffTarget::Global => TariffScope::Global,
            TariffTarget::Classroom(_) => TariffScope::Classroom,
            TariffTarget::Device(_) => TariffScope::Device,
        }
    }

    /// Whether a stored version belongs to exactly this target.
    pub fn matches(&self, v: &CostVersion) -> bool {
        match self {
            TariffTarget::Global => v.scope == TariffScope::Global,
            TariffTarget::Classroom(name) => {
                v.scope == TariffScope::Classroom && v.classroom.as_deref() == Some(name)
            }
            TariffTarget::Device(id) => {
                v.scope == TariffScope::Device && v.device_id.as_deref() == Some(id)
            }
        }
    }

    /// The target of a stored version (`None` for a scope this version does not know).
    pub fn of(v: &CostVersion) -> Option<TariffTarget> {
        match v.scope {
            TariffScope::Global => Some(TariffTarget::Global),
            TariffScope::Classroom => v.classroom.clone().map(TariffTarget::Classroom),
            TariffScope::Device => v.device_id.clone().map(TariffTarget::Device),
            TariffScope::Other(_) => None,
        }
    }
}

impl std::fmt::Display for TariffTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TariffTarget::Global => f.write_str("global"),
            TariffTarget::Classroom(name) => write!(f, "classroom:{name}"),
            TariffTarget::Device(id) => write!(f, "device:{id}"),
        }
    }
}

/// Where a rate came from.
#[derive(Debug, Clone, PartialEq)]
pub enum RateSource {
    /// A cost version (its scope).
    Version(TariffScope),
    /// No cost version was in force: the power settings' `electricityPrice`.
    PowerSettings,
}

/// A rate in force at some instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub cost_per_kwh: f64,
    pub source: RateSource,
}

/// Every cost version that may matter, plus the power settings' price as the last resort.
#[derive(Debug, Clone, Default)]
pub struct TariffBook {
    pub versions: Vec<CostVersion>,
    pub fallback_price: f64,
}

impl TariffBook {
    pub fn new(versions: Vec<CostVersion>, fallback_price: f64) -> Self {
        TariffBook {
            versions,
            fallback_price,
        }
    }

    /// The rate of instant `t` for a device in a classroom: the cost version in force, most specific
    /// scope first (device, classroom, global), the newest start winning a tie; else the power settings.
    pub fn rate_at(&self, t: Instant, device_id: &str, classroom: &str) -> Rate {
        self.version_at(t, device_id, classroom)
            .map(|v| Rate {
                cost_per_kwh: v.cost_per_kwh,
                source: RateSource::Version(v.scope.clone()),
            })
            .unwrap_or(Rate {
                cost_per_kwh: self.fallback_price,
                source: RateSource::PowerSettings,
            })
    }

    /// The cost version in force at `t` for a device in a classroom, most specific scope first, the
    /// newest start winning a tie; `None` when only the power settings' price applies.
    pub fn version_at(&self, t: Instant, device_id: &str, classroom: &str) -> Option<&CostVersion> {
        self.versions
            .iter()
            .filter(|v| v.in_force_at(t) && v.applies_to(device_id, classroom))
            .max_by_key(|v| (v.specificity(), v.effective_from))
    }

    /// The instants strictly inside `(start, end)` where the rate for this device may change, sorted
    /// and without repeats.
    pub fn changes_within(
        &self,
        start: Instant,
        end: Instant,
        device_id: &str,
        classroom: &str,
    ) -> Vec<Instant> {
        let mut cuts: Vec<Instant> = self
            .versions
            .iter()
            .filter(|v| v.applies_to(device_id, classroom))
            .flat_map(|v| [Some(v.effective_from), v.effective_until])
            .flatten()
            .filter(|&t| t > start && t < end)
            .collect();
        cuts.sort();
        cuts.dedup();
        cuts
    }
}

/// A tariff edit, from the command line or the dashboard. The device of a device-scoped change may
/// be named by its MAC or its `_id` in hex; the store resolves it.
#[derive(Debug, Clone, PartialEq)]
pub struct TariffChange {
    /// ₹/kWh.
    pub price: f64,
    pub target: TariffTarget,
    /// When the new price starts (default: now).
    pub from: Option<Instant>,
    pub note: Option<String>,
    /// Who makes the change; [`Permission::ChangeTariff`](super::Permission) is checked on it.
    pub by: super::Actor,
}

impl TariffChange {
    /// Checks what can be checked without the database: the price (finite, 0 < price ≤ 100),
    /// `from` not before the start of the newest version of the same target.
    pub fn validate(&self, newest: Option<&CostVersion>) -> Result<(), super::ValidationError> {
        super::validation::tariff("price", self.price)?;
        if self.by.name.trim().is_empty() {
            return Err(super::ValidationError::new(
                "operator",
                "",
                "must name who makes the change (--as NAME or $USER)",
            ));
        }
        if let (Some(from), Some(newest)) = (self.from, newest) {
            if from < newest.effective_from {
                return Err(super::ValidationError::new(
                    "from",
                    from.to_rfc3339(),
                    format!(
                        "must not be before the start of the current {} tariff ({}); the past keeps its prices",
                        self.target,
                        newest.effective_from.to_rfc3339()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Of the still-open versions of one target, which are superseded and when each ends: where the next
/// one (by start, then `_id`) begins. The newest stays open. Returns indexes into `open`.
pub fn closures(open: &[CostVersion]) -> Vec<(usize, Instant)> {
    let mut order: Vec<usize> = (0..open.len()).collect();
    order.sort_by_key(|&i| (open[i].effective_from, open[i].id));
    order
        .windows(2)
        .map(|w| (w[0], open[w[1]].effective_from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> Instant {
        chrono::Utc.with_ymd_and_hms(2026, 11, 24, h, 0, 0).unwrap()
    }

    fn version(price: f64, from: u32, until: Option<u32>, scope: TariffScope) -> CostVersion {
        CostVersion {
            id: None,
            cost_per_kwh: price,
            effective_from: t(from),
            effective_until: until.map(t),
            scope,
            classroom: Some("CS-101".into()),
            device_id: Some("dev1".into()),
            created_by: None,
            notes: None,
            is_active: until.is_none(),
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn most_specific_scope_wins() {
        let book = TariffBook::new(
            vec![
                version(7.5, 0, None, TariffScope::Global),
                version(9.0, 0, None, TariffScope::Classroom),
                version(11.0, 5, None, TariffScope::Device),
            ],
            6.0,
        );
        assert_eq!(book.rate_at(t(1), "dev1", "CS-101").cost_per_kwh, 9.0);
        assert_eq!(book.rate_at(t(6), "dev1", "CS-101").cost_per_kwh, 11.0);
        assert_eq!(book.rate_at(t(6), "dev2", "CS-101").cost_per_kwh, 9.0);
        assert_eq!(book.rate_at(t(6), "dev2", "EE-1").cost_per_kwh, 7.5);
    }

    #[test]
    fn boundaries_are_half_open_and_fallback_applies_before_history() {
        let book = TariffBook::new(
            vec![
                version(7.5, 2, Some(4), TariffScope::Global),
                version(8.0, 4, None, TariffScope::Global),
            ],
            6.0,
        );
        assert_eq!(
            book.rate_at(t(1), "d", "c").source,
            RateSource::PowerSettings
        );
        assert_eq!(book.rate_at(t(2), "d", "c").cost_per_kwh, 7.5);
        assert_eq!(book.rate_at(t(4), "d", "c").cost_per_kwh, 8.0);
        assert_eq!(book.changes_within(t(0), t(10), "d", "c"), vec![t(2), t(4)]);
        assert!(book.changes_within(t(2), t(4), "d", "c").is_empty());
    }
}
