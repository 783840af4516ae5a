//! A container's stdio as the caller passes it (see
//! [`berth_runtime::streams`]), and Docker's stream multiplexing on top of
//! one connection.
//!
//! Attach, a foreground run, `start -a` and exec take a [`Streams`] value:
//! the CLI passes its terminal (file descriptors, so a terminal stays a
//! terminal), the API server a hijacked connection, a test in-memory
//! buffers. Without a tty, Docker's API sends stdout and stderr over one
//! connection as frames — a header of 8 bytes (stream type 1 or 2, three
//! zero bytes, the payload's length as a big-endian u32) and the payload:
//! [`multiplexed`] gives the two writers that do that, [`Demultiplexer`]
//! reads them back.
//!
//! This module never touches this process's own stdio.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

pub use berth_runtime::attach::parse_detach_keys;
pub use berth_runtime::streams::{
    control_channel, ConsoleSize, Control, ControlReceiver, ControlSender, StreamIn, StreamOut, Streams,
};
pub use berth_runtime::{AttachEnd, AttachOptions, ExecOptions, LogOptions};

/// Which stream a multiplexed frame carries (Docker's stream type byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// 0: stdin (written by clients, never by the engine).
    Stdin,
    /// 1: stdout.
    Stdout,
    /// 2: stderr.
    Stderr,
}

impl StreamKind {
    fn byte(self) -> u8 {
        match self {
            StreamKind::Stdin => 0,
            StreamKind::Stdout => 1,
            StreamKind::Stderr => 2,
        }
    }

    fn from_byte(b: u8) -> Option<StreamKind> {
        match b {
            0 => Some(StreamKind::Stdin),
            1 => Some(StreamKind::Stdout),
            2 => Some(StreamKind::Stderr),
            _ => None,
        }
    }
}

/// Largest payload of one frame (bigger writes are split).
const MAX_FRAME: usize = 32 * 1024;

/// One of the two writers [`multiplexed`] returns: each write becomes one
/// or more frames of its stream on the shared connection.
pub struct MuxWriter<W: Write + Send> {
    kind: StreamKind,
    conn: Arc<Mutex<W>>,
}

/// Two writers, for stdout and stderr, that frame what they are given onto
/// `conn` as Docker's API does for a container without a tty. Frames of
/// the two never interleave (one lock for the connection).
pub fn multiplexed<W: Write + Send>(conn: W) -> (MuxWriter<W>, MuxWriter<W>) {
    let conn = Arc::new(Mutex::new(conn));
    (
        MuxWriter {
            kind: StreamKind::Stdout,
            conn: conn.clone(),
        },
        MuxWriter {
            kind: StreamKind::Stderr,
            conn,
        },
    )
}

impl<W: Write + Send> Write for MuxWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let chunk = &data[..data.len().min(MAX_FRAME)];
        let mut frame = Vec::with_capacity(8 + chunk.len());
        frame.extend_from_slice(&[self.kind.byte(), 0, 0, 0]);
        frame.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        frame.extend_from_slice(chunk);
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        c.write_all(&frame)?;
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

/// Reads multiplexed frames back: each [`Demultiplexer::next_frame`] is one
/// frame's stream and payload (what a Docker client does with the stream).
pub struct Demultiplexer<R: Read> {
    r: R,
}

impl<R: Read> Demultiplexer<R> {
    /// Frames from `r`.
    pub fn new(r: R) -> Self {
        Demultiplexer { r }
    }

    /// The next frame, or `None` at a clean end of the stream.
    pub fn next_frame(&mut self) -> io::Result<Option<(StreamKind, Vec<u8>)>> {
        let mut head = [0u8; 8];
        let mut got = 0;
        while got < head.len() {
            match self.r.read(&mut head[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "a frame header was cut short",
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let kind = StreamKind::from_byte(head[0])
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unknown stream type {}", head[0])))?;
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let mut payload = vec![0u8; len];
        self.r.read_exact(&mut payload)?;
        Ok(Some((kind, payload)))
    }

    /// Everything to its end: stdout's bytes and stderr's, apart.
    pub fn split_all(mut self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some((k, p)) = self.next_frame()? {
            match k {
                StreamKind::Stdout => out.extend_from_slice(&p),
                StreamKind::Stderr => err.extend_from_slice(&p),
                StreamKind::Stdin => {}
            }
        }
        Ok((out, err))
    }
}

/// A writer that keeps what it is given, shared: clone it, hand one copy
/// to the engine as a stream, read the other (tests, a server's buffered
/// response).
#[derive(Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// What was written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// As a stream the engine writes to.
    pub fn stream(&self) -> StreamOut {
        StreamOut::Writer(Box::new(self.clone()))
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_and_stderr_share_a_connection_and_come_apart() {
        let conn = SharedBuffer::new();
        let (mut out, mut err) = multiplexed(conn.clone());
        out.write_all(b"hello ").unwrap();
        err.write_all(b"oops\n").unwrap();
        out.write_all(b"world\n").unwrap();
        let big = vec![b'x'; MAX_FRAME + 10];
        out.write_all(&big).unwrap();
        let bytes = conn.contents();
        // Docker's header: type, 0, 0, 0, big-endian length.
        assert_eq!(&bytes[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        assert_eq!(&bytes[8..14], b"hello ");
        assert_eq!(&bytes[14..22], &[2, 0, 0, 0, 0, 0, 0, 5]);
        let mut d = Demultiplexer::new(&bytes[..]);
        assert_eq!(d.next_frame().unwrap(), Some((StreamKind::Stdout, b"hello ".to_vec())));
        assert_eq!(d.next_frame().unwrap(), Some((StreamKind::Stderr, b"oops\n".to_vec())));
        let (o, e) = Demultiplexer::new(&bytes[..]).split_all().unwrap();
        assert_eq!(e, b"oops\n");
        assert_eq!(o.len(), 12 + MAX_FRAME + 10);
        assert!(o.starts_with(b"hello world\n"));
    }

    #[test]
    fn a_cut_frame_is_an_error_not_an_end() {
        let bytes = [1u8, 0, 0, 0, 0, 0, 0, 9, b'a'];
        assert!(Demultiplexer::new(&bytes[..]).split_all().is_err());
        assert!(Demultiplexer::new(&bytes[..3]).split_all().is_err());
        assert_eq!(Demultiplexer::new(&[][..]).split_all().unwrap(), (vec![], vec![]));
    }
}
