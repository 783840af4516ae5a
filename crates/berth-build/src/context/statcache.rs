//! The persisted stat cache: context-relative path → (size, mtime, inode,
//! ctime) and the sha256 of the content seen with exactly that stat.
//!
//! It only remembers; it must never be trusted for a file whose stat
//! differs in any field, and a missing, truncated or corrupt cache file
//! must load as an empty cache (never an error, never wrong hashes: the
//! file carries a checksum of its own body).
//!
//! Format (little endian): `BSC1`, entry count u64, then per entry: path
//! length u32, path bytes, size u64, mtime ns i64, inode u64, ctime ns i64,
//! sha256 32 bytes; then the sha256 of everything before it.

use berth_archive::perms;
use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::ContextError;

const MAGIC: &[u8; 4] = b"BSC1";

/// The stat fields that must all be unchanged for a cached hash to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatKey {
    pub size: u64,
    pub mtime_ns: i64,
    pub ino: u64,
    pub ctime_ns: i64,
}

impl StatKey {
    pub(crate) fn of(m: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        StatKey {
            size: m.size(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ino: m.ino(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct CacheEntry {
    key: StatKey,
    sha: [u8; 32],
}

/// Content hashes of context files, keyed by path and stat.
#[derive(Debug, Default)]
pub struct StatCache {
    entries: HashMap<Vec<u8>, CacheEntry>,
    hits: u64,
    misses: u64,
    dirty: bool,
}

impl StatCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Load from `path`; a missing or damaged file gives an empty cache.
    pub fn load(path: &Path) -> Self {
        match fs::read(path) {
            Ok(buf) => Self::decode(&buf).unwrap_or_default(),
            Err(_) => Self::default(),
        }
    }

    /// Write atomically (temporary file beside `path`, then rename).
    pub fn save(&self, path: &Path) -> Result<(), ContextError> {
        if let Some(dir) = path.parent() {
            perms::create_dir_all(dir, perms::PRIVATE_DIR).map_err(|e| ContextError::io("create directory", dir, e))?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let res = (|| -> io::Result<()> {
            let _ = fs::remove_file(&tmp);
            let f = perms::create_new(&tmp, perms::PRIVATE_FILE)?;
            let mut w = BufWriter::with_capacity(256 * 1024, HashTee::new(f));
            w.write_all(MAGIC)?;
            w.write_all(&(self.entries.len() as u64).to_le_bytes())?;
            for (p, e) in &self.entries {
                w.write_all(&(p.len() as u32).to_le_bytes())?;
                w.write_all(p)?;
                w.write_all(&e.key.size.to_le_bytes())?;
                w.write_all(&e.key.mtime_ns.to_le_bytes())?;
                w.write_all(&e.key.ino.to_le_bytes())?;
                w.write_all(&e.key.ctime_ns.to_le_bytes())?;
                w.write_all(&e.sha)?;
            }
            let tee = w.into_inner().map_err(|e| e.into_error())?;
            let (mut f, sum) = tee.finish();
            f.write_all(&sum)?;
            f.flush()?;
            fs::rename(&tmp, path)
        })();
        res.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            ContextError::io("write stat cache", path, e)
        })
    }

    fn decode(buf: &[u8]) -> Option<Self> {
        if buf.len() < MAGIC.len() + 8 + 32 {
            return None;
        }
        let (body, sum) = buf.split_at(buf.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return None;
        }
        let mut r = Cursor { buf: body, pos: 0 };
        if r.take(4)? != MAGIC {
            return None;
        }
        let n = r.u64()?;
        let mut entries = HashMap::with_capacity(n.min(1 << 20) as usize);
        for _ in 0..n {
            let len = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
            let p = r.take(len)?.to_vec();
            let key = StatKey {
                size: r.u64()?,
                mtime_ns: r.u64()? as i64,
                ino: r.u64()?,
                ctime_ns: r.u64()? as i64,
            };
            let sha: [u8; 32] = r.take(32)?.try_into().ok()?;
            entries.insert(p, CacheEntry { key, sha });
        }
        (r.pos == body.len()).then_some(StatCache {
            entries,
            ..Default::default()
        })
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Lookups answered from the cache since load.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Files that had to be read (hashed) since load.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Changed since load (worth saving).
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub(crate) fn lookup(&mut self, path: &[u8], key: &StatKey) -> Option<[u8; 32]> {
        match self.entries.get(path) {
            Some(e) if e.key == *key => {
                self.hits += 1;
                Some(e.sha)
            }
            _ => {
                self.misses += 1;
                None
            }
        }
    }

    pub(crate) fn insert(&mut self, path: Vec<u8>, key: StatKey, sha: [u8; 32]) {
        self.entries.insert(path, CacheEntry { key, sha });
        self.dirty = true;
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// A writer that hashes what passes through it.
struct HashTee<W> {
    inner: W,
    h: Sha256,
}

impl<W: Write> HashTee<W> {
    fn new(inner: W) -> Self {
        HashTee {
            inner,
            h: Sha256::new(),
        }
    }

    fn finish(self) -> (W, [u8; 32]) {
        (self.inner, self.h.finalize().into())
    }
}

impl<W: Write> Write for HashTee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.h.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
