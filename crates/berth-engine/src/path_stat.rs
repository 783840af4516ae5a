//! The stat of a path inside a container (`archive` HEAD, `cp`'s first
//! look), resolved as `cp` resolves it: by the kernel inside the
//! container's rootfs (`openat2` with `RESOLVE_IN_ROOT`), so a symlink in
//! the container never leads to the host's files. Reads only.

use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{anyhow, Context};
use rustix::fs::FileType;

use crate::containers::files::{base_name, open_in_root};
use crate::error::Result;
use crate::{Engine, EngineError};

/// Go's `os.FileMode` type bits, as Docker's `mode` field carries them.
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_NAMED_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHAR_DEVICE: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

/// What Docker's `X-Docker-Container-Path-Stat` header describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    /// The last element of the path (`/` for the root).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Permission bits plus Go's `os.FileMode` type bits.
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a symlink: the path it resolves to inside the container.
    pub link_target: String,
}

/// `st_mode` → Go's `os.FileMode`.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match FileType::from_raw_mode(st_mode) {
        FileType::Directory => GO_DIR,
        FileType::Symlink => GO_SYMLINK,
        FileType::BlockDevice => GO_DEVICE,
        FileType::CharacterDevice => GO_DEVICE | GO_CHAR_DEVICE,
        FileType::Fifo => GO_NAMED_PIPE,
        FileType::Socket => GO_SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= GO_SETUID;
    }
    if st_mode & 0o2000 != 0 {
        m |= GO_SETGID;
    }
    if st_mode & 0o1000 != 0 {
        m |= GO_STICKY;
    }
    m
}

/// Where `fd` (opened inside `rootfs`) is, as a path inside the container.
fn path_in_container(rootfs: &Path, fd: &std::os::fd::OwnedFd) -> Option<String> {
    let host = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let rel = host.strip_prefix(rootfs).ok()?;
    Some(format!("/{}", rel.display()))
}

impl Engine {
    /// Stat of `path` inside container `word` (the final symlink not
    /// followed; its resolved target in `link_target`).
    pub fn container_path_stat(&self, word: &str, path: &str) -> Result<PathStat> {
        let c = self.container(word)?;
        let _mounted = self.temp_mount(&c)?;
        let rootfs = c.rootfs();
        let fd = open_in_root(&rootfs, path, false).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                EngineError::not_found(format!("Could not find the file {path} in container {word}"))
            } else {
                EngineError::from(anyhow!("opening {path} in container {word}: {e}"))
            }
        })?;
        let st = rustix::fs::fstat(&fd).with_context(|| format!("stat of {path} in container {word}"))?;
        let link_target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            match open_in_root(&rootfs, path, true) {
                Ok(target) => path_in_container(&rootfs, &target).unwrap_or_default(),
                // Dangling: what the link says.
                Err(_) => rustix::fs::readlinkat(&fd, "", Vec::new())
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            }
        } else {
            String::new()
        };
        let mtime = chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default();
        Ok(PathStat {
            name: base_name(path),
            size: st.st_size as u64,
            mode: go_file_mode(st.st_mode),
            mtime,
            link_target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes_match_dockers_values() {
        // Values dockerd 20.10 sent for /etc (0755 dir) and /bin/sh (symlink).
        assert_eq!(go_file_mode(0o040755), 2147484141);
        assert_eq!(go_file_mode(0o120777), 134218239);
        assert_eq!(go_file_mode(0o100644), 0o644);
        assert_eq!(go_file_mode(0o041777), GO_DIR | GO_STICKY | 0o777);
    }
}
