//! Docker's stream multiplexing ("stdcopy"): when a container has no tty,
//! its stdout and stderr travel on one connection as frames, each an
//! 8-byte header — the stream (0 stdin, 1 stdout, 2 stderr, 3 a system
//! error), three zero bytes, the payload length as a big-endian u32 — and
//! the payload. [`FrameWriter`] writes them (logs, attach, exec);
//! [`Demux`] reads them back (tests, and any client written here).
//!
//! A frame is written with one `write_all` of header and payload together,
//! so writers sharing one sink never interleave inside a frame.

use std::io::{self, Read, Write};

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StdStream {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// An error of the server, sent in-band where no status can be.
    SystemErr = 3,
}

impl StdStream {
    fn from_byte(b: u8) -> io::Result<StdStream> {
        match b {
            0 => Ok(StdStream::Stdin),
            1 => Ok(StdStream::Stdout),
            2 => Ok(StdStream::Stderr),
            3 => Ok(StdStream::SystemErr),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown stream {other} in a multiplexed stream header"),
            )),
        }
    }
}

/// Length of a frame header.
pub const HEADER_LEN: usize = 8;

/// The header of a frame of `len` bytes on `stream`.
pub fn frame_header(stream: StdStream, len: u32) -> [u8; HEADER_LEN] {
    let l = len.to_be_bytes();
    [stream as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// A `Write` that frames everything written to it for one stream.
/// Clone the sink (or share it) to give stdout and stderr each a writer.
pub struct FrameWriter<W: Write> {
    inner: W,
    stream: StdStream,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(inner: W, stream: StdStream) -> FrameWriter<W> {
        FrameWriter { inner, stream }
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // A frame's length is a u32: larger writes go out in parts.
        let n = buf.len().min(u32::MAX as usize);
        let mut frame = Vec::with_capacity(HEADER_LEN + n);
        frame.extend_from_slice(&frame_header(self.stream, n as u32));
        frame.extend_from_slice(&buf[..n]);
        self.inner.write_all(&frame)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads frames back from a multiplexed stream.
pub struct Demux<R: Read> {
    inner: R,
}

impl<R: Read> Demux<R> {
    pub fn new(inner: R) -> Demux<R> {
        Demux { inner }
    }

    /// The next frame, or None at a clean end of the stream (between
    /// frames). A stream cut inside a frame is an error.
    pub fn next_frame(&mut self) -> io::Result<Option<(StdStream, Vec<u8>)>> {
        let mut header = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match self.inner.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the stream ended inside a frame header",
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let stream = StdStream::from_byte(header[0])?;
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut payload = vec![0u8; len];
        self.inner.read_exact(&mut payload)?;
        Ok(Some((stream, payload)))
    }

    /// Every frame to the end: (stdout, stderr); a system error frame
    /// becomes an error carrying its text.
    pub fn collect(mut self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some((stream, data)) = self.next_frame()? {
            match stream {
                StdStream::Stdout | StdStream::Stdin => out.extend_from_slice(&data),
                StdStream::Stderr => err.extend_from_slice(&data),
                StdStream::SystemErr => return Err(io::Error::other(String::from_utf8_lossy(&data).into_owned())),
            }
        }
        Ok((out, err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_dockers_header_and_read_back() {
        let mut sink = Vec::new();
        FrameWriter::new(&mut sink, StdStream::Stdout)
            .write_all(b"hello\n")
            .unwrap();
        FrameWriter::new(&mut sink, StdStream::Stderr)
            .write_all(b"oops")
            .unwrap();
        FrameWriter::new(&mut sink, StdStream::Stdout).write_all(b"").unwrap();
        assert_eq!(&sink[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        assert_eq!(&sink[14..22], &[2, 0, 0, 0, 0, 0, 0, 4]);
        assert_eq!(sink.len(), 8 + 6 + 8 + 4, "an empty write sends no frame");
        let (out, err) = Demux::new(&sink[..]).collect().unwrap();
        assert_eq!(out, b"hello\n");
        assert_eq!(err, b"oops");
    }

    #[test]
    fn a_cut_frame_and_a_system_error_are_errors() {
        let mut sink = Vec::new();
        FrameWriter::new(&mut sink, StdStream::Stdout)
            .write_all(b"abcdef")
            .unwrap();
        assert!(Demux::new(&sink[..10]).collect().is_err());
        assert!(Demux::new(&sink[..5]).collect().is_err());
        let mut sink = Vec::new();
        FrameWriter::new(&mut sink, StdStream::SystemErr)
            .write_all(b"broken")
            .unwrap();
        assert_eq!(Demux::new(&sink[..]).collect().unwrap_err().to_string(), "broken");
        assert!(Demux::new(&[9u8, 0, 0, 0, 0, 0, 0, 0][..]).next_frame().is_err());
    }
}
