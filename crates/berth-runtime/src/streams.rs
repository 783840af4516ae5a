//! The caller's side of a container's stdio, passed in: where its output
//! goes, where its input comes from, and a control channel for window
//! sizes and signals. The CLI passes its own terminal; an API server passes
//! a hijacked connection; a test passes in-memory buffers.
//!
//! Nothing in this crate reads this process's fd 0/1/2 or installs signal
//! handlers for an attach, a foreground run or an exec: everything comes
//! through a [`Streams`] value (the CLI does the terminal part itself).
//!
//! The control channel is a pipe of fixed-size records, so any number of
//! [`ControlSender`]s (a signal thread, a resize handler) can write to it
//! from any thread, and the session polls it like any other fd.

use crate::error::{IoContext, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::io::{Read, Write};
use std::sync::Arc;

/// Where a container's input comes from.
pub enum StreamIn {
    /// A file descriptor (a terminal, a pipe, a socket), read directly.
    Fd(OwnedFd),
    /// Any reader; a thread copies it into a pipe the session reads.
    Reader(Box<dyn Read + Send>),
}

/// Where a container's output goes.
pub enum StreamOut {
    /// A file descriptor, written directly (or handed to the runtime).
    Fd(OwnedFd),
    /// Any writer (a buffer, a multiplexing writer over a socket).
    Writer(Box<dyn Write + Send>),
}

impl StreamOut {
    /// As a writer (an fd becomes an unbuffered file).
    pub fn into_writer(self) -> Box<dyn Write + Send> {
        match self {
            StreamOut::Fd(fd) => Box::new(std::fs::File::from(fd)),
            StreamOut::Writer(w) => w,
        }
    }
}

/// A window size, in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// A container's stdio as the caller provides it.
pub struct Streams {
    /// Input for the container; `None`: it gets none.
    pub stdin: Option<StreamIn>,
    /// The container's stdout (everything, with a tty).
    pub stdout: StreamOut,
    /// The container's stderr (unused with a tty: a terminal has one output).
    pub stderr: StreamOut,
    /// The process has a terminal (a pty) rather than pipes.
    pub tty: bool,
    /// Window sizes and signals for the container, while attached.
    pub controls: Option<ControlReceiver>,
    /// The caller's window size when it starts (a tty container starts
    /// with it instead of 0×0).
    pub console_size: Option<ConsoleSize>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("stdin", &self.stdin.is_some())
            .field("tty", &self.tty)
            .field("controls", &self.controls.is_some())
            .field("console_size", &self.console_size)
            .finish()
    }
}

impl Streams {
    /// Output to `stdout` and `stderr`, no input, no terminal, no controls.
    pub fn output(stdout: StreamOut, stderr: StreamOut) -> Self {
        Streams {
            stdin: None,
            stdout,
            stderr,
            tty: false,
            controls: None,
            console_size: None,
        }
    }

    /// Input as a pollable fd: an fd as it is; a reader through a pipe a
    /// thread fills (the thread ends at the reader's end, or when the
    /// pipe's reading end is closed).
    pub fn stdin_fd(&mut self) -> Result<Option<OwnedFd>> {
        match self.stdin.take() {
            None => Ok(None),
            Some(StreamIn::Fd(fd)) => Ok(Some(fd)),
            Some(StreamIn::Reader(r)) => Ok(Some(reader_pipe(r)?)),
        }
    }
}

/// A pipe whose reading end gives what `r` reads (filled by a thread).
pub fn reader_pipe(mut r: Box<dyn Read + Send>) -> Result<OwnedFd> {
    let (rd, wr) = crate::term::pipe()?;
    std::thread::Builder::new()
        .name("stdin-copy".into())
        .spawn(move || {
            let mut w = std::fs::File::from(wr);
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                // A closed reading end (the session is over) ends the copy.
                if w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        })
        .ctx(|| "starting the stdin copy".to_string())?;
    Ok(rd)
}

/// One message on a control channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// The caller's window is this size now.
    Resize(ConsoleSize),
    /// Deliver this signal to the container's process.
    Signal(i32),
}

const RECORD: usize = 5;

impl Control {
    fn encode(self) -> [u8; RECORD] {
        match self {
            Control::Resize(s) => {
                let r = s.rows.to_be_bytes();
                let c = s.cols.to_be_bytes();
                [b'w', r[0], r[1], c[0], c[1]]
            }
            Control::Signal(sig) => {
                let b = (sig.clamp(0, 255) as u8).to_be_bytes();
                [b's', b[0], 0, 0, 0]
            }
        }
    }

    fn decode(r: &[u8]) -> Option<Control> {
        match r {
            [b'w', a, b, c, d] => Some(Control::Resize(ConsoleSize {
                rows: u16::from_be_bytes([*a, *b]),
                cols: u16::from_be_bytes([*c, *d]),
            })),
            [b's', s, ..] => Some(Control::Signal(*s as i32)),
            _ => None,
        }
    }
}

/// Sends window sizes and signals to a session; cloneable, usable from
/// any thread (a signal-forwarding thread, an HTTP resize handler).
#[derive(Clone)]
pub struct ControlSender(Arc<OwnedFd>);

/// The session's end of a control channel.
pub struct ControlReceiver {
    fd: OwnedFd,
    partial: Vec<u8>,
}

/// A new control channel.
pub fn control_channel() -> Result<(ControlSender, ControlReceiver)> {
    let (r, w) = crate::term::pipe()?;
    let _ = rustix::io::ioctl_fionbio(&r, true);
    Ok((
        ControlSender(Arc::new(w)),
        ControlReceiver {
            fd: r,
            partial: Vec::new(),
        },
    ))
}

impl ControlSender {
    /// Sends `c`; false when the session is gone.
    pub fn send(&self, c: Control) -> bool {
        // A record is far smaller than PIPE_BUF: written whole, never interleaved.
        rustix::io::write(&*self.0, &c.encode()).is_ok()
    }

    /// The window is `rows` × `cols` now.
    pub fn resize(&self, rows: u16, cols: u16) -> bool {
        self.send(Control::Resize(ConsoleSize { rows, cols }))
    }

    /// Deliver `sig` to the container's process.
    pub fn signal(&self, sig: i32) -> bool {
        self.send(Control::Signal(sig))
    }
}

impl ControlReceiver {
    /// The fd to poll for messages.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The messages waiting (non-blocking), and whether every sender is
    /// gone (then the channel can be dropped from the poll set).
    pub fn drain(&mut self) -> (Vec<Control>, bool) {
        let mut buf = [0u8; RECORD * 64];
        let mut closed = false;
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => self.partial.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let whole = self.partial.len() / RECORD * RECORD;
        let out = self.partial[..whole]
            .chunks(RECORD)
            .filter_map(Control::decode)
            .collect();
        self.partial.drain(..whole);
        (out, closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_arrive_whole_and_in_order() {
        let (tx, mut rx) = control_channel().unwrap();
        let tx2 = tx.clone();
        assert!(tx.resize(41, 97));
        assert!(tx2.signal(15));
        let (got, closed) = rx.drain();
        assert_eq!(
            got,
            vec![Control::Resize(ConsoleSize { rows: 41, cols: 97 }), Control::Signal(15)]
        );
        assert!(!closed);
        drop(tx);
        drop(tx2);
        assert_eq!(rx.drain(), (vec![], true));
    }

    #[test]
    fn a_reader_becomes_a_pipe() {
        let mut s = Streams {
            stdin: Some(StreamIn::Reader(Box::new(std::io::Cursor::new(b"hello".to_vec())))),
            ..Streams::output(
                StreamOut::Writer(Box::new(std::io::sink())),
                StreamOut::Writer(Box::new(std::io::sink())),
            )
        };
        let fd = s.stdin_fd().unwrap().unwrap();
        let mut got = String::new();
        std::fs::File::from(fd).read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello");
    }
}
