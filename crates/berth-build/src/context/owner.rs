//! `--chown` and `--chmod` values: names looked up in the image's own
//! `/etc/passwd` and `/etc/group`, octal modes parsed.
//!
//! It reads those two files through `openat2(RESOLVE_IN_ROOT)` and must
//! never consult the host's user database or read outside the rootfs.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};

use super::ContextError;

/// Read a file of the rootfs, confined to it; a missing file reads empty.
fn read_in_root(root: &Path, rel: &str) -> Result<String, ContextError> {
    let root_fd = rfs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| ContextError::io("open", root, e.into()))?;
    let fd = match rfs::openat2(
        &root_fd,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(String::new()),
        Err(e) => return Err(ContextError::io("open", &root.join(rel), e.into())),
    };
    let mut buf = Vec::new();
    File::from(fd)
        .take(16 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| ContextError::io("read", &root.join(rel), e))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Find `name` in a colon-separated database; returns its fields.
fn lookup<'a>(db: &'a str, name: &str) -> Option<Vec<&'a str>> {
    db.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[0] == name)
}

/// See [`super::resolve_chown`].
pub(crate) fn resolve_chown(dest_root: &Path, spec: &str) -> Result<(u32, u32), ContextError> {
    let invalid = || ContextError::InvalidChown(spec.to_owned());
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(invalid());
    }
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            let passwd = read_in_root(dest_root, "etc/passwd")?;
            let f = lookup(&passwd, user).ok_or_else(|| ContextError::UnknownUser(user.to_owned()))?;
            f[2].parse().map_err(|_| invalid())?
        }
    };
    // Without a group Docker uses the same number as the uid.
    let gid = match group {
        None => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = read_in_root(dest_root, "etc/group")?;
                let f = lookup(&groups, g).ok_or_else(|| ContextError::UnknownGroup(g.to_owned()))?;
                f[2].parse().map_err(|_| invalid())?
            }
        },
    };
    Ok((uid, gid))
}

/// See [`super::parse_chmod`].
pub(crate) fn parse_chmod(s: &str) -> Result<u32, ContextError> {
    let t = s.trim();
    match u32::from_str_radix(t, 8) {
        Ok(m) if t.bytes().all(|b| (b'0'..=b'7').contains(&b)) && m <= 0o7777 => Ok(m),
        _ => Err(ContextError::InvalidChmod(s.to_owned())),
    }
}
