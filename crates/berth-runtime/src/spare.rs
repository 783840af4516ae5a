//! A monitor process started before its container: a long-lived front (the
//! API service) keeps one ready, so a start hands it a container instead
//! of paying for a fork and an exec of the monitor program while the
//! client waits.
//!
//! The spare is the monitor program run with [`SPARE_DIR`] in place of the
//! container directory: it has done its process start-up and blocks on
//! its stdin. The front writes the container directory there as one line
//! (after writing `monitor.json`, as for any monitor); from then on it is
//! that container's monitor, exactly as if it had been started with the
//! directory as its argument. End of input (the front went away, or
//! dropped its spare) makes it exit without touching anything.
//!
//! Its command line stays `… __monitor -` for its whole life; the
//! container's `state.json` names its monitor (`monitor_pid`).

use std::io::{BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use crate::error::Result;
use crate::monitor::{await_monitor, launch_monitor, write_monitor_options, MonitorOptions};

/// The container directory argument that makes a monitor program a spare.
pub const SPARE_DIR: &str = "-";

/// The environment variable naming the runtime program a spare copies
/// ahead (see [`SpareMonitor::spawn`]).
const SPARE_RUNTIME_ENV: &str = "BERTH_SPARE_RUNTIME";

/// A monitor program started ahead of need, waiting for its container.
pub struct SpareMonitor {
    child: Option<Child>,
    ready: Option<std::fs::File>,
}

impl SpareMonitor {
    /// Starts `exe args… -` as a spare, with the same session, stdio and
    /// readiness pipe as [`crate::spawn_monitor`] gives a monitor. With
    /// `runtime`, the spare makes its sealed copy of that runtime program
    /// while it waits (see `crate::oci`), instead of in its container's
    /// start.
    pub fn spawn(exe: &Path, args: &[String], runtime: Option<&Path>) -> Result<SpareMonitor> {
        let env = runtime.map(|r| (SPARE_RUNTIME_ENV, r.as_os_str()));
        let (child, ready) = launch_monitor(exe, args, SPARE_DIR.as_ref(), Stdio::piped(), env)?;
        Ok(SpareMonitor {
            child: Some(child),
            ready: Some(ready),
        })
    }

    /// Whether the spare is still there to take a container (it may have
    /// been killed since it started).
    pub fn is_alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Makes the spare the monitor of the container in `container_dir`, as
    /// [`crate::spawn_monitor_with`] does with a new process. [`Declined`]
    /// when the spare could not take the container (it is gone): the
    /// caller starts a monitor the usual way.
    pub fn take(
        mut self,
        container_dir: &Path,
        opts: &MonitorOptions,
        on_listening: &mut dyn FnMut() -> Result<()>,
    ) -> std::result::Result<Result<u32>, Declined> {
        if let Err(e) = write_monitor_options(container_dir, opts) {
            return Ok(Err(e));
        }
        let mut child = self.child.take().expect("a spare is taken once");
        let ready = self.ready.take().expect("a spare is taken once");
        let mut line = container_dir.as_os_str().as_bytes().to_vec();
        line.push(b'\n');
        // Its stdin is closed once the line is in: nothing more is sent.
        let sent = child.stdin.take().is_some_and(|mut w| w.write_all(&line).is_ok());
        if !sent {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Declined);
        }
        Ok(await_monitor(container_dir, child, ready, on_listening))
    }
}

/// A spare that could not take its container (it had exited).
#[derive(Debug)]
pub struct Declined;

impl Drop for SpareMonitor {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // End of input: an unused spare exits at once.
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// In a spare monitor's process: blocks until the front names the
/// container directory on stdin; None when the input ends first (no
/// container came: the spare ends). Stdin is /dev/null afterwards, as a
/// monitor started with its directory has it.
pub fn await_container_dir() -> Option<PathBuf> {
    if let Some(runtime) = std::env::var_os(SPARE_RUNTIME_ENV) {
        crate::oci::prepare_sealed_copy(Path::new(&runtime));
    }
    let mut line = Vec::new();
    let read = std::io::stdin().lock().read_until(b'\n', &mut line);
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = rustix::stdio::dup2_stdin(&null);
    }
    match read {
        Ok(_) if line.last() == Some(&b'\n') => {
            line.pop();
            (!line.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(&line)))
        }
        _ => None,
    }
}

/// One spare kept ready for a long-lived front: [`SpareKeeper::take`]
/// hands out the spare there is, if it is alive, and starts the next one
/// on a thread beside (one at a time, so a burst of starts does not start
/// a burst of spares).
#[derive(Default)]
pub struct SpareKeeper {
    inner: std::sync::Arc<Keeper>,
}

#[derive(Default)]
struct Keeper {
    spare: std::sync::Mutex<Option<SpareMonitor>>,
    refilling: std::sync::atomic::AtomicBool,
}

impl SpareKeeper {
    /// The spare for a start now, if there is a live one; starts the next
    /// (`exe args… -`, copying `runtime` ahead) unless one is being
    /// started already.
    pub fn take(&self, exe: &Path, args: &[String], runtime: Option<&Path>) -> Option<SpareMonitor> {
        use std::sync::atomic::Ordering::SeqCst;
        let taken = self.inner.spare.lock().ok().and_then(|mut s| s.take());
        if !self.inner.refilling.swap(true, SeqCst) {
            let inner = self.inner.clone();
            let (exe, args) = (exe.to_path_buf(), args.to_vec());
            let runtime = runtime.map(Path::to_path_buf);
            let started = std::thread::Builder::new().name("spare-monitor".into()).spawn(move || {
                if let Ok(spare) = SpareMonitor::spawn(&exe, &args, runtime.as_deref()) {
                    if let Ok(mut s) = inner.spare.lock() {
                        s.get_or_insert(spare);
                    }
                }
                inner.refilling.store(false, SeqCst);
            });
            if started.is_err() {
                self.inner.refilling.store(false, SeqCst);
            }
        }
        taken.and_then(|mut s| s.is_alive().then_some(s))
    }
}
