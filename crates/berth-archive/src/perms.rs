//! The one way berth creates its own directories and files: always with an
//! explicit mode, set exactly (the umask can only take bits away, and a
//! umask of 0 must not make a store world-readable), never following a
//! symlink at the final component.
//!
//! The permissions model of a store (see the README): the store root is
//! [`STORE_ROOT`] (0700), so no other local user can reach anything in it
//! — not the set-uid files of an image's layers, not a container's config
//! with its `-e` secrets, not its log. Below it berth's own directories
//! are [`PRIVATE_DIR`] and its own files [`PRIVATE_FILE`], so that even a
//! store root opened up by hand leaks no secret. Only what is bind-mounted
//! into containers and must be readable by their non-root users
//! ([`MOUNTED_FILE`]: hosts, resolv.conf, hostname), the roots of what
//! containers see ([`CONTENT_DIR`]: a layer's `diff`, an overlay upper
//! dir, a volume's `_data`) and layer content (which keeps the modes its
//! tar gives it) are more open; all are only reachable through the 0700
//! root.
//!
//! This module must never be used for layer content: a layer's files get
//! exactly the modes of their tar entries (see `apply_layer`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The store root: its owner only. (Docker uses 0710 so that a remapped
/// root group can traverse; berth has no such group: rootless containers
/// run as the store's owner, and root containers as root.)
pub const STORE_ROOT: u32 = 0o700;
/// Every directory berth creates for itself in a store.
pub const PRIVATE_DIR: u32 = 0o700;
/// Every file berth creates for itself in a store.
pub const PRIVATE_FILE: u32 = 0o600;
/// A file bind-mounted into containers whose non-root users must read it
/// (`/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`).
pub const MOUNTED_FILE: u32 = 0o644;
/// A directory that becomes the root of what a container sees: a layer's
/// `diff`, an overlay upper dir (its mode is the container's `/`), a
/// volume's `_data`. Like `/`, open to the container's non-root users.
pub const CONTENT_DIR: u32 = 0o755;
/// Directories berth creates above a store root that does not exist yet
/// (e.g. `~/.local/share`): the usual mode for such directories.
pub const PARENT_DIR: u32 = 0o755;

/// Creates the directory `path` with exactly `mode`. An existing directory
/// is an error (`AlreadyExists`), as with `fs::create_dir`.
pub fn create_dir(path: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new().mode(mode).create(path)?;
    exact_mode(path, mode)
}

/// Creates `path` and its missing parents, each new one with exactly
/// `mode`; directories already there are left as they are.
pub fn create_dir_all(path: &Path, mode: u32) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent, mode)?;
    }
    match create_dir(path, mode) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        r => r,
    }
}

/// Sets exactly `mode` on an existing path berth made (a socket it bound,
/// say); a symlink at `path` is an error, never followed.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    exact_mode(path, mode)
}

fn exact_mode(path: &Path, mode: u32) -> io::Result<()> {
    if fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "is a symlink"));
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Options that open a file for writing with exactly `mode` when it is
/// created, never through a symlink.
fn options(mode: u32) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    o
}

/// Creates a new file (an existing one is an error) with exactly `mode`.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let f = options(mode).create_new(true).open(path)?;
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(f)
}

/// Opens `path` for appending, creating it with exactly `mode` if missing;
/// an existing file loses any permission bit beyond `mode`.
pub fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    open_or_create(path, mode, |o| {
        o.append(true);
    })
}

/// Opens `path` for reading and writing without truncating it (e.g. a
/// lock file), creating it with exactly `mode` if missing; an existing
/// file loses any permission bit beyond `mode`.
pub fn open_rw(path: &Path, mode: u32) -> io::Result<File> {
    open_or_create(path, mode, |o| {
        o.read(true);
    })
}

/// Opens `path` (write access, plus what `configure` adds), creating it
/// with exactly `mode` if missing; an existing file loses any permission
/// bit beyond `mode`. Never through a symlink.
pub fn open_or_create(path: &Path, mode: u32, configure: impl Fn(&mut OpenOptions)) -> io::Result<File> {
    let mut o = options(mode);
    configure(&mut o);
    match o.clone().create_new(true).open(path) {
        Ok(f) => {
            f.set_permissions(fs::Permissions::from_mode(mode))?;
            Ok(f)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let f = o.open(path)?;
            let have = f.metadata()?.permissions().mode() & 0o7777;
            if have & !mode != 0 {
                f.set_permissions(fs::Permissions::from_mode(have & mode))?;
            }
            Ok(f)
        }
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `bytes` atomically (a new file beside it with
/// exactly `mode`, then renamed over it).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}-{:x}", std::process::id(), rand_u32()));
    let tmp = path.with_file_name(tmp_name);
    let r = (|| {
        let mut f = create_new(&tmp, mode)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

/// Writes `bytes` to a new file `path` (an existing one is an error) with
/// exactly `mode`.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    create_new(path, mode)?.write_all(bytes)
}

fn rand_u32() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ N.fetch_add(0x9e37_79b9, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    /// The umask is the process's: tests here that create files take turns
    /// (no other unit test of this crate creates any).
    static UMASK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn modes_are_exact_whatever_the_umask() {
        let _turn = UMASK.lock().unwrap_or_else(|p| p.into_inner());
        let t = tempfile::tempdir().unwrap();
        // SAFETY: umask only changes this process's file creation mask;
        // every mode below is set explicitly, which is what is tested.
        let old = unsafe { libc::umask(0o000) };
        let d = t.path().join("a/b");
        create_dir_all(&d, PRIVATE_DIR).unwrap();
        assert_eq!((mode(&t.path().join("a")), mode(&d)), (0o700, 0o700));
        write_new(&d.join("f"), b"x", PRIVATE_FILE).unwrap();
        write_atomic(&d.join("g"), b"y", PRIVATE_FILE).unwrap();
        write_atomic(&d.join("g"), b"z", MOUNTED_FILE).unwrap();
        drop(open_append(&d.join("log"), PRIVATE_FILE).unwrap());
        drop(open_rw(&d.join("lock"), PRIVATE_FILE).unwrap());
        // SAFETY: as above.
        unsafe { libc::umask(0o777) };
        create_dir(&d.join("c"), PRIVATE_DIR).unwrap();
        write_new(&d.join("h"), b"x", PRIVATE_FILE).unwrap();
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        assert_eq!(mode(&d.join("f")), 0o600);
        assert_eq!(mode(&d.join("g")), 0o644);
        assert_eq!(fs::read(d.join("g")).unwrap(), b"z");
        assert_eq!(mode(&d.join("log")), 0o600);
        assert_eq!(mode(&d.join("lock")), 0o600);
        assert_eq!(mode(&d.join("c")), 0o700);
        assert_eq!(mode(&d.join("h")), 0o600);
        let left: Vec<_> = fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 6, "no temporary file is left: {left:?}");
    }

    #[test]
    fn a_symlink_planted_at_the_name_is_never_followed() {
        let _turn = UMASK.lock().unwrap_or_else(|p| p.into_inner());
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(write_new(&link, b"secret", PRIVATE_FILE).is_err());
        assert!(open_append(&link, PRIVATE_FILE).is_err());
        assert!(open_rw(&link, PRIVATE_FILE).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        // An existing log that is too open loses the extra bits.
        let log = t.path().join("log");
        fs::write(&log, b"").unwrap();
        fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
        drop(open_append(&log, PRIVATE_FILE).unwrap());
        assert_eq!(mode(&log), 0o600);
    }
}
