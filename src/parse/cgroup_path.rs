//! What a Kubernetes memory cgroup path says: pod UID, container id and runtime, and level.
//!
//! systemd driver: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice/
//! cri-containerd-<id>.scope` (`crio-<id>.scope`, `docker-<id>.scope`); cgroupfs driver:
//! `/kubepods/burstable/pod<uid>/<id>`. Paths may sit below another prefix (a test's own cgroup, a
//! nested runtime) and may be mangled (the seed shows `kubepods-urstable.slice`): the pod and the
//! container are found by their own segments, not by position.

use crate::model::oom_event::ContainerRuntime;

/// Where a path sits in the kubepods tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLevel {
    /// `/`, the root of the hierarchy.
    Root,
    /// `kubepods` or one of its QoS classes.
    Kubepods,
    Pod,
    Container,
    /// Anything else.
    Other,
}

/// The parts of a cgroup path the tool uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeCgroup {
    pub pod_uid: Option<String>,
    pub container_id: Option<String>,
    pub runtime: Option<ContainerRuntime>,
    pub level: CgroupLevel,
}

/// Read a cgroup path (or a bare `cpuset=` scope name).
pub fn kube_cgroup(path: &str) -> KubeCgroup {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut pod_uid = None;
    let mut container = None;
    let mut kubepods = false;
    for seg in &segments {
        if let Some(uid) = pod_uid_in_segment(seg) {
            pod_uid = Some(uid);
            container = None;
            continue;
        }
        if let Some(found) = container_in_segment(seg) {
            container = Some(found);
            continue;
        }
        if seg.starts_with("kubepods") {
            kubepods = true;
        }
    }
    let last = segments.last().copied().unwrap_or("");
    let level = if segments.is_empty() {
        CgroupLevel::Root
    } else if container.is_some() && container_in_segment(last).is_some() {
        CgroupLevel::Container
    } else if pod_uid.is_some() && pod_uid_in_segment(last).is_some() {
        CgroupLevel::Pod
    } else if kubepods && is_kubepods_segment(last) {
        CgroupLevel::Kubepods
    } else {
        CgroupLevel::Other
    };
    let (container_id, runtime) = match container {
        Some((id, rt)) => (Some(id), rt),
        None => (None, None),
    };
    KubeCgroup {
        pod_uid,
        container_id,
        runtime,
        level,
    }
}

fn is_kubepods_segment(seg: &str) -> bool {
    let name = seg.strip_suffix(".slice").unwrap_or(seg);
    name.starts_with("kubepods") || matches!(name, "burstable" | "besteffort" | "guaranteed")
}

/// `pod<uid>` (cgroupfs, dashes) or `…-pod<uid>.slice` (systemd, underscores).
fn pod_uid_in_segment(seg: &str) -> Option<String> {
    let name = seg.strip_suffix(".slice").unwrap_or(seg);
    let mut search = 0;
    while let Some(pos) = name[search..].find("pod") {
        let start = search + pos;
        let at_boundary = start == 0 || name.as_bytes()[start - 1] == b'-';
        let candidate = &name[start + 3..];
        if at_boundary && candidate.len() >= 36 && candidate.is_char_boundary(36) {
            let uid = &candidate[..36];
            let rest = &candidate[36..];
            if rest.is_empty() && is_uuid(uid) {
                return Some(uid.replace('_', "-").to_ascii_lowercase());
            }
        }
        search = start + 3;
    }
    None
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-' || *c == b'_',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `crio-conmon-<id>.scope`, `docker-<id>.scope`,
/// `crio-<id>` or a bare 64-hex id (cgroupfs).
fn container_in_segment(seg: &str) -> Option<(String, Option<ContainerRuntime>)> {
    let name = seg.strip_suffix(".scope").unwrap_or(seg);
    let prefixes = [
        ("cri-containerd-", Some(ContainerRuntime::Containerd)),
        ("crio-conmon-", Some(ContainerRuntime::Crio)),
        ("crio-", Some(ContainerRuntime::Crio)),
        ("docker-", Some(ContainerRuntime::Docker)),
        ("", None),
    ];
    for (prefix, runtime) in prefixes {
        if let Some(id) = name.strip_prefix(prefix) {
            if is_container_id(id) {
                return Some((id.to_ascii_lowercase(), runtime));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "968a06fb-9ab9-4819-8caf-0392ddff3d9b";
    const CID: &str = "0f32894de86edf3d3832702af794874ef8d400b4969acdea4976b12040756e0d";

    #[test]
    fn systemd_paths() {
        let pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod968a06fb_9ab9_4819_8caf_0392ddff3d9b.slice";
        let k = kube_cgroup(pod);
        assert_eq!(k.pod_uid.as_deref(), Some(UID));
        assert_eq!(k.level, CgroupLevel::Pod);
        assert_eq!(k.container_id, None);
        let k = kube_cgroup(&format!("{pod}/cri-containerd-{CID}.scope"));
        assert_eq!(k.level, CgroupLevel::Container);
        assert_eq!(k.container_id.as_deref(), Some(CID));
        assert_eq!(k.runtime, Some(ContainerRuntime::Containerd));
        let k = kube_cgroup(&format!(
            "/kubepods.slice/kubepods-pod{}.slice/crio-{CID}.scope",
            UID.replace('-', "_")
        ));
        assert_eq!(
            (k.level, k.runtime),
            (CgroupLevel::Container, Some(ContainerRuntime::Crio))
        );
        let k = kube_cgroup(&format!("{pod}/docker-{CID}.scope"));
        assert_eq!(k.runtime, Some(ContainerRuntime::Docker));
    }

    #[test]
    fn cgroupfs_and_mangled_paths() {
        let k = kube_cgroup(&format!("/kubepods/burstable/pod{UID}/{CID}"));
        assert_eq!(k.pod_uid.as_deref(), Some(UID));
        assert_eq!((k.level, k.runtime), (CgroupLevel::Container, None));
        let k = kube_cgroup(&format!("/kubepods/pod{UID}"));
        assert_eq!(k.level, CgroupLevel::Pod);
        let typo = "/kubepods.slice/kubepods-urstable.slice/kubepods-burstable-podef91e487_dec5_4613_800b_eb23e1a1617d.slice/cri-containerd-100093783c22a3ae1a42e21dd887b7c26eef52d56ba44c7273ef54507b6efe7c.scope";
        let k = kube_cgroup(typo);
        assert_eq!(
            k.pod_uid.as_deref(),
            Some("ef91e487-dec5-4613-800b-eb23e1a1617d")
        );
        assert_eq!(k.level, CgroupLevel::Container);
        let nested = format!("/some-runtime/abc/t1/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice", UID.replace('-', "_"));
        assert_eq!(kube_cgroup(&nested).level, CgroupLevel::Pod);
    }

    #[test]
    fn levels_outside_pods() {
        assert_eq!(kube_cgroup("/").level, CgroupLevel::Root);
        assert_eq!(kube_cgroup("/kubepods.slice").level, CgroupLevel::Kubepods);
        assert_eq!(
            kube_cgroup("/kubepods.slice/kubepods-burstable.slice").level,
            CgroupLevel::Kubepods
        );
        assert_eq!(
            kube_cgroup("/kubepods/besteffort").level,
            CgroupLevel::Kubepods
        );
        assert_eq!(
            kube_cgroup("/system.slice/sshd.service").level,
            CgroupLevel::Other
        );
        assert_eq!(kube_cgroup("/podcast").pod_uid, None);
        let k = kube_cgroup(&format!("cri-containerd-{CID}.scope"));
        assert_eq!(k.container_id.as_deref(), Some(CID));
    }
}
