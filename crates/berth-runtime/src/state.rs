//! The container's recorded state (`state.json` in the container directory):
//! what the monitor saw (running, exited, exit code, OOM, health, restarts).
//!
//! All writes go through [`update_state`]: lock `state.lock`, read, change,
//! write a temp file and rename it into place, so a reader never sees a torn
//! file and a killed writer leaves the old state. This module must never
//! invent facts: when the monitor is gone, [`read_state`] records only what
//! can be observed (the processes are dead; the exit code is unknown).

use crate::error::{IoContext, Result, RuntimeError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// File names inside the container directory.
pub const STATE_FILE: &str = "state.json";
pub const STATE_LOCK: &str = "state.lock";
/// Written by `stop` before signalling: the monitor must not restart.
pub const STOP_MARKER: &str = "stop-requested";
/// Written when the container is being removed: the monitor exits.
pub const REMOVE_MARKER: &str = "remove-requested";

/// Exit code recorded when the monitor died without recording one (Docker shows "Exited (255)").
pub const EXIT_UNKNOWN: i32 = 255;

/// One healthcheck probe result.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// Docker's `State.Health`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// "starting" | "healthy" | "unhealthy"
    pub status: String,
    pub failing_streak: u32,
    /// The last five probes, oldest first.
    pub log: Vec<HealthLog>,
}

/// What berth knows about a container's life.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct ContainerState {
    /// "created" | "running" | "paused" | "restarting" | "exited" | "dead"
    pub status: String,
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (guards against pid reuse).
    pub pid_start: u64,
    pub exit_code: i32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub oom_killed: bool,
    pub monitor_pid: i32,
    pub monitor_start: u64,
    pub restart_count: u32,
    /// Last error (start failure, recovery note).
    pub error: String,
    pub health: Option<Health>,
}

impl ContainerState {
    /// Whether the container's process is (believed to be) alive.
    pub fn is_running(&self) -> bool {
        matches!(self.status.as_str(), "running" | "paused" | "restarting")
    }
}

/// Now, in Docker's timestamp format (RFC 3339, nanoseconds, Z).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The start time (field 22 of /proc/<pid>/stat) of a live process.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is alive and is the same process (same start time, when known).
pub fn pid_alive(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match process_start_time(pid) {
        Some(s) => start == 0 || s == start,
        None => false,
    }
}

fn load(dir: &Path) -> Result<ContainerState> {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| RuntimeError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ContainerState {
            status: "created".into(),
            ..Default::default()
        }),
        Err(e) => Err(RuntimeError::io(format!("reading {}", path.display()), e)),
    }
}

/// Runs `f` on the state under the state lock and saves the result atomically.
pub fn update_state<T>(dir: &Path, f: impl FnOnce(&mut ContainerState) -> T) -> Result<(T, ContainerState)> {
    let lock_path = dir.join(STATE_LOCK);
    let lock = berth_archive::perms::open_rw(&lock_path, berth_archive::perms::PRIVATE_FILE)
        .ctx(|| format!("opening {}", lock_path.display()))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .ctx(|| format!("locking {}", lock_path.display()))?;
    let mut st = load(dir)?;
    let out = f(&mut st);
    let bytes = serde_json::to_vec_pretty(&st).map_err(|e| RuntimeError::InvalidConfig(e.to_string()))?;
    crate::spec::write_atomic(&dir.join(STATE_FILE), &bytes, berth_archive::perms::PRIVATE_FILE)?;
    drop(lock);
    Ok((out, st))
}

/// Returns the recorded state. If it says the container is running but
/// both the monitor and the container process are gone, records (once) that
/// it exited with an unknown code ([`EXIT_UNKNOWN`]) and returns that.
pub fn read_state(dir: &Path) -> Result<ContainerState> {
    let st = load(dir)?;
    if !st.is_running() || pid_alive(st.monitor_pid, st.monitor_start) || pid_alive(st.pid, st.pid_start) {
        return Ok(st);
    }
    let (_, st) = update_state(dir, |s| {
        if s.is_running() && !pid_alive(s.monitor_pid, s.monitor_start) && !pid_alive(s.pid, s.pid_start) {
            s.status = "exited".into();
            s.exit_code = EXIT_UNKNOWN;
            s.finished_at = Some(now_rfc3339());
            s.error = "the container's monitor died; the exit code was not recorded".into();
        }
    })?;
    Ok(st)
}
