//! The short marks a row carries (`flags` in JSON, the FLAGS column): one enum, written as the
//! same kebab-case words the JSON contract has always had.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    /// The VM's memory spec differs from the running VMI's: it takes effect at the next restart.
    RestartPending,
    /// Neither the VM nor its pod has a memory limit.
    NoLimit,
    /// The pod's limit is below the guest's memory.
    LimitBelowGuest,
    /// The VM's limit equals its guest memory (only KubeVirt's overhead is reserved).
    GuestEqualsLimit,
    /// Less is reserved than recommended.
    UnderReserved,
    /// The guest resident is estimated (qemu's smaps was not read).
    Estimated,
    /// Guest RAM is hugepage-backed (not charged to the memory cgroup).
    Hugepages,
    Migrating,
    /// The node's live data is old or failed this round.
    Stale,
    /// The current pod has been OOM-killed.
    OomKilled,
    /// An earlier pod of this VM was OOM-killed.
    OomKilledBefore,
    // Memory hotplug and instance types (issue 16).
    /// qemu does not have the guest the VMI asks for yet (a memory hotplug under way).
    HotplugInProgress,
    /// The VM takes its memory from an instance type (`spec.instancetype`).
    Instancetype,
    // Live cgroup reading (livecg).
    /// The VM's cgroup has swap in use.
    Swapping,
    /// The guest grew fast between the guest RAM figure and the usage (a boot, a database
    /// warming up): that reading's overhead is uncertain by the growth.
    GuestFilling,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::RestartPending => "restart-pending",
            Flag::NoLimit => "no-limit",
            Flag::LimitBelowGuest => "limit-below-guest",
            Flag::GuestEqualsLimit => "guest-equals-limit",
            Flag::UnderReserved => "under-reserved",
            Flag::Estimated => "estimated",
            Flag::Hugepages => "hugepages",
            Flag::Migrating => "migrating",
            Flag::Stale => "stale",
            Flag::OomKilled => "oom-killed",
            Flag::OomKilledBefore => "oom-killed-before",
            Flag::HotplugInProgress => "hotplug-in-progress",
            Flag::Instancetype => "instancetype",
            Flag::Swapping => "swapping",
            Flag::GuestFilling => "guest-filling",
        }
    }
}

impl std::fmt::Display for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The flags joined by `sep`, as the table and the detail view show them.
pub fn joined(flags: &[Flag], sep: &str) -> String {
    flags
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Flag; 15] = [
        Flag::RestartPending,
        Flag::NoLimit,
        Flag::LimitBelowGuest,
        Flag::GuestEqualsLimit,
        Flag::UnderReserved,
        Flag::Estimated,
        Flag::Hugepages,
        Flag::Migrating,
        Flag::Stale,
        Flag::OomKilled,
        Flag::OomKilledBefore,
        Flag::HotplugInProgress,
        Flag::Instancetype,
        Flag::Swapping,
        Flag::GuestFilling,
    ];

    #[test]
    fn json_is_the_word_the_table_shows() {
        for f in ALL {
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.as_str())
            );
        }
    }
}
