//! Measures what a bridge network costs a container (run as root):
//!
//! * `connect` + `disconnect` of one namespace on a warm network, N times;
//! * 8 concurrent connects;
//! * published-port round trips through the userspace forwarder versus
//!   kernel DNAT from 127.0.0.1 (route_localnet + masquerade).
//!
//! `cargo run --release -p berth-net --example net_latency [N [PAUSE_MS]]`. Traffic
//! stays on loopback and in namespaces this program makes.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_net::bridge::{self, NetContext, NetworkRequest};
use berth_net::ns::Namespace;
use berth_net::{Forwarder, PortMapping, Proto};
use berth_store::{NewEndpoint, Store};

fn sh(line: &str) {
    let st = Command::new("sh").args(["-c", line]).status().unwrap();
    assert!(st.success(), "{line}");
}

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<44} median {:>7.2} ms   p90 {:>7.2} ms   min {:>7.2} ms",
        ms(v[v.len() / 2]),
        ms(v[v.len() * 9 / 10]),
        ms(v[0])
    );
}

fn ep(i: usize) -> NewEndpoint {
    NewEndpoint {
        container_id: format!("{i:0>64}"),
        name: format!("c{i}"),
        ..Default::default()
    }
}

fn round_trips(port: u16, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            t.elapsed()
        })
        .collect()
}

fn main() {
    env_logger::init();
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut ctx = NetContext::host(dir.path(), Path::new("/run/berth"));
    ctx.upstream_override = Some("nameserver 127.0.0.1\n".into());
    let t = Instant::now();
    let net = bridge::create_network(
        &ctx,
        &store,
        &NetworkRequest {
            name: "bench".into(),
            ..Default::default()
        },
    )
    .unwrap();
    println!(
        "network create (bridge + nft table): {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    for i in 0..9 {
        sh(&format!("ip netns add nlb{i}"));
    }
    let ns0 = Namespace::path("/run/netns/nlb0");
    // The first attachment starts the DNS server.
    let t = Instant::now();
    bridge::connect(&ctx, &store, &net, &Namespace::path("/run/netns/nlb8"), &ep(8)).unwrap();
    println!(
        "first connect (starts aardvark-dns):  {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let (mut up, mut down, mut gone) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        bridge::connect(&ctx, &store, &net, &ns0, &ep(0)).unwrap();
        up.push(t.elapsed());
        let t = Instant::now();
        bridge::disconnect(&ctx, &store, &net, &ep(0).container_id).unwrap();
        down.push(t.elapsed());
    }
    // What `run --rm` does: connect; at exit the namespace goes and takes
    // the veth with it, berth only frees the lease and the DNS record.
    let (mut bare, mut whole) = (Vec::new(), Vec::new());
    let px = ctx.netns_path(&ep(7).container_id);
    // A pause between runs (ms, second argument) lets the kernel finish
    // freeing the last namespace, as the time a container runs does.
    let pause: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    for _ in 0..n {
        std::thread::sleep(Duration::from_millis(pause));
        // A namespace alone (what --network none costs when berth makes it) ...
        let t = Instant::now();
        berth_net::ns::create_persistent(&px).unwrap();
        berth_net::ns::remove_persistent(&px).unwrap();
        bare.push(t.elapsed());
        // ... and with the bridge.
        let t0 = Instant::now();
        let nsx = berth_net::ns::create_persistent(&px).unwrap();
        let t = Instant::now();
        bridge::connect(&ctx, &store, &net, &nsx, &ep(7)).unwrap();
        let c = t.elapsed();
        berth_net::ns::remove_persistent(&px).unwrap();
        let t = Instant::now();
        bridge::disconnect_all(&ctx, &store, &ep(7).container_id, bridge::Teardown::WithNamespace).unwrap();
        gone.push(c + t.elapsed());
        whole.push(t0.elapsed());
    }
    stats("connect (veth, address, route, lease, DNS)", up.clone());
    stats("disconnect (live, deletes the veth)", down.clone());
    stats("connect + release with the namespace (run)", gone);
    stats("namespace made + removed (--network none)", bare);
    stats("namespace + bridge, made + removed", whole);
    // Eight at once, each with its own store handle.
    let t = Instant::now();
    std::thread::scope(|s| {
        for i in 0..8 {
            let (ctx, net, root) = (ctx.clone(), net.clone(), dir.path().to_path_buf());
            s.spawn(move || {
                let store = Store::open(&root).unwrap();
                bridge::connect(
                    &ctx,
                    &store,
                    &net,
                    &Namespace::path(format!("/run/netns/nlb{i}")),
                    &ep(i),
                )
                .unwrap();
            });
        }
    });
    println!(
        "8 concurrent connects:                {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let ips: std::collections::HashSet<_> = store.network_endpoints(&net.id).unwrap().iter().map(|e| e.ip).collect();
    assert_eq!(ips.len(), 9, "distinct addresses");

    // A server in nlb0 answering one byte per connection.
    let c0 = store
        .container_endpoints(&ep(0).container_id)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let srv = TcpListener::from(ns0.tcp_socket().unwrap());
    rustix::net::bind(&srv, &SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080)).unwrap();
    rustix::net::listen(&srv, 128).unwrap();
    std::thread::spawn(move || {
        for mut c in srv.incoming().flatten() {
            let mut b = [0u8; 1];
            if c.read_exact(&mut b).is_ok() {
                let _ = c.write_all(&b);
            }
        }
    });
    // (a) the userspace forwarder (what berth's monitor runs today).
    let f = Forwarder::bind(&[PortMapping {
        host_ip: Some(Ipv4Addr::LOCALHOST.into()),
        host_port: 0,
        host_port_end: None,
        container_port: 8080,
        proto: Proto::Tcp,
    }])
    .unwrap();
    // The forwarder enters the namespace of a process: one sleeping in nlb0.
    let mut sleeper = Command::new("ip")
        .args(["netns", "exec", "nlb0", "sleep", "300"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    f.attach(sleeper.id() as i32).unwrap();
    println!(
        "forwarder attach:                     {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let fport = f.bindings()[0].host_port;
    stats("published port round trip, forwarder", round_trips(fport, n * 4));
    // (b) kernel DNAT from 127.0.0.1, with route_localnet and masquerade.
    let dport = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t = Instant::now();
    sh(&format!(
        "sysctl -qw net.ipv4.conf.{b}.route_localnet=1 && printf '%s\\n' 'add table ip berthbench' \
         'add chain ip berthbench out {{ type nat hook output priority -100; }}' \
         'add chain ip berthbench post {{ type nat hook postrouting priority 100; }}' \
         'add rule ip berthbench out ip daddr 127.0.0.1 tcp dport {dport} dnat to {ip}:8080' \
         'add rule ip berthbench post ip saddr 127.0.0.0/8 oifname {b} masquerade' | nft -f -",
        b = net.bridge,
        ip = c0.ip
    ));
    println!(
        "DNAT rules via one nft call:          {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    stats("published port round trip, kernel DNAT", round_trips(dport, n * 4));
    sh("nft delete table ip berthbench");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    drop(f);
    for i in 0..9 {
        bridge::disconnect(&ctx, &store, &net, &ep(i).container_id).unwrap();
        sh(&format!("ip netns del nlb{i}"));
    }
    bridge::remove_network(&ctx, &store, &net).unwrap();
    let inv = bridge::inventory(&ctx, &store).unwrap();
    assert!(
        inv.links.is_empty() && inv.leases.is_empty() && !inv.mentions(&net.bridge),
        "{inv:?}"
    );
    println!("cleanup: nothing left");
}
