//! `create` (and the first half of `run`): a [`ContainerSpec`] plus the
//! image's config → container directory (`berth.json`, `config.json`,
//! `upper/ work/ rootfs/`), volumes, and the database record, in that order.
//! A failure at any step removes what the earlier steps made: no
//! half-created container is ever visible.
//!
//! The spec is validated before anything is touched; nothing here reads
//! the caller's environment or files it names (fronts resolve those).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use berth_runtime::{
    entrypoint_and_cmd, ContainerConfig, HealthConfig, MountKind, MountSpec, Resources, RestartPolicy,
};
use berth_store::{ContainerRecord, ImageRecord, Reference, StoreError};
use serde_json::{json, Value};

use super::record::{ContainerDoc, MountPoint};
use super::{random_hex, random_name, valid_name, write_atomic, ROOTFS, UPPER, WORK};
use crate::error::{bail, Result};
use crate::spec::{ContainerSpec, HealthSpec, MemorySwap, MountOrigin, MountSource, NetworkMode, PullPolicy};
use crate::volumes::VolumeMount;
use crate::{now_rfc3339, Engine, EngineError};

/// Docker's `/dev/shm` size when none is asked for (what inspect shows).
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// What `create` made.
#[derive(Debug)]
pub struct Created {
    /// The container's full ID.
    pub id: String,
    /// Its name (given or picked).
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// What the user should know (`Published ports are discarded …`).
    pub warnings: Vec<String>,
}

/// The image named by a `run`/`create` argument, with Docker's wording
/// when it is missing ([`ImageMissing`]).
pub fn image_for_run(engine: &Engine, word: &str) -> Result<ImageRecord> {
    match engine.store.resolve_image(word) {
        Ok(i) => Ok(i),
        Err(StoreError::ImageNotFound(_)) => {
            let shown = Reference::parse(word)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| word.to_string());
            Err(anyhow!(ImageMissing {
                shown,
                word: word.to_string()
            })
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// [`image_for_run`] for `platform` (`--platform`): the name's variant for
/// it; a name the store has only for other platforms is missing (so that
/// `run` pulls the platform asked for, as Docker does).
pub fn image_for_platform(engine: &Engine, word: &str, platform: Option<&str>) -> Result<ImageRecord> {
    let Some(p) = platform.filter(|p| !p.is_empty()) else {
        return image_for_run(engine, word);
    };
    let want = berth_store::Platform::parse(p).map_err(|e| EngineError::invalid_value(e.to_string()))?;
    match engine.store.resolve_image_for(word, &want) {
        Ok(Some(i)) => Ok(i),
        Ok(None) | Err(StoreError::ImageNotFound(_)) => {
            let shown = Reference::parse(word)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| word.to_string());
            Err(anyhow!(ImageMissing {
                shown,
                word: word.to_string()
            })
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// A `run`/`create` image that is not in the store.
#[derive(Debug, thiserror::Error)]
#[error("No such image: {word}")]
pub struct ImageMissing {
    /// `name:tag` as Docker prints it in "Unable to find image … locally".
    pub shown: String,
    /// The name as given.
    pub word: String,
}

/// Docker's `Config.Env`: the caller's entries as given (a bare `KEY`
/// unsets it in the process), then the image's whose names the caller did
/// not give.
fn merge_env(image: &[String], caller: &[String]) -> Vec<String> {
    use berth_runtime::env_key;
    let given: std::collections::HashSet<&str> = caller.iter().map(|e| env_key(e)).collect();
    let kept = image.iter().filter(|e| !given.contains(env_key(e)));
    caller.iter().chain(kept).cloned().collect()
}

/// Writes a container's own files ([`crate::spec::ContainerFile`]) into
/// `dir/files/` (0700, given to the container's root under a user
/// namespace) and returns their read-only bind mounts. Each file is made
/// 0600 and only then filled, chowned to its owner (mapped through the
/// container's id shift; as an unprivileged user the files stay the
/// user's, which is the container's root) and given its mode.
fn write_container_files(dir: &Path, files: &[crate::spec::ContainerFile]) -> Result<Vec<PlannedMount>> {
    use berth_archive::perms::{self, PRIVATE_DIR, PRIVATE_FILE};
    use std::io::Write as _;
    let base = dir.join("files");
    perms::create_dir_all(&base, PRIVATE_DIR).with_context(|| format!("creating {}", base.display()))?;
    let shift = crate::userns::dir_shift(dir).map(|(start, _)| start);
    if let Some(start) = shift {
        std::os::unix::fs::chown(&base, Some(start), Some(start))
            .with_context(|| format!("giving {} to the container's root", base.display()))?;
    }
    let mut mounts = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        if !f.target.starts_with('/') {
            return Err(EngineError::invalid(format!(
                "invalid mount target {:?}: it must be an absolute path",
                f.target
            )));
        }
        let path = base.join(i.to_string());
        let mut file =
            perms::create_new(&path, PRIVATE_FILE).with_context(|| format!("creating {}", path.display()))?;
        file.write_all(&f.content)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        drop(file);
        if !crate::is_rootless() {
            let (uid, gid) = match shift {
                Some(start) => (start.saturating_add(f.uid), start.saturating_add(f.gid)),
                None => (f.uid, f.gid),
            };
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to {uid}:{gid}", path.display()))?;
        }
        perms::set_mode(&path, f.mode & 0o7777).with_context(|| format!("setting the mode of {}", path.display()))?;
        mounts.push(PlannedMount::from_spec(&crate::spec::Mount {
            target: f.target.clone(),
            source: MountSource::Bind { path, create: false },
            readonly: true,
            propagation: String::new(),
            origin: MountOrigin::Mount,
        }));
    }
    Ok(mounts)
}

/// One mount as the engine plans it: the runtime's spec plus what
/// `inspect` shows.
#[derive(Debug, Clone)]
struct PlannedMount {
    spec: MountSpec,
    /// Named or anonymous volume name.
    volume: Option<String>,
    anonymous: bool,
    /// Create a missing bind source (Docker does for `-v` only).
    create_source: bool,
    origin: MountOrigin,
    /// One of the image's VOLUMEs that no mount covered.
    from_image: bool,
    /// Driver options for a volume this mount creates (`volume-opt`).
    volume_options: BTreeMap<String, String>,
    /// What the runtime mounts instead of `spec` (a volume made with
    /// `type=tmpfs` or `o=bind`); `spec` stays what `inspect` shows.
    runtime: Option<MountSpec>,
    /// A volume not filled from the image (`nocopy`).
    nocopy: bool,
}

impl PlannedMount {
    fn from_spec(m: &crate::spec::Mount) -> PlannedMount {
        let mut volume_options = BTreeMap::new();
        let (kind, source, volume, options, create_source) = match &m.source {
            MountSource::Bind { path, create } => (MountKind::Bind, path.clone(), None, vec![], *create),
            MountSource::Volume { name, options, .. } => {
                volume_options = options.clone();
                (MountKind::Volume, PathBuf::new(), name.clone(), vec![], false)
            }
            MountSource::Tmpfs { options } => (MountKind::Tmpfs, PathBuf::new(), None, options.clone(), false),
        };
        PlannedMount {
            anonymous: kind == MountKind::Volume && volume.is_none(),
            spec: MountSpec {
                kind,
                source,
                target: m.target.clone(),
                readonly: m.readonly,
                propagation: m.propagation.clone(),
                options,
            },
            volume,
            create_source,
            origin: m.origin.clone(),
            from_image: false,
            volume_options,
            runtime: None,
            nocopy: matches!(m.source, MountSource::Volume { nocopy: true, .. }),
        }
    }

    /// The mode text `inspect`'s Mounts show.
    fn mode(&self) -> &str {
        match &self.origin {
            MountOrigin::Volume { mode } => mode,
            MountOrigin::Tmpfs { options } => options,
            MountOrigin::Mount => "",
        }
    }
}

fn health_config(image: Option<&berth_store::HealthConfig>, f: &HealthSpec) -> Option<HealthConfig> {
    if f.disabled {
        return Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        });
    }
    let mut h = image
        .map(|i| HealthConfig {
            test: i.test.clone(),
            interval: i.interval.max(0) as u64,
            timeout: i.timeout.max(0) as u64,
            start_period: i.start_period.max(0) as u64,
            start_interval: i.start_interval.max(0) as u64,
            retries: i.retries.max(0) as u32,
        })
        .unwrap_or_default();
    if let Some(t) = &f.test {
        h.test = t.clone();
    }
    let ns = |d: std::time::Duration| d.as_nanos().min(u64::MAX as u128) as u64;
    if let Some(v) = f.interval {
        h.interval = ns(v);
    }
    if let Some(v) = f.timeout {
        h.timeout = ns(v);
    }
    if let Some(v) = f.start_period {
        h.start_period = ns(v);
    }
    if let Some(v) = f.start_interval {
        h.start_interval = ns(v);
    }
    if let Some(r) = f.retries {
        h.retries = r;
    }
    (!h.test.is_empty()).then_some(h)
}

/// The runtime's network mode and what `inspect` shows for it. Joining
/// another container's namespace needs it running.
fn network_mode(engine: &Engine, n: &NetworkMode) -> Result<(String, String)> {
    match n {
        NetworkMode::Private(shown) => Ok(("private".into(), shown.clone())),
        NetworkMode::None => Ok(("none".into(), "none".into())),
        NetworkMode::Host => Ok(("host".into(), "host".into())),
        NetworkMode::Container(word) => {
            let other = engine.container(word)?;
            if other.state.status != "running" || other.state.pid <= 0 {
                return Err(EngineError::not_running(format!(
                    "cannot join the network of container {}: it is not running",
                    other.rec.name
                )));
            }
            Ok((
                format!("ns:/proc/{}/ns/net", other.state.pid),
                format!("container:{}", other.rec.id),
            ))
        }
        NetworkMode::Network(name) => Err(EngineError::invalid(format!(
            "network {}: joining bridge networks is not wired into run yet",
            crate::error::shown(name)
        ))),
    }
}

/// The `-p`/`-P` mappings, checked against the network mode.
fn published_ports(
    o: &ContainerSpec,
    exposed: Option<&BTreeMap<String, Value>>,
    net_mode: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<berth_net::PortMapping>> {
    let mut ports = o.ports.clone();
    if o.publish_all {
        for key in exposed.map(|e| e.keys().collect::<Vec<_>>()).unwrap_or_default() {
            for (port, proto) in berth_net::parse_exposed(key) {
                if !ports.iter().any(|m| m.container_port == port && m.proto == proto) {
                    ports.push(berth_net::PortMapping {
                        container_port: port,
                        proto,
                        ..Default::default()
                    });
                }
            }
        }
    }
    if ports.is_empty() {
        return Ok(ports);
    }
    match net_mode {
        "host" => {
            warnings.push("Published ports are discarded when using host network mode".into());
            ports.clear();
        }
        "none" if !o.ports.is_empty() => {
            let shown: Vec<String> = o.ports.iter().map(port_flag).collect();
            return Err(EngineError::invalid(format!(
                "cannot publish ports (-p {}) of a container with --network none: it has no network to reach; drop -p or use the default network",
                shown.join(" -p ")
            )));
        }
        "none" => ports.clear(),
        m if m.starts_with("ns:") => {
            return Err(EngineError::invalid(
                "conflicting options: port publishing and the container type network mode",
            ))
        }
        _ => {}
    }
    Ok(ports)
}

/// A mapping as `-p` spells it (`127.0.0.1:8000:80/udp`).
fn port_flag(m: &berth_net::PortMapping) -> String {
    let mut s = String::new();
    if let Some(ip) = m.host_ip {
        s.push_str(&format!("{ip}:"));
    }
    let host = m.host_port_spec();
    if !host.is_empty() || m.host_ip.is_some() {
        s.push_str(&format!("{host}:"));
    }
    s.push_str(&m.container_port.to_string());
    if m.proto != berth_net::Proto::Tcp {
        s.push_str(&format!("/{}", m.proto));
    }
    s
}

/// `Config.ExposedPorts`: the image's, plus every published port (as Docker does).
fn exposed_ports(image: Option<&BTreeMap<String, Value>>, ports: &[berth_net::PortMapping]) -> Value {
    let mut all = image.cloned().unwrap_or_default();
    for m in ports {
        all.entry(m.key()).or_insert_with(|| json!({}));
    }
    if all.is_empty() {
        Value::Null
    } else {
        json!(all)
    }
}

/// `HostConfig.PortBindings` in Docker's shape: `{"80/tcp": [{"HostIp": "", "HostPort": "8000"}]}`.
fn port_bindings(ports: &[berth_net::PortMapping]) -> Value {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for m in ports {
        out.entry(m.key()).or_default().push(json!({
            "HostIp": m.host_ip.map(|i| i.to_string()).unwrap_or_default(),
            "HostPort": m.host_port_spec(),
        }));
    }
    json!(out)
}

fn validate_platform(p: &str, cfg: &berth_store::ImageConfig) -> Result<()> {
    let want = berth_store::Platform::parse(p).map_err(|e| EngineError::invalid_value(e.to_string()))?;
    let have = berth_store::Platform::normalised(&cfg.os, &cfg.architecture, cfg.variant.as_deref());
    if !want.same_os_arch(&have) {
        return Err(EngineError::conflict(format!(
            "image with reference was found but its platform ({have}) does not match the requested platform ({want})"
        )));
    }
    Ok(())
}

/// Removes what a failed create made.
struct Cleanup<'a> {
    engine: &'a Engine,
    dir: Option<PathBuf>,
    volumes: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            if let Some(id) = d.file_name().and_then(|n| n.to_str()) {
                let _ = self.engine.store.free_host_ids(id);
            }
            let rootfs = d.join(ROOTFS);
            let _ = berth_runtime::unmount(&rootfs);
            if !berth_runtime::mount::is_mountpoint(&rootfs) {
                berth_store::staging::remove_tree(&d);
            }
        }
        for v in self.volumes.drain(..) {
            let _ = self.engine.store.remove_volume(&v);
            berth_store::staging::remove_tree(&self.engine.store.volumes_dir().join(&v));
        }
    }
}

/// How a container is created.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOptions {
    /// Keep the rootfs mounted and check the published ports are free now:
    /// `run` starts the container next.
    pub start_next: bool,
    /// Keep the rootfs mounted: the container is created early next (see
    /// [`Engine::create_to_hold`]), which unmounts it if it does not.
    pub keep_mounted: bool,
}

impl Engine {
    /// Creates a container, pulling its image first as `spec.pull` says
    /// (Docker's `run`/`create`): with [`PullPolicy::Missing`] a missing
    /// image is pulled and the create tried again. Events: an
    /// [`Event::ImageMissing`](crate::progress::Event::ImageMissing), then
    /// the pull's.
    pub fn create_container_pulling(
        &self,
        spec: &ContainerSpec,
        opts: CreateOptions,
        progress: &crate::progress::Progress,
    ) -> Result<Created> {
        spec.validate()?;
        let pull = || -> Result<()> {
            let po = crate::registry::PullOptions {
                platform: spec.platform.clone().filter(|p| !p.is_empty()),
                ..Default::default()
            };
            self.pull(&spec.image, &po, progress)?;
            Ok(())
        };
        if spec.pull == PullPolicy::Always {
            pull()?;
        }
        match self.create_container(spec, opts) {
            Err(e) if spec.pull != PullPolicy::Always => {
                let Some(m) = e.downcast_ref::<ImageMissing>() else {
                    return Err(e);
                };
                progress.emit(crate::progress::Event::ImageMissing { name: m.shown.clone() });
                if spec.pull == PullPolicy::Never {
                    return Err(e);
                }
                if let Err(pe) = pull() {
                    return Err(
                        crate::binfmt::other_platform_only(&self.store, &spec.image, spec.platform.as_deref())
                            .unwrap_or(pe),
                    );
                }
                self.create_container(spec, opts)
            }
            r => r,
        }
    }

    /// Creates a container from `spec` (validated first); a missing image
    /// is an [`ImageMissing`] error (see [`Self::create_container_pulling`]).
    /// Anything else the spec names that does not exist (a network, a
    /// container to share a namespace with, link or take volumes from) is
    /// an invalid argument, as dockerd answers it with 400: the docker CLI
    /// takes any "not found" from a create for a missing image, and pulls.
    pub fn create_container(&self, o: &ContainerSpec, opts: CreateOptions) -> Result<Created> {
        self.create_container_checked(o, opts).map_err(|e| {
            if e.kind() == crate::error::ErrorKind::NotFound && e.downcast_ref::<ImageMissing>().is_none() {
                e.with_kind(crate::error::ErrorKind::InvalidArgument)
            } else {
                e
            }
        })
    }

    fn create_container_checked(&self, o: &ContainerSpec, opts: CreateOptions) -> Result<Created> {
        let o = &*super::api_socket::with_api_socket(o)?;
        o.validate()?;
        let keep_mounted = opts.start_next || opts.keep_mounted;
        let img = image_for_platform(self, &o.image, o.platform.as_deref())?;
        // Held until the container is recorded: a prune beside us leaves it.
        let _lease = self.store.lease_image(&img.id, "run")?;
        let icfg = self.store.image_config(&img.id)?;
        let mut warnings = Vec::new();
        if let Some(p) = o.platform.as_deref().filter(|p| !p.is_empty()) {
            validate_platform(p, &icfg)?;
        } else if let Some(w) = crate::binfmt::platform_warning(&icfg) {
            warnings.push(w);
        }
        // A foreign image runs only through a binfmt handler: say which is
        // missing now, not as an exec format error from the runtime.
        crate::binfmt::check_image_platform(&icfg.os, &icfg.architecture, icfg.variant.as_deref())?;
        let ic = &icfg.config;

        // Name.
        let name = match &o.name {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !valid_name(n) {
                    return Err(EngineError::invalid(format!(
                        "Invalid container name ({}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                        crate::error::shown(n).trim_matches('"')
                    )));
                }
                if let Some(other) = self.store.container(n).ok().filter(|r| r.name == n) {
                    return Err(StoreError::NameInUse(n.to_string(), other.id).into());
                }
                n.to_string()
            }
            None => {
                let mut n = random_name();
                for _ in 0..20 {
                    if self.store.container(&n).map(|r| r.name != n).unwrap_or(true) {
                        break;
                    }
                    n = format!("{}{}", random_name(), &random_hex(1)[..1]);
                }
                n
            }
        };
        let id = random_hex(32);

        // Command.
        let image_ep = ic.entrypoint.clone().unwrap_or_default();
        let image_cmd = ic.cmd.clone().unwrap_or_default();
        let (eff_ep, eff_cmd) = entrypoint_and_cmd(&image_ep, &image_cmd, o.entrypoint.as_deref(), &o.command);
        let args: Vec<String> = eff_ep.iter().chain(&eff_cmd).cloned().collect();
        if args.is_empty() {
            // Docker's daemon's words, as scripts match them.
            return Err(EngineError::invalid("No command specified"));
        }

        // Environment: the image's and the caller's, as recorded (Docker's
        // Config.Env); a process without PATH gets the default one from the
        // runtime spec, not from the record (so commit does not add it).
        let env = merge_env(ic.env.as_deref().unwrap_or_default(), &o.env);

        let working_dir = o.working_dir.clone().unwrap_or_else(|| ic.working_dir.clone());
        if !working_dir.is_empty() && !working_dir.starts_with('/') {
            return Err(EngineError::invalid(format!(
                "the working directory {working_dir:?} is invalid: it needs to be an absolute path"
            )));
        }
        let user = o
            .user
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or_else(|| ic.user.clone());

        let mut labels = ic.labels.clone().unwrap_or_default();
        labels.extend(o.labels.clone());

        // Resources.
        let r = &o.resources;
        if r.cgroup_parent.as_deref().is_some_and(|p| !p.is_empty()) && crate::is_rootless() {
            return Err(EngineError::invalid(
                "--cgroup-parent needs root: a rootless container's cgroup is not berth's to place",
            ));
        }
        let resources = Resources {
            memory: r.memory.map(|m| m as i64),
            memory_swap: r.memory_swap.map(|s| match s {
                MemorySwap::Unlimited => -1,
                MemorySwap::Limit(n) => n as i64,
            }),
            cpus: r.nano_cpus.filter(|n| *n > 0).map(|n| n as f64 / 1e9),
            cpu_shares: r.cpu_shares,
            pids_limit: r.pids_limit,
            ulimits: r.ulimits.iter().map(|u| (u.name.clone(), u.soft, u.hard)).collect(),
            blkio: block_io(r, &mut warnings)?,
            device_cgroup_rules: r.device_cgroup_rules.clone(),
            cgroup_parent: r.cgroup_parent.clone().filter(|p| !p.is_empty()),
            cpu_rt_period: r.cpu_rt_period.filter(|p| *p > 0).map(|p| p as u64),
            cpu_rt_runtime: r.cpu_rt_runtime.filter(|rt| *rt != 0),
            cpuset_cpus: r.cpuset_cpus.clone().filter(|c| !c.is_empty()),
            cpuset_mems: r.cpuset_mems.clone().filter(|m| !m.is_empty()),
            cpu_period: r.cpu_period.filter(|p| *p > 0).map(|p| p as u64),
            cpu_quota: r.cpu_quota.filter(|q| *q > 0),
            memory_reservation: r.memory_reservation.filter(|m| *m > 0).map(|m| m as i64),
            memory_swappiness: r.memory_swappiness.filter(|s| *s >= 0).map(|s| s as u64),
            oom_kill_disable: r.oom_kill_disable,
            oom_score_adj: r.oom_score_adj.filter(|a| *a != 0).map(|a| a as i32),
        };
        if let Some(k) = r.kernel_memory.filter(|k| *k > 0) {
            kernel_memory(k, &mut warnings)?;
        }
        if r.oom_kill_disable && r.memory.is_none_or(|m| m == 0) {
            warnings.push(
                "Disabling the OOM killer on containers without setting a '-m/--memory' limit may be dangerous.".into(),
            );
        }
        let restart_policy = o.restart.clone();
        let healthcheck = health_config(ic.healthcheck.as_ref(), &o.health);
        // Bridge networks: the plan, and the namespace the runtime joins
        // (made at each start); ports are published like a private network's.
        let net_plan = self.plan_networks(o)?;
        let (net_mode, net_shown) = match &net_plan {
            Some(plan) => ("bridge".to_string(), plan.networks[0].name.clone()),
            None => network_mode(self, &o.network)?,
        };
        if net_mode == "host" && o.hostname.is_some() {
            warnings.push("--hostname has no effect with --network host".into());
        }
        // The host's or another container's PID, IPC, UTS, cgroup namespace.
        use crate::spec::NamespaceKind;
        let pid_ns = self.resolve_namespace(NamespaceKind::Pid, &o.pid)?;
        let ipc_ns = self.resolve_namespace(NamespaceKind::Ipc, &o.ipc)?;
        let uts_ns = self.resolve_namespace(NamespaceKind::Uts, &o.uts)?;
        let cgroup_ns = self.resolve_namespace(NamespaceKind::Cgroup, &o.cgroupns)?;
        if o.uts == crate::spec::NamespaceMode::Host && (o.hostname.is_some() || o.domainname.is_some()) {
            // Docker's words (--uts host keeps the host's name).
            return Err(EngineError::invalid("conflicting options: hostname and the UTS mode"));
        }
        // With the host's UTS namespace the container is named as the host.
        let hostname = match o.uts {
            crate::spec::NamespaceMode::Host => rustix::system::uname().nodename().to_string_lossy().into_owned(),
            _ => o.hostname.clone().unwrap_or_default(),
        };
        // The image's EXPOSEd ports and `--expose`'s.
        let mut exposed_all = ic.exposed_ports.clone().unwrap_or_default();
        for k in &o.expose {
            exposed_all.insert(k.clone(), json!({}));
        }
        let ports = published_ports(o, Some(&exposed_all), &net_mode, &mut warnings)?;
        if opts.start_next && !ports.is_empty() {
            // `run`: a taken port fails now, before anything exists.
            berth_net::check_available(&ports)?;
        }

        // Mounts: -v, --mount, --tmpfs, then the image's VOLUMEs not covered.
        let from = self.volumes_from(o)?;
        let mut planned: Vec<PlannedMount> = o.mounts.iter().chain(&from).map(PlannedMount::from_spec).collect();
        if let Some(vols) = &ic.volumes {
            for path in vols.keys() {
                let t = path.trim_end_matches('/');
                if !planned.iter().any(|p| p.spec.target.trim_end_matches('/') == t) {
                    planned.push(PlannedMount {
                        spec: MountSpec {
                            kind: MountKind::Volume,
                            target: path.clone(),
                            ..Default::default()
                        },
                        volume: None,
                        anonymous: true,
                        create_source: false,
                        origin: MountOrigin::Mount,
                        from_image: true,
                        volume_options: BTreeMap::new(),
                        runtime: None,
                        nocopy: false,
                    });
                }
            }
        }
        for p in &mut planned {
            if p.spec.kind == MountKind::Bind {
                if !p.spec.source.exists() {
                    if p.create_source {
                        std::fs::create_dir_all(&p.spec.source)
                            .with_context(|| format!("creating the bind mount source {}", p.spec.source.display()))?;
                    } else {
                        return Err(EngineError::invalid(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            p.spec.source.display()
                        )));
                    }
                }
                p.spec.source = p.spec.source.canonicalize().unwrap_or_else(|_| p.spec.source.clone());
            }
            if p.spec.kind == MountKind::Volume && p.volume.is_none() {
                p.volume = Some(random_hex(32));
            }
        }

        let shell = ic.shell.clone().unwrap_or_default();
        let mut cc = ContainerConfig {
            log_driver: o.log_driver.clone().unwrap_or_default(),
            log_limits: o.log_limits()?,
            id: id.clone(),
            name: name.clone(),
            image_id: img.id.to_string(),
            image_ref: o.image.clone(),
            args: args.clone(),
            env: env.clone(),
            working_dir: working_dir.clone(),
            user: user.clone(),
            hostname,
            domainname: o.domainname.clone().unwrap_or_default(),
            tty: o.tty,
            open_stdin: o.open_stdin,
            labels: labels.clone(),
            stop_signal: o
                .stop_signal
                .as_ref()
                .map(|s| s.as_str().to_string())
                .or_else(|| (!ic.stop_signal.is_empty()).then(|| ic.stop_signal.clone())),
            stop_timeout: o.stop_timeout.map(|d| d.as_secs().min(u32::MAX as u64) as u32),
            mounts: vec![],
            read_only: o.read_only,
            privileged: o.privileged,
            cap_add: o.cap_add.clone(),
            cap_drop: o.cap_drop.clone(),
            security_opt: o.security_opt.clone(),
            devices: o.devices.clone(),
            init: o.init,
            network_mode: match &net_plan {
                Some(_) => format!(
                    "netns:{}",
                    self.net_context(true)?
                        .map(|c| c.netns_path(&id))
                        .unwrap_or_default()
                        .display()
                ),
                None => net_mode.clone(),
            },
            pid_mode: pid_ns.runtime,
            ipc_mode: ipc_ns.runtime,
            uts_mode: uts_ns.runtime,
            cgroupns_mode: cgroup_ns.runtime,
            ports,
            resources: resources.clone(),
            restart_policy: restart_policy.clone(),
            healthcheck: healthcheck.clone(),
            auto_remove: o.auto_remove,
            shell,
            id_mappings: None,
            shm_size: o.shm_size.filter(|n| *n > 0),
            sysctl: o.sysctls.clone(),
            annotations: o.annotations.clone(),
            group_add: o.group_add.clone(),
        };
        // Validate before touching the disk.
        berth_runtime::spec::effective_caps(&cc).map_err(|e| EngineError::invalid(e.to_string()))?;
        let userns_mode = self.userns_mode(o.userns.as_deref())?;
        // youki 0.7 makes the user namespace before it joins the network
        // namespace, which the kernel refuses (EPERM) for one made by host
        // root: say so now rather than fail deep in the runtime.
        let youki = self
            .runtime
            .as_deref()
            .is_some_and(|r| Path::new(r).file_name().is_some_and(|n| n == "youki"));
        if youki && net_plan.is_some() && matches!(userns_mode, crate::userns::UsernsMode::Auto { .. }) {
            return Err(EngineError::invalid(
                "youki cannot join a bridge network from a container of its own user namespace (--userns=auto): \
                 use crun or runc, or --network none",
            ));
        }

        // The container directory.
        let dir = self.container_dir(&id);
        let mut cleanup = Cleanup {
            engine: self,
            dir: Some(dir.clone()),
            volumes: vec![],
        };
        // Private, but the upper dir's mode is the container's `/`.
        use berth_archive::perms::{self, CONTENT_DIR, PRIVATE_DIR};
        for (sub, mode) in [
            ("", PRIVATE_DIR),
            (UPPER, CONTENT_DIR),
            (WORK, PRIVATE_DIR),
            (ROOTFS, PRIVATE_DIR),
        ] {
            let p = dir.join(sub);
            perms::create_dir_all(&p, mode).with_context(|| format!("creating {}", p.display()))?;
        }
        let rootfs = dir.join(ROOTFS);
        let userns = self.container_userns(&userns_mode, &id, &dir)?;
        cc.id_mappings = userns.mappings.clone();
        if let (Some(u), None) = (&userns.user, &o.user) {
            cc.user = u.clone();
        }
        self.mount_rootfs(&img, &dir, cc.auto_remove)?;
        let mut new_volumes = Vec::new();

        // Volumes (created on first use, pre-filled from the image).
        for p in &mut planned {
            if p.spec.kind != MountKind::Volume {
                continue;
            }
            let vname = p.volume.clone().expect("volume name set above");
            let (vol, data, created) = self.volume_for_container(&vname, p.anonymous, &p.volume_options)?;
            if created {
                cleanup.volumes.push(vname.clone());
                new_volumes.push(data.clone());
            }
            let copy_into = match crate::volumes::volume_mount(&vol)? {
                VolumeMount::Data => Some(data.clone()),
                VolumeMount::Tmpfs(options) => {
                    p.runtime = Some(MountSpec {
                        kind: MountKind::Tmpfs,
                        options,
                        ..p.spec.clone()
                    });
                    None
                }
                VolumeMount::Bind(device) => {
                    p.runtime = Some(MountSpec {
                        kind: MountKind::Bind,
                        source: device.clone(),
                        ..p.spec.clone()
                    });
                    Some(device)
                }
            };
            if let Some(dest) = copy_into.filter(|d| !p.nocopy && (created || dir_is_empty(d))) {
                super::files::copy_image_path_into(&rootfs, &p.spec.target, &dest)
                    .with_context(|| format!("copying the image's {} into volume {vname}", p.spec.target))?;
            }
            p.spec.source = data;
        }
        if !o.files.is_empty() {
            planned.extend(write_container_files(&dir, &o.files)?);
        }
        cc.mounts = planned
            .iter()
            .map(|p| p.runtime.clone().unwrap_or_else(|| p.spec.clone()))
            .collect();
        if let Some(plan) = &net_plan {
            super::network::write_plan(&dir, plan)?;
        }

        let spec = berth_runtime::build_spec(&cc, &rootfs, &dir).map_err(|e| match e {
            e @ (berth_runtime::RuntimeError::InvalidConfig(_)
            | berth_runtime::RuntimeError::UserNotFound { .. }
            | berth_runtime::RuntimeError::GroupNotFound(_)) => EngineError::invalid(e.to_string()),
            e => e.into(),
        })?;
        self.give_to_container_root(&dir, &new_volumes)?;
        let mut spec = serde_json::to_value(&spec).context("serialising the OCI spec")?;
        if crate::is_rootless() {
            self.rootless_overlay(&img, &dir, &mut spec)?;
        }
        write_atomic(
            &dir.join("config.json"),
            &serde_json::to_vec_pretty(&spec).context("serialising the OCI spec")?,
        )?;
        write_atomic(
            &dir.join(berth_runtime::monitor::CONFIG_FILE),
            &serde_json::to_vec_pretty(&cc).context("serialising berth.json")?,
        )?;
        berth_runtime::state::update_state(&dir, |s| s.status = "created".into())?;
        if !keep_mounted {
            super::lifecycle::unmount_rootfs(&dir)?;
        }

        // Record last: only now does the container exist. Held until this
        // command ends (a run's start, wait and --rm): prune leaves it.
        let _held = self.hold_container(&id)?;
        let created = now_rfc3339();
        let mut record = self.record_json(o, &cc, &img, &planned, &eff_ep, &eff_cmd, &net_shown, &icfg);
        record["HostConfig"]["UsernsMode"] = json!(userns.shown);
        record["HostConfig"]["PidMode"] = json!(pid_ns.shown);
        record["HostConfig"]["IpcMode"] = json!(ipc_ns.shown);
        record["HostConfig"]["UTSMode"] = json!(uts_ns.shown);
        record["HostConfig"]["CgroupnsMode"] = json!(cgroup_ns.shown);
        if let Some(plan) = &net_plan {
            let hc = &mut record["HostConfig"];
            hc["Dns"] = json!(plan.dns);
            hc["DnsSearch"] = json!(plan.dns_search);
            hc["DnsOptions"] = json!(plan.dns_options);
            hc["ExtraHosts"] = if plan.extra_hosts.is_empty() {
                Value::Null
            } else {
                json!(plan.extra_hosts)
            };
            let links: Vec<String> = o
                .links
                .iter()
                .map(|(c, a)| format!("/{c}:/{name}/{}", if a.is_empty() { c } else { a }))
                .collect();
            hc["Links"] = if links.is_empty() { Value::Null } else { json!(links) };
        }
        self.store.insert_container(&ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            image_id: img.id.to_string(),
            created,
            config: record,
        })?;
        cleanup.dir = None;
        cleanup.volumes.clear();
        self.container_event(&id, "create", &[]);
        Ok(Created {
            id,
            name,
            dir,
            warnings,
        })
    }

    /// Mounts the overlay rootfs of a container dir: the image's layers
    /// (top-most first) under the container's upper dir. `disposable`
    /// (`--rm`) mounts it volatile: its unmount then does not sync the whole
    /// file system the store is on, and its writes are never worth a sync.
    pub(crate) fn mount_rootfs(&self, img: &ImageRecord, dir: &Path, disposable: bool) -> anyhow::Result<()> {
        if crate::is_rootless() {
            // An unprivileged user cannot mount overlayfs here; the OCI
            // runtime mounts it inside the container's user namespace.
            return Ok(());
        }
        let rootfs = dir.join(ROOTFS);
        if berth_runtime::mount::is_mountpoint(&rootfs) {
            return Ok(());
        }
        if let Some(maps) = crate::userns::dir_mappings(dir) {
            return self.mount_rootfs_userns(img, dir, disposable, &maps);
        }
        let lowers: Vec<PathBuf> = img.layers.iter().rev().map(|l| self.store.layer_dir(l)).collect();
        for l in &lowers {
            if !l.is_dir() {
                bail!(
                    "the image's layer {} is missing from the store; re-import or re-pull the image",
                    l.display()
                );
            }
        }
        berth_runtime::mount_overlay_opts(&lowers, &dir.join(UPPER), &dir.join(WORK), &rootfs, disposable)?;
        Ok(())
    }

    /// Rootless: the overlay becomes the spec's first mount, on `/`, so the
    /// runtime mounts it inside the user namespace it creates (overlayfs in
    /// a user namespace needs kernel 5.11+; `userxattr` keeps its metadata
    /// in `user.overlay.*`).
    fn rootless_overlay(&self, img: &ImageRecord, dir: &Path, spec: &mut Value) -> anyhow::Result<()> {
        let mut lowers: Vec<String> = img
            .layers
            .iter()
            .rev()
            .map(|l| self.store.layer_dir(l).display().to_string())
            .collect();
        if lowers.is_empty() {
            let empty = dir.join("empty-lower");
            berth_archive::perms::create_dir_all(&empty, berth_archive::perms::CONTENT_DIR)
                .with_context(|| format!("creating {}", empty.display()))?;
            lowers.push(empty.display().to_string());
        }
        let options = vec![
            format!("lowerdir={}", lowers.join(":")),
            format!("upperdir={}", dir.join(UPPER).display()),
            format!("workdir={}", dir.join(WORK).display()),
            "userxattr".to_string(),
        ];
        if options.iter().map(|o| o.len() + 1).sum::<usize>() >= 4096 {
            bail!(
                "the image has too many layers ({}) for a rootless overlay mount option string; flatten it (berth export | berth import)",
                lowers.len()
            );
        }
        let m = json!({"destination": "/", "type": "overlay", "source": "overlay", "options": options});
        match spec["mounts"].as_array_mut() {
            Some(ms) => ms.insert(0, m),
            None => spec["mounts"] = json!([m]),
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn record_json(
        &self,
        o: &ContainerSpec,
        cc: &ContainerConfig,
        img: &ImageRecord,
        planned: &[PlannedMount],
        entrypoint: &[String],
        cmd: &[String],
        net_shown: &str,
        icfg: &berth_store::ImageConfig,
    ) -> Value {
        let hc = cc.healthcheck.as_ref().map(|h| {
            let mut v = json!({"Test": h.test});
            for (k, n) in [
                ("Interval", h.interval),
                ("Timeout", h.timeout),
                ("StartPeriod", h.start_period),
                ("StartInterval", h.start_interval),
            ] {
                if n > 0 {
                    v[k] = json!(n);
                }
            }
            if h.retries > 0 {
                v["Retries"] = json!(h.retries);
            }
            v
        });
        let volumes: BTreeMap<String, Value> = planned
            .iter()
            .filter(|p| p.spec.kind == MountKind::Volume)
            .map(|p| (p.spec.target.clone(), json!({})))
            .collect();
        let mut exposed_shown = icfg.config.exposed_ports.clone().unwrap_or_default();
        for k in &o.expose {
            exposed_shown.insert(k.clone(), json!({}));
        }
        let config = json!({
            "Hostname": if cc.hostname.is_empty() { cc.id[..12].to_string() } else { cc.hostname.clone() },
            "Domainname": cc.domainname,
            "User": cc.user,
            "AttachStdin": o.open_stdin && !o.detached,
            "AttachStdout": !o.detached,
            "AttachStderr": !o.detached,
            "ExposedPorts": exposed_ports(Some(&exposed_shown).filter(|e| !e.is_empty()), &cc.ports),
            "Tty": cc.tty,
            "OpenStdin": cc.open_stdin,
            "StdinOnce": cc.open_stdin,
            "Env": if cc.env.is_empty() { Value::Null } else { json!(cc.env) },
            "Cmd": if cmd.is_empty() { Value::Null } else { json!(cmd) },
            "Healthcheck": hc,
            "Image": o.image,
            "Volumes": if volumes.is_empty() { Value::Null } else { json!(volumes) },
            "WorkingDir": cc.working_dir,
            "Entrypoint": if entrypoint.is_empty() { Value::Null } else { json!(entrypoint) },
            "OnBuild": Value::Null,
            "Labels": cc.labels,
            "StopSignal": cc.stop_signal,
            "StopTimeout": cc.stop_timeout,
        });
        let mut config = config;
        if let Value::Object(m) = &mut config {
            // Docker leaves these out when unset (a template reads them as nil).
            m.retain(|k, v| {
                !(v.is_null()
                    && matches!(
                        k.as_str(),
                        "ExposedPorts" | "Healthcheck" | "StopSignal" | "StopTimeout"
                    ))
            });
        }
        // `-v` binds and named volumes as Docker lists them: SRC:DST[:MODE].
        let binds: Vec<String> = planned
            .iter()
            .filter_map(|p| {
                let MountOrigin::Volume { mode } = &p.origin else {
                    return None;
                };
                let src = match (&p.spec.kind, &p.volume) {
                    (MountKind::Bind, _) => p.spec.source.display().to_string(),
                    (_, Some(v)) if !p.anonymous => v.clone(),
                    _ => return None,
                };
                Some(if mode.is_empty() {
                    format!("{src}:{}", p.spec.target)
                } else {
                    format!("{src}:{}:{mode}", p.spec.target)
                })
            })
            .collect();
        // `--mount`s as Docker keeps them: empty fields left out, a bind's
        // propagation and a tmpfs's size and mode (octal in the flag) in
        // their options.
        let mounts_flag: Vec<Value> = planned
            .iter()
            .filter(|p| p.origin == MountOrigin::Mount && !p.from_image)
            .map(|p| {
                let mut m = json!({
                    "Type": match p.spec.kind { MountKind::Bind => "bind", MountKind::Volume => "volume", MountKind::Tmpfs => "tmpfs" },
                    "Target": p.spec.target,
                });
                let source = p.volume.clone().unwrap_or_else(|| p.spec.source.display().to_string());
                if !source.is_empty() {
                    m["Source"] = json!(source);
                }
                if p.spec.readonly {
                    m["ReadOnly"] = json!(true);
                }
                if p.spec.kind == MountKind::Bind && !p.spec.propagation.is_empty() {
                    m["BindOptions"] = json!({"Propagation": p.spec.propagation});
                }
                if p.spec.kind == MountKind::Tmpfs {
                    let mut o = serde_json::Map::new();
                    for opt in &p.spec.options {
                        match opt.split_once('=') {
                            Some(("size", n)) => {
                                o.insert("SizeBytes".into(), json!(n.parse::<i64>().unwrap_or(0)));
                            }
                            Some(("mode", n)) => {
                                o.insert("Mode".into(), json!(u32::from_str_radix(n, 8).unwrap_or(0)));
                            }
                            _ => {}
                        }
                    }
                    if !o.is_empty() {
                        m["TmpfsOptions"] = Value::Object(o);
                    }
                }
                m
            })
            .collect();
        let tmpfs: BTreeMap<String, String> = planned
            .iter()
            .filter_map(|p| match &p.origin {
                MountOrigin::Tmpfs { options } => Some((p.spec.target.clone(), options.clone())),
                _ => None,
            })
            .collect();
        let (rp_name, rp_max) = match &cc.restart_policy {
            RestartPolicy::No => ("no", 0),
            RestartPolicy::Always => ("always", 0),
            RestartPolicy::UnlessStopped => ("unless-stopped", 0),
            RestartPolicy::OnFailure { max } => ("on-failure", *max),
        };
        let r = &cc.resources;
        let host_config = json!({
            "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
            "ContainerIDFile": "",
            "LogConfig": {"Type": o.log_driver.as_deref().unwrap_or("json-file"), "Config": o.log_opts},
            "NetworkMode": net_shown,
            "PortBindings": port_bindings(&cc.ports),
            "RestartPolicy": {"Name": rp_name, "MaximumRetryCount": rp_max},
            "AutoRemove": cc.auto_remove,
            "VolumeDriver": "",
            "VolumesFrom": if o.volumes_from.is_empty() { Value::Null } else { json!(o.volumes_from) },
            "CapAdd": if cc.cap_add.is_empty() { Value::Null } else { json!(cc.cap_add) },
            "CapDrop": if cc.cap_drop.is_empty() { Value::Null } else { json!(cc.cap_drop) },
            "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": Value::Null,
            "Privileged": cc.privileged,
            "PublishAllPorts": o.publish_all,
            "ReadonlyRootfs": cc.read_only,
            "SecurityOpt": if cc.security_opt.is_empty() { Value::Null } else { json!(cc.security_opt) },
            "Tmpfs": if tmpfs.is_empty() { Value::Null } else { json!(tmpfs) },
            "UTSMode": "", "UsernsMode": "", "IpcMode": "private", "PidMode": "", "Cgroup": "", "CgroupnsMode": "private",
            "Runtime": self.runtime.clone().unwrap_or_else(|| "runc".into()),
            "Memory": r.memory.unwrap_or(0),
            "MemorySwap": r.memory_swap.unwrap_or(0),
            "NanoCpus": r.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            "CpuShares": r.cpu_shares.unwrap_or(0),
            "PidsLimit": r.pids_limit,
            "Ulimits": r.ulimits.iter().map(|(n, s, h)| json!({"Name": n, "Soft": s, "Hard": h})).collect::<Vec<_>>(),
            "Devices": cc.devices.iter().map(|d| {
                let p: Vec<&str> = d.split(':').collect();
                json!({"PathOnHost": p[0], "PathInContainer": p.get(1).copied().unwrap_or(p[0]), "CgroupPermissions": p.get(2).copied().unwrap_or("rwm")})
            }).collect::<Vec<_>>(),
            "Init": cc.init,
            "ShmSize": cc.shm_size.unwrap_or(DEFAULT_SHM_SIZE),
            "Mounts": if mounts_flag.is_empty() { Value::Null } else { json!(mounts_flag) },
            "MaskedPaths": if cc.privileged { Value::Null } else { json!(berth_runtime::spec::MASKED_PATHS) },
            "ReadonlyPaths": if cc.privileged { Value::Null } else { json!(berth_runtime::spec::READONLY_PATHS) },
        });
        let mut host_config = host_config;
        if let Value::Object(m) = &mut host_config {
            // Left out when unset, as Docker's (`Init` is a *bool there: nil
            // unless --init was given).
            m.retain(|k, v| match k.as_str() {
                "Mounts" | "Tmpfs" => !v.is_null(),
                "Init" => v.as_bool() == Some(true),
                _ => true,
            });
        }
        let sr = &o.resources;
        let rates = |v: &[crate::spec::ThrottleDevice]| -> Value {
            v.iter().map(|d| json!({"Path": d.path, "Rate": d.rate})).collect()
        };
        let asked = json!({
            // What this host's cgroups take: a discarded weight reads 0, as Docker's.
            "BlkioWeight": cc.resources.blkio.weight.unwrap_or(0),
            "BlkioWeightDevice": sr.blkio_weight_device.iter().filter(|_| !cc.resources.blkio.weight_device.is_empty())
                .map(|d| json!({"Path": d.path, "Weight": d.weight})).collect::<Vec<_>>(),
            "BlkioDeviceReadBps": rates(&sr.device_read_bps),
            "BlkioDeviceWriteBps": rates(&sr.device_write_bps),
            "BlkioDeviceReadIOps": rates(&sr.device_read_iops),
            "BlkioDeviceWriteIOps": rates(&sr.device_write_iops),
            "DeviceCgroupRules": if sr.device_cgroup_rules.is_empty() { Value::Null } else { json!(sr.device_cgroup_rules) },
            "CgroupParent": sr.cgroup_parent.clone().unwrap_or_default(),
            "CpuRealtimePeriod": sr.cpu_rt_period.unwrap_or(0),
            "CpuRealtimeRuntime": sr.cpu_rt_runtime.unwrap_or(0),
            "CpusetCpus": sr.cpuset_cpus.clone().unwrap_or_default(),
            "CpusetMems": sr.cpuset_mems.clone().unwrap_or_default(),
            "CpuPeriod": sr.cpu_period.unwrap_or(0),
            "CpuQuota": sr.cpu_quota.unwrap_or(0),
            "MemoryReservation": sr.memory_reservation.unwrap_or(0),
            "MemorySwappiness": sr.memory_swappiness,
            "OomKillDisable": sr.oom_kill_disable,
            "OomScoreAdj": sr.oom_score_adj.unwrap_or(0),
        });
        if let (Some(h), false) = (host_config.as_object_mut(), o.sysctls.is_empty()) {
            // Left out when none, as Docker's (`omitempty`).
            h.insert("Sysctls".into(), json!(o.sysctls));
        }
        if let (Some(h), false) = (host_config.as_object_mut(), o.annotations.is_empty()) {
            h.insert("Annotations".into(), json!(o.annotations));
        }
        if let (Some(h), false) = (host_config.as_object_mut(), o.group_add.is_empty()) {
            h.insert("GroupAdd".into(), json!(o.group_add));
        }
        if let (Some(h), Value::Object(asked)) = (host_config.as_object_mut(), asked) {
            h.extend(asked);
        }
        // Docker's Mounts leave `--tmpfs` out (HostConfig.Tmpfs has them).
        let mounts: Vec<MountPoint> = planned
            .iter()
            .filter(|p| !matches!(p.origin, MountOrigin::Tmpfs { .. }))
            .map(|p| {
                let common = MountPoint {
                    destination: p.spec.target.clone(),
                    mode: p.mode().to_string(),
                    rw: !p.spec.readonly,
                    ..Default::default()
                };
                match p.spec.kind {
                    MountKind::Bind => MountPoint {
                        kind: "bind".into(),
                        source: p.spec.source.display().to_string(),
                        propagation: if p.spec.propagation.is_empty() {
                            "rprivate".into()
                        } else {
                            p.spec.propagation.clone()
                        },
                        ..common
                    },
                    MountKind::Volume => MountPoint {
                        kind: "volume".into(),
                        name: p.volume.clone(),
                        source: p.spec.source.display().to_string(),
                        driver: Some("local".into()),
                        mode: if p.mode().is_empty() {
                            "z".into()
                        } else {
                            p.mode().to_string()
                        },
                        ..common
                    },
                    MountKind::Tmpfs => MountPoint {
                        kind: "tmpfs".into(),
                        ..common
                    },
                }
            })
            .collect();
        let doc = ContainerDoc {
            path: cc.args.first().cloned(),
            args: cc.args.get(1..).unwrap_or(&[]).to_vec(),
            config: serde_json::from_value(config).unwrap_or_default(),
            host_config: serde_json::from_value(host_config).unwrap_or_default(),
            mounts,
            anonymous_volumes: planned
                .iter()
                .filter(|p| p.anonymous)
                .filter_map(|p| p.volume.clone())
                .collect(),
            platform: icfg.os.clone(),
            image_ref: img.tags.first().cloned().unwrap_or_default(),
        };
        doc.to_value()
    }
}

impl Engine {
    /// `--volumes-from`: the mounts of the containers named (volumes and
    /// binds, as `inspect` lists them), at targets the spec does not mount
    /// itself; `:ro`/`:rw` overrides each one's mode.
    fn volumes_from(&self, o: &ContainerSpec) -> Result<Vec<crate::spec::Mount>> {
        let mut out: Vec<crate::spec::Mount> = Vec::new();
        for vf in &o.volumes_from {
            let (word, mode) = match vf.rsplit_once(':') {
                Some((w, m @ ("ro" | "rw"))) => (w, Some(m)),
                Some((_, m)) if !m.is_empty() && !m.contains('/') => {
                    return Err(EngineError::invalid(format!("invalid mode for volumes-from: {m}")))
                }
                _ => (vf.as_str(), None),
            };
            let other = self.container(word)?;
            for m in other.doc().mounts {
                let t = m.destination.trim_end_matches('/');
                let taken = |x: &crate::spec::Mount| x.target.trim_end_matches('/') == t;
                if m.kind == "tmpfs" || o.mounts.iter().any(taken) || out.iter().any(taken) {
                    continue;
                }
                let readonly = match mode {
                    Some(m) => m == "ro",
                    None => !m.rw,
                };
                let (source, propagation) = if m.kind == "volume" {
                    (
                        MountSource::Volume {
                            name: m.name.clone(),
                            options: Default::default(),
                            nocopy: false,
                        },
                        String::new(),
                    )
                } else {
                    (
                        MountSource::Bind {
                            path: PathBuf::from(&m.source),
                            create: false,
                        },
                        m.propagation.clone(),
                    )
                };
                out.push(crate::spec::Mount {
                    target: m.destination.clone(),
                    source,
                    readonly,
                    propagation,
                    origin: MountOrigin::Volume {
                        mode: if readonly { "ro" } else { "" }.into(),
                    },
                });
            }
        }
        Ok(out)
    }
}

/// `--kernel-memory` `k`: Docker's minimum, then its warnings; no runtime
/// berth drives sets it (cgroup v2 has no such limit, and kernels since
/// 6.1 have no `memory.kmem.limit_in_bytes`), so it is discarded, as
/// dockerd discards it where the kernel lacks it.
fn kernel_memory(k: u64, warnings: &mut Vec<String>) -> Result<()> {
    const MIN: u64 = 6 << 20;
    if k < MIN {
        return Err(EngineError::invalid("Minimum kernel memory limit allowed is 6MB"));
    }
    warnings.push("Specifying a kernel memory limit is deprecated and will be removed in a future release.".into());
    warnings.push(
        "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded."
            .into(),
    );
    Ok(())
}

/// `--blkio-weight` `w` (0: none) on this host, create's and update's
/// rule, in Docker's order: a host whose block IO controller has no
/// weights discards it with Docker's warning before the range is checked.
pub(crate) fn blkio_weight(w: u16, warnings: &mut Vec<String>) -> Result<Option<u16>> {
    blkio_weight_on(w, &mut || blkio_has(WEIGHT_FILES), warnings)
}

/// The cgroup v1 files of block IO weights and of throttling.
const WEIGHT_FILES: &[&str] = &["blkio.weight", "blkio.bfq.weight"];
const THROTTLE_FILES: &[&str] = &["blkio.throttle.read_bps_device"];

/// [`blkio_weight`] with the host's answer asked of `weight_ok` (only
/// when a weight is given).
fn blkio_weight_on(w: u16, weight_ok: &mut dyn FnMut() -> bool, warnings: &mut Vec<String>) -> Result<Option<u16>> {
    if w == 0 {
        return Ok(None);
    }
    if !weight_ok() {
        warnings.push(
            "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into(),
        );
        return Ok(None);
    }
    if !(10..=1000).contains(&w) {
        return Err(EngineError::invalid("Range of blkio weight is from 10 to 1000"));
    }
    Ok(Some(w))
}

/// Whether the block IO controller is there with one of `v1_files` (v2:
/// the `io` controller).
fn blkio_has(v1_files: &[&str]) -> bool {
    if berth_runtime::spec::cgroup_v2_unified() {
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|x| x == "io"))
    } else {
        v1_files
            .iter()
            .any(|f| Path::new("/sys/fs/cgroup/blkio").join(f).exists())
    }
}

/// The block IO limits by device number, as the runtime takes them; what
/// this host's cgroups cannot do is discarded with Docker's warning.
fn block_io(r: &crate::spec::Resources, warnings: &mut Vec<String>) -> Result<berth_runtime::config::BlockIo> {
    let number = |path: &str| -> Result<(i64, i64)> {
        let st = rustix::fs::stat(path).map_err(|e| {
            EngineError::invalid(format!(
                "error gathering device information while adding custom device {path:?}: {e}"
            ))
        })?;
        if st.st_mode & libc::S_IFMT != libc::S_IFBLK {
            return Err(EngineError::invalid(format!("{path} is not a block device")));
        }
        let dev = st.st_rdev;
        Ok((rustix::fs::major(dev) as i64, rustix::fs::minor(dev) as i64))
    };
    // The controller's files are looked at once, and only for what is asked.
    let once = |files: &'static [&'static str]| {
        let mut known = None;
        move || *known.get_or_insert_with(|| blkio_has(files))
    };
    let mut weight_ok = once(WEIGHT_FILES);
    let mut throttle_ok = once(THROTTLE_FILES);
    let mut b = berth_runtime::config::BlockIo {
        weight: blkio_weight_on(r.blkio_weight.unwrap_or(0), &mut weight_ok, warnings)?,
        ..Default::default()
    };
    if !r.blkio_weight_device.is_empty() {
        if weight_ok() {
            for d in &r.blkio_weight_device {
                let (major, minor) = number(&d.path)?;
                b.weight_device.push((major, minor, d.weight));
            }
        } else {
            warnings.push("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.".into());
        }
    }
    for (asked, into, what) in [
        (&r.device_read_bps, &mut b.read_bps, "read bps"),
        (&r.device_write_bps, &mut b.write_bps, "write bps"),
        (&r.device_read_iops, &mut b.read_iops, "read iops"),
        (&r.device_write_iops, &mut b.write_iops, "write iops"),
    ] {
        if asked.is_empty() {
            continue;
        }
        if !throttle_ok() {
            warnings.push(format!(
                "Your kernel does not support BPS Block I/O {what} limit or the cgroup is not mounted. Block I/O BPS {what} limit discarded."
            ));
            continue;
        }
        for d in asked {
            let (major, minor) = number(&d.path)?;
            into.push((major, minor, d.rate));
        }
    }
    Ok(b)
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_flags() {
        let exposed: BTreeMap<String, Value> = [("8080/tcp".to_string(), json!({})), ("53/udp".to_string(), json!({}))]
            .into_iter()
            .collect();
        let mut o = ContainerSpec {
            ports: crate::spec::parse_publish("127.0.0.1:9000:8080").unwrap(),
            publish_all: true,
            ..Default::default()
        };
        let mut w = Vec::new();
        let p = published_ports(&o, Some(&exposed), "private", &mut w).unwrap();
        // -p keeps its binding; -P adds the other exposed port on a random host port.
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].container_port, p[0].host_port), (8080, 9000));
        assert_eq!(
            (p[1].container_port, p[1].host_port, p[1].proto),
            (53, 0, berth_net::Proto::Udp)
        );
        assert_eq!(
            port_bindings(&p),
            json!({"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}], "53/udp": [{"HostIp": "", "HostPort": ""}]})
        );
        assert!(published_ports(&o, Some(&exposed), "host", &mut w).unwrap().is_empty());
        assert_eq!(
            w,
            vec!["Published ports are discarded when using host network mode".to_string()]
        );
        let e = published_ports(&o, None, "none", &mut w).unwrap_err();
        assert!(e.to_string().contains("-p 127.0.0.1:9000:8080"), "{e}");
        assert!(published_ports(&o, None, "ns:/proc/1/ns/net", &mut w).is_err());
        o.ports.clear();
        assert!(published_ports(&o, Some(&exposed), "none", &mut w).unwrap().is_empty());
        assert_eq!(exposed_ports(None, &p), json!({"53/udp": {}, "8080/tcp": {}}));
    }
}
