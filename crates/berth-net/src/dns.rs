//! Name resolution on user-defined networks through `aardvark-dns`
//! (Podman's DNS server, Debian's `aardvark-dns` package): one server per
//! berth run directory, listening on port 53 of every DNS-enabled
//! network's gateway, answering container names and aliases of that
//! network only, and forwarding every other name to the upstream
//! resolvers berth gives it.
//!
//! Its records are one file per network in `<run dir>/aardvark-dns/`:
//! the gateways on the first line (IPv4, then IPv6 on a dual-stack
//! network), then `ID IPV4 IPV6 NAME,ALIAS…` per
//! container, with a fifth column, `SERVER,…`, for a container started
//! with `--dns`: the server forwards that container's other queries there
//! instead of to its own upstream resolvers (Docker's embedded DNS does
//! the same with `--dns`). A change rewrites the file (staged outside the directory,
//! then renamed in, so the server never reads half a file) and sends the
//! server SIGHUP; the server is started with the first network and stopped
//! with the last. Changes are serialised by a lock file, so concurrent
//! berth processes never lose each other's records.
//!
//! Upstream resolvers: the server runs in a private mount namespace where
//! `/etc/resolv.conf` is berth's `upstream-resolv.conf` (the host's
//! resolvers as root, where loopback resolvers work because the server
//! runs in the host's network namespace; rootless, the resolver pasta
//! forwards to).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{NetError, Result};
use crate::firewall::enter_in_child;
use crate::ns::Namespace;

/// Where Debian installs the server.
const AARDVARK_PATHS: &[&str] = &["/usr/lib/podman/aardvark-dns", "/usr/libexec/podman/aardvark-dns"];

/// One container's names on a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    pub container_id: String,
    pub ip: Ipv4Addr,
    /// Its IPv6 address on a dual-stack network (answered to AAAA queries).
    pub ip6: Option<Ipv6Addr>,
    /// The container name first, then aliases.
    pub names: Vec<String>,
    /// `--dns`: where the server forwards this container's queries for
    /// other names (empty: the server's upstream resolvers).
    pub upstreams: Vec<IpAddr>,
}

/// The DNS server of one run directory.
pub struct Dns {
    dir: PathBuf,
    ns: Namespace,
}

/// The `aardvark-dns` binary: `$BERTH_AARDVARK_DNS`, Debian's path, or PATH.
pub fn server_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_AARDVARK_DNS") {
        return Some(PathBuf::from(p));
    }
    AARDVARK_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join("aardvark-dns"))
                    .find(|p| p.exists())
            })
        })
}

fn io(what: impl Into<String>, e: std::io::Error) -> NetError {
    NetError::io(what, e)
}

/// Parses a network's record file: (gateway, records).
fn parse(text: &str) -> (String, Vec<DnsRecord>) {
    let mut lines = text.lines();
    let gw = lines.next().unwrap_or("").trim().to_string();
    let recs = lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() < 4 {
                return None;
            }
            Some(DnsRecord {
                container_id: f[0].to_string(),
                ip: f[1].split(',').next()?.parse().ok()?,
                ip6: f[2].split(',').next().and_then(|a| a.parse().ok()),
                names: f[3].split(',').filter(|s| !s.is_empty()).map(String::from).collect(),
                upstreams: f
                    .get(4)
                    .map(|u| u.split(',').filter_map(|s| s.parse().ok()).collect())
                    .unwrap_or_default(),
            })
        })
        .collect();
    (gw, recs)
}

/// The first line: the addresses the server listens on (the gateways), comma-separated.
fn gateway_line(gateways: &[IpAddr]) -> String {
    gateways.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(",")
}

fn render(gateways: &str, recs: &[DnsRecord]) -> String {
    let mut s = format!("{gateways}\n");
    for r in recs {
        let v6 = r.ip6.map(|a| a.to_string()).unwrap_or_default();
        s.push_str(&format!("{} {} {v6} {}", r.container_id, r.ip, r.names.join(",")));
        if !r.upstreams.is_empty() {
            let up: Vec<String> = r.upstreams.iter().map(|u| u.to_string()).collect();
            s.push_str(&format!(" {}", up.join(",")));
        }
        s.push('\n');
    }
    s
}

impl Dns {
    /// The server for `run_dir`, running in `ns` (the namespace the bridges are in).
    pub fn new(run_dir: &Path, ns: Namespace) -> Dns {
        Dns {
            dir: run_dir.to_path_buf(),
            ns,
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.join("aardvark-dns")
    }

    fn pid_file(&self) -> PathBuf {
        self.config_dir().join("aardvark.pid")
    }

    /// The file with the resolvers the server forwards to.
    pub fn upstream_file(&self) -> PathBuf {
        self.dir.join("upstream-resolv.conf")
    }

    fn lock(&self) -> Result<std::fs::File> {
        std::fs::create_dir_all(self.config_dir())
            .map_err(|e| io(format!("creating {}", self.config_dir().display()), e))?;
        crate::lock_file(&self.dir.join("dns.lock"))
    }

    /// The records of network file `net` (its bridge name).
    pub fn records(&self, net: &str) -> Vec<DnsRecord> {
        std::fs::read_to_string(self.config_dir().join(net))
            .map(|t| parse(&t).1)
            .unwrap_or_default()
    }

    /// Every network file present (bridge names).
    pub fn networks(&self) -> Vec<String> {
        std::fs::read_dir(self.config_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with("aardvark") && !n.starts_with('.'))
            .collect()
    }

    /// Adds (or replaces) a container's names on network `net` (whose
    /// gateways, IPv4 then IPv6, the server listens on) and reloads.
    pub fn add(&self, net: &str, gateways: &[IpAddr], rec: DnsRecord, upstream: &str) -> Result<()> {
        self.change(net, Some(gateway_line(gateways)), upstream, |recs| {
            recs.retain(|r| r.container_id != rec.container_id);
            recs.push(rec);
        })
    }

    /// Sets the servers a container's queries for other names go to
    /// (`--dns`) on network `net`, and reloads; nothing when it has no
    /// record there.
    pub fn set_upstreams(&self, net: &str, container_id: &str, servers: &[IpAddr]) -> Result<()> {
        if !self
            .records(net)
            .iter()
            .any(|r| r.container_id == container_id && r.upstreams != servers)
        {
            return Ok(());
        }
        self.change(net, None, "", |recs| {
            for r in recs.iter_mut().filter(|r| r.container_id == container_id) {
                r.upstreams = servers.to_vec();
            }
        })
    }

    /// Removes a container's names from network `net` and reloads.
    pub fn remove(&self, net: &str, container_id: &str) -> Result<()> {
        if !self.config_dir().join(net).exists() {
            return Ok(());
        }
        self.change(net, None, "", |recs| recs.retain(|r| r.container_id != container_id))
    }

    /// Removes network `net`'s file (and stops the server when it was the last).
    pub fn remove_network(&self, net: &str) -> Result<()> {
        let _lock = self.lock()?;
        let p = self.config_dir().join(net);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(format!("removing {}", p.display()), e)),
        }
        self.reload_or_stop()
    }

    /// Removes a container's records from network `net`'s file without
    /// telling the server, for a namespace that is not running (its
    /// server went with it; the next one reads the file as left here).
    pub fn forget(&self, net: &str, container_id: &str) -> Result<()> {
        if !self.config_dir().join(net).exists() {
            return Ok(());
        }
        let _lock = self.lock()?;
        self.rewrite(net, None, |recs| recs.retain(|r| r.container_id != container_id))
    }

    fn change(
        &self,
        net: &str,
        gateways: Option<String>,
        upstream: &str,
        f: impl FnOnce(&mut Vec<DnsRecord>),
    ) -> Result<()> {
        let _lock = self.lock()?;
        self.rewrite(net, gateways, f)?;
        if !upstream.is_empty() {
            // Rewritten in place: the server's /etc/resolv.conf is a bind
            // mount of this very inode.
            let up = self.upstream_file();
            if std::fs::read_to_string(&up).ok().as_deref() != Some(upstream) {
                std::fs::write(&up, upstream).map_err(|e| io(format!("writing {}", up.display()), e))?;
            }
        }
        self.reload_or_stop()
    }

    /// Network `net`'s file with `f` applied to its records (the lock held).
    fn rewrite(&self, net: &str, gateways: Option<String>, f: impl FnOnce(&mut Vec<DnsRecord>)) -> Result<()> {
        let p = self.config_dir().join(net);
        let (gw, mut recs) = std::fs::read_to_string(&p).map(|t| parse(&t)).unwrap_or_default();
        let gateway = gateways.unwrap_or(gw);
        f(&mut recs);
        // Staged outside the directory the server reads.
        let tmp = self.dir.join(format!(".dns-{net}.{}", std::process::id()));
        std::fs::write(&tmp, render(&gateway, &recs)).map_err(|e| io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &p).map_err(|e| io(format!("renaming {}", p.display()), e))
    }

    /// The running server's pid, if it is alive.
    pub fn pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let zombie = state
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'));
        let ours = String::from_utf8_lossy(&cmdline).contains(&*self.config_dir().to_string_lossy());
        (ours && !zombie).then_some(pid)
    }

    fn reload_or_stop(&self) -> Result<()> {
        let any = !self.networks().is_empty();
        match (self.pid(), any) {
            (Some(pid), true) => {
                // A server still starting would die of SIGHUP's default
                // action (seen under load: a record added just after the
                // first one killed it).
                wait_for_sighup_handler(pid);
                // SAFETY: kill(2) on the server's pid, checked just now to be ours.
                unsafe { libc::kill(pid, libc::SIGHUP) };
                Ok(())
            }
            (Some(_), false) => {
                self.stop();
                Ok(())
            }
            (None, true) => self.start(),
            (None, false) => Ok(()),
        }
    }

    /// Stops the server whatever its files say, and waits (up to 2 s) until it is gone.
    pub fn stop(&self) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on our server's pid.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            for _ in 0..200 {
                if self.pid().is_none() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_file(self.pid_file());
    }

    fn start(&self) -> Result<()> {
        let bin = server_binary().ok_or_else(|| {
            NetError::Dns("aardvark-dns is not installed (Debian: apt-get install aardvark-dns)".into())
        })?;
        let up = self.upstream_file();
        if !up.exists() {
            std::fs::write(&up, "").map_err(|e| io(format!("writing {}", up.display()), e))?;
        }
        let log = self.dir.join("aardvark-dns.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| io(format!("opening {}", log.display()), e))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--config")
            .arg(self.config_dir())
            .args(["-p", "53", "run"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let _ns = enter_in_child(&mut cmd, &self.ns)?;
        let src = CString::new(up.as_os_str().as_encoded_bytes()).map_err(|_| NetError::Dns("bad path".into()))?;
        // SAFETY: runs in the child between fork and exec, after the
        // namespace switch above; only unshare(2), setsid(2) and mount(2)
        // on a string prepared before fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let none = c"none";
                if libc::mount(
                    none.as_ptr(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::mount(
                    src.as_ptr(),
                    c"/etc/resolv.conf".as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| io(format!("starting {}", bin.display()), e))?;
        // aardvark-dns forks into the background and writes its pid file;
        // the process we started exits once the server is up.
        let st = child.wait().map_err(|e| io("waiting for aardvark-dns", e))?;
        if !st.success() {
            let tail = std::fs::read_to_string(self.dir.join("aardvark-dns.log")).unwrap_or_default();
            return Err(NetError::Dns(format!(
                "aardvark-dns failed to start ({st}): {}",
                tail.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
            )));
        }
        if let Some(pid) = self.pid() {
            wait_for_sighup_handler(pid);
        }
        Ok(())
    }
}

/// Does process `pid` catch SIGHUP (`SigCgt` of its status)?
fn catches_sighup(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & (1 << (libc::SIGHUP - 1)) != 0)
}

/// Waits (up to 2 s) until the server handles SIGHUP: it installs its
/// handler some time after its pid file appears.
fn wait_for_sighup_handler(pid: i32) {
    for _ in 0..400 {
        if catches_sighup(pid) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    log::warn!("aardvark-dns ({pid}) does not handle SIGHUP yet");
}

/// The upstream resolv.conf for the server: the host's `resolv.conf`
/// nameservers (loopback ones too: the server forwards from the namespace
/// berth's bridges are in), or `override_ns` (rootless: pasta's resolver).
pub fn upstream_conf(host_resolv: &str, override_ns: Option<Ipv4Addr>) -> String {
    let mut out = String::new();
    let mut seen = BTreeMap::new();
    for l in host_resolv.lines() {
        let t = l.trim();
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            let loopback = ns.starts_with("127.") || ns == "::1";
            match override_ns {
                Some(o) if loopback => {
                    if seen.insert(o.to_string(), ()).is_none() {
                        out.push_str(&format!("nameserver {o}\n"));
                    }
                }
                _ => {
                    if seen.insert(ns.to_string(), ()).is_none() {
                        out.push_str(&format!("nameserver {ns}\n"));
                    }
                }
            }
        } else if t.starts_with("search") || t.starts_with("options") {
            out.push_str(t);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_files_round_trip() {
        let recs = vec![
            DnsRecord {
                container_id: "a".repeat(64),
                ip: Ipv4Addr::new(172, 18, 0, 2),
                ip6: None,
                names: vec!["web".into(), "www".into()],
                upstreams: vec![],
            },
            DnsRecord {
                container_id: "b".repeat(64),
                ip: Ipv4Addr::new(172, 18, 0, 3),
                ip6: Some("fd12:3456:789a:1::3".parse().unwrap()),
                names: vec!["db".into()],
                upstreams: vec!["10.1.2.3".parse().unwrap(), "10.1.2.4".parse().unwrap()],
            },
        ];
        let gws = [
            IpAddr::V4(Ipv4Addr::new(172, 18, 0, 1)),
            "fd12:3456:789a:1::1".parse().unwrap(),
        ];
        let text = render(&gateway_line(&gws), &recs);
        assert_eq!(
            text.lines().nth(1).unwrap(),
            format!("{} 172.18.0.2  web,www", "a".repeat(64))
        );
        assert_eq!(
            text.lines().nth(2).unwrap(),
            format!("{} 172.18.0.3 fd12:3456:789a:1::3 db 10.1.2.3,10.1.2.4", "b".repeat(64))
        );
        let (gw, back) = parse(&text);
        assert_eq!(gw, "172.18.0.1,fd12:3456:789a:1::1");
        assert_eq!(back, recs);
    }

    #[test]
    fn upstream_keeps_or_replaces_loopback_resolvers() {
        let host = "# x\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp\noptions edns0\n";
        assert_eq!(
            upstream_conf(host, None),
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp\noptions edns0\n"
        );
        assert_eq!(
            upstream_conf(host, Some(Ipv4Addr::new(169, 254, 1, 1))),
            "nameserver 169.254.1.1\nnameserver 10.0.0.2\nsearch corp\noptions edns0\n"
        );
    }
}
