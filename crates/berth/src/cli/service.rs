//! `berth system service`: the Docker Engine API on a socket (berth-api).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use berth_api::{ServiceOptions, TlsFiles};
use berth_engine::Engine;

#[derive(clap::Args, Debug)]
pub struct ServiceArgs {
    /// Exit after this many seconds without a request (0: serve until killed)
    #[arg(short = 't', long = "time", default_value_t = 5, value_name = "SECONDS")]
    pub time: u64,
    /// Require TLS with client certificates signed by --tlscacert (TCP)
    #[arg(long)]
    pub tlsverify: bool,
    /// CA that client certificates must chain to
    #[arg(long, value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,
    /// The service's TLS certificate
    #[arg(long, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,
    /// The service's TLS key
    #[arg(long, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
    /// unix:///PATH or tcp://HOST:PORT (default: /run/berth/berth.sock as
    /// root, $XDG_RUNTIME_DIR/berth/berth.sock otherwise)
    #[arg(value_name = "URI")]
    pub uri: Option<String>,
}

fn tls_files(a: &ServiceArgs) -> Result<Option<TlsFiles>> {
    match (&a.tlscacert, &a.tlscert, &a.tlskey) {
        (None, None, None) if !a.tlsverify => Ok(None),
        (Some(ca), Some(cert), Some(key)) if a.tlsverify => Ok(Some(TlsFiles {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        })),
        _ if !a.tlsverify => bail!(
            "TLS is offered only with client certificates: add --tlsverify (with --tlscacert, --tlscert and --tlskey)"
        ),
        _ => bail!("--tlsverify needs --tlscacert, --tlscert and --tlskey"),
    }
}

/// Serves until idle for `--time` seconds (or, with 0, until killed).
pub fn run(engine: &Engine, a: ServiceArgs) -> Result<i32> {
    let opts = ServiceOptions {
        endpoint: a.uri.as_deref().map(berth_api::listen::parse_uri).transpose()?,
        idle: (a.time > 0).then(|| Duration::from_secs(a.time)),
        tls: tls_files(&a)?,
    };
    // The service keeps its own engine for its lifetime.
    let own = Engine::open(engine.root(), engine.runtime_choice().map(str::to_string))?;
    berth_api::run_service(own, &opts)?;
    Ok(0)
}
