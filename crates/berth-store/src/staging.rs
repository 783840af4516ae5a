//! Staging under `tmp/`: every write happens in a per-process directory,
//! is fsynced and then renamed into place. Each process holds an flock on its
//! staging directory's lock file, so the sweep at start-up removes only what
//! dead processes left — never the files of a berth running beside us.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use berth_archive::perms;
use rustix::fs::{flock, FlockOperation};

use crate::error::{IoContext, Result};

pub struct Staging {
    root: PathBuf,
    own: OnceLock<Own>,
    counter: AtomicU64,
}

/// This process's staging dir and the lock that keeps sweepers off it.
struct Own {
    dir: PathBuf,
    _lock: File,
}

impl Staging {
    /// Sweeps the staging dirs of processes that are gone. This process's
    /// own dir is made on first use: most commands (`ps`, `rm`, `run` of
    /// an image in the store) never stage anything, and a dir made and
    /// removed for nothing costs two inodes, which on ext4 without a
    /// journal slow every later file creation for minutes.
    pub fn open(tmp_root: &Path) -> Result<Self> {
        crate::private_dir(tmp_root)?;
        sweep(tmp_root);
        Ok(Staging {
            root: tmp_root.to_path_buf(),
            own: OnceLock::new(),
            counter: AtomicU64::new(0),
        })
    }

    fn own(&self) -> Result<&Own> {
        if let Some(own) = self.own.get() {
            return Ok(own);
        }
        // Another thread may have made one meanwhile: the first is kept,
        // and the spare removed as it drops.
        let _ = self.own.set(make_own(&self.root)?);
        Ok(self.own.get().expect("set above"))
    }

    /// A fresh, unique path inside the staging dir (nothing is created
    /// there; the dir itself is made on first use).
    pub fn path(&self, hint: &str) -> Result<PathBuf> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        Ok(self.own()?.dir.join(format!("{hint}-{n}")))
    }

    pub fn dir(&self) -> Result<&Path> {
        Ok(&self.own()?.dir)
    }
}

/// Creates a staging dir with its lock held. The lock file appears
/// already locked (locked under a private name, then renamed), and
/// before the directory: a sweeping neighbour can never see the
/// directory without a held lock.
fn make_own(tmp_root: &Path) -> Result<Own> {
    let name = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
    let lock_path = tmp_root.join(format!("{name}.lock"));
    let private = tmp_root.join(format!(".{name}.lock-new"));
    let lock = perms::create_new(&private, perms::PRIVATE_FILE).ctx("creating staging lock", &private)?;
    flock(&lock, FlockOperation::NonBlockingLockExclusive)
        .map_err(std::io::Error::from)
        .ctx("locking staging directory", &private)?;
    fs::rename(&private, &lock_path).ctx("creating staging lock", &lock_path)?;
    let dir = tmp_root.join(&name);
    perms::create_dir(&dir, perms::PRIVATE_DIR).ctx("creating staging directory", &dir)?;
    Ok(Own { dir, _lock: lock })
}

/// The dir and its lock file go while the lock is still held (the
/// fields drop after this body).
impl Drop for Own {
    fn drop(&mut self) {
        remove_tree(&self.dir);
        let mut name = self.dir.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let _ = fs::remove_file(self.dir.with_file_name(name));
    }
}

/// Remove staging dirs (and lock files) whose owner no longer holds its lock.
fn sweep(tmp_root: &Path) {
    let Ok(entries) = fs::read_dir(tmp_root) else { return };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        // Private lock files are renamed into place at once; leave them be.
        if name.starts_with('.') {
            continue;
        }
        let (dir, lock_path) = match name.strip_suffix(".lock") {
            Some(base) => (tmp_root.join(base), path.clone()),
            None => (path.clone(), tmp_root.join(format!("{name}.lock"))),
        };
        let Ok(f) = File::open(&lock_path) else {
            // A directory without a lock file: its owner died before or
            // after the lock's life (the lock is created first).
            if lock_path != path && dir.is_dir() {
                remove_tree(&dir);
            }
            continue;
        };
        if flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok() {
            log::debug!("sweeping stale staging dir {}", dir.display());
            remove_tree(&dir);
            let _ = fs::remove_file(&lock_path);
        }
    }
}

/// remove_dir_all that also copes with read-only directories inside
/// (unpacked layers may contain 0555 dirs).
pub fn remove_tree(path: &Path) {
    if fs::remove_dir_all(path).is_ok() {
        return;
    }
    make_writable(path);
    let _ = fs::remove_dir_all(path);
}

fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(path) else { return };
    if meta.is_dir() {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
        if let Ok(rd) = fs::read_dir(path) {
            for e in rd.flatten() {
                make_writable(&e.path());
            }
        }
    }
}
