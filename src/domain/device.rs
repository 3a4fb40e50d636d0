//! ESP32 boards (`devices`) and their relays (`devices.switches[]`).

use super::{dates, Id, Instant, Mac, Secret};
use serde::{Deserialize, Serialize};

crate::string_enum! {
    #[derive(Default)]
    pub enum DeviceType {
        #[default]
        Esp32 => "esp32",
        Sensor => "sensor",
        Gateway => "gateway",
    }
}

crate::string_enum! {
    #[derive(Default)]
    pub enum DeviceStatus {
        Online => "online",
        #[default]
        Offline => "offline",
        Maintenance => "maintenance",
    }
}

crate::string_enum! {
    /// The load a relay switches. Ledger rows and power settings also know `computer`.
    #[derive(Default)]
    pub enum SwitchType {
        #[default]
        Light => "light",
        Fan => "fan",
        Projector => "projector",
        Ac => "ac",
        Outlet => "outlet",
        Computer => "computer",
    }
}

/// The board-clock anchor (PROTOCOL.md, "event time"; `docs/board-clock.md`): the estimated wall
/// instant the board booted, the last `millis()` value seen in this boot, and the same of the boot
/// before (to time its messages that arrive after the new boot's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootClock {
    #[serde(rename = "bootAt", with = "dates::required")]
    pub boot_at: Instant,
    #[serde(rename = "lastMillis", deserialize_with = "super::lenient::int64")]
    pub last_millis: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<EarlierBoot>,
}

/// The anchor of the boot before the current one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarlierBoot {
    #[serde(rename = "bootAt", with = "dates::required")]
    pub boot_at: Instant,
    #[serde(rename = "lastMillis", deserialize_with = "super::lenient::int64")]
    pub last_millis: i64,
    /// It was left on a jump of the clock that a reboot or a slow delivery could explain: a later
    /// message of this boot takes it back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsure: bool,
    /// It is the same boot: the current anchor is the next turn of its 32-bit clock.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wrapped: bool,
}

impl BootClock {
    /// A new anchor with no earlier boot known.
    pub fn new(boot_at: Instant, last_millis: i64) -> BootClock {
        BootClock {
            boot_at,
            last_millis,
            previous: None,
        }
    }

    /// The board's last event of this boot known to the anchor: `bootAt + lastMillis`.
    pub fn last_event(&self) -> Instant {
        self.boot_at + chrono::Duration::milliseconds(self.last_millis)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceConfig {
    #[serde(rename = "mqttTopic", default, skip_serializing_if = "Option::is_none")]
    pub mqtt_topic: Option<String>,
    /// Milliseconds between the board's reports.
    #[serde(
        rename = "updateInterval",
        default = "default_update_interval",
        deserialize_with = "super::lenient::int64"
    )]
    pub update_interval: i64,
}

fn default_update_interval() -> i64 {
    30_000
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            mqtt_topic: None,
            update_interval: default_update_interval(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Switch {
    #[serde(rename = "switchId")]
    pub switch_id: String,
    pub name: String,
    #[serde(rename = "type", default)]
    pub switch_type: SwitchType,
    #[serde(
        default,
        deserialize_with = "super::lenient::optional_int32",
        skip_serializing_if = "Option::is_none"
    )]
    pub gpio: Option<i32>,
    #[serde(
        rename = "relayGpio",
        default,
        deserialize_with = "super::lenient::optional_int32",
        skip_serializing_if = "Option::is_none"
    )]
    pub relay_gpio: Option<i32>,
    #[serde(default)]
    pub state: bool,
    #[serde(rename = "lastStateChange", with = "dates::optional", default)]
    pub last_state_change: Option<Instant>,
    /// Rated power in W; 0 or absent means "the type's wattage from the power settings".
    #[serde(
        rename = "powerRating",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub power_rating: Option<f64>,
}

impl Switch {
    /// The relay pin the firmware reports this switch by (`relayGpio`, else `gpio`).
    pub fn relay_pin(&self) -> Option<i32> {
        self.relay_gpio.or(self.gpio)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    pub name: String,
    #[serde(rename = "macAddress")]
    pub mac_address: Mac,
    #[serde(rename = "type", default)]
    pub device_type: DeviceType,
    /// The classroom document's `_id` (read also from its hex; the store resolves a name).
    #[serde(
        default,
        deserialize_with = "super::lenient::optional_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub classroom: Option<Id>,
    #[serde(rename = "ipAddress", default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(
        rename = "firmwareVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub firmware_version: Option<String>,
    #[serde(default)]
    pub status: DeviceStatus,
    #[serde(rename = "lastSeen", with = "dates::optional", default)]
    pub last_seen: Option<Instant>,
    #[serde(rename = "deviceSecret", default)]
    pub device_secret: Secret,
    #[serde(rename = "lastMotionAt", with = "dates::optional", default)]
    pub last_motion_at: Option<Instant>,
    #[serde(rename = "bootClock", default, skip_serializing_if = "Option::is_none")]
    pub boot_clock: Option<BootClock>,
    #[serde(default)]
    pub config: DeviceConfig,
    #[serde(default)]
    pub switches: Vec<Switch>,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}

impl Device {
    /// Checks the enums against what the Node back end accepts: device `type` and `status`, and
    /// each switch's `type` (a relay's type has no `computer`, which only the ledger and the power
    /// settings know).
    pub fn validate_enums(&self) -> Result<(), super::ValidationError> {
        if !self.device_type.is_known() {
            return Err(super::ValidationError::new(
                "type",
                self.device_type.as_str(),
                "must be esp32, sensor or gateway",
            ));
        }
        if !self.status.is_known() {
            return Err(super::ValidationError::new(
                "status",
                self.status.as_str(),
                "must be online, offline or maintenance",
            ));
        }
        if let Some(s) = self
            .switches
            .iter()
            .find(|s| !s.switch_type.is_known() || s.switch_type == SwitchType::Computer)
        {
            return Err(super::ValidationError::new(
                "switches.type",
                s.switch_type.as_str(),
                "must be light, fan, projector, ac or outlet",
            ));
        }
        Ok(())
    }

    /// The device id as the ledger and aggregates store it: the `_id` in hex.
    pub fn ledger_id(&self) -> Option<String> {
        self.id.map(|id| id.to_hex())
    }

    /// The index and switch whose relay pin is `pin`.
    pub fn switch_by_pin(&self, pin: i32) -> Option<(usize, &Switch)> {
        self.switches
            .iter()
            .enumerate()
            .find(|(_, s)| s.relay_pin() == Some(pin))
    }

    /// The index and switch with this `switchId`.
    pub fn switch_by_id(&self, switch_id: &str) -> Option<(usize, &Switch)> {
        self.switches
            .iter()
            .enumerate()
            .find(|(_, s)| s.switch_id == switch_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn switch(gpio: Option<i32>, relay: Option<i32>) -> Switch {
        Switch {
            switch_id: "s".into(),
            name: "n".into(),
            switch_type: SwitchType::Light,
            gpio,
            relay_gpio: relay,
            state: false,
            last_state_change: None,
            power_rating: None,
        }
    }

    #[test]
    fn relay_pin_prefers_relay_gpio() {
        assert_eq!(switch(Some(4), Some(16)).relay_pin(), Some(16));
        assert_eq!(switch(Some(16), None).relay_pin(), Some(16));
        assert_eq!(switch(None, None).relay_pin(), None);
    }

    #[test]
    fn device_round_trips_through_bson_with_exact_names() {
        let now = super::super::dates::now_millis();
        let d = Device {
            id: Some(Id::new()),
            name: "CS-101-A".into(),
            mac_address: Mac::parse("a4:cf:12:b3:c4:d5").unwrap(),
            device_type: DeviceType::Esp32,
            classroom: Some(Id::new()),
            ip_address: Some("10.0.0.5".into()),
            firmware_version: Some("1.4.2".into()),
            status: DeviceStatus::Online,
            last_seen: Some(now),
            device_secret: Secret::new("abc"),
            last_motion_at: None,
            boot_clock: Some(BootClock::new(now, 5)),
            config: DeviceConfig::default(),
            switches: vec![Switch {
                last_state_change: Some(now),
                ..switch(Some(16), Some(16))
            }],
            created_at: Some(now),
            updated_at: Some(now),
        };
        let doc = bson::to_document(&d).unwrap();
        assert_eq!(doc.get_str("macAddress").unwrap(), "A4:CF:12:B3:C4:D5");
        assert!(doc.get_datetime("lastSeen").is_ok());
        assert!(doc.get_object_id("classroom").is_ok());
        assert_eq!(doc.get_str("deviceSecret").unwrap(), "abc");
        let sw = doc.get_array("switches").unwrap()[0]
            .as_document()
            .unwrap()
            .clone();
        assert_eq!(sw.get_i32("relayGpio").unwrap(), 16);
        assert!(sw.get_datetime("lastStateChange").is_ok());
        let back: Device = bson::from_document(doc).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn unknown_enum_values_load() {
        let doc = bson::doc! {
            "name": "x", "macAddress": "A4:CF:12:B3:C4:D5", "type": "robot", "status": "sleeping",
            "switches": [{"switchId": "1", "name": "y", "type": "heater"}],
        };
        let d: Device = bson::from_document(doc).unwrap();
        assert_eq!(d.device_type, DeviceType::Other("robot".into()));
        assert_eq!(d.status, DeviceStatus::Other("sleeping".into()));
        assert_eq!(
            d.switches[0].switch_type,
            SwitchType::Other("heater".into())
        );
        assert_eq!(d.config.update_interval, 30_000);
    }
}
