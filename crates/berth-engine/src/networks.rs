//! Networks as objects: `network create/ls/inspect/rm/prune`, and the
//! context (host or rootless namespace) every network operation runs in.
//! Attaching containers is done from the container operations (create,
//! start, rm) through [`Engine::net_context`] and `berth_net::bridge`.
//!
//! Docker's wording is kept for what a user sees: "network with name X
//! already exists", "network X not found", "X is a pre-defined network
//! and cannot be removed", the active-endpoints refusal of `rm`.

use std::collections::BTreeMap;
use std::path::Path;

use berth_net::bridge::{self, NetContext, NetworkRequest, Reconciled, DEFAULT_NETWORK};
use berth_net::rootless::{self, RootlessNetns};
use berth_store::{NetworkRecord, StoreError};
use serde_json::{json, Value};

use crate::error::{EngineError, Result};
use crate::Engine;

/// The networks every engine has without creating them: they are not
/// records, `ls` shows them and `rm` refuses them. (`bridge` becomes a
/// record the first time a container uses it.)
pub const PREDEFINED: [&str; 3] = [DEFAULT_NETWORK, "host", "none"];

/// `network ls --filter` values.
#[derive(Clone, Debug, Default)]
pub struct NetworkFilters {
    /// `name=` (substring, as Docker matches).
    pub names: Vec<String>,
    /// `id=` (prefix).
    pub ids: Vec<String>,
    /// `driver=`.
    pub drivers: Vec<String>,
    /// `label=KEY` or `label=KEY=VALUE`.
    pub labels: Vec<String>,
    /// `type=custom` / `type=builtin`.
    pub kind: Option<String>,
    /// `dangling=true`: networks no container uses.
    pub dangling: Option<bool>,
}

/// `KEY=VALUE` of one `--filter`.
pub(crate) fn split_filter(raw: &str) -> Result<(&str, &str)> {
    raw.split_once('=')
        .ok_or_else(|| EngineError::invalid(format!("bad format of filter (expected name=value): {raw:?}")))
}

/// The value of a `dangling=` filter.
pub(crate) fn dangling_value(v: &str) -> Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(EngineError::invalid(format!(
            "invalid filter 'dangling={v}' (use true or false)"
        ))),
    }
}

impl NetworkFilters {
    /// Parses `--filter KEY=VALUE` values.
    pub fn parse(filters: &[String]) -> Result<NetworkFilters> {
        let mut f = NetworkFilters::default();
        for raw in filters {
            let (k, v) = split_filter(raw)?;
            match k {
                "name" => f.names.push(v.into()),
                "id" => f.ids.push(v.into()),
                "driver" => f.drivers.push(v.into()),
                "label" => f.labels.push(v.into()),
                "type" => match v {
                    "custom" | "builtin" => f.kind = Some(v.into()),
                    _ => {
                        return Err(EngineError::invalid(format!(
                            "invalid filter: 'type'='{v}' (use custom or builtin)"
                        )))
                    }
                },
                "dangling" => f.dangling = Some(dangling_value(v)?),
                other => {
                    return Err(EngineError::invalid(format!(
                        "invalid filter {other:?}: networks take name, id, driver, label, type, dangling"
                    )))
                }
            }
        }
        Ok(f)
    }
}

/// One row of `network ls` (a record, or a predefined network not made yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRow {
    /// The network's ID (64 hex).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its driver (`bridge`, `host`, `null`).
    pub driver: String,
    /// Docker's scope (`local`).
    pub scope: String,
    /// No outbound route (`--internal`).
    pub internal: bool,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// When it was created (RFC 3339).
    pub created: String,
    /// Containers attached to it.
    pub containers: usize,
    /// A predefined network (`bridge`, `host`, `none`).
    pub builtin: bool,
    /// Dual stack (`--ipv6`).
    pub ipv6: bool,
}

/// A stable ID for a predefined network that has no record (per store).
fn predefined_id(root: &Path, name: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("berth-network:{}:{name}", root.display())))
}

/// Removes `dir` when it holds nothing but plain files (markers, locks):
/// a store's run directory that never held a DNS server or a namespace.
fn remove_if_only_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let entries: Vec<_> = entries.flatten().collect();
    if entries.iter().all(|e| e.file_type().is_ok_and(|t| t.is_file())) {
        for e in entries {
            let _ = std::fs::remove_file(e.path());
        }
        let _ = std::fs::remove_dir(dir);
    }
}

/// `label=KEY` or `label=KEY=VALUE` against a set of labels.
pub(crate) fn label_matches(labels: &BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

impl Engine {
    /// The namespace this engine's networks live in: the host's as root,
    /// the user's rootless network namespace otherwise (started when
    /// `start` and not running; `None` when not running and not `start`).
    pub fn net_context(&self, start: bool) -> Result<Option<NetContext>> {
        if !crate::is_rootless() {
            return Ok(Some(NetContext::host(self.root(), Path::new("/run/berth"))));
        }
        let dir = rootless::default_dir();
        let rl = if start {
            Some(RootlessNetns::ensure_for(&dir, self.root())?)
        } else {
            RootlessNetns::running(&dir)
        };
        Ok(rl.map(|r| r.context(self.root())))
    }

    /// `network create`.
    pub fn network_create(&self, req: &NetworkRequest) -> Result<NetworkRecord> {
        if PREDEFINED.contains(&req.name.as_str()) {
            return Err(EngineError::forbidden(format!(
                "{} is a pre-defined network and cannot be created",
                req.name
            )));
        }
        let ctx = self.net_context(true)?.expect("started");
        let rec = match bridge::create_network(&ctx, &self.store, req) {
            Ok(rec) => rec,
            Err(e) => {
                // Rootless: a refused first network does not keep the
                // namespace (its store's empty run directory marks it used).
                if crate::is_rootless() && self.store.list_networks()?.is_empty() {
                    remove_if_only_files(&ctx.run_dir);
                    if let Some(rl) = RootlessNetns::running(&rootless::default_dir()) {
                        rl.stop_if_unused();
                    }
                }
                return Err(e.into());
            }
        };
        self.network_event("create", &rec);
        Ok(rec)
    }

    /// The default network, created on first use (what `run` without `--network` joins).
    pub fn default_network(&self) -> Result<NetworkRecord> {
        let ctx = self.net_context(true)?.expect("started");
        Ok(bridge::ensure_default_network(&ctx, &self.store)?)
    }

    /// A network by name, ID or unique ID prefix.
    pub fn network(&self, word: &str) -> Result<NetworkRecord> {
        Ok(self.store.network(word)?)
    }

    /// `network ls`: records and the predefined networks, filtered, by name.
    pub fn network_list(&self, f: &NetworkFilters) -> Result<Vec<NetworkRow>> {
        let mut rows = Vec::new();
        for n in self.store.list_networks()? {
            let containers = self.store.network_endpoints(&n.id)?.len();
            rows.push(NetworkRow {
                builtin: n.name == DEFAULT_NETWORK,
                ipv6: !n.subnet6.is_empty(),
                id: n.id,
                name: n.name,
                driver: n.driver,
                scope: "local".into(),
                internal: n.internal,
                labels: n.labels,
                created: n.created,
                containers,
            });
        }
        // `bridge` is a record while containers use it (it is made then);
        // listed all the same, as Docker always has it.
        let has_bridge = rows.iter().any(|r| r.name == DEFAULT_NETWORK);
        let predefined: &[(&str, &str)] = if has_bridge {
            &[("host", "host"), ("none", "null")]
        } else {
            &[(DEFAULT_NETWORK, "bridge"), ("host", "host"), ("none", "null")]
        };
        for &(name, driver) in predefined {
            rows.push(NetworkRow {
                id: predefined_id(self.root(), name),
                name: name.into(),
                driver: driver.into(),
                scope: "local".into(),
                internal: false,
                labels: BTreeMap::new(),
                created: String::new(),
                containers: 0,
                builtin: true,
                ipv6: false,
            });
        }
        rows.retain(|r| {
            (f.names.is_empty() || f.names.iter().any(|n| r.name.contains(n.as_str())))
                && (f.ids.is_empty() || f.ids.iter().any(|i| r.id.starts_with(i.as_str())))
                && (f.drivers.is_empty() || f.drivers.contains(&r.driver))
                && f.labels.iter().all(|l| label_matches(&r.labels, l))
                && match f.kind.as_deref() {
                    Some("custom") => !r.builtin,
                    Some("builtin") => r.builtin,
                    _ => true,
                }
                && match f.dangling {
                    Some(d) => d == (r.containers == 0 && !r.builtin),
                    None => true,
                }
        });
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    /// `network inspect`: Docker's JSON shape.
    pub fn network_inspect(&self, word: &str) -> Result<Value> {
        let n = match self.store.network(word) {
            Ok(n) => n,
            Err(StoreError::NetworkNotFound(_)) if PREDEFINED.contains(&word) => {
                return Ok(json!({
                    "Name": word, "Id": predefined_id(self.root(), word), "Created": "", "Scope": "local",
                    "Driver": match word { "host" => "host", DEFAULT_NETWORK => "bridge", _ => "null" }, "EnableIPv6": false,
                    "IPAM": {"Driver": "default", "Options": null, "Config": []},
                    "Internal": false, "Attachable": false, "Ingress": false,
                    "ConfigFrom": {"Network": ""}, "ConfigOnly": false, "Containers": {}, "Options": {}, "Labels": {}
                }))
            }
            Err(e) => return Err(e.into()),
        };
        let prefix = bridge::addressing(&n)?.subnet.prefix;
        let addr6 = bridge::addressing6(&n)?;
        let mut containers = serde_json::Map::new();
        for e in self.store.network_endpoints(&n.id)? {
            containers.insert(
                e.container_id.clone(),
                json!({
                    "Name": e.name,
                    "EndpointID": endpoint_id(&n.id, &e.container_id),
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{prefix}", e.ip),
                    "IPv6Address": match (e.ip6, addr6) {
                        (Some(a), Some(a6)) => format!("{a}/{}", a6.subnet.prefix),
                        _ => String::new(),
                    },
                }),
            );
        }
        // The IPAM config as it was asked for (see NetworkRecord::show_gateway).
        let ipam = |subnet: &str, range: &str, gateway: &str, show: bool| {
            let mut c = json!({"Subnet": subnet});
            if !range.is_empty() {
                c["IPRange"] = json!(range);
            }
            if show {
                c["Gateway"] = json!(gateway);
            }
            c
        };
        let mut configs = vec![ipam(&n.subnet, &n.ip_range, &n.gateway, n.show_gateway)];
        if addr6.is_some() {
            configs.push(ipam(&n.subnet6, &n.ip_range6, &n.gateway6, n.show_gateway6));
        }
        Ok(json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": n.driver,
            "EnableIPv6": addr6.is_some(),
            "IPAM": {"Driver": "default", "Options": {}, "Config": configs},
            "Internal": n.internal,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": n.options,
            "Labels": n.labels,
        }))
    }

    /// `network rm`: refused for predefined networks and networks with
    /// containers; returns the name as given.
    pub fn network_remove(&self, word: &str) -> Result<()> {
        if ["host", "none"].contains(&word) || word == DEFAULT_NETWORK {
            return Err(EngineError::forbidden(format!(
                "{word} is a pre-defined network and cannot be removed"
            )));
        }
        let n = self.store.network(word)?;
        if n.name == DEFAULT_NETWORK {
            return Err(EngineError::forbidden(format!(
                "{DEFAULT_NETWORK} is a pre-defined network and cannot be removed"
            )));
        }
        // Containers that stopped without leaving (a killed monitor) are no users.
        self.release_stale_endpoints()?;
        let users = self.store.network_endpoints(&n.id)?;
        if !users.is_empty() {
            return Err(EngineError::forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        match self.net_context(false)? {
            Some(ctx) => bridge::remove_network(&ctx, &self.store, &n)?,
            // Rootless, with the namespace gone: its bridges went with it.
            None => self.store.remove_network(&n.id)?,
        }
        if crate::is_rootless() {
            // The last network of every store gone: so is the namespace (pasta, holder).
            if let Some(rl) = RootlessNetns::running(&rootless::default_dir()) {
                rl.stop_if_unused();
            }
        }
        self.network_event("destroy", &n);
        Ok(())
    }

    /// `network prune`: removes every user-defined network no container
    /// uses; returns their names.
    pub fn network_prune(&self) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        self.release_stale_endpoints()?;
        // A throwaway store's default network (it stays after its last
        // container as root); made again by the next container.
        if let Some(ctx) = self.net_context(false)? {
            bridge::remove_default_if_unused(&ctx, &self.store)?;
        }
        for n in self.store.list_networks()? {
            if n.name == DEFAULT_NETWORK || !self.store.network_endpoints(&n.id)?.is_empty() {
                continue;
            }
            self.network_remove(&n.id)?;
            gone.push(n.name);
        }
        Ok(gone)
    }

    /// Repairs what a killed berth process left in networking: leases and
    /// DNS records of containers that no longer exist, stray veths and bridges.
    pub fn network_reconcile(&self) -> Result<Reconciled> {
        let Some(ctx) = self.net_context(false)? else {
            return Ok(Reconciled::default());
        };
        let store = &self.store;
        Ok(bridge::reconcile(&ctx, store, &|id: &str| store.container(id).is_ok())?)
    }
}

/// A stable endpoint ID (Docker shows one per attachment).
pub fn endpoint_id(network_id: &str, container_id: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("{network_id}/{container_id}")))
}
