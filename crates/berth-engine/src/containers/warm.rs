//! Early create: a long-lived front (the API service) has the OCI
//! runtime create a container as soon as the container itself is created,
//! while its client gets ready to start it; the start then only lets the
//! held process go (see `berth_runtime::warm`).
//!
//! Held, a container is still `created` for everyone: nothing is
//! recorded, no event is sent, its state is untouched. Only containers
//! whose early create another can never notice are held: no bridge
//! network, no published port (no host port is taken before the start),
//! no namespace of another container (joined at the start, as that one
//! is then). Whatever would change what a start creates, or needs the
//! container without a monitor (rm, network connect, update, a start in
//! the foreground), lets it go first ([`Engine::let_go_held`]).

use std::time::Duration;

use berth_runtime::warm::{self, Released, WarmLock};
use berth_runtime::{AttachClient, MonitorOptions};

use super::lifecycle::{runtime_exit, unmount_rootfs, wait_monitor_gone};
use super::{Container, ContainerStatus};
use crate::error::Result;
use crate::Engine;

/// Whether `c` may be held created: nothing of an early create shows.
fn holdable(c: &Container) -> bool {
    let cfg = &c.cfg;
    !crate::is_rootless()
        && c.status() == ContainerStatus::Created
        && c.dir.is_dir()
        && !c.dir.join(super::network::NET_FILE).exists()
        && cfg.ports.is_empty()
        && matches!(cfg.network_mode.as_str(), "none" | "host")
        && !cfg.pid_mode.starts_with("ns:")
        && !cfg.ipc_mode.starts_with("ns:")
        && cfg.ipc_mode != "shareable"
}

impl Engine {
    /// Takes the early-create lock of the container just created with ID
    /// `id`, for [`Self::hold_created`] to run on another thread: a start
    /// that comes meanwhile waits for it. None when this engine does not
    /// create early (a command, which ends before any start).
    pub fn lock_for_hold(&self, id: &str) -> Option<PendingHold> {
        if !self.long_lived {
            return None;
        }
        let lock = warm::lock(&self.container_dir(id)).ok()?;
        Some(PendingHold {
            id: id.to_string(),
            lock,
        })
    }

    /// Has the runtime create the container ahead of its start, and a
    /// monitor hold it created (up to `berth_runtime::warm::HOLD_LIMIT`).
    /// Best effort: when anything fails, the container is left created as
    /// it was, and its start does the whole work (and reports the error).
    pub fn hold_created(&self, pending: PendingHold) {
        let PendingHold { id, lock } = pending;
        let Ok(c) = self.container(&id) else { return };
        if !holdable(&c) || warm::is_held(&c.dir) {
            return;
        }
        let Ok(_lease) = self.hold_container(&c.rec.id) else {
            return;
        };
        let held = (|| -> Result<()> {
            let (rt, _warm) = self.prepare_started(&c, None)?;
            let opts = MonitorOptions {
                runtime: rt,
                attached: None,
                remove_when_done: c.cfg.auto_remove,
                on_done: Default::default(),
                wait_attach: false,
                reap_strays: false,
                hold: true,
                ready: None,
            };
            let (exe, args) = self.monitor_program()?;
            self.spawn_monitor(&c.dir, &exe, &args, &opts, &mut || Ok(()))?;
            Ok(())
        })();
        if let Err(e) = held {
            log::debug!("container {}: no early create: {e}", c.rec.name);
            wait_monitor_gone(&c.dir, Duration::from_secs(5));
            let _ = unmount_rootfs(&c.dir);
        }
        drop(lock);
    }

    /// In a start: starts the container if a monitor holds it created
    /// (an early create under way is waited for). `Ok(None)`: none does
    /// (any more), start it the usual way; with `attach`, the client is
    /// connected before its process runs.
    ///
    /// The lock is held only for this: an early create is begun under the
    /// lock its container's create took (see [`Self::lock_for_hold`]), so
    /// none begins after a start looked.
    pub(super) fn start_held(&self, c: &Container, attach: bool) -> Result<HeldStart> {
        let Some(_lock) = lock_if_any(c)? else {
            return Ok(HeldStart::NotHeld);
        };
        if !warm::is_held(&c.dir) {
            return Ok(HeldStart::NotHeld);
        }
        let client = if attach {
            match AttachClient::connect(&c.dir) {
                Ok(client) => Some(client),
                Err(_) => {
                    let_go(c);
                    return Ok(HeldStart::NotHeld);
                }
            }
        } else {
            None
        };
        match warm::release(&c.dir).map_err(runtime_exit)? {
            Released::Started(_) => Ok(HeldStart::Started(client)),
            Released::NotHeld => {
                // Let go meanwhile: its monitor is on its way out.
                wait_monitor_gone(&c.dir, Duration::from_secs(10));
                Ok(HeldStart::NotHeld)
            }
        }
    }

    /// Lets a container held created go, if one is (after an early create
    /// still under way), and waits until its monitor has undone it all.
    /// Cheap when none is: a lock and a look.
    pub(crate) fn let_go_held(&self, c: &Container) {
        // Only a created container is ever held, and never while its
        // monitor is this process (a `--rm` one's removal after a failed
        // start).
        if c.status() != ContainerStatus::Created || c.state.monitor_pid == std::process::id() as i32 {
            return;
        }
        if let Ok(Some(_lock)) = lock_if_any(c) {
            let_go(c);
        }
    }
}

/// A container's early create, its lock taken ([`Engine::lock_for_hold`]).
pub struct PendingHold {
    id: String,
    lock: WarmLock,
}

/// How a start found its container ([`Engine::start_held`]).
pub(super) enum HeldStart {
    /// Held, now started; with the attach client connected before.
    Started(Option<AttachClient>),
    /// Not held (any more): to be started the usual way.
    NotHeld,
}

/// The early-create lock of `c`, if it ever had one (see
/// [`warm::lock_if_any`]).
fn lock_if_any(c: &Container) -> Result<Option<WarmLock>> {
    if !c.dir.is_dir() {
        return Ok(None);
    }
    warm::lock_if_any(&c.dir).map_err(runtime_exit)
}

/// [`Engine::let_go_held`] under the lock.
fn let_go(c: &Container) {
    if warm::abandon(&c.dir) {
        wait_monitor_gone(&c.dir, Duration::from_secs(10));
    }
}
