//! berth's firewall rules: one nftables table, `ip berth`, whose rules
//! never change after it is made; networks come and go as elements of its
//! sets. A container joining or leaving a network touches no rule at all.
//!
//! ```text
//! bridges   every berth bridge          isolation: bridge → other bridge dropped
//! same      (bridge . bridge) pairs     traffic within one bridge accepted
//! internal  bridges of --internal nets  nothing routed in or out
//! masq      subnets with outbound NAT   masquerade when leaving via a non-bridge
//! ```
//!
//! Dual-stack networks are also elements of a second table, `ip6 berth`,
//! made alike (the same sets and rules for IPv6 packets: isolation,
//! internal, masquerade of the IPv6 subnet), made with the first such
//! network and deleted with the last: an IPv4-only host keeps no ip6 table.
//!
//! Every change is one `nft -f -` transaction (atomic). This module never
//! touches any other table and never flushes anything but its own chains.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::error::{NetError, Result};
use crate::ipam::{Subnet, Subnet6};
use crate::ns::Namespace;

/// The table's name (family `ip`).
pub const TABLE: &str = "berth";

const BASE: &str = r#"
add table ip berth
add set ip berth bridges { type ifname; }
add set ip berth same { type ifname . ifname; }
add set ip berth internal { type ifname; }
add set ip berth masq { type ipv4_addr; flags interval; }
add chain ip berth forward { type filter hook forward priority filter; policy accept; }
add chain ip berth postrouting { type nat hook postrouting priority srcnat; policy accept; }
flush chain ip berth forward
flush chain ip berth postrouting
add rule ip berth forward iifname . oifname @same accept
add rule ip berth forward iifname @internal drop
add rule ip berth forward oifname @internal drop
add rule ip berth forward iifname @bridges oifname @bridges drop
add rule ip berth forward oifname @bridges ct state established,related accept
add rule ip berth forward iifname @bridges accept
add rule ip berth postrouting ip saddr @masq oifname != @bridges masquerade
"#;

/// The same for IPv6 packets, in table `ip6 berth`.
const BASE6: &str = r#"
add table ip6 berth
add set ip6 berth bridges { type ifname; }
add set ip6 berth same { type ifname . ifname; }
add set ip6 berth internal { type ifname; }
add set ip6 berth masq { type ipv6_addr; flags interval; }
add chain ip6 berth forward { type filter hook forward priority filter; policy accept; }
add chain ip6 berth postrouting { type nat hook postrouting priority srcnat; policy accept; }
flush chain ip6 berth forward
flush chain ip6 berth postrouting
add rule ip6 berth forward iifname . oifname @same accept
add rule ip6 berth forward iifname @internal drop
add rule ip6 berth forward oifname @internal drop
add rule ip6 berth forward iifname @bridges oifname @bridges drop
add rule ip6 berth forward oifname @bridges ct state established,related accept
add rule ip6 berth forward iifname @bridges accept
add rule ip6 berth postrouting ip6 saddr @masq oifname != @bridges masquerade
"#;

/// What the table holds for one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnet: Subnet,
    pub internal: bool,
    /// A dual-stack network's IPv6 subnet (its elements in `ip6 berth`).
    pub subnet6: Option<Subnet6>,
}

/// The firewall of one network namespace (the host's, or the rootless one).
pub struct Firewall {
    ns: Namespace,
    /// Held around each read-then-change of the table: every store using
    /// this namespace shares the table, and a removal of the table that
    /// raced an addition would drop the other's rules.
    lock: Option<std::path::PathBuf>,
}

/// What the table currently holds (for cleanup checks and reconcile).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableState {
    pub exists: bool,
    pub bridges: Vec<String>,
    pub internal: Vec<String>,
    pub masq: Vec<String>,
}

fn quote(name: &str) -> Result<String> {
    if name.is_empty()
        || name.len() > 15
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(NetError::InvalidNetwork(format!("invalid interface name {name:?}")));
    }
    Ok(format!("\"{name}\""))
}

impl Firewall {
    pub fn new(ns: Namespace) -> Firewall {
        Firewall { ns, lock: None }
    }

    /// [`Firewall::new`], its changes serialised by the lock file `lock`
    /// (one per network namespace, shared by every store using it).
    pub fn with_lock(ns: Namespace, lock: std::path::PathBuf) -> Firewall {
        Firewall { ns, lock: Some(lock) }
    }

    fn locked(&self) -> Result<Option<std::fs::File>> {
        self.lock.as_deref().map(crate::lock_file).transpose()
    }

    fn nft(&self, args: &[&str], input: Option<&str>) -> Result<String> {
        let mut cmd = Command::new("nft");
        cmd.args(args)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let _ns = enter_in_child(&mut cmd, &self.ns)?;
        let mut child = cmd.spawn().map_err(|e| {
            NetError::io(
                "running nft (install Debian's nftables package: apt-get install nftables)",
                e,
            )
        })?;
        if let Some(text) = input {
            let mut stdin = child.stdin.take().expect("piped");
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| NetError::io("writing nft's input", e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| NetError::io("waiting for nft", e))?;
        if !out.status.success() {
            return Err(NetError::Firewall(format!(
                "nft {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Makes the table (idempotent) and adds a network's elements, in one
    /// transaction: one `nft` run, no listing first (`add` of an element
    /// that is there already is no error).
    pub fn add_network(&self, n: &NetworkRules) -> Result<()> {
        let _lock = self.locked()?;
        let b = quote(&n.bridge)?;
        let mut t = String::from(BASE);
        t.push_str(&format!("add element ip berth bridges {{ {b} }}\n"));
        t.push_str(&format!("add element ip berth same {{ {b} . {b} }}\n"));
        if n.internal {
            t.push_str(&format!("add element ip berth internal {{ {b} }}\n"));
        } else {
            let net = format!("{}/{}", n.subnet.network(), n.subnet.prefix);
            t.push_str(&format!("add element ip berth masq {{ {net} }}\n"));
        }
        if let Some(s6) = n.subnet6 {
            t.push_str(BASE6);
            t.push_str(&format!("add element ip6 berth bridges {{ {b} }}\n"));
            t.push_str(&format!("add element ip6 berth same {{ {b} . {b} }}\n"));
            if n.internal {
                t.push_str(&format!("add element ip6 berth internal {{ {b} }}\n"));
            } else {
                t.push_str(&format!(
                    "add element ip6 berth masq {{ {}/{} }}\n",
                    s6.network(),
                    s6.prefix
                ));
            }
        }
        self.nft(&["-f", "-"], Some(&t)).map(drop)
    }

    /// Removes a network's elements (those present), and the whole table
    /// when nothing else is left in it, in one transaction: one listing and
    /// one `nft` run.
    pub fn remove_network(&self, n: &NetworkRules) -> Result<()> {
        let _lock = self.locked()?;
        let mut t = match n.subnet6 {
            Some(s6) => self.removal6(&n.bridge, Some(s6))?,
            None => String::new(),
        };
        let mut state = self.state()?;
        if state.exists {
            let b = quote(&n.bridge)?;
            let mut t4 = String::new();
            if state.bridges.contains(&n.bridge) {
                t4.push_str(&format!("delete element ip berth bridges {{ {b} }}\n"));
                t4.push_str(&format!("delete element ip berth same {{ {b} . {b} }}\n"));
            }
            if state.internal.contains(&n.bridge) {
                t4.push_str(&format!("delete element ip berth internal {{ {b} }}\n"));
            }
            let net = format!("{}/{}", n.subnet.network(), n.subnet.prefix);
            if state.masq.contains(&net) {
                t4.push_str(&format!("delete element ip berth masq {{ {net} }}\n"));
            }
            state.bridges.retain(|x| *x != n.bridge);
            state.internal.retain(|x| *x != n.bridge);
            state.masq.retain(|x| *x != net);
            if state.bridges.is_empty() && state.internal.is_empty() && state.masq.is_empty() {
                t4 = format!("delete table ip {TABLE}\n");
            }
            t.push_str(&t4);
        }
        if t.is_empty() {
            return Ok(());
        }
        self.nft(&["-f", "-"], Some(&t)).map(drop)
    }

    /// The text that removes bridge `bridge`'s elements (and `subnet6`'s
    /// masquerade) from `ip6 berth`, or the table when nothing else is
    /// left in it; empty when there is nothing to remove. Call locked.
    fn removal6(&self, bridge: &str, subnet6: Option<Subnet6>) -> Result<String> {
        let mut st = self.state6()?;
        if !st.exists {
            return Ok(String::new());
        }
        let b = quote(bridge)?;
        let mut t = String::new();
        if st.bridges.iter().any(|x| x == bridge) {
            t.push_str(&format!("delete element ip6 berth bridges {{ {b} }}\n"));
            t.push_str(&format!("delete element ip6 berth same {{ {b} . {b} }}\n"));
        }
        if st.internal.iter().any(|x| x == bridge) {
            t.push_str(&format!("delete element ip6 berth internal {{ {b} }}\n"));
        }
        let net = subnet6.map(|s| format!("{}/{}", s.network(), s.prefix));
        if let Some(net) = &net {
            if st.masq.contains(net) {
                t.push_str(&format!("delete element ip6 berth masq {{ {net} }}\n"));
            }
        }
        st.bridges.retain(|x| x != bridge);
        st.internal.retain(|x| x != bridge);
        st.masq.retain(|x| Some(x) != net.as_ref());
        if st.bridges.is_empty() && st.internal.is_empty() && st.masq.is_empty() {
            t = format!("delete table ip6 {TABLE}\n");
        }
        Ok(t)
    }

    /// Removes bridge `bridge`'s IPv6 elements (a bridge whose record is
    /// gone: its IPv6 subnet from its address, when it still has one).
    pub fn remove_network6(&self, bridge: &str, subnet6: Option<Subnet6>) -> Result<()> {
        let _lock = self.locked()?;
        let t = self.removal6(bridge, subnet6)?;
        if t.is_empty() {
            return Ok(());
        }
        self.nft(&["-f", "-"], Some(&t)).map(drop)
    }

    /// Removes, from both families' tables, the elements of bridges that
    /// no longer exist (`live`: the bridges there are) and the masquerade
    /// of subnets no bridge holds (`live_nets`, as `10.1.0.0/16` and
    /// `fd00::/64`), and a table left empty: what a store deleted with its
    /// bridge gone and its rules not (a crash, a bridge deleted by hand)
    /// leaves behind. Elements are added after their bridge is made, so
    /// a network being made beside this is never taken for stale.
    pub fn remove_stale(
        &self,
        live: &std::collections::HashSet<String>,
        live_nets: &std::collections::HashSet<String>,
    ) -> Result<()> {
        let _lock = self.locked()?;
        let mut t = String::new();
        for family in ["ip", "ip6"] {
            let st = self.state_of(family)?;
            if !st.exists {
                continue;
            }
            let mut text = String::new();
            for b in st.bridges.iter().filter(|b| !live.contains(*b)) {
                let q = quote(b)?;
                text.push_str(&format!("delete element {family} berth bridges {{ {q} }}\n"));
                text.push_str(&format!("delete element {family} berth same {{ {q} . {q} }}\n"));
            }
            for b in st.internal.iter().filter(|b| !live.contains(*b)) {
                text.push_str(&format!("delete element {family} berth internal {{ {} }}\n", quote(b)?));
            }
            for n in st.masq.iter().filter(|n| !live_nets.contains(*n)) {
                text.push_str(&format!("delete element {family} berth masq {{ {n} }}\n"));
            }
            let left = st.bridges.iter().chain(&st.internal).any(|b| live.contains(b))
                || st.masq.iter().any(|n| live_nets.contains(n));
            if !left {
                text = format!("delete table {family} {TABLE}\n");
            }
            if !text.is_empty() {
                log::debug!("removing stale firewall elements:\n{text}");
            }
            t.push_str(&text);
        }
        if t.is_empty() {
            return Ok(());
        }
        self.nft(&["-f", "-"], Some(&t)).map(drop)
    }

    /// The table's sets as they are now.
    pub fn state(&self) -> Result<TableState> {
        self.state_of("ip")
    }

    /// The sets of `ip6 berth` as they are now.
    pub fn state6(&self) -> Result<TableState> {
        self.state_of("ip6")
    }

    fn state_of(&self, family: &str) -> Result<TableState> {
        let out = match self.nft(&["-j", "list", "table", family, TABLE], None) {
            Ok(o) => o,
            Err(NetError::Firewall(m)) if m.contains("No such file or directory") => return Ok(TableState::default()),
            Err(e) => return Err(e),
        };
        let v: Value =
            serde_json::from_str(&out).map_err(|e| NetError::Firewall(format!("reading nft's JSON: {e}")))?;
        let mut st = TableState {
            exists: true,
            ..Default::default()
        };
        for item in v["nftables"].as_array().into_iter().flatten() {
            let set = &item["set"];
            if set.is_null() {
                continue;
            }
            let elems: Vec<String> = set["elem"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| match e {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o
                        .get("prefix")
                        .map(|p| format!("{}/{}", p["addr"].as_str().unwrap_or(""), p["len"])),
                    _ => None,
                })
                .collect();
            match set["name"].as_str() {
                Some("bridges") => st.bridges = elems,
                Some("internal") => st.internal = elems,
                Some("masq") => st.masq = elems,
                _ => {}
            }
        }
        Ok(st)
    }
}

/// Makes `cmd` run inside `ns` (joining its user namespace first when it
/// has one): the child calls setns(2) between fork and exec, where it is
/// single-threaded. The host's namespace needs nothing.
/// Keep the returned guard until the command is spawned.
pub(crate) fn enter_in_child(cmd: &mut Command, ns: &Namespace) -> Result<NsFds> {
    use std::os::unix::process::CommandExt;
    if ns.netns == std::path::Path::new("/proc/self/ns/net") && ns.userns.is_none() {
        return Ok(NsFds(None, None));
    }
    let user: Option<OwnedFd> = match &ns.userns {
        Some(u) => Some(
            rustix::fs::open(
                u,
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| NetError::io(format!("opening {}", u.display()), e))?,
        ),
        None => None,
    };
    let net = ns.open()?;
    let fds = (user.as_ref().map(|f| f.as_raw_fd()), net.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and calls
    // only setns(2), on descriptors the returned guard keeps open until the
    // caller has spawned the command.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(u) = fds.0 {
                if libc::setns(u, libc::CLONE_NEWUSER) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::setns(fds.1, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(NsFds(user, Some(net)))
}

/// Namespace descriptors a command's child joins; hold until spawned.
pub(crate) struct NsFds(#[allow(dead_code)] Option<OwnedFd>, #[allow(dead_code)] Option<OwnedFd>);
