//! The README's pictures of the dashboard are the captured screens in `assets/` (written by
//! `scripts/capture-screens.sh`), so the README cannot drift from what was captured.

use std::path::Path;

fn read(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// The fenced block after `<!-- picture: FILE -->`, for each marker: (FILE, block text).
fn pictures(readme: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(file) = line
            .strip_prefix("<!-- picture: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```text"),
            "{file}: no ```text block after the marker"
        );
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        out.push((file.to_string(), block.join("\n")));
    }
    out
}

#[test]
fn readme_shows_the_captured_dashboard_and_detail_view() {
    let readme = read("README.md");
    let found = pictures(&readme);
    let files: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(files, ["assets/dashboard.txt", "assets/detail.txt"]);
    for (file, block) in &found {
        let captured = read(file);
        assert_eq!(
            block.trim_end(),
            captured.trim_end(),
            "README's picture differs from {file}: run scripts/capture-screens.sh"
        );
        assert!(!captured.contains('\x1b'), "{file} holds escape codes");
    }
    assert!(found[0].1.contains("memhold-vm") && found[0].1.contains("OOMS"));
    assert!(found[1].1.contains("OOM history") && found[1].1.contains("Memory model"));
}
