//! A simulated KubeVirt (optionally Harvester) cluster served over real HTTP and WebSocket on
//! 127.0.0.1, for the demo, tests and benchmarks. The real kube-rs client and the real `kubectl`
//! talk to it.
//!
//! Layout: `scenario` (what the cluster holds, pure) → `world` (objects, nodes, launchers) with
//! `kubevirt`/`launcher`/`harvester` (controllers and webhook) and `workload` (memory over time,
//! pure) → `tick` (time passes: pods start, OOM kills) → `hosttree`/`oomlog` (what a node's
//! files say) → `server`/`rest`/`watch`/`table`/`exec` (the API) → `handle` (start, stop, hooks).

pub mod auth;
pub mod clock;
pub mod exec;
pub mod handle;
pub mod harvester;
pub mod hosttree;
pub mod kubevirt;
pub mod launcher;
pub mod oomlog;
pub mod ops;
pub mod patch;
pub mod procfs;
pub mod resources;
pub mod rest;
pub mod scenario;
pub mod selector;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod tick;
pub mod watch;
pub mod workload;
pub mod world;

pub use handle::{Sim, SimError, SimHandle, SimOptions};
pub use scenario::Scenario;
