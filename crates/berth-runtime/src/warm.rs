//! An early create: the OCI runtime's `create` of a container done ahead
//! of its start, while the client that created it gets ready to start it.
//!
//! A Docker API client runs a container as create, attach, wait, start:
//! between the answer to its create and its start request, milliseconds go
//! by in the client. A monitor spawned with [`crate::MonitorOptions::hold`]
//! uses them: it runs the runtime's `create` at once, then holds the
//! container created (its process waiting in the runtime's exec fifo, the
//! container still `created` for everyone) until it is told on
//! `warm.sock` in the container directory to start it (`go`: the start
//! then costs a message) or to let it go (`abort`, or [`HOLD_LIMIT`]
//! without a word: the runtime deletes what it created, and the container
//! is as if nothing had happened).
//!
//! Who holds [`lock`] decides: the engine takes it to hold a container,
//! to start one (held or not) and to let one go, so a start never races
//! the create ahead of it.

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::net::{RecvFlags, SendFlags, SocketAddrUnix, SocketFlags};

use crate::attach::{seqpacket, with_short_path};
use crate::error::{IoContext, Result, RuntimeError};
use crate::watch::poll_readable;

/// The socket a holding monitor listens on.
pub const WARM_SOCKET: &str = "warm.sock";
/// The lock file that orders holds, starts and their abandonment.
pub const WARM_LOCK: &str = "warm.lock";
/// How long a monitor holds a created container for its start.
pub const HOLD_LIMIT: Duration = Duration::from_secs(10);
/// How long a start waits for a holding monitor's word after `go`.
const REPLY_LIMIT: Duration = Duration::from_secs(30);

const GO: &[u8] = b"go";
const ABORT: &[u8] = b"abort";

/// The lock of one container's early create (released when dropped).
pub struct WarmLock {
    _file: std::fs::File,
}

/// Takes the lock of the container in `dir` for an early create (making
/// the lock file), waiting for whoever holds it.
pub fn lock(dir: &Path) -> Result<WarmLock> {
    let path = dir.join(WARM_LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        // The store's owner only, as everything in the store.
        .mode(berth_archive::perms::PRIVATE_FILE)
        .open(&path)
        .ctx(|| format!("opening {}", path.display()))?;
    take(file, &path)
}

/// [`lock`] for whoever comes after the create: None when the container
/// never had an early create (no lock file: nothing to wait for, and
/// nothing is written).
pub fn lock_if_any(dir: &Path) -> Result<Option<WarmLock>> {
    let path = dir.join(WARM_LOCK);
    match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(file) => take(file, &path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RuntimeError::io(format!("opening {}", path.display()), e)),
    }
}

fn take(file: std::fs::File, path: &Path) -> Result<WarmLock> {
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .ctx(|| format!("locking {}", path.display()))?;
    Ok(WarmLock { _file: file })
}

/// Whether a monitor holds the container in `dir` created for its start.
pub fn is_held(dir: &Path) -> bool {
    dir.join(WARM_SOCKET).exists()
}

/// How asking a holding monitor to start its container ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Released {
    /// It runs: its process's pid.
    Started(i32),
    /// No monitor held it (any more): start it the usual way, once the
    /// monitor that let it go is gone.
    NotHeld,
}

/// Tells the monitor holding the container in `dir` to start it; returns
/// once it runs, or the start's error as the monitor reports it.
pub fn release(dir: &Path) -> Result<Released> {
    let Some(fd) = connect(dir) else {
        return Ok(Released::NotHeld);
    };
    if rustix::net::send(&fd, GO, SendFlags::NOSIGNAL).is_err() {
        return Ok(Released::NotHeld);
    }
    let Some(reply) = receive(&fd, REPLY_LIMIT) else {
        return Ok(Released::NotHeld);
    };
    let line = reply.trim_end();
    if let Some(pid) = line.strip_prefix("ok ") {
        return Ok(Released::Started(pid.trim().parse().unwrap_or(0)));
    }
    let rest = line.strip_prefix("err ").unwrap_or(line);
    let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
    Err(RuntimeError::StartFailed {
        code: code.parse().unwrap_or(crate::error::EXIT_ENGINE_FAILURE),
        message: message.to_string(),
    })
}

/// Tells the monitor holding the container in `dir`, if any, to let it go;
/// true when one was told. The caller waits for that monitor's end.
pub fn abandon(dir: &Path) -> bool {
    match connect(dir) {
        Some(fd) => rustix::net::send(&fd, ABORT, SendFlags::NOSIGNAL).is_ok(),
        None => false,
    }
}

fn connect(dir: &Path) -> Option<OwnedFd> {
    if !is_held(dir) {
        return None;
    }
    let fd = seqpacket().ok()?;
    let connected = with_short_path(dir, WARM_SOCKET, |p| {
        let addr = SocketAddrUnix::new(p).ctx(|| format!("warm socket path {}", p.display()))?;
        rustix::net::connect(&fd, &addr).ctx(|| format!("connecting to {}", p.display()))
    });
    connected.ok()?;
    Some(fd)
}

/// One message from `fd` within `limit`; None on the end of the
/// connection (the monitor let go of the container, or died).
fn receive(fd: &OwnedFd, limit: Duration) -> Option<String> {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        if !poll_readable(fd, end.saturating_duration_since(Instant::now())) {
            return None;
        }
        match rustix::net::recv(fd, &mut buf, RecvFlags::DONTWAIT) {
            Ok((0, _)) => return None,
            Ok((n, _)) => return Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

/// What a holding monitor was told.
pub(crate) enum Told {
    /// Start it, and answer on this connection.
    Go(OwnedFd),
    /// Let it go (or nobody said anything in time).
    Abort,
}

/// The holding monitor's side of `warm.sock`.
pub(crate) struct Holder {
    listener: OwnedFd,
    path: std::path::PathBuf,
}

impl Holder {
    /// Listens on `warm.sock` in `dir` (a stale one is replaced).
    pub(crate) fn bind(dir: &Path) -> Result<Self> {
        let path = dir.join(WARM_SOCKET);
        let listener = seqpacket()?;
        let _ = std::fs::remove_file(&path);
        with_short_path(dir, WARM_SOCKET, |p| {
            let addr = SocketAddrUnix::new(p).ctx(|| format!("warm socket path {}", p.display()))?;
            rustix::net::bind(&listener, &addr).ctx(|| format!("binding {}", path.display()))
        })?;
        let holder = Holder { listener, path };
        // Connecting needs write access: the store's owner only.
        berth_archive::perms::set_mode(&holder.path, berth_archive::perms::PRIVATE_FILE)
            .ctx(|| format!("chmod {}", holder.path.display()))?;
        rustix::net::listen(&holder.listener, 4).ctx(|| "listening on the warm socket".to_string())?;
        Ok(holder)
    }

    /// Waits up to `limit` for a word. The socket is gone when this
    /// returns: whoever connects later finds nothing held.
    pub(crate) fn wait(self, limit: Duration) -> Told {
        let end = Instant::now() + limit;
        loop {
            if !poll_readable(&self.listener, end.saturating_duration_since(Instant::now())) {
                return Told::Abort;
            }
            let Ok(conn) = rustix::net::accept_with(&self.listener, SocketFlags::CLOEXEC) else {
                continue;
            };
            // The word follows the connection at once.
            match receive(&conn, Duration::from_secs(1)) {
                Some(w) if w.as_bytes() == GO => return Told::Go(conn),
                Some(w) if w.as_bytes() == ABORT => return Told::Abort,
                _ => continue,
            }
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A start on a thread, and the connection its `go` came on.
    fn go_from_a_starter(dir: &Path, holder: Holder) -> (std::thread::JoinHandle<Result<Released>>, OwnedFd) {
        let d = dir.to_path_buf();
        let starter = std::thread::spawn(move || release(&d));
        let Told::Go(conn) = holder.wait(Duration::from_secs(5)) else {
            panic!("the start's word was not go");
        };
        (starter, conn)
    }

    #[test]
    fn go_is_answered_on_its_connection_and_the_socket_goes() {
        let dir = tempfile::tempdir().unwrap();
        let holder = Holder::bind(dir.path()).unwrap();
        assert!(is_held(dir.path()));
        let (starter, conn) = go_from_a_starter(dir.path(), holder);
        assert!(!is_held(dir.path()), "the socket outlived the word");
        rustix::net::send(&conn, b"ok 42\n", SendFlags::NOSIGNAL).unwrap();
        assert_eq!(starter.join().unwrap().unwrap(), Released::Started(42));
    }

    #[test]
    fn a_failed_start_comes_back_with_its_code_and_message() {
        let dir = tempfile::tempdir().unwrap();
        let holder = Holder::bind(dir.path()).unwrap();
        let (starter, conn) = go_from_a_starter(dir.path(), holder);
        rustix::net::send(&conn, b"err 127 exec: \"nope\": not found\n", SendFlags::NOSIGNAL).unwrap();
        match starter.join().unwrap() {
            Err(RuntimeError::StartFailed { code, message }) => {
                assert_eq!(code, 127);
                assert_eq!(message, "exec: \"nope\": not found");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn abort_and_silence_let_go_and_a_start_then_finds_nothing_held() {
        let dir = tempfile::tempdir().unwrap();
        let holder = Holder::bind(dir.path()).unwrap();
        assert!(abandon(dir.path()));
        assert!(matches!(holder.wait(Duration::from_secs(5)), Told::Abort));
        assert!(!abandon(dir.path()));
        assert_eq!(release(dir.path()).unwrap(), Released::NotHeld);

        let holder = Holder::bind(dir.path()).unwrap();
        let t = Instant::now();
        assert!(matches!(holder.wait(Duration::from_millis(50)), Told::Abort));
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert!(!is_held(dir.path()));
    }

    #[test]
    fn a_start_whose_holder_dies_unanswered_finds_nothing_held() {
        let dir = tempfile::tempdir().unwrap();
        let holder = Holder::bind(dir.path()).unwrap();
        let (starter, conn) = go_from_a_starter(dir.path(), holder);
        drop(conn);
        assert_eq!(starter.join().unwrap().unwrap(), Released::NotHeld);
    }

    #[test]
    fn only_an_early_create_makes_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(lock_if_any(dir.path()).unwrap().is_none());
        assert!(!dir.path().join(WARM_LOCK).exists());
        drop(lock(dir.path()).unwrap());
        assert!(lock_if_any(dir.path()).unwrap().is_some());
    }

    #[test]
    fn the_lock_orders_two_takers() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let d = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let second = std::thread::spawn(move || {
            let _l = lock(&d).unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "taken twice");
        drop(first);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        second.join().unwrap();
    }
}
