//! `create` (and the first half of `run`): image config + flags → container
//! directory (`berth.json`, `config.json`, `upper/ work/ rootfs/`), volumes,
//! and the database record, in that order. A failure at any step removes
//! what the earlier steps made: no half-created container is ever visible.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use berth_runtime::{resolve_args, ContainerConfig, HealthConfig, MountKind, MountSpec, Resources, RestartPolicy};
use berth_store::volumes::VolumeRecord;
use berth_store::{ContainerRecord, ImageRecord, Reference, StoreError};
use serde_json::{json, Value};

use super::{parse_bytes, parse_duration_ns, random_hex, random_name, valid_name, write_atomic, ROOTFS, UPPER, WORK};
use crate::engine::{now_rfc3339, Engine};

/// Healthcheck flags.
#[derive(Default, Debug, Clone)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub none: bool,
}

/// Everything `create`/`run` accept, as the user spelled it.
#[derive(Default, Debug, Clone)]
pub struct CreateOptions {
    pub image: String,
    pub cmd: Vec<String>,
    pub name: Option<String>,
    /// `Some("")` clears the image's ENTRYPOINT.
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub labels: Vec<String>,
    pub label_files: Vec<PathBuf>,
    pub volumes: Vec<String>,
    pub mounts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub read_only: bool,
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
    pub ulimits: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub devices: Vec<String>,
    pub privileged: bool,
    pub init: bool,
    pub restart: Option<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u32>,
    pub network: Option<String>,
    /// `-p` values, Docker's syntax.
    pub publish: Vec<String>,
    /// `-P`: every EXPOSEd port of the image to a random host port.
    pub publish_all: bool,
    pub tty: bool,
    pub interactive: bool,
    pub auto_remove: bool,
    pub platform: Option<String>,
    pub pull: Option<String>,
    pub health: HealthFlags,
}

/// What `create` made.
#[derive(Debug)]
pub struct Created {
    pub id: String,
    pub name: String,
    pub dir: PathBuf,
    pub warnings: Vec<String>,
}

/// The image named by a `run`/`create` argument, with Docker's wording
/// when it is missing (the CLI then pulls it, per `--pull`).
pub fn image_for_run(engine: &Engine, word: &str, pull: Option<&str>) -> Result<ImageRecord> {
    match pull.unwrap_or("missing") {
        "missing" | "always" | "never" => {}
        p => bail!("invalid pull option: {p:?}: must be one of \"always\", \"missing\" or \"never\""),
    }
    match engine.store.resolve_image(word) {
        Ok(i) => Ok(i),
        Err(StoreError::ImageNotFound(_)) => {
            let shown = Reference::parse(word)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| word.to_string());
            Err(anyhow!(ImageMissing {
                shown,
                word: word.to_string()
            }))
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
    pub word: String,
}

fn parse_kv_list(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

fn read_lines_file(p: &Path, what: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {what} {}", p.display()))?;
    Ok(text
        .lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// `-e KEY=v` sets, `-e KEY` copies the host's value (dropped when unset).
fn expand_env(items: &[String]) -> Vec<String> {
    items
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

fn merge_env(base: &mut Vec<String>, add: Vec<String>) {
    for e in add {
        let k = e.split('=').next().unwrap_or("").to_string();
        base.retain(|x| x.split('=').next() != Some(k.as_str()));
        base.push(e);
    }
}

/// One mount as the engine plans it: the runtime's spec plus what
/// `inspect` shows (volume name).
#[derive(Debug, Clone)]
pub struct PlannedMount {
    pub spec: MountSpec,
    /// Named or anonymous volume name.
    pub volume: Option<String>,
    pub anonymous: bool,
    /// From `-v` (Docker creates a missing bind source for -v only).
    pub from_v: bool,
    pub mode: String,
}

fn valid_volume_name(n: &str) -> bool {
    valid_name(n) || (n.len() == 1 && n.as_bytes()[0].is_ascii_alphanumeric())
}

/// `-v SRC:DST[:OPTS]` / `-v DST` (anonymous).
pub fn parse_volume_flag(v: &str) -> Result<PlannedMount> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => bail!("invalid volume specification: {v:?} (use /host/path:/container/path[:ro] or name:/path)"),
    };
    if !dst.starts_with('/') {
        bail!("invalid volume specification: {v:?}: the container path {dst:?} must be absolute");
    }
    let mut readonly = false;
    let mut propagation = String::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "z" | "Z" | "nocopy" | "copy" => {}
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => propagation = o.to_string(),
            _ => bail!("invalid volume specification: {v:?}: unknown option {o:?} (use ro, rw or a propagation mode)"),
        }
    }
    let mk = |kind, source: PathBuf, volume: Option<String>, anonymous| PlannedMount {
        spec: MountSpec {
            kind,
            source,
            target: dst.to_string(),
            readonly,
            propagation: propagation.clone(),
            options: vec![],
        },
        volume,
        anonymous,
        from_v: true,
        mode: opts.to_string(),
    };
    if src.is_empty() {
        return Ok(mk(MountKind::Volume, PathBuf::new(), None, true));
    }
    if src.starts_with('/') || src.starts_with('.') {
        let p = if src.starts_with('.') {
            std::env::current_dir()?.join(src)
        } else {
            PathBuf::from(src)
        };
        return Ok(mk(MountKind::Bind, p, None, false));
    }
    if !valid_volume_name(src) {
        bail!("invalid volume name {src:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed; use an absolute path for a bind mount");
    }
    Ok(mk(MountKind::Volume, PathBuf::new(), Some(src.to_string()), false))
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…,readonly,…`.
pub fn parse_mount_flag(m: &str) -> Result<PlannedMount> {
    let mut kind = "volume".to_string();
    let mut src = String::new();
    let mut dst = String::new();
    let mut readonly = false;
    let mut propagation = String::new();
    let mut options = Vec::new();
    for field in m.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => kind = v.to_string(),
            "source" | "src" => src = v.to_string(),
            "target" | "destination" | "dst" => dst = v.to_string(),
            "readonly" | "ro" => readonly = v.is_empty() || v == "true" || v == "1",
            "bind-propagation" => propagation = v.to_string(),
            "tmpfs-size" => options.push(format!("size={}", parse_bytes(v)?)),
            "tmpfs-mode" => options.push(format!("mode={v}")),
            "volume-nocopy" | "consistency" | "bind-nonrecursive" | "volume-driver" | "volume-label" | "volume-opt" => {
            }
            _ => bail!("invalid field {k:?} in --mount {m:?}"),
        }
    }
    if dst.is_empty() {
        bail!("invalid --mount {m:?}: target is required");
    }
    if !dst.starts_with('/') {
        bail!("invalid --mount {m:?}: target {dst:?} must be an absolute path");
    }
    let (mk, volume, anonymous) = match kind.as_str() {
        "bind" => {
            if src.is_empty() {
                bail!("invalid --mount {m:?}: source is required for a bind mount");
            }
            (MountKind::Bind, None, false)
        }
        "volume" => {
            if !src.is_empty() && !valid_volume_name(&src) {
                bail!("invalid volume name {src:?} in --mount {m:?}");
            }
            (
                MountKind::Volume,
                (!src.is_empty()).then(|| src.clone()),
                src.is_empty(),
            )
        }
        "tmpfs" => (MountKind::Tmpfs, None, false),
        t => bail!("invalid --mount {m:?}: unknown type {t:?} (use bind, volume or tmpfs)"),
    };
    Ok(PlannedMount {
        spec: MountSpec {
            kind: mk.clone(),
            source: if mk == MountKind::Bind {
                PathBuf::from(&src)
            } else {
                PathBuf::new()
            },
            target: dst,
            readonly,
            propagation,
            options,
        },
        volume,
        anonymous,
        from_v: false,
        mode: String::new(),
    })
}

/// `--tmpfs /path[:opts]`.
pub fn parse_tmpfs_flag(t: &str) -> Result<PlannedMount> {
    let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
    if !dst.starts_with('/') {
        bail!("invalid --tmpfs {t:?}: {dst:?} must be an absolute path");
    }
    let options: Vec<String> = opts.split(',').filter(|o| !o.is_empty()).map(str::to_string).collect();
    let readonly = options.iter().any(|o| o == "ro");
    Ok(PlannedMount {
        spec: MountSpec {
            kind: MountKind::Tmpfs,
            source: PathBuf::new(),
            target: dst.to_string(),
            readonly,
            propagation: String::new(),
            options: options.into_iter().filter(|o| o != "ro" && o != "rw").collect(),
        },
        volume: None,
        anonymous: false,
        from_v: false,
        mode: opts.to_string(),
    })
}

fn parse_ulimit(u: &str) -> Result<(String, u64, u64)> {
    let bad = || anyhow!("invalid --ulimit {u:?} (use name=soft[:hard], e.g. nofile=1024:2048)");
    let (name, vals) = u.split_once('=').ok_or_else(bad)?;
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
    Ok((name.to_string(), soft, hard))
}

fn health_config(image: Option<&berth_store::HealthConfig>, f: &HealthFlags) -> Result<Option<HealthConfig>> {
    let flags_given = f.cmd.is_some()
        || f.interval.is_some()
        || f.timeout.is_some()
        || f.retries.is_some()
        || f.start_period.is_some()
        || f.start_interval.is_some();
    if f.none {
        if flags_given {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
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
    if let Some(c) = &f.cmd {
        h.test = vec!["CMD-SHELL".into(), c.clone()];
    }
    let dur = |v: &Option<String>, what: &str| -> Result<Option<u64>> {
        v.as_deref()
            .map(|s| parse_duration_ns(s).with_context(|| format!("--{what}")))
            .transpose()
    };
    if let Some(v) = dur(&f.interval, "health-interval")? {
        h.interval = v;
    }
    if let Some(v) = dur(&f.timeout, "health-timeout")? {
        h.timeout = v;
    }
    if let Some(v) = dur(&f.start_period, "health-start-period")? {
        h.start_period = v;
    }
    if let Some(v) = dur(&f.start_interval, "health-start-interval")? {
        h.start_interval = v;
    }
    if let Some(r) = f.retries {
        h.retries = r;
    }
    Ok((!h.test.is_empty()).then_some(h))
}

/// Docker's network modes; until bridge networks exist "bridge"/"default"
/// are a private namespace with loopback only.
fn network_mode(engine: &Engine, n: Option<&str>) -> Result<(String, String)> {
    // (runtime mode, what inspect shows)
    match n.unwrap_or("") {
        "" | "default" | "bridge" | "private" => Ok(("private".into(), n.unwrap_or("bridge").to_string())),
        "none" => Ok(("none".into(), "none".into())),
        "host" => Ok(("host".into(), "host".into())),
        m if m.starts_with("container:") => {
            let other = engine.container(&m["container:".len()..])?;
            if other.state.status != "running" || other.state.pid <= 0 {
                bail!(
                    "cannot join the network of container {}: it is not running",
                    other.rec.name
                );
            }
            Ok((
                format!("ns:/proc/{}/ns/net", other.state.pid),
                format!("container:{}", other.rec.id),
            ))
        }
        m => bail!("network {m} not found (berth supports none, host, bridge and container:NAME for now)"),
    }
}

/// The `-p`/`-P` mappings, checked against the network mode.
fn published_ports(
    o: &CreateOptions,
    exposed: Option<&BTreeMap<String, Value>>,
    net_mode: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<berth_net::PortMapping>> {
    let mut ports = Vec::new();
    for p in &o.publish {
        ports.extend(berth_net::parse_publish(p)?);
    }
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
        "none" if !o.publish.is_empty() => bail!(
            "cannot publish ports (-p {}) of a container with --network none: it has no network to reach; drop -p or use the default network",
            o.publish.join(" -p ")
        ),
        "none" => ports.clear(),
        m if m.starts_with("ns:") => bail!("conflicting options: port publishing and the container type network mode"),
        _ => {}
    }
    Ok(ports)
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
    let (os, arch, _) = crate::engine::import::parse_platform(Some(p))?;
    if os != cfg.os || arch != cfg.architecture {
        bail!(
            "image with reference was found but its platform ({}/{}) does not match the requested platform ({p})",
            cfg.os,
            cfg.architecture
        );
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

impl Engine {
    /// Creates a container. With `keep_mounted` its rootfs stays mounted
    /// (`run` starts it next); otherwise it is unmounted before returning.
    pub fn create_container(&self, o: &CreateOptions, keep_mounted: bool) -> Result<Created> {
        let img = image_for_run(self, &o.image, o.pull.as_deref())?;
        let icfg = self.store.image_config(&img.id)?;
        let mut warnings = Vec::new();
        if let Some(p) = o.platform.as_deref().filter(|p| !p.is_empty()) {
            validate_platform(p, &icfg)?;
        }
        let ic = &icfg.config;

        // Name.
        let name = match &o.name {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !valid_name(n) {
                    bail!("Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
                }
                if self.store.container(n).map(|r| r.name == n).unwrap_or(false) {
                    return Err(StoreError::NameInUse(n.to_string()).into());
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
        let override_ep = o
            .entrypoint
            .as_ref()
            .map(|e| if e.is_empty() { vec![] } else { vec![e.clone()] });
        let image_ep = ic.entrypoint.clone().unwrap_or_default();
        let image_cmd = ic.cmd.clone().unwrap_or_default();
        let args = resolve_args(&image_ep, &image_cmd, override_ep.clone(), o.cmd.clone());
        if args.is_empty() {
            bail!(
                "no command specified: the image {} has no ENTRYPOINT or CMD; give a command after the image name",
                o.image
            );
        }
        let (eff_ep, eff_cmd): (Vec<String>, Vec<String>) = match &override_ep {
            Some(ep) => (ep.clone(), o.cmd.clone()),
            None => (
                image_ep.clone(),
                if o.cmd.is_empty() {
                    image_cmd.clone()
                } else {
                    o.cmd.clone()
                },
            ),
        };

        // Environment.
        let mut env = ic.env.clone().unwrap_or_default();
        for f in &o.env_files {
            merge_env(&mut env, expand_env(&read_lines_file(f, "env file")?));
        }
        merge_env(&mut env, expand_env(&o.env));
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, format!("PATH={}", berth_runtime::spec::DEFAULT_PATH));
        }

        let working_dir = o.workdir.clone().unwrap_or_else(|| ic.working_dir.clone());
        if !working_dir.is_empty() && !working_dir.starts_with('/') {
            bail!("the working directory {working_dir:?} is invalid: it needs to be an absolute path");
        }
        let user = o.user.clone().unwrap_or_else(|| ic.user.clone());

        let mut labels = ic.labels.clone().unwrap_or_default();
        for f in &o.label_files {
            labels.extend(parse_kv_list(&read_lines_file(f, "label file")?));
        }
        labels.extend(parse_kv_list(&o.labels));

        // Resources.
        let memory = o.memory.as_deref().map(parse_bytes).transpose().context("--memory")?;
        let memory_swap = match o.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            Some(s) => Some(parse_bytes(s).context("--memory-swap")?),
            None => None,
        };
        if memory_swap.is_some() && memory.is_none() {
            bail!("you should always set the memory limit when using the memoryswap limit, see usage");
        }
        if let Some(m) = memory {
            if m > 0 && m < 6 * 1024 * 1024 {
                bail!("minimum memory limit allowed is 6MB");
            }
        }
        if let Some(c) = o.cpus {
            let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
            if c < 0.0 || c > n {
                bail!("range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available");
            }
        }
        let resources = Resources {
            memory,
            memory_swap,
            cpus: o.cpus,
            cpu_shares: o.cpu_shares,
            pids_limit: o.pids_limit,
            ulimits: o.ulimits.iter().map(|u| parse_ulimit(u)).collect::<Result<_>>()?,
        };
        let restart_policy = RestartPolicy::parse(o.restart.as_deref().unwrap_or("no"))?;
        if o.auto_remove && restart_policy != RestartPolicy::No {
            bail!("conflicting options: cannot specify both --restart and --rm");
        }
        let healthcheck = health_config(ic.healthcheck.as_ref(), &o.health)?;
        let (net_mode, net_shown) = network_mode(self, o.network.as_deref())?;
        if net_mode == "host" && o.hostname.is_some() {
            warnings.push("--hostname has no effect with --network host".into());
        }
        let ports = published_ports(o, ic.exposed_ports.as_ref(), &net_mode, &mut warnings)?;
        if keep_mounted && !ports.is_empty() {
            // `run`: a taken port fails now, before anything exists.
            berth_net::check_available(&ports)?;
        }

        // Mounts: -v, --mount, --tmpfs, then the image's VOLUMEs not covered.
        let mut planned: Vec<PlannedMount> = Vec::new();
        for v in &o.volumes {
            planned.push(parse_volume_flag(v)?);
        }
        for m in &o.mounts {
            planned.push(parse_mount_flag(m)?);
        }
        for t in &o.tmpfs {
            planned.push(parse_tmpfs_flag(t)?);
        }
        {
            let mut seen = std::collections::HashSet::new();
            for p in &planned {
                let t = p.spec.target.trim_end_matches('/').to_string();
                if !seen.insert(t.clone()) {
                    bail!("duplicate mount point: {t}");
                }
            }
        }
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
                        from_v: false,
                        mode: String::new(),
                    });
                }
            }
        }
        for p in &mut planned {
            if p.spec.kind == MountKind::Bind {
                if !p.spec.source.exists() {
                    if p.from_v {
                        std::fs::create_dir_all(&p.spec.source)
                            .with_context(|| format!("creating the bind mount source {}", p.spec.source.display()))?;
                    } else {
                        bail!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            p.spec.source.display()
                        );
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
            id: id.clone(),
            name: name.clone(),
            image_id: img.id.to_string(),
            image_ref: o.image.clone(),
            args: args.clone(),
            env: env.clone(),
            working_dir: working_dir.clone(),
            user: user.clone(),
            hostname: o.hostname.clone().unwrap_or_default(),
            domainname: o.domainname.clone().unwrap_or_default(),
            tty: o.tty,
            open_stdin: o.interactive,
            labels: labels.clone(),
            stop_signal: o
                .stop_signal
                .clone()
                .or_else(|| (!ic.stop_signal.is_empty()).then(|| ic.stop_signal.clone())),
            stop_timeout: o.stop_timeout,
            mounts: vec![],
            read_only: o.read_only,
            privileged: o.privileged,
            cap_add: o.cap_add.clone(),
            cap_drop: o.cap_drop.clone(),
            security_opt: o.security_opt.clone(),
            devices: o.devices.clone(),
            init: o.init,
            network_mode: net_mode.clone(),
            ports,
            resources: resources.clone(),
            restart_policy: restart_policy.clone(),
            healthcheck: healthcheck.clone(),
            auto_remove: o.auto_remove,
            shell,
        };
        // Validate before touching the disk.
        berth_runtime::spec::effective_caps(&cc)?;

        // The container directory.
        let dir = self.container_dir(&id);
        let mut cleanup = Cleanup {
            engine: self,
            dir: Some(dir.clone()),
            volumes: vec![],
        };
        for sub in [UPPER, WORK, ROOTFS] {
            std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        let rootfs = dir.join(ROOTFS);
        self.mount_rootfs(&img, &dir, cc.auto_remove)?;

        // Volumes (created on first use, pre-filled from the image).
        for p in &mut planned {
            if p.spec.kind != MountKind::Volume {
                continue;
            }
            let vname = p.volume.clone().expect("volume name set above");
            let (data, created) = self.ensure_volume(&vname, p.anonymous)?;
            if created {
                cleanup.volumes.push(vname.clone());
            }
            if created || dir_is_empty(&data) {
                super::files::copy_image_path_into(&rootfs, &p.spec.target, &data)
                    .with_context(|| format!("copying the image's {} into volume {vname}", p.spec.target))?;
            }
            p.spec.source = data;
        }
        cc.mounts = planned.iter().map(|p| p.spec.clone()).collect();

        let spec = berth_runtime::build_spec(&cc, &rootfs, &dir)?;
        let mut spec = serde_json::to_value(&spec).context("serialising the OCI spec")?;
        if crate::engine::is_rootless() {
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

        // Record last: only now does the container exist.
        let created = now_rfc3339();
        let record = self.record_json(o, &cc, &img, &planned, &eff_ep, &eff_cmd, &net_shown, &icfg);
        self.store.insert_container(&ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            image_id: img.id.to_string(),
            created,
            config: record,
        })?;
        cleanup.dir = None;
        cleanup.volumes.clear();
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
    pub(crate) fn mount_rootfs(&self, img: &ImageRecord, dir: &Path, disposable: bool) -> Result<()> {
        if crate::engine::is_rootless() {
            // An unprivileged user cannot mount overlayfs here; the OCI
            // runtime mounts it inside the container's user namespace.
            return Ok(());
        }
        let rootfs = dir.join(ROOTFS);
        if berth_runtime::mount::is_mountpoint(&rootfs) {
            return Ok(());
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
    fn rootless_overlay(&self, img: &ImageRecord, dir: &Path, spec: &mut Value) -> Result<()> {
        let mut lowers: Vec<String> = img
            .layers
            .iter()
            .rev()
            .map(|l| self.store.layer_dir(l).display().to_string())
            .collect();
        if lowers.is_empty() {
            let empty = dir.join("empty-lower");
            std::fs::create_dir_all(&empty).with_context(|| format!("creating {}", empty.display()))?;
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

    /// The volume's data dir, creating the volume when new; returns
    /// whether it was created now.
    pub fn ensure_volume(&self, name: &str, anonymous: bool) -> Result<(PathBuf, bool)> {
        let vdir = self.store.volumes_dir().join(name);
        let data = vdir.join("_data");
        if self.store.volume(name)?.is_some() && data.is_dir() {
            return Ok((data, false));
        }
        std::fs::create_dir_all(&data).with_context(|| format!("creating volume directory {}", data.display()))?;
        let mut labels = BTreeMap::new();
        if anonymous {
            labels.insert("com.docker.volume.anonymous".to_string(), String::new());
        }
        let inserted = self.store.insert_volume(&VolumeRecord {
            name: name.to_string(),
            created: now_rfc3339(),
            labels,
        })?;
        Ok((data, inserted))
    }

    #[allow(clippy::too_many_arguments)]
    fn record_json(
        &self,
        o: &CreateOptions,
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
        let config = json!({
            "Hostname": if cc.hostname.is_empty() { cc.id[..12].to_string() } else { cc.hostname.clone() },
            "Domainname": cc.domainname,
            "User": cc.user,
            "AttachStdin": o.interactive,
            "AttachStdout": true,
            "AttachStderr": true,
            "ExposedPorts": exposed_ports(icfg.config.exposed_ports.as_ref(), &cc.ports),
            "Tty": cc.tty,
            "OpenStdin": cc.open_stdin,
            "StdinOnce": cc.open_stdin,
            "Env": cc.env,
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
        let binds: Vec<String> = o.volumes.clone();
        let mounts_flag: Vec<Value> = planned
            .iter()
            .filter(|p| !p.from_v && p.spec.kind != MountKind::Tmpfs && !(p.anonymous && p.volume.is_some() && p.mode.is_empty() && o.mounts.is_empty()))
            .map(|p| {
                json!({
                    "Type": match p.spec.kind { MountKind::Bind => "bind", MountKind::Volume => "volume", MountKind::Tmpfs => "tmpfs" },
                    "Source": p.volume.clone().unwrap_or_else(|| p.spec.source.display().to_string()),
                    "Target": p.spec.target,
                    "ReadOnly": p.spec.readonly,
                })
            })
            .collect();
        let tmpfs: BTreeMap<String, String> = o
            .tmpfs
            .iter()
            .map(|t| {
                let (d, opts) = t.split_once(':').unwrap_or((t, ""));
                (d.to_string(), opts.to_string())
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
            "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": net_shown,
            "PortBindings": port_bindings(&cc.ports),
            "RestartPolicy": {"Name": rp_name, "MaximumRetryCount": rp_max},
            "AutoRemove": cc.auto_remove,
            "VolumeDriver": "",
            "VolumesFrom": Value::Null,
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
            "Mounts": if mounts_flag.is_empty() { Value::Null } else { json!(mounts_flag) },
            "MaskedPaths": if cc.privileged { Value::Null } else { json!(berth_runtime::spec::MASKED_PATHS) },
            "ReadonlyPaths": if cc.privileged { Value::Null } else { json!(berth_runtime::spec::READONLY_PATHS) },
        });
        let mounts: Vec<Value> = planned
            .iter()
            .map(|p| match p.spec.kind {
                MountKind::Bind => json!({
                    "Type": "bind", "Source": p.spec.source, "Destination": p.spec.target,
                    "Mode": p.mode, "RW": !p.spec.readonly,
                    "Propagation": if p.spec.propagation.is_empty() { "rprivate" } else { p.spec.propagation.as_str() },
                }),
                MountKind::Volume => json!({
                    "Type": "volume", "Name": p.volume, "Source": p.spec.source, "Destination": p.spec.target,
                    "Driver": "local", "Mode": if p.mode.is_empty() { "z" } else { p.mode.as_str() }, "RW": !p.spec.readonly, "Propagation": "",
                }),
                MountKind::Tmpfs => json!({
                    "Type": "tmpfs", "Source": "", "Destination": p.spec.target, "Mode": p.mode,
                    "RW": !p.spec.readonly, "Propagation": "",
                }),
            })
            .collect();
        let anon: Vec<String> = planned
            .iter()
            .filter(|p| p.anonymous)
            .filter_map(|p| p.volume.clone())
            .collect();
        json!({
            "Path": cc.args.first(),
            "Args": cc.args.get(1..).unwrap_or(&[]),
            "Config": config,
            "HostConfig": host_config,
            "Mounts": mounts,
            "AnonymousVolumes": anon,
            "Platform": icfg.os,
            "ImageRef": img.tags.first().cloned().unwrap_or_default(),
        })
    }
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags() {
        let m = parse_volume_flag("/a:/b:ro").unwrap();
        assert_eq!(m.spec.kind, MountKind::Bind);
        assert!(m.spec.readonly);
        let m = parse_volume_flag("data:/b").unwrap();
        assert_eq!(m.volume.as_deref(), Some("data"));
        let m = parse_volume_flag("/b").unwrap();
        assert!(m.anonymous);
        assert!(parse_volume_flag("a:b").is_err());
        assert!(parse_volume_flag("/a:/b:bogus").is_err());
    }

    #[test]
    fn mount_flags() {
        let m = parse_mount_flag("type=bind,source=/tmp,target=/x,readonly").unwrap();
        assert_eq!(m.spec.kind, MountKind::Bind);
        assert!(m.spec.readonly);
        let m = parse_mount_flag("type=tmpfs,target=/t,tmpfs-size=1m").unwrap();
        assert_eq!(m.spec.options, vec!["size=1048576".to_string()]);
        assert!(parse_mount_flag("type=bind,target=/x").is_err());
        assert!(parse_mount_flag("type=nfs,target=/x").is_err());
    }

    #[test]
    fn publish_flags() {
        let exposed: BTreeMap<String, Value> = [("8080/tcp".to_string(), json!({})), ("53/udp".to_string(), json!({}))]
            .into_iter()
            .collect();
        let mut o = CreateOptions {
            publish: vec!["127.0.0.1:9000:8080".into()],
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
        assert!(published_ports(&o, None, "none", &mut w).is_err());
        assert!(published_ports(&o, None, "ns:/proc/1/ns/net", &mut w).is_err());
        o.publish.clear();
        assert!(published_ports(&o, Some(&exposed), "none", &mut w).unwrap().is_empty());
        assert_eq!(exposed_ports(None, &p), json!({"53/udp": {}, "8080/tcp": {}}));
    }

    #[test]
    fn ulimits() {
        assert_eq!(parse_ulimit("nofile=10:20").unwrap(), ("nofile".into(), 10, 20));
        assert_eq!(parse_ulimit("nproc=5").unwrap(), ("nproc".into(), 5, 5));
        assert!(parse_ulimit("nofile").is_err());
    }
}
