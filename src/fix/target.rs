//! What the planner works on: the VM as the server sent it, its report row, and the cluster
//! facts that size its next pod. Pure.

use serde_json::Value;

use crate::model::auto_limits::{AutoLimit, NamespaceLimits};
use crate::model::harvester::HarvesterContext;
use crate::model::inventory::{Inventory, Readings};
use crate::model::objects::{Instancetype, VirtualMachine};
use crate::model::overhead::ClusterInputs;
use crate::model::report::{self, ReportOptions, VmRow};
use crate::model::version::Version;

/// Why the planner will not plan a change (the same reason Harvester's webhook would give).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Webhook(String),
    #[error("VirtualMachine {0} has no memory limit, so there is no limit to reserve room under (it cannot be cgroup-OOM-killed)")]
    NoLimit(String),
    #[error("VirtualMachine {vm} has a field that is not a quantity: {problem}")]
    Malformed { vm: String, problem: String },
    #[error("VirtualMachine {vm}: {problem}; remove that annotation by hand if it is not yours")]
    BadUndoRecord { vm: String, problem: String },
    /// The VM no longer holds what the tool wrote: someone changed it since.
    #[error("undo refused for VirtualMachine {vm}: {field} is {now} now, not the {written} kubectl vmmem wrote; it was changed since, and undo restores only what this tool wrote (edit the VM by hand, or remove the annotation {annotation})")]
    UndoChanged {
        vm: String,
        field: &'static str,
        written: String,
        now: String,
        annotation: &'static str,
    },
    #[error("VirtualMachine {vm} takes its memory from instance type {instancetype}: KubeVirt's admission rejects memory.guest, requests and limits on such a VM, so the {strategy} strategy cannot apply (added-overhead can, on KubeVirt v1.8 or newer)")]
    InstancetypeStrategy {
        vm: String,
        instancetype: String,
        strategy: &'static str,
    },
    #[error("VirtualMachine {vm} takes its memory from instance type {instancetype}: memory cannot be reserved on an instance-type VM before KubeVirt v1.8 (this cluster runs {version}); pick a larger instance type, or remove the pod's limit with --remove-limit if it has one")]
    InstancetypeBeforeV18 {
        vm: String,
        instancetype: String,
        version: Version,
    },
}

/// Cluster facts that decide the pod KubeVirt builds for the VM's next start.
#[derive(Debug, Clone)]
pub struct FixContext {
    /// The KubeVirt version that will start the next VMI (the cluster's, not the old pod's).
    pub version: Version,
    /// `Some` on Harvester.
    pub harvester: Option<HarvesterContext>,
    pub inputs: ClusterInputs,
    /// KubeVirt `developerConfiguration.memoryOvercommit` (percent, default 100).
    pub memory_overcommit: i64,
    /// A ResourceQuota in the VM's namespace constrains `limits.memory`.
    pub quota_on_limits: bool,
    /// The ratio KubeVirt limits a VM without a memory limit to (× its pod's request) in this
    /// namespace, when it does (a quota on `limits.memory`).
    pub auto_limit: Option<AutoLimit>,
    /// Sentences on what had to be assumed about the namespace (its ratio label unread).
    pub namespace_warnings: Vec<String>,
    /// The instance types VMs may take their memory from.
    pub instancetypes: Vec<Instancetype>,
}

impl FixContext {
    pub fn from_inventory(inv: &Inventory, namespace: &str, version: Version) -> FixContext {
        let facts = report::SizingFacts::from_inventory(inv);
        let namespaces = NamespaceLimits::from_inventory(inv);
        let auto_limit = namespaces.auto_limit(namespace, version, &facts.inputs.config);
        FixContext {
            auto_limit,
            namespace_warnings: auto_limit
                .filter(|a| a.assumed)
                .map(|_| namespaces.assumed_warning(namespace))
                .into_iter()
                .collect(),
            version,
            harvester: facts.harvester,
            inputs: facts.inputs,
            memory_overcommit: facts.memory_overcommit,
            quota_on_limits: inv
                .resource_quotas
                .iter()
                .any(|q| q.metadata.namespace == namespace && q.limits_memory()),
            instancetypes: inv.instancetypes.clone(),
        }
    }
}

/// A VM to fix.
#[derive(Debug, Clone)]
pub struct Target {
    /// The VirtualMachine exactly as the server sent it.
    pub raw: Value,
    /// Its lean typed view.
    pub vm: VirtualMachine,
    /// Its report row (recommendation, current pod limit, phase).
    pub row: VmRow,
    pub context: FixContext,
    /// What the reader could not see or had to assume (e.g. the KubeVirt version), as sentences.
    pub warnings: Vec<String>,
}

impl Target {
    /// Build the target from the VM as the server sent it and an inventory holding its VMI,
    /// pods, KubeVirt CR, Harvester settings and quotas (the VM itself is taken from `raw`).
    pub fn new(
        raw: Value,
        inv: &Inventory,
        readings: &Readings,
        opts: &ReportOptions,
    ) -> Result<Target, Refusal> {
        let vm: VirtualMachine =
            serde_json::from_value(raw.clone()).map_err(|e| Refusal::Malformed {
                vm: object_ref(&raw),
                problem: e.to_string(),
            })?;
        let (ns, name) = (vm.metadata.namespace.clone(), vm.metadata.name.clone());
        let mut inv = inv.clone();
        inv.vms
            .retain(|v| !(v.metadata.namespace == ns && v.metadata.name == name));
        inv.vms.push(std::sync::Arc::new(vm.clone()));
        let rep = report::build(&inv, readings, opts);
        let row = rep
            .vms
            .into_iter()
            .find(|r| r.has_vm && r.namespace == ns && r.name == name)
            .ok_or_else(|| Refusal::Malformed {
                vm: format!("{ns}/{name}"),
                problem: "it is not a VirtualMachine the report can read".into(),
            })?;
        let context = FixContext::from_inventory(&inv, &ns, rep.kubevirt.version);
        Ok(Target {
            raw,
            vm,
            row,
            context,
            warnings: rep.warnings,
        })
    }
}

fn object_ref(raw: &Value) -> String {
    let m = &raw["metadata"];
    format!(
        "{}/{}",
        m["namespace"].as_str().unwrap_or(""),
        m["name"].as_str().unwrap_or("")
    )
}
