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
use std::io::{self, Read, Write};
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
/// Overlay metadata a layer must not smuggle in through PAX xattrs.
const OVERLAY_XATTRS: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

/// Apply a layer tar (any compression) into the existing directory `root`.
///
/// Single pass: the uncompressed stream is hashed (on a second thread)
/// while it is extracted. The input is read to EOF, including the padding
/// after the end of the tar, so a caller can tee the raw bytes into a blob
/// writer. Nothing is fsynced; see [`sync_tree`](crate::sync_tree).
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
    let (res, diff_id) = with_hash_thread(|pipe| {
        let dec = Decoder::new(kind, &mut raw).map_err(stream_err(String::new()))?;
        let mut archive = tar::Archive::new(ChunkHashReader::new(dec, pipe));
        let mut ap = Applier::new(root_fd, opts);
        let (entries, last) = ap.run(&mut archive)?;
        let (size, _) = archive.into_inner().drain().map_err(stream_err(lossy(&last)))?;
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
            _ => self.make_file(dir, name, raw, meta, entry, etype == EntryType::GNUSparse)?,
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
                self.remove(dir, name)
                    .map_err(|e| ArchiveError::io(raw, "remove existing node", e))?;
                create().map_err(|e| ArchiveError::io(raw, op, e))
            }
            r => r.map_err(|e| ArchiveError::io(raw, op, e)),
        }
    }

    fn owner(&self, meta: &Meta, raw: &[u8]) -> Result<Option<(rfs::Uid, rfs::Gid)>, ArchiveError> {
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

    fn make_file<R: Read>(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        raw: &[u8],
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
        sparse: bool,
    ) -> Result<(), ArchiveError> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut fd = None;
        self.replace(dir, name, raw, "create file", || {
            fd = Some(rfs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?);
            Ok(())
        })?;
        let mut file = File::from(fd.expect("created"));
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ArchiveError::io(raw, "read entry data", e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| ArchiveError::io(raw, "write file", e))?;
            written += n as u64;
        }
        if written >= WRITEBACK_AT {
            start_writeback(&file);
        }
        // The tar reader reports a stream that ends inside an entry as a
        // short entry; a sparse entry's expanded size differs legitimately.
        if !sparse && written != entry.size() {
            return Err(ArchiveError::io(
                raw,
                "read entry data",
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended after {written} of {} bytes", entry.size()),
                ),
            ));
        }
        // Owner, then mode (chown clears set-id bits), then xattrs (chown
        // and writes clear security.capability), then times.
        if let Some((u, g)) = self.owner(meta, raw)? {
            rfs::fchown(&file, Some(u), Some(g)).map_err(|e| ArchiveError::io(raw, "chown", e))?;
        }
        rfs::fchmod(&file, Mode::from_raw_mode(meta.mode)).map_err(|e| ArchiveError::io(raw, "chmod", e))?;
        self.set_xattrs(XattrTarget::Fd(file.as_fd()), raw, meta)?;
        rfs::futimens(&file, &ts(meta.mtime.tv_sec, meta.mtime.tv_nsec))
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
