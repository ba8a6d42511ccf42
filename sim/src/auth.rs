//! Who is calling (bearer tokens, impersonation) and RBAC-like denials tests can switch on.

use std::collections::HashSet;

use super::resources::ResourceType;
use super::status::ApiError;

const TOKEN_PREFIX: &str = "sim-token-";

/// Users are named by their token (`sim-token-<user>`); everyone may do everything except in
/// namespaces, or verbs on resources, a test forbade for them.
#[derive(Debug, Default, Clone)]
pub struct Auth {
    forbidden: HashSet<(String, String)>,
    /// (user, verb, `plural` or `plural/subresource`), in every namespace and cluster-wide.
    forbidden_verbs: HashSet<(String, String, String)>,
}

impl Auth {
    pub fn token_for(user: &str) -> String {
        format!("{TOKEN_PREFIX}{user}")
    }

    /// The user of an `Authorization` header value, `None` when it is not ours.
    pub fn user_for_header(header: Option<&str>) -> Option<String> {
        let token = header?.strip_prefix("Bearer ")?.trim();
        token
            .strip_prefix(TOKEN_PREFIX)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
    }

    pub fn forbid_namespace(&mut self, user: &str, ns: &str) {
        self.forbidden.insert((user.to_string(), ns.to_string()));
    }

    /// Deny `verb` on `resource` (`pods`, `pods/exec`, `nodes/proxy`) to `user` everywhere.
    pub fn forbid_verb(&mut self, user: &str, verb: &str, resource: &str) {
        self.forbidden_verbs
            .insert((user.to_string(), verb.to_string(), resource.to_string()));
    }

    pub fn allow_namespace(&mut self, user: &str, ns: &str) {
        self.forbidden.remove(&(user.to_string(), ns.to_string()));
    }

    /// May `user` do `verb` on `rt` (subresource `sub`) in `ns` (`None`: cluster scope)?
    /// A user denied one namespace cannot list namespaced resources across all namespaces
    /// either, as with real RBAC (no cluster-wide binding).
    pub fn check(
        &self,
        user: &str,
        verb: &str,
        rt: &ResourceType,
        sub: Option<&str>,
        ns: Option<&str>,
    ) -> Result<(), ApiError> {
        let resource = match sub {
            Some(s) => format!("{}/{s}", rt.plural),
            None => rt.plural.to_string(),
        };
        let denied =
            match ns {
                Some(ns) => self.forbidden.contains(&(user.to_string(), ns.to_string())),
                None => rt.namespaced && self.forbidden.iter().any(|(u, _)| u == user),
            } || self
                .forbidden_verbs
                .contains(&(user.to_string(), verb.to_string(), resource));
        if denied {
            Err(ApiError::forbidden(user, verb, rt, sub, ns))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{NODES, VIRTUAL_MACHINES};

    #[test]
    fn tokens_name_users() {
        assert_eq!(
            Auth::user_for_header(Some("Bearer sim-token-alice")).as_deref(),
            Some("alice")
        );
        assert_eq!(Auth::user_for_header(Some("Bearer other")), None);
        assert_eq!(Auth::user_for_header(None), None);
        assert_eq!(Auth::token_for("bob"), "sim-token-bob");
    }

    #[test]
    fn forbidden_namespace_also_denies_cluster_wide_lists() {
        let mut a = Auth::default();
        a.forbid_namespace("x", "secret");
        assert!(a
            .check("x", "list", &VIRTUAL_MACHINES, None, Some("secret"))
            .is_err());
        assert!(a
            .check("x", "list", &VIRTUAL_MACHINES, None, Some("default"))
            .is_ok());
        assert!(a.check("x", "list", &VIRTUAL_MACHINES, None, None).is_err());
        assert!(a.check("x", "list", &NODES, None, None).is_ok());
        assert!(a
            .check("admin", "list", &VIRTUAL_MACHINES, None, None)
            .is_ok());
        a.allow_namespace("x", "secret");
        assert!(a.check("x", "list", &VIRTUAL_MACHINES, None, None).is_ok());
    }

    #[test]
    fn a_forbidden_verb_is_denied_everywhere_and_only_that() {
        use crate::resources::PODS;
        let mut a = Auth::default();
        a.forbid_verb("x", "create", "pods/exec");
        a.forbid_verb("x", "get", "nodes/proxy");
        assert!(a
            .check("x", "create", &PODS, Some("exec"), Some("default"))
            .is_err());
        assert!(a.check("x", "create", &PODS, None, Some("default")).is_ok());
        assert!(a.check("x", "list", &PODS, None, None).is_ok());
        let e = a
            .check("x", "get", &NODES, Some("proxy"), None)
            .unwrap_err();
        assert!(e.message.contains("nodes/proxy"), "{}", e.message);
        assert!(a.check("y", "get", &NODES, Some("proxy"), None).is_ok());
    }
}
