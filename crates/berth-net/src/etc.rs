//! A container's `/etc/hosts` and `/etc/resolv.conf`, as pure functions of
//! its network settings and the host's `resolv.conf`, following Docker:
//!
//! * hosts: localhost and the IPv6 names, then `--add-host` entries
//!   (`host-gateway` becomes the host's address on the container's
//!   network), then the container's own address with its hostname
//!   (`host.domain host` when it has a domain name).
//! * resolv.conf on a network with name resolution: the network's DNS
//!   server alone (it forwards other names to the `--dns` servers, as
//!   Docker's embedded DNS does); without one (the default
//!   `bridge`, `none`): `--dns` or the host's servers minus loopback ones,
//!   which a container cannot reach, and Docker's public fallbacks when
//!   nothing is left. `--dns-search` and `--dns-option` replace the host's.
//!
//! Nothing here reads or writes files.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{NetError, Result};

/// Docker's fallback when the host has no usable resolver.
pub const FALLBACK_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// What the files are made from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcSettings {
    pub hostname: String,
    pub domainname: String,
    /// The container's address on its first network (none: `--network none`).
    pub ip: Option<Ipv4Addr>,
    /// Its IPv6 address there (a dual-stack network).
    pub ip6: Option<Ipv6Addr>,
    /// The host's address on that network, for `host-gateway`.
    pub gateway: Option<Ipv4Addr>,
    /// The network's DNS server (user-defined networks).
    pub dns_server: Option<Ipv4Addr>,
    /// `--add-host NAME:IP` values.
    pub add_hosts: Vec<String>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
}

/// Parses `--add-host NAME:IP` (also `NAME=IP`, and `[v6]`); `host-gateway`
/// is resolved to `gateway`.
pub fn parse_add_host(spec: &str, gateway: Option<Ipv4Addr>) -> Result<(String, IpAddr)> {
    let bad = |why: &str| NetError::InvalidSpec {
        spec: spec.to_string(),
        reason: format!("invalid argument for --add-host: {why} (use NAME:IP or NAME:host-gateway)"),
    };
    let (name, ip) = spec
        .split_once('=')
        .or_else(|| spec.split_once(':'))
        .ok_or_else(|| bad("no address"))?;
    if name.is_empty() {
        return Err(bad("no host name"));
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let addr = if ip == "host-gateway" {
        IpAddr::V4(gateway.ok_or_else(|| bad("host-gateway needs a network with a gateway"))?)
    } else {
        ip.parse().map_err(|_| bad(&format!("{ip:?} is not an IP address")))?
    };
    Ok((name.to_string(), addr))
}

/// The container's `/etc/hosts`.
pub fn hosts(s: &EtcSettings) -> Result<String> {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in &s.add_hosts {
        let (name, ip) = parse_add_host(h, s.gateway)?;
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some(ip) = s.ip {
        out.push_str(&self_line(ip, &s.hostname, &s.domainname));
        out.push('\n');
    }
    if let Some(ip6) = s.ip6 {
        out.push_str(&self_line(ip6, &s.hostname, &s.domainname));
        out.push('\n');
    }
    Ok(out)
}

/// The line of `/etc/hosts` naming the container itself at `ip`
/// (`host.domain host` when it has a domain name), without its newline.
pub fn self_line(ip: impl Into<IpAddr>, hostname: &str, domainname: &str) -> String {
    let ip = ip.into();
    if domainname.is_empty() {
        format!("{ip}\t{hostname}")
    } else {
        format!("{ip}\t{hostname}.{domainname} {hostname}")
    }
}

fn loopback(ns: &str) -> bool {
    ns.starts_with("127.") || ns == "::1"
}

/// The container's `/etc/resolv.conf`, from the host's.
pub fn resolv_conf(s: &EtcSettings, host_resolv: &str) -> String {
    let mut host_ns = Vec::new();
    let mut host_search = Vec::new();
    let mut host_opts = Vec::new();
    for l in host_resolv.lines() {
        let mut f = l.split_whitespace();
        match f.next() {
            Some("nameserver") => host_ns.extend(f.next().map(String::from)),
            Some("search") | Some("domain") => {
                host_search = f.map(String::from).collect();
            }
            Some("options") => host_opts.extend(f.map(String::from)),
            _ => {}
        }
    }
    let mut out = String::new();
    let mut servers: Vec<String> = Vec::new();
    if let Some(d) = s.dns_server {
        servers.push(d.to_string());
    } else if !s.dns.is_empty() {
        servers.extend(s.dns.iter().cloned());
    } else {
        let usable: Vec<String> = host_ns.iter().filter(|n| !loopback(n)).cloned().collect();
        if usable.is_empty() {
            if !host_ns.is_empty() {
                out.push_str(&format!(
                    "# the host's nameservers ({}) are on its loopback, which the container cannot reach\n",
                    host_ns.join(", ")
                ));
            }
            servers.extend(FALLBACK_DNS.iter().map(|x| x.to_string()));
        } else {
            servers = usable;
        }
    }
    for n in servers {
        out.push_str(&format!("nameserver {n}\n"));
    }
    let search: Vec<String> = if s.dns_search.is_empty() {
        host_search
    } else {
        s.dns_search.iter().filter(|d| d.as_str() != ".").cloned().collect()
    };
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    let opts = if s.dns_options.is_empty() {
        host_opts
    } else {
        s.dns_options.clone()
    };
    if !opts.is_empty() {
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> EtcSettings {
        EtcSettings {
            hostname: "web".into(),
            ip: Some(Ipv4Addr::new(172, 18, 0, 2)),
            gateway: Some(Ipv4Addr::new(172, 18, 0, 1)),
            ..Default::default()
        }
    }

    #[test]
    fn hosts_like_docker() {
        let mut s = base();
        s.add_hosts = vec![
            "db:10.0.0.5".into(),
            "host.docker.internal:host-gateway".into(),
            "v6:[::1]".into(),
        ];
        let h = hosts(&s).unwrap();
        assert!(h.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(h.contains("10.0.0.5\tdb\n"));
        assert!(h.contains("172.18.0.1\thost.docker.internal\n"));
        assert!(h.contains("::1\tv6\n"));
        assert!(h.ends_with("172.18.0.2\tweb\n"), "{h}");
        s.domainname = "example.org".into();
        assert!(hosts(&s).unwrap().ends_with("172.18.0.2\tweb.example.org web\n"));
        s.ip6 = Some("fd12:3456:789a:1::2".parse().unwrap());
        assert!(hosts(&s)
            .unwrap()
            .ends_with("172.18.0.2\tweb.example.org web\nfd12:3456:789a:1::2\tweb.example.org web\n"));
        s.ip6 = None;
        s.add_hosts = vec!["nope".into()];
        assert!(hosts(&s).unwrap_err().to_string().contains("--add-host"));
        let none = EtcSettings {
            hostname: "x".into(),
            add_hosts: vec!["g:host-gateway".into()],
            ..Default::default()
        };
        assert!(hosts(&none)
            .unwrap_err()
            .to_string()
            .contains("host-gateway needs a network"));
    }

    #[test]
    fn resolv_conf_on_user_networks_points_at_the_gateway() {
        let mut s = base();
        s.dns_server = s.gateway;
        let host = "nameserver 127.0.0.53\nsearch corp.example\noptions edns0 trust-ad\n";
        assert_eq!(
            resolv_conf(&s, host),
            "nameserver 172.18.0.1\nsearch corp.example\noptions edns0 trust-ad\n"
        );
        s.dns = vec!["10.1.1.1".into()];
        s.dns_search = vec!["a.example".into(), "b.example".into()];
        s.dns_options = vec!["ndots:2".into()];
        assert_eq!(
            resolv_conf(&s, host),
            "nameserver 172.18.0.1\nsearch a.example b.example\noptions ndots:2\n"
        );
    }

    #[test]
    fn resolv_conf_without_a_network_dns_drops_loopback_servers() {
        let s = base();
        assert_eq!(
            resolv_conf(&s, "nameserver 127.0.0.53\nnameserver 10.9.9.9\n"),
            "nameserver 10.9.9.9\n"
        );
        let only_loop = resolv_conf(&s, "nameserver 127.0.0.53\n");
        assert!(only_loop.starts_with("# the host's nameservers (127.0.0.53)"));
        assert!(only_loop.contains("nameserver 8.8.8.8\nnameserver 8.8.4.4\n"));
        let mut d = base();
        d.dns = vec!["10.2.2.2".into()];
        d.dns_search = vec![".".into()];
        assert_eq!(
            resolv_conf(&d, "nameserver 10.9.9.9\nsearch x\n"),
            "nameserver 10.2.2.2\n"
        );
    }
}
