//! Kubernetes `Status` error bodies, worded like a real API server's.

use serde_json::{json, Value};

use super::resources::ResourceType;

/// An API error as the server returns it: HTTP code, reason and message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, rt: &ResourceType, name: &str) -> ApiError {
        let mut d = json!({"name": name, "kind": rt.plural});
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        self.details = Some(d);
        self
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified()),
        )
        .with_details(rt, name)
    }

    pub fn path_not_found() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified()),
        )
        .with_details(rt, name)
    }

    pub fn conflict(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                rt.qualified()
            ),
        )
        .with_details(rt, name)
    }

    /// A conflict with a message of the caller's choosing (KubeVirt's subresources).
    pub fn conflict_msg(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "Conflict", message)
    }

    /// RBAC denial, worded like the real authorizer.
    pub fn forbidden(
        user: &str,
        verb: &str,
        rt: &ResourceType,
        sub: Option<&str>,
        ns: Option<&str>,
    ) -> ApiError {
        let resource = match sub {
            Some(s) => format!("{}/{s}", rt.plural),
            None => rt.plural.to_string(),
        };
        let scope = match ns {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let mut e = ApiError::new(
            403,
            "Forbidden",
            format!(
                "{} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
                rt.qualified(),
                rt.group
            ),
        );
        let mut d = json!({"kind": rt.plural});
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        e.details = Some(d);
        e
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn invalid(rt: &ResourceType, name: &str, message: impl Into<String>) -> ApiError {
        let m = message.into();
        ApiError::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {m}", rt.kind),
        )
        .with_details(rt, name)
    }

    /// A webhook denial (Harvester's VM validator).
    pub fn denied(webhook: &str, message: &str) -> ApiError {
        ApiError::new(
            400,
            "BadRequest",
            format!("admission webhook \"{webhook}\" denied the request: {message}"),
        )
    }

    /// A patch type the resource does not take (strategic merge on custom resources).
    pub fn unsupported_media_type() -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// Watch from a resourceVersion older than the server keeps.
    /// A 403 about one named object reads `pods "x" is forbidden: …`, as a real apiserver's.
    pub fn named(mut self, name: Option<&str>) -> ApiError {
        let Some(name) = name.filter(|_| self.code == 403) else {
            return self;
        };
        if let Some(i) = self.message.find(" is forbidden: ") {
            self.message.insert_str(i, &format!(" \"{name}\""));
            if let Some(d) = &mut self.details {
                d["name"] = json!(name);
            }
        }
        self
    }

    pub fn gone(requested: u64, oldest: u64) -> ApiError {
        ApiError::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// A list at a resourceVersion that was compacted away.
    pub fn list_gone(message: &str) -> ApiError {
        ApiError::new(410, "Gone", message)
    }

    /// A stale continue token (the caller adds the token that continues at the newest version).
    pub fn expired(message: &str) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    /// A read at a resourceVersion the server has not reached.
    pub fn too_large_resource_version(requested: u64, current: u64) -> ApiError {
        let mut e = ApiError::new(
            504,
            "Timeout",
            format!("Too large resource version: {requested}, current: {current}"),
        );
        e.details = Some(
            json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
        );
        e
    }

    /// List options that do not go together.
    pub fn invalid_list_options(message: &str) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!("ListOptions.meta.k8s.io \"\" is invalid: {message}"),
        )
    }

    /// What the API server's node proxy answers when it cannot reach the node's kubelet.
    pub fn service_unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "ServiceUnavailable", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// The `Status` object.
    pub fn body(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

/// A `Status` reporting success (delete-collection, exec).
pub fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{PODS, VIRTUAL_MACHINES};

    #[test]
    fn forbidden_reads_like_rbac() {
        let e = ApiError::forbidden("x", "list", &VIRTUAL_MACHINES, None, Some("ns"));
        assert_eq!(
            e.message,
            "virtualmachines.kubevirt.io is forbidden: User \"x\" cannot list resource \"virtualmachines\" in API group \"kubevirt.io\" in the namespace \"ns\""
        );
        assert_eq!(e.body()["code"], 403);
        let e = ApiError::forbidden("x", "create", &PODS, Some("exec"), None);
        assert!(e.message.ends_with(
            "cannot create resource \"pods/exec\" in API group \"\" at the cluster scope"
        ));
    }

    #[test]
    fn forbidden_names_the_object_like_a_real_apiserver() {
        let e = ApiError::forbidden("u", "get", &PODS, None, Some("ns")).named(Some("p1"));
        assert_eq!(
            e.message,
            "pods \"p1\" is forbidden: User \"u\" cannot get resource \"pods\" in API group \"\" in the namespace \"ns\""
        );
        assert_eq!(e.body()["details"]["name"], "p1");
        let e = ApiError::forbidden("u", "list", &PODS, None, Some("ns")).named(None);
        assert!(e.message.starts_with("pods is forbidden: "));
        assert_eq!(
            ApiError::not_found(&PODS, "p").named(Some("p")).message,
            "pods \"p\" not found"
        );
    }

    #[test]
    fn not_found_names_group_and_kind() {
        let b = ApiError::not_found(&VIRTUAL_MACHINES, "vm1").body();
        assert_eq!(
            b["message"],
            "virtualmachines.kubevirt.io \"vm1\" not found"
        );
        assert_eq!(b["details"]["group"], "kubevirt.io");
        assert_eq!(b["reason"], "NotFound");
    }
}
