//! The virt-launcher pod of a VMI, sized with the simulator's table of what KubeVirt adds
//! (`sizing`), and its runtime (cgroup limits, PIDs, container ids, memory workload).

use serde_json::{json, Value};

use crate::keys;
use crate::sizing::{self, CONSOLE_LOG_SIDECAR_BYTES};
use crate::units::{bytes_of, same, Exact};
use crate::version::Version;

use super::resources::PODS;
use super::scenario::{Flavour, Workload};
use super::store::meta_str;
use super::workload::{GuestBacking, GuestMappings, Params, Shape};
use super::world::{ClusterConfig, Launcher, VmPlan, World};

const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Five characters like Kubernetes' generateName suffix.
pub fn name_suffix() -> String {
    (0..5)
        .map(|_| NAME_ALPHABET[rand::random_range(0..NAME_ALPHABET.len())] as char)
        .collect()
}

fn container_id() -> String {
    (0..4)
        .map(|_| format!("{:016x}", rand::random::<u64>()))
        .collect()
}

/// The virt-launcher image of this KubeVirt version (SUSE's on Harvester).
pub fn launcher_image(cfg: &ClusterConfig) -> String {
    let v = cfg.version;
    match cfg.flavour {
        Flavour::Harvester => format!(
            "registry.suse.com/suse/sles/15.6/virt-launcher:{}.{}.{}-150600.5.9.1",
            v.major, v.minor, v.patch
        ),
        Flavour::Kubevirt => format!("quay.io/kubevirt/virt-launcher:{v}"),
    }
}

fn floor_page(b: i64) -> i64 {
    b / 4096 * 4096
}

/// What KubeVirt asks for the compute container of a VMI's launcher, with overhead `o`.
struct Sizing {
    /// `requests.memory` (with O unless `overcommitGuestOverhead`).
    memory_request: i64,
    /// `limits.memory` (+ O), or the namespace quota's automatic limit; `None`: unlimited.
    memory_limit: Option<i64>,
    guest: i64,
    vcpus: i64,
    cpu_request: String,
    cpu_limit: Option<String>,
    /// KubeVirt v1.1+ adds the `guest-console-log` container unless the VMI turns it off.
    console_sidecar: bool,
    /// Other containers beside compute (virtiofs, hook sidecars): name and memory limit.
    beside: Vec<(String, Option<i64>)>,
    backing: GuestBacking,
    /// Memory hotplug: qemu's boot RAM and virtio-mem device.
    mappings: Option<GuestMappings>,
}

/// The names a launcher pod carries for its VMI.
struct VmiNames {
    ns: String,
    vmi_name: String,
    vmi_uid: String,
    vm_name: String,
}

/// Create a launcher pod for `vmi` on `node`; returns (pod uid, pod name).
pub fn create_launcher_pod(
    w: &mut World,
    vmi: &Value,
    node: &str,
    plan: Option<&VmPlan>,
    migration_target: bool,
) -> Option<(String, String)> {
    let names = vmi_names(vmi);
    let cluster = sizing::Cluster {
        release: Some(w.config.version),
        ratio: w.config.ratio.clone(),
        arch: "amd64".into(),
    };
    let o = match sizing::overhead(&vmi["spec"], &cluster) {
        Ok(o) => o,
        Err(unmodelled) => {
            refuse(w, &names.ns, &names.vmi_name, &unmodelled);
            return None;
        }
    };
    let sz = compute_sizing(w, vmi, o, &names.ns);
    let image = launcher_image(&w.config);
    let compute_res = compute_resources(&sz);
    let qos = qos_class(&sz);
    let ids = [
        container_id(),
        container_id(),
        if sz.console_sidecar {
            container_id()
        } else {
            String::new()
        },
    ];
    let (containers, statuses) = containers(w, &names, &image, compute_res, &sz, &ids);
    let pod_name = format!("virt-launcher-{}-{}", names.vmi_name, name_suffix());
    let pod_ip = w.alloc_ip();
    let node_model = w.nodes.get(node)?;
    let host_ip = node_model.ip.clone();
    let oom_score_adj = oom_score_adj(qos, sz.memory_request, node_model.memory);
    let now = w.timestamp();
    let mut pod = pod_object(&names, &pod_name, node, qos, &host_ip, &pod_ip, &now);
    pod["metadata"]["labels"] = pod_labels(&names, node, migration_target);
    pod["metadata"]["annotations"] = pod_annotations(w.config.version, &names.vmi_name, o);
    pod["spec"]["containers"] = Value::Array(containers);
    pod["status"]["containerStatuses"] = Value::Array(statuses);
    let stored = w.store.insert(&PODS, pod, &now).ok()?;
    let pod_uid = meta_str(stored, "uid").to_string();
    let node_model = w.nodes.get_mut(node)?;
    let pids = std::array::from_fn(|_| node_model.alloc_pid());
    let (shape, params) = workload_of(w, &sz, plan, migration_target);
    let started = w.now();
    let (compute_limit, pod_limit) = cgroup_limits(&sz);
    let launcher = Launcher {
        pod_uid: pod_uid.clone(),
        pod_name: pod_name.clone(),
        namespace: names.ns,
        vm_name: names.vm_name,
        vmi_uid: names.vmi_uid,
        node: node.to_string(),
        qos,
        never_over: never_over(&shape, &params, compute_limit, pod_limit),
        shape,
        params,
        started,
        compute_limit,
        pod_limit,
        container_ids: ids,
        pids,
        oom_score_adj,
        oom_kills: 0,
        failcnt: 0,
        max_usage: 0,
        killed_at: None,
        checked_until: started,
        overhead: o,
        console_killed_at: None,
        killed_by_pod_limit: false,
    };
    w.launchers.insert(pod_uid.clone(), launcher);
    Some((pod_uid, pod_name))
}

fn vmi_names(vmi: &Value) -> VmiNames {
    let vmi_name = meta_str(vmi, "name").to_string();
    VmiNames {
        ns: meta_str(vmi, "namespace").to_string(),
        vm_name: vmi["metadata"]["ownerReferences"][0]["name"]
            .as_str()
            .unwrap_or(&vmi_name)
            .to_string(),
        vmi_uid: meta_str(vmi, "uid").to_string(),
        vmi_name,
    }
}

/// The compute container's memory and CPU from the VMI's domain and the overhead `o`, by the
/// simulator's own reading of KubeVirt: hugepage-backed guest RAM leaves the memory request and
/// limit ((request or limit − guest) + O); dedicated CPUs make the limit the request.
fn compute_sizing(w: &World, vmi: &Value, o: i64, ns: &str) -> Sizing {
    let d = &vmi["spec"]["domain"];
    let bytes = |x: &Value| x.as_str().and_then(bytes_of);
    let request = bytes(&d["resources"]["requests"]["memory"]).unwrap_or(0);
    let limit = bytes(&d["resources"]["limits"]["memory"]);
    let guest = bytes(&d["memory"]["guest"]).or(limit).unwrap_or(request);
    let hugepages = !d["memory"]["hugepages"].is_null();
    let outside = |x: i64| if hugepages { (x - guest).max(0) } else { x };
    let vcpus = sizing::vcpus(&vmi["spec"]);
    let memory_request = if d["resources"]["overcommitGuestOverhead"].as_bool() == Some(true) {
        outside(request)
    } else {
        outside(request) + o
    };
    let dedicated = d["cpu"]["dedicatedCpuPlacement"].as_bool() == Some(true);
    let memory_limit = if dedicated {
        Some(memory_request)
    } else {
        limit
            .map(|l| outside(l) + o)
            .or_else(|| auto_limit(w, ns, memory_request))
    };
    Sizing {
        memory_request,
        memory_limit,
        guest,
        vcpus,
        cpu_request: d["resources"]["requests"]["cpu"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}m", vcpus * 100)),
        cpu_limit: d["resources"]["limits"]["cpu"].as_str().map(str::to_string),
        console_sidecar: w.config.version >= Version::new(1, 1, 0)
            && d["devices"]["logSerialConsole"].as_bool() != Some(false),
        beside: beside_containers(vmi, dedicated),
        backing: if hugepages {
            GuestBacking::Hugepages
        } else if d["devices"]["filesystems"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
        {
            GuestBacking::Memfd
        } else {
            GuestBacking::Anon
        },
        mappings: super::hotplug::guest_mappings(vmi),
    }
}

/// The containers beside compute other than the console log, from the simulator's table:
/// `virtiofs-<name>` 80M each; `hook-sidecar-N` 64M with dedicated CPUs, else no limit.
fn beside_containers(vmi: &Value, dedicated: bool) -> Vec<(String, Option<i64>)> {
    let mut out = Vec::new();
    let fs = vmi["spec"]["domain"]["devices"]["filesystems"].as_array();
    for f in fs.into_iter().flatten() {
        if let Some(name) = f["name"].as_str() {
            out.push((format!("virtiofs-{name}"), Some(sizing::VIRTIOFS_BYTES)));
        }
    }
    let hooks = vmi["metadata"]["annotations"][keys::HOOK_SIDECARS]
        .as_str()
        .and_then(|a| serde_json::from_str::<Vec<Value>>(a).ok())
        .map_or(0, |l| l.len());
    for i in 0..hooks {
        let limit = dedicated.then_some(sizing::HOOK_SIDECAR_PINNED_BYTES);
        out.push((format!("hook-sidecar-{i}"), limit));
    }
    out
}

/// The compute container's `resources` (KubeVirt's device plugins' kvm and tun too).
fn compute_resources(sz: &Sizing) -> Value {
    let mut res = json!({"requests": {"memory": sz.memory_request.to_string(), "cpu": sz.cpu_request,
                                      "devices.kubevirt.io/kvm": "1", "devices.kubevirt.io/tun": "1"},
                         "limits": {"devices.kubevirt.io/kvm": "1", "devices.kubevirt.io/tun": "1"}});
    if let Some(l) = sz.memory_limit {
        res["limits"]["memory"] = json!(l.to_string());
    }
    if let Some(c) = &sz.cpu_limit {
        res["limits"]["cpu"] = json!(c);
    }
    res
}

/// Guaranteed when the only container's limits equal its requests (memory and CPU), else
/// Burstable.
fn qos_class(sz: &Sizing) -> &'static str {
    let guaranteed = !sz.console_sidecar
        && sz.beside.iter().all(|(_, l)| l.is_some())
        && sz.memory_limit == Some(sz.memory_request)
        && match (
            sz.cpu_limit.as_deref().map(Exact::parse),
            Exact::parse(&sz.cpu_request),
        ) {
            (Some(Ok(l)), Ok(r)) => same(l, r),
            _ => false,
        };
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The pod's containers (compute, and the console log sidecar) and their running statuses.
fn containers(
    w: &World,
    names: &VmiNames,
    image: &str,
    compute_res: Value,
    sz: &Sizing,
    ids: &[String; 3],
) -> (Vec<Value>, Vec<Value>) {
    let mut containers = vec![compute_container(names, image, compute_res)];
    let mut statuses = vec![container_status("compute", image, &ids[1], &w.timestamp())];
    if sz.console_sidecar {
        containers.push(console_log_container(image, &names.vmi_uid));
        statuses.push(container_status(
            "guest-console-log",
            image,
            &ids[2],
            &w.timestamp(),
        ));
    }
    for (name, limit) in &sz.beside {
        let mut c = json!({"name": name, "image": image, "resources": {"requests": {"cpu": "10m", "memory": "1M"}}});
        if let Some(l) = limit {
            c["resources"]["limits"] = json!({"memory": l.to_string()});
        }
        containers.push(c);
        statuses.push(container_status(
            name,
            image,
            &container_id(),
            &w.timestamp(),
        ));
    }
    (containers, statuses)
}

fn compute_container(names: &VmiNames, image: &str, resources: Value) -> Value {
    let VmiNames {
        ns,
        vmi_name,
        vmi_uid,
        ..
    } = names;
    let mut c = json!({
        "name": "compute", "image": image,
        "command": ["/usr/bin/virt-launcher-monitor", "--qemu-timeout", "301s", "--name", vmi_name, "--uid", vmi_uid,
                    "--namespace", ns, "--kubevirt-share-dir", "/var/run/kubevirt", "--ephemeral-disk-dir", "/var/run/kubevirt-ephemeral-disks",
                    "--container-disk-dir", "/var/run/kubevirt/container-disks", "--grace-period-seconds", "135",
                    "--hook-sidecars", "0", "--ovmf-path", "/usr/share/OVMF", "--run-as-nonroot"],
        "resources": null,
        "securityContext": {"runAsUser": 107, "runAsGroup": 107, "runAsNonRoot": true, "privileged": false,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}
    });
    // Values are moved in after json!, which would copy them by serializing.
    c["resources"] = resources;
    c
}

fn console_log_container(image: &str, vmi_uid: &str) -> Value {
    json!({
        "name": "guest-console-log", "image": image,
        "command": ["/usr/bin/virt-tail"], "args": ["--logfile", format!("/var/run/kubevirt-private/{vmi_uid}/virt-serial0-log")],
        "resources": {"limits": {"cpu": "15m", "memory": CONSOLE_LOG_SIDECAR_BYTES.to_string()},
                      "requests": {"cpu": "5m", "memory": "35M"}}
    })
}

/// The kubelet's `oom_score_adj` for the pod's processes: -997 when Guaranteed, else by the
/// share of the node's memory the pod requests.
fn oom_score_adj(qos: &str, memory_request: i64, node_memory: i64) -> i64 {
    if qos == "Guaranteed" {
        -997
    } else {
        (1000 - 1000 * memory_request / node_memory.max(1)).clamp(2, 999)
    }
}

fn pod_annotations(v: Version, vmi_name: &str, o: i64) -> Value {
    let mut annotations = json!({"kubevirt.io/domain": vmi_name, "kubectl.kubernetes.io/default-container": "compute",
                                 "post.hook.backup.velero.io/command": "[\"/usr/bin/virt-freezer\", \"--unfreeze\"]"});
    if v >= Version::new(1, 8, 0) {
        annotations[keys::MEMORY_OVERHEAD_ANNOTATION] = json!(o.to_string());
    }
    annotations
}

fn pod_labels(names: &VmiNames, node: &str, migration_target: bool) -> Value {
    let mut labels = json!({keys::LAUNCHER_LABEL: keys::LAUNCHER_LABEL_VALUE, keys::CREATED_BY: names.vmi_uid,
                            keys::VM_NAME_LABEL: names.vm_name, "kubevirt.io/nodeName": node});
    if migration_target {
        labels["kubevirt.io/migrationJobUID"] = json!(super::store::new_uid());
    }
    labels
}

/// The pod object without its labels, annotations, containers and statuses (moved in after).
fn pod_object(
    names: &VmiNames,
    pod_name: &str,
    node: &str,
    qos: &str,
    host_ip: &str,
    pod_ip: &str,
    now: &str,
) -> Value {
    let VmiNames {
        ns,
        vmi_name,
        vmi_uid,
        ..
    } = names;
    let conditions = ["Initialized", "Ready", "ContainersReady", "PodScheduled"].map(
        |t| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
    );
    json!({
        "metadata": {"name": pod_name, "namespace": ns, "labels": null, "annotations": null,
            "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "name": vmi_name,
                                 "uid": vmi_uid, "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"nodeName": node, "containers": null, "restartPolicy": "Never", "hostname": vmi_name,
                 "serviceAccountName": "default", "terminationGracePeriodSeconds": 135, "automountServiceAccountToken": false,
                 "priority": 0, "schedulerName": "default-scheduler"},
        "status": {"phase": "Running", "qosClass": qos, "hostIP": host_ip, "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
                   "startTime": now,
                   "conditions": conditions,
                   "containerStatuses": null}
    })
}

/// The cgroup limits as the kernel stores them (whole pages): the compute container's, and the
/// pod's (the sum of every container's limit; none when one container has none).
fn cgroup_limits(sz: &Sizing) -> (Option<i64>, Option<i64>) {
    let compute = sz.memory_limit.map(floor_page);
    let console = if sz.console_sidecar {
        CONSOLE_LOG_SIDECAR_BYTES
    } else {
        0
    };
    let others: Option<i64> = sz.beside.iter().map(|(_, l)| *l).sum();
    let pod = sz
        .memory_limit
        .zip(others)
        .map(|(l, o)| floor_page(l + console + o));
    (compute, pod)
}

/// The launcher's processes and memory over time: the scenario's workload for this VM (or the
/// default), with the flavour's process names.
fn workload_of(
    w: &World,
    sz: &Sizing,
    plan: Option<&VmPlan>,
    migration_target: bool,
) -> (Shape, Params) {
    let params = plan
        .map(|p| p.workload.clone())
        .unwrap_or_else(|| Params::from_workload(&Workload::default()));
    let shape = Shape {
        guest: sz.guest,
        vcpus: sz.vcpus,
        libvirt_comm: if w.config.version >= Version::new(0, 59, 0) {
            "virtqemud"
        } else {
            "libvirtd"
        },
        qemu_comm: match w.config.flavour {
            Flavour::Harvester => "qemu-system-x86",
            Flavour::Kubevirt => "qemu-kvm",
        },
        seed: plan.map_or(1, |p| p.seed),
        migration_target,
        guest_backing: sz.backing,
        virtio_mem: sz.mappings,
    };
    (shape, params)
}

/// Whether the launcher's memory can never reach its limit (ticks then skip it).
fn never_over(
    shape: &Shape,
    params: &Params,
    compute_limit: Option<i64>,
    pod_limit: Option<i64>,
) -> bool {
    let far = super::workload::sample(shape, params, 1e9);
    compute_limit.is_none_or(|l| far.compute_unreclaimable() <= l)
        && pod_limit.is_none_or(|l| far.pod_unreclaimable() <= l)
}

fn container_status(name: &str, image: &str, id: &str, started: &str) -> Value {
    json!({"name": name, "image": image, "imageID": format!("{image}@sha256:{}", &id[..64.min(id.len())]),
           "containerID": format!("containerd://{id}"), "ready": true, "started": true, "restartCount": 0,
           "state": {"running": {"startedAt": started}}, "lastState": {}})
}

/// KubeVirt v1.1+: a VMI without a memory limit in a namespace whose ResourceQuota constrains
/// `limits.memory` gets limit = (request + O) × ratio (namespace label, default 2).
fn auto_limit(w: &World, ns: &str, request_with_overhead: i64) -> Option<i64> {
    if w.config.version < Version::new(1, 1, 0) {
        return None;
    }
    let quota = w
        .store
        .list(&super::resources::RESOURCE_QUOTAS, Some(ns))
        .any(|q| !q["spec"]["hard"]["limits.memory"].is_null());
    if !quota {
        return None;
    }
    let ratio = w
        .store
        .get(&super::resources::NAMESPACES, "", ns)
        .and_then(|n| {
            n["metadata"]["labels"]["alpha.kubevirt.io/auto-memory-limits-ratio"]
                .as_str()
                .and_then(|r| r.parse::<f64>().ok())
        })
        .filter(|r| r.is_finite() && *r >= 1.0)
        .unwrap_or(2.0);
    Some((request_with_overhead as f64 * ratio) as i64)
}

/// A VMI with a feature the simulator's sizing table does not model gets no pod: its status
/// says why (the launcher would be sized wrong, and a test would trust it).
fn refuse(w: &mut World, ns: &str, vmi_name: &str, why: &sizing::Unmodelled) {
    let condition = json!([{"type": "Synchronized", "status": "False", "reason": "FailedCreate",
                            "message": why.to_string()}]);
    w.store.set_field(
        &super::resources::VIRTUAL_MACHINE_INSTANCES,
        ns,
        vmi_name,
        "status",
        json!({"phase": "Pending", "conditions": condition}),
    );
}
