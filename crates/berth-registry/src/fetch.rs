//! Plain URL downloads (`berth import http://…`): one GET, streamed into a
//! writer. No registry protocol, no credentials; TLS verified with the
//! platform's roots.

use std::io::Write;

use futures_util::StreamExt;

use crate::error::{RegistryError, Result};

/// GET `url` and write the body to `out`; returns the bytes written.
pub fn download(url: &str, out: &mut dyn Write) -> Result<u64> {
    let parsed = reqwest::Url::parse(url).map_err(|e| RegistryError::Config(format!("invalid URL {url:?}: {e}")))?;
    let host = parsed.host_str().unwrap_or("").to_string();
    let fail = |reason: String| RegistryError::Transfer {
        registry: host.clone(),
        what: format!("downloading {url}"),
        reason,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Config(format!("starting the I/O runtime: {e}")))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| RegistryError::Config(format!("setting up the HTTP client: {e}")))?;
        let resp = client
            .get(parsed.clone())
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(fail(format!("the server answered HTTP {}", status.as_u16())));
        }
        let mut n = 0u64;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| fail(e.to_string()))?;
            out.write_all(&chunk).map_err(|e| fail(format!("writing: {e}")))?;
            n += chunk.len() as u64;
        }
        Ok(n)
    })
}
