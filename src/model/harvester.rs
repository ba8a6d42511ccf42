//! Harvester's memory reservation: the `reservedMemory` annotation, its defaults by release and
//! ratio setting, and the size table of reservations by configured size (what a production OOM
//! investigation on Harvester settled on: 256Mi for 1G, 384Mi for 2-4G, 512Mi from 5G, 1Gi from 10G).

use super::objects::{keys, HarvesterSetting, VirtualMachine};
use super::overhead::{GI, MI};
use super::version::Version;

/// What the tool knows about a Harvester cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HarvesterContext {
    /// `server-version` setting, when present.
    pub version: Option<Version>,
    /// `additional-guest-memory-overhead-ratio` as effective (value, else default); `None` when
    /// the setting does not exist (Harvester ≤ v1.3).
    pub ratio_setting: Option<String>,
    /// Memory overcommit percentage of `overcommit-config` (default 150).
    pub overcommit_memory: i64,
}

/// Harvester's default reservation before v1.4, and on v1.4+ when the ratio is off.
pub const LEGACY_DEFAULT_RESERVED: i64 = 100 * MI;

impl HarvesterContext {
    pub fn from_settings(settings: &[HarvesterSetting]) -> HarvesterContext {
        let find = |name: &str| settings.iter().find(|s| s.metadata.name == name);
        let version = find(keys::SETTING_SERVER_VERSION)
            .and_then(|s| s.effective())
            .and_then(Version::parse);
        let ratio_setting = find(keys::SETTING_RATIO).map(effective_ratio);
        let overcommit_memory = find(keys::SETTING_OVERCOMMIT)
            .and_then(|s| s.effective())
            .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
            .and_then(|v| v.get("memory").and_then(|m| m.as_i64()))
            .filter(|&m| m > 0)
            .unwrap_or(150);
        HarvesterContext {
            version,
            ratio_setting,
            overcommit_memory,
        }
    }

    /// Whether this release has the ratio setting (v1.4+). Without a version, the setting's
    /// presence tells.
    pub fn has_ratio_setting(&self) -> bool {
        match self.version {
            Some(v) => v >= Version::new(1, 4, 0),
            None => self.ratio_setting.is_some(),
        }
    }

    /// The reservation the webhook applies when the VM has no annotation.
    pub fn default_reserved(&self) -> Option<i64> {
        if !self.has_ratio_setting() {
            return Some(LEGACY_DEFAULT_RESERVED);
        }
        match self.ratio_setting.as_deref() {
            None => Some(LEGACY_DEFAULT_RESERVED),
            Some(r) if ratio_is_off(r) => Some(LEGACY_DEFAULT_RESERVED),
            Some(_) => None,
        }
    }
}

/// Harvester's own default of `additional-guest-memory-overhead-ratio` (v1.4+).
pub const DEFAULT_RATIO: &str = "1.5";

/// The ratio the setting holds: its value, else its default; an empty one means Harvester's
/// default "1.5" (harvester/harvester pkg/settings, v1.4.0), not off.
fn effective_ratio(s: &HarvesterSetting) -> String {
    let set = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    set(s.value.as_deref())
        .or_else(|| set(s.default.as_deref()))
        .unwrap_or_else(|| DEFAULT_RATIO.to_string())
}

/// The ratio is off when its value equals 0 ("0", "0.0", "0e0"); Harvester's validator refuses
/// what is not a number, so such a value is taken as off too (the webhook then reserves 100Mi).
fn ratio_is_off(ratio: &str) -> bool {
    ratio.trim().parse::<f64>().map_or(true, |r| r == 0.0)
}

/// Where a VM's reservation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservedSource {
    /// `harvesterhci.io/reservedMemory`.
    Annotation,
    /// Harvester's default (100Mi) applied by the webhook.
    HarvesterDefault,
    /// The gap between `limits.memory` and `memory.guest` (plain KubeVirt).
    GuestGap,
    /// Nothing is reserved: guest = limit (or no limit).
    None,
}

impl ReservedSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservedSource::Annotation => "annotation",
            ReservedSource::HarvesterDefault => "harvester-default",
            ReservedSource::GuestGap => "guest-gap",
            ReservedSource::None => "none",
        }
    }
}

/// The VM's `reservedMemory` annotation in bytes: `Some(Ok)` when set and valid.
pub fn annotation(vm: &VirtualMachine) -> Option<Result<i64, crate::units::QuantityError>> {
    vm.metadata
        .annotations
        .get(keys::HARVESTER_RESERVED_MEMORY)
        .map(|v| crate::units::parse_memory(v))
}

/// Whether Harvester's hotplug annotation is on (the reservation annotation then does nothing
/// when the VM sets an explicit guest).
pub fn hotplug(vm: &VirtualMachine) -> bool {
    vm.metadata
        .annotations
        .get(keys::HARVESTER_HOTPLUG)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The size table's reservation for a configured guest size: 1G → 256Mi, 2–4G → 384Mi,
/// ≥ 5G → 512Mi, ≥ 10G → 1024Mi (below 2G: 256Mi; 4–5G: 384Mi).
pub fn size_table_reserve(guest_bytes: i64) -> i64 {
    if guest_bytes >= 10 * GI {
        1024 * MI
    } else if guest_bytes >= 5 * GI {
        512 * MI
    } else if guest_bytes >= 2 * GI {
        384 * MI
    } else {
        256 * MI
    }
}

/// A one-line description of the size table's row used.
pub fn size_table_row(guest_bytes: i64) -> &'static str {
    if guest_bytes >= 10 * GI {
        "VMs of 10Gi or more"
    } else if guest_bytes >= 5 * GI {
        "VMs of 5Gi to 10Gi"
    } else if guest_bytes >= 2 * GI {
        "VMs of 2Gi to 5Gi"
    } else {
        "VMs under 2Gi"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(name: &str, value: Option<&str>, default: Option<&str>) -> HarvesterSetting {
        let mut s = HarvesterSetting::default();
        s.metadata.name = name.into();
        s.value = value.map(String::from);
        s.default = default.map(String::from);
        s
    }

    #[test]
    fn default_reservation_by_release_and_ratio() {
        // v1.2: no ratio setting → 100Mi.
        let v12 =
            HarvesterContext::from_settings(&[setting("server-version", Some("v1.2.1"), None)]);
        assert_eq!(v12.default_reserved(), Some(100 * MI));
        // v1.4 with the default ratio 1.5 → nothing reserved (guest = limit).
        let v14 = HarvesterContext::from_settings(&[
            setting("server-version", Some("v1.4.0"), None),
            setting("additional-guest-memory-overhead-ratio", None, Some("1.5")),
        ]);
        assert_eq!(v14.default_reserved(), None);
        // v1.4: an empty value is Harvester's default 1.5, not off → nothing reserved.
        for empty in [Some(""), Some("  "), None] {
            let c = HarvesterContext::from_settings(&[
                setting("server-version", Some("v1.4.2"), None),
                setting("additional-guest-memory-overhead-ratio", empty, None),
            ]);
            assert_eq!(c.ratio_setting.as_deref(), Some("1.5"), "{empty:?}");
            assert_eq!(c.default_reserved(), None, "{empty:?}");
        }
        // v1.4 with the ratio off (any value equal to 0) → 100Mi again.
        for off in ["0", "0.0", " 0.00 ", "0e0"] {
            let c = HarvesterContext::from_settings(&[
                setting("server-version", Some("v1.4.2"), None),
                setting(
                    "additional-guest-memory-overhead-ratio",
                    Some(off),
                    Some("1.5"),
                ),
            ]);
            assert_eq!(c.default_reserved(), Some(100 * MI), "{off:?}");
        }
        // Unknown version: the ratio setting's presence decides.
        let c = HarvesterContext::from_settings(&[setting(
            "additional-guest-memory-overhead-ratio",
            Some("2"),
            None,
        )]);
        assert_eq!(c.default_reserved(), None);
        assert_eq!(
            HarvesterContext::default().default_reserved(),
            Some(100 * MI)
        );
    }

    #[test]
    fn the_hotplug_annotation_is_read_whatever_its_case() {
        for (value, on) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("false", false),
            ("", false),
        ] {
            let mut vm = VirtualMachine::default();
            vm.metadata
                .annotations
                .insert(keys::HARVESTER_HOTPLUG.into(), value.into());
            assert_eq!(hotplug(&vm), on, "{value:?}");
        }
    }

    #[test]
    fn overcommit_setting() {
        let c = HarvesterContext::from_settings(&[setting(
            "overcommit-config",
            Some(r#"{"cpu":1600,"memory":200,"storage":200}"#),
            Some(r#"{"cpu":1600,"memory":150,"storage":200}"#),
        )]);
        assert_eq!(c.overcommit_memory, 200);
        assert_eq!(HarvesterContext::from_settings(&[]).overcommit_memory, 150);
    }

    #[test]
    fn size_table() {
        assert_eq!(size_table_reserve(GI), 256 * MI);
        assert_eq!(size_table_reserve(1948 * MI), 256 * MI);
        assert_eq!(size_table_reserve(2 * GI), 384 * MI);
        assert_eq!(size_table_reserve(4 * GI), 384 * MI);
        assert_eq!(size_table_reserve(4 * GI + 512 * MI), 384 * MI);
        assert_eq!(size_table_reserve(5 * GI), 512 * MI);
        assert_eq!(size_table_reserve(8 * GI), 512 * MI);
        assert_eq!(size_table_reserve(10 * GI), 1024 * MI);
        assert_eq!(size_table_reserve(64 * GI), 1024 * MI);
    }
}
