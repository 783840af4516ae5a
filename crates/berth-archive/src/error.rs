//! The one error type of this crate.
//!
//! Every variant names the tar entry path (or, for `write_layer`, the tree
//! path) it concerns; it must never lose the underlying OS error.

use std::io;
use std::path::PathBuf;

/// Anything that can go wrong while applying or writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The entry's own name leaves the layer root (`../../x`).
    #[error("layer entry {path:?} escapes the layer root")]
    Escapes {
        /// The entry name as found in the tar.
        path: String,
    },
    /// A hardlink entry whose target leaves the layer root.
    #[error("layer entry {path:?} links to {target:?}, which escapes the layer root")]
    LinkEscapes {
        /// The entry name as found in the tar.
        path: String,
        /// The hardlink target as found in the tar.
        target: String,
    },
    /// A header that cannot be honoured (bad id, a non-directory named `/`, …).
    #[error("layer entry {path:?}: {what}")]
    Invalid {
        /// The entry name as found in the tar.
        path: String,
        /// What is wrong with it.
        what: String,
    },
    /// With `no_overwrite_dir_non_dir`: the entry would replace a directory
    /// with a non-directory, or the other way round (Docker's wording).
    #[error("cannot overwrite {} \"/{}\" with {}", if *dir_exists { "directory" } else { "non-directory" }, path.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/'), if *dir_exists { "non-directory" } else { "directory" })]
    KindChange {
        /// The entry name as found in the tar.
        path: String,
        /// Whether what exists there is a directory.
        dir_exists: bool,
    },
    /// A system call or stream operation failed while handling an entry.
    #[error("layer entry {path:?}: {op}: {source}")]
    Io {
        /// The entry (or tree path) being handled.
        path: String,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The tar stream itself is unreadable (decompression, corrupt header).
    #[error("layer stream unreadable after entry {after:?}: {source}")]
    Stream {
        /// The last entry read successfully ("" at the start of the stream).
        after: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The layer went past one of its [`Limits`](crate::Limits).
    #[error("{}", crate::limits::exceeded(*kind, *limit))]
    Limit {
        /// Which limit.
        kind: crate::LimitKind,
        /// Its value.
        limit: u64,
    },
    /// The root directory given by the caller cannot be used.
    #[error("layer root {root:?}: {op}: {source}")]
    Root {
        /// The directory.
        root: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    /// The entry path this error concerns ("" when it concerns the stream
    /// before the first entry or the root directory itself).
    pub fn path(&self) -> &str {
        match self {
            ArchiveError::Escapes { path }
            | ArchiveError::LinkEscapes { path, .. }
            | ArchiveError::Invalid { path, .. }
            | ArchiveError::KindChange { path, .. }
            | ArchiveError::Io { path, .. } => path,
            ArchiveError::Stream { after, .. } => after,
            ArchiveError::Root { .. } | ArchiveError::Limit { .. } => "",
        }
    }

    pub(crate) fn io(path: &[u8], op: &'static str, source: impl Into<io::Error>) -> Self {
        ArchiveError::Io {
            path: lossy(path),
            op,
            source: source.into(),
        }
    }

    pub(crate) fn invalid(path: &[u8], what: impl Into<String>) -> Self {
        ArchiveError::Invalid {
            path: lossy(path),
            what: what.into(),
        }
    }
}

/// Render raw path bytes for a message.
pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
