//! A small synchronous rtnetlink client: the link, address and route
//! operations bridge networking needs, as messages of
//! `netlink-packet-route` over one `NETLINK_ROUTE` socket.
//!
//! A socket belongs to the network namespace it was created in, so a
//! [`Netlink`] made from a socket created inside a container's namespace
//! (see `ns.rs`) changes that namespace, from any thread. This module never
//! changes the calling thread's namespace itself.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};

use crate::error::{NetError, Result};

/// One link as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `bridge`, `veth`, … (empty for plain devices).
    pub kind: String,
    /// Index of the bridge it is a port of.
    pub master: Option<u32>,
    pub up: bool,
    /// The link's alias (`ip link set … alias`); berth marks its links with one.
    pub alias: String,
}

/// An rtnetlink connection into one network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

fn nl_err(what: impl Into<String>, e: std::io::Error) -> NetError {
    NetError::io(what, e)
}

impl Netlink {
    /// A connection into the calling thread's network namespace.
    pub fn new() -> Result<Netlink> {
        let sock = Socket::new(NETLINK_ROUTE).map_err(|e| nl_err("opening a netlink socket", e))?;
        Self::from_socket(sock)
    }

    /// A connection over a `NETLINK_ROUTE` socket made elsewhere (inside
    /// another namespace).
    pub fn from_fd(fd: OwnedFd) -> Result<Netlink> {
        // SAFETY: the descriptor is an owned, open NETLINK_ROUTE socket; the
        // Socket takes it over and closes it on drop.
        let sock = unsafe { Socket::from_raw_fd(fd.into_raw_fd()) };
        Self::from_socket(sock)
    }

    fn from_socket(mut sock: Socket) -> Result<Netlink> {
        sock.bind_auto().map_err(|e| nl_err("binding a netlink socket", e))?;
        let _ = sock.set_ext_ack(true);
        Ok(Netlink { sock, seq: 1 })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        self.seq = self.seq.wrapping_add(1);
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(|e| nl_err("sending a netlink request", e))?;
        Ok(self.seq)
    }

    /// Receives until the answer to `seq` is complete: an ack (or error) for
    /// a change, `DONE` for a dump. Returns the messages of a dump.
    fn receive(&mut self, seq: u32, what: &str) -> Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self
                .sock
                .recv(&mut &mut buf[..], 0)
                .map_err(|e| nl_err(format!("{what}: receiving the netlink answer"), e))?;
            let mut off = 0;
            while off < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..n]).map_err(|e| {
                    nl_err(
                        format!("{what}: decoding the netlink answer"),
                        std::io::Error::other(e.to_string()),
                    )
                })?;
                let len = msg.header.length as usize;
                let mine = msg.header.sequence_number == seq;
                match msg.payload {
                    NetlinkPayload::Error(e) if mine => {
                        return match e.code {
                            None => Ok(out),
                            Some(_) => Err(NetError::Netlink {
                                what: what.to_string(),
                                source: e.to_io(),
                            }),
                        }
                    }
                    NetlinkPayload::Done(_) if mine => return Ok(out),
                    NetlinkPayload::InnerMessage(m) if mine => out.push(m),
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }

    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, what: &str) -> Result<()> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        self.receive(seq, what).map(drop)
    }

    fn dump(&mut self, msg: RouteNetlinkMessage, what: &str) -> Result<Vec<RouteNetlinkMessage>> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        self.receive(seq, what)
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let msgs = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()), "listing links")?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(to_link(&l)),
                _ => None,
            })
            .collect())
    }

    /// The link called `name`, if any.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        let seq = self.send(RouteNetlinkMessage::GetLink(m), NLM_F_ACK)?;
        match self.receive(seq, &format!("looking up link {name}")) {
            Ok(v) => Ok(v.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(to_link(l)),
                _ => None,
            })),
            Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a bridge (fails with EEXIST when one of that name exists).
    pub fn add_bridge(&mut self, name: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("creating bridge {name}"),
        )
    }

    /// Creates a veth pair: `host` here, `peer` created directly inside
    /// the namespace `peer_ns` (an open namespace file), with `peer_mac`.
    pub fn add_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_ns: BorrowedFd<'_>,
        peer_mac: Option<[u8; 6]>,
    ) -> Result<()> {
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.to_string()));
        p.attributes.push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        if let Some(mac) = peer_mac {
            p.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(host.to_string()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("creating veth pair {host}/{peer}"),
        )
    }

    /// Makes link `index` a port of bridge `master` and brings it up.
    pub fn set_master_up(&mut self, index: u32, master: u32) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::Controller(master));
        self.request(RouteNetlinkMessage::SetLink(m), 0, "attaching a veth to its bridge")
    }

    /// Sets link `index`'s alias.
    pub fn set_alias(&mut self, index: u32, alias: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
        self.request(RouteNetlinkMessage::SetLink(m), 0, "setting a link's alias")
    }

    /// Brings link `index` up.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0, "bringing a link up")
    }

    /// Deletes link `name`; a link that is already gone is no error.
    pub fn del_link(&mut self, name: &str) -> Result<bool> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(m), 0, &format!("deleting link {name}")) {
            Ok(()) => Ok(true),
            Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `ip/prefix` to link `index` (an address already there is no error).
    pub fn add_addr(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(ip.into()));
        m.attributes.push(AddressAttribute::Address(ip.into()));
        let bcast = Ipv4Addr::from(u32::from(ip) | (u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0)));
        m.attributes.push(AddressAttribute::Broadcast(bcast));
        match self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("adding address {ip}/{prefix}"),
        ) {
            Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Adds the IPv6 address `ip/prefix` to link `index` without duplicate
    /// address detection (`nodad`: usable at once, as Docker and Podman
    /// do); an address already there is no error.
    pub fn add_addr6(&mut self, index: u32, ip: Ipv6Addr, prefix: u8) -> Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet6;
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.header.flags = AddressHeaderFlags::Nodad;
        m.attributes.push(AddressAttribute::Address(ip.into()));
        m.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        match self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("adding address {ip}/{prefix}"),
        ) {
            Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// The global IPv6 addresses of link `index` as (address, prefix)
    /// (link-local ones left out).
    pub fn addrs6(&mut self, index: u32) -> Result<Vec<(Ipv6Addr, u8)>> {
        let mut q = AddressMessage::default();
        q.header.family = AddressFamily::Inet6;
        let msgs = self.dump(RouteNetlinkMessage::GetAddress(q), "listing IPv6 addresses")?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    a.attributes.iter().find_map(|at| match at {
                        AddressAttribute::Address(std::net::IpAddr::V6(ip))
                            if (ip.segments()[0] & 0xffc0) != 0xfe80 =>
                        {
                            Some((*ip, a.header.prefix_len))
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Adds the IPv6 default route via `gateway`.
    pub fn add_default_route6(&mut self, gateway: Ipv6Addr) -> Result<()> {
        let mut m = RouteMessage::default();
        m.header = route_header();
        m.header.address_family = AddressFamily::Inet6;
        m.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet6(gateway)));
        self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("adding the IPv6 default route via {gateway}"),
        )
    }

    /// The gateway of the IPv4 default route of the main table, if any.
    pub fn default_gateway(&mut self) -> Result<Option<Ipv4Addr>> {
        let mut q = RouteMessage::default();
        q.header.address_family = AddressFamily::Inet;
        let msgs = self.dump(RouteNetlinkMessage::GetRoute(q), "listing routes")?;
        Ok(msgs.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r)
                if r.header.table == RouteHeader::RT_TABLE_MAIN && r.header.destination_prefix_length == 0 =>
            {
                r.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(*g),
                    _ => None,
                })
            }
            _ => None,
        }))
    }

    /// The IPv6 routes of the main table as (destination, prefix).
    pub fn routes6(&mut self) -> Result<Vec<(Ipv6Addr, u8)>> {
        let mut q = RouteMessage::default();
        q.header.address_family = AddressFamily::Inet6;
        let msgs = self.dump(RouteNetlinkMessage::GetRoute(q), "listing IPv6 routes")?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) if r.header.table == RouteHeader::RT_TABLE_MAIN => {
                    let dst = r
                        .attributes
                        .iter()
                        .find_map(|a| match a {
                            RouteAttribute::Destination(RouteAddress::Inet6(d)) => Some(*d),
                            _ => None,
                        })
                        .unwrap_or(Ipv6Addr::UNSPECIFIED);
                    Some((dst, r.header.destination_prefix_length))
                }
                _ => None,
            })
            .collect())
    }

    /// The IPv4 addresses of link `index` as (address, prefix).
    pub fn addrs(&mut self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>> {
        let mut q = AddressMessage::default();
        q.header.family = AddressFamily::Inet;
        let msgs = self.dump(RouteNetlinkMessage::GetAddress(q), "listing addresses")?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    a.attributes.iter().find_map(|at| match at {
                        AddressAttribute::Local(std::net::IpAddr::V4(ip)) => Some((*ip, a.header.prefix_len)),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Adds the default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let mut m = RouteMessage::default();
        m.header = route_header();
        m.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("adding the default route via {gateway}"),
        )
    }

    /// The IPv4 routes of the main table as (destination, prefix, has gateway).
    pub fn routes(&mut self) -> Result<Vec<(Ipv4Addr, u8)>> {
        let mut q = RouteMessage::default();
        q.header.address_family = AddressFamily::Inet;
        let msgs = self.dump(RouteNetlinkMessage::GetRoute(q), "listing routes")?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) if r.header.table == RouteHeader::RT_TABLE_MAIN => {
                    let dst = r
                        .attributes
                        .iter()
                        .find_map(|a| match a {
                            RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
                            _ => None,
                        })
                        .unwrap_or(Ipv4Addr::UNSPECIFIED);
                    Some((dst, r.header.destination_prefix_length))
                }
                _ => None,
            })
            .collect())
    }
}

fn route_header() -> RouteHeader {
    RouteHeader {
        address_family: AddressFamily::Inet,
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::Boot,
        scope: RouteScope::Universe,
        kind: RouteType::Unicast,
        ..Default::default()
    }
}

fn to_link(l: &LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        name: String::new(),
        kind: String::new(),
        master: None,
        up: l.header.flags.contains(LinkFlags::Up),
        alias: String::new(),
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Controller(m) => link.master = Some(*m),
            LinkAttribute::IfAlias(a) => link.alias = a.clone(),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        link.kind = k.to_string();
                    }
                }
            }
            _ => {}
        }
    }
    link
}

/// Parses `02:42:ac:11:00:02`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse() {
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some([2, 0x42, 0xac, 0x11, 0, 2]));
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00:zz"), None);
        assert_eq!(parse_mac("2:42:ac:11:00:02"), None);
    }

    /// Lists this namespace's links (loopback is always there); needs no privilege.
    #[test]
    fn lists_links_and_finds_loopback() {
        let mut nl = Netlink::new().unwrap();
        let links = nl.links().unwrap();
        assert!(links.iter().any(|l| l.name == "lo"), "{links:?}");
        let lo = nl.link("lo").unwrap().unwrap();
        assert_eq!(lo.index, 1);
        assert!(nl.link("no-such-link0").unwrap().is_none());
    }
}
