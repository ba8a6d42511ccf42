//! The peak store: round trip, corruption, two writers at once, expiry.

use super::*;
use crate::model::evidence::{EvidenceKind, Level};
use crate::model::peaks::{MemoryConfig, Peak};

const MI: i64 = 1 << 20;
const NOW: i64 = 1_796_625_612;

fn config() -> MemoryConfig {
    MemoryConfig::of(Some(2048 * MI), Some(2300 * MI), 250 * MI)
}

fn peak(bytes: i64, at: i64) -> Peak {
    Peak {
        bytes,
        at,
        source: "node n1, agent reading".into(),
        level: Level::Pod,
    }
}

fn tracker(uid: &str, bytes: i64, at: i64) -> PeakTracker {
    let mut t = PeakTracker::default();
    t.observe(uid, &config(), peak(bytes, at));
    t
}

#[test]
fn a_saved_peak_comes_back_as_history_for_its_cluster_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = PeakStore::new(dir.path().join("state"));
    let w = store
        .save("https://a:6443", &tracker("u1", 660 * MI, NOW), NOW)
        .unwrap();
    assert!(w.is_empty(), "{w:?}");
    let (t, w) = store.load("https://a:6443");
    assert!(w.is_empty());
    let e = t.evidence("u1", &config());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].kind, EvidenceKind::History);
    assert_eq!(e[0].bytes, 660 * MI);
    assert!(store.load("https://b:6443").0.vms.is_empty());
    // Saving another cluster keeps the first.
    store
        .save("https://b:6443", &tracker("u2", MI, NOW), NOW)
        .unwrap();
    assert_eq!(store.load("https://a:6443").0.vms.len(), 1);
}

#[test]
fn a_broken_file_is_set_aside_with_a_warning_and_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = PeakStore::new(dir.path().to_path_buf());
    std::fs::write(store.path(), b"{\"format\":1,\"clusters\":{\"x\": [tru").unwrap();
    let (t, w) = store.load("x");
    assert!(t.vms.is_empty());
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("could not be read"), "{}", w[0]);
    assert!(w[0].contains("peaks.json.broken"), "{}", w[0]);
    assert!(dir.path().join("peaks.json.broken").exists());
    // The next save starts a new, valid file.
    let w = store.save("x", &tracker("u1", MI, NOW), NOW).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(store.load("x").0.vms.len(), 1);
    // A directory where the file should be: a warning, not a failure, on load.
    let store2 = PeakStore::new(dir.path().join("d"));
    std::fs::create_dir_all(store2.path()).unwrap();
    let (t, w) = store2.load("x");
    assert!(t.vms.is_empty());
    assert_eq!(w.len(), 1);
}

#[test]
fn two_writers_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = PeakStore::new(path);
                for i in 0..40 {
                    let t = tracker(&format!("w{w}-{i}"), (i + 1) * MI, NOW);
                    store.save("c", &t, NOW).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let (t, w) = PeakStore::new(path.clone()).load("c");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(t.vms.len(), 80);
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn the_higher_peak_of_two_runs_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = PeakStore::new(dir.path().to_path_buf());
    store
        .save("c", &tracker("u1", 700 * MI, NOW - 60), NOW)
        .unwrap();
    store.save("c", &tracker("u1", 300 * MI, NOW), NOW).unwrap();
    let (t, _) = store.load("c");
    assert_eq!(t.evidence("u1", &config())[0].bytes, 700 * MI);
}

#[test]
fn old_vms_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = PeakStore::new(dir.path().to_path_buf());
    let old = NOW - EXPIRE_AFTER - 10;
    store.save("c", &tracker("old", MI, old), old).unwrap();
    store.save("c", &tracker("new", MI, NOW), NOW).unwrap();
    let (t, _) = store.load("c");
    assert_eq!(t.vms.keys().cloned().collect::<Vec<_>>(), vec!["new"]);
}

#[test]
fn the_state_directory_follows_xdg() {
    // Only the function's rule; the environment is the process's, so compare both ways.
    match std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        Some(x) => assert_eq!(state_dir().unwrap(), PathBuf::from(x).join("kubectl-vmmem")),
        None => assert!(state_dir().unwrap().ends_with(".local/state/kubectl-vmmem")),
    }
}

#[test]
fn an_older_file_without_pods_still_loads_and_pods_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = PeakStore::new(dir.path().to_path_buf());
    // As the store was written before it remembered launcher pods.
    let older = format!(
        r#"{{"format":1,"clusters":{{"https://a:6443":{{"vms":{{"u1":{{"config":"{}","remembered":{{"bytes":{},"at":{NOW},"source":"node n1, agent reading","level":"pod"}},"samples":[],"seen":{NOW}}}}}}}}}}}"#,
        config().0,
        660 * MI
    );
    std::fs::write(store.path(), older).unwrap();
    let (mut t, w) = store.load("https://a:6443");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(t.evidence("u1", &config())[0].bytes, 660 * MI);
    assert!(t.vms["u1"].pods.is_empty());
    t.saw_pod("u1", &config(), "gone-pod", NOW);
    store.save("https://a:6443", &t, NOW).unwrap();
    let (t, _) = store.load("https://a:6443");
    assert_eq!(
        t.remembered_pods().get("gone-pod").map(String::as_str),
        Some("u1")
    );
}
