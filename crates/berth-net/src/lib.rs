//! berth-net: container networking, the same way as root and rootless.
//!
//! * [`bridge`]: bridge networks (the default `bridge` and user-defined
//!   ones): bridges, veth pairs into a container's namespace, leases from
//!   berth-store, isolation and NAT ([`firewall`]), name resolution
//!   ([`dns`], through aardvark-dns), repair after a crash
//!   ([`bridge::reconcile`]) and a listing of everything held
//!   ([`bridge::inventory`]).
//! * [`ipam`]: subnets, Docker's default pools, the lease pool.
//! * [`etc`]: a container's `/etc/hosts` and `/etc/resolv.conf`.
//! * [`nl`], [`ns`]: rtnetlink and namespace handles.
//! * [`publish`]: Docker's `-p` syntax ([`parse_publish`]) and the bindings
//!   a running container holds ([`PortBinding`]).
//! * [`forward`]: the userspace forwarder ([`Forwarder`]) the container's
//!   monitor runs: host listeners → sockets inside the container's network
//!   namespace (or to its bridge address).
//! * The bindings file ([`PORTS_FILE`]) the monitor leaves in the container
//!   directory while the ports are held, for `port`, `ps` and `inspect`.
//!
//! It never touches links, rules or processes it did not make, and never
//! sends a packet itself. Why these components: see the crate's README.

pub mod bridge;
pub mod dns;
pub mod error;
pub mod etc;
pub mod firewall;
pub mod forward;
pub mod ipam;
mod netns;
pub mod nl;
pub mod ns;
pub mod publish;
pub mod rootless;

pub use error::{NetError, Result};
pub use forward::{check_available, Forwarder};
pub use publish::{parse_exposed, parse_publish, PortBinding, PortMapping, Proto};

use std::path::Path;

/// Opens (creating) `path` and takes an exclusive flock on it, creating
/// its directory first; the lock lasts as long as the returned file.
pub(crate) fn lock_file(path: &Path) -> Result<std::fs::File> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| NetError::io(format!("creating {}", d.display()), e))?;
    }
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| NetError::io(format!("opening {}", path.display()), e))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| NetError::io(format!("locking {}", path.display()), std::io::Error::from(e)))?;
    Ok(f)
}

/// The host ports a container holds, written by its monitor (JSON list of
/// [`PortBinding`]) and removed when it lets them go.
pub const PORTS_FILE: &str = "ports.json";

/// Records the bindings in `container_dir` (atomically).
pub fn write_bindings(container_dir: &Path, b: &[PortBinding]) -> Result<()> {
    let p = container_dir.join(PORTS_FILE);
    let bytes = serde_json::to_vec(b).map_err(|e| NetError::io("serialising port bindings", e))?;
    berth_archive::perms::write_atomic(&p, &bytes, berth_archive::perms::PRIVATE_FILE)
        .map_err(|e| NetError::io(format!("writing {}", p.display()), e))
}

/// The bindings recorded in `container_dir` (empty when none or unreadable).
pub fn read_bindings(container_dir: &Path) -> Vec<PortBinding> {
    std::fs::read(container_dir.join(PORTS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Forgets the recorded bindings.
pub fn remove_bindings(container_dir: &Path) {
    let _ = std::fs::remove_file(container_dir.join(PORTS_FILE));
}
