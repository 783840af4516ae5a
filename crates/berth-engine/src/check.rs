//! `system check [--repair]`: the store compared with itself (database,
//! blobs, unpacked layers, containers' directories, mounts, leases, modes),
//! and put right with `repair`. All of it is the store's
//! (`berth_store::Store::check`); this is the engine's door to it.

use anyhow::{Context, Result};
use berth_store::CheckReport;

use crate::Engine;

impl Engine {
    /// Checks the store; with `repair`, repairs what can be repaired.
    pub fn system_check(&self, repair: bool) -> Result<CheckReport> {
        self.store
            .check(repair)
            .with_context(|| format!("checking the store at {}", self.root().display()))
    }
}
