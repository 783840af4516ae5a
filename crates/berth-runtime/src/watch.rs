//! Being woken instead of polling: by changes in a container's directory
//! (inotify) and by the end of a process (pidfd).
//!
//! `wait`, `logs -f` and the end of an attach session used to look at the
//! container's state every 50–100 ms: a container that exits in a few
//! milliseconds then seemed to take tens of them more. The monitor writes
//! every state change by renaming `state.json` into place, appends to
//! `ctr.log`, and the container's directory goes away when it is removed;
//! an inotify watch on the directory sees all three. A monitor's exit is
//! seen on a pidfd.
//!
//! Both are wake-ups, never the truth: a caller re-reads the state after
//! each wake and keeps a bounded wait, so an event that is missed (a
//! watch that could not be added, inotify's queue overflowing) costs at
//! most that bound, never a hang.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

/// The longest a wait sleeps without an event before it looks again.
pub const FALLBACK: Duration = Duration::from_millis(250);

/// An inotify watch on one directory: [`DirWatch::wait`] returns when
/// anything in it changes (a file written, renamed into place, created or
/// removed) or it is itself removed or moved.
pub struct DirWatch {
    fd: Option<OwnedFd>,
    /// Wake only for these files (and a deletion, or the directory's own
    /// end); None: for anything.
    only: Option<&'static [&'static str]>,
}

impl DirWatch {
    /// Watches `dir`. Never fails: without a watch (no inotify instances
    /// left, the directory gone) every wait sleeps its whole timeout, as
    /// polling did.
    pub fn new(dir: &Path) -> DirWatch {
        let mask = WatchFlags::MODIFY | WatchFlags::MOVED_FROM | WatchFlags::CREATE | FILE_DONE;
        DirWatch {
            fd: watch(dir, mask),
            only: None,
        }
    }

    /// [`Self::new`] woken only when one of the files `names` is written
    /// or renamed into place, when anything in the directory is deleted,
    /// or when the directory itself goes: a wait for the container's state
    /// sleeps through its output being logged.
    pub fn for_files(dir: &Path, names: &'static [&'static str]) -> DirWatch {
        // Not even woken by a write to a file kept open (the log).
        DirWatch {
            fd: watch(dir, FILE_DONE),
            only: Some(names),
        }
    }

    /// Whether the directory is watched (false: waits are plain sleeps).
    pub fn is_watching(&self) -> bool {
        self.fd.is_some()
    }

    /// Sleeps until something changes in the directory or `timeout`
    /// passes; true when woken by a change. Reads away every pending
    /// event, so the next wait waits for a new one.
    pub fn wait(&self, timeout: Duration) -> bool {
        let Some(fd) = &self.fd else {
            std::thread::sleep(timeout);
            return false;
        };
        let Some(names) = self.only else {
            let woken = poll_readable(fd, timeout);
            if woken {
                drain(fd);
            }
            return woken;
        };
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || !poll_readable(fd, left) {
                return false;
            }
            if any_of(fd, names) {
                return true;
            }
        }
    }
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            close_later(fd);
        }
    }
}

/// Closes an inotify instance on the process's closer thread. Closing one
/// that held a watch waits for the kernel's SRCU grace period (the
/// fsnotify group's teardown): 5 to 15 ms, one close in three or so on
/// this machine. A `wait` that just saw its container go would otherwise
/// answer that much later; the API service answered `docker run --rm`'s
/// wait up to 15 ms late this way. Without the thread (it could not be
/// started) the close happens here.
fn close_later(fd: OwnedFd) {
    use std::sync::mpsc::{channel, Sender};
    use std::sync::OnceLock;
    static CLOSER: OnceLock<Option<Sender<OwnedFd>>> = OnceLock::new();
    let tx = CLOSER.get_or_init(|| {
        let (tx, rx) = channel::<OwnedFd>();
        std::thread::Builder::new()
            .name("inotify-close".into())
            .spawn(move || rx.into_iter().for_each(drop))
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = tx {
        // A send fails only if the thread is gone: the fd comes back and
        // is closed here.
        let _ = tx.send(fd);
    }
}

/// Reads every queued event (their content does not matter: the caller
/// looks at the directory again).
fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = rustix::io::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// What every watch wakes for: a file written and closed or renamed into
/// place, a deletion, the directory's own end.
const FILE_DONE: WatchFlags = WatchFlags::CLOSE_WRITE
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::DELETE)
    .union(WatchFlags::DELETE_SELF)
    .union(WatchFlags::MOVE_SELF);

/// An inotify instance watching `dir` for `mask`; None when it cannot be
/// had (see [`DirWatch::new`]).
fn watch(dir: &Path, mask: WatchFlags) -> Option<OwnedFd> {
    let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ok()?;
    inotify::add_watch(&fd, dir, mask).ok()?;
    Some(fd)
}

/// Reads every queued event; whether one is about a file in `names`, a
/// deletion, the directory's own end or an overflow of the queue.
fn any_of(fd: &OwnedFd, names: &[&str]) -> bool {
    use std::mem::MaybeUninit;
    let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
    let mut reader = inotify::Reader::new(fd, &mut buf);
    let mut hit = false;
    loop {
        let ev = match reader.next() {
            Ok(ev) => ev,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return hit,
        };
        let flags = ev.events();
        if flags.intersects(
            inotify::ReadFlags::DELETE
                | inotify::ReadFlags::DELETE_SELF
                | inotify::ReadFlags::MOVE_SELF
                | inotify::ReadFlags::IGNORED
                | inotify::ReadFlags::QUEUE_OVERFLOW,
        ) {
            hit = true;
        } else if let Some(name) = ev.file_name().and_then(|n| n.to_str().ok()) {
            hit |= names.contains(&name);
        }
    }
}

/// Polls one fd for input, retrying on EINTR until `timeout`.
pub(crate) fn poll_readable(fd: &OwnedFd, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let ts = Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) => return n > 0,
            Err(rustix::io::Errno::INTR) if !left.is_zero() => continue,
            Err(_) => return false,
        }
    }
}

/// Blocks until the process `pid` (started at `start`, in clock ticks
/// since boot as [`crate::state::process_start_time`] reads it; 0: any)
/// has exited, or `timeout` passes; true when it is gone. Woken by a pidfd
/// as the process ends (a zombie counts as ended), so no time is lost to
/// polling.
pub fn wait_process_exit(pid: i32, start: u64, timeout: Duration) -> bool {
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return true;
    };
    let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) else {
        // ESRCH: no such process.
        return true;
    };
    // The pidfd pins one process: if its start time differs, the pid was
    // reused and the one waited for is long gone.
    if start != 0 && crate::state::process_start_time(pid) != Some(start) {
        return true;
    }
    poll_readable(&fd, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rename_into_the_directory_wakes_the_watch() {
        let d = tempfile::tempdir().unwrap();
        let w = DirWatch::new(d.path());
        assert!(w.is_watching());
        assert!(!w.wait(Duration::from_millis(1)), "nothing changed yet");
        let p = d.path().to_path_buf();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::write(p.join("state.json.tmp"), b"{}").unwrap();
            std::fs::rename(p.join("state.json.tmp"), p.join("state.json")).unwrap();
        });
        assert!(w.wait(Duration::from_secs(30)));
        t.join().unwrap();
    }

    #[test]
    fn a_filtered_watch_sleeps_through_other_files() {
        let d = tempfile::tempdir().unwrap();
        let w = DirWatch::for_files(d.path(), &["state.json"]);
        std::fs::write(d.path().join("ctr.log"), b"output").unwrap();
        assert!(!w.wait(Duration::from_millis(50)), "woken by another file");
        let p = d.path().to_path_buf();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::write(p.join("state.json.tmp"), b"{}").unwrap();
            std::fs::rename(p.join("state.json.tmp"), p.join("state.json")).unwrap();
        });
        assert!(w.wait(Duration::from_secs(5)), "not woken by the state");
        t.join().unwrap();
        std::fs::remove_file(d.path().join("ctr.log")).unwrap();
        assert!(w.wait(Duration::from_secs(5)), "not woken by a deletion");
    }

    #[test]
    fn removing_the_directory_wakes_the_watch() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("c");
        std::fs::create_dir(&sub).unwrap();
        let w = DirWatch::new(&sub);
        std::fs::remove_dir(&sub).unwrap();
        assert!(w.wait(Duration::from_secs(30)));
    }

    #[test]
    fn a_child_that_exits_is_seen_at_once() {
        let mut child = std::process::Command::new("sleep").arg("0.05").spawn().unwrap();
        let pid = child.id() as i32;
        let start = crate::state::process_start_time(pid).unwrap();
        assert!(wait_process_exit(pid, start, Duration::from_secs(30)));
        child.wait().unwrap();
        assert!(wait_process_exit(pid, start, Duration::from_millis(1)), "reaped: gone");
    }
}
