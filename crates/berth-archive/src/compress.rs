//! Compression detection and transparent decompression of layer blobs.
//!
//! Detection is by magic bytes only (never by file name or media type), and
//! this module must never consume bytes it does not hand on: the sniffed
//! prefix is replayed in front of the rest of the stream.

use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};

use crate::error::ArchiveError;

/// The compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (possibly several concatenated members).
    Gzip,
    /// zstd (possibly several frames).
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// Bytes read up front to sniff the compression.
const PREFIX: usize = 4;
/// Read-ahead on the raw (compressed) stream.
const RAW_BUF: usize = 256 * 1024;

/// Sniff the compression from the first bytes (gzip `1f 8b`, zstd
/// `28 b5 2f fd`, anything else is taken as a plain tar).
pub fn sniff(prefix: &[u8]) -> Compression {
    if prefix.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if prefix.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// A raw stream whose sniffed prefix has been put back in front of it.
pub(crate) type Peeked<R> = BufReader<Chain<Cursor<Vec<u8>>, R>>;

/// Read the first bytes of `r` (retrying short reads), sniff them, and
/// return a buffered reader that still yields every byte of `r`.
pub(crate) fn peek<R: Read>(mut r: R) -> io::Result<(Compression, Peeked<R>)> {
    let mut prefix = [0u8; PREFIX];
    let mut n = 0;
    while n < PREFIX {
        match r.read(&mut prefix[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let kind = sniff(&prefix[..n]);
    let replay = Cursor::new(prefix[..n].to_vec());
    Ok((kind, BufReader::with_capacity(RAW_BUF, replay.chain(r))))
}

/// A decompressing reader over a buffered raw stream.
pub(crate) enum Decoder<B: BufRead> {
    Plain(B),
    Gzip(Box<flate2::bufread::MultiGzDecoder<B>>),
    Zstd(zstd::stream::read::Decoder<'static, B>),
}

impl<B: BufRead> Decoder<B> {
    pub(crate) fn new(kind: Compression, raw: B) -> io::Result<Self> {
        Ok(match kind {
            Compression::None => Decoder::Plain(raw),
            Compression::Gzip => Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(raw))),
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(raw)?),
        })
    }
}

impl<B: BufRead> Read for Decoder<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

/// Wrap any reader: detect its compression (by peeking) and return a reader
/// of the decompressed bytes. Compressed input yields at most
/// [`Limits::max_size`](crate::Limits) bytes (as the environment sets it):
/// past that a read fails with [`ArchiveError::Limit`] inside the
/// `io::Error`, so a small gzip of zeros cannot become terabytes.
pub fn decompressed<'a, R: Read + 'a>(r: R) -> Result<Box<dyn Read + 'a>, ArchiveError> {
    decompressed_within(r, crate::Limits::from_env().max_size)
}

/// [`decompressed`] with an explicit limit on the decompressed bytes.
pub fn decompressed_within<'a, R: Read + 'a>(r: R, max_size: u64) -> Result<Box<dyn Read + 'a>, ArchiveError> {
    let stream_err = |source| ArchiveError::Stream {
        after: String::new(),
        source,
    };
    let (kind, raw) = peek(r).map_err(stream_err)?;
    let dec = Decoder::new(kind, raw).map_err(stream_err)?;
    if kind == Compression::None {
        // As long as its input: nothing to bound.
        return Ok(Box::new(dec));
    }
    Ok(Box::new(Bounded {
        inner: dec,
        left: max_size,
        limit: max_size,
    }))
}

/// A reader that fails once more than `limit` bytes came through.
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(n)
            }
            None => Err(io::Error::other(ArchiveError::Limit {
                kind: crate::LimitKind::Size,
                limit: self.limit,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sniff_magic() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Compression::Zstd);
        assert_eq!(sniff(b"etc/"), Compression::None);
        assert_eq!(sniff(&[0x1f]), Compression::None);
        assert_eq!(sniff(&[]), Compression::None);
    }

    /// A reader that hands out one byte per read, to prove the sniffing
    /// survives short reads.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn decompresses_all_kinds_even_from_trickling_reader() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&payload).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::stream::encode_all(&payload[..], 3).unwrap();
        for blob in [&payload[..], &gz[..], &zst[..]] {
            let mut out = Vec::new();
            decompressed(Trickle(blob)).unwrap().read_to_end(&mut out).unwrap();
            assert!(out == payload, "round trip differs");
        }
    }

    #[test]
    fn a_gzip_of_zeros_stops_at_the_limit() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let gz = gz.finish().unwrap();
        assert!(gz.len() < 1 << 20, "64 MiB of zeros compress to {} bytes", gz.len());
        let e = io::copy(&mut decompressed_within(&gz[..], 8 << 20).unwrap(), &mut io::sink()).unwrap_err();
        assert!(e.to_string().contains("more than 8 MiB"), "{e}");
        assert!(e.to_string().contains("BERTH_MAX_LAYER_SIZE=16M"), "{e}");
        // The same within a larger limit, and plain input is never bounded.
        let n = io::copy(&mut decompressed_within(&gz[..], 64 << 20).unwrap(), &mut io::sink()).unwrap();
        assert_eq!(n, 64 << 20);
        let n = io::copy(&mut decompressed_within(&zeros[..], 10).unwrap(), &mut io::sink()).unwrap();
        assert_eq!(n, 1 << 20);
    }

    #[test]
    fn tiny_plain_input_is_passed_through() {
        let mut out = Vec::new();
        decompressed(&b"ab"[..]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
    }
}
