//! berth-engine: one open store plus the host's settings, and every
//! operation the fronts (the CLI, compose, the API server) offer, once.
//!
//! Requests come in typed ([`spec::ContainerSpec`], [`build::BuildRequest`],
//! [`registry::PullOptions`] …); results go out as data, progress as
//! [`progress::Event`]s, failures as [`EngineError`]s with a kind; a
//! container's stdio is the [`streams::Streams`] the caller passes. The
//! engine never parses command lines, never reads the caller's environment
//! or the files its flags name, never prints, and never touches this
//! process's stdio or signal handlers. See ARCHITECTURE.md.
#![deny(missing_docs)]

pub mod binfmt;
pub mod build;
pub mod build_cache;
pub mod changes;
pub mod check;
pub mod containers;
pub mod error;
pub mod events;
pub mod human;
pub mod image_archive;
pub mod image_merge;
pub mod images;
pub mod import;
pub mod layer_usage;
pub mod monitor;
pub mod networks;
pub mod path_stat;
pub mod progress;
pub mod registry;
pub mod spec;
pub mod streams;
pub mod system;
pub mod userns;
pub mod volumes;
pub mod wait;

use std::path::{Path, PathBuf};

use berth_store::Store;

pub use error::{EngineError, ErrorKind, Result};

/// One open store and the host's settings: the object every front calls.
/// It blocks; an async front calls it from `spawn_blocking` (registry
/// operations may also be called from async code directly).
pub struct Engine {
    pub(crate) store: Store,
    root: PathBuf,
    /// `--runtime` or the config file's choice; probed when None.
    runtime: Option<String>,
    /// The program detached containers' monitors run as, and its
    /// arguments (the container directory is appended); see
    /// [`Engine::set_monitor_program`].
    monitor: Option<(PathBuf, Vec<String>)>,
    /// A long-lived front (the API service) holds what a call uses for the
    /// call only; a command holds it until it ends. See
    /// [`Engine::set_long_lived`].
    long_lived: bool,
    /// A long-lived engine's monitor started ahead of the next start
    /// (see [`berth_runtime::spare`]); refilled after each use.
    spare_monitor: berth_runtime::spare::SpareKeeper,
    /// This process's early creates under way, for the starts that come
    /// meanwhile (see `containers::warm`).
    early: std::sync::Arc<containers::warm::EarlyCreates>,
}

impl Engine {
    /// Opens (creating it if needed) the store at `root`; `runtime` is the
    /// OCI runtime asked for (`--runtime`), or `None` to probe.
    pub fn open(root: &Path, runtime: Option<String>) -> Result<Engine> {
        let store = Store::open(root).map_err(|e| {
            let denied = matches!(&e, berth_store::StoreError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied);
            if denied {
                EngineError::new(
                    ErrorKind::Other,
                    format!(
                        "permission denied on the store at {}: it belongs to another user. As a normal user berth \
                     keeps its own store in ~/.local/share/berth (the default); choose another with --root DIR, \
                     or run as root ({e})",
                        root.display()
                    ),
                )
            } else {
                EngineError::from(e).context(format!("opening the store at {}", root.display()))
            }
        })?;
        Ok(Engine {
            store,
            root: root.to_path_buf(),
            runtime,
            monitor: None,
            long_lived: false,
            spare_monitor: Default::default(),
            early: Default::default(),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Detached containers' monitors run `exe args… CONTAINER_DIR`, which
    /// must end up in [`monitor::detached_monitor_main`] (a front that
    /// embeds the monitor in its own program, or a test binary, says so
    /// here). By default: the `berth-monitor` program beside this
    /// executable, else this executable's `__monitor` (the CLI's).
    pub fn set_monitor_program(&mut self, exe: PathBuf, args: Vec<String>) {
        self.monitor = Some((exe, args));
    }

    /// This engine serves many calls over a long life (the API service):
    /// what a call holds against prunes (a container it creates, starts or
    /// removes) is held for that call, not until the process ends, so a
    /// prune through the same service removes a container created by an
    /// earlier request, as Docker's does. It also keeps a monitor process
    /// started ahead of the next container start.
    pub fn set_long_lived(&mut self) {
        self.long_lived = true;
    }

    /// Holds container `id` against prunes beside this call: in a command,
    /// until the command ends (a `run`'s create, start, wait and `--rm`
    /// are one span); in a long-lived engine, while the returned lease
    /// lives (the caller keeps it for the call).
    pub(crate) fn hold_container(&self, id: &str) -> Result<Option<berth_store::Lease<'_>>> {
        if self.long_lived {
            let lease = self.store.lease("container")?;
            lease.hold_container(id)?;
            Ok(Some(lease))
        } else {
            self.store.hold_for_process(berth_store::LeaseKind::Container, id)?;
            Ok(None)
        }
    }

    /// The OCI runtime asked for (`--runtime`), if any.
    pub fn runtime_choice(&self) -> Option<&str> {
        self.runtime.as_deref()
    }
}

/// The socket `berth system service` serves by default:
/// `/run/berth/berth.sock` as root; `$XDG_RUNTIME_DIR/berth/berth.sock`
/// (or `/run/user/UID/berth/berth.sock`) rootless.
pub fn default_api_socket() -> Result<PathBuf> {
    if !is_rootless() {
        return Ok(PathBuf::from("/run/berth/berth.sock"));
    }
    let runtime_dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            let d = PathBuf::from(format!("/run/user/{}", rustix::process::getuid().as_raw()));
            if !d.is_dir() {
                return Err(EngineError::invalid(format!(
                    "XDG_RUNTIME_DIR is not set and {} does not exist: give the socket's URI (unix:///PATH)",
                    d.display()
                )));
            }
            d
        }
    };
    Ok(runtime_dir.join("berth/berth.sock"))
}

/// `/var/lib/berth` as root, `$XDG_DATA_HOME/berth` (or `~/.local/share/berth`) otherwise.
pub fn default_root() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/berth");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("berth");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/share/berth")
}

/// Runs `f` where the engine may start and block on a network runtime of
/// its own: on this thread, or — when this thread is inside a tokio
/// runtime (an async front calling from async code, or from
/// `spawn_blocking`) — on a thread of its own, since tokio refuses to block
/// on a runtime from within one.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if berth_registry::tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    })
}

/// This host's CPU count (what `--cpus` is checked against).
pub fn host_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Whether this process runs without root (then berth is rootless).
pub fn is_rootless() -> bool {
    !rustix::process::geteuid().is_root()
}

/// RFC 3339 with nanoseconds and `Z`, as Docker (Go) writes times.
pub fn now_rfc3339() -> String {
    berth_store::config::rfc3339_go(chrono::Utc::now())
}
