//! Phases as KubeVirt and Kubernetes write them: a VM's (the VMI's `status.phase`, else the
//! VM's `status.printableStatus`) and a pod's. Known words are variants; a word a newer release
//! adds is kept as it came (`Other`), so nothing is lost and output shows it unchanged.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a phase enum whose known variants read and write their own names.
macro_rules! phase_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A word this version does not know, as it came.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $(stringify!($variant) => $name::$variant,)+
                    other => $name::Other(other.to_string()),
                }
            }
        }

        /// Tests and callers holding a word from elsewhere compare it as written.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Ok($name::from(&*s))
            }
        }
    };
}

phase_enum! {
    /// A VM's phase: the VMI's `status.phase` (kubevirt.io/v1 `VirtualMachineInstancePhase`)
    /// while it has one, else the VM's `status.printableStatus`
    /// (`VirtualMachinePrintableStatus`), else `Stopped` (no VMI) or `Unknown`.
    VmPhase {
        // VMI phases.
        Pending,
        Scheduling,
        Scheduled,
        Running,
        Succeeded,
        Failed,
        Unknown,
        // VM printable statuses that are not VMI phases.
        Stopped,
        Provisioning,
        Starting,
        Stopping,
        Terminating,
        Paused,
        Migrating,
        CrashLoopBackOff,
        ErrorUnschedulable,
        ErrImagePull,
        ImagePullBackOff,
        ErrorPvcNotFound,
        DataVolumeError,
        WaitingForVolumeBinding,
        WaitingForReceiver,
    }
}

impl VmPhase {
    /// The VMI has ended (its pod is done; a new one comes with a restart).
    pub fn ended(&self) -> bool {
        matches!(self, VmPhase::Succeeded | VmPhase::Failed)
    }
}

phase_enum! {
    /// A pod's `status.phase` (core/v1 `PodPhase`).
    PodPhase {
        Pending,
        Running,
        Succeeded,
        Failed,
        Unknown,
    }
}

impl PodPhase {
    /// The pod has ended: its containers will not run again.
    pub fn ended(&self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_words_read_and_write_unchanged() {
        for word in [
            "Running",
            "Stopped",
            "WaitingForReceiver",
            "Failed",
            "SomethingNew",
            "",
        ] {
            let p = VmPhase::from(word);
            assert_eq!(p.as_str(), word);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{word}\""));
            let back: VmPhase = serde_json::from_str(&format!("\"{word}\"")).unwrap();
            assert_eq!(back, p);
        }
        assert_eq!(VmPhase::from("Stopped"), VmPhase::Stopped);
        assert_eq!(VmPhase::from("stopped"), VmPhase::Other("stopped".into()));
        assert!(PodPhase::from("Failed").ended() && !PodPhase::from("Running").ended());
    }
}
