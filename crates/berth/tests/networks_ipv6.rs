//! Dual-stack (IPv4 + IPv6) bridge networks end to end as root: `network
//! create --ipv6` with a given and a chosen unique local /64, containers
//! reaching each other by name over IPv6 (AAAA from the network's DNS
//! server), `--ip6` honoured and a duplicate refused, isolation between
//! networks and `--internal` in IPv6 too, Docker's inspect fields, live
//! `network connect --ip6`, and nothing left after `rm -f` and `network
//! rm` (IPv6 routes, the `ip6 berth` table's elements, leases). Traffic goes
//! only to addresses of containers and bridges these tests made.

#[path = "common/api.rs"]
mod api;
mod common;

use common::{stdout, Env};
use std::path::Path;
use std::process::Command;

/// A busybox httpd serving the container's /etc (so `/hostname` names it).
const HTTPD: [&str; 6] = ["httpd", "-f", "-p", "8000", "-h", "/etc"];

/// An [`Env`] whose containers and networks go when the test ends.
struct NetEnv(Env);

impl std::ops::Deref for NetEnv {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.0
    }
}

impl Drop for NetEnv {
    fn drop(&mut self) {
        for id in stdout(&self.0.root.run(&["ps", "-aq", "--no-trunc"])).lines() {
            let _ = self.0.root.run(&["rm", "-f", id]);
        }
        let _ = self.0.root.run(&["network", "prune", "-f"]);
    }
}

/// A unique local /64 prefix of this test run (`fdXX:XXXX:XXXX:XXXX`),
/// unlikely to meet another test's.
fn ula_prefix() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ (u64::from(std::process::id()) << 20);
    format!(
        "fd{:02x}:{:x}:{:x}:{:x}",
        (n >> 56) as u8,
        (n >> 40) & 0xffff,
        (n >> 24) & 0xffff,
        (n >> 8) & 0xffff
    )
}

fn inspect(env: &Env, what: &str, ctr: &str) -> String {
    env.root.ok(&["inspect", "--format", what, ctr]).trim().to_string()
}

fn net_inspect(env: &Env, net: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&env.root.ok(&["network", "inspect", net])).unwrap();
    v[0].clone()
}

/// `berth run --rm NET… bb sh -c SCRIPT`: (success, stdout+stderr).
fn sh(env: &Env, net: &[&str], script: &str) -> (bool, String) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(net);
    args.extend_from_slice(&["bb", "sh", "-c", script]);
    let o = env.root.run(&args);
    (
        o.status.success(),
        format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr)),
    )
}

fn ip6_routes() -> String {
    stdout(&Command::new("ip").args(["-6", "route"]).output().unwrap())
}

fn nft_ruleset() -> String {
    stdout(&Command::new("nft").args(["list", "ruleset"]).output().unwrap())
}

fn leases(env: &Env) -> Vec<String> {
    let store = berth_store::Store::open(&env.root.path().join("store")).unwrap();
    store
        .all_endpoints()
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {} {:?}", e.container_id, e.ip, e.ip6))
        .collect()
}

fn bridge_of(env: &Env, net: &str) -> String {
    net_inspect(env, net)["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
#[ignore = "needs root"]
fn ipv6_networks_resolve_isolate_and_leave_nothing() {
    let env = NetEnv(Env::new());
    let p = ula_prefix();
    let subnet = format!("{p}::/64");
    env.root
        .ok(&["network", "create", "--ipv6", "--subnet", &subnet, "v6a"]);
    // No IPv6 subnet given: a unique local /64 is chosen.
    env.root.ok(&["network", "create", "--ipv6", "v6b"]);
    env.root.ok(&["network", "create", "--ipv6", "--internal", "v6i"]);
    let (bra, brb, bri) = (bridge_of(&env, "v6a"), bridge_of(&env, "v6b"), bridge_of(&env, "v6i"));

    // inspect: EnableIPv6 and both IPAM configs.
    let a = net_inspect(&env, "v6a");
    assert_eq!(a["EnableIPv6"], true, "{a}");
    let cfg = a["IPAM"]["Config"].as_array().unwrap();
    assert_eq!(cfg.len(), 2, "{a}");
    assert!(!cfg[0]["Subnet"].as_str().unwrap().contains(':'), "{a}");
    assert_eq!(cfg[1]["Subnet"], subnet.as_str(), "{a}");
    // The IPAM config as asked for, as dockerd shows it: no gateway for a
    // given subnet without one; both for what the engine chose.
    assert!(cfg[1].get("Gateway").is_none(), "{a}");
    assert!(cfg[0]["Gateway"].is_string(), "{a}");
    let b = net_inspect(&env, "v6b");
    let b6 = b["IPAM"]["Config"][1]["Subnet"].as_str().unwrap().to_string();
    assert!(b["IPAM"]["Config"][1]["Gateway"].is_string(), "{b}");
    assert!(b6.starts_with("fd") && b6.ends_with("::/64"), "{b}");
    assert!(ip6_routes().contains(&subnet), "{}", ip6_routes());
    let ls = env.root.ok(&["network", "ls", "--format", "{{.Name}} {{.IPv6}}"]);
    assert!(ls.contains("v6a true"), "{ls}");

    // --ip6 honoured; inspect fills Docker's IPv6 fields.
    let fixed = format!("{p}::10");
    let mut args = vec!["run", "-d", "--name", "web6", "--network", "v6a", "--ip6", &fixed, "bb"];
    args.extend_from_slice(&HTTPD);
    env.root.ok(&args);
    let ep = |f: &str| {
        inspect(
            &env,
            &format!("{{{{(index .NetworkSettings.Networks \"v6a\").{f}}}}}"),
            "web6",
        )
    };
    assert_eq!(ep("GlobalIPv6Address"), fixed);
    assert_eq!(ep("GlobalIPv6PrefixLen"), "64");
    assert_eq!(ep("IPv6Gateway"), format!("{p}::1"));
    assert_eq!(ep("IPAMConfig.IPv6Address"), fixed);
    let web_id = inspect(&env, "{{.Id}}", "web6")[..12].to_string();
    let members = net_inspect(&env, "v6a")["Containers"].to_string();
    assert!(members.contains(&format!("{fixed}/64")), "{members}");

    // The same address again is refused; one outside the subnet too.
    let o = env
        .root
        .run(&["run", "--rm", "--network", "v6a", "--ip6", &fixed, "bb", "true"]);
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("Address already in use"),
        "{}",
        common::stderr(&o)
    );
    let o = env
        .root
        .run(&["run", "--rm", "--network", "v6a", "--ip6", "fd00:1::5", "bb", "true"]);
    assert!(!o.status.success());
    assert!(common::stderr(&o).contains("does not belong"), "{}", common::stderr(&o));
    // And on a network without IPv6.
    env.root.ok(&["network", "create", "v4only"]);
    let o = env
        .root
        .run(&["run", "--rm", "--network", "v4only", "--ip6", &fixed, "bb", "true"]);
    assert!(common::stderr(&o).contains("no IPv6 subnet"), "{}", common::stderr(&o));

    // Same network: the name resolves to its IPv6 address; ping and HTTP
    // over IPv6; the container's own /etc/hosts and routes.
    let (ok, out) = sh(
        &env,
        &["--network", "v6a"],
        &format!(
            "nslookup -type=AAAA web6 && ping -6 -c1 web6 && wget -qO- 'http://[{fixed}]:8000/hostname' && cat /etc/hosts && ip -6 route && ip -6 addr"
        ),
    );
    assert!(ok, "{out}");
    assert!(out.contains(&fixed), "{out}");
    assert!(out.contains(&web_id), "{out}");
    assert!(out.contains(&format!("default via {p}::1")), "{out}");
    assert!(
        out.contains(&format!("{p}::2\t")),
        "the container's own IPv6 line: {out}"
    );
    assert!(!out.contains("tentative"), "{out}");

    // Another network: no IPv6 path to it.
    let (ok, out) = sh(
        &env,
        &["--network", "v6b"],
        &format!("ip -6 addr; timeout 3 wget -qO- 'http://[{fixed}]:8000/hostname'; exit $?"),
    );
    assert!(!ok && !out.contains(&web_id), "{out}");
    assert!(out.contains(b6.trim_end_matches("/64")), "{out}");

    // Internal: an IPv6 address but no default route.
    let (ok, out) = sh(&env, &["--network", "v6i"], "ip -6 addr && ip -6 route");
    assert!(ok, "{out}");
    assert!(out.contains("inet6 fd"), "{out}");
    assert!(!out.contains("default"), "{out}");

    // The ip6 table holds the networks: isolation, internal, masquerade.
    let nft = nft_ruleset();
    assert!(nft.contains("table ip6 berth"), "{nft}");
    assert!(nft.contains(&bra) && nft.contains(&bri), "{nft}");

    // Gone: containers, then networks; nothing of theirs is left.
    env.root.ok(&["rm", "-f", "web6"]);
    assert_eq!(leases(&env), Vec::<String>::new());
    env.root.ok(&["network", "rm", "v6a", "v6b", "v6i", "v4only"]);
    let routes = ip6_routes();
    assert!(!routes.contains(&subnet) && !routes.contains(&b6), "{routes}");
    let nft = nft_ruleset();
    for br in [&bra, &brb, &bri] {
        assert!(!nft.contains(br.as_str()), "{br}: {nft}");
    }
    assert!(!nft.contains(&p), "{nft}");
    let links = stdout(&Command::new("ip").args(["-br", "link"]).output().unwrap());
    assert!(!links.contains(&bra) && !links.contains(&brb), "{links}");
}

#[test]
#[ignore = "needs root"]
fn ipv6_live_connect_and_duplicate_leases() {
    let env = NetEnv(Env::new());
    let p = ula_prefix();
    let subnet = format!("{p}::/64");
    env.root.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &subnet,
        "--ip-range",
        &format!("{p}::100/120"),
        "v6c",
    ]);
    env.root.ok(&["network", "create", "plain4"]);
    let mut args = vec!["run", "-d", "--name", "late", "--network", "plain4", "bb"];
    args.extend_from_slice(&HTTPD);
    env.root.ok(&args);
    // Connected live with a fixed IPv6 address: its /etc/hosts gains the
    // address, and a container on the network reaches it by name.
    let fixed = format!("{p}::42");
    env.root.ok(&["network", "connect", "--ip6", &fixed, "v6c", "late"]);
    let hosts = std::fs::read_to_string(
        Path::new(
            &env.root
                .path()
                .join("store/containers")
                .join(inspect(&env, "{{.Id}}", "late")),
        )
        .join("hosts"),
    )
    .unwrap();
    assert!(hosts.contains(&format!("{fixed}\t")), "{hosts}");
    let late_id = inspect(&env, "{{.Id}}", "late")[..12].to_string();
    let (ok, out) = sh(
        &env,
        &["--network", "v6c"],
        "ip -6 addr show eth0 && wget -qO- 'http://late:8000/hostname' && ping -6 -c1 late",
    );
    assert!(ok, "{out}");
    assert!(out.contains(&late_id), "{out}");
    // Leases come from the range.
    assert!(out.contains(&format!("inet6 {p}::1")), "{out}");
    // Eight at once: eight distinct IPv6 addresses.
    let kids: Vec<_> = (0..8)
        .map(|_| {
            env.root
                .cmd(&["run", "-d", "--network", "v6c", "bb", "sleep", "60"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ips = std::collections::HashSet::new();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", common::stderr(&o));
        let id = stdout(&o).trim().to_string();
        ips.insert(inspect(
            &env,
            "{{(index .NetworkSettings.Networks \"v6c\").GlobalIPv6Address}}",
            &id,
        ));
    }
    assert_eq!(ips.len(), 8, "{ips:?}");
    assert!(!ips.contains(&fixed), "{ips:?}");
    // Disconnect: the address leaves /etc/hosts and the lease goes.
    env.root.ok(&["network", "disconnect", "v6c", "late"]);
    let hosts = std::fs::read_to_string(
        Path::new(
            &env.root
                .path()
                .join("store/containers")
                .join(inspect(&env, "{{.Id}}", "late")),
        )
        .join("hosts"),
    )
    .unwrap();
    assert!(!hosts.contains(&fixed), "{hosts}");
    assert!(!leases(&env).iter().any(|l| l.contains(&fixed)), "{:?}", leases(&env));
    for id in stdout(&env.root.run(&["ps", "-aq", "--no-trunc"])).lines() {
        env.root.ok(&["rm", "-f", id]);
    }
    assert_eq!(leases(&env), Vec::<String>::new());
    env.root.ok(&["network", "rm", "v6c", "plain4"]);
    assert!(!ip6_routes().contains(&subnet));
    assert!(!nft_ruleset().contains(&p));
}

/// A network namespace of the test's own, joined to the host by a veth
/// pair on an IPv6 /64 of its own, with a server answering each TCP
/// connection with the peer's address; deleted on drop.
struct Outside {
    ns: String,
    server: std::process::Child,
}

impl Outside {
    fn new(prefix: &str) -> Outside {
        let tag = format!("{:x}", std::process::id() & 0xfffff);
        let ns = format!("berth-t6-{tag}");
        let (host, peer) = (format!("t6h{tag}"), format!("t6p{tag}"));
        let run = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().unwrap();
            assert!(o.status.success(), "ip {args:?}: {}", common::stderr(&o));
        };
        run(&["netns", "add", &ns]);
        run(&[
            "link", "add", &host, "type", "veth", "peer", "name", &peer, "netns", &ns,
        ]);
        run(&["addr", "add", &format!("{prefix}::1/64"), "dev", &host, "nodad"]);
        run(&["link", "set", &host, "up"]);
        run(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{prefix}::2/64"),
            "dev",
            &peer,
            "nodad",
        ]);
        run(&["-n", &ns, "link", "set", &peer, "up"]);
        run(&["-n", &ns, "link", "set", "lo", "up"]);
        run(&[
            "-n",
            &ns,
            "-6",
            "route",
            "add",
            "default",
            "via",
            &format!("{prefix}::1"),
        ]);
        let script = "import socket\n\
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n\
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
            s.bind(('::', 8080)); s.listen(8)\n\
            while True:\n    c, a = s.accept(); c.recv(4096)\n    c.sendall(('HTTP/1.0 200 OK\\r\\n\\r\\npeer=' + a[0] + '\\n').encode()); c.close()\n";
        let server = Command::new("ip")
            .args(["netns", "exec", &ns, "python3", "-c", script])
            .spawn()
            .unwrap();
        Outside { ns, server }
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // The veth pair goes with the namespace.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
#[ignore = "needs root"]
fn ipv6_outbound_is_masqueraded_and_internal_has_none() {
    let env = NetEnv(Env::new());
    let outside_prefix = ula_prefix();
    let outside = Outside::new(&outside_prefix);
    env.root.ok(&["network", "create", "--ipv6", "out6"]);
    env.root.ok(&["network", "create", "--ipv6", "--internal", "in6"]);
    let url = format!("http://[{outside_prefix}::2]:8080/");
    // Out through the host: the server sees the host's address (NAT66),
    // not the container's.
    let (ok, out) = sh(
        &env,
        &["--network", "out6"],
        &format!("for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- '{url}' && exit 0; sleep 0.3; done; exit 1"),
    );
    assert!(ok, "{out}");
    assert!(out.contains(&format!("peer={outside_prefix}::1")), "{out}");
    // Internal: no way out.
    let (ok, out) = sh(&env, &["--network", "in6"], &format!("timeout 3 wget -qO- '{url}'"));
    assert!(!ok && !out.contains("peer="), "{out}");
    drop(outside);
    env.root.ok(&["network", "rm", "out6", "in6"]);
}

/// The real `docker` CLI through `berth system service`: `network create
/// --ipv6 --subnet`, `run --ip6`, `network connect --ip6` and the inspect
/// fields it reads.
#[test]
#[ignore = "needs root"]
fn docker_cli_ipv6_through_the_api() {
    let env = NetEnv(Env::new());
    let root = &env.0.root;
    let svc = api::Service::start(root);
    let clients = api::docker_clients();
    let d = |args: &[&str]| api::docker_ok(&clients[0], &svc, root, args);
    let p = ula_prefix();
    d(&["network", "create", "--ipv6", "--subnet", &format!("{p}::/64"), "apiv6"]);
    let enabled = d(&[
        "network",
        "inspect",
        "--format",
        "{{.EnableIPv6}} {{len .IPAM.Config}}",
        "apiv6",
    ]);
    assert_eq!(enabled.trim(), "true 2");
    d(&[
        "run",
        "-d",
        "--name",
        "a6",
        "--network",
        "apiv6",
        "--ip6",
        &format!("{p}::20"),
        "bb",
        "sleep",
        "300",
    ]);
    let got = d(&[
        "inspect",
        "--format",
        "{{(index .NetworkSettings.Networks \"apiv6\").GlobalIPv6Address}}",
        "a6",
    ]);
    assert_eq!(got.trim(), format!("{p}::20"));
    d(&["run", "-d", "--name", "b6", "bb", "sleep", "300"]);
    d(&["network", "connect", "--ip6", &format!("{p}::21"), "apiv6", "b6"]);
    let got = d(&[
        "inspect",
        "--format",
        "{{(index .NetworkSettings.Networks \"apiv6\").GlobalIPv6Address}}",
        "b6",
    ]);
    assert_eq!(got.trim(), format!("{p}::21"));
    // a6 (whose resolver is the network's DNS server) finds b6 by name.
    let ping = d(&["exec", "a6", "ping", "-6", "-c", "1", "-W", "2", "b6"]);
    assert!(ping.contains(&format!("{p}::21")), "{ping}");
    d(&["rm", "-f", "a6", "b6"]);
    d(&["network", "rm", "apiv6"]);
}

/// Compose: a network with `enable_ipv6` and an IPv6 pool, a service with
/// `ipv6_address`; another service reaches it by name over IPv6.
#[test]
#[ignore = "needs root"]
fn compose_enable_ipv6_and_ipv6_address() {
    let env = NetEnv(Env::new());
    let p = ula_prefix();
    let dir = env.root.path().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: bb\n    command: [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/etc\"]\n    networks:\n      n6:\n        ipv6_address: {p}::10\n  probe:\n    image: bb\n    command: [\"sleep\", \"300\"]\n    networks: [n6]\nnetworks:\n  n6:\n    enable_ipv6: true\n    ipam:\n      config:\n        - subnet: {p}::/64\n"
        ),
    )
    .unwrap();
    let f = dir.join("compose.yaml");
    let f = f.to_str().unwrap();
    env.root.ok(&["compose", "-f", f, "-p", "v6proj", "up", "-d"]);
    let net = net_inspect(&env, "v6proj_n6");
    assert_eq!(net["EnableIPv6"], true, "{net}");
    assert_eq!(
        net["IPAM"]["Config"][1]["Subnet"],
        format!("{p}::/64").as_str(),
        "{net}"
    );
    let got = inspect(
        &env,
        "{{(index .NetworkSettings.Networks \"v6proj_n6\").GlobalIPv6Address}}",
        "v6proj-web-1",
    );
    assert_eq!(got, format!("{p}::10"));
    let out = env.root.ok(&[
        "exec",
        "v6proj-probe-1",
        "sh",
        "-c",
        "ping -6 -c1 -W2 web && wget -qO- http://web:8000/hostname",
    ]);
    assert!(out.contains(&format!("{p}::10")), "{out}");
    env.root.ok(&["compose", "-f", f, "-p", "v6proj", "down", "-t", "0"]);
    assert!(!ip6_routes().contains(&p), "{}", ip6_routes());
}

/// Each IPv6 switch of a container's namespace (`-` where there is no
/// such interface), then its IPv6 addresses as `IFNAME ADDRESS/PREFIX`.
const IPV6_STATE: &str = "for f in all default lo eth0 eth1; do \
     printf '%s=%s ' $f $(cat /proc/sys/net/ipv6/conf/$f/disable_ipv6 2>/dev/null || echo -); done; echo; \
     ip -6 -o addr | awk '{print $2, $4}'";

/// IPv6 is on only where a network has it, as dockerd 20.10 leaves a
/// container's namespace: off (`all`, `default`, loopback, each
/// interface) on no network, the default network and an IPv4 network;
/// on for loopback and the interface of an IPv6 network, also one
/// connected later; everything on when the container asks with
/// `--sysctl net.ipv6.conf.all.disable_ipv6=0`.
#[test]
#[ignore = "needs root"]
fn ipv6_is_on_only_for_the_interfaces_of_ipv6_networks() {
    let env = NetEnv(Env::new());
    let p = ula_prefix();
    env.root.ok(&["network", "create", "v4only"]);
    env.root
        .ok(&["network", "create", "--ipv6", "--subnet", &format!("{p}::/64"), "v6"]);
    for net in ["none", "bridge", "v4only"] {
        let (ok, out) = sh(&env, &["--network", net], IPV6_STATE);
        assert!(ok, "{out}");
        let eth0 = if net == "none" { "-" } else { "1" };
        assert_eq!(out, format!("all=1 default=1 lo=1 eth0={eth0} eth1=- \n"), "on {net}");
    }
    let (ok, out) = sh(&env, &["--network", "v6"], IPV6_STATE);
    assert!(ok, "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("all=1 default=1 lo=0 eth0=0 eth1=- "), "{out}");
    let addrs: Vec<&str> = lines.collect();
    assert!(addrs.contains(&"lo ::1/128"), "{out}");
    assert!(addrs.contains(&format!("eth0 {p}::2/64").as_str()), "{out}");

    // A container on an IPv4 network gets IPv6 with a network connected later.
    env.root.ok(&[
        "run",
        "-d",
        "--name",
        "dual",
        "--network",
        "v4only",
        "bb",
        "sleep",
        "300",
    ]);
    env.root.ok(&["network", "connect", "v6", "dual"]);
    let out = env.root.ok(&["exec", "dual", "sh", "-c", IPV6_STATE]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("all=1 default=1 lo=0 eth0=1 eth1=0 "), "{out}");
    let addrs: Vec<&str> = lines.collect();
    assert!(addrs.contains(&"lo ::1/128"), "{out}");
    assert!(addrs.iter().any(|a| a.starts_with(&format!("eth1 {p}::"))), "{out}");
    assert!(!addrs.iter().any(|a| a.starts_with("eth0 ")), "{out}");

    // The container's own sysctl wins, as with dockerd.
    for net in ["none", "v4only"] {
        let (ok, out) = sh(
            &env,
            &["--network", net, "--sysctl", "net.ipv6.conf.all.disable_ipv6=0"],
            IPV6_STATE,
        );
        assert!(ok, "{out}");
        let eth0 = if net == "none" { "-" } else { "0" };
        assert!(
            out.starts_with(&format!("all=0 default=0 lo=0 eth0={eth0} eth1=- \nlo ::1/128\n")),
            "on {net}: {out}"
        );
    }
}
