//! A watch on a tar stream as it goes by, for what the tar reader would
//! otherwise take whole into memory: a PAX extended header (`x`, `g`) or a
//! GNU long name (`L`, `K`) is read into one buffer before the entry it
//! describes, so a gzip of a few MB could ask for gigabytes of memory.
//! Each is refused past [`MAX_META`] (1 MiB, as Go's archive/tar).
//!
//! The watch follows the stream exactly as the tar reader does: each
//! header's size (a PAX `size` record overriding the next entry's), GNU
//! sparse extension blocks, the end at the first zero block. A header
//! whose checksum is wrong ends the watch (the reader refuses the stream
//! there anyway). It passes every byte through unchanged and never reads
//! ahead of its caller.

use std::io::{self, Read};

/// The most an extended header or a long name may hold.
pub const MAX_META: u64 = 1 << 20;

const BLOCK: u64 = 512;

/// Where the next bytes belong.
enum At {
    /// In a header block (`fill` bytes of it seen).
    Header,
    /// In a GNU sparse entry's extension blocks, before its data.
    SparseExt,
    /// In an entry's data (and padding): `left` bytes to the next header.
    Data { left: u64 },
    /// Past the end, or lost: no more watching.
    Done,
}

pub(crate) struct MetaGuard<R> {
    inner: R,
    at: At,
    block: [u8; 512],
    fill: usize,
    /// Size of the entry being read, once its extension blocks are past.
    pending_data: u64,
    /// The body of a PAX `x` header being read, for its `size` record.
    pax: Option<Vec<u8>>,
    /// A PAX `size` for the next entry that is not an extension.
    size_override: Option<u64>,
}

impl<R: Read> MetaGuard<R> {
    pub(crate) fn new(inner: R) -> Self {
        MetaGuard {
            inner,
            at: At::Header,
            block: [0; 512],
            fill: 0,
            pending_data: 0,
            pax: None,
            size_override: None,
        }
    }

    /// Follows `buf`, just read, through the stream's structure.
    fn watch(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match &mut self.at {
                At::Done => return Ok(()),
                At::Data { left } => {
                    let n = (*left).min(buf.len() as u64) as usize;
                    if let Some(p) = &mut self.pax {
                        let want = (MAX_META as usize).saturating_sub(p.len()).min(n);
                        p.extend_from_slice(&buf[..want]);
                    }
                    *left -= n as u64;
                    buf = &buf[n..];
                    if *left == 0 {
                        self.at = At::Header;
                        if let Some(p) = self.pax.take() {
                            self.size_override = pax_size(&p);
                        }
                    }
                }
                At::Header | At::SparseExt => {
                    let n = (512 - self.fill).min(buf.len());
                    self.block[self.fill..self.fill + n].copy_from_slice(&buf[..n]);
                    self.fill += n;
                    buf = &buf[n..];
                    if self.fill == 512 {
                        self.fill = 0;
                        self.block_done()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A whole block at a header (or sparse extension) position.
    fn block_done(&mut self) -> io::Result<()> {
        if matches!(self.at, At::SparseExt) {
            // isextended is the byte after 21 sparse records of 24 bytes.
            self.at = if self.block[504] != 0 {
                At::SparseExt
            } else {
                data(self.pending_data)
            };
            return Ok(());
        }
        if self.block.iter().all(|&b| b == 0) {
            self.at = At::Done;
            return Ok(());
        }
        let h = tar::Header::from_byte_slice(&self.block);
        let sum: u32 = self.block[..148]
            .iter()
            .chain(&self.block[156..])
            .map(|&b| u32::from(b))
            .sum::<u32>()
            + 8 * 32;
        let (Ok(cksum), Ok(size)) = (h.cksum(), h.entry_size()) else {
            self.at = At::Done;
            return Ok(());
        };
        if cksum != sum {
            self.at = At::Done;
            return Ok(());
        }
        let kind = self.block[156];
        let meta = matches!(kind, b'x' | b'g' | b'L' | b'K');
        if meta && size > MAX_META {
            let what = match kind {
                b'x' | b'g' => "a PAX extended header",
                _ => "a GNU long name",
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} of {size} bytes (more than {} MiB)", MAX_META >> 20),
            ));
        }
        let size = if meta {
            size
        } else {
            self.size_override.take().unwrap_or(size)
        };
        if kind == b'x' {
            self.pax = Some(Vec::new());
        }
        if kind == b'S' && self.block[482] != 0 {
            self.pending_data = size;
            self.at = At::SparseExt;
        } else {
            self.at = data(size);
        }
        Ok(())
    }
}

/// The state after a header whose entry holds `size` bytes (padded to
/// whole blocks).
fn data(size: u64) -> At {
    match size.checked_next_multiple_of(BLOCK) {
        Some(0) => At::Header,
        Some(left) => At::Data { left },
        None => At::Done,
    }
}

/// The `size` record of a PAX header body, if any.
fn pax_size(body: &[u8]) -> Option<u64> {
    tar::PaxExtensions::new(body)
        .flatten()
        .filter(|e| e.key_bytes() == b"size")
        .last()
        .and_then(|e| std::str::from_utf8(e.value_bytes()).ok()?.parse().ok())
}

impl<R: Read> Read for MetaGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.watch(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        h
    }

    /// Reads all of `data` through a guard, `chunk` bytes at a time.
    fn through(data: &[u8], chunk: usize) -> io::Result<u64> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(self.1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        io::copy(&mut MetaGuard::new(Trickle(data, chunk)), &mut io::sink())
    }

    #[test]
    fn a_huge_extended_header_is_refused_before_it_is_read() {
        // The header alone: its body never needs to arrive.
        let mut data = header("PaxHeaders/x", tar::EntryType::XHeader, 6 << 30)
            .as_bytes()
            .to_vec();
        data.extend_from_slice(&[0; 4096]);
        let e = through(&data, 4096).unwrap_err();
        assert!(
            e.to_string().contains("a PAX extended header of 6442450944 bytes"),
            "{e}"
        );
        let mut data = header("././@LongLink", tar::EntryType::GNULongName, 2 << 20)
            .as_bytes()
            .to_vec();
        data.extend_from_slice(&[0; 1024]);
        assert!(through(&data, 7).is_err());
    }

    #[test]
    fn ordinary_archives_pass_whole_whatever_the_read_sizes() {
        // Long names, PAX records (one overriding the next entry's size),
        // a big file, an empty one, and the end.
        let mut b = tar::Builder::new(Vec::new());
        let long = "d/".repeat(200) + "file";
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(70_000);
        b.append_data(&mut h, &long, &vec![7u8; 70_000][..]).unwrap();
        b.append_pax_extensions([("size", b"3".as_slice()), ("mtime", b"1.5".as_slice())])
            .unwrap();
        let h = header("small", tar::EntryType::Regular, 0);
        let mut raw = h.as_bytes().to_vec();
        raw.extend_from_slice(b"abc");
        raw.resize(1024, 0);
        let mut data = b.into_inner().unwrap();
        data.extend_from_slice(&raw);
        data.extend_from_slice(&[0; 1024]);
        for chunk in [1, 511, 512, 513, 65536] {
            assert_eq!(through(&data, chunk).unwrap(), data.len() as u64, "chunks of {chunk}");
        }
        // The same with a huge header after the end is not watched.
        let mut after = data.clone();
        after.extend_from_slice(header("x", tar::EntryType::XHeader, 1 << 40).as_bytes());
        assert!(through(&after, 4096).is_ok());
    }
}
