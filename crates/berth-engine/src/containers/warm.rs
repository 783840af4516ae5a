//! Early create: a long-lived front (the API service) has the OCI
//! runtime create a container as soon as the container itself is created,
//! while its client gets ready to start it; the start then only lets the
//! held process go (see `berth_runtime::warm`).
//!
//! Held, a container is still `created` for everyone: nothing is
//! recorded, no event is sent, its state is untouched. Only containers
//! whose early create another can never notice are held: no published
//! port (no host port is taken before the start), no namespace of another
//! container (joined at the start, as that one is then). On bridge
//! networks, the early create makes only the container's own network
//! namespace: its addresses, DNS names and `/etc/hosts` (what others could
//! see, or take from it) come with the start. Whatever would change what a
//! start creates, or needs the container without a monitor (rm, network
//! connect, update, a start in the foreground), lets it go first
//! ([`Engine::let_go_held`]).
//!
//! A start that comes while its container's early create is still under
//! way in the same process (the runtime's `create` takes longer than the
//! client's steps between create and start) has the early create join the
//! networks meanwhile, under the early create's lock: the start then only
//! lets the container go.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use berth_runtime::warm::{self, Released, WarmLock};
use berth_runtime::{warm_cgroup_attach, AttachClient, AttachWarmer, MonitorOptions};

use super::lifecycle::{runtime_exit, unmount_rootfs, wait_monitor_gone, NetStep};
use super::network::EtcWrite;
use super::{Container, ContainerStatus, CreateOptions, Created};
use crate::error::Result;
use crate::spec::ContainerSpec;
use crate::Engine;

/// Whether `c` may be held created: nothing of an early create shows.
fn holdable(c: &Container) -> bool {
    let cfg = &c.cfg;
    !crate::is_rootless()
        && c.status() == ContainerStatus::Created
        && c.dir.is_dir()
        && cfg.ports.is_empty()
        // Its own namespace (made in the early create) or the host's.
        && (matches!(cfg.network_mode.as_str(), "none" | "host") || cfg.network_mode.starts_with("netns:"))
        && !cfg.pid_mode.starts_with("ns:")
        && !cfg.ipc_mode.starts_with("ns:")
        && cfg.ipc_mode != "shareable"
}

impl Engine {
    /// [`Self::create_container`] for a front whose client is likely to
    /// start the container next (the API's create): with the early-create
    /// lock of the new container taken, for [`Self::hold_created`] to run
    /// on another thread (a start that comes meanwhile waits for it). No
    /// hold when this engine does not create early (a command, which ends
    /// before any start).
    pub fn create_to_hold(&self, spec: &ContainerSpec, opts: CreateOptions) -> Result<(Created, Option<PendingHold>)> {
        if !self.long_lived {
            return Ok((self.create_container(spec, opts)?, None));
        }
        // The runtime's first cgroup attach waits out an RCU grace period
        // unless another came shortly before (see berth_runtime's
        // cgroup_warm): warmed from now on, the early create finds it done.
        let warm = warm_cgroup_attach();
        // Its rootfs stays mounted for the early create.
        let opts = CreateOptions {
            keep_mounted: true,
            ..opts
        };
        let created = self.create_container(spec, opts)?;
        let dir = self.container_dir(&created.id);
        let Ok(lock) = warm::lock(&dir) else {
            let _ = unmount_rootfs(&dir);
            return Ok((created, None));
        };
        self.early.begin(&created.id);
        let hold = PendingHold {
            id: created.id.clone(),
            early: self.early.clone(),
            _warm: warm,
            _lock: lock,
        };
        Ok((created, Some(hold)))
    }

    /// Has the runtime create the container ahead of its start, and a
    /// monitor hold it created (up to `berth_runtime::warm::HOLD_LIMIT`).
    /// Best effort: when anything fails, the container is left created as
    /// it was, and its start does the whole work (and reports the error).
    pub fn hold_created(&self, pending: PendingHold) {
        let Ok(c) = self.container(&pending.id) else { return };
        if warm::is_held(&c.dir) {
            return;
        }
        // No lease: a held container is only created, a prune's to take
        // as dockerd's would be (its removal lets the hold go first).
        if !holdable(&c) {
            // Mounted by its create for this (its start waits for this
            // lock): that start mounts it again.
            let _ = unmount_rootfs(&c.dir);
            return;
        }
        let held = (|| -> Result<()> {
            let (rt, _warm) = self.prepare_started(&c, None, NetStep::NamespaceOnly)?;
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
            // While the runtime creates it: its networks, if its start
            // comes meanwhile.
            let on_bridge = super::network::on_bridge(&c.dir);
            std::thread::scope(|s| {
                let joiner = on_bridge.then(|| s.spawn(|| self.join_when_started(&c)));
                let spawned = self.spawn_monitor(&c.dir, &exe, &args, &opts, &mut || Ok(()));
                self.early.created(&c.rec.id);
                if let Some(j) = joiner {
                    let _ = j.join();
                }
                spawned
            })?;
            Ok(())
        })();
        if let Err(e) = held {
            log::debug!("container {}: no early create: {e}", c.rec.name);
            wait_monitor_gone(&c.dir, Duration::from_secs(5));
            let _ = unmount_rootfs(&c.dir);
            let _ = self.net_down(&c.rec.id);
        }
        drop(pending);
    }

    /// In an early create, on a thread beside the runtime's `create`: once
    /// the container's start is asked for (before the create is done),
    /// joins its networks for that start.
    fn join_when_started(&self, c: &Container) {
        if self.early.await_start(&c.rec.id) {
            // When this fails, the start tries again, and says why.
            if let Err(e) = self.net_join(c, EtcWrite::InPlace) {
                log::debug!(
                    "container {}: joining its networks during its early create: {e}",
                    c.rec.name
                );
            }
        }
    }

    /// In a start: starts the container if a monitor holds it created
    /// (an early create under way is waited for). [`HeldStart::NotHeld`]:
    /// none does (any more), start it the usual way; with `attach`, the
    /// client is connected before its process runs.
    ///
    /// The lock is held only for this: an early create is begun under the
    /// lock its container's create took (see [`Self::create_to_hold`]), so
    /// none begins after a start looked.
    pub(super) fn start_held(&self, c: &Container, attach: bool) -> Result<HeldStart> {
        // An early create under way here joins the networks meanwhile.
        self.early.ask_start(&c.rec.id);
        let Some(_lock) = lock_if_any(c)? else {
            return Ok(HeldStart::NotHeld);
        };
        if !warm::is_held(&c.dir) {
            return Ok(HeldStart::NotHeld);
        }
        // Its networks, into the namespace it was created in, unless its
        // early create joined them (nothing else does while it is held).
        // When that fails, the usual start does it all again and says why.
        let on_bridge = super::network::on_bridge(&c.dir);
        let joined = match on_bridge.then(|| self.store.container_endpoints(&c.rec.id)) {
            None => Ok(()),
            Some(Ok(eps)) if !eps.is_empty() => Ok(()),
            Some(_) => self.net_join(c, EtcWrite::InPlace),
        };
        if let Err(e) = joined {
            log::debug!(
                "container {}: joining its networks after an early create: {e}",
                c.rec.name
            );
            let_go(c);
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

/// A container's early create, its lock taken ([`Engine::create_to_hold`]).
pub struct PendingHold {
    id: String,
    early: Arc<EarlyCreates>,
    _warm: Option<AttachWarmer>,
    /// Released after the board's entry goes (see the Drop).
    _lock: WarmLock,
}

impl Drop for PendingHold {
    fn drop(&mut self) {
        // Before the lock goes (with the fields, after this).
        self.early.end(&self.id);
    }
}

/// The early creates under way in one process, by container ID, and
/// whether their start was asked for meanwhile.
#[derive(Default)]
pub(crate) struct EarlyCreates {
    board: Mutex<HashMap<String, Early>>,
    changed: Condvar,
}

/// One early create's entry on the board.
#[derive(Clone, Copy, Debug, Default)]
struct Early {
    /// The runtime's create is done (or failed): too late to ask for more.
    created: bool,
    /// Its start was asked for.
    start_asked: bool,
}

impl EarlyCreates {
    fn board(&self) -> MutexGuard<'_, HashMap<String, Early>> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Early)) {
        if let Some(e) = self.board().get_mut(id) {
            f(e);
        }
        self.changed.notify_all();
    }

    fn begin(&self, id: &str) {
        self.board().insert(id.to_string(), Early::default());
    }

    fn created(&self, id: &str) {
        self.update(id, |e| e.created = true);
    }

    /// A start of `id` asks its early create, if one is under way in this
    /// process, to join the networks meanwhile.
    fn ask_start(&self, id: &str) {
        self.update(id, |e| e.start_asked = true);
    }

    fn end(&self, id: &str) {
        self.board().remove(id);
        self.changed.notify_all();
    }

    /// Waits until the start of `id` is asked for (true) or its runtime
    /// create is done (false).
    fn await_start(&self, id: &str) -> bool {
        let mut board = self.board();
        loop {
            match board.get(id) {
                Some(e) if e.created => return false,
                Some(e) if e.start_asked => return true,
                Some(_) => {}
                None => return false,
            }
            // The create ends within the hold's own limits; the timeout
            // only guards against a lost wake-up.
            board = match self.changed.wait_timeout(board, Duration::from_secs(1)) {
                Ok((b, _)) => b,
                Err(p) => p.into_inner().0,
            };
        }
    }
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
