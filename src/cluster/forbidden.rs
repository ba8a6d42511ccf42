//! What the user was not allowed to read, said in one sentence.

use std::collections::BTreeMap;

/// Lists the server refused (403).
#[derive(Debug, Clone, Default)]
pub struct Denied {
    /// (resource plural, namespace; `None` = cluster-wide)
    entries: Vec<(String, Option<String>)>,
    /// The user as the server named it in a message.
    user: Option<String>,
}

/// `User "alice"` in a Kubernetes Forbidden message.
pub fn user_in_message(msg: &str) -> Option<String> {
    let rest = &msg[msg.find("User \"")? + 6..];
    Some(rest[..rest.find('"')?].to_string())
}

impl Denied {
    pub fn add(&mut self, resource: &str, namespace: Option<&str>, message: &str) {
        if self.user.is_none() {
            self.user = user_in_message(message);
        }
        let e = (resource.to_string(), namespace.map(str::to_string));
        if !self.entries.contains(&e) {
            self.entries.push(e);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// One sentence naming verb, resources and namespaces, or `None` when nothing was denied.
    pub fn sentence(&self) -> Option<String> {
        if self.entries.is_empty() {
            return None;
        }
        // namespaces (or cluster-wide) → resources, in first-seen order of resources.
        let mut by_resource: Vec<(String, Vec<Option<String>>)> = Vec::new();
        for (r, ns) in &self.entries {
            match by_resource.iter_mut().find(|(x, _)| x == r) {
                Some((_, v)) => v.push(ns.clone()),
                None => by_resource.push((r.clone(), vec![ns.clone()])),
            }
        }
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for (r, mut nss) in by_resource {
            nss.sort();
            let where_ = if nss.iter().any(Option::is_none) {
                "cluster-wide".to_string()
            } else {
                let names: Vec<&str> = nss.iter().flatten().map(String::as_str).collect();
                format!(
                    "in namespace{} {}",
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", ")
                )
            };
            if !groups.contains_key(&where_) {
                order.push(where_.clone());
            }
            groups.entry(where_).or_default().push(r);
        }
        let parts: Vec<String> = order
            .iter()
            .map(|w| format!("{} {w}", groups[w].join(", ")))
            .collect();
        let who = self
            .user
            .as_ref()
            .map_or_else(|| "this user".to_string(), |u| format!("user {u:?}"));
        Some(format!(
            "forbidden: {who} may not list {}; the report shows only what it may read",
            parts.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sentence_groups_resources_by_namespaces() {
        let msg = "virtualmachines.kubevirt.io is forbidden: User \"alice\" cannot list resource \"virtualmachines\" in API group \"kubevirt.io\" in the namespace \"secret\"";
        let mut d = Denied::default();
        assert_eq!(d.sentence(), None);
        d.add("virtualmachines", Some("secret"), msg);
        d.add("virtualmachineinstances", Some("secret"), msg);
        d.add("pods", Some("secret"), msg);
        d.add("pods", Some("secret"), msg);
        d.add("nodes", None, "nodes is forbidden");
        assert_eq!(
            d.sentence().unwrap(),
            "forbidden: user \"alice\" may not list virtualmachines, virtualmachineinstances, pods in namespace secret; nodes cluster-wide; the report shows only what it may read"
        );
        let mut d = Denied::default();
        d.add("pods", Some("b"), "no user here");
        d.add("pods", Some("a"), "");
        assert_eq!(
            d.sentence().unwrap(),
            "forbidden: this user may not list pods in namespaces a, b; the report shows only what it may read"
        );
    }

    #[test]
    fn user_from_message() {
        assert_eq!(
            user_in_message("x is forbidden: User \"system:serviceaccount:a:b\" cannot"),
            Some("system:serviceaccount:a:b".to_string())
        );
        assert_eq!(user_in_message("User \"broken"), None);
    }
}
