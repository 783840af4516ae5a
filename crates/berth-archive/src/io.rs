//! Stream plumbing: tee, sha256-while-writing, and a hashing pipeline that
//! moves sha256 onto a second core.
//!
//! These adapters pass every byte through unchanged and in order; they must
//! never drop, reorder or buffer bytes past the point where a caller could
//! observe the difference (a `finish` flushes what is held).

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};

use sha2::{Digest, Sha256};

/// Size of the chunks handed to the hashing thread and of copy buffers.
pub(crate) const CHUNK: usize = 1024 * 1024;
/// Buffers in flight between a stream and its hashing thread.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Format a finished sha256 as `sha256:<hex>`.
pub(crate) fn digest_string(d: impl AsRef<[u8]>) -> String {
    format!("sha256:{}", hex::encode(d.as_ref()))
}

/// A `Read` adapter that copies every byte it reads into a `Write` (tee the
/// raw input into a blob writer while applying). A failed write surfaces as
/// an error of the read that produced the bytes.
#[derive(Debug)]
pub struct TeeReader<R, W> {
    r: R,
    w: W,
}

impl<R, W> TeeReader<R, W> {
    /// Tee everything read from `r` into `w`.
    pub fn new(r: R, w: W) -> Self {
        TeeReader { r, w }
    }

    /// Give back the reader and the writer.
    pub fn into_inner(self) -> (R, W) {
        (self.r, self.w)
    }
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.w.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A `Write` adapter that sha256-hashes exactly the bytes the inner writer
/// accepted.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W> HashingWriter<W> {
    /// Hash everything written into `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The inner writer, the `sha256:<hex>` digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, digest_string(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The stream side of a hashing thread: chunks go out in order, empty
/// buffers come back for reuse (no allocation after the first few chunks).
pub(crate) struct HashPipe {
    tx: Option<SyncSender<(Vec<u8>, usize)>>,
    free: Receiver<Vec<u8>>,
    unallocated: usize,
}

impl HashPipe {
    /// A buffer of `CHUNK` bytes (contents unspecified).
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        if let Ok(b) = self.free.try_recv() {
            return b;
        }
        if self.unallocated > 0 {
            self.unallocated -= 1;
            return vec![0; CHUNK];
        }
        // Every buffer is with the hasher, which hands each back once hashed.
        // If it is gone (it panicked), the join reports that; keep going.
        self.free.recv().unwrap_or_else(|_| vec![0; CHUNK])
    }

    /// Hash `buf[..len]` (after everything submitted before).
    pub(crate) fn submit(&mut self, buf: Vec<u8>, len: usize) {
        if len == 0 {
            return;
        }
        if let Some(tx) = &self.tx {
            // A send only fails if the hasher died; its join then panics.
            let _ = tx.send((buf, len));
        }
    }
}

/// Run `f` with a pipe to a sha256 thread; returns `f`'s result and the
/// `sha256:<hex>` of every byte submitted.
pub(crate) fn with_hash_thread<T>(f: impl FnOnce(&mut HashPipe) -> T) -> (T, String) {
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(CHUNKS_IN_FLIGHT - 1);
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let hasher = s.spawn(move || {
            let mut h = Sha256::new();
            for (buf, len) in rx {
                h.update(&buf[..len]);
                let _ = free_tx.send(buf);
            }
            digest_string(h.finalize())
        });
        let mut pipe = HashPipe {
            tx: Some(tx),
            free: free_rx,
            unallocated: CHUNKS_IN_FLIGHT,
        };
        let out = f(&mut pipe);
        pipe.tx = None;
        drop(pipe);
        let digest = match hasher.join() {
            Ok(d) => d,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (out, digest)
    })
}

/// Past its limit, a [`ChunkHashReader`] fails every read with this.
#[derive(Debug)]
pub(crate) struct SizeLimitHit;

impl std::fmt::Display for SizeLimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the stream is longer than its limit")
    }
}

impl std::error::Error for SizeLimitHit {}

/// A reader that reads its inner stream in large chunks and sends each
/// chunk to the hashing thread once it has been consumed. It reads at most
/// `limit` bytes: past that every read fails (see [`Self::limit_hit`]).
pub(crate) struct ChunkHashReader<'p, R> {
    inner: R,
    pipe: &'p mut HashPipe,
    cur: Vec<u8>,
    len: usize,
    pos: usize,
    total: u64,
    limit: u64,
    limit_hit: bool,
}

impl<'p, R: Read> ChunkHashReader<'p, R> {
    pub(crate) fn new(inner: R, pipe: &'p mut HashPipe, limit: u64) -> Self {
        let cur = pipe.take_buffer();
        ChunkHashReader {
            inner,
            pipe,
            cur,
            len: 0,
            pos: 0,
            total: 0,
            limit,
            limit_hit: false,
        }
    }

    /// Whether the stream went past the limit.
    pub(crate) fn limit_hit(&self) -> bool {
        self.limit_hit
    }

    /// Read the rest of the stream (hashing it) and return the total byte
    /// count.
    pub(crate) fn drain(&mut self) -> io::Result<u64> {
        while self.refill()? {}
        let cur = std::mem::take(&mut self.cur);
        self.pipe.submit(cur, self.len);
        self.len = 0;
        Ok(self.total)
    }

    /// Hand the consumed chunk to the hasher and read the next one; false
    /// at end of stream.
    fn refill(&mut self) -> io::Result<bool> {
        if self.len > 0 {
            let next = self.pipe.take_buffer();
            let done = std::mem::replace(&mut self.cur, next);
            self.pipe.submit(done, self.len);
        }
        self.len = 0;
        self.pos = 0;
        // Gather at least a quarter chunk so the hasher gets sizeable work.
        while self.len < CHUNK / 4 {
            match self.inner.read(&mut self.cur[self.len..]) {
                Ok(0) => break,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.total += self.len as u64;
        if self.total > self.limit {
            self.limit_hit = true;
            self.len = 0;
            return Err(io::Error::other(SizeLimitHit));
        }
        Ok(self.len > 0)
    }
}

impl<R: Read> Read for ChunkHashReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos == self.len && !self.refill()? {
            return Ok(0);
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A writer that gathers output into large chunks, writes each to the inner
/// writer and sends it to the hashing thread.
pub(crate) struct ChunkHashWriter<'p, W> {
    inner: W,
    pipe: &'p mut HashPipe,
    cur: Vec<u8>,
    len: usize,
    total: u64,
}

impl<'p, W: Write> ChunkHashWriter<'p, W> {
    pub(crate) fn new(inner: W, pipe: &'p mut HashPipe) -> Self {
        let cur = pipe.take_buffer();
        ChunkHashWriter {
            inner,
            pipe,
            cur,
            len: 0,
            total: 0,
        }
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        self.inner.write_all(&self.cur[..self.len])?;
        let next = self.pipe.take_buffer();
        let done = std::mem::replace(&mut self.cur, next);
        self.pipe.submit(done, self.len);
        self.len = 0;
        Ok(())
    }

    /// Copy exactly `size` bytes from `r` straight into the chunk buffer
    /// (no intermediate copy). Fails with `UnexpectedEof` if `r` ends early.
    pub(crate) fn copy_exact_from(&mut self, r: &mut impl Read, size: u64) -> io::Result<()> {
        let mut left = size;
        while left > 0 {
            if self.len == CHUNK {
                self.flush_chunk()?;
            }
            let room = (CHUNK - self.len).min(usize::try_from(left).unwrap_or(usize::MAX));
            match r.read(&mut self.cur[self.len..self.len + room]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while it was being archived",
                    ))
                }
                Ok(n) => {
                    self.len += n;
                    self.total += n as u64;
                    left -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Write out and hash what is held, flush the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<u64> {
        self.flush_chunk()?;
        self.inner.flush()?;
        Ok(self.total)
    }
}

impl<W: Write> Write for ChunkHashWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.len == CHUNK {
            self.flush_chunk()?;
        }
        let n = buf.len().min(CHUNK - self.len);
        self.cur[self.len..self.len + n].copy_from_slice(&buf[..n]);
        self.len += n;
        self.total += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Holding bytes is fine: `finish` writes them. Flushing here would
        // send small chunks to the hasher.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(b: &[u8]) -> String {
        digest_string(Sha256::digest(b))
    }

    #[test]
    fn tee_copies_everything_read() {
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut tee = TeeReader::new(&data[..], Vec::new());
        let mut out = Vec::new();
        tee.read_to_end(&mut out).unwrap();
        let (_, copy) = tee.into_inner();
        assert_eq!(out, data);
        assert_eq!(copy, data);
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tee_write_error_is_a_read_error() {
        let mut tee = TeeReader::new(&b"abc"[..], Broken);
        let err = tee.read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
    }

    #[test]
    fn hashing_writer_hashes_what_passes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (inner, digest, n) = w.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(
            digest,
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn threaded_reader_hashes_whole_stream_in_order() {
        // Several chunks' worth, not a multiple of the chunk size.
        let data: Vec<u8> = (0..(CHUNK * 5 + 12345) as u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let (res, digest) = with_hash_thread(|pipe| {
            let mut r = ChunkHashReader::new(&data[..], pipe, u64::MAX);
            let mut first = vec![0; 1000];
            r.read_exact(&mut first).unwrap();
            let total = r.drain().unwrap();
            (first, total)
        });
        assert_eq!(res.0, data[..1000]);
        assert_eq!(res.1, data.len() as u64);
        assert_eq!(digest, sha(&data));
    }

    #[test]
    fn threaded_writer_writes_and_hashes_in_order() {
        let data: Vec<u8> = (0..(CHUNK * 3 + 7) as u32).map(|i| (i % 253) as u8).collect();
        let mut out = Vec::new();
        let (total, digest) = with_hash_thread(|pipe| {
            let mut w = ChunkHashWriter::new(&mut out, pipe);
            w.write_all(&data[..10]).unwrap();
            w.copy_exact_from(&mut &data[10..], (data.len() - 10) as u64).unwrap();
            w.finish().unwrap()
        });
        assert_eq!(total, data.len() as u64);
        assert!(out == data);
        assert_eq!(digest, sha(&data));
    }

    #[test]
    fn copy_exact_reports_short_source() {
        let mut out = Vec::new();
        let (err, _) = with_hash_thread(|pipe| {
            let mut w = ChunkHashWriter::new(&mut out, pipe);
            w.copy_exact_from(&mut &b"abc"[..], 10).unwrap_err()
        });
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
