//! Pure text → typed values. No I/O here.

pub mod manifest;
pub mod quantity;
