//! The agent's capabilities, measured on this machine's kernel: assets/probe.sh and the kernel-log
//! command run as root with every capability gone but the agent's (`SYS_PTRACE`, `SYSLOG`, as the
//! agent pod's securityContext keeps them) read qemu's guest RAM in `/proc/PID/smaps` of a process
//! of another user (uid 107, as KubeVirt runs qemu) and the kernel log; without `SYS_PTRACE` the
//! smaps is refused (procfs: `ptrace_may_access(PTRACE_MODE_READ_FSCREDS)`), without `SYSLOG` the
//! kernel log is (`kernel.dmesg_restrict=1`: syslog(2) needs it). Fails (never skips) where the
//! cgroup v1 memory hierarchy, `setpriv` or `cc` is missing.

use crate::cgtree;

use std::path::Path;
use std::process::{Command, Output};

use vmmem::node::agent_spec::CAPABILITIES;
use vmmem::node::readers::KERNEL_LOG_COMMAND;

const MIB: u64 = 1 << 20;

/// `argv` as root holding only `caps` (lower-case names): the bounding set is cut to them and
/// nothing is inherited, so every program the shell starts holds exactly these.
fn with_caps(caps: &[&str], argv: &[&str], envs: &[(&str, &Path)]) -> Output {
    let bounding: String = std::iter::once("-all".to_string())
        .chain(caps.iter().map(|c| format!("+{c}")))
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--inh-caps=-all", &format!("--bounding-set={bounding}")])
        .args(argv);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.env_remove("VMMEM_KERNEL_LOG");
    cmd.output()
        .unwrap_or_else(|e| panic!("setpriv is needed to drop capabilities: {e}"))
}

/// The capability names of the agent pod (`SYS_PTRACE`) as setpriv writes them (`sys_ptrace`).
fn agent_caps() -> Vec<String> {
    CAPABILITIES
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Sets `kernel.dmesg_restrict` to 1 (the setting under which reading the log needs a
/// capability; SUSE and most distributions ship it) and puts the old value back when dropped.
struct DmesgRestrict(Option<String>);

impl DmesgRestrict {
    fn on() -> DmesgRestrict {
        let path = "/proc/sys/kernel/dmesg_restrict";
        let old = std::fs::read_to_string(path).expect("reading kernel.dmesg_restrict");
        if old.trim() == "1" {
            return DmesgRestrict(None);
        }
        std::fs::write(path, "1").expect("setting kernel.dmesg_restrict=1 (root is needed)");
        DmesgRestrict(Some(old))
    }
}

impl Drop for DmesgRestrict {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = std::fs::write("/proc/sys/kernel/dmesg_restrict", old.trim());
        }
    }
}

#[test]
fn the_agent_needs_sys_ptrace_for_qemus_smaps_and_syslog_for_the_kernel_log() {
    let _restrict = DmesgRestrict::on();
    let mut tree = cgtree::Tree::new("caps")
        .unwrap_or_else(|why| panic!("the capability test cannot run on this machine: {why}"));
    let bin = tempfile::tempdir().unwrap();
    // uid 107 must be able to run the helper from here.
    std::fs::set_permissions(
        bin.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let exe = cgtree::helpers(bin.path(), &["qemu-system-x86_64"]).unwrap();
    let uid = format!("cab50000-0000-4000-8000-{:012x}", std::process::id());
    let pod_rel = format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        uid.replace('-', "_")
    );
    let compute_rel = format!("{pod_rel}/cri-containerd-{}.scope", cgtree::container_id(7));
    tree.mkdir(&pod_rel).unwrap();
    let compute = tree.mkdir(&compute_rel).unwrap();
    let guest_mib = 64;
    // qemu as KubeVirt runs it: uid and gid 107, no supplementary groups.
    let setpriv = Path::new("/usr/bin/setpriv");
    let args: Vec<String> = [
        "--reuid=107",
        "--regid=107",
        "--clear-groups",
        exe["qemu-system-x86_64"].to_str().unwrap(),
        "4",
        &guest_mib.to_string(),
        "16",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let qemu = tree.spawn(setpriv, &args, &compute).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{qemu}/status")).unwrap();
    assert!(
        status.lines().any(|l| l.starts_with("Uid:\t107\t")),
        "{status}"
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/probe.sh");
    let arg = format!("{uid}:{}", guest_mib * MIB);
    let probe = |caps: &[&str]| -> String {
        let out = with_caps(
            caps,
            &["sh", script.to_str().unwrap(), &arg],
            &[
                ("VMMEM_CGROUP_ROOT", tree.fake.path()),
                ("VMMEM_PROC_ROOT", Path::new("/proc")),
            ],
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let guest_lines = |out: &str| {
        out.lines()
            .filter(|l| l.starts_with(&format!("g {qemu} ")))
            .count()
    };
    let process_lines = |out: &str| {
        out.lines()
            .filter(|l| l.starts_with(&format!("p {qemu} ")))
            .count()
    };
    let caps = agent_caps();
    let caps: Vec<&str> = caps.iter().map(String::as_str).collect();

    // With the agent's capabilities: the guest RAM mapping, from another user's smaps.
    let full = probe(&caps);
    assert_eq!(guest_lines(&full), 1, "{full}");
    assert_eq!(process_lines(&full), 1, "{full}");
    assert!(full.ends_with("end\n"), "{full}");
    // Without SYS_PTRACE: the process is still seen (status is world-readable), its smaps is not.
    let no_ptrace: Vec<&str> = caps
        .iter()
        .copied()
        .filter(|c| *c != "sys_ptrace")
        .collect();
    let out = probe(&no_ptrace);
    assert_eq!(process_lines(&out), 1, "{out}");
    assert_eq!(guest_lines(&out), 0, "smaps read without SYS_PTRACE: {out}");
    // And with nothing at all, the same: SYS_PTRACE is what smaps takes.
    assert_eq!(guest_lines(&probe(&[])), 0);

    // The kernel log as the agent reads it.
    let log = |caps: &[&str]| with_caps(caps, &KERNEL_LOG_COMMAND, &[]);
    let out = log(&caps);
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "the kernel log with the agent's capabilities: {out:?}"
    );
    let no_syslog: Vec<&str> = caps.iter().copied().filter(|c| *c != "syslog").collect();
    let out = log(&no_syslog);
    assert!(
        !out.status.success(),
        "the kernel log was read without SYSLOG: {out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
    // The agent keeps exactly these two.
    assert_eq!(CAPABILITIES, ["SYS_PTRACE", "SYSLOG"]);
}
