//! The content store: `blobs/sha256/<hex>`. A blob exists only after a
//! `BlobWriter` proved its digest; nothing else writes into `blobs/`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_archive::perms;
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};

#[derive(Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    pub fn new(root: &Path) -> Result<Self> {
        let dir = root.join("blobs").join("sha256");
        crate::private_dir(&dir)?;
        Ok(BlobStore { dir })
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).exists()
    }

    pub fn open(&self, d: &Digest) -> Result<File> {
        File::open(self.path(d)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::BlobNotFound(d.to_string())
            } else {
                StoreError::Io {
                    context: "opening blob",
                    path: self.path(d),
                    source: e,
                }
            }
        })
    }

    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open(d)?.read_to_end(&mut v).ctx("reading blob", self.path(d))?;
        Ok(v)
    }

    pub fn size(&self, d: &Digest) -> Result<u64> {
        Ok(fs::metadata(self.path(d)).ctx("reading blob size", self.path(d))?.len())
    }

    /// Start writing a blob into `staging_path` (a path in this process's staging dir).
    pub fn writer(&self, staging_path: PathBuf) -> Result<BlobWriter> {
        let file = perms::create_new(&staging_path, perms::PRIVATE_FILE).ctx("creating staged blob", &staging_path)?;
        Ok(BlobWriter {
            file: io::BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            size: 0,
            staging_path,
            blobs_dir: self.dir.clone(),
        })
    }

    /// Store a small in-memory blob (configs, manifests).
    pub fn put_bytes(&self, staging_path: PathBuf, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of_bytes(bytes);
        if self.contains(&d) {
            return Ok(d);
        }
        let mut w = self.writer(staging_path)?;
        w.write_all(bytes).ctx("writing blob", self.path(&d))?;
        w.commit(Some(&d))
    }

    /// Take over a file this process wrote and hashed itself in its staging
    /// dir (e.g. a member of an archive being loaded) as a staged blob.
    pub fn adopt_staged(&self, path: PathBuf, digest: Digest, size: u64) -> StagedBlob {
        StagedBlob {
            digest,
            size,
            path,
            blobs_dir: self.dir.clone(),
        }
    }

    pub fn remove(&self, d: &Digest) {
        let _ = fs::remove_file(self.path(d));
    }

    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).ctx("listing blobs", &self.dir)? {
            let e = e.ctx("listing blobs", &self.dir)?;
            if let Some(name) = e.file_name().to_str() {
                if let Ok(d) = Digest::from_hex(name) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }
}

/// Called as a file grows from `before` to `after` bytes: every 8 MiB,
/// start write-back of what reached it (see
/// `berth_archive::start_writeback`), so the final sync waits less.
pub(crate) fn hint_writeback(file: &File, before: u64, after: u64) {
    if before >> 23 != after >> 23 {
        berth_archive::start_writeback(file);
    }
}

/// A file that starts its write-back as it grows (see [`hint_writeback`]);
/// `written` is its length so far.
pub(crate) struct WritebackFile {
    pub(crate) file: File,
    pub(crate) written: u64,
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        let before = self.written;
        self.written += n as u64;
        hint_writeback(&self.file, before, self.written);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Hashes while it writes into `tmp/`; `commit` checks the digest and only
/// then renames the file into `blobs/`. Dropped without commit: the staged
/// file is removed.
pub struct BlobWriter {
    file: io::BufWriter<File>,
    hasher: Sha256,
    size: u64,
    staging_path: PathBuf,
    blobs_dir: PathBuf,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        let before = self.size;
        self.size += n as u64;
        hint_writeback(self.file.get_ref(), before, self.size);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Digest of what was written so far.
    pub fn digest(&self) -> Digest {
        Digest::from_trusted(format!("sha256:{}", hex::encode(self.hasher.clone().finalize())))
    }

    /// Verify against `expected` (if given), fsync, rename into place.
    pub fn commit(self, expected: Option<&Digest>) -> Result<Digest> {
        let staged = self.finish()?;
        staged.verify(expected, "blob")?;
        staged.commit()
    }

    /// Flush and fsync; the blob stays staged (invisible) until `commit`.
    pub fn finish(mut self) -> Result<StagedBlob> {
        self.file.flush().ctx("writing blob", &self.staging_path)?;
        self.file.get_ref().sync_all().ctx("syncing blob", &self.staging_path)?;
        let staged = StagedBlob {
            digest: self.digest(),
            size: self.size,
            path: std::mem::take(&mut self.staging_path),
            blobs_dir: self.blobs_dir.clone(),
        };
        Ok(staged)
    }
}

/// A written, synced, hashed blob not yet visible in the store. Dropped
/// without `commit`: removed.
pub struct StagedBlob {
    pub digest: Digest,
    pub size: u64,
    path: PathBuf,
    blobs_dir: PathBuf,
}

impl StagedBlob {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Check the digest against what the manifest or config promised; `what`
    /// names the object in the error (e.g. `layer 2 (blobs/sha256/ab…)`).
    pub fn verify(&self, expected: Option<&Digest>, what: &str) -> Result<()> {
        match expected {
            Some(exp) if *exp != self.digest => Err(StoreError::DigestMismatch {
                what: what.to_string(),
                expected: exp.to_string(),
                actual: self.digest.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Rename into `blobs/` (a blob already present is kept as it is).
    pub fn commit(mut self) -> Result<Digest> {
        let target = self.blobs_dir.join(self.digest.hex());
        if !target.exists() {
            match fs::rename(&self.path, &target) {
                Ok(()) => {}
                // Shared by two images of one archive: the first commit moved it.
                Err(e) if e.kind() == io::ErrorKind::NotFound && target.exists() => {}
                Err(e) => {
                    return Err(StoreError::Io {
                        context: "publishing blob",
                        path: target,
                        source: e,
                    })
                }
            }
        }
        self.path = PathBuf::new();
        Ok(self.digest.clone())
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After `finish` the path was taken and this is a no-op; otherwise it
        // discards the unproven bytes.
        if !self.staging_path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.staging_path);
        }
    }
}
