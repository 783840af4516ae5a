//! Credentials and challenges.
//!
//! berth keeps logins in `${XDG_CONFIG_HOME:-~/.config}/berth/auth.json`
//! (mode 0600), in the same `{"auths": {"host": {"auth": base64(user:pass)}}}`
//! shape Docker and Podman use, so either file can be copied over. Docker's
//! own `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) is read as
//! a fallback; berth never writes it.
//!
//! Either file may name credential helpers, as Docker's does:
//! `"credHelpers": {"host": "NAME"}` for one registry and `"credsStore":
//! "NAME"` for all. berth then runs `docker-credential-NAME get` with the
//! server on stdin and reads `{"Username": …, "Secret": …}` from its
//! stdout (a `Username` of `<token>` marks an identity token). A helper
//! named for the registry comes first, then the store, then the file's
//! own `auths` entry.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::error::{RegistryError, Result};

/// A user name and a password (or identity token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ****)", self.username)
    }
}

impl Credentials {
    /// `user:password` as `--creds` takes it.
    pub fn parse(s: &str) -> Result<Credentials> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err(RegistryError::Config(
                "credentials must be given as USERNAME:PASSWORD".to_string(),
            )),
        }
    }

    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// The key a registry is filed under: `docker.io` for Docker Hub (Docker's
/// own file uses `https://index.docker.io/v1/`, read as the same).
pub fn normalize_server(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" | "" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

/// `${XDG_CONFIG_HOME:-~/.config}/berth/auth.json`, or `$REGISTRY_AUTH_FILE`.
pub fn default_auth_file() -> PathBuf {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    config_home().join("berth").join("auth.json")
}

pub(crate) fn config_home() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x);
    }
    home().join(".config")
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn docker_config_file() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("config.json"),
        None => home().join(".docker").join("config.json"),
    }
}

/// The logins of one auth file.
pub struct AuthFile {
    path: PathBuf,
    doc: Value,
}

impl AuthFile {
    /// Read (a missing file is an empty one).
    pub fn open(path: &Path) -> Result<AuthFile> {
        let doc = match std::fs::read(path) {
            Ok(b) if b.iter().all(|c| c.is_ascii_whitespace()) => json!({}),
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                RegistryError::Config(format!(
                    "the auth file {} is not valid JSON ({e}): fix or remove it",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
            Err(source) => {
                return Err(RegistryError::File {
                    context: "reading auth file",
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(AuthFile {
            path: path.to_path_buf(),
            doc,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn auths(&self) -> BTreeMap<String, Value> {
        self.doc["auths"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// The credentials stored for `server` (any spelling of it).
    pub fn get(&self, server: &str) -> Option<Credentials> {
        let want = normalize_server(server);
        for (k, v) in self.auths() {
            if normalize_server(&k) != want {
                continue;
            }
            if let Some(enc) = v["auth"].as_str().filter(|s| !s.is_empty()) {
                let raw = base64::engine::general_purpose::STANDARD.decode(enc.trim()).ok()?;
                let raw = String::from_utf8(raw).ok()?;
                let (u, p) = raw.split_once(':')?;
                return Some(Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                });
            }
            if let (Some(u), Some(p)) = (v["username"].as_str(), v["password"].as_str()) {
                return Some(Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                });
            }
            if let Some(t) = v["identitytoken"].as_str() {
                return Some(Credentials {
                    username: "<token>".to_string(),
                    password: t.to_string(),
                });
            }
        }
        None
    }

    pub fn set(&mut self, server: &str, creds: &Credentials) {
        let key = normalize_server(server);
        self.remove(&key);
        if !self.doc.is_object() {
            self.doc = json!({});
        }
        if !self.doc["auths"].is_object() {
            self.doc["auths"] = json!({});
        }
        self.doc["auths"][key] = json!({ "auth": basic_auth(creds) });
    }

    /// Remove every spelling of `server`; false if there was none.
    pub fn remove(&mut self, server: &str) -> bool {
        let want = normalize_server(server);
        let Some(m) = self.doc["auths"].as_object_mut() else {
            return false;
        };
        let keys: Vec<String> = m.keys().filter(|k| normalize_server(k) == want).cloned().collect();
        for k in &keys {
            m.remove(k);
        }
        !keys.is_empty()
    }

    /// Write atomically with mode 0600 (the directory 0700 if we create it).
    pub fn save(&self) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let io = |context: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| RegistryError::File { context, path, source }
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("creating directory", dir))?;
        let tmp = dir.join(format!(".auth.json.{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(&self.doc).expect("json serialises");
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io("writing auth file", &tmp))?;
            f.write_all(&bytes).map_err(io("writing auth file", &tmp))?;
            f.write_all(b"\n").map_err(io("writing auth file", &tmp))?;
            f.sync_all().map_err(io("writing auth file", &tmp))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io("writing auth file", &self.path))?;
        Ok(())
    }
}

/// Every login berth would use, by server: those of Docker's file and of
/// berth's (`auth_file` or the default), berth's winning, each through its
/// credential helper where the file names one for that server. (A general
/// `credsStore`'s logins for servers no file names are not listed.)
pub fn all_credentials(auth_file: Option<&Path>) -> Result<BTreeMap<String, Credentials>> {
    let own = auth_file.map(Path::to_path_buf).unwrap_or_else(default_auth_file);
    let docker = AuthFile::open(&docker_config_file()).ok();
    let mut out = BTreeMap::new();
    for f in docker.iter().chain(std::iter::once(&AuthFile::open(&own)?)) {
        let mut servers: Vec<String> = f.auths().into_keys().collect();
        if let Some(m) = f.doc["credHelpers"].as_object() {
            servers.extend(m.keys().cloned());
        }
        for s in servers {
            if let Some(c) = f.credentials(&s)? {
                out.insert(normalize_server(&s), c);
            }
        }
    }
    Ok(out)
}

/// Logins as a Docker `config.json` (`{"auths": {server: {"auth": …}}}`,
/// an identity token as `identitytoken`).
pub fn docker_config_of(logins: &BTreeMap<String, Credentials>) -> Value {
    let auths: serde_json::Map<String, Value> = logins
        .iter()
        .map(|(server, c)| {
            let entry = if c.username == "<token>" {
                json!({"identitytoken": c.password})
            } else {
                json!({ "auth": basic_auth(c) })
            };
            (server.clone(), entry)
        })
        .collect();
    json!({ "auths": auths })
}

/// `user:password` in base64, a config file's `auth`.
fn basic_auth(c: &Credentials) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password))
}

/// Credentials for `server`: berth's auth file first, then Docker's.
pub fn lookup(auth_file: Option<&Path>, server: &str) -> Result<Option<Credentials>> {
    let own = auth_file.map(Path::to_path_buf).unwrap_or_else(default_auth_file);
    if let Some(c) = AuthFile::open(&own)?.credentials(server)? {
        return Ok(Some(c));
    }
    // Docker's file is a fallback only: a broken one is ignored, not fatal.
    match AuthFile::open(&docker_config_file()) {
        Ok(f) => f.credentials(server),
        Err(e) => {
            log::debug!("ignoring Docker's config: {e}");
            Ok(None)
        }
    }
}

impl AuthFile {
    /// The helper this file names for `server`: (name, is it the one
    /// named for this registry rather than the general store).
    fn helper_for(&self, server: &str) -> Option<(String, bool)> {
        let want = normalize_server(server);
        let specific = self.doc["credHelpers"].as_object().and_then(|m| {
            m.iter()
                .find(|(k, _)| normalize_server(k) == want)
                .and_then(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
                .map(String::from)
        });
        match specific {
            Some(h) => Some((h, true)),
            None => self.doc["credsStore"]
                .as_str()
                .filter(|v| !v.is_empty())
                .map(|h| (h.to_string(), false)),
        }
    }

    /// The credentials for `server`: from its credential helper if the
    /// file names one, else from the file.
    pub fn credentials(&self, server: &str) -> Result<Option<Credentials>> {
        if let Some((helper, specific)) = self.helper_for(server) {
            let where_ = if specific {
                format!("credHelpers in {}", self.path.display())
            } else {
                format!("credsStore in {}", self.path.display())
            };
            match run_helper(&helper, server) {
                Ok(Some(c)) => return Ok(Some(c)),
                Ok(None) => {}
                // The registry's own helper must work; a general store
                // that does not only costs its credentials.
                Err(e) if specific => {
                    return Err(RegistryError::Config(format!(
                        "credential helper docker-credential-{helper} ({where_}) for {server}: {e}"
                    )))
                }
                Err(e) => {
                    log::warn!("credential helper docker-credential-{helper} ({where_}): {e}; going on without it")
                }
            }
        }
        Ok(self.get(server))
    }
}

impl AuthFile {
    /// Keeps a login the way this file says: in the credential helper it
    /// names for `server` (`credHelpers`, else `credsStore`; the secret then
    /// never enters the file, and any copy in `auths` is dropped), or in the
    /// file itself. Saves the file. Returns the helper used, if any.
    pub fn store(&mut self, server: &str, creds: &Credentials) -> Result<Option<String>> {
        match self.helper_for(server) {
            Some((helper, _)) => {
                let input = json!({
                    "ServerURL": helper_server(server),
                    "Username": creds.username,
                    "Secret": creds.password,
                })
                .to_string();
                helper_call(&helper, "store", &input)
                    .map_err(|e| RegistryError::Config(format!("storing the login for {server}: {e}")))?;
                if self.remove(server) {
                    self.save()?;
                }
                Ok(Some(helper))
            }
            None => {
                self.set(server, creds);
                self.save()?;
                Ok(None)
            }
        }
    }

    /// Forgets a login: in the file's credential helper for `server` (if
    /// it names one) and in the file. False if neither had one.
    pub fn forget(&mut self, server: &str) -> Result<bool> {
        let mut found = false;
        if let Some((helper, _)) = self.helper_for(server) {
            match helper_call(&helper, "erase", &helper_server(server)) {
                Ok(_) => found = true,
                Err(e) if nothing_stored(&e) => {}
                Err(e) => {
                    return Err(RegistryError::Config(format!("removing the login for {server}: {e}")));
                }
            }
        }
        if self.remove(server) {
            self.save()?;
            found = true;
        }
        Ok(found)
    }
}

/// Runs `docker-credential-NAME VERB` with `input` on stdin; its stdout.
fn helper_call(name: &str, verb: &str, input: &str) -> std::result::Result<String, String> {
    use std::process::{Command, Stdio};
    if name.contains('/') {
        return Err(format!("{name:?} is not a helper name"));
    }
    let prog = format!("docker-credential-{name}");
    let mut child = Command::new(&prog)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("{prog} is not on PATH: install it, or remove it from the file"),
            _ => format!("running {prog}: {e}"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        match stdin.write_all(input.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("writing to {prog}: {e}"));
            }
            _ => {}
        }
    }
    let out = child.wait_with_output().map_err(|e| format!("running {prog}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let msg = format!("{}{}", stdout.trim(), String::from_utf8_lossy(&out.stderr).trim());
        return Err(format!("{prog} {verb} failed ({}): {msg}", out.status));
    }
    Ok(stdout)
}

/// The helper protocol's way of saying "nothing stored" (a failed call's
/// message says "credentials not found").
fn nothing_stored(helper_error: &str) -> bool {
    helper_error.to_ascii_lowercase().contains("credentials not found")
}

/// What a helper is asked about: Docker files Docker Hub under its old URL.
fn helper_server(server: &str) -> String {
    match normalize_server(server).as_str() {
        "docker.io" => "https://index.docker.io/v1/".to_string(),
        s => s.to_string(),
    }
}

/// `docker-credential-NAME get`: Ok(None) when it has no credentials.
fn run_helper(name: &str, server: &str) -> std::result::Result<Option<Credentials>, String> {
    let prog = format!("docker-credential-{name}");
    let stdout = match helper_call(name, "get", &helper_server(server)) {
        Ok(out) => out,
        Err(e) if nothing_stored(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_str(&stdout).map_err(|e| format!("{prog} get did not answer JSON: {e}"))?;
    let (user, secret) = (v["Username"].as_str().unwrap_or(""), v["Secret"].as_str().unwrap_or(""));
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: if user.is_empty() {
            "<token>".into()
        } else {
            user.to_string()
        },
        password: secret.to_string(),
    }))
}

/// A `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parse `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// `k="v", k2=v2` with quoted commas kept inside values.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == ',' || b[i].is_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != '=' && b[i] != ',' {
            i += 1;
        }
        let key: String = b[ks..i].iter().collect::<String>().trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != '=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != ',' {
                val.push(b[i]);
                i += 1;
            }
            val = val.trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, val);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "a bearer challenge needs a realm"
        );
    }

    #[test]
    fn server_names_normalise() {
        for s in [
            "docker.io",
            "https://index.docker.io/v1/",
            "index.docker.io",
            "registry-1.docker.io",
        ] {
            assert_eq!(normalize_server(s), "docker.io", "{s}");
        }
        assert_eq!(normalize_server("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
    }

    #[test]
    fn auth_file_round_trip_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/auth.json");
        let mut f = AuthFile::open(&p).unwrap();
        assert!(f.get("127.0.0.1:5000").is_none());
        let c = Credentials::parse("alice:s3:cret").unwrap();
        assert_eq!(c.password, "s3:cret");
        f.set("127.0.0.1:5000", &c);
        f.set("https://index.docker.io/v1/", &c);
        f.save().unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let f = AuthFile::open(&p).unwrap();
        assert_eq!(f.get("http://127.0.0.1:5000"), Some(c.clone()));
        assert_eq!(f.get("docker.io"), Some(c));
        let mut f = f;
        assert!(f.remove("127.0.0.1:5000"));
        assert!(!f.remove("127.0.0.1:5000"));
    }
}
