//! A container on bridge networks: what `create` plans, what `start`
//! plugs in and every way out (exit, stop, rm, a dead monitor) unplugs.
//!
//! * `create` resolves the networks (`--network`, the default `bridge`)
//!   and writes the plan, `network.json`, into the container directory;
//!   the OCI spec joins the namespace bind-mounted at
//!   `NetContext::netns_path(id)` (mode `netns:<path>`).
//! * Each start makes that namespace, connects it to every planned network
//!   (a veth, a lease, DNS names) and writes `/etc/hosts` and
//!   `/etc/resolv.conf` from what it got. Restarts under the same monitor
//!   keep it: the address stays while the container runs.
//! * When the container is done (its monitor ends, `stop`, `rm`), the
//!   leases, veths, DNS names and the namespace go ([`Engine::net_down`]);
//!   a store's default network stays, as root, for the next container
//!   (see `bridge::release_default_if_unused`).
//!
//! Rootless, the bridges live in the user's rootless network namespace
//! (`berth_net::rootless`), and so must the container's network namespace
//! for a veth to be moved into it: berth makes it from inside that
//! namespace's user namespace, and the container's OCI spec joins that
//! user namespace by path (rewritten at each start, as the holder may have
//! been started again since) instead of making its own. The runtime itself
//! still runs as the user, outside: `exec`, `kill`, `pause` and the
//! forwarder reach the container as they reach any rootless one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use anyhow::Context;
use berth_net::bridge::{self, Attachment, NetContext, Teardown, DEFAULT_NETWORK};
use berth_net::etc::{self, EtcSettings};
use berth_net::rootless::{self, RootlessNetns};
use berth_store::{EndpointRecord, NetworkRecord, NewEndpoint, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::Container;
use crate::error::{shown, Result};
use crate::spec::{ContainerSpec, NetworkMode};
use crate::{Engine, EngineError};

/// The plan in a container's directory.
pub const NET_FILE: &str = "network.json";

/// How a container joins its networks, kept for every start.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetPlan {
    /// In order: the first gives the container its `eth0`, its default
    /// route and its `/etc/hosts` address.
    pub networks: Vec<PlannedEndpoint>,
    /// `--dns`.
    #[serde(default)]
    pub dns: Vec<String>,
    /// `--dns-search`.
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// `NAME:ADDR` (`host-gateway` resolved at start).
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    /// `(container, alias)`.
    #[serde(default)]
    pub links: Vec<(String, String)>,
    /// `--hostname`.
    #[serde(default)]
    pub hostname: String,
    /// `--domainname`.
    #[serde(default)]
    pub domainname: String,
}

/// One network of a plan.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlannedEndpoint {
    /// The network's ID; `bridge` for the default network (made on first use).
    pub network: String,
    /// Its name when planned (what `inspect` shows when it is gone).
    #[serde(default)]
    pub name: String,
    /// `--network-alias`, compose's service names.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`.
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    /// `--ip6` (a dual-stack network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    /// `--mac-address`.
    #[serde(default)]
    pub mac: Option<String>,
    /// `network connect --link`: `(container, alias)`, the alias naming
    /// that container's address on this network for this container only
    /// (in its `/etc/hosts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<(String, String)>,
    /// `--link-local-ip`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<IpAddr>,
}

impl PlannedEndpoint {
    fn is_default(&self) -> bool {
        self.network == DEFAULT_NETWORK
    }
}

/// Whether the container in `dir` is planned onto bridge networks (it
/// has a network namespace of its own, joined at its start).
pub(crate) fn on_bridge(dir: &Path) -> bool {
    dir.join(NET_FILE).exists()
}

/// The plan of the container in `dir`, if it is on bridge networks.
pub fn read_plan(dir: &Path) -> Option<NetPlan> {
    serde_json::from_slice(&std::fs::read(dir.join(NET_FILE)).ok()?).ok()
}

pub(crate) fn write_plan(dir: &Path, plan: &NetPlan) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(plan).context("serialising network.json")?;
    super::write_atomic(&dir.join(NET_FILE), &bytes)?;
    // Each linked container learns who links it, so its next address
    // reaches their /etc/hosts (see `Engine::refresh_links_to`).
    if let (Some(me), Some(containers)) = (dir.file_name().and_then(|n| n.to_str()), dir.parent()) {
        for target in link_targets(plan) {
            note_linked_by(&containers.join(target), me);
        }
    }
    Ok(())
}

/// The file in a container's directory naming the containers that link it, one ID a line.
const LINKED_BY: &str = "linked-by";

/// Every container `plan` links (`--link`, `network connect --link`).
fn link_targets(plan: &NetPlan) -> Vec<&str> {
    let mut v: Vec<&str> = plan.links.iter().map(|(o, _)| o.as_str()).collect();
    v.extend(
        plan.networks
            .iter()
            .flat_map(|p| p.links.iter().map(|(o, _)| o.as_str())),
    );
    v.sort();
    v.dedup();
    v
}

/// Appends `linker` to `target_dir`'s `linked-by` unless it is there
/// (one short append: concurrent linkers do not clobber each other).
/// Best effort: a target gone meanwhile needs no note.
fn note_linked_by(target_dir: &Path, linker: &str) {
    let p = target_dir.join(LINKED_BY);
    if std::fs::read_to_string(&p).is_ok_and(|t| t.lines().any(|l| l == linker)) || !target_dir.is_dir() {
        return;
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(berth_archive::perms::PRIVATE_FILE)
        .open(&p)
        .and_then(|mut f| f.write_all(format!("{linker}\n").as_bytes()));
}

/// The networks a spec names, in order: `None` when it is on none (host,
/// none, another container's, a private loopback).
fn network_names(o: &ContainerSpec, rootless: bool) -> Option<Vec<String>> {
    let first = match &o.network {
        NetworkMode::Private(s) if (s == "bridge" || s == "default") && !rootless => DEFAULT_NETWORK.to_string(),
        NetworkMode::Network(n) if n == "default" => DEFAULT_NETWORK.to_string(),
        NetworkMode::Network(n) => n.clone(),
        _ => return None,
    };
    let mut names = vec![first];
    for e in &o.endpoints {
        let n = canonical(&e.network);
        if !n.is_empty() && !names.iter().any(|m| m == n) {
            names.push(n.to_string());
        }
    }
    Some(names)
}

/// An endpoint's network name as the store knows it: Docker clients name
/// the default network `default` (the docker CLI's EndpointsConfig does).
fn canonical(name: &str) -> &str {
    if name == "default" {
        DEFAULT_NETWORK
    } else {
        name
    }
}

impl Engine {
    /// `create`: the plan for `spec`'s networks (`None`: no bridge
    /// network), with Docker's refusals for what the default network does
    /// not support.
    pub(crate) fn plan_networks(&self, o: &ContainerSpec) -> Result<Option<NetPlan>> {
        let rootless = crate::is_rootless();
        let Some(names) = network_names(o, rootless) else {
            if !o.links.is_empty() && !matches!(o.network, NetworkMode::Private(_)) {
                return Err(EngineError::invalid(
                    "conflicting options: --link needs a bridge network",
                ));
            }
            return Ok(None);
        };
        if rootless && o.userns.as_deref().is_some_and(|u| !u.is_empty() && u != "host") {
            return Err(EngineError::invalid(format!(
                "--userns={} cannot be used with bridge networks rootless: the container joins the user namespace of the rootless network namespace (use --network none or host)",
                o.userns.as_deref().unwrap_or_default()
            )));
        }
        let mut plan = NetPlan {
            hostname: o.hostname.clone().unwrap_or_default(),
            domainname: o.domainname.clone().unwrap_or_default(),
            ..Default::default()
        };
        for (i, name) in names.iter().enumerate() {
            let ep = o.endpoints.iter().find(|e| canonical(&e.network) == name).or_else(|| {
                // The first network's settings may be given without its name.
                (i == 0)
                    .then(|| o.endpoints.iter().find(|e| e.network.is_empty()))
                    .flatten()
            });
            let aliases = ep.map(|e| e.aliases.clone()).unwrap_or_default();
            let ipv4 = ep.and_then(|e| e.ipv4);
            let mut mac = ep.and_then(|e| e.mac_address.clone());
            if i == 0 && mac.is_none() {
                mac = o.mac_address.clone();
            }
            if let Some(m) = &mac {
                if berth_net::nl::parse_mac(m).is_none() {
                    return Err(EngineError::invalid_value(format!(
                        "{} is not a valid mac address",
                        shown(m)
                    )));
                }
            }
            let ipv6 = ep.and_then(|e| e.ipv6);
            let link_local_ips = ep.map(|e| e.link_local_ips.clone()).unwrap_or_default();
            let (id, shown_name) = if name == DEFAULT_NETWORK {
                if !aliases.is_empty() {
                    return Err(EngineError::invalid(
                        "network-scoped alias is supported only for containers in user defined networks",
                    ));
                }
                if ipv4.is_some() || ipv6.is_some() {
                    return Err(EngineError::invalid(
                        "user specified IP address is supported on user defined networks only",
                    ));
                }
                (DEFAULT_NETWORK.to_string(), DEFAULT_NETWORK.to_string())
            } else {
                let n = self.network_by_word(name)?;
                if n.name == DEFAULT_NETWORK {
                    (DEFAULT_NETWORK.to_string(), DEFAULT_NETWORK.to_string())
                } else {
                    if let Some(ip) = ipv4 {
                        bridge::addressing(&n)?
                            .check_requested(ip)
                            .map_err(|e| EngineError::invalid(e.to_string()))?;
                    }
                    if let Some(ip6) = ipv6 {
                        check_ip6(&n, ip6)?;
                    }
                    (n.id, n.name)
                }
            };
            plan.networks.push(PlannedEndpoint {
                network: id,
                name: shown_name,
                aliases,
                ipv4,
                ipv6,
                mac,
                links: Vec::new(),
                link_local_ips,
            });
        }
        for (name, addr) in &o.extra_hosts {
            let h = format!("{name}:{addr}");
            etc::parse_add_host(&h, Some(Ipv4Addr::UNSPECIFIED))
                .map_err(|e| EngineError::invalid_value(e.to_string()))?;
            plan.extra_hosts.push(h);
        }
        plan.dns = o.dns.servers.iter().map(|s| s.to_string()).collect();
        plan.dns_search = o.dns.search.clone();
        plan.dns_options = o.dns.options.clone();
        for (ctr, alias) in &o.links {
            plan.links.push(self.resolve_link(ctr, alias)?);
        }
        Ok(Some(plan))
    }

    /// A `--link CONTAINER[:ALIAS]` as `(container ID, alias)` (the alias
    /// defaults to the container's name), with Docker's error for a
    /// container that does not exist.
    fn resolve_link(&self, ctr: &str, alias: &str) -> Result<(String, String)> {
        let other = self.container(ctr).map_err(|e| {
            EngineError::not_found(format!(
                "could not get container for {}: {}",
                shown(ctr).trim_matches('"'),
                e.message()
            ))
        })?;
        let alias = if alias.is_empty() {
            other.rec.name.clone()
        } else {
            alias.to_string()
        };
        Ok((other.rec.id.clone(), alias))
    }

    /// A network by name, ID or ID prefix, with Docker's "not found".
    fn network_by_word(&self, word: &str) -> Result<NetworkRecord> {
        match self.store.network(word) {
            Ok(n) => Ok(n),
            Err(StoreError::NetworkNotFound(_)) => Err(EngineError::not_found(format!(
                "network {} not found",
                shown(word).trim_matches('"')
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Rootless: the user's rootless network namespace, started when
    /// `start` (else `None` when it does not run). As root: `None`.
    fn rootless_netns(&self, start: bool) -> Result<Option<RootlessNetns>> {
        if !crate::is_rootless() {
            return Ok(None);
        }
        let dir = rootless::default_dir();
        Ok(if start {
            Some(RootlessNetns::ensure_for(&dir, self.root())?)
        } else {
            RootlessNetns::running(&dir)
        })
    }

    /// The network namespace of container `id` as berth-net enters it.
    fn container_netns(&self, ctx: &NetContext, id: &str) -> Result<berth_net::ns::Namespace> {
        let path = ctx.netns_path(id);
        Ok(match self.rootless_netns(false)? {
            Some(rl) => rl.container_namespace(&path),
            None => berth_net::ns::Namespace::path(path),
        })
    }

    /// Rootless: points the container's OCI spec at its network namespace
    /// (seen through the holder) and at the holder's user namespace, which
    /// it joins instead of making one (the mappings stay: they are the
    /// holder's, and runc checks a rootless spec has some).
    fn join_rootless_netns(&self, c: &Container, rl: &RootlessNetns, netns: &Path) -> Result<()> {
        let mut spec = berth_runtime::exec::load_spec_json(&c.dir)?;
        super::namespaces::set_namespace(&mut spec, "network", json!(rl.view(netns)))?;
        super::namespaces::set_namespace(&mut spec, "user", json!(rl.userns_path()))?;
        berth_runtime::exec::save_spec_json(&c.dir, &spec)?;
        Ok(())
    }

    fn root_net_context(&self) -> Result<NetContext> {
        self.net_context(true)?
            .ok_or_else(|| EngineError::from(anyhow::anyhow!("the network namespace of this user is not running")))
    }

    /// Connects the namespace `ns` of container `c` to one planned
    /// network; on a network with name resolution, the network's DNS
    /// server forwards the container's other queries to `dns` (`--dns`)
    /// when it has some.
    fn connect_planned(
        &self,
        ctx: &NetContext,
        c_id: &str,
        c_name: &str,
        ns: &berth_net::ns::Namespace,
        p: &PlannedEndpoint,
        dns: &[String],
    ) -> Result<(NetworkRecord, Attachment)> {
        let ep = |net: &NetworkRecord| NewEndpoint {
            container_id: c_id.to_string(),
            name: c_name.to_string(),
            ip: p.ipv4,
            ip6: p.ipv6,
            mac: p.mac.clone(),
            link_local: p.link_local_ips.clone(),
            aliases: if net.dns {
                let mut a = p.aliases.clone();
                let short = c_id[..12.min(c_id.len())].to_string();
                if !a.contains(&short) {
                    a.push(short);
                }
                a
            } else {
                vec![]
            },
        };
        if p.is_default() {
            // Its last container leaving must not remove it while this one
            // joins: the lock covers the lookup and the lease.
            let _lock = bridge::default_network_lock(&self.store)?;
            let net = bridge::ensure_default_network(ctx, &self.store)?;
            let a = bridge::connect(ctx, &self.store, &net, ns, &ep(&net))?;
            return Ok((net, a));
        }
        let net = self.store.network(&p.network).map_err(|_| {
            EngineError::not_found(format!(
                "network {} not found",
                if p.name.is_empty() { &p.network } else { &p.name }
            ))
        })?;
        let mut servers: Vec<IpAddr> = dns.iter().filter_map(|d| d.parse().ok()).collect();
        if net.dns && ctx.dns_forward.is_some() && servers.iter().any(|s| s.is_loopback()) {
            // Rootless: the host's loopback is not the network's DNS server's.
            let gw = ctx.bridge_ns.netlink()?.default_gateway()?;
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            servers = rootless::reachable_dns(&servers, gw, &host).map_err(|e| EngineError::invalid(e.to_string()))?;
        }
        let a = bridge::connect_with_dns(ctx, &self.store, &net, ns, &ep(&net), &servers)?;
        Ok((net, a))
    }

    /// Before each start: the namespace, its networks and the files that
    /// describe them. Whatever an earlier run left goes first; on failure
    /// nothing is left.
    pub(crate) fn net_up(&self, c: &Container) -> Result<()> {
        if self.net_namespace(c)? {
            self.net_join(c, EtcWrite::Replace)?;
        }
        Ok(())
    }

    /// The first half of [`Self::net_up`]: the container's network
    /// namespace, made anew (whatever an earlier run left goes first), with
    /// nothing in it yet. False when the container is on no bridge network.
    /// Nothing of it shows outside the container: an early create makes it
    /// ahead of the start (see super::warm), which then joins the networks.
    pub(crate) fn net_namespace(&self, c: &Container) -> Result<bool> {
        if read_plan(&c.dir).is_none() {
            return Ok(false);
        }
        self.net_down(&c.rec.id)?;
        let ctx = self.root_net_context()?;
        let path = ctx.netns_path(&c.rec.id);
        let made = match self.rootless_netns(true)? {
            Some(rl) => rl
                .create_container_netns(&path)
                .map_err(EngineError::from)
                .and_then(|_| self.join_rootless_netns(c, &rl, &path)),
            None => berth_net::ns::create_persistent(&path)
                .map(|_| ())
                .map_err(EngineError::from),
        };
        if let Err(e) = made {
            let _ = self.net_down(&c.rec.id);
            return Err(e);
        }
        Ok(true)
    }

    /// The second half of [`Self::net_up`]: joins the namespace made by
    /// [`Self::net_namespace`] to the container's networks (addresses, DNS
    /// names) and writes the files that describe them (`etc`: whether they
    /// are replaced or, when a created container has them bound already,
    /// rewritten in place). On failure the container leaves every network
    /// and its namespace goes.
    pub(crate) fn net_join(&self, c: &Container, etc: EtcWrite) -> Result<()> {
        let Some(plan) = read_plan(&c.dir) else {
            return Ok(());
        };
        let res = (|| -> Result<()> {
            let ctx = self.root_net_context()?;
            let ns = self.container_netns(&ctx, &c.rec.id)?;
            let mut got = Vec::new();
            for p in &plan.networks {
                got.push(self.connect_planned(&ctx, &c.rec.id, &c.rec.name, &ns, p, &plan.dns)?);
            }
            self.write_etc(c, &plan, &got, etc)
        })();
        if let Err(e) = res {
            let _ = self.net_down(&c.rec.id);
            return Err(e);
        }
        // Containers linking this one: its new address.
        self.refresh_links_to(c);
        Ok(())
    }

    /// The `connect` events of the networks container `c` joined for its
    /// start: recorded just before its `start`, where dockerd has them (a
    /// client's `attach` comes first).
    pub(crate) fn record_network_connects(&self, c: &Container) {
        if !on_bridge(&c.dir) {
            return;
        }
        let endpoints = self.store.container_endpoints(&c.rec.id).unwrap_or_default();
        self.record_endpoint_events("connect", &c.rec.id, &endpoints);
    }

    /// A network's `action` event (`connect`, `disconnect`) of container
    /// `id` for each of `endpoints`.
    fn record_endpoint_events(&self, action: &str, id: &str, endpoints: &[EndpointRecord]) {
        for e in endpoints {
            if let Ok(net) = self.store.network(&e.network_id) {
                self.network_endpoint_event(action, &net, id);
            }
        }
    }

    /// `/etc/hosts` and `/etc/resolv.conf` in the container directory
    /// (bound into the container when it starts). `/etc/hosts` names the
    /// container at its address on each network, as Docker's does.
    fn write_etc(
        &self,
        c: &Container,
        plan: &NetPlan,
        got: &[(NetworkRecord, Attachment)],
        how: EtcWrite,
    ) -> Result<()> {
        let first = got.first();
        let gateway = first.and_then(|(n, _)| n.gateway.parse::<Ipv4Addr>().ok());
        let s = EtcSettings {
            hostname: hostname_of(c),
            domainname: c.cfg.domainname.clone(),
            ip: first.map(|(_, a)| a.ip),
            ip6: first.and_then(|(_, a)| a.ip6).map(|(a, _)| a),
            gateway,
            dns_server: first.and_then(|(_, a)| a.dns_server),
            add_hosts: plan.extra_hosts.clone(),
            dns: plan.dns.clone(),
            dns_search: plan.dns_search.clone(),
            dns_options: plan.dns_options.clone(),
        };
        let mut hosts = etc::hosts(&s).map_err(|e| EngineError::invalid(e.to_string()))?;
        for (_, a) in got.iter().skip(1) {
            hosts.push_str(&host_line(c, a.ip));
            hosts.push('\n');
            if let Some((ip6, _)) = a.ip6 {
                hosts.push_str(&host_line(c, ip6));
                hosts.push('\n');
            }
        }
        // --link: the other container's address on a network both are on.
        let mine: Vec<String> = self
            .store
            .container_endpoints(&c.rec.id)?
            .into_iter()
            .map(|e| e.network_id)
            .collect();
        for (other, alias) in &plan.links {
            let Ok(o) = self.container(other) else {
                return Err(EngineError::not_found(format!(
                    "could not get container for {alias}: the linked container is gone"
                )));
            };
            let theirs = self.store.container_endpoints(&o.rec.id)?;
            let Some(e) = theirs.iter().find(|e| mine.contains(&e.network_id)) else {
                return Err(EngineError::invalid(format!(
                    "cannot link to {}: it is not running on a network this container is on",
                    o.rec.name
                )));
            };
            hosts.push_str(&link_line(&o, alias, e.ip));
            hosts.push('\n');
        }
        // network connect --link: the other container's address on that
        // network, when it is on it (else the alias does not resolve, as
        // with Docker's embedded DNS).
        for p in &plan.networks {
            let Some((net, _)) = got
                .iter()
                .find(|(n, _)| n.id == p.network || (p.is_default() && n.name == DEFAULT_NETWORK))
            else {
                continue;
            };
            for (other, alias) in &p.links {
                if let Some(line) = self.endpoint_link_line(net, other, alias)? {
                    hosts.push_str(&line);
                    hosts.push('\n');
                }
            }
        }
        let mut host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        if host_resolv.lines().any(|l| l.trim().starts_with("nameserver 127.")) {
            if let Ok(upstream) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
                host_resolv = upstream;
            }
        }
        let resolv = etc::resolv_conf(&s, &host_resolv);
        use berth_archive::perms;
        for (f, text) in [("hosts", hosts), ("resolv.conf", resolv)] {
            let p = c.dir.join(f);
            match how {
                EtcWrite::Replace => perms::write_atomic(&p, text.as_bytes(), perms::MOUNTED_FILE),
                EtcWrite::InPlace => rewrite_in_place(&p, text.as_bytes()),
            }
            .with_context(|| format!("writing {}", p.display()))?;
        }
        Ok(())
    }

    /// The `/etc/hosts` line of a `network connect --link` of planned
    /// endpoint `p`: `None` when the linked container is gone or not on
    /// that network (now).
    fn endpoint_link_line(&self, net: &NetworkRecord, other: &str, alias: &str) -> Result<Option<String>> {
        let Ok(o) = self.container(other) else {
            return Ok(None);
        };
        Ok(self
            .store
            .container_endpoints(&o.rec.id)?
            .into_iter()
            .find(|e| e.network_id == net.id)
            .map(|e| link_line(&o, alias, e.ip)))
    }

    /// Containers that link `c` (`--link`, `network connect --link`) and
    /// run: their `/etc/hosts` line for it gets its address now (it
    /// changes when `c` starts again or joins a network), as Docker
    /// updates its legacy links. Best effort: a linker's file that cannot
    /// be written keeps its old line.
    pub(crate) fn refresh_links_to(&self, c: &Container) {
        let Ok(text) = std::fs::read_to_string(c.dir.join(LINKED_BY)) else {
            return;
        };
        let Ok(theirs) = self.store.container_endpoints(&c.rec.id) else {
            return;
        };
        for id in text.lines().filter(|l| !l.is_empty()) {
            let Ok(linker) = self.container(id) else {
                continue;
            };
            if !linker.status().is_up() {
                continue;
            }
            let Some(plan) = read_plan(&linker.dir) else {
                continue;
            };
            let mine: Vec<String> = self
                .store
                .container_endpoints(&linker.rec.id)
                .map(|v| v.into_iter().map(|e| e.network_id).collect())
                .unwrap_or_default();
            // (alias, network the address must be on: None = any shared one)
            let mut wanted: Vec<(String, Option<String>)> = plan
                .links
                .iter()
                .filter(|(o, _)| *o == c.rec.id)
                .map(|(_, a)| (a.clone(), None))
                .collect();
            for p in &plan.networks {
                for (o, a) in &p.links {
                    if *o == c.rec.id {
                        let net = if p.is_default() {
                            self.store.network(DEFAULT_NETWORK).ok().map(|n| n.id)
                        } else {
                            Some(p.network.clone())
                        };
                        wanted.extend(net.map(|n| (a.clone(), Some(n))));
                    }
                }
            }
            for (alias, on) in wanted {
                let ep = theirs.iter().find(|e| match &on {
                    Some(n) => e.network_id == *n && mine.contains(n),
                    None => mine.contains(&e.network_id),
                });
                let Some(ep) = ep else {
                    continue;
                };
                let line = link_line(c, &alias, ep.ip);
                if let Err(e) = replace_named_line(linker.dir.join("hosts"), &line) {
                    log::warn!("updating the link {alias} in {}'s /etc/hosts: {e}", linker.rec.name);
                }
            }
        }
    }

    /// The container `id` left its networks (it exited, stopped, is being
    /// removed): leases, veths, DNS names and its namespace go. Safe to
    /// call for any container, any number of times.
    pub fn net_down(&self, id: &str) -> Result<()> {
        let Some(ctx) = self.net_context(false)? else {
            // Rootless with no namespace running (its holder was killed):
            // its links went with it, but the container's leases and DNS
            // records would stay for the next one (a removed container's
            // name resolving to its old address there).
            if crate::is_rootless() {
                let run_dir = berth_net::rootless::run_dir(&berth_net::rootless::default_dir(), self.root());
                bridge::release_offline(&run_dir, &self.store, id)?;
            }
            return Ok(());
        };
        let endpoints = self.store.container_endpoints(id)?;
        let had = !endpoints.is_empty();
        // The namespace goes just below, and its veths with it: the
        // kernel frees them asynchronously instead of making this wait.
        bridge::disconnect_all(&ctx, &self.store, id, Teardown::WithNamespace)?;
        self.record_endpoint_events("disconnect", id, &endpoints);
        let path = ctx.netns_path(id);
        let rl = self.rootless_netns(false)?;
        match &rl {
            Some(rl) => rl.remove_container_netns(&path)?,
            None if path.exists() => berth_net::ns::remove_persistent(&path)?,
            None => {}
        }
        if had {
            bridge::release_default_if_unused(&ctx, &self.store)?;
            // Rootless: the namespace (holder, pasta) goes with the last
            // network of every store of the user.
            if let Some(rl) = rl {
                rl.stop_if_unused();
            }
        }
        Ok(())
    }

    /// Leases of containers that are not running any more (their monitor
    /// was killed, the host rebooted): released, so `network rm` and
    /// `prune` see only real users.
    pub(crate) fn release_stale_endpoints(&self) -> Result<()> {
        // The leases are read after the endpoints: a container is leased
        // (by its create, or its start) before its start makes endpoints, so
        // one whose endpoints are listed here and which is being started
        // shows in this later read. Read the other way round, a run that
        // started in between looked stale (created, not yet running) and
        // lost its namespace under it.
        let endpoints = self.store.all_endpoints()?;
        let leased = self.store.leased()?.containers;
        let mut seen = std::collections::HashSet::new();
        for e in endpoints {
            if !seen.insert(e.container_id.clone()) || leased.contains(&e.container_id) {
                continue;
            }
            let running = match self.store.container(&e.container_id) {
                Ok(rec) => self.load_container(rec)?.status().is_up(),
                Err(_) => false,
            };
            if !running {
                self.net_down(&e.container_id)?;
            }
        }
        Ok(())
    }

    /// `network connect`: joins the network `ep` names (by name or ID)
    /// live (a running container gets its interface now) and for every
    /// later start, with `ep`'s aliases and addresses.
    pub fn network_connect(&self, ctr: &str, ep: &crate::spec::EndpointSpec, links: &[String]) -> Result<()> {
        let (aliases, ip, ip6) = (&ep.aliases, ep.ipv4, ep.ipv6);
        let c = self.container(ctr)?;
        // Its next start is to create what this changes.
        self.let_go_held(&c);
        let net = self.network_by_word(&ep.network)?;
        let mut plan = match read_plan(&c.dir) {
            Some(p) => p,
            None => {
                // Docker's words for each mode.
                return Err(EngineError::invalid(if c.doc().host_config.network_mode == "none" {
                    "container cannot be connected to multiple networks with one of the networks in private (none) mode"
                        .to_string()
                } else {
                    "container sharing network namespace with another container or host cannot be connected to any other network".to_string()
                }));
            }
        };
        let id = if net.name == DEFAULT_NETWORK {
            DEFAULT_NETWORK.to_string()
        } else {
            net.id.clone()
        };
        if plan.networks.iter().any(|p| p.network == id) {
            return Err(EngineError::conflict(format!(
                "endpoint with name {} already exists in network {}",
                c.rec.name, net.name
            )));
        }
        if id == DEFAULT_NETWORK && !links.is_empty() {
            return Err(EngineError::invalid(
                "links are only supported for user-defined networks",
            ));
        }
        if id == DEFAULT_NETWORK && (!aliases.is_empty() || ip.is_some() || ip6.is_some()) {
            return Err(EngineError::invalid(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
        let mut p = PlannedEndpoint {
            network: id,
            name: net.name.clone(),
            aliases: aliases.to_vec(),
            ipv4: ip,
            ipv6: ip6,
            mac: ep.mac_address.clone(),
            links: Vec::new(),
            link_local_ips: ep.link_local_ips.clone(),
        };
        for l in links {
            let (ctr, alias) = l.split_once(':').unwrap_or((l.as_str(), ""));
            if ctr.is_empty() {
                return Err(EngineError::invalid(format!("invalid link {}", shown(l))));
            }
            p.links.push(self.resolve_link(ctr, alias)?);
        }
        if let Some(ip6) = ip6 {
            check_ip6(&net, ip6)?;
        }
        if c.status().is_up() {
            let ctx = self.root_net_context()?;
            let ns = self.container_netns(&ctx, &c.rec.id)?;
            let (net, a) = self.connect_planned(&ctx, &c.rec.id, &c.rec.name, &ns, &p, &plan.dns)?;
            // As Docker: the container's /etc/hosts gets its new address(es).
            let mut edited = edit_hosts(c.dir.join("hosts"), &host_line(&c, a.ip), true);
            if let (Ok(()), Some((ip6, _))) = (&edited, a.ip6) {
                edited = edit_hosts(c.dir.join("hosts"), &host_line(&c, ip6), true);
            }
            // Its --link aliases on this network, now.
            for (other, alias) in &p.links {
                if edited.is_err() {
                    break;
                }
                if let Ok(Some(line)) = self.endpoint_link_line(&net, other, alias) {
                    edited = edit_hosts(c.dir.join("hosts"), &line, true);
                }
            }
            if let Err(e) = edited {
                let _ = bridge::disconnect(&ctx, &self.store, &net, &c.rec.id);
                return Err(e);
            }
            // Containers linking this one may reach it on this network now.
            self.refresh_links_to(&c);
            self.network_endpoint_event("connect", &net, &c.rec.id);
        } else if let Some(ip) = ip {
            bridge::addressing(&net)?
                .check_requested(ip)
                .map_err(|e| EngineError::invalid(e.to_string()))?;
        }
        plan.networks.push(p);
        write_plan(&c.dir, &plan)
    }

    /// `network disconnect`: leaves a network live and for later starts.
    /// Not connected: Docker's error unless `force`.
    pub fn network_disconnect(&self, net_word: &str, ctr: &str, force: bool) -> Result<()> {
        let c = self.container(ctr)?;
        // Its next start is to create what this changes.
        self.let_go_held(&c);
        let net = self.network_by_word(net_word)?;
        let id = if net.name == DEFAULT_NETWORK {
            DEFAULT_NETWORK.to_string()
        } else {
            net.id.clone()
        };
        let mut plan = read_plan(&c.dir).unwrap_or_default();
        let before = plan.networks.len();
        // Its --link lines on that network go from /etc/hosts too.
        let mut link_lines = Vec::new();
        for p in plan.networks.iter().filter(|p| p.network == id) {
            for (other, alias) in &p.links {
                link_lines.extend(self.endpoint_link_line(&net, other, alias)?);
            }
        }
        plan.networks.retain(|p| p.network != id);
        let planned = plan.networks.len() != before;
        let lease = self
            .store
            .container_endpoints(&c.rec.id)?
            .into_iter()
            .find(|e| e.network_id == net.id);
        let ip = lease.as_ref().map(|e| e.ip);
        let ip6 = lease.and_then(|e| e.ip6);
        let attached = match self.net_context(false)? {
            Some(ctx) => bridge::disconnect(&ctx, &self.store, &net, &c.rec.id)?,
            None => false,
        };
        if attached {
            self.network_endpoint_event("disconnect", &net, &c.rec.id);
        }
        if let (true, Some(ip)) = (attached, ip) {
            // Its address on that network leaves its /etc/hosts, as in Docker.
            edit_hosts(c.dir.join("hosts"), &host_line(&c, ip), false)?;
            if let Some(ip6) = ip6 {
                edit_hosts(c.dir.join("hosts"), &host_line(&c, ip6), false)?;
            }
            for l in &link_lines {
                edit_hosts(c.dir.join("hosts"), l, false)?;
            }
        }
        if !planned && !attached && !force {
            return Err(EngineError::conflict(format!(
                "container {} is not connected to the network {}",
                c.rec.id, net.name
            )));
        }
        if planned {
            write_plan(&c.dir, &plan)?;
        }
        if net.name == DEFAULT_NETWORK {
            if let Some(ctx) = self.net_context(false)? {
                bridge::release_default_if_unused(&ctx, &self.store)?;
            }
        }
        Ok(())
    }

    /// `inspect`'s `NetworkSettings` for a container on bridge networks
    /// (`None`: it is not): Docker's shape, the addresses while it runs.
    pub(crate) fn network_settings(&self, c: &Container) -> Result<Option<Value>> {
        let Some(plan) = read_plan(&c.dir) else {
            return Ok(None);
        };
        let eps = self.store.container_endpoints(&c.rec.id)?;
        let mut networks = serde_json::Map::new();
        let mut top = json!({"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "", "EndpointID": ""});
        let links: Vec<String> = plan
            .links
            .iter()
            .filter_map(|(o, alias)| {
                let other = self.store.container(o).ok()?;
                Some(format!("/{}:/{}/{}", other.name, c.rec.name, alias))
            })
            .collect();
        for p in &plan.networks {
            let net = if p.is_default() {
                self.store
                    .network(DEFAULT_NETWORK)
                    .ok()
                    .filter(|n| n.name == DEFAULT_NETWORK)
            } else {
                self.store.network(&p.network).ok()
            };
            let name = net.as_ref().map(|n| n.name.clone()).unwrap_or_else(|| p.name.clone());
            let ep = net.as_ref().and_then(|n| eps.iter().find(|e| e.network_id == n.id));
            let mut v = empty_endpoint(net.as_ref().map(|n| n.id.as_str()).unwrap_or_default());
            v["IPAMConfig"] = match (p.ipv4, p.ipv6, p.link_local_ips.is_empty()) {
                (None, None, true) => Value::Null,
                (v4, v6, _) => {
                    let mut m = serde_json::Map::new();
                    if let Some(ip) = v4 {
                        m.insert("IPv4Address".into(), json!(ip.to_string()));
                    }
                    if let Some(ip) = v6 {
                        m.insert("IPv6Address".into(), json!(ip.to_string()));
                    }
                    if !p.link_local_ips.is_empty() {
                        let ips: Vec<String> = p.link_local_ips.iter().map(IpAddr::to_string).collect();
                        m.insert("LinkLocalIPs".into(), json!(ips));
                    }
                    Value::Object(m)
                }
            };
            if p.is_default() && !links.is_empty() {
                v["Links"] = json!(links);
            }
            if !p.links.is_empty() {
                let named: Vec<String> = p
                    .links
                    .iter()
                    .map(|(o, alias)| {
                        let name = self.store.container(o).map(|r| r.name).unwrap_or_else(|_| o.clone());
                        format!("{name}:{alias}")
                    })
                    .collect();
                v["Links"] = json!(named);
            }
            if !p.aliases.is_empty() {
                v["Aliases"] = json!(p.aliases);
            }
            if let (Some(n), Some(e)) = (&net, ep) {
                let prefix = bridge::addressing(n).map(|a| a.subnet.prefix).unwrap_or(0);
                v["MacAddress"] = json!(e.mac);
                v["EndpointID"] = json!(crate::networks::endpoint_id(&n.id, &c.rec.id));
                v["Gateway"] = json!(if n.internal { String::new() } else { n.gateway.clone() });
                v["IPAddress"] = json!(e.ip.to_string());
                v["IPPrefixLen"] = json!(prefix);
                if let (Ok(Some(a6)), Some(ip6)) = (bridge::addressing6(n), e.ip6) {
                    v["GlobalIPv6Address"] = json!(ip6.to_string());
                    v["GlobalIPv6PrefixLen"] = json!(a6.subnet.prefix);
                    v["IPv6Gateway"] = json!(if n.internal {
                        String::new()
                    } else {
                        a6.gateway.to_string()
                    });
                }
                if n.dns {
                    let mut names = vec![c.rec.name.clone()];
                    names.extend(e.aliases.iter().cloned());
                    v["DNSNames"] = json!(names);
                }
                if p.is_default() {
                    for k in [
                        "IPAddress",
                        "IPPrefixLen",
                        "Gateway",
                        "MacAddress",
                        "EndpointID",
                        "GlobalIPv6Address",
                        "GlobalIPv6PrefixLen",
                        "IPv6Gateway",
                    ] {
                        top[k] = v[k].clone();
                    }
                }
            }
            networks.insert(name, v);
        }
        top["Networks"] = Value::Object(networks);
        Ok(Some(top))
    }

    /// The names of the networks a container is on (`ps`' NETWORKS).
    pub(crate) fn network_names_of(&self, c: &Container) -> Option<String> {
        let plan = read_plan(&c.dir)?;
        Some(
            plan.networks
                .iter()
                .map(|p| p.name.clone())
                .collect::<Vec<_>>()
                .join(","),
        )
    }
}

/// How [`Engine::net_join`] writes a container's `/etc/hosts` and
/// `/etc/resolv.conf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EtcWrite {
    /// A new file renamed over the old: nothing has them bound yet.
    Replace,
    /// The same file, truncated and written again: the runtime bound them
    /// into a container created ahead of its start, whose process has not
    /// run yet (a new file would not be seen through the bind mount).
    InPlace,
}

/// Writes `text` into the existing file `path`, keeping its inode: a
/// file bound into a container (see [`EtcWrite::InPlace`]).
fn rewrite_in_place(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(path)?;
    f.write_all(text)
}

/// `--ip6` must be an address of the network's IPv6 subnet.
fn check_ip6(n: &NetworkRecord, ip6: Ipv6Addr) -> Result<()> {
    match bridge::addressing6(n)? {
        Some(a6) => a6.check_requested(ip6).map_err(|e| EngineError::invalid(e.to_string())),
        None => Err(EngineError::invalid(format!(
            "invalid IPv6 address {ip6}: network {} has no IPv6 subnet (create it with --ipv6)",
            n.name
        ))),
    }
}

/// An endpoint of `inspect`'s `NetworkSettings.Networks` with nothing
/// set, in Docker's shape.
pub(crate) fn empty_endpoint(network_id: &str) -> Value {
    json!({
        "IPAMConfig": Value::Null, "Links": Value::Null, "Aliases": Value::Null, "MacAddress": "",
        "DriverOpts": Value::Null, "NetworkID": network_id, "EndpointID": "", "Gateway": "",
        "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "DNSNames": Value::Null,
    })
}

/// The container's host name: its own, else its short ID (as Docker's).
fn hostname_of(c: &Container) -> String {
    if c.cfg.hostname.is_empty() {
        c.short_id().to_string()
    } else {
        c.cfg.hostname.clone()
    }
}

/// The `/etc/hosts` line of a link to container `o` as `alias` at `ip`
/// (without its newline): Docker's `IP alias id name`.
fn link_line(o: &Container, alias: &str, ip: Ipv4Addr) -> String {
    if alias == o.rec.name {
        format!("{ip}\t{} {}", o.rec.name, o.short_id())
    } else {
        format!("{ip}\t{alias} {} {}", o.short_id(), o.rec.name)
    }
}

/// The line of a container's `/etc/hosts` naming it at `ip`.
fn host_line(c: &Container, ip: impl Into<IpAddr>) -> String {
    etc::self_line(ip, &hostname_of(c), &c.cfg.domainname)
}

/// Puts `line` in a running container's `/etc/hosts` in place of the
/// line naming the same names (its old address); appended when there is
/// none. No file: nothing to do.
fn replace_named_line(path: std::path::PathBuf, line: &str) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let names = line.split_once('\t').map_or("", |(_, n)| n);
    let old: Vec<&str> = text
        .lines()
        .filter(|l| l.split_once('\t').is_some_and(|(_, n)| n == names))
        .collect();
    for o in old {
        if o != line {
            edit_hosts(path.clone(), o, false)?;
        }
    }
    edit_hosts(path, line, true)
}

/// Adds `line` to (or removes it from) a running container's `/etc/hosts`
/// in the container directory: rewritten in place, as the container sees
/// this very inode through its bind mount. No file: nothing to do.
fn edit_hosts(path: std::path::PathBuf, line: &str, add: bool) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let mut lines: Vec<&str> = text.lines().filter(|l| *l != line).collect();
    if add {
        lines.push(line);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    if out == text {
        return Ok(());
    }
    rewrite_in_place(&path, out.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_specs_join_bridges() {
        let mut o = ContainerSpec::default();
        assert_eq!(network_names(&o, false), Some(vec!["bridge".to_string()]));
        assert_eq!(network_names(&o, true), None);
        o.network = NetworkMode::Network("app".into());
        assert_eq!(network_names(&o, true), Some(vec!["app".to_string()]));
        o.network = NetworkMode::Host;
        assert_eq!(network_names(&o, false), None);
        o.network = NetworkMode::Network("app".into());
        o.endpoints = vec![
            crate::spec::EndpointSpec {
                network: "app".into(),
                ..Default::default()
            },
            crate::spec::EndpointSpec {
                network: "db".into(),
                ..Default::default()
            },
        ];
        assert_eq!(
            network_names(&o, false),
            Some(vec!["app".to_string(), "db".to_string()])
        );
        let plan = NetPlan {
            networks: vec![PlannedEndpoint {
                network: "bridge".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<NetPlan>(&text).unwrap(), plan);
    }
}
