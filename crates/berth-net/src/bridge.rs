//! Bridge networks: what `network create/rm/connect/disconnect` do to the
//! kernel, kept in step with the store's records.
//!
//! * A network is a Linux bridge holding the gateway address, plus its
//!   elements in berth's nftables table (isolation, NAT; see
//!   `firewall.rs`), plus a record file for the DNS server when it
//!   resolves names. The bridge is made when the network is created, so
//!   its route claims the subnet host-wide before another network (of any
//!   berth store) chooses one.
//! * A container joins with a veth pair: the bridge side (`brth` + 8 hex,
//!   a port of the bridge) and `ethN` made directly inside the container's
//!   namespace with the leased address, its MAC, and the default route
//!   (unless internal, or another network gave one already). This touches
//!   no firewall rule: the hot path of `run` is a handful of netlink
//!   messages and one SQLite transaction.
//! * Every link berth makes carries the alias `berth:<store tag>:<network>`
//!   (`…:<container>` for veths), so [`reconcile`] can find what a killed
//!   process left behind and [`inventory`] can list it all.
//!
//! Nothing here sends a packet anywhere.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use berth_store::{EndpointRecord, NetworkRecord, NewEndpoint, Store, StoreError};

use crate::dns::{self, Dns, DnsRecord};
use crate::error::{NetError, Result};
use crate::firewall::{Firewall, NetworkRules, TableState};
use crate::ipam::{choose_subnet, choose_subnet6, Addressing, Addressing6, Subnet, Subnet6};
use crate::nl::{parse_mac, Netlink};
use crate::ns::Namespace;

/// The option Docker keeps the bridge's name in.
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";
/// The name of the default network.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Prefix of the bridge side of berth's veth pairs.
pub const VETH_PREFIX: &str = "brth";

/// Where one store's networks live: the namespace holding the bridges
/// (the host's as root, the rootless one otherwise), the run directory
/// (DNS records, locks), and the tag that marks this store's links.
#[derive(Clone, Debug)]
pub struct NetContext {
    /// Per-store runtime state: `aardvark-dns/`, locks, `netns/` (containers' namespaces).
    pub run_dir: PathBuf,
    /// Shared by every store using `bridge_ns`: the lock that serialises subnet choice.
    pub lock_dir: PathBuf,
    /// The namespace the bridges are in.
    pub bridge_ns: Namespace,
    /// 8 hex digits naming the store in link aliases.
    pub tag: String,
    /// The store is the system default (`/var/lib/berth`): its default network's bridge is `berth0`.
    pub default_store: bool,
    /// The resolver the DNS server forwards loopback resolvers to (rootless: pasta's).
    pub dns_forward: Option<Ipv4Addr>,
    /// Set `net.ipv4.ip_forward` in `bridge_ns` (root; the rootless namespace sets its own).
    pub set_ip_forward: bool,
    /// The DNS server's upstream `resolv.conf`, instead of one made from
    /// the host's (tests point it at a server of their own).
    pub upstream_override: Option<String>,
}

/// FNV-1a of the store's path: a stable short tag.
pub fn store_tag(store_root: &Path) -> String {
    let canon = std::fs::canonicalize(store_root).unwrap_or_else(|_| store_root.to_path_buf());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canon.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", (h >> 32) as u32 ^ h as u32)
}

impl NetContext {
    /// As root: bridges in the host's namespace; state under `run_base`
    /// (`/run/berth`) in a directory per store.
    pub fn host(store_root: &Path, run_base: &Path) -> NetContext {
        let tag = store_tag(store_root);
        NetContext {
            run_dir: run_base.join(format!("net-{tag}")),
            lock_dir: run_base.to_path_buf(),
            bridge_ns: crate::ns::host(),
            tag,
            default_store: store_root == Path::new("/var/lib/berth"),
            dns_forward: None,
            set_ip_forward: true,
            upstream_override: None,
        }
    }

    fn lock(&self) -> Result<std::fs::File> {
        crate::lock_file(&self.lock_dir.join("networks.lock"))
    }

    fn dns(&self) -> Dns {
        Dns::new(&self.run_dir, self.bridge_ns.clone())
    }

    fn firewall(&self) -> Firewall {
        Firewall::with_lock(self.bridge_ns.clone(), self.lock_dir.join("firewall.lock"))
    }

    fn netlink(&self) -> Result<Netlink> {
        self.bridge_ns.netlink()
    }

    fn alias(&self, net_id: &str, container_id: Option<&str>) -> String {
        let n = &net_id[..net_id.len().min(12)];
        match container_id {
            Some(c) => format!("berth:{}:{n}:{}", self.tag, &c[..c.len().min(12)]),
            None => format!("berth:{}:{n}", self.tag),
        }
    }

    fn upstream(&self) -> String {
        if let Some(u) = &self.upstream_override {
            return u.clone();
        }
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        dns::upstream_conf(&host, self.dns_forward)
    }
}

/// What `network create` asks for.
#[derive(Clone, Debug, Default)]
pub struct NetworkRequest {
    pub name: String,
    /// `bridge` (the default) is the only driver.
    pub driver: Option<String>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// `--ipv6`: dual stack (an IPv6 subnet too; a free ULA /64 unless `subnet6`).
    pub ipv6: bool,
    /// The IPv6 `--subnet`, `--gateway` and `--ip-range` (with `ipv6`).
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
    pub ip_range6: Option<String>,
}

/// What a container got on a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub network_id: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// `None` on an internal network (no default route).
    pub gateway: Option<Ipv4Addr>,
    pub mac: String,
    /// Inside the container: `eth0`, `eth1`, …
    pub ifname: String,
    /// On the bridge.
    pub host_veth: String,
    /// The network's DNS server, for resolv.conf (user-defined networks).
    pub dns_server: Option<Ipv4Addr>,
    /// Its IPv6 address and prefix length on a dual-stack network.
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// Its IPv6 default route (`None`: IPv4 only, or internal).
    pub gateway6: Option<Ipv6Addr>,
}

fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut r = rand::thread_rng();
    (0..n).map(|_| format!("{:x}", r.gen_range(0..16u8))).collect()
}

/// The addressing a record describes.
pub fn addressing(net: &NetworkRecord) -> Result<Addressing> {
    let subnet: Subnet = net.subnet.parse()?;
    let gw: Ipv4Addr = net
        .gateway
        .parse()
        .map_err(|_| NetError::InvalidNetwork(format!("network {}: bad gateway {:?}", net.name, net.gateway)))?;
    let range = if net.ip_range.is_empty() {
        None
    } else {
        Some(net.ip_range.parse()?)
    };
    Addressing::new(subnet, Some(gw), range)
}

/// The IPv6 addressing of a dual-stack network's record (`None`: IPv4 only).
pub fn addressing6(net: &NetworkRecord) -> Result<Option<Addressing6>> {
    if net.subnet6.is_empty() {
        return Ok(None);
    }
    let subnet: Subnet6 = net.subnet6.parse()?;
    let gw: Ipv6Addr = net
        .gateway6
        .parse()
        .map_err(|_| NetError::InvalidNetwork(format!("network {}: bad gateway {:?}", net.name, net.gateway6)))?;
    let range = if net.ip_range6.is_empty() {
        None
    } else {
        Some(net.ip_range6.parse()?)
    };
    Addressing6::new(subnet, Some(gw), range).map(Some)
}

fn rules(net: &NetworkRecord) -> Result<NetworkRules> {
    Ok(NetworkRules {
        bridge: net.bridge.clone(),
        subnet: net.subnet.parse()?,
        internal: net.internal,
        subnet6: addressing6(net)?.map(|a| a.subnet),
    })
}

/// The rules a bridge's addresses imply (a bridge whose record is gone).
fn rules_of_link(nl: &mut Netlink, l: &crate::nl::Link) -> Result<Option<NetworkRules>> {
    let Some((ip, p)) = nl.addrs(l.index)?.into_iter().next() else {
        return Ok(None);
    };
    let subnet6 = nl
        .addrs6(l.index)?
        .into_iter()
        .next()
        .map(|(a, p6)| Subnet6::new(Subnet6::new(a, p6).network(), p6));
    Ok(Some(NetworkRules {
        bridge: l.name.clone(),
        subnet: Subnet::new(Subnet::new(ip, p).network(), p),
        internal: false,
        subnet6,
    }))
}

/// IPv6 forwarding in the bridges' namespace, as Docker and Podman set it
/// for IPv6 networks.
fn set_ip6_forward() -> Result<()> {
    let p = "/proc/sys/net/ipv6/conf/all/forwarding";
    if std::fs::read_to_string(p).map(|s| s.trim() == "1").unwrap_or(false) {
        return Ok(());
    }
    std::fs::write(p, "1").map_err(|e| NetError::io(format!("enabling IPv6 forwarding ({p})"), e))
}

/// IPv6 subnets in use: the routes of the bridges' namespace and the store's networks.
fn taken_subnets6(ctx: &NetContext, store: &Store) -> Result<Vec<Subnet6>> {
    let mut taken: Vec<Subnet6> = ctx
        .netlink()?
        .routes6()?
        .into_iter()
        .filter(|(_, p)| *p > 0)
        .map(|(d, p)| Subnet6::new(d, p))
        .collect();
    for n in store.list_networks()? {
        if let Ok(s) = n.subnet6.parse() {
            taken.push(s);
        }
    }
    Ok(taken)
}

/// The IPv6 side `network create` settles (`None`: IPv4 only).
fn create_addressing6(ctx: &NetContext, store: &Store, req: &NetworkRequest) -> Result<Option<Addressing6>> {
    if !req.ipv6 {
        if req.subnet6.is_some() || req.gateway6.is_some() || req.ip_range6.is_some() {
            return Err(NetError::InvalidNetwork(
                "an IPv6 subnet, gateway or ip-range needs --ipv6".into(),
            ));
        }
        return Ok(None);
    }
    let taken = taken_subnets6(ctx, store)?;
    let subnet = match &req.subnet6 {
        Some(s) => {
            let s: Subnet6 = s.parse()?;
            if let Some(t) = store
                .list_networks()?
                .iter()
                .find(|n| n.subnet6.parse::<Subnet6>().is_ok_and(|x| x.overlaps(s)))
            {
                return Err(NetError::InvalidNetwork(format!(
                    "Pool overlaps with other one on this address space: {s} overlaps network {}'s {}; choose another --subnet",
                    t.name, t.subnet6
                )));
            }
            if let Some(t) = taken.iter().find(|t| t.prefix > 0 && t.overlaps(s)) {
                return Err(NetError::InvalidNetwork(format!(
                    "Pool overlaps with other one on this address space: {s} overlaps {t}, which this host already routes; choose another --subnet"
                )));
            }
            s
        }
        None => choose_subnet6(&taken)?,
    };
    let gateway = match &req.gateway6 {
        Some(g) => Some(
            g.parse::<Ipv6Addr>()
                .map_err(|_| NetError::InvalidNetwork(format!("invalid gateway {g:?}: not an IPv6 address")))?,
        ),
        None => None,
    };
    let ip_range = match &req.ip_range6 {
        Some(r) => Some(r.parse::<Subnet6>()?),
        None => None,
    };
    Addressing6::new(subnet, gateway, ip_range).map(Some)
}

fn set_ip_forward() -> Result<()> {
    let p = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(p).map(|s| s.trim() == "1").unwrap_or(false) {
        return Ok(());
    }
    std::fs::write(p, "1").map_err(|e| NetError::io(format!("enabling IPv4 forwarding ({p})"), e))
}

/// Subnets in use: the routes of the bridges' namespace and the store's networks.
fn taken_subnets(ctx: &NetContext, store: &Store) -> Result<Vec<Subnet>> {
    let mut taken: Vec<Subnet> = ctx
        .netlink()?
        .routes()?
        .into_iter()
        .filter(|(_, p)| *p > 0)
        .map(|(d, p)| Subnet::new(d, p))
        .collect();
    for n in store.list_networks()? {
        if let Ok(s) = n.subnet.parse() {
            taken.push(s);
        }
    }
    Ok(taken)
}

/// `network create`: chooses the addressing, makes the bridge and its
/// rules, and records the network. On any failure nothing is left.
pub fn create_network(ctx: &NetContext, store: &Store, req: &NetworkRequest) -> Result<NetworkRecord> {
    let driver = req.driver.clone().unwrap_or_else(|| "bridge".into());
    if driver != "bridge" {
        return Err(NetError::InvalidNetwork(format!(
            "plugin \"{driver}\" not found: berth supports the bridge driver only"
        )));
    }
    if !valid_name(&req.name) {
        return Err(NetError::InvalidNetwork(format!(
            "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
            req.name
        )));
    }
    if store.network(&req.name).is_ok_and(|n| n.name == req.name) {
        return Err(StoreError::NetworkExists(req.name.clone()).into());
    }
    let _lock = ctx.lock()?;
    if let Err(e) = sweep_dead_stores(ctx) {
        log::warn!("removing the networks of deleted stores: {e}");
    }
    if let Err(e) = sweep_stale_rules(ctx) {
        log::warn!("removing firewall rules of bridges that are gone: {e}");
    }
    record_store(ctx, store)?;
    let taken = taken_subnets(ctx, store)?;
    let is_default = req.name == DEFAULT_NETWORK;
    let subnet = match &req.subnet {
        Some(s) => {
            let s: Subnet = s.parse()?;
            if let Some(t) = store
                .list_networks()?
                .iter()
                .find(|n| n.subnet.parse::<Subnet>().is_ok_and(|x| x.overlaps(s)))
            {
                return Err(NetError::InvalidNetwork(format!(
                    "Pool overlaps with other one on this address space: {s} overlaps network {}'s {}; choose another --subnet",
                    t.name, t.subnet
                )));
            }
            // Another store's bridge, or the host's own networks.
            if let Some(t) = taken.iter().find(|t| t.overlaps(s)) {
                return Err(NetError::InvalidNetwork(format!(
                    "Pool overlaps with other one on this address space: {s} overlaps {t}, which this host already routes; choose another --subnet"
                )));
            }
            s
        }
        None => choose_subnet(is_default, &taken)?,
    };
    let gateway = match &req.gateway {
        Some(g) => Some(
            g.parse::<Ipv4Addr>()
                .map_err(|_| NetError::InvalidNetwork(format!("invalid gateway {g:?}: not an IPv4 address")))?,
        ),
        None => None,
    };
    let ip_range = match &req.ip_range {
        Some(r) => Some(r.parse::<Subnet>()?),
        None => None,
    };
    let addr = Addressing::new(subnet, gateway, ip_range)?;
    let addr6 = create_addressing6(ctx, store, req)?;
    let id = random_hex(64);
    let bridge = match req.options.get(BRIDGE_NAME_OPTION) {
        Some(b) => b.clone(),
        None if is_default && ctx.default_store => "berth0".into(),
        None => format!("br-{}", &id[..12]),
    };
    let mut options = req.options.clone();
    options.insert(BRIDGE_NAME_OPTION.into(), bridge.clone());
    let rec = NetworkRecord {
        id,
        name: req.name.clone(),
        driver,
        subnet: subnet.to_string(),
        gateway: addr.gateway.to_string(),
        ip_range: ip_range.map(|r| r.to_string()).unwrap_or_default(),
        internal: req.internal,
        dns: !is_default,
        bridge,
        labels: req.labels.clone(),
        options,
        created: chrono_now(),
        subnet6: addr6.map(|a| a.subnet.to_string()).unwrap_or_default(),
        gateway6: addr6.map(|a| a.gateway.to_string()).unwrap_or_default(),
        ip_range6: addr6
            .and_then(|a| a.ip_range)
            .map(|r| r.to_string())
            .unwrap_or_default(),
        // Inspect shows the IPAM config as asked for, as dockerd does.
        show_gateway: req.subnet.is_none() || req.gateway.is_some(),
        show_gateway6: req.subnet6.is_none() || req.gateway6.is_some(),
    };
    if ctx.netlink()?.link(&rec.bridge)?.is_some() {
        return Err(NetError::InvalidNetwork(format!(
            "a link named {} exists already on this host; choose another bridge name",
            rec.bridge
        )));
    }
    let made = setup_bridge(ctx, &rec).and_then(|_| store.insert_network(&rec).map_err(NetError::from));
    if let Err(e) = made {
        let _ = teardown_bridge(ctx, &rec);
        return Err(e);
    }
    Ok(rec)
}

impl NetContext {
    /// Where a container's namespace is bind-mounted (see `ns::create_persistent`).
    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.run_dir.join("netns").join(container_id)
    }
}

fn chrono_now() -> String {
    berth_store::config::rfc3339_go(chrono::Utc::now())
}

/// Held while a container joins the default network and while
/// [`release_default_if_unused`] decides to remove it: without it, a store's
/// last container leaving removes the network under one that is joining
/// (16 parallel `run --rm` lost 4 that way).
pub fn default_network_lock(store: &Store) -> Result<std::fs::File> {
    crate::lock_file(&store.root().join("default-network.lock"))
}

/// The default network, created on first use.
pub fn ensure_default_network(ctx: &NetContext, store: &Store) -> Result<NetworkRecord> {
    match store.network(DEFAULT_NETWORK) {
        Ok(n) if n.name == DEFAULT_NETWORK => Ok(n),
        _ => match create_network(
            ctx,
            store,
            &NetworkRequest {
                name: DEFAULT_NETWORK.into(),
                ..Default::default()
            },
        ) {
            Err(NetError::Store(StoreError::NetworkExists(_))) => Ok(store.network(DEFAULT_NETWORK)?),
            r => r,
        },
    }
}

/// A container left the default network. As root the network stays when
/// its last container leaves, as Docker's `docker0` does: making a bridge
/// and its rules for every `run` and deleting them after costs more than
/// the rest of the run (a bridge's deletion alone waits out an RCU grace
/// period, 20-80 ms here). A throwaway store's default network goes with
/// `network prune` ([`remove_default_if_unused`]), or, once the store's
/// directory is gone, with the next network any store makes
/// ([`sweep_dead_stores`]). Rootless, it goes now: the user's network
/// namespace stops with its last network. True when it was removed.
pub fn release_default_if_unused(ctx: &NetContext, store: &Store) -> Result<bool> {
    if ctx.bridge_ns == crate::ns::host() {
        return Ok(false);
    }
    remove_default_if_unused(ctx, store)
}

/// Removes the default network of a store that is not the system's (tests,
/// CI, `--root` stores) when no container is on it, so a throwaway store
/// leaves no bridge or rule on the host; the next container makes it again
/// ([`ensure_default_network`]). The system store's `berth0` stays, as
/// Docker's `docker0` does. True when it was removed.
pub fn remove_default_if_unused(ctx: &NetContext, store: &Store) -> Result<bool> {
    if ctx.default_store {
        return Ok(false);
    }
    let _lock = default_network_lock(store)?;
    let net = match store.network(DEFAULT_NETWORK) {
        Ok(n) if n.name == DEFAULT_NETWORK => n,
        _ => return Ok(false),
    };
    if !store.network_endpoints(&net.id)?.is_empty() {
        return Ok(false);
    }
    match remove_network(ctx, store, &net) {
        Ok(()) => Ok(true),
        // A container joined meanwhile, or another process removed it.
        Err(NetError::Store(StoreError::NetworkInUse { .. } | StoreError::NetworkNotFound(_))) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The file in a store's run directory naming the store it belongs to.
const STORE_ROOT_FILE: &str = "store-root";

/// Names the store in its run directory, for [`sweep_dead_stores`].
fn record_store(ctx: &NetContext, store: &Store) -> Result<()> {
    let p = ctx.run_dir.join(STORE_ROOT_FILE);
    let root = std::fs::canonicalize(store.root()).unwrap_or_else(|_| store.root().to_path_buf());
    let text = root.to_string_lossy().into_owned();
    if std::fs::read_to_string(&p).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    std::fs::create_dir_all(&ctx.run_dir)
        .map_err(|e| NetError::io(format!("creating {}", ctx.run_dir.display()), e))?;
    std::fs::write(&p, text).map_err(|e| NetError::io(format!("writing {}", p.display()), e))
}

/// Removes what berth's networking holds for stores whose directory no
/// longer exists (a test's or CI's throwaway store, deleted with its
/// default network still up): their bridges and veths, their elements in
/// the firewall table, their DNS server, namespace mounts and run
/// directory. As root only, under the networks lock; the run directories
/// name their store in `store-root` (written when a store makes a bridge),
/// and links whose store has no run directory left are removed too.
/// Returns the run directories removed.
pub fn sweep_dead_stores(ctx: &NetContext) -> Result<Vec<PathBuf>> {
    let mut gone = Vec::new();
    if ctx.bridge_ns != crate::ns::host() {
        return Ok(gone);
    }
    let Ok(dir) = std::fs::read_dir(&ctx.lock_dir) else {
        return Ok(gone);
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(tag) = name.strip_prefix("net-") else {
            continue;
        };
        if e.path() == ctx.run_dir {
            continue;
        }
        let Ok(root) = std::fs::read_to_string(e.path().join(STORE_ROOT_FILE)) else {
            continue;
        };
        if Path::new(root.trim()).exists() {
            continue;
        }
        let other = NetContext {
            run_dir: e.path(),
            tag: tag.to_string(),
            default_store: false,
            ..ctx.clone()
        };
        forget_dead_store(&other)?;
        gone.push(e.path());
    }
    // Links of a store whose run directory is gone too (its store-root
    // file cannot be read any more): nothing names them but their alias.
    // Every store that makes a bridge on the host keeps a run directory
    // while the bridge lives (record_store), so these are nobody's.
    let mut nl = ctx.netlink()?;
    let orphans: std::collections::BTreeSet<String> = nl
        .links()?
        .into_iter()
        .filter_map(|l| l.alias.strip_prefix("berth:")?.split(':').next().map(str::to_string))
        .filter(|tag| *tag != ctx.tag && !ctx.lock_dir.join(format!("net-{tag}")).exists())
        .collect();
    drop(nl);
    for tag in orphans {
        let other = NetContext {
            run_dir: ctx.lock_dir.join(format!("net-{tag}")),
            tag,
            default_store: false,
            ..ctx.clone()
        };
        forget_dead_store(&other)?;
        gone.push(other.run_dir);
    }
    Ok(gone)
}

/// Removes the firewall elements whose bridge is gone, whoever's they were
/// (a bridge deleted by hand, a crash between a teardown's two steps). As
/// root only, under the networks lock.
pub fn sweep_stale_rules(ctx: &NetContext) -> Result<()> {
    if ctx.bridge_ns != crate::ns::host() {
        return Ok(());
    }
    let mut nl = ctx.netlink()?;
    let mut live = std::collections::HashSet::new();
    let mut live_nets = std::collections::HashSet::new();
    for l in nl.links()?.into_iter().filter(|l| l.kind == "bridge") {
        // Its subnets as the firewall names them (`10.1.0.0/16`).
        if let Some(r) = rules_of_link(&mut nl, &l)? {
            live_nets.insert(r.subnet.to_string());
            live_nets.extend(r.subnet6.map(|s| s.to_string()));
        }
        live.insert(l.name);
    }
    ctx.firewall().remove_stale(&live, &live_nets)
}

fn forget_dead_store(ctx: &NetContext) -> Result<()> {
    let mut nl = ctx.netlink()?;
    let prefix = format!("berth:{}:", ctx.tag);
    let links: Vec<_> = nl
        .links()?
        .into_iter()
        .filter(|l| l.alias.starts_with(&prefix))
        .collect();
    // Veths first, then bridges (with their rules).
    for l in links.iter().filter(|l| l.kind != "bridge") {
        nl.del_link(&l.name)?;
    }
    for l in links.iter().filter(|l| l.kind == "bridge") {
        if let Some(rules) = rules_of_link(&mut nl, l)? {
            ctx.firewall().remove_network(&rules)?;
        }
        nl.del_link(&l.name)?;
    }
    ctx.dns().stop();
    for m in crate::ns::mounts_under(&ctx.run_dir) {
        crate::ns::remove_persistent(&m)?;
    }
    let _ = std::fs::remove_dir_all(&ctx.run_dir);
    Ok(())
}

/// Makes the bridge (if missing), its gateway address, and its rules.
fn setup_bridge(ctx: &NetContext, net: &NetworkRecord) -> Result<()> {
    let addr = addressing(net)?;
    let mut nl = ctx.netlink()?;
    let link = match nl.link(&net.bridge)? {
        Some(l) => l,
        None => {
            nl.add_bridge(&net.bridge)?;
            nl.link(&net.bridge)?
                .ok_or_else(|| NetError::InvalidNetwork(format!("bridge {} vanished", net.bridge)))?
        }
    };
    nl.set_alias(link.index, &ctx.alias(&net.id, None))?;
    nl.add_addr(link.index, addr.gateway, addr.subnet.prefix)?;
    let addr6 = addressing6(net)?;
    if let Some(a6) = &addr6 {
        nl.add_addr6(link.index, a6.gateway, a6.subnet.prefix)?;
    }
    nl.set_up(link.index)?;
    ctx.firewall().add_network(&rules(net)?)?;
    if ctx.set_ip_forward && !net.internal {
        set_ip_forward()?;
        if addr6.is_some() {
            set_ip6_forward()?;
        }
    }
    Ok(())
}

fn teardown_bridge(ctx: &NetContext, net: &NetworkRecord) -> Result<()> {
    let mut nl = ctx.netlink()?;
    // Only a bridge that is ours.
    if let Some(l) = nl.link(&net.bridge)? {
        if l.alias.is_empty() || l.alias == ctx.alias(&net.id, None) {
            nl.del_link(&net.bridge)?;
        }
    }
    // Veths of containers whose namespaces the kernel is still freeing
    // (see `Teardown::WithNamespace`).
    let veths = format!("{}:", ctx.alias(&net.id, None));
    for l in nl.links()? {
        if l.alias.starts_with(&veths) {
            nl.del_link(&l.name)?;
        }
    }
    ctx.firewall().remove_network(&rules(net)?)?;
    ctx.dns().remove_network(&net.bridge)?;
    Ok(())
}

/// `network rm`: refused while containers are attached (Docker's message);
/// otherwise the record, the bridge, its rules and DNS file go.
pub fn remove_network(ctx: &NetContext, store: &Store, net: &NetworkRecord) -> Result<()> {
    store.remove_network(&net.id)?;
    teardown_bridge(ctx, net)?;
    forget_run_dir_if_unused(ctx, store)
}

/// The store's run directory goes with its last network.
fn forget_run_dir_if_unused(ctx: &NetContext, store: &Store) -> Result<()> {
    if store.list_networks()?.is_empty()
        && ctx.dns().pid().is_none()
        && ctx.dns().networks().is_empty()
        && crate::ns::mounts_under(&ctx.run_dir).is_empty()
        // A namespace being made for a run (its mount point exists, its
        // mount not yet).
        && std::fs::read_dir(ctx.run_dir.join("netns")).map_or(true, |mut d| d.next().is_none())
    {
        remove_run_dir(&ctx.run_dir);
    }
    Ok(())
}

/// Removes a live store's run directory but never a namespace mount point
/// in it: a run beside this may make one after the checks above, and its
/// mount, made in another mount namespace, cannot be seen here, while an
/// unlink from here would still detach it there. `netns/` goes only by
/// `rmdir`, which fails (atomically) when a run has put a mount point in.
fn remove_run_dir(run_dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(run_dir) {
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name() == "netns" {
                continue;
            }
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
    let _ = std::fs::remove_dir(run_dir.join("netns"));
    let _ = std::fs::remove_dir(run_dir);
}

fn free_ifname(nl: &mut Netlink) -> Result<String> {
    let names: HashSet<String> = nl.links()?.into_iter().map(|l| l.name).collect();
    Ok((0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !names.contains(n))
        .expect("some ethN is free"))
}

/// Attaches a container's network namespace to a network: leases an
/// address (`ep.ip` or the next free one), plugs a veth pair in, and adds
/// its names to the network's DNS. On failure, nothing is left behind.
pub fn connect(
    ctx: &NetContext,
    store: &Store,
    net: &NetworkRecord,
    container_ns: &Namespace,
    ep: &NewEndpoint,
) -> Result<Attachment> {
    connect_with_dns(ctx, store, net, container_ns, ep, &[])
}

/// [`connect`], the network's DNS server forwarding the container's
/// queries for other names to `upstreams` (`--dns`) when it has some: in
/// the same record change, so no query of the container ever finds its
/// record without them.
pub fn connect_with_dns(
    ctx: &NetContext,
    store: &Store,
    net: &NetworkRecord,
    container_ns: &Namespace,
    ep: &NewEndpoint,
    upstreams: &[IpAddr],
) -> Result<Attachment> {
    let addr = addressing(net)?;
    if let Some(ip) = ep.ip {
        addr.check_requested(ip)?;
    }
    let addr6 = addressing6(net)?;
    match (ep.ip6, &addr6) {
        (Some(ip6), Some(a6)) => a6.check_requested(ip6)?,
        (Some(ip6), None) => {
            return Err(NetError::InvalidNetwork(format!(
                "invalid address {ip6}: network {} has no IPv6 subnet (create it with --ipv6)",
                net.name
            )))
        }
        _ => {}
    }
    if let Some(m) = &ep.mac {
        if parse_mac(m).is_none() {
            return Err(NetError::InvalidNetwork(format!(
                "invalid MAC address {m:?}: use the form 02:42:ac:11:00:02"
            )));
        }
    }
    let t = std::time::Instant::now();
    let pool6 = addr6.map(|a| a.pool());
    let lease = store.allocate_endpoint_dual(&net.id, &addr.pool(), pool6.as_ref(), ep)?;
    log::debug!("lease {} in {:?}", lease.ip, t.elapsed());
    match plug(
        ctx,
        store,
        net,
        (&addr, addr6.as_ref()),
        container_ns,
        (&lease, &ep.link_local),
        upstreams,
    ) {
        Ok(a) => Ok(a),
        Err(e) => {
            let _ = unplug(ctx, net, &lease);
            let _ = store.release_endpoint(&net.id, &ep.container_id);
            Err(e)
        }
    }
}

fn plug(
    ctx: &NetContext,
    store: &Store,
    net: &NetworkRecord,
    (addr, addr6): (&Addressing, Option<&Addressing6>),
    container_ns: &Namespace,
    (lease, link_local): (&EndpointRecord, &[IpAddr]),
    upstreams: &[IpAddr],
) -> Result<Attachment> {
    let mut host = ctx.netlink()?;
    let bridge = match host.link(&net.bridge)? {
        Some(b) if b.up => b,
        // Gone (a reboot) or never finished: make it again.
        _ => {
            record_store(ctx, store)?;
            setup_bridge(ctx, net)?;
            host.link(&net.bridge)?
                .ok_or_else(|| NetError::InvalidNetwork(format!("bridge {} could not be made", net.bridge)))?
        }
    };
    let t = std::time::Instant::now();
    let mut inside = container_ns.netlink()?;
    let ifname = free_ifname(&mut inside)?;
    log::debug!("netlink sockets in {:?}", t.elapsed());
    let host_veth = format!("{VETH_PREFIX}{}", random_hex(8));
    // Recorded before it exists, so a crash from here on leaves a trace reconcile follows.
    store.set_endpoint_plugged(
        &net.id,
        &lease.container_id,
        &host_veth,
        &container_ns.netns.to_string_lossy(),
    )?;
    let ns_fd = container_ns.open()?;
    host.add_veth(
        &host_veth,
        &ifname,
        std::os::fd::AsFd::as_fd(&ns_fd),
        parse_mac(&lease.mac),
    )?;
    let hv = host
        .link(&host_veth)?
        .ok_or_else(|| NetError::InvalidNetwork(format!("veth {host_veth} vanished")))?;
    host.set_alias(hv.index, &ctx.alias(&net.id, Some(&lease.container_id)))?;
    host.set_master_up(hv.index, bridge.index)?;
    let cl = inside
        .link(&ifname)?
        .ok_or_else(|| NetError::InvalidNetwork(format!("{ifname} did not appear in the container")))?;
    inside.add_addr(cl.index, lease.ip, addr.subnet.prefix)?;
    // The namespace starts without IPv6 (see `ns::ipv6_off_by_default`):
    // an endpoint with an IPv6 address turns it on for its interface and
    // for loopback (`::1`), as Docker does.
    if (lease.ip6.is_some() && addr6.is_some()) || link_local.iter().any(IpAddr::is_ipv6) {
        container_ns.enable_ipv6(&[&ifname, "lo"])?;
    }
    let ip6 = match (addr6, lease.ip6) {
        (Some(a6), Some(ip6)) => {
            // nodad: usable at once (no duplicate address detection to wait out).
            inside.add_addr6(cl.index, ip6, a6.subnet.prefix)?;
            Some((ip6, a6.subnet.prefix))
        }
        _ => None,
    };
    // --link-local-ip: Docker's prefixes for them.
    for ip in link_local {
        match ip {
            IpAddr::V4(v4) => inside.add_addr(cl.index, *v4, 16)?,
            IpAddr::V6(v6) => inside.add_addr6(cl.index, *v6, 64)?,
        }
    }
    inside.set_up(cl.index)?;
    if let Some(lo) = inside.link("lo")? {
        if !lo.up {
            inside.set_up(lo.index)?;
        }
    }
    log::debug!("veth plugged in {:?}", t.elapsed());
    let gateway = if net.internal {
        None
    } else {
        if !inside.routes()?.iter().any(|(_, p)| *p == 0) {
            inside.add_default_route(addr.gateway)?;
        }
        Some(addr.gateway)
    };
    let gateway6 = match (addr6, ip6) {
        (Some(a6), Some(_)) if !net.internal => {
            if !inside.routes6()?.iter().any(|(_, p)| *p == 0) {
                inside.add_default_route6(a6.gateway)?;
            }
            Some(a6.gateway)
        }
        _ => None,
    };
    log::debug!("routes in {:?}", t.elapsed());
    if net.dns {
        let mut names = vec![];
        if !lease.name.is_empty() {
            names.push(lease.name.clone());
        }
        names.extend(lease.aliases.iter().cloned());
        let mut gateways = vec![IpAddr::V4(addr.gateway)];
        gateways.extend(addr6.map(|a| IpAddr::V6(a.gateway)));
        ctx.dns().add(
            &net.bridge,
            &gateways,
            DnsRecord {
                container_id: lease.container_id.clone(),
                ip: lease.ip,
                ip6: ip6.map(|(a, _)| a),
                names,
                upstreams: upstreams.to_vec(),
            },
            &ctx.upstream(),
        )?;
    }
    log::debug!("dns in {:?}", t.elapsed());
    Ok(Attachment {
        network_id: net.id.clone(),
        ip: lease.ip,
        prefix: addr.subnet.prefix,
        gateway,
        mac: lease.mac.clone(),
        ifname,
        host_veth,
        dns_server: net.dns.then_some(addr.gateway),
        ip6,
        gateway6,
    })
}

fn unplug(ctx: &NetContext, net: &NetworkRecord, ep: &EndpointRecord) -> Result<()> {
    if net.dns {
        ctx.dns().remove(&net.bridge, &ep.container_id)?;
    }
    if !ep.host_veth.is_empty() {
        // Gone already when the container's namespace went away.
        ctx.netlink()?.del_link(&ep.host_veth)?;
    }
    Ok(())
}

/// Detaches a container from a network (live: its interface disappears)
/// and frees its address. Not attached: no error, nothing done.
pub fn disconnect(ctx: &NetContext, store: &Store, net: &NetworkRecord, container_id: &str) -> Result<bool> {
    let Some(ep) = store
        .container_endpoints(container_id)?
        .into_iter()
        .find(|e| e.network_id == net.id)
    else {
        return Ok(false);
    };
    unplug(ctx, net, &ep)?;
    store.release_endpoint(&net.id, container_id)?;
    Ok(true)
}

/// How a container's interfaces go when it leaves all its networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Teardown {
    /// Delete the bridge side of each veth now (the namespace lives on).
    DeleteLinks,
    /// The container's namespace is going away, and its veths with it:
    /// the kernel deletes them asynchronously, which saves the 15-40 ms a
    /// synchronous veth deletion costs. A namespace that survives after
    /// all leaves veths that [`reconcile`] removes.
    WithNamespace,
}

/// Detaches a container from every network (its removal or exit): DNS
/// records and leases go; links as `how` says.
pub fn disconnect_all(ctx: &NetContext, store: &Store, container_id: &str, how: Teardown) -> Result<()> {
    let nets = store.list_networks()?;
    for ep in store.container_endpoints(container_id)? {
        if let Some(n) = nets.iter().find(|n| n.id == ep.network_id) {
            if n.dns {
                ctx.dns().remove(&n.bridge, container_id)?;
            }
            if how == Teardown::DeleteLinks && !ep.host_veth.is_empty() {
                ctx.netlink()?.del_link(&ep.host_veth)?;
            }
        }
        store.release_endpoint(&ep.network_id, container_id)?;
    }
    Ok(())
}

/// Releases a container's addresses and DNS records while the namespace
/// its networks' bridges are in does not run (rootless, its holder killed):
/// the links and the container's namespace mount went with that
/// namespace, so only the store's leases, the DNS server's files (under
/// `run_dir`) and the namespace's mount point there change; the next
/// namespace's server starts from those files.
pub fn release_offline(run_dir: &Path, store: &Store, container_id: &str) -> Result<()> {
    crate::ns::remove_mount_point(&run_dir.join("netns").join(container_id))?;
    let nets = store.list_networks()?;
    let dns = Dns::new(run_dir, crate::ns::host());
    for ep in store.container_endpoints(container_id)? {
        if let Some(n) = nets.iter().find(|n| n.id == ep.network_id && n.dns) {
            dns.forget(&n.bridge, container_id)?;
        }
        store.release_endpoint(&ep.network_id, container_id)?;
    }
    Ok(())
}

/// What [`reconcile`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// `network/container` leases of containers that no longer exist.
    pub leases: Vec<String>,
    /// Links (bridges, veths) no record accounts for.
    pub links: Vec<String>,
    /// DNS records (`bridge/container`) no lease accounts for.
    pub dns_records: Vec<String>,
}

/// Repairs what a killed berth process can leave: leases of containers
/// that no longer exist (`exists` says which do), veths and bridges of
/// this store that no record accounts for, and DNS records without a lease.
pub fn reconcile(ctx: &NetContext, store: &Store, exists: &dyn Fn(&str) -> bool) -> Result<Reconciled> {
    let mut out = Reconciled::default();
    let nets = store.list_networks()?;
    for ep in store.all_endpoints()? {
        if exists(&ep.container_id) {
            continue;
        }
        if let Some(n) = nets.iter().find(|n| n.id == ep.network_id) {
            unplug(ctx, n, &ep)?;
        }
        store.release_endpoint(&ep.network_id, &ep.container_id)?;
        out.leases.push(format!("{}/{}", ep.network_id, ep.container_id));
    }
    let eps = store.all_endpoints()?;
    let mut nl = ctx.netlink()?;
    let prefix = format!("berth:{}:", ctx.tag);
    for l in nl.links()? {
        let Some(rest) = l.alias.strip_prefix(&prefix) else {
            continue;
        };
        let mut parts = rest.split(':');
        let net12 = parts.next().unwrap_or("");
        let ctr12 = parts.next();
        let net = nets.iter().find(|n| n.id.starts_with(net12));
        let keep = match (net, ctr12) {
            (Some(n), None) => n.bridge == l.name,
            (Some(n), Some(c)) => eps
                .iter()
                .any(|e| e.network_id == n.id && e.container_id.starts_with(c) && e.host_veth == l.name),
            (None, _) => false,
        };
        if keep {
            continue;
        }
        if ctr12.is_none() {
            // A bridge whose network is gone: its rules go with it.
            if let Some(rules) = rules_of_link(&mut nl, &l)? {
                ctx.firewall().remove_network(&rules)?;
            }
            ctx.dns().remove_network(&l.name)?;
        }
        nl.del_link(&l.name)?;
        out.links.push(l.name);
    }
    let dns = ctx.dns();
    for file in dns.networks() {
        match nets.iter().find(|n| n.bridge == file) {
            None => {
                dns.remove_network(&file)?;
                out.dns_records.push(format!("{file}/*"));
            }
            Some(n) => {
                for r in dns.records(&file) {
                    if !eps
                        .iter()
                        .any(|e| e.network_id == n.id && e.container_id == r.container_id)
                    {
                        dns.remove(&file, &r.container_id)?;
                        out.dns_records.push(format!("{file}/{}", r.container_id));
                    }
                }
            }
        }
    }
    forget_run_dir_if_unused(ctx, store)?;
    Ok(out)
}

/// Everything berth's networking holds for one store, for "before == after" checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Links marked with this store's tag: `name (alias)`.
    pub links: Vec<String>,
    /// berth's nftables table, as a whole (shared by every store on the host).
    pub firewall: TableState,
    /// Its IPv6 twin (`ip6 berth`), as a whole.
    pub firewall6: TableState,
    /// Network files of the DNS server.
    pub dns_files: Vec<String>,
    /// The DNS server's pid.
    pub dns_server: Option<i32>,
    /// `network/container ip`.
    pub leases: Vec<String>,
    /// Namespace mounts under the run directory (containers' namespaces).
    pub netns_mounts: Vec<String>,
}

impl Inventory {
    /// Does anything listed mention `name` (a bridge, a veth, a subnet)?
    pub fn mentions(&self, name: &str) -> bool {
        self.links.iter().any(|l| l.contains(name))
            || self.firewall.bridges.iter().any(|b| b == name)
            || self.firewall.internal.iter().any(|b| b == name)
            || self.firewall.masq.iter().any(|b| b == name)
            || self.firewall6.bridges.iter().any(|b| b == name)
            || self.firewall6.internal.iter().any(|b| b == name)
            || self.firewall6.masq.iter().any(|b| b == name)
            || self.dns_files.iter().any(|f| f == name)
            || self.leases.iter().any(|l| l.contains(name))
            || self.netns_mounts.iter().any(|m| m.contains(name))
    }
}

/// Lists what berth's networking holds for this store.
pub fn inventory(ctx: &NetContext, store: &Store) -> Result<Inventory> {
    let prefix = format!("berth:{}:", ctx.tag);
    let mut links: Vec<String> = ctx
        .netlink()?
        .links()?
        .into_iter()
        .filter(|l| l.alias.starts_with(&prefix))
        .map(|l| format!("{} ({})", l.name, l.alias))
        .collect();
    links.sort();
    let dns = ctx.dns();
    let mut dns_files = dns.networks();
    dns_files.sort();
    let mut leases: Vec<String> = store
        .all_endpoints()?
        .into_iter()
        .map(|e| match e.ip6 {
            Some(v6) => format!("{}/{} {} {v6}", e.network_id, e.container_id, e.ip),
            None => format!("{}/{} {}", e.network_id, e.container_id, e.ip),
        })
        .collect();
    leases.sort();
    Ok(Inventory {
        links,
        firewall: ctx.firewall().state()?,
        firewall6: ctx.firewall().state6()?,
        dns_files,
        dns_server: dns.pid(),
        leases,
        netns_mounts: crate::ns::mounts_under(&ctx.run_dir)
            .into_iter()
            .map(|p| p.display().to_string())
            .collect(),
    })
}
