//! Dockerfile parsing, the stage graph, and build execution with a per-step cache.

pub mod context;
pub mod dockerfile;
pub mod executor;
pub mod metadata;
mod wildcard;
