//! Sources of an [`Inventory`](crate::model::inventory::Inventory): files and the live cluster.
//!
//! Live: `connect` (kubectl's flags → client) → `discovery` (which APIs exist) → `live` (one
//! `feed` per resource and scope: watcher + reflector of the `lean` types) → snapshots;
//! `forbidden` turns refused lists into one warning sentence; `retry` retries throttled
//! requests (429) with bounded backoff. `kernel_log` reads a kernel log file or standard input
//! as a stream.

pub mod connect;
pub mod discovery;
pub mod feed;
pub mod files;
pub mod forbidden;
pub mod kernel_log;
pub mod lean;
pub mod live;
pub mod paged;
pub mod prometheus;
pub mod retry;
pub mod token;
