//! What the tool remembers of a VM beyond this moment: the peaks of this run and those kept on
//! this machine across runs.

pub mod keeper;
pub mod store;

pub use keeper::{HistoryMode, PeakKeeper, Sighting};
pub use store::PeakStore;
