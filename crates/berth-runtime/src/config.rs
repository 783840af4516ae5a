//! The container's configuration as the engine hands it to this crate, and
//! Docker's ENTRYPOINT/CMD composition rule.
//!
//! This module is pure data and pure functions: it must never touch the file
//! system, spawn processes or consult the host.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Everything needed to create one container; serialized as
/// `containers/<id>/berth.json` by the engine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub image_ref: String,
    /// Final argv, already composed by [`resolve_args`].
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// `uid[:gid]` or `name[:group]`, resolved against the rootfs' /etc/passwd and /etc/group.
    pub user: String,
    pub hostname: String,
    pub domainname: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub labels: BTreeMap<String, String>,
    /// e.g. "SIGTERM", "15", "TERM"; `None` means SIGTERM.
    pub stop_signal: Option<String>,
    /// Seconds to wait after the stop signal before SIGKILL; `None` means 10.
    pub stop_timeout: Option<u32>,
    pub mounts: Vec<MountSpec>,
    pub read_only: bool,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `seccomp=<path>|unconfined`, `no-new-privileges[=true|false]`; `apparmor=...` and `label=...` are ignored with a warning.
    pub security_opt: Vec<String>,
    /// `--device` values: `host[:container[:perms]]`.
    pub devices: Vec<String>,
    pub init: bool,
    /// "none" | "host" | "private" (default: own network namespace with loopback up)
    /// | "container:<path-to-netns>" / "ns:<path>" to join an existing namespace.
    pub network_mode: String,
    /// The PID namespace: `""` its own, `"host"`, or `"ns:<path>"` to join.
    pub pid_mode: String,
    /// The IPC namespace: `""` its own, `"none"` its own without
    /// `/dev/shm`, `"shareable"` its own with `/dev/shm` beside the
    /// container ([`crate::mount::SHM_DIR`]) for others to join, `"host"`
    /// (the host's `/dev/shm` bound), or `"ns:<path>"` to join (its
    /// owner's `/dev/shm` is set by whoever starts it).
    pub ipc_mode: String,
    /// The UTS namespace: `""` its own (named `hostname`), `"host"`, or
    /// `"ns:<path>"`; a shared one keeps its name, `hostname` only names it
    /// in the environment and `/etc/hostname`.
    pub uts_mode: String,
    /// The cgroup namespace: `""` its own, or `"host"`.
    pub cgroupns_mode: String,
    /// Published ports (`-p`/`-P`), forwarded by the monitor into the
    /// container's own network namespace.
    pub ports: Vec<berth_net::PortMapping>,
    pub resources: Resources,
    pub restart_policy: RestartPolicy,
    pub healthcheck: Option<HealthConfig>,
    pub auto_remove: bool,
    /// The image's SHELL, used for CMD-SHELL healthchecks (default `["/bin/sh","-c"]`).
    pub shell: Vec<String>,
    /// `--userns` other than `host`: the container's own user namespace
    /// with these maps (instead of a rootless user's default ones).
    pub id_mappings: Option<crate::idmap::IdMappings>,
    /// The size of /dev/shm in bytes; `None` is Docker's 64 MiB.
    pub shm_size: Option<u64>,
    /// `--log-driver`: `""`/`json-file`/`local` keep the log, `none` keeps nothing.
    pub log_driver: String,
    /// `--sysctl`: kernel parameters of the container's namespaces (OCI
    /// `linux.sysctl`), checked by the engine.
    pub sysctl: BTreeMap<String, String>,
    /// `--annotation`: OCI annotations, over the labels of the same key.
    pub annotations: BTreeMap<String, String>,
    /// `--group-add`: supplementary groups of the container's process, by
    /// number or by a name of the image's /etc/group.
    pub group_add: Vec<String>,
    /// `--log-opt max-size`/`max-file`: where the log is rotated and how
    /// many files are kept (the default: one file that grows).
    pub log_limits: crate::logs::LogLimits,
}

/// What kind of mount a [`MountSpec`] is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A host path bound into the container.
    #[default]
    Bind,
    /// A named/anonymous volume; `source` is the resolved host directory.
    Volume,
    /// A tmpfs; `source` is ignored.
    Tmpfs,
}

/// One `-v`/`--mount`/`--tmpfs` entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct MountSpec {
    pub kind: MountKind,
    pub source: PathBuf,
    pub target: String,
    pub readonly: bool,
    /// "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"; empty = rprivate.
    pub propagation: String,
    /// Extra mount options (tmpfs: "size=64m", "mode=1777", "noexec", ...).
    pub options: Vec<String>,
}

/// Resource limits (`--memory`, `--cpus`, `--ulimit`, ...).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct Resources {
    /// Bytes; `None` = unlimited.
    pub memory: Option<i64>,
    /// Memory + swap in bytes, Docker's `--memory-swap`; `-1` = unlimited swap;
    /// `None` with `memory` set = twice the memory (Docker's default).
    pub memory_swap: Option<i64>,
    /// Number of CPUs (fractional), turned into a CFS quota over a 100ms period.
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    /// `None` or a value <= 0 = unlimited.
    pub pids_limit: Option<i64>,
    /// (name without RLIMIT_ prefix, e.g. "nofile"; soft; hard)
    pub ulimits: Vec<(String, u64, u64)>,
    /// Block IO weight and throttles (`--blkio-weight`, `--device-read-bps`, …).
    pub blkio: BlockIo,
    /// Extra device cgroup rules (`--device-cgroup-rule`): `TYPE MAJOR:MINOR ACCESS`,
    /// `*` for any number, checked by the engine.
    pub device_cgroup_rules: Vec<String>,
    /// `--cgroup-parent`: the container's cgroup is `<parent>/<id>`
    /// (absolute; `None`: berth's own `/berth`).
    pub cgroup_parent: Option<String>,
    /// `--cpu-rt-period` (µs), OCI `linux.resources.cpu.realtimePeriod`.
    pub cpu_rt_period: Option<u64>,
    /// `--cpu-rt-runtime` (µs), OCI `linux.resources.cpu.realtimeRuntime`.
    pub cpu_rt_runtime: Option<i64>,
    /// `--cpuset-cpus`, OCI `cpu.cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`, OCI `cpu.mems`.
    pub cpuset_mems: Option<String>,
    /// `--cpu-period` (µs), OCI `cpu.period`.
    pub cpu_period: Option<u64>,
    /// `--cpu-quota` (µs), OCI `cpu.quota`.
    pub cpu_quota: Option<i64>,
    /// `--memory-reservation` (bytes), OCI `memory.reservation`.
    pub memory_reservation: Option<i64>,
    /// `--memory-swappiness` (0–100), OCI `memory.swappiness`.
    pub memory_swappiness: Option<u64>,
    /// `--oom-kill-disable`, OCI `memory.disableOOMKiller`.
    pub oom_kill_disable: bool,
    /// `--oom-score-adj`, OCI `process.oomScoreAdj`.
    pub oom_score_adj: Option<i32>,
}

/// Block IO limits, by device number (OCI `linux.resources.blockIO`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct BlockIo {
    /// Relative weight, 10–1000.
    pub weight: Option<u16>,
    /// Per-device weights: (major, minor, weight).
    pub weight_device: Vec<(i64, i64, u16)>,
    /// Bytes per second read: (major, minor, rate).
    pub read_bps: Vec<(i64, i64, u64)>,
    /// Bytes per second written.
    pub write_bps: Vec<(i64, i64, u64)>,
    /// Reads per second.
    pub read_iops: Vec<(i64, i64, u64)>,
    /// Writes per second.
    pub write_iops: Vec<(i64, i64, u64)>,
}

impl BlockIo {
    /// Nothing asked for.
    pub fn is_empty(&self) -> bool {
        *self == BlockIo::default()
    }
}

/// `--restart` policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    /// Restart on a non-zero exit, at most `max` times (0 = no limit).
    OnFailure {
        max: u32,
    },
    Always,
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses Docker's `--restart` syntax: `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    pub fn parse(s: &str) -> Result<Self, crate::RuntimeError> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let bad = || {
            crate::RuntimeError::InvalidConfig(format!(
                "invalid restart policy {s:?}: use no, always, unless-stopped or on-failure[:max-retries]"
            ))
        };
        match (name, arg) {
            ("" | "no", None) => Ok(RestartPolicy::No),
            ("always", None) => Ok(RestartPolicy::Always),
            ("unless-stopped", None) => Ok(RestartPolicy::UnlessStopped),
            ("on-failure", None) => Ok(RestartPolicy::OnFailure { max: 0 }),
            ("on-failure", Some(n)) => n.parse().map(|max| RestartPolicy::OnFailure { max }).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

/// A HEALTHCHECK, in Docker's representation. Durations are nanoseconds as in
/// the image config; zero means Docker's default.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct HealthConfig {
    /// `["CMD", arg...]`, `["CMD-SHELL", "command"]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval: u64,
    pub timeout: u64,
    pub start_period: u64,
    pub start_interval: u64,
    pub retries: u32,
}

/// The name of an environment entry: `KEY` of `KEY=VALUE`, or the bare
/// `KEY` (which unsets it).
pub fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Docker's rule for laying environment entries over others (a
/// container's over the defaults, an exec's over the container's):
/// `KEY=VALUE` replaces KEY where it stands or is appended; a bare `KEY`
/// removes it.
pub fn replace_or_append_env(env: &mut Vec<String>, overrides: &[String]) {
    for e in overrides {
        if !e.contains('=') {
            env.retain(|x| env_key(x) != e);
            continue;
        }
        let k = env_key(e);
        match env.iter_mut().find(|x| env_key(x) == k) {
            Some(slot) => slot.clone_from(e),
            None => env.push(e.clone()),
        }
    }
}

/// Docker's rule for combining ENTRYPOINT and CMD: the effective
/// ENTRYPOINT and CMD (what `inspect` shows); the process runs the one
/// followed by the other.
///
/// * `override_entrypoint`: `None` keeps the image's ENTRYPOINT; `Some(v)`
///   replaces it (`Some(&[])` is `--entrypoint ''`, which clears it) and
///   also discards the image's CMD.
/// * non-empty `user_args` replace CMD.
pub fn entrypoint_and_cmd(
    image_entrypoint: &[String],
    image_cmd: &[String],
    override_entrypoint: Option<&[String]>,
    user_args: &[String],
) -> (Vec<String>, Vec<String>) {
    let (entrypoint, default_cmd): (Vec<String>, &[String]) = match override_entrypoint {
        Some(ep) => (ep.iter().filter(|s| !s.is_empty()).cloned().collect(), &[]),
        None => (image_entrypoint.to_vec(), image_cmd),
    };
    let cmd = if user_args.is_empty() {
        default_cmd.to_vec()
    } else {
        user_args.to_vec()
    };
    (entrypoint, cmd)
}

/// The process's argv by [`entrypoint_and_cmd`]: ENTRYPOINT followed by
/// CMD. An empty result means "no command specified", which the caller
/// must report.
pub fn resolve_args(
    image_entrypoint: &[String],
    image_cmd: &[String],
    override_entrypoint: Option<Vec<String>>,
    user_args: Vec<String>,
) -> Vec<String> {
    let (mut out, cmd) = entrypoint_and_cmd(image_entrypoint, image_cmd, override_entrypoint.as_deref(), &user_args);
    out.extend(cmd);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_entries_replace_in_place_append_or_unset() {
        let mut env = vec!["PATH=/usr/bin".to_string(), "HOSTNAME=h".into(), "TERM=xterm".into()];
        let over: Vec<String> = ["TERM=vt100", "Q", "PATH=/bin", "Z=img", "HOSTNAME"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        replace_or_append_env(&mut env, &over);
        assert_eq!(env, ["PATH=/bin", "TERM=vt100", "Z=img"]);
        assert_eq!(env_key("A=b=c"), "A");
        assert_eq!(env_key("A"), "A");
    }
}
