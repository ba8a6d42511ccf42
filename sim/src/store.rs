//! Objects as JSON per resource type, one global resourceVersion, and the event history watches
//! resume from.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use axum::body::Bytes;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::resources::ResourceType;
use super::status::ApiError;

/// How many past events a watch can resume from before it gets 410 Gone.
const HISTORY: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub resource: &'static str,
    pub kind: EventType,
    pub object: Value,
}

/// An object's key, ordered as etcd orders them under the resource's prefix: `namespace/name`
/// for namespaced objects, `name` for cluster-scoped ones.
pub type Key = String;

/// The objects of one resource type by key. Shared (copy on write) with the list snapshots that
/// paged lists continue from.
pub type Objects = BTreeMap<Key, Arc<Value>>;

/// How many list snapshots continue tokens can refer to (oldest dropped first).
const SNAPSHOTS: usize = 16;

/// The objects of one resource as they were at one resourceVersion.
struct Snapshot {
    rv: u64,
    resource: &'static str,
    objects: Arc<Objects>,
}

pub struct Store {
    rv: u64,
    objects: HashMap<&'static str, Arc<Objects>>,
    snapshots: VecDeque<Snapshot>,
    history: VecDeque<Arc<Event>>,
    /// Events older than this were dropped from `history`.
    oldest_kept: u64,
    /// Off while bulk loading a scenario (nobody can be watching yet).
    pub recording: bool,
    tx: broadcast::Sender<Arc<Event>>,
    /// Objects as JSON, by resource and key, with the resourceVersion they were encoded at: an
    /// object is serialized once per version, however many lists send it (as the API server's
    /// watch cache keeps encoded objects).
    encoded: HashMap<(&'static str, Key), (String, Bytes)>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}

/// The store key of `name` in namespace `ns` (empty for cluster-scoped objects).
pub fn key(ns: &str, name: &str) -> Key {
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

/// The namespace an object of `rt` is stored under (none for cluster-scoped types).
fn namespace_of<'a>(rt: &ResourceType, obj: &'a Value) -> &'a str {
    if rt.namespaced {
        meta_str(obj, "namespace")
    } else {
        ""
    }
}

/// A random RFC 4122 version 4 UUID.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let h: String = b
        .iter()
        .flat_map(|x| {
            [
                HEX[(x >> 4) as usize] as char,
                HEX[(x & 15) as usize] as char,
            ]
        })
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Store {
    pub fn new() -> Store {
        let (tx, _) = broadcast::channel(65_536);
        Store {
            rv: 1000,
            objects: HashMap::new(),
            snapshots: VecDeque::new(),
            history: VecDeque::new(),
            oldest_kept: 1000,
            recording: true,
            tx,
            encoded: HashMap::new(),
        }
    }

    /// Forget the event history and list snapshots, as etcd's compaction does (after bulk
    /// loading, or to expire clients): watches and continue tokens from older versions then get
    /// 410 and list again.
    pub fn compact(&mut self) {
        self.history.clear();
        self.history.shrink_to_fit();
        self.snapshots.clear();
        self.oldest_kept = self.rv;
        self.recording = true;
    }

    /// The oldest resourceVersion reads can still be served at.
    pub fn oldest_kept(&self) -> u64 {
        self.oldest_kept
    }

    /// The objects of `rt` as of now, kept readable at this resourceVersion for paged lists that
    /// continue from it (copy on write: later changes do not touch what the snapshot holds).
    pub fn snapshot(&mut self, rt: &ResourceType) -> Arc<Objects> {
        let objects = self.objects.entry(rt.key).or_default().clone();
        let rv = self.rv;
        let held = self
            .snapshots
            .iter()
            .any(|s| s.rv == rv && s.resource == rt.key);
        if !held {
            if self.snapshots.len() >= SNAPSHOTS {
                self.snapshots.pop_front();
            }
            self.snapshots.push_back(Snapshot {
                rv,
                resource: rt.key,
                objects: objects.clone(),
            });
        }
        objects
    }

    /// The objects of `rt` as they were at `rv`: the current ones when nothing of that type
    /// changed since, else a snapshot taken then. `None` when that version is no longer
    /// readable (compacted, or never snapshotted) or lies in the future.
    pub fn objects_at(&self, rt: &ResourceType, rv: u64) -> Option<Arc<Objects>> {
        if rv > self.rv || rv < self.oldest_kept {
            return None;
        }
        let changed_since = self
            .history
            .iter()
            .rev()
            .take_while(|e| e.rv > rv)
            .any(|e| e.resource == rt.key);
        if !changed_since {
            return Some(self.objects.get(rt.key).cloned().unwrap_or_default());
        }
        self.snapshots
            .iter()
            .find(|s| s.rv == rv && s.resource == rt.key)
            .map(|s| s.objects.clone())
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Subscribe to future events (take this under the same lock as a history read).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Events of `resource` newer than `rv`, or `Err` when `rv` is older than the history.
    pub fn since(&self, resource: &str, rv: u64) -> Result<Vec<Arc<Event>>, ApiError> {
        if rv < self.oldest_kept {
            return Err(ApiError::gone(rv, self.oldest_kept));
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.rv > rv && e.resource == resource)
            .cloned()
            .collect())
    }

    fn record(&mut self, rt: &ResourceType, kind: EventType, object: &Value) {
        if !self.recording {
            return;
        }
        let ev = Arc::new(Event {
            rv: self.rv,
            resource: rt.key,
            kind,
            object: object.clone(),
        });
        if self.history.len() >= HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.oldest_kept = old.rv;
            }
        }
        self.history.push_back(ev.clone());
        let _ = self.tx.send(ev);
    }

    fn bump(&mut self, obj: &mut Value) {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(rt.key)?.get(&key(ns, name)).map(|v| &**v)
    }

    /// Objects of a type, in one namespace or all, in etcd's key order.
    pub fn list<'a>(
        &'a self,
        rt: &ResourceType,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .get(rt.key)
            .into_iter()
            .flat_map(move |m| in_namespace(m, ns))
            .map(|(_, v)| &**v)
    }

    pub fn count(&self, rt: &ResourceType) -> usize {
        self.objects.get(rt.key).map_or(0, |m| m.len())
    }

    fn objects_mut(&mut self, rt: &ResourceType) -> &mut Objects {
        Arc::make_mut(self.objects.entry(rt.key).or_default())
    }

    /// Store a new object: sets uid, creationTimestamp, generation and resourceVersion.
    pub fn create(&mut self, rt: &ResourceType, obj: Value, now: &str) -> Result<Value, ApiError> {
        self.insert(rt, obj, now).cloned()
    }

    /// [`create`](Self::create) without copying the stored object back.
    pub fn insert(
        &mut self,
        rt: &ResourceType,
        mut obj: Value,
        now: &str,
    ) -> Result<&Value, ApiError> {
        let name = meta_str(&obj, "name");
        if name.is_empty() {
            return Err(ApiError::invalid(
                rt,
                "",
                "metadata.name: Required value: name or generateName is required",
            ));
        }
        if self.get(rt, namespace_of(rt, &obj), name).is_some() {
            return Err(ApiError::already_exists(rt, name));
        }
        let key = key(namespace_of(rt, &obj), name);
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let meta = &mut obj["metadata"];
        if meta_str_mut(meta, "uid").is_empty() {
            meta["uid"] = json!(new_uid());
        }
        if meta_str_mut(meta, "creationTimestamp").is_empty() {
            meta["creationTimestamp"] = json!(now);
        }
        if rt.custom {
            meta["generation"] = json!(1);
        }
        if !rt.namespaced {
            if let Some(m) = meta.as_object_mut() {
                m.remove("namespace");
            }
        }
        self.bump(&mut obj);
        self.record(rt, EventType::Added, &obj);
        let map = self.objects_mut(rt);
        map.insert(key.clone(), Arc::new(obj));
        map.get(&key)
            .map(|v| &**v)
            .ok_or_else(|| ApiError::internal("stored object vanished"))
    }

    /// Replace a stored object (the caller has checked resourceVersion and merged status).
    /// Returns the stored object; no event when nothing changed.
    pub fn replace(&mut self, rt: &ResourceType, mut obj: Value) -> Result<Value, ApiError> {
        let name = meta_str(&obj, "name").to_string();
        let Some(old) = self.get(rt, namespace_of(rt, &obj), &name) else {
            return Err(ApiError::not_found(rt, &name));
        };
        let key = key(namespace_of(rt, old), &name);
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        // Immutable metadata stays as stored.
        for f in ["uid", "creationTimestamp", "namespace", "name"] {
            if !old["metadata"][f].is_null() {
                obj["metadata"][f] = old["metadata"][f].clone();
            }
        }
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if rt.custom {
            let gen = old["metadata"]["generation"].as_i64().unwrap_or(1);
            let spec_changed = old.get("spec") != obj.get("spec");
            obj["metadata"]["generation"] = json!(if spec_changed { gen + 1 } else { gen });
        }
        if *old == obj {
            return Ok(obj);
        }
        self.bump(&mut obj);
        self.objects_mut(rt).insert(key, Arc::new(obj.clone()));
        self.record(rt, EventType::Modified, &obj);
        Ok(obj)
    }

    /// Set one top-level field (e.g. `status`) of a stored object in place; an event only when
    /// it changed. Returns whether it did.
    pub fn set_field(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        field: &str,
        value: Value,
    ) -> bool {
        let key = key(ns, name);
        if self.get(rt, ns, name).is_none_or(|o| o[field] == value) {
            return false;
        }
        let (rv, recording) = (self.rv + 1, self.recording);
        let Some(obj) = self.objects_mut(rt).get_mut(&key).map(Arc::make_mut) else {
            return false;
        };
        obj[field] = value;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let event = recording.then(|| obj.clone());
        self.rv = rv;
        if let Some(e) = event {
            self.record(rt, EventType::Modified, &e);
        }
        true
    }

    /// `obj` (stored under `key`) as JSON, encoded once per resourceVersion.
    pub fn encoded(&mut self, rt: &ResourceType, key: &Key, obj: &Value) -> Bytes {
        let rv = meta_str(obj, "resourceVersion");
        if let Some((at, bytes)) = self.encoded.get(&(rt.key, key.clone())) {
            if at == rv {
                return bytes.clone();
            }
        }
        let bytes = Bytes::from(serde_json::to_vec(obj).unwrap_or_default());
        self.encoded
            .insert((rt.key, key.clone()), (rv.to_string(), bytes.clone()));
        bytes
    }

    pub fn delete(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Option<Value> {
        self.get(rt, ns, name)?;
        self.encoded.remove(&(rt.key, key(ns, name)));
        let stored = self.objects_mut(rt).remove(&key(ns, name))?;
        let mut obj = Arc::unwrap_or_clone(stored);
        self.bump(&mut obj);
        self.record(rt, EventType::Deleted, &obj);
        Some(obj)
    }
}

/// The entries of `objects` in namespace `ns` (all with `None`), in key order.
pub fn in_namespace<'a>(
    objects: &'a Objects,
    ns: Option<&str>,
) -> Box<dyn Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a> {
    match ns {
        None => Box::new(objects.iter()),
        Some(ns) => {
            // Keys of the namespace are `ns/…`; '0' is the byte after '/'.
            let range = (format!("{ns}/"), format!("{ns}0"));
            Box::new(objects.range(range.0..range.1))
        }
    }
}

fn meta_str_mut<'a>(meta: &'a Value, field: &str) -> &'a str {
    meta[field].as_str().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{NODES, VIRTUAL_MACHINES};

    fn vm(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"running": true}})
    }

    #[test]
    fn create_replace_delete_bump_one_global_version() {
        let mut s = Store::new();
        let a = s.create(&VIRTUAL_MACHINES, vm("a"), "t").unwrap();
        let rv_a: u64 = meta_str(&a, "resourceVersion").parse().unwrap();
        assert_eq!(a["kind"], "VirtualMachine");
        assert_eq!(a["metadata"]["generation"], 1);
        assert!(s.create(&VIRTUAL_MACHINES, vm("a"), "t").is_err());
        let n = s
            .create(
                &NODES,
                json!({"metadata": {"name": "n1", "namespace": "x"}}),
                "t",
            )
            .unwrap();
        assert!(n["metadata"]["namespace"].is_null());
        let mut changed = a.clone();
        changed["spec"]["running"] = json!(false);
        let c = s.replace(&VIRTUAL_MACHINES, changed).unwrap();
        assert_eq!(c["metadata"]["generation"], 2);
        assert_eq!(c["metadata"]["uid"], a["metadata"]["uid"]);
        let rv_c: u64 = meta_str(&c, "resourceVersion").parse().unwrap();
        assert!(rv_c > rv_a + 1);
        // An identical write is not an event.
        let same = s.replace(&VIRTUAL_MACHINES, c.clone()).unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            c["metadata"]["resourceVersion"]
        );
        let events = s.since(VIRTUAL_MACHINES.key, rv_a).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventType::Modified);
        assert!(s.delete(&VIRTUAL_MACHINES, "default", "a").is_some());
        assert_eq!(s.count(&VIRTUAL_MACHINES), 0);
        assert!(s.since(VIRTUAL_MACHINES.key, 1).is_err());
    }

    #[test]
    fn an_object_is_encoded_once_per_version() {
        let mut s = Store::new();
        let a = s.create(&VIRTUAL_MACHINES, vm("a"), "t").unwrap();
        let k = key("default", "a");
        let first = s.encoded(&VIRTUAL_MACHINES, &k, &a);
        assert_eq!(serde_json::from_slice::<Value>(&first).unwrap(), a);
        let again = s.encoded(
            &VIRTUAL_MACHINES,
            &k,
            &s.get(&VIRTUAL_MACHINES, "default", "a").unwrap().clone(),
        );
        assert_eq!(
            again.as_ptr(),
            first.as_ptr(),
            "the same bytes, not encoded again"
        );
        assert!(s.set_field(
            &VIRTUAL_MACHINES,
            "default",
            "a",
            "status",
            json!({"ready": true})
        ));
        let now = s.get(&VIRTUAL_MACHINES, "default", "a").unwrap().clone();
        let changed = s.encoded(&VIRTUAL_MACHINES, &k, &now);
        assert_eq!(serde_json::from_slice::<Value>(&changed).unwrap(), now);
        assert!(s.delete(&VIRTUAL_MACHINES, "default", "a").is_some());
        assert!(s.encoded.is_empty(), "forgotten with the object");
    }

    #[test]
    fn uids_are_v4() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uid());
    }
}
