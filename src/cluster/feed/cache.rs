//! A watch's objects, kept as the watch delivers them: each object once, keyed by its own
//! namespace and name. kube-rs's reflector store keeps, beside each object, kube's full
//! `ObjectMeta` (the object's name, namespace and resourceVersion copied again into a struct of
//! some 300 bytes) and an `ObjectRef` key with a third copy of the name and namespace: about
//! 9 MiB for 5,000 VMs with their VMIs and pods. Here the watcher's `Lean` wrapper (which kube's
//! watcher needs for the resourceVersion it resumes from) is dropped as each event is applied;
//! only the shared object stays.
//!
//! Semantics as kube-rs's `reflector::store::Writer::apply_watcher_event` (kube-runtime 5):
//! `Init` starts a new buffer, `InitApply` fills it, `InitDone` swaps it in (a relist replaces
//! every object at once, so a snapshot never sees half a list), `Apply` and `Delete` change the
//! current set.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

use kube::runtime::watcher;

use crate::cluster::lean::{Kind, Lean};

/// An object in the set, hashed and compared by its namespace and name.
struct ByName<T: Kind>(Arc<T>);

/// The key a [`ByName`] is looked up by.
#[derive(PartialEq, Eq, Hash)]
struct Key<'a> {
    namespace: &'a str,
    name: &'a str,
}

/// Lets a `HashSet<ByName<T>>` be looked up by a borrowed [`Key`].
trait AsKey {
    fn key(&self) -> Key<'_>;
}

impl<T: Kind> AsKey for ByName<T> {
    fn key(&self) -> Key<'_> {
        let m = self.0.lean_meta();
        Key {
            namespace: &m.namespace,
            name: &m.name,
        }
    }
}

impl AsKey for Key<'_> {
    fn key(&self) -> Key<'_> {
        Key {
            namespace: self.namespace,
            name: self.name,
        }
    }
}

impl<'a, T: Kind> Borrow<dyn AsKey + 'a> for ByName<T> {
    fn borrow(&self) -> &(dyn AsKey + 'a) {
        self
    }
}

impl PartialEq for dyn AsKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for dyn AsKey + '_ {}

impl Hash for dyn AsKey + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl<T: Kind> PartialEq for ByName<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<T: Kind> Eq for ByName<T> {}

impl<T: Kind> Hash for ByName<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

/// The current objects, and the list being received while a (re)list is under way.
pub struct Cache<T: Kind> {
    current: RwLock<HashSet<ByName<T>>>,
    /// Only the watching task touches it (between `Init` and `InitDone`).
    buffer: std::sync::Mutex<Option<HashSet<ByName<T>>>>,
}

impl<T: Kind> Default for Cache<T> {
    fn default() -> Self {
        Cache {
            current: RwLock::new(HashSet::new()),
            buffer: std::sync::Mutex::new(None),
        }
    }
}

impl<T: Kind> Cache<T> {
    /// Apply one watcher event (errors change nothing: the objects stay as they were).
    pub fn apply(&self, ev: &mut Result<watcher::Event<Lean<T>>, watcher::Error>) {
        let Ok(ev) = ev else { return };
        let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        match ev {
            watcher::Event::Init => *buffer = Some(HashSet::new()),
            watcher::Event::InitApply(o) => {
                if let Some(b) = buffer.as_mut() {
                    b.replace(ByName(o.obj.clone()));
                }
            }
            watcher::Event::InitDone => {
                if let Some(mut b) = buffer.take() {
                    b.shrink_to_fit();
                    *self.write() = b;
                }
            }
            watcher::Event::Apply(o) => {
                self.write().replace(ByName(o.obj.clone()));
            }
            watcher::Event::Delete(o) => {
                let m = o.obj.lean_meta();
                let key = Key {
                    namespace: &m.namespace,
                    name: &m.name,
                };
                self.write().remove(&key as &dyn AsKey);
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<ByName<T>>> {
        self.current.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<ByName<T>>> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The objects as of now, shared (not copied).
    pub fn objects(&self) -> Vec<Arc<T>> {
        self.read().iter().map(|o| o.0.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Hand the objects over, leaving the cache empty.
    pub fn take(&self) -> Vec<Arc<T>> {
        std::mem::take(&mut *self.write())
            .into_iter()
            .map(|o| o.0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::Pod;

    fn pod(ns: &str, name: &str, rv: &str) -> Lean<Pod> {
        let json = format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"{ns}","resourceVersion":"{rv}"}}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    fn names(c: &Cache<Pod>) -> Vec<String> {
        let mut v: Vec<String> = c
            .objects()
            .iter()
            .map(|p| {
                let m = &p.metadata;
                format!("{}/{}@{}", m.namespace, m.name, m.resource_version)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_relist_replaces_all_at_once_and_changes_apply_by_name() {
        let c = Cache::<Pod>::default();
        for ev in [
            watcher::Event::Init,
            watcher::Event::InitApply(pod("a", "p1", "1")),
            watcher::Event::InitApply(pod("b", "p1", "2")),
        ] {
            c.apply(&mut Ok(ev));
        }
        // Until the list is done, readers see what was there before (nothing).
        assert!(names(&c).is_empty());
        c.apply(&mut Ok(watcher::Event::InitDone));
        assert_eq!(names(&c), ["a/p1@1", "b/p1@2"]);
        // The same name in another namespace is another object; a change replaces by name.
        c.apply(&mut Ok(watcher::Event::Apply(pod("a", "p1", "3"))));
        c.apply(&mut Ok(watcher::Event::Apply(pod("a", "p2", "4"))));
        assert_eq!(names(&c), ["a/p1@3", "a/p2@4", "b/p1@2"]);
        c.apply(&mut Ok(watcher::Event::Delete(pod("b", "p1", "5"))));
        assert_eq!(names(&c), ["a/p1@3", "a/p2@4"]);
        // A relist that no longer has a/p2 drops it when it is done.
        for ev in [
            watcher::Event::Init,
            watcher::Event::InitApply(pod("a", "p1", "6")),
        ] {
            c.apply(&mut Ok(ev));
        }
        assert_eq!(names(&c), ["a/p1@3", "a/p2@4"]);
        c.apply(&mut Ok(watcher::Event::InitDone));
        assert_eq!(names(&c), ["a/p1@6"]);
        // An error leaves the objects as they were.
        c.apply(&mut Err(watcher::Error::NoResourceVersion));
        assert_eq!(c.len(), 1);
        assert_eq!(c.take().len(), 1);
        assert_eq!(c.len(), 0);
    }
}
