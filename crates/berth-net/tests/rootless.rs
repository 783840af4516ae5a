//! Rootless bridge networks at library level: as an unprivileged user with
//! a subordinate id range (`berth-rootless`, made by scripts/test), the
//! user's rootless network namespace holds a bridge; two "containers"
//! (network namespaces made inside it by the test) reach each other by
//! address and by name, a second network is isolated from the first, and a
//! port published on the host's 127.0.0.1 reaches a server in one of them.
//!
//! The test starts as root and re-runs itself as the user. Traffic goes
//! only to loopback and to namespaces the test makes.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use berth_net::bridge::{self, NetworkRequest, Teardown};
use berth_net::ns::Namespace;
use berth_net::rootless::RootlessNetns;
use berth_net::{Forwarder, PortMapping, Proto};
use berth_store::{NewEndpoint, Store};

const INNER: &str = "BERTH_NET_ROOTLESS_INNER";

/// A network namespace made inside the rootless user namespace, kept by a sleeping process.
struct Box_ {
    child: Child,
}

impl Box_ {
    fn new(holder: i32) -> Box_ {
        let mut child = Command::new("nsenter")
            .args(["-U", "-t", &holder.to_string(), "unshare", "-n", "sleep", "300"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        for _ in 0..200 {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmd.starts_with(b"sleep") {
                return Box_ { child };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the namespace keeper did not start");
    }

    fn ns(&self) -> Namespace {
        Namespace::of_pid(self.child.id(), true)
    }

    fn exec(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-U", "-n", "-t", &self.child.id().to_string()])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Box_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ep(name: &str) -> NewEndpoint {
    NewEndpoint {
        container_id: format!("{name:0>64}"),
        name: name.into(),
        ..Default::default()
    }
}

fn inner() {
    let base = PathBuf::from(std::env::var(INNER).unwrap());
    let rl = RootlessNetns::ensure(&base.join("rootless-netns")).unwrap();
    let store_root = base.join("store");
    let store = Store::open(&store_root).unwrap();
    let mut ctx = rl.context(&store_root);
    ctx.upstream_override = Some("nameserver 127.0.0.1\n".into());
    assert!(rl.pasta_pid().is_some(), "pasta connects the namespace to the host");

    let app = bridge::create_network(
        &ctx,
        &store,
        &NetworkRequest {
            name: "app".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let other = bridge::create_network(
        &ctx,
        &store,
        &NetworkRequest {
            name: "other".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let (web, cli, far) = (
        Box_::new(rl.holder_pid()),
        Box_::new(rl.holder_pid()),
        Box_::new(rl.holder_pid()),
    );
    let w = bridge::connect(&ctx, &store, &app, &web.ns(), &ep("web")).unwrap();
    let c = bridge::connect(&ctx, &store, &app, &cli.ns(), &ep("client")).unwrap();
    let f = bridge::connect(&ctx, &store, &other, &far.ns(), &ep("far")).unwrap();
    assert_ne!(w.ip, c.ip);

    let ping = |b: &Box_, ip: Ipv4Addr, wait: &str| b.exec(&["busybox", "ping", "-c1", "-W", wait, &ip.to_string()]);
    let o = ping(&cli, w.ip, "2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(!ping(&far, w.ip, "1").status.success(), "other-net reached app-net");
    assert!(!ping(&cli, f.ip, "1").status.success(), "app-net reached other-net");
    let gw = w.gateway.unwrap().to_string();
    let mut resolved = false;
    for _ in 0..50 {
        let o = cli.exec(&["busybox", "nslookup", "-type=a", "web", &gw]);
        if String::from_utf8_lossy(&o.stdout).contains(&format!("Address: {}", w.ip)) {
            resolved = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(resolved, "web does not resolve on the rootless network");

    // A published port on the host's loopback reaches web's server.
    let www = base.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "rootless hello\n").unwrap();
    let mut httpd = Command::new("nsenter")
        .args([
            "-U",
            "-n",
            "-t",
            &web.child.id().to_string(),
            "busybox",
            "httpd",
            "-f",
            "-p",
            "8000",
            "-h",
        ])
        .arg(&www)
        .spawn()
        .unwrap();
    let fwd = Forwarder::bind(&[PortMapping {
        host_ip: Some(Ipv4Addr::LOCALHOST.into()),
        host_port: 0,
        host_port_end: None,
        container_port: 8000,
        proto: Proto::Tcp,
    }])
    .unwrap();
    fwd.attach_address(w.ip, Some(rl.holder_pid())).unwrap();
    let port = fwd.bindings()[0].host_port;
    let mut body = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
            body.clear();
            let _ = s.read_to_string(&mut body);
            if body.contains("rootless hello") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = httpd.kill();
    let _ = httpd.wait();
    drop(fwd);
    assert!(body.contains("rootless hello"), "{body:?}");

    // Leaving: the keepers end (their namespaces go), berth frees the rest.
    drop((web, cli, far));
    for id in ["web", "client", "far"] {
        bridge::disconnect_all(&ctx, &store, &ep(id).container_id, Teardown::WithNamespace).unwrap();
    }
    bridge::remove_network(&ctx, &store, &app).unwrap();
    bridge::remove_network(&ctx, &store, &other).unwrap();
    let inv = bridge::inventory(&ctx, &store).unwrap();
    assert!(
        inv.links.is_empty() && inv.leases.is_empty() && inv.dns_files.is_empty() && inv.dns_server.is_none(),
        "{inv:?}"
    );
    rl.stop();
    println!("ROOTLESS OK");
}

/// A user with a subordinate id range: `berth-rootless` (scripts/test makes it).
fn rootless_user() -> Option<(String, u32, u32)> {
    let o = Command::new("id").args(["-u", "berth-rootless"]).output().ok()?;
    let uid: u32 = String::from_utf8_lossy(&o.stdout).trim().parse().ok()?;
    let o = Command::new("id").args(["-g", "berth-rootless"]).output().ok()?;
    let gid: u32 = String::from_utf8_lossy(&o.stdout).trim().parse().ok()?;
    Some(("berth-rootless".into(), uid, gid))
}

#[test]
#[ignore = "needs root (runs itself again as the berth-rootless user)"]
fn rootless_network_namespace_holds_working_bridges() {
    if std::env::var_os(INNER).is_some() {
        return inner();
    }
    let (user, uid, gid) = rootless_user().expect("the berth-rootless user (scripts/test makes it)");
    let dir = tempfile::Builder::new()
        .prefix("berth-net-rootless-")
        .tempdir_in("/tmp")
        .unwrap();
    let exe = dir.path().join("rootless-test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    for p in [dir.path(), exe.as_path()] {
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let d = dir.path().display();
    let line = format!(
        "cd {d} && export HOME={d} XDG_RUNTIME_DIR={d} {INNER}={d} && ./rootless-test --exact rootless_network_namespace_holds_working_bridges --ignored --nocapture"
    );
    let o = Command::new("su")
        .args([user.as_str(), "-s", "/bin/sh", "-c", &line])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("ROOTLESS OK"),
        "as {user}:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Nothing of the user's is left running (an exited process whose
    // parent is gone may linger as a zombie until init reaps it).
    let left = Command::new("pgrep")
        .args(["-u", &uid.to_string(), "-a"])
        .output()
        .unwrap();
    let running: Vec<String> = String::from_utf8_lossy(&left.stdout)
        .lines()
        .filter(|l| !l.contains("<defunct>"))
        .map(String::from)
        .collect();
    assert!(running.is_empty(), "left running: {running:?}");
}
