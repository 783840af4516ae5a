//! berth-registry: a client for the OCI distribution API (Docker's
//! registry v2): ping and scheme/TLS choice, anonymous, Basic and Bearer
//! token authentication, manifests and indexes, blobs streamed with Range
//! resume, cross-repository mounts, monolithic and chunked uploads, tags.
//!
//! It knows nothing of the store beyond digests and references: the engine
//! decides what to fetch, verifies and commits it.

pub mod auth;
pub mod client;
pub mod compress;
pub mod error;
pub mod fetch;
pub mod platform;

pub use auth::{AuthFile, Credentials};
pub use client::{Manifest, Options, Registry};
pub use compress::LayerCompression;
pub use error::{RegistryError, Result};
pub use platform::Platform;

/// The host to talk to for a reference's domain (`docker.io` is served by
/// `registry-1.docker.io`).
pub fn endpoint_host(domain: &str) -> &str {
    if domain == "docker.io" {
        "registry-1.docker.io"
    } else {
        domain
    }
}

// The engine drives this client on a runtime of its own making.
pub use bytes;
pub use futures_util;
pub use tokio;
