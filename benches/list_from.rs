//! Benchmark: `kubectl-vmmem list --from DIR -o json` on generated folders of 500, 5,000 and
//! 20,000 VMs (each with its VMI and virt-launcher pod, written as `kubectl get -o yaml` lists).
//! Reports wall time and the child's peak RSS. Run: `cargo bench --bench list_from`.
//! Target (issue 2): 5,000 VMs in under 1 s and under 100 MiB RSS.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn write_folder(dir: &Path, vms: usize) {
    let per_file = 500;
    for chunk in 0..vms.div_ceil(per_file) {
        let mut vm = String::from("apiVersion: v1\nkind: List\nitems:\n");
        let mut vmi = vm.clone();
        let mut pod = vm.clone();
        for i in chunk * per_file..((chunk + 1) * per_file).min(vms) {
            let ns = format!("ns{}", i % 20);
            let gi = [1, 2, 4, 8, 16, 32, 64][i % 7];
            let guest = gi * 1024 - 100;
            let node = format!("node-{}", i % 200);
            let vmi_uid = format!("00000000-0000-4000-8000-{i:012}");
            let pod_uid = format!("11111111-0000-4000-8000-{i:012}");
            write!(vm, "- apiVersion: kubevirt.io/v1\n  kind: VirtualMachine\n  metadata: {{name: vm-{i}, namespace: {ns}, uid: vm-{i}, resourceVersion: \"{i}\", annotations: {{harvesterhci.io/vmRunStrategy: RerunOnFailure}}}}\n  spec:\n    runStrategy: RerunOnFailure\n    template:\n      spec:\n        domain:\n          cpu: {{cores: 2, sockets: 1, threads: 1}}\n          memory: {{guest: {guest}Mi}}\n          resources:\n            limits: {{cpu: \"2\", memory: {gi}Gi}}\n            requests: {{cpu: 125m, memory: {}Mi}}\n          devices:\n            disks: [{{name: disk0, disk: {{bus: virtio}}}}]\n            interfaces: [{{name: default, bridge: {{}}}}]\n        networks: [{{name: default, multus: {{networkName: default/vlan1}}}}]\n        volumes: [{{name: disk0, persistentVolumeClaim: {{claimName: vm-{i}-disk0}}}}]\n  status: {{printableStatus: Running, ready: true}}\n", gi * 1024 * 100 / 150).unwrap();
            write!(vmi, "- apiVersion: kubevirt.io/v1\n  kind: VirtualMachineInstance\n  metadata: {{name: vm-{i}, namespace: {ns}, uid: {vmi_uid}}}\n  spec:\n    domain:\n      cpu: {{cores: 2, sockets: 1, threads: 1}}\n      memory: {{guest: {guest}Mi}}\n      resources:\n        limits: {{cpu: \"2\", memory: {gi}Gi}}\n        requests: {{cpu: 125m, memory: {}Mi}}\n  status:\n    phase: Running\n    nodeName: {node}\n    activePods: {{{pod_uid}: {node}}}\n", gi * 1024 * 100 / 150).unwrap();
            write!(pod, "- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: virt-launcher-vm-{i}-abcde\n    namespace: {ns}\n    uid: {pod_uid}\n    creationTimestamp: \"2024-05-20T15:00:00Z\"\n    labels: {{kubevirt.io: virt-launcher, kubevirt.io/created-by: {vmi_uid}, vm.kubevirt.io/name: vm-{i}}}\n  spec:\n    nodeName: {node}\n    containers:\n    - name: compute\n      image: registry.suse.com/suse/sles/15.5/virt-launcher:1.1.1-150500.8.6.1\n      resources:\n        limits: {{cpu: \"2\", memory: \"{}\"}}\n        requests: {{cpu: 125m, memory: \"1696245761\"}}\n    - name: guest-console-log\n      image: registry.suse.com/suse/sles/15.5/virt-launcher:1.1.1-150500.8.6.1\n      resources:\n        limits: {{memory: 60M}}\n  status:\n    phase: Running\n    containerStatuses:\n    - {{name: compute, containerID: \"containerd://{i:064}\"}}\n", (gi as i64) * (1 << 30) + 264_939_521).unwrap();
        }
        std::fs::write(dir.join(format!("vms-{chunk}.yaml")), vm).unwrap();
        std::fs::write(dir.join(format!("vmis-{chunk}.yaml")), vmi).unwrap();
        std::fs::write(dir.join(format!("pods-{chunk}.yaml")), pod).unwrap();
    }
    std::fs::write(
        dir.join("kubevirt.yaml"),
        "apiVersion: kubevirt.io/v1\nkind: KubeVirt\nmetadata: {name: kubevirt, namespace: harvester-system}\nstatus: {observedKubeVirtVersion: v1.1.1}\n",
    )
    .unwrap();
}

/// Wall time and peak RSS (KiB) of one run, from wait4's rusage.
fn measure(dir: &Path) -> (f64, i64, usize, f64) {
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_kubectl-vmmem"))
        .args(["list", "-o", "json", "--from"])
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run kubectl-vmmem");
    let pid = child.id() as libc::pid_t;
    let out = child.wait_with_output_rusage(pid);
    (start.elapsed().as_secs_f64(), out.1, out.0, out.2)
}

trait WaitRusage {
    fn wait_with_output_rusage(self, pid: libc::pid_t) -> (usize, i64, f64);
}

impl WaitRusage for std::process::Child {
    fn wait_with_output_rusage(mut self, pid: libc::pid_t) -> (usize, i64, f64) {
        use std::io::Read;
        let mut buf = Vec::new();
        self.stdout.take().unwrap().read_to_end(&mut buf).unwrap();
        let mut status = 0;
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        assert_eq!(r, pid, "wait4 failed");
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "list failed"
        );
        let report: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
        (report["vms"].as_array().unwrap().len(), ru.ru_maxrss, cpu)
    }
}

fn main() {
    println!("| VMs (+VMIs, pods) | input size | wall time (best of 3) | CPU time (best of 3) | peak RSS |");
    println!("|---:|---:|---:|---:|---:|");
    for vms in [500usize, 5_000, 20_000] {
        let tmp = tempfile::tempdir().unwrap();
        write_folder(tmp.path(), vms);
        let size: u64 = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        let mut best = f64::MAX;
        let mut best_cpu = f64::MAX;
        let mut rss = 0;
        for _ in 0..3 {
            let (secs, kib, rows, cpu) = measure(tmp.path());
            assert_eq!(rows, vms);
            best = best.min(secs);
            best_cpu = best_cpu.min(cpu);
            rss = rss.max(kib);
        }
        println!(
            "| {vms} | {:.1} MiB | {:.3} s | {:.3} s | {:.1} MiB |",
            size as f64 / 1048576.0,
            best,
            best_cpu,
            rss as f64 / 1024.0
        );
    }
}
