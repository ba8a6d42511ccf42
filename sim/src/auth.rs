//! Who is calling (bearer tokens, impersonation) and RBAC-like denials tests can switch on.

use std::collections::HashSet;

use super::resources::ResourceType;
use super::status::ApiError;

const TOKEN_PREFIX: &str = "sim-token-";

/// The bearer tokens one simulator issues: `sim-token-<user>.<secret>`, the secret random per
/// simulator, so only holders of its kubeconfig (written 0600) get in.
pub struct Tokens {
    secret: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(<secret>)")
    }
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            secret: format!(
                "{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            ),
        }
    }
}

impl Tokens {
    /// The token that names `user` on this simulator.
    pub fn token_for(&self, user: &str) -> String {
        format!("{TOKEN_PREFIX}{user}.{}", self.secret)
    }

    /// The user of an `Authorization` header value, `None` unless it carries a token this
    /// simulator issued.
    pub fn user_for_header(&self, header: Option<&str>) -> Option<String> {
        let token = header?.strip_prefix("Bearer ")?.trim();
        let (named, secret) = token.strip_prefix(TOKEN_PREFIX)?.rsplit_once('.')?;
        let same = secret.len() == self.secret.len()
            && secret
                .bytes()
                .zip(self.secret.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        (same && !named.is_empty()).then(|| named.to_string())
    }
}

/// Who may do what: everyone may do everything except in namespaces, or verbs on resources, a
/// test forbade for them.
#[derive(Debug, Default, Clone)]
pub struct Auth {
    forbidden: HashSet<(String, String)>,
    /// (user, verb, `plural` or `plural/subresource`), in every namespace and cluster-wide.
    forbidden_verbs: HashSet<(String, String, String)>,
}

impl Auth {
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
    fn tokens_name_users_and_need_this_simulators_secret() {
        let t = Tokens::default();
        let alice = t.token_for("alice");
        assert_eq!(
            t.user_for_header(Some(&format!("Bearer {alice}")))
                .as_deref(),
            Some("alice")
        );
        // A user name with dots keeps them.
        let dotted = t.token_for("system:serviceaccount:a.b");
        assert_eq!(
            t.user_for_header(Some(&format!("Bearer {dotted}")))
                .as_deref(),
            Some("system:serviceaccount:a.b")
        );
        // The old predictable token, another simulator's token, a cut secret: nobody.
        assert_eq!(t.user_for_header(Some("Bearer sim-token-alice")), None);
        let other = Tokens::default().token_for("alice");
        assert_eq!(t.user_for_header(Some(&format!("Bearer {other}"))), None);
        assert_eq!(
            t.user_for_header(Some(&format!("Bearer {}", &alice[..alice.len() - 1]))),
            None
        );
        assert_eq!(t.user_for_header(Some(&alice)), None, "no Bearer scheme");
        assert_eq!(t.user_for_header(None), None);
        assert!(!format!("{t:?}").contains(&alice[alice.len() - 8..]));
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
