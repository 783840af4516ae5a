//! `POST /containers/create`: Docker's `Config`, `HostConfig` and
//! `NetworkingConfig` to a [`ContainerSpec`]. Conversion only: every value
//! is checked where the CLI's are (the engine's parsers and
//! [`ContainerSpec::validate`]), so both fronts refuse the same things in
//! the same words.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use berth_engine::containers::update::UpdateSpec;
use berth_engine::spec::{
    parse_publish, parse_throttle_iops, parse_tmpfs, parse_volume, parse_weight_device, ContainerSpec, DnsSpec,
    EndpointSpec, HealthSpec, MemorySwap, Mount, MountOrigin, MountSource, NamespaceKind, NamespaceMode, NetworkMode,
    PullPolicy, Resources, RestartPolicy, Signal, ThrottleDevice, Ulimit, UserSpec,
};

use crate::error::ApiError;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

fn engine_bad(e: berth_engine::EngineError) -> ApiError {
    ApiError::from(e)
}

pub(crate) fn strings_of(v: &Value, what: &str) -> Result<Vec<String>, ApiError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("{what}: every entry must be a string")))
            })
            .collect(),
        _ => Err(bad(format!("{what} must be a list of strings"))),
    }
}

fn string_map(v: &Value, what: &str) -> Result<BTreeMap<String, String>, ApiError> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| match x {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Null => Ok((k.clone(), String::new())),
                _ => Err(bad(format!("{what}: the value of {k:?} must be a string"))),
            })
            .collect(),
        _ => Err(bad(format!("{what} must be an object of strings"))),
    }
}

/// A list of objects (null: none).
fn objects<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], ApiError> {
    match v {
        Value::Null => Ok(&[]),
        Value::Array(a) if a.iter().all(Value::is_object) => Ok(a),
        _ => Err(bad(format!("{what} must be a list of objects"))),
    }
}

fn non_empty(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

fn positive(v: &Value) -> Option<u64> {
    v.as_i64().filter(|n| *n > 0).map(|n| n as u64)
}

fn nanos(v: &Value) -> Option<Duration> {
    v.as_i64().filter(|n| *n > 0).map(|n| Duration::from_nanos(n as u64))
}

/// The spec of a create request; `name` and `platform` are the query's.
pub fn spec_of(body: &Value, name: Option<&str>, platform: Option<&str>) -> Result<ContainerSpec, ApiError> {
    let image =
        non_empty(&body["Image"]).ok_or_else(|| bad("Config cannot be empty in order to create a container"))?;
    let mut s = ContainerSpec::new(image);
    s.name = name.filter(|n| !n.is_empty()).map(str::to_string);
    s.platform = platform.filter(|p| !p.is_empty()).map(str::to_string);
    // Docker's create never pulls: a missing image is a 404 the client
    // answers with a pull and a second create.
    s.pull = PullPolicy::Never;
    s.command = strings_of(&body["Cmd"], "Cmd")?;
    if !body["Entrypoint"].is_null() {
        let ep = strings_of(&body["Entrypoint"], "Entrypoint")?;
        // `[""]` is the CLI's `--entrypoint ''`: no entrypoint at all.
        s.entrypoint = Some(if ep == [""] { Vec::new() } else { ep });
    }
    s.env = strings_of(&body["Env"], "Env")?;
    s.working_dir = non_empty(&body["WorkingDir"]).map(str::to_string);
    if let Some(u) = non_empty(&body["User"]) {
        s.user = Some(UserSpec::parse(u).map_err(engine_bad)?);
    }
    s.hostname = non_empty(&body["Hostname"]).map(str::to_string);
    s.domainname = non_empty(&body["Domainname"]).map(str::to_string);
    s.labels = string_map(&body["Labels"], "Labels")?;
    s.tty = body["Tty"].as_bool().unwrap_or(false);
    s.open_stdin = body["OpenStdin"].as_bool().unwrap_or(false);
    // `docker run -d` asks for no stream (`AttachStdout: false`, …).
    s.detached = !["AttachStdin", "AttachStdout", "AttachStderr"]
        .iter()
        .any(|k| body[*k].as_bool().unwrap_or(false));
    if let Some(sig) = non_empty(&body["StopSignal"]) {
        s.stop_signal = Some(Signal::parse(sig).map_err(engine_bad)?);
    }
    if let Some(t) = body["StopTimeout"].as_i64() {
        s.stop_timeout = Some(Duration::from_secs(t.max(0) as u64));
    }
    s.mac_address = non_empty(&body["MacAddress"]).map(str::to_string);
    s.health = health(&body["Healthcheck"])?;

    let h = &body["HostConfig"];
    refuse_unsupported(h)?;
    s.mounts = mounts(body, h)?;
    s.read_only = h["ReadonlyRootfs"].as_bool().unwrap_or(false);
    s.resources = resources(h)?;
    s.cap_add = strings_of(&h["CapAdd"], "CapAdd")?;
    s.cap_drop = strings_of(&h["CapDrop"], "CapDrop")?;
    s.security_opt = strings_of(&h["SecurityOpt"], "SecurityOpt")?;
    s.devices = devices(&h["Devices"])?;
    s.privileged = h["Privileged"].as_bool().unwrap_or(false);
    s.init = h["Init"].as_bool().unwrap_or(false);
    s.auto_remove = h["AutoRemove"].as_bool().unwrap_or(false);
    s.restart = restart(&h["RestartPolicy"])?;
    s.publish_all = h["PublishAllPorts"].as_bool().unwrap_or(false);
    s.ports = ports(&h["PortBindings"])?;
    s.userns = non_empty(&h["UsernsMode"]).map(str::to_string);
    // 0 is the docker CLI's "not set": Docker's 64 MiB.
    s.shm_size = positive(&h["ShmSize"]);
    s.volumes_from = strings_of(&h["VolumesFrom"], "VolumesFrom")?;
    s.storage_opts = string_map(&h["StorageOpt"], "StorageOpt")?;
    s.sysctls = string_map(&h["Sysctls"], "Sysctls")?;
    s.annotations = string_map(&h["Annotations"], "Annotations")?;
    s.group_add = strings_of(&h["GroupAdd"], "GroupAdd")?;
    s.pid = namespace(h, "PidMode", NamespaceKind::Pid)?;
    s.ipc = namespace(h, "IpcMode", NamespaceKind::Ipc)?;
    s.uts = namespace(h, "UTSMode", NamespaceKind::Uts)?;
    s.cgroupns = namespace(h, "CgroupnsMode", NamespaceKind::Cgroup)?;
    // `Config.ExposedPorts` (`--expose`, and what the docker CLI adds for -p).
    if let Some(m) = body["ExposedPorts"].as_object() {
        for k in m.keys() {
            s.expose
                .extend(berth_engine::spec::parse_expose(k).map_err(engine_bad)?);
        }
    }
    if let Some(d) = non_empty(&h["LogConfig"]["Type"]) {
        s.log_driver = Some(d.to_string());
    }
    s.log_opts = string_map(&h["LogConfig"]["Config"], "LogConfig.Config")?;
    networking(&mut s, h, &body["NetworkingConfig"])?;
    Ok(s)
}

/// HostConfig fields berth has no setting for: a value other than Docker's
/// default is refused by name, as the CLI refuses their flags, never
/// dropped (the container would not get what it asks for). Clients send
/// the defaults (null, 0, "", false, [], {}) for what they were not asked.
fn refuse_unsupported(h: &Value) -> Result<(), ApiError> {
    // Windows' CPU counts, the kernel's TCP buffer limit, GPUs.
    const FIELDS: &[&str] = &["CpuCount", "CpuPercent", "KernelMemoryTCP", "DeviceRequests"];
    let set = |v: &Value| match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    };
    for f in FIELDS {
        if set(&h[*f]) {
            return Err(bad(format!(
                "HostConfig.{f} is not supported by berth yet: leave it out (the container would not get what it asks for)"
            )));
        }
    }
    Ok(())
}

/// `PidMode`, `IpcMode`, `UTSMode`, `CgroupnsMode` (`""`: the container's own).
fn namespace(h: &Value, field: &str, kind: NamespaceKind) -> Result<NamespaceMode, ApiError> {
    NamespaceMode::parse(kind, h[field].as_str().unwrap_or("")).map_err(engine_bad)
}

fn health(v: &Value) -> Result<HealthSpec, ApiError> {
    let mut hs = HealthSpec::default();
    if v.is_null() {
        return Ok(hs);
    }
    let test = strings_of(&v["Test"], "Healthcheck.Test")?;
    match test.first().map(String::as_str) {
        Some("NONE") => hs.disabled = true,
        Some(_) => hs.test = Some(test),
        None => {}
    }
    hs.interval = nanos(&v["Interval"]);
    hs.timeout = nanos(&v["Timeout"]);
    hs.start_period = nanos(&v["StartPeriod"]);
    hs.start_interval = nanos(&v["StartInterval"]);
    hs.retries = v["Retries"]
        .as_u64()
        .filter(|n| *n > 0)
        .map(|n| n.min(u32::MAX as u64) as u32);
    Ok(hs)
}

/// `Binds`, `Mounts`, `Tmpfs` and `Config.Volumes` (anonymous volumes), in
/// the order the CLI's `-v`, `--mount`, `--tmpfs` give them.
fn mounts(body: &Value, h: &Value) -> Result<Vec<Mount>, ApiError> {
    let mut out = Vec::new();
    // Binds are absolute or names; a relative path has no meaning here.
    for b in strings_of(&h["Binds"], "Binds")? {
        out.push(parse_volume(&b, Path::new("/")).map_err(engine_bad)?);
    }
    if let Some(list) = h["Mounts"].as_array() {
        for m in list {
            out.push(api_mount(m)?);
        }
    }
    if let Some(t) = h["Tmpfs"].as_object() {
        for (path, opts) in t {
            let opts = opts.as_str().unwrap_or("");
            let text = if opts.is_empty() {
                path.clone()
            } else {
                format!("{path}:{opts}")
            };
            out.push(parse_tmpfs(&text).map_err(engine_bad)?);
        }
    }
    if let Some(vols) = body["Volumes"].as_object() {
        for target in vols.keys() {
            let t = target.trim_end_matches('/');
            if out.iter().any(|m| m.target.trim_end_matches('/') == t) {
                continue;
            }
            out.push(Mount {
                target: target.clone(),
                source: MountSource::Volume {
                    name: None,
                    options: Default::default(),
                    nocopy: false,
                },
                readonly: false,
                propagation: String::new(),
                origin: MountOrigin::Volume { mode: String::new() },
            });
        }
    }
    Ok(out)
}

/// One `HostConfig.Mounts` entry (Docker's `mount.Mount`).
fn api_mount(m: &Value) -> Result<Mount, ApiError> {
    let target = non_empty(&m["Target"]).ok_or_else(|| bad("invalid mount config: Target must not be empty"))?;
    let src = m["Source"].as_str().unwrap_or("");
    let kind = m["Type"].as_str().unwrap_or("volume");
    let source = match kind {
        "bind" => {
            if !src.starts_with('/') {
                return Err(bad(format!(
                    "invalid mount config for type \"bind\": invalid mount path: '{src}' mount path must be absolute"
                )));
            }
            MountSource::Bind {
                path: src.into(),
                create: m["BindOptions"]["CreateMountpoint"].as_bool().unwrap_or(false),
            }
        }
        "volume" => MountSource::Volume {
            nocopy: m["VolumeOptions"]["NoCopy"].as_bool().unwrap_or(false),
            name: (!src.is_empty()).then(|| src.to_string()),
            options: m["VolumeOptions"]["DriverConfig"]["Options"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
        },
        "tmpfs" => {
            let mut options = Vec::new();
            if let Some(n) = positive(&m["TmpfsOptions"]["SizeBytes"]) {
                options.push(format!("size={n}"));
            }
            if let Some(mode) = m["TmpfsOptions"]["Mode"].as_u64() {
                options.push(format!("mode={mode:o}"));
            }
            MountSource::Tmpfs { options }
        }
        t => {
            return Err(bad(format!(
                "invalid mount config: mount type {t:?} is not supported (use bind, volume or tmpfs)"
            )))
        }
    };
    Ok(Mount {
        target: target.to_string(),
        source,
        readonly: m["ReadOnly"].as_bool().unwrap_or(false),
        propagation: m["BindOptions"]["Propagation"].as_str().unwrap_or("").to_string(),
        origin: MountOrigin::Mount,
    })
}

fn resources(h: &Value) -> Result<Resources, ApiError> {
    let mut r = Resources {
        memory: positive(&h["Memory"]),
        nano_cpus: positive(&h["NanoCpus"]),
        cpu_shares: positive(&h["CpuShares"]),
        ..Default::default()
    };
    r.memory_swap = match h["MemorySwap"].as_i64() {
        Some(-1) => Some(MemorySwap::Unlimited),
        Some(n) if n > 0 => Some(MemorySwap::Limit(n as u64)),
        _ => None,
    };
    r.pids_limit = h["PidsLimit"].as_i64().filter(|n| *n != 0);
    r.cgroup_parent = non_empty(&h["CgroupParent"]).map(str::to_string);
    r.cpu_rt_period = h["CpuRealtimePeriod"].as_i64().filter(|n| *n != 0);
    r.cpu_rt_runtime = h["CpuRealtimeRuntime"].as_i64().filter(|n| *n != 0);
    r.cpuset_cpus = non_empty(&h["CpusetCpus"]).map(str::to_string);
    r.cpuset_mems = non_empty(&h["CpusetMems"]).map(str::to_string);
    r.cpu_period = h["CpuPeriod"].as_i64().filter(|n| *n != 0);
    r.cpu_quota = h["CpuQuota"].as_i64().filter(|n| *n != 0);
    r.memory_reservation = positive(&h["MemoryReservation"]);
    r.kernel_memory = positive(&h["KernelMemory"]);
    // null (or -1) is the docker CLI's "not set".
    r.memory_swappiness = h["MemorySwappiness"].as_i64().filter(|n| *n != -1);
    r.oom_kill_disable = h["OomKillDisable"].as_bool().unwrap_or(false);
    r.oom_score_adj = h["OomScoreAdj"].as_i64().filter(|n| *n != 0);
    if let Some(w) = h["BlkioWeight"].as_u64().filter(|w| *w > 0) {
        // Out of u16's range is out of Docker's 10–1000 too.
        r.blkio_weight = Some(w.min(u16::MAX as u64) as u16);
    }
    // Docker's `[{"Path": "/dev/vda", "Weight": 200}]` and `[{"Path", "Rate"}]`,
    // through the CLI's parsers so both refuse the same values.
    for d in objects(&h["BlkioWeightDevice"], "BlkioWeightDevice")? {
        let text = format!("{}:{}", d["Path"].as_str().unwrap_or(""), d["Weight"]);
        r.blkio_weight_device
            .push(parse_weight_device(&text).map_err(engine_bad)?);
    }
    let rates = |key: &str| -> Result<Vec<ThrottleDevice>, ApiError> {
        objects(&h[key], key)?
            .iter()
            .map(|d| {
                let text = format!("{}:{}", d["Path"].as_str().unwrap_or(""), d["Rate"]);
                parse_throttle_iops(&text).map_err(engine_bad)
            })
            .collect()
    };
    r.device_read_bps = rates("BlkioDeviceReadBps")?;
    r.device_write_bps = rates("BlkioDeviceWriteBps")?;
    r.device_read_iops = rates("BlkioDeviceReadIOps")?;
    r.device_write_iops = rates("BlkioDeviceWriteIOps")?;
    r.device_cgroup_rules = strings_of(&h["DeviceCgroupRules"], "DeviceCgroupRules")?;
    if let Some(list) = h["Ulimits"].as_array() {
        for u in list {
            let name = non_empty(&u["Name"]).ok_or_else(|| bad("Ulimits: every entry needs a Name"))?;
            let lim = |v: &Value| match v.as_i64() {
                Some(n) if n < 0 => u64::MAX,
                Some(n) => n as u64,
                None => 0,
            };
            r.ulimits.push(Ulimit {
                name: name.trim_start_matches("RLIMIT_").to_ascii_lowercase(),
                soft: lim(&u["Soft"]),
                hard: lim(&u["Hard"]),
            });
        }
    }
    Ok(r)
}

fn devices(v: &Value) -> Result<Vec<String>, ApiError> {
    let Some(list) = v.as_array() else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|d| {
            let host = non_empty(&d["PathOnHost"]).ok_or_else(|| bad("Devices: PathOnHost must not be empty"))?;
            let ctr = non_empty(&d["PathInContainer"]).unwrap_or(host);
            let perms = non_empty(&d["CgroupPermissions"]).unwrap_or("rwm");
            Ok(format!("{host}:{ctr}:{perms}"))
        })
        .collect()
}

/// `POST /containers/{id}/update`'s body: what is zero, null or empty is
/// left as it is, as dockerd leaves it.
pub fn update_of(v: &Value) -> Result<UpdateSpec, ApiError> {
    let r = resources(v)?;
    Ok(UpdateSpec {
        restart: match v["RestartPolicy"]["Name"].as_str() {
            None | Some("") => None,
            Some(_) => Some(restart(&v["RestartPolicy"])?),
        },
        memory: r.memory,
        memory_swap: r.memory_swap,
        nano_cpus: r.nano_cpus,
        cpu_shares: r.cpu_shares,
        pids_limit: v["PidsLimit"].as_i64(),
        cpu_rt_period: r.cpu_rt_period,
        cpu_rt_runtime: r.cpu_rt_runtime,
        cpuset_cpus: r.cpuset_cpus,
        cpuset_mems: r.cpuset_mems,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        memory_reservation: r.memory_reservation,
        blkio_weight: r.blkio_weight,
    })
}

fn restart(v: &Value) -> Result<RestartPolicy, ApiError> {
    let name = v["Name"].as_str().unwrap_or("");
    let max = v["MaximumRetryCount"].as_u64().unwrap_or(0);
    match name {
        "" | "no" => Ok(RestartPolicy::No),
        "always" => Ok(RestartPolicy::Always),
        "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
        "on-failure" => Ok(RestartPolicy::OnFailure {
            max: max.min(u32::MAX as u64) as u32,
        }),
        n => Err(bad(format!("invalid restart policy: unknown policy {n:?}"))),
    }
}

/// `{"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}` through the
/// CLI's `-p` parser.
fn ports(v: &Value) -> Result<Vec<berth_engine::spec::PortMapping>, ApiError> {
    let Some(map) = v.as_object() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (key, bindings) in map {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let list = bindings.as_array().cloned().unwrap_or_default();
        let list = if list.is_empty() { vec![Value::Null] } else { list };
        for b in list {
            let ip = b["HostIp"].as_str().unwrap_or("");
            let hp = b["HostPort"].as_str().unwrap_or("");
            let ip = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            let text = match (ip.is_empty(), hp.is_empty()) {
                (true, true) => format!("{port}/{proto}"),
                (true, false) => format!("{hp}:{port}/{proto}"),
                (false, _) => format!("{ip}:{hp}:{port}/{proto}"),
            };
            out.extend(parse_publish(&text).map_err(engine_bad)?);
        }
    }
    Ok(out)
}

/// One `EndpointSettings` (of `NetworkingConfig.EndpointsConfig`, or of
/// `POST /networks/{id}/connect`): its aliases, addresses, MAC address.
pub(crate) fn endpoint_spec(network: &str, e: &Value) -> Result<EndpointSpec, ApiError> {
    let ipam = &e["IPAMConfig"];
    let ipv4 = match non_empty(&ipam["IPv4Address"]) {
        Some(a) => Some(a.parse().map_err(|_| bad(format!("invalid IPv4 address: {a}")))?),
        None => None,
    };
    let ipv6 = match non_empty(&ipam["IPv6Address"]) {
        Some(a) => Some(a.parse().map_err(|_| bad(format!("invalid IPv6 address: {a}")))?),
        None => None,
    };
    let link_local_ips = strings_of(&ipam["LinkLocalIPs"], "LinkLocalIPs")?
        .iter()
        .map(|a| a.parse().map_err(|_| bad(format!("invalid link-local address: {a}"))))
        .collect::<Result<_, _>>()?;
    Ok(EndpointSpec {
        network: network.to_string(),
        aliases: strings_of(&e["Aliases"], "Aliases")?,
        ipv4,
        ipv6,
        mac_address: non_empty(&e["MacAddress"]).map(str::to_string),
        link_local_ips,
    })
}

/// `NetworkMode`, `NetworkingConfig.EndpointsConfig`, DNS, extra hosts and
/// links.
fn networking(s: &mut ContainerSpec, h: &Value, nc: &Value) -> Result<(), ApiError> {
    let mode = h["NetworkMode"].as_str().unwrap_or("");
    s.network = match mode {
        "" | "default" | "bridge" | "private" | "none" | "host" => NetworkMode::parse(mode).map_err(engine_bad)?,
        m if m.starts_with("container:") => NetworkMode::parse(m).map_err(engine_bad)?,
        m => NetworkMode::Network(m.to_string()),
    };
    if let Some(eps) = nc["EndpointsConfig"].as_object() {
        // The network of NetworkMode first, as the spec wants it.
        let mut names: Vec<&String> = eps.keys().collect();
        names.sort_by_key(|n| n.as_str() != mode);
        for name in names {
            s.endpoints.push(endpoint_spec(name, &eps[name.as_str()])?);
        }
    }
    let mut dns = DnsSpec::default();
    for d in strings_of(&h["Dns"], "Dns")? {
        dns.servers
            .push(d.parse().map_err(|_| bad(format!("{d} is not an ip address")))?);
    }
    dns.search = strings_of(&h["DnsSearch"], "DnsSearch")?;
    dns.options = strings_of(&h["DnsOptions"], "DnsOptions")?;
    s.dns = dns;
    for e in strings_of(&h["ExtraHosts"], "ExtraHosts")? {
        // `name:addr` (Docker) or `name=addr` (newer clients); IPv6
        // addresses hold colons, so split at the first one.
        let (n, a) = e
            .split_once('=')
            .or_else(|| e.split_once(':'))
            .ok_or_else(|| bad(format!("invalid argument {e:?} for ExtraHosts: use name:address")))?;
        s.extra_hosts.push((n.to_string(), a.to_string()));
    }
    for l in strings_of(&h["Links"], "Links")? {
        let l = l.trim_start_matches('/');
        let (c, alias) = l.split_once(':').unwrap_or((l, l));
        let alias = alias.rsplit('/').next().unwrap_or(alias);
        s.links.push((c.to_string(), alias.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_update_body_changes_only_what_it_sets() {
        // What the docker CLI sends for `update --restart on-failure:2 --memory 64m`.
        let u = update_of(&json!({
            "Memory": 67108864, "MemorySwap": 0, "NanoCpus": 0, "CpuShares": 0,
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
        }))
        .unwrap();
        assert_eq!(
            u,
            UpdateSpec {
                restart: Some(RestartPolicy::OnFailure { max: 2 }),
                memory: Some(67108864),
                ..Default::default()
            }
        );
        // `update --pids-limit -1` and no restart policy.
        let u = update_of(&json!({"PidsLimit": -1, "RestartPolicy": {"Name": ""}})).unwrap();
        assert_eq!(u.pids_limit, Some(-1));
        assert_eq!(u.restart, None);
        assert!(update_of(&json!({"RestartPolicy": {"Name": "sometimes"}})).is_err());
    }

    #[test]
    fn unsupported_host_config_fields_are_refused_only_when_set() {
        // What the docker CLI sends for a plain `docker run`.
        let plain = json!({"Image": "bb", "HostConfig": {
            "CpusetCpus": "", "CpuPeriod": 0, "OomKillDisable": false, "MemorySwappiness": null,
            "Sysctls": null, "GroupAdd": null, "IpcMode": "", "CgroupnsMode": "", "PidMode": "",
            "DeviceRequests": null, "OomScoreAdj": 0,
        }});
        assert!(spec_of(&plain, None, None).is_ok());
        for (k, v) in [
            ("CpuCount", json!(2)),
            ("KernelMemoryTCP", json!(1 << 20)),
            ("DeviceRequests", json!([{"Driver": "nvidia", "Count": -1}])),
        ] {
            let mut b = plain.clone();
            b["HostConfig"][k] = v;
            let e = spec_of(&b, None, None).unwrap_err();
            assert!(e.message.contains(&format!("HostConfig.{k}")), "{}", e.message);
        }
        // What berth has a setting for reaches the spec.
        let mut b = plain.clone();
        let h = &mut b["HostConfig"];
        h["Sysctls"] = json!({"net.ipv4.ip_forward": "1"});
        h["CpusetCpus"] = json!("0");
        h["OomScoreAdj"] = json!(-500);
        h["MemorySwappiness"] = json!(10);
        h["IpcMode"] = json!("host");
        h["PidMode"] = json!("container:db");
        h["UTSMode"] = json!("host");
        h["CgroupnsMode"] = json!("host");
        h["KernelMemory"] = json!(8 << 20);
        let s = spec_of(&b, None, None).unwrap();
        assert_eq!(s.resources.kernel_memory, Some(8 << 20));
        assert_eq!(s.sysctls.get("net.ipv4.ip_forward").map(String::as_str), Some("1"));
        assert_eq!(s.resources.cpuset_cpus.as_deref(), Some("0"));
        assert_eq!(s.resources.oom_score_adj, Some(-500));
        assert_eq!(s.resources.memory_swappiness, Some(10));
        assert_eq!(s.ipc, NamespaceMode::Host);
        assert_eq!(s.pid, NamespaceMode::Container("db".into()));
        assert_eq!((s.uts, s.cgroupns), (NamespaceMode::Host, NamespaceMode::Host));
        b["HostConfig"]["PidMode"] = json!("bogus");
        assert!(spec_of(&b, None, None).unwrap_err().message.contains("--pid"));
    }

    #[test]
    fn a_docker_create_body_becomes_a_spec() {
        let body = json!({
            "Image": "bb", "Cmd": ["sleep", "1"], "Env": ["A=1"], "Labels": {"k": "v"},
            "Tty": true, "OpenStdin": true, "StopSignal": "SIGUSR1", "User": "1000:1000",
            "Volumes": {"/anon": {}},
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000i64, "Retries": 3},
            "HostConfig": {
                "Binds": ["/srv:/data:ro", "vol:/v"], "Tmpfs": {"/run": "size=1m"},
                "Mounts": [{"Type": "volume", "Source": "m", "Target": "/m", "ReadOnly": true}],
                "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": [{"HostPort": ""}]},
                "PublishAllPorts": true, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
                "Memory": 67108864, "MemorySwap": -1, "NanoCpus": 500000000, "PidsLimit": 50,
                "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}],
                "CapAdd": ["NET_ADMIN"], "CapDrop": ["MKNOD"], "Privileged": false, "Init": true,
                "NetworkMode": "front", "Dns": ["10.0.0.1"], "DnsSearch": ["x.test"], "DnsOptions": ["ndots:1"],
                "ExtraHosts": ["db:10.0.0.5"], "Links": ["/web:/me/w"],
            },
            "NetworkingConfig": {"EndpointsConfig": {"back": {}, "front": {"Aliases": ["api"], "IPAMConfig": {"IPv4Address": "10.1.0.9", "LinkLocalIPs": ["169.254.1.1"]}}}},
        });
        let s = spec_of(&body, Some("c1"), None).unwrap();
        assert_eq!(s.name.as_deref(), Some("c1"));
        assert_eq!(s.command, ["sleep", "1"]);
        assert_eq!(s.pull, PullPolicy::Never);
        assert_eq!(s.user.as_ref().unwrap().to_string(), "1000:1000");
        assert_eq!(s.mounts.len(), 5);
        assert!(s.mounts[0].readonly);
        assert_eq!(s.mounts[4].target, "/anon");
        assert_eq!(s.ports.len(), 2);
        let web = s.ports.iter().find(|p| p.container_port == 80).unwrap();
        assert_eq!(web.host_port, 8080);
        assert!(s.ports.iter().any(|p| p.container_port == 53 && p.host_port == 0));
        assert_eq!(s.restart, RestartPolicy::OnFailure { max: 2 });
        assert_eq!(s.resources.memory_swap, Some(MemorySwap::Unlimited));
        assert_eq!(s.resources.ulimits[0].hard, 200);
        assert_eq!(s.health.retries, Some(3));
        assert_eq!(s.network, NetworkMode::Network("front".into()));
        assert_eq!(s.endpoints[0].network, "front");
        assert_eq!(s.endpoints[0].aliases, ["api"]);
        assert_eq!(s.endpoints[0].ipv4, Some("10.1.0.9".parse().unwrap()));
        assert_eq!(
            s.endpoints[0].link_local_ips,
            ["169.254.1.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(s.endpoints[1].network, "back");
        assert_eq!(s.extra_hosts, [("db".to_string(), "10.0.0.5".to_string())]);
        assert_eq!(s.links, [("web".to_string(), "w".to_string())]);
        assert_eq!(s.dns.servers.len(), 1);

        let e = spec_of(
            &json!({"Image": "bb", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}),
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(e.status, hyper::StatusCode::BAD_REQUEST);
        assert!(spec_of(&json!({}), None, None).is_err());
        let s = spec_of(&json!({"Image": "bb", "Entrypoint": [""]}), None, None).unwrap();
        assert_eq!(s.entrypoint, Some(vec![]));
    }
}
