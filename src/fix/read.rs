//! Reading one VM and what sizes its pod (VMI, launcher pods, KubeVirt CR, Harvester settings,
//! quotas and, under a quota on limits.memory, its Namespace) from the API server. Small on purpose: it reads only what the planner needs. The
//! session adds the VM's live evidence (its node's probe and kernel log) before planning;
//! [`read_target`] plans from the objects alone.

use std::sync::Arc;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::apply::{pod_resource, vm_resource, vmi_resource, ApplyError};
use super::target::Refusal;
use super::target::Target;
use crate::model::inventory::{Inventory, Readings, SourceKind};
use crate::model::objects::{
    keys, Instancetype, Namespace, Pod, VirtualMachine, VirtualMachineClusterInstancetype,
    VirtualMachineInstance, VirtualMachineInstancetype,
};
use crate::model::report::ReportOptions;
use crate::model::version::Version;

/// Why the VM could not be read or planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("reading VirtualMachine {vm}: {source}")]
    Cluster { vm: String, source: ApplyError },
    #[error(transparent)]
    Refused(#[from] Refusal),
}

fn lean<T: DeserializeOwned>(o: &DynamicObject) -> Option<T> {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

async fn list_lean<T: DeserializeOwned>(
    api: Api<DynamicObject>,
    lp: &ListParams,
    what: &str,
    warnings: &mut Vec<String>,
) -> Option<Vec<T>> {
    match api.list(lp).await {
        Ok(list) => Some(list.items.iter().filter_map(lean).collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => None,
        Err(e) => {
            warnings.push(format!(
                "could not list {what}: {}",
                ApplyError::from_kube(&e)
            ));
            None
        }
    }
}

/// Read `namespace/name` and everything the planner needs about it, without live evidence.
pub async fn read_target(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    opts: &ReportOptions,
) -> Result<Target, ReadError> {
    let evidence = Evidence {
        readings: Readings::new(),
        options: opts.clone(),
    };
    read_target_with(client, namespace, name, &evidence).await
}

/// What a VM is judged from besides its objects: the node readings and the report's inputs
/// (peaks, kernel-log kills, history). Planning again after a conflict uses the same, so the
/// new plan recommends from the same evidence as the first.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub readings: Readings,
    pub options: ReportOptions,
}

/// Read `namespace/name` again and judge it from `evidence`.
pub async fn read_target_with(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    evidence: &Evidence,
) -> Result<Target, ReadError> {
    let objects = read_objects(client, namespace, name).await?;
    Ok(Target::new(
        objects.vm,
        &objects.inventory,
        &evidence.readings,
        &evidence.options,
    )?)
}

/// One VM's objects as read.
#[derive(Debug, Clone)]
pub struct VmObjects {
    /// The VirtualMachine as the server stored it (the patch is planned from it).
    pub vm: Value,
    /// Its VMI and launcher pods, the KubeVirt CR, Harvester settings and the namespace's
    /// quotas; what could not be listed is in its warnings.
    pub inventory: Inventory,
}

/// Read `namespace/name` and the objects that size its pod.
pub async fn read_objects(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<VmObjects, ReadError> {
    let vm_ref = format!("{namespace}/{name}");
    let cluster = |source: ApplyError| ReadError::Cluster {
        vm: vm_ref.clone(),
        source,
    };
    let vms: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &vm_resource());
    let vm = vms
        .get(name)
        .await
        .map_err(|e| cluster(ApplyError::from_kube(&e)))?;
    let raw: Value =
        serde_json::to_value(&vm).map_err(|e| cluster(ApplyError::Invalid(e.to_string())))?;
    let mut inv = Inventory {
        source: SourceKind::Live,
        ..Default::default()
    };
    let vmis: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &vmi_resource());
    let vmi = vmis
        .get_opt(name)
        .await
        .map_err(|e| cluster(ApplyError::from_kube(&e)))?;
    let mut warnings = Vec::new();
    if let Some(vmi) = vmi {
        if let Some(uid) = vmi.metadata.uid.as_deref() {
            inv.pods = launcher_pods(client, namespace, uid, &mut warnings).await;
        }
        inv.vmis
            .extend(lean::<VirtualMachineInstance>(&vmi).map(Arc::new));
    }
    read_sizing_objects(client, namespace, &mut inv, &mut warnings).await;
    read_instancetype(client, namespace, &raw, &mut inv, &mut warnings).await;
    if !version_stated(&inv) {
        read_version_evidence(client, namespace, &mut inv, &mut warnings).await;
    }
    inv.warnings = warnings;
    Ok(VmObjects {
        vm: raw,
        inventory: inv,
    })
}

/// The launcher pods of the VMI with `uid` (what cannot be listed is a warning).
async fn launcher_pods(
    client: &kube::Client,
    namespace: &str,
    uid: &str,
    warnings: &mut Vec<String>,
) -> Vec<Arc<Pod>> {
    let pods: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &pod_resource());
    let selector = format!(
        "{}={},{}={uid}",
        keys::LAUNCHER_LABEL,
        keys::LAUNCHER_LABEL_VALUE,
        keys::CREATED_BY
    );
    list_lean::<Pod>(
        pods,
        &ListParams::default().labels(&selector),
        "pods",
        warnings,
    )
    .await
    .unwrap_or_default()
    .into_iter()
    .map(Arc::new)
    .collect()
}

/// What sizes a pod besides the VM: the KubeVirt CR, Harvester's settings and the
/// namespace's quotas (what cannot be listed is a warning).
async fn read_sizing_objects(
    client: &kube::Client,
    namespace: &str,
    inv: &mut Inventory,
    warnings: &mut Vec<String>,
) {
    let kubevirts = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "KubeVirt"),
        "kubevirts",
    );
    inv.kubevirts = list_lean(
        Api::all_with(client.clone(), &kubevirts),
        &ListParams::default(),
        "the KubeVirt CR",
        warnings,
    )
    .await
    .unwrap_or_default();
    let settings = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("harvesterhci.io", "v1beta1", "Setting"),
        "settings",
    );
    // Only the settings the report reads, each by name (the read-only role grants them by
    // `resourceNames`).
    for name in crate::cluster::live::SETTINGS_READ {
        let found = list_lean(
            Api::all_with(client.clone(), &settings),
            &ListParams::default().fields(&format!("metadata.name={name}")),
            &format!("the Harvester setting {name}"),
            warnings,
        )
        .await;
        if let Some(mut found) = found {
            inv.harvester_settings
                .get_or_insert_with(Vec::new)
                .append(&mut found);
        }
    }
    let quotas = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("", "v1", "ResourceQuota"),
        "resourcequotas",
    );
    inv.resource_quotas = list_lean(
        Api::namespaced_with(client.clone(), namespace, &quotas),
        &ListParams::default(),
        "resource quotas",
        warnings,
    )
    .await
    .unwrap_or_default();
    if inv.resource_quotas.iter().any(|q| q.limits_memory()) {
        inv.namespaces = read_namespace(client, namespace).await;
    }
}

/// The VM's Namespace (its auto memory limits ratio label), when it may be read; the planner
/// says what it assumed when not.
async fn read_namespace(client: &kube::Client, namespace: &str) -> Option<Vec<Namespace>> {
    let namespaces = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("", "v1", "Namespace"),
        "namespaces",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &namespaces);
    match api.get_opt(namespace).await {
        Ok(found) => Some(found.as_ref().and_then(lean).into_iter().collect()),
        Err(_) => None,
    }
}

/// The instance type the VM names, if any (a missing or unreadable one is a warning: the
/// running VMI's values still size its pod).
async fn read_instancetype(
    client: &kube::Client,
    namespace: &str,
    raw: &Value,
    inv: &mut Inventory,
    warnings: &mut Vec<String>,
) {
    let Ok(vm) = serde_json::from_value::<VirtualMachine>(raw.clone()) else {
        return;
    };
    let Some(m) = vm.spec.instancetype else {
        return;
    };
    let cluster_wide = m.cluster_wide();
    let kind = if cluster_wide {
        "VirtualMachineClusterInstancetype"
    } else {
        "VirtualMachineInstancetype"
    };
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("instancetype.kubevirt.io", "v1beta1", kind),
        &format!("{}s", kind.to_ascii_lowercase()),
    );
    let api: Api<DynamicObject> = if cluster_wide {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, &resource)
    };
    // Listed by name (a `metadata.name` field selector) rather than read with get: the
    // read-only role lets list and the dashboard list and watch instance types, and that is
    // all fix needs too.
    let by_name = ListParams::default().fields(&format!("metadata.name={}", m.name));
    let found = match api.list(&by_name).await.map(|l| l.items.into_iter().next()) {
        Ok(Some(o)) => o,
        Ok(None) => return warnings.push(format!("{kind} {} was not found", m.name)),
        Err(e) => {
            return warnings.push(format!(
                "could not read {kind} {}: {}",
                m.name,
                ApplyError::from_kube(&e)
            ))
        }
    };
    let it = if cluster_wide {
        lean::<VirtualMachineClusterInstancetype>(&found).map(Instancetype::from)
    } else {
        lean::<VirtualMachineInstancetype>(&found).map(Instancetype::from)
    };
    inv.instancetypes.extend(it);
}

/// Whether the KubeVirt CR or a launcher image tag states the version.
fn version_stated(inv: &Inventory) -> bool {
    let cr = inv
        .kubevirts
        .iter()
        .any(|k| k.status.observed_kube_virt_version.is_some());
    let tagged = inv.pods.iter().any(|p| {
        p.spec
            .containers
            .iter()
            .any(|c| Version::from_launcher_image(&c.image).is_some())
    });
    cr || tagged
}

/// Cap on the launcher pods and VMIs read to infer the version (as `list` does).
const VERSION_EVIDENCE: u32 = 200;

/// Nothing states the version: read other running launcher pods and their VMIs (cluster-wide,
/// else in the VM's namespace), so the plan uses the version their overhead reproduces, as
/// `list` does.
async fn read_version_evidence(
    client: &kube::Client,
    namespace: &str,
    inv: &mut Inventory,
    warnings: &mut Vec<String>,
) {
    let selector = format!("{}={}", keys::LAUNCHER_LABEL, keys::LAUNCHER_LABEL_VALUE);
    let lp = ListParams::default()
        .labels(&selector)
        .limit(VERSION_EVIDENCE);
    let mut quiet = Vec::new();
    let all_pods = list_lean::<Pod>(
        Api::all_with(client.clone(), &pod_resource()),
        &lp,
        "pods",
        &mut quiet,
    )
    .await;
    let cluster_wide = all_pods.is_some();
    let pods = match all_pods {
        Some(p) => p,
        None => list_lean::<Pod>(
            Api::namespaced_with(client.clone(), namespace, &pod_resource()),
            &lp,
            "pods",
            warnings,
        )
        .await
        .unwrap_or_default(),
    };
    let vmi_api: Api<DynamicObject> = if cluster_wide {
        Api::all_with(client.clone(), &vmi_resource())
    } else {
        Api::namespaced_with(client.clone(), namespace, &vmi_resource())
    };
    let lp = ListParams::default().limit(VERSION_EVIDENCE);
    let vmis = list_lean::<VirtualMachineInstance>(vmi_api, &lp, "VMIs", warnings)
        .await
        .unwrap_or_default();
    let known_pods: Vec<String> = inv.pods.iter().map(|p| p.metadata.uid.clone()).collect();
    let known_vmis: Vec<String> = inv.vmis.iter().map(|v| v.metadata.uid.clone()).collect();
    inv.pods.extend(
        pods.into_iter()
            .filter(|p| !known_pods.contains(&p.metadata.uid))
            .map(Arc::new),
    );
    inv.vmis.extend(
        vmis.into_iter()
            .filter(|v| !known_vmis.contains(&v.metadata.uid))
            .map(Arc::new),
    );
}
