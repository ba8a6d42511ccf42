//! A simulated KubeVirt (optionally Harvester) cluster served over real HTTP and WebSocket on
//! 127.0.0.1, for the demo, tests and benchmarks. The real kube-rs client and the real `kubectl`
//! talk to it.
//!
//! A separate crate from the tool it tests: it shares none of the tool's code (quantities,
//! versions, object keys and KubeVirt's launcher sizing are its own, in `units`, `version`,
//! `keys` and `sizing`); only the node probe script is the same file, because the simulator runs
//! the real probe against its nodes' host trees.
//!
//! Layout: `scenario` (what the cluster holds, pure; read from YAML by `yaml`) → `world` (objects in `store`, nodes,
//! launchers) with `kubevirt`/`launcher`/`harvester` (controllers and webhook; `sizing` is KubeVirt's
//! launcher overhead table) and `workload`
//! (memory over time, pure) → `tick` (time passes: pods start, deadlines, OOM kills) →
//! `hosttree`/`procfs`/`oomlog`/`summary` (what a node's files, kernel log and kubelet say) →
//! `server`/`rest`/`ops`/`watch`/`table`/`openapi`/`exec` with `auth`/`selector`/`patch`/`status`
//! (the API) → `handle` (start, stop, kubeconfig, test hooks) and `faults` (throttling, expiring
//! watches, nodes without a kubelet, in front of every request).
//!
//! Exec runs the requested command for real on this machine with the pod's node as its host:
//! `VMMEM_CGROUP_ROOT` (the node's `/sys/fs/cgroup`, cgroup v1, systemd driver), `VMMEM_PROC_ROOT`
//! (its `/proc`), `VMMEM_KERNEL_LOG` (its kernel log with OOM reports), `VMMEM_HOST_ROOT` and
//! `NODE_NAME`. Exec into a virt-launcher container sees only that container's cgroup and
//! processes; hostPID pods (agents) see the whole node.

pub mod auth;
pub mod clock;
pub mod exec;
pub mod faults;
pub mod handle;
pub mod harvester;
pub mod hosttree;
pub mod hotplug;
pub mod keys;
pub mod kubevirt;
pub mod launcher;
pub mod metrics;
pub mod nodecpu;
pub mod oomlog;
mod oomlog_sidecar;
pub mod openapi;
pub mod ops;
pub mod paging;
pub mod patch;
pub mod procfs;
pub mod promql;
pub mod requests;
pub mod resources;
pub mod rest;
pub mod scenario;
pub mod schema;
pub mod selector;
pub mod server;
pub mod sizing;
pub mod status;
pub mod store;
pub mod summary;
pub mod table;
pub mod tick;
pub mod tls;
pub mod treefiles;
pub mod units;
pub mod version;
pub mod watch;
pub mod workload;
pub mod world;
pub mod yaml;

pub use handle::{Sim, SimError, SimHandle, SimOptions};
pub use scenario::Scenario;
