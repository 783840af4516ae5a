//! Write a directory tree (a container's upper dir, a build step's output)
//! as a deterministic layer tar, hashing it as it is written.
//!
//! It only reads the tree: it must never modify it, never follow a symlink
//! in it (every lookup is relative to an open directory with NOFOLLOW), and
//! for the same tree and options must always produce the same bytes.
//!
//! Format, as Docker writes layers: USTAR headers, PAX records for names or
//! link targets over 100 bytes and for `security.capability`; names relative
//! without a leading `./`, directories with a trailing `/`; mtimes in whole
//! seconds; no user/group names; each directory's children in byte order
//! right after it (the order of Go's `filepath.Walk`); hardlinked files
//! (same dev/inode) written once, then as hardlink entries; sockets skipped.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;
use tar::{EntryType, Header};

use crate::error::ArchiveError;
use crate::io::{with_hash_thread, ChunkHashWriter};
use crate::path::clean_into;

/// How a tree is written as a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffOptions {
    /// Clamp every mtime to at most this (SOURCE_DATE_EPOCH): reproducible
    /// builds.
    pub source_date_epoch: Option<i64>,
    /// Treat char device 0:0 as a whiteout (`.wh.NAME`) and the opaque xattr
    /// as `.wh..wh..opq`: the tree is an overlay upper dir.
    pub overlay_whiteouts: bool,
    /// xattr namespace for overlay metadata (`trusted.overlay.` or
    /// `user.overlay.`).
    pub xattr_prefix: String,
    /// Paths (relative, no leading slash) to leave out with everything
    /// under them, e.g. a container's bind-mount targets.
    pub exclude: Vec<String>,
    /// Owners as seen through a user namespace: `(host_start, size)` makes
    /// a host id in `host_start..host_start+size` the id minus
    /// `host_start` (a container whose root is host id `host_start`);
    /// other ids stay as they are.
    pub id_unshift: Option<(u32, u32)>,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            source_date_epoch: None,
            overlay_whiteouts: false,
            xattr_prefix: "trusted.overlay.".to_owned(),
            exclude: Vec::new(),
            id_unshift: None,
        }
    }
}

/// What `write_layer` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diffed {
    /// `sha256:<hex>` of the tar written.
    pub diff_id: String,
    /// Bytes written.
    pub size: u64,
    /// Entries written (PAX extension headers not counted).
    pub entries: u64,
}

const CAPABILITY_XATTR: &[u8] = b"security.capability";
const NAME_LEN: usize = 100;
const BLOCK: usize = 512;

/// Write a tar of everything under `dir` (not `dir` itself) to `out`.
/// Hashes the bytes as they are written and returns the diff_id.
pub fn write_layer<W: Write>(dir: &Path, out: W, opts: &DiffOptions) -> Result<Diffed, ArchiveError> {
    let root = rfs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        ArchiveError::Root {
            root: dir.to_owned(),
            op: "open",
            source: e.into(),
        }
    })?;
    let mut exclude = HashSet::new();
    let mut clean = Vec::new();
    for e in &opts.exclude {
        if clean_into(e.as_bytes(), &mut clean).is_ok() && !clean.is_empty() {
            exclude.insert(clean.clone());
        }
    }
    let opaque_xattr = CString::new(format!("{}opaque", opts.xattr_prefix))
        .map_err(|_| ArchiveError::invalid(b"", "xattr prefix contains a NUL byte"))?;
    let (res, diff_id) = with_hash_thread(|pipe| {
        let mut w = TarWriter {
            out: ChunkHashWriter::new(out, pipe),
            entries: 0,
            pax: Vec::new(),
        };
        let mut walker = Walker {
            opts,
            exclude,
            opaque_xattr,
            links: HashMap::new(),
            rel: Vec::new(),
            scratch: Vec::new(),
        };
        walker.walk(root.as_fd(), &mut w)?;
        let entries = w.entries;
        let size = w.finish().map_err(|e| ArchiveError::io(b"", "finish layer", e))?;
        Ok::<_, ArchiveError>((size, entries))
    });
    let (size, entries) = res?;
    Ok(Diffed { diff_id, size, entries })
}

/// Header facts of one entry.
#[derive(Clone, Copy)]
struct Facts {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    size: u64,
    dev: Option<(u32, u32)>,
}

struct TarWriter<'p, W> {
    out: ChunkHashWriter<'p, W>,
    entries: u64,
    pax: Vec<u8>,
}

fn pax_record(out: &mut Vec<u8>, key: &[&[u8]], value: &[u8]) {
    let key_len: usize = key.iter().map(|k| k.len()).sum();
    // "<len> <key>=<value>\n", where <len> counts itself.
    let base = key_len + value.len() + 3;
    let digits = |n: usize| n.to_string().len();
    let mut len = base + digits(base);
    if digits(len) != digits(base) {
        len = base + digits(len);
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    for k in key {
        out.extend_from_slice(k);
    }
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

impl<W: Write> TarWriter<'_, W> {
    fn pad(&mut self, size: u64) -> std::io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Write the header(s) of one entry; the caller then writes `f.size`
    /// bytes of data and calls `pad`.
    fn header(
        &mut self,
        kind: EntryType,
        path: &[u8],
        link: &[u8],
        f: &Facts,
        caps: Option<&[u8]>,
    ) -> std::io::Result<()> {
        self.pax.clear();
        if path.len() > NAME_LEN {
            pax_record(&mut self.pax, &[b"path"], path);
        }
        if link.len() > NAME_LEN {
            pax_record(&mut self.pax, &[b"linkpath"], link);
        }
        if let Some(caps) = caps {
            pax_record(&mut self.pax, &[b"SCHILY.xattr.", CAPABILITY_XATTR], caps);
        }
        if !self.pax.is_empty() {
            let base = path
                .strip_suffix(b"/")
                .unwrap_or(path)
                .rsplit(|&b| b == b'/')
                .next()
                .unwrap_or(b"");
            let mut name = b"PaxHeaders.0/".to_vec();
            name.extend_from_slice(base);
            let mut h = Header::new_ustar();
            h.set_entry_type(EntryType::XHeader);
            set_name(&mut h, &name);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(self.pax.len() as u64);
            h.set_cksum();
            self.out.write_all(h.as_bytes())?;
            let pax = std::mem::take(&mut self.pax);
            let r = self.out.write_all(&pax);
            self.pax = pax;
            r?;
            self.pad(self.pax.len() as u64)?;
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        set_name(&mut h, path);
        let l = &link[..link.len().min(NAME_LEN)];
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
        h.set_mode(f.mode);
        h.set_uid(u64::from(f.uid));
        h.set_gid(u64::from(f.gid));
        h.set_mtime(f.mtime);
        h.set_size(f.size);
        let (major, minor) = f.dev.unwrap_or((0, 0));
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        self.entries += 1;
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<u64> {
        self.out.write_all(&[0; 2 * BLOCK])?;
        self.out.finish()
    }
}

/// Store a name in the 100-byte field, truncated when a PAX `path` record
/// carries the full one.
fn set_name(h: &mut Header, name: &[u8]) {
    let n = &name[..name.len().min(NAME_LEN)];
    h.as_old_mut().name[..n.len()].copy_from_slice(n);
}

struct Walker<'o> {
    opts: &'o DiffOptions,
    exclude: HashSet<Vec<u8>>,
    opaque_xattr: CString,
    /// (dev, inode) of multiply-linked non-directories → first path written.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Path of the current entry, relative to the root.
    rel: Vec<u8>,
    scratch: Vec<u8>,
}

fn sorted_children(dir: BorrowedFd<'_>) -> Result<Vec<CString>, Errno> {
    let mut names = Vec::new();
    for e in Dir::read_from(dir)? {
        let e = e?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            names.push(n.to_owned());
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// Read one xattr; `None` when absent or unsupported.
fn get_xattr(fd: BorrowedFd<'_>, name: &[u8], rel: &[u8]) -> Result<Option<Vec<u8>>, ArchiveError> {
    let mut buf = [0u8; 256];
    match rfs::fgetxattr(fd, name, &mut buf) {
        Ok(n) => Ok(Some(buf[..n].to_vec())),
        Err(Errno::NODATA | Errno::NOTSUP) => Ok(None),
        Err(e) => Err(ArchiveError::io(rel, "read xattr", e)),
    }
}

impl Walker<'_> {
    fn mtime(&self, st: &rfs::Stat) -> u64 {
        let mut m = st.st_mtime;
        if let Some(sde) = self.opts.source_date_epoch {
            m = m.min(sde);
        }
        u64::try_from(m).unwrap_or(0)
    }

    fn walk<W: Write>(&mut self, dir: BorrowedFd<'_>, w: &mut TarWriter<'_, W>) -> Result<(), ArchiveError> {
        let base = self.rel.len();
        let children = sorted_children(dir).map_err(|e| ArchiveError::io(&self.rel, "list directory", e))?;
        for name in &children {
            let name = name.as_c_str();
            self.rel.truncate(base);
            if base > 0 {
                self.rel.push(b'/');
            }
            self.rel.extend_from_slice(name.to_bytes());
            if self.exclude.contains(&self.rel) {
                continue;
            }
            self.child(dir, name, w)?;
        }
        self.rel.truncate(base);
        Ok(())
    }

    fn child<W: Write>(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &std::ffi::CStr,
        w: &mut TarWriter<'_, W>,
    ) -> Result<(), ArchiveError> {
        let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()), // vanished meanwhile
            Err(e) => return Err(ArchiveError::io(&self.rel, "stat", e)),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        let unshift = |id: u32| match self.opts.id_unshift {
            Some((start, size)) if id >= start && id - start < size => id - start,
            _ => id,
        };
        let mut f = Facts {
            mode: st.st_mode & 0o7777,
            uid: unshift(st.st_uid),
            gid: unshift(st.st_gid),
            mtime: self.mtime(&st),
            size: 0,
            dev: None,
        };
        let wr = |rel: &[u8]| {
            let rel = rel.to_vec();
            move |e: std::io::Error| ArchiveError::io(&rel, "write layer", e)
        };
        match ft {
            FileType::Directory => {
                let fd = rfs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| ArchiveError::io(&self.rel, "open directory", e))?;
                let opaque = self.opts.overlay_whiteouts
                    && get_xattr(fd.as_fd(), self.opaque_xattr.to_bytes(), &self.rel)?.as_deref() == Some(b"y");
                self.scratch.clear();
                self.scratch.extend_from_slice(&self.rel);
                self.scratch.push(b'/');
                w.header(EntryType::Directory, &self.scratch, b"", &f, None)
                    .map_err(wr(&self.rel))?;
                if opaque {
                    self.scratch.extend_from_slice(b".wh..wh..opq");
                    let marker = Facts {
                        mode: f.mode & 0o777,
                        ..f
                    };
                    w.header(EntryType::Regular, &self.scratch, b"", &marker, None)
                        .map_err(wr(&self.rel))?;
                }
                self.walk(fd.as_fd(), w)
            }
            FileType::CharacterDevice if self.opts.overlay_whiteouts && st.st_rdev == 0 => {
                // An overlay whiteout: `.wh.NAME`, an empty regular file.
                self.scratch.clear();
                let parent_len = self.rel.len() - name.to_bytes().len();
                self.scratch.extend_from_slice(&self.rel[..parent_len]);
                self.scratch.extend_from_slice(b".wh.");
                self.scratch.extend_from_slice(name.to_bytes());
                let wh = Facts { mode: 0o600, ..f };
                w.header(EntryType::Regular, &self.scratch, b"", &wh, None)
                    .map_err(wr(&self.rel))
            }
            FileType::Socket | FileType::Unknown => {
                log::debug!("{:?}: socket skipped", String::from_utf8_lossy(&self.rel));
                Ok(())
            }
            _ => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        return w
                            .header(EntryType::Link, &self.rel, first, &Facts { size: 0, ..f }, None)
                            .map_err(wr(&self.rel));
                    }
                    self.links.insert(key, self.rel.clone());
                }
                match ft {
                    FileType::RegularFile => self.file(dir, name, &st, f, w),
                    FileType::Symlink => {
                        let target = rfs::readlinkat(dir, name, Vec::new())
                            .map_err(|e| ArchiveError::io(&self.rel, "read symlink", e))?;
                        w.header(EntryType::Symlink, &self.rel, target.to_bytes(), &f, None)
                            .map_err(wr(&self.rel))
                    }
                    _ => {
                        let kind = match ft {
                            FileType::CharacterDevice => EntryType::Char,
                            FileType::BlockDevice => EntryType::Block,
                            _ => EntryType::Fifo,
                        };
                        if kind != EntryType::Fifo {
                            f.dev = Some((rfs::major(st.st_rdev), rfs::minor(st.st_rdev)));
                        }
                        w.header(kind, &self.rel, b"", &f, None).map_err(wr(&self.rel))
                    }
                }
            }
        }
    }

    fn file<W: Write>(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &std::ffi::CStr,
        st: &rfs::Stat,
        mut f: Facts,
        w: &mut TarWriter<'_, W>,
    ) -> Result<(), ArchiveError> {
        let fd = rfs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ArchiveError::io(&self.rel, "open file", e))?;
        let caps = get_xattr(fd.as_fd(), CAPABILITY_XATTR, &self.rel)?;
        f.size = u64::try_from(st.st_size).unwrap_or(0);
        let err = |e| ArchiveError::io(&self.rel, "archive file", e);
        w.header(EntryType::Regular, &self.rel, b"", &f, caps.as_deref())
            .map_err(err)?;
        let mut file = File::from(fd);
        w.out.copy_exact_from(&mut file, f.size).map_err(err)?;
        w.pad(f.size).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, &[b"path"], b"a");
        assert_eq!(out, b"9 path=a\n");
        // 98 bytes without the length, whose 3 digits push it past 100.
        out.clear();
        let v = vec![b'x'; 91];
        pax_record(&mut out, &[b"path"], &v);
        assert_eq!(out.len(), 101);
        assert!(out.starts_with(b"101 path="));
    }
}
