//! The resource types the simulated API server serves, and their discovery documents.

use serde_json::{json, Value};

/// One REST resource (`pods`, `virtualmachines.kubevirt.io`, ...).
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// Store key: `plural` for the core group, `plural.group` otherwise.
    pub key: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Subresources served (`status`, `exec`).
    pub subresources: &'static [&'static str],
    /// Whether this is a custom resource (strategic merge patch is refused for those).
    pub custom: bool,
    /// Whether the harvester flavour is needed for this resource to exist.
    pub harvester_only: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `virtualmachines.kubevirt.io`, as error messages name it.
    pub fn qualified(&self) -> &'static str {
        self.key
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

macro_rules! rt {
    ($key:expr, $group:expr, $version:expr, $plural:expr, $singular:expr, $kind:expr, $ns:expr, $short:expr, $sub:expr, $custom:expr, $harv:expr) => {
        ResourceType {
            key: $key,
            group: $group,
            version: $version,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: $ns,
            short_names: $short,
            subresources: $sub,
            custom: $custom,
            harvester_only: $harv,
        }
    };
}

pub static NAMESPACES: ResourceType = rt!(
    "namespaces",
    "",
    "v1",
    "namespaces",
    "namespace",
    "Namespace",
    false,
    &["ns"],
    &["status"],
    false,
    false
);
pub static NODES: ResourceType = rt!(
    "nodes",
    "",
    "v1",
    "nodes",
    "node",
    "Node",
    false,
    &["no"],
    &["status"],
    false,
    false
);
pub static PODS: ResourceType = rt!(
    "pods",
    "",
    "v1",
    "pods",
    "pod",
    "Pod",
    true,
    &["po"],
    &["status", "exec"],
    false,
    false
);
pub static RESOURCE_QUOTAS: ResourceType = rt!(
    "resourcequotas",
    "",
    "v1",
    "resourcequotas",
    "resourcequota",
    "ResourceQuota",
    true,
    &["quota"],
    &["status"],
    false,
    false
);
// Monitoring (issue 20): rancher-monitoring's Prometheus Service, reached through `services/proxy`.
pub static SERVICES: ResourceType = rt!(
    "services",
    "",
    "v1",
    "services",
    "service",
    "Service",
    true,
    &["svc"],
    &["status", "proxy"],
    false,
    false
);
pub static VIRTUAL_MACHINES: ResourceType = rt!(
    "virtualmachines.kubevirt.io",
    "kubevirt.io",
    "v1",
    "virtualmachines",
    "virtualmachine",
    "VirtualMachine",
    true,
    &["vm", "vms"],
    &["status"],
    true,
    false
);
pub static VIRTUAL_MACHINE_INSTANCES: ResourceType = rt!(
    "virtualmachineinstances.kubevirt.io",
    "kubevirt.io",
    "v1",
    "virtualmachineinstances",
    "virtualmachineinstance",
    "VirtualMachineInstance",
    true,
    &["vmi", "vmis"],
    &["status"],
    true,
    false
);
pub static KUBEVIRTS: ResourceType = rt!(
    "kubevirts.kubevirt.io",
    "kubevirt.io",
    "v1",
    "kubevirts",
    "kubevirt",
    "KubeVirt",
    true,
    &["kv", "kvs"],
    &["status"],
    true,
    false
);
pub static SETTINGS: ResourceType = rt!(
    "settings.harvesterhci.io",
    "harvesterhci.io",
    "v1beta1",
    "settings",
    "setting",
    "Setting",
    false,
    &[],
    &[],
    true,
    true
);

// Instance types (issue 16): VMs with `spec.instancetype` take their memory from these.
pub static VIRTUAL_MACHINE_INSTANCETYPES: ResourceType = rt!(
    "virtualmachineinstancetypes.instancetype.kubevirt.io",
    INSTANCETYPE_GROUP,
    "v1beta1",
    "virtualmachineinstancetypes",
    "virtualmachineinstancetype",
    "VirtualMachineInstancetype",
    true,
    &["vminstancetype", "vminstancetypes", "vmf", "vmfs"],
    &[],
    true,
    false
);
pub static VIRTUAL_MACHINE_CLUSTER_INSTANCETYPES: ResourceType = rt!(
    "virtualmachineclusterinstancetypes.instancetype.kubevirt.io",
    INSTANCETYPE_GROUP,
    "v1beta1",
    "virtualmachineclusterinstancetypes",
    "virtualmachineclusterinstancetype",
    "VirtualMachineClusterInstancetype",
    false,
    &[
        "vmclusterinstancetype",
        "vmclusterinstancetypes",
        "vmcf",
        "vmcfs"
    ],
    &[],
    true,
    false
);

/// KubeVirt's instance type API group.
pub const INSTANCETYPE_GROUP: &str = "instancetype.kubevirt.io";

/// Every stored resource type.
pub static ALL: [&ResourceType; 11] = [
    &NAMESPACES,
    &NODES,
    &PODS,
    &RESOURCE_QUOTAS,
    &VIRTUAL_MACHINES,
    &VIRTUAL_MACHINE_INSTANCES,
    &KUBEVIRTS,
    &SETTINGS,
    &VIRTUAL_MACHINE_INSTANCETYPES,
    &VIRTUAL_MACHINE_CLUSTER_INSTANCETYPES,
    &SERVICES,
];

/// The group of KubeVirt's subresources (`restart`, `start`, `stop`).
pub const SUBRESOURCES_GROUP: &str = "subresources.kubevirt.io";

/// The resource type served at `group/version` under `plural`, if any.
pub fn find(
    group: &str,
    version: &str,
    plural: &str,
    harvester: bool,
) -> Option<&'static ResourceType> {
    ALL.iter()
        .copied()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
        .filter(|r| harvester || !r.harvester_only)
}

fn resource_entry(r: &ResourceType) -> Vec<Value> {
    let mut out = vec![json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": VERBS,
        "shortNames": r.short_names,
        "categories": if r.group == "kubevirt.io" { vec!["all"] } else { vec![] },
    })];
    for sub in r.subresources {
        let verbs: &[&str] = if *sub == "exec" {
            &["create", "get"]
        } else {
            &["get", "patch", "update"]
        };
        let kind = if *sub == "exec" {
            "PodExecOptions"
        } else {
            r.kind
        };
        out.push(json!({
            "name": format!("{}/{}", r.plural, sub),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": kind,
            "verbs": verbs,
        }));
    }
    out
}

/// `GET /api/v1` or `/apis/{group}/{version}`: the APIResourceList, or `None` for an unknown one.
pub fn resource_list(group: &str, version: &str, harvester: bool) -> Option<Value> {
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = if group == SUBRESOURCES_GROUP && version == "v1" {
        ["restart", "start", "stop"]
            .iter()
            .map(|s| {
                json!({"name": format!("virtualmachines/{s}"), "singularName": "", "namespaced": true,
                       "kind": "VirtualMachine", "verbs": ["update"]})
            })
            .collect()
    } else {
        let matching: Vec<&ResourceType> = ALL
            .iter()
            .copied()
            .filter(|r| {
                r.group == group && r.version == version && (harvester || !r.harvester_only)
            })
            .collect();
        if matching.is_empty() {
            return None;
        }
        matching.into_iter().flat_map(resource_entry).collect()
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// `GET /api`.
pub fn api_versions(addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}],
    })
}

/// `GET /apis`: the APIGroupList (legacy discovery).
pub fn api_group_list(harvester: bool) -> Value {
    let mut groups = vec![
        group_entry("kubevirt.io", "v1"),
        group_entry(SUBRESOURCES_GROUP, "v1"),
        group_entry(INSTANCETYPE_GROUP, "v1beta1"),
    ];
    if harvester {
        groups.push(group_entry("harvesterhci.io", "v1beta1"));
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`.
pub fn api_group(group: &str, harvester: bool) -> Option<Value> {
    let version = match group {
        "kubevirt.io" | SUBRESOURCES_GROUP => "v1",
        INSTANCETYPE_GROUP => "v1beta1",
        "harvesterhci.io" if harvester => "v1beta1",
        _ => return None,
    };
    let mut g = group_entry(group, version);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

fn group_entry(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_resources_by_group_version_plural() {
        assert_eq!(find("", "v1", "pods", false), Some(&PODS));
        assert_eq!(
            find("kubevirt.io", "v1", "virtualmachines", false),
            Some(&VIRTUAL_MACHINES)
        );
        assert_eq!(find("harvesterhci.io", "v1beta1", "settings", false), None);
        assert_eq!(
            find("harvesterhci.io", "v1beta1", "settings", true),
            Some(&SETTINGS)
        );
        assert_eq!(find("kubevirt.io", "v2", "virtualmachines", false), None);
    }

    #[test]
    fn discovery_lists_subresources_and_short_names() {
        let list = resource_list("kubevirt.io", "v1", false).unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"virtualmachines"));
        assert!(names.contains(&"virtualmachines/status"));
        assert!(names.contains(&"virtualmachineinstances"));
        let vm = &list["resources"][0];
        assert_eq!(vm["shortNames"][0], "vm");
        assert!(resource_list("harvesterhci.io", "v1beta1", false).is_none());
        let sub = resource_list(SUBRESOURCES_GROUP, "v1", false).unwrap();
        assert_eq!(sub["resources"][0]["name"], "virtualmachines/restart");
    }
}
