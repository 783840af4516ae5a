//! The content digest of a set of COPY/ADD sources, for the step cache key.
//!
//! Read-only, and it must never read a file whose (path, size, mtime,
//! inode, ctime) the stat cache already knows: a warm context costs one
//! walk of `stat` calls. Files are opened below the root with
//! `openat2(RESOLVE_IN_ROOT)`, never through a symlink out of it.
//!
//! What goes in, per source: the name it is copied as and whether it is a
//! directory; per entry: its path relative to the source, file type,
//! permission bits, symlink target, size and content sha256; and the owner
//! the files will get (`--chown` or 0:0). Timestamps stay out, as in
//! Docker's cache keys.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};
use sha2::{Digest as _, Sha256};

use super::statcache::{StatCache, StatKey};
use super::walk::{walk_source, Entry};
use super::{ContextError, Source};

/// A file changed this close (ns) to the moment it was hashed may change
/// again without its timestamps moving (coarse kernel clocks): its hash is
/// used but not cached.
const RACY_NS: i64 = 100_000_000;
/// Read buffer per hashing thread.
const BUF: usize = 1 << 20;
/// Below this much work one thread is faster than two.
const PARALLEL_MIN_BYTES: u64 = 4 << 20;

/// See [`super::digest_in`].
pub(crate) fn digest_in(
    root: &Path,
    sources: &[Source],
    chown: Option<(u32, u32)>,
    mut cache: Option<&mut StatCache>,
) -> Result<String, ContextError> {
    // Walk every source first (stat only).
    let mut per_source: Vec<Vec<Entry>> = Vec::with_capacity(sources.len());
    for s in sources {
        let mut v = Vec::new();
        walk_source(root, s, None, &mut v)?;
        per_source.push(v);
    }
    // Cached hashes; the rest is to be read.
    let mut hashes: Vec<Vec<Option<[u8; 32]>>> = Vec::with_capacity(per_source.len());
    let mut todo: Vec<(usize, usize)> = Vec::new();
    let mut todo_bytes = 0;
    for (si, entries) in per_source.iter().enumerate() {
        let mut h = vec![None; entries.len()];
        for (ei, e) in entries.iter().enumerate() {
            if !e.meta.file_type().is_file() {
                continue;
            }
            let key = StatKey::of(&e.meta);
            let found = match cache.as_deref_mut() {
                Some(c) => c.lookup(e.root_rel.as_os_str().as_bytes(), &key),
                None => None,
            };
            match found {
                Some(sha) => h[ei] = Some(sha),
                None => {
                    todo.push((si, ei));
                    todo_bytes += e.meta.size();
                }
            }
        }
        hashes.push(h);
    }

    if !todo.is_empty() {
        let root_fd = rfs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| ContextError::io("open", root, e.into()))?;
        let threads = if todo.len() > 1 && todo_bytes >= PARALLEL_MIN_BYTES {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(2)
        } else {
            1
        };
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Hashed>> = Mutex::new(Vec::with_capacity(todo.len()));
        let first_err: Mutex<Option<ContextError>> = Mutex::new(None);
        let work = || {
            let mut buf = vec![0u8; BUF];
            let mut local = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(si, ei)) = todo.get(i) else { break };
                let e = &per_source[si][ei];
                match hash_file(&root_fd, root, e, &mut buf) {
                    Ok((sha, cacheable)) => local.push(Hashed { si, ei, sha, cacheable }),
                    Err(err) => {
                        first_err.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(err);
                        next.store(todo.len(), Ordering::Relaxed);
                        break;
                    }
                }
            }
            results.lock().unwrap_or_else(|p| p.into_inner()).extend(local);
        };
        if threads > 1 {
            std::thread::scope(|sc| {
                for _ in 1..threads {
                    sc.spawn(work);
                }
                work();
            });
        } else {
            work();
        }
        if let Some(err) = first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(err);
        }
        for r in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
            hashes[r.si][r.ei] = Some(r.sha);
            if r.cacheable {
                if let Some(c) = cache.as_deref_mut() {
                    let e = &per_source[r.si][r.ei];
                    c.insert(e.root_rel.as_os_str().as_bytes().to_vec(), StatKey::of(&e.meta), r.sha);
                }
            }
        }
    }

    // Fold everything, in order, into one digest.
    let (uid, gid) = chown.unwrap_or((0, 0));
    let mut h = Sha256::new();
    h.update(b"berth context digest v1\0");
    h.update(uid.to_le_bytes());
    h.update(gid.to_le_bytes());
    for (si, s) in sources.iter().enumerate() {
        h.update(b"S");
        h.update(s.name.as_bytes());
        h.update([0, u8::from(s.is_dir)]);
        for (ei, e) in per_source[si].iter().enumerate() {
            let ft = e.meta.file_type();
            let kind = if ft.is_dir() {
                b'd'
            } else if ft.is_file() {
                b'f'
            } else if ft.is_symlink() {
                b'l'
            } else if ft.is_fifo() {
                b'p'
            } else if ft.is_char_device() {
                b'c'
            } else {
                b'b'
            };
            h.update(b"E");
            h.update(e.rel.as_os_str().as_bytes());
            h.update([0, kind]);
            h.update((e.meta.mode() & 0o7777).to_le_bytes());
            match kind {
                b'f' => {
                    h.update(e.meta.size().to_le_bytes());
                    h.update(hashes[si][ei].unwrap_or([0; 32]));
                }
                b'l' => {
                    let t = std::fs::read_link(root.join(&e.root_rel))
                        .map_err(|err| ContextError::io("readlink", &e.root_rel, err))?;
                    h.update(t.as_os_str().as_bytes());
                    h.update([0]);
                }
                b'c' | b'b' => h.update(e.meta.rdev().to_le_bytes()),
                _ => {}
            }
        }
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

struct Hashed {
    si: usize,
    ei: usize,
    sha: [u8; 32],
    cacheable: bool,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Hash one regular file opened in-root. `cacheable` is false if the file
/// changed while it was read, or so recently that a change may be invisible
/// in its timestamps.
fn hash_file(
    root_fd: &std::os::fd::OwnedFd,
    root: &Path,
    e: &Entry,
    buf: &mut [u8],
) -> Result<([u8; 32], bool), ContextError> {
    let started = now_ns();
    let fd = rfs::openat2(
        root_fd,
        &e.root_rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|err| ContextError::io("open", &root.join(&e.root_rel), err.into()))?;
    let mut f = File::from(fd);
    let read_err = |err: io::Error| ContextError::io("read", &root.join(&e.root_rel), err);
    let before = StatKey::of(&f.metadata().map_err(read_err)?);
    let mut h = Sha256::new();
    loop {
        match f.read(buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(read_err(err)),
        }
    }
    let after = StatKey::of(&f.metadata().map_err(read_err)?);
    let walked = StatKey::of(&e.meta);
    let stable = before == after && after == walked;
    let settled = after.mtime_ns.max(after.ctime_ns) < started - RACY_NS;
    Ok((h.finalize().into(), stable && settled))
}
