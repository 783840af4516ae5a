//! `run`/`create` flags of Docker's that berth parses but cannot honour yet
//! (the engine's `ContainerSpec` has no field for them). Each is accepted
//! so a script's command line parses and `--help` lists what Docker's
//! does; a value that would change what the container gets is refused in
//! so many words, never silently dropped (a memory reservation or a sysctl
//! that quietly does nothing is worse than an error). Values that ask for
//! what berth does anyway (`--log-driver json-file`,
//! `--volume-driver local`, `--disable-content-trust`, …) are accepted.
//!
//! The network flags (`--dns`, `--add-host`, `--ip`, …) are not here: the
//! network wiring fills them into the spec.

use anyhow::{bail, Result};
use berth_engine::spec;

/// A flag value the engine's parser `parse` takes, kept as written; its
/// refusal is the flag's error (Docker's `invalid argument … for … flag`).
fn checked<T>(parse: fn(&str) -> berth_engine::Result<T>) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |s: &str| parse(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// `--device-cgroup-rule`, checked as the docker CLI checks it.
fn device_cgroup_rule(s: &str) -> Result<String, String> {
    berth_runtime::spec::device_cgroup_rule(s)
        .map(|_| s.to_string())
        .map_err(|e| match e {
            berth_runtime::RuntimeError::InvalidConfig(m) => m,
            e => e.to_string(),
        })
}

#[derive(clap::Args, Debug, Default)]
pub struct MoreRunArgs {
    /// Expose a port or a range of ports
    #[arg(long, value_name = "PORT[/PROTO]", value_parser = checked(spec::parse_expose))]
    pub expose: Vec<String>,
    /// Size of /dev/shm
    #[arg(long, value_name = "BYTES")]
    pub shm_size: Option<String>,
    /// IPC mode to use (none, private, shareable, host, container:NAME)
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,
    /// PID namespace to use (host, container:NAME)
    #[arg(long, value_name = "MODE")]
    pub pid: Option<String>,
    /// UTS namespace to use (host)
    #[arg(long, value_name = "MODE")]
    pub uts: Option<String>,
    /// Sysctl options
    #[arg(long, value_name = "KEY=VALUE", value_parser = checked(spec::parse_sysctl))]
    pub sysctl: Vec<String>,
    /// Logging driver for the container (json-file, local, none)
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Log driver options (json-file: max-size, max-file)
    #[arg(long, value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long, value_name = "CONTAINER[:ro|rw]")]
    pub volumes_from: Vec<String>,
    /// GPU devices to add to the container (no GPU driver: refused as Docker's daemon refuses it without one)
    #[arg(long, value_name = "GPU-REQUEST")]
    pub gpus: Option<String>,
    /// Add additional groups to join
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long, value_name = "host|private")]
    pub cgroupns: Option<String>,
    /// Optional parent cgroup for the container
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "0-3,0,1")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "0-3,0,1")]
    pub cpuset_mems: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Limit CPU real-time period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_rt_period: Option<i64>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU count (Windows only)
    #[arg(long, value_name = "N")]
    pub cpu_count: Option<String>,
    /// CPU percent (Windows only)
    #[arg(long, value_name = "N")]
    pub cpu_percent: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "BYTES")]
    pub memory_reservation: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Kernel memory limit (deprecated; discarded with a warning)
    #[arg(long, value_name = "BYTES")]
    pub kernel_memory: Option<String>,
    /// Disable OOM Killer
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
    /// Block IO weight (relative device weight)
    #[arg(long, value_name = "DEVICE:WEIGHT", value_parser = checked(spec::parse_weight_device))]
    pub blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long, value_name = "DEVICE:RATE", value_parser = checked(spec::parse_throttle_bps))]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long, value_name = "DEVICE:RATE", value_parser = checked(spec::parse_throttle_bps))]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long, value_name = "DEVICE:RATE", value_parser = checked(spec::parse_throttle_iops))]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long, value_name = "DEVICE:RATE", value_parser = checked(spec::parse_throttle_iops))]
    pub device_write_iops: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long, value_name = "RULE", value_parser = device_cgroup_rule)]
    pub device_cgroup_rule: Vec<String>,
    /// Maximum IO bandwidth limit for the system drive (Windows only)
    #[arg(long, value_name = "BYTES")]
    pub io_maxbandwidth: Option<String>,
    /// Maximum IOps limit for the system drive (Windows only)
    #[arg(long, value_name = "N")]
    pub io_maxiops: Option<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long, value_name = "KEY=VALUE", value_parser = checked(spec::parse_annotation))]
    pub annotation: Vec<String>,
    /// Storage driver options for the container (overlay without quotas: refused as Docker's)
    #[arg(long, value_name = "OPT")]
    pub storage_opt: Vec<String>,
    /// Container IPv4/IPv6 link-local addresses
    #[arg(long, value_name = "IP", value_parser = super::flags::link_local_ip)]
    pub link_local_ip: Vec<std::net::IpAddr>,
    /// Optional volume driver for the container (local only)
    #[arg(long, value_name = "DRIVER")]
    pub volume_driver: Option<String>,
    /// Container isolation technology (default only)
    #[arg(long, value_name = "default")]
    pub isolation: Option<String>,
    /// Skip image verification (berth verifies digests, never signatures: accepted)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = super::flags::parse_go_bool)]
    pub disable_content_trust: bool,
    /// Bind mount the Docker API socket (berth's service's) and the logins berth has
    #[arg(long)]
    pub use_api_socket: bool,
}

impl MoreRunArgs {
    /// Refuses a flag whose value would change what the container gets,
    /// naming it; accepts the ones that ask for what berth does anyway.
    pub fn check(&self) -> Result<()> {
        // Docker's CLI refuses these before it asks the daemon.
        for (flag, v) in [("--cpu-count", &self.cpu_count), ("--cpu-percent", &self.cpu_percent)] {
            if v.is_some() {
                // Its words alone, exit 1 (not a daemon error).
                eprintln!("\"{flag}\" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux");
                return Err(berth_engine::EngineError::exit(1, "").into());
            }
        }
        // Docker's daemon, with no GPU driver (berth has none).
        if self.gpus.is_some() {
            return Err(berth_engine::EngineError::invalid(
                "could not select device driver \"\" with capabilities: [[gpu]]",
            )
            .into());
        }
        for (flag, v) in [
            ("--io-maxbandwidth", &self.io_maxbandwidth),
            ("--io-maxiops", &self.io_maxiops),
        ] {
            if v.is_some() {
                bail!("invalid argument {flag}: Windows only");
            }
        }
        let default_only: &[(&str, &Option<String>, &[&str])] = &[
            ("--volume-driver", &self.volume_driver, &["local", ""]),
            ("--isolation", &self.isolation, &["default", ""]),
        ];
        for (flag, v, ok) in default_only.iter().copied() {
            if let Some(v) = v {
                if !ok.contains(&v.as_str()) {
                    bail!("{flag} {v}: berth supports only {}", ok[..ok.len() - 1].join(" or "));
                }
            }
        }
        Ok(())
    }
}
