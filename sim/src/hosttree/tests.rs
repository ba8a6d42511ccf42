use super::*;
use crate::scenario::Scenario;
use crate::tick::write_host_tree;
use crate::world::World;
use std::fs;

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn node_tree_has_kernel_formats_for_every_launcher() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new(&Scenario::demo().unwrap(), dir.path().to_path_buf()).unwrap();
    let root = write_host_tree(&mut w, "harvester-node-1").unwrap();
    let here: Vec<&Launcher> = w
        .launchers
        .values()
        .filter(|l| l.node == "harvester-node-1")
        .collect();
    assert!(here.len() >= 4);
    let mem = cgroup_root(&root).join("memory");
    for l in &here {
        let slice =
            mem.join(pod_slice(CgroupDriver::Systemd, l.qos, &l.pod_uid).trim_start_matches('/'));
        let compute = slice.join(scope(CgroupDriver::Systemd, &l.container_ids[1]));
        let limit: i64 = read(&compute.join("memory.limit_in_bytes"))
            .trim()
            .parse()
            .unwrap();
        assert_eq!(Some(limit), l.compute_limit);
        assert_eq!(limit % 4096, 0);
        let stat = read(&slice.join("memory.stat"));
        for key in [
            "total_rss ",
            "total_cache ",
            "total_inactive_file ",
            "hierarchical_memory_limit ",
        ] {
            assert!(stat.lines().any(|x| x.starts_with(key)), "{key} in {stat}");
        }
        let usage: i64 = read(&slice.join("memory.usage_in_bytes"))
            .trim()
            .parse()
            .unwrap();
        let rss: i64 = stat
            .lines()
            .find_map(|x| x.strip_prefix("total_rss "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(rss < usage && usage < limit + 60_000_000);
        assert_eq!(
            read(&compute.join("memory.oom_control")),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
        );
        let procs: Vec<u32> = read(&compute.join("cgroup.procs"))
            .lines()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(procs.len(), 5);
        let qemu = proc_root(&root).join(procs[4].to_string());
        assert_eq!(read(&qemu.join("comm")), "qemu-system-x86\n");
        let status = read(&qemu.join("status"));
        assert!(status.starts_with("Name:\tqemu-system-x86\n"));
        assert!(status
            .lines()
            .any(|x| x.starts_with("VmRSS:") && x.ends_with(" kB")));
        let smaps = read(&qemu.join("smaps"));
        let guest_kb = format!("Size:           {:>8} kB", l.shape.guest / 1024);
        assert!(
            smaps.contains(&guest_kb),
            "guest mapping {guest_kb} in\n{smaps}"
        );
        assert!(read(&qemu.join("cgroup")).contains(&format!(
            "memory:{}/{}",
            pod_slice(CgroupDriver::Systemd, l.qos, &l.pod_uid),
            scope(CgroupDriver::Systemd, &l.container_ids[1])
        )));
    }
    // Rewriting after a pod is gone prunes it.
    let (gone, qos) = (here[0].pod_uid.clone(), here[0].qos);
    let slice = mem.join(pod_slice(CgroupDriver::Systemd, qos, &gone).trim_start_matches('/'));
    w.launchers.remove(&gone);
    write_host_tree(&mut w, "harvester-node-1").unwrap();
    assert!(!slice.exists());
    assert!(root.join("var/log/kern.log").exists());
}

fn launcher_of<'a>(w: &'a World, vm: &str) -> &'a Launcher {
    w.launchers
        .values()
        .find(|l| l.vm_name == vm)
        .unwrap_or_else(|| panic!("no launcher for {vm}"))
}

fn number(p: &Path) -> i64 {
    read(p).trim().parse().unwrap()
}

fn stat_of(dir: &Path, key: &str) -> i64 {
    read(&dir.join("memory.stat"))
        .lines()
        .find_map(|x| x.strip_prefix(key))
        .unwrap_or_else(|| panic!("{key}"))
        .trim()
        .parse()
        .unwrap()
}

/// The demo's `lab` VMs as the host shows them: hugepage-backed guest RAM charged to hugetlb
/// (not the memory cgroup, not RSS), virtiofs guest RAM as shmem on a memfd with an 80M
/// container in the pod-level limit, a hook sidecar without a limit leaving the pod without
/// one, dedicated CPUs limiting the pod to its request.
#[test]
fn lab_vms_charge_guest_ram_where_the_kernel_would() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new(&Scenario::demo().unwrap(), dir.path().to_path_buf()).unwrap();
    for node in ["harvester-node-1", "harvester-node-2", "harvester-node-3"] {
        write_host_tree(&mut w, node).unwrap();
    }
    let node_root = |n: &str| super::node_root(dir.path(), n);
    let slice_of = |l: &Launcher, controller: &str| {
        cgroup_root(&node_root(&l.node)).join(controller).join(
            pod_slice(w.nodes[&l.node].cgroup_driver, l.qos, &l.pod_uid).trim_start_matches('/'),
        )
    };

    let huge = launcher_of(&w, "huge-01");
    let hugetlb = number(&slice_of(huge, "hugetlb").join("hugetlb.2MB.usage_in_bytes"));
    assert!(hugetlb > 0, "guest RAM is charged to hugetlb");
    let mem = slice_of(huge, "memory");
    let usage = number(&mem.join("memory.usage_in_bytes"));
    assert!(
        usage < huge.overhead,
        "the memory cgroup holds only the launcher: {usage} < O {}",
        huge.overhead
    );
    assert_eq!(stat_of(&mem, "total_rss_huge "), 0);
    // (4Gi − 4Gi) + O: the memory limit holds only the overhead.
    assert_eq!(huge.compute_limit, Some(huge.overhead / 4096 * 4096));
    let qemu = proc_root(&node_root(&huge.node)).join(huge.pids[5].to_string());
    let smaps = read(&qemu.join("smaps"));
    assert!(smaps.contains("/dev/hugepages/"), "{smaps}");
    assert!(smaps.contains(&format!("Private_Hugetlb:{:>8} kB", hugetlb / 1024)));

    let share = launcher_of(&w, "share-01");
    let driver = w.nodes[&share.node].cgroup_driver;
    let compute = slice_of(share, "memory").join(scope(driver, &share.container_ids[1]));
    let shmem = stat_of(&compute, "total_shmem ");
    assert!(shmem > 100 << 20, "guest RAM on a memfd is shmem: {shmem}");
    assert!(stat_of(&compute, "total_rss ") < shmem);
    let qemu = proc_root(&node_root(&share.node)).join(share.pids[5].to_string());
    assert!(read(&qemu.join("smaps")).contains("/memfd:memory-backend-memfd (deleted)"));
    let compute_limit = share.compute_limit.unwrap();
    let pod_limit = share.pod_limit.unwrap();
    assert!(
        (pod_limit - compute_limit - 140_000_000).abs() < 4096,
        "60M console log + 80M virtiofs"
    );

    let hooked = launcher_of(&w, "hooked-01");
    assert!(hooked.compute_limit.is_some());
    assert_eq!(hooked.pod_limit, None, "a hook sidecar without a limit");
    assert_eq!(
        number(&slice_of(hooked, "memory").join("memory.limit_in_bytes")),
        UNLIMITED
    );

    let pinned = launcher_of(&w, "pinned-01");
    assert!(
        pinned.compute_limit.is_some(),
        "dedicated CPUs: limit = request"
    );

    let quiet = launcher_of(&w, "quiet-01");
    assert!(!quiet.has_console_sidecar());
    assert_eq!(quiet.pod_limit, quiet.compute_limit);
}

#[test]
fn a_cgroupfs_node_names_pods_and_containers_as_that_driver_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = World::new(&Scenario::demo().unwrap(), dir.path().to_path_buf()).unwrap();
    let node = "harvester-node-3";
    assert_eq!(w.nodes[node].cgroup_driver, CgroupDriver::Cgroupfs);
    let root = write_host_tree(&mut w, node).unwrap();
    let mem = cgroup_root(&root).join("memory");
    let l = launcher_of(&w, "db-02");
    let pod = mem.join(format!("kubepods/burstable/pod{}", l.pod_uid));
    let compute = pod.join(&l.container_ids[1]);
    assert_eq!(
        Some(number(&compute.join("memory.limit_in_bytes"))),
        l.compute_limit
    );
    let qemu = read(&compute.join("cgroup.procs"))
        .lines()
        .nth(4)
        .unwrap()
        .to_string();
    assert!(
        read(&proc_root(&root).join(qemu).join("cgroup")).contains(&format!(
            "memory:/kubepods/burstable/pod{}/{}\n",
            l.pod_uid, l.container_ids[1]
        ))
    );
    assert!(!mem.join("kubepods.slice").exists());
    // Pruned like the systemd driver's slices.
    let gone = l.pod_uid.clone();
    w.launchers.remove(&gone);
    write_host_tree(&mut w, node).unwrap();
    assert!(!pod.exists());
}
