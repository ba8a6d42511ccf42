use super::*;
use crate::model::objects::{
    CpuSpec, DomainSpec, Interface, LaunchSecurity, MemorySpec, Probe, ReservedOverhead, Tpm,
    Volume,
};
use crate::units::Quantity;

fn q(s: &str) -> Option<Quantity> {
    Some(Quantity::new(s))
}

/// A VMI with the given request, limit and vCPUs (as `cpu.cores`).
fn vmi(request: &str, limit: Option<&str>, cores: u32) -> VmiSpec {
    let mut spec = VmiSpec {
        domain: DomainSpec {
            cpu: Some(CpuSpec {
                cores: Some(cores),
                sockets: Some(1),
                threads: Some(1),
                dedicated_cpu_placement: None,
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    spec.domain.resources.requests.memory = q(request);
    spec.domain.resources.limits.memory = limit.and_then(q);
    spec
}

fn o(spec: &VmiSpec, v: &str) -> i64 {
    overhead(spec, Version::parse(v).unwrap(), &ClusterInputs::default()).total
}

#[test]
fn seed_example_1_kubevirt_v054_16gi() {
    let spec = vmi("10922Mi", Some("16Gi"), 2);
    assert_eq!(o(&spec, "v0.54.0"), 253_054_977);
    assert_eq!(16 * GI + o(&spec, "v0.54.0"), 17_432_924_161);
    // The kernel shows the limit rounded down to a page: 17,024,340 kB.
    assert_eq!(
        (16 * GI + o(&spec, "v0.54.0")) / 4096 * 4096 / 1024,
        17_024_340
    );
}

#[test]
fn seed_memory_overhead_v111_2gi() {
    let mut spec = vmi("1365Mi", Some("2Gi"), 2);
    spec.domain.memory = Some(MemorySpec {
        guest: q("1948Mi"),
        ..Default::default()
    });
    let total = o(&spec, "v1.1.1");
    assert_eq!(total, 264_939_521);
    let compute = 2 * GI + total;
    assert_eq!(compute, 2_412_423_169);
    assert_eq!(compute / 4096 * 4096, 2_412_421_120);
    let pod = compute + CONSOLE_LOG_SIDECAR_BYTES;
    assert_eq!(pod, 2_472_423_169);
    assert_eq!(pod / 4096 * 4096, 2_472_419_328);
}

#[test]
fn public_check_v13_2gi_136mi() {
    let spec = vmi("136Mi", Some("2Gi"), 1);
    assert_eq!(o(&spec, "v1.3.0"), 254_033_921);
    assert_eq!(2 * GI + o(&spec, "v1.3.0"), 2_401_517_569);
}

#[test]
fn reference_table_all_sixteen_cells() {
    let rows: [(&str, [i64; 4]); 4] = [
        (
            "v0.54.0",
            [224_395_264, 239_075_329, 281_018_369, 482_344_960],
        ),
        (
            "v1.5.0",
            [266_338_304, 281_018_369, 322_961_409, 524_288_000],
        ),
        (
            "v1.6.0",
            [283_115_520, 297_795_585, 339_738_625, 541_065_216],
        ),
        (
            "v1.10.0",
            [304_087_040, 318_767_105, 360_710_145, 562_036_736],
        ),
    ];
    let sizes = [("1Gi", 1), ("4Gi", 2), ("16Gi", 4), ("64Gi", 16)];
    for (version, cells) in rows {
        for ((size, cpus), want) in sizes.iter().zip(cells) {
            let spec = vmi(size, None, *cpus);
            assert_eq!(o(&spec, version), want, "{version} {size}/{cpus}");
        }
    }
    // Every version inside a row gives the row's values.
    for v in ["v1.6.0", "v1.7.2", "v1.8.0", "v1.9.9"] {
        assert_eq!(o(&vmi("1Gi", None, 1), v), 283_115_520, "{v}");
    }
    assert_eq!(o(&vmi("1Gi", None, 1), "v1.5.4"), 266_338_304);
}

#[test]
fn every_version_row_has_its_constants() {
    let c = |v: &str| ProcessConstants::for_version(Version::parse(v).unwrap());
    assert_eq!(c("v0.52.0").processes_bytes(), 138 * MI);
    assert_eq!(
        c("v0.53.1").processes_bytes(),
        (25 + 75 + 16 + 33 + 30) * MI
    );
    assert_eq!(
        c("v0.53.2").processes_bytes(),
        (25 + 75 + 17 + 33 + 30) * MI
    );
    assert_eq!(
        c("v0.54.9").processes_bytes(),
        (25 + 75 + 17 + 33 + 30) * MI
    );
    assert_eq!(
        c("v0.56.1").processes_bytes(),
        (25 + 100 + 17 + 33 + 30) * MI
    );
    assert_eq!(
        c("v0.58.0").processes_bytes(),
        (25 + 100 + 18 + 35 + 30) * MI
    );
    assert_eq!(
        c("v0.58.1").processes_bytes(),
        (25 + 100 + 20 + 35 + 30) * MI
    );
    assert_eq!(
        c("v1.4.0").processes_bytes(),
        (25 + 100 + 20 + 35 + 30) * MI
    );
    assert_eq!(
        c("v1.4.1").processes_bytes(),
        (25 + 100 + 20 + 40 + 30) * MI
    );
    assert_eq!(
        c("v1.5.2").processes_bytes(),
        (25 + 100 + 25 + 40 + 30) * MI
    );
    assert_eq!(c("v1.9.0").video, 32);
    assert_eq!(c("v1.5.0").video, 16);
    assert_eq!(c("v1.10.0").qemu, 50);
    assert_eq!(c("v1.4.1").budget_for_comm("virtqemud"), Some(40 * MI));
    assert_eq!(
        c("v1.4.1").budget_for_comm("qemu-system-x86"),
        Some(30 * MI)
    );
    assert_eq!(
        c("v1.4.1").budget_for_comm("virt-launcher-m"),
        Some(25 * MI)
    );
    assert_eq!(c("v1.4.1").budget_for_comm("sh"), None);
    // Up to v0.52 there is one fixed term and video 16.
    assert_eq!(
        o(&vmi("1Gi", None, 1), "v0.52.0"),
        2_097_152 + (138 + 8 + 8 + 16) * MI
    );
}

#[test]
fn zero_request_from_v17_has_no_page_table_term() {
    let spec = vmi("0", Some("4Gi"), 1);
    let mut no_req = spec.clone();
    no_req.domain.resources.requests.memory = None;
    // 25+100+25+40+30 + 8 + 8 + 32 = 268Mi, nothing for page tables.
    assert_eq!(o(&no_req, "v1.7.0"), 268 * MI);
}

#[test]
fn optional_terms() {
    let base = vmi("1Gi", None, 1);
    let b = o(&base, "v1.6.0");
    let mut s = base.clone();
    s.domain.devices.autoattach_graphics_device = Some(false);
    assert_eq!(o(&s, "v1.6.0"), b - 32 * MI);
    let mut s = base.clone();
    s.architecture = Some("arm64".into());
    assert_eq!(o(&s, "v1.6.0"), b + 128 * MI);
    // Before v1.2 the VMI's own architecture is not read; the cluster's is.
    assert_eq!(o(&s, "v1.1.0"), o(&base, "v1.1.0"));
    let arm = ClusterInputs {
        cluster_arch: Some("arm64".into()),
        ..Default::default()
    };
    assert_eq!(
        overhead(&base, Version::new(1, 1, 0), &arm).total,
        o(&base, "v1.1.0") + 128 * MI
    );
    let mut s = base.clone();
    s.domain.devices.host_devices = vec![serde_json::json!({"name": "gpu0"})];
    assert_eq!(o(&s, "v1.6.0"), b + GI);
    let mut s = base.clone();
    s.domain.devices.interfaces = vec![Interface {
        name: "sriov".into(),
        sriov: Some(serde_json::json!({})),
        ..Default::default()
    }];
    assert_eq!(o(&s, "v1.6.0"), b + GI);
    let mut s = base.clone();
    s.volumes = vec![Volume {
        name: "m".into(),
        downward_metrics: Some(serde_json::json!({})),
    }];
    assert_eq!(o(&s, "v1.6.0"), b + MI);
    let exec = Probe {
        exec: Some(serde_json::json!({"command": ["true"]})),
        ..Default::default()
    };
    let mut s = base.clone();
    s.liveness_probe = Some(Box::new(exec.clone()));
    assert_eq!(o(&s, "v1.6.0"), b + 110 * MI);
    s.readiness_probe = Some(Box::new(exec));
    assert_eq!(o(&s, "v1.6.0"), b + 120 * MI);
    let mut s = base.clone();
    s.readiness_probe = Some(Box::new(Probe {
        http_get: Some(serde_json::json!({})),
        ..Default::default()
    }));
    assert_eq!(o(&s, "v1.6.0"), b);
    let mut s = base.clone();
    s.domain.launch_security = Some(Box::new(LaunchSecurity {
        sev: Some(serde_json::json!({})),
        snp: None,
    }));
    assert_eq!(o(&s, "v1.6.0"), b + 256 * MI);
    s.domain.launch_security = Some(Box::new(LaunchSecurity {
        sev: None,
        snp: Some(serde_json::json!({})),
    }));
    assert_eq!(o(&s, "v1.6.0"), b);
    assert_eq!(o(&s, "v1.7.0"), o(&base, "v1.7.0") + 256 * MI);
    let mut s = base.clone();
    s.domain.devices.tpm = Some(Tpm::default());
    assert_eq!(o(&s, "v1.6.0"), b + 53 * MI);
    s.domain.devices.tpm = Some(Tpm {
        enabled: Some(false),
        persistent: None,
    });
    assert_eq!(o(&s, "v1.6.0"), b);
    assert_eq!(o(&s, "v1.5.0"), o(&base, "v1.5.0") + 53 * MI);
}

#[test]
fn passt_terms_by_version() {
    let mut s = vmi("1Gi", None, 1);
    s.domain.devices.interfaces = vec![Interface {
        name: "p".into(),
        passt: Some(serde_json::json!({})),
        ..Default::default()
    }];
    let base = vmi("1Gi", None, 1);
    assert_eq!(o(&s, "v0.59.1"), o(&base, "v0.59.1") + 800 * MI);
    assert_eq!(o(&s, "v1.2.9"), o(&base, "v1.2.9") + 800 * MI);
    assert_eq!(o(&s, "v1.3.0"), o(&base, "v1.3.0"));
    assert_eq!(o(&s, "v0.58.4"), o(&base, "v0.58.4"));
    s.domain.devices.interfaces[0].ports = vec![serde_json::json!({"port": 80})];
    assert_eq!(o(&s, "v1.2.0"), o(&base, "v1.2.0"));
    let mut s = base.clone();
    s.domain.devices.interfaces = vec![Interface {
        name: "p".into(),
        passt_binding: Some(serde_json::json!({})),
        ..Default::default()
    }];
    assert_eq!(o(&s, "v1.8.0"), o(&base, "v1.8.0") + 250 * MI);
    assert_eq!(o(&s, "v1.7.0"), o(&base, "v1.7.0"));
}

#[test]
fn ratio_step_and_g_terms_before_or_after_it() {
    let ratio = ClusterInputs {
        ratio: Some("1.5".into()),
        ..Default::default()
    };
    // v1.3, 2Gi limit, 136Mi request, 1 vCPU: O = 254,033,921 without ratio.
    let spec = vmi("136Mi", Some("2Gi"), 1);
    let with = overhead(&spec, Version::new(1, 3, 0), &ratio);
    assert_eq!(
        with.total,
        254_033_921 + 1000 * ((254_034f64 * 0.5).trunc() as i64)
    );
    assert_eq!(with.total, 381_050_921);
    assert_eq!(with.ratio.as_deref(), Some("1.5"));
    // Not supported in v0.54 nor v0.59.0; supported in v0.58.2 and v0.59.1.
    for (v, supported) in [
        ("v0.54.0", false),
        ("v0.59.0", false),
        ("v0.58.2", true),
        ("v0.59.1", true),
        ("v1.0.0", true),
    ] {
        let got = overhead(&spec, Version::parse(v).unwrap(), &ratio);
        assert_eq!(got.ratio.is_some(), supported, "{v}");
        assert_eq!(got.notes.is_empty(), supported, "{v}");
    }
    // An invalid ratio is ignored with a note.
    let bad = ClusterInputs {
        ratio: Some("0.5".into()),
        ..Default::default()
    };
    let got = overhead(&spec, Version::new(1, 3, 0), &bad);
    assert_eq!(got.total, 254_033_921);
    assert_eq!(got.notes.len(), 1);
    // "" means none.
    let empty = ClusterInputs {
        ratio: Some(String::new()),
        ..Default::default()
    };
    assert_eq!(
        overhead(&spec, Version::new(1, 3, 0), &empty).total,
        254_033_921
    );

    // G: dedicated CPU. v1.1–v1.5.2 add 100Mi after the ratio; v1.5.3+ before it.
    let mut ded = vmi("1Gi", Some("1Gi"), 1);
    ded.domain.cpu.as_mut().unwrap().dedicated_cpu_placement = Some(true);
    let plain = vmi("1Gi", Some("1Gi"), 1);
    let two = ClusterInputs {
        ratio: Some("2".into()),
        ..Default::default()
    };
    let v = Version::new(1, 4, 0);
    assert_eq!(
        overhead(&ded, v, &two).total,
        overhead(&plain, v, &two).total + 100 * MI
    );
    let v = Version::new(1, 5, 3);
    let p = overhead(&plain, v, &ClusterInputs::default()).total;
    let before_ratio = p + 100 * MI;
    assert_eq!(
        overhead(&ded, v, &two).total,
        before_ratio + 1000 * ((before_ratio + 999) / 1000)
    );
    // Before v1.1 no G term.
    assert_eq!(o(&ded, "v1.0.0"), o(&plain, "v1.0.0"));
}

#[test]
fn guaranteed_qos_counts_as_g() {
    let mut s = vmi("2Gi", Some("2Gi"), 1);
    s.domain.resources.requests.cpu = q("1");
    s.domain.resources.limits.cpu = q("1");
    let mut burst = s.clone();
    burst.domain.resources.requests.cpu = q("500m");
    assert_eq!(o(&s, "v1.6.0"), o(&burst, "v1.6.0") + 100 * MI);
    // v1.7: a missing memory request with a limit still counts as guaranteed.
    let mut no_req = s.clone();
    no_req.domain.resources.requests.memory = None;
    let mut no_req_burst = no_req.clone();
    no_req_burst.domain.resources.requests.cpu = q("500m");
    assert_eq!(o(&no_req, "v1.7.0"), o(&no_req_burst, "v1.7.0") + 100 * MI);
    assert_eq!(o(&no_req, "v1.6.0"), o(&no_req_burst, "v1.6.0"));
}

#[test]
fn added_overhead_and_binding_plugins() {
    let mut s = vmi("1Gi", None, 1);
    s.domain.memory = Some(MemorySpec {
        reserved_overhead: Some(ReservedOverhead {
            added_overhead: q("512Mi"),
        }),
        ..Default::default()
    });
    let base = vmi("1Gi", None, 1);
    assert_eq!(o(&s, "v1.8.0"), o(&base, "v1.8.0") + 512 * MI);
    assert_eq!(o(&s, "v1.7.0"), o(&base, "v1.7.0"));

    let mut cfg = ClusterInputs::default();
    cfg.config.network = Some(
        serde_json::from_value(serde_json::json!({
            "binding": {"passt": {"computeResourceOverhead": {"requests": {"memory": "500Mi"}}}}
        }))
        .unwrap(),
    );
    let mut s = vmi("1Gi", None, 1);
    s.domain.devices.interfaces = vec![
        Interface {
            name: "a".into(),
            binding: Some(crate::model::objects::Binding {
                name: "passt".into(),
            }),
            ..Default::default()
        },
        Interface {
            name: "b".into(),
            binding: Some(crate::model::objects::Binding {
                name: "passt".into(),
            }),
            ..Default::default()
        },
    ];
    let v = Version::new(1, 3, 0);
    assert_eq!(overhead(&s, v, &cfg).total, o(&base, "v1.3.0") + 500 * MI);
    assert_eq!(
        overhead(&s, Version::new(1, 2, 0), &cfg).total,
        o(&base, "v1.2.0")
    );
}

#[test]
fn vcpus_from_topology_or_resources() {
    let mut s = VmiSpec::default();
    assert_eq!(vcpus(&s), 1);
    s.domain.resources.limits.cpu = q("2500m");
    assert_eq!(vcpus(&s), 3);
    s.domain.resources.limits.cpu = None;
    s.domain.resources.requests.cpu = q("125m");
    assert_eq!(vcpus(&s), 1);
    s.domain.cpu = Some(CpuSpec {
        cores: Some(2),
        sockets: Some(2),
        threads: Some(0),
        dedicated_cpu_placement: None,
    });
    assert_eq!(vcpus(&s), 4);
    s.domain.cpu = Some(CpuSpec::default());
    assert_eq!(vcpus(&s), 1);
}

fn cpu(cores: u32, sockets: u32, threads: u32) -> Option<CpuSpec> {
    Some(CpuSpec {
        cores: Some(cores),
        sockets: Some(sockets),
        threads: Some(threads),
        dedicated_cpu_placement: None,
    })
}

/// KubeVirt multiplies cores × sockets × threads in a `uint32` (hardware.GetNumberOfVCPUs):
/// the tool gives KubeVirt's number, never overflows, and says when the count is absurd.
#[test]
fn vcpu_product_wraps_like_kubevirt_and_never_overflows() {
    let base = o(&vmi("1Gi", None, 1), "v1.6.0");
    let mut s = vmi("1Gi", None, 1);
    // 65536 × 65536 × 3 = 3 × 2^32 wraps to 0: KubeVirt counts 1 vCPU.
    s.domain.cpu = cpu(65536, 65536, 3);
    assert_eq!(vcpu_count(&s).kubevirt, 1);
    assert_eq!(vcpu_count(&s).asked, 3 << 32);
    let got = overhead(&s, Version::new(1, 6, 0), &ClusterInputs::default());
    assert_eq!(got.total, base);
    assert!(
        got.notes.iter().any(|n| n.contains("wraps to 1")),
        "{got:?}"
    );
    // The largest product: (2^32 − 1)^3 wraps to 2^32 − 1, KubeVirt's 32 PiB of vCPU threads.
    s.domain.cpu = cpu(u32::MAX, u32::MAX, u32::MAX);
    let got = overhead(&s, Version::new(1, 6, 0), &ClusterInputs::default());
    assert_eq!(vcpu_count(&s).kubevirt, i64::from(u32::MAX));
    assert_eq!(got.total, base - 8 * MI + 8 * MI * i64::from(u32::MAX));
    assert_eq!(got.notes.len(), 1);
    // Past KVM's limit but not wrapped: KubeVirt's number, with a note.
    s.domain.cpu = cpu(64, 64, 2);
    let got = overhead(&s, Version::new(1, 6, 0), &ClusterInputs::default());
    assert_eq!(got.total, base - 8 * MI + 8 * MI * 8192);
    assert!(got.notes[0].contains("more than KVM runs"), "{got:?}");
    // A real VM has no note.
    s.domain.cpu = cpu(16, 2, 2);
    assert!(
        overhead(&s, Version::new(1, 6, 0), &ClusterInputs::default())
            .notes
            .is_empty()
    );
    // A CPU quantity near i64::MAX millicores does not overflow either.
    let mut s = vmi("1Gi", None, 1);
    s.domain.cpu = None;
    s.domain.resources.limits.cpu = q("9223372036854775807m");
    assert_eq!(vcpus(&s), 9_223_372_036_854_776);
}

/// A ratio that would make O larger than any memory is ignored with a note, not wrapped.
#[test]
fn absurd_ratio_is_ignored_with_a_note() {
    let spec = vmi("1Gi", None, 1);
    let huge = ClusterInputs {
        ratio: Some("1e300".into()),
        ..Default::default()
    };
    let got = overhead(&spec, Version::new(1, 6, 0), &huge);
    assert_eq!(got.total, o(&spec, "v1.6.0"));
    assert!(got.ratio.is_none());
    assert!(
        got.notes[0].contains("larger than any memory size"),
        "{got:?}"
    );
}

/// Guaranteed QoS compares requests and limits exactly (`Quantity.Cmp`), an explicit "0"
/// memory request is absent (`IsZero`), and the no-request rule exists from v1.6.4.
#[test]
fn guaranteed_qos_is_exact_and_backported() {
    let g = |req: Option<&str>, lim: &str, v: &str| {
        let mut s = vmi("1Gi", Some(lim), 1);
        s.domain.resources.requests.memory = req.and_then(q);
        s.domain.resources.requests.cpu = q("2");
        s.domain.resources.limits.cpu = q("2000m");
        let mut burst = s.clone();
        burst.domain.resources.requests.cpu = q("1");
        o(&s, v) - o(&burst, v)
    };
    assert_eq!(g(Some("1Gi"), "1073741824", "v1.6.0"), 100 * MI);
    // Both round up to 1 GiB in whole bytes, but they differ by half a byte.
    assert_eq!(g(Some("1073741823.5"), "1073741824", "v1.6.0"), 0);
    for (req, v, extra) in [
        (None, "v1.6.3", 0),
        (None, "v1.6.4", 100 * MI),
        (Some("0"), "v1.6.4", 100 * MI),
        (Some("0"), "v1.6.3", 0),
        (Some("0"), "v1.7.0", 100 * MI),
    ] {
        assert_eq!(g(req, "1Gi", v), extra, "{req:?} {v}");
    }
}

/// `tpm.enabled: false` removes the TPM term from v1.6.0 and in the v1.4.1+ and v1.5.1+
/// backports, not in v1.4.0 or v1.5.0.
#[test]
fn tpm_disabled_by_version() {
    let base = vmi("1Gi", None, 1);
    let mut s = base.clone();
    s.domain.devices.tpm = Some(Tpm {
        enabled: Some(false),
        persistent: None,
    });
    for (v, term) in [
        ("v1.4.0", 53 * MI),
        ("v1.4.1", 0),
        ("v1.4.5", 0),
        ("v1.5.0", 53 * MI),
        ("v1.5.1", 0),
        ("v1.5.3", 0),
        ("v1.6.0", 0),
    ] {
        assert_eq!(o(&s, v) - o(&base, v), term, "{v}");
    }
}

/// An explicit empty `spec.architecture` is no architecture: the cluster's counts.
#[test]
fn empty_architecture_falls_back_to_the_cluster() {
    let base = vmi("1Gi", None, 1);
    let mut s = base.clone();
    s.architecture = Some(String::new());
    let arm = ClusterInputs {
        cluster_arch: Some("arm64".into()),
        ..Default::default()
    };
    let v = Version::new(1, 6, 0);
    assert_eq!(
        overhead(&s, v, &arm).total,
        overhead(&base, v, &ClusterInputs::default()).total + 128 * MI
    );
}

/// Binding-plugin overheads and addedOverhead are quantities added exactly, rounded once.
#[test]
fn fractional_terms_are_summed_exactly_and_rounded_once() {
    let mut cfg = ClusterInputs::default();
    cfg.config.network = Some(
        serde_json::from_value(serde_json::json!({
            "binding": {"half": {"computeResourceOverhead": {"requests": {"memory": "0.5"}}}}
        }))
        .unwrap(),
    );
    let mut s = vmi("1Gi", None, 1);
    s.domain.memory = Some(MemorySpec {
        reserved_overhead: Some(ReservedOverhead {
            added_overhead: q("1731199801.5"),
        }),
        ..Default::default()
    });
    s.domain.devices.interfaces = vec![Interface {
        name: "a".into(),
        binding: Some(crate::model::objects::Binding {
            name: "half".into(),
        }),
        ..Default::default()
    }];
    let v = Version::new(1, 8, 0);
    let base = o(&vmi("1Gi", None, 1), "v1.8.0");
    let got = overhead(&s, v, &cfg);
    // 1,731,199,801.5 + 0.5 = 1,731,199,802 exactly (each alone would round up: one byte more).
    assert_eq!(got.total, base + 1_731_199_802);
    // The ratio sees the exact sum: ceil(O / 1000) of the fractional O.
    let with_ratio = ClusterInputs {
        ratio: Some("2".into()),
        ..cfg.clone()
    };
    s.domain.devices.interfaces.clear();
    let o_exact = base as f64 + 1_731_199_801.5;
    let kilos = (o_exact / 1000.0).ceil() as i64;
    assert_eq!(
        overhead(&s, v, &with_ratio).total,
        base + 1_731_199_802 + 1000 * kilos
    );
}
