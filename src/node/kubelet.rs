//! The kubelet fallback: one `GET /api/v1/nodes/{node}/proxy/stats/summary` per node per round,
//! through the API server's node proxy (RBAC: `get` on `nodes/proxy`). Needs no pod on the node
//! and no exec, but gives less: per-pod and per-container usage, working set and RSS, no processes
//! and no smaps (see `parse::kubelet_summary`).

use std::sync::Arc;
use std::time::Duration;

use super::targets::Target;
use crate::model::readings::NodeReadings;
use crate::parse::kubelet_summary::{self, SummaryError, Wanted};

/// Why a node's kubelet summary gave no readings.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KubeletError {
    #[error("building the request for {path}: {message}")]
    Request { path: String, message: String },
    #[error("the kubelet's stats summary of node {node} did not come within {secs:.0}s")]
    Timeout { node: String, secs: f64 },
    /// 403: no `get` on `nodes/proxy`; `user` as the server's message names it.
    #[error("{} may not read the kubelet's stats summary of node {node}: it needs get on \
         nodes/proxy (the kubectl-vmmem-kubelet ClusterRole in assets/rbac/kubelet-clusterrole.yaml); \
         without it use --live agent or --live pod-exec, or --live off for the spec alone",
        .user.as_ref().map_or_else(|| "this user".to_string(), |u| format!("user \"{u}\"")))]
    Forbidden { node: String, user: Option<String> },
    /// 404: the node (or its proxy path) is not there.
    #[error("the kubelet's stats summary of node {node} was not found ({message}): the node may be gone")]
    NotFound { node: String, message: String },
    /// Any other answer (`code`), or none (`None`).
    #[error("reading the kubelet's stats summary of node {node} failed: {message}")]
    Failed {
        node: String,
        code: Option<u16>,
        message: String,
    },
    #[error("node {node}: {error}")]
    Summary {
        node: String,
        error: Arc<SummaryError>,
    },
}

/// Read the Summary of `node` and take the `targets`' pods from it; give up after `timeout`.
pub async fn read_node(
    client: &kube::Client,
    node: &str,
    targets: &[Target],
    timeout: Duration,
    now: i64,
) -> Result<NodeReadings, KubeletError> {
    let path = format!("/api/v1/nodes/{node}/proxy/stats/summary");
    let req = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| KubeletError::Request {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let text = match tokio::time::timeout(timeout, client.request_text(req)).await {
        Err(_) => {
            return Err(KubeletError::Timeout {
                node: node.to_string(),
                secs: timeout.as_secs_f64(),
            })
        }
        Ok(Err(e)) => return Err(refused(node, &e)),
        Ok(Ok(t)) => t,
    };
    let pods = kubelet_summary::parse(&text).map_err(|e| KubeletError::Summary {
        node: node.to_string(),
        error: Arc::new(e),
    })?;
    let wanted: Vec<Wanted> = targets
        .iter()
        .map(|t| Wanted {
            uid: t.probe.uid.clone(),
            compute_id: t.compute_id.clone(),
        })
        .collect();
    Ok(kubelet_summary::readings(&pods, node, &wanted, now))
}

/// A refused or failed Summary request, by its status code; a 403 names the permission and
/// the other sources.
pub fn refused(node: &str, e: &kube::Error) -> KubeletError {
    let node = node.to_string();
    match e {
        kube::Error::Api(s) if s.code == 403 => KubeletError::Forbidden {
            node,
            user: crate::cluster::forbidden::user_in_message(&s.message),
        },
        kube::Error::Api(s) if s.code == 404 => KubeletError::NotFound {
            node,
            message: super::exec::kube_message(e),
        },
        _ => KubeletError::Failed {
            node,
            code: match e {
                kube::Error::Api(s) => Some(s.code),
                _ => None,
            },
            message: super::exec::kube_message(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_the_permission_and_the_fallbacks() {
        let msg = "nodes \"n1\" is forbidden: User \"alice\" cannot get resource \"nodes/proxy\" in API group \"\" at the cluster scope";
        let forbidden = |message: &str| {
            let status = kube::core::Status::failure(message, "Forbidden").with_code(403);
            refused("n1", &kube::Error::Api(status.boxed())).to_string()
        };
        let s = forbidden(msg);
        assert!(s.starts_with("user \"alice\" may not read"), "{s}");
        assert!(s.contains("get on nodes/proxy"), "{s}");
        assert!(s.contains("--live agent or --live pod-exec"), "{s}");
        assert!(forbidden("forbidden").starts_with("this user"));
    }
}
