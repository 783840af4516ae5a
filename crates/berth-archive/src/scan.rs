//! What an unpacked layer directory holds, entry by entry, with its
//! deletions told apart: an overlay whiteout (char device 0:0) deletes a
//! path of the layers below, an opaque directory hides everything below it.
//! Used to decide whether layers can be stacked on other parents as they
//! are (a deletion would reach files of another parent) and which files
//! two parents both provide.
//!
//! It only reads: it must never change the tree, and never follow a
//! symlink out of it.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::ArchiveError;

/// What a layer says about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory; `opaque`: the layers below contribute nothing under it.
    Dir {
        /// Marked opaque (`.wh..wh..opq` in the tar).
        opaque: bool,
    },
    /// A symbolic link.
    Symlink,
    /// A regular file, FIFO, socket or device.
    File,
    /// A whiteout: the path is deleted (`.wh.NAME` in the tar).
    Whiteout,
}

impl EntryKind {
    /// Whether this entry deletes something of the layers below.
    pub fn deletes(self) -> bool {
        matches!(self, EntryKind::Whiteout | EntryKind::Dir { opaque: true })
    }
}

/// One entry of a layer: its path relative to the root (no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// `etc/passwd`, `usr/lib`.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
}

/// Every entry under `dir` (an unpacked layer: overlay whiteouts, opaque
/// xattr in `xattr_prefix`, e.g. `trusted.overlay.`), parents before their
/// children, names sorted.
pub fn scan_layer_dir(dir: &Path, xattr_prefix: &str) -> Result<Vec<LayerEntry>, ArchiveError> {
    let opaque_name = format!("{xattr_prefix}opaque");
    let mut out = Vec::new();
    walk(dir, "", &opaque_name, &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, rel: &str, opaque_name: &str, out: &mut Vec<LayerEntry>) -> Result<(), ArchiveError> {
    let io = |op: &'static str, rel: &str| {
        let rel = rel.to_string();
        move |e: std::io::Error| ArchiveError::io(rel.as_bytes(), op, e)
    };
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io("list directory", rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io("list directory", rel))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let child = if rel.is_empty() {
            String::from_utf8_lossy(name.as_bytes()).into_owned()
        } else {
            format!("{rel}/{}", String::from_utf8_lossy(name.as_bytes()))
        };
        let md = std::fs::symlink_metadata(&path).map_err(io("stat", &child))?;
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Dir {
                opaque: is_opaque(&path, opaque_name).map_err(io("read xattr", &child))?,
            }
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_char_device() && md.rdev() == 0 {
            EntryKind::Whiteout
        } else {
            EntryKind::File
        };
        out.push(LayerEntry {
            path: child.clone(),
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
        });
        if ft.is_dir() {
            walk(&path, &child, opaque_name, out)?;
        }
    }
    Ok(())
}

fn is_opaque(path: &Path, name: &str) -> std::io::Result<bool> {
    let mut buf = [0u8; 8];
    match rustix::fs::lgetxattr(path, OsStr::new(name), &mut buf) {
        Ok(n) => Ok(&buf[..n] == b"y"),
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_dirs_and_links_in_order() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/bin")).unwrap();
        std::fs::write(t.path().join("usr/bin/python3"), "py").unwrap();
        std::os::unix::fs::symlink("usr/bin", t.path().join("bin")).unwrap();
        let e = scan_layer_dir(t.path(), "trusted.overlay.").unwrap();
        let got: Vec<(&str, EntryKind)> = e.iter().map(|e| (e.path.as_str(), e.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("bin", EntryKind::Symlink),
                ("usr", EntryKind::Dir { opaque: false }),
                ("usr/bin", EntryKind::Dir { opaque: false }),
                ("usr/bin/python3", EntryKind::File),
            ]
        );
        assert!(!got.iter().any(|(_, k)| k.deletes()));
    }
}
