//! Bridge networks rootless, end to end: as an unprivileged user with a
//! subordinate id range, containers on a user-defined network reach each
//! other by name and by alias, a container on another network cannot reach
//! them, an `--internal` network has no default route, `-p` on a bridge
//! network and on the default network answers on the host's 127.0.0.1,
//! outbound connections leave through pasta (to a server of the test on
//! the host's 127.0.0.1, through pasta's mapping of the gateway address to
//! the host's loopback), a live `network connect` shows in `/etc/hosts`
//! and in the network's DNS, `--dns` servers are what the network's DNS
//! server forwards to, and `rm -f`, `--rm`, `network rm` and `system
//! prune` leave nothing behind: no process (holder, pasta, aardvark-dns,
//! monitor, container), no process in any namespace berth made, no
//! namespace mount, veth or lease. Traffic goes only to container
//! addresses, to an address the test adds in the rootless namespace, and to
//! 127.0.0.1 (the gateway address never leaves pasta).

mod common;

use common::{stdout, Rootless};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A [`Rootless`] whose containers and networks go when the test ends (a
/// failed assertion included), and the rootless namespace with them.
struct NetRootless(Rootless);

impl std::ops::Deref for NetRootless {
    type Target = Rootless;
    fn deref(&self) -> &Rootless {
        &self.0
    }
}

impl NetRootless {
    fn netns_dir(&self) -> PathBuf {
        self.dir.path().join("berth-rootless-netns")
    }

    /// The holder's pid, while the rootless namespace runs.
    fn holder(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.netns_dir().join("holder.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmd.starts_with(b"berth-rootless-netns").then_some(pid)
    }

    /// Runs `berth ARGS` as the user and checks it succeeded.
    #[track_caller]
    fn ok(&self, args: &str) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth {args}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        stdout(&o)
    }

    fn pid_in(&self, file: &str) -> Option<i32> {
        std::fs::read_to_string(self.netns_dir().join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Processes this test's berth started and that still run: their
    /// command line names the test directory (monitors, pasta,
    /// aardvark-dns), or they are the holder.
    fn processes(&self) -> Vec<(i32, String)> {
        let dir = self.dir.path().to_string_lossy().to_string();
        let holder = self.holder();
        procs()
            .into_iter()
            .filter(|(pid, cmd)| cmd.contains(&dir) || Some(*pid) == holder)
            .collect()
    }

    /// No container veth is left in the rootless namespace. They go with
    /// the container's namespace, which the kernel frees asynchronously
    /// (berth does not delete them one by one: see berth-net's
    /// `Teardown::WithNamespace`), so this waits, up to 5 s.
    fn veths_gone(&self) {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let links = stdout(&self.in_netns(&["ip", "-o", "link"]));
            if !links.contains("brth") {
                return;
            }
            assert!(std::time::Instant::now() < end, "veths left: {links}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Namespace (nsfs) mounts in the holder's mount namespace under this
    /// test's directory (the holder's copy of the host's mounts may hold
    /// others' namespace mounts).
    fn ns_mounts(&self, holder: i32) -> Vec<String> {
        let dir = self.dir.path().to_string_lossy().to_string();
        std::fs::read_to_string(format!("/proc/{holder}/mountinfo"))
            .unwrap()
            .lines()
            .filter(|l| l.contains(" - nsfs ") && l.contains(&dir))
            .map(String::from)
            .collect()
    }

    /// Inside the rootless namespace (as root, joining its user namespace).
    fn in_netns(&self, args: &[&str]) -> Output {
        let h = self.holder().expect("the rootless namespace runs");
        Command::new("nsenter")
            .args(["-U", "-n", "-t", &h.to_string()])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for NetRootless {
    fn drop(&mut self) {
        for id in stdout(&self.0.run("ps -aq --no-trunc")).lines() {
            let _ = self.0.run(&format!("rm -f {id}"));
        }
        let _ = self.0.run("network prune -f");
        for (pid, _) in self.processes() {
            // SAFETY: kill(2) on a process this test's berth started (its
            // command line names the test directory, or it is the holder).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Every live process: pid and command line (a zombie has ended; init
/// reaps it in its own time).
fn procs() -> Vec<(i32, String)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            if stat.rsplit(')').next()?.trim_start().starts_with('Z') {
                return None;
            }
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
        })
        .collect()
}

/// A process's namespace of `kind` (`net`, `user`), as `net:[inode]`.
fn ns_of(pid: i32, kind: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|p| p.to_string_lossy().to_string())
}

/// Processes in any of the namespaces `nss` (as [`ns_of`] names them),
/// with their `stat` line.
fn in_namespaces(nss: &[String]) -> Vec<(i32, String)> {
    procs()
        .into_iter()
        .filter(|(pid, _)| {
            ["net", "user"]
                .iter()
                .any(|k| ns_of(*pid, k).is_some_and(|n| nss.contains(&n)))
        })
        .map(|(pid, _)| {
            (
                pid,
                std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default(),
            )
        })
        .collect()
}

/// The host's default gateway: inside the rootless namespace pasta maps
/// it to the host's loopback (it copies the host's routes).
fn host_gateway() -> Ipv4Addr {
    let table = std::fs::read_to_string("/proc/net/route").unwrap();
    table
        .lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1) == Some(&"00000000")).then(|| {
                let g = u32::from_str_radix(f[2], 16).unwrap();
                Ipv4Addr::from(g.to_le_bytes())
            })
        })
        .expect("the host has a default route (pasta copies it into the rootless namespace)")
}

/// A one-shot HTTP server on the host's 127.0.0.1: its port, and a
/// thread answering one request with `body`.
fn host_server(body: &'static str) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, t)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The response to `GET path` on the host's 127.0.0.1:`port` (empty when
/// the connection fails or closes early: a server still starting).
fn http_get(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    if write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
#[ignore = "needs root"]
fn rootless_bridge_networks() {
    let rl = NetRootless(Rootless::new("berth-netrl-"));
    rl.ok("import bb.tar bb");
    rl.ok("network create app-net");
    rl.ok("network create other-net");
    rl.ok("network create --internal int-net");
    let port = free_port();
    rl.ok(&format!(
        "run -d --name web --hostname web-host --network app-net --network-alias www -p {port}:8000 bb httpd -f -p 8000 -h /etc"
    ));
    let web_ip = rl.ok("inspect --format '{{(index .NetworkSettings.Networks \"app-net\").IPAddress}}' web");
    let web_ip = web_ip.trim();
    assert!(web_ip.parse::<Ipv4Addr>().is_ok(), "web's address: {web_ip:?}");

    // By name and by alias from a second container on app-net (`--rm`).
    let o = rl.ok(
        "run --rm --network app-net bb sh -c 'ping -c1 -W2 web >/dev/null && wget -qO- http://web:8000/hostname && wget -qO- http://www:8000/hostname'",
    );
    assert_eq!(o, "web-host\nweb-host\n");

    // -p on a bridge network: the host's 127.0.0.1.
    let page = http_get(port, "/hostname");
    assert!(page.ends_with("web-host\n"), "{page}");

    // Another network cannot reach web; an internal one has no default route.
    // (`exit` last: sh must not exec timeout, which as the container's
    // init could not be ended by its own signal.)
    let o = rl.run(&format!(
        "run --rm --network other-net bb sh -c 'ping -c1 -W1 {web_ip} && exit 0; timeout 2 wget -qO- http://{web_ip}:8000/hostname; exit $?'"
    ));
    assert!(!o.status.success(), "other-net reached app-net: {}", stdout(&o));
    let routes = rl.ok("run --rm --network int-net bb ip route");
    assert!(!routes.contains("default"), "{routes}");
    assert!(!routes.is_empty());

    // Outbound through pasta: the gateway address is the host's loopback.
    let (hport, server) = host_server("from the host\n");
    let o = rl.ok(&format!(
        "run --rm --network app-net bb wget -qO- http://{}:{hport}/",
        host_gateway()
    ));
    server.join().unwrap();
    assert_eq!(o, "from the host\n");

    // rm leaves no namespace mount, veth or lease behind.
    let holder = rl.holder().expect("the rootless namespace runs while networks exist");
    rl.ok("rm -f web");
    let mounts = rl.ns_mounts(holder);
    assert!(mounts.is_empty(), "namespace mounts left: {mounts:?}");
    rl.veths_gone();
    assert_eq!(
        rl.ok("network inspect --format '{{len .Containers}}' app-net other-net int-net"),
        "0\n0\n0\n"
    );

    // network rm of the last network ends the rootless namespace.
    let pasta: i32 = std::fs::read_to_string(rl.netns_dir().join("pasta.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    rl.ok("network rm app-net other-net int-net");
    assert!(rl.holder().is_none(), "the holder outlived the last network");
    let pasta_cmd = std::fs::read(format!("/proc/{pasta}/cmdline")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&pasta_cmd).contains("pasta"),
        "pasta outlived the last network"
    );
    assert!(!rl.netns_dir().join("holder.pid").exists());
}

/// The course's pattern, rootless: `run -d -p PORT:80 httpd` on the
/// default network answers on the host's 127.0.0.1.
#[test]
#[ignore = "needs root"]
fn rootless_default_network_publish() {
    let rl = NetRootless(Rootless::new("berth-netrl-"));
    rl.ok("import bb.tar bb");
    let port = free_port();
    rl.ok(&format!(
        "run -d --name web --hostname course-web -p {port}:80 bb httpd -f -p 80 -h /etc"
    ));
    let mut page = String::new();
    // httpd may not listen yet when `run -d` returns: a few tries.
    for _ in 0..50 {
        page = http_get(port, "/hostname");
        if page.contains("200 OK") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(page.starts_with("HTTP/1.") && page.ends_with("course-web\n"), "{page}");
    assert_eq!(
        rl.ok("port web"),
        format!("80/tcp -> 0.0.0.0:{port}\n80/tcp -> [::]:{port}\n")
    );
    rl.ok("rm -f web");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port stayed published"
    );
    assert!(rl.processes().is_empty(), "left behind: {:?}", rl.processes());
}

/// A DNS server of the test on `addr`:53 inside the network namespace of
/// `pid`, until the flag is set: answers A queries for names under
/// `example.test` with `answer` (other types: no answer), and any other
/// name with NXDOMAIN. Returns the flag and the names it was asked.
fn fake_upstream(
    pid: i32,
    addr: Ipv4Addr,
    answer: Ipv4Addr,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<Vec<String>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        // SAFETY: setns(2) of this thread only, into a namespace file we opened.
        assert_eq!(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        let s = UdpSocket::bind((addr, 53)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
        tx.send(()).unwrap();
        let mut asked = Vec::new();
        let mut buf = [0u8; 512];
        while !flag.load(Ordering::Relaxed) {
            let Ok((n, from)) = s.recv_from(&mut buf) else { continue };
            if n < 17 {
                continue;
            }
            // The question: labels from byte 12, then type and class.
            let mut i = 12;
            let mut labels = Vec::new();
            while i < n && buf[i] != 0 {
                let l = buf[i] as usize;
                labels.push(String::from_utf8_lossy(&buf[i + 1..i + 1 + l]).to_string());
                i += 1 + l;
            }
            let qend = i + 5;
            let qtype = u16::from_be_bytes([buf[i + 1], buf[i + 2]]);
            asked.push(labels.join("."));
            let mut r = buf[..qend].to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            r[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
            if !labels.join(".").ends_with("example.test") {
                r[3] = 0x83;
            } else if qtype == 1 {
                r[7] = 1;
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&answer.octets());
            }
            let _ = s.send_to(&r, from);
        }
        asked
    });
    rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    (stop, t)
}

/// A live `network connect` puts the container's new address in its
/// `/etc/hosts` and its name in the network's DNS; `disconnect` takes both
/// away. `--dns` servers are the upstreams of the network's DNS server:
/// the container's resolv.conf names only that server, which still
/// answers container names and forwards other names to `--dns`.
#[test]
#[ignore = "needs root"]
fn rootless_live_connect_and_dns_upstreams() {
    let rl = NetRootless(Rootless::new("berth-netrl-"));
    rl.ok("import bb.tar bb");
    rl.ok("network create lc-a");
    rl.ok("network create lc-b");
    // A DNS server of the test on an address it adds in the rootless
    // namespace: every container here names it with --dns, so what the
    // network's DNS server does not know goes there and nowhere else.
    let holder = rl.holder().expect("the rootless namespace runs");
    let upstream = Ipv4Addr::new(10, 213, 57, 53);
    let o = rl.in_netns(&["ip", "addr", "add", &format!("{upstream}/32"), "dev", "lo"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (stop, server) = fake_upstream(holder, upstream, Ipv4Addr::new(10, 213, 57, 99));
    rl.ok(&format!(
        "run -d --name c1 --hostname c1-host --network lc-a --dns {upstream} bb sleep 600"
    ));
    rl.ok(&format!(
        "run -d --name peer --network lc-b --dns {upstream} bb sleep 600"
    ));
    let o = rl.run("exec peer ping -c1 -W1 c1");
    assert!(!o.status.success(), "c1 is reachable before connect");

    rl.ok("network connect --alias c1-alias lc-b c1");
    let ip_b = rl.ok("inspect --format '{{(index .NetworkSettings.Networks \"lc-b\").IPAddress}}' c1");
    let ip_b = ip_b.trim().to_string();
    let hosts = rl.ok("exec c1 cat /etc/hosts");
    assert!(hosts.contains(&format!("{ip_b}\tc1-host\n")), "{hosts}");
    let o = rl.ok("exec peer sh -c 'ping -c1 -W1 c1 >/dev/null && ping -c1 -W1 c1-alias >/dev/null && echo ok'");
    assert_eq!(o, "ok\n");

    rl.ok("network disconnect lc-b c1");
    let hosts = rl.ok("exec c1 cat /etc/hosts");
    assert!(!hosts.contains(&ip_b), "{hosts}");
    assert!(hosts.contains("\tc1-host\n"), "{hosts}");
    let o = rl.run("exec peer nslookup c1");
    assert!(!o.status.success(), "c1 still resolves on lc-b: {}", stdout(&o));

    // resolv.conf names only the network's server, which answers container
    // names itself and forwards other names to --dns.
    let out = rl.ok(&format!(
        "run --rm --network lc-a --dns {upstream} bb sh -c 'cat /etc/resolv.conf; nslookup outside.example.test; nslookup c1'"
    ));
    stop.store(true, Ordering::Relaxed);
    let asked = server.join().unwrap();
    let gw = rl.ok("network inspect --format '{{(index .IPAM.Config 0).Gateway}}' lc-a");
    let ns_lines: Vec<&str> = out.lines().filter(|l| l.starts_with("nameserver")).collect();
    assert_eq!(ns_lines, vec![format!("nameserver {}", gw.trim())], "{out}");
    assert!(
        out.contains("10.213.57.99"),
        "the --dns server's answer is missing: {out}"
    );
    let ip_a = rl.ok("inspect --format '{{(index .NetworkSettings.Networks \"lc-a\").IPAddress}}' c1");
    assert!(out.contains(ip_a.trim()), "c1 no longer resolves: {out}");
    assert!(asked.iter().any(|n| n == "outside.example.test"), "{asked:?}");
    // Single-label names the network does not know are answered there
    // (aardvark-dns: NXDOMAIN), never forwarded.
    assert!(!asked.iter().any(|n| n.starts_with("c1")), "{asked:?}");
}

/// `rm -f`, `network rm` and `system prune` leave nothing: the test
/// records every process and namespace berth made, then looks for them.
#[test]
#[ignore = "needs root"]
fn rootless_cleanup_leaves_nothing() {
    let rl = NetRootless(Rootless::new("berth-netrl-"));
    rl.ok("import bb.tar bb");
    rl.ok("network create cl-a");
    rl.ok("network create cl-b");
    let (p1, p2) = (free_port(), free_port());
    rl.ok("run -d --name a1 --network cl-a bb sleep 600");
    rl.ok(&format!(
        "run -d --name b1 --network cl-b -p {p1}:8000 bb httpd -f -p 8000"
    ));
    rl.ok(&format!("run -d --name d1 -p {p2}:80 bb httpd -f -p 80"));
    let holder = rl.holder().expect("the rootless namespace runs");
    let pasta = rl.pid_in("pasta.pid").expect("pasta runs");
    let aardvark: Vec<i32> = rl
        .processes()
        .into_iter()
        .filter(|(_, c)| c.contains("aardvark-dns"))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(aardvark.len(), 1, "{:?}", rl.processes());
    let mut nss = vec![ns_of(holder, "net").unwrap(), ns_of(holder, "user").unwrap()];
    let mut ctr_nss = Vec::new();
    for c in ["a1", "b1", "d1"] {
        let pid: i32 = rl
            .ok(&format!("inspect --format '{{{{.State.Pid}}}}' {c}"))
            .trim()
            .parse()
            .unwrap();
        ctr_nss.push(ns_of(pid, "net").unwrap());
        ctr_nss.push(ns_of(pid, "user").unwrap());
    }
    ctr_nss.retain(|n| !nss.contains(n));
    let mounts = rl.ns_mounts(holder);
    assert_eq!(mounts.len(), 2, "{mounts:?}");

    // rm -f: no container, monitor or forwarder process, nothing in the
    // containers' namespaces, no namespace mount, no veth.
    rl.ok("rm -f a1 b1 d1");
    let left: Vec<_> = rl
        .processes()
        .into_iter()
        .filter(|(p, _)| ![holder, pasta].contains(p) && !aardvark.contains(p))
        .collect();
    assert!(left.is_empty(), "left after rm -f: {left:?}");
    assert!(in_namespaces(&ctr_nss).is_empty(), "{:?}", in_namespaces(&ctr_nss));
    let mounts = rl.ns_mounts(holder);
    assert!(mounts.is_empty(), "namespace mounts left: {mounts:?}");
    rl.veths_gone();
    for p in [p1, p2] {
        assert!(
            TcpStream::connect(("127.0.0.1", p)).is_err(),
            "port {p} stayed published"
        );
    }

    // network rm of one, system prune of the other: the rootless
    // namespace goes with the last network, and every process in it.
    rl.ok("network rm cl-a");
    assert_eq!(rl.holder(), Some(holder), "the namespace went with a network left");
    let o = rl.ok("system prune -f");
    assert!(o.contains("Deleted Networks:\ncl-b\n"), "{o}");
    assert_eq!(rl.ok("network ls --format '{{.Name}}'"), "bridge\nhost\nnone\n");
    assert!(rl.processes().is_empty(), "left after prune: {:?}", rl.processes());
    nss.extend(ctr_nss);
    assert!(in_namespaces(&nss).is_empty(), "{:?}", in_namespaces(&nss));
    let dir = rl.netns_dir();
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.ends_with("lock"))
        .collect();
    assert!(files.is_empty(), "left in {}: {files:?}", dir.display());
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host_mounts.contains(&*rl.dir.path().to_string_lossy()),
        "{host_mounts}"
    );
}

/// `kill -9` of pasta, of aardvark-dns and of the holder: the next berth
/// command starts what is missing (a killed holder takes the namespace
/// and the bridges with it: berth makes a new one and ends what still ran
/// in the old one), and removing everything still leaves nothing.
#[test]
#[ignore = "needs root"]
fn rootless_recovers_after_kill_9() {
    let rl = NetRootless(Rootless::new("berth-netrl-"));
    rl.ok("import bb.tar bb");
    rl.ok("network create rk-a");
    rl.ok("run -d --name wk --hostname w-host --network rk-a bb httpd -f -p 8000 -h /etc");
    let get = "run --rm --network rk-a bb wget -qO- http://wk:8000/hostname";
    assert_eq!(rl.ok(get), "w-host\n");

    let pasta = rl.pid_in("pasta.pid").expect("pasta runs");
    // SAFETY: kill(2) on the pasta this test's berth started.
    unsafe { libc::kill(pasta, libc::SIGKILL) };
    let aardvark: Vec<i32> = rl
        .processes()
        .into_iter()
        .filter(|(_, c)| c.contains("aardvark-dns"))
        .map(|(p, _)| p)
        .collect();
    for p in &aardvark {
        // SAFETY: kill(2) on the aardvark-dns this test's berth started.
        unsafe { libc::kill(*p, libc::SIGKILL) };
    }
    assert_eq!(rl.ok(get), "w-host\n");
    let (hport, server) = host_server("after kill -9\n");
    let o = rl.ok(&format!(
        "run --rm --network rk-a bb wget -qO- http://{}:{hport}/",
        host_gateway()
    ));
    server.join().unwrap();
    assert_eq!(o, "after kill -9\n");
    assert_ne!(rl.pid_in("pasta.pid"), Some(pasta));

    let holder = rl.holder().expect("the rootless namespace runs");
    let old_ns = vec![ns_of(holder, "net").unwrap(), ns_of(holder, "user").unwrap()];
    // SAFETY: kill(2) on the holder this test's berth started.
    unsafe { libc::kill(holder, libc::SIGKILL) };
    // Removed while no namespace runs: its address and DNS record go
    // too, so its name is the new container's alone.
    rl.ok("rm -f wk");
    rl.ok("run -d --name wk --hostname w-host --network rk-a bb httpd -f -p 8000 -h /etc");
    let ip = rl.ok("inspect --format '{{(index .NetworkSettings.Networks \"rk-a\").IPAddress}}' wk");
    let found = rl.ok("run --rm --network rk-a bb nslookup -type=A wk");
    let answers: Vec<&str> = found
        .lines()
        .filter(|l| l.starts_with("Address") && !l.ends_with(":53"))
        .collect();
    assert_eq!(answers, [format!("Address: {}", ip.trim())], "{found}");
    assert_eq!(rl.ok(get), "w-host\n");
    assert_ne!(rl.holder(), Some(holder));
    assert!(in_namespaces(&old_ns).is_empty(), "{:?}", in_namespaces(&old_ns));
    rl.ok("rm -f wk");
    rl.ok("network rm rk-a");
    assert!(rl.processes().is_empty(), "left: {:?}", rl.processes());
}

/// Two stores of the user creating their first networks at once share
/// one rootless namespace; eight concurrent `run -d` on one network get
/// eight distinct addresses and every name resolves; eight concurrent
/// `rm -f` plus `network rm` in both stores leave nothing.
#[test]
#[ignore = "needs root"]
fn rootless_concurrent_runs() {
    let rl = NetRootless(Rootless::new("berth-netrl-"));
    rl.ok("import bb.tar bb");
    // A refused first network leaves no namespace running.
    let o = rl.run("network create --subnet 10.300.0.0/16 cc-bad");
    assert!(!o.status.success());
    assert!(rl.processes().is_empty(), "{:?}", rl.processes());
    let other = format!("./berth --root {}/store2", rl.dir.path().display());
    std::thread::scope(|s| {
        s.spawn(|| rl.ok("network create cc-net"));
        s.spawn(|| {
            let o = rl.sh(&format!("{other} network create cc-other"));
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        });
    });
    let holders: Vec<_> = rl
        .processes()
        .into_iter()
        .filter(|(_, c)| c.starts_with("berth-rootless-netns"))
        .collect();
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_eq!(rl.processes().iter().filter(|(_, c)| c.starts_with("pasta")).count(), 1);
    let names: Vec<String> = (0..8).map(|i| format!("cc{i}")).collect();
    std::thread::scope(|s| {
        for n in &names {
            let rl = &rl;
            s.spawn(move || rl.ok(&format!("run -d --name {n} --network cc-net bb sleep 600")));
        }
    });
    let mut ips: Vec<String> = names
        .iter()
        .map(|n| {
            rl.ok(&format!(
                "inspect --format '{{{{(index .NetworkSettings.Networks \"cc-net\").IPAddress}}}}' {n}"
            ))
            .trim()
            .to_string()
        })
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 8, "{ips:?}");
    let script: Vec<String> = names.iter().map(|n| format!("ping -c1 -W2 {n} >/dev/null")).collect();
    let o = rl.ok(&format!("exec cc0 sh -c '{} && echo all'", script.join(" && ")));
    assert_eq!(o, "all\n");
    std::thread::scope(|s| {
        for n in &names {
            let rl = &rl;
            s.spawn(move || rl.ok(&format!("rm -f {n}")));
        }
    });
    assert_eq!(rl.ok("network inspect --format '{{len .Containers}}' cc-net"), "0\n");
    let holder = rl.holder().expect("the namespace runs while cc-net exists");
    let mounts = rl.ns_mounts(holder);
    assert!(mounts.is_empty(), "namespace mounts left: {mounts:?}");
    rl.veths_gone();
    rl.ok("network rm cc-net");
    assert!(rl.holder().is_some(), "the namespace went while store2 has a network");
    assert!(rl.sh(&format!("{other} network rm cc-other")).status.success());
    assert!(rl.processes().is_empty(), "left: {:?}", rl.processes());
}

/// IPv6 rootless: a dual-stack network in the rootless namespace, names
/// resolved to IPv6 addresses, `--ip6`, isolation from another network,
/// and no `ip6 berth` element left after `network rm`.
#[test]
#[ignore = "needs root"]
fn rootless_ipv6_networks() {
    let rl = NetRootless(Rootless::new("berth-netrl-"));
    rl.ok("import bb.tar bb");
    rl.ok("network create --ipv6 --subnet fd42:4242:4242:1::/64 v6a");
    rl.ok("network create --ipv6 v6b");
    rl.ok("run -d --name web --network v6a --ip6 fd42:4242:4242:1::10 bb httpd -f -p 8000 -h /etc");
    let web = rl.ok("inspect --format '{{(index .NetworkSettings.Networks \"v6a\").GlobalIPv6Address}}' web");
    assert_eq!(web.trim(), "fd42:4242:4242:1::10");
    // IPv6 is on for loopback and the IPv6 network's interface only (the
    // namespace helper turns it on inside the rootless user namespace).
    let switches = "sh -c 'for f in all default lo eth0; do printf \"%s=%s \" $f $(cat /proc/sys/net/ipv6/conf/$f/disable_ipv6); done'";
    assert_eq!(rl.ok(&format!("exec web {switches}")), "all=1 default=1 lo=0 eth0=0 ");
    // On an IPv4 network, off everywhere.
    rl.ok("network create v4");
    assert_eq!(
        rl.ok(&format!("run --rm --network v4 bb {switches}")),
        "all=1 default=1 lo=1 eth0=1 "
    );
    let host = rl.ok("inspect --format '{{.Config.Hostname}}' web");
    let o = rl.ok(
        "run --rm --network v6a bb sh -c 'ping -6 -c1 -W2 web >/dev/null && wget -qO- http://[fd42:4242:4242:1::10]:8000/hostname && nslookup -type=AAAA web'",
    );
    assert!(o.starts_with(host.trim()), "{o}");
    assert!(o.contains("fd42:4242:4242:1::10"), "{o}");
    let o = rl.run(
        "run --rm --network v6b bb sh -c 'timeout 2 wget -qO- http://[fd42:4242:4242:1::10]:8000/hostname; exit $?'",
    );
    assert!(!o.status.success(), "v6b reached v6a: {}", stdout(&o));
    let nft = stdout(&rl.in_netns(&["nft", "list", "table", "ip6", "berth"]));
    assert!(nft.contains("fd42:4242:4242:1::/64"), "{nft}");
    rl.ok("rm -f web");
    rl.ok("network rm v6a v6b v4");
    assert!(
        rl.holder().is_none(),
        "the rootless namespace stops with its last network"
    );
}

/// `--dns 127.0.0.1` rootless: the network's DNS server forwards the
/// container's other queries to the host's loopback (through pasta's
/// mapping of the namespace's gateway), where the test runs a server;
/// a loopback address pasta cannot reach is refused, saying why.
#[test]
#[ignore = "needs root"]
fn rootless_dns_on_the_hosts_loopback() {
    let rl = NetRootless(Rootless::new("berth-netrl-"));
    rl.ok("import bb.tar bb");
    rl.ok("network create dn-net");
    let me = std::process::id() as i32;
    let (stop, server) = fake_upstream(me, Ipv4Addr::LOCALHOST, Ipv4Addr::new(10, 213, 57, 98));
    let o = rl.run("run --rm --network dn-net --dns 127.0.0.1 bb nslookup loop.example.test");
    stop.store(true, Ordering::Relaxed);
    let asked = server.join().unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout(&o).contains("10.213.57.98"), "{}", stdout(&o));
    assert!(asked.iter().any(|n| n == "loop.example.test"), "{asked:?}");
    let o = rl.run("run --rm --network dn-net --dns 127.0.0.2 bb true");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--dns 127.0.0.2") && err.contains("loopback"), "{err}");
    rl.ok("network rm dn-net");
}
