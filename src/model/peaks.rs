//! Peaks of overhead used per VM: the highest this process has seen (the dashboard's session),
//! and the highest remembered from earlier runs on this machine, each kept only while the VM's
//! memory configuration is the one it was measured under. Also the recent samples the time to
//! OOM is fitted to. Pure: the clock comes in as values; the file lives in `crate::history`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::evidence::{At, Bound, Evidence, EvidenceKind, Level, VmKey};
use super::trend::{Sample, WINDOW};

/// What a VM's overhead budget depends on: a peak measured under another configuration says
/// nothing about this one (a VM restarted with more reservation, or a bigger guest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryConfig(pub String);

impl MemoryConfig {
    /// From the VM's guest, limit and KubeVirt's O (all bytes, `None` when unset).
    pub fn of(guest: Option<i64>, limit: Option<i64>, overhead: i64) -> MemoryConfig {
        let f = |v: Option<i64>| v.map_or("-".to_string(), |b| b.to_string());
        MemoryConfig(format!(
            "guest={} limit={} o={overhead}",
            f(guest),
            f(limit)
        ))
    }
}

/// The highest overhead seen for one VM, and when, where and at which level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Peak {
    pub bytes: i64,
    pub at: i64,
    pub source: String,
    pub level: Level,
}

/// What is kept for one VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmPeaks {
    pub config: MemoryConfig,
    /// The highest seen by this process (not stored: a new process starts without one).
    #[serde(skip)]
    pub session: Option<Peak>,
    /// The highest of any run on this machine, this one included once saved.
    pub remembered: Option<Peak>,
    /// Recent samples (within the trend window) for the time to OOM.
    #[serde(default)]
    pub samples: Vec<Sample>,
    /// When the VM was last seen (for expiry).
    pub seen: i64,
    /// The UIDs of the VM's virt-launcher pods seen, oldest first (at most [`MAX_PODS`]): a
    /// kernel log names only the pod of a kill, and KubeVirt deletes a failed pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
}

/// How many launcher pod UIDs a VM keeps.
pub const MAX_PODS: usize = 8;

/// Pod UID → the UID of the VM it ran (pods remembered on this machine).
pub type RememberedPods = std::collections::HashMap<String, String>;

/// Peaks of every VM of one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeakTracker {
    pub vms: BTreeMap<String, VmPeaks>,
    /// Which remembered peaks count as evidence (the keeper sets it for its history mode;
    /// not stored).
    #[serde(skip)]
    pub remembered_use: RememberedUse,
}

/// Which remembered peaks count as evidence: a report reads the keeper's own tracker (shared,
/// not copied for every dashboard refresh) through this.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RememberedUse {
    #[default]
    All,
    /// History off: none (a peak of this session counts as the session's).
    None,
    /// Those seen at or after this time (Unix seconds).
    Since(i64),
}

impl RememberedUse {
    fn allows(self, p: &Peak) -> bool {
        match self {
            RememberedUse::All => true,
            RememberedUse::None => false,
            RememberedUse::Since(t) => p.at >= t,
        }
    }
}

/// How many samples a VM keeps (a sample a refresh; the window is 15 minutes).
pub const MAX_SAMPLES: usize = 64;

impl VmPeaks {
    fn new(config: &MemoryConfig, seen: i64) -> VmPeaks {
        VmPeaks {
            config: config.clone(),
            session: None,
            remembered: None,
            samples: Vec::new(),
            seen,
            pods: Vec::new(),
        }
    }

    /// Remember a launcher pod UID (the newest last; the oldest beyond [`MAX_PODS`] go).
    fn saw_pod(&mut self, pod_uid: &str) {
        if !self.pods.iter().any(|p| p == pod_uid) {
            // A new launcher pod (the VM restarted after a kill, or moved): its processes start
            // afresh, so the trend of the old pod's overhead says nothing about the time to OOM.
            if !self.pods.is_empty() {
                self.samples.clear();
            }
            self.pods.push(pod_uid.to_string());
        }
        if self.pods.len() > MAX_PODS {
            let cut = self.pods.len() - MAX_PODS;
            self.pods.drain(..cut);
        }
    }
}

impl PeakTracker {
    /// Remember that `pod_uid` is a launcher pod of the VM `uid` (seen at `now`).
    pub fn saw_pod(&mut self, uid: &str, config: &MemoryConfig, pod_uid: &str, now: i64) {
        let vm = self
            .vms
            .entry(uid.to_string())
            .or_insert_with(|| VmPeaks::new(config, now));
        vm.seen = vm.seen.max(now);
        vm.saw_pod(pod_uid);
    }

    /// Every remembered launcher pod with its VM's UID.
    pub fn remembered_pods(&self) -> RememberedPods {
        self.vms
            .iter()
            .flat_map(|(uid, vm)| vm.pods.iter().map(move |p| (p.clone(), uid.clone())))
            .collect()
    }

    /// Record one reading of `uid` (the VM's UID): overhead used `bytes` at `at`.
    pub fn observe(&mut self, uid: &str, config: &MemoryConfig, reading: Peak) {
        let vm = self
            .vms
            .entry(uid.to_string())
            .or_insert_with(|| VmPeaks::new(config, reading.at));
        if &vm.config != config {
            // Another configuration: what was seen before no longer applies (its pods were
            // still the VM's).
            let pods = std::mem::take(&mut vm.pods);
            *vm = VmPeaks {
                pods,
                ..VmPeaks::new(config, reading.at)
            };
        }
        vm.seen = vm.seen.max(reading.at);
        if !vm.samples.iter().any(|s| s.at == reading.at) {
            // Make room first, so the list never grows past its bound (a full list that grew
            // by one before the cut kept twice the room: 2 KiB a VM instead of 1).
            if vm.samples.len() >= MAX_SAMPLES {
                let cut = vm.samples.len() + 1 - MAX_SAMPLES;
                vm.samples.drain(..cut);
            }
            if vm.samples.capacity() == 0 {
                vm.samples.reserve_exact(MAX_SAMPLES);
            }
            vm.samples.push(Sample {
                at: reading.at,
                bytes: reading.bytes,
            });
            vm.samples.sort_by_key(|s| s.at);
        }
        let newest = vm.samples.last().map_or(reading.at, |s| s.at);
        vm.samples.retain(|s| newest - s.at <= WINDOW);
        if vm.samples.len() > MAX_SAMPLES {
            let cut = vm.samples.len() - MAX_SAMPLES;
            vm.samples.drain(..cut);
        }
        if vm.session.as_ref().is_none_or(|p| reading.bytes > p.bytes) {
            vm.session = Some(reading.clone());
        }
        if vm
            .remembered
            .as_ref()
            .is_none_or(|p| reading.bytes > p.bytes)
        {
            vm.remembered = Some(reading);
        }
    }

    /// Take in what another run stored: the higher peak wins for the same configuration, the
    /// samples are merged; VMs this tracker has not seen are added.
    pub fn merge_stored(&mut self, stored: PeakTracker) {
        for (uid, mut theirs) in stored.vms {
            // The pods are the VM's whatever its configuration: theirs are older than ours.
            if let Some(ours) = self.vms.get(&uid) {
                for p in &ours.pods {
                    theirs.saw_pod(p);
                }
            }
            let pods = theirs.pods.clone();
            match self.vms.get_mut(&uid) {
                None => {
                    self.vms.insert(uid.clone(), theirs);
                }
                Some(ours) if ours.config == theirs.config => {
                    if let Some(p) = theirs.remembered {
                        if ours.remembered.as_ref().is_none_or(|o| p.bytes > o.bytes) {
                            ours.remembered = Some(p);
                        }
                    }
                    for s in theirs.samples {
                        if !ours.samples.iter().any(|o| o.at == s.at) {
                            ours.samples.push(s);
                        }
                    }
                    ours.samples.sort_by_key(|s| s.at);
                    if ours.samples.len() > MAX_SAMPLES {
                        let cut = ours.samples.len() - MAX_SAMPLES;
                        ours.samples.drain(..cut);
                    }
                    ours.seen = ours.seen.max(theirs.seen);
                }
                // Measured under another configuration: the newer one stays.
                Some(ours) if theirs.seen > ours.seen => {
                    *ours = theirs;
                }
                Some(_) => {}
            }
            if let Some(ours) = self.vms.get_mut(&uid) {
                ours.pods = pods;
            }
        }
    }

    /// Drop VMs not seen since `oldest`, then the least recently seen beyond `max_vms`.
    pub fn expire(&mut self, oldest: i64, max_vms: usize) {
        self.vms.retain(|_, v| v.seen >= oldest);
        if self.vms.len() > max_vms {
            let mut seen: Vec<(i64, String)> =
                self.vms.iter().map(|(k, v)| (v.seen, k.clone())).collect();
            seen.sort();
            for (_, uid) in seen.into_iter().take(self.vms.len() - max_vms) {
                self.vms.remove(&uid);
            }
        }
    }

    /// The evidence kept for `uid` under `config`: the session's peak and the remembered one
    /// (only where it is higher than the session's, or from an earlier run).
    pub fn evidence(&self, uid: &str, config: &MemoryConfig) -> Vec<Evidence> {
        let Some(vm) = self.vms.get(uid).filter(|v| &v.config == config) else {
            return Vec::new();
        };
        let item = |kind, p: &Peak, source: String| Evidence {
            kind,
            bytes: p.bytes,
            at: Some(At::Unix(p.at)),
            source,
            bound: Bound::Measured,
            level: p.level,
        };
        let mut out = Vec::new();
        if let Some(p) = &vm.session {
            out.push(item(EvidenceKind::SessionPeak, p, p.source.clone()));
        }
        if let Some(p) = vm
            .remembered
            .as_ref()
            .filter(|p| self.remembered_use.allows(p))
        {
            if vm.session.as_ref() != Some(p) {
                out.push(item(
                    EvidenceKind::History,
                    p,
                    format!("this machine's peak store ({})", p.source),
                ));
            }
        }
        out
    }

    /// The recent samples of `uid` under `config`.
    pub fn samples(&self, uid: &str, config: &MemoryConfig) -> &[Sample] {
        self.vms
            .get(uid)
            .filter(|v| &v.config == config)
            .map_or(&[], |v| v.samples.as_slice())
    }
}

/// Evidence per VM for a report, from the tracker and each VM's UID and configuration.
pub fn evidence_by_vm<'a>(
    tracker: &PeakTracker,
    vms: impl Iterator<Item = (VmKey, &'a str, MemoryConfig)>,
) -> std::collections::HashMap<VmKey, Vec<Evidence>> {
    vms.map(|(key, uid, config)| (key, tracker.evidence(uid, &config)))
        .filter(|(_, e)| !e.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: i64 = 1 << 20;

    fn peak(bytes: i64, at: i64) -> Peak {
        Peak {
            bytes,
            at,
            source: "node n1, agent reading".into(),
            level: Level::Pod,
        }
    }

    fn config(limit: i64) -> MemoryConfig {
        MemoryConfig::of(Some(2048 * MI), Some(limit), 250 * MI)
    }

    #[test]
    fn the_session_keeps_its_highest() {
        let mut t = PeakTracker::default();
        let c = config(2300 * MI);
        t.observe("u1", &c, peak(300 * MI, 10));
        t.observe("u1", &c, peak(660 * MI, 20));
        t.observe("u1", &c, peak(200 * MI, 30));
        let e = t.evidence("u1", &c);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].kind, EvidenceKind::SessionPeak);
        assert_eq!(e[0].bytes, 660 * MI);
        assert_eq!(e[0].at, Some(At::Unix(20)));
        assert_eq!(t.samples("u1", &c).len(), 3);
    }

    #[test]
    fn a_new_launcher_pod_starts_the_trend_afresh_but_keeps_the_peak() {
        let mut t = PeakTracker::default();
        let c = config(2300 * MI);
        t.saw_pod("u1", &c, "pod-a", 10);
        for (i, at) in [10, 20, 30].into_iter().enumerate() {
            t.observe("u1", &c, peak((300 + 100 * i as i64) * MI, at));
        }
        t.saw_pod("u1", &c, "pod-a", 40);
        assert_eq!(
            t.samples("u1", &c).len(),
            3,
            "the same pod keeps its samples"
        );
        // The pod was OOM-killed and replaced: its ramp is no trend of the new pod's.
        t.saw_pod("u1", &c, "pod-b", 50);
        t.observe("u1", &c, peak(120 * MI, 50));
        assert_eq!(
            t.samples("u1", &c),
            &[Sample {
                at: 50,
                bytes: 120 * MI
            }]
        );
        assert_eq!(t.evidence("u1", &c)[0].bytes, 500 * MI, "the peak stays");
    }

    #[test]
    fn a_stored_peak_is_history_only_under_the_same_configuration() {
        let mut old = PeakTracker::default();
        old.observe("u1", &config(2300 * MI), peak(700 * MI, 10));
        old.vms.get_mut("u1").unwrap().session = None;
        let mut now = PeakTracker::default();
        now.merge_stored(old.clone());
        let e = now.evidence("u1", &config(2300 * MI));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind, EvidenceKind::History);
        assert_eq!(e[0].bytes, 700 * MI);
        assert!(e[0].source.starts_with("this machine's peak store"));
        // After a fix raised the limit, the old peak is forgotten.
        assert!(now.evidence("u1", &config(2800 * MI)).is_empty());
        now.observe("u1", &config(2800 * MI), peak(100 * MI, 50));
        assert_eq!(now.evidence("u1", &config(2800 * MI))[0].bytes, 100 * MI);
        // Merging the older store again does not bring the old configuration back.
        now.merge_stored(old);
        assert_eq!(now.vms["u1"].config, config(2800 * MI));
    }

    #[test]
    fn merging_keeps_the_higher_peak_of_two_runs() {
        let c = config(2300 * MI);
        let mut a = PeakTracker::default();
        a.observe("u1", &c, peak(400 * MI, 10));
        let mut b = PeakTracker::default();
        b.observe("u1", &c, peak(500 * MI, 20));
        a.merge_stored(b);
        let e = a.evidence("u1", &c);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].kind, EvidenceKind::SessionPeak);
        assert_eq!(e[0].bytes, 400 * MI);
        assert_eq!(e[1].kind, EvidenceKind::History);
        assert_eq!(e[1].bytes, 500 * MI);
        assert_eq!(a.samples("u1", &c).len(), 2);
    }

    #[test]
    fn expiry_and_bounds() {
        let c = config(2300 * MI);
        let mut t = PeakTracker::default();
        for i in 0..10 {
            t.observe(&format!("u{i}"), &c, peak(MI, i * 100));
        }
        t.expire(300, 100);
        assert_eq!(t.vms.len(), 7);
        t.expire(0, 3);
        assert_eq!(
            t.vms.keys().cloned().collect::<Vec<_>>(),
            vec!["u7", "u8", "u9"]
        );
        // Samples: only the window, at most MAX_SAMPLES.
        for s in 0..200 {
            t.observe("u9", &c, peak(MI, 1000 + s * 2));
        }
        assert_eq!(t.samples("u9", &c).len(), MAX_SAMPLES);
        t.observe("u9", &c, peak(MI, 1000 + 400 + WINDOW + 10));
        assert_eq!(t.samples("u9", &c).len(), 1);
    }

    #[test]
    fn launcher_pods_are_remembered_bounded_and_across_configurations() {
        let mut t = PeakTracker::default();
        let c = config(2300 * MI);
        for i in 0..10 {
            t.saw_pod("u1", &c, &format!("pod-{i}"), 100 + i);
        }
        t.saw_pod("u1", &c, "pod-9", 200);
        let pods = &t.vms["u1"].pods;
        assert_eq!(pods.len(), MAX_PODS);
        assert_eq!(pods.first().map(String::as_str), Some("pod-2"));
        assert_eq!(pods.last().map(String::as_str), Some("pod-9"));
        assert_eq!(t.vms["u1"].seen, 200);
        // A new configuration drops the peaks, not the pods: they were still the VM's.
        t.observe("u1", &config(2800 * MI), peak(100 * MI, 300));
        assert_eq!(t.vms["u1"].pods.len(), MAX_PODS);
        let map = t.remembered_pods();
        assert_eq!(map.get("pod-5").map(String::as_str), Some("u1"));
        assert!(!map.contains_key("pod-1"));
    }

    #[test]
    fn stored_pods_merge_with_this_runs() {
        let c = config(2300 * MI);
        let mut stored = PeakTracker::default();
        stored.saw_pod("u1", &c, "old-pod", 10);
        stored.saw_pod("u2", &c, "other-vm-pod", 10);
        let mut now = PeakTracker::default();
        // Another configuration now (the VM was resized and restarted): the pods still merge.
        now.observe("u1", &config(2800 * MI), peak(MI, 50));
        now.saw_pod("u1", &config(2800 * MI), "new-pod", 50);
        now.merge_stored(stored);
        assert_eq!(now.vms["u1"].pods, ["old-pod", "new-pod"]);
        assert_eq!(now.vms["u2"].pods, ["other-vm-pod"]);
    }
}
