//! Applying a plan through the API server: the merge patch (optionally `dryRun=All`), and the
//! restart that makes it take effect, waiting until the new pod has the planned limit.

use std::time::Duration;

use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde::Serialize;
use serde_json::Value;

use super::fields::Fields;
use super::plan::Plan;
use crate::model::objects::keys;

/// Why talking to the cluster failed; each carries the server's own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// 409: the VM changed since it was read (or the restart was refused).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// 400/422, or a webhook's denial.
    #[error("rejected by the server: {0}")]
    Invalid(String),
    #[error("cannot reach the API server: {0}")]
    Unreachable(String),
    #[error("the server answered {code}: {message}")]
    Other { code: u16, message: String },
    /// Gave up waiting (for the restart, or on a server that kept throttling).
    #[error("{0}")]
    Timeout(String),
    /// The restart was requested (KubeVirt accepted it and carries it out), but following it
    /// failed: the VM is restarting, or restarted, regardless.
    #[error("the restart of {namespace}/{name} was requested (the server accepted it), but waiting for it failed: {reason}; watch it with `kubectl get vmi {name} -n {namespace} -w`")]
    WaitAfterRestart {
        namespace: String,
        name: String,
        reason: String,
    },
}

impl ApplyError {
    pub fn from_kube(e: &kube::Error) -> ApplyError {
        if let Some(sentence) = crate::cluster::retry::throttled_sentence(e) {
            return ApplyError::Timeout(sentence);
        }
        match e {
            kube::Error::Api(s) => {
                let message = if s.message.is_empty() {
                    s.reason.clone()
                } else {
                    s.message.clone()
                };
                match s.code {
                    409 => ApplyError::Conflict(message),
                    403 => ApplyError::Forbidden(message),
                    404 => ApplyError::NotFound(message),
                    400 | 422 => ApplyError::Invalid(message),
                    code => ApplyError::Other { code, message },
                }
            }
            other => ApplyError::Unreachable(root_cause(other)),
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

pub fn vm_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine"),
        "virtualmachines",
    )
}

pub fn vmi_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachineInstance"),
        "virtualmachineinstances",
    )
}

pub fn pod_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Pod"), "pods")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Send the patch with `dryRun=All`: the server validates (and runs webhooks) but stores
    /// nothing.
    pub server_dry_run: bool,
}

/// What the server did with the patch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub dry_run: bool,
    /// The resourceVersion of the stored VM (the old one on a dry run).
    pub resource_version: String,
    /// The fields as the server stored (or would store) them.
    pub fields: Fields,
    /// Where the stored fields differ from the plan (a webhook changed them), as sentences.
    pub differences: Vec<String>,
}

/// Send the plan's patch. A plan without changes sends nothing.
pub async fn apply(
    client: &kube::Client,
    plan: &Plan,
    opts: Options,
) -> Result<Applied, ApplyError> {
    let Some(patch) = &plan.patch else {
        return Ok(Applied {
            dry_run: opts.server_dry_run,
            resource_version: plan.resource_version.clone(),
            fields: plan.after.fields.clone(),
            differences: Vec::new(),
        });
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &plan.namespace, &vm_resource());
    let params = PatchParams {
        dry_run: opts.server_dry_run,
        ..Default::default()
    };
    let stored = api
        .patch(&plan.name, &params, &Patch::Merge(patch))
        .await
        .map_err(|e| ApplyError::from_kube(&e))?;
    let stored = serde_json::to_value(&stored).unwrap_or(Value::Null);
    let fields = Fields::read(&stored);
    Ok(Applied {
        dry_run: opts.server_dry_run,
        resource_version: stored["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        differences: differences(&plan.after.fields, &fields),
        fields,
    })
}

fn differences(planned: &Fields, stored: &Fields) -> Vec<String> {
    super::fields::ALL_FIELDS
        .into_iter()
        .filter(|f| planned.get(*f) != stored.get(*f))
        .map(|f| {
            format!(
                "the server stored {} = {} where the plan said {}",
                f.label(),
                super::fields::shown(stored.get(f)),
                super::fields::shown(planned.get(f))
            )
        })
        .collect()
}

/// How a restart went.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restarted {
    pub vmi_uid: String,
    pub pod: String,
    pub pod_limit_bytes: Option<i64>,
    /// The new pod's compute limit equals the plan's expected limit.
    pub matches_plan: bool,
}

/// Restart the VM (the KubeVirt `restart` subresource) and wait until a new VMI runs and its
/// pod exists, reporting each step through `progress`.
pub async fn restart_and_wait(
    client: &kube::Client,
    plan: &Plan,
    timeout: Duration,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Restarted, ApplyError> {
    let (ns, name) = (plan.namespace.as_str(), plan.name.as_str());
    let vmis: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &vmi_resource());
    let pods: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &pod_resource());
    let old_uid = vmis
        .get_opt(name)
        .await
        .map_err(|e| ApplyError::from_kube(&e))?
        .and_then(|v| v.metadata.uid);
    let req = http::Request::put(format!(
        "/apis/subresources.kubevirt.io/v1/namespaces/{ns}/virtualmachines/{name}/restart"
    ))
    .header("Content-Type", "application/json")
    .body(b"{}".to_vec())
    .map_err(|e| ApplyError::Invalid(e.to_string()))?;
    client
        .request_text(req)
        .await
        .map_err(|e| ApplyError::from_kube(&e))?;
    progress(&format!("restart of {ns}/{name} requested"));
    let waiting_failed = |reason: String| ApplyError::WaitAfterRestart {
        namespace: ns.to_string(),
        name: name.to_string(),
        reason,
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let state = observe(&vmis, &pods, name, old_uid.as_deref())
            .await
            .map_err(|e| waiting_failed(e.to_string()))?;
        let line = state.describe();
        if line != last {
            progress(&line);
            last = line;
        }
        if let Observed::Ready { uid, pod, limit } = state {
            return Ok(Restarted {
                matches_plan: limit == plan.after.expected_pod_limit_bytes,
                vmi_uid: uid,
                pod,
                pod_limit_bytes: limit,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(waiting_failed(format!(
                "it did not run again within {}s ({last})",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

enum Observed {
    OldStillThere,
    NoVmi,
    NewVmi {
        uid: String,
        phase: String,
    },
    Ready {
        uid: String,
        pod: String,
        limit: Option<i64>,
    },
}

impl Observed {
    fn describe(&self) -> String {
        match self {
            Observed::OldStillThere => "waiting for the old VMI to go".into(),
            Observed::NoVmi => "waiting for a new VMI".into(),
            Observed::NewVmi { uid, phase } => format!("new VMI {uid}: {phase}"),
            Observed::Ready { pod, limit, .. } => format!(
                "new VMI running in pod {pod} (compute memory limit {})",
                limit.map_or("none".to_string(), |l| format!("{l} bytes"))
            ),
        }
    }
}

async fn observe(
    vmis: &Api<DynamicObject>,
    pods: &Api<DynamicObject>,
    name: &str,
    old_uid: Option<&str>,
) -> Result<Observed, ApplyError> {
    let Some(vmi) = vmis
        .get_opt(name)
        .await
        .map_err(|e| ApplyError::from_kube(&e))?
    else {
        return Ok(Observed::NoVmi);
    };
    let uid = vmi.metadata.uid.clone().unwrap_or_default();
    if Some(uid.as_str()) == old_uid {
        return Ok(Observed::OldStillThere);
    }
    let phase = vmi.data["status"]["phase"]
        .as_str()
        .unwrap_or("Pending")
        .to_string();
    if phase != "Running" {
        return Ok(Observed::NewVmi { uid, phase });
    }
    let selector = format!(
        "{}={},{}={uid}",
        keys::LAUNCHER_LABEL,
        keys::LAUNCHER_LABEL_VALUE,
        keys::CREATED_BY
    );
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| ApplyError::from_kube(&e))?;
    let Some(pod) = list.items.into_iter().max_by(|a, b| {
        a.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
    }) else {
        return Ok(Observed::NewVmi {
            uid,
            phase: "Running, pod not found yet".into(),
        });
    };
    let limit = pod.data["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "compute"))
        .and_then(|c| c["resources"]["limits"]["memory"].as_str())
        .and_then(|q| crate::units::parse_memory(q).ok());
    Ok(Observed::Ready {
        uid,
        pod: pod.metadata.name.unwrap_or_default(),
        limit,
    })
}
