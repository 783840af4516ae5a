//! berth-runtime: from an image config and `docker run` options to a
//! running, supervised container, through an OCI runtime CLI (runc, crun,
//! youki), without a daemon.
//!
//! * [`binfmt`]: which CPU architectures run here, and qemu's binfmt_misc handlers.
//! * [`config`]: the container configuration and Docker's ENTRYPOINT/CMD rule.
//! * [`spec`]: configuration → OCI runtime spec with Docker's defaults.
//! * [`seccomp`]: the default seccomp profile.
//! * [`mount`]: overlay root file systems; [`idmap`]: user namespaces and idmapped layers.
//! * [`oci`]: the OCI runtime command line.
//! * [`cgroup_warm`]: overlaps the kernel's wait of a cgroup attach with the start.
//! * [`monitor`]: the per-container monitor (logs, exit, restarts, health);
//!   [`spare`]: one started ahead of its container, for a long-lived front.
//! * [`attach`]: the monitor's attach socket and the client of `run -it`, `attach`.
//! * [`streams`]: the caller's stdio, passed in (never this process's own).
//! * [`term`]: raw mode, window size and forwarded signals, for a front with a terminal.
//! * [`state`], [`logs`], [`exec`], [`health`], [`ops`]: what the CLI reads and does.
//! * [`watch`]: woken by a container directory's changes and a process's end, not polling.
//!
//! This crate never touches the engine's database or image store; it works
//! on a container directory the engine prepared.

pub mod attach;
pub mod binfmt;
pub mod cgroup_warm;
pub mod config;
pub mod error;
pub mod exec;
pub mod health;
pub mod idmap;
pub mod logs;
pub mod monitor;
pub mod mount;
pub mod oci;
pub mod ops;
pub mod seccomp;
pub mod spare;
pub mod spec;
pub mod state;
pub mod streams;
pub mod term;
pub mod warm;
pub mod watch;

pub use attach::{AttachClient, AttachEnd, AttachOptions};
pub use cgroup_warm::{warm_cgroup_attach, AttachWarmer};
pub use config::{
    entrypoint_and_cmd, env_key, replace_or_append_env, resolve_args, ContainerConfig, HealthConfig, MountKind,
    MountSpec, Resources, RestartPolicy,
};
pub use error::{Result, RuntimeError};
pub use exec::{exec, ExecOptions};
pub use logs::{read_logs, LogOptions};
pub use monitor::{monitor_main, spawn_monitor, spawn_monitor_with, MonitorOptions};
pub use mount::{mount_overlay, mount_overlay_opts, unmount};
pub use oci::{OciRuntime, OciState};
pub use ops::{kill, pause, stats, stop, top, unpause, update_resources, BlkioEntry, NetCounters, ProcessInfo, Stats};
pub use spec::build_spec;
pub use state::{read_state, ContainerState, Health, HealthLog};
pub use streams::{
    control_channel, ConsoleSize, Control, ControlReceiver, ControlSender, StreamIn, StreamOut, Streams,
};
