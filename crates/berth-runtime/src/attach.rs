//! Attaching to a running container: the monitor's attach socket and the
//! client side that `run -it`, `start -a` and `attach` use.
//!
//! Every monitor listens on `attach.sock` in the container directory, a
//! unix `SOCK_SEQPACKET` socket (one message = one frame, so no framing
//! layer is needed). Any number of clients may be attached at once; each
//! gets the container's output from the moment it connects (no history:
//! `logs` has that), and each may write to the container's stdin.
//!
//! Frames are one tag byte and a payload:
//!
//! | from → to | tag | payload |
//! |---|---|---|
//! | monitor → client | `o` | bytes the container wrote to stdout (or its pty) |
//! | monitor → client | `e` | bytes the container wrote to stderr |
//! | monitor → client | `x` | the container's exit code, 4 bytes big-endian; the monitor closes the socket once it has nothing more to do |
//! | client → monitor | `i` | bytes for the container's stdin |
//! | client → monitor | `w` | the client's window size: rows, cols as two big-endian u16 |
//! | client → monitor | `c` | the client's stdin ended: close the container's stdin (pipes only) |
//! | client → monitor | `s` | a signal number (1 byte) for the container's process |
//!
//! Detaching (Ctrl-P Ctrl-Q by default, or `--detach-keys`) is the
//! client's business: it watches its own stdin for the sequence, and just
//! closes its connection; the container goes on under its monitor.
//!
//! The client's side works on the [`Streams`] it is given (the CLI's
//! terminal, a server's hijacked connection, a test's buffers): it never
//! touches this process's stdio, terminal modes or signal handlers.

use crate::error::{IoContext, Result, RuntimeError};
use crate::streams::{Control, Streams};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType};
use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;

/// The attach socket's name in the container directory.
pub const ATTACH_SOCKET: &str = "attach.sock";

/// Monitor → client: stdout (or pty) bytes.
pub const TAG_STDOUT: u8 = b'o';
/// Monitor → client: stderr bytes.
pub const TAG_STDERR: u8 = b'e';
/// Monitor → client: the exit code.
pub const TAG_EXIT: u8 = b'x';
/// Client → monitor: stdin bytes.
pub const TAG_STDIN: u8 = b'i';
/// Client → monitor: window size.
pub const TAG_RESIZE: u8 = b'w';
/// Client → monitor: stdin closed.
pub const TAG_CLOSE_STDIN: u8 = b'c';
/// Client → monitor: a signal.
pub const TAG_SIGNAL: u8 = b's';

/// Largest frame payload; bigger writes are split.
const MAX_PAYLOAD: usize = 32 * 1024;
/// A client with more than this queued stops the monitor reading the
/// container's output until it catches up (as a slow `docker attach` does).
const CLIENT_BACKLOG: usize = 1024 * 1024;

/// Runs `f` with a short path naming `name` in `dir`: unix socket paths
/// are limited to 108 bytes, and a container directory under a long
/// `--root` may be longer than that on its own. The path goes through
/// `/proc/self/fd/N`, so it works for bind and connect alike.
pub(crate) fn with_short_path<T>(dir: &Path, name: &str, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let d = rustix::fs::open(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| format!("opening {}", dir.display()))?;
    let p = format!("/proc/self/fd/{}/{name}", d.as_raw_fd());
    let r = f(Path::new(&p));
    drop(d);
    r
}

pub(crate) fn seqpacket() -> Result<OwnedFd> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .ctx(|| "creating the attach socket".to_string())
}

/// Sends one frame without blocking; `Ok(false)` when the socket is full.
fn send_frame(fd: BorrowedFd<'_>, frame: &[u8]) -> std::result::Result<bool, rustix::io::Errno> {
    match rustix::net::send(fd, frame, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
        Ok(_) => Ok(true),
        Err(rustix::io::Errno::AGAIN) => Ok(false),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(e),
    }
}

fn frame(tag: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(data.len() + 1);
    f.push(tag);
    f.extend_from_slice(data);
    f
}

/// What one client asked of the monitor.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Stdin(Vec<u8>),
    Resize { rows: u16, cols: u16 },
    CloseStdin,
    Signal(i32),
}

fn parse_request(msg: &[u8]) -> Option<Request> {
    let (&tag, rest) = msg.split_first()?;
    match tag {
        TAG_STDIN => Some(Request::Stdin(rest.to_vec())),
        TAG_RESIZE if rest.len() == 4 => Some(Request::Resize {
            rows: u16::from_be_bytes([rest[0], rest[1]]),
            cols: u16::from_be_bytes([rest[2], rest[3]]),
        }),
        TAG_CLOSE_STDIN => Some(Request::CloseStdin),
        TAG_SIGNAL if rest.len() == 1 => Some(Request::Signal(rest[0] as i32)),
        _ => None,
    }
}

struct Client {
    fd: OwnedFd,
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    /// Hung up or failed; removed by [`AttachServer::reap`].
    dead: bool,
}

impl Client {
    /// Hung up or failed: nothing more is queued for it or sent to it.
    fn mark_dead(&mut self) {
        self.dead = true;
        self.queue.clear();
        self.queued = 0;
    }
}

/// The monitor's side: the listening socket and its attached clients.
pub struct AttachServer {
    listener: OwnedFd,
    clients: Vec<Client>,
    /// Where requests are received (one buffer for every client).
    buf: Vec<u8>,
}

impl AttachServer {
    /// Listens on `attach.sock` in `dir` (a stale socket of an earlier
    /// monitor is replaced).
    pub fn bind(dir: &Path) -> Result<Self> {
        let listener = seqpacket()?;
        let _ = std::fs::remove_file(dir.join(ATTACH_SOCKET));
        with_short_path(dir, ATTACH_SOCKET, |p| {
            let addr = SocketAddrUnix::new(p).ctx(|| format!("attach socket path {}", p.display()))?;
            rustix::net::bind(&listener, &addr).ctx(|| format!("binding {}", dir.join(ATTACH_SOCKET).display()))
        })?;
        // Connecting needs write access: the store's owner only.
        berth_archive::perms::set_mode(&dir.join(ATTACH_SOCKET), berth_archive::perms::PRIVATE_FILE)
            .ctx(|| format!("chmod {}", dir.join(ATTACH_SOCKET).display()))?;
        rustix::net::listen(&listener, 16).ctx(|| "listening on the attach socket".to_string())?;
        Ok(AttachServer {
            listener,
            clients: Vec::new(),
            buf: vec![0u8; MAX_PAYLOAD + 16],
        })
    }

    /// The listening socket, to poll for new clients.
    pub fn listener(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Waits up to `timeout` for the first client (`run -it`, `start -a`:
    /// the CLI connects before the container starts, so it misses nothing).
    pub fn wait_first(&mut self, timeout: std::time::Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        while self.clients.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(RuntimeError::StartFailed {
                    code: crate::error::EXIT_ENGINE_FAILURE,
                    message: "no client attached to the container within the time allowed".into(),
                });
            }
            let ts = rustix::event::Timespec::try_from(left).ok();
            let mut fds = [PollFd::new(&self.listener, PollFlags::IN)];
            let _ = poll(&mut fds, ts.as_ref());
            self.accept();
        }
        Ok(())
    }

    /// Accepts every pending connection.
    pub fn accept(&mut self) {
        while let Ok(fd) = rustix::net::accept_with(&self.listener, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
            self.clients.push(Client {
                fd,
                queue: VecDeque::new(),
                queued: 0,
                dead: false,
            });
        }
    }

    /// Whether no client is attached.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The client sockets with what to poll each for.
    pub fn poll_set(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        self.clients
            .iter()
            .map(|c| {
                let mut f = PollFlags::IN;
                if !c.queue.is_empty() {
                    f |= PollFlags::OUT;
                }
                (c.fd.as_fd(), f)
            })
            .collect()
    }

    /// Whether some client is so far behind that output should wait.
    pub fn backlogged(&self) -> bool {
        self.clients.iter().any(|c| c.queued > CLIENT_BACKLOG)
    }

    /// Queues output (`TAG_STDOUT`/`TAG_STDERR`) for every client and
    /// sends what the sockets take now.
    pub fn broadcast(&mut self, tag: u8, data: &[u8]) {
        for chunk in data.chunks(MAX_PAYLOAD) {
            self.queue_all(&frame(tag, chunk));
        }
        self.flush_all();
    }

    /// Sends the exit code to every client.
    pub fn send_exit(&mut self, code: i32) {
        self.queue_all(&frame(TAG_EXIT, &code.to_be_bytes()));
        self.flush_all();
    }

    fn queue_all(&mut self, f: &[u8]) {
        for c in self.clients.iter_mut().filter(|c| !c.dead) {
            c.queued += f.len();
            c.queue.push_back(f.to_vec());
        }
    }

    /// Sends what the sockets take now. A client whose socket failed is
    /// only marked: [`Self::reap`] removes it after the poll round, so the
    /// indexes [`Self::service`] is given stay valid.
    fn flush_all(&mut self) {
        for c in self.clients.iter_mut().filter(|c| !c.dead) {
            if flush(c).is_err() {
                c.mark_dead();
            }
        }
    }

    /// Handles the events `poll` reported for client `i` (in the order of
    /// [`Self::poll_set`]): sends queued output, reads requests. Clients
    /// that hung up are dropped by [`Self::reap`].
    pub fn service(&mut self, i: usize, rev: PollFlags) -> Vec<Request> {
        let mut out = Vec::new();
        let Some(c) = self.clients.get_mut(i) else {
            return out;
        };
        let mut dead = false;
        if rev.contains(PollFlags::OUT) && flush(c).is_err() {
            dead = true;
        }
        if rev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            let buf = &mut self.buf;
            loop {
                match rustix::net::recv(&c.fd, &mut buf[..], RecvFlags::DONTWAIT) {
                    Ok((0, _)) => {
                        dead = true;
                        break;
                    }
                    Ok((n, _)) => {
                        if let Some(r) = parse_request(&buf[..n.min(buf.len())]) {
                            out.push(r);
                        }
                    }
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(rustix::io::Errno::AGAIN) => break,
                    Err(_) => {
                        dead = true;
                        break;
                    }
                }
            }
        }
        if dead {
            c.mark_dead();
        }
        out
    }

    /// Drops the clients that hung up (after a round of [`Self::service`]).
    pub fn reap(&mut self) {
        self.clients.retain(|c| !c.dead);
    }

    /// Sends what is queued, waiting up to `timeout` for slow clients
    /// (the last output and the exit code must reach them).
    pub fn drain(&mut self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            self.flush_all();
            if self.clients.iter().all(|c| c.queue.is_empty()) {
                return;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            let ts = rustix::event::Timespec::try_from(left.min(std::time::Duration::from_millis(50))).ok();
            let mut fds: Vec<PollFd> = self
                .clients
                .iter()
                .filter(|c| !c.queue.is_empty())
                .map(|c| PollFd::new(&c.fd, PollFlags::OUT))
                .collect();
            let _ = poll(&mut fds, ts.as_ref());
        }
    }

    /// Disconnects every client (the container will not come back for
    /// them: it is restarting, or the monitor is done).
    pub fn disconnect_all(&mut self) {
        self.drain(std::time::Duration::from_secs(2));
        self.clients.clear();
    }
}

impl Drop for AttachServer {
    fn drop(&mut self) {
        self.drain(std::time::Duration::from_secs(2));
    }
}

fn flush(c: &mut Client) -> std::result::Result<(), rustix::io::Errno> {
    while let Some(f) = c.queue.front() {
        if !send_frame(c.fd.as_fd(), f)? {
            return Ok(());
        }
        c.queued -= f.len();
        c.queue.pop_front();
    }
    Ok(())
}

/// Parses Docker's `--detach-keys` value: comma-separated keys, each a
/// single character or `ctrl-X` (X one of `a`–`z`, `@`, `[`, `\`, `]`,
/// `^`, `_`). Empty means the default, Ctrl-P Ctrl-Q.
pub fn parse_detach_keys(spec: &str) -> std::result::Result<Vec<u8>, String> {
    if spec.is_empty() {
        return Ok(vec![0x10, 0x11]);
    }
    let bad = || {
        format!(
            "invalid detach keys {spec:?}: use comma-separated keys, each a single character or ctrl-<a-z@[\\]^_> (e.g. ctrl-p,ctrl-q)"
        )
    };
    let mut out = Vec::new();
    for key in spec.split(',') {
        let lower = key.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(bad()),
            };
            out.push(b);
        } else if key.len() == 1 {
            out.push(key.as_bytes()[0]);
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}

/// Watches a byte stream for the detach sequence. Bytes that start the
/// sequence are held back until it is either complete (detach) or broken
/// (they are passed on after all).
#[derive(Debug)]
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> Self {
        DetachScanner { keys, matched: 0 }
    }

    /// Feeds input; returns the bytes to pass on, and whether the sequence
    /// completed (then the bytes after it are dropped, as Docker does).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // Broken: release what was held, then look at b afresh.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// How a client attaches.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    /// The detach sequence (see [`parse_detach_keys`]); only with a tty.
    pub detach_keys: Vec<u8>,
    /// Close the container's stdin when ours ends (`run -i`: Docker's StdinOnce).
    pub close_stdin_on_eof: bool,
}

/// How an attach session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachEnd {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach sequence; the container goes on.
    Detached,
    /// The caller's output is gone (a closed connection or pipe); the
    /// container goes on.
    Closed,
    /// The monitor went away without reporting an exit.
    Lost,
}

/// A connection to a container's monitor.
pub struct AttachClient {
    fd: OwnedFd,
}

impl AttachClient {
    /// Connects to the monitor of the container in `dir`.
    pub fn connect(dir: &Path) -> Result<Self> {
        let fd = seqpacket()?;
        with_short_path(dir, ATTACH_SOCKET, |p| {
            let addr = SocketAddrUnix::new(p).ctx(|| format!("attach socket path {}", p.display()))?;
            match rustix::net::connect(&fd, &addr) {
                Ok(()) | Err(rustix::io::Errno::INPROGRESS) => Ok(()),
                Err(e) => Err(RuntimeError::io(
                    format!(
                        "connecting to the container's monitor at {}",
                        dir.join(ATTACH_SOCKET).display()
                    ),
                    e.into(),
                )),
            }
        })?;
        // Blocking from here on: the session polls before each operation.
        let _ = rustix::io::ioctl_fionbio(&fd, false);
        Ok(AttachClient { fd })
    }

    fn send(&self, tag: u8, data: &[u8]) -> bool {
        rustix::net::send(&self.fd, &frame(tag, data), SendFlags::NOSIGNAL).is_ok()
    }

    /// Copies the container's output to `io`'s stdout/stderr and `io`'s
    /// stdin (if any) to the container, and passes on `io`'s window sizes
    /// and signals, until the container exits, the user detaches, the
    /// caller's output goes away, or the monitor does.
    pub fn session(self, opts: &AttachOptions, mut io: Streams) -> Result<AttachEnd> {
        let stdin = io.stdin_fd()?;
        let mut out = io.stdout.into_writer();
        let mut err = io.stderr.into_writer();
        let mut controls = io.controls.take();
        let mut scanner = DetachScanner::new(if io.tty { opts.detach_keys.clone() } else { Vec::new() });
        let mut stdin_open = stdin.is_some();
        let mut buf = vec![0u8; MAX_PAYLOAD + 16];
        let end = loop {
            let mut fds = vec![PollFd::new(&self.fd, PollFlags::IN)];
            if let Some(c) = &controls {
                fds.push(PollFd::from_borrowed_fd(c.fd(), PollFlags::IN));
            }
            let stdin_slot = fds.len();
            if let (Some(fd), true) = (&stdin, stdin_open) {
                fds.push(PollFd::new(fd, PollFlags::IN));
            }
            match poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(RuntimeError::io("waiting on the attach socket", e.into())),
            }
            let revs: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
            drop(fds);
            if let Some(c) = controls.as_mut().filter(|_| !revs[1].is_empty()) {
                let (msgs, closed) = c.drain();
                for m in msgs {
                    match m {
                        Control::Resize(s) => {
                            let mut p = s.rows.to_be_bytes().to_vec();
                            p.extend_from_slice(&s.cols.to_be_bytes());
                            self.send(TAG_RESIZE, &p);
                        }
                        Control::Signal(sig) => {
                            self.send(TAG_SIGNAL, &[sig as u8]);
                        }
                    }
                }
                if closed {
                    controls = None;
                }
            }
            if revs.len() > stdin_slot && !revs[stdin_slot].is_empty() {
                let fd = stdin.as_ref().expect("polled stdin is open");
                match rustix::io::read(fd, &mut buf[..MAX_PAYLOAD]) {
                    Ok(0) | Err(_) => {
                        stdin_open = false;
                        if opts.close_stdin_on_eof {
                            self.send(TAG_CLOSE_STDIN, &[]);
                        }
                    }
                    Ok(n) => {
                        let (pass, detach) = scanner.feed(&buf[..n]);
                        if !pass.is_empty() {
                            self.send(TAG_STDIN, &pass);
                        }
                        if detach {
                            break AttachEnd::Detached;
                        }
                    }
                }
            }
            if !revs[0].is_empty() {
                match rustix::net::recv(&self.fd, &mut buf, RecvFlags::empty()) {
                    Ok((0, _)) | Err(_) => {
                        break AttachEnd::Lost;
                    }
                    Ok((n, _)) => {
                        let msg = &buf[..n.min(buf.len())];
                        let written = match msg.split_first() {
                            Some((&TAG_STDOUT, d)) => out.write_all(d).and_then(|_| out.flush()),
                            Some((&TAG_STDERR, d)) => err.write_all(d).and_then(|_| err.flush()),
                            Some((&TAG_EXIT, d)) if d.len() == 4 => {
                                // The last frame a client gets (the monitor
                                // sends all output before it): the session is
                                // over now, not when the monitor has finished
                                // its cleanup (a `--rm` removal) and closes.
                                break AttachEnd::Exited(i32::from_be_bytes([d[0], d[1], d[2], d[3]]));
                            }
                            _ => Ok(()),
                        };
                        if written.is_err() {
                            break AttachEnd::Closed;
                        }
                    }
                }
            }
        };
        // Whatever still holds a copy of the socket (a stdin copy thread),
        // the monitor sees this client go now.
        let _ = rustix::net::shutdown(&self.fd, rustix::net::Shutdown::Both);
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![0x10, 0x11]);
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![0x10, 0x11]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-[,ctrl-_").unwrap(), vec![0, 27, 31]);
        assert!(parse_detach_keys("ctrl-").is_err());
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab")
            .unwrap_err()
            .to_string()
            .contains("ctrl-p,ctrl-q"));
    }

    #[test]
    fn scanner_holds_and_releases_partial_sequences() {
        let mut s = DetachScanner::new(vec![0x10, 0x11]);
        assert_eq!(s.feed(b"ab"), (b"ab".to_vec(), false));
        // A lone Ctrl-P is held back...
        assert_eq!(s.feed(&[0x10]), (vec![], false));
        // ...and released when the next key is not Ctrl-Q.
        assert_eq!(s.feed(b"x"), (vec![0x10, b'x'], false));
        // Ctrl-P Ctrl-P: the first is released, the second held.
        assert_eq!(s.feed(&[0x10, 0x10]), (vec![0x10], false));
        // The sequence split across reads completes; what follows is dropped.
        assert_eq!(s.feed(&[0x11, b'z']), (vec![], true));
        assert_eq!(s.feed(b"k"), (b"k".to_vec(), false));
        let mut one = DetachScanner::new(vec![b'q']);
        assert_eq!(one.feed(b"abq"), (b"ab".to_vec(), true));
        let mut none = DetachScanner::new(vec![]);
        assert_eq!(none.feed(&[0x10, 0x11]), (vec![0x10, 0x11], false));
    }

    #[test]
    fn requests_parse() {
        assert_eq!(parse_request(b"ihi"), Some(Request::Stdin(b"hi".to_vec())));
        assert_eq!(
            parse_request(&[TAG_RESIZE, 0, 24, 0, 80]),
            Some(Request::Resize { rows: 24, cols: 80 })
        );
        assert_eq!(parse_request(b"c"), Some(Request::CloseStdin));
        assert_eq!(parse_request(&[TAG_SIGNAL, 15]), Some(Request::Signal(15)));
        assert_eq!(parse_request(&[TAG_RESIZE, 1]), None);
        assert_eq!(parse_request(b""), None);
    }

    #[test]
    fn server_and_client_talk_over_a_long_path() {
        // A directory whose socket path is far over the 108-byte limit.
        let t = tempfile::tempdir().unwrap();
        let mut dir = t.path().to_path_buf();
        for _ in 0..6 {
            dir = dir.join("a-rather-long-directory-name-for-sockets");
        }
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = AttachServer::bind(&dir).unwrap();
        let client = AttachClient::connect(&dir).unwrap();
        server.wait_first(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(server.clients.len(), 1);
        assert!(client.send(TAG_STDIN, b"hello"));
        let mut fds = [PollFd::new(&server.clients[0].fd, PollFlags::IN)];
        poll(&mut fds, None).unwrap();
        let rev = fds[0].revents();
        let reqs = server.service(0, rev);
        assert_eq!(reqs, vec![Request::Stdin(b"hello".to_vec())]);
        server.broadcast(TAG_STDOUT, b"out");
        server.send_exit(3);
        let mut buf = [0u8; 64];
        let (n, _) = rustix::net::recv(&client.fd, &mut buf, RecvFlags::empty()).unwrap();
        assert_eq!(&buf[..n], b"oout");
        let (n, _) = rustix::net::recv(&client.fd, &mut buf, RecvFlags::empty()).unwrap();
        assert_eq!(&buf[..n], &[TAG_EXIT, 0, 0, 0, 3]);
    }
}
