//! berth-store: the content-addressed store under `$ROOT`.
//!
//! Blobs (`blobs/sha256/<hex>`) are written only through a `BlobWriter` that
//! proves their digest; unpacked layers live in `layers/<chain-id>/diff` and
//! are unpacked exactly once (a build step's layer is its adopted upper dir,
//! and its uncompressed tar blob is made from that dir, and proven, only
//! when something reads it: see `layers`); metadata (images, tags,
//! containers, build cache) is in SQLite. Nothing becomes visible before its
//! files are durable, and a store-wide lock keeps garbage collection away
//! from imports in flight. This crate never runs containers and never talks
//! to a network.

pub mod blobs;
pub mod config;
pub mod containers;
mod db;
pub mod digest;
pub mod error;
pub mod images;
pub mod layers;
pub mod partial;
pub mod reference;
pub mod staging;
pub mod volumes;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rustix::fs::{flock, FlockOperation};

pub use blobs::{BlobStore, BlobWriter, StagedBlob};
pub use config::{HealthConfig, History, ImageConfig, RootFs, RunConfig};
pub use containers::ContainerRecord;
pub use digest::{chain_ids, Digest};
pub use error::{Result, StoreError};
pub use images::{ImageRecord, NewImage, NewLayer};
pub use layers::{LayerRecord, StagedLayer};
pub use partial::PartialBlob;
pub use reference::Reference;
pub use staging::Staging;

use error::IoContext;

/// An open store. Cheap to open; every berth command opens one.
pub struct Store {
    root: PathBuf,
    blobs: BlobStore,
    staging: Staging,
    db: Mutex<rusqlite::Connection>,
    lock_path: PathBuf,
}

/// Held while blobs are written but not yet recorded (shared) or while
/// garbage is collected (exclusive). Released on drop.
pub struct StoreLock(#[allow(dead_code)] File);

impl Store {
    pub fn open(root: &Path) -> Result<Store> {
        fs::create_dir_all(root).ctx("creating store root", root)?;
        // Every command may write (the database, staging), and nothing
        // else below fails early any more for a store of another user.
        rustix::fs::accessat(
            rustix::fs::CWD,
            root,
            rustix::fs::Access::WRITE_OK,
            rustix::fs::AtFlags::EACCESS,
        )
        .map_err(std::io::Error::from)
        .ctx("opening store root for writing", root)?;
        for sub in ["layers", "containers", "volumes"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).ctx("creating store directory", &p)?;
        }
        let blobs = BlobStore::new(root)?;
        let staging = Staging::open(&root.join("tmp"))?;
        let db = db::open(&root.join("berth.db"))?;
        let store = Store {
            root: root.to_path_buf(),
            blobs,
            staging,
            db: Mutex::new(db),
            lock_path: root.join("store.lock"),
        };
        store.sweep_partials();
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn staging(&self) -> &Staging {
        &self.staging
    }

    pub(crate) fn db(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start writing a blob (staged under `tmp/`).
    pub fn blob_writer(&self, hint: &str) -> Result<BlobWriter> {
        self.blobs.writer(self.staging.path(hint)?)
    }

    /// Store a small blob (config, manifest) and return its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        self.blobs.put_bytes(self.staging.path("blob")?, bytes)
    }

    fn lock(&self, op: FlockOperation) -> Result<StoreLock> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .ctx("opening store lock", &self.lock_path)?;
        flock(&f, op)
            .map_err(std::io::Error::from)
            .ctx("locking store", &self.lock_path)?;
        Ok(StoreLock(f))
    }

    /// Taken by anything that writes blobs or layers before recording them.
    pub fn write_lock(&self) -> Result<StoreLock> {
        self.lock(FlockOperation::LockShared)
    }

    /// Taken by garbage collection.
    pub fn gc_lock(&self) -> Result<StoreLock> {
        self.lock(FlockOperation::LockExclusive)
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn volumes_dir(&self) -> PathBuf {
        self.root.join("volumes")
    }
}

pub(crate) fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}
