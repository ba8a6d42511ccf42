//! The kubelet fallback: one `GET /api/v1/nodes/{node}/proxy/stats/summary` per node per round,
//! through the API server's node proxy (RBAC: `get` on `nodes/proxy`). Needs no pod on the node
//! and no exec, but gives less: per-pod and per-container usage, working set and RSS, no processes
//! and no smaps (see `parse::kubelet_summary`).

use std::time::Duration;

use super::targets::Target;
use crate::model::readings::NodeReadings;
use crate::parse::kubelet_summary::{self, Wanted};

/// Read the Summary of `node` and take the `targets`' pods from it; give up after `timeout`.
pub async fn read_node(
    client: &kube::Client,
    node: &str,
    targets: &[Target],
    timeout: Duration,
    now: i64,
) -> Result<NodeReadings, String> {
    let path = format!("/api/v1/nodes/{node}/proxy/stats/summary");
    let req = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| format!("building the request for {path}: {e}"))?;
    let text = match tokio::time::timeout(timeout, client.request_text(req)).await {
        Err(_) => {
            return Err(format!(
                "the kubelet's stats summary of node {node} did not come within {:.0}s",
                timeout.as_secs_f64()
            ))
        }
        Ok(Err(e)) => return Err(refused(node, &e)),
        Ok(Ok(t)) => t,
    };
    let pods = kubelet_summary::parse(&text).map_err(|e| format!("node {node}: {e}"))?;
    let wanted: Vec<Wanted> = targets
        .iter()
        .map(|t| Wanted {
            uid: t.probe.uid.clone(),
            compute_id: t.compute_id.clone(),
        })
        .collect();
    Ok(kubelet_summary::readings(&pods, node, &wanted, now))
}

/// One sentence for a refused or failed Summary request; a 403 names the permission and the
/// other sources.
pub fn refused(node: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => forbidden_sentence(node, &s.message),
        kube::Error::Api(s) if s.code == 404 => format!(
            "the kubelet's stats summary of node {node} was not found ({}): the node may be gone",
            super::exec::kube_message(e)
        ),
        _ => format!(
            "reading the kubelet's stats summary of node {node} failed: {}",
            super::exec::kube_message(e)
        ),
    }
}

/// The 403 sentence: what to grant, and what works without it.
pub fn forbidden_sentence(node: &str, message: &str) -> String {
    let who = crate::cluster::forbidden::user_in_message(message)
        .map(|u| format!("user \"{u}\""))
        .unwrap_or_else(|| "this user".into());
    format!(
        "{who} may not read the kubelet's stats summary of node {node}: it needs get on \
         nodes/proxy (the kubectl-vmmem-node-readings ClusterRole in assets/rbac/agent-role.yaml); \
         without it use --live agent or --live pod-exec, or --live off for the spec alone"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_the_permission_and_the_fallbacks() {
        let msg = "nodes \"n1\" is forbidden: User \"alice\" cannot get resource \"nodes/proxy\" in API group \"\" at the cluster scope";
        let s = forbidden_sentence("n1", msg);
        assert!(s.starts_with("user \"alice\" may not read"), "{s}");
        assert!(s.contains("get on nodes/proxy"), "{s}");
        assert!(s.contains("--live agent or --live pod-exec"), "{s}");
        assert!(forbidden_sentence("n1", "forbidden").starts_with("this user"));
    }
}
