//! Container commands (run, create, start, ps, logs, …). Placeholder until
//! the runtime lands: every command says it is not available yet.

use std::path::Path;

use anyhow::{bail, Result};
use clap::Subcommand;

use crate::engine::Engine;

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// (internal) supervise one container
    #[command(name = "__monitor", hide = true)]
    Monitor(MonitorArgs),
}

#[derive(clap::Args, Debug)]
pub struct MonitorArgs {
    pub container_dir: std::path::PathBuf,
}

pub fn dispatch(_engine: &Engine, _cmd: ContainerCommand) -> Result<i32> {
    bail!("containers are not available yet")
}

pub fn monitor(_root: &Path, _a: &MonitorArgs) -> Result<i32> {
    bail!("containers are not available yet")
}

pub fn inspect_value(_engine: &Engine, name: &str, _size: bool) -> Result<serde_json::Value> {
    bail!("No such container: {name}")
}

/// Remove every stopped container; returns their IDs.
pub fn prune_stopped(_engine: &Engine) -> Result<Vec<String>> {
    Ok(Vec::new())
}
