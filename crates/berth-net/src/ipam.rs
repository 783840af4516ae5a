//! Address arithmetic for networks: parsing `--subnet`/`--ip-range`/
//! `--gateway`, choosing a free subnet the way Docker does (172.17.0.0/16
//! for the default network, user networks from 172.18.0.0/16 upward, then
//! /20s of 192.168.0.0/16), skipping every range the host already routes,
//! and the pool leases are handed out from. Pure functions: the leases
//! themselves are kept by berth-store.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use berth_store::{AddressPool, AddressPool6};

use crate::error::{NetError, Result};

/// An IPv4 network, `172.18.0.0/16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        Subnet { addr, prefix }
    }

    fn mask(self) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0)
    }

    /// The first address (all host bits zero).
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The last address (all host bits one).
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !self.mask())
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    pub fn overlaps(self, other: Subnet) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// `network + 1`, Docker's default gateway.
    pub fn first_host(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + 1)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetError;

    /// `a.b.c.d/n` with the host bits zero (Docker's rule).
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = |why: String| NetError::InvalidNetwork(format!("invalid subnet {s}: {why}"));
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| bad("write it as an address and a prefix length, e.g. 172.20.0.0/16".into()))?;
        if a.contains(':') {
            return Err(bad("an IPv6 subnet where an IPv4 one is expected".into()));
        }
        let addr: Ipv4Addr = a.parse().map_err(|_| bad(format!("{a:?} is not an IPv4 address")))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| bad(format!("{p:?} is not a prefix length (0-32)")))?;
        let n = Subnet { addr, prefix };
        if n.network() != addr {
            return Err(bad(format!("it should be {}/{prefix}", n.network())));
        }
        if prefix > 30 {
            return Err(bad(
                "the prefix must be /30 or shorter to hold a gateway and a container".into(),
            ));
        }
        Ok(n)
    }
}

/// The subnets Docker hands out by default, in order: 172.17–31.0.0/16,
/// then 192.168.0.0/16 in /20s.
pub fn default_pools() -> impl Iterator<Item = Subnet> {
    (17u8..=31)
        .map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16))
        .chain((0u8..16).map(|i| Subnet::new(Ipv4Addr::new(192, 168, i * 16, 0), 20)))
}

/// The first default subnet (from `start` on, `172.17.0.0/16` for the
/// default network, `172.18.0.0/16` for others) that overlaps none of
/// `taken` (the host's routes and the store's networks).
pub fn choose_subnet(default_network: bool, taken: &[Subnet]) -> Result<Subnet> {
    default_pools()
        .skip(if default_network { 0 } else { 1 })
        .find(|c| !taken.iter().any(|t| t.prefix > 0 && t.overlaps(*c)))
        .ok_or_else(|| {
            NetError::InvalidNetwork(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network; give one with --subnet".into(),
            )
        })
}

/// What `network create` settles: subnet, gateway and the range leases come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addressing {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub ip_range: Option<Subnet>,
}

impl Addressing {
    /// Checks `--gateway` and `--ip-range` against the subnet (Docker's messages).
    pub fn new(subnet: Subnet, gateway: Option<Ipv4Addr>, ip_range: Option<Subnet>) -> Result<Addressing> {
        let gateway = gateway.unwrap_or_else(|| subnet.first_host());
        if !subnet.contains(gateway) || gateway == subnet.network() || gateway == subnet.broadcast() {
            return Err(NetError::InvalidNetwork(format!(
                "invalid gateway {gateway}: it must be a host address of subnet {subnet}"
            )));
        }
        if let Some(r) = ip_range {
            if !subnet.contains(r.network()) || r.prefix < subnet.prefix {
                return Err(NetError::InvalidNetwork(format!(
                    "invalid ip-range {r}: it must lie within subnet {subnet}"
                )));
            }
        }
        Ok(Addressing {
            subnet,
            gateway,
            ip_range,
        })
    }

    /// The addresses leases come from: the range (or subnet) without its
    /// network and broadcast addresses and without the gateway.
    pub fn pool(&self) -> AddressPool {
        let r = self.ip_range.unwrap_or(self.subnet);
        let lo = u32::from(r.network()).max(u32::from(self.subnet.network()) + 1);
        let hi = u32::from(r.broadcast()).min(u32::from(self.subnet.broadcast()) - 1);
        AddressPool {
            first: lo,
            last: hi.max(lo),
            reserved: vec![u32::from(self.gateway)],
        }
    }

    /// `--ip` must be in the subnet and not be the gateway.
    pub fn check_requested(&self, ip: Ipv4Addr) -> Result<()> {
        if !self.subnet.contains(ip) || ip == self.subnet.network() || ip == self.subnet.broadcast() {
            return Err(NetError::InvalidNetwork(format!(
                "invalid address {ip}: it does not belong to any of this network's subnets ({})",
                self.subnet
            )));
        }
        if ip == self.gateway {
            return Err(NetError::InvalidNetwork(format!(
                "invalid address {ip}: it is the network's gateway"
            )));
        }
        Ok(())
    }
}

/// An IPv6 network, `fd12:3456:789a:1::/64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Subnet6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Subnet6 {
        Subnet6 { addr, prefix }
    }

    fn mask(self) -> u128 {
        u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0)
    }

    /// The first address (the subnet-router anycast address).
    pub fn network(self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) & self.mask())
    }

    /// The last address.
    pub fn last(self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network()) | !self.mask())
    }

    pub fn contains(self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.network())
    }

    pub fn overlaps(self, other: Subnet6) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// `network + 1`, the default gateway (as Docker and Podman).
    pub fn first_host(self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network()) + 1)
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet6 {
    type Err = NetError;

    /// `addr/n` with the host bits zero, /120 or shorter.
    fn from_str(s: &str) -> Result<Subnet6> {
        let bad = |why: String| NetError::InvalidNetwork(format!("invalid subnet {s}: {why}"));
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| bad("write it as an address and a prefix length, e.g. fd12:3456:789a:1::/64".into()))?;
        let addr: Ipv6Addr = a.parse().map_err(|_| bad(format!("{a:?} is not an IPv6 address")))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| *p <= 128)
            .ok_or_else(|| bad(format!("{p:?} is not a prefix length (0-128)")))?;
        let n = Subnet6 { addr, prefix };
        if n.network() != addr {
            return Err(bad(format!("it should be {}/{prefix}", n.network())));
        }
        if prefix > 120 {
            return Err(bad("the prefix must be /120 or shorter".into()));
        }
        Ok(n)
    }
}

/// Is `s` written as an IPv6 subnet or address (it has a colon)?
pub fn is_v6(s: &str) -> bool {
    s.contains(':')
}

/// A unique local /64 (RFC 4193: `fd` and 56 random bits, as Podman and
/// Docker 27 choose one) that overlaps none of `taken`.
pub fn choose_subnet6(taken: &[Subnet6]) -> Result<Subnet6> {
    use rand::Rng;
    let mut r = rand::thread_rng();
    for _ in 0..64 {
        let high: u64 = (0xfdu64 << 56) | (r.gen::<u64>() >> 8);
        let c = Subnet6::new(Ipv6Addr::from(u128::from(high) << 64), 64);
        if !taken.iter().any(|t| t.prefix > 0 && t.overlaps(c)) {
            return Ok(c);
        }
    }
    Err(NetError::InvalidNetwork(
        "could not find a free unique local IPv6 /64; give one with --subnet".into(),
    ))
}

/// A dual-stack network's IPv6 side: subnet, gateway and range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addressing6 {
    pub subnet: Subnet6,
    pub gateway: Ipv6Addr,
    pub ip_range: Option<Subnet6>,
}

impl Addressing6 {
    /// Checks `--gateway` and `--ip-range` against the subnet.
    pub fn new(subnet: Subnet6, gateway: Option<Ipv6Addr>, ip_range: Option<Subnet6>) -> Result<Addressing6> {
        let gateway = gateway.unwrap_or_else(|| subnet.first_host());
        if !subnet.contains(gateway) || gateway == subnet.network() {
            return Err(NetError::InvalidNetwork(format!(
                "invalid gateway {gateway}: it must be a host address of subnet {subnet}"
            )));
        }
        if let Some(r) = ip_range {
            if !subnet.contains(r.network()) || r.prefix < subnet.prefix {
                return Err(NetError::InvalidNetwork(format!(
                    "invalid ip-range {r}: it must lie within subnet {subnet}"
                )));
            }
        }
        Ok(Addressing6 {
            subnet,
            gateway,
            ip_range,
        })
    }

    /// The addresses leases come from: the range (or subnet) without the
    /// subnet's first address and the gateway.
    pub fn pool(&self) -> AddressPool6 {
        let r = self.ip_range.unwrap_or(self.subnet);
        let lo = u128::from(r.network()).max(u128::from(self.subnet.network()) + 1);
        let hi = u128::from(r.last()).min(u128::from(self.subnet.last()));
        AddressPool6 {
            first: lo,
            last: hi.max(lo),
            reserved: vec![u128::from(self.gateway)],
        }
    }

    /// `--ip6` must be in the subnet and not be the gateway.
    pub fn check_requested(&self, ip: Ipv6Addr) -> Result<()> {
        if !self.subnet.contains(ip) || ip == self.subnet.network() {
            return Err(NetError::InvalidNetwork(format!(
                "invalid address {ip}: it does not belong to any of this network's subnets ({})",
                self.subnet
            )));
        }
        if ip == self.gateway {
            return Err(NetError::InvalidNetwork(format!(
                "invalid address {ip}: it is the network's gateway"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subnet {
        x.parse().unwrap()
    }

    #[test]
    fn subnets_parse_and_compute() {
        let n = s("172.18.0.0/16");
        assert_eq!(n.broadcast(), Ipv4Addr::new(172, 18, 255, 255));
        assert_eq!(n.first_host(), Ipv4Addr::new(172, 18, 0, 1));
        assert!(n.contains(Ipv4Addr::new(172, 18, 3, 4)));
        assert!(!n.contains(Ipv4Addr::new(172, 19, 0, 1)));
        assert!(n.overlaps(s("172.18.5.0/24")));
        assert!(!n.overlaps(s("172.19.0.0/16")));
        let e = |x: &str| x.parse::<Subnet>().unwrap_err().to_string();
        assert!(
            e("172.18.0.1/16").contains("it should be 172.18.0.0/16"),
            "{}",
            e("172.18.0.1/16")
        );
        assert!(e("172.18.0.0").contains("prefix length"));
        assert!(e("172.18.0.0/33").contains("prefix length"));
        assert!(e("fd00::/64").contains("IPv6"));
        let e6 = |x: &str| x.parse::<Subnet6>().unwrap_err().to_string();
        let n6: Subnet6 = "fd12:3456:789a:1::/64".parse().unwrap();
        assert_eq!(n6.first_host(), "fd12:3456:789a:1::1".parse::<Ipv6Addr>().unwrap());
        assert!(n6.contains("fd12:3456:789a:1::ffff".parse().unwrap()));
        assert!(!n6.contains("fd12:3456:789a:2::1".parse().unwrap()));
        assert!(e6("fd12:3456:789a:1::1/64").contains("it should be fd12:3456:789a:1::/64"));
        assert!(e6("10.0.0.0/8").contains("IPv6"));
        assert!(e6("fd00::/121").contains("/120"));
        assert!(e("1.2.3.4/31").contains("/30"));
    }

    #[test]
    fn free_subnets_skip_host_routes_like_docker() {
        assert_eq!(choose_subnet(true, &[]).unwrap(), s("172.17.0.0/16"));
        assert_eq!(choose_subnet(false, &[]).unwrap(), s("172.18.0.0/16"));
        // The host routes 172.17.5.0/24: the default network moves on.
        assert_eq!(choose_subnet(true, &[s("172.17.5.0/24")]).unwrap(), s("172.18.0.0/16"));
        // A default route (0.0.0.0/0) collides with nothing.
        assert_eq!(choose_subnet(true, &[s("0.0.0.0/0")]).unwrap(), s("172.17.0.0/16"));
        // All of 172.16.0.0/12 taken: 192.168.0.0/20.
        assert_eq!(
            choose_subnet(false, &[s("172.16.0.0/12")]).unwrap(),
            s("192.168.0.0/20")
        );
        let all = [s("172.16.0.0/12"), s("192.168.0.0/16")];
        assert!(choose_subnet(false, &all).unwrap_err().to_string().contains("--subnet"));
    }

    #[test]
    fn ula_subnets_are_random_64s_that_collide_with_nothing() {
        let host: Subnet6 = "fd00::/64".parse().unwrap();
        let a = choose_subnet6(&[host]).unwrap();
        let b = choose_subnet6(&[host, a]).unwrap();
        assert_eq!(a.prefix, 64);
        assert_eq!(a.addr.segments()[0] >> 8, 0xfd);
        assert!(!a.overlaps(host) && !b.overlaps(a));
        // The default route (::/0) collides with nothing.
        assert!(choose_subnet6(&["::/0".parse().unwrap()]).is_ok());
        let all: Subnet6 = "fd00::/8".parse().unwrap();
        assert!(choose_subnet6(&[all]).unwrap_err().to_string().contains("--subnet"));
        let a6 = Addressing6::new(n6(), None, Some("fd12:3456:789a:1::100/120".parse().unwrap())).unwrap();
        assert_eq!(a6.gateway, "fd12:3456:789a:1::1".parse::<Ipv6Addr>().unwrap());
        let p = a6.pool();
        assert_eq!(
            Ipv6Addr::from(p.first),
            "fd12:3456:789a:1::100".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            Ipv6Addr::from(p.last),
            "fd12:3456:789a:1::1ff".parse::<Ipv6Addr>().unwrap()
        );
        assert!(a6.check_requested("fd12:3456:789a:1::1".parse().unwrap()).is_err());
        assert!(a6.check_requested("fd12:3456:789a:2::1".parse().unwrap()).is_err());
        assert!(a6.check_requested("fd12:3456:789a:1::7".parse().unwrap()).is_ok());
        assert!(Addressing6::new(n6(), Some("fd99::1".parse().unwrap()), None).is_err());
    }

    fn n6() -> Subnet6 {
        "fd12:3456:789a:1::/64".parse().unwrap()
    }

    #[test]
    fn pools_leave_out_gateway_network_and_broadcast() {
        let a = Addressing::new(s("10.9.0.0/24"), None, None).unwrap();
        assert_eq!(a.gateway, Ipv4Addr::new(10, 9, 0, 1));
        let p = a.pool();
        assert_eq!(Ipv4Addr::from(p.first), Ipv4Addr::new(10, 9, 0, 1));
        assert_eq!(Ipv4Addr::from(p.last), Ipv4Addr::new(10, 9, 0, 254));
        assert_eq!(p.reserved, vec![u32::from(a.gateway)]);
        let r = Addressing::new(
            s("10.9.0.0/16"),
            Some(Ipv4Addr::new(10, 9, 0, 254)),
            Some(s("10.9.5.0/24")),
        )
        .unwrap();
        assert_eq!(Ipv4Addr::from(r.pool().first), Ipv4Addr::new(10, 9, 5, 0));
        assert_eq!(Ipv4Addr::from(r.pool().last), Ipv4Addr::new(10, 9, 5, 255));
        let e = Addressing::new(s("10.9.0.0/24"), Some(Ipv4Addr::new(10, 8, 0, 1)), None).unwrap_err();
        assert!(e.to_string().contains("invalid gateway 10.8.0.1"), "{e}");
        let e = Addressing::new(s("10.9.0.0/24"), None, Some(s("10.10.0.0/24"))).unwrap_err();
        assert!(e.to_string().contains("invalid ip-range"), "{e}");
        assert!(a.check_requested(Ipv4Addr::new(10, 9, 0, 7)).is_ok());
        assert!(a.check_requested(Ipv4Addr::new(10, 9, 0, 1)).is_err());
        assert!(a.check_requested(Ipv4Addr::new(10, 9, 1, 7)).is_err());
    }
}
