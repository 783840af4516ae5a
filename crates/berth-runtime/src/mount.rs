//! Overlay mounts for container root file systems.
//!
//! Uses the new mount API (`fsopen`/`fsconfig` with one `lowerdir+` per
//! layer) so the number of layers is not limited by the one-page option
//! string of mount(2); falls back to mount(2) with an option string, made of
//! short symlinks to the layers when the real paths would not fit.
//! This module only mounts and unmounts: it must never create, delete or
//! modify layer contents.

use crate::error::{Result, RuntimeError};
use rustix::mount::{
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, FsMountFlags, FsOpenFlags, MountAttrFlags,
    MoveMountFlags, UnmountFlags,
};
use std::path::{Path, PathBuf};

fn merr(target: &Path, reason: String) -> RuntimeError {
    RuntimeError::Mount {
        target: target.to_path_buf(),
        reason,
    }
}

/// The directory used as the single lower layer of a scratch image.
fn empty_lower_for(work: &Path) -> PathBuf {
    let parent = work.parent().unwrap_or(Path::new("/"));
    parent.join("empty-lower")
}

fn check_dir(p: &Path, what: &str, target: &Path) -> Result<()> {
    if !p.is_dir() {
        return Err(merr(target, format!("{what} {} is not a directory", p.display())));
    }
    let s = p.as_os_str().as_encoded_bytes();
    if s.contains(&b':') || s.contains(&b',') {
        return Err(merr(
            target,
            format!("{what} {} contains ':' or ',' which overlayfs cannot take", p.display()),
        ));
    }
    Ok(())
}

/// Mounts an overlay at `target`: `lowers` (top-most first), `upper` and
/// `work` (same file system as `upper`, empty). With no lowers (a scratch
/// image) an empty directory next to `work` (`empty-lower`) is the lower.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    mount_overlay_opts(lowers, upper, work, target, false)
}

/// Where overlayfs marks a work dir that was mounted `volatile`; it then
/// refuses to mount it again until the marker is gone.
const VOLATILE_MARKER: &str = "work/incompat/volatile";

/// [`mount_overlay`], optionally `volatile` (kernel 5.10+; ignored where
/// unsupported): overlayfs then never syncs the upper dir, neither on
/// fsync nor on unmount (an unmount otherwise syncs the whole file system
/// the upper dir lives on). For disposable containers only (`--rm`): after
/// a crash the upper dir may have lost writes. Such a work dir can only be
/// mounted again volatile, which first clears overlayfs's marker.
pub fn mount_overlay_opts(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path, volatile: bool) -> Result<()> {
    let mut lowers: Vec<PathBuf> = lowers.to_vec();
    if lowers.is_empty() {
        let empty = empty_lower_for(work);
        // The root of what the container sees, as a layer's diff would be.
        berth_archive::perms::create_dir_all(&empty, berth_archive::perms::CONTENT_DIR)
            .map_err(|e| merr(target, format!("creating empty lower dir {}: {e}", empty.display())))?;
        lowers.push(empty);
    }
    for l in &lowers {
        check_dir(l, "lower layer", target)?;
    }
    check_dir(upper, "upper dir", target)?;
    check_dir(work, "work dir", target)?;
    check_dir(target, "mount point", target)?;
    if volatile {
        let marker = work.join(VOLATILE_MARKER);
        if marker.exists() {
            std::fs::remove_dir_all(&marker)
                .map_err(|e| merr(target, format!("removing overlayfs's marker {}: {e}", marker.display())))?;
        }
    }
    match mount_new_api(&lowers, upper, work, target, volatile) {
        Ok(()) => Ok(()),
        Err(new_err) => {
            log::debug!(
                "new mount API failed for {}: {new_err}; falling back to mount(2)",
                target.display()
            );
            mount_legacy(&lowers, upper, work, target).map_err(|old| {
                merr(
                    target,
                    format!("overlay mount failed with the new mount API ({new_err}) and with mount(2) ({old}); check that the overlay module is loaded and the layer dirs exist"),
                )
            })
        }
    }
}

fn mount_new_api(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> std::result::Result<(), String> {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| format!("fsopen: {e}"))?;
    for l in lowers {
        fsconfig_set_string(&fs, "lowerdir+", l.as_path()).map_err(|e| format!("lowerdir+ {}: {e}", l.display()))?;
    }
    fsconfig_set_string(&fs, "upperdir", upper).map_err(|e| format!("upperdir: {e}"))?;
    fsconfig_set_string(&fs, "workdir", work).map_err(|e| format!("workdir: {e}"))?;
    // Not fatal on kernels that do not know it; keeps inode numbers sane.
    let _ = fsconfig_set_string(&fs, "index", "off");
    if volatile {
        // Not fatal either: a kernel without it syncs as usual.
        let _ = rustix::mount::fsconfig_set_flag(&fs, "volatile");
    }
    fsconfig_create(&fs).map_err(|e| format!("creating the overlay: {e}"))?;
    let mnt =
        fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty()).map_err(|e| format!("fsmount: {e}"))?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| format!("move_mount: {e}"))
}

const PAGE: usize = 4096;

fn mount_legacy(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> std::result::Result<(), String> {
    let join = |ls: &[PathBuf]| -> String {
        ls.iter()
            .map(|l| l.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(":")
    };
    let tail = format!(",upperdir={},workdir={}", upper.display(), work.display());
    let mut opts = format!("lowerdir={}{tail}", join(lowers));
    let mut link_dir = None;
    if opts.len() >= PAGE {
        // Short symlinks to every layer; overlayfs resolves them at mount
        // time, so they are removed right after.
        let dir = std::env::temp_dir().join(format!("bl{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        berth_archive::perms::create_dir(&dir, berth_archive::perms::PRIVATE_DIR)
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut short = Vec::new();
        for (i, l) in lowers.iter().enumerate() {
            let link = dir.join(format!("{i:x}"));
            std::os::unix::fs::symlink(l, &link).map_err(|e| format!("symlink {}: {e}", link.display()))?;
            short.push(link);
        }
        opts = format!("lowerdir={}{tail}", join(&short));
        link_dir = Some(dir);
    }
    let res = if opts.len() >= PAGE {
        Err(format!(
            "{} layers do not fit in one mount option page even with short links",
            lowers.len()
        ))
    } else {
        std::ffi::CString::new(opts)
            .map_err(|_| "mount options contain a NUL byte".to_string())
            .and_then(|data| {
                rustix::mount::mount(
                    "overlay",
                    target,
                    "overlay",
                    rustix::mount::MountFlags::empty(),
                    data.as_c_str(),
                )
                .map_err(|e| format!("mount: {e}"))
            })
    };
    if let Some(d) = link_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    res
}

/// The directory of a container directory where a shareable IPC
/// namespace's `/dev/shm` lives (`--ipc shareable`), so that a container
/// joining that namespace binds the same one.
pub const SHM_DIR: &str = "shm";

/// Makes `dir` a `/dev/shm` of `size` bytes that other containers can
/// bind: a tmpfs mounted here as root; a plain directory for a rootless
/// user, who cannot mount outside a container's namespaces. Already
/// mounted is kept (a restart keeps its shared memory).
pub fn mount_shm(dir: &Path, size: u64) -> Result<()> {
    use rustix::fs::Mode;
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(merr(dir, format!("creating {}: {e}", dir.display()))),
    }
    if !rustix::process::geteuid().is_root() {
        return rustix::fs::chmod(dir, Mode::from_raw_mode(0o1777)).map_err(|e| merr(dir, format!("chmod: {e}")));
    }
    if is_mountpoint(dir) {
        return Ok(());
    }
    let data = std::ffi::CString::new(format!("mode=1777,size={}k", size.div_ceil(1024))).expect("no NUL");
    rustix::mount::mount(
        "shm",
        dir,
        "tmpfs",
        rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NOEXEC | rustix::mount::MountFlags::NODEV,
        data.as_c_str(),
    )
    .map_err(|e| merr(dir, format!("mounting its tmpfs: {e}")))
}

/// Detaches whatever is mounted at `target` (lazily). Not mounted or
/// missing is not an error.
pub fn unmount(target: &Path) -> Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(merr(target, format!("umount: {e}"))),
    }
}

/// Whether something is mounted exactly at `path` (per /proc/self/mountinfo).
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize() else {
        return false;
    };
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .map(|mp| unescape_mountinfo(mp) == canon.to_string_lossy())
            .unwrap_or(false)
    })
}

fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs root"]
    fn legacy_mount_uses_short_links_for_many_layers() {
        assert!(
            rustix::process::geteuid().as_raw() == 0,
            "this test needs root: run it as root with --include-ignored (scripts/test does)"
        );
        let t = tempfile::tempdir().unwrap();
        let mut lowers = Vec::new();
        for i in 0..120 {
            let l = t
                .path()
                .join(format!("a-long-layer-directory-name-number-{i:04}-padding-padding"));
            std::fs::create_dir_all(&l).unwrap();
            std::fs::write(l.join(format!("f{i}")), "x").unwrap();
            lowers.push(l);
        }
        let (u, w, m) = (t.path().join("u"), t.path().join("w"), t.path().join("m"));
        for d in [&u, &w, &m] {
            std::fs::create_dir_all(d).unwrap();
        }
        mount_legacy(&lowers, &u, &w, &m).unwrap();
        assert!(is_mountpoint(&m));
        assert!(m.join("f0").exists() && m.join("f119").exists());
        unmount(&m).unwrap();
        assert!(!is_mountpoint(&m));
    }

    #[test]
    fn rejects_paths_overlayfs_cannot_take() {
        let t = tempfile::tempdir().unwrap();
        let bad = t.path().join("a:b");
        std::fs::create_dir_all(&bad).unwrap();
        let e = mount_overlay(&[bad], t.path(), t.path(), t.path()).unwrap_err();
        assert!(e.to_string().contains("':'"), "{e}");
    }
}
