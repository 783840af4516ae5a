//! Staging under `tmp/`: every write happens in a per-process directory,
//! is fsynced and then renamed into place. Each process holds an flock on its
//! staging directory's lock file, so the sweep at start-up removes only what
//! dead processes left — never the files of a berth running beside us.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{flock, FlockOperation};

use crate::error::{IoContext, Result};

pub struct Staging {
    dir: PathBuf,
    _lock: File,
    counter: AtomicU64,
}

impl Staging {
    /// Create this process's staging dir under `tmp_root` and sweep the
    /// directories of processes that are gone.
    pub fn open(tmp_root: &Path) -> Result<Self> {
        fs::create_dir_all(tmp_root).ctx("creating staging directory", tmp_root)?;
        sweep(tmp_root);
        let name = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        let dir = tmp_root.join(&name);
        fs::create_dir(&dir).ctx("creating staging directory", &dir)?;
        let lock_path = tmp_root.join(format!("{name}.lock"));
        let lock = File::create(&lock_path).ctx("creating staging lock", &lock_path)?;
        flock(&lock, FlockOperation::NonBlockingLockExclusive)
            .map_err(std::io::Error::from)
            .ctx("locking staging directory", &lock_path)?;
        Ok(Staging {
            dir,
            _lock: lock,
            counter: AtomicU64::new(0),
        })
    }

    /// A fresh, unique path inside the staging dir (nothing is created).
    pub fn path(&self, hint: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{hint}-{n}"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let lock = self.dir.with_extension("lock");
        let mut name = self.dir.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let _ = fs::remove_file(self.dir.with_file_name(name));
        let _ = lock;
    }
}

/// Remove staging dirs whose owner no longer holds its lock.
fn sweep(tmp_root: &Path) {
    let Ok(entries) = fs::read_dir(tmp_root) else { return };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "lock") {
            continue;
        }
        let mut lock_name = e.file_name();
        lock_name.push(".lock");
        let lock_path = tmp_root.join(&lock_name);
        let stale = match File::open(&lock_path) {
            Ok(f) => flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok(),
            // No lock file: a half-created dir of a dead process, or an
            // unrelated leftover; either way nothing live owns it.
            Err(_) => true,
        };
        if stale {
            log::debug!("sweeping stale staging dir {}", path.display());
            if path.is_dir() {
                remove_tree(&path);
            } else {
                let _ = fs::remove_file(&path);
            }
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
