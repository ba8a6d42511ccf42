//! Sources of an [`Inventory`](crate::model::inventory::Inventory): files and the live cluster.

pub mod files;
