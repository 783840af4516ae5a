//! Dockerfile parsing, the stage graph, and build execution with a per-step cache.

pub mod dockerfile;
pub mod metadata;
