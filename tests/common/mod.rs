//! Helpers shared by the integration tests. Each test binary compiles this module
//! and uses only part of it.
#![allow(dead_code)]

pub mod cluster;
pub mod postgres;
pub mod rabbit;
pub mod schema;
pub mod seaweed;
