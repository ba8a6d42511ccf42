//! Whether the agent namespace can hold agents, asked before any agent is created: `--live auto`
//! makes agents only in a namespace that exists (a cluster admin made it, with
//! assets/rbac/agent-namespace.yaml) and whose Pod Security level allows them.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;

/// Pod Security admission's enforce label (k8s.io/pod-security-admission/api, v1.33).
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// What the namespace says about agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It exists and enforces `privileged`, or nothing, or it could not be read (no `get` on
    /// namespaces): creating an agent is tried and the server's answer decides.
    Usable,
    /// The server says it does not exist.
    Missing,
    /// It enforces this level (`baseline`, `restricted`): the agent's hostPID and hostPath are
    /// refused there.
    Restricted(String),
}

/// The verdict on `labels` of an existing namespace.
pub fn of_labels(labels: Option<&std::collections::BTreeMap<String, String>>) -> Verdict {
    match labels.and_then(|l| l.get(ENFORCE_LABEL)) {
        Some(level) if level != "privileged" => Verdict::Restricted(level.clone()),
        _ => Verdict::Usable,
    }
}

/// Ask the server about `namespace`.
pub async fn check(client: &kube::Client, namespace: &str) -> Verdict {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.get(namespace).await {
        Ok(ns) => of_labels(ns.metadata.labels.as_ref()),
        Err(kube::Error::Api(s)) if s.code == 404 => Verdict::Missing,
        Err(_) => Verdict::Usable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_enforced_level_below_privileged_restricts() {
        let mut l = std::collections::BTreeMap::new();
        assert_eq!(of_labels(None), Verdict::Usable);
        assert_eq!(of_labels(Some(&l)), Verdict::Usable);
        l.insert(ENFORCE_LABEL.to_string(), "privileged".to_string());
        assert_eq!(of_labels(Some(&l)), Verdict::Usable);
        l.insert(ENFORCE_LABEL.to_string(), "baseline".to_string());
        assert_eq!(of_labels(Some(&l)), Verdict::Restricted("baseline".into()));
    }
}
