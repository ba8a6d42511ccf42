//! How many requests the simulated API server served, by kind, for benchmarks and tests
//! (requests per dashboard refresh, "no relists"). Read in process through
//! [`SimHandle::requests`](super::SimHandle::requests), or from a separate `kubectl vmmem sim`
//! process at `GET <server URL>/vmmem-sim/requests` (behind the same secret path as the API).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `/version`, `/api`, `/apis`, group/version lists, OpenAPI.
    Discovery,
    List,
    Watch,
    Get,
    Create,
    Update,
    Patch,
    Delete,
    /// Pod exec (WebSocket).
    Exec,
    /// KubeVirt's subresources (restart, start, stop) and node proxy reads.
    Subresource,
    /// Anything else (unknown paths, failed authentication).
    Other,
}

impl RequestKind {
    /// The API verb's kind (`deletecollection` counts as delete).
    pub fn of_verb(verb: &str) -> RequestKind {
        match verb {
            "list" => RequestKind::List,
            "watch" => RequestKind::Watch,
            "get" => RequestKind::Get,
            "create" => RequestKind::Create,
            "update" => RequestKind::Update,
            "patch" => RequestKind::Patch,
            "delete" | "deletecollection" => RequestKind::Delete,
            _ => RequestKind::Other,
        }
    }
}

/// One authorization the server made, as RBAC sees it: the verb, API group, resource (with
/// `/subresource`), namespace (empty: cluster scope) and the object's name (for a list or watch,
/// the name a `metadata.name` field selector asks for), which `resourceNames` rules match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Access {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub namespace: String,
    pub name: Option<String>,
}

/// Counters shared by the server's handlers.
#[derive(Debug, Default)]
pub struct RequestCounters {
    counts: [AtomicU64; 11],
    /// Objects sent in list responses (all pages).
    listed_items: AtomicU64,
    /// Every authorization asked for (also refused ones), in order.
    accesses: std::sync::Mutex<Vec<Access>>,
}

fn index(kind: RequestKind) -> usize {
    kind as usize
}

impl RequestCounters {
    pub fn count(&self, kind: RequestKind) {
        self.counts[index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    /// Log an authorization (before it is checked).
    pub fn access(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        ns: Option<&str>,
        name: Option<&str>,
    ) {
        let a = Access {
            verb: verb.to_string(),
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: ns.unwrap_or_default().to_string(),
            name: name.map(str::to_string),
        };
        self.accesses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(a);
    }

    /// The authorizations logged so far.
    pub fn accesses(&self) -> Vec<Access> {
        self.accesses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn count_listed(&self, items: usize) {
        self.listed_items.fetch_add(items as u64, Ordering::Relaxed);
    }

    pub fn tally(&self) -> RequestTally {
        let get = |k: RequestKind| self.counts[index(k)].load(Ordering::Relaxed);
        RequestTally {
            discovery: get(RequestKind::Discovery),
            list: get(RequestKind::List),
            watch: get(RequestKind::Watch),
            get: get(RequestKind::Get),
            create: get(RequestKind::Create),
            update: get(RequestKind::Update),
            patch: get(RequestKind::Patch),
            delete: get(RequestKind::Delete),
            exec: get(RequestKind::Exec),
            subresource: get(RequestKind::Subresource),
            other: get(RequestKind::Other),
            listed_items: self.listed_items.load(Ordering::Relaxed),
        }
    }
}

/// Requests served so far, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestTally {
    pub discovery: u64,
    pub list: u64,
    pub watch: u64,
    pub get: u64,
    pub create: u64,
    pub update: u64,
    pub patch: u64,
    pub delete: u64,
    pub exec: u64,
    pub subresource: u64,
    pub other: u64,
    /// Objects sent in list responses.
    pub listed_items: u64,
}

impl RequestTally {
    pub fn total(&self) -> u64 {
        self.discovery
            + self.list
            + self.watch
            + self.get
            + self.create
            + self.update
            + self.patch
            + self.delete
            + self.exec
            + self.subresource
            + self.other
    }

    /// What was served between `earlier` and this tally.
    pub fn since(&self, earlier: &RequestTally) -> RequestTally {
        RequestTally {
            discovery: self.discovery - earlier.discovery,
            list: self.list - earlier.list,
            watch: self.watch - earlier.watch,
            get: self.get - earlier.get,
            create: self.create - earlier.create,
            update: self.update - earlier.update,
            patch: self.patch - earlier.patch,
            delete: self.delete - earlier.delete,
            exec: self.exec - earlier.exec,
            subresource: self.subresource - earlier.subresource,
            other: self.other - earlier.other,
            listed_items: self.listed_items - earlier.listed_items,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_and_differences() {
        let c = RequestCounters::default();
        c.count(RequestKind::List);
        c.count(RequestKind::List);
        c.count(RequestKind::of_verb("deletecollection"));
        let before = c.tally();
        c.count(RequestKind::Exec);
        c.count_listed(500);
        let after = c.tally();
        assert_eq!((before.list, before.delete, before.total()), (2, 1, 3));
        let d = after.since(&before);
        assert_eq!((d.exec, d.list, d.listed_items, d.total()), (1, 0, 500, 1));
        let json = serde_json::to_value(after).unwrap();
        assert_eq!(json["listedItems"], 500);
    }
}
