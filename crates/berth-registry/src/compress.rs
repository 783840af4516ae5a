//! Layer compression for push: a plain tar becomes gzip or zstd on the way
//! out, in one streaming pass, hashed as it is produced.

use std::io::{self, Write};

/// A layer compression berth can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    Zstd,
}

impl LayerCompression {
    pub fn media_type(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            LayerCompression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LayerCompression::Gzip => "gzip",
            LayerCompression::Zstd => "zstd",
        }
    }

    /// The compression a layer media type declares (None: plain tar or unknown).
    pub fn of_media_type(mt: &str) -> Option<LayerCompression> {
        if mt.ends_with("+gzip") || mt.ends_with(".tar.gzip") || mt.ends_with("tar.gzip") {
            Some(LayerCompression::Gzip)
        } else if mt.ends_with("+zstd") || mt.ends_with(".tar.zstd") {
            Some(LayerCompression::Zstd)
        } else {
            None
        }
    }

    /// An encoder writing into `w`; `finish` it with [`finish`].
    pub fn encoder<'a, W: Write + 'a>(self, w: W) -> io::Result<Encoder<'a, W>> {
        Ok(match self {
            // Level 6: deterministic and the usual trade-off (Docker's default).
            LayerCompression::Gzip => Encoder::Gzip(GzipWriter::new(w)),
            LayerCompression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(w, 3)?),
        })
    }
}

/// gzip level used for pushes (deterministic output for equal input, so a
/// layer compressed twice gets the same digest).
pub const GZIP_LEVEL: u32 = 6;

/// Input block over which the stored-or-deflated choice is made.
const BLOCK: usize = 1 << 20;
/// Above this many bits per byte a block is stored, not deflated: deflate
/// cannot gain more than a fraction of a percent there, and it is several
/// times slower than copying (random or already-compressed content).
const STORE_ENTROPY: f64 = 7.95;

/// Order-0 entropy of a block in bits per byte (sampled: every 4th byte).
fn entropy(data: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in data.iter().step_by(4) {
        counts[*b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// A single-member gzip stream deflated at `GZIP_LEVEL`, except for 1 MiB
/// blocks that cannot compress: those go out as stored deflate blocks
/// (written here; the deflater is flushed before and restarted after, so
/// its back-references never cross them). The choice depends only on the
/// content, so the output is deterministic.
pub struct GzipWriter<W: Write> {
    inner: W,
    c: flate2::Compress,
    crc: flate2::Crc,
    pending: Vec<u8>,
    out: Vec<u8>,
    started: bool,
    /// The deflater has taken input since it was (re)started.
    dirty: bool,
}

impl<W: Write> GzipWriter<W> {
    pub fn new(inner: W) -> Self {
        GzipWriter {
            inner,
            c: flate2::Compress::new(flate2::Compression::new(GZIP_LEVEL), false),
            crc: flate2::Crc::new(),
            pending: Vec::with_capacity(BLOCK),
            out: Vec::with_capacity(256 << 10),
            started: false,
            dirty: false,
        }
    }

    fn run(&mut self, mut input: &[u8], flush: flate2::FlushCompress) -> io::Result<()> {
        loop {
            self.out.clear();
            let before = self.c.total_in();
            let st = self
                .c
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            input = &input[(self.c.total_in() - before) as usize..];
            self.inner.write_all(&self.out)?;
            let full = self.out.len() == self.out.capacity();
            let done = match flush {
                flate2::FlushCompress::Finish => st == flate2::Status::StreamEnd,
                _ => input.is_empty() && !full,
            };
            if done {
                return Ok(());
            }
        }
    }

    fn block(&mut self, finish: bool) -> io::Result<()> {
        if !self.started {
            // magic, deflate, no flags, mtime 0, no extra flags, OS unknown
            self.inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
            self.started = true;
        }
        let data = std::mem::replace(&mut self.pending, Vec::with_capacity(BLOCK));
        self.crc.update(&data);
        if !data.is_empty() && entropy(&data) > STORE_ENTROPY {
            if self.dirty {
                // Byte-align what the deflater holds; start it afresh after.
                self.run(&[], flate2::FlushCompress::Sync)?;
                self.c.reset();
                self.dirty = false;
            }
            for piece in data.chunks(0xffff) {
                let len = piece.len() as u16;
                let [l0, l1] = len.to_le_bytes();
                let [n0, n1] = (!len).to_le_bytes();
                // BFINAL=0, BTYPE=00 (stored), then LEN and NLEN.
                self.inner.write_all(&[0, l0, l1, n0, n1])?;
                self.inner.write_all(piece)?;
            }
        } else if !data.is_empty() {
            self.run(&data, flate2::FlushCompress::None)?;
            self.dirty = true;
        }
        if finish {
            // The final block (empty if everything went out already).
            self.run(&[], flate2::FlushCompress::Finish)?;
        }
        Ok(())
    }

    /// Compress what is held, write the trailer, return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.block(true)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.inner.write_all(&trailer)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == BLOCK {
            self.block(false)?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::str::FromStr for LayerCompression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(LayerCompression::Gzip),
            "zstd" => Ok(LayerCompression::Zstd),
            o => Err(format!("unknown compression format {o:?}: use gzip or zstd")),
        }
    }
}

pub enum Encoder<'a, W: Write> {
    Gzip(GzipWriter<W>),
    Zstd(zstd::stream::write::Encoder<'a, W>),
}

impl<W: Write> Write for Encoder<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

impl<W: Write> Encoder<'_, W> {
    /// Write the trailer and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut w = GzipWriter::new(Vec::new());
        for piece in data.chunks(70_001) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn mixed_content_round_trips_as_one_gzip_member() {
        let mut data = Vec::new();
        data.extend(noise(3 * BLOCK + 17, 5));
        data.extend(std::iter::repeat_n(b"text compresses well ".as_slice(), 200_000).flatten());
        data.extend(noise(BLOCK / 2, 9));
        let out = gz(&data);
        // A single-member decoder reads it all (no multi-member trick).
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
        assert!(back == data, "round trip differs");
        assert_eq!(out, gz(&data), "deterministic");
        let noise_part = 3 * BLOCK + BLOCK / 2;
        assert!(out.len() < noise_part + noise_part / 50 + 200_000, "{}", out.len());
        // Empty input is a valid gzip stream too.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz(b"")[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }

    #[test]
    fn entropy_tells_noise_from_text() {
        assert!(entropy(&noise(BLOCK, 3)) > STORE_ENTROPY);
        assert!(entropy(&b"hello world ".repeat(50_000)) < 4.0);
        assert_eq!(entropy(&[]), 0.0);
    }
}
