//! A step's upper dir made into exactly what unpacking its layer tar
//! gives, so the store can take it over as the unpacked layer instead of
//! writing every file a second time.
//!
//! `write_layer` never records some things an upper dir holds, and
//! `apply_layer` never recreates them; they are removed or reset here,
//! before the tar is written, so that the tar and the directory describe
//! the same tree:
//! - excluded paths (mount points the runtime created), removed with
//!   everything under them; their parent keeps its mtime;
//! - sockets (skipped by the tar), removed;
//! - whiteouts sharing one inode (as overlayfs makes them), made separate
//!   nodes;
//! - xattrs other than `security.capability` on regular files and the
//!   overlay opaque marker (`y`) on directories (overlay bookkeeping such
//!   as `origin` and `impure`, and anything the tar drops), removed;
//! - mtimes: whole seconds, clamped to SOURCE_DATE_EPOCH, never negative,
//!   atime = mtime (as `apply_layer` sets them);
//! - the root: mode 0755, owned by the caller, no xattrs.
//!
//! None of this changes the tar `write_layer` writes of the tree. Every
//! lookup is relative to an open directory and never follows a symlink: a
//! RUN step's upper dir is as hostile as any rootfs.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;

const CAPABILITY_XATTR: &[u8] = b"security.capability";
const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";

/// Whether an upper dir can stand for its unpacked layer: `apply_layer`
/// as root keeps owners, devices and `trusted.overlay.` whiteouts as the
/// upper dir has them; as a user it does not.
pub(crate) fn adoptable() -> bool {
    rustix::process::geteuid().is_root()
}

/// Make `upper` what unpacking its layer (written with `exclude` and
/// `epoch`) would give. An error leaves the tree's tar unchanged, but the
/// tree must then not be adopted.
pub(crate) fn prepare(upper: &Path, exclude: &[String], epoch: Option<i64>) -> io::Result<()> {
    let root = rfs::open(
        upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for e in exclude {
        remove_excluded(&root, e)?;
    }
    strip_xattrs(root.as_fd(), None, |_, _| false)?;
    rfs::fchmod(&root, Mode::from_raw_mode(0o755))?;
    rfs::fchown(
        &root,
        Some(rustix::process::geteuid()),
        Some(rustix::process::getegid()),
    )?;
    walk(root.as_fd(), epoch)
}

/// Remove `rel` (as `write_layer` matches excludes: components, no
/// symlink followed) and everything under it; its parent keeps its times.
fn remove_excluded(root: &OwnedFd, rel: &str) -> io::Result<()> {
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if comps.contains(&"..") {
        // `write_layer` cleans `..` lexically; do not guess what it meant.
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("exclude {rel:?}")));
    }
    let Some((name, parents)) = comps.split_last() else {
        return Ok(());
    };
    let parent_path = if parents.is_empty() {
        ".".to_string()
    } else {
        parents.join("/")
    };
    let parent = match rfs::openat2(
        root,
        parent_path.as_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
    ) {
        Ok(fd) => fd,
        // Behind a symlink or a non-directory: the tar never reaches it.
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let before = rfs::fstat(&parent)?;
    match rfs::statat(&parent, *name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => berth_archive::remove_all_at(parent.as_fd(), name.as_bytes())?,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    rfs::futimens(
        &parent,
        &Timestamps {
            last_access: before.st_atime_timespec(),
            last_modification: before.st_mtime_timespec(),
        },
    )?;
    Ok(())
}

trait StatTimes {
    fn st_atime_timespec(&self) -> Timespec;
    fn st_mtime_timespec(&self) -> Timespec;
}

impl StatTimes for rfs::Stat {
    fn st_atime_timespec(&self) -> Timespec {
        Timespec {
            tv_sec: self.st_atime as _,
            tv_nsec: self.st_atime_nsec as _,
        }
    }
    fn st_mtime_timespec(&self) -> Timespec {
        Timespec {
            tv_sec: self.st_mtime as _,
            tv_nsec: self.st_mtime_nsec as _,
        }
    }
}

/// The times `apply_layer` gives an entry the tar says has `st`'s mtime.
fn layer_times(st: &rfs::Stat, epoch: Option<i64>) -> Timestamps {
    let mut m: i64 = st.st_mtime;
    if let Some(e) = epoch {
        m = m.min(e);
    }
    let t = Timespec {
        tv_sec: m.max(0),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn walk(dir: BorrowedFd<'_>, epoch: Option<i64>) -> io::Result<()> {
    for name in berth_archive::dir_entries(dir)? {
        let st = match rfs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Socket | FileType::Unknown => rfs::unlinkat(dir, &name, AtFlags::empty())?,
            FileType::Directory => {
                let fd = rfs::openat(
                    dir,
                    &name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                strip_xattrs(fd.as_fd(), None, |n, v| n == OPAQUE_XATTR && v == b"y")?;
                walk(fd.as_fd(), epoch)?;
                // Last: its children's changes are done.
                rfs::futimens(&fd, &layer_times(&st, epoch))?;
            }
            FileType::CharacterDevice if st.st_rdev == 0 && st.st_nlink > 1 => {
                // overlayfs makes whiteouts as links to one shared inode;
                // unpacked, each is its own node.
                rfs::unlinkat(dir, &name, AtFlags::empty())?;
                rfs::mknodat(dir, &name, FileType::CharacterDevice, Mode::empty(), 0)?;
                rfs::chownat(
                    dir,
                    &name,
                    Some(rfs::Uid::from_raw(st.st_uid)),
                    Some(rfs::Gid::from_raw(st.st_gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
                rfs::utimensat(dir, &name, &layer_times(&st, epoch), AtFlags::SYMLINK_NOFOLLOW)?;
            }
            ft => {
                let regular = ft == FileType::RegularFile;
                strip_xattrs(dir, Some(&name), |n, _| regular && n == CAPABILITY_XATTR)?;
                rfs::utimensat(dir, &name, &layer_times(&st, epoch), AtFlags::SYMLINK_NOFOLLOW)?;
            }
        }
    }
    Ok(())
}

/// Remove every xattr of `dir` (or of `name` in it, never followed) that
/// `keep(name, value)` rejects.
fn strip_xattrs(dir: BorrowedFd<'_>, name: Option<&CStr>, keep: impl Fn(&[u8], &[u8]) -> bool) -> io::Result<()> {
    // Names in a directory are reached through the directory fd's magic
    // link; the l* calls never follow the final component.
    let path = name.map(|n| {
        let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
        p.extend_from_slice(n.to_bytes());
        p
    });
    let mut list = vec![0u8; 1024];
    let n = loop {
        let r = match &path {
            Some(p) => rfs::llistxattr(p.as_slice(), &mut list[..]),
            None => rfs::flistxattr(dir, &mut list[..]),
        };
        match r {
            Ok(n) => break n,
            Err(Errno::RANGE) if list.len() < 1 << 20 => list.resize(list.len() * 4, 0),
            Err(Errno::NOTSUP) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    };
    if n == 0 {
        return Ok(());
    }
    let mut value = vec![0u8; 256];
    for x in list[..n].split(|&b| b == 0).filter(|x| !x.is_empty()) {
        let got = match &path {
            Some(p) => rfs::lgetxattr(p.as_slice(), x, &mut value[..]),
            None => rfs::fgetxattr(dir, x, &mut value[..]),
        };
        let v: &[u8] = match got {
            Ok(len) => &value[..len],
            // Too big for anything kept: it goes.
            Err(Errno::RANGE) => &[],
            Err(Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        if keep(x, v) {
            continue;
        }
        match &path {
            Some(p) => rfs::lremovexattr(p.as_slice(), x)?,
            None => rfs::fremovexattr(dir, x)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn excluded_paths_go_and_their_parent_keeps_its_mtime() {
        let t = tempfile::tempdir().unwrap();
        let up = t.path().join("upper");
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::create_dir_all(up.join("proc/x")).unwrap();
        std::fs::write(up.join("etc/hosts"), "").unwrap();
        std::fs::write(up.join("etc/motd"), "hi").unwrap();
        let f = std::fs::File::open(up.join("etc")).unwrap();
        let then = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        f.set_modified(then).unwrap();
        // A symlinked parent is never followed.
        std::os::unix::fs::symlink(t.path(), up.join("out")).unwrap();
        std::fs::write(t.path().join("keep"), "x").unwrap();
        let ex: Vec<String> = ["etc/hosts", "proc", "out/keep", "missing/x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        prepare(&up, &ex, None).unwrap();
        assert!(!up.join("etc/hosts").exists());
        assert!(up.join("etc/motd").exists());
        assert!(!up.join("proc").exists());
        assert!(t.path().join("keep").exists());
        assert_eq!(std::fs::metadata(up.join("etc")).unwrap().mtime(), 1_000_000_000);
    }

    #[test]
    fn mtimes_are_whole_seconds_clamped_and_sockets_go() {
        let t = tempfile::tempdir().unwrap();
        let up = t.path().join("upper");
        std::fs::create_dir_all(up.join("d")).unwrap();
        std::fs::write(up.join("d/f"), "x").unwrap();
        std::os::unix::fs::symlink("f", up.join("d/l")).unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(up.join("d/s")).unwrap();
        prepare(&up, &[], Some(1_000)).unwrap();
        for p in ["d", "d/f", "d/l"] {
            let m = std::fs::symlink_metadata(up.join(p)).unwrap();
            assert_eq!((m.mtime(), m.mtime_nsec()), (1_000, 0), "{p}");
            assert_eq!((m.atime(), m.atime_nsec()), (1_000, 0), "{p}");
        }
        assert!(std::fs::symlink_metadata(up.join("d/s")).is_err());
        let now = std::fs::metadata(up.join("d/f")).unwrap();
        prepare(&up, &[], None).unwrap();
        assert_eq!(std::fs::metadata(up.join("d/f")).unwrap().mtime(), now.mtime());
    }
}
