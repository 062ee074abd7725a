//! The user's settings for how considerate background work is, as
//! `shoebox config list|get|set` and the window show them: the upload
//! bandwidth limit (`bandwidth`), the hours uploads run (`schedule`), the
//! rate inside a `limit` schedule's hours (`schedule-bandwidth`), and what
//! uploads do on battery (`on-battery`) and on a metered network
//! (`on-metered`). Each is kept as text in the settings table under
//! `config.<key>`, checked when it is set and read back typed; a running
//! engine reads them again when told of a change.
//! See docs/ARCHITECTURE.md.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::schedule::Schedule;
use crate::store::Store;

/// A setting `shoebox config` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigKey {
    /// The upload rate for all transfers together.
    Bandwidth,
    /// The hours uploads run, or pause (`crate::schedule`).
    Schedule,
    /// The upload rate inside a `limit` schedule's hours.
    ScheduleBandwidth,
    /// What uploads do while the computer runs on battery.
    OnBattery,
    /// What uploads to servers do on a metered network.
    OnMetered,
}

/// What uploads do while the computer runs on battery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum BatteryRule {
    KeepGoing,
    /// Photos go on; videos wait for power.
    #[default]
    PhotosOnly,
    Pause,
}

/// What uploads to servers do on a metered network (a local or external
/// disk is never held by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum MeteredRule {
    #[default]
    Pause,
    KeepGoing,
}

impl BatteryRule {
    const NAMES: [(&'static str, BatteryRule); 3] = [
        ("keep-going", BatteryRule::KeepGoing),
        ("photos-only", BatteryRule::PhotosOnly),
        ("pause", BatteryRule::Pause),
    ];
}

impl MeteredRule {
    const NAMES: [(&'static str, MeteredRule); 2] = [
        ("pause", MeteredRule::Pause),
        ("keep-going", MeteredRule::KeepGoing),
    ];
}

/// The rule named `text` among `names`, or an error listing them.
fn rule<T: Copy>(key: ConfigKey, names: &[(&str, T)], text: &str) -> Result<T> {
    let t = text.trim();
    names
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(t))
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            let known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            Error::Invalid(format!(
                "{text:?} is not a choice for {}: write one of {}",
                key.name(),
                known.join(", ")
            ))
        })
}

/// The name a rule is written with.
fn rule_name<T: Copy + PartialEq>(names: &[(&'static str, T)], r: T) -> &'static str {
    names
        .iter()
        .find(|(_, x)| *x == r)
        .map(|(n, _)| *n)
        .expect("every rule is named")
}

impl ConfigKey {
    const ALL: [ConfigKey; 5] = [
        ConfigKey::Bandwidth,
        ConfigKey::Schedule,
        ConfigKey::ScheduleBandwidth,
        ConfigKey::OnBattery,
        ConfigKey::OnMetered,
    ];

    fn name(self) -> &'static str {
        match self {
            ConfigKey::Bandwidth => "bandwidth",
            ConfigKey::Schedule => "schedule",
            ConfigKey::ScheduleBandwidth => "schedule-bandwidth",
            ConfigKey::OnBattery => "on-battery",
            ConfigKey::OnMetered => "on-metered",
        }
    }

    fn about(self) -> &'static str {
        match self {
            ConfigKey::Bandwidth => {
                "the upload rate for all transfers to servers together (a local or \
                 external disk is not limited): a rate such as 2MB/s, 500kB/s or 1.5MiB/s, \
                 or off"
            }
            ConfigKey::Schedule => {
                "the hours of the day (local time) when the running engine uploads, such as \
                 22:00-07:00, when it pauses, such as \"pause 09:00-17:00\", or when it \
                 uploads at schedule-bandwidth, such as \"limit 09:00-17:00\"; off for any \
                 time. `shoebox sync` uploads at once whatever the hour"
            }
            ConfigKey::ScheduleBandwidth => {
                "the upload rate inside a \"limit\" schedule's hours (bandwidth applies \
                 outside them), such as 500kB/s; off for none"
            }
            ConfigKey::OnBattery => {
                "what the running engine does while the computer runs on battery: keep-going, \
                 photos-only (videos wait for power) or pause"
            }
            ConfigKey::OnMetered => {
                "what uploads to servers do on a metered network (a phone's hotspot): pause or \
                 keep-going; a local or external disk is not held by it"
            }
        }
    }

    fn store_key(self) -> String {
        format!("config.{}", self.name())
    }

    fn parse(name: &str) -> Result<ConfigKey> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
                Error::Invalid(format!(
                    "there is no setting {name:?}; the settings are: {}",
                    known.join(", ")
                ))
            })
    }

    /// `value` as this setting keeps it (checked, exact).
    fn stored(self, value: &str) -> Result<String> {
        match self {
            ConfigKey::Bandwidth | ConfigKey::ScheduleBandwidth => Ok(match parse_rate(value)? {
                Some(bytes) => format!("{bytes}B/s"),
                None => "off".to_string(),
            }),
            ConfigKey::Schedule => {
                Ok(Schedule::parse(value)?.map_or_else(|| "off".to_string(), |s| s.text()))
            }
            ConfigKey::OnBattery => {
                let r = rule(self, &BatteryRule::NAMES, value)?;
                Ok(rule_name(&BatteryRule::NAMES, r).to_string())
            }
            ConfigKey::OnMetered => {
                let r = rule(self, &MeteredRule::NAMES, value)?;
                Ok(rule_name(&MeteredRule::NAMES, r).to_string())
            }
        }
    }

    /// A kept value as people read it.
    fn shown(self, stored: &str) -> Result<String> {
        match self {
            ConfigKey::Bandwidth | ConfigKey::ScheduleBandwidth => {
                Ok(rate_text(parse_rate(stored)?))
            }
            ConfigKey::Schedule | ConfigKey::OnBattery | ConfigKey::OnMetered => {
                self.stored(stored)
            }
        }
    }

    fn default_text(self) -> &'static str {
        match self {
            ConfigKey::Bandwidth | ConfigKey::Schedule | ConfigKey::ScheduleBandwidth => "off",
            ConfigKey::OnBattery => rule_name(&BatteryRule::NAMES, BatteryRule::default()),
            ConfigKey::OnMetered => rule_name(&MeteredRule::NAMES, MeteredRule::default()),
        }
    }
}

/// One setting as `config list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigEntry {
    pub key: &'static str,
    pub value: String,
    /// What it does and the values it takes.
    pub about: &'static str,
}

fn entry(store: &Store, key: ConfigKey) -> Result<ConfigEntry> {
    let value = match store.setting(&key.store_key())? {
        Some(v) => key.shown(&v).map_err(|e| {
            Error::Invalid(format!(
                "the setting {} holds {v:?}, which cannot be read ({e}); set it again with \
                 `shoebox config set {} VALUE`",
                key.name(),
                key.name()
            ))
        })?,
        None => key.default_text().to_string(),
    };
    Ok(ConfigEntry {
        key: key.name(),
        value,
        about: key.about(),
    })
}

pub(crate) fn list(store: &Store) -> Result<Vec<ConfigEntry>> {
    ConfigKey::ALL.iter().map(|k| entry(store, *k)).collect()
}

pub(crate) fn get(store: &Store, name: &str) -> Result<ConfigEntry> {
    entry(store, ConfigKey::parse(name)?)
}

/// Checks and keeps a setting; returns it as it is now kept.
pub(crate) fn set(store: &Store, name: &str, value: &str) -> Result<ConfigEntry> {
    let key = ConfigKey::parse(name)?;
    store.set_setting(&key.store_key(), &key.stored(value)?)?;
    entry(store, key)
}

/// The kept text of a setting, if it is set; one that cannot be read is
/// an error naming it.
fn kept(store: &Store, key: ConfigKey) -> Result<Option<String>> {
    entry(store, key)?;
    store.setting(&key.store_key())
}

/// The upload limit in bytes per second, if one is set.
pub(crate) fn bandwidth(store: &Store) -> Result<Option<u64>> {
    kept(store, ConfigKey::Bandwidth)?.map_or(Ok(None), |v| parse_rate(&v))
}

/// The upload limit inside a `limit` schedule's hours, if one is set.
pub(crate) fn schedule_bandwidth(store: &Store) -> Result<Option<u64>> {
    kept(store, ConfigKey::ScheduleBandwidth)?.map_or(Ok(None), |v| parse_rate(&v))
}

/// The upload schedule, if one is set.
pub(crate) fn schedule(store: &Store) -> Result<Option<Schedule>> {
    kept(store, ConfigKey::Schedule)?.map_or(Ok(None), |v| Schedule::parse(&v))
}

/// What uploads do on battery.
pub(crate) fn on_battery(store: &Store) -> Result<BatteryRule> {
    kept(store, ConfigKey::OnBattery)?.map_or(Ok(BatteryRule::default()), |v| {
        rule(ConfigKey::OnBattery, &BatteryRule::NAMES, &v)
    })
}

/// What uploads to servers do on a metered network.
pub(crate) fn on_metered(store: &Store) -> Result<MeteredRule> {
    kept(store, ConfigKey::OnMetered)?.map_or(Ok(MeteredRule::default()), |v| {
        rule(ConfigKey::OnMetered, &MeteredRule::NAMES, &v)
    })
}

/// Units of a rate, by how they are written (case matters for `b`: only
/// bytes are taken, so `Mb` is refused rather than misread).
const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("kB", 1000),
    ("KB", 1000),
    ("MB", 1000 * 1000),
    ("GB", 1000 * 1000 * 1000),
    ("KiB", 1024),
    ("MiB", 1024 * 1024),
    ("GiB", 1024 * 1024 * 1024),
];

/// `2MB/s`, `2 MB/s`, `500kB/s`, `1.5MiB/s` (the `/s` may be left out), or
/// `off`: bytes per second, `None` for no limit.
pub(crate) fn parse_rate(text: &str) -> Result<Option<u64>> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") || t.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let bad = || {
        Error::Invalid(format!(
            "{text:?} is not a rate: write a number and a unit of bytes, such as 2MB/s, \
             500kB/s or 1.5MiB/s (1 MB = 1,000,000 bytes, 1 MiB = 1,048,576), or off"
        ))
    };
    let t = t.strip_suffix("/s").unwrap_or(t).trim_end();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = (t[..split].trim(), t[split..].trim());
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, s)| *s)
        .ok_or_else(bad)?;
    let rate = number * scale as f64;
    if !rate.is_finite() || rate < 1024.0 {
        return Err(Error::Invalid(format!(
            "{text:?} is below 1 KiB/s, too slow to upload a photo; write a higher rate, or off"
        )));
    }
    Ok(Some(rate.round() as u64))
}

/// A rate as people read it: `2 MB/s`, `1.57 MB/s`, `500 kB/s`, or `off`.
pub(crate) fn rate_text(rate: Option<u64>) -> String {
    let Some(r) = rate else {
        return "off".to_string();
    };
    let (value, unit) = match r {
        r if r >= 1_000_000_000 => (r as f64 / 1e9, "GB/s"),
        r if r >= 1_000_000 => (r as f64 / 1e6, "MB/s"),
        r if r >= 1000 => (r as f64 / 1e3, "kB/s"),
        r => (r as f64, "B/s"),
    };
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_read_in_the_units_people_write() {
        for (text, want) in [
            ("2MB/s", 2_000_000),
            ("2 MB/s", 2_000_000),
            (" 500kB/s ", 500_000),
            ("500KB", 500_000),
            ("1.5MiB/s", 1_572_864),
            ("64 KiB/s", 65_536),
            ("1GB/s", 1_000_000_000),
        ] {
            assert_eq!(parse_rate(text).unwrap(), Some(want), "{text}");
        }
        assert_eq!(parse_rate("off").unwrap(), None);
        assert_eq!(parse_rate("OFF").unwrap(), None);
    }

    #[test]
    fn what_is_not_a_rate_is_refused_with_how_to_write_one() {
        for text in [
            "",
            "fast",
            "2",
            "2Mb/s",
            "2 mbps",
            "MB/s",
            "1.2.3MB/s",
            "-1MB/s",
        ] {
            let e = parse_rate(text).unwrap_err().to_string();
            assert!(e.contains("2MB/s"), "{text}: {e}");
        }
        let e = parse_rate("10B/s").unwrap_err().to_string();
        assert!(e.contains("too slow"), "{e}");
    }

    #[test]
    fn the_battery_and_metered_rules_are_read_by_name_and_default_to_considerate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        assert_eq!(on_battery(&store).unwrap(), BatteryRule::PhotosOnly);
        assert_eq!(on_metered(&store).unwrap(), MeteredRule::Pause);
        assert_eq!(get(&store, "on-battery").unwrap().value, "photos-only");
        assert_eq!(set(&store, "on-battery", "Pause").unwrap().value, "pause");
        assert_eq!(on_battery(&store).unwrap(), BatteryRule::Pause);
        set(&store, "on-metered", "keep-going").unwrap();
        assert_eq!(on_metered(&store).unwrap(), MeteredRule::KeepGoing);
        let e = set(&store, "on-battery", "videos-only")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("keep-going, photos-only, pause"),
            "the choices are named: {e}"
        );
        assert_eq!(on_battery(&store).unwrap(), BatteryRule::Pause, "kept");
    }

    #[test]
    fn rates_are_shown_in_plain_decimal_units() {
        assert_eq!(rate_text(Some(2_000_000)), "2 MB/s");
        assert_eq!(rate_text(Some(1_572_864)), "1.57 MB/s");
        assert_eq!(rate_text(Some(500_000)), "500 kB/s");
        assert_eq!(rate_text(None), "off");
        for r in [2_000_000, 500_000, 65_536, 1_572_864] {
            let back = parse_rate(&rate_text(Some(r))).unwrap().unwrap();
            assert!(back.abs_diff(r) * 200 <= r, "{r} → {back}");
        }
    }
}
