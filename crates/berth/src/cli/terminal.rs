//! The CLI's terminal as streams for the engine: this process's stdin,
//! stdout and stderr (as file descriptors, so a terminal stays a terminal),
//! raw mode while a tty container is attached, and a thread that turns the
//! signals this process receives into the engine's control messages (window
//! size changes, signals for the container).
//!
//! This is the only place that touches the terminal's modes or installs
//! signal handlers for a container session; the engine works on the
//! [`Streams`] it is given.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};

use berth_engine::streams::{control_channel, ConsoleSize, ControlSender, StreamIn, StreamOut, Streams};
use berth_runtime::term::{winsize, RawTerminal, SignalPipe};

/// A duplicate of one of this process's standard fds.
fn dup_std(fd: i32) -> Result<OwnedFd> {
    // SAFETY: fds 0, 1 and 2 stay open for the life of the process.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_dupfd_cloexec(b, 3).with_context(|| format!("duplicating fd {fd}"))
}

/// This terminal's window size, if stdin or stdout is one.
pub fn console_size() -> Option<ConsoleSize> {
    winsize().filter(|w| w.ws_row > 0 && w.ws_col > 0).map(|w| ConsoleSize {
        rows: w.ws_row,
        cols: w.ws_col,
    })
}

/// How this process's signals reach the container while attached.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// Window size changes and SIGINT, SIGTERM, … go to the container.
    Proxy,
    /// Window size changes only; SIGINT and the like are this process's own
    /// (`attach --sig-proxy=false`: Ctrl-C ends the client, not the container).
    Own,
}

/// A session on this process's terminal: the streams for the engine, and
/// what must be undone when it ends (raw mode, signal handlers). Dropping
/// it undoes them.
pub struct Terminal {
    raw: Arc<Mutex<Option<RawTerminal>>>,
    signals: Option<(Arc<SignalPipe>, OwnedFd, std::thread::JoinHandle<()>)>,
}

impl Terminal {
    /// Streams over this process's stdio: stdin only when `stdin`, a tty
    /// container's terminal in raw mode when `raw` (and stdin is a
    /// terminal), signals forwarded as `signals` says.
    pub fn open(stdin: bool, tty: bool, raw: bool, signals: Signals) -> Result<(Terminal, Streams)> {
        let (tx, rx) = control_channel().context("creating the control channel")?;
        let raw = Arc::new(Mutex::new(if raw { RawTerminal::enter() } else { None }));
        let size = console_size();
        if let (true, Some(s)) = (tty, size) {
            tx.resize(s.rows, s.cols);
        }
        let signals = Some(forward_signals(tx, tty, signals, raw.clone())?);
        let streams = Streams {
            stdin: if stdin { Some(StreamIn::Fd(dup_std(0)?)) } else { None },
            stdout: StreamOut::Fd(dup_std(1)?),
            stderr: StreamOut::Fd(dup_std(2)?),
            tty,
            controls: Some(rx),
            console_size: size,
        };
        Ok((Terminal { raw, signals }, streams))
    }

    /// Streams over this process's stdio with nothing else: the runtime
    /// handles a terminal it is given as its own (`exec`).
    pub fn plain(stdin: bool, tty: bool) -> Result<Streams> {
        Ok(Streams {
            stdin: if stdin { Some(StreamIn::Fd(dup_std(0)?)) } else { None },
            stdout: StreamOut::Fd(dup_std(1)?),
            stderr: StreamOut::Fd(dup_std(2)?),
            tty,
            controls: None,
            console_size: console_size(),
        })
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some((pipe, stop, thread)) = self.signals.take() {
            drop(stop); // the thread sees its end of the stop pipe close
            let _ = thread.join();
            drop(pipe); // the handlers go back to what they were
        }
        drop(self.raw.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

/// Installs the signal pipe and a thread that turns what arrives into
/// control messages; returns the pipe, the stop fd (drop it to end the
/// thread) and the thread.
fn forward_signals(
    tx: ControlSender,
    tty: bool,
    mode: Signals,
    raw: Arc<Mutex<Option<RawTerminal>>>,
) -> Result<(Arc<SignalPipe>, OwnedFd, std::thread::JoinHandle<()>)> {
    let pipe = Arc::new(SignalPipe::install().context("installing signal handlers")?);
    let (stop_r, stop_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("creating a pipe")?;
    let p = pipe.clone();
    let thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            use rustix::event::{poll, PollFd, PollFlags};
            let mut fds = [
                PollFd::from_borrowed_fd(p.read.as_fd(), PollFlags::IN),
                PollFd::new(&stop_r, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => return,
            }
            if !fds[1].revents().is_empty() {
                return;
            }
            if fds[0].revents().is_empty() {
                continue;
            }
            for sig in p.drain() {
                if sig == libc::SIGWINCH {
                    if let (true, Some(s)) = (tty, console_size()) {
                        tx.resize(s.rows, s.cols);
                    }
                } else if mode == Signals::Proxy {
                    tx.signal(sig);
                } else if p.was_default(sig) {
                    // Not proxied: the signal is this client's own. The
                    // terminal is restored before it ends us.
                    drop(raw.lock().unwrap_or_else(|p| p.into_inner()).take());
                    p.reraise(sig);
                }
                // (One our caller ignored stays ignored: the session goes on.)
            }
        })
        .context("starting the signal thread")?;
    Ok((pipe, stop_w, thread))
}
