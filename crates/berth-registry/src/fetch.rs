//! Plain URL downloads (`berth import http://…`, `ADD https://…` in a
//! build): one GET, streamed into a writer. No registry protocol, no
//! credentials; TLS verified with the platform's roots. Like every
//! registry request, the host (and that of every redirect) must be allowed
//! by `$BERTH_ALLOWED_REGISTRIES` when it is set.

use std::io::Write;

use futures_util::StreamExt;

use crate::client::check_allowed;
use crate::error::{RegistryError, Result};

/// What a download brought besides the body.
#[derive(Debug, Clone, Default)]
pub struct Downloaded {
    /// Bytes written.
    pub bytes: u64,
    /// The `Last-Modified` header, as sent.
    pub last_modified: Option<String>,
    /// The `ETag` header, as sent.
    pub etag: Option<String>,
}

/// `host[:port]` of a URL, as `BERTH_ALLOWED_REGISTRIES` lists it.
fn authority(u: &reqwest::Url) -> (String, String) {
    let host = u.host_str().unwrap_or("").to_string();
    let domain = match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    (domain, host)
}

/// GET `url` and write the body to `out`; returns the bytes written.
pub fn download(url: &str, out: &mut dyn Write) -> Result<u64> {
    download_meta(url, out).map(|d| d.bytes)
}

/// GET `url`, write the body to `out`, and return its size and the
/// headers a cache needs.
pub fn download_meta(url: &str, out: &mut dyn Write) -> Result<Downloaded> {
    let parsed = reqwest::Url::parse(url).map_err(|e| RegistryError::Config(format!("invalid URL {url:?}: {e}")))?;
    let (domain, host) = authority(&parsed);
    check_allowed(&domain, &host)?;
    let fail = |reason: String| RegistryError::Transfer {
        registry: host.clone(),
        what: format!("downloading {url}"),
        reason,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Config(format!("starting the I/O runtime: {e}")))?;
    // A redirect may not lead where a first request could not go.
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let (domain, host) = authority(attempt.url());
        if let Err(e) = check_allowed(&domain, &host) {
            return attempt.error(e.to_string());
        }
        if attempt.previous().len() >= 10 {
            return attempt.error("too many redirects");
        }
        attempt.follow()
    });
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(15))
            .redirect(redirects)
            .build()
            .map_err(|e| RegistryError::Config(format!("setting up the HTTP client: {e}")))?;
        // The whole cause chain: a refused redirect says why.
        let resp = client
            .get(parsed.clone())
            .send()
            .await
            .map_err(|e| fail(crate::client::reason(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(fail(format!("the server answered HTTP {}", status.as_u16())));
        }
        let header = |name: reqwest::header::HeaderName| {
            resp.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from)
        };
        let mut meta = Downloaded {
            bytes: 0,
            last_modified: header(reqwest::header::LAST_MODIFIED),
            etag: header(reqwest::header::ETAG),
        };
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| fail(e.to_string()))?;
            out.write_all(&chunk).map_err(|e| fail(format!("writing: {e}")))?;
            meta.bytes += chunk.len() as u64;
        }
        Ok(meta)
    })
}
