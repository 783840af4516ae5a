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

/// How often a waiting `wait` looks at the container's state.
const POLL: Duration = Duration::from_millis(50);

impl Engine {
    /// Blocks until `cond` holds for the container `word`; returns its
    /// exit code then. `cancelled` is asked between looks: when it says
    /// true (the caller went away), the wait ends with an error.
    pub fn wait_for_condition(&self, word: &str, cond: WaitCondition, cancelled: &dyn Fn() -> bool) -> Result<i32> {
        let c = self.container(word)?;
        let id = c.rec.id.clone();
        let first_finish = c.state.finished_at.clone();
        let mut code = c.state.exit_code;
        loop {
            let current = match self.container(&id) {
                Ok(c) => Some(c),
                Err(_) if !c.dir.exists() => None,
                Err(e) => return Err(e),
            };
            let Some(now) = current else {
                // Removed: every condition is met. A `--rm` container may
                // have exited and gone between two looks: its `die` event
                // has the code.
                return Ok(self.last_exit_code(&id).unwrap_or(code));
            };
            code = now.state.exit_code;
            let running = now.state.is_running();
            let done = match cond {
                WaitCondition::NotRunning => !running,
                WaitCondition::NextExit => !running && now.state.finished_at != first_finish,
                WaitCondition::Removed => false,
            };
            if done {
                return Ok(code);
            }
            if cancelled() {
                bail!("the wait for container {id} was cancelled");
            }
            std::thread::sleep(POLL);
        }
    }
}
