//! The registry client's one error type. Every variant names the registry
//! (as the user wrote it) and, where there is one, the repository, manifest
//! or blob; the ones a user can fix say how.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry} is not allowed here (BERTH_ALLOWED_REGISTRIES={allowed}); no request was sent")]
    NotAllowed { registry: String, allowed: String },

    #[error("unauthorized: authentication required for {registry}{detail} — run: berth login {registry}")]
    AuthRequired { registry: String, detail: String },

    #[error("unauthorized: incorrect username or password for {registry}{detail}")]
    BadCredentials { registry: String, detail: String },

    #[error("denied: requested access to {repository} on {registry} is denied{detail} (does the repository exist, and may this account push to it? run: berth login {registry})")]
    Denied {
        registry: String,
        repository: String,
        detail: String,
    },

    #[error("{what} not found in {registry}{detail}")]
    NotFound {
        registry: String,
        what: String,
        detail: String,
    },

    #[error("cannot reach registry {registry} at {url}: {reason}{hint}")]
    Connect {
        registry: String,
        url: String,
        reason: String,
        hint: String,
    },

    #[error("registry {registry}: {what}: HTTP {status}{detail}")]
    Http {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },

    #[error("registry {registry}: {what}: {reason}")]
    Transfer {
        registry: String,
        what: String,
        reason: String,
    },

    #[error("digest mismatch for {what} from {registry}: expected {expected}, got {actual}")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        actual: String,
    },

    #[error("registry {registry}: {what}: {reason}")]
    Protocol {
        registry: String,
        what: String,
        reason: String,
    },

    #[error("{context} {path}: {source}")]
    File {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Config(String),

    #[error("cancelled")]
    Cancelled,
}

impl RegistryError {
    /// Worth another try (a dropped connection, a 5xx, a timeout): the
    /// engine retries a whole blob on these.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Connect { .. } | RegistryError::Transfer { .. } => true,
            RegistryError::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
