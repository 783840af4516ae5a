//! berth: the command line, a front over `berth-engine`.
//!
//! `berth_engine` is the only way in: every behaviour lives there once, and
//! the fronts (this CLI, later `compose` and the API server) parse, call one
//! engine function and print. Fronts never touch the store directly.

pub mod cli;
