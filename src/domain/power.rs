//! The tariff and wattage table (`powersettings`), one active document.

use super::{dates, Id, Instant, SwitchType};
use serde::{Deserialize, Serialize};

crate::string_enum! {
    #[derive(Default)]
    pub enum PowerUnit {
        #[default]
        W => "W",
        KW => "kW",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceTypePower {
    #[serde(rename = "type")]
    pub switch_type: SwitchType,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "powerConsumption")]
    pub power_consumption: f64,
    #[serde(default)]
    pub unit: PowerUnit,
}

impl DeviceTypePower {
    /// The wattage in W (`kW` × 1000); an unknown unit is not trusted.
    pub fn watts(&self) -> Option<f64> {
        let w = match self.unit {
            PowerUnit::W => self.power_consumption,
            PowerUnit::KW => self.power_consumption * 1000.0,
            PowerUnit::Other(_) => return None,
        };
        (w.is_finite() && w >= 0.0).then_some(w)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerSettings {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    /// ₹/kWh.
    #[serde(rename = "electricityPrice")]
    pub electricity_price: f64,
    #[serde(rename = "deviceTypes", default)]
    pub device_types: Vec<DeviceTypePower>,
    #[serde(rename = "isActive", default)]
    pub is_active: bool,
    #[serde(default = "first_version", deserialize_with = "super::lenient::int64")]
    pub version: i64,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}

fn first_version() -> i64 {
    1
}

impl PowerSettings {
    /// The wattage of a switch type, if the table has it.
    pub fn watts_of(&self, switch_type: &SwitchType) -> Option<f64> {
        self.device_types
            .iter()
            .find(|d| &d.switch_type == switch_type)
            .and_then(DeviceTypePower::watts)
    }

    /// AutoVolt's default table: light 40 W, fan 75, projector 200, ac 1500, outlet 100, computer 150.
    pub fn campus_default(price: f64) -> PowerSettings {
        let row = |t: SwitchType, name: &str, w: f64| DeviceTypePower {
            switch_type: t,
            name: name.into(),
            power_consumption: w,
            unit: PowerUnit::W,
        };
        PowerSettings {
            id: None,
            electricity_price: price,
            device_types: vec![
                row(SwitchType::Light, "Light", 40.0),
                row(SwitchType::Fan, "Fan", 75.0),
                row(SwitchType::Projector, "Projector", 200.0),
                row(SwitchType::Ac, "Air conditioner", 1500.0),
                row(SwitchType::Outlet, "Outlet", 100.0),
                row(SwitchType::Computer, "Computer", 150.0),
            ],
            is_active: true,
            version: 1,
            created_at: None,
            updated_at: None,
        }
    }

    /// Checks the table against SCHEMA.md: price 0–100, every wattage ≥ 0.
    pub fn validate(&self) -> Result<(), super::ValidationError> {
        super::validation::within("electricityPrice", self.electricity_price, 0.0, 100.0)?;
        for d in &self.device_types {
            super::validation::non_negative("deviceTypes.powerConsumption", d.power_consumption)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kilowatts_are_converted() {
        let d = DeviceTypePower {
            switch_type: SwitchType::Ac,
            name: "AC".into(),
            power_consumption: 1.5,
            unit: PowerUnit::KW,
        };
        assert_eq!(d.watts(), Some(1500.0));
    }

    #[test]
    fn default_table() {
        let p = PowerSettings::campus_default(7.5);
        assert_eq!(p.watts_of(&SwitchType::Fan), Some(75.0));
        assert_eq!(p.watts_of(&SwitchType::Other("heater".into())), None);
        assert!(p.validate().is_ok());
    }

    #[test]
    fn validation_bounds() {
        let mut p = PowerSettings::campus_default(100.0);
        assert!(p.validate().is_ok());
        p.electricity_price = 100.01;
        assert!(p.validate().is_err());
        p.electricity_price = 5.0;
        p.device_types[0].power_consumption = -1.0;
        assert_eq!(
            p.validate().unwrap_err().field,
            "deviceTypes.powerConsumption"
        );
    }
}
