//! berth-api: the Docker Engine API on a socket, `berth system service`.
//!
//! A third front over `berth-engine`, beside the command line and compose:
//! it parses HTTP requests, calls one engine function each, and answers in
//! Docker's shapes. It never touches the store or the runtime itself and
//! holds no policy of its own; containers keep running when it exits
//! (their monitors own them), and what the CLI does is visible here at
//! once (one store).
//!
//! * [`listen`] — where to listen (unix socket, TCP with TLS, systemd).
//! * [`server`] — connections, HTTP/1.1 (hyper), idle exit.
//! * [`router`] — paths and versions to routes.
//! * [`handlers`] — one per endpoint.
//! * [`body`], [`hijack`], [`stdcopy`], [`jsonstream`], [`query`] — the
//!   pieces endpoints share: streamed bodies both ways, connection
//!   takeover, stdout/stderr framing, JSON progress, query parsing.
//! * [`error`] — Docker's `{"message": …}` errors and the one mapping
//!   from engine error kinds to statuses.

// Docker's `/info` is one large JSON literal.
#![recursion_limit = "256"]

pub mod body;
pub mod error;
mod handlers;
pub mod hijack;
pub mod jsonstream;
pub mod listen;
pub mod query;
pub mod router;
pub mod server;
pub mod stdcopy;

use std::time::Duration;

use anyhow::Result;
use berth_engine::Engine;

pub use listen::{Endpoint, TlsFiles};

/// What `berth system service` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ServiceOptions {
    /// Where to listen (None: the default socket, unless systemd passed sockets).
    pub endpoint: Option<Endpoint>,
    /// Exit after this long without a request (None: serve until killed).
    pub idle: Option<Duration>,
    /// TLS with client certificates, for TCP.
    pub tls: Option<TlsFiles>,
}

/// Binds (or takes systemd's sockets), then serves until idle or killed.
pub fn run_service(engine: Engine, opts: &ServiceOptions) -> Result<()> {
    let mut bound = listen::from_systemd(opts.tls.as_ref())?;
    if bound.is_empty() {
        let endpoint = match &opts.endpoint {
            Some(e) => e.clone(),
            None => listen::default_endpoint()?,
        };
        bound.push(listen::bind(&endpoint, opts.tls.as_ref())?);
    } else if let Some(e) = &opts.endpoint {
        log::warn!("systemd passed the sockets to listen on: {e} is not used");
    }
    server::serve(engine, bound, opts.idle)
}
