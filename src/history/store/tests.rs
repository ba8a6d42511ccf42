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
        .save("https://a:6443", &mut tracker("u1", 660 * MI, NOW), NOW)
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
        .save("https://b:6443", &mut tracker("u2", MI, NOW), NOW)
        .unwrap();
    assert_eq!(store.load("https://a:6443").0.vms.len(), 1);
}

#[test]
fn a_broken_file_is_set_aside_with_a_warning_and_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = PeakStore::new(dir.path().to_path_buf());
    let path = store.path_for("x");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"{\"format\":2,\"cluster\":\"x\",\"peaks\": [tru").unwrap();
    let (t, w) = store.load("x");
    assert!(t.vms.is_empty());
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("could not be read"), "{}", w[0]);
    assert!(w[0].contains(".json.broken"), "{}", w[0]);
    let mut aside = path.clone().into_os_string();
    aside.push(".broken");
    assert!(PathBuf::from(aside).exists());
    // The next save starts a new, valid file.
    let w = store.save("x", &mut tracker("u1", MI, NOW), NOW).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(store.load("x").0.vms.len(), 1);
    // A directory where the file should be: a warning, not a failure, on load.
    let store2 = PeakStore::new(dir.path().join("d"));
    std::fs::create_dir_all(store2.path_for("x")).unwrap();
    let (t, w) = store2.load("x");
    assert!(t.vms.is_empty());
    assert_eq!(w.len(), 1);
}

#[test]
fn a_peek_reads_the_store_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = PeakStore::new(dir.path().to_path_buf());
    assert_eq!(
        store.peek("x"),
        (None, Vec::new()),
        "no file: nothing, no warning"
    );
    store.save("x", &mut tracker("u1", MI, NOW), NOW).unwrap();
    let (t, w) = store.peek("x");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(t.unwrap().vms.len(), 1);
    // A broken file is left where it is (a warning, nothing moved aside).
    let path = store.path_for("x");
    std::fs::write(&path, b"{\"format\":2,\"cluster\":\"x\",\"peaks\": [tru").unwrap();
    let (t, w) = PeakStore::new(dir.path().to_path_buf()).peek("x");
    assert!(t.is_none());
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("could not be read"), "{}", w[0]);
    assert!(!w[0].contains(".broken"), "{}", w[0]);
    assert!(path.is_file());
    let files = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
    assert_eq!(files, 2, "the file and its lock, nothing else");
}

#[test]
fn two_writers_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                // One process's keeper: its tracker grows, and each save takes in the other's.
                let store = PeakStore::new(path);
                let mut t = PeakTracker::default();
                for i in 0..40 {
                    t.observe(&format!("w{w}-{i}"), &config(), peak((i + 1) * MI, NOW));
                    store.save("c", &mut t, NOW).unwrap();
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
    let left: Vec<_> = std::fs::read_dir(path.join("peaks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn the_higher_peak_of_two_runs_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    // Two runs: two processes, each with its store.
    let run = || PeakStore::new(dir.path().to_path_buf());
    run()
        .save("c", &mut tracker("u1", 700 * MI, NOW - 60), NOW)
        .unwrap();
    run()
        .save("c", &mut tracker("u1", 300 * MI, NOW), NOW)
        .unwrap();
    let (t, _) = run().load("c");
    assert_eq!(t.evidence("u1", &config())[0].bytes, 700 * MI);
}

#[test]
fn old_vms_expire() {
    let dir = tempfile::tempdir().unwrap();
    let run = || PeakStore::new(dir.path().to_path_buf());
    let old = NOW - EXPIRE_AFTER - 10;
    run().save("c", &mut tracker("old", MI, old), old).unwrap();
    run().save("c", &mut tracker("new", MI, NOW), NOW).unwrap();
    let (t, _) = run().load("c");
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
fn an_earlier_versions_single_file_is_split_per_cluster_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = PeakStore::new(dir.path().to_path_buf());
    // As the store was written before it kept one file per cluster, and before it remembered
    // launcher pods.
    let older = format!(
        r#"{{"format":1,"clusters":{{"https://a:6443":{{"vms":{{"u1":{{"config":"{}","remembered":{{"bytes":{},"at":{NOW},"source":"node n1, agent reading","level":"pod"}},"samples":[],"seen":{NOW}}}}}}},"https://b:6443":{{"vms":{{"u2":{{"config":"{}","remembered":null,"samples":[],"seen":{NOW}}}}}}}}}}}"#,
        config().0,
        660 * MI,
        config().0,
    );
    std::fs::write(dir.path().join("peaks.json"), older).unwrap();
    let (mut t, w) = store.load("https://a:6443");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(t.evidence("u1", &config())[0].bytes, 660 * MI);
    assert!(t.vms["u1"].pods.is_empty());
    assert!(
        !dir.path().join("peaks.json").exists(),
        "the old file stays"
    );
    // The other cluster got its own file.
    assert!(store.path_for("https://b:6443").is_file());
    assert_eq!(store.load("https://b:6443").0.vms.len(), 1);
    t.saw_pod("u1", &config(), "gone-pod", NOW);
    store.save("https://a:6443", &mut t, NOW).unwrap();
    let (t, _) = store.load("https://a:6443");
    assert_eq!(
        t.remembered_pods().get("gone-pod").map(String::as_str),
        Some("u1")
    );
}

#[test]
fn a_cluster_file_is_named_by_host_and_a_hash_never_by_the_urls_path() {
    let store = PeakStore::new(PathBuf::from("s"));
    let a = store.path_for("https://10.0.0.1:6443/k8s/clusters/c-m-abc");
    let b = store.path_for("https://10.0.0.1:6443/k8s/clusters/c-m-def");
    assert_ne!(a, b);
    let name = a.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("10.0.0.1_6443-"), "{name}");
    assert!(!name.contains("c-m-abc"), "{name}");
    assert!(name.ends_with(".json"), "{name}");
}

#[test]
fn a_save_reads_the_file_again_only_when_another_process_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let mine = PeakStore::new(dir.path().to_path_buf());
    let theirs = PeakStore::new(dir.path().to_path_buf());
    let mut my_peaks = tracker("u1", MI, NOW);
    mine.save("c", &mut my_peaks, NOW).unwrap();
    // Another process wrote: the next save reads the file and takes its VM in.
    theirs.save("c", &mut tracker("u2", MI, NOW), NOW).unwrap();
    mine.save("c", &mut my_peaks, NOW).unwrap();
    assert_eq!(
        my_peaks.vms.len(),
        2,
        "the other writer's VM was not taken in"
    );
    assert_eq!(
        PeakStore::new(dir.path().to_path_buf())
            .load("c")
            .0
            .vms
            .len(),
        2
    );
    // Unchanged since this process wrote it: not read. A file put in its place under the same
    // length, time and inode would not be noticed, so the proof is a file that is no longer
    // valid JSON yet looks unchanged: it is written over without a warning.
    let path = mine.path_for("c");
    let before = std::fs::metadata(&path).unwrap();
    let len = before.len() as usize;
    let mut garbage = vec![b' '; len];
    garbage[0] = b'[';
    let f = File::options().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, &garbage, 0).unwrap();
    f.set_modified(before.modified().unwrap()).unwrap();
    drop(f);
    let w = mine.save("c", &mut my_peaks, NOW).unwrap();
    assert!(w.is_empty(), "the unchanged file was read again: {w:?}");
    assert_eq!(
        PeakStore::new(dir.path().to_path_buf())
            .load("c")
            .0
            .vms
            .len(),
        2
    );
}

#[test]
fn a_clusters_file_unwritten_for_the_expiry_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = PeakStore::new(dir.path().to_path_buf());
    store.save("old", &mut tracker("u1", MI, NOW), NOW).unwrap();
    store.save("new", &mut tracker("u2", MI, NOW), NOW).unwrap();
    let old = store.path_for("old");
    let long_ago = SystemTime::now() - Duration::from_secs(EXPIRE_AFTER as u64 + 3600);
    File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let (t, _) = store.load("new");
    assert_eq!(t.vms.len(), 1);
    assert!(!old.exists(), "a cluster unseen for 30 days kept its file");
    assert!(store.path_for("new").exists());
}
