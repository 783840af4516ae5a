//! Container root that is not host root: the id mappings of a container's
//! user namespace, and an overlay root file system whose read-only layers
//! are *idmapped mounts* of the shared layer directories (`mount_setattr`
//! with `MOUNT_ATTR_IDMAP`, overlayfs on idmapped layers: Linux 5.19+), so
//! containers with different mappings share every layer without a chowned
//! copy. The upper dir is not idmapped (overlayfs refuses that): what a
//! container writes is stored with host ids, which the engine maps back
//! when it reads them (commit, export, cp).
//!
//! The user namespace that carries a mapping is made by a forked child
//! that unshares one and waits; its `/proc/PID/ns/user` is the handle
//! `mount_setattr` takes. This module mounts and unmounts only: it must
//! never change a layer directory.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::mount::{
    fsconfig_create, fsconfig_set_fd, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree, FsMountFlags,
    FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};

/// One range of a user namespace's id map: ids `container_id..+size`
/// inside are `host_id..+size` outside.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IdMap {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

/// A container's uid and gid maps (the OCI spec's `uidMappings`,
/// `gidMappings`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct IdMappings {
    pub uid: Vec<IdMap>,
    pub gid: Vec<IdMap>,
}

impl IdMappings {
    /// Container ids `0..size` as host ids `start..start+size`, uids and
    /// gids alike (`--userns=auto`).
    pub fn shifted(start: u32, size: u32) -> IdMappings {
        let m = vec![IdMap {
            container_id: 0,
            host_id: start,
            size,
        }];
        IdMappings { uid: m.clone(), gid: m }
    }

    /// `(host start, size)` when both maps are one range from container id
    /// 0 at the same host id: a plain shift, as `--userns=auto` makes.
    pub fn as_shift(&self) -> Option<(u32, u32)> {
        match (self.uid.as_slice(), self.gid.as_slice()) {
            ([u], [g]) if u == g && u.container_id == 0 => Some((u.host_id, u.size)),
            _ => None,
        }
    }

    /// The host uid of container root, if mapped.
    pub fn root_uid(&self) -> Option<u32> {
        host_id(&self.uid, 0)
    }

    /// The host gid of container root's group, if mapped.
    pub fn root_gid(&self) -> Option<u32> {
        host_id(&self.gid, 0)
    }
}

fn host_id(map: &[IdMap], id: u32) -> Option<u32> {
    map.iter()
        .find(|m| id >= m.container_id && id - m.container_id < m.size)
        .map(|m| m.host_id + (id - m.container_id))
}

fn merr(target: &Path, reason: String) -> RuntimeError {
    RuntimeError::Mount {
        target: target.to_path_buf(),
        reason,
    }
}

fn map_text(map: &[IdMap]) -> String {
    map.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// A user namespace with `maps`, held open by its file descriptor (no
/// process stays in it).
pub fn user_namespace(maps: &IdMappings) -> std::result::Result<OwnedFd, String> {
    let (ready_r, ready_w) = rustix::pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (done_r, done_w) = rustix::pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the child only calls async-signal-safe functions (unshare,
    // write, read, _exit) on file descriptors it inherited, then exits; it
    // touches no lock or allocation of the (multi-threaded) parent.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: see above; raw calls on inherited descriptors, then _exit.
        unsafe {
            let ok: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 { 1 } else { 0 };
            libc::write(ready_w.as_raw_fd(), (&ok as *const u8).cast(), 1);
            let mut b = 0u8;
            libc::read(done_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(done_r);
    let result = (|| {
        let mut ok = [0u8];
        rustix::io::read(&ready_r, &mut ok).map_err(|e| format!("waiting for the namespace: {e}"))?;
        if ok[0] != 1 {
            return Err("unshare(CLONE_NEWUSER) failed".to_string());
        }
        // Whoever holds CAP_SETUID/CAP_SETGID here may write any map.
        std::fs::write(format!("/proc/{pid}/uid_map"), map_text(&maps.uid)).map_err(|e| format!("uid_map: {e}"))?;
        std::fs::write(format!("/proc/{pid}/gid_map"), map_text(&maps.gid)).map_err(|e| format!("gid_map: {e}"))?;
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/user")).map_err(|e| format!("opening ns/user: {e}"))?;
        Ok(OwnedFd::from(ns))
    })();
    let _ = rustix::io::write(&done_w, b"x");
    drop(done_w);
    // SAFETY: waitpid on the child forked above, not yet reaped.
    unsafe {
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    result
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached, idmapped copy of the mount of `dir` (a layer directory):
/// through it, file owner `id` shows as the id `userns` maps it to.
pub fn idmapped_tree(dir: &Path, userns: &OwnedFd) -> std::result::Result<OwnedFd, String> {
    let tree = open_tree(
        rustix::fs::CWD,
        dir,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(|e| format!("open_tree {}: {e}", dir.display()))?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = CString::default();
    // SAFETY: mount_setattr(2) reads `attr` (size given) and the empty
    // path; both live across the call; the descriptors are open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "idmapping {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(tree)
}

/// Mounts an overlay at `target` whose lower layers (`lowers`, top-most
/// first) are idmapped through `userns`; `upper` and `work` as they are.
/// `volatile` as for [`crate::mount::mount_overlay_opts`].
pub fn mount_overlay_idmapped(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
    userns: &OwnedFd,
) -> Result<()> {
    let trees: Vec<OwnedFd> = lowers
        .iter()
        .map(|l| idmapped_tree(l, userns))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| merr(target, e))?;
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| merr(target, format!("fsopen: {e}")))?;
    for (l, t) in lowers.iter().zip(&trees) {
        // Kernels before 6.13 take layers by path only: the detached
        // tree is reachable through this process's fd table.
        if let Err(e) = fsconfig_set_fd(&fs, "lowerdir+", t.as_fd()) {
            let p = format!("/proc/self/fd/{}", t.as_raw_fd());
            fsconfig_set_string(&fs, "lowerdir+", p.as_str())
                .map_err(|e2| merr(target, format!("lowerdir+ {}: {e}; by path: {e2}", l.display())))?;
        }
    }
    fsconfig_set_string(&fs, "upperdir", upper).map_err(|e| merr(target, format!("upperdir: {e}")))?;
    fsconfig_set_string(&fs, "workdir", work).map_err(|e| merr(target, format!("workdir: {e}")))?;
    let _ = fsconfig_set_string(&fs, "index", "off");
    if volatile {
        let _ = rustix::mount::fsconfig_set_flag(&fs, "volatile");
    }
    fsconfig_create(&fs).map_err(|e| merr(target, format!("creating the overlay on idmapped layers: {e}")))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| merr(target, format!("fsmount: {e}")))?;
    move_mount(
        mnt.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| merr(target, format!("move_mount: {e}")))?;
    // The overlay holds the idmapped trees; their descriptors can go.
    drop(trees);
    Ok(())
}

/// Whether this kernel and the file system of `scratch` (a directory
/// beside the layers, made and removed here) take an overlay on idmapped
/// layers; `Err` says why not.
pub fn probe_idmapped_overlay(scratch: &Path) -> std::result::Result<(), String> {
    let _ = std::fs::remove_dir_all(scratch);
    let (lower, upper, work, merged) = (
        scratch.join("lower"),
        scratch.join("upper"),
        scratch.join("work"),
        scratch.join("merged"),
    );
    let result = (|| {
        for d in [&lower, &upper, &work, &merged] {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        std::fs::write(lower.join("f"), b"").map_err(|e| format!("probe file: {e}"))?;
        let maps = IdMappings::shifted(1 << 30, 65536);
        let ns = user_namespace(&maps)?;
        mount_overlay_idmapped(std::slice::from_ref(&lower), &upper, &work, &merged, true, &ns)
            .map_err(|e| e.to_string())?;
        let uid = std::fs::metadata(merged.join("f")).map(|m| std::os::unix::fs::MetadataExt::uid(&m));
        let _ = crate::mount::unmount(&merged);
        match uid {
            Ok(u) if u == 1 << 30 => Ok(()),
            Ok(u) => Err(format!("the idmapped layer shows owner {u}, not {}", 1u32 << 30)),
            Err(e) => Err(format!("reading through the overlay: {e}")),
        }
    })();
    let _ = std::fs::remove_dir_all(scratch);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_maps_root_to_its_start() {
        let m = IdMappings::shifted(200_000, 65536);
        assert_eq!(m.as_shift(), Some((200_000, 65536)));
        assert_eq!((m.root_uid(), m.root_gid()), (Some(200_000), Some(200_000)));
        let keep = IdMappings {
            uid: vec![
                IdMap {
                    container_id: 0,
                    host_id: 100_000,
                    size: 1000,
                },
                IdMap {
                    container_id: 1000,
                    host_id: 1000,
                    size: 1,
                },
            ],
            gid: vec![],
        };
        assert_eq!(keep.as_shift(), None);
        assert_eq!(host_id(&keep.uid, 1000), Some(1000));
        assert_eq!(host_id(&keep.uid, 5), Some(100_005));
        assert_eq!(
            serde_json::to_value(keep.uid[0]).unwrap(),
            serde_json::json!({"containerID": 0, "hostID": 100_000, "size": 1000})
        );
    }

    #[test]
    #[ignore = "needs root"]
    fn an_overlay_on_idmapped_layers_shows_shifted_owners() {
        let t = tempfile::tempdir().unwrap();
        probe_idmapped_overlay(&t.path().join("probe")).unwrap();
    }
}
