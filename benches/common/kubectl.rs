//! The real kubectl the benches compare against.

use std::path::PathBuf;

/// `kubectl` on PATH; a bench that compares against it cannot run without it, so it fails.
pub fn kubectl() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("kubectl is not installed (not on PATH): this benchmark compares against the real kubectl and cannot run without it")
    })
}
