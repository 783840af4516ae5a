//! `wait` with Docker's conditions: until the container is not running,
//! until its next exit, or until it is removed. Reads the container's
//! state; never changes it.

use std::time::Duration;

use crate::error::{bail, EngineError, Result};
use crate::Engine;

/// What a `wait` waits for (Docker's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// Returns at once when the container is not running (created, exited).
    #[default]
    NotRunning,
    /// Waits for an exit that happens after the wait began.
    NextExit,
    /// Waits until the container is gone (its last exit code is returned).
    Removed,
}

impl std::str::FromStr for WaitCondition {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::invalid(format!(
                "invalid condition: {} (use not-running, next-exit or removed)",
                crate::error::shown(other)
            ))),
        }
    }
}

/// How long a waiting `wait` sleeps between looks at most: it is woken
/// by every change in the container's directory (the monitor's state
/// writes, the removal), and looks at `cancelled` at least this often.
const LOOK: Duration = berth_runtime::watch::FALLBACK;

impl Engine {
    /// Blocks until `cond` holds for the container `word`; returns its
    /// exit code then. `cancelled` is asked between looks: when it says
    /// true (the caller went away), the wait ends with an error.
    pub fn wait_for_condition(&self, word: &str, cond: WaitCondition, cancelled: &dyn Fn() -> bool) -> Result<i32> {
        let c = self.container(word)?;
        let id = c.rec.id.clone();
        let first_finish = c.state.finished_at.clone();
        let mut code = c.state.exit_code;
        // Whether `code` was read from the container stopped after a run:
        // then its removal needs no look through the events journal.
        let mut code_seen = !c.state.is_running() && c.state.finished_at.is_some();
        // Watching from before the first look: no change is missed.
        let watch = berth_runtime::watch::DirWatch::for_files(&c.dir, &[berth_runtime::state::STATE_FILE]);
        loop {
            let current = match self.container(&id) {
                Ok(c) => Some(c),
                Err(_) if !c.dir.exists() => None,
                Err(e) => return Err(e),
            };
            // Its directory goes first when it is removed, then its record.
            let removing = current.as_ref().is_none_or(|now| !now.dir.is_dir());
            let done = if removing {
                // Every condition is met once it is gone; `removed` waits
                // for the record too.
                current.is_none() || cond != WaitCondition::Removed
            } else {
                let now = current.as_ref().expect("present");
                code = now.state.exit_code;
                let running = now.state.is_running();
                code_seen = !running && now.state.finished_at.is_some();
                match cond {
                    WaitCondition::NotRunning => !running,
                    WaitCondition::NextExit => !running && now.state.finished_at != first_finish,
                    WaitCondition::Removed => false,
                }
            };
            if done {
                if removing && !code_seen {
                    // A `--rm` container that exited and went between two
                    // looks: its `die` event has the code.
                    return Ok(self.last_exit_code(&id).unwrap_or(code));
                }
                return Ok(code);
            }
            if cancelled() {
                bail!("the wait for container {id} was cancelled");
            }
            watch.wait(LOOK);
        }
    }
}
