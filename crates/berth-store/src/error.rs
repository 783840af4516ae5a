//! The one error type of the store. Every variant says what failed and on
//! which object, so the CLI can print it as it is.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}: {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },
    #[error("invalid digest {0:?}: expected sha256:<64 hex digits>")]
    InvalidDigest(String),
    /// Docker's words (`invalid reference format: repository name
    /// (library/UPPER) must be lowercase`); `reference` is the word given.
    #[error("invalid reference format: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("No such image: {0}")]
    ImageNotFound(String),
    #[error("image reference {reference:?} is ambiguous: it matches {count} images; use more characters of the ID")]
    AmbiguousImage { reference: String, count: usize },
    #[error("No such container: {0}")]
    ContainerNotFound(String),
    #[error("container reference {reference:?} is ambiguous: it matches {count} containers")]
    AmbiguousContainer { reference: String, count: usize },
    /// Docker's words: the name, and the ID of the container that has it.
    #[error("Conflict. The container name \"/{0}\" is already in use by container \"{1}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse(String, String),
    #[error("layer {layer} of image {image} is not in the store; re-pull or re-load the image")]
    LayerMissing { layer: String, image: String },
    #[error("blob {0} is not in the store")]
    BlobNotFound(String),
    #[error("layer {chain}: its unpacked files no longer give its diff ID {expected} (they give {actual}); the store has no other copy of this layer: remove the image and rebuild it with --no-cache (or pull or load it again)")]
    LayerDirMismatch {
        chain: String,
        expected: String,
        actual: String,
    },
    #[error("layer {layer}: {source}")]
    Layer {
        layer: String,
        #[source]
        source: berth_archive::ArchiveError,
    },
    #[error("image config {digest}: {source}")]
    BadConfig {
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("network reference {reference:?} is ambiguous: it matches {count} networks")]
    AmbiguousNetwork { reference: String, count: usize },
    #[error("error while removing network: network {network} has active endpoints ({})", containers.join(", "))]
    NetworkInUse { network: String, containers: Vec<String> },
    #[error("container {container} is already attached to network {network}")]
    AlreadyAttached { container: String, network: String },
    #[error("Address already in use: {0} is leased to another container on this network")]
    AddressInUse(String),
    #[error("no available IPv4 addresses on network {0}: every address of its range is leased")]
    NoAddressLeft(String),
    #[error("{path}: {reason}")]
    BadSettings { path: PathBuf, reason: String },
    #[error("no {wanted} free host ids for a user namespace: {reason}")]
    NoHostIds { wanted: u32, reason: String },
    #[error(
        "conflict: unable to delete {image} (cannot be forced) - image is being used by a running {what} (pid {pid})"
    )]
    InUse { image: String, what: String, pid: u32 },
    #[error("conflict: unable to delete {image} (must be forced) - image is being used by container {container}")]
    UsedByContainer { image: String, container: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attach a path and a verb to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            context,
            path: path.into(),
            source,
        })
    }
}
