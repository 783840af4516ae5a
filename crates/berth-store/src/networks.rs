//! Network records and their endpoints (one row per container attached to
//! a network, holding its address lease).
//!
//! Addresses are handed out inside one `BEGIN IMMEDIATE` transaction, and
//! `(network_id, ip)` is unique, so two berth processes can never be given
//! the same address, whatever they race on. This module only keeps the
//! records: it never touches links, rules or namespaces (berth-net does).

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::error::{Result, StoreError};
use crate::Store;

/// A network as `network create` recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRecord {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// `bridge` (the only driver so far).
    pub driver: String,
    /// `172.18.0.0/16`.
    pub subnet: String,
    /// `172.18.0.1`.
    pub gateway: String,
    /// The part of the subnet addresses are handed out from (`""` = all of it).
    pub ip_range: String,
    /// No outbound route, no NAT.
    pub internal: bool,
    /// Containers resolve each other by name (user-defined networks; not the default `bridge`).
    pub dns: bool,
    /// The Linux bridge's name.
    pub bridge: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
    /// The IPv6 subnet (`fd12:3456:789a:1::/64`) of a dual-stack network; `""`: IPv4 only.
    pub subnet6: String,
    /// Its IPv6 gateway (`""` without IPv6).
    pub gateway6: String,
    /// The part of the IPv6 subnet addresses come from (`""` = all of it).
    pub ip_range6: String,
    /// Inspect shows the IPv4 gateway: it was given, or the subnet was
    /// chosen (not for a given subnet whose gateway was chosen).
    pub show_gateway: bool,
    /// The same for the IPv6 gateway.
    pub show_gateway6: bool,
}

/// A container's attachment to a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRecord {
    pub network_id: String,
    pub container_id: String,
    /// The container's name (answered by the network's DNS).
    pub name: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    /// `--network-alias` values and compose service names.
    pub aliases: Vec<String>,
    /// The bridge side of the veth pair ("" until plugged in).
    pub host_veth: String,
    /// The network namespace it was plugged into ("" until plugged in).
    pub netns: String,
    /// The IPv6 lease on a dual-stack network.
    pub ip6: Option<Ipv6Addr>,
}

/// Where a network hands addresses out from, as u32 IPv4 addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPool {
    pub first: u32,
    pub last: u32,
    /// Never handed out (the gateway, the subnet's broadcast address …).
    pub reserved: Vec<u32>,
}

/// Where a dual-stack network hands IPv6 addresses out from, as u128 addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPool6 {
    pub first: u128,
    pub last: u128,
    /// Never handed out (the gateway, the subnet's first address).
    pub reserved: Vec<u128>,
}

/// What to attach.
#[derive(Clone, Debug, Default)]
pub struct NewEndpoint {
    pub container_id: String,
    pub name: String,
    /// `--ip`: this address or an error.
    pub ip: Option<Ipv4Addr>,
    /// `--ip6`: this IPv6 address or an error (dual-stack networks).
    pub ip6: Option<Ipv6Addr>,
    /// `--mac-address`; derived from the address when `None`.
    pub mac: Option<String>,
    pub aliases: Vec<String>,
    /// `--link-local-ip`: more addresses of the container's interface on
    /// this network (IPv4 in a /16, IPv6 in a /64, as Docker adds them).
    pub link_local: Vec<std::net::IpAddr>,
}

type NetRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    bool,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
    bool,
);

const NET_COLS: &str =
    "id, name, driver, subnet, gateway, ip_range, internal, dns, bridge, labels, options, created, subnet6, gateway6, ip_range6, show_gateway, show_gateway6";

fn net_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NetRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
        r.get(15)?,
        r.get(16)?,
    ))
}

fn to_net(t: NetRow) -> NetworkRecord {
    NetworkRecord {
        id: t.0,
        name: t.1,
        driver: t.2,
        subnet: t.3,
        gateway: t.4,
        ip_range: t.5,
        internal: t.6,
        dns: t.7,
        bridge: t.8,
        labels: serde_json::from_str(&t.9).unwrap_or_default(),
        options: serde_json::from_str(&t.10).unwrap_or_default(),
        created: t.11,
        subnet6: t.12,
        gateway6: t.13,
        ip_range6: t.14,
        show_gateway: t.15,
        show_gateway6: t.16,
    }
}

const EP_COLS: &str = "network_id, container_id, name, ip, mac, aliases, host_veth, netns, ip6";

type EpRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

fn ep_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EpRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn to_ep(t: EpRow) -> EndpointRecord {
    EndpointRecord {
        network_id: t.0,
        container_id: t.1,
        name: t.2,
        ip: t.3.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
        mac: t.4,
        aliases: serde_json::from_str(&t.5).unwrap_or_default(),
        host_veth: t.6,
        netns: t.7,
        ip6: t.8.and_then(|s| s.parse().ok()),
    }
}

/// Docker's MAC for an address: `02:42:` and the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// The IPv6 address an endpoint gets inside the allocating transaction:
/// `want` when free, else the lowest free address of `pool`.
fn pick_ip6(
    tx: &rusqlite::Transaction<'_>,
    network_id: &str,
    pool: &AddressPool6,
    want: Option<Ipv6Addr>,
) -> Result<Ipv6Addr> {
    let used: HashSet<u128> = {
        let mut st = tx.prepare("SELECT ip6 FROM endpoints WHERE network_id = ?1 AND ip6 IS NOT NULL")?;
        let v = st
            .query_map(params![network_id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        v.iter()
            .filter_map(|s| s.parse::<Ipv6Addr>().ok())
            .map(u128::from)
            .collect()
    };
    let taken = |a: u128| used.contains(&a) || pool.reserved.contains(&a);
    if let Some(w) = want {
        if taken(u128::from(w)) {
            return Err(StoreError::AddressInUse(w.to_string()));
        }
        return Ok(w);
    }
    // At most used + reserved + 1 candidates are looked at.
    let mut a = pool.first;
    loop {
        if !taken(a) {
            return Ok(Ipv6Addr::from(a));
        }
        if a >= pool.last {
            return Err(StoreError::NoAddressLeft(network_id.to_string()));
        }
        a += 1;
    }
}

impl Store {
    /// Records a network; fails with [`StoreError::NetworkExists`] when the
    /// name (or the bridge name) is taken.
    pub fn insert_network(&self, n: &NetworkRecord) -> Result<()> {
        let r = self.db().execute(
            &format!("INSERT INTO networks ({NET_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"),
            params![
                n.id,
                n.name,
                n.driver,
                n.subnet,
                n.gateway,
                n.ip_range,
                n.internal,
                n.dns,
                n.bridge,
                serde_json::to_string(&n.labels).expect("labels serialise"),
                serde_json::to_string(&n.options).expect("options serialise"),
                n.created,
                n.subnet6,
                n.gateway6,
                n.ip_range6,
                n.show_gateway,
                n.show_gateway6
            ],
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_constraint(&e) => Err(StoreError::NetworkExists(n.name.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// By exact name, full ID, or unique ID prefix (Docker's lookup order).
    pub fn network(&self, word: &str) -> Result<NetworkRecord> {
        let db = self.db();
        let exact = db
            .query_row(
                &format!("SELECT {NET_COLS} FROM networks WHERE name = ?1 OR id = ?1 ORDER BY name = ?1 DESC"),
                params![word],
                net_row,
            )
            .optional()?;
        if let Some(t) = exact {
            return Ok(to_net(t));
        }
        if !word.is_empty() && word.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut st = db.prepare_cached(&format!("SELECT {NET_COLS} FROM networks WHERE id LIKE ?1"))?;
            let found: Vec<_> = st
                .query_map(params![format!("{word}%")], net_row)?
                .collect::<rusqlite::Result<_>>()?;
            match found.len() {
                1 => return Ok(to_net(found.into_iter().next().expect("one"))),
                0 => {}
                n => {
                    return Err(StoreError::AmbiguousNetwork {
                        reference: word.to_string(),
                        count: n,
                    })
                }
            }
        }
        Err(StoreError::NetworkNotFound(word.to_string()))
    }

    /// Every network, by name.
    pub fn list_networks(&self) -> Result<Vec<NetworkRecord>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!("SELECT {NET_COLS} FROM networks ORDER BY name"))?;
        let rows = st.query_map([], net_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows.into_iter().map(to_net).collect())
    }

    /// Removes a network that has no endpoints; fails with
    /// [`StoreError::NetworkInUse`] (listing the containers) otherwise.
    pub fn remove_network(&self, id: &str) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let users: Vec<String> = {
            let mut st = tx.prepare("SELECT container_id FROM endpoints WHERE network_id = ?1")?;
            let v = st
                .query_map(params![id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            v
        };
        if !users.is_empty() {
            return Err(StoreError::NetworkInUse {
                network: id.to_string(),
                containers: users,
            });
        }
        tx.execute("DELETE FROM networks WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(())
    }

    /// Attaches a container to a network and leases it an address: the
    /// requested one (`--ip`) or the next free one of `pool`.
    pub fn allocate_endpoint(&self, network_id: &str, pool: &AddressPool, ep: &NewEndpoint) -> Result<EndpointRecord> {
        self.allocate_endpoint_dual(network_id, pool, None, ep)
    }

    /// [`Store::allocate_endpoint`] on a dual-stack network: an IPv6
    /// address too, from `pool6` (the requested one, `--ip6`, or the
    /// lowest free one), in the same transaction.
    pub fn allocate_endpoint_dual(
        &self,
        network_id: &str,
        pool: &AddressPool,
        pool6: Option<&AddressPool6>,
        ep: &NewEndpoint,
    ) -> Result<EndpointRecord> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let next: Option<i64> = tx
            .query_row("SELECT next_ip FROM networks WHERE id = ?1", params![network_id], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(next) = next else {
            return Err(StoreError::NetworkNotFound(network_id.to_string()));
        };
        let attached: Option<String> = tx
            .query_row(
                "SELECT ip FROM endpoints WHERE network_id = ?1 AND container_id = ?2",
                params![network_id, ep.container_id],
                |r| r.get(0),
            )
            .optional()?;
        if attached.is_some() {
            return Err(StoreError::AlreadyAttached {
                container: ep.container_id.clone(),
                network: network_id.to_string(),
            });
        }
        let used: HashSet<u32> = {
            let mut st = tx.prepare("SELECT ip FROM endpoints WHERE network_id = ?1")?;
            let v = st
                .query_map(params![network_id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            v.iter()
                .filter_map(|s| s.parse::<Ipv4Addr>().ok())
                .map(u32::from)
                .collect()
        };
        let taken = |a: u32| used.contains(&a) || pool.reserved.contains(&a);
        let ip = match ep.ip {
            Some(want) => {
                if taken(u32::from(want)) {
                    return Err(StoreError::AddressInUse(want.to_string()));
                }
                u32::from(want)
            }
            None => {
                let size = u64::from(pool.last - pool.first) + 1;
                let start = (next as u32).clamp(pool.first, pool.last);
                let found = (0..size)
                    .map(|i| pool.first + ((u64::from(start - pool.first) + i) % size) as u32)
                    .find(|&a| !taken(a));
                match found {
                    Some(a) => a,
                    None => return Err(StoreError::NoAddressLeft(network_id.to_string())),
                }
            }
        };
        let ip = Ipv4Addr::from(ip);
        let ip6 = match pool6 {
            Some(p6) => Some(pick_ip6(&tx, network_id, p6, ep.ip6)?),
            None => None,
        };
        let mac = ep.mac.clone().unwrap_or_else(|| mac_for(ip));
        let aliases = serde_json::to_string(&ep.aliases).expect("aliases serialise");
        tx.execute(
            "INSERT INTO endpoints (network_id, container_id, name, ip, mac, aliases, created, ip6) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                network_id,
                ep.container_id,
                ep.name,
                ip.to_string(),
                mac,
                aliases,
                crate::now_unix(),
                ip6.map(|a| a.to_string())
            ],
        )
        .map_err(|e| if is_constraint(&e) { StoreError::AddressInUse(ip.to_string()) } else { e.into() })?;
        if ep.ip.is_none() {
            let after = if u32::from(ip) >= pool.last {
                pool.first
            } else {
                u32::from(ip) + 1
            };
            tx.execute(
                "UPDATE networks SET next_ip = ?2 WHERE id = ?1",
                params![network_id, i64::from(after)],
            )?;
        }
        tx.commit()?;
        Ok(EndpointRecord {
            network_id: network_id.to_string(),
            container_id: ep.container_id.clone(),
            name: ep.name.clone(),
            ip,
            mac,
            aliases: ep.aliases.clone(),
            host_veth: String::new(),
            netns: String::new(),
            ip6,
        })
    }

    /// Records where an endpoint was plugged in (so teardown and reconcile find it).
    pub fn set_endpoint_plugged(
        &self,
        network_id: &str,
        container_id: &str,
        host_veth: &str,
        netns: &str,
    ) -> Result<()> {
        self.db().execute(
            "UPDATE endpoints SET host_veth = ?3, netns = ?4 WHERE network_id = ?1 AND container_id = ?2",
            params![network_id, container_id, host_veth, netns],
        )?;
        Ok(())
    }

    /// Gives the address back; returns the endpoint that was removed, if any.
    pub fn release_endpoint(&self, network_id: &str, container_id: &str) -> Result<Option<EndpointRecord>> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ep = tx
            .query_row(
                &format!("SELECT {EP_COLS} FROM endpoints WHERE network_id = ?1 AND container_id = ?2"),
                params![network_id, container_id],
                ep_row,
            )
            .optional()?;
        tx.execute(
            "DELETE FROM endpoints WHERE network_id = ?1 AND container_id = ?2",
            params![network_id, container_id],
        )?;
        tx.commit()?;
        Ok(ep.map(to_ep))
    }

    /// The endpoints of a network, by address.
    pub fn network_endpoints(&self, network_id: &str) -> Result<Vec<EndpointRecord>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!("SELECT {EP_COLS} FROM endpoints WHERE network_id = ?1"))?;
        let rows = st
            .query_map(params![network_id], ep_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut v: Vec<EndpointRecord> = rows.into_iter().map(to_ep).collect();
        v.sort_by_key(|e| u32::from(e.ip));
        Ok(v)
    }

    /// The networks a container is attached to.
    pub fn container_endpoints(&self, container_id: &str) -> Result<Vec<EndpointRecord>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!("SELECT {EP_COLS} FROM endpoints WHERE container_id = ?1"))?;
        let rows = st
            .query_map(params![container_id], ep_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows.into_iter().map(to_ep).collect())
    }

    /// Every endpoint of every network (for reconcile and cleanup listings).
    pub fn all_endpoints(&self) -> Result<Vec<EndpointRecord>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!("SELECT {EP_COLS} FROM endpoints"))?;
        let rows = st.query_map([], ep_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows.into_iter().map(to_ep).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(store: &Store, name: &str, subnet: &str) -> NetworkRecord {
        let n = NetworkRecord {
            id: format!("{:0>64}", name.len().to_string() + name),
            name: name.into(),
            driver: "bridge".into(),
            subnet: subnet.into(),
            gateway: "10.9.0.1".into(),
            ip_range: String::new(),
            internal: false,
            dns: true,
            bridge: format!("br-{name}"),
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            created: "2026-01-01T00:00:00Z".into(),
            subnet6: String::new(),
            gateway6: String::new(),
            ip_range6: String::new(),
            show_gateway: true,
            show_gateway6: true,
        };
        store.insert_network(&n).unwrap();
        n
    }

    fn pool() -> AddressPool {
        // 10.9.0.0/29: .1 is the gateway, .7 the broadcast address.
        AddressPool {
            first: u32::from(Ipv4Addr::new(10, 9, 0, 1)),
            last: u32::from(Ipv4Addr::new(10, 9, 0, 6)),
            reserved: vec![u32::from(Ipv4Addr::new(10, 9, 0, 1))],
        }
    }

    fn ep(id: &str) -> NewEndpoint {
        NewEndpoint {
            container_id: id.into(),
            name: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn leases_are_distinct_freed_and_never_past_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let n = net(&store, "app", "10.9.0.0/29");
        let a = store.allocate_endpoint(&n.id, &pool(), &ep("a")).unwrap();
        let b = store.allocate_endpoint(&n.id, &pool(), &ep("b")).unwrap();
        assert_eq!(a.ip, Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(b.ip, Ipv4Addr::new(10, 9, 0, 3));
        assert_eq!(a.mac, "02:42:0a:09:00:02");
        // The same container twice is refused.
        assert!(matches!(
            store.allocate_endpoint(&n.id, &pool(), &ep("a")),
            Err(StoreError::AlreadyAttached { .. })
        ));
        // --ip of a taken address is refused; of a free one, given.
        let mut want = ep("c");
        want.ip = Some(b.ip);
        assert!(matches!(
            store.allocate_endpoint(&n.id, &pool(), &want),
            Err(StoreError::AddressInUse(_))
        ));
        want.ip = Some(Ipv4Addr::new(10, 9, 0, 6));
        assert_eq!(
            store.allocate_endpoint(&n.id, &pool(), &want).unwrap().ip,
            want.ip.unwrap()
        );
        for id in ["d", "e"] {
            store.allocate_endpoint(&n.id, &pool(), &ep(id)).unwrap();
        }
        // .2-.6 are all taken now.
        assert!(matches!(
            store.allocate_endpoint(&n.id, &pool(), &ep("f")),
            Err(StoreError::NoAddressLeft(_))
        ));
        // A network with endpoints cannot be removed.
        assert!(matches!(
            store.remove_network(&n.id),
            Err(StoreError::NetworkInUse { .. })
        ));
        let gone = store.release_endpoint(&n.id, "a").unwrap().unwrap();
        assert_eq!(gone.ip, a.ip);
        assert_eq!(store.allocate_endpoint(&n.id, &pool(), &ep("f")).unwrap().ip, a.ip);
        for id in ["b", "c", "d", "e", "f"] {
            store.release_endpoint(&n.id, id).unwrap();
        }
        assert!(store.network_endpoints(&n.id).unwrap().is_empty());
        store.remove_network(&n.id).unwrap();
        assert!(matches!(store.network("app"), Err(StoreError::NetworkNotFound(_))));
    }

    #[test]
    fn dual_stack_leases_are_distinct_and_freed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let n = net(&store, "dual", "10.9.0.0/29");
        let base = u128::from("fd12:3456:789a:1::".parse::<Ipv6Addr>().unwrap());
        let p6 = AddressPool6 {
            first: base + 1,
            last: base + u128::from(u64::MAX) - 1,
            reserved: vec![base + 1],
        };
        let alloc = |id: &str, want: Option<Ipv6Addr>| {
            let mut e = ep(id);
            e.ip6 = want;
            store.allocate_endpoint_dual(&n.id, &pool(), Some(&p6), &e)
        };
        let a = alloc("a", None).unwrap();
        let b = alloc("b", None).unwrap();
        assert_eq!(a.ip6, Some(Ipv6Addr::from(base + 2)));
        assert_eq!(b.ip6, Some(Ipv6Addr::from(base + 3)));
        let fixed: Ipv6Addr = "fd12:3456:789a:1::99".parse().unwrap();
        assert_eq!(alloc("c", Some(fixed)).unwrap().ip6, Some(fixed));
        assert!(matches!(alloc("d", Some(fixed)), Err(StoreError::AddressInUse(_))));
        assert!(matches!(
            alloc("d", Some(Ipv6Addr::from(base + 1))),
            Err(StoreError::AddressInUse(_))
        ));
        assert_eq!(store.container_endpoints("c").unwrap()[0].ip6, Some(fixed));
        store.release_endpoint(&n.id, "a").unwrap();
        assert_eq!(alloc("d", None).unwrap().ip6, a.ip6);
        // An IPv4-only lease on the same network has no IPv6 address.
        assert_eq!(store.allocate_endpoint(&n.id, &pool(), &ep("e")).unwrap().ip6, None);
        assert_eq!(store.allocate_endpoint(&n.id, &pool(), &ep("f")).unwrap().ip6, None);
    }

    #[test]
    fn lookup_by_name_id_and_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let n = net(&store, "web", "10.9.0.0/29");
        assert_eq!(store.network("web").unwrap(), n);
        assert_eq!(store.network(&n.id).unwrap(), n);
        assert_eq!(store.network(&n.id[..5]).unwrap(), n);
        assert!(matches!(
            store.insert_network(&n),
            Err(StoreError::NetworkExists(name)) if name == "web"
        ));
    }

    /// Eight processes allocate at once: eight distinct addresses. The
    /// test binary re-runs itself as the eight workers.
    #[test]
    fn concurrent_processes_get_distinct_addresses() {
        if let Ok(root) = std::env::var("BERTH_STORE_IPAM_WORKER") {
            let store = Store::open(std::path::Path::new(&root)).unwrap();
            let id = std::env::var("BERTH_STORE_IPAM_ID").unwrap();
            let n = store.network("race").unwrap();
            let big = AddressPool {
                first: u32::from(Ipv4Addr::new(10, 9, 0, 2)),
                last: u32::from(Ipv4Addr::new(10, 9, 0, 254)),
                reserved: vec![],
            };
            let e = store.allocate_endpoint(&n.id, &big, &ep(&id)).unwrap();
            println!("LEASE {}", e.ip);
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        net(&store, "race", "10.9.0.0/24");
        drop(store);
        let exe = std::env::current_exe().unwrap();
        let kids: Vec<_> = (0..8)
            .map(|i| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "networks::tests::concurrent_processes_get_distinct_addresses",
                        "--nocapture",
                    ])
                    .env("BERTH_STORE_IPAM_WORKER", dir.path())
                    .env("BERTH_STORE_IPAM_ID", format!("c{i}"))
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut ips = HashSet::new();
        for k in kids {
            let out = k.wait_with_output().unwrap();
            assert!(out.status.success());
            let text = String::from_utf8_lossy(&out.stdout);
            let ip = text
                .lines()
                .find_map(|l| l.strip_prefix("LEASE "))
                .expect("the worker printed its lease")
                .to_string();
            assert!(ips.insert(ip.clone()), "{ip} was handed out twice");
        }
        assert_eq!(ips.len(), 8);
        let store = Store::open(dir.path()).unwrap();
        let n = store.network("race").unwrap();
        assert_eq!(store.network_endpoints(&n.id).unwrap().len(), 8);
    }
}
