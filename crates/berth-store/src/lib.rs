//! berth-store: the content-addressed store under `$ROOT`.
//!
//! Blobs (`blobs/sha256/<hex>`) are written only through a `BlobWriter` that
//! proves their digest; unpacked layers live in `layers/<chain-id>/diff` and
//! are unpacked exactly once (a build step's layer is its adopted upper dir,
//! and its uncompressed tar blob is made from that dir, and proven, only
//! when something reads it: see `layers`); metadata (images, tags,
//! containers, build cache, volumes, networks and their address leases) is
//! in SQLite. Nothing becomes visible before its files are durable, and a store-wide lock keeps garbage collection away
//! from imports in flight. This crate never runs containers and never talks
//! to a network.

pub mod blobs;
pub mod check;
pub mod config;
pub mod containers;
mod db;
pub mod digest;
pub mod error;
pub mod images;
pub mod layers;
pub mod leases;
pub mod networks;
pub mod partial;
pub mod platform;
pub mod reference;
pub mod settings;
pub mod staging;
pub mod sweep;
pub mod userns;
pub mod variants;
pub mod volumes;
pub mod warnings;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use berth_archive::perms;
use rustix::fs::{flock, FlockOperation};

pub use blobs::{BlobStore, BlobWriter, StagedBlob};
pub use check::{CheckReport, Finding, FindingKind};
pub use config::{HealthConfig, History, ImageConfig, RootFs, RunConfig};
pub use containers::ContainerRecord;
pub use digest::{chain_ids, Digest};
pub use error::{Result, StoreError};
pub use images::{ImageRecord, NewImage, NewLayer};
pub use layers::{LayerRecord, StagedLayer};
pub use leases::{Lease, LeaseKind, Leased};
pub use networks::{AddressPool, AddressPool6, EndpointRecord, NetworkRecord, NewEndpoint};
pub use partial::PartialBlob;
pub use platform::Platform;
pub use reference::Reference;
pub use staging::Staging;
pub use variants::Variant;
pub use warnings::StoreWarning;

use error::IoContext;

/// The paths of a store (globs relative to its root, `*` standing for one
/// name) that are open to more than the store's owner, and why: each is
/// what a container sees (layer content, its `/`, a volume, a cache
/// mount) or a file bound into containers for their non-root users to
/// read. Everything else berth creates is 0700 (directories) or 0600
/// (files), and the root itself is 0700, so none of these can be reached
/// by another local user (see `berth_archive::perms`).
pub const OPEN_PATHS: &[&str] = &[
    // Unpacked layers: their files keep the modes of the image's tars.
    "layers/*/diff",
    // A container's `/` (the upper dir's mode is the root's), its overlay
    // mount point, the empty lower of an image with no layers.
    "containers/*/upper",
    "containers/*/rootfs",
    "containers/*/empty-lower",
    // Bound into containers as /etc/hosts, /etc/hostname, /etc/resolv.conf.
    "containers/*/hosts",
    "containers/*/hostname",
    "containers/*/resolv.conf",
    // Volume data, mounted into containers.
    "volumes/*/_data",
    // A running build step: its container's files and `RUN --mount=type=cache` dirs.
    "build/cache-mounts/*",
    "build/*/*/upper",
    "build/*/*/rootfs",
    "build/*/upper",
    "build/*/link",
    "build/*/heredoc-*",
    "build/*/heredocs/*",
    "build/*/hosts",
    "build/*/hostname",
    "build/*/resolv.conf",
    // The OCI runtime's own state directory for a container (runc makes
    // it 0711; what it keeps there is its owner's only).
    "runtime/*",
    // A build context or unpacked layer while it is staged.
    "tmp/*/layer-*/diff",
    "tmp/*/context-*",
];

/// An open store. Cheap to open; every berth command opens one.
pub struct Store {
    root: PathBuf,
    blobs: BlobStore,
    staging: Staging,
    db: Mutex<rusqlite::Connection>,
    lock_path: PathBuf,
    /// What one layer may unpack to (from the environment; see
    /// [`berth_archive::Limits`]).
    layer_limits: berth_archive::Limits,
    /// What opening found wrong (and maybe put right) about the store.
    warnings: Vec<StoreWarning>,
    /// This process's own lease (see `Store::hold_for_process`).
    process_lease: std::sync::OnceLock<String>,
}

impl Drop for Store {
    fn drop(&mut self) {
        self.release_process_lease();
    }
}

/// Held while blobs are written but not yet recorded (shared) or while
/// garbage is collected (exclusive). Released on drop.
pub struct StoreLock(#[allow(dead_code)] File);

impl Store {
    /// Opens (creating it if needed) the store at `root`. A new root is
    /// made 0700; an existing one more open than that is made 0700 when
    /// this user owns it, and reported either way ([`Store::warnings`]).
    pub fn open(root: &Path) -> Result<Store> {
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            perms::create_dir_all(parent, perms::PARENT_DIR).ctx("creating store root", parent)?;
        }
        match perms::create_dir(root, perms::STORE_ROOT) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            r => r.ctx("creating store root", root)?,
        }
        let warnings = warnings::check_root(root);
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
            private_dir(&p)?;
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
            layer_limits: berth_archive::Limits::from_env(),
            warnings,
            process_lease: std::sync::OnceLock::new(),
        };
        store.sweep_partials();
        sweep::sweep_dead_steps(&root.join("build"));
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What opening found wrong with the store (a root more open than
    /// 0700), for `berth info` and the like to show.
    pub fn warnings(&self) -> &[StoreWarning] {
        &self.warnings
    }

    /// What one layer may unpack to: `BERTH_MAX_LAYER_SIZE` and
    /// `BERTH_MAX_LAYER_ENTRIES`, or their defaults.
    pub fn layer_limits(&self) -> berth_archive::Limits {
        self.layer_limits
    }

    /// Other limits for the layers this store unpacks from now on.
    pub fn set_layer_limits(&mut self, limits: berth_archive::Limits) {
        self.layer_limits = limits;
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
        let f = perms::open_rw(&self.lock_path, perms::PRIVATE_FILE).ctx("opening store lock", &self.lock_path)?;
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

/// Creates `path` (0700) unless it is a directory already.
pub(crate) fn private_dir(path: &Path) -> Result<()> {
    perms::create_dir_all(path, perms::PRIVATE_DIR).ctx("creating store directory", path)
}

pub(crate) fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}
