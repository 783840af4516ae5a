//! Partial downloads that outlive the process: `downloads/<hex>.partial`,
//! keyed by the blob's digest, so a pull killed half-way through a layer
//! lets the next pull ask the registry for the rest only.
//!
//! They live outside `tmp/` because the staging sweep removes what dead
//! processes left there, and a partial download is exactly that. A
//! partial is never trusted: it is only a prefix to resume after, and the
//! digest is checked over the whole blob (prefix and rest) before the blob
//! is published. Whoever writes one holds an flock on it; a second pull of
//! the same blob at the same time finds it locked and downloads into its
//! own staging instead. When the download is done the file is renamed into
//! the writer's staging dir and becomes an ordinary [`StagedBlob`].
//! Partials nobody touched for a week are removed when a store opens.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use berth_archive::perms;
use rustix::fs::{flock, FlockOperation};

use crate::blobs::WritebackFile;
use crate::error::{IoContext, Result};
use crate::{Digest, StagedBlob, Store};

/// Partials older than this are abandoned.
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// A locked partial download.
pub struct PartialBlob {
    /// Its length so far is `out.written`.
    out: WritebackFile,
    path: PathBuf,
}

impl PartialBlob {
    /// Bytes already there.
    pub fn len(&self) -> u64 {
        self.out.written
    }

    pub fn is_empty(&self) -> bool {
        self.out.written == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keep only the first `n` bytes; later writes append after them.
    pub fn truncate(&mut self, n: u64) -> Result<()> {
        self.out
            .file
            .set_len(n)
            .ctx("truncating partial download", &self.path)?;
        self.out
            .file
            .seek(SeekFrom::Start(n))
            .ctx("truncating partial download", &self.path)?;
        self.out.written = n;
        Ok(())
    }

    /// A reader of the first `n` bytes (its own file offset).
    pub fn prefix(&self, n: u64) -> Result<impl Read> {
        let f = File::open(&self.path).ctx("reading partial download", &self.path)?;
        Ok(io::BufReader::with_capacity(1 << 20, f).take(n))
    }

    /// The download is complete: sync it and move it into this process's
    /// staging as a blob to verify (`digest` and `size` as hashed by the
    /// caller over the whole content).
    pub fn finish(self, store: &Store, digest: Digest, size: u64) -> Result<StagedBlob> {
        self.out.file.sync_all().ctx("syncing blob", &self.path)?;
        let staged = store.staging().path("pull")?;
        fs::rename(&self.path, &staged).ctx("staging downloaded blob", &self.path)?;
        Ok(store.blobs().adopt_staged(staged, digest, size))
    }

    /// Throw the bytes away (they proved wrong).
    pub fn discard(self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl Write for PartialBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Store {
    fn downloads_dir(&self) -> PathBuf {
        self.root().join("downloads")
    }

    /// The partial download of `digest`, locked for this process, created
    /// empty if there is none. None while another process downloads it.
    pub fn partial_blob(&self, digest: &Digest) -> Result<Option<PartialBlob>> {
        let dir = self.downloads_dir();
        crate::private_dir(&dir)?;
        let path = dir.join(format!("{}.partial", digest.hex()));
        loop {
            let file = perms::open_or_create(&path, perms::PRIVATE_FILE, |o| {
                o.read(true).append(true);
            })
            .ctx("opening partial download", &path)?;
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(io::Error::from(e)).ctx("locking partial download", &path),
            }
            // Locked; but is it still the file at that name (the last
            // holder may have renamed it into its staging meanwhile)?
            let held = file.metadata().ctx("reading partial download", &path)?;
            match fs::metadata(&path) {
                Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => {
                    return Ok(Some(PartialBlob {
                        out: WritebackFile {
                            file,
                            written: held.len(),
                        },
                        path,
                    }))
                }
                _ => continue,
            }
        }
    }

    /// Remove partial downloads untouched for a week whose writer is gone.
    pub(crate) fn sweep_partials(&self) {
        let Ok(rd) = fs::read_dir(self.downloads_dir()) else {
            return;
        };
        let now = SystemTime::now();
        for e in rd.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() > MAX_AGE)
                .unwrap_or(false);
            if !old {
                continue;
            }
            if let Ok(f) = File::open(e.path()) {
                if flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok() {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_survives_its_writer_and_is_held_by_one_at_a_time() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let data = b"0123456789abcdef".repeat(100);
        let digest = Digest::of_bytes(&data);
        {
            let mut p = store.partial_blob(&digest).unwrap().unwrap();
            assert_eq!(p.len(), 0);
            p.write_all(&data[..700]).unwrap();
            // A second writer is turned away while the first holds it.
            assert!(store.partial_blob(&digest).unwrap().is_none());
        }
        // A new process (here: a new store) resumes after the prefix.
        drop(store);
        let store = Store::open(d.path()).unwrap();
        let mut p = store.partial_blob(&digest).unwrap().unwrap();
        assert_eq!(p.len(), 700);
        let mut prefix = Vec::new();
        p.prefix(700).unwrap().read_to_end(&mut prefix).unwrap();
        assert_eq!(prefix, &data[..700]);
        p.truncate(600).unwrap();
        p.write_all(&data[600..]).unwrap();
        let path = p.path().to_path_buf();
        let staged = p.finish(&store, digest.clone(), data.len() as u64).unwrap();
        assert!(!path.exists(), "the partial became a staged blob");
        assert_eq!(fs::read(staged.path()).unwrap(), data);
        staged.commit().unwrap();
        assert_eq!(store.blobs().read(&digest).unwrap(), data);
        // The name is free again for the next download of it.
        let p = store.partial_blob(&digest).unwrap().unwrap();
        assert_eq!(p.len(), 0);
        p.discard();
    }
}
