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
        let slice = mem.join(pod_slice(l.qos, &l.pod_uid).trim_start_matches('/'));
        let compute = slice.join(scope(&l.container_ids[1]));
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
            pod_slice(l.qos, &l.pod_uid),
            scope(&l.container_ids[1])
        )));
    }
    // Rewriting after a pod is gone prunes it.
    let (gone, qos) = (here[0].pod_uid.clone(), here[0].qos);
    let slice = mem.join(pod_slice(qos, &gone).trim_start_matches('/'));
    w.launchers.remove(&gone);
    write_host_tree(&mut w, "harvester-node-1").unwrap();
    assert!(!slice.exists());
    assert!(root.join("var/log/kern.log").exists());
}
