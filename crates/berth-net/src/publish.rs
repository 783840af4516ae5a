//! Docker's `-p`/`--publish` syntax, `[ip:][host_port:]container_port[/proto]`,
//! and the bindings a running container actually holds.

use crate::error::{NetError, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// Transport protocol of a published port.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// `tcp`/`udp` (any case); an empty string is `tcp`, as in Docker.
    pub fn parse(s: &str) -> Result<Proto, String> {
        match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Err("sctp is not supported by berth (use tcp or udp)".into()),
            other => Err(format!("invalid proto: {other} (use tcp or udp)")),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published port, as asked for.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct PortMapping {
    /// `None` = every address (0.0.0.0), Docker's default.
    pub host_ip: Option<IpAddr>,
    /// 0 = let the kernel pick a free port when the container starts.
    pub host_port: u16,
    /// With a host port range for a single container port (`8000-8010:80`):
    /// the last port of the range; the first free one is used.
    pub host_port_end: Option<u16>,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortMapping {
    /// The address the host side binds first.
    pub fn bind_ip(&self) -> IpAddr {
        self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// `80/tcp`, the key Docker uses for the container side.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }

    /// The host port as Docker records it in `HostConfig.PortBindings`:
    /// `""` for a random port, `8000`, or `8000-8010`.
    pub fn host_port_spec(&self) -> String {
        match (self.host_port, self.host_port_end) {
            (0, _) => String::new(),
            (p, Some(e)) if e != p => format!("{p}-{e}"),
            (p, _) => p.to_string(),
        }
    }
}

/// A port a running container holds on the host.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortBinding {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortBinding {
    /// `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }

    /// `0.0.0.0:8000` or `[::1]:8000`, as `docker port` prints it.
    pub fn host_addr(&self) -> String {
        std::net::SocketAddr::new(self.host_ip, self.host_port).to_string()
    }
}

impl fmt::Display for PortBinding {
    /// `0.0.0.0:8000->80/tcp`, as `docker ps` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.host_addr(), self.key())
    }
}

/// Parses one `-p` value into one mapping per container port.
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>> {
    let bad = |reason: String| NetError::InvalidSpec {
        spec: spec.to_string(),
        reason,
    };
    let s = spec.trim();
    if s.is_empty() {
        return Err(bad("no port specified".into()));
    }
    // ip, host port and container port, split as Docker does: the last two
    // colon-separated fields are the ports, everything before is the IP.
    let parts: Vec<&str> = s.split(':').collect();
    let n = parts.len();
    let (raw_ip, raw_host, raw_ctr) = match n {
        1 => ("".to_string(), "", parts[0]),
        2 => ("".to_string(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (raw_ctr, proto) = match raw_ctr.split_once('/') {
        Some((p, proto)) => (p, Proto::parse(proto).map_err(bad)?),
        None => (raw_ctr, Proto::Tcp),
    };
    let host_ip = if raw_ip.is_empty() {
        None
    } else {
        let unbracketed = raw_ip
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(&raw_ip);
        if n > 3 && !raw_ip.starts_with('[') && unbracketed.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad(format!(
                "too many colons; write an IPv6 address in brackets, e.g. [::1]:8000:80 (got {raw_ip:?})"
            )));
        }
        Some(
            unbracketed
                .parse::<IpAddr>()
                .map_err(|_| bad(format!("invalid IP address: {raw_ip}")))?,
        )
    };
    if raw_ctr.is_empty() {
        return Err(bad("no container port specified".into()));
    }
    let (c_start, c_end) = parse_range(raw_ctr).map_err(|e| bad(format!("invalid containerPort: {raw_ctr} ({e})")))?;
    if c_start == 0 {
        return Err(bad("invalid containerPort: 0 (ports are 1-65535)".into()));
    }
    let host = if raw_host.is_empty() {
        None
    } else {
        Some(parse_range(raw_host).map_err(|e| bad(format!("invalid hostPort: {raw_host} ({e})")))?)
    };
    let mut out = Vec::new();
    match host {
        None => {
            for p in c_start..=c_end {
                out.push(PortMapping {
                    host_ip,
                    host_port: 0,
                    host_port_end: None,
                    container_port: p,
                    proto,
                });
            }
        }
        Some((h_start, h_end)) if c_start == c_end => out.push(PortMapping {
            host_ip,
            host_port: h_start,
            host_port_end: (h_end != h_start).then_some(h_end),
            container_port: c_start,
            proto,
        }),
        Some((h_start, h_end)) => {
            if h_end - h_start != c_end - c_start {
                return Err(bad(format!(
                    "invalid ranges specified for container and host Ports: {raw_ctr} and {raw_host} (the ranges must have the same length)"
                )));
            }
            if h_start == 0 {
                return Err(bad("invalid hostPort: a host port range cannot start at 0".into()));
            }
            for (i, p) in (c_start..=c_end).enumerate() {
                out.push(PortMapping {
                    host_ip,
                    host_port: h_start + i as u16,
                    host_port_end: None,
                    container_port: p,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

/// `80` or `8000-8010`.
fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| -> Result<u16, String> {
        p.parse::<u16>().map_err(|_| {
            if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() {
                "ports are 0-65535".to_string()
            } else {
                "not a number".to_string()
            }
        })
    };
    match s.split_once('-') {
        None => {
            let p = port(s)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(format!("the range {a}-{b} ends before it starts"));
            }
            Ok((a, b))
        }
    }
}

/// Parses an image's EXPOSE key (`80`, `80/tcp`, `53/udp`, `8000-8001/tcp`)
/// into (port, proto) pairs; unsupported protocols are skipped.
pub fn parse_exposed(key: &str) -> Vec<(u16, Proto)> {
    let (ports, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let Ok(proto) = Proto::parse(proto) else {
        return Vec::new();
    };
    match parse_range(ports) {
        Ok((a, b)) if a > 0 => (a..=b).map(|p| (p, proto)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn one(s: &str) -> PortMapping {
        let v = parse_publish(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v.into_iter().next().unwrap()
    }

    #[test]
    fn simple_forms() {
        let m = one("8000:8000");
        assert_eq!(
            (m.host_ip, m.host_port, m.container_port, m.proto),
            (None, 8000, 8000, Proto::Tcp)
        );
        let m = one("127.0.0.1:8000:80");
        assert_eq!(m.host_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!((m.host_port, m.container_port), (8000, 80));
        let m = one("8000:80/tcp");
        assert_eq!((m.host_port, m.container_port, m.proto), (8000, 80, Proto::Tcp));
        let m = one("53:53/UDP");
        assert_eq!(m.proto, Proto::Udp);
        let m = one("80");
        assert_eq!((m.host_port, m.container_port), (0, 80));
        let m = one("127.0.0.1::80");
        assert_eq!((m.host_ip.is_some(), m.host_port), (true, 0));
        assert_eq!(m.bind_ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(one("80").bind_ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }

    #[test]
    fn ipv6() {
        let m = one("[::1]:80:80");
        assert_eq!(m.host_ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!((m.host_port, m.container_port), (80, 80));
        let m = one("::1:8080:80");
        assert_eq!(m.host_ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        let m = one("[::]::80/udp");
        assert_eq!((m.host_port, m.proto), (0, Proto::Udp));
    }

    #[test]
    fn ranges() {
        let v = parse_publish("8000-8001:80-81").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].host_port, v[0].container_port), (8000, 80));
        assert_eq!((v[1].host_port, v[1].container_port), (8001, 81));
        let v = parse_publish("80-82").unwrap();
        assert_eq!(
            v.iter().map(|m| (m.host_port, m.container_port)).collect::<Vec<_>>(),
            vec![(0, 80), (0, 81), (0, 82)]
        );
        let m = one("8000-8010:80");
        assert_eq!(
            (m.host_port, m.host_port_end, m.host_port_spec()),
            (8000, Some(8010), "8000-8010".to_string())
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = |s: &str| parse_publish(s).unwrap_err().to_string();
        assert!(e("").contains("no port specified"), "{}", e(""));
        assert!(e("8000:").contains("no container port"));
        assert!(e("abc").contains("invalid containerPort: abc"));
        assert!(e("x:80").contains("invalid hostPort: x"));
        assert!(e("70000:80").contains("invalid hostPort: 70000"));
        assert!(e("8000:0").contains("containerPort: 0"));
        assert!(e("1.2.3:80:80").contains("invalid IP address: 1.2.3"));
        assert!(e("80/foo").contains("invalid proto: foo"));
        assert!(e("80/sctp").contains("sctp is not supported"));
        assert!(e("8000-8002:80-81").contains("invalid ranges"));
        assert!(e("81-80").contains("ends before it starts"));
        assert!(e("a:b:c:80:80").contains("IPv6 address in brackets"));
    }

    #[test]
    fn display_like_docker() {
        let b = PortBinding {
            host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            host_port: 8000,
            container_port: 8000,
            proto: Proto::Tcp,
        };
        assert_eq!(b.to_string(), "0.0.0.0:8000->8000/tcp");
        assert_eq!(b.host_addr(), "0.0.0.0:8000");
        let b6 = PortBinding {
            host_ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
            proto: Proto::Udp,
            ..b
        };
        assert_eq!(b6.to_string(), "[::1]:8000->8000/udp");
    }

    #[test]
    fn exposed_keys() {
        assert_eq!(parse_exposed("80/tcp"), vec![(80, Proto::Tcp)]);
        assert_eq!(parse_exposed("53/udp"), vec![(53, Proto::Udp)]);
        assert_eq!(parse_exposed("8000-8001"), vec![(8000, Proto::Tcp), (8001, Proto::Tcp)]);
        assert!(parse_exposed("x/tcp").is_empty());
        assert!(parse_exposed("1/sctp").is_empty());
    }
}
