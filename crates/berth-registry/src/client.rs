//! One registry endpoint: scheme and TLS chosen by a ping, authentication
//! answered from its challenge (anonymous, Basic, Bearer tokens cached per
//! scope and fetched again when refused), retries with backoff, and the
//! manifest, blob, upload and tag calls of the distribution API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_store::Digest;
use bytes::Bytes;
use reqwest::header::{
    HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde_json::Value;

use crate::auth::{self, parse_challenge, Challenge, Credentials};
use crate::error::{RegistryError, Result};
use crate::platform::{self, MANIFEST_ACCEPT};

/// Attempts for one request on a dropped connection, a 5xx or a 429.
const RETRIES: u32 = 4;
/// Resumes (Range requests) for one blob download.
const RESUMES: u32 = 5;
/// Manifests larger than this are refused (the spec suggests 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;

/// How to reach registries: TLS, certificates, credentials.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--tls-verify`: Some(true) forces verified HTTPS even for loopback
    /// and insecure registries; Some(false) skips verification and allows
    /// plain HTTP; None: verified HTTPS, except for loopback addresses and
    /// insecure registries, which may use unverified HTTPS or HTTP.
    pub tls_verify: Option<bool>,
    /// `--cert-dir`: CA certificates (`*.crt`) and a client certificate
    /// (`*.cert` + `*.key`); default `/etc/berth/certs.d/HOST/` and the
    /// Docker and containers equivalents.
    pub cert_dir: Option<PathBuf>,
    /// `--creds`: used instead of any stored login.
    pub creds: Option<Credentials>,
    /// `--authfile`: instead of `${XDG_CONFIG_HOME:-~/.config}/berth/auth.json`.
    pub auth_file: Option<PathBuf>,
    /// Registries (`host[:port]`) that may be plain HTTP or carry
    /// certificates we cannot verify.
    pub insecure_registries: Vec<String>,
}

impl Options {
    /// Options with the insecure registries of the configuration files
    /// (`/etc/berth/registries.json`, `${XDG_CONFIG_HOME:-~/.config}/berth/registries.json`:
    /// `{"insecure-registries": ["host:port", …]}`) and of
    /// `$BERTH_INSECURE_REGISTRIES` (comma-separated).
    pub fn from_config() -> Options {
        let mut o = Options::default();
        for p in [
            PathBuf::from("/etc/berth/registries.json"),
            auth::config_home().join("berth/registries.json"),
        ] {
            if let Ok(b) = std::fs::read(&p) {
                match serde_json::from_slice::<Value>(&b) {
                    Ok(v) => o.insecure_registries.extend(
                        v["insecure-registries"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|x| x.as_str().map(auth::normalize_server)),
                    ),
                    Err(e) => log::warn!("ignoring {}: {e}", p.display()),
                }
            }
        }
        if let Ok(v) = std::env::var("BERTH_INSECURE_REGISTRIES") {
            o.insecure_registries.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(auth::normalize_server),
            );
        }
        o
    }
}

/// A manifest or index as the registry served it.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

impl Manifest {
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }
}

struct Token {
    value: String,
    expires: Instant,
    /// The scopes it was asked for.
    scopes: Vec<String>,
}

/// `repository:NAME:pull,push` → (`repository:NAME`, [pull, push]).
fn split_scope(s: &str) -> (&str, Vec<&str>) {
    match s.rsplit_once(':') {
        Some((res, actions)) => (res, actions.split(',').filter(|a| !a.is_empty()).collect()),
        None => (s, Vec::new()),
    }
}

/// Does a token asked for `granted` also serve `wanted` (a pull,push
/// token serves pulls of the same repository)?
fn scopes_cover(granted: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| {
        let (wr, wa) = split_scope(w);
        granted.iter().any(|g| {
            let (gr, ga) = split_scope(g);
            gr == wr && wa.iter().all(|a| ga.contains(a))
        })
    })
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: HashMap<String, Token>,
}

/// A connected registry.
pub struct Registry {
    name: String,
    base: Url,
    http: reqwest::Client,
    creds: Option<Credentials>,
    state: Mutex<AuthState>,
    /// Held while a token is fetched, so requests refused at the same time
    /// share one new token instead of each fetching its own.
    token_fetch: tokio::sync::Mutex<()>,
}

/// `repository:NAME:pull`.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// `repository:NAME:pull,push`.
pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// `$BERTH_ALLOWED_REGISTRIES` (comma-separated hosts; `loopback` for any
/// loopback address): when set, no request goes anywhere else. Sandboxes
/// and test suites use it to make sure nothing leaves the machine.
pub(crate) fn check_allowed(domain: &str, host: &str) -> Result<()> {
    let Ok(allowed) = std::env::var("BERTH_ALLOWED_REGISTRIES") else {
        return Ok(());
    };
    let ok = allowed
        .split(',')
        .map(str::trim)
        .any(|a| (a == "loopback" && is_loopback(host)) || a == domain || a == host);
    if ok {
        Ok(())
    } else {
        Err(RegistryError::NotAllowed {
            registry: domain.to_string(),
            allowed,
        })
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .map(|(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { host })
        .unwrap_or(host);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.ends_with(".localhost")
        || h == "::1"
        || h.parse::<std::net::Ipv4Addr>()
            .map(|a| a.is_loopback())
            .unwrap_or(false)
}

/// The certificates for `host`: CA roots and maybe a client identity.
fn load_certs(host: &str, opts: &Options) -> Result<(Vec<reqwest::Certificate>, Option<reqwest::Identity>)> {
    let dirs: Vec<PathBuf> = match &opts.cert_dir {
        Some(d) => vec![d.clone()],
        None => vec![
            PathBuf::from("/etc/berth/certs.d").join(host),
            auth::config_home().join("berth/certs.d").join(host),
            PathBuf::from("/etc/containers/certs.d").join(host),
            PathBuf::from("/etc/docker/certs.d").join(host),
        ],
    };
    let mut roots = Vec::new();
    let mut identity = None;
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        names.sort();
        for p in &names {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            let read = |p: &Path| {
                std::fs::read(p).map_err(|source| RegistryError::File {
                    context: "reading certificate",
                    path: p.to_path_buf(),
                    source,
                })
            };
            if ext == "crt" {
                let pem = read(p)?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| RegistryError::Config(format!("{} is not a PEM certificate: {e}", p.display())))?;
                roots.extend(certs);
            } else if ext == "cert" {
                let key = p.with_extension("key");
                if key.exists() {
                    let mut pem = read(p)?;
                    pem.extend(read(&key)?);
                    identity = Some(
                        reqwest::Identity::from_pem(&pem)
                            .map_err(|e| RegistryError::Config(format!("client certificate {}: {e}", p.display())))?,
                    );
                }
            }
        }
        if !roots.is_empty() || identity.is_some() {
            break;
        }
    }
    Ok((roots, identity))
}

fn build_client(
    roots: &[reqwest::Certificate],
    identity: Option<&reqwest::Identity>,
    verify: bool,
) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(120))
        .pool_idle_timeout(Duration::from_secs(30))
        .danger_accept_invalid_certs(!verify)
        // Without verification (plain HTTP, or --tls-verify=false) the
        // system's trust store is never consulted: skip reading it (≈ 150
        // certificate files, tens of ms per client).
        .tls_built_in_root_certs(verify);
    for r in roots {
        b = b.add_root_certificate(r.clone());
    }
    if let Some(i) = identity {
        b = b.identity(i.clone());
    }
    b.build()
        .map_err(|e| RegistryError::Config(format!("setting up the HTTP client: {e}")))
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(200u64 << attempt.min(5))).await;
}

/// The error text of a reqwest error with its causes.
pub(crate) fn reason(e: &reqwest::Error) -> String {
    let mut s = String::new();
    // reqwest's own top line only repeats the URL; its causes say what broke.
    let top: &dyn std::error::Error = e;
    let mut cur: Option<&dyn std::error::Error> = if e.is_timeout() {
        Some(top)
    } else {
        top.source().or(Some(top))
    };
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// `{"errors":[{"code":…,"message":…}]}` → `: CODE: message`.
fn error_detail(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let t = String::from_utf8_lossy(body);
        let t = t.trim();
        return if t.is_empty() || t.len() > 200 {
            String::new()
        } else {
            format!(": {t}")
        };
    };
    let mut out = String::new();
    for e in v["errors"].as_array().into_iter().flatten() {
        let code = e["code"].as_str().unwrap_or("");
        let msg = e["message"].as_str().unwrap_or("");
        out.push_str(&format!(
            ": {}",
            [code, msg]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(": ")
        ));
    }
    out
}

impl Registry {
    /// Reach `domain` (`docker.io`, `ghcr.io`, `127.0.0.1:5000`): choose
    /// HTTPS or HTTP by pinging `/v2/`, learn how it authenticates, and
    /// find credentials for it (`opts.creds`, then the auth files).
    pub async fn connect(domain: &str, opts: &Options) -> Result<Registry> {
        let creds = match &opts.creds {
            Some(c) => Some(c.clone()),
            None => auth::lookup(opts.auth_file.as_deref(), domain)?,
        };
        Self::connect_with(domain, opts, creds).await
    }

    /// As `connect`, with exactly these credentials (none: anonymous).
    pub async fn connect_with(domain: &str, opts: &Options, creds: Option<Credentials>) -> Result<Registry> {
        let host = if domain == "docker.io" {
            "registry-1.docker.io"
        } else {
            domain
        };
        check_allowed(domain, host)?;
        let (roots, identity) = load_certs(host, opts)?;
        let listed = opts.insecure_registries.iter().any(|r| r == domain || r == host);
        let insecure = match opts.tls_verify {
            Some(v) => !v,
            None => listed || is_loopback(host),
        };
        // (scheme, verify certificates)
        let candidates: Vec<(&str, bool)> = if insecure {
            let verify = opts.tls_verify != Some(false) && !roots.is_empty();
            vec![("https", verify), ("http", false)]
        } else {
            vec![("https", true)]
        };
        // One client per verification setting, shared by the schemes and
        // the rounds (building one can read the system's trust store).
        let mut clients: [Option<reqwest::Client>; 2] = [None, None];
        let mut first_err: Option<RegistryError> = None;
        for round in 0..3u32 {
            if round > 0 {
                backoff(round).await;
            }
            for (scheme, verify) in &candidates {
                let base = Url::parse(&format!("{scheme}://{host}/"))
                    .map_err(|e| RegistryError::Config(format!("invalid registry address {host:?}: {e}")))?;
                let http = match &clients[usize::from(*verify)] {
                    Some(c) => c.clone(),
                    None => {
                        let c = build_client(&roots, identity.as_ref(), *verify)?;
                        clients[usize::from(*verify)] = Some(c.clone());
                        c
                    }
                };
                let ping = base.join("v2/").expect("valid url");
                match http.get(ping.clone()).send().await {
                    Ok(resp) if resp.status().is_success() || resp.status() == StatusCode::UNAUTHORIZED => {
                        let challenge = first_challenge(resp.headers());
                        log::debug!("registry {domain}: {base} answers, challenge {challenge:?}");
                        return Ok(Registry {
                            name: domain.to_string(),
                            base,
                            http,
                            creds,
                            state: Mutex::new(AuthState {
                                challenge,
                                tokens: HashMap::new(),
                            }),
                            token_fetch: tokio::sync::Mutex::new(()),
                        });
                    }
                    Ok(resp) => {
                        first_err.get_or_insert(RegistryError::Connect {
                            registry: domain.to_string(),
                            url: ping.to_string(),
                            reason: format!(
                                "it answered /v2/ with HTTP {}, not as a registry does",
                                resp.status().as_u16()
                            ),
                            hint: String::new(),
                        });
                    }
                    Err(e) => {
                        let hint = if *scheme == "https" && !insecure {
                            format!(" — if it is a plain-HTTP or self-signed registry, use --tls-verify=false, add it to insecure-registries in /etc/berth/registries.json, or put its CA in /etc/berth/certs.d/{host}/ca.crt")
                        } else {
                            " — is the registry running?".to_string()
                        };
                        first_err.get_or_insert(RegistryError::Connect {
                            registry: domain.to_string(),
                            url: ping.to_string(),
                            reason: reason(&e),
                            hint,
                        });
                    }
                }
            }
            // A certificate problem will not go away by waiting.
            if matches!(&first_err, Some(RegistryError::Connect { reason, .. }) if reason.contains("certificate") || reason.contains("HTTP 4"))
            {
                break;
            }
        }
        Err(first_err.expect("at least one candidate was tried"))
    }

    /// The registry as the user named it (`127.0.0.1:5000`, `docker.io`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `https://host/` or `http://host/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn has_credentials(&self) -> bool {
        self.creds.is_some()
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("registry paths are valid")
    }

    fn auth_header(&self, scopes: &[String]) -> Option<String> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &st.challenge {
            None => None,
            Some(Challenge::Basic) => self.creds.as_ref().map(Credentials::basic_header),
            Some(Challenge::Bearer { .. }) => {
                let now = Instant::now();
                let exact = st.tokens.get(&scopes.join(" ")).filter(|t| t.expires > now);
                exact
                    .or_else(|| {
                        st.tokens
                            .values()
                            .find(|t| t.expires > now && scopes_cover(&t.scopes, scopes))
                    })
                    .map(|t| format!("Bearer {}", t.value))
            }
        }
    }

    /// Answer a 401: fetch a token or switch to Basic. True if the request
    /// is worth repeating. `sent` is the Authorization the refused request
    /// carried.
    async fn answer_challenge(&self, headers: &HeaderMap, scopes: &[String], sent: Option<&str>) -> Result<bool> {
        let had_auth = sent.is_some();
        let Some(ch) = first_challenge(headers) else {
            return Ok(false);
        };
        self.state.lock().unwrap_or_else(|p| p.into_inner()).challenge = Some(ch.clone());
        match ch {
            Challenge::Basic => Ok(self.creds.is_some() && !had_auth),
            Challenge::Bearer { realm, service, scope } => {
                let mut scopes = scopes.to_vec();
                if scopes.is_empty() {
                    scopes.extend(scope);
                }
                let _one_at_a_time = self.token_fetch.lock().await;
                // Another request may have fetched a token while this one
                // waited: use it, unless it is the one just refused.
                if let Some(now) = self.auth_header(&scopes) {
                    if Some(now.as_str()) != sent {
                        return Ok(true);
                    }
                }
                self.fetch_token(&realm, service.as_deref(), &scopes).await?;
                Ok(true)
            }
        }
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<String> {
        let mut url = Url::parse(realm).map_err(|e| RegistryError::Protocol {
            registry: self.name.clone(),
            what: "token realm".into(),
            reason: format!("invalid realm {realm:?}: {e}"),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
            if let Some(c) = &self.creds {
                q.append_pair("account", &c.username);
            }
        }
        let mut attempt = 0;
        let resp = loop {
            let mut rb = self.http.get(url.clone());
            if let Some(c) = &self.creds {
                rb = rb.header(AUTHORIZATION, c.basic_header());
            }
            match rb.send().await {
                Ok(r)
                    if (r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS)
                        && attempt < RETRIES => {}
                Ok(r) => break r,
                Err(_) if attempt < RETRIES => {}
                Err(e) => {
                    return Err(RegistryError::Connect {
                        registry: self.name.clone(),
                        url: url.to_string(),
                        reason: reason(&e),
                        hint: " — the registry's token service is unreachable".into(),
                    })
                }
            }
            backoff(attempt).await;
            attempt += 1;
        };
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let detail = error_detail(&body);
            return Err(if self.creds.is_some() {
                RegistryError::BadCredentials {
                    registry: self.name.clone(),
                    detail,
                }
            } else {
                RegistryError::AuthRequired {
                    registry: self.name.clone(),
                    detail,
                }
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Http {
                registry: self.name.clone(),
                what: format!("getting a token from {realm}"),
                status: status.as_u16(),
                detail: error_detail(&body),
            });
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
            registry: self.name.clone(),
            what: format!("token from {realm}"),
            reason: format!("not JSON: {e}"),
        })?;
        let token = v["token"]
            .as_str()
            .or(v["access_token"].as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.name.clone(),
                what: format!("token from {realm}"),
                reason: "the answer holds no token".into(),
            })?
            .to_string();
        let ttl = v["expires_in"].as_u64().unwrap_or(60).max(10);
        self.state.lock().unwrap_or_else(|p| p.into_inner()).tokens.insert(
            scopes.join(" "),
            Token {
                value: token.clone(),
                expires: Instant::now() + Duration::from_secs(ttl - 5),
                scopes: scopes.to_vec(),
            },
        );
        Ok(token)
    }

    /// Send a request built by `mk` (called again for each attempt), with
    /// authentication for `scopes`, retrying transient failures.
    async fn send(&self, scopes: &[String], what: &str, mk: impl Fn() -> RequestBuilder) -> Result<Response> {
        let mut attempt = 0;
        // Challenges answered: once for a request sent without a token,
        // once more for a token refused (expired or revoked).
        let mut answered = 0;
        loop {
            let mut rb = mk();
            let auth = self.auth_header(scopes);
            if let Some(h) = &auth {
                rb = rb.header(AUTHORIZATION, h);
            }
            match rb.send().await {
                Err(e) if attempt < RETRIES && !e.is_builder() => {
                    log::debug!("{}: {what}: {} (retrying)", self.name, reason(&e));
                }
                Err(e) => {
                    return Err(RegistryError::Transfer {
                        registry: self.name.clone(),
                        what: what.to_string(),
                        reason: format!("{} (gave up after {} attempts)", reason(&e), attempt + 1),
                    })
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && answered < 1 + u32::from(auth.is_some()) => {
                    answered += 1;
                    if self.answer_challenge(resp.headers(), scopes, auth.as_deref()).await? {
                        continue;
                    }
                    return Ok(resp);
                }
                Ok(resp)
                    if (resp.status().is_server_error() || resp.status() == StatusCode::TOO_MANY_REQUESTS)
                        && attempt < RETRIES =>
                {
                    log::debug!("{}: {what}: HTTP {} (retrying)", self.name, resp.status());
                }
                Ok(resp) => return Ok(resp),
            }
            backoff(attempt).await;
            attempt += 1;
        }
    }

    /// Send once (the body cannot be replayed): auth must be settled by an
    /// earlier request on the same scope.
    async fn send_once(&self, scopes: &[String], what: &str, mut rb: RequestBuilder) -> Result<Response> {
        if let Some(h) = self.auth_header(scopes) {
            rb = rb.header(AUTHORIZATION, h);
        }
        rb.send().await.map_err(|e| RegistryError::Transfer {
            registry: self.name.clone(),
            what: what.to_string(),
            reason: reason(&e),
        })
    }

    /// Turn a failed response into the error that says what to do.
    async fn fail(&self, resp: Response, what: &str, repo: &str) -> RegistryError {
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        let detail = error_detail(&body);
        let bearer = matches!(
            self.state.lock().unwrap_or_else(|p| p.into_inner()).challenge,
            Some(Challenge::Bearer { .. })
        );
        match status {
            // The token service took the credentials, the registry not the
            // token: this account may not do this here.
            StatusCode::UNAUTHORIZED if self.creds.is_some() && bearer && !repo.is_empty() => RegistryError::Denied {
                registry: self.name.clone(),
                repository: repo.to_string(),
                detail,
            },
            StatusCode::UNAUTHORIZED if self.creds.is_some() && !detail.contains("DENIED") => {
                RegistryError::BadCredentials {
                    registry: self.name.clone(),
                    detail,
                }
            }
            StatusCode::UNAUTHORIZED => RegistryError::AuthRequired {
                registry: self.name.clone(),
                detail,
            },
            StatusCode::FORBIDDEN => RegistryError::Denied {
                registry: self.name.clone(),
                repository: repo.to_string(),
                detail,
            },
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                registry: self.name.clone(),
                what: what.to_string(),
                detail,
            },
            s => RegistryError::Http {
                registry: self.name.clone(),
                what: what.to_string(),
                status: s.as_u16(),
                detail,
            },
        }
    }

    /// Check credentials: a token for them (Bearer) or `/v2/` with them
    /// (Basic). Registries without authentication accept anything.
    pub async fn check_login(&self) -> Result<()> {
        let ch = self.state.lock().unwrap_or_else(|p| p.into_inner()).challenge.clone();
        match ch {
            None => Ok(()),
            Some(Challenge::Bearer { realm, service, .. }) => {
                self.fetch_token(&realm, service.as_deref(), &[]).await.map(|_| ())
            }
            Some(Challenge::Basic) => {
                let resp = self
                    .send(&[], "checking the login", || self.http.get(self.url("v2/")))
                    .await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(self.fail(resp, "login", "").await)
                }
            }
        }
    }

    // ---- manifests ----------------------------------------------------

    /// GET a manifest or index by tag or digest; its digest is computed
    /// and checked against the digest asked for and the one the registry
    /// announced.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Manifest> {
        let what = format!("manifest {repo}:{reference}");
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"));
        let scopes = [pull_scope(repo)];
        let resp = self
            .send(&scopes, &what, || {
                self.http.get(url.clone()).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if !resp.status().is_success() {
            let sep = if reference.starts_with("sha256:") { '@' } else { ':' };
            return Err(self.fail(resp, &format!("manifest {repo}{sep}{reference}"), repo).await);
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let announced = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if resp.content_length().unwrap_or(0) as usize > MAX_MANIFEST {
            return Err(self.protocol(&what, "the manifest is larger than 4 MiB"));
        }
        let bytes = self.read_body(resp, &what, MAX_MANIFEST).await?;
        let digest = Digest::of_bytes(&bytes);
        let expected = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            announced.filter(|a| a.starts_with("sha256:"))
        };
        if let Some(exp) = expected {
            if exp != digest.as_str() {
                return Err(RegistryError::DigestMismatch {
                    registry: self.name.clone(),
                    what,
                    expected: exp,
                    actual: digest.to_string(),
                });
            }
        }
        let doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.protocol(&what, &format!("the manifest is not JSON: {e}")))?;
        let media_type = platform::manifest_media_type(content_type.as_deref(), &doc);
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// HEAD a manifest: its digest and size if it exists.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<(Option<Digest>, u64)>> {
        let what = format!("manifest {repo}:{reference}");
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"));
        let scopes = [pull_scope(repo)];
        let resp = self
            .send(&scopes, &what, || {
                self.http.head(url.clone()).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.fail(resp, &what, repo).await);
        }
        let d = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| Digest::parse(s).ok());
        let size = header_u64(resp.headers(), CONTENT_LENGTH.as_str()).unwrap_or(0);
        Ok(Some((d, size)))
    }

    /// PUT a manifest under a tag (or its digest). Returns its digest.
    pub async fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Result<Digest> {
        let what = format!("pushing manifest {repo}:{reference}");
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"));
        let scopes = [push_scope(repo)];
        let body = Bytes::copy_from_slice(bytes);
        let resp = self
            .send(&scopes, &what, || {
                self.http
                    .put(url.clone())
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone())
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, &what, repo).await);
        }
        let digest = Digest::of_bytes(bytes);
        if let Some(a) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if a.starts_with("sha256:") && a != digest.as_str() {
                return Err(RegistryError::DigestMismatch {
                    registry: self.name.clone(),
                    what,
                    expected: digest.to_string(),
                    actual: a.to_string(),
                });
            }
        }
        Ok(digest)
    }

    /// Every tag of a repository (following `Link` pages).
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        let what = format!("listing the tags of {repo}");
        let scopes = [pull_scope(repo)];
        let mut url = self.url(&format!("v2/{repo}/tags/list?n=1000"));
        let mut out = Vec::new();
        for _ in 0..1000 {
            let u = url.clone();
            let resp = self.send(&scopes, &what, || self.http.get(u.clone())).await?;
            if !resp.status().is_success() {
                return Err(self.fail(resp, &format!("repository {}/{repo}", self.name), repo).await);
            }
            let next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split(';').next())
                .map(|l| l.trim().trim_start_matches('<').trim_end_matches('>').to_string());
            let body = self.read_body(resp, &what, 16 << 20).await?;
            let v: Value = serde_json::from_slice(&body).map_err(|e| self.protocol(&what, &e.to_string()))?;
            out.extend(
                v["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(String::from)),
            );
            match next.and_then(|n| self.base.join(&n).ok()) {
                Some(n) => url = n,
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    // ---- blobs ----------------------------------------------------------

    /// HEAD a blob: its size if the registry has it.
    pub async fn blob_size(&self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        let what = format!("checking blob {digest} in {repo}");
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"));
        let scopes = [pull_scope(repo)];
        let resp = self.send(&scopes, &what, || self.http.head(url.clone())).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(header_u64(resp.headers(), CONTENT_LENGTH.as_str()).unwrap_or(0))),
            _ => Err(self.fail(resp, &what, repo).await),
        }
    }

    /// GET a small blob (a config) into memory, verifying its digest.
    pub async fn get_blob_bytes(&self, repo: &str, digest: &Digest, max: usize) -> Result<Vec<u8>> {
        let what = format!("blob {digest} of {repo}");
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"));
        let scopes = [pull_scope(repo)];
        let resp = self.send(&scopes, &what, || self.http.get(url.clone())).await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, &what, repo).await);
        }
        let bytes = self.read_body(resp, &what, max).await?;
        let got = Digest::of_bytes(&bytes);
        if got != *digest {
            return Err(RegistryError::DigestMismatch {
                registry: self.name.clone(),
                what,
                expected: digest.to_string(),
                actual: got.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Stream a blob of `size` bytes into `tx`, from byte `start` (the
    /// caller has the bytes before it, e.g. from an interrupted pull) and
    /// resuming with `Range` where the connection drops. `on_start` is told,
    /// once and before any bytes are sent, where the stream begins: `start`
    /// when the registry honours the range (206), 0 when it sends the whole
    /// blob instead (200). Refuses a blob longer or shorter than `size`
    /// (the digest itself is checked by whoever hashes the whole blob).
    /// `progress` is told the bytes of the blob had so far.
    #[allow(clippy::too_many_arguments)]
    pub async fn fetch_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        start: u64,
        on_start: &dyn Fn(u64),
        tx: &tokio::sync::mpsc::Sender<Bytes>,
        progress: &dyn Fn(u64),
    ) -> Result<()> {
        let what = format!("blob {digest} of {repo}");
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"));
        let scopes = [pull_scope(repo)];
        let mut offset = start.min(size);
        let mut started = false;
        let mut resumes = 0u32;
        let mut last_err = String::new();
        'request: loop {
            if resumes > RESUMES {
                return Err(RegistryError::Transfer {
                    registry: self.name.clone(),
                    what,
                    reason: format!("the download broke off at byte {offset} of {size} {RESUMES} times: {last_err}"),
                });
            }
            let from = offset;
            let resp = self
                .send(&scopes, &what, || {
                    let rb = self.http.get(url.clone());
                    if from > 0 {
                        rb.header(RANGE, format!("bytes={from}-"))
                    } else {
                        rb
                    }
                })
                .await?;
            let status = resp.status();
            if !started && from > 0 && (status == StatusCode::OK || status == StatusCode::RANGE_NOT_SATISFIABLE) {
                if status == StatusCode::RANGE_NOT_SATISFIABLE {
                    // What we hold is no prefix of this blob: start over.
                    log::debug!("{}: {what}: range from {from} refused; downloading it all", self.name);
                    offset = 0;
                    continue 'request;
                }
                // No ranges here: this is the whole blob.
                log::debug!("{}: {what}: no resume from {from}; downloading it all", self.name);
                offset = 0;
                started = true;
                on_start(0);
            } else if from > 0 && status == StatusCode::RANGE_NOT_SATISFIABLE {
                return Err(self.truncated(&what, digest, from, size));
            }
            if !status.is_success() {
                return Err(self.fail(resp, &what, repo).await);
            }
            if offset > 0 {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if status != StatusCode::PARTIAL_CONTENT || start != Some(from) {
                    return Err(RegistryError::Transfer {
                        registry: self.name.clone(),
                        what,
                        reason: format!(
                            "the download broke off at byte {from} and the registry cannot resume it ({last_err})"
                        ),
                    });
                }
            }
            if !started {
                started = true;
                on_start(offset);
            }
            let mut resp = resp;
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        offset += c.len() as u64;
                        if offset > size {
                            return Err(RegistryError::DigestMismatch {
                                registry: self.name.clone(),
                                what,
                                expected: format!("{digest} ({size} bytes)"),
                                actual: format!("more than {size} bytes"),
                            });
                        }
                        tx.send(c).await.map_err(|_| RegistryError::Cancelled)?;
                        progress(offset);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        last_err = reason(&e);
                        log::debug!("{}: {what}: broke off at {offset}: {last_err}; resuming", self.name);
                        resumes += 1;
                        backoff(resumes.min(3)).await;
                        continue 'request;
                    }
                }
            }
            if offset < size {
                // Closed early without an error: ask for the rest.
                if last_err.is_empty() {
                    last_err = "the connection closed early".into();
                }
                resumes += 1;
                continue 'request;
            }
            return Ok(());
        }
    }

    fn truncated(&self, what: &str, digest: &Digest, got: u64, size: u64) -> RegistryError {
        RegistryError::DigestMismatch {
            registry: self.name.clone(),
            what: what.to_string(),
            expected: format!("{digest} ({size} bytes)"),
            actual: format!("a truncated blob of {got} bytes"),
        }
    }

    /// Ask the registry to link a blob it holds in `from` into `repo`.
    /// True if mounted; false if it declined (nothing is left open).
    pub async fn mount_blob(&self, repo: &str, digest: &Digest, from: &str) -> Result<bool> {
        let what = format!("mounting blob {digest} from {from} into {repo}");
        let mut url = self.url(&format!("v2/{repo}/blobs/uploads/"));
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from);
        let scopes = [push_scope(repo), pull_scope(from)];
        let resp = self
            .send(&scopes, &what, || {
                self.http.post(url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // An upload was opened instead: close it.
                if let Some(loc) = self.location(&resp) {
                    let _ = self.send(&scopes, &what, || self.http.delete(loc.clone())).await;
                }
                Ok(false)
            }
            s if s.is_client_error() && s != StatusCode::UNAUTHORIZED => Ok(false),
            _ => Err(self.fail(resp, &what, repo).await),
        }
    }

    fn location(&self, resp: &Response) -> Option<Url> {
        let l = resp.headers().get(LOCATION)?.to_str().ok()?;
        self.base.join(l).ok()
    }

    /// POST: open an upload session; returns its location.
    pub async fn start_upload(&self, repo: &str) -> Result<Url> {
        let what = format!("starting an upload to {repo}");
        let url = self.url(&format!("v2/{repo}/blobs/uploads/"));
        let scopes = [push_scope(repo)];
        let resp = self
            .send(&scopes, &what, || {
                self.http.post(url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
            return Err(self.fail(resp, &what, repo).await);
        }
        self.location(&resp)
            .ok_or_else(|| self.protocol(&what, "the registry gave no Location for the upload"))
    }

    /// PATCH one chunk at `start`; returns the location for the next.
    pub async fn upload_chunk(&self, repo: &str, location: &Url, start: u64, data: Bytes) -> Result<Url> {
        let end = start + data.len() as u64 - 1;
        let what = format!("uploading bytes {start}-{end} to {repo}");
        let scopes = [push_scope(repo)];
        let resp = self
            .send(&scopes, &what, || {
                self.http
                    .patch(location.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, format!("{start}-{end}"))
                    .header(CONTENT_LENGTH, data.len().to_string())
                    .body(data.clone())
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
            return Err(self.fail(resp, &what, repo).await);
        }
        Ok(self.location(&resp).unwrap_or_else(|| location.clone()))
    }

    /// PUT `?digest=`: close an upload session (with a last piece of data).
    pub async fn finish_upload(&self, repo: &str, location: &Url, digest: &Digest, last: Option<Bytes>) -> Result<()> {
        let what = format!("finishing the upload of blob {digest} to {repo}");
        let mut url = location.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let scopes = [push_scope(repo)];
        let body = last.unwrap_or_default();
        let resp = self
            .send(&scopes, &what, || {
                self.http
                    .put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, body.len().to_string())
                    .body(body.clone())
            })
            .await?;
        self.check_created(resp, &what, repo, digest).await
    }

    async fn check_created(&self, resp: Response, what: &str, repo: &str, digest: &Digest) -> Result<()> {
        if !resp.status().is_success() {
            let e = self.fail(resp, what, repo).await;
            if let RegistryError::Http { detail, .. } = &e {
                if detail.contains("DIGEST_INVALID") {
                    return Err(RegistryError::DigestMismatch {
                        registry: self.name.clone(),
                        what: what.to_string(),
                        expected: digest.to_string(),
                        actual: format!("what the registry received{detail}"),
                    });
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Monolithic upload of a file: POST, then one PUT carrying the file.
    pub async fn upload_file(&self, repo: &str, digest: &Digest, path: &Path, size: u64) -> Result<()> {
        let location = self.start_upload(repo).await?;
        let what = format!("uploading blob {digest} to {repo}");
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| RegistryError::File {
                context: "opening blob",
                path: path.to_path_buf(),
                source,
            })?;
        let mut url = location;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let rb = self
            .http
            .request(Method::PUT, url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size.to_string())
            .body(reqwest::Body::from(file));
        let resp = self.send_once(&[push_scope(repo)], &what, rb).await?;
        self.check_created(resp, &what, repo, digest).await
    }

    /// Monolithic upload of bytes in memory (configs).
    pub async fn upload_bytes(&self, repo: &str, digest: &Digest, bytes: Bytes) -> Result<()> {
        let location = self.start_upload(repo).await?;
        self.finish_upload(repo, &location, digest, Some(bytes)).await
    }

    async fn read_body(&self, mut resp: Response, what: &str, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if out.len() + c.len() > max {
                        return Err(self.protocol(what, &format!("larger than {max} bytes")));
                    }
                    out.extend_from_slice(&c);
                }
                Ok(None) => return Ok(out),
                Err(e) => {
                    return Err(RegistryError::Transfer {
                        registry: self.name.clone(),
                        what: what.to_string(),
                        reason: reason(&e),
                    })
                }
            }
        }
    }

    fn protocol(&self, what: &str, reason: &str) -> RegistryError {
        RegistryError::Protocol {
            registry: self.name.clone(),
            what: what.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// The first `WWW-Authenticate` challenge berth understands.
fn first_challenge(h: &HeaderMap) -> Option<Challenge> {
    h.get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok().and_then(parse_challenge))
        .next()
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for h in [
            "localhost:5000",
            "127.0.0.1",
            "127.0.0.2:443",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["registry-1.docker.io", "10.0.0.1:5000", "ghcr.io"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn push_tokens_serve_pulls_of_the_same_repository() {
        let push = vec![push_scope("a/b")];
        assert!(scopes_cover(&push, &[pull_scope("a/b")]));
        assert!(scopes_cover(&push, &push));
        assert!(!scopes_cover(&push, &[pull_scope("a/c")]));
        assert!(!scopes_cover(&[pull_scope("a/b")], &push));
        let mount = vec![push_scope("x"), pull_scope("y")];
        assert!(scopes_cover(&mount, &[pull_scope("y")]));
        assert!(!scopes_cover(&[], &[pull_scope("y")]));
    }

    #[test]
    fn error_bodies_become_details() {
        let b = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_detail(b), ": MANIFEST_UNKNOWN: manifest unknown");
        assert_eq!(error_detail(b"plain words"), ": plain words");
        assert_eq!(error_detail(b""), "");
    }
}
