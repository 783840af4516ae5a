//! The COPY/ADD write side: resolved sources into a container rootfs, with
//! Docker's destination rules.
//!
//! The destination rootfs is hostile (its symlinks may point anywhere): this
//! module must never create, change or remove anything outside `dest_root`.
//! Every directory is reached with `openat2(RESOLVE_IN_ROOT)` from the
//! rootfs, symlinks met on the way to the destination are resolved with the
//! rootfs as `/`, and final components are created with `*at` calls that
//! never follow a final symlink (an existing symlink there is replaced).

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_archive::{apply_layer, decompressed, ApplyOptions};
use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use super::dockerignore::IgnoreMatcher;
use super::walk::{clean_components, join, walk_source};
use super::{ContextError, Source};

/// How sources are written.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `--chown`, already numeric (see [`resolve_chown`](super::resolve_chown)); otherwise 0:0.
    pub chown: Option<(u32, u32)>,
    /// `--chmod` (see [`parse_chmod`](super::parse_chmod)): applied to copied files and
    /// directories, not to symlinks or to created parent directories.
    pub chmod: Option<u32>,
    /// ADD: a local tar (plain, gzip or zstd, detected by content) is
    /// extracted into the destination directory instead of copied.
    pub extract_archives: bool,
    /// Clamp copied mtimes to this (seconds since the epoch).
    pub source_date_epoch: Option<i64>,
    /// Extra filter while walking source directories (paths relative to
    /// the source root), on top of the one each [`Source`] carries.
    pub ignore: Option<Arc<IgnoreMatcher>>,
}

/// What a copy wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Regular files written.
    pub files: u64,
    /// Directories created or updated (including created parents).
    pub dirs: u64,
    /// Symlinks written.
    pub symlinks: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Archives extracted (ADD).
    pub archives: u64,
}

/// See [`super::copy_sources`].
pub(crate) fn copy_sources(
    src_root: &Path,
    sources: &[Source],
    dest_root: &Path,
    dest: &str,
    workdir: &str,
    opts: &CopyOptions,
) -> Result<CopyStats, ContextError> {
    let root_fd = open_dir(dest_root)?;
    let src_fd = open_dir(src_root)?;
    let full = if dest.starts_with('/') {
        dest.to_owned()
    } else {
        format!("{}/{}", if workdir.is_empty() { "/" } else { workdir }, dest)
    };
    let comps = clean_components(&full);
    let dir_syntax = dest.is_empty() || dest.ends_with('/') || dest == "." || dest.ends_with("/.") || comps.is_empty();
    let is_root = rustix::process::geteuid().is_root();
    let mut w = Writer {
        root_fd,
        src_fd,
        src_root,
        opts,
        owner: is_root.then(|| opts.chown.unwrap_or((0, 0))),
        stats: CopyStats::default(),
        deferred: Vec::new(),
    };
    let as_dir = dir_syntax || sources.len() > 1 || sources.iter().any(|s| s.is_dir) || w.is_dir(&comps);
    for src in sources {
        if src.is_dir {
            let (real, created) = w.mkdir_all(&comps)?;
            w.copy_tree(src, &real, created)?;
        } else if opts.extract_archives && w.is_archive(&src.rel)? {
            let (real, _) = w.mkdir_all(&comps)?;
            w.extract(&src.rel, &real)?;
        } else if as_dir {
            let (real, _) = w.mkdir_all(&comps)?;
            w.copy_single(src, &real, &src.name)?;
        } else {
            let (last, parent) = comps.split_last().expect("a non-directory destination has a name");
            let (real, _) = w.mkdir_all(parent)?;
            w.copy_single(src, &real, last)?;
        }
    }
    w.finish()?;
    Ok(w.stats)
}

fn open_dir(p: &Path) -> Result<OwnedFd, ContextError> {
    rfs::open(p, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| ContextError::io("open", p, e.into()))
}

fn dot_if_empty(p: &Path) -> &Path {
    if p.as_os_str().is_empty() {
        Path::new(".")
    } else {
        p
    }
}

/// Access and modification times both `mtime` (seconds, nanoseconds).
fn times(mtime: (i64, u32)) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime.0,
        tv_nsec: mtime.1 as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// A directory whose mode, owner and mtime are set after its contents.
struct Deferred {
    /// Real path relative to the destination root.
    path: PathBuf,
    mode: u32,
    mtime: (i64, u32),
}

struct Writer<'a> {
    root_fd: OwnedFd,
    src_fd: OwnedFd,
    src_root: &'a Path,
    opts: &'a CopyOptions,
    /// Owner to set (only as root; otherwise files stay the caller's).
    owner: Option<(u32, u32)>,
    stats: CopyStats,
    deferred: Vec<Deferred>,
}

impl Writer<'_> {
    fn err(&self, op: &'static str, rel: &Path, e: impl Into<io::Error>) -> ContextError {
        ContextError::io(op, &Path::new("/").join(rel), e.into())
    }

    /// Open a directory of the destination, confined to it.
    fn open_in_root(&self, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        rfs::openat2(
            &self.root_fd,
            dot_if_empty(rel),
            flags | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(Into::into)
    }

    fn is_dir(&self, comps: &[OsString]) -> bool {
        self.open_in_root(&join(comps), OFlags::PATH).is_ok()
    }

    /// `mkdir -p` inside the root: symlinks on the way are resolved with
    /// the root as `/`; missing directories are created 0755 and owned by
    /// the chown user. Returns the real path and whether its last
    /// component was created.
    fn mkdir_all(&mut self, comps: &[OsString]) -> Result<(PathBuf, bool), ContextError> {
        let mut todo: std::collections::VecDeque<OsString> = comps.iter().cloned().collect();
        let mut done: Vec<OsString> = Vec::new();
        let mut created = false;
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            if c.is_empty() || c == "." {
                continue;
            }
            if c == ".." {
                done.pop();
                continue;
            }
            let here = join(&done);
            let parent = self
                .open_in_root(&here, OFlags::PATH)
                .map_err(|e| self.err("open", &here, e))?;
            created = false;
            match rfs::statat(&parent, &c, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                    FileType::Directory => {}
                    FileType::Symlink => {
                        hops += 1;
                        if hops > 40 {
                            return Err(self.err("resolve", &here.join(&c), Errno::LOOP));
                        }
                        let t = rfs::readlinkat(&parent, &c, Vec::new()).map_err(|e| self.err("readlink", &here, e))?;
                        let t = t.as_bytes();
                        if t.starts_with(b"/") {
                            done.clear();
                        }
                        for part in t.split(|&b| b == b'/').rev() {
                            todo.push_front(OsStr::from_bytes(part).to_owned());
                        }
                        continue;
                    }
                    _ => {
                        return Err(ContextError::NotADirectory {
                            path: format!("/{}", here.join(&c).display()),
                        })
                    }
                },
                Err(Errno::NOENT) => {
                    match rfs::mkdirat(&parent, &c, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(self.err("mkdir", &here.join(&c), e)),
                    }
                    rfs::chmodat(&parent, &c, Mode::from_raw_mode(0o755), AtFlags::empty())
                        .map_err(|e| self.err("chmod", &here.join(&c), e))?;
                    self.chown_at(&parent, &c, &here.join(&c))?;
                    self.stats.dirs += 1;
                    created = true;
                }
                Err(e) => return Err(self.err("stat", &here.join(&c), e)),
            }
            done.push(c);
        }
        Ok((join(&done), created))
    }

    fn mtime(&self, m: &Metadata) -> (i64, u32) {
        let (s, ns) = (m.mtime(), m.mtime_nsec() as u32);
        match self.opts.source_date_epoch {
            Some(e) if s > e => (e, 0),
            _ => (s, ns),
        }
    }

    fn mode(&self, m: &Metadata) -> u32 {
        self.opts.chmod.unwrap_or(m.mode() & 0o7777)
    }

    /// Give `name` in `dir` the copy's owner (as root), never following it.
    fn chown_at(&self, dir: &OwnedFd, name: &OsStr, rel: &Path) -> Result<(), ContextError> {
        if let Some((u, g)) = self.owner {
            rfs::chownat(
                dir,
                name,
                Some(Uid::from_raw(u)),
                Some(Gid::from_raw(g)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.err("chown", rel, e))?;
        }
        Ok(())
    }

    /// Make room for a new non-directory `name` in `dir`: an existing file
    /// or symlink is removed (never followed); a directory is refused.
    fn clear(&self, dir: &OwnedFd, dir_rel: &Path, name: &OsStr) -> Result<(), ContextError> {
        match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => Err(ContextError::Conflict {
                path: format!("/{}", dir_rel.join(name).display()),
            }),
            Ok(_) => rfs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| self.err("remove", &dir_rel.join(name), e)),
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(self.err("stat", &dir_rel.join(name), e)),
        }
    }

    /// Creates the non-directory `name` in `dir` with `create`, which must
    /// fail with EEXIST when something is there: most destinations are new,
    /// so room is made (see [`Self::clear`]) only then, and `create` runs
    /// again (one lookup per entry instead of two).
    fn replace<T>(
        &self,
        dir: &OwnedFd,
        dir_rel: &Path,
        name: &OsStr,
        op: &'static str,
        create: impl Fn() -> rustix::io::Result<T>,
    ) -> Result<T, ContextError> {
        match create() {
            Err(Errno::EXIST) => {
                self.clear(dir, dir_rel, name)?;
                create()
            }
            r => r,
        }
        .map_err(|e| self.err(op, &dir_rel.join(name), e))
    }

    /// One non-directory source to `dir_rel/name`.
    fn copy_single(&mut self, src: &Source, dir_rel: &Path, name: &OsStr) -> Result<(), ContextError> {
        let dir = self
            .open_in_root(dir_rel, OFlags::PATH)
            .map_err(|e| self.err("open", dir_rel, e))?;
        let mut entries = Vec::new();
        walk_source(self.src_root, src, self.opts.ignore.as_deref(), &mut entries)?;
        for e in entries {
            self.write_entry(&dir, dir_rel, name, &e.root_rel, &e.meta)?;
        }
        Ok(())
    }

    /// Write a non-directory entry (file, symlink, fifo).
    fn write_entry(
        &mut self,
        dir: &OwnedFd,
        dir_rel: &Path,
        name: &OsStr,
        src_rel: &Path,
        meta: &Metadata,
    ) -> Result<(), ContextError> {
        let ft = meta.file_type();
        let path = dir_rel.join(name);
        let ts = times(self.mtime(meta));
        if ft.is_file() {
            let out = self.replace(dir, dir_rel, name, "create", || {
                rfs::openat(
                    dir,
                    name,
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
            })?;
            let (mut inp, mut out) = (self.open_src(src_rel)?, File::from(out));
            let n = io::copy(&mut inp, &mut out).map_err(|e| self.err("write", &path, e))?;
            if let Some((u, g)) = self.owner {
                rfs::fchown(&out, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))
                    .map_err(|e| self.err("chown", &path, e))?;
            }
            rfs::fchmod(&out, Mode::from_raw_mode(self.mode(meta))).map_err(|e| self.err("chmod", &path, e))?;
            rfs::futimens(&out, &ts).map_err(|e| self.err("set times", &path, e))?;
            self.stats.files += 1;
            self.stats.bytes += n;
        } else if ft.is_symlink() {
            let target = rfs::readlinkat(&self.src_fd, src_rel, Vec::new())
                .map_err(|e| ContextError::io("readlink", &self.src_root.join(src_rel), e.into()))?;
            self.replace(dir, dir_rel, name, "symlink", || {
                rfs::symlinkat(target.as_c_str(), dir, name)
            })?;
            self.chown_at(dir, name, &path)?;
            rfs::utimensat(dir, name, &ts, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| self.err("set times", &path, e))?;
            self.stats.symlinks += 1;
        } else if ft.is_fifo() {
            self.replace(dir, dir_rel, name, "mkfifo", || {
                rfs::mknodat(dir, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            })?;
            self.chown_at(dir, name, &path)?;
            rfs::chmodat(dir, name, Mode::from_raw_mode(self.mode(meta)), AtFlags::empty())
                .map_err(|e| self.err("chmod", &path, e))?;
        } else {
            // Devices and sockets are not copied (Docker's context never
            // carries them either).
            log::debug!("COPY: skipping special file {}", src_rel.display());
        }
        Ok(())
    }

    /// A directory source: its contents into `dest_rel`.
    fn copy_tree(&mut self, src: &Source, dest_rel: &Path, created: bool) -> Result<(), ContextError> {
        let mut entries = Vec::new();
        walk_source(self.src_root, src, self.opts.ignore.as_deref(), &mut entries)?;
        let top = self
            .open_in_root(dest_rel, OFlags::PATH)
            .map_err(|e| self.err("open", dest_rel, e))?;
        // The chain of open destination directories, by source-relative path.
        let mut stack: Vec<(PathBuf, PathBuf, OwnedFd)> = vec![(PathBuf::new(), dest_rel.to_owned(), top)];
        for e in entries {
            if e.rel.as_os_str().is_empty() {
                if created {
                    self.deferred.push(Deferred {
                        path: dest_rel.to_owned(),
                        mode: self.mode(&e.meta),
                        mtime: self.mtime(&e.meta),
                    });
                }
                continue;
            }
            let parent = e.rel.parent().unwrap_or(Path::new(""));
            while stack.len() > 1 && stack.last().is_some_and(|s| s.0 != parent) {
                stack.pop();
            }
            let (_, parent_dest, parent_fd) = stack.last().expect("root stays on the stack");
            let parent_dest = parent_dest.clone();
            let name = e
                .rel
                .file_name()
                .expect("entries below the source have names")
                .to_owned();
            if e.meta.is_dir() {
                let (fd, real) = self.enter_dir(parent_fd, &parent_dest, &name, &e.meta)?;
                stack.push((e.rel.clone(), real, fd));
            } else {
                self.write_entry(parent_fd, &parent_dest, &name, &e.root_rel, &e.meta)?;
            }
        }
        Ok(())
    }

    /// Create (or reuse) the directory `name` in `parent`; a symlink there
    /// is followed in-root if it leads to a directory, otherwise replaced.
    fn enter_dir(
        &mut self,
        parent: &OwnedFd,
        parent_rel: &Path,
        name: &OsStr,
        meta: &Metadata,
    ) -> Result<(OwnedFd, PathBuf), ContextError> {
        let rel = parent_rel.join(name);
        let mut make = false;
        match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {}
                FileType::Symlink => {
                    let (real, _) = self.mkdir_all(&clean_components(&rel.to_string_lossy()))?;
                    let fd = self
                        .open_in_root(&real, OFlags::PATH)
                        .map_err(|e| self.err("open", &real, e))?;
                    return Ok((fd, real));
                }
                _ => {
                    rfs::unlinkat(parent, name, AtFlags::empty()).map_err(|e| self.err("remove", &rel, e))?;
                    make = true;
                }
            },
            Err(Errno::NOENT) => make = true,
            Err(e) => return Err(self.err("stat", &rel, e)),
        }
        if make {
            rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700)).map_err(|e| self.err("mkdir", &rel, e))?;
        }
        self.stats.dirs += 1;
        self.chown_at(parent, name, &rel)?;
        self.deferred.push(Deferred {
            path: rel.clone(),
            mode: self.mode(meta),
            mtime: self.mtime(meta),
        });
        let fd = rfs::openat(
            parent,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err("open", &rel, e))?;
        Ok((fd, rel))
    }

    /// Set deferred directory modes and times, deepest first.
    fn finish(&mut self) -> Result<(), ContextError> {
        for d in std::mem::take(&mut self.deferred).into_iter().rev() {
            let (parent_rel, name) = match (d.path.parent(), d.path.file_name()) {
                (Some(p), Some(n)) => (p.to_owned(), n.to_owned()),
                _ => continue, // the root itself keeps its metadata
            };
            let parent = self
                .open_in_root(&parent_rel, OFlags::PATH)
                .map_err(|e| self.err("open", &parent_rel, e))?;
            match rfs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                _ => continue,
            }
            rfs::chmodat(&parent, &name, Mode::from_raw_mode(d.mode), AtFlags::empty())
                .map_err(|e| self.err("chmod", &d.path, e))?;
            rfs::utimensat(&parent, &name, &times(d.mtime), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.err("set times", &d.path, e))?;
        }
        Ok(())
    }

    fn open_src(&self, rel: &Path) -> Result<File, ContextError> {
        let fd = rfs::openat2(
            &self.src_fd,
            rel,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| ContextError::io("open", &self.src_root.join(rel), e.into()))?;
        Ok(File::from(fd))
    }

    /// Is this regular file a tar (possibly gzip/zstd compressed)? Decided
    /// by content: the first 512 decompressed bytes form a tar header with
    /// a valid checksum.
    fn is_archive(&self, rel: &Path) -> Result<bool, ContextError> {
        let f = self.open_src(rel)?;
        if !f.metadata().is_ok_and(|m| m.is_file()) {
            return Ok(false);
        }
        let Ok(mut r) = decompressed(f) else {
            return Ok(false);
        };
        let mut hdr = [0u8; 512];
        let mut n = 0;
        while n < hdr.len() {
            match r.read(&mut hdr[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Ok(false),
            }
        }
        Ok(n == 512 && tar_header_ok(&hdr))
    }

    fn extract(&mut self, rel: &Path, dest_rel: &Path) -> Result<(), ContextError> {
        let f = self.open_src(rel)?;
        let dir = self
            .open_in_root(dest_rel, OFlags::PATH)
            .map_err(|e| self.err("open", dest_rel, e))?;
        // The directory is already resolved and confined; hand it to the
        // extractor by descriptor so nothing is re-resolved by name.
        let via = PathBuf::from(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()));
        let base = ApplyOptions::for_current_user();
        let ao = ApplyOptions {
            overlay_whiteouts: false,
            allow_devices: false,
            preserve_owner: self.owner.is_some() && self.opts.chown.is_none(),
            id_shift: 0,
            no_overwrite_dir_non_dir: false,
            owner: None,
            xattr_prefix: base.xattr_prefix,
            limits: base.limits,
        };
        apply_layer(f, &via, &ao).map_err(|source| ContextError::Archive {
            path: self.src_root.join(rel).display().to_string(),
            source: Box::new(source),
        })?;
        drop(dir);
        self.stats.archives += 1;
        Ok(())
    }
}

/// A tar header: not all zero, and its checksum field (octal, bytes
/// 148..156) equals the byte sum with that field taken as spaces.
fn tar_header_ok(h: &[u8; 512]) -> bool {
    if h.iter().all(|&b| b == 0) {
        return false;
    }
    let field = &h[148..156];
    let digits: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect::<String>()
        .trim()
        .to_owned();
    let Ok(want) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) })
        .sum();
    sum == want
}
