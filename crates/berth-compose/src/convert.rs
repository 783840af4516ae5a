//! A service of a loaded project → the engine's typed requests: the
//! [`ContainerSpec`] of one of its containers, the [`BuildRequest`] of its
//! image, and the names compose gives its networks and volumes. Pure: the
//! values are parsed with the engine's own parsers (so compose and the CLI
//! refuse the same things with the same words), nothing is created.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_engine::build::{BuildRequest, ContextSource};
use berth_engine::spec::{
    self, ContainerFile, ContainerSpec, DnsSpec, EndpointSpec, HealthSpec, Mount, MountOrigin, MountSource,
    NetworkMode, PullPolicy, UserSpec,
};
use berth_engine::{EngineError, Result};

use crate::identity::{self, container_labels, image_name};
use crate::loader::Loaded;
use crate::model::{Port, Service, ServiceVolume};

/// The engine's name of network `key` of the project (`PROJECT_KEY`,
/// its `name:`, or the external network's own name).
pub fn network_name(loaded: &Loaded, key: &str) -> String {
    loaded
        .project
        .networks
        .get(key)
        .and_then(|n| n.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", loaded.project.name))
}

/// The engine's name of volume `key` of the project.
pub fn volume_name(loaded: &Loaded, key: &str) -> String {
    loaded
        .project
        .volumes
        .get(key)
        .and_then(|v| v.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", loaded.project.name))
}

/// The networks a service joins, in the order compose attaches them:
/// highest `priority` first, then by key.
pub fn service_networks(service: &Service) -> Vec<String> {
    let mut keys: Vec<(i64, String)> = service
        .networks
        .iter()
        .map(|(k, n)| (n.as_ref().and_then(|n| n.priority).unwrap_or(0), k.clone()))
        .collect();
    keys.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    keys.into_iter().map(|(_, k)| k).collect()
}

fn invalid(service: &str, what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::invalid_value(format!("service {service:?}: {what}: {e}"))
}

/// What differs between the containers of one service.
#[derive(Clone, Debug, Default)]
pub struct Instance {
    /// The replica number (from 1); for a one-off container, 1.
    pub number: u32,
    /// A `compose run` container: its name, and no published ports unless asked.
    pub oneoff: Option<String>,
    /// The image ID the container is made from, for `com.docker.compose.image`.
    pub image_id: Option<String>,
}

/// The spec of container `inst` of service `name`.
pub fn container_spec(loaded: &Loaded, name: &str, inst: &Instance) -> Result<ContainerSpec> {
    let project = &loaded.project;
    let s = project
        .services
        .get(name)
        .ok_or_else(|| EngineError::not_found(format!("no such service: {name}")))?;
    let mut spec = ContainerSpec::new(image_name(&project.name, name, s));
    spec.name = Some(match &inst.oneoff {
        Some(n) => n.clone(),
        None => identity::container_name(&project.name, name, s, inst.number),
    });
    spec.command = s.command.clone().unwrap_or_default();
    spec.entrypoint = s.entrypoint.clone();
    for (k, v) in &s.environment {
        match v {
            Some(v) => spec.env.push(format!("{k}={v}")),
            None => {
                if let Some(v) = loaded.environment.get(k) {
                    spec.env.push(format!("{k}={v}"));
                }
            }
        }
    }
    spec.working_dir = s.working_dir.clone();
    spec.user = s
        .user
        .as_deref()
        .map(UserSpec::parse)
        .transpose()
        .map_err(|e| invalid(name, "user", e))?;
    spec.hostname = s.hostname.clone();
    spec.domainname = s.domainname.clone();
    spec.labels = container_labels(
        loaded,
        name,
        inst.number,
        inst.oneoff.is_some(),
        inst.image_id.as_deref(),
    );
    spec.mounts = mounts(loaded, name, s, &mut spec.files)?;
    for k in s.sysctls.keys() {
        spec::check_sysctl(k).map_err(|e| invalid(name, "sysctls", e))?;
    }
    spec.sysctls = s.sysctls.clone();
    spec.annotations = s.annotations.clone();
    spec.group_add = s.group_add.clone();
    spec.use_api_socket = s.use_api_socket;
    spec.pid = namespace(loaded, name, "pid", spec::NamespaceKind::Pid, &s.pid)?;
    spec.ipc = namespace(loaded, name, "ipc", spec::NamespaceKind::Ipc, &s.ipc)?;
    spec.uts = namespace(loaded, name, "uts", spec::NamespaceKind::Uts, &s.uts)?;
    spec.cgroupns = namespace(loaded, name, "cgroup", spec::NamespaceKind::Cgroup, &s.cgroup)?;
    for e in &s.expose {
        spec.expose
            .extend(spec::parse_expose(e).map_err(|err| invalid(name, "expose", err))?);
    }
    if let Some(size) = &s.shm_size {
        // `shm_size`: the container's /dev/shm as Docker makes it, sized.
        let bytes = spec::parse_bytes("shm_size", size).map_err(|e| invalid(name, "shm_size", e))?;
        if !spec.mounts.iter().any(|m| m.target == "/dev/shm") {
            spec.mounts.push(Mount {
                target: "/dev/shm".into(),
                source: MountSource::Tmpfs {
                    options: vec![
                        "nosuid".into(),
                        "nodev".into(),
                        "noexec".into(),
                        "mode=1777".into(),
                        format!("size={bytes}"),
                    ],
                },
                readonly: false,
                propagation: String::new(),
                origin: MountOrigin::Mount,
            });
        }
    }
    spec.volumes_from = s
        .volumes_from
        .iter()
        .map(|v| {
            // `SERVICE[:ro|rw]` (its first container) or `container:NAME[:ro|rw]`.
            if let Some(c) = v.strip_prefix("container:") {
                return c.to_string();
            }
            let (svc, mode) = match v.rsplit_once(':') {
                Some((svc, m @ ("ro" | "rw"))) => (svc, Some(m)),
                _ => (v.as_str(), None),
            };
            let target = match project.services.get(svc) {
                Some(other) => identity::container_name(&project.name, svc, other, 1),
                None => svc.to_string(),
            };
            match mode {
                Some(m) => format!("{target}:{m}"),
                None => target,
            }
        })
        .collect();
    if let Some(l) = &s.logging {
        // The driver and its options (json-file's max-size/max-file), checked
        // by the engine as `--log-opt` is.
        spec.log_driver = l.driver.clone();
        spec.log_opts = l.options.clone();
    }
    spec.storage_opts = s.storage_opt.clone();
    spec.read_only = s.read_only;
    spec.resources = resources(name, s)?;
    blkio(name, s, &mut spec.resources)?;
    spec.cap_add = s.cap_add.clone();
    spec.cap_drop = s.cap_drop.clone();
    spec.security_opt = s.security_opt.clone();
    spec.devices = s.devices.clone();
    spec.privileged = s.privileged;
    spec.init = s.init.unwrap_or(false);
    spec.restart = spec::parse_restart(&restart_policy(s)).map_err(|e| invalid(name, "restart", e))?;
    spec.stop_signal = s
        .stop_signal
        .as_deref()
        .map(spec::Signal::parse)
        .transpose()
        .map_err(|e| invalid(name, "stop_signal", e))?;
    spec.stop_timeout = s
        .stop_grace_period
        .as_deref()
        .map(spec::parse_duration)
        .transpose()
        .map_err(|e| invalid(name, "stop_grace_period", e))?;
    networking(loaded, name, s, inst.oneoff.is_some(), &mut spec)?;
    if inst.oneoff.is_none() {
        spec.ports = ports(name, &s.ports)?;
    }
    spec.tty = s.tty;
    spec.open_stdin = s.stdin_open;
    spec.platform = s.platform.clone();
    spec.pull = match s.pull_policy.as_deref() {
        Some("always" | "refresh") => PullPolicy::Always,
        Some("never") | Some("build") => PullPolicy::Never,
        _ if s.build.is_some() => PullPolicy::Never,
        _ => PullPolicy::Missing,
    };
    spec.health = health(name, s)?;
    spec.userns = s.userns_mode.clone();
    Ok(spec)
}

/// `restart`, else `deploy.restart_policy` as compose maps it (`any`:
/// always, `on-failure` with `max_attempts`, `none`: no).
fn restart_policy(s: &Service) -> String {
    if let Some(r) = &s.restart {
        return r.clone();
    }
    let Some(p) = s.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) else {
        return "no".into();
    };
    match p.condition.as_deref() {
        Some("none") => "no".into(),
        Some("on-failure") => match p.max_attempts {
            Some(n) if n > 0 => format!("on-failure:{n}"),
            _ => "on-failure".into(),
        },
        _ => "always".into(),
    }
}

/// `volumes:`, `tmpfs:`, then secrets and configs. A file source with no
/// `uid`, `gid` or `mode` is bind-mounted read-only as compose does (so the
/// container sees the file as it changes); any other source (`environment`,
/// `content`, or a file given an owner or mode) becomes a file the engine
/// keeps in the container's private directory, with compose's defaults
/// (owner 0:0, mode 0444). Secrets go to `/run/secrets/`, configs to `/`.
fn mounts(loaded: &Loaded, name: &str, s: &Service, files: &mut Vec<ContainerFile>) -> Result<Vec<Mount>> {
    let mut out = Vec::new();
    for v in &s.volumes {
        out.push(volume_mount(loaded, name, v)?);
    }
    for t in &s.tmpfs {
        out.push(spec::parse_tmpfs(t).map_err(|e| invalid(name, "tmpfs", e))?);
    }
    for (refs, objects, default_dir, what) in [
        (&s.secrets, &loaded.project.secrets, "/run/secrets", "secret"),
        (&s.configs, &loaded.project.configs, "", "config"),
    ] {
        for r in refs {
            let obj = objects
                .get(&r.source)
                .ok_or_else(|| invalid(name, what, format!("undefined {what} {:?}", r.source)))?;
            let target = match &r.target {
                Some(t) if t.starts_with('/') => t.clone(),
                Some(t) => format!("{default_dir}/{t}"),
                None => format!("{default_dir}/{}", r.source),
            };
            let plain = r.uid.is_none() && r.gid.is_none() && r.mode.is_none();
            let content = match (&obj.file, &obj.environment, &obj.content) {
                (Some(file), _, _) if plain => {
                    out.push(Mount {
                        target,
                        source: MountSource::Bind {
                            path: PathBuf::from(file),
                            create: false,
                        },
                        readonly: true,
                        propagation: String::new(),
                        origin: MountOrigin::Mount,
                    });
                    continue;
                }
                (Some(file), _, _) => std::fs::read(file)
                    .map_err(|e| invalid(name, what, format!("{what} {:?}: reading {file}: {e}", r.source)))?,
                (None, Some(var), _) => loaded
                    .environment
                    .get(var)
                    .ok_or_else(|| {
                        invalid(
                            name,
                            what,
                            format!("{what} {:?}: environment variable {var:?} is not set", r.source),
                        )
                    })?
                    .clone()
                    .into_bytes(),
                (None, None, Some(c)) => c.clone().into_bytes(),
                (None, None, None) => {
                    return Err(invalid(
                        name,
                        what,
                        format!(
                            "{what} {:?}: external {what}s are a swarm feature; give it a file, \
                             environment or content source",
                            r.source
                        ),
                    ))
                }
            };
            let id = |v: &Option<String>, field: &str| -> Result<u32> {
                v.as_deref().map_or(Ok(0), |v| {
                    v.trim().parse::<u32>().map_err(|_| {
                        invalid(
                            name,
                            what,
                            format!("{what} {:?}: {field} {v:?} is not a number", r.source),
                        )
                    })
                })
            };
            files.push(ContainerFile {
                target,
                content,
                uid: id(&r.uid, "uid")?,
                gid: id(&r.gid, "gid")?,
                mode: r.mode.unwrap_or(0o444),
            });
        }
    }
    Ok(out)
}

fn volume_mount(loaded: &Loaded, name: &str, v: &ServiceVolume) -> Result<Mount> {
    let source = match v.kind.as_str() {
        "volume" => MountSource::Volume {
            name: v.source.as_deref().map(|k| volume_name(loaded, k)),
            options: Default::default(),
            nocopy: v.volume.as_ref().is_some_and(|o| o.nocopy),
        },
        "bind" => MountSource::Bind {
            path: PathBuf::from(
                v.source
                    .clone()
                    .ok_or_else(|| invalid(name, "volumes", "a bind mount needs a source"))?,
            ),
            create: v.bind.as_ref().is_some_and(|b| b.create_host_path),
        },
        "tmpfs" => {
            let mut options = Vec::new();
            if let Some(t) = &v.tmpfs {
                if let Some(size) = &t.size {
                    options.push(format!("size={size}"));
                }
                if let Some(mode) = t.mode {
                    options.push(format!("mode={mode:o}"));
                }
            }
            MountSource::Tmpfs { options }
        }
        other => {
            return Err(invalid(
                name,
                "volumes",
                format!("mount type {other:?} is not supported by berth"),
            ))
        }
    };
    Ok(Mount {
        target: v.target.clone(),
        source,
        readonly: v.read_only,
        propagation: v.bind.as_ref().and_then(|b| b.propagation.clone()).unwrap_or_default(),
        origin: MountOrigin::Mount,
    })
}

/// `blkio_config`: `weight`, `weight_device` and the four
/// `device_{read,write}_{bps,iops}` lists of `{path, rate|weight}`, read
/// through the engine's parsers of the matching `run` flags.
fn blkio(name: &str, s: &Service, r: &mut spec::Resources) -> Result<()> {
    let Some(b) = &s.blkio_config else {
        return Ok(());
    };
    let key = |k: &str| format!("blkio_config.{k}");
    if let Some(w) = b.get("weight").filter(|w| !w.is_null()) {
        let w = w
            .as_u64()
            .filter(|w| (10..=1000).contains(w))
            .ok_or_else(|| invalid(name, &key("weight"), "expected a whole number from 10 to 1000"))?;
        r.blkio_weight = Some(w as u16);
    }
    let entries = |k: &str, field: &str| -> Result<Vec<String>> {
        let Some(list) = b.get(k).filter(|v| !v.is_null()) else {
            return Ok(Vec::new());
        };
        let list = list
            .as_array()
            .ok_or_else(|| invalid(name, &key(k), "expected a list"))?;
        list.iter()
            .map(|e| {
                let path = e["path"].as_str().unwrap_or_default();
                let value = match &e[field] {
                    serde_json::Value::String(v) => v.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    _ => String::new(),
                };
                if path.is_empty() || value.is_empty() {
                    return Err(invalid(name, &key(k), format!("each entry needs a path and a {field}")));
                }
                Ok(format!("{path}:{value}"))
            })
            .collect()
    };
    for t in entries("weight_device", "weight")? {
        r.blkio_weight_device
            .push(spec::parse_weight_device(&t).map_err(|e| invalid(name, &key("weight_device"), e))?);
    }
    type Parse = fn(&str) -> berth_engine::Result<spec::ThrottleDevice>;
    let lists: [(&str, Parse, &mut Vec<spec::ThrottleDevice>); 4] = [
        ("device_read_bps", spec::parse_throttle_bps, &mut r.device_read_bps),
        ("device_write_bps", spec::parse_throttle_bps, &mut r.device_write_bps),
        ("device_read_iops", spec::parse_throttle_iops, &mut r.device_read_iops),
        ("device_write_iops", spec::parse_throttle_iops, &mut r.device_write_iops),
    ];
    for (k, parse, out) in lists {
        for t in entries(k, "rate")? {
            out.push(parse(&t).map_err(|e| invalid(name, &key(k), e))?);
        }
    }
    Ok(())
}

/// A compose ulimit as `--ulimit`'s `NAME=SOFT[:HARD]`.
fn ulimit_text(k: &str, u: &crate::model::Ulimit) -> String {
    match u {
        crate::model::Ulimit::Single(n) => format!("{k}={n}"),
        crate::model::Ulimit::SoftHard { soft, hard } => format!("{k}={soft}:{hard}"),
    }
}

fn resources(name: &str, s: &Service) -> Result<spec::Resources> {
    let limits = s
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let memory = s
        .mem_limit
        .clone()
        .or_else(|| limits.and_then(|l| l.memory.clone()))
        .map(|m| spec::parse_bytes("mem_limit", &m))
        .transpose()
        .map_err(|e| invalid(name, "mem_limit", e))?;
    let memory_swap = match s.memswap_limit.as_deref() {
        None => None,
        Some("-1") => Some(spec::MemorySwap::Unlimited),
        Some(m) => Some(spec::MemorySwap::Limit(
            spec::parse_bytes("memswap_limit", m).map_err(|e| invalid(name, "memswap_limit", e))?,
        )),
    };
    let cpus = s
        .cpus
        .map(|c| c.to_string())
        .or_else(|| limits.and_then(|l| l.cpus.clone()));
    let nano_cpus = cpus
        .as_deref()
        .map(spec::parse_cpus)
        .transpose()
        .map_err(|e| invalid(name, "cpus", e))?;
    // `mem_reservation`, or deploy's memory reservation (Docker Compose's
    // soft limit); the CPU reservation is a swarm scheduling hint.
    let memory_reservation = s
        .mem_reservation
        .clone()
        .or_else(|| {
            s.deploy
                .as_ref()
                .and_then(|d| d.resources.as_ref())
                .and_then(|r| r.reservations.as_ref())
                .and_then(|r| r.memory.clone())
        })
        .map(|m| spec::parse_bytes("mem_reservation", &m))
        .transpose()
        .map_err(|e| invalid(name, "mem_reservation", e))?;
    let mut ulimits = Vec::new();
    for (k, u) in &s.ulimits {
        ulimits.push(spec::parse_ulimit(&ulimit_text(k, u)).map_err(|e| invalid(name, "ulimits", e))?);
    }
    Ok(spec::Resources {
        memory,
        memory_swap,
        nano_cpus,
        cpu_shares: s.cpu_shares.map(|c| c.max(0) as u64),
        pids_limit: s.pids_limit.or_else(|| limits.and_then(|l| l.pids)),
        ulimits,
        device_cgroup_rules: s.device_cgroup_rules.clone(),
        cgroup_parent: s.cgroup_parent.clone(),
        cpu_rt_period: s.cpu_rt_period,
        cpu_rt_runtime: s.cpu_rt_runtime,
        cpuset_cpus: s.cpuset.clone(),
        cpu_period: s.cpu_period,
        cpu_quota: s.cpu_quota,
        memory_reservation,
        memory_swappiness: s.mem_swappiness,
        oom_kill_disable: s.oom_kill_disable,
        oom_score_adj: s.oom_score_adj,
        ..Default::default()
    })
}

/// `pid`, `ipc`, `uts`, `cgroup`: as the run flags take them, and
/// `service:NAME` for that service's (first) container.
fn namespace(
    loaded: &Loaded,
    name: &str,
    key: &str,
    kind: spec::NamespaceKind,
    v: &Option<String>,
) -> Result<spec::NamespaceMode> {
    let v = v.as_deref().unwrap_or("");
    if let Some(other) = v.strip_prefix("service:") {
        let container = service_container(loaded, name, key, other)?;
        return spec::NamespaceMode::parse(kind, &format!("container:{container}")).map_err(|e| invalid(name, key, e));
    }
    spec::NamespaceMode::parse(kind, v).map_err(|e| invalid(name, key, e))
}

/// The (first) container of service `other`, which `key` of service
/// `name` names as `service:OTHER`.
fn service_container(loaded: &Loaded, name: &str, key: &str, other: &str) -> Result<String> {
    let svc = loaded
        .project
        .services
        .get(other)
        .ok_or_else(|| invalid(name, key, format!("no such service: {other}")))?;
    Ok(identity::container_name(&loaded.project.name, other, svc, 1))
}

/// `network_mode`, `networks` (aliases, addresses), `links`, `dns*`, `extra_hosts`.
fn networking(loaded: &Loaded, name: &str, s: &Service, oneoff: bool, spec: &mut ContainerSpec) -> Result<()> {
    let container_name = spec.name.clone().unwrap_or_default();
    let project = &loaded.project;
    match s.network_mode.as_deref() {
        Some("none") => spec.network = NetworkMode::None,
        Some("host") => spec.network = NetworkMode::Host,
        Some(m) if m.starts_with("service:") => {
            let other = &m["service:".len()..];
            spec.network = NetworkMode::Container(service_container(loaded, name, "network_mode", other)?);
        }
        Some(m) if m.starts_with("container:") => {
            spec.network = NetworkMode::Container(m["container:".len()..].to_string());
        }
        // Docker's default bridge, as `run --network bridge` means it.
        Some(m @ ("bridge" | "default")) => {
            spec.network = NetworkMode::parse(m).map_err(|e| invalid(name, "network_mode", e))?
        }
        Some(m) => spec.network = NetworkMode::Network(m.to_string()),
        None => {
            let keys = service_networks(s);
            for key in &keys {
                let opts = s.networks.get(key).cloned().flatten().unwrap_or_default();
                // As compose: the container's name; for a service's own
                // containers (not one-offs) also the service name and the
                // configured aliases, so `run` never answers for a service.
                let mut aliases = vec![container_name.to_string()];
                if !oneoff {
                    for a in std::iter::once(name).chain(opts.aliases.iter().map(String::as_str)) {
                        if !aliases.iter().any(|x| x == a) {
                            aliases.push(a.to_string());
                        }
                    }
                }
                let ipv4 = opts
                    .ipv4_address
                    .as_deref()
                    .map(|a| a.parse())
                    .transpose()
                    .map_err(|e| invalid(name, "networks.ipv4_address", e))?;
                let ipv6 = opts
                    .ipv6_address
                    .as_deref()
                    .map(|a| a.parse())
                    .transpose()
                    .map_err(|e| invalid(name, "networks.ipv6_address", e))?;
                let link_local_ips = opts
                    .link_local_ips
                    .iter()
                    .map(|a| a.parse())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| invalid(name, "networks.link_local_ips", e))?;
                spec.endpoints.push(EndpointSpec {
                    network: network_name(loaded, key),
                    aliases,
                    ipv4,
                    ipv6,
                    mac_address: opts.mac_address.clone(),
                    link_local_ips,
                });
            }
            if let Some(first) = spec.endpoints.first() {
                spec.network = NetworkMode::Network(first.network.clone());
            }
        }
    }
    for l in &s.links {
        let (svc, alias) = l.split_once(':').unwrap_or((l.as_str(), l.as_str()));
        let target = match project.services.get(svc) {
            Some(other) => identity::container_name(&project.name, svc, other, 1),
            None => svc.to_string(),
        };
        spec.links.push((target, alias.to_string()));
    }
    for l in &s.external_links {
        let (c, alias) = l.split_once(':').unwrap_or((l.as_str(), l.as_str()));
        spec.links.push((c.to_string(), alias.to_string()));
    }
    let mut dns = DnsSpec::default();
    for d in &s.dns {
        dns.servers
            .push(d.parse().map_err(|e| invalid(name, "dns", format!("{d}: {e}")))?);
    }
    dns.search = s.dns_search.clone();
    dns.options = s.dns_opt.clone();
    spec.dns = dns;
    for h in &s.extra_hosts {
        let (host, addr) = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .ok_or_else(|| invalid(name, "extra_hosts", format!("{h:?}: use HOST=ADDRESS")))?;
        spec.extra_hosts.push((host.to_string(), addr.to_string()));
    }
    spec.mac_address = s.mac_address.clone();
    Ok(())
}

/// Long-syntax ports → the engine's mappings (through Docker's `-p` parser).
pub fn ports(name: &str, ports: &[Port]) -> Result<Vec<spec::PortMapping>> {
    let mut out = Vec::new();
    for p in ports {
        let proto = p.protocol.as_deref().unwrap_or("tcp");
        let mut text = String::new();
        if let Some(ip) = &p.host_ip {
            if ip.contains(':') {
                text.push_str(&format!("[{ip}]:"));
            } else {
                text.push_str(&format!("{ip}:"));
            }
        }
        match &p.published {
            Some(h) => text.push_str(&format!("{h}:")),
            None if p.host_ip.is_some() => text.push(':'),
            None => {}
        }
        text.push_str(&format!("{}/{proto}", p.target));
        out.extend(spec::parse_publish(&text).map_err(|e| invalid(name, "ports", e))?);
    }
    Ok(out)
}

fn health(name: &str, s: &Service) -> Result<HealthSpec> {
    let Some(h) = &s.healthcheck else {
        return Ok(HealthSpec::default());
    };
    let d = |v: &Option<String>, what: &str| {
        v.as_deref()
            .map(spec::parse_duration)
            .transpose()
            .map_err(|e| invalid(name, &format!("healthcheck.{what}"), e))
    };
    let disabled = h.disable || h.test.as_ref().is_some_and(|t| t.first().is_some_and(|w| w == "NONE"));
    Ok(HealthSpec {
        disabled,
        test: if disabled { None } else { h.test.clone() },
        interval: d(&h.interval, "interval")?,
        timeout: d(&h.timeout, "timeout")?,
        start_period: d(&h.start_period, "start_period")?,
        start_interval: d(&h.start_interval, "start_interval")?,
        retries: h.retries.map(|r| r.min(u32::MAX as u64) as u32),
    })
}

/// The build of service `name`'s image, tagged with its image name and
/// `build.tags`; `None` when it has no `build`. `extra_args` are
/// `--build-arg` values over the file's.
pub fn build_request(
    loaded: &Loaded,
    name: &str,
    extra_args: &BTreeMap<String, String>,
    no_cache: bool,
    pull: bool,
) -> Result<Option<BuildRequest<'static>>> {
    let project = &loaded.project;
    let Some(s) = project.services.get(name) else {
        return Err(EngineError::not_found(format!("no such service: {name}")));
    };
    let Some(b) = &s.build else {
        return Ok(None);
    };
    let context = PathBuf::from(&b.context);
    if b.context.contains("://") || b.context.starts_with("git@") {
        return Err(invalid(
            name,
            "build.context",
            "remote build contexts are not supported by berth yet",
        ));
    }
    let file = match (&b.dockerfile_inline, &b.dockerfile) {
        // The text itself (below).
        (Some(_), _) => None,
        (None, Some(f)) if Path::new(f).is_absolute() => Some(PathBuf::from(f)),
        (None, Some(f)) => Some(context.join(f)),
        (None, None) => None,
    };
    let mut build_args = BTreeMap::new();
    for (k, v) in &b.args {
        match v {
            Some(v) => {
                build_args.insert(k.clone(), v.clone());
            }
            None => {
                if let Some(v) = loaded.environment.get(k) {
                    build_args.insert(k.clone(), v.clone());
                }
            }
        }
    }
    build_args.extend(extra_args.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut tags = vec![image_name(&project.name, name, s)];
    tags.extend(b.tags.iter().cloned());
    // What berth's builder cannot do is refused by name, as `berth build`
    // refuses the flags (a build that quietly lacks them is worse).
    let refuse = |key: &str| {
        Err(invalid(
            name,
            &format!("build.{key}"),
            "not supported by berth's builder yet: leave it out",
        ))
    };
    if b.privileged {
        return refuse("privileged");
    }
    if !b.entitlements.is_empty() {
        return refuse("entitlements");
    }
    if b.isolation.as_deref().is_some_and(|i| i != "default") {
        return refuse("isolation");
    }
    let mut secrets = BTreeMap::new();
    for r in &b.secrets {
        let obj = project
            .secrets
            .get(&r.source)
            .ok_or_else(|| invalid(name, "build.secrets", format!("undefined secret {:?}", r.source)))?;
        // The id RUN --mount=type=secret names: the target, else the key.
        let id = r.target.clone().unwrap_or_else(|| r.source.clone());
        let src = match (&obj.file, &obj.environment, &obj.content) {
            (Some(f), _, _) => berth_build::executor::SecretSource::File(PathBuf::from(f)),
            (None, Some(var), _) => {
                let v = loaded.environment.get(var).ok_or_else(|| {
                    invalid(
                        name,
                        "build.secrets",
                        format!("secret {:?}: environment variable {var:?} is not set", r.source),
                    )
                })?;
                berth_build::executor::SecretSource::Value(berth_build::executor::SecretValue::new(
                    v.clone().into_bytes(),
                ))
            }
            (None, None, Some(c)) => berth_build::executor::SecretSource::Value(
                berth_build::executor::SecretValue::new(c.clone().into_bytes()),
            ),
            (None, None, None) => {
                return Err(invalid(
                    name,
                    "build.secrets",
                    format!("secret {:?}: external secrets are a swarm feature", r.source),
                ))
            }
        };
        secrets.insert(id, src);
    }
    let mut extra_hosts = Vec::new();
    for h in &b.extra_hosts {
        let (host, addr) = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .ok_or_else(|| invalid(name, "build.extra_hosts", format!("{h:?}: use HOST=ADDRESS")))?;
        extra_hosts.push((host.to_string(), addr.to_string()));
    }
    let shm_size = b
        .shm_size
        .as_deref()
        .map(|v| spec::parse_bytes("build.shm_size", v))
        .transpose()
        .map_err(|e| invalid(name, "build.shm_size", e))?;
    // `platforms`: one image for each (the builder takes them
    // comma-separated); the service's `platform` must be one of them.
    let platform = if b.platforms.is_empty() {
        s.platform.clone()
    } else {
        if let Some(p) = s.platform.as_ref().filter(|p| !b.platforms.contains(p)) {
            return Err(invalid(
                name,
                "build.platforms",
                format!(
                    "service.platform {p:?} should be part of the service.build.platforms: {:?}",
                    b.platforms
                ),
            ));
        }
        Some(b.platforms.join(","))
    };
    // `additional_contexts`: directories were made absolute when the file
    // was read (against its own directory, as compose resolves them).
    let mut context_images = BTreeMap::new();
    let mut context_dirs = BTreeMap::new();
    for (ctx_name, value) in &b.additional_contexts {
        use berth_build::context::named::{parse_named, NamedContext};
        match parse_named(ctx_name, value, &context)
            .map_err(|e| invalid(name, &format!("build.additional_contexts.{ctx_name}"), e))?
        {
            NamedContext::Image(image) => {
                context_images.insert(ctx_name.clone(), image);
            }
            NamedContext::Dir(dir) => {
                context_dirs.insert(ctx_name.clone(), dir);
            }
        }
    }
    let mut ulimits = Vec::new();
    for (k, u) in &b.ulimits {
        let u = spec::parse_ulimit(&ulimit_text(k, u)).map_err(|e| invalid(name, "build.ulimits", e))?;
        ulimits.push((u.name, u.soft, u.hard));
    }
    let options = berth_build::executor::BuildOptions {
        target: b.target.clone(),
        build_args,
        labels: b.labels.clone(),
        no_cache: no_cache || b.no_cache,
        pull: pull || b.pull,
        network: b.network.clone().unwrap_or_else(|| "default".into()),
        platform,
        secrets,
        extra_hosts,
        shm_size,
        ulimits,
        context_images,
        context_dirs,
        ..Default::default()
    };
    Ok(Some(BuildRequest {
        context: ContextSource::Dir(context),
        file,
        inline: b.dockerfile_inline.clone(),
        tags,
        options,
    }))
}
