//! Helpers for the integration tests: raw tar building (names the `tar`
//! crate would refuse, like `../x`) and tree snapshots.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use berth_archive::ApplyOptions;
use tar::{EntryType, Header};

pub const MTIME: u64 = 1_600_000_000;

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A name no other test (or process) uses, for host paths that must not appear.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "berth-archive-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn opts() -> ApplyOptions {
    ApplyOptions {
        overlay_whiteouts: true,
        xattr_prefix: "user.overlay.".into(),
        allow_devices: false,
        preserve_owner: false,
        id_shift: 0,
        no_overwrite_dir_non_dir: false,
        owner: None,
        limits: berth_archive::Limits::default(),
    }
}

pub fn plain_opts() -> ApplyOptions {
    ApplyOptions {
        overlay_whiteouts: false,
        ..opts()
    }
}

/// Builds tars with raw, unvalidated names.
pub struct Tar {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Tar {
    fn default() -> Self {
        Self::new()
    }
}

impl Tar {
    pub fn new() -> Self {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    pub fn header(name: &str, kind: EntryType, size: u64, mode: u32) -> Header {
        let mut h = Header::new_ustar();
        assert!(name.len() <= 100);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    pub fn raw(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let h = Self::header(name, EntryType::Regular, data.len() as u64, 0o644);
        self.raw(h, data)
    }

    pub fn file_mode(&mut self, name: &str, data: &[u8], mode: u32, mtime: u64) -> &mut Self {
        let mut h = Self::header(name, EntryType::Regular, data.len() as u64, mode);
        h.set_mtime(mtime);
        self.raw(h, data)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        let h = Self::header(name, EntryType::Directory, 0, 0o755);
        self.raw(h, &[])
    }

    pub fn link(&mut self, kind: EntryType, name: &str, target: &str) -> &mut Self {
        let mut h = Self::header(name, kind, 0, 0o777);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.raw(h, &[])
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(EntryType::Symlink, name, target)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(EntryType::Link, name, target)
    }

    pub fn node(&mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(name, kind, 0, 0o640);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.raw(h, &[])
    }

    /// A PAX extended header applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3;
            let mut len = base + base.to_string().len();
            if len.to_string().len() != base.to_string().len() {
                len = base + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let h = Self::header("PaxHeaders/x", EntryType::XHeader, data.len() as u64, 0o644);
        self.raw(h, &data)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Fifo,
    Char(u64),
    Block(u64),
    Other,
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits (not for symlinks).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Not for symlinks.
    pub mtime: i64,
    /// For multiply-linked files: the first path (in sorted order) sharing the inode.
    pub link_group: Option<String>,
}

/// Everything under `root` (not root itself), keyed by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    walk(root, "", &mut out, &mut inodes);
    out
}

fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, Node>, inodes: &mut BTreeMap<u64, String>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let md = fs::symlink_metadata(&path).unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink(fs::read_link(&path).unwrap().to_str().unwrap().to_owned())
        } else if ft.is_file() {
            Kind::File(fs::read(&path).unwrap())
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_char_device() {
            Kind::Char(md.rdev())
        } else if ft.is_block_device() {
            Kind::Block(md.rdev())
        } else {
            Kind::Other
        };
        let symlink = ft.is_symlink();
        let link_group =
            (!ft.is_dir() && md.nlink() > 1).then(|| inodes.entry(md.ino()).or_insert_with(|| r.clone()).clone());
        out.insert(
            r.clone(),
            Node {
                kind,
                mode: if symlink { 0 } else { md.mode() & 0o7777 },
                uid: md.uid(),
                gid: md.gid(),
                mtime: if symlink { 0 } else { md.mtime() },
                link_group,
            },
        );
        if ft.is_dir() {
            walk(&path, &r, out, inodes);
        }
    }
}

pub fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = [0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

pub fn set_mtime(path: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}
