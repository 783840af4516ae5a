//! The crate's error type. Messages say what failed and, where there is
//! one, what the user can do about it.

use std::net::IpAddr;

/// Everything that can go wrong in berth's networking.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A `-p`/`--publish` value that does not parse.
    #[error("invalid publish spec {spec:?}: {reason}")]
    InvalidSpec { spec: String, reason: String },

    /// The host port is taken (by another container or another program).
    #[error("Bind for {addr} failed: port is already allocated")]
    PortInUse { addr: String },

    /// No free port in a host port range.
    #[error("Bind for {ip}:{first}-{last} failed: no free port in the range (all already allocated)")]
    RangeExhausted { ip: IpAddr, first: u16, last: u16 },

    /// An unprivileged user asked for a privileged port.
    #[error("cannot bind {addr}: permission denied (ports below {limit} need root; lower net.ipv4.ip_unprivileged_port_start or pick a higher port)")]
    PrivilegedPort { addr: String, limit: u16 },

    /// The host IP is not an address of this host.
    #[error("cannot bind {addr}: the address {ip} is not assigned to any interface of this host")]
    AddressNotAvailable { addr: String, ip: IpAddr },

    /// The container's network namespace could not be entered.
    #[error("cannot enter the network namespace of container process {pid}: {reason}")]
    Netns { pid: i32, reason: String },

    /// A network request that cannot be honoured (bad subnet, gateway, name, driver …).
    #[error("{0}")]
    InvalidNetwork(String),

    /// The kernel refused a netlink request.
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// nftables refused a change.
    #[error("firewall: {0}")]
    Firewall(String),

    /// The DNS server could not be run or updated.
    #[error("DNS server: {0}")]
    Dns(String),

    /// The rootless network namespace could not be made or entered.
    #[error("rootless network: {0}")]
    Rootless(String),

    /// A store operation (records, leases) failed.
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),

    /// A system call failed; `what` names the operation.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl NetError {
    pub(crate) fn io(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        NetError::Io {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// Shorthand for `Result<T, NetError>`.
pub type Result<T, E = NetError> = std::result::Result<T, E>;
