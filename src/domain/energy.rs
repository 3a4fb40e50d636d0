//! The energy ledger (`deviceconsumptionledgers`) and its rules: power of a switch, energy and cost of
//! an interval, and the checks every stored row must pass.

use super::{dates, Id, Instant, PowerSettings, Switch, SwitchType, ValidationError};
use serde::{Deserialize, Serialize};

/// Wattage used when neither the switch nor the power settings know one.
pub const FALLBACK_WATTS: f64 = 50.0;
/// Longest a ledger row may be (one day).
pub const MAX_ROW_SECONDS: f64 = 86_400.0;
/// Most energy a ledger row may hold.
pub const MAX_ROW_WH: f64 = 100_000.0;
/// The most a switch is believed to draw: a rating above it is a typing error (a classroom circuit
/// carries kilowatts), and it keeps the rows of one day of one switch few.
pub const MAX_SWITCH_WATTS: f64 = 1_000_000.0;
/// Tolerance of the energy and cost checks (kWh and ₹).
pub const TOLERANCE: f64 = 0.01;

crate::string_enum! {
    #[derive(Default)]
    pub enum Confidence {
        #[default]
        High => "high",
        Medium => "medium",
        Low => "low",
    }
}

crate::string_enum! {
    #[derive(Default)]
    pub enum DataSource {
        #[default]
        PowerTracker => "power_tracker",
        Telemetry => "telemetry",
        Manual => "manual",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostCalculation {
    pub cost_per_kwh: f64,
    pub cost_inr: f64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Quality {
    #[serde(default)]
    pub confidence: Confidence,
    #[serde(default)]
    pub data_source: DataSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// One closed switch on-interval (or the part of one within a day and a tariff).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerRow {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    /// The device document's `_id` in hex.
    #[serde(deserialize_with = "super::lenient::text")]
    pub device_id: String,
    #[serde(default, deserialize_with = "super::lenient::text")]
    pub esp32_name: String,
    /// The classroom's name; "" when unknown, and then not written (SCHEMA.md).
    #[serde(
        default,
        deserialize_with = "super::lenient::text",
        skip_serializing_if = "String::is_empty"
    )]
    pub classroom: String,
    pub switch_id: String,
    #[serde(default, deserialize_with = "super::lenient::text")]
    pub switch_name: String,
    #[serde(default)]
    pub switch_type: SwitchType,
    #[serde(with = "dates::required")]
    pub start_ts: Instant,
    #[serde(with = "dates::required")]
    pub end_ts: Instant,
    pub switch_on_duration_seconds: f64,
    pub delta_wh: f64,
    pub power_w: f64,
    /// Missing on rows written before costs were recorded (migration 2 fills it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_calculation: Option<CostCalculation>,
    #[serde(default)]
    pub quality: Quality,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}

/// The power of a switch and how sure we are of it: its `powerRating` if > 0, else the power
/// settings' wattage for its type, else 50 W with confidence `medium`. A wattage above
/// [`MAX_SWITCH_WATTS`] is not believed and falls through to the next rule.
pub fn switch_power(switch: &Switch, settings: Option<&PowerSettings>) -> (f64, Confidence) {
    let believable = |w: &f64| w.is_finite() && *w > 0.0 && *w <= MAX_SWITCH_WATTS;
    if let Some(w) = switch.power_rating.filter(believable) {
        return (w, Confidence::High);
    }
    match settings
        .and_then(|s| s.watts_of(&switch.switch_type))
        .filter(|w| *w <= MAX_SWITCH_WATTS)
    {
        Some(w) => (w, Confidence::High),
        None => (FALLBACK_WATTS, Confidence::Medium),
    }
}

/// Energy in Wh of `power_w` watts for `seconds`.
pub fn energy_wh(power_w: f64, seconds: f64) -> f64 {
    power_w * seconds / 3600.0
}

/// Cost in ₹ of `wh` watt-hours at `cost_per_kwh`.
pub fn cost_inr(wh: f64, cost_per_kwh: f64) -> f64 {
    wh / 1000.0 * cost_per_kwh
}

/// Seconds between two instants, with millisecond precision.
pub fn seconds_between(start: Instant, end: Instant) -> f64 {
    (end - start).num_milliseconds() as f64 / 1000.0
}

impl LedgerRow {
    /// Energy in kWh.
    pub fn kwh(&self) -> f64 {
        self.delta_wh / 1000.0
    }

    /// Cost in ₹ (0 for a row without a cost calculation).
    pub fn cost(&self) -> f64 {
        self.cost_calculation.as_ref().map_or(0.0, |c| c.cost_inr)
    }

    /// Adds `note` to `quality.notes` (after what is there).
    pub fn add_note(&mut self, note: &str) {
        self.quality.notes = Some(match self.quality.notes.take() {
            Some(n) if !n.is_empty() => format!("{n}; {note}"),
            _ => note.to_string(),
        });
    }

    /// The row with a switch type the ledger's enum does not know (a relay that another writer
    /// typed, say `heater`) recorded as `outlet`, the generic load, and the type kept in
    /// `quality.notes`: the Node back end refuses unknown enum values, and the energy is still billed.
    pub fn with_known_switch_type(mut self) -> LedgerRow {
        if !self.switch_type.is_known() {
            let note = format!(
                "switch type {:?} recorded as outlet",
                self.switch_type.as_str()
            );
            self.add_note(&note);
            self.switch_type = SwitchType::Outlet;
        }
        self
    }

    /// Checks the row against SCHEMA.md's energy rules and enums; the first broken rule is returned.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !self.switch_type.is_known() {
            return Err(ValidationError::new(
                "switch_type",
                self.switch_type.as_str(),
                "must be light, fan, projector, ac, computer or outlet",
            ));
        }
        if !self.quality.confidence.is_known() {
            return Err(ValidationError::new(
                "quality.confidence",
                self.quality.confidence.as_str(),
                "must be high, medium or low",
            ));
        }
        if !self.quality.data_source.is_known() {
            return Err(ValidationError::new(
                "quality.data_source",
                self.quality.data_source.as_str(),
                "must be power_tracker, telemetry or manual",
            ));
        }
        let secs = self.switch_on_duration_seconds;
        if self.end_ts < self.start_ts {
            return Err(ValidationError::new(
                "end_ts",
                self.end_ts.to_rfc3339(),
                format!("must not be before start_ts {}", self.start_ts.to_rfc3339()),
            ));
        }
        super::validation::within("switch_on_duration_seconds", secs, 0.0, MAX_ROW_SECONDS)?;
        super::validation::within("delta_wh", self.delta_wh, 0.0, MAX_ROW_WH)?;
        super::validation::non_negative("power_w", self.power_w)?;
        let expected_kwh = self.power_w * secs / 3_600_000.0;
        if (expected_kwh - self.kwh()).abs() > TOLERANCE {
            return Err(ValidationError::new(
                "delta_wh",
                self.delta_wh,
                format!(
                    "must equal power_w × seconds / 3600 = {:.3} Wh within 0.01 kWh",
                    expected_kwh * 1000.0
                ),
            ));
        }
        if let Some(c) = &self.cost_calculation {
            super::validation::non_negative("cost_calculation.cost_per_kwh", c.cost_per_kwh)?;
            let expected = self.kwh() * c.cost_per_kwh;
            if !c.cost_inr.is_finite() || (expected - c.cost_inr).abs() > TOLERANCE {
                return Err(ValidationError::new(
                    "cost_calculation.cost_inr",
                    c.cost_inr,
                    format!("must equal kWh × cost_per_kwh = ₹{expected:.4} within ₹0.01"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn switch(rating: Option<f64>, t: SwitchType) -> Switch {
        Switch {
            switch_id: "1".into(),
            name: "Fan".into(),
            switch_type: t,
            gpio: Some(16),
            relay_gpio: Some(16),
            state: false,
            last_state_change: None,
            power_rating: rating,
        }
    }

    fn row(seconds: f64, power: f64, wh: f64, rate: f64, cost: f64) -> LedgerRow {
        let start = chrono::Utc.with_ymd_and_hms(2026, 11, 24, 4, 0, 0).unwrap();
        LedgerRow {
            id: None,
            device_id: "d".into(),
            esp32_name: "b".into(),
            classroom: "c".into(),
            switch_id: "1".into(),
            switch_name: "Fan".into(),
            switch_type: SwitchType::Fan,
            start_ts: start,
            end_ts: start + chrono::Duration::milliseconds((seconds * 1000.0) as i64),
            switch_on_duration_seconds: seconds,
            delta_wh: wh,
            power_w: power,
            cost_calculation: Some(CostCalculation {
                cost_per_kwh: rate,
                cost_inr: cost,
            }),
            quality: Quality::default(),
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn an_unknown_switch_type_is_billed_as_an_outlet_and_named_in_the_notes() {
        let mut r = row(3600.0, 40.0, 40.0, 8.0, 0.32);
        r.switch_type = SwitchType::Other("heater".into());
        assert!(r
            .validate()
            .unwrap_err()
            .to_string()
            .contains("switch_type"));
        let fixed = r.with_known_switch_type();
        assert_eq!(fixed.switch_type, SwitchType::Outlet);
        assert!(fixed.quality.notes.as_deref().unwrap().contains("heater"));
        fixed.validate().unwrap();
        let mut q = row(3600.0, 40.0, 40.0, 8.0, 0.32);
        q.quality.confidence = Confidence::Other("certain".into());
        assert!(q.validate().is_err());
    }

    #[test]
    fn power_rules() {
        let settings = PowerSettings::campus_default(7.5);
        assert_eq!(
            switch_power(&switch(Some(60.0), SwitchType::Fan), Some(&settings)),
            (60.0, Confidence::High)
        );
        assert_eq!(
            switch_power(&switch(Some(0.0), SwitchType::Fan), Some(&settings)),
            (75.0, Confidence::High)
        );
        assert_eq!(
            switch_power(&switch(None, SwitchType::Ac), Some(&settings)),
            (1500.0, Confidence::High)
        );
        assert_eq!(
            switch_power(&switch(None, SwitchType::Ac), None),
            (50.0, Confidence::Medium)
        );
        assert_eq!(
            switch_power(
                &switch(None, SwitchType::Other("heater".into())),
                Some(&settings)
            ),
            (50.0, Confidence::Medium)
        );
        assert_eq!(
            switch_power(&switch(Some(f64::NAN), SwitchType::Fan), Some(&settings)).0,
            75.0
        );
    }

    #[test]
    fn a_consistent_row_passes() {
        // 1 h of 75 W at ₹7.5: 75 Wh, ₹0.5625.
        assert!(row(3600.0, 75.0, 75.0, 7.5, 0.5625).validate().is_ok());
        assert!(row(0.0, 75.0, 0.0, 7.5, 0.0).validate().is_ok());
    }

    #[test]
    fn duration_boundaries() {
        assert!(row(86_400.0, 1.0, 24.0, 1.0, 0.024).validate().is_ok());
        let err = row(86_401.0, 1.0, 86_401.0 / 3600.0, 1.0, 0.0240)
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "switch_on_duration_seconds");
        assert_eq!(
            row(-1.0, 1.0, 0.0, 1.0, 0.0).validate().unwrap_err().field,
            "end_ts"
        );
    }

    #[test]
    fn delta_boundaries() {
        // 100 000 Wh is the most a row may hold; 100 000.1 is over.
        assert!(row(86_400.0, 100_000.0 / 24.0, 100_000.0, 1.0, 100.0)
            .validate()
            .is_ok());
        let err = row(86_400.0, 100_000.1 / 24.0, 100_000.1, 1.0, 100.0001)
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "delta_wh");
    }

    #[test]
    fn energy_tolerance_boundaries() {
        // 3600 s of 75 W is 0.075 kWh; 0.0099 kWh off passes, 0.0101 kWh off fails.
        assert!(
            row(3600.0, 75.0, 75.0 + 9.9, 7.5, (75.0 + 9.9) / 1000.0 * 7.5)
                .validate()
                .is_ok()
        );
        let err = row(3600.0, 75.0, 75.0 + 10.1, 7.5, (75.0 + 10.1) / 1000.0 * 7.5)
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "delta_wh");
        assert!(row(3600.0, 75.0, 75.0 - 10.1, 7.5, 0.0).validate().is_err());
    }

    #[test]
    fn cost_tolerance_boundaries() {
        assert!(row(3600.0, 75.0, 75.0, 7.5, 0.5625 + 0.0099)
            .validate()
            .is_ok());
        assert!(row(3600.0, 75.0, 75.0, 7.5, 0.5625 - 0.0099)
            .validate()
            .is_ok());
        let err = row(3600.0, 75.0, 75.0, 7.5, 0.5625 + 0.0101)
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "cost_calculation.cost_inr");
        assert!(row(3600.0, 75.0, 75.0, 7.5, f64::NAN).validate().is_err());
    }

    #[test]
    fn nan_power_is_rejected() {
        assert!(row(10.0, f64::NAN, 0.0, 7.5, 0.0).validate().is_err());
    }
}
