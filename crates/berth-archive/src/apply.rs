//! Apply a layer tar into a directory, confined to that directory.
//!
//! No entry may ever create, change or remove anything outside `root`.
//! Names are cleaned lexically (`..` above the root is refused), every parent
//! directory is resolved by the kernel with `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)`, and the final component is created with `*at`
//! calls relative to that directory, never following a final symlink.
//!
//! Why `RESOLVE_IN_ROOT` rather than `RESOLVE_BENEATH`: a layer is a piece of
//! a root filesystem, and its symlinks are meant to be resolved as the
//! container will resolve them, with `root` as `/`. Base images are full of
//! absolute symlinks on the way to real files (`/var/run -> /run`, `lib ->
//! /usr/lib` in some distributions); `BENEATH` refuses every such path with
//! `EXDEV`, `IN_ROOT` resolves it inside `root` — the same result Docker
//! gets by extracting inside a chroot, and just as confined: `..` at `root`
//! stays at `root` and absolute targets start at `root`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{
    self as rfs, AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags, CWD,
};
use rustix::io::Errno;
use tar::EntryType;

use crate::compress::{peek, Decoder};
use crate::error::{lossy, ArchiveError};
use crate::io::{with_hash_thread, ChunkHashReader, CHUNK};
use crate::limits::{LimitKind, Limits};
use crate::path::{clean_into, split};

/// How a layer is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Convert `.wh.NAME` entries into overlayfs whiteouts (char device 0:0)
    /// and `.wh..wh..opq` into the opaque xattr on the directory. When false
    /// (e.g. `cp` into a container, or flattening), a whiteout removes the
    /// named path in `root` instead, and an opaque marker empties the
    /// directory of entries that this layer did not create.
    pub overlay_whiteouts: bool,
    /// xattr namespace for overlay metadata: `trusted.overlay.` as root,
    /// `user.overlay.` when rootless (userxattr mount).
    pub xattr_prefix: String,
    /// Device nodes allowed (root only); otherwise char/block device entries
    /// are skipped with a warning. FIFOs are always allowed.
    pub allow_devices: bool,
    /// chown entries to their uid/gid (root); when false ownership is left
    /// as the current user.
    pub preserve_owner: bool,
    /// uid/gid shift added to every owner (rootless id maps); 0 = none.
    pub id_shift: u32,
    /// Refuse to replace an existing directory with a non-directory or a
    /// non-directory with a directory (`cp` into a container, as Docker
    /// refuses it), instead of replacing it as a layer does.
    pub no_overwrite_dir_non_dir: bool,
    /// Every entry owned by this (uid, gid), whatever the tar says (a copy
    /// into a container whose root is not host root); chowns even when
    /// `preserve_owner` is false.
    pub owner: Option<(u32, u32)>,
    /// How much the layer may unpack to (see [`Limits::from_env`]).
    pub limits: Limits,
}

impl ApplyOptions {
    /// Sane defaults for the effective user: everything as root; as a user,
    /// `user.overlay.` xattrs, no devices, no chown.
    pub fn for_current_user() -> Self {
        let root = rustix::process::geteuid().is_root();
        ApplyOptions {
            overlay_whiteouts: true,
            xattr_prefix: if root {
                "trusted.overlay.".to_owned()
            } else {
                "user.overlay.".to_owned()
            },
            allow_devices: root,
            preserve_owner: root,
            id_shift: 0,
            no_overwrite_dir_non_dir: false,
            owner: None,
            limits: Limits::from_env(),
        }
    }
}

/// What `apply_layer` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `sha256:<hex>` of the uncompressed tar stream.
    pub diff_id: String,
    /// Uncompressed bytes.
    pub size: u64,
    /// Tar entries read (including skipped ones).
    pub entries: u64,
}

const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// The most extents a sparse file's map may list (a real one has a few).
const MAX_SPARSE_EXTENTS: usize = 1 << 20;
/// Overlay metadata a layer must not smuggle in through PAX xattrs.
const OVERLAY_XATTRS: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

/// Apply a layer tar (any compression) into the existing directory `root`.
///
/// Single pass: the uncompressed stream is hashed (on a second thread)
/// while it is extracted. The input is read to EOF, including the padding
/// after the end of the tar, so a caller can tee the raw bytes into a blob
/// writer. Nothing is fsynced; see [`sync_tree`](crate::sync_tree).
///
/// A stream longer than `opts.limits.max_size` uncompressed, or with more
/// than `opts.limits.max_entries` entries, stops with
/// [`ArchiveError::Limit`]; what was written into `root` until then is left
/// for the caller to remove (it applies into a staging directory). Sparse
/// files (GNU `S` entries and the PAX 0.0, 0.1 and 1.0 formats) are written
/// as holes.
pub fn apply_layer<R: Read>(input: R, root: &Path, opts: &ApplyOptions) -> Result<Applied, ArchiveError> {
    let root_fd = rfs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        ArchiveError::Root {
            root: root.to_owned(),
            op: "open",
            source: e.into(),
        }
    })?;
    let stream_err = |after: String| move |source| ArchiveError::Stream { after, source };
    let (kind, mut raw) = peek(input).map_err(stream_err(String::new()))?;
    let max_size = opts.limits.max_size;
    let too_big = || ArchiveError::Limit {
        kind: LimitKind::Size,
        limit: max_size,
    };
    let (res, diff_id) = with_hash_thread(|pipe| {
        let dec = Decoder::new(kind, &mut raw).map_err(stream_err(String::new()))?;
        // The guard keeps the tar reader from buffering a huge extended header.
        let dec = crate::guard::MetaGuard::new(dec);
        let mut archive = tar::Archive::new(ChunkHashReader::new(dec, pipe, max_size));
        let mut ap = Applier::new(root_fd, opts);
        let ran = ap.run(&mut archive);
        let mut reader = archive.into_inner();
        // However the reader's error surfaced (a short entry, a bad header).
        if reader.limit_hit() {
            return Err(too_big());
        }
        let (entries, last) = ran?;
        let size = match reader.drain() {
            Ok(size) => size,
            Err(_) if reader.limit_hit() => return Err(too_big()),
            Err(e) => return Err(stream_err(lossy(&last))(e)),
        };
        ap.finish_dirs()?;
        Ok::<_, ArchiveError>((size, entries, last))
    });
    let (size, entries, last) = res?;
    io::copy(&mut raw, &mut io::sink()).map_err(stream_err(lossy(&last)))?;
    Ok(Applied { diff_id, size, entries })
}

/// Header facts of one entry, copied out so the entry can be read.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// A PAX sparse file (`GNU.sparse.*` records).
    sparse: Option<PaxSparse>,
}

/// The `GNU.sparse.*` records of a PAX header: GNU tar's sparse formats
/// 0.0 (`offset`/`numbytes` pairs), 0.1 (`map`) and 1.0 (the map at the
/// start of the data; `major`=1, `minor`=0).
#[derive(Default)]
struct PaxSparse {
    major: Option<u64>,
    minor: Option<u64>,
    /// The file's real name (the entry's is `…/GNUSparseFile.<pid>/…`).
    name: Option<Vec<u8>>,
    /// The file's length with its holes.
    realsize: Option<u64>,
    /// (offset, length) of the data extents, for 0.0 and 0.1.
    map: Vec<(u64, u64)>,
    /// A 0.0 `offset` waiting for its `numbytes`.
    offset: Option<u64>,
}

impl PaxSparse {
    /// Takes one `GNU.sparse.<key>` record.
    fn record(&mut self, key: &[u8], v: &[u8]) -> Result<(), String> {
        let num = |v: &[u8]| -> Result<u64, String> {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| format!("bad sparse record GNU.sparse.{}", lossy(key)))
        };
        match key {
            b"major" => self.major = Some(num(v)?),
            b"minor" => self.minor = Some(num(v)?),
            b"name" => self.name = Some(v.to_vec()),
            b"size" | b"realsize" => self.realsize = Some(num(v)?),
            b"offset" => self.offset = Some(num(v)?),
            b"numbytes" => {
                let off = self.offset.take().ok_or("sparse record numbytes without its offset")?;
                self.push(off, num(v)?)?;
            }
            b"map" => {
                let nums = v
                    .split(|&b| b == b',')
                    .filter(|n| !n.is_empty())
                    .map(num)
                    .collect::<Result<Vec<u64>, String>>()?;
                if nums.len() % 2 != 0 {
                    return Err("sparse map with an odd count of numbers".into());
                }
                for pair in nums.chunks(2) {
                    self.push(pair[0], pair[1])?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn push(&mut self, off: u64, len: u64) -> Result<(), String> {
        if self.map.len() >= MAX_SPARSE_EXTENTS {
            return Err(format!("sparse map of more than {MAX_SPARSE_EXTENTS} extents"));
        }
        self.map.push((off, len));
        Ok(())
    }

    /// Whether the records describe a sparse file at all.
    fn is_sparse(&self) -> bool {
        self.realsize.is_some() || self.major.is_some()
    }
}

/// A directory whose mode and mtime are set once all entries are written.
struct DeferredDir {
    path: Vec<u8>,
    mode: u32,
    mtime: Timespec,
}

struct Applier<'o> {
    root: Rc<OwnedFd>,
    opts: &'o ApplyOptions,
    opaque_xattr: String,
    /// The last resolved parent directory (entries come grouped by dir).
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
    dirs: Vec<DeferredDir>,
    /// Paths this layer created; only kept when whiteouts are applied as
    /// removals, where an opaque marker must spare them.
    created: Option<HashSet<Vec<u8>>>,
    buf: Vec<u8>,
    clean: Vec<u8>,
    target: Vec<u8>,
}

fn open_in_root(root: BorrowedFd<'_>, path: &[u8]) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match rfs::openat2(
            root,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            // The kernel asks for a retry when a rename raced the lookup.
            Err(Errno::AGAIN) if tries < 32 => tries += 1,
            r => return r,
        }
    }
}

fn ts(sec: i64, nsec: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Parse a PAX time value (`1700000000.5`, `-3.25`).
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nsec: i64 = 0;
    for (i, c) in frac.bytes().take(9).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        nsec += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
    }
    Some(if !neg {
        Timespec {
            tv_sec: secs,
            tv_nsec: nsec,
        }
    } else if nsec == 0 {
        Timespec {
            tv_sec: -secs,
            tv_nsec: 0,
        }
    } else {
        Timespec {
            tv_sec: -secs - 1,
            tv_nsec: 1_000_000_000 - nsec,
        }
    })
}

/// Remove `name` in `dir`, recursively if it is a directory. Never follows
/// symlinks (a symlink is removed, not its target).
/// `rm -rf dir/name` without ever following a symlink: unlinks a
/// non-directory, empties and removes a directory; a missing name is fine.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => remove_tree(dir, name),
        Err(e) => Err(e),
    }
}

/// The names in the directory open as `dir`, without `.` and `..`.
pub fn dir_entries(dir: BorrowedFd<'_>) -> Result<Vec<std::ffi::CString>, Errno> {
    let mut names = Vec::new();
    for e in Dir::read_from(dir)? {
        let e = e?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            names.push(n.to_owned());
        }
    }
    Ok(names)
}

fn remove_tree(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for child in dir_entries(fd.as_fd())? {
        remove_all_at(fd.as_fd(), child.to_bytes())?;
    }
    match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Where xattrs go: an open file, or a name in a directory (never followed).
enum XattrTarget<'a> {
    Fd(BorrowedFd<'a>),
    At(BorrowedFd<'a>, &'a [u8]),
}

impl<'o> Applier<'o> {
    fn new(root: OwnedFd, opts: &'o ApplyOptions) -> Self {
        Applier {
            root: Rc::new(root),
            opts,
            opaque_xattr: format!("{}opaque", opts.xattr_prefix),
            cache: None,
            dirs: Vec::new(),
            created: (!opts.overlay_whiteouts).then(HashSet::new),
            buf: vec![0; CHUNK],
            clean: Vec::new(),
            target: Vec::new(),
        }
    }

    /// Apply every entry; returns the count and the last entry's raw name.
    fn run<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<(u64, Vec<u8>), ArchiveError> {
        let mut last: Vec<u8> = Vec::new();
        let mut entries = archive.entries().map_err(|source| ArchiveError::Stream {
            after: String::new(),
            source,
        })?;
        let mut count = 0u64;
        loop {
            let mut entry = match entries.next() {
                None => break,
                Some(Ok(e)) => e,
                Some(Err(source)) => {
                    return Err(ArchiveError::Stream {
                        after: lossy(&last),
                        source,
                    })
                }
            };
            count += 1;
            if count > self.opts.limits.max_entries {
                return Err(ArchiveError::Limit {
                    kind: LimitKind::Entries,
                    limit: self.opts.limits.max_entries,
                });
            }
            last.clear();
            last.extend_from_slice(&entry.path_bytes());
            self.entry(&mut entry, &last)?;
        }
        Ok((count, last))
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<(), ArchiveError> {
        let hdr = entry.header();
        let mut etype = hdr.entry_type();
        if matches!(etype, EntryType::Regular | EntryType::Continuous) && raw.ends_with(b"/") {
            // Pre-POSIX tars mark directories by a trailing slash only.
            etype = EntryType::Directory;
        }
        if matches!(
            etype,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let bad = |e: io::Error| ArchiveError::invalid(raw, format!("bad header: {e}"));
        let mut meta = Meta {
            mode: hdr.mode().map_err(bad)? & 0o7777,
            uid: hdr.uid().map_err(bad)?,
            gid: hdr.gid().map_err(bad)?,
            mtime: Timespec {
                tv_sec: i64::try_from(hdr.mtime().map_err(bad)?).unwrap_or(i64::MAX),
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
            sparse: None,
        };
        let dev = if matches!(etype, EntryType::Char | EntryType::Block) {
            let major = hdr.device_major().map_err(bad)?.unwrap_or(0);
            let minor = hdr.device_minor().map_err(bad)?.unwrap_or(0);
            rfs::makedev(major, minor)
        } else {
            0
        };
        self.target.clear();
        if let Some(l) = entry.link_name_bytes() {
            self.target.extend_from_slice(&l);
        }
        if let Some(exts) = entry.pax_extensions().map_err(bad)? {
            for ext in exts {
                let ext = ext.map_err(bad)?;
                let (k, v) = (ext.key_bytes(), ext.value_bytes());
                if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                    meta.xattrs.push((name.to_vec(), v.to_vec()));
                } else if let Some(key) = k.strip_prefix(b"GNU.sparse.") {
                    meta.sparse
                        .get_or_insert_with(PaxSparse::default)
                        .record(key, v)
                        .map_err(|e| ArchiveError::invalid(raw, e))?;
                } else if k == b"mtime" {
                    meta.mtime = parse_pax_time(v).ok_or_else(|| ArchiveError::invalid(raw, "bad PAX mtime"))?;
                } else if k == b"uid" || k == b"gid" {
                    let id = std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| ArchiveError::invalid(raw, "bad PAX uid/gid"))?;
                    if k == b"uid" {
                        meta.uid = id;
                    } else {
                        meta.gid = id;
                    }
                }
            }
        }

        meta.sparse = meta.sparse.filter(PaxSparse::is_sparse);
        // A PAX sparse file's entry name is a stand-in; its real one is a record.
        let sparse_name = meta.sparse.as_mut().and_then(|s| s.name.take());
        let raw = sparse_name.as_deref().unwrap_or(raw);
        if meta.sparse.is_some() && !matches!(etype, EntryType::Regular | EntryType::Continuous) {
            return Err(ArchiveError::invalid(
                raw,
                "sparse records on an entry that is not a file",
            ));
        }
        let mut clean = std::mem::take(&mut self.clean);
        let r = self.entry_at(entry, raw, etype, &meta, dev, &mut clean);
        self.clean = clean;
        r
    }

    fn entry_at<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        etype: EntryType,
        meta: &Meta,
        dev: u64,
        clean: &mut Vec<u8>,
    ) -> Result<(), ArchiveError> {
        clean_into(raw, clean).map_err(|_| ArchiveError::Escapes { path: lossy(raw) })?;
        if clean.is_empty() {
            // The root itself (`./`): Docker leaves the existing root alone.
            return if etype == EntryType::Directory {
                Ok(())
            } else {
                Err(ArchiveError::invalid(raw, "only a directory can name the root"))
            };
        }
        let (parent, name) = split(clean);
        if name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(parent, name, raw, meta);
        }
        match etype {
            EntryType::Char | EntryType::Block if !self.opts.allow_devices => {
                log::warn!(
                    "layer entry {:?}: device node skipped (devices not allowed)",
                    lossy(raw)
                );
                return Ok(());
            }
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link
            | EntryType::Char
            | EntryType::Block
            | EntryType::Fifo => {}
            other => {
                log::warn!("layer entry {:?}: unsupported entry type {other:?} skipped", lossy(raw));
                return Ok(());
            }
        }
        let dir = self
            .lookup(parent, true)
            .map_err(|e| ArchiveError::io(raw, "resolve parent directory", e))?;
        let dir = dir.as_fd();
        match etype {
            EntryType::Directory => self.make_dir(dir, name, clean, raw, meta)?,
            EntryType::Symlink => self.make_symlink(dir, name, raw, meta)?,
            EntryType::Link => self.make_hardlink(dir, name, clean, raw)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ft = match etype {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.make_node(dir, name, raw, meta, ft, dev)?;
            }
            EntryType::GNUSparse => self.make_gnu_sparse_file(dir, name, raw, meta, entry)?,
            _ => self.make_file(dir, name, raw, meta, entry)?,
        }
        if let Some(created) = &mut self.created {
            created.insert(clean.clone());
        }
        Ok(())
    }

    /// Resolve a clean directory path inside the root (cached), optionally
    /// creating missing directories.
    fn lookup(&mut self, path: &[u8], create: bool) -> Result<Rc<OwnedFd>, Errno> {
        if path.is_empty() {
            return Ok(self.root.clone());
        }
        if let Some((p, fd)) = &self.cache {
            if p == path {
                return Ok(fd.clone());
            }
        }
        let fd = match open_in_root(self.root.as_fd(), path) {
            Ok(fd) => Rc::new(fd),
            Err(Errno::NOENT) if create => self.mkdir_all(path)?,
            Err(e) => return Err(e),
        };
        let (p, f) = self.cache.get_or_insert_with(|| (Vec::new(), fd.clone()));
        p.clear();
        p.extend_from_slice(path);
        *f = fd.clone();
        Ok(fd)
    }

    /// Create the missing directories of `path` (mode 0755), each one by
    /// `mkdirat` in its in-root-resolved parent.
    fn mkdir_all(&mut self, path: &[u8]) -> Result<Rc<OwnedFd>, Errno> {
        let mut cur = self.root.clone();
        let mut start = 0;
        for comp in path.split(|&b| b == b'/') {
            let end = start + comp.len();
            let prefix = &path[..end];
            cur = match open_in_root(self.root.as_fd(), prefix) {
                Ok(fd) => Rc::new(fd),
                Err(Errno::NOENT) => {
                    match rfs::mkdirat(cur.as_fd(), comp, Mode::from_raw_mode(0o755)) {
                        // EEXIST: a dangling symlink; the lookup below
                        // resolves it in the root or fails.
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e),
                    }
                    if let Some(created) = &mut self.created {
                        created.insert(prefix.to_vec());
                    }
                    Rc::new(open_in_root(self.root.as_fd(), prefix)?)
                }
                Err(e) => return Err(e),
            };
            start = end + 1;
        }
        Ok(cur)
    }

    /// Remove whatever is at `name` (recursively). Forgets the cached parent:
    /// the removed node may have been on its path.
    fn remove(&mut self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
        self.cache = None;
        remove_all_at(dir, name)
    }

    /// With [`ApplyOptions::no_overwrite_dir_non_dir`]: an error when the
    /// node at `name` is a directory and the entry is not (`entry_is_dir`
    /// false), or the other way round. A missing node is fine.
    fn refuse_kind_change(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        raw: &[u8],
        entry_is_dir: bool,
    ) -> Result<(), ArchiveError> {
        if !self.opts.no_overwrite_dir_non_dir {
            return Ok(());
        }
        let existing_is_dir = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => FileType::from_raw_mode(st.st_mode) == FileType::Directory,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(ArchiveError::io(raw, "stat existing node", e)),
        };
        if existing_is_dir == entry_is_dir {
            return Ok(());
        }
        Err(ArchiveError::KindChange {
            path: String::from_utf8_lossy(raw).into_owned(),
            dir_exists: existing_is_dir,
        })
    }

    /// Run `create`; if the name is taken, remove the old node and retry once.
    fn replace(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        raw: &[u8],
        op: &'static str,
        mut create: impl FnMut() -> Result<(), Errno>,
    ) -> Result<(), ArchiveError> {
        match create() {
            Err(Errno::EXIST) => {
                self.refuse_kind_change(dir, name, raw, false)?;
                self.remove(dir, name)
                    .map_err(|e| ArchiveError::io(raw, "remove existing node", e))?;
                create().map_err(|e| ArchiveError::io(raw, op, e))
            }
            r => r.map_err(|e| ArchiveError::io(raw, op, e)),
        }
    }

    fn owner(&self, meta: &Meta, raw: &[u8]) -> Result<Option<(rfs::Uid, rfs::Gid)>, ArchiveError> {
        if let Some((u, g)) = self.opts.owner {
            return Ok(Some((rfs::Uid::from_raw(u), rfs::Gid::from_raw(g))));
        }
        if !self.opts.preserve_owner {
            return Ok(None);
        }
        let map = |id: u64| {
            u32::try_from(id)
                .ok()
                .and_then(|id| id.checked_add(self.opts.id_shift))
                .filter(|&id| id != u32::MAX)
                .ok_or_else(|| ArchiveError::invalid(raw, format!("owner id {id} out of range")))
        };
        Ok(Some((
            rfs::Uid::from_raw(map(meta.uid)?),
            rfs::Gid::from_raw(map(meta.gid)?),
        )))
    }

    fn chown_at(&self, dir: BorrowedFd<'_>, name: &[u8], raw: &[u8], meta: &Meta) -> Result<(), ArchiveError> {
        if let Some((u, g)) = self.owner(meta, raw)? {
            rfs::chownat(dir, name, Some(u), Some(g), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| ArchiveError::io(raw, "chown", e))?;
        }
        Ok(())
    }

    fn set_xattrs(&self, target: XattrTarget<'_>, raw: &[u8], meta: &Meta) -> Result<(), ArchiveError> {
        for (name, value) in &meta.xattrs {
            if OVERLAY_XATTRS.iter().any(|p| name.starts_with(p)) {
                log::warn!("layer entry {:?}: overlay xattr {:?} ignored", lossy(raw), lossy(name));
                continue;
            }
            let r = match target {
                XattrTarget::Fd(fd) => rfs::fsetxattr(fd, name.as_slice(), value, XattrFlags::empty()),
                XattrTarget::At(dir, n) => {
                    // A symlink or special file cannot be opened for
                    // fsetxattr; name it through the directory fd's magic
                    // link. lsetxattr never follows the final component.
                    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
                    p.extend_from_slice(n);
                    rfs::lsetxattr(p, name.as_slice(), value, XattrFlags::empty())
                }
            };
            match r {
                Ok(()) => {}
                Err(e @ (Errno::NOTSUP | Errno::PERM)) => {
                    log::warn!("layer entry {:?}: xattr {:?} not set: {e}", lossy(raw), lossy(name))
                }
                Err(e) => return Err(ArchiveError::io(raw, "set xattr", e)),
            }
        }
        Ok(())
    }

    /// A regular file (a PAX sparse one with its holes).
    fn make_file<R: Read>(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        raw: &[u8],
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ArchiveError> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut fd = None;
        self.replace(dir, name, raw, "create file", || {
            fd = Some(rfs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?);
            Ok(())
        })?;
        let mut file = File::from(fd.expect("created"));
        match &meta.sparse {
            Some(sparse) => self.write_pax_sparse(&mut file, entry, sparse, raw)?,
            None => {
                let written = self.copy_data(&mut file, entry, u64::MAX, raw)?;
                // The tar reader reports a stream that ends inside an entry
                // as a short entry.
                if written != entry.size() {
                    return Err(short_entry(raw, written, entry.size()));
                }
                if written >= WRITEBACK_AT {
                    start_writeback(&file);
                }
            }
        }
        self.file_metadata(&file, raw, meta)
    }

    /// Copies up to `max` bytes of entry data into `file` at its offset;
    /// returns how many there were.
    fn copy_data(&mut self, file: &mut File, r: &mut impl Read, max: u64, raw: &[u8]) -> Result<u64, ArchiveError> {
        let mut written = 0u64;
        while written < max {
            let want = (max - written).min(self.buf.len() as u64) as usize;
            let n = match r.read(&mut self.buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ArchiveError::io(raw, "read entry data", e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| ArchiveError::io(raw, "write file", e))?;
            written += n as u64;
        }
        Ok(written)
    }

    /// A PAX sparse file: each data extent at its offset, the rest holes.
    /// For format 1.0 the map comes first in the data, as decimal lines
    /// (count, then offset and length of each extent), padded to 512 bytes.
    fn write_pax_sparse<R: Read>(
        &mut self,
        file: &mut File,
        entry: &mut tar::Entry<'_, R>,
        sparse: &PaxSparse,
        raw: &[u8],
    ) -> Result<(), ArchiveError> {
        let bad = |what: String| ArchiveError::invalid(raw, what);
        let realsize = sparse
            .realsize
            .ok_or_else(|| bad("sparse file without its real size".into()))?;
        let mut data = io::BufReader::with_capacity(64 * 1024, entry);
        let map = match (sparse.major, sparse.minor) {
            (Some(1), Some(0)) => read_sparse_map_1_0(&mut data).map_err(|e| bad(e.to_string()))?,
            (None | Some(0), _) => sparse.map.clone(),
            (major, minor) => {
                return Err(bad(format!(
                    "unsupported sparse format {}.{}",
                    major.unwrap_or(0),
                    minor.unwrap_or(0)
                )))
            }
        };
        let mut end = 0u64;
        for (off, len) in map {
            let stop = off.checked_add(len).filter(|&s| off >= end && s <= realsize);
            let Some(stop) = stop else {
                return Err(bad(format!(
                    "sparse extent {off}+{len} overlaps another or lies past the file's size {realsize}"
                )));
            };
            file.seek(SeekFrom::Start(off))
                .map_err(|e| ArchiveError::io(raw, "seek in sparse file", e))?;
            let got = self.copy_data(file, &mut data, len, raw)?;
            if got != len {
                return Err(short_entry(raw, got, len));
            }
            end = stop;
        }
        file.set_len(realsize)
            .map_err(|e| ArchiveError::io(raw, "size sparse file", e))
    }

    /// A GNU sparse entry (type `S`): the tar reader knows its map (some of
    /// it in extension headers only it reads) and writes the data extents
    /// with holes between them, by name: the file is made through this
    /// process's link to the (in-root resolved) directory, after whatever
    /// had the name is removed.
    fn make_gnu_sparse_file<R: Read>(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        raw: &[u8],
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), ArchiveError> {
        use std::os::unix::ffi::OsStrExt;
        self.refuse_kind_change(dir, name, raw, false)?;
        self.remove(dir, name)
            .map_err(|e| ArchiveError::io(raw, "remove existing node", e))?;
        let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
        path.extend_from_slice(name);
        entry.set_preserve_permissions(false);
        entry.set_preserve_mtime(false);
        entry.set_unpack_xattrs(false);
        // Mode 0 until the header's is set below, with owner and set-id bits.
        entry.set_mask(0o7777);
        let file = match entry.unpack(std::ffi::OsStr::from_bytes(&path)) {
            Ok(tar::Unpacked::File(f)) => f,
            Ok(_) => return Err(ArchiveError::invalid(raw, "sparse entry did not unpack as a file")),
            Err(e) => return Err(ArchiveError::io(raw, "write sparse file", e)),
        };
        self.file_metadata(&file, raw, meta)
    }

    /// Owner, then mode (chown clears set-id bits), then xattrs (chown and
    /// writes clear security.capability), then times.
    fn file_metadata(&self, file: &File, raw: &[u8], meta: &Meta) -> Result<(), ArchiveError> {
        if let Some((u, g)) = self.owner(meta, raw)? {
            rfs::fchown(file, Some(u), Some(g)).map_err(|e| ArchiveError::io(raw, "chown", e))?;
        }
        rfs::fchmod(file, Mode::from_raw_mode(meta.mode)).map_err(|e| ArchiveError::io(raw, "chmod", e))?;
        self.set_xattrs(XattrTarget::Fd(file.as_fd()), raw, meta)?;
        rfs::futimens(file, &ts(meta.mtime.tv_sec, meta.mtime.tv_nsec))
            .map_err(|e| ArchiveError::io(raw, "set times", e))?;
        Ok(())
    }

    fn make_dir(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        clean: &[u8],
        raw: &[u8],
        meta: &Meta,
    ) -> Result<(), ArchiveError> {
        let mkdir = || rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755));
        match mkdir() {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let st = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| ArchiveError::io(raw, "stat existing node", e))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    self.refuse_kind_change(dir, name, raw, true)?;
                    self.remove(dir, name)
                        .map_err(|e| ArchiveError::io(raw, "remove existing node", e))?;
                    mkdir().map_err(|e| ArchiveError::io(raw, "create directory", e))?;
                }
            }
            Err(e) => return Err(ArchiveError::io(raw, "create directory", e)),
        }
        if !meta.xattrs.is_empty() {
            let fd = rfs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| ArchiveError::io(raw, "open directory", e))?;
            if let Some((u, g)) = self.owner(meta, raw)? {
                rfs::fchown(&fd, Some(u), Some(g)).map_err(|e| ArchiveError::io(raw, "chown", e))?;
            }
            self.set_xattrs(XattrTarget::Fd(fd.as_fd()), raw, meta)?;
        } else {
            self.chown_at(dir, name, raw, meta)?;
        }
        self.dirs.push(DeferredDir {
            path: clean.to_vec(),
            mode: meta.mode,
            mtime: meta.mtime,
        });
        Ok(())
    }

    fn make_symlink(&mut self, dir: BorrowedFd<'_>, name: &[u8], raw: &[u8], meta: &Meta) -> Result<(), ArchiveError> {
        let target = std::mem::take(&mut self.target);
        let r = self.replace(dir, name, raw, "create symlink", || {
            rfs::symlinkat(target.as_slice(), dir, name)
        });
        self.target = target;
        r?;
        self.chown_at(dir, name, raw, meta)?;
        self.set_xattrs(XattrTarget::At(dir, name), raw, meta)?;
        rfs::utimensat(
            dir,
            name,
            &ts(meta.mtime.tv_sec, meta.mtime.tv_nsec),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| ArchiveError::io(raw, "set times", e))
    }

    fn make_hardlink(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        clean: &[u8],
        raw: &[u8],
    ) -> Result<(), ArchiveError> {
        let mut target = Vec::new();
        let escapes = || ArchiveError::LinkEscapes {
            path: lossy(raw),
            target: lossy(&self.target),
        };
        clean_into(&self.target, &mut target).map_err(|_| escapes())?;
        if target.is_empty() {
            return Err(ArchiveError::invalid(raw, "hardlink to the layer root"));
        }
        if target == clean {
            return Ok(());
        }
        let (tparent, tname) = split(&target);
        // The target's directory is resolved in the root like any parent;
        // linkat without AT_SYMLINK_FOLLOW links a symlink itself, never the
        // file it points to.
        let tdir = self
            .lookup(tparent, false)
            .map_err(|e| ArchiveError::io(raw, "resolve hardlink target", e))?;
        self.replace(dir, name, raw, "create hardlink", || {
            rfs::linkat(tdir.as_fd(), tname, dir, name, AtFlags::empty())
        })
    }

    fn make_node(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        raw: &[u8],
        meta: &Meta,
        ft: FileType,
        dev: u64,
    ) -> Result<(), ArchiveError> {
        self.replace(dir, name, raw, "create node", || {
            rfs::mknodat(dir, name, ft, Mode::from_raw_mode(0o600), dev)
        })?;
        self.chown_at(dir, name, raw, meta)?;
        // The node was created by us a moment ago in a directory we hold,
        // so it is not a symlink; special files cannot be opened for fchmod.
        rfs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
            .map_err(|e| ArchiveError::io(raw, "chmod", e))?;
        self.set_xattrs(XattrTarget::At(dir, name), raw, meta)?;
        rfs::utimensat(
            dir,
            name,
            &ts(meta.mtime.tv_sec, meta.mtime.tv_nsec),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| ArchiveError::io(raw, "set times", e))
    }

    fn whiteout(&mut self, parent: &[u8], name: &[u8], raw: &[u8], meta: &Meta) -> Result<(), ArchiveError> {
        if name == OPAQUE_MARKER {
            return self.opaque(parent, raw);
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            // aufs bookkeeping (.wh..wh.plnk, ...): meaningless here.
            return Ok(());
        }
        let victim = &name[WHITEOUT_PREFIX.len()..];
        if victim == b".." {
            return Err(ArchiveError::Escapes { path: lossy(raw) });
        }
        if victim.is_empty() || victim == b"." {
            return Err(ArchiveError::invalid(raw, "whiteout names no file"));
        }
        let overlay = self.opts.overlay_whiteouts;
        let dir = match self.lookup(parent, overlay) {
            Ok(d) => d,
            // Nothing there, nothing to remove.
            Err(Errno::NOENT) if !overlay => return Ok(()),
            Err(e) => return Err(ArchiveError::io(raw, "resolve parent directory", e)),
        };
        let dir = dir.as_fd();
        if overlay {
            self.replace(dir, victim, raw, "create whiteout", || {
                rfs::mknodat(dir, victim, FileType::CharacterDevice, Mode::empty(), 0)
            })?;
            self.chown_at(dir, victim, raw, meta)
        } else {
            self.remove(dir, victim)
                .map_err(|e| ArchiveError::io(raw, "remove whited-out path", e))
        }
    }

    fn opaque(&mut self, dirpath: &[u8], raw: &[u8]) -> Result<(), ArchiveError> {
        let overlay = self.opts.overlay_whiteouts;
        let dir = match self.lookup(dirpath, overlay) {
            Ok(d) => d,
            Err(Errno::NOENT) if !overlay => return Ok(()),
            Err(e) => return Err(ArchiveError::io(raw, "resolve opaque directory", e)),
        };
        let fd = rfs::openat(
            dir.as_fd(),
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ArchiveError::io(raw, "open opaque directory", e))?;
        if overlay {
            return rfs::fsetxattr(&fd, self.opaque_xattr.as_str(), b"y", XattrFlags::empty())
                .map_err(|e| ArchiveError::io(raw, "set opaque xattr", e));
        }
        let children = dir_entries(fd.as_fd()).map_err(|e| ArchiveError::io(raw, "list opaque directory", e))?;
        let mut path = Vec::new();
        for child in children {
            path.clear();
            path.extend_from_slice(dirpath);
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(child.to_bytes());
            if self.created.as_ref().is_some_and(|c| c.contains(&path)) {
                continue;
            }
            self.remove(fd.as_fd(), child.to_bytes())
                .map_err(|e| ArchiveError::io(raw, "empty opaque directory", e))?;
        }
        Ok(())
    }

    /// Set directory modes and mtimes now that nothing more is written in
    /// them. A directory that was since removed or replaced is skipped.
    fn finish_dirs(&mut self) -> Result<(), ArchiveError> {
        let dirs = std::mem::take(&mut self.dirs);
        for d in &dirs {
            let raw = &d.path;
            let (parent, name) = split(&d.path);
            let Ok(pfd) = self.lookup(parent, false) else {
                continue;
            };
            let pfd = pfd.as_fd();
            let mode = Mode::from_raw_mode(d.mode);
            let times = ts(d.mtime.tv_sec, d.mtime.tv_nsec);
            match rfs::openat(
                pfd,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => {
                    rfs::fchmod(&fd, mode).map_err(|e| ArchiveError::io(raw, "chmod", e))?;
                    rfs::futimens(&fd, &times).map_err(|e| ArchiveError::io(raw, "set times", e))?;
                }
                Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR) => {}
                Err(Errno::ACCESS) => {
                    // Unreadable to a non-root user: check the type without
                    // following, then change it by name.
                    let st = rfs::statat(pfd, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| ArchiveError::io(raw, "stat directory", e))?;
                    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                        rfs::chmodat(pfd, name, mode, AtFlags::empty())
                            .map_err(|e| ArchiveError::io(raw, "chmod", e))?;
                        rfs::utimensat(pfd, name, &times, AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(|e| ArchiveError::io(raw, "set times", e))?;
                    }
                }
                Err(e) => return Err(ArchiveError::io(raw, "open directory", e)),
            }
        }
        Ok(())
    }
}

/// The error for an entry whose data ends early.
fn short_entry(raw: &[u8], got: u64, want: u64) -> ArchiveError {
    ArchiveError::io(
        raw,
        "read entry data",
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("stream ended after {got} of {want} bytes"),
        ),
    )
}

/// The map at the start of a PAX 1.0 sparse file's data: a count, then an
/// offset and a length per extent, each a decimal line; then padding to
/// the next 512 bytes.
fn read_sparse_map_1_0(r: &mut impl BufRead) -> io::Result<Vec<(u64, u64)>> {
    let mut consumed = 0u64;
    let mut line = Vec::new();
    let mut number = |r: &mut dyn BufRead| -> io::Result<u64> {
        line.clear();
        // 20 digits and the newline at most.
        let n = r.take(21).read_until(b'\n', &mut line)?;
        consumed += n as u64;
        let digits = line.strip_suffix(b"\n").unwrap_or(&[]);
        std::str::from_utf8(digits)
            .ok()
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed sparse map"))
    };
    let count = number(r)?;
    if count > MAX_SPARSE_EXTENTS as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("sparse map of more than {MAX_SPARSE_EXTENTS} extents"),
        ));
    }
    let mut map = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let off = number(r)?;
        let len = number(r)?;
        map.push((off, len));
    }
    let pad = consumed.next_multiple_of(512) - consumed;
    let skipped = io::copy(&mut r.take(pad), &mut io::sink())?;
    if skipped != pad {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "sparse map cut short"));
    }
    Ok(map)
}

/// Flush the filesystem holding `root` to disk once (`syncfs`), instead of
/// an fsync per file.
pub fn sync_tree(root: &Path) -> Result<(), ArchiveError> {
    let err = |op| {
        move |e: Errno| ArchiveError::Root {
            root: root.to_owned(),
            op,
            source: e.into(),
        }
    };
    let fd = rfs::openat(
        CWD,
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(err("open"))?;
    rfs::syncfs(&fd).map_err(err("syncfs"))
}

/// Files at least this big have their write-back started as soon as they
/// are written (see [`start_writeback`]).
const WRITEBACK_AT: u64 = 1 << 20;

/// Asks the kernel to start writing `file`'s dirty pages to disk now,
/// without waiting: the layer is synced as a whole before it is published,
/// and by then most of a big layer's data is already on its way, written
/// while the rest was still downloading or unpacking.
pub fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range only reads the descriptor number; `file` is
    // open for the whole call. Failure (e.g. an fs without support) is
    // harmless: the later sync does the work.
    unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}
