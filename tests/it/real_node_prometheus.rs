//! Issue 20 on the real node (tests/node: kubelet v1.20.2, containerd, cgroup v1): a real
//! Prometheus on the host scrapes the kubelet's `/metrics/cadvisor` on the node's address with the
//! admin's client certificate (the kubelet trusts the apiserver's CA for clients and asks the
//! apiserver whether the admin may), while a launcher-like pod runs. The test checks that the
//! metric names and labels the product's queries rely on exist for its `compute` container, that
//! their figures are the cgroup's own files, and that the contract's query shape finds the pod.
//! What it found is in docs/testing.md ("Prometheus and the real kubelet").

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::node::RealNode;
use crate::common::node_vm::{create_namespaces, create_vm, read_u64, Kernel, TestVm, NS};
use crate::common::prometheus::{result_rows, PrometheusSetup, RealPrometheus};

/// 256Mi of guest, half of it touched, 1 vCPU (the compute limit as in real_node.rs's MEMHOLD).
const SCRAPED: TestVm = TestVm {
    name: "scraped",
    pod_suffix: "q4m7z",
    guest: 256 << 20,
    cores: 1,
    pod_limit: 268_435_456 + 254_279_681,
    touched_percent: 50,
    qemu_heap: 16 << 20,
};

const MIB: f64 = (1 << 20) as f64;

/// The cAdvisor series of the pod, by metric name, with their labels and values.
fn pod_series(prom: &RealPrometheus, pod: &str) -> Vec<Value> {
    let q = format!(
        "{{__name__=~\"container_memory_.*|container_spec_memory_limit_bytes|container_oom_events_total\",pod=\"{pod}\"}}"
    );
    let (status, body) = prom.query(&q, now()).unwrap();
    result_rows(status, &body).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn value(row: &Value) -> f64 {
    row["value"][1].as_str().unwrap().parse().unwrap()
}

fn memory_stat(kernel: &Kernel, key: &str) -> u64 {
    let text = std::fs::read_to_string(kernel.compute.join("memory.stat")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in memory.stat"))
}

#[test]
fn prometheus_scraping_the_real_kubelet_sees_the_compute_containers_memory_as_the_cgroup_says() {
    let node = RealNode::start()
        .unwrap_or_else(|e| panic!("REAL NODE UNAVAILABLE, failing on purpose: {e:#}"));
    create_namespaces(&node);
    let pod_uid = create_vm(&node, &SCRAPED);
    let kernel = Kernel::of(&node, &SCRAPED, &pod_uid);
    let pki = node.ca_file().parent().unwrap().to_path_buf();
    // The kubelet's serving certificate is self-signed (no --tls-cert-file), as on many clusters:
    // kube-prometheus' and rancher-monitoring's kubelet ServiceMonitors skip verifying it too.
    let scrape = format!(
        "- job_name: kubelet\n  scheme: https\n  metrics_path: /metrics/cadvisor\n  scrape_interval: 2s\n  scrape_timeout: 2s\n  tls_config:\n    cert_file: {}\n    key_file: {}\n    insecure_skip_verify: true\n  static_configs:\n    - targets: ['{}:10250']\n",
        pki.join("admin.crt").display(),
        pki.join("admin.key").display(),
        node.node_ip()
    );
    let prom = RealPrometheus::start(&PrometheusSetup {
        scrape: Some(scrape),
        ..PrometheusSetup::default()
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let pod = SCRAPED.pod_name();

    // cAdvisor's housekeeping finds a new container within 10–15 s and samples it every 10–15 s,
    // the scrape is every 2 s: wait until the compute container's usage is the cgroup's (the fake
    // qemu holds still once it touched its share), which also proves the names and labels.
    let deadline = Instant::now() + Duration::from_secs(120);
    let usage_of = |rows: &[Value]| {
        rows.iter()
            .find(|r| {
                r["metric"]["__name__"] == "container_memory_usage_bytes"
                    && r["metric"]["container"] == "compute"
            })
            .map(value)
    };
    let (series, usage) = loop {
        let rows = pod_series(&prom, &pod);
        let usage = read_u64(&kernel.compute.join("memory.usage_in_bytes")) as f64;
        let seen = usage_of(&rows);
        if seen.is_some_and(|v| (v - usage).abs() <= 2.0 * MIB) {
            break (rows, usage);
        }
        if Instant::now() > deadline {
            let (_, up) = prom.query("up", now()).unwrap();
            panic!(
                "Prometheus never had the compute container's usage as the cgroup says ({seen:?} vs {usage}): up = {up}\n{rows:?}\n{}",
                node.kubelet_log_tail(20)
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    for row in &series {
        eprintln!("{} {}", row["metric"], row["value"][1]);
    }
    let compute = |name: &str| {
        series
            .iter()
            .find(|r| r["metric"]["__name__"] == name && r["metric"]["container"] == "compute")
            .unwrap_or_else(|| panic!("no {name} for the compute container"))
    };
    // The labels the product's queries join on.
    let ws = compute("container_memory_working_set_bytes");
    let labels = &ws["metric"];
    assert_eq!(labels["namespace"], NS);
    assert_eq!(labels["pod"], pod.as_str());
    let id = labels["id"].as_str().unwrap();
    assert!(
        id.starts_with(&format!("/kubepods/burstable/pod{pod_uid}/")),
        "{id}"
    );
    assert!(!labels["image"].as_str().unwrap().is_empty(), "{labels}");
    assert!(!labels["name"].as_str().unwrap().is_empty(), "{labels}");

    // The figures: the cgroup's files, read at the same scrape (2 MiB of slack for the kernel's
    // own bookkeeping between cAdvisor's read and ours).
    let near = |name: &str, kernel_value: f64| {
        let v = value(compute(name));
        assert!(
            (v - kernel_value).abs() <= 2.0 * MIB,
            "{name}: Prometheus {v}, cgroup {kernel_value}"
        );
    };
    near("container_memory_usage_bytes", usage);
    // kubelet v1.20.2's cAdvisor has no container_oom_events_total (docs/testing.md)
    let names: std::collections::BTreeSet<&str> = series
        .iter()
        .filter_map(|r| r["metric"]["__name__"].as_str())
        .collect();
    eprintln!("cAdvisor's memory series for the pod: {names:?}");
    near(
        "container_memory_working_set_bytes",
        usage - memory_stat(&kernel, "total_inactive_file") as f64,
    );
    near(
        "container_memory_rss",
        memory_stat(&kernel, "total_rss") as f64,
    );
    near(
        "container_memory_cache",
        memory_stat(&kernel, "total_cache") as f64,
    );
    assert_eq!(
        value(compute("container_spec_memory_limit_bytes")) as u64,
        read_u64(&kernel.compute.join("memory.limit_in_bytes"))
    );
    assert!(
        value(compute("container_memory_max_usage_bytes"))
            >= read_u64(&kernel.compute.join("memory.max_usage_in_bytes")) as f64 - 2.0 * MIB
    );

    // The pod's own cgroup: the same names with container="" (and no image or name).
    let pod_level = series
        .iter()
        .find(|r| {
            r["metric"]["__name__"] == "container_memory_working_set_bytes"
                && r["metric"].get("container").is_none()
                && r["metric"]["id"].as_str().unwrap().ends_with(&pod_uid)
        })
        .unwrap_or_else(|| panic!("no pod-level working set: {series:?}"));
    assert!(pod_level["metric"].get("image").is_none(), "{pod_level}");

    // The contract's shape finds the pod, by namespace and pod.
    let q = "max by (namespace, pod) (max_over_time(container_memory_working_set_bytes{container=\"compute\",namespace=\"vms\"}[1m]))";
    let (status, body) = prom.query(q, now()).unwrap();
    let rows = result_rows(status, &body).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["metric"]["pod"], pod.as_str());
    assert_eq!(rows[0]["metric"].as_object().unwrap().len(), 2);
}
