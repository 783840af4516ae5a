//! A terminal's side, for a front that has one (the CLI): raw mode, the
//! window size, and the signals a foreground run or an attach session
//! passes on to the container (through a control channel, see
//! [`crate::streams`]). The runtime's own sessions never call these: they
//! work on the streams they are given.

use crate::error::{IoContext, Result};
use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// This process's terminal window size (from stdin or stdout).
pub fn winsize() -> Option<rustix::termios::Winsize> {
    for fd in [0, 1] {
        // SAFETY: fds 0 and 1 stay open for the life of the process.
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        if let Ok(ws) = rustix::termios::tcgetwinsize(b) {
            return Some(ws);
        }
    }
    None
}

/// Puts the controlling terminal (stdin) in raw mode; restores it on drop.
pub struct RawTerminal(rustix::termios::Termios);

impl RawTerminal {
    pub fn enter() -> Option<Self> {
        // SAFETY: fd 0 stays open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(0) };
        if !rustix::termios::isatty(fd) {
            return None;
        }
        let saved = rustix::termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: fd 0 stays open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(0) };
        let _ = rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &self.0);
    }
}

/// Self-pipe for the signals a foreground run (or an attach session)
/// forwards to the container.
pub struct SignalPipe {
    pub read: OwnedFd,
    _write: OwnedFd,
    saved: Vec<(i32, libc::sigaction)>,
}

static SIGNAL_WRITE_FD: AtomicI32 = AtomicI32::new(-1);
pub const FORWARDED: &[i32] = &[
    libc::SIGWINCH,
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local byte.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

impl SignalPipe {
    pub fn install() -> Result<Self> {
        let (read, write) = pipe()?;
        let _ = rustix::io::ioctl_fionbio(&write, true);
        SIGNAL_WRITE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        let mut saved = Vec::new();
        for &sig in FORWARDED {
            // SAFETY: a zeroed sigaction is a valid "default" value that we fill in;
            // sigaction(2) receives valid pointers to locals; the handler only calls
            // async-signal-safe write(2).
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut old) == 0 {
                    saved.push((sig, old));
                }
            }
        }
        Ok(SignalPipe {
            read,
            _write: write,
            saved,
        })
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for (sig, old) in &self.saved {
            // SAFETY: restores a disposition previously returned by sigaction(2).
            unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
        }
        SIGNAL_WRITE_FD.store(-1, Ordering::Relaxed);
    }
}

impl SignalPipe {
    /// Delivers `sig` to this process as if no handler had been installed
    /// for it: its earlier disposition comes back first (so a signal the
    /// caller ignored stays ignored).
    /// Whether `sig` had its default action before this pipe took it over
    /// (so that [`Self::reraise`] ends the process, for the signals forwarded
    /// here); false when the caller ignored it or had a handler.
    pub fn was_default(&self, sig: i32) -> bool {
        self.saved
            .iter()
            .find(|(s, _)| *s == sig)
            .is_some_and(|(_, old)| old.sa_sigaction == libc::SIG_DFL)
    }

    pub fn reraise(&self, sig: i32) {
        if let Some((_, old)) = self.saved.iter().find(|(s, _)| *s == sig) {
            // SAFETY: restores a disposition sigaction(2) returned, then
            // raises a signal number we received.
            unsafe {
                libc::sigaction(sig, old, std::ptr::null_mut());
                libc::raise(sig);
            }
        }
    }

    /// The signals delivered since the last call (non-blocking).
    pub fn drain(&self) -> Vec<i32> {
        let mut sb = [0u8; 16];
        let n = rustix::io::read(&self.read, &mut sb).unwrap_or(0);
        sb[..n].iter().map(|s| *s as i32).collect()
    }
}

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ctx(|| "creating a pipe".to_string())
}

/// Records the caller's window size as the bundle's initial console size
/// (`process.consoleSize` in `config.json`), so a `-t` container starts
/// with the right size instead of 0×0 until the first resize. Without a
/// size, any size from an earlier start is removed.
pub fn set_console_size(bundle_dir: &std::path::Path, size: Option<crate::streams::ConsoleSize>) -> Result<()> {
    let mut spec = crate::exec::load_spec_json(bundle_dir)?;
    let Some(process) = spec.get_mut("process").and_then(|p| p.as_object_mut()) else {
        return Ok(());
    };
    match size.filter(|s| s.rows > 0 && s.cols > 0) {
        Some(s) => {
            process.insert(
                "consoleSize".into(),
                serde_json::json!({"height": s.rows, "width": s.cols}),
            );
        }
        None => {
            if process.remove("consoleSize").is_none() {
                return Ok(());
            }
        }
    }
    crate::exec::save_spec_json(bundle_dir, &spec)
}
