//! krew's rules for a plugin manifest (what `kubectl krew install` and the krew-index checks
//! reject), implemented from its documentation so tests can judge our manifests without krew.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

pub const API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";

/// The os/arch pairs krew knows.
pub const SUPPORTED: &[(&str, &str)] = &[
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("linux", "arm"),
    ("linux", "ppc64le"),
    ("linux", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("windows", "386"),
];

/// The platforms every release of this plugin must carry.
pub const RELEASED: &[(&str, &str)] = &[
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("windows", "amd64"),
];

/// One platform entry, as far as it could be read.
#[derive(Debug, Clone, Default)]
pub struct Platform {
    pub labels: Vec<(String, String)>,
    pub uri: String,
    pub sha256: String,
    pub bin: String,
}

impl Platform {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Does this platform's selector match a machine with `os` and `arch`?
    pub fn matches(&self, os: &str, arch: &str) -> bool {
        self.labels.iter().all(|(k, v)| match k.as_str() {
            "os" => v == os,
            "arch" => v == arch,
            _ => false,
        })
    }
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    cur.as_str()
}

/// The platform entries of a manifest (empty when there are none to read).
pub fn platforms(doc: &Value) -> Vec<Platform> {
    let Some(list) = doc
        .get("spec")
        .and_then(|s| s.get("platforms"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .map(|p| Platform {
            labels: p
                .get("selector")
                .and_then(|s| s.get("matchLabels"))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            uri: text(p, &["uri"]).unwrap_or_default().to_string(),
            sha256: text(p, &["sha256"]).unwrap_or_default().to_string(),
            bin: text(p, &["bin"]).unwrap_or_default().to_string(),
        })
        .collect()
}

/// `v` followed by semver: MAJOR.MINOR.PATCH, numbers without leading zeros, optional
/// `-prerelease` and `+build`.
pub fn is_krew_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let core = rest.split(['-', '+']).next().unwrap_or_default();
    let extra = &rest[core.len()..];
    let nums: Vec<&str> = core.split('.').collect();
    let numbers_ok = nums.len() == 3
        && nums.iter().all(|n| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
                && (n.len() == 1 || !n.starts_with('0'))
        });
    let extra_ok = extra.is_empty()
        || (extra.len() > 1
            && extra[1..]
                .split(['.', '+', '-'])
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric())));
    numbers_ok && extra_ok
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

/// Every rule the manifest breaks, one sentence each; empty when krew would accept it.
pub fn violations(yaml: &str, plugin_name: &str) -> Vec<String> {
    let doc: Value = match vmmem::parse::yaml::from_str(yaml) {
        Ok(d) => d,
        Err(e) => return vec![format!("not valid YAML: {e}")],
    };
    let mut out = Vec::new();
    if text(&doc, &["apiVersion"]) != Some(API_VERSION) {
        out.push(format!("apiVersion must be {API_VERSION}"));
    }
    if text(&doc, &["kind"]) != Some("Plugin") {
        out.push("kind must be Plugin".to_string());
    }
    match text(&doc, &["metadata", "name"]) {
        Some(n) if n == plugin_name => {}
        other => out.push(format!(
            "metadata.name must be {plugin_name}, not {other:?}"
        )),
    }
    match text(&doc, &["spec", "version"]) {
        Some(v) if is_krew_version(v) => {}
        other => out.push(format!(
            "spec.version must be semver with a leading v (like v1.2.3), not {other:?}"
        )),
    }
    match text(&doc, &["spec", "shortDescription"]) {
        Some(s) if !s.trim().is_empty() && !s.trim().contains('\n') => {}
        _ => out.push("spec.shortDescription must be one non-empty line".to_string()),
    }
    if text(&doc, &["spec", "description"]).is_none_or(|s| s.trim().is_empty()) {
        out.push("spec.description must not be empty".to_string());
    }
    if !text(&doc, &["spec", "homepage"]).is_some_and(|h| h.starts_with("https://")) {
        out.push("spec.homepage must be an https URL".to_string());
    }
    let raw = doc
        .get("spec")
        .and_then(|s| s.get("platforms"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if raw.is_empty() {
        out.push("spec.platforms must list at least one platform".to_string());
    }
    for (i, p) in raw.iter().enumerate() {
        let selector = p.get("selector");
        if selector.and_then(|s| s.get("matchExpressions")).is_some() {
            out.push(format!(
                "platform {i}: use selector.matchLabels (os, arch) only"
            ));
        }
        if selector
            .and_then(|s| s.get("matchLabels"))
            .and_then(Value::as_object)
            .is_none()
        {
            out.push(format!("platform {i}: selector.matchLabels is missing"));
        }
    }
    let plats = platforms(&doc);
    for (i, p) in plats.iter().enumerate() {
        for (k, _) in &p.labels {
            if k != "os" && k != "arch" {
                out.push(format!("platform {i}: label {k:?} is not os or arch"));
            }
        }
        match p.label("os") {
            None => out.push(format!("platform {i}: selector has no os label")),
            Some(os) if !SUPPORTED.iter().any(|(o, _)| *o == os) => {
                out.push(format!("platform {i}: os {os:?} is not one krew supports"))
            }
            Some(_) => {}
        }
        if let Some(arch) = p.label("arch") {
            if !SUPPORTED
                .iter()
                .any(|(o, a)| *a == arch && p.label("os") == Some(o))
            {
                out.push(format!(
                    "platform {i}: {}/{arch} is not a pair krew supports",
                    p.label("os").unwrap_or("?")
                ));
            }
        }
        if !(p.uri.starts_with("https://")
            && (p.uri.ends_with(".tar.gz") || p.uri.ends_with(".zip")))
        {
            out.push(format!(
                "platform {i}: uri must be an https URL of a .tar.gz or .zip, not {:?}",
                p.uri
            ));
        }
        if !is_sha256(&p.sha256) {
            out.push(format!(
                "platform {i}: sha256 must be 64 lowercase hex digits, not {:?}",
                p.sha256
            ));
        }
        if p.bin.trim().is_empty() {
            out.push(format!("platform {i}: bin is missing"));
        } else if p.label("os") == Some("windows") && !p.bin.ends_with(".exe") {
            out.push(format!(
                "platform {i}: windows bin {:?} must end in .exe",
                p.bin
            ));
        } else if p.label("os") != Some("windows") && p.bin.ends_with(".exe") {
            out.push(format!(
                "platform {i}: bin {:?} ends in .exe outside windows",
                p.bin
            ));
        }
    }
    for (os, arch) in SUPPORTED {
        let n = plats.iter().filter(|p| p.matches(os, arch)).count();
        if n > 1 {
            out.push(format!(
                "{n} platforms match {os}/{arch}: selectors overlap"
            ));
        }
    }
    out
}

/// Released platforms the manifest lacks.
pub fn missing_release_platforms(yaml: &str) -> Vec<String> {
    let doc: Value = vmmem::parse::yaml::from_str(yaml).unwrap_or(Value::Null);
    let plats = platforms(&doc);
    RELEASED
        .iter()
        .filter(|(os, arch)| !plats.iter().any(|p| p.matches(os, arch)))
        .map(|(os, arch)| format!("{os}/{arch}"))
        .collect()
}

/// The file names at the top of an archive (`.tar.gz` through `tar`, `.zip` through the zip crate).
pub fn archive_files(path: &Path) -> Vec<String> {
    let name = path.to_string_lossy();
    let list: Vec<String> = if name.ends_with(".zip") {
        let f = std::fs::File::open(path).unwrap();
        let mut z = zip::ZipArchive::new(f).unwrap();
        (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().to_string())
            .collect()
    } else {
        let o = std::process::Command::new("tar")
            .arg("tzf")
            .arg(path)
            .output()
            .expect("this test needs `tar` on PATH to list .tar.gz archives");
        assert!(
            o.status.success(),
            "tar tzf {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let set: BTreeSet<String> = list
        .into_iter()
        .map(|f| f.trim_start_matches("./").to_string())
        .filter(|f| !f.is_empty())
        .collect();
    set.into_iter().collect()
}

/// What an archive lacks for krew: the platform's bin and a LICENSE file.
pub fn archive_violations(path: &Path, bin: &str) -> Vec<String> {
    let files = archive_files(path);
    let mut out = Vec::new();
    if !files.iter().any(|f| f == bin) {
        out.push(format!("{}: no {bin} inside ({files:?})", path.display()));
    }
    if !files
        .iter()
        .any(|f| f.rsplit('/').next().unwrap_or(f).starts_with("LICENSE"))
    {
        out.push(format!(
            "{}: no LICENSE file inside ({files:?})",
            path.display()
        ));
    }
    out
}

/// sha256 of a file, lowercase hex (through `sha256sum`, else `shasum -a 256`).
pub fn sha256_of(path: &Path) -> String {
    let run = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .arg(path)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
    };
    run("sha256sum", &[])
        .or_else(|| run("shasum", &["-a", "256"]))
        .expect("this test needs sha256sum or shasum on PATH")
}
