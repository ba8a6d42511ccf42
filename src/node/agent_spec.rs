//! What an agent pod looks like, where it goes, and what a stuck one's status says. Pure: no I/O.
//!
//! One agent per node with VMs: `nodeName`, `hostPID`, a container that is not privileged: root
//! with every capability dropped but the two the probe needs (see [`CAPABILITIES`]), no privilege
//! escalation, the runtime's default seccomp profile, a read-only root filesystem and the host's
//! `/sys/fs/cgroup` mounted read-only at `/host/sys/fs/cgroup` (the probe's default cgroup root);
//! tolerating every taint, `restartPolicy: Never`, no grace period, and `activeDeadlineSeconds` so
//! the kubelet kills it even when this tool is killed before it can delete it. Its labels name
//! only the tool, a random session id and the node: which machine made it is kept on that machine
//! (`super::owners`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use serde_json::json;

use super::error::AgentError;
use crate::model::inventory::Inventory;
use crate::model::version::Version;

/// Label every agent pod carries (and `agent cleanup` selects on).
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "kubectl-vmmem";
/// Label with the session that created the pod: `<unix seconds>-<random hex>`.
pub const SESSION_LABEL: &str = "vmmem.kubectl.io/session";
/// Label with the node an agent serves.
pub const NODE_LABEL: &str = "vmmem.kubectl.io/node";
/// The agent's container name.
pub const CONTAINER: &str = "agent";
/// Default image off Harvester (what k9s uses for node shells), pinned to the multi-platform
/// index digest the Docker official images publish for the tag (docker-library/repo-info,
/// repos/busybox/remote/1.37.0.md), so a re-pushed tag cannot change what runs on every node.
pub const DEFAULT_IMAGE: &str =
    "busybox:1.37.0@sha256:9db7b59979c38555a39def84a31fb98b5296952f9e3afd4f6f11f05b07adfab0";
/// SUSE BCI on Harvester, by tag only: no digest for these tags could be taken from a source
/// that publishes them (SUSE rebuilds the tags), and the tag is the one every node of the
/// release already holds. Pass `--agent-image REPO@sha256:...` to pin it.
pub const HARVESTER_IMAGE_UNPINNED: &str = "registry.suse.com/bci/bci-base";
/// Where agents run unless `--agent-namespace` says otherwise: a namespace of their own, made by
/// the cluster's admin with assets/rbac/agent-namespace.yaml (Pod Security level `privileged`).
pub const DEFAULT_NAMESPACE: &str = "vmmem-system";
/// The manifest that creates [`DEFAULT_NAMESPACE`], as errors name it.
pub const NAMESPACE_MANIFEST: &str = "assets/rbac/agent-namespace.yaml";
/// Namespaces agents never go to: the cluster's and Harvester's own controllers run there, and
/// a right to create pods in them is a right to their service accounts.
pub const REFUSED_NAMESPACES: [&str; 2] = ["kube-system", "harvester-system"];
/// The capabilities the agent keeps (everything else is dropped). Measured on a real kernel
/// (tests/it/agent_caps.rs): `SYS_PTRACE` reads another user's `/proc/PID/smaps` (qemu runs as
/// uid 107; procfs checks `ptrace_may_access(PTRACE_MODE_READ_FSCREDS)`), `SYSLOG` reads the
/// kernel log (`dmesg` through syslog(2) when `kernel.dmesg_restrict=1`).
pub const CAPABILITIES: [&str; 2] = ["SYS_PTRACE", "SYSLOG"];
/// Lifetime of an agent pod; a session renews by recreating.
pub const DEFAULT_DEADLINE_SECS: i64 = 3600;

/// `app.kubernetes.io/managed-by=kubectl-vmmem`.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY}={MANAGED_BY_VALUE}")
}

/// How agent pods are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    pub namespace: String,
    pub image: String,
    pub pull_secret: Option<String>,
    /// `Always`, `IfNotPresent` or `Never`; `None` leaves the server's default.
    pub pull_policy: Option<String>,
    pub deadline_secs: i64,
    pub session: Session,
}

/// The flags that override the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFlags {
    pub namespace: Option<String>,
    pub image: Option<String>,
    pub pull_secret: Option<String>,
    pub pull_policy: Option<String>,
}

/// Why the agent flags cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentConfigError {
    #[error("--agent-pull-policy {0:?} is not one of Always, IfNotPresent, Never")]
    PullPolicy(String),
    #[error("agent pods never go to namespace {0}: the cluster's own controllers run there; create the namespace of {NAMESPACE_MANIFEST} (vmmem-system) or pass --agent-namespace with another one")]
    SystemNamespace(String),
}

/// One run of the tool: its agents carry this id and its start time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub started: i64,
    pub id: String,
}

impl Session {
    pub fn new(now: i64) -> Session {
        Session {
            started: now,
            id: format!("{now}-{:016x}", rand::random::<u64>()),
        }
    }

    /// The start time in a label value written by [`Session::new`].
    pub fn started_of(label: &str) -> Option<i64> {
        label.split_once('-').and_then(|(t, _)| t.parse().ok())
    }
}

impl AgentConfig {
    /// Defaults for this cluster, overridden by the flags: the namespace [`DEFAULT_NAMESPACE`]
    /// (never one of [`REFUSED_NAMESPACES`]); on Harvester SUSE BCI (always on its nodes, also
    /// air-gapped), elsewhere busybox pinned by digest.
    pub fn for_cluster(
        inv: &Inventory,
        flags: &AgentFlags,
        session: Session,
    ) -> Result<AgentConfig, AgentConfigError> {
        let harvester = inv.harvester_settings.as_deref().map(|s| {
            crate::model::harvester::HarvesterContext::from_settings(s)
                .version
                .map(bci_tag)
                .unwrap_or("15.6")
        });
        let namespace = flags
            .namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        if REFUSED_NAMESPACES.contains(&namespace.as_str()) {
            return Err(AgentConfigError::SystemNamespace(namespace));
        }
        let image = match (&flags.image, harvester) {
            (Some(i), _) => i.clone(),
            (None, Some(tag)) => format!("{HARVESTER_IMAGE_UNPINNED}:{tag}"),
            (None, None) => DEFAULT_IMAGE.to_string(),
        };
        let pull_policy = match flags.pull_policy.as_deref() {
            None => None,
            Some(p @ ("Always" | "IfNotPresent" | "Never")) => Some(p.to_string()),
            Some(other) => return Err(AgentConfigError::PullPolicy(other.to_string())),
        };
        Ok(AgentConfig {
            namespace,
            image,
            pull_secret: flags.pull_secret.clone(),
            pull_policy,
            deadline_secs: DEFAULT_DEADLINE_SECS,
            session,
        })
    }

    /// The agent pod for `node` (name generated by the server).
    pub fn pod(&self, node: &str) -> Pod {
        let mut labels = BTreeMap::new();
        labels.insert(MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string());
        labels.insert(SESSION_LABEL.to_string(), self.session.id.clone());
        labels.insert(NODE_LABEL.to_string(), label_value(node));
        let mut container = json!({
            "name": CONTAINER,
            "image": self.image,
            "command": ["sleep", self.deadline_secs.to_string()],
            "securityContext": {
                "privileged": false,
                "allowPrivilegeEscalation": false,
                // Root, so that the kept capabilities are effective in the probe's processes.
                "runAsUser": 0,
                "runAsNonRoot": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"], "add": CAPABILITIES},
                "seccompProfile": {"type": "RuntimeDefault"}
            },
            "resources": {
                "requests": {"cpu": "10m", "memory": "16Mi"},
                // The probe spreads its pods over up to 4 shells: ~100 ms of CPU for 100 pods,
                // ~60 ms of wall on 2 cores. A 500m limit would throttle that to over 200 ms.
                "limits": {"cpu": "2", "memory": "64Mi"}
            },
            "volumeMounts": [{"name": "host-cgroup", "mountPath": "/host/sys/fs/cgroup", "readOnly": true}]
        });
        if let Some(p) = &self.pull_policy {
            container["imagePullPolicy"] = json!(p);
        }
        let mut spec = json!({
            "nodeName": node,
            "hostPID": true,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "activeDeadlineSeconds": self.deadline_secs,
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "tolerations": [{"operator": "Exists"}],
            "containers": [container],
            "volumes": [{"name": "host-cgroup", "hostPath": {"path": "/sys/fs/cgroup", "type": "Directory"}}]
        });
        if let Some(s) = &self.pull_secret {
            spec["imagePullSecrets"] = json!([{"name": s}]);
        }
        let value = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": format!("vmmem-agent-{}-", short_node(node)),
                "namespace": self.namespace,
                "labels": labels,
            },
            "spec": spec,
        });
        // The value is built above from plain strings and numbers: it always is a Pod.
        serde_json::from_value(value).unwrap_or_default()
    }
}

/// The `registry.suse.com/bci/bci-base` tag that every node of a Harvester release already holds
/// (so an air-gapped node can start the agent): 15.4 in v1.1, 15.5 in v1.2–1.3, 15.6 in v1.4–1.6,
/// 15.7 in v1.7, 16.0 from v1.8.
pub fn bci_tag(v: Version) -> &'static str {
    match (v.major, v.minor) {
        (0, _) | (1, 0..=1) => "15.4",
        (1, 2..=3) => "15.5",
        (1, 4..=6) => "15.6",
        (1, 7) => "15.7",
        _ => "16.0",
    }
}

/// A node or host name as a label value (63 characters, alphanumerics at both ends).
pub fn label_value(node: &str) -> String {
    let v: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Part of a pod name: lowercase alphanumerics and dashes, at most 30.
fn short_node(node: &str) -> String {
    let v: String = node
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(30)
        .collect();
    let v = v.trim_matches('-').to_string();
    if v.is_empty() {
        "node".to_string()
    } else {
        v
    }
}

/// What an agent pod's status says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    Running,
    /// Still starting (pulling, creating): no reason to give up yet.
    Starting,
    /// It will not run: the reason as a sentence.
    Stuck(String),
    /// Failed or Succeeded (deadline passed, killed).
    Ended(String),
}

/// Read an agent pod's status (Pending reasons like ImagePullBackOff or Unschedulable are surfaced
/// instead of waiting silently).
pub fn agent_state(status: Option<&PodStatus>, image: &str) -> AgentState {
    let Some(st) = status else {
        return AgentState::Starting;
    };
    match st.phase.as_deref() {
        Some("Running") => return AgentState::Running,
        Some(p @ ("Failed" | "Succeeded")) => {
            let why = st
                .reason
                .clone()
                .or_else(|| st.message.clone())
                .unwrap_or_default();
            return AgentState::Ended(if why.is_empty() {
                format!("the agent pod {}", p.to_ascii_lowercase())
            } else {
                format!("the agent pod {} ({why})", p.to_ascii_lowercase())
            });
        }
        _ => {}
    }
    for c in st.container_statuses.iter().flatten() {
        let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = w.reason.as_deref().unwrap_or("");
        let msg = w.message.as_deref().unwrap_or("");
        match reason {
            "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull" => {
                return AgentState::Stuck(format!(
                    "the agent image {image} cannot be pulled ({reason}{}); pass --agent-image (and --agent-pull-secret or --agent-pull-policy) for an image the nodes can get",
                    if msg.is_empty() { String::new() } else { format!(": {msg}") }
                ))
            }
            "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                return AgentState::Stuck(format!("the agent container cannot start ({reason}: {msg})"))
            }
            _ => {}
        }
    }
    for cond in st.conditions.iter().flatten() {
        if cond.type_ == "PodScheduled" && cond.status == "False" {
            let reason = cond.reason.as_deref().unwrap_or("Unschedulable");
            let msg = cond.message.as_deref().unwrap_or("");
            return AgentState::Stuck(format!(
                "the agent pod cannot be scheduled ({reason}{})",
                if msg.is_empty() {
                    String::new()
                } else {
                    format!(": {msg}")
                }
            ));
        }
    }
    AgentState::Starting
}

/// A refused pod creation, by the server's status. Pod Security and quota rejections get a hint.
///
/// Authorization (RBAC), Pod Security admission and ResourceQuota admission all refuse with the
/// same status: code 403, reason `Forbidden`, details naming only the pod (`kind: pods`, the
/// name), no causes (Kubernetes' `admission.NewForbidden` and the PodSecurity plugin's
/// `forbiddenResponse`, k8s.io/pod-security-admission/admission/admission.go, v1.33). So the
/// code and reason decide that it is a refusal, and only which admission refused it is read
/// from the message, which the API gives no field for: "violates PodSecurity ..." and
/// "exceeded quota: ...".
pub fn create_refused(namespace: &str, status: &kube::core::Status) -> AgentError {
    let namespace = namespace.to_string();
    let message = status.message.clone();
    if status.code != 403 && !status.is_forbidden() {
        return AgentError::Create {
            namespace,
            code: Some(status.code),
            message,
        };
    }
    let lower = message.to_ascii_lowercase();
    if lower.contains("podsecurity") || lower.contains("pod security") || lower.contains("violates")
    {
        AgentError::PodSecurity { namespace, message }
    } else if lower.contains("quota") {
        AgentError::Quota { namespace, message }
    } else {
        AgentError::Forbidden { namespace, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateWaiting, ContainerStatus, PodCondition,
    };

    fn cfg() -> AgentConfig {
        AgentConfig {
            namespace: "kubevirt".into(),
            image: DEFAULT_IMAGE.into(),
            pull_secret: Some("regcred".into()),
            pull_policy: Some("IfNotPresent".into()),
            deadline_secs: 3600,
            session: Session {
                started: 1700000000,
                id: "1700000000-0000abcd".into(),
            },
        }
    }

    #[test]
    fn pod_shape() {
        let p = cfg().pod("Node_1.example");
        let v = serde_json::to_value(&p).unwrap();
        let spec = &v["spec"];
        assert_eq!(spec["nodeName"], "Node_1.example");
        assert_eq!(spec["hostPID"], true);
        assert_eq!(spec["restartPolicy"], "Never");
        assert_eq!(spec["terminationGracePeriodSeconds"], 0);
        assert_eq!(spec["activeDeadlineSeconds"], 3600);
        assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));
        assert_eq!(spec["imagePullSecrets"], json!([{"name": "regcred"}]));
        let c = &spec["containers"][0];
        // Not privileged: root with only the probe's two capabilities, nothing else.
        assert_eq!(
            c["securityContext"],
            json!({
                "privileged": false,
                "allowPrivilegeEscalation": false,
                "runAsUser": 0,
                "runAsNonRoot": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"], "add": ["SYS_PTRACE", "SYSLOG"]},
                "seccompProfile": {"type": "RuntimeDefault"}
            })
        );
        assert_eq!(
            spec["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(spec["automountServiceAccountToken"], false);
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["command"], json!(["sleep", "3600"]));
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/host/sys/fs/cgroup");
        assert_eq!(c["volumeMounts"][0]["readOnly"], true);
        assert_eq!(spec["volumes"][0]["hostPath"]["path"], "/sys/fs/cgroup");
        let labels = &v["metadata"]["labels"];
        assert_eq!(labels[MANAGED_BY], MANAGED_BY_VALUE);
        assert_eq!(labels[SESSION_LABEL], "1700000000-0000abcd");
        assert_eq!(labels[NODE_LABEL], "Node_1.example");
        // The tool, the session and the node: no host name, no process id.
        assert_eq!(labels.as_object().unwrap().len(), 3, "{labels}");
        assert_eq!(v["metadata"]["generateName"], "vmmem-agent-node-1-example-");
        assert_eq!(Session::started_of("1700000000-0000abcd"), Some(1700000000));
        let a = Session::new(5);
        let b = Session::new(5);
        assert_ne!(a.id, b.id, "session ids are random");
        assert!(a.id.starts_with("5-") && a.id.len() == 2 + 16, "{}", a.id);
    }

    #[test]
    fn defaults_by_cluster() {
        let mut inv = Inventory::default();
        let flags = AgentFlags::default();
        let s = Session::new(1);
        inv.kubevirts.push(Default::default());
        inv.kubevirts[0].metadata.namespace = "kubevirt".into();
        let c = AgentConfig::for_cluster(&inv, &flags, s.clone()).unwrap();
        assert_eq!(
            (c.namespace.as_str(), c.image.as_str()),
            ("vmmem-system", DEFAULT_IMAGE)
        );
        assert!(DEFAULT_IMAGE.contains("@sha256:"));
        inv.harvester_settings = Some(vec![]);
        let c = AgentConfig::for_cluster(&inv, &flags, s.clone()).unwrap();
        assert_eq!(c.namespace, "vmmem-system");
        assert!(c.image.starts_with("registry.suse.com/bci/bci-base:"));
        for ns in ["kube-system", "harvester-system"] {
            let f = AgentFlags {
                namespace: Some(ns.into()),
                ..Default::default()
            };
            let e = AgentConfig::for_cluster(&inv, &f, s.clone()).unwrap_err();
            assert_eq!(e, AgentConfigError::SystemNamespace(ns.into()));
            assert!(e.to_string().contains("agent-namespace.yaml"), "{e}");
        }
        let f = AgentFlags {
            image: Some("me/agent@sha256:00".into()),
            ..Default::default()
        };
        let c = AgentConfig::for_cluster(&inv, &f, s.clone()).unwrap();
        assert_eq!(c.image, "me/agent@sha256:00");
        let flags = AgentFlags {
            namespace: Some("x".into()),
            image: Some("me/img:1".into()),
            pull_policy: Some("sometimes".into()),
            ..Default::default()
        };
        assert_eq!(
            AgentConfig::for_cluster(&inv, &flags, s),
            Err(AgentConfigError::PullPolicy("sometimes".into()))
        );
        assert_eq!(
            bci_tag(Version {
                major: 1,
                minor: 2,
                patch: 0
            }),
            "15.5"
        );
        assert_eq!(
            bci_tag(Version {
                major: 1,
                minor: 8,
                patch: 0
            }),
            "16.0"
        );
    }

    #[test]
    fn stuck_reasons() {
        let waiting = |reason: &str| PodStatus {
            phase: Some("Pending".into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "agent".into(),
                state: Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason.into()),
                        message: Some("not found".into()),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        };
        match agent_state(Some(&waiting("ImagePullBackOff")), "busybox:1.37.0") {
            AgentState::Stuck(s) => assert!(
                s.contains("busybox:1.37.0") && s.contains("--agent-image"),
                "{s}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            agent_state(Some(&waiting("ContainerCreating")), "x"),
            AgentState::Starting
        );
        let unsched = PodStatus {
            phase: Some("Pending".into()),
            conditions: Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("Unschedulable".into()),
                message: Some("0/3 nodes are available".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert!(
            matches!(agent_state(Some(&unsched), "x"), AgentState::Stuck(s) if s.contains("0/3 nodes"))
        );
        let failed = PodStatus {
            phase: Some("Failed".into()),
            reason: Some("DeadlineExceeded".into()),
            ..Default::default()
        };
        assert!(
            matches!(agent_state(Some(&failed), "x"), AgentState::Ended(s) if s.contains("DeadlineExceeded"))
        );
    }

    fn refusal(code: u16, reason: &str, message: &str) -> AgentError {
        let status = kube::core::Status::failure(message, reason).with_code(code);
        create_refused("default", &status)
    }

    #[test]
    fn refusals_by_status_code_then_by_admission() {
        let psa = refusal(
            403,
            "Forbidden",
            "pods \"x\" is forbidden: violates PodSecurity \"baseline:latest\": privileged",
        );
        assert!(matches!(psa, AgentError::PodSecurity { .. }), "{psa:?}");
        let text = psa.to_string();
        assert!(
            text.contains("violates PodSecurity") && text.contains("--agent-namespace"),
            "{text}"
        );
        let quota = refusal(
            403,
            "Forbidden",
            "pods \"x\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=5, limited: pods=5",
        );
        assert!(matches!(quota, AgentError::Quota { .. }), "{quota:?}");
        assert!(quota.to_string().contains("resource quota"));
        let rbac = refusal(
            403,
            "Forbidden",
            "pods is forbidden: User \"bob\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\"",
        );
        assert!(matches!(rbac, AgentError::Forbidden { .. }), "{rbac:?}");
        assert!(rbac.to_string().starts_with(
            "not allowed to create agent pods in namespace default: pods is forbidden"
        ));
        // A plain-text 403 (a proxy in front of the server: kube-rs makes up the reason).
        let bare = refusal(403, "Failed to parse error data", "Forbidden");
        assert!(matches!(bare, AgentError::Forbidden { .. }), "{bare:?}");
        // Not a 403: no admission hint, whatever the text says; the code is kept.
        let invalid = refusal(422, "Invalid", "spec violates the schema");
        assert_eq!(
            invalid,
            AgentError::Create {
                namespace: "default".into(),
                code: Some(422),
                message: "spec violates the schema".into()
            }
        );
        assert_eq!(
            invalid.to_string(),
            "creating the agent pod in namespace default failed: spec violates the schema"
        );
        assert!(!invalid.connection_failed());
    }
}
