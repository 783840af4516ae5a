//! berth: the engine facade and the command line.
//!
//! `engine` is the only way in: every behaviour lives there once, and the
//! fronts (`cli`, later `compose` and the API server) parse, call one engine
//! function and print. Fronts never touch the store directly.

pub mod cli;
pub mod engine;
