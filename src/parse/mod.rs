//! Pure text → typed values. No I/O here.

pub mod duration;
pub mod manifest;
pub mod quantity;
