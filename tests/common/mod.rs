//! Helpers shared by the integration tests (`mod common;` in each test crate).
#![allow(dead_code)]

pub mod apiserver;
