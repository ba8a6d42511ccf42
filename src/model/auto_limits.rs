//! The memory limit KubeVirt gives a VMI that has none, in a namespace whose ResourceQuota
//! constrains `limits.memory` (pkg/virt-controller/services/template.go
//! `doesVMIRequireAutoMemoryLimits`, renderresources.go `WithAutoMemoryLimits`): the compute
//! container's request × the Namespace's label `alpha.kubevirt.io/auto-memory-limits-ratio`
//! (missing, not a number or below 1: 2), truncated to whole bytes. KubeVirt v1.1 added it
//! behind the feature gate `AutoResourceLimitsGate`, which went GA (always on) in v1.5.0.
//!
//! Dedicated CPUs take precedence: their limit is the request (`WithCPUPinning`).

use std::collections::{BTreeMap, BTreeSet};

use super::inventory::Inventory;
use super::objects::{keys, KubeVirtConfiguration};
use super::version::Version;

/// The ratio KubeVirt uses when the label does not give a valid one.
pub const DEFAULT_RATIO: f64 = 2.0;
const GATE: &str = "AutoResourceLimitsGate";

/// What the namespaces say about automatic memory limits.
#[derive(Debug, Clone, Default)]
pub struct NamespaceLimits {
    /// Namespaces with a ResourceQuota on `limits.memory`.
    quota: BTreeSet<String>,
    /// Each read Namespace's ratio label (`None`: no label); `None` when Namespaces were not read.
    labels: Option<BTreeMap<String, Option<String>>>,
}

/// Where a VM's automatic limit ratio comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoLimit {
    pub ratio: f64,
    /// The Namespace object was not read: the ratio is KubeVirt's default, assumed.
    pub assumed: bool,
}

impl NamespaceLimits {
    pub fn from_inventory(inv: &Inventory) -> NamespaceLimits {
        NamespaceLimits {
            quota: inv
                .resource_quotas
                .iter()
                .filter(|q| q.limits_memory())
                .map(|q| q.metadata.namespace.clone())
                .collect(),
            labels: inv.namespaces.as_ref().map(|all| {
                all.iter()
                    .map(|n| {
                        let label = n.metadata.labels.get(keys::AUTO_MEMORY_LIMITS_RATIO);
                        (n.metadata.name.clone(), label.cloned())
                    })
                    .collect()
            }),
        }
    }

    /// Whether `namespace` has a ResourceQuota on `limits.memory`.
    pub fn has_quota(&self, namespace: &str) -> bool {
        self.quota.contains(namespace)
    }

    /// The ratio KubeVirt `v` applies to a VMI without a memory limit in `namespace`, or `None`
    /// when it sets no limit there.
    pub fn auto_limit(
        &self,
        namespace: &str,
        v: Version,
        config: &KubeVirtConfiguration,
    ) -> Option<AutoLimit> {
        if !self.has_quota(namespace) || !enabled(v, config) {
            return None;
        }
        let label = self.labels.as_ref().map(|l| l.get(namespace));
        Some(match label {
            Some(Some(value)) => AutoLimit {
                ratio: ratio_of(value.as_deref()),
                assumed: false,
            },
            _ => AutoLimit {
                ratio: DEFAULT_RATIO,
                assumed: true,
            },
        })
    }

    /// The warning for a namespace whose ratio had to be assumed.
    pub fn assumed_warning(&self, namespace: &str) -> String {
        let why = if self.labels.is_none() {
            "Namespace objects could not be read (that needs `list` on namespaces; with --from, add `kubectl get namespaces -o yaml`)"
        } else {
            "its Namespace object is not among the objects read"
        };
        format!(
            "namespace {namespace} has a ResourceQuota on limits.memory, so KubeVirt limits its VMs that have no memory limit to their request x the namespace's label {}, but {why}: assuming KubeVirt's default ratio 2",
            keys::AUTO_MEMORY_LIMITS_RATIO
        )
    }
}

/// Whether KubeVirt `v` sets automatic memory limits: GA from v1.5.0, behind the feature gate
/// from v1.1.0.
pub fn enabled(v: Version, config: &KubeVirtConfiguration) -> bool {
    let gate = config
        .developer_configuration
        .as_ref()
        .is_some_and(|d| d.feature_gates.iter().any(|g| g == GATE));
    v >= Version::new(1, 5, 0) || (v >= Version::new(1, 1, 0) && gate)
}

/// The label's ratio as KubeVirt reads it (`strconv.ParseFloat`; invalid or below 1: 2).
pub fn ratio_of(label: Option<&str>) -> f64 {
    match label.map(|l| l.trim_start_matches('+').parse::<f64>()) {
        Some(Ok(r)) if r.is_finite() && r >= 1.0 => r,
        _ => DEFAULT_RATIO,
    }
}

/// The limit: `int64(float64(request) × ratio)`.
pub fn limit_of(request: i64, ratio: f64) -> i64 {
    (request as f64 * ratio) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::{
        DeveloperConfiguration, Namespace, ObjectMeta, ResourceQuota, ResourceQuotaSpec,
    };
    use crate::units::Quantity;

    fn inv(label: Option<&str>, namespaces_read: bool) -> Inventory {
        let mut ns = ObjectMeta {
            name: "lab".into(),
            ..Default::default()
        };
        if let Some(l) = label {
            ns.labels
                .insert(keys::AUTO_MEMORY_LIMITS_RATIO.into(), l.into());
        }
        let mut quota = ResourceQuota {
            metadata: ObjectMeta {
                name: "q".into(),
                namespace: "lab".into(),
                ..Default::default()
            },
            spec: ResourceQuotaSpec::default(),
        };
        quota
            .spec
            .hard
            .insert("limits.memory".into(), Quantity::new("100Gi"));
        Inventory {
            resource_quotas: vec![quota],
            namespaces: namespaces_read.then(|| vec![Namespace { metadata: ns }]),
            ..Default::default()
        }
    }

    fn gate_on() -> KubeVirtConfiguration {
        KubeVirtConfiguration {
            developer_configuration: Some(DeveloperConfiguration {
                feature_gates: vec![GATE.into()],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn ratio_label_and_default() {
        let off = KubeVirtConfiguration::default();
        let v15 = Version::new(1, 5, 0);
        let n = NamespaceLimits::from_inventory(&inv(Some("1.5"), true));
        let a = n.auto_limit("lab", v15, &off).unwrap();
        assert_eq!((a.ratio, a.assumed), (1.5, false));
        assert_eq!(n.auto_limit("other", v15, &off), None);
        // No label: KubeVirt's 2, known (the Namespace was read).
        let n = NamespaceLimits::from_inventory(&inv(None, true));
        assert_eq!(
            n.auto_limit("lab", v15, &off),
            Some(AutoLimit {
                ratio: 2.0,
                assumed: false
            })
        );
        // Namespaces not read: 2, assumed, and a warning naming the right.
        let n = NamespaceLimits::from_inventory(&inv(Some("3"), false));
        assert!(n.auto_limit("lab", v15, &off).unwrap().assumed);
        assert!(n.assumed_warning("lab").contains("`list` on namespaces"));
    }

    #[test]
    fn gate_before_v15() {
        let n = NamespaceLimits::from_inventory(&inv(None, true));
        let v13 = Version::new(1, 3, 1);
        assert_eq!(
            n.auto_limit("lab", v13, &KubeVirtConfiguration::default()),
            None
        );
        assert!(n.auto_limit("lab", v13, &gate_on()).is_some());
        assert_eq!(n.auto_limit("lab", Version::new(1, 0, 1), &gate_on()), None);
    }

    #[test]
    fn invalid_ratios_fall_back_to_two() {
        assert_eq!(ratio_of(Some("0.5")), 2.0);
        assert_eq!(ratio_of(Some("lots")), 2.0);
        assert_eq!(ratio_of(Some("")), 2.0);
        assert_eq!(ratio_of(Some("1.000000")), 1.0);
        assert_eq!(ratio_of(None), 2.0);
        // int64(float64(request) × ratio): truncated.
        assert_eq!(limit_of(1_000_000_001, 1.5), 1_500_000_001);
        assert_eq!(limit_of(3, 1.5), 4);
    }
}
