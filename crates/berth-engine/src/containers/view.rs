//! What `ps` and `inspect` show: Docker's shapes, built from a container's
//! record and its live state (never from anything cached).

use crate::error::{bail, Result};
use serde_json::{json, Value};

use super::{Container, ContainerStatus, UPPER};
use crate::Engine;

/// `ps --filter` conditions.
#[derive(Debug, Default, Clone)]
pub struct PsFilter {
    /// `status=` values (any of them).
    pub status: Vec<String>,
    /// `name=` substrings (any of them).
    pub name: Vec<String>,
    /// `label=KEY` or `label=KEY=VALUE` (all of them).
    pub label: Vec<String>,
    /// `ancestor=` images (any of them).
    pub ancestor: Vec<String>,
    /// `health=` values (any of them).
    pub health: Vec<String>,
    /// `id=` prefixes (any of them).
    pub id: Vec<String>,
    /// `exited=` codes (any of them).
    pub exited: Vec<i32>,
    /// `before=` a container: only those created before it.
    pub before: Option<String>,
    /// `since=` a container: only those created after it.
    pub since: Option<String>,
    /// `publish=` host ports (`8080`, `53/udp`, `8000-8080`) a port is published on (any of them).
    pub publish: Vec<(u16, u16, berth_net::Proto)>,
    /// `expose=` container ports exposed or published (any of them).
    pub expose: Vec<(u16, u16, berth_net::Proto)>,
    /// `volume=` a volume name or a mount's destination (any of them).
    pub volume: Vec<String>,
    /// `network=` a network's name (any of them).
    pub network: Vec<String>,
}

/// `80`, `80/udp`, `8000-8080/tcp` → (first, last, protocol); tcp by default.
fn port_filter(k: &str, v: &str) -> Result<(u16, u16, berth_net::Proto)> {
    let bad = || anyhow::anyhow!("invalid filter '{k}={v}': use PORT[-PORT][/PROTO]");
    let (ports, proto) = v.split_once('/').unwrap_or((v, "tcp"));
    let proto = berth_net::Proto::parse(proto).map_err(|_| bad())?;
    let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if b < a {
        return Err(bad().into());
    }
    Ok((a, b, proto))
}

impl PsFilter {
    /// Parses `--filter KEY=VALUE` items, refusing unknown keys and values.
    pub fn parse(items: &[String]) -> Result<PsFilter> {
        let mut f = PsFilter::default();
        for it in items {
            let (k, v) = it
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value): {it}"))?;
            let v = v.to_string();
            match k {
                "status" => {
                    if ContainerStatus::parse(&v).is_none() {
                        let all: Vec<&str> = ContainerStatus::ALL.iter().map(|s| s.as_str()).collect();
                        bail!("invalid filter 'status={v}': use one of {}", all.join(", "));
                    }
                    f.status.push(v)
                }
                "name" => f.name.push(v),
                "label" => f.label.push(v),
                "ancestor" => f.ancestor.push(v),
                "health" => f.health.push(v),
                "id" => f.id.push(v),
                "exited" => f.exited.push(
                    v.parse()
                        .map_err(|_| anyhow::anyhow!("invalid filter 'exited={v}': not an exit code"))?,
                ),
                "before" => f.before = Some(v),
                "since" => f.since = Some(v),
                "publish" => f.publish.push(port_filter(k, &v)?),
                "expose" => f.expose.push(port_filter(k, &v)?),
                "volume" => f.volume.push(v),
                "network" => f.network.push(v),
                _ => bail!("Invalid filter '{k}'"),
            }
        }
        Ok(f)
    }
}

/// Docker's COMMAND: path and args, args with spaces in single quotes.
pub fn command_string(c: &Container) -> String {
    let mut parts = Vec::new();
    if let Some(p) = c.cfg.args.first() {
        parts.push(p.clone());
    }
    for a in c.cfg.args.iter().skip(1) {
        if a.contains(' ') {
            parts.push(format!("'{a}'"));
        } else {
            parts.push(a.clone());
        }
    }
    parts.join(" ")
}

fn health_status(c: &Container) -> Option<String> {
    if c.status() != ContainerStatus::Running {
        return None;
    }
    c.state.health.as_ref().map(|h| h.status.clone())
}

/// `Up 5 seconds (healthy)`, `Exited (3) 2 minutes ago`, `Created`.
pub fn status_string(c: &Container) -> String {
    use crate::human::{human_duration, since};
    let st = &c.state;
    let secs_since = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
            .unwrap_or(0)
    };
    match st.status.as_str() {
        "running" | "paused" => {
            let mut s = format!("Up {}", human_duration(secs_since(&st.started_at)));
            if st.status == "paused" {
                s.push_str(" (Paused)");
            } else if let Some(h) = health_status(c) {
                match h.as_str() {
                    "starting" => s.push_str(" (health: starting)"),
                    h => s.push_str(&format!(" ({h})")),
                }
            }
            s
        }
        "restarting" => format!(
            "Restarting ({}) {}",
            st.exit_code,
            since(st.finished_at.as_deref().unwrap_or(""))
        ),
        "exited" => match &st.finished_at {
            Some(t) => format!("Exited ({}) {}", st.exit_code, since(t)),
            None => format!("Exited ({})", st.exit_code),
        },
        "created" => "Created".into(),
        "dead" => "Dead".into(),
        other => other.to_string(),
    }
}

/// The container ports exposed (image EXPOSE and published), as `80/tcp` keys.
fn exposed_keys(c: &Container) -> Vec<(u16, berth_net::Proto)> {
    if c.cfg.network_mode == "host" {
        return Vec::new(); // the host's ports, not the container's
    }
    let mut keys: Vec<(u16, berth_net::Proto)> = c
        .doc()
        .config
        .exposed_ports
        .map(|m| m.keys().flat_map(|k| berth_net::parse_exposed(k)).collect())
        .unwrap_or_default();
    keys.sort();
    keys.dedup();
    keys
}

/// Docker's PORTS column: `0.0.0.0:8000->80/tcp, 443/tcp`, with runs of
/// ports mapped to the same numbers merged as the docker CLI merges them
/// (`0.0.0.0:7000-7001->7000-7001/tcp`, `9000-9002/udp`): entries sorted by
/// container port, address, host port and protocol; consecutive ports of
/// one address and protocol published on their own numbers (or only
/// exposed) form one group, the groups listed in the order they began;
/// ports published on other numbers come last, one by one.
fn ports_string(c: &Container, bindings: &[berth_net::PortBinding]) -> String {
    if !c.status().is_up() {
        return String::new();
    }
    // (container port, host address as shown or "", host port, protocol)
    let mut ports: Vec<(u16, String, u16, berth_net::Proto)> = bindings
        .iter()
        .map(|b| {
            let addr = match b.host_ip {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            (b.container_port, addr, b.host_port, b.proto)
        })
        .collect();
    for (port, proto) in exposed_keys(c) {
        if !bindings.iter().any(|b| b.container_port == port && b.proto == proto) {
            ports.push((port, String::new(), 0, proto));
        }
    }
    ports.sort_by(|x, y| (x.0, &x.1, x.2, x.3.as_str()).cmp(&(y.0, &y.1, y.2, y.3.as_str())));
    let show = |(addr, proto): &(String, berth_net::Proto), first: u16, last: u16| {
        let n = if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        };
        if addr.is_empty() {
            format!("{n}/{proto}")
        } else {
            format!("{addr}:{n}->{n}/{proto}")
        }
    };
    let mut order: Vec<(String, berth_net::Proto)> = Vec::new();
    let mut open: Vec<(u16, u16)> = Vec::new();
    let mut out = Vec::new();
    let mut elsewhere = Vec::new();
    for (port, addr, host_port, proto) in ports {
        if !addr.is_empty() && host_port != port {
            elsewhere.push(format!("{addr}:{host_port}->{port}/{proto}"));
            continue;
        }
        let key = (addr, proto);
        match order.iter().position(|k| *k == key) {
            None => {
                order.push(key);
                open.push((port, port));
            }
            Some(i) if open[i].1.checked_add(1) == Some(port) => open[i].1 = port,
            Some(i) => {
                out.push(show(&order[i], open[i].0, open[i].1));
                open[i] = (port, port);
            }
        }
    }
    for (k, (first, last)) in order.iter().zip(open) {
        out.push(show(k, first, last));
    }
    out.extend(elsewhere);
    out.join(", ")
}

impl Engine {
    /// The host ports a running container holds (empty when it is not running).
    pub fn container_ports(&self, c: &Container) -> Vec<berth_net::PortBinding> {
        if !c.status().is_up() {
            return Vec::new();
        }
        let mut b = berth_net::read_bindings(&c.dir);
        b.sort_by_key(|b| (b.container_port, b.proto, b.host_ip, b.host_port));
        b
    }

    /// Containers for `ps`, newest first, filtered.
    pub fn ps(&self, all: bool, f: &PsFilter) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        // `before=`/`since=`: by creation time against the container named.
        let created_of = |w: &Option<String>| -> Result<Option<String>> {
            Ok(match w {
                Some(w) => Some(self.container(w)?.rec.created),
                None => None,
            })
        };
        let before = created_of(&f.before)?;
        let since = created_of(&f.since)?;
        let in_ranges = |ranges: &[(u16, u16, berth_net::Proto)], ports: &[(u16, berth_net::Proto)]| {
            ranges
                .iter()
                .any(|(a, b, pr)| ports.iter().any(|(p, q)| q == pr && (*a..=*b).contains(p)))
        };
        for c in self.list_all_containers()? {
            if before.as_ref().is_some_and(|t| c.rec.created >= *t)
                || since.as_ref().is_some_and(|t| c.rec.created <= *t)
            {
                continue;
            }
            // Ports are a running container's (what its PORTS column shows), as Docker's.
            if (!f.publish.is_empty() || !f.expose.is_empty()) && !c.status().is_up() {
                continue;
            }
            if !f.publish.is_empty() {
                // The host side, as dockerd matches `publish=` (its own port
                // is `expose=`'s).
                let published: Vec<_> = self
                    .container_ports(&c)
                    .iter()
                    .map(|b| (b.host_port, b.proto))
                    .collect();
                if !in_ranges(&f.publish, &published) {
                    continue;
                }
            }
            if !f.expose.is_empty() {
                let mut exposed: Vec<_> = c.cfg.ports.iter().map(|m| (m.container_port, m.proto)).collect();
                exposed.extend(exposed_keys(&c));
                if !in_ranges(&f.expose, &exposed) {
                    continue;
                }
            }
            if !f.volume.is_empty() {
                let mounts = c.doc().mounts;
                let hit = f.volume.iter().any(|v| {
                    mounts
                        .iter()
                        .any(|m| m.name.as_deref() == Some(v.as_str()) || m.destination == *v)
                });
                if !hit {
                    continue;
                }
            }
            if !f.network.is_empty() {
                let shown = c.doc().host_config.network_mode;
                let mode = c.cfg.network_mode.clone();
                let hit = f.network.iter().any(|n| *n == shown || *n == mode);
                if !hit {
                    continue;
                }
            }
            let status = c.state.status.as_str();
            if !all && f.status.is_empty() && !c.status().is_up() {
                continue;
            }
            if !f.status.is_empty() && !f.status.iter().any(|s| s == status) {
                continue;
            }
            if !f.name.is_empty() && !f.name.iter().any(|n| c.rec.name.contains(n.trim_start_matches('/'))) {
                continue;
            }
            if !f.id.is_empty() && !f.id.iter().any(|i| c.rec.id.starts_with(i.as_str())) {
                continue;
            }
            if !f.label.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => c.cfg.labels.get(k).is_some_and(|x| x == v),
                None => c.cfg.labels.contains_key(l.as_str()),
            }) {
                continue;
            }
            let exited_ok = status == "exited" && f.exited.contains(&c.state.exit_code);
            if !f.exited.is_empty() && !exited_ok {
                continue;
            }
            if !f.health.is_empty() {
                let h = health_status(&c).unwrap_or_else(|| "none".into());
                if !f.health.contains(&h) {
                    continue;
                }
            }
            if !f.ancestor.is_empty() {
                let hit = f.ancestor.iter().any(|a| {
                    c.cfg.image_ref == *a
                        || self
                            .store
                            .resolve_image(a)
                            .map(|i| i.id.as_str() == c.rec.image_id)
                            .unwrap_or(false)
                });
                if !hit {
                    continue;
                }
            }
            out.push(c);
        }
        Ok(out)
    }

    /// One `ps` row as the fields Docker's `--format` knows.
    pub fn ps_row(&self, c: &Container, no_trunc: bool, size: bool) -> Value {
        let cmd = command_string(c);
        let command = if no_trunc || cmd.chars().count() <= 20 {
            cmd
        } else {
            let mut s: String = cmd.chars().take(19).collect();
            s.push('…');
            s
        };
        let created_at = chrono::DateTime::parse_from_rfc3339(&c.rec.created)
            .map(|t| {
                t.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%d %H:%M:%S +0000 UTC")
                    .to_string()
            })
            .unwrap_or_default();
        let labels = c
            .cfg
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let doc = c.doc();
        let mounts = doc
            .mounts
            .iter()
            .map(|m| m.name.clone().unwrap_or_else(|| m.source.clone()))
            .collect::<Vec<_>>()
            .join(",");
        let size_s = if size {
            let upper = berth_archive::tree_size(&c.dir.join(UPPER));
            let virt = self
                .store
                .resolve_image(&c.rec.image_id)
                .map(|i| i.content_size)
                .unwrap_or(0);
            format!(
                "{} (virtual {})",
                crate::human::human_size(upper),
                crate::human::human_size(upper + virt)
            )
        } else {
            String::new()
        };
        let image = if doc.config.image.is_empty() {
            c.cfg.image_ref.clone()
        } else {
            doc.config.image.clone()
        };
        json!({
            "ID": if no_trunc { c.rec.id.clone() } else { c.short_id().to_string() },
            "Image": image,
            "Command": format!("{command:?}").replace("\\u{2026}", "…"),
            "CreatedAt": created_at,
            "RunningFor": crate::human::since(&c.rec.created),
            "Ports": ports_string(c, &self.container_ports(c)),
            "Status": status_string(c),
            "State": c.state.status,
            "Size": size_s,
            "Names": c.rec.name,
            "Labels": labels,
            "Mounts": mounts,
            "Networks": self.network_names_of(c).unwrap_or_else(|| doc.host_config.network_mode.clone()),
            "LocalVolumes": c.cfg.mounts.iter().filter(|m| m.kind == berth_runtime::MountKind::Volume).count().to_string(),
        })
    }

    /// Docker's `container inspect` JSON.
    pub fn inspect_container(&self, word: &str, size: bool) -> Result<Value> {
        let c = self.container(word)?;
        let st = &c.state;
        let zero = "0001-01-01T00:00:00Z".to_string();
        let health = st.health.as_ref().map(|h| {
            json!({
                "Status": h.status,
                "FailingStreak": h.failing_streak,
                "Log": h.log,
            })
        });
        let mut state = json!({
            "Status": st.status,
            "Running": c.status().is_up(),
            "Paused": c.status() == ContainerStatus::Paused,
            "Restarting": c.status() == ContainerStatus::Restarting,
            "OOMKilled": st.oom_killed,
            "Dead": c.status() == ContainerStatus::Dead,
            "Pid": if st.is_running() { st.pid } else { 0 },
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": st.started_at.clone().unwrap_or_else(|| zero.clone()),
            "FinishedAt": st.finished_at.clone().unwrap_or_else(|| zero.clone()),
        });
        if let Some(h) = health {
            state["Health"] = h;
        }
        let r = c.doc();
        let dir = c.dir.display().to_string();
        let img = self.store.resolve_image(&c.rec.image_id).ok();
        let lower: Vec<String> = img
            .as_ref()
            .map(|i| {
                i.layers
                    .iter()
                    .rev()
                    .map(|l| self.store.layer_dir(l).display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let mut net_ports = serde_json::Map::new();
        if c.status().is_up() {
            for (port, proto) in exposed_keys(&c) {
                net_ports.insert(format!("{port}/{proto}"), Value::Null);
            }
            for b in self.container_ports(&c) {
                let e = net_ports.entry(b.key()).or_insert(Value::Null);
                if e.is_null() {
                    *e = json!([]);
                }
                if let Some(a) = e.as_array_mut() {
                    a.push(json!({"HostIp": b.host_ip.to_string(), "HostPort": b.host_port.to_string()}));
                }
            }
        }
        let mut v = json!({
            "Id": c.rec.id,
            "Created": c.rec.created,
            "Path": r.path,
            "Args": r.args,
            "State": state,
            "Image": c.rec.image_id,
            "ResolvConfPath": format!("{dir}/resolv.conf"),
            "HostnamePath": format!("{dir}/hostname"),
            "HostsPath": format!("{dir}/hosts"),
            "LogPath": format!("{dir}/{}", berth_runtime::logs::LOG_FILE),
            "Name": format!("/{}", c.rec.name),
            "RestartCount": st.restart_count,
            "Driver": "overlay",
            "Platform": if r.platform.is_empty() { "linux" } else { r.platform.as_str() },
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": Value::Null,
            "HostConfig": r.host_config,
            "GraphDriver": {
                "Data": {
                    "LowerDir": lower.join(":"),
                    "MergedDir": format!("{dir}/rootfs"),
                    "UpperDir": format!("{dir}/upper"),
                    "WorkDir": format!("{dir}/work"),
                },
                "Name": "overlay",
            },
            "Mounts": r.mounts,
            "Config": r.config,
            "NetworkSettings": {
                "Bridge": "", "SandboxID": "", "SandboxKey": "",
                "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
                "Ports": net_ports,
                "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "",
                "EndpointID": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "",
                "SecondaryIPAddresses": Value::Null, "SecondaryIPv6Addresses": Value::Null,
                "Networks": {},
            },
        });
        // The fields of Docker's HostConfig berth has no setting for, with
        // the values Docker shows when they are unset (records made by an
        // older berth lack some of the others too).
        if let Some(h) = v["HostConfig"].as_object_mut() {
            if let Value::Object(unset) = json!({
                "GroupAdd": Value::Null, "OomScoreAdj": 0, "ShmSize": 67108864, "ConsoleSize": [0, 0],
                "Isolation": "", "CgroupParent": "", "BlkioWeight": 0,
                "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
                "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
                "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
                "CpusetCpus": "", "CpusetMems": "", "DeviceCgroupRules": Value::Null, "DeviceRequests": Value::Null,
                "KernelMemory": 0, "KernelMemoryTCP": 0, "Links": Value::Null,
                "MemoryReservation": 0, "MemorySwappiness": Value::Null, "OomKillDisable": false,
                "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
            }) {
                for (k, x) in unset {
                    h.entry(k).or_insert(x);
                }
            }
        }
        let mode = r.host_config.network_mode.as_str();
        if matches!(mode, "none" | "host") {
            // On that predefined network, as Docker shows it: one endpoint
            // with no address.
            let id = self
                .network_inspect(mode)
                .ok()
                .and_then(|n| n["Id"].as_str().map(str::to_string))
                .unwrap_or_default();
            v["NetworkSettings"]["Networks"][mode] = super::network::empty_endpoint(&id);
        } else if let Some(ns) = self.network_settings(&c)? {
            let settings = &mut v["NetworkSettings"];
            if let Value::Object(m) = ns {
                for (k, x) in m {
                    settings[k] = x;
                }
            }
            if c.status().is_up() {
                if let Some(ctx) = self.net_context(false)? {
                    settings["SandboxKey"] = json!(ctx.netns_path(&c.rec.id).display().to_string());
                }
            }
        }
        if size {
            let rw = berth_archive::tree_size(&c.dir.join(UPPER));
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rw + img.map(|i| i.content_size).unwrap_or(0));
        }
        Ok(v)
    }
}
