//! [`StringMap`]: a string → string map (labels, annotations, `activePods`) stored as one sorted
//! vector. A `BTreeMap` allocates a node of eleven slots (about 550 bytes) for even one entry; a
//! cluster's thousands of pods, VMs and VMIs carry two or three such maps each, which made them
//! the largest part of the lean objects in memory. Lookups are by binary search.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// String keys to string values, sorted by key, each key once.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct StringMap(Vec<(String, String)>);

impl StringMap {
    pub fn new() -> StringMap {
        StringMap(Vec::new())
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Set `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(_, v)| v)
    }

    /// From entries in any order; a later duplicate key wins (as inserting one by one).
    fn from_entries(mut entries: Vec<(String, String)>) -> StringMap {
        // Stable sort keeps duplicates in input order; keep the last of each run.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for e in entries {
            match out.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => out.push(e),
            }
        }
        out.shrink_to_fit();
        StringMap(out)
    }
}

impl fmt::Debug for StringMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(String, String)> for StringMap {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        StringMap::from_entries(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, String); N]> for StringMap {
    fn from(entries: [(String, String); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl Extend<(String, String)> for StringMap {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<'a> IntoIterator for &'a StringMap {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl IntoIterator for StringMap {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Serialize for StringMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Reads a map of strings to strings, keeping only the entries whose key `keep` accepts.
struct Entries {
    keep: fn(&str) -> bool,
}

impl<'de> Visitor<'de> for Entries {
    type Value = StringMap;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings to strings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if (self.keep)(&key) {
                entries.push((key, map.next_value::<String>()?));
            } else {
                // Still a string, as for a kept entry, but not copied.
                map.next_value::<AnyStr>()?;
            }
        }
        Ok(StringMap::from_entries(entries))
    }
}

/// `null` (an empty map) or the map itself.
struct NullOr(Entries);

impl<'de> Visitor<'de> for NullOr {
    type Value = StringMap;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings to strings, or null")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<StringMap, E> {
        Ok(StringMap::new())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<StringMap, E> {
        Ok(StringMap::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<StringMap, D::Error> {
        d.deserialize_map(self.0)
    }
}

/// A string that is checked and dropped without being copied.
struct AnyStr;

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AnyStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<AnyStr, E> {
                Ok(AnyStr)
            }
        }
        d.deserialize_str(V)
    }
}

impl StringMap {
    /// Decode a map of strings to strings, keeping only the keys `keep` accepts (objects carry
    /// labels and annotations the tool never reads, some of them kilobytes long). An explicit
    /// `null` is an empty map, as Go reads it.
    pub fn deserialize_keeping<'de, D: Deserializer<'de>>(
        d: D,
        keep: fn(&str) -> bool,
    ) -> Result<StringMap, D::Error> {
        d.deserialize_option(NullOr(Entries { keep }))
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StringMap::deserialize_keeping(d, |_| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_sorted_map() {
        let mut m: StringMap = serde_json::from_str(r#"{"b": "2", "a": "1", "b": "3"}"#).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            m.get("b").map(String::as_str),
            Some("3"),
            "the last duplicate wins"
        );
        assert!(m.contains_key("a") && !m.contains_key("c"));
        assert_eq!(m.insert("c".into(), "4".into()), None);
        assert_eq!(m.insert("a".into(), "5".into()).as_deref(), Some("1"));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"a":"5","b":"3","c":"4"}"#
        );
        assert_eq!(m.remove("b").as_deref(), Some("3"));
        let keys: Vec<&String> = m.keys().collect();
        assert_eq!(keys, ["a", "c"]);
        assert_eq!(format!("{m:?}"), r#"{"a": "5", "c": "4"}"#);
        let from: StringMap = [("z".to_string(), "1".to_string()), ("y".into(), "2".into())].into();
        assert_eq!(from.iter().next().unwrap().0, "y");
        assert!(serde_json::from_str::<StringMap>(r#"{"a": 1}"#).is_err());
        assert!(serde_saphyr::from_str::<StringMap>("a: b\nc: d\n")
            .unwrap()
            .contains_key("c"));
        assert!(serde_json::from_str::<StringMap>("null")
            .unwrap()
            .is_empty());
        assert!(serde_json::from_str::<StringMap>("null")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn keeps_only_the_keys_asked_for_and_still_checks_the_others() {
        let mut de = serde_json::Deserializer::from_str(r#"{"b": "x", "a": "1", "c": "y"}"#);
        let m = StringMap::deserialize_keeping(&mut de, |k| k == "a").unwrap();
        assert_eq!(format!("{m:?}"), r#"{"a": "1"}"#);
        let mut bad = serde_json::Deserializer::from_str(r#"{"b": 2, "a": "1"}"#);
        let e = StringMap::deserialize_keeping(&mut bad, |k| k == "a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a string"), "{e}");
    }
}
