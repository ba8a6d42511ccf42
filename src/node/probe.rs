//! The node probe script and the command line that runs it for a set of pods.
//!
//! One exec per node runs `sh -c SCRIPT vmmem-probe ARGS…` for all the pods of that node. Settings
//! go in front of the script as shell assignments, since an exec through the API server cannot set
//! the environment.

/// `assets/probe.sh`, carried inside the binary.
pub const PROBE_SCRIPT: &str = include_str!("../../assets/probe.sh");

/// One pod to probe: its UID and the sizes of its guest RAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// Pod UID with dashes.
    pub uid: String,
    /// Guest RAM sizes in bytes: the boot size, then any hotplugged memory backends. Empty: skip
    /// the smaps pass for this pod (guest resident then stays unknown).
    pub guest_bytes: Vec<u64>,
}

impl ProbeTarget {
    pub fn new(uid: impl Into<String>) -> Self {
        ProbeTarget {
            uid: uid.into(),
            guest_bytes: Vec::new(),
        }
    }

    pub fn with_guest(uid: impl Into<String>, guest_bytes: u64) -> Self {
        ProbeTarget {
            uid: uid.into(),
            guest_bytes: vec![guest_bytes],
        }
    }

    /// The script argument: `UID` or `UID:BYTES[,BYTES…]`.
    pub fn arg(&self) -> String {
        let sizes: Vec<String> = self
            .guest_bytes
            .iter()
            .filter(|&&b| b > 0)
            .map(|b| b.to_string())
            .collect();
        if sizes.is_empty() {
            self.uid.clone()
        } else {
            format!("{}:{}", self.uid, sizes.join(","))
        }
    }

    /// Parse `UID[:BYTES[,BYTES…]]` as typed on the command line; sizes may be quantities (`2Gi`).
    pub fn parse(s: &str) -> Result<ProbeTarget, TargetError> {
        let (uid, sizes) = s.split_once(':').unwrap_or((s, ""));
        if uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(TargetError::NotUid(s.to_string()));
        }
        let mut guest_bytes = Vec::new();
        for size in sizes.split(',').filter(|x| !x.is_empty()) {
            let b = crate::units::parse_bytes(size)?;
            if b <= 0 {
                return Err(TargetError::NotPositive {
                    size: size.to_string(),
                    target: s.to_string(),
                });
            }
            guest_bytes.push(b as u64);
        }
        Ok(ProbeTarget {
            uid: uid.to_string(),
            guest_bytes,
        })
    }
}

/// Why a `UID[:BYTES…]` argument is not a probe target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{0:?} is not a pod UID (expected e.g. 99ee3a64-645b-4699-9384-5a3875d78b41[:2Gi])")]
    NotUid(String),
    #[error(transparent)]
    Size(#[from] crate::units::QuantityError),
    #[error("guest size {size:?} in {target:?} must be positive")]
    NotPositive { size: String, target: String },
}

/// Where the probe looks; `None` keeps the script's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeSettings {
    /// The directory that plays the host's `/sys/fs/cgroup` (script default `/host/sys/fs/cgroup`).
    pub cgroup_root: Option<String>,
    /// The host's `/proc` (script default `/proc`).
    pub proc_root: Option<String>,
    /// kubepods cgroups below the memory hierarchy root, space separated.
    pub kubepods: Option<String>,
    /// Run inside a pod's container: the hierarchy root is this pod's own cgroup (pod exec).
    pub own_pod: Option<String>,
}

impl ProbeSettings {
    /// Shell assignments to put in front of the script.
    pub fn preamble(&self) -> String {
        let mut out = String::new();
        for (name, value) in [
            ("VMMEM_CGROUP_ROOT", &self.cgroup_root),
            ("VMMEM_PROC_ROOT", &self.proc_root),
            ("VMMEM_KUBEPODS", &self.kubepods),
            ("VMMEM_SELF", &self.own_pod),
        ] {
            if let Some(v) = value {
                out.push_str(name);
                out.push('=');
                out.push_str(&shell_quote(v));
                out.push('\n');
            }
        }
        out
    }
}

/// The argv that runs the probe for `targets` (no targets: every pod of the node):
/// `["sh", "-c", SETTINGS + SCRIPT, "vmmem-probe", ARGS…]`.
pub fn exec_command(targets: &[ProbeTarget], settings: &ProbeSettings) -> Vec<String> {
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("{}{}", settings.preamble(), PROBE_SCRIPT),
        "vmmem-probe".to_string(),
    ];
    argv.extend(targets.iter().map(ProbeTarget::arg));
    argv
}

/// `'…'` with embedded single quotes closed, escaped and reopened.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_and_settings() {
        let t = vec![
            ProbeTarget::with_guest("a-b", 2 << 30),
            ProbeTarget::new("c"),
            ProbeTarget {
                uid: "d".into(),
                guest_bytes: vec![1 << 30, 0, 512 << 20],
            },
        ];
        let s = ProbeSettings {
            cgroup_root: Some("/x y/it's".into()),
            ..Default::default()
        };
        let argv = exec_command(&t, &s);
        assert_eq!(argv[0..2], ["sh", "-c"]);
        assert!(argv[2].starts_with("VMMEM_CGROUP_ROOT='/x y/it'\\''s'\n"));
        assert!(argv[2].ends_with(PROBE_SCRIPT));
        assert_eq!(
            argv[3..],
            [
                "vmmem-probe",
                "a-b:2147483648",
                "c",
                "d:1073741824,536870912"
            ]
        );
    }

    #[test]
    fn targets_from_the_command_line() {
        let t = ProbeTarget::parse("99ee3a64-645b:2Gi,512Mi").unwrap();
        assert_eq!(t.uid, "99ee3a64-645b");
        assert_eq!(t.guest_bytes, vec![2 << 30, 512 << 20]);
        assert_eq!(
            ProbeTarget::parse("abc").unwrap().guest_bytes,
            Vec::<u64>::new()
        );
        assert_eq!(
            ProbeTarget::parse("../etc"),
            Err(TargetError::NotUid("../etc".into()))
        );
        assert!(matches!(
            ProbeTarget::parse("abc:lots"),
            Err(TargetError::Size(_))
        ));
        assert_eq!(
            ProbeTarget::parse("abc:-1").unwrap_err().to_string(),
            "guest size \"-1\" in \"abc:-1\" must be positive"
        );
    }

    #[test]
    fn the_script_is_plain_posix_sh_plus_cat() {
        // The only program it may run is cat: busybox and bci-base have little else in common.
        let others = [
            "awk", "grep", "sed", "find", "head", "tail", "cut", "tr", "wc", "ls", "ps", "xargs",
            "sort", "uniq", "basename", "dirname", "stat", "readlink", "expr", "env", "bash",
        ];
        for line in PROBE_SCRIPT
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
        {
            for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || "_./-".contains(c))) {
                assert!(!others.contains(&word), "probe.sh runs {word:?}: {line}");
            }
        }
        let first = format!(
            "echo '{} {}'",
            crate::parse::probe::MAGIC,
            crate::parse::probe::FORMAT_VERSION
        );
        assert!(
            PROBE_SCRIPT.contains(&first),
            "probe.sh must print {first:?}"
        );
    }
}
