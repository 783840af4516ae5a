//! Bridge networks at library level, as root: the tests make their own
//! network namespaces (`ip netns add`), attach them to berth networks and
//! check what a user would: two containers on one network reach each other
//! by address and by name, networks are isolated, an internal network has
//! no way out, outbound traffic is masqueraded, connect/disconnect work on
//! a live namespace, concurrent attachments get distinct addresses, and
//! nothing is left afterwards, even after a "kill -9".
//!
//! Traffic goes only to namespaces and interfaces these tests create.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use berth_net::bridge::{self, Attachment, NetContext, NetworkRequest};
use berth_net::ns::Namespace;
use berth_store::{NetworkRecord, NewEndpoint, Store};

/// A network namespace made with `ip netns add`, deleted on drop, with
/// its own `/etc/netns/NAME/resolv.conf` for `ip netns exec`.
struct TestNs {
    name: String,
}

impl TestNs {
    fn new(prefix: &str) -> TestNs {
        let name = format!("bt{prefix}{}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let st = Command::new("ip").args(["netns", "add", &name]).status().unwrap();
        assert!(st.success(), "ip netns add {name}");
        TestNs { name }
    }

    fn ns(&self) -> Namespace {
        Namespace::path(format!("/run/netns/{}", self.name))
    }

    fn resolver(&self, ip: Ipv4Addr) {
        let d = PathBuf::from("/etc/netns").join(&self.name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("resolv.conf"), format!("nameserver {ip}\n")).unwrap();
    }

    fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap()
    }

    fn sh(&self, line: &str) -> Output {
        self.exec(&["busybox", "sh", "-c", line])
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.name));
    }
}

/// A veth pair between the host (`PREFIX.1/30`) and a test namespace
/// (`PREFIX.2/30`, default route back to the host): a stand-in for "the
/// outside world" made of addresses the test owns. Deleted on drop.
struct TestLink {
    host_if: String,
}

impl TestLink {
    fn new(ns: &TestNs, prefix: &str) -> TestLink {
        let host_if = format!("btl{}", &ns.name[2..]);
        let line = format!(
            "ip link add {host_if} type veth peer name x0 netns {n} && ip addr add {prefix}.1/30 dev {host_if} && ip link set {host_if} up && ip netns exec {n} ip addr add {prefix}.2/30 dev x0 && ip netns exec {n} ip link set x0 up && ip netns exec {n} ip link set lo up && ip netns exec {n} ip route add default via {prefix}.1",
            n = ns.name
        );
        let o = Command::new("sh").args(["-c", &line]).output().unwrap();
        ok(&o);
        TestLink { host_if }
    }
}

impl Drop for TestLink {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).output();
    }
}

struct Env {
    _dir: tempfile::TempDir,
    store_root: PathBuf,
    store: Store,
    ctx: NetContext,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store_root = dir.path().join("store");
        let store = Store::open(&store_root).unwrap();
        let mut ctx = NetContext::host(&store_root, Path::new("/run/berth"));
        // Names a network does not know must never reach the host's real
        // resolvers: tests forward them to loopback (nothing listens) or to
        // a server of their own.
        ctx.upstream_override = Some("nameserver 127.0.0.1\n".into());
        Env {
            _dir: dir,
            store_root,
            store,
            ctx,
        }
    }

    fn network(&self, name: &str, internal: bool) -> NetworkRecord {
        bridge::create_network(
            &self.ctx,
            &self.store,
            &NetworkRequest {
                name: name.into(),
                internal,
                ..Default::default()
            },
        )
        .unwrap()
    }

    fn attach(&self, net: &NetworkRecord, ns: &TestNs, id: &str, aliases: &[&str]) -> Attachment {
        bridge::connect(
            &self.ctx,
            &self.store,
            net,
            &ns.ns(),
            &NewEndpoint {
                container_id: format!("{id:0>64}"),
                name: id.into(),
                aliases: aliases.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// Removes every network this test made (endpoints first).
    fn cleanup(&self) {
        for n in self.store.list_networks().unwrap() {
            for e in self.store.network_endpoints(&n.id).unwrap() {
                bridge::disconnect(&self.ctx, &self.store, &n, &e.container_id).unwrap();
            }
            bridge::remove_network(&self.ctx, &self.store, &n).unwrap();
        }
    }
}

impl Drop for Env {
    /// A failed test leaves nothing either.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = bridge::reconcile(&self.ctx, &self.store, &|_| false);
            for n in self.store.list_networks().unwrap_or_default() {
                let _ = bridge::remove_network(&self.ctx, &self.store, &n);
            }
        }
    }
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Retries `f` for a few seconds (a DNS server reloading, a server starting).
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..50 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A tiny DNS server answering every A question with `answer`: the
/// "host resolver" the network's DNS server forwards unknown names to.
/// It serves until `stop` is set.
fn fake_upstream(
    sock: std::net::UdpSocket,
    answer: Ipv4Addr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            if n < 12 {
                continue;
            }
            let q = &buf[..n];
            // Header: same ID, QR + RD + RA, one question, one answer (A
            // queries) or none.
            let mut qend = 12;
            while qend < n && q[qend] != 0 {
                qend += 1 + q[qend] as usize;
            }
            qend += 5;
            let qtype = u16::from_be_bytes([q[qend - 4], q[qend - 3]]);
            let mut r = Vec::from(&q[..2]);
            r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(qtype == 1), 0, 0, 0, 0]);
            r.extend_from_slice(&q[12..qend]);
            if qtype == 1 {
                r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend_from_slice(&answer.octets());
            }
            let _ = sock.send_to(&r, from);
        }
    })
}

#[test]
#[ignore = "needs root"]
fn two_containers_reach_each_other_by_address_name_and_alias() {
    let mut env = Env::new();
    let web = TestNs::new("web");
    let cli = TestNs::new("cli");
    // The "host's resolver" is a server of the test's, in a namespace
    // reached through a veth pair on a test range.
    let up = TestNs::new("up");
    let _link = TestLink::new(&up, "198.18.78");
    env.ctx.upstream_override = Some("nameserver 198.18.78.2\n".into());
    let ufd = up.ns().udp_socket().unwrap();
    rustix::net::bind(&ufd, &SocketAddrV4::new(Ipv4Addr::new(198, 18, 78, 2), 53)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up_thread = fake_upstream(
        std::net::UdpSocket::from(ufd),
        Ipv4Addr::new(192, 0, 2, 99),
        stop.clone(),
    );
    let net = env.network("app", false);

    let w = env.attach(&net, &web, "web", &["www"]);
    let c = env.attach(&net, &cli, "client", &[]);
    assert_ne!(w.ip, c.ip);
    assert_eq!(w.ifname, "eth0");
    assert_eq!(w.gateway, Some(net.gateway.parse().unwrap()));
    assert_eq!(w.dns_server, w.gateway);
    cli.resolver(w.gateway.unwrap());

    // By address.
    ok(&cli.exec(&["busybox", "ping", "-c1", "-W2", &w.ip.to_string()]));
    // TCP by name and by alias: an HTTP server in web, wget from client.
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "hello from web\n").unwrap();
    let mut httpd = Command::new("ip")
        .args(["netns", "exec", &web.name, "busybox", "httpd", "-f", "-p", "8000", "-h"])
        .arg(www.path())
        .spawn()
        .unwrap();
    for name in ["web", "www"] {
        let resolved = eventually(|| {
            let o = cli.exec(&["busybox", "nslookup", "-type=a", name]);
            String::from_utf8_lossy(&o.stdout).contains(&format!("Address: {}", w.ip))
        });
        assert!(resolved, "{name} does not resolve to {}", w.ip);
    }
    // (busybox-static's wget crashes on a URL ending in "/" or with -T; a file name avoids both.)
    let fetched: Vec<bool> = ["web", "www"]
        .iter()
        .map(|name| {
            let url = format!("http://{name}:8000/index.html");
            eventually(|| {
                let o = cli.exec(&["busybox", "wget", "-qO-", &url]);
                String::from_utf8_lossy(&o.stdout) == "hello from web\n"
            })
        })
        .collect();
    ok(&cli.exec(&["busybox", "ping", "-c1", "-W2", "web"]));
    // Published on the host's 127.0.0.1: the forwarder reaches web's bridge address.
    let fwd = berth_net::Forwarder::bind(&[berth_net::PortMapping {
        host_ip: Some(Ipv4Addr::LOCALHOST.into()),
        host_port: 0,
        host_port_end: None,
        container_port: 8000,
        proto: berth_net::Proto::Tcp,
    }])
    .unwrap();
    fwd.attach_address(w.ip, None).unwrap();
    let mut c = std::net::TcpStream::connect(("127.0.0.1", fwd.bindings()[0].host_port)).unwrap();
    c.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    assert!(resp.ends_with("hello from web\n"), "{resp}");
    drop(fwd);
    let _ = httpd.kill();
    let _ = httpd.wait();
    assert_eq!(
        fetched,
        [true, true],
        "wget http://web:8000/ and http://www:8000/ from client"
    );
    // A name the network does not know is forwarded to the upstream.
    let out = cli.exec(&[
        "busybox",
        "nslookup",
        "-type=a",
        "elsewhere.test",
        &w.gateway.unwrap().to_string(),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("192.0.2.99"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    env.cleanup();
    drop(_link);
    drop(up);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    up_thread.join().unwrap();
    let inv = bridge::inventory(&env.ctx, &env.store).unwrap();
    assert!(!inv.mentions(&net.bridge), "{inv:?}");
    assert!(inv.links.is_empty() && inv.leases.is_empty(), "{inv:?}");
    assert_eq!(inv.dns_server, None);
}

#[test]
#[ignore = "needs root"]
fn networks_are_isolated_internal_has_no_way_out_and_outbound_is_masqueraded() {
    let env = Env::new();
    let a = env.network("neta", false);
    let b = env.network("netb", false);
    let i = env.network("neti", true);
    let (na, nb, ni) = (TestNs::new("a"), TestNs::new("b"), TestNs::new("i"));
    let ea = env.attach(&a, &na, "a", &[]);
    let eb = env.attach(&b, &nb, "b", &[]);
    let ei = env.attach(&i, &ni, "i", &[]);
    assert_eq!(ei.gateway, None);

    // Each reaches its own gateway; a cannot reach b's container.
    ok(&na.exec(&["busybox", "ping", "-c1", "-W2", &a.gateway]));
    let cross = na.exec(&["busybox", "ping", "-c1", "-W1", &eb.ip.to_string()]);
    assert!(!cross.status.success(), "a reached b across networks");
    // The internal network has no default route, so nothing outside its subnet is reachable.
    let routes = ok(&ni.exec(&["ip", "-4", "route"]));
    assert!(!routes.contains("default"), "{routes}");
    let out = ni.exec(&["busybox", "ping", "-c1", "-W1", &ea.ip.to_string()]);
    assert!(!out.status.success());

    // "Outside": a namespace of the test's, reached through the host by a
    // veth pair on a test range; its server sees the host's address, not
    // the container's (masquerade).
    let out_ns = TestNs::new("out");
    let link = TestLink::new(&out_ns, "198.18.77");
    let server = TcpListener::from(out_ns.ns().tcp_socket().unwrap());
    {
        let s = rustix::fd::AsFd::as_fd(&server);
        rustix::net::sockopt::set_socket_reuseaddr(s, true).unwrap();
        rustix::net::bind(s, &SocketAddrV4::new(Ipv4Addr::new(198, 18, 77, 2), 8080)).unwrap();
        rustix::net::listen(s, 4).unwrap();
    }
    let t = std::thread::spawn(move || {
        let (mut c, peer) = server.accept().unwrap();
        let mut b = [0u8; 5];
        let _ = c.read(&mut b);
        c.write_all(b"ok\n").unwrap();
        peer
    });
    let o = na.sh("echo hello | busybox nc -w 3 198.18.77.2 8080");
    assert_eq!(ok(&o), "ok\n");
    let peer = t.join().unwrap();
    assert_eq!(peer.ip().to_string(), "198.18.77.1", "not masqueraded");
    // The internal container cannot get there at all.
    let o = ni.sh("echo hello | busybox nc -w 1 198.18.77.2 8080");
    assert!(!o.status.success());
    drop(link);
    env.cleanup();
}

#[test]
#[ignore = "needs root"]
fn connect_and_disconnect_a_live_namespace() {
    let env = Env::new();
    let n1 = env.network("first", false);
    let n2 = env.network("second", false);
    let x = TestNs::new("x");
    let y = TestNs::new("y");
    env.attach(&n1, &x, "x", &[]);
    let ey = env.attach(&n2, &y, "y", &[]);
    assert!(!x
        .exec(&["busybox", "ping", "-c1", "-W1", &ey.ip.to_string()])
        .status
        .success());
    // Live connect: x gets eth1 on the second network, with --ip and a MAC of its choosing.
    let want = Ipv4Addr::from(u32::from(ey.ip) + 10);
    let ex = bridge::connect(
        &env.ctx,
        &env.store,
        &n2,
        &x.ns(),
        &NewEndpoint {
            container_id: format!("{:0>64}", "x"),
            name: "x".into(),
            ip: Some(want),
            mac: Some("02:42:00:00:be:ef".into()),
            aliases: vec!["ex".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((ex.ifname.as_str(), ex.ip), ("eth1", want));
    let link = ok(&x.exec(&["ip", "-br", "link", "show", "eth1"]));
    assert!(link.contains("02:42:00:00:be:ef"), "{link}");
    ok(&x.exec(&["busybox", "ping", "-c1", "-W2", &ey.ip.to_string()]));
    y.resolver(n2.gateway.parse().unwrap());
    assert!(eventually(
        || ok(&y.exec(&["busybox", "nslookup", "ex"])).contains(&want.to_string())
    ));
    // The same address twice is refused.
    let e = bridge::connect(
        &env.ctx,
        &env.store,
        &n2,
        &y.ns(),
        &NewEndpoint {
            container_id: format!("{:0>64}", "z"),
            ip: Some(want),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("Address already in use"), "{e}");
    // Live disconnect: eth1 goes, the name stops resolving, the address is free.
    assert!(bridge::disconnect(&env.ctx, &env.store, &n2, &format!("{:0>64}", "x")).unwrap());
    assert!(!x.exec(&["ip", "link", "show", "eth1"]).status.success());
    assert!(!x
        .exec(&["busybox", "ping", "-c1", "-W1", &ey.ip.to_string()])
        .status
        .success());
    assert!(eventually(|| !y.exec(&["busybox", "nslookup", "ex"]).status.success()));
    assert!(env
        .store
        .network_endpoints(&n2.id)
        .unwrap()
        .iter()
        .all(|e| e.ip != want));
    env.cleanup();
}

#[test]
#[ignore = "needs root"]
fn eight_concurrent_attachments_get_distinct_addresses_and_leave_nothing() {
    let env = Env::new();
    let before = bridge::inventory(&env.ctx, &env.store).unwrap();
    let net = env.network("busy", false);
    let nss: Vec<TestNs> = (0..8).map(|i| TestNs::new(&format!("c{i}"))).collect();
    let ips: Vec<Ipv4Addr> = std::thread::scope(|s| {
        let hs: Vec<_> = nss
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let (root, ctx, net) = (env.store_root.clone(), env.ctx.clone(), net.clone());
                s.spawn(move || {
                    // Each its own store handle, as separate berth processes would have.
                    let store = Store::open(&root).unwrap();
                    bridge::connect(
                        &ctx,
                        &store,
                        &net,
                        &ns.ns(),
                        &NewEndpoint {
                            container_id: format!("{i:0>64}"),
                            name: format!("c{i}"),
                            ..Default::default()
                        },
                    )
                    .unwrap()
                    .ip
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct: HashSet<_> = ips.iter().collect();
    assert_eq!(distinct.len(), 8, "{ips:?}");
    for (ns, ip) in nss.iter().zip(&ips) {
        ok(&ns.exec(&["busybox", "ping", "-c1", "-W2", &net.gateway]));
        assert!(ok(&ns.exec(&["ip", "-4", "-br", "addr", "show", "eth0"])).contains(&ip.to_string()));
    }
    let dns = berth_net::dns::Dns::new(&env.ctx.run_dir, env.ctx.bridge_ns.clone());
    assert_eq!(dns.records(&net.bridge).len(), 8);
    env.cleanup();
    let after = bridge::inventory(&env.ctx, &env.store).unwrap();
    assert!(!after.mentions(&net.bridge), "{after:?}");
    assert_eq!(
        (after.links, after.leases, after.dns_files),
        (before.links, before.leases, before.dns_files)
    );
}

#[test]
#[ignore = "needs root"]
fn reconcile_removes_what_a_killed_process_left() {
    let env = Env::new();
    let net = env.network("left", false);
    let gone = TestNs::new("gone");
    let alive = TestNs::new("alive");
    let eg = env.attach(&net, &gone, "gone", &[]);
    env.attach(&net, &alive, "alive", &[]);
    // A process was killed after making a bridge, before recording its
    // network: a bridge of ours no record accounts for (dual stack: its
    // IPv6 elements go too).
    let orphan = bridge::create_network(
        &env.ctx,
        &env.store,
        &NetworkRequest {
            name: "orphan".into(),
            ipv6: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!orphan.subnet6.is_empty());
    let fw = berth_net::firewall::Firewall::new(env.ctx.bridge_ns.clone());
    let st6 = fw.state6().unwrap();
    assert!(st6.bridges.contains(&orphan.bridge), "{st6:?}");
    assert!(st6.masq.contains(&orphan.subnet6), "{st6:?}");
    env.store.remove_network(&orphan.id).unwrap();
    let alive_id = format!("{:0>64}", "alive");
    let r = bridge::reconcile(&env.ctx, &env.store, &|id: &str| id == alive_id).unwrap();
    assert_eq!(r.leases, vec![format!("{}/{:0>64}", net.id, "gone")]);
    assert!(r.links.contains(&orphan.bridge), "{r:?}");
    let inv = bridge::inventory(&env.ctx, &env.store).unwrap();
    assert!(!inv.mentions(&orphan.bridge), "{inv:?}");
    assert!(!inv.firewall6.masq.contains(&orphan.subnet6), "{inv:?}");
    assert!(!inv.leases.iter().any(|l| l.contains(&eg.ip.to_string())), "{inv:?}");
    let dns = berth_net::dns::Dns::new(&env.ctx.run_dir, env.ctx.bridge_ns.clone());
    let names: Vec<_> = dns.records(&net.bridge).into_iter().flat_map(|r| r.names).collect();
    assert_eq!(names, vec!["alive".to_string()]);
    // Running it again finds nothing more.
    assert_eq!(
        bridge::reconcile(&env.ctx, &env.store, &|id: &str| id == alive_id).unwrap(),
        Default::default()
    );
    env.cleanup();
    let inv = bridge::inventory(&env.ctx, &env.store).unwrap();
    assert!(
        inv.links.is_empty() && inv.leases.is_empty() && inv.dns_files.is_empty(),
        "{inv:?}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_namespace_made_by_berth_goes_with_its_veth_and_leaves_nothing() {
    let env = Env::new();
    let net = env.network("runs", false);
    let id = format!("{:0>64}", "run");
    let path = env.ctx.netns_path(&id);
    let ns = berth_net::ns::create_persistent(&path).unwrap();
    let a = bridge::connect(
        &env.ctx,
        &env.store,
        &net,
        &ns,
        &NewEndpoint {
            container_id: id.clone(),
            name: "run".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let inv = bridge::inventory(&env.ctx, &env.store).unwrap();
    assert_eq!(inv.netns_mounts, vec![path.display().to_string()]);
    assert!(inv.links.iter().any(|l| l.starts_with(&a.host_veth)), "{inv:?}");
    // What `run --rm` does at the end: the namespace goes, berth frees the rest.
    berth_net::ns::remove_persistent(&path).unwrap();
    bridge::disconnect_all(&env.ctx, &env.store, &id, bridge::Teardown::WithNamespace).unwrap();
    assert!(eventually(|| bridge::inventory(&env.ctx, &env.store)
        .unwrap()
        .links
        .iter()
        .all(|l| !l.starts_with(&a.host_veth))));
    env.cleanup();
    let inv = bridge::inventory(&env.ctx, &env.store).unwrap();
    assert!(
        inv.links.is_empty() && inv.leases.is_empty() && inv.netns_mounts.is_empty() && !inv.mentions(&net.bridge),
        "{inv:?}"
    );
    assert!(!path.exists());
}

/// A berth process killed with SIGKILL while it holds a container on a
/// network: the next process's reconcile removes the lease, the veth and
/// the DNS record, and nothing is left after the network goes.
#[test]
#[ignore = "needs root"]
fn reconcile_after_a_real_kill_9() {
    if let Ok(root) = std::env::var("BERTH_NET_KILL_WORKER") {
        // The process that gets killed: attaches a namespace, says so, waits.
        let store_root = PathBuf::from(root);
        let store = Store::open(&store_root).unwrap();
        let mut ctx = NetContext::host(&store_root, Path::new("/run/berth"));
        ctx.upstream_override = Some("nameserver 127.0.0.1\n".into());
        let net = store.network("victim").unwrap();
        let ns = Namespace::path(std::env::var("BERTH_NET_KILL_NS").unwrap());
        bridge::connect(
            &ctx,
            &store,
            &net,
            &ns,
            &NewEndpoint {
                container_id: format!("{:0>64}", "killed"),
                name: "killed".into(),
                ..Default::default()
            },
        )
        .unwrap();
        println!("READY");
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let env = Env::new();
    let net = env.network("victim", false);
    let ns = TestNs::new("k");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "reconcile_after_a_real_kill_9", "--ignored", "--nocapture"])
        .env("BERTH_NET_KILL_WORKER", &env.store_root)
        .env("BERTH_NET_KILL_NS", format!("/run/netns/{}", ns.name))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "the worker died"
        );
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let inv = bridge::inventory(&env.ctx, &env.store).unwrap();
    assert_eq!(inv.leases.len(), 1, "{inv:?}");
    assert_eq!(inv.links.len(), 2, "the bridge and the veth: {inv:?}");
    // The container is gone (its namespace too), then the sweep.
    drop(ns);
    let r = bridge::reconcile(&env.ctx, &env.store, &|_| false).unwrap();
    assert_eq!(r.leases.len(), 1, "{r:?}");
    let dns = berth_net::dns::Dns::new(&env.ctx.run_dir, env.ctx.bridge_ns.clone());
    assert!(dns.records(&net.bridge).is_empty());
    env.cleanup();
    let inv = bridge::inventory(&env.ctx, &env.store).unwrap();
    assert!(
        inv.links.is_empty() && inv.leases.is_empty() && inv.dns_files.is_empty() && inv.dns_server.is_none(),
        "{inv:?}"
    );
    assert!(!inv.mentions(&net.bridge), "{inv:?}");
}

#[test]
#[ignore = "needs root"]
fn a_deleted_stores_networks_are_swept_by_the_next_network_made() {
    // A store whose directory is deleted with a network (and a container
    // on it) still up, as a test's temporary store is.
    let gone = Env::new();
    let net = gone.network("left-up", false);
    let ns = TestNs::new("swept");
    let a = gone.attach(&net, &ns, "swept", &["x"]);
    let run_dir = gone.ctx.run_dir.clone();
    let before = bridge::inventory(&gone.ctx, &gone.store).unwrap();
    assert!(
        before.mentions(&net.bridge) && before.mentions(&a.host_veth),
        "{before:?}"
    );
    let dns_pid = before.dns_server.expect("the network's DNS server runs");
    std::fs::remove_dir_all(&gone.store_root).unwrap();
    // Another store makes a network: the dead store's bridge, veth, rules,
    // DNS server and run directory go; its own network is made.
    let env = Env::new();
    let other = env.network("fresh", false);
    let links = berth_net::nl::Netlink::new().unwrap().links().unwrap();
    assert!(
        !links.iter().any(|l| l.name == net.bridge || l.name == a.host_veth),
        "{links:?}"
    );
    let fw = berth_net::firewall::Firewall::new(berth_net::ns::host())
        .state()
        .unwrap();
    assert!(
        !fw.bridges.contains(&net.bridge) && fw.bridges.contains(&other.bridge),
        "{fw:?}"
    );
    assert!(!run_dir.exists());
    assert!(
        !std::fs::read(format!("/proc/{dns_pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&*run_dir.to_string_lossy()))
            .unwrap_or(false),
        "the dead store's DNS server still runs"
    );
    env.cleanup();
    // The helper namespace made by the test.
    drop(ns);
}

/// A bridge whose store and run directory are both gone (found after a
/// full test run: nothing named it but its alias) goes with the next
/// network made, with its firewall elements.
#[test]
#[ignore = "needs root"]
fn a_bridge_no_run_directory_names_is_swept_by_the_next_network_made() {
    let gone = Env::new();
    let net = gone.network("orphaned", false);
    std::fs::remove_dir_all(&gone.ctx.run_dir).unwrap();
    std::fs::remove_dir_all(&gone.store_root).unwrap();
    let env = Env::new();
    let other = env.network("fresh2", false);
    let links = berth_net::nl::Netlink::new().unwrap().links().unwrap();
    assert!(!links.iter().any(|l| l.name == net.bridge), "{links:?}");
    assert!(links.iter().any(|l| l.name == other.bridge), "{links:?}");
    let fw = berth_net::firewall::Firewall::new(berth_net::ns::host())
        .state()
        .unwrap();
    assert!(!fw.bridges.contains(&net.bridge), "{fw:?}");
    env.cleanup();
}

#[test]
#[ignore = "needs root"]
fn firewall_elements_whose_bridge_is_gone_are_swept_by_the_next_network_made() {
    // A store's bridge deleted by hand (or by a crash between the two
    // steps of a teardown) leaves its elements in the firewall table.
    let left = Env::new();
    let net = left.network("rules-left", false);
    Command::new("ip").args(["link", "del", &net.bridge]).status().unwrap();
    let fw = berth_net::firewall::Firewall::new(berth_net::ns::host());
    assert!(fw.state().unwrap().bridges.contains(&net.bridge));
    // The next network made anywhere removes them, and nothing of its own.
    let env = Env::new();
    let other = env.network("fresh-rules", false);
    let st = fw.state().unwrap();
    assert!(!st.bridges.contains(&net.bridge), "{st:?}");
    assert!(st.bridges.contains(&other.bridge), "{st:?}");
    assert!(st.masq.contains(&other.subnet), "{st:?}");
    // The gone bridge's masquerade went too (the new network may have
    // its subnet again: no route holds it any more): one per bridge left.
    assert!(st.masq.len() <= st.bridges.len(), "{st:?}");
    env.cleanup();
    left.cleanup();
}
