//! The kernel-log fixtures in tests/fixtures/oom, for the OOM parser's tests.

use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oom")
}

/// The fixture `name`'s text.
pub fn fixture(name: &str) -> String {
    let path = dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} is unreadable: {e}", path.display()))
}

/// The names of every fixture, sorted; fails when fewer than 15 are there.
pub fn fixture_names() -> Vec<String> {
    let dir = dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} is unreadable: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 15, "fixtures missing in {}", dir.display());
    names
}
