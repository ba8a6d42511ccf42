//! Objects as JSON per resource type, one global resourceVersion, and the event history watches
//! resume from.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

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

type Key = (String, String);

pub struct Store {
    rv: u64,
    objects: HashMap<&'static str, BTreeMap<Key, Value>>,
    history: VecDeque<Arc<Event>>,
    /// Events older than this were dropped from `history`.
    oldest_kept: u64,
    /// Off while bulk loading a scenario (nobody can be watching yet).
    pub recording: bool,
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}

fn key_of(obj: &Value) -> Key {
    (
        meta_str(obj, "namespace").to_string(),
        meta_str(obj, "name").to_string(),
    )
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
            history: VecDeque::new(),
            oldest_kept: 1000,
            recording: true,
            tx,
        }
    }

    /// Forget the event history (after bulk loading, before anyone watches): watches from older
    /// versions then get 410 Gone and re-list.
    pub fn compact(&mut self) {
        self.history.clear();
        self.history.shrink_to_fit();
        self.oldest_kept = self.rv;
        self.recording = true;
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
        self.objects
            .get(rt.key)?
            .get(&(ns.to_string(), name.to_string()))
    }

    /// Objects of a type, in one namespace or all (sorted by namespace, then name).
    pub fn list<'a>(
        &'a self,
        rt: &ResourceType,
        ns: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .get(rt.key)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((n, _), _)| ns.is_none_or(|want| want == n))
            .map(|(_, v)| v)
    }

    pub fn count(&self, rt: &ResourceType) -> usize {
        self.objects.get(rt.key).map_or(0, BTreeMap::len)
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
        let key = key_of(&obj);
        if key.1.is_empty() {
            return Err(ApiError::invalid(
                rt,
                "",
                "metadata.name: Required value: name or generateName is required",
            ));
        }
        if self.get(rt, &key.0, &key.1).is_some() {
            return Err(ApiError::already_exists(rt, &key.1));
        }
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
        let map = self.objects.entry(rt.key).or_default();
        map.insert(key.clone(), obj);
        map.get(&key)
            .ok_or_else(|| ApiError::internal("stored object vanished"))
    }

    /// Replace a stored object (the caller has checked resourceVersion and merged status).
    /// Returns the stored object; no event when nothing changed.
    pub fn replace(&mut self, rt: &ResourceType, mut obj: Value) -> Result<Value, ApiError> {
        let key = key_of(&obj);
        let Some(old) = self.get(rt, &key.0, &key.1) else {
            return Err(ApiError::not_found(rt, &key.1));
        };
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
        self.objects
            .entry(rt.key)
            .or_default()
            .insert(key, obj.clone());
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
        let key = (ns.to_string(), name.to_string());
        let Some(obj) = self.objects.get_mut(rt.key).and_then(|m| m.get_mut(&key)) else {
            return false;
        };
        if obj[field] == value {
            return false;
        }
        obj[field] = value;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if self.recording {
            let snapshot = obj.clone();
            self.record(rt, EventType::Modified, &snapshot);
        }
        true
    }

    pub fn delete(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .get_mut(rt.key)?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.bump(&mut obj);
        self.record(rt, EventType::Deleted, &obj);
        Some(obj)
    }
}

fn meta_str_mut<'a>(meta: &'a Value, field: &str) -> &'a str {
    meta[field].as_str().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::resources::{NODES, VIRTUAL_MACHINES};

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
    fn uids_are_v4() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uid());
    }
}
