//! `berth build`. Placeholder until the builder lands.

use anyhow::{bail, Result};

use crate::engine::Engine;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Build context (a directory, or - for a tar on stdin)
    pub context: Option<String>,
}

pub fn run(_engine: &Engine, _a: BuildArgs) -> Result<i32> {
    bail!("build is not available yet")
}
