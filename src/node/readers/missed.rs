//! The pods a round missed: a VM that restarted (or migrated) between the objects the round was
//! read for and the end of the round has a new launcher pod the round did not read, and its old
//! pod is gone from the node. Reading those pods on the nodes that answered, right after the
//! round, gives the VM live data in the same refresh instead of none until the next one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;

use super::{read_one, start_agents, targets, LiveReadings, Round, Target};
use crate::model::inventory::Inventory;

/// The running launcher pods of `inv` that this round did not read, by node, on nodes that
/// answered this round (a node that did not answer keeps its VMs stale).
pub fn missed(inv: &Inventory, round: &Round) -> BTreeMap<String, Vec<Target>> {
    let mut per_node = targets(inv);
    per_node.retain(|node, ts| {
        let Some(r) = round.readings.get(node) else {
            return false;
        };
        if round.stale.contains_key(node) {
            return false;
        }
        ts.retain(|t| !r.pods.iter().any(|p| p.uid == t.probe.uid));
        !ts.is_empty()
    });
    per_node
}

impl LiveReadings {
    /// Read the pods of `inv` that `round` missed (see [`missed`]) and add them to their nodes'
    /// readings (in the round and as the nodes' last readings). Their guest resident is not
    /// measured (no smaps): it comes with the next rounds. Returns how many pods were read.
    pub async fn read_missed(&mut self, inv: &Inventory, round: &mut Round, now: i64) -> usize {
        let mut per_node = missed(inv, round);
        if per_node.is_empty() {
            return 0;
        }
        for t in per_node.values_mut().flatten() {
            t.probe.guest_bytes.clear();
        }
        let (client, agents, mode) = (&self.client, self.agents.as_ref(), self.opts.mode);
        let timeout = self.opts.exec_timeout;
        let nodes: BTreeSet<String> = per_node.keys().cloned().collect();
        let mut started = start_agents(agents, &nodes).await;
        let mut results = futures::stream::iter(per_node)
            .map(|(node, targets)| {
                let agent = agents.zip(started.remove(&node));
                async move {
                    let r = read_one(client, agent, mode, &node, &targets, timeout, now).await;
                    (node, r)
                }
            })
            .buffer_unordered(self.opts.parallel.max(1));
        let mut read = 0;
        let none = HashMap::new();
        while let Some((node, result)) = results.next().await {
            // A node that answered the round but not this: its VMs wait for the next round.
            let Ok(mut extra) = result else { continue };
            let Some(old) = round.readings.get(&node) else {
                continue;
            };
            self.guest.absorb(&mut extra, &none, self.round);
            extra.compact();
            let mut merged = (**old).clone();
            let found: Vec<&str> = extra.pods.iter().map(|p| p.uid.as_str()).collect();
            merged.missing_pods.retain(|m| !found.contains(&m.as_str()));
            read += extra.pods.len();
            merged.pods.append(&mut extra.pods);
            merged.missing_pods.append(&mut extra.missing_pods);
            merged.compact();
            let merged = Arc::new(merged);
            self.last.insert(node.clone(), merged.clone());
            round.readings.insert(node, merged);
        }
        read
    }
}
