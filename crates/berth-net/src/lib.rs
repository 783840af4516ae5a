//! berth-net: port publishing for containers that have their own network
//! namespace, the same way as root and rootless.
//!
//! * [`publish`]: Docker's `-p` syntax ([`parse_publish`]) and the bindings
//!   a running container holds ([`PortBinding`]).
//! * [`forward`]: the userspace forwarder ([`Forwarder`]) the container's
//!   monitor runs: host listeners → sockets inside the container's network
//!   namespace → `127.0.0.1:<container port>`.
//! * [`netns`]: how those sockets are made (a forked helper that joins the
//!   container's user and network namespaces).
//! * The bindings file ([`PORTS_FILE`]) the monitor leaves in the container
//!   directory while the ports are held, for `port`, `ps` and `inspect`.
//!
//! Traffic only ever goes to the container's own loopback: nothing here
//! routes, NATs or touches the host's firewall.

pub mod error;
pub mod forward;
mod netns;
pub mod publish;

pub use error::{NetError, Result};
pub use forward::{check_available, Forwarder};
pub use publish::{parse_exposed, parse_publish, PortBinding, PortMapping, Proto};

use std::path::Path;

/// The host ports a container holds, written by its monitor (JSON list of
/// [`PortBinding`]) and removed when it lets them go.
pub const PORTS_FILE: &str = "ports.json";

/// Records the bindings in `container_dir` (atomically).
pub fn write_bindings(container_dir: &Path, b: &[PortBinding]) -> Result<()> {
    let p = container_dir.join(PORTS_FILE);
    let tmp = container_dir.join(format!(".{PORTS_FILE}.tmp"));
    let bytes = serde_json::to_vec(b).map_err(|e| NetError::io("serialising port bindings", e))?;
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, &p))
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
