//! What KubeVirt adds to a virt-launcher pod's memory for its VMI, as data: the per-release
//! process budgets and the extra terms with the releases they apply to. Read from KubeVirt's
//! sources (pkg/virt-controller/services/template.go up to v0.55, renderresources.go v0.56 to
//! v1.7, pkg/hypervisor/kvm/hypervisorbackend.go from v1.8) and checked against the overhead
//! KubeVirt's own Go code returns for sample VMIs (`tests/kubevirt_vectors.rs`).
//!
//! The simulator sizes its launcher pods with this table and never with the tool's formula, so
//! a test of the tool against the simulator can catch a formula error.

use serde_json::Value;

use crate::units::{same, Exact, MI};
use crate::version::Version;

const fn v(major: u32, minor: u32, patch: u32) -> Version {
    Version::new(major, minor, patch)
}

/// The guest-console-log sidecar's memory limit (v1.1+, serial console logging on): 60M.
pub const CONSOLE_LOG_SIDECAR_BYTES: i64 = 60_000_000;
/// `virtiofs-<volume>`: 80M each.
pub const VIRTIOFS_BYTES: i64 = 80_000_000;
/// `hook-sidecar-N` with dedicated CPUs or Guaranteed QoS (without: no limit).
pub const HOOK_SIDECAR_PINNED_BYTES: i64 = 64_000_000;

/// What KubeVirt budgets for each process of the compute container, in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// virt-launcher-monitor, virt-launcher, virtlogd, libvirtd/virtqemud, qemu (guest RAM apart);
    /// up to v0.52 one fixed sum stood for all five.
    pub processes: Processes,
    /// The video device (unless `autoattachGraphicsDevice: false`).
    pub video: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processes {
    Together(i64),
    Each {
        monitor: i64,
        launcher: i64,
        virtlogd: i64,
        libvirt: i64,
        qemu: i64,
    },
}

impl Processes {
    fn mebibytes(self) -> i64 {
        match self {
            Processes::Together(sum) => sum,
            Processes::Each {
                monitor,
                launcher,
                virtlogd,
                libvirt,
                qemu,
            } => monitor + launcher + virtlogd + libvirt + qemu,
        }
    }
}

const fn each(monitor: i64, launcher: i64, virtlogd: i64, libvirt: i64, qemu: i64) -> Processes {
    Processes::Each {
        monitor,
        launcher,
        virtlogd,
        libvirt,
        qemu,
    }
}

#[rustfmt::skip]
/// (first release, budgets): a release uses the last row at or below it.
const BUDGETS: [(Version, Budgets); 10] = [
    (v(0, 0, 0), Budgets { processes: Processes::Together(138), video: 16 }),
    (v(0, 53, 0), Budgets { processes: each(25, 75, 16, 33, 30), video: 16 }),
    (v(0, 53, 2), Budgets { processes: each(25, 75, 17, 33, 30), video: 16 }),
    (v(0, 55, 0), Budgets { processes: each(25, 100, 17, 33, 30), video: 16 }),
    (v(0, 57, 0), Budgets { processes: each(25, 100, 18, 35, 30), video: 16 }),
    (v(0, 58, 1), Budgets { processes: each(25, 100, 20, 35, 30), video: 16 }),
    (v(1, 4, 1), Budgets { processes: each(25, 100, 20, 40, 30), video: 16 }),
    (v(1, 5, 0), Budgets { processes: each(25, 100, 25, 40, 30), video: 16 }),
    (v(1, 6, 0), Budgets { processes: each(25, 100, 25, 40, 30), video: 32 }),
    (v(1, 10, 0), Budgets { processes: each(25, 100, 25, 40, 50), video: 32 }),
];

impl Budgets {
    pub fn of(release: Version) -> Budgets {
        BUDGETS
            .iter()
            .rev()
            .find(|(first, _)| *first <= release)
            .map_or(BUDGETS[0].1, |(_, b)| *b)
    }
}

/// When a term is added: before or after `additionalGuestMemoryOverheadRatio` scales the sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Scaled,
    AfterRatio,
}

/// One line of KubeVirt's sum: in which releases, at which stage, how many MiB for a VMI (the
/// comment above each row of [`TERMS`] names it).
struct Term {
    stage: Stage,
    releases: fn(Version) -> bool,
    mebibytes: fn(&Vmi, &Budgets) -> i64,
}

fn always(_: Version) -> bool {
    true
}

#[rustfmt::skip]
const TERMS: &[Term] = &[
    // processes
    Term { stage: Stage::Scaled, releases: always,
           mebibytes: |_, b| b.processes.mebibytes() },
    // vCPUs
    Term { stage: Stage::Scaled, releases: always, mebibytes: |vmi, _| 8 * vmi.vcpus },
    // IOThread
    Term { stage: Stage::Scaled, releases: always, mebibytes: |_, _| 8 },
    // video
    Term { stage: Stage::Scaled, releases: always,
           mebibytes: |vmi, b| if vmi.graphics { b.video } else { 0 } },
    // arm64
    Term { stage: Stage::Scaled, releases: always,
           mebibytes: |vmi, _| if vmi.arm64 { 128 } else { 0 } },
    // host devices
    Term { stage: Stage::Scaled, releases: always,
           mebibytes: |vmi, _| if vmi.host_devices { 1024 } else { 0 } },
    // downward metrics
    Term { stage: Stage::Scaled, releases: always,
           mebibytes: |vmi, _| i64::from(vmi.downward_metrics) },
    // exec probes
    Term { stage: Stage::Scaled, releases: always,
           mebibytes: |vmi, _| if vmi.exec_probes > 0 { 100 + 10 * vmi.exec_probes } else { 0 } },
    // SEV
    Term { stage: Stage::Scaled, releases: always,
           mebibytes: |vmi, _| if vmi.sev { 256 } else { 0 } },
    // TPM
    Term { stage: Stage::Scaled, releases: always,
           mebibytes: |vmi, _| if vmi.tpm { 53 } else { 0 } },
    // passt without ports
    Term { stage: Stage::Scaled,
           releases: |r| (v(0, 59, 0)..v(1, 3, 0)).contains(&r),
           mebibytes: |vmi, _| 800 * vmi.passt_without_ports },
    // guaranteed QoS
    Term { stage: Stage::Scaled,
           releases: |r| r >= v(1, 6, 0) || r == v(1, 5, 3),
           mebibytes: |vmi, _| if vmi.dedicated_or_guaranteed { 100 } else { 0 } },
    // guaranteed QoS
    Term { stage: Stage::AfterRatio,
           releases: |r| (v(1, 1, 0)..=v(1, 5, 2)).contains(&r),
           mebibytes: |vmi, _| if vmi.dedicated_or_guaranteed { 100 } else { 0 } },
    // core passt binding
    Term { stage: Stage::AfterRatio, releases: |r| r >= v(1, 8, 0),
           mebibytes: |vmi, _| if vmi.passt_binding { 250 } else { 0 } },
];

/// The cluster around a VMI.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub release: Option<Version>,
    /// `additionalGuestMemoryOverheadRatio` as the KubeVirt CR holds it.
    pub ratio: Option<String>,
    /// The nodes' architecture (`amd64`, `arm64`).
    pub arch: String,
}

/// A VMI feature the simulator does not model (network binding plugins, the passt binding).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the simulator does not model {0}")]
pub struct Unmodelled(pub &'static str);

/// What the sum needs from a VMI, read from it as stored.
#[derive(Debug, Clone)]
struct Vmi {
    request: Exact,
    vcpus: i64,
    graphics: bool,
    arm64: bool,
    host_devices: bool,
    downward_metrics: bool,
    exec_probes: i64,
    sev: bool,
    tpm: bool,
    passt_without_ports: i64,
    passt_binding: bool,
    dedicated_or_guaranteed: bool,
    added: Exact,
}

/// The memory KubeVirt adds to the launcher pod of `vmi` (its `spec` as stored), in bytes.
pub fn overhead(vmi_spec: &Value, cluster: &Cluster) -> Result<i64, Unmodelled> {
    let release = cluster.release.unwrap_or(BUDGETS[BUDGETS.len() - 1].0);
    let vmi = read_vmi(vmi_spec, release, &cluster.arch)?;
    let budgets = Budgets::of(release);
    let stage_sum = |stage| -> i64 {
        TERMS
            .iter()
            .filter(|t| t.stage == stage && (t.releases)(release))
            .map(|t| (t.mebibytes)(&vmi, &budgets))
            .sum::<i64>()
            * MI
    };
    let kilo = |x: Exact| {
        Exact {
            num: x.num,
            den: x.den * 1000,
        }
        .ceil()
    };
    // Page tables: the request in whole kB, over 512.
    let page_tables = kilo(vmi.request) * 1000 / 512;
    let mut sum = Exact::whole(page_tables + stage_sum(Stage::Scaled));
    if release >= v(1, 8, 0) {
        sum = sum.plus(vmi.added);
    }
    if let Some(r) = ratio(cluster, release) {
        let extra = (kilo(sum) as f64 * (r - 1.0)).trunc() as i64;
        sum = sum.plus(Exact::whole(1000 * extra));
    }
    Ok(sum.plus(Exact::whole(stage_sum(Stage::AfterRatio))).ceil())
}

/// The ratio, where the release reads it (v0.58.2+, not v0.59.0) and it is set.
fn ratio(cluster: &Cluster, release: Version) -> Option<f64> {
    let read = release >= v(0, 58, 2) && release != v(0, 59, 0);
    let text = cluster
        .ratio
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())?;
    read.then(|| text.parse().ok()).flatten()
}

/// The vCPUs KubeVirt counts: cores × sockets × threads (non-zero ones, as a wrapping uint32)
/// when the VMI has a CPU topology, else its CPU limit or request rounded up; at least 1.
pub fn vcpus(spec: &Value) -> i64 {
    let domain = &spec["domain"];
    let n = if domain["cpu"].is_object() {
        let product = ["cores", "sockets", "threads"]
            .iter()
            .map(|k| domain["cpu"][k].as_u64().unwrap_or(0) as u32)
            .filter(|&n| n != 0)
            .fold(None, |acc: Option<u32>, n| {
                Some(acc.map_or(n, |a| a.wrapping_mul(n)))
            });
        i64::from(product.unwrap_or(0))
    } else {
        let cpu = |side: &str| quantity(&domain["resources"][side]["cpu"]);
        cpu("limits")
            .or_else(|| cpu("requests"))
            .map_or(0, Exact::ceil)
    };
    n.max(1)
}

fn quantity(v: &Value) -> Option<Exact> {
    match v {
        Value::String(s) => Exact::parse(s).ok(),
        Value::Number(n) => Exact::parse(&n.to_string()).ok(),
        _ => None,
    }
}

/// A list field; an explicit `null` is an empty list.
fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn read_vmi(spec: &Value, release: Version, cluster_arch: &str) -> Result<Vmi, Unmodelled> {
    let domain = &spec["domain"];
    let devices = &domain["devices"];
    let interfaces = list(&devices["interfaces"]);
    if interfaces.iter().any(|i| !i["binding"].is_null()) {
        return Err(Unmodelled("network binding plugins"));
    }
    if release >= v(1, 3, 0) && interfaces.iter().any(|i| !i["passt"].is_null()) {
        return Err(Unmodelled("the passt binding"));
    }
    let arch = spec["architecture"].as_str().filter(|a| !a.is_empty());
    let arch = if release >= v(1, 2, 0) {
        arch.unwrap_or(cluster_arch)
    } else {
        cluster_arch
    };
    let exec_probe = |p: &str| i64::from(spec[p].is_object() && !spec[p]["exec"].is_null());
    let launch = &domain["launchSecurity"];
    Ok(Vmi {
        request: quantity(&domain["resources"]["requests"]["memory"]).unwrap_or(Exact::ZERO),
        vcpus: vcpus(spec),
        graphics: devices["autoattachGraphicsDevice"].as_bool() != Some(false),
        arm64: arch == "arm64",
        host_devices: !list(&devices["hostDevices"]).is_empty()
            || !list(&devices["gpus"]).is_empty()
            || interfaces.iter().any(|i| !i["sriov"].is_null()),
        downward_metrics: list(&spec["volumes"])
            .iter()
            .any(|v| !v["downwardMetrics"].is_null()),
        exec_probes: exec_probe("livenessProbe") + exec_probe("readinessProbe"),
        sev: !launch["sev"].is_null() || (release >= v(1, 7, 0) && !launch["snp"].is_null()),
        tpm: tpm_counts(&devices["tpm"], release),
        passt_without_ports: interfaces
            .iter()
            .filter(|i| !i["passt"].is_null() && list(&i["ports"]).is_empty())
            .count() as i64,
        passt_binding: interfaces.iter().any(|i| !i["passtBinding"].is_null()),
        dedicated_or_guaranteed: release >= v(1, 1, 0)
            && (domain["cpu"]["dedicatedCpuPlacement"].as_bool() == Some(true)
                || guaranteed(domain, release)),
        added: quantity(&domain["memory"]["reservedOverhead"]["addedOverhead"])
            .unwrap_or(Exact::ZERO),
    })
}

/// A TPM device adds swtpm; `enabled: false` removes it from v1.6 (and in the v1.4.1+ and
/// v1.5.1+ backports).
fn tpm_counts(tpm: &Value, release: Version) -> bool {
    if tpm.is_null() {
        return false;
    }
    let honours_disabled = release >= v(1, 4, 1) && release != v(1, 5, 0);
    !(honours_disabled && tpm["enabled"].as_bool() == Some(false))
}

/// Guaranteed QoS as KubeVirt judges it: CPU and memory requests equal to (exactly, non-zero)
/// their limits. From v1.7 (backported to v1.6.4) a memory limit with no (or a zero) request
/// counts too.
fn guaranteed(domain: &Value, release: Version) -> bool {
    let res = &domain["resources"];
    let get = |side: &str, what: &str| quantity(&res[side][what]).filter(|q| !q.is_zero());
    let equal = |what| match (get("requests", what), get("limits", what)) {
        (Some(r), Some(l)) => same(r, l),
        _ => false,
    };
    let limit_alone = release >= v(1, 6, 4)
        && get("requests", "memory").is_none()
        && get("limits", "memory").is_some();
    equal("cpu") && (equal("memory") || limit_alone)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(request: &str, cores: u64) -> Value {
        json!({"domain": {"cpu": {"cores": cores, "sockets": 1, "threads": 1},
                          "resources": {"requests": {"memory": request}}}})
    }

    fn at(release: Version) -> Cluster {
        Cluster {
            release: Some(release),
            ratio: None,
            arch: "amd64".into(),
        }
    }

    /// KubeVirt's published reference values (no devices, video on, no ratio).
    #[test]
    fn reference_values() {
        let cases = [
            (
                v(0, 54, 0),
                [224_395_264, 239_075_329, 281_018_369, 482_344_960],
            ),
            (
                v(1, 5, 0),
                [266_338_304, 281_018_369, 322_961_409, 524_288_000],
            ),
            (
                v(1, 6, 0),
                [283_115_520, 297_795_585, 339_738_625, 541_065_216],
            ),
            (
                v(1, 10, 0),
                [304_087_040, 318_767_105, 360_710_145, 562_036_736],
            ),
        ];
        let shapes = [("1Gi", 1), ("4Gi", 2), ("16Gi", 4), ("64Gi", 16)];
        for (release, expected) in cases {
            for ((request, cores), want) in shapes.iter().zip(expected) {
                let got = overhead(&spec(request, *cores), &at(release)).unwrap();
                assert_eq!(got, want, "{release} {request}/{cores}");
            }
        }
    }

    #[test]
    fn the_ratio_scales_the_sum_and_guaranteed_qos_sits_where_the_release_puts_it() {
        // v1.3, 2Gi limit, 136Mi request, 1 vCPU: O = 254,033,921; v1.1.1 with 1365Mi and 2
        // vCPUs: 264,939,521; with the ratio at 2 the first sum is counted twice (in kB).
        let s = json!({"domain": {"cpu": {"cores": 1}, "resources": {
            "requests": {"memory": "136Mi"}, "limits": {"memory": "2Gi"}}}});
        assert_eq!(overhead(&s, &at(v(1, 3, 0))).unwrap(), 254_033_921);
        assert_eq!(
            overhead(&spec("1365Mi", 2), &at(v(1, 1, 1))).unwrap(),
            264_939_521
        );
        let doubled = Cluster {
            ratio: Some("2".into()),
            ..at(v(1, 3, 0))
        };
        assert_eq!(overhead(&s, &doubled).unwrap(), 254_033_921 + 254_034_000);
        let g = json!({"domain": {"cpu": {"cores": 1}, "resources": {
            "requests": {"memory": "1Gi", "cpu": "1"}, "limits": {"memory": "1Gi", "cpu": "1000m"}}}});
        let plain = overhead(&g, &at(v(1, 0, 0))).unwrap();
        assert_eq!(overhead(&g, &at(v(1, 3, 0))).unwrap() - plain, 100 * MI);
    }

    #[test]
    fn features_the_simulator_does_not_model_are_named() {
        let s = json!({"domain": {"devices": {"interfaces": [{"name": "n", "binding": {"name": "x"}}]}}});
        assert_eq!(
            overhead(&s, &at(v(1, 3, 0))).unwrap_err().to_string(),
            "the simulator does not model network binding plugins"
        );
    }

    #[test]
    fn vcpus_wrap_like_kubevirt() {
        assert_eq!(
            vcpus(&json!({"domain": {"cpu": {"cores": 65536, "sockets": 65536}}})),
            1
        );
        assert_eq!(
            vcpus(&json!({"domain": {"resources": {"limits": {"cpu": "1500m"}}}})),
            2
        );
        assert_eq!(
            vcpus(&json!({"domain": {"cpu": {"cores": 2, "threads": 0}}})),
            2
        );
    }
}
