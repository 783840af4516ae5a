//! Where the service listens, and who may connect.
//!
//! * a unix socket: `/run/berth/berth.sock` as root, `$XDG_RUNTIME_DIR/
//!   berth/berth.sock` rootless, or the `unix:///PATH` given. As root it
//!   is mode 0660 owned by root and the `berth` group when that group
//!   exists, 0600 otherwise; rootless it is the user's alone (0600). The
//!   socket is bound in a private directory, given its mode and owner,
//!   then renamed into place: it is never reachable with looser rights.
//! * TCP (`tcp://HOST:PORT`), only when asked for: loopback addresses as
//!   they are; any other address only with TLS and client certificates
//!   (`--tlsverify --tlscacert --tlscert --tlskey`), since the API gives
//!   whoever reaches it root on this machine.
//! * sockets passed by systemd (`LISTEN_PID`, `LISTEN_FDS`), under the
//!   same rules.
//!
//! Binding happens before the runtime starts; nothing here serves.

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};

/// The `berth` group: members may use a root service's socket.
pub const SOCKET_GROUP: &str = "berth";
/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// An address to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// Parses `unix:///path` or `tcp://host:port`.
pub fn parse_uri(uri: &str) -> Result<Endpoint> {
    if let Some(p) = uri.strip_prefix("unix://") {
        if !p.starts_with('/') {
            bail!("invalid URI {uri:?}: a unix socket needs an absolute path (unix:///run/berth/berth.sock)");
        }
        return Ok(Endpoint::Unix(PathBuf::from(p)));
    }
    if let Some(a) = uri.strip_prefix("tcp://") {
        let a = a.trim_end_matches('/');
        if a.rsplit_once(':').is_none_or(|(_, port)| port.parse::<u16>().is_err()) {
            bail!("invalid URI {uri:?}: a TCP address needs a host and a port (tcp://127.0.0.1:2375)");
        }
        return Ok(Endpoint::Tcp(a.to_string()));
    }
    bail!("invalid URI {uri:?}: use unix:///PATH or tcp://127.0.0.1:PORT")
}

/// `/run/berth/berth.sock` as root; `$XDG_RUNTIME_DIR/berth/berth.sock`
/// (or `/run/user/UID/berth/berth.sock`) rootless.
pub fn default_endpoint() -> Result<Endpoint> {
    Ok(Endpoint::Unix(berth_engine::default_api_socket()?))
}

/// Files of `--tlsverify --tlscacert --tlscert --tlskey`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA that client certificates must chain to.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A bound socket, not yet serving.
pub enum Bound {
    /// `remove` is the path to delete when the service ends (None for a
    /// socket systemd owns).
    Unix {
        listener: std::os::unix::net::UnixListener,
        remove: Option<PathBuf>,
    },
    Tcp {
        listener: std::net::TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
    },
}

impl Bound {
    /// What a log line calls it.
    pub fn describe(&self) -> String {
        match self {
            // The path it was renamed to, else the one it was bound at.
            Bound::Unix { listener, remove } => {
                let bound_at = listener
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(Path::to_path_buf));
                match remove.clone().or(bound_at) {
                    Some(p) => format!("unix://{}", p.display()),
                    None => "a unix socket".into(),
                }
            }
            Bound::Tcp { listener, tls } => format!(
                "tcp://{}{}",
                listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                if tls.is_some() {
                    " (TLS, client certificates required)"
                } else {
                    ""
                }
            ),
        }
    }
}

/// The gid of `name` in /etc/group.
fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// The mode and group a new unix socket gets (see the module's doc).
fn socket_rights() -> (u32, Option<u32>) {
    if berth_engine::is_rootless() {
        return (0o600, None);
    }
    match group_id(SOCKET_GROUP) {
        Some(gid) => (0o660, Some(gid)),
        None => (0o600, None),
    }
}

/// Binds a unix socket at `path` with its final rights before it appears.
fn bind_unix(path: &Path) -> Result<Bound> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| anyhow!("{}: the socket needs a directory", path.display()))?;
    if !parent.is_dir() {
        if parent.exists() {
            bail!("{} is not a directory: the socket cannot go there", parent.display());
        }
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let mode = if berth_engine::is_rootless() { 0o700 } else { 0o755 };
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", parent.display()))?;
    }
    // A socket file nobody answers on was left by a service that is gone:
    // the rename below replaces it. Anything else there is not ours.
    if let Ok(md) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !md.file_type().is_socket() {
            bail!("{} exists and is not a socket: choose another path", path.display());
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "{} is in use: another service is listening there (stop it, or give another URI)",
                path.display()
            );
        }
    }
    let private = tempfile::Builder::new()
        .prefix(".berth-sock")
        .tempdir_in(parent)
        .with_context(|| format!("creating a private directory in {}", parent.display()))?;
    let staged = private.path().join("s");
    let listener = std::os::unix::net::UnixListener::bind(&staged)
        .with_context(|| format!("binding a unix socket in {}", parent.display()))?;
    let (mode, gid) = socket_rights();
    if let Some(gid) = gid {
        std::os::unix::fs::chown(&staged, Some(0), Some(gid))
            .with_context(|| format!("giving {} to the {SOCKET_GROUP} group", path.display()))?;
    }
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    std::fs::rename(&staged, path).with_context(|| format!("putting the socket at {}", path.display()))?;
    Ok(Bound::Unix {
        listener,
        remove: Some(path.to_path_buf()),
    })
}

/// Refuses a TCP address that is not loopback unless TLS with client
/// certificates guards it.
fn check_tcp(addrs: &[SocketAddr], shown: &str, tls: bool) -> Result<()> {
    if tls || addrs.iter().all(|a| a.ip().is_loopback()) {
        return Ok(());
    }
    bail!(
        "refusing to serve the API on {shown} without TLS: anyone who reaches that address would be root on this \
         machine. Listen on a loopback address (tcp://127.0.0.1:PORT) or a unix socket, or require client \
         certificates with --tlsverify --tlscacert CA.pem --tlscert CERT.pem --tlskey KEY.pem"
    )
}

/// Binds an endpoint given by the user (or the default one).
pub fn bind(endpoint: &Endpoint, tls: Option<&TlsFiles>) -> Result<Bound> {
    match endpoint {
        Endpoint::Unix(p) => {
            if tls.is_some() {
                bail!("TLS applies to TCP: a unix socket is guarded by its file mode");
            }
            bind_unix(p)
        }
        Endpoint::Tcp(a) => {
            let addrs: Vec<SocketAddr> = a.to_socket_addrs().with_context(|| format!("resolving {a}"))?.collect();
            if addrs.is_empty() {
                bail!("{a} resolves to no address");
            }
            check_tcp(&addrs, &format!("tcp://{a}"), tls.is_some())?;
            let listener =
                std::net::TcpListener::bind(&addrs[..]).with_context(|| format!("listening on tcp://{a}"))?;
            let tls = tls.map(tls_config).transpose()?;
            Ok(Bound::Tcp { listener, tls })
        }
    }
}

/// The sockets systemd passed to this process, if any (and forgets the
/// variables, so the containers' monitors do not inherit them).
pub fn from_systemd(tls: Option<&TlsFiles>) -> Result<Vec<Bound>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(Vec::new());
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let n: i32 = fds
        .trim()
        .parse()
        .map_err(|_| anyhow!("LISTEN_FDS={fds:?} is not a number"))?;
    let tls_config = tls.map(tls_config).transpose()?;
    let mut out = Vec::new();
    for fd in LISTEN_FDS_START..LISTEN_FDS_START + n {
        // SAFETY: systemd's protocol hands these fds to this process (the
        // pid check above), each once; nothing else in berth opens or owns
        // fds in this range before this point of `system service`.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let flags = rustix::io::fcntl_getfd(&owned).with_context(|| format!("LISTEN_FDS: fd {fd} is not open"))?;
        rustix::io::fcntl_setfd(&owned, flags | rustix::io::FdFlags::CLOEXEC)?;
        let addr = rustix::net::getsockname(&owned).with_context(|| format!("LISTEN_FDS: fd {fd} is not a socket"))?;
        match addr.address_family() {
            rustix::net::AddressFamily::UNIX => out.push(Bound::Unix {
                listener: std::os::unix::net::UnixListener::from(owned),
                remove: None,
            }),
            rustix::net::AddressFamily::INET | rustix::net::AddressFamily::INET6 => {
                let listener = std::net::TcpListener::from(owned);
                let local = listener.local_addr()?;
                check_tcp(&[local], &format!("tcp://{local} (from systemd)"), tls_config.is_some())?;
                out.push(Bound::Tcp {
                    listener,
                    tls: tls_config.clone(),
                });
            }
            other => bail!("LISTEN_FDS: fd {fd} is a socket of family {other:?}, not unix or TCP"),
        }
    }
    Ok(out)
}

/// A TLS server that requires a client certificate signed by the CA.
pub fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = |p: &Path| -> Result<Vec<CertificateDer<'static>>> {
        let list: Vec<_> = CertificateDer::pem_file_iter(p)
            .with_context(|| format!("reading {}", p.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading the certificates in {}", p.display()))?;
        if list.is_empty() {
            bail!("{} holds no PEM certificate", p.display());
        }
        Ok(list)
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&files.ca)? {
        roots
            .add(c)
            .with_context(|| format!("adding the CA certificate of {}", files.ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("setting up client certificate verification")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading the private key in {}", files.key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&files.cert)?, key)
        .with_context(|| format!("using {} with {}", files.cert.display(), files.key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            parse_uri("unix:///tmp/x.sock").unwrap(),
            Endpoint::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            parse_uri("tcp://127.0.0.1:2375").unwrap(),
            Endpoint::Tcp("127.0.0.1:2375".into())
        );
        assert!(parse_uri("unix://relative").is_err());
        assert!(parse_uri("tcp://127.0.0.1").is_err());
        assert!(parse_uri("http://x:1").is_err());
    }

    #[test]
    fn non_loopback_tcp_needs_tls() {
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        assert!(check_tcp(&[lo], "x", false).is_ok());
        let e = check_tcp(&[any], "tcp://0.0.0.0:1", false).unwrap_err().to_string();
        assert!(e.contains("--tlsverify"), "{e}");
        assert!(check_tcp(&[any], "x", true).is_ok());
        assert!(bind(&Endpoint::Tcp("0.0.0.0:0".into()), None).is_err());
    }

    #[test]
    fn a_unix_socket_appears_with_its_rights_and_refuses_a_second_service() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/api.sock");
        let b = bind(&Endpoint::Unix(p.clone()), None).unwrap();
        let md = std::fs::metadata(&p).unwrap();
        let (mode, _) = socket_rights();
        assert_eq!(md.permissions().mode() & 0o777, mode);
        let e = bind(&Endpoint::Unix(p.clone()), None).err().unwrap().to_string();
        assert!(e.contains("in use"), "{e}");
        drop(b);
        // The old service is gone: its socket file is replaced.
        assert!(bind(&Endpoint::Unix(p), None).is_ok());
        let left: Vec<_> = std::fs::read_dir(d.path().join("sub")).unwrap().collect();
        assert_eq!(left.len(), 1, "no private directory is left behind");
        let file = d.path().join("precious");
        std::fs::write(&file, "keep").unwrap();
        let e = bind(&Endpoint::Unix(file.clone()), None).err().unwrap().to_string();
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    }
}
