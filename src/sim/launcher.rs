//! The virt-launcher pod of a VMI, sized with KubeVirt's overhead formula, and its runtime
//! (cgroup limits, PIDs, container ids, memory workload).

use serde_json::{json, Value};

use crate::model::objects::{keys, VmiSpec};
use crate::model::overhead::{
    overhead, vcpus, ClusterInputs, ProcessConstants, CONSOLE_LOG_SIDECAR_BYTES,
};
use crate::model::version::Version;
use crate::units::{parse_bytes, parse_millis};

use super::resources::PODS;
use super::scenario::{Flavour, Workload};
use super::store::meta_str;
use super::workload::{Params, Shape};
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

/// Create a launcher pod for `vmi` on `node`; returns (pod uid, pod name).
pub fn create_launcher_pod(
    w: &mut World,
    vmi: &Value,
    node: &str,
    plan: Option<&VmPlan>,
    migration_target: bool,
) -> Option<(String, String)> {
    let ns = meta_str(vmi, "namespace").to_string();
    let vmi_name = meta_str(vmi, "name").to_string();
    let vmi_uid = meta_str(vmi, "uid").to_string();
    let typed: VmiSpec = serde::Deserialize::deserialize(&vmi["spec"]).unwrap_or_default();
    let v = w.config.version;
    let inputs = ClusterInputs {
        ratio: w.config.ratio.clone(),
        cluster_arch: Some("amd64".into()),
        config: Default::default(),
    };
    let o = overhead(&typed, v, &inputs).total;
    let d = &vmi["spec"]["domain"];
    let bytes = |x: &Value| x.as_str().and_then(|s| parse_bytes(s).ok());
    let request = bytes(&d["resources"]["requests"]["memory"]).unwrap_or(0);
    let limit = bytes(&d["resources"]["limits"]["memory"]);
    let guest = bytes(&d["memory"]["guest"]).or(limit).unwrap_or(request);
    let n_cpu = vcpus(&typed);
    let overcommit_overhead = d["resources"]["overcommitGuestOverhead"].as_bool() == Some(true);
    let mem_req = if overcommit_overhead {
        request
    } else {
        request + o
    };
    let mem_lim = limit.map(|l| l + o).or_else(|| auto_limit(w, &ns, mem_req));
    let cpu_req = d["resources"]["requests"]["cpu"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}m", n_cpu * 100));
    let cpu_lim = d["resources"]["limits"]["cpu"].as_str().map(str::to_string);
    let image = launcher_image(&w.config);
    let sidecar =
        v >= Version::new(1, 1, 0) && d["devices"]["logSerialConsole"].as_bool() != Some(false);

    let mut compute_res = json!({"requests": {"memory": mem_req.to_string(), "cpu": cpu_req,
                                              "devices.kubevirt.io/kvm": "1", "devices.kubevirt.io/tun": "1"},
                                 "limits": {"devices.kubevirt.io/kvm": "1", "devices.kubevirt.io/tun": "1"}});
    if let Some(l) = mem_lim {
        compute_res["limits"]["memory"] = json!(l.to_string());
    }
    if let Some(c) = &cpu_lim {
        compute_res["limits"]["cpu"] = json!(c);
    }
    let guaranteed = !sidecar
        && mem_lim == Some(mem_req)
        && cpu_lim.as_deref().and_then(|c| parse_millis(c).ok())
            == parse_millis(compute_res["requests"]["cpu"].as_str().unwrap_or("")).ok();
    let qos = if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    };
    let ids = [
        container_id(),
        container_id(),
        if sidecar {
            container_id()
        } else {
            String::new()
        },
    ];
    let mut containers = vec![json!({
        "name": "compute", "image": image,
        "command": ["/usr/bin/virt-launcher-monitor", "--qemu-timeout", "301s", "--name", vmi_name, "--uid", vmi_uid,
                    "--namespace", ns, "--kubevirt-share-dir", "/var/run/kubevirt", "--ephemeral-disk-dir", "/var/run/kubevirt-ephemeral-disks",
                    "--container-disk-dir", "/var/run/kubevirt/container-disks", "--grace-period-seconds", "135",
                    "--hook-sidecars", "0", "--ovmf-path", "/usr/share/OVMF", "--run-as-nonroot"],
        "resources": null,
        "securityContext": {"runAsUser": 107, "runAsGroup": 107, "runAsNonRoot": true, "privileged": false,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}
    })];
    // Values are moved in after json!, which would copy them by serializing.
    containers[0]["resources"] = compute_res;
    let mut statuses = vec![container_status("compute", &image, &ids[1], &w.timestamp())];
    if sidecar {
        containers.push(json!({
            "name": "guest-console-log", "image": image,
            "command": ["/usr/bin/virt-tail"], "args": ["--logfile", format!("/var/run/kubevirt-private/{vmi_uid}/virt-serial0-log")],
            "resources": {"limits": {"cpu": "15m", "memory": CONSOLE_LOG_SIDECAR_BYTES.to_string()},
                          "requests": {"cpu": "5m", "memory": "35M"}}
        }));
        statuses.push(container_status(
            "guest-console-log",
            &image,
            &ids[2],
            &w.timestamp(),
        ));
    }
    let pod_name = format!("virt-launcher-{vmi_name}-{}", name_suffix());
    let vm_name = vmi["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap_or(&vmi_name)
        .to_string();
    let pod_ip = w.alloc_ip();
    let node_model = w.nodes.get(node)?;
    let host_ip = node_model.ip.clone();
    let capacity = node_model.memory.max(1);
    let oom_score_adj = if guaranteed {
        -997
    } else {
        (1000 - 1000 * mem_req / capacity).clamp(2, 999)
    };
    let mut annotations = json!({"kubevirt.io/domain": vmi_name, "kubectl.kubernetes.io/default-container": "compute",
                                 "post.hook.backup.velero.io/command": "[\"/usr/bin/virt-freezer\", \"--unfreeze\"]"});
    if v >= Version::new(1, 8, 0) {
        annotations[keys::MEMORY_OVERHEAD_ANNOTATION] = json!(o.to_string());
    }
    let mut labels = json!({keys::LAUNCHER_LABEL: keys::LAUNCHER_LABEL_VALUE, keys::CREATED_BY: vmi_uid,
                            keys::VM_NAME_LABEL: vm_name, "kubevirt.io/nodeName": node});
    if migration_target {
        labels["kubevirt.io/migrationJobUID"] = json!(super::store::new_uid());
    }
    let now = w.timestamp();
    let pod = json!({
        "metadata": {"name": pod_name, "namespace": ns, "labels": null, "annotations": null,
            "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "name": vmi_name,
                                 "uid": vmi_uid, "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"nodeName": node, "containers": null, "restartPolicy": "Never", "hostname": vmi_name,
                 "serviceAccountName": "default", "terminationGracePeriodSeconds": 135, "automountServiceAccountToken": false,
                 "priority": 0, "schedulerName": "default-scheduler"},
        "status": {"phase": "Running", "qosClass": qos, "hostIP": host_ip, "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
                   "startTime": now,
                   "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"},
                                  {"type": "ContainersReady", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                   "containerStatuses": null}
    });
    let mut pod = pod;
    pod["metadata"]["labels"] = labels;
    pod["metadata"]["annotations"] = annotations;
    pod["spec"]["containers"] = Value::Array(containers);
    pod["status"]["containerStatuses"] = Value::Array(statuses);
    let stored = w.store.insert(&PODS, pod, &now).ok()?;
    let pod_uid = meta_str(stored, "uid").to_string();
    let compute_limit = mem_lim.map(floor_page);
    let pod_limit = mem_lim.map(|l| {
        floor_page(
            l + if sidecar {
                CONSOLE_LOG_SIDECAR_BYTES
            } else {
                0
            },
        )
    });
    let node_model = w.nodes.get_mut(node)?;
    let pids = std::array::from_fn(|_| node_model.alloc_pid());
    let seed = plan.map_or(1, |p| p.seed);
    let params = plan
        .map(|p| p.workload.clone())
        .unwrap_or_else(|| Params::from_workload(&Workload::default()));
    let shape = Shape {
        guest,
        vcpus: n_cpu,
        consts: ProcessConstants::for_version(v),
        libvirt_comm: if v >= Version::new(0, 59, 0) {
            "virtqemud"
        } else {
            "libvirtd"
        },
        qemu_comm: match w.config.flavour {
            Flavour::Harvester => "qemu-system-x86",
            Flavour::Kubevirt => "qemu-kvm",
        },
        seed,
        migration_target,
    };
    let started = w.now();
    let never_over = {
        let far = super::workload::sample(&shape, &params, 1e9);
        match (compute_limit, pod_limit) {
            (Some(l), _) => far.compute_unreclaimable() <= l,
            (None, Some(l)) => far.pod_unreclaimable() <= l,
            (None, None) => true,
        }
    };
    w.launchers.insert(
        pod_uid.clone(),
        Launcher {
            pod_uid: pod_uid.clone(),
            pod_name: pod_name.clone(),
            namespace: ns,
            vm_name,
            vmi_uid,
            node: node.to_string(),
            qos,
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
            never_over,
            overhead: o,
        },
    );
    Some((pod_uid, pod_name))
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
