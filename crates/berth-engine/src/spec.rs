//! What a front asks the engine to create: [`ContainerSpec`], every value
//! typed and resolved (sizes in bytes, durations as [`Duration`], ports as
//! [`PortMapping`]s, mounts as [`Mount`]s, the environment as `KEY=VALUE`),
//! in the spirit of Podman's specgen.
//!
//! Each front converts its own input into a spec: the CLI parses Docker's
//! flags with the parsers below (which compose's short syntax shares) and
//! reads `--env-file` and its own environment; the API server converts a
//! `HostConfig`. [`ContainerSpec::validate`] checks what no type can (ranges,
//! absolute paths, known signals) with Docker's wording, and
//! [`crate::Engine::create_container`] calls it, so every front gets the
//! same refusals.
//!
//! Nothing here reads the caller's environment or files: a parser that
//! needs an environment variable is given a lookup function. User input
//! echoed in an error goes through [`shown`] (escaped, cut).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use berth_net::{PortMapping, Proto};
pub use berth_runtime::RestartPolicy;

use crate::error::{shown, EngineError, Result};

/// The highest uid or gid Docker accepts (`2^31 - 1`).
pub const MAX_ID: u64 = 2_147_483_647;
/// The smallest memory limit Docker accepts.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;
/// The smallest CPU share `--cpus` can give: a 1 ms quota per 100 ms period.
pub const MIN_NANO_CPUS: u64 = 10_000_000;

/// A container to create.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSpec {
    /// The image, as the user named it (`bb`, `127.0.0.1:5000/app:1`, an ID).
    pub image: String,
    /// The container's name; `None` picks a Docker-style random one.
    pub name: Option<String>,
    /// Replaces the image's CMD when not empty.
    pub command: Vec<String>,
    /// Replaces the image's ENTRYPOINT (and drops its CMD); `Some(vec![])`
    /// clears it (`--entrypoint ''`).
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` entries over the image's environment, later ones winning.
    pub env: Vec<String>,
    /// Over the image's WORKDIR; must be absolute.
    pub working_dir: Option<String>,
    /// Over the image's USER.
    pub user: Option<UserSpec>,
    /// The container's host name (default: the short ID).
    pub hostname: Option<String>,
    /// The container's NIS domain name.
    pub domainname: Option<String>,
    /// Over the image's labels.
    pub labels: BTreeMap<String, String>,
    /// `-v`, `--mount` and `--tmpfs`, in that order.
    pub mounts: Vec<Mount>,
    /// Files made for this container alone and mounted read-only (compose's
    /// secrets and configs); see [`ContainerFile`].
    pub files: Vec<ContainerFile>,
    /// Mount the root file system read-only.
    pub read_only: bool,
    /// Memory, CPU, pids and rlimits.
    pub resources: Resources,
    /// Capabilities to add (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`).
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    pub cap_drop: Vec<String>,
    /// `seccomp=…`, `no-new-privileges`, … as Docker spells them.
    pub security_opt: Vec<String>,
    /// Host devices: `host[:container[:perms]]`.
    pub devices: Vec<String>,
    /// Every capability, every device, no confinement.
    pub privileged: bool,
    /// An init process as PID 1 that forwards signals and reaps.
    pub init: bool,
    /// What happens when the container exits.
    pub restart: RestartPolicy,
    /// Over the image's STOPSIGNAL.
    pub stop_signal: Option<Signal>,
    /// How long `stop` waits before SIGKILL (default 10 s); whole seconds.
    pub stop_timeout: Option<Duration>,
    /// The network the container joins.
    pub network: NetworkMode,
    /// Endpoint settings per network (`--network-alias`, `--ip`, `--ip6`,
    /// compose's `networks:`); the first names the network of `network`
    /// when that is a network by name, the rest are joined too (`--network`
    /// given more than once, compose's several networks).
    pub endpoints: Vec<EndpointSpec>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    pub dns: DnsSpec,
    /// `--add-host NAME:ADDR` (ADDR may be `host-gateway`), in order.
    pub extra_hosts: Vec<(String, String)>,
    /// `--link NAME[:ALIAS]` on the default bridge: (container, alias).
    pub links: Vec<(String, String)>,
    /// `--mac-address` of the first network's interface.
    pub mac_address: Option<String>,
    /// Host ports published to the container (`-p`).
    pub ports: Vec<PortMapping>,
    /// `-P`: also every EXPOSEd port of the image, on a random host port.
    pub publish_all: bool,
    /// Give the container a terminal.
    pub tty: bool,
    /// Keep its stdin open for attached clients (`-i`).
    pub open_stdin: bool,
    /// `run -d`: no client attaches to its streams when it starts
    /// (inspect's `Config.Attach*` read false, as Docker's).
    pub detached: bool,
    /// Remove the container when it exits (`--rm`).
    pub auto_remove: bool,
    /// The platform the image must have.
    pub platform: Option<String>,
    /// When to pull the image.
    pub pull: PullPolicy,
    /// Over the image's HEALTHCHECK.
    pub health: HealthSpec,
    /// `--userns`: `host`, `auto[:size=N]`, `keep-id`, `nomap`; `None` is
    /// the store's default (see [`crate::userns`]).
    pub userns: Option<String>,
    /// `--log-driver`: `json-file` (the default) or `local` keep the log
    /// `logs` reads; `none` keeps nothing.
    pub log_driver: Option<String>,
    /// `--log-opt`: none taken yet (refused by name).
    pub log_opts: BTreeMap<String, String>,
    /// `--storage-opt` (`size=10G`): berth's overlay store has no quotas,
    /// so any is refused as Docker's overlay2 refuses it without xfs quotas.
    pub storage_opts: BTreeMap<String, String>,
    /// `--volumes-from CONTAINER[:ro|rw]`: that container's volumes and
    /// binds, at the same paths (read-only as they were, or as asked).
    pub volumes_from: Vec<String>,
    /// `--shm-size`: the size of the container's `/dev/shm` in bytes;
    /// `None` (or 0) is Docker's 64 MiB.
    pub shm_size: Option<u64>,
    /// `--sysctl KEY=VALUE`: namespaced kernel parameters set in the
    /// container's namespaces (see [`check_sysctl`]).
    pub sysctls: BTreeMap<String, String>,
    /// `--annotation KEY=VALUE`: OCI annotations handed to the runtime.
    pub annotations: BTreeMap<String, String>,
    /// `--group-add`: supplementary groups, by number or by a name of the
    /// image's /etc/group (resolved when the container starts).
    pub group_add: Vec<String>,
    /// `--expose`: more ports the container listens on, as `80/tcp` (`-P`
    /// publishes them with the image's).
    pub expose: Vec<String>,
    /// `--pid`: its own PID namespace, the host's or another container's.
    pub pid: NamespaceMode,
    /// `--ipc`: its own IPC namespace (with or without `/dev/shm`), the
    /// host's or another container's (its `/dev/shm` too).
    pub ipc: NamespaceMode,
    /// `--uts`: its own host name or the host's.
    pub uts: NamespaceMode,
    /// `--cgroupns`: its own cgroup namespace or the host's.
    pub cgroupns: NamespaceMode,
    /// `--use-api-socket`: the Docker API socket and the logins berth
    /// would use, inside (see `containers::api_socket`).
    pub use_api_socket: bool,
}

/// Which namespace of a kind a container gets (`--pid`, `--ipc`, `--uts`,
/// `--cgroupns`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NamespaceMode {
    /// Its own: Docker's `""` and `private`.
    #[default]
    Private,
    /// `--ipc shareable`: its own, which other containers may join (its
    /// `/dev/shm` is made where they can bind it).
    Shareable,
    /// `--ipc none`: its own, with no `/dev/shm`.
    None,
    /// The host's.
    Host,
    /// That of another container, by name or ID, which must be running
    /// when this one starts.
    Container(String),
}

/// The kinds of namespace [`NamespaceMode`] chooses for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceKind {
    /// `--pid`.
    Pid,
    /// `--ipc`.
    Ipc,
    /// `--uts`.
    Uts,
    /// `--cgroupns`.
    Cgroup,
}

impl NamespaceKind {
    /// The flag, and Docker's word for the mode in its error.
    fn flag(self) -> (&'static str, &'static str) {
        match self {
            NamespaceKind::Pid => ("--pid", "PID"),
            NamespaceKind::Ipc => ("--ipc", "IPC"),
            NamespaceKind::Uts => ("--uts", "UTS"),
            NamespaceKind::Cgroup => ("--cgroupns", "CGROUP"),
        }
    }
}

impl NamespaceMode {
    /// Parses the flag's value as the docker CLI takes it: `--pid
    /// host|container:X`, `--ipc none|private|shareable|host|container:X`,
    /// `--uts host`, `--cgroupns host|private`.
    pub fn parse(kind: NamespaceKind, s: &str) -> Result<NamespaceMode> {
        use NamespaceKind::*;
        let joined = s.strip_prefix("container:").filter(|c| !c.is_empty());
        match (kind, s) {
            (_, "") => Ok(NamespaceMode::Private),
            (Ipc | Cgroup, "private") => Ok(NamespaceMode::Private),
            (Ipc, "shareable") => Ok(NamespaceMode::Shareable),
            (Ipc, "none") => Ok(NamespaceMode::None),
            (_, "host") => Ok(NamespaceMode::Host),
            (Pid | Ipc, _) if joined.is_some() => Ok(NamespaceMode::Container(joined.unwrap_or_default().to_string())),
            // Docker's words: its CLI checks --pid, --uts and --cgroupns,
            // its daemon --ipc.
            (Ipc, _) => Err(EngineError::invalid(format!("Invalid IPC mode: {s}"))),
            _ => {
                let (flag, word) = kind.flag();
                Err(EngineError::invalid(format!("{flag}: invalid {word} mode")))
            }
        }
    }

    /// The mode as inspect's `HostConfig` shows it (`container:` with the
    /// other container's ID once resolved).
    pub fn shown(&self, kind: NamespaceKind) -> String {
        match self {
            NamespaceMode::Private if matches!(kind, NamespaceKind::Ipc | NamespaceKind::Cgroup) => "private".into(),
            NamespaceMode::Private => String::new(),
            NamespaceMode::None => "none".into(),
            NamespaceMode::Shareable => "shareable".into(),
            NamespaceMode::Host => "host".into(),
            NamespaceMode::Container(c) => format!("container:{c}"),
        }
    }
}

/// `--user`: a user and optionally a group, by name or number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// A name in the image's `/etc/passwd`, or a uid.
    pub user: String,
    /// A name in the image's `/etc/group`, or a gid.
    pub group: Option<String>,
}

impl UserSpec {
    /// Parses `user[:group]`, refusing numeric ids outside 0–2147483647 as
    /// Docker does.
    pub fn parse(s: &str) -> Result<UserSpec> {
        let (user, group) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        if user.is_empty() || group.is_some_and(str::is_empty) {
            return Err(EngineError::invalid(format!(
                "invalid --user {}: use user[:group], names or numeric ids",
                shown(s)
            )));
        }
        for part in std::iter::once(user).chain(group) {
            if part
                .bytes()
                .any(|b| b.is_ascii_control() || b == b':' || b.is_ascii_whitespace())
            {
                return Err(EngineError::invalid(format!("invalid --user {}", shown(s))));
            }
            let numeric = part.bytes().all(|b| b.is_ascii_digit()) || part.starts_with('-');
            if numeric {
                let ok = part.parse::<i64>().is_ok_and(|n| (0..=MAX_ID as i64).contains(&n));
                if !ok {
                    return Err(EngineError::invalid(format!(
                        "invalid --user {}: uids and gids must be in range 0-{MAX_ID}",
                        shown(s)
                    )));
                }
            }
        }
        Ok(UserSpec {
            user: user.to_string(),
            group: group.map(str::to_string),
        })
    }
}

impl std::fmt::Display for UserSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}:{g}", self.user),
            None => f.write_str(&self.user),
        }
    }
}

/// A signal, checked to exist: `SIGTERM`, `TERM`, `15`, `SIGRTMIN+3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal(String);

impl Signal {
    /// Parses a signal name or number (1–64), as Docker's `--stop-signal`
    /// and `kill -s` take it.
    pub fn parse(s: &str) -> Result<Signal> {
        match berth_runtime::ops::normalize_signal(s) {
            Ok(_) => Ok(Signal(s.trim().to_string())),
            Err(_) => Err(EngineError::invalid(format!("Invalid signal: {}", shown_bare(s)))),
        }
    }

    /// As the user wrote it (what `inspect` shows).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When to pull a container's image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only when it is not in the store.
    #[default]
    Missing,
    /// Every time, even when it is.
    Always,
    /// Never: a missing image is an error.
    Never,
}

impl PullPolicy {
    /// Parses `--pull`: `missing`, `always`, `never`.
    pub fn parse(s: &str) -> Result<PullPolicy> {
        match s {
            "missing" | "" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            p => Err(EngineError::invalid_value(format!(
                "invalid pull option: {}: must be one of \"always\", \"missing\" or \"never\"",
                shown(p)
            ))),
        }
    }
}

/// The network a container joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// Its own network namespace with loopback up; the name is what
    /// `inspect` shows (`bridge`, `default`, `private`).
    Private(String),
    /// Its own network namespace, never connected.
    None,
    /// The host's network namespace.
    Host,
    /// The network namespace of another (running) container, by name or ID.
    Container(String),
    /// A network by name or ID (a bridge network of `berth network`), the
    /// default `bridge` included once it is wired; the endpoint settings
    /// are in [`ContainerSpec::endpoints`].
    Network(String),
}

impl Default for NetworkMode {
    fn default() -> Self {
        NetworkMode::Private("bridge".into())
    }
}

impl NetworkMode {
    /// Parses `--network`.
    pub fn parse(s: &str) -> Result<NetworkMode> {
        match s {
            "" => Ok(NetworkMode::default()),
            "default" | "bridge" | "private" => Ok(NetworkMode::Private(s.to_string())),
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            m if m.starts_with("container:") && m.len() > "container:".len() => {
                Ok(NetworkMode::Container(m["container:".len()..].to_string()))
            }
            m if m.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && m.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')) =>
            {
                Ok(NetworkMode::Network(m.to_string()))
            }
            m => Err(EngineError::not_found(format!("network {} not found", shown_bare(m)))),
        }
    }
}

/// How a container joins one network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The network, by name or ID.
    pub network: String,
    /// Extra names others on that network resolve to this container.
    pub aliases: Vec<String>,
    /// `--ip`: a fixed IPv4 address in the network's subnet.
    pub ipv4: Option<std::net::Ipv4Addr>,
    /// `--ip6`: a fixed IPv6 address.
    pub ipv6: Option<std::net::Ipv6Addr>,
    /// `--mac-address` for this interface.
    pub mac_address: Option<String>,
    /// `--link-local-ip`: more addresses of this interface.
    pub link_local_ips: Vec<std::net::IpAddr>,
}

/// The resolver settings written to the container's `/etc/resolv.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsSpec {
    /// Name servers (`--dns`).
    pub servers: Vec<std::net::IpAddr>,
    /// Search domains (`--dns-search`).
    pub search: Vec<String>,
    /// Resolver options (`--dns-option`).
    pub options: Vec<String>,
}

/// A file the engine writes for one container and bind-mounts read-only
/// at `target` (compose's secrets and configs from a value rather than a
/// host file). It is kept in the container's private directory in the
/// store (`containers/<id>/files/`, 0700) and goes with the container:
/// never in a layer, a log or a shared directory. Its `Debug` hides the
/// content.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ContainerFile {
    /// Absolute path in the container.
    pub target: String,
    /// The bytes.
    pub content: Vec<u8>,
    /// Owner uid in the container.
    pub uid: u32,
    /// Owner gid in the container.
    pub gid: u32,
    /// Permission bits (compose's default is 0444).
    pub mode: u32,
}

impl std::fmt::Debug for ContainerFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerFile")
            .field("target", &self.target)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it appears in the container (absolute, never `/`).
    pub target: String,
    /// What is mounted there.
    pub source: MountSource,
    /// Mounted read-only.
    pub readonly: bool,
    /// Bind propagation (`rprivate`, `shared`, …); empty for the default.
    pub propagation: String,
    /// Which flag asked for it, and the mode text `inspect` shows.
    pub origin: MountOrigin,
}

/// What a [`Mount`] mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A host path (absolute).
    Bind {
        /// The host path.
        path: PathBuf,
        /// Create it when missing (Docker does for `-v`, not for `--mount`).
        create: bool,
    },
    /// A volume, created on first use and filled from the image.
    Volume {
        /// `None`: an anonymous volume with a random name.
        name: Option<String>,
        /// `--mount volume-opt=KEY=VALUE`: the local driver's options
        /// (`type`, `device`, `o`) for a volume this mount creates.
        options: BTreeMap<String, String>,
        /// `-v NAME:/p:nocopy`, `--mount volume-nocopy`: an empty volume is
        /// not filled from the image's files at the target.
        nocopy: bool,
    },
    /// A tmpfs.
    Tmpfs {
        /// Mount options (`size=…`, `mode=…`, `noexec`, …).
        options: Vec<String>,
    },
}

/// Which flag a [`Mount`] came from; `inspect` shows them differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOrigin {
    /// `-v`, with its options text (`ro`, `rw,z`, empty).
    Volume {
        /// The options after the second colon.
        mode: String,
    },
    /// `--mount`.
    Mount,
    /// `--tmpfs`, with its options text.
    Tmpfs {
        /// The options after the colon.
        options: String,
    },
}

/// Resource limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Memory plus swap.
    pub memory_swap: Option<MemorySwap>,
    /// CPU time in billionths of a CPU (`--cpus 1.5` = 1,500,000,000).
    pub nano_cpus: Option<u64>,
    /// Relative CPU weight.
    pub cpu_shares: Option<u64>,
    /// Most processes at once; `-1` or 0 unlimited.
    pub pids_limit: Option<i64>,
    /// Resource limits of the container's processes.
    pub ulimits: Vec<Ulimit>,
    /// `--blkio-weight`: relative block IO weight, 10–1000.
    pub blkio_weight: Option<u16>,
    /// `--blkio-weight-device`.
    pub blkio_weight_device: Vec<WeightDevice>,
    /// `--device-read-bps`: bytes per second.
    pub device_read_bps: Vec<ThrottleDevice>,
    /// `--device-write-bps`.
    pub device_write_bps: Vec<ThrottleDevice>,
    /// `--device-read-iops`: operations per second.
    pub device_read_iops: Vec<ThrottleDevice>,
    /// `--device-write-iops`.
    pub device_write_iops: Vec<ThrottleDevice>,
    /// `--device-cgroup-rule`: `TYPE MAJOR:MINOR ACCESS` (`c 1:3 rwm`, `b *:* m`).
    pub device_cgroup_rules: Vec<String>,
    /// `--cgroup-parent`: the cgroup the container's goes under (root
    /// only; a relative path is taken from the root of each hierarchy).
    pub cgroup_parent: Option<String>,
    /// `--cpu-rt-period`: real-time scheduling period in microseconds (cgroup v1).
    pub cpu_rt_period: Option<i64>,
    /// `--cpu-rt-runtime`: real-time runtime in microseconds per period (cgroup v1).
    pub cpu_rt_runtime: Option<i64>,
    /// `--cpuset-cpus`: the CPUs the container may run on (`0-3`, `0,1`).
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`: the memory nodes it may allocate from.
    pub cpuset_mems: Option<String>,
    /// `--cpu-period`: the CFS period in microseconds (1000–1000000).
    pub cpu_period: Option<i64>,
    /// `--cpu-quota`: CFS runtime per period in microseconds (`-1`/0: none).
    pub cpu_quota: Option<i64>,
    /// `--memory-reservation`: the soft memory limit in bytes.
    pub memory_reservation: Option<u64>,
    /// `--kernel-memory` (deprecated by Docker, gone from cgroup v2 and
    /// from kernels since 6.1): checked as Docker checks it, then
    /// discarded with its warnings.
    pub kernel_memory: Option<u64>,
    /// `--memory-swappiness`: 0–100; `-1` or `None` the host's.
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: bool,
    /// `--oom-score-adj`: -1000–1000, the container's processes' `oom_score_adj`.
    pub oom_score_adj: Option<i64>,
}

/// Docker's `0-3,5` list (`--cpuset-cpus`, `--cpuset-mems`) as numbers;
/// `None` when malformed.
pub fn parse_cpuset(s: &str) -> Option<std::collections::BTreeSet<u32>> {
    let mut out = std::collections::BTreeSet::new();
    if s.is_empty() {
        return Some(out);
    }
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 65536 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.parse().ok()?);
            }
        }
    }
    Some(out)
}

/// Checks a `--cpuset-cpus`/`--cpuset-mems` value against what this host
/// has (`available`, the same list syntax), in Docker's daemon's words.
fn check_cpuset(value: &str, available: &str, cpus: bool) -> Result<()> {
    let what = if cpus { "cpus" } else { "mems" };
    let asked =
        parse_cpuset(value).ok_or_else(|| EngineError::invalid(format!("Invalid value {value} for cpuset {what}")))?;
    let have = parse_cpuset(available.trim()).unwrap_or_default();
    if !asked.is_subset(&have) {
        return Err(EngineError::invalid(if cpus {
            format!(
                "Requested CPUs are not available - requested {value}, available: {}",
                available.trim()
            )
        } else {
            format!(
                "Requested memory nodes are not available - requested {value}, available: {}",
                available.trim()
            )
        }));
    }
    Ok(())
}

/// This host's CPUs or memory nodes as the cpuset controller offers them.
fn host_cpuset(cpus: bool) -> String {
    let (v1, v2, sys) = if cpus {
        ("cpuset.cpus", "cpuset.cpus.effective", "/sys/devices/system/cpu/online")
    } else {
        (
            "cpuset.mems",
            "cpuset.mems.effective",
            "/sys/devices/system/node/online",
        )
    };
    [
        format!("/sys/fs/cgroup/cpuset/{v1}"),
        format!("/sys/fs/cgroup/{v2}"),
        sys.to_string(),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok().filter(|s| !s.trim().is_empty()))
    .unwrap_or_else(|| "0".into())
}

/// The `kernel.*` sysctls Docker lets a container set (the IPC namespace's).
pub const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Whether sysctl `key` belongs to the IPC namespace (`kernel.msg*`,
/// `kernel.sem`, `kernel.shm*`, `fs.mqueue.*`).
pub fn is_ipc_sysctl(key: &str) -> bool {
    IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.")
}

/// Docker's rule for `--sysctl`: only what a container's own namespaces
/// hold (the IPC ones and `net.*`); anything else would set the host's.
pub fn check_sysctl(key: &str) -> Result<()> {
    if is_ipc_sysctl(key) || (key.starts_with("net.") && key.len() > 4) {
        return Ok(());
    }
    Err(EngineError::invalid_value(format!("sysctl '{key}' is not allowed")))
}

/// `--expose PORT[-PORT][/PROTO]`: the ports as `Config.ExposedPorts`'
/// keys (`80/tcp`), one per port of a range.
pub fn parse_expose(s: &str) -> Result<Vec<String>> {
    let (ports, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let keys: Vec<String> = berth_net::parse_exposed(&format!("{ports}/{proto}"))
        .into_iter()
        .map(|(p, _)| format!("{p}/{}", proto.to_ascii_lowercase()))
        .collect();
    if keys.is_empty() {
        return Err(EngineError::invalid_value(format!(
            "invalid range format for --expose: {s}"
        )));
    }
    Ok(keys)
}

/// `--annotation KEY=VALUE`.
pub fn parse_annotation(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(EngineError::invalid_value(format!(
            "invalid annotation {s:?}: use KEY=VALUE"
        ))),
    }
}

/// `--sysctl KEY=VALUE`, in the docker CLI's words when refused.
pub fn parse_sysctl(s: &str) -> Result<(String, String)> {
    let Some((key, value)) = s.split_once('=') else {
        return Err(EngineError::invalid_value(format!("sysctl '{s}' is not allowed")));
    };
    check_sysctl(key).map_err(|_| EngineError::invalid_value(format!("sysctl '{s}' is not allowed")))?;
    Ok((key.to_string(), value.to_string()))
}

/// `--blkio-weight-device DEVICE:WEIGHT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightDevice {
    /// A block device's path (`/dev/vda`).
    pub path: String,
    /// Its relative weight, 10–1000 (0: none of its own).
    pub weight: u16,
}

/// `--device-read-bps DEVICE:RATE` and the like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleDevice {
    /// A block device's path.
    pub path: String,
    /// Bytes or operations per second.
    pub rate: u64,
}

/// `--blkio-weight-device`'s value, with the docker CLI's checks and words.
pub fn parse_weight_device(s: &str) -> Result<WeightDevice> {
    let (path, weight) = device_and_value(s)?;
    let bad = || EngineError::invalid_value(format!("invalid weight for device: {s}"));
    let weight: u16 = weight.parse().map_err(|_| bad())?;
    if weight > 0 && !(10..=1000).contains(&weight) {
        return Err(bad());
    }
    Ok(WeightDevice {
        path: path.to_string(),
        weight,
    })
}

/// `--device-read-bps`/`--device-write-bps`'s value (`/dev/vda:1mb`).
pub fn parse_throttle_bps(s: &str) -> Result<ThrottleDevice> {
    throttle(s, true)
}

/// `--device-read-iops`/`--device-write-iops`'s value (`/dev/vda:100`).
pub fn parse_throttle_iops(s: &str) -> Result<ThrottleDevice> {
    throttle(s, false)
}

/// `DEVICE:VALUE` with a `/dev/` path, in the docker CLI's words when not.
fn device_and_value(s: &str) -> Result<(&str, &str)> {
    let (path, value) = s
        .split_once(':')
        .ok_or_else(|| EngineError::invalid_value(format!("bad format: {s}")))?;
    if !path.starts_with("/dev/") {
        return Err(EngineError::invalid_value(format!("bad format for device path: {s}")));
    }
    Ok((path, value))
}

fn throttle(s: &str, bytes: bool) -> Result<ThrottleDevice> {
    let (path, rate) = device_and_value(s)?;
    let bad = || {
        EngineError::invalid_value(if bytes {
            format!("invalid rate for device: {s}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")
        } else {
            format!("invalid rate for device: {s}. The correct format is <device-path>:<number>. Number must be a positive integer")
        })
    };
    let rate = if bytes {
        parse_bytes("rate", rate).map_err(|_| bad())?
    } else {
        rate.parse().map_err(|_| bad())?
    };
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate,
    })
}

/// `--memory-swap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySwap {
    /// `-1`: swap without limit.
    Unlimited,
    /// Memory plus swap, in bytes.
    Limit(u64),
}

/// One `--ulimit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// Without `RLIMIT_`, lowercase: `nofile`, `nproc`.
    pub name: String,
    /// The soft limit (`u64::MAX`: unlimited).
    pub soft: u64,
    /// The hard limit (`u64::MAX`: unlimited).
    pub hard: u64,
}

/// The healthcheck, over the image's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthSpec {
    /// `--no-healthcheck`: none, whatever the image says.
    pub disabled: bool,
    /// The test (`["CMD-SHELL", "curl -f localhost"]`, `["CMD", …]`).
    pub test: Option<Vec<String>>,
    /// Time between checks.
    pub interval: Option<Duration>,
    /// Longest a check may run.
    pub timeout: Option<Duration>,
    /// Grace time after the start.
    pub start_period: Option<Duration>,
    /// Time between checks during the start period.
    pub start_interval: Option<Duration>,
    /// Failures in a row before unhealthy.
    pub retries: Option<u32>,
}

impl HealthSpec {
    fn overrides(&self) -> bool {
        self.test.is_some()
            || self.interval.is_some()
            || self.timeout.is_some()
            || self.start_period.is_some()
            || self.start_interval.is_some()
            || self.retries.is_some()
    }
}

impl ContainerSpec {
    /// A spec for `image` with everything else at Docker's defaults.
    pub fn new(image: impl Into<String>) -> Self {
        ContainerSpec {
            image: image.into(),
            ..Default::default()
        }
    }

    /// Checks what the types cannot: the rules Docker applies at create,
    /// with its wording (`--cpus` against this host's CPUs).
    pub fn validate(&self) -> Result<()> {
        // The CPU count costs a few file reads: only when it matters.
        let ncpu = if self.resources.nano_cpus.is_some_and(|n| n > 0) {
            crate::host_cpus()
        } else {
            0
        };
        self.validate_for(ncpu)?;
        let r = &self.resources;
        if let Some(c) = r.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
            check_cpuset(c, &host_cpuset(true), true)?;
        }
        if let Some(m) = r.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
            check_cpuset(m, &host_cpuset(false), false)?;
        }
        Ok(())
    }

    /// `--cpu-rt-period`/`--cpu-rt-runtime`: Docker's daemon's checks and
    /// words (a kernel that takes the values may still refuse them when the
    /// container starts).
    pub fn validate_realtime(&self) -> Result<()> {
        let r = &self.resources;
        let rt = berth_runtime::spec::cpu_realtime_supported();
        if r.cpu_rt_period.is_some_and(|p| p > 0) && !rt {
            return Err(EngineError::invalid(
                "Your kernel does not support cgroup cpu real-time period",
            ));
        }
        if r.cpu_rt_runtime.is_some_and(|p| p > 0) && !rt {
            return Err(EngineError::invalid(
                "Your kernel does not support cgroup cpu real-time runtime",
            ));
        }
        if let (Some(p), Some(rt)) = (r.cpu_rt_period, r.cpu_rt_runtime) {
            if p != 0 && rt != 0 && rt > p {
                return Err(EngineError::invalid(
                    "cpu real-time runtime cannot be higher than cpu real-time period",
                ));
            }
        }
        Ok(())
    }

    /// [`Self::validate`] for a host with `ncpu` CPUs.
    pub fn validate_for(&self, ncpu: usize) -> Result<()> {
        if self.image.is_empty() {
            return Err(EngineError::invalid("no image given: name the image to run"));
        }
        for e in &self.env {
            check_env(e)?;
        }
        if let Some(w) = self.working_dir.as_deref().filter(|w| !w.is_empty()) {
            if !w.starts_with('/') {
                return Err(EngineError::invalid(format!(
                    "the working directory {} is invalid: it needs to be an absolute path",
                    shown(w)
                )));
            }
        }
        if let Some(u) = &self.user {
            UserSpec::parse(&u.to_string())?;
        }
        for k in self.sysctls.keys() {
            check_sysctl(k)?;
        }
        if matches!(self.network, NetworkMode::Host) {
            if let Some(k) = self.sysctls.keys().find(|k| k.starts_with("net.")) {
                return Err(EngineError::invalid(format!(
                    "sysctl {k:?} not allowed in host network namespace"
                )));
            }
        }
        match self.log_driver.as_deref() {
            None | Some("json-file" | "local") => {
                self.log_limits()?;
            }
            Some("none") => {
                if !self.log_opts.is_empty() {
                    return Err(EngineError::invalid("invalid logging opts for driver none"));
                }
            }
            // Docker's daemon looks for a plugin of that name.
            Some(d) => {
                return Err(EngineError::not_found(format!(
                    "error looking up logging plugin {d}: plugin \"{d}\" not found"
                )))
            }
        }
        if !self.storage_opts.is_empty() {
            // Docker's overlay2 words on a file system without project quotas.
            return Err(EngineError::new(
                crate::ErrorKind::Other,
                "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
            ));
        }
        let r = &self.resources;
        self.validate_realtime()?;
        if let Some(c) = r.cpuset_cpus.as_deref().filter(|c| parse_cpuset(c).is_none()) {
            return Err(EngineError::invalid(format!("Invalid value {c} for cpuset cpus")));
        }
        if let Some(m) = r.cpuset_mems.as_deref().filter(|m| parse_cpuset(m).is_none()) {
            return Err(EngineError::invalid(format!("Invalid value {m} for cpuset mems")));
        }
        if r.nano_cpus.is_some_and(|n| n > 0) {
            if r.cpu_period.is_some_and(|p| p > 0) {
                return Err(EngineError::invalid(
                    "Conflicting options: Nano CPUs and CPU Period cannot both be set",
                ));
            }
            if r.cpu_quota.is_some_and(|q| q > 0) {
                return Err(EngineError::invalid(
                    "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
                ));
            }
        }
        if r.cpu_period.is_some_and(|p| p != 0 && !(1000..=1_000_000).contains(&p)) {
            return Err(EngineError::invalid(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
            ));
        }
        if r.cpu_quota.is_some_and(|q| q > 0 && q < 1000) {
            return Err(EngineError::invalid(
                "CPU cfs quota can not be less than 1ms (i.e. 1000)",
            ));
        }
        if let Some(res) = r.memory_reservation.filter(|m| *m > 0) {
            if res < MIN_MEMORY {
                return Err(EngineError::invalid("Minimum memory reservation allowed is 6MB"));
            }
            if r.memory.is_some_and(|m| m > 0 && m < res) {
                return Err(EngineError::invalid(
                    "Minimum memory limit can not be less than memory reservation limit, see usage",
                ));
            }
        }
        if let Some(sw) = r.memory_swappiness.filter(|s| *s != -1 && !(0..=100).contains(s)) {
            return Err(EngineError::invalid(format!(
                "Invalid value: {sw}, valid memory swappiness range is 0-100"
            )));
        }
        if let Some(adj) = r.oom_score_adj.filter(|a| !(-1000..=1000).contains(a)) {
            return Err(EngineError::invalid(format!(
                "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
            )));
        }
        if let Some(m) = r.memory {
            if m > 0 && m < MIN_MEMORY {
                return Err(EngineError::invalid("Minimum memory limit allowed is 6MB"));
            }
            if m > i64::MAX as u64 {
                return Err(EngineError::invalid(format!(
                    "invalid memory limit {m}: the largest is {} bytes",
                    i64::MAX
                )));
            }
        }
        match (r.memory_swap, r.memory) {
            (Some(_), None) => {
                return Err(EngineError::invalid(
                    "You should always set the Memory limit when using Memoryswap limit, see usage",
                ))
            }
            (Some(MemorySwap::Limit(s)), Some(m)) if m > 0 && s < m => {
                return Err(EngineError::invalid(
                    "Minimum memoryswap limit should be larger than memory limit, see usage",
                ))
            }
            _ => {}
        }
        for rule in &r.device_cgroup_rules {
            berth_runtime::spec::device_cgroup_rule(rule).map_err(|e| EngineError::invalid(e.to_string()))?;
        }
        if let Some(n) = r.nano_cpus.filter(|n| *n > 0) {
            let max = ncpu as u64 * 1_000_000_000;
            if !(MIN_NANO_CPUS..=max).contains(&n) {
                return Err(EngineError::invalid(format!(
                    "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.mounts {
            check_target(&m.target, "mount")?;
            let t = m.target.trim_end_matches('/').to_string();
            if !seen.insert(t.clone()) {
                return Err(EngineError::invalid(format!("Duplicate mount point: {t}")));
            }
            if let MountSource::Bind { path, .. } = &m.source {
                if !path.is_absolute() {
                    return Err(EngineError::invalid(format!(
                        "invalid mount config for type \"bind\": invalid mount path: {} mount path must be absolute",
                        shown(&path.display().to_string())
                    )));
                }
            }
            if let MountSource::Volume { name: Some(n), .. } = &m.source {
                if !valid_volume_name(n) {
                    return Err(EngineError::invalid(format!(
                        "invalid volume name {}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                        shown(n)
                    )));
                }
            }
        }
        // host, none and container: share or have no network stack: no
        // user-defined network can be joined beside them (the API's
        // NetworkingConfig, compose's networks:, several --network flags).
        if matches!(
            self.network,
            NetworkMode::None | NetworkMode::Host | NetworkMode::Container(_)
        ) && self
            .endpoints
            .iter()
            .any(|e| matches!(NetworkMode::parse(&e.network), Ok(NetworkMode::Network(_))))
        {
            return Err(EngineError::invalid(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes",
            ));
        }
        if self.auto_remove && self.restart != RestartPolicy::No {
            return Err(EngineError::invalid(
                "conflicting options: cannot specify both --restart and --rm",
            ));
        }
        if self.health.disabled && self.health.overrides() {
            return Err(EngineError::invalid(
                "--no-healthcheck conflicts with --health-* options",
            ));
        }
        for (what, d) in [
            ("Interval", self.health.interval),
            ("Timeout", self.health.timeout),
            ("StartPeriod", self.health.start_period),
            ("StartInterval", self.health.start_interval),
        ] {
            if d.is_some_and(|d| !d.is_zero() && d < Duration::from_millis(1)) {
                return Err(EngineError::invalid(format!(
                    "{what} in Healthcheck cannot be less than 1ms"
                )));
            }
        }
        Ok(())
    }
}

/// A container path: absolute, not `/`, no control characters; else why not.
fn target_problem(t: &str) -> Option<String> {
    if !t.starts_with('/') {
        Some(format!("the container path {} must be absolute", shown(t)))
    } else if t.trim_end_matches('/').is_empty() {
        Some("destination can't be '/'".into())
    } else if t.chars().any(char::is_control) {
        Some(format!("the container path {} holds control characters", shown(t)))
    } else {
        None
    }
}

fn check_target(t: &str, what: &str) -> Result<()> {
    match target_problem(t) {
        Some(why) => Err(EngineError::invalid(format!("invalid {what} {}: {why}", shown(t)))),
        None => Ok(()),
    }
}

/// An environment entry with a name: `KEY=VALUE`, or a bare `KEY` (which
/// unsets KEY, as dockerd takes it).
fn check_env(e: &str) -> Result<()> {
    if berth_runtime::env_key(e).is_empty() {
        return Err(EngineError::invalid(format!(
            "invalid environment variable: {}",
            shown_bare(e)
        )));
    }
    Ok(())
}

/// Like [`shown`] for text inside Docker's fixed wording, which does not
/// quote: plain when it is plain, escaped and quoted otherwise.
fn shown_bare(s: &str) -> String {
    let plain = s.len() <= 120 && s.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    if plain {
        s.to_string()
    } else {
        shown(s)
    }
}

// ---- Docker's syntaxes, shared by the fronts --------------------------------

/// One `-e` value: `KEY=VALUE` as it is; `KEY` takes the value `lookup`
/// gives (the front's own environment), and is dropped when there is
/// none. An empty name (`''`, `=x`) is refused with Docker's wording.
pub fn parse_env(item: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>> {
    let (k, v) = match item.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (item, None),
    };
    if k.is_empty() {
        return Err(EngineError::invalid_value(format!(
            "invalid environment variable: {}",
            shown_bare(item)
        )));
    }
    Ok(match v {
        Some(_) => Some(item.to_string()),
        None => lookup(k).map(|v| format!("{k}={v}")),
    })
}

/// One `-e` value, as the docker CLI sends it: [`parse_env`], except that
/// a `KEY` this front's environment does not set is kept bare, and so
/// unsets KEY in the container (an image's ENV included).
pub fn parse_env_flag(item: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    Ok(parse_env(item, lookup)?.unwrap_or_else(|| item.to_string()))
}

/// One `--label` value: `KEY=VALUE`, or `KEY` with an empty value.
pub fn parse_label(item: &str) -> Result<(String, String)> {
    let (k, v) = item.split_once('=').unwrap_or((item, ""));
    if k.is_empty() {
        return Err(EngineError::invalid_value(format!(
            "invalid label {}: the key is empty",
            shown(item)
        )));
    }
    Ok((k.to_string(), v.to_string()))
}

/// Docker's byte sizes (`32m`, `1g`, `512k`, `100000`, `1.5gb`), binary
/// units. `what` names the flag in the error (`--memory`).
pub fn parse_bytes(what: &str, s: &str) -> Result<u64> {
    let bad = || EngineError::invalid_value(format!("invalid {what} {}: use a size like 512k, 32m or 1g", shown(s)));
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(EngineError::invalid_value(format!(
            "invalid {what} {}: the value is too large (at most {} bytes)",
            shown(s),
            i64::MAX
        )));
    }
    Ok(bytes as u64)
}

/// A size as Docker's `units.FromHumanSize` reads it (decimal: `10m` is
/// 10,000,000 bytes), as the json-file driver's `max-size` is read.
fn parse_human_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().strip_suffix('b').unwrap_or(unit.trim());
    let exp = ["", "k", "m", "g", "t", "p"].iter().position(|u| *u == unit)?;
    let bytes = n * 1000f64.powi(exp as i32);
    (bytes.is_finite() && bytes < i64::MAX as f64).then_some(bytes as u64)
}

impl ContainerSpec {
    /// The json-file (and local) driver's `--log-opt max-size`/`max-file`,
    /// checked in the daemon's words; the other options Docker's driver
    /// takes are refused by name rather than ignored.
    pub fn log_limits(&self) -> Result<berth_runtime::logs::LogLimits> {
        let driver = self.log_driver.as_deref().unwrap_or("json-file");
        let mut limits = berth_runtime::logs::LogLimits {
            max_size: None,
            max_file: 1,
        };
        if driver == "none" {
            return Ok(limits);
        }
        for (k, v) in &self.log_opts {
            match k.as_str() {
                "max-size" => match parse_human_size(v) {
                    Some(n) if n > 0 => limits.max_size = Some(n),
                    Some(_) => return Err(EngineError::invalid("max-size must be a positive number")),
                    None => {
                        return Err(EngineError::invalid(format!(
                            "invalid size: '{v}' (--log-opt max-size takes a size like 10m)"
                        )))
                    }
                },
                "max-file" => match v.parse::<i64>() {
                    Ok(n) if n >= 1 => limits.max_file = n.min(u32::MAX as i64) as u32,
                    Ok(_) => return Err(EngineError::invalid("max-file cannot be less than 1")),
                    Err(_) => {
                        return Err(EngineError::invalid(format!(
                            "strconv.Atoi: parsing {}: invalid syntax",
                            shown(v)
                        )))
                    }
                },
                "compress" if matches!(v.as_str(), "false" | "0") => {}
                "compress" | "labels" | "labels-regex" | "env" | "env-regex" | "tag" => {
                    return Err(EngineError::invalid(format!(
                        "--log-opt {k}: berth's {driver} log does not take this option yet (max-size and max-file work)"
                    )))
                }
                _ => {
                    return Err(EngineError::invalid(format!(
                        "unknown log opt '{k}' for {driver} log driver"
                    )))
                }
            }
        }
        if limits.max_file > 1 && limits.max_size.is_none() {
            // Docker's driver keeps one file without a size to rotate at.
            limits.max_file = 1;
        }
        Ok(limits)
    }
}

/// `--cpus`: a decimal number of CPUs, in billionths (Docker's NanoCPUs).
/// `nan`, `inf` and anything finer than a billionth are refused with
/// Docker's wording; the range is checked by [`ContainerSpec::validate`].
pub fn parse_cpus(s: &str) -> Result<u64> {
    let t = s.trim();
    let bad = || {
        EngineError::invalid_value(format!(
            "invalid argument {} for \"--cpus\" flag: failed to parse {} as a rational number",
            shown(s),
            shown_bare(t)
        ))
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if frac.trim_end_matches('0').len() > 9 {
        return Err(EngineError::invalid_value(format!(
            "invalid argument {} for \"--cpus\" flag: value is too precise",
            shown(s)
        )));
    }
    let whole: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut f = frac.trim_end_matches('0').to_string();
    while f.len() < 9 {
        f.push('0');
    }
    let part: u64 = f.parse().map_err(|_| bad())?;
    whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(part))
        .ok_or_else(|| {
            EngineError::invalid_value(format!(
                "invalid argument {} for \"--cpus\" flag: value is too large",
                shown(s)
            ))
        })
}

/// A Go duration (`1s`, `500ms`, `1m30s`, `2h`, `0`).
pub fn parse_duration(s: &str) -> Result<Duration> {
    crate::containers::parse_duration_ns(s).map(Duration::from_nanos)
}

fn valid_volume_name(n: &str) -> bool {
    crate::containers::valid_name(n) || (n.len() == 1 && n.as_bytes()[0].is_ascii_alphanumeric())
}

/// A mode `-v` takes after the target.
fn is_volume_mode(o: &str) -> bool {
    matches!(
        o,
        "ro" | "rw"
            | "nocopy"
            | "copy"
            | "z"
            | "Z"
            | "private"
            | "rprivate"
            | "shared"
            | "rshared"
            | "slave"
            | "rslave"
    )
}

/// `-v SRC:DST[:OPTS]` or `-v DST[:OPTS]` (an anonymous volume). A SRC starting
/// with `/` or `.` is a host path (`.` relative to `cwd`, the front's
/// working directory); anything else names a volume.
pub fn parse_volume(v: &str, cwd: &Path) -> Result<Mount> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] => ("", *d, ""),
        // `-v /data:ro`: an anonymous volume with a mode, as Docker reads it.
        [d, o] if !o.starts_with('/') && o.split(',').all(is_volume_mode) => ("", *d, *o),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(EngineError::invalid_value(format!(
                "invalid volume specification: {} (use /host/path:/container/path[:ro] or name:/path)",
                shown(v)
            )))
        }
    };
    if let Some(why) = target_problem(dst) {
        return Err(EngineError::invalid_value(format!(
            "invalid volume specification: {}: {why}",
            shown(v)
        )));
    }
    let mut readonly = false;
    let mut propagation = String::new();
    let mut nocopy = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "nocopy" => nocopy = true,
            "copy" => nocopy = false,
            "z" | "Z" => {}
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => propagation = o.to_string(),
            _ => {
                return Err(EngineError::invalid_value(format!(
                    "invalid volume specification: {}: unknown option {} (use ro, rw or a propagation mode)",
                    shown(v),
                    shown(o)
                )))
            }
        }
    }
    let source = if src.is_empty() {
        MountSource::Volume {
            name: None,
            options: BTreeMap::new(),
            nocopy,
        }
    } else if src.starts_with('/') || src.starts_with('.') {
        MountSource::Bind {
            path: if src.starts_with('.') {
                cwd.join(src)
            } else {
                PathBuf::from(src)
            },
            create: true,
        }
    } else if valid_volume_name(src) {
        MountSource::Volume {
            name: Some(src.to_string()),
            options: BTreeMap::new(),
            nocopy,
        }
    } else {
        return Err(EngineError::invalid_value(format!(
            "invalid volume name {}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed; use an absolute path for a bind mount",
            shown(src)
        )));
    };
    Ok(Mount {
        target: dst.to_string(),
        source,
        readonly,
        propagation,
        origin: MountOrigin::Volume { mode: opts.to_string() },
    })
}

/// `--mount`'s fields, split at commas outside double quotes (Docker's
/// CSV: `"volume-opt=o=size=1m,uid=1000"` keeps its comma), quotes removed.
fn mount_fields(m: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in m.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("never empty").push(c),
        }
    }
    out
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…,readonly,…`. A
/// relative bind source is taken from `cwd`.
pub fn parse_mount(m: &str, cwd: &Path) -> Result<Mount> {
    let bad = |why: String| EngineError::invalid_value(format!("invalid --mount {}: {why}", shown(m)));
    let mut kind = "volume".to_string();
    let mut src = String::new();
    let mut dst = String::new();
    let mut readonly = false;
    let mut propagation = String::new();
    let mut options = Vec::new();
    let mut volume_options = BTreeMap::new();
    let mut nocopy = false;
    for field in mount_fields(m) {
        let field = field.as_str();
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => kind = v.to_string(),
            "source" | "src" => src = v.to_string(),
            "target" | "destination" | "dst" => dst = v.to_string(),
            "readonly" | "ro" => readonly = v.is_empty() || v == "true" || v == "1",
            "bind-propagation" => propagation = v.to_string(),
            "tmpfs-size" => options.push(format!("size={}", parse_bytes("tmpfs-size", v)?)),
            "tmpfs-mode" => options.push(format!("mode={v}")),
            "volume-opt" => {
                let (ok, ov) = v
                    .split_once('=')
                    .ok_or_else(|| bad(format!("volume-opt {} is not KEY=VALUE", shown(v))))?;
                volume_options.insert(ok.to_string(), ov.to_string());
            }
            "volume-nocopy" => {
                nocopy = match v {
                    "" | "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad(format!("invalid value for volume-nocopy: {}", shown(v)))),
                }
            }
            "consistency" | "bind-nonrecursive" | "volume-driver" | "volume-label" => {}
            _ => return Err(bad(format!("unknown field {}", shown(k)))),
        }
    }
    if dst.is_empty() {
        return Err(bad("target is required".into()));
    }
    if let Some(why) = target_problem(&dst) {
        return Err(bad(why));
    }
    let source = match kind.as_str() {
        "bind" => {
            if src.is_empty() {
                return Err(bad("source is required for a bind mount".into()));
            }
            MountSource::Bind {
                path: cwd.join(&src),
                create: false,
            }
        }
        "volume" => {
            if !src.is_empty() && !valid_volume_name(&src) {
                return Err(bad(format!("invalid volume name {}", shown(&src))));
            }
            MountSource::Volume {
                name: (!src.is_empty()).then_some(src),
                options: volume_options,
                nocopy,
            }
        }
        "tmpfs" => MountSource::Tmpfs { options },
        t => return Err(bad(format!("unknown type {} (use bind, volume or tmpfs)", shown(t)))),
    };
    Ok(Mount {
        target: dst,
        source,
        readonly,
        propagation,
        origin: MountOrigin::Mount,
    })
}

/// `--tmpfs /path[:opts]`.
pub fn parse_tmpfs(t: &str) -> Result<Mount> {
    let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
    check_target(dst, "--tmpfs")?;
    let options: Vec<String> = opts.split(',').filter(|o| !o.is_empty()).map(str::to_string).collect();
    let readonly = options.iter().any(|o| o == "ro");
    Ok(Mount {
        target: dst.to_string(),
        source: MountSource::Tmpfs {
            options: options.into_iter().filter(|o| o != "ro" && o != "rw").collect(),
        },
        readonly,
        propagation: String::new(),
        origin: MountOrigin::Tmpfs {
            options: opts.to_string(),
        },
    })
}

/// `--ulimit name=soft[:hard]` (`-1` or `unlimited` for no limit).
pub fn parse_ulimit(u: &str) -> Result<Ulimit> {
    let bad = || {
        EngineError::invalid_value(format!(
            "invalid --ulimit {}: use name=soft[:hard], e.g. nofile=1024:2048",
            shown(u)
        ))
    };
    let (name, vals) = u.split_once('=').ok_or_else(bad)?;
    if name.is_empty() {
        return Err(bad());
    }
    let parse = |s: &str| -> Result<u64> {
        if s == "-1" || s == "unlimited" {
            Ok(u64::MAX)
        } else {
            s.parse().map_err(|_| bad())
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((s, h)) => (parse(s)?, parse(h)?),
        None => {
            let v = parse(vals)?;
            (v, v)
        }
    };
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `-p` values: Docker's `[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`.
pub fn parse_publish(p: &str) -> Result<Vec<PortMapping>> {
    Ok(berth_net::parse_publish(p)?)
}

/// `--restart`: `no`, `on-failure[:N]`, `always`, `unless-stopped`.
pub fn parse_restart(s: &str) -> Result<RestartPolicy> {
    RestartPolicy::parse(s).map_err(|e| EngineError::invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn invalid(r: Result<impl std::fmt::Debug>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        e.to_string()
    }

    #[test]
    fn users_outside_dockers_id_range_are_refused() {
        assert_eq!(UserSpec::parse("1000:1000").unwrap().to_string(), "1000:1000");
        assert_eq!(UserSpec::parse("nobody").unwrap().group, None);
        assert_eq!(UserSpec::parse("2147483647").unwrap().user, "2147483647");
        for bad in ["4294967295", "2147483648", "1000:4294967295", "-1", "0:-5"] {
            let m = invalid(UserSpec::parse(bad));
            assert!(m.contains("uids and gids must be in range 0-2147483647"), "{bad}: {m}");
        }
        invalid(UserSpec::parse(""));
        invalid(UserSpec::parse("a:"));
    }

    #[test]
    fn signals_are_checked_when_given() {
        for ok in ["SIGTERM", "TERM", "15", "sigusr1", "SIGRTMIN+3"] {
            assert_eq!(Signal::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(invalid(Signal::parse("SIGBOGUS")), "Invalid signal: SIGBOGUS");
        invalid(Signal::parse("0"));
        invalid(Signal::parse("65"));
        assert_eq!(invalid(Signal::parse("\u{1b}[2J")), "Invalid signal: \"\\u{1b}[2J\"");
    }

    #[test]
    fn cpus_are_rational_and_in_range() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_cpus("0.01").unwrap(), 10_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        assert_eq!(parse_cpus(".5").unwrap(), 500_000_000);
        for bad in ["nan", "inf", "-1", "1e3", "", "."] {
            let m = invalid(parse_cpus(bad));
            assert!(m.contains("as a rational number"), "{bad}: {m}");
        }
        assert!(invalid(parse_cpus("0.0000000001")).contains("value is too precise"));
        let mut s = ContainerSpec::new("bb");
        s.resources.nano_cpus = Some(parse_cpus("0.0001").unwrap());
        assert_eq!(
            invalid(s.validate_for(2)),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        s.resources.nano_cpus = Some(parse_cpus("3").unwrap());
        invalid(s.validate_for(2));
        s.resources.nano_cpus = Some(parse_cpus("0").unwrap());
        s.validate_for(2).unwrap();
    }

    #[test]
    fn host_none_and_container_modes_join_no_user_network() {
        for mode in ["host", "none", "container:db"] {
            let mut s = ContainerSpec::new("bb");
            s.network = NetworkMode::parse(mode).unwrap();
            s.validate_for(1).unwrap();
            s.endpoints.push(EndpointSpec {
                network: "app-net".into(),
                ..Default::default()
            });
            assert!(invalid(s.validate_for(1)).starts_with("conflicting options"), "{mode}");
        }
        let mut s = ContainerSpec::new("bb");
        s.network = NetworkMode::parse("app-net").unwrap();
        for n in ["app-net", "other-net"] {
            s.endpoints.push(EndpointSpec {
                network: n.into(),
                ..Default::default()
            });
        }
        s.validate_for(1).unwrap();
    }

    #[test]
    fn sizes_refuse_what_does_not_fit() {
        assert_eq!(parse_bytes("--memory", "32m").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("--memory", "1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("--memory", "64MB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("--memory", "1024").unwrap(), 1024);
        assert!(invalid(parse_bytes("--memory", "lots")).starts_with("invalid --memory \"lots\""));
        assert!(invalid(parse_bytes("--memory", "99999999999999p")).contains("too large"));
        assert!(invalid(parse_bytes("--memory", "1e400")).contains("--memory"));
        let mut s = ContainerSpec::new("bb");
        s.resources.memory = Some(1024);
        assert_eq!(invalid(s.validate_for(1)), "Minimum memory limit allowed is 6MB");
    }

    #[test]
    fn environment_entries_need_a_name() {
        let none = |_: &str| None;
        let home = |k: &str| (k == "HOME").then(|| "/root".to_string());
        assert_eq!(parse_env("A=1", &none).unwrap().as_deref(), Some("A=1"));
        assert_eq!(parse_env("A=", &none).unwrap().as_deref(), Some("A="));
        assert_eq!(parse_env("HOME", &home).unwrap().as_deref(), Some("HOME=/root"));
        assert_eq!(parse_env("UNSET", &home).unwrap(), None);
        assert_eq!(parse_env_flag("UNSET", &home).unwrap(), "UNSET");
        assert_eq!(parse_env_flag("HOME", &home).unwrap(), "HOME=/root");
        assert_eq!(invalid(parse_env("", &none)), "invalid environment variable: ");
        assert_eq!(invalid(parse_env("=x", &none)), "invalid environment variable: =x");
        let mut s = ContainerSpec::new("bb");
        s.env = vec!["=x".into()];
        invalid(s.validate_for(1));
    }

    #[test]
    fn volumes_and_mounts() {
        let cwd = Path::new("/work");
        let m = parse_volume("/a:/b:ro", cwd).unwrap();
        assert!(matches!(&m.source, MountSource::Bind { path, create: true } if path == Path::new("/a")));
        assert!(m.readonly);
        let m = parse_volume("./x:/b", cwd).unwrap();
        assert!(matches!(&m.source, MountSource::Bind { path, .. } if path == Path::new("/work/./x")));
        let m = parse_volume("data:/b", cwd).unwrap();
        assert_eq!(
            m.source,
            MountSource::Volume {
                name: Some("data".into()),
                options: BTreeMap::new(),
                nocopy: false,
            }
        );
        assert_eq!(
            parse_volume("/b", cwd).unwrap().source,
            MountSource::Volume {
                name: None,
                options: BTreeMap::new(),
                nocopy: false,
            }
        );
        assert!(matches!(
            parse_volume("data:/b:nocopy", cwd).unwrap().source,
            MountSource::Volume { nocopy: true, .. }
        ));
        assert!(matches!(
            parse_mount("src=data,dst=/b,volume-nocopy", cwd).unwrap().source,
            MountSource::Volume { nocopy: true, .. }
        ));
        invalid(parse_volume("a:b", cwd));
        invalid(parse_volume("/a:/b:bogus", cwd));
        let m = invalid(parse_volume("src:/", cwd));
        assert!(m.contains("destination can't be '/'"), "{m}");
        invalid(parse_volume("/a://", cwd));

        let m = parse_mount("type=bind,source=/tmp,target=/x,readonly", cwd).unwrap();
        assert!(m.readonly && matches!(m.source, MountSource::Bind { create: false, .. }));
        let m = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m", cwd).unwrap();
        assert_eq!(
            m.source,
            MountSource::Tmpfs {
                options: vec!["size=1048576".into()]
            }
        );
        invalid(parse_mount("type=bind,target=/x", cwd));
        invalid(parse_mount("type=nfs,target=/x", cwd));
        invalid(parse_mount("type=volume,target=/", cwd));
        invalid(parse_tmpfs("/"));
        assert!(
            parse_tmpfs("/run:rw,size=64m").unwrap().source
                == MountSource::Tmpfs {
                    options: vec!["size=64m".into()]
                }
        );

        let mut s = ContainerSpec::new("bb");
        s.mounts = vec![parse_tmpfs("/x").unwrap(), parse_volume("/y:/x/", cwd).unwrap()];
        assert!(invalid(s.validate_for(1)).contains("Duplicate mount point: /x"));
    }

    #[test]
    fn ulimits_and_other_flags() {
        assert_eq!(
            parse_ulimit("nofile=10:20").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 10,
                hard: 20
            }
        );
        assert_eq!(parse_ulimit("nproc=5").unwrap().hard, 5);
        invalid(parse_ulimit("nofile"));
        assert_eq!(PullPolicy::parse("always").unwrap(), PullPolicy::Always);
        invalid(PullPolicy::parse("sometimes"));
        assert_eq!(
            NetworkMode::parse("container:web").unwrap(),
            NetworkMode::Container("web".into())
        );
        assert_eq!(
            NetworkMode::parse("app-net").unwrap(),
            NetworkMode::Network("app-net".into())
        );
        assert_eq!(NetworkMode::parse("no/such").unwrap_err().kind(), ErrorKind::NotFound);
        invalid(parse_restart("sometimes"));
    }

    #[test]
    fn messages_never_echo_raw_control_characters_or_huge_input() {
        let huge = format!("{}:/x", "\0".repeat(100_000));
        let m = invalid(parse_volume(&huge, Path::new("/")));
        assert!(m.len() < 1000, "{}", m.len());
        assert!(!m.contains('\0'));
        let m = invalid(parse_bytes("--memory", "1\u{202e}g"));
        assert!(!m.contains('\u{202e}') && m.contains("\\u{202e}"), "{m}");
    }
}
