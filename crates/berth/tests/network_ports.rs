//! Port publishing end to end: `run -p` serves a container's port on the
//! host, `port`/`ps`/`inspect` show it, a taken port fails cleanly, and
//! stopping gives the port back. Every listener is on 127.0.0.1.

mod common;

use common::{Root, Rootless};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const HTTPD: &str = "echo hi > /tmp/index.html; exec httpd -f -p 8080 -h /tmp";

/// A port that is free on 127.0.0.1 right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET /` on 127.0.0.1:port, retried until the server inside answers.
fn http_get(port: u16) -> Option<String> {
    http_get_at("127.0.0.1", port)
}

/// `GET /` on host:port, retried until the server inside answers.
fn http_get_at(host: &str, port: u16) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect((host, port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(b"GET /index.html HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            let mut resp = String::new();
            let _ = s.read_to_string(&mut resp);
            if resp.starts_with("HTTP/1.") {
                return Some(resp);
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

/// Waits until 127.0.0.1:port can be bound again.
fn port_freed(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn publish_serves_and_is_shown_then_freed() {
    let root = Root::new();
    root.busybox("bb");
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:8080");
    let id = root.ok(&["run", "-d", "--name", "web", "-p", &spec, "bb", "sh", "-c", HTTPD]);
    let id = id.trim();

    let resp = http_get(port).expect("the published port answers");
    assert!(
        resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200"),
        "{resp}"
    );
    assert_eq!(body(&resp), "hi\n");

    assert_eq!(root.ok(&["port", "web"]), format!("8080/tcp -> 127.0.0.1:{port}\n"));
    assert_eq!(root.ok(&["port", "web", "8080"]), format!("127.0.0.1:{port}\n"));
    assert_eq!(root.ok(&["port", "web", "8080/tcp"]), format!("127.0.0.1:{port}\n"));
    let o = root.run(&["port", "web", "9999"]);
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("Error: No public port '9999' published for web"),
        "{}",
        common::stderr(&o)
    );
    assert_eq!(
        root.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]),
        format!("web 127.0.0.1:{port}->8080/tcp\n")
    );
    let table = root.ok(&["ps"]);
    assert!(table.lines().next().unwrap().contains("PORTS"), "{table}");
    assert!(table.contains(&format!("127.0.0.1:{port}->8080/tcp")), "{table}");
    assert_eq!(
        root.ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"])
            .trim(),
        format!(r#"{{"8080/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{port}"}}]}}"#)
    );
    assert_eq!(
        root.ok(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", "web"])
            .trim(),
        format!(r#"{{"8080/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{port}"}}]}}"#)
    );

    // The same host port again: a clear error, and nothing left behind.
    let o = root.run(&["run", "-d", "--name", "web2", "-p", &spec, "bb", "sleep", "100"]);
    assert!(!o.status.success());
    let err = common::stderr(&o);
    assert!(
        err.contains(&format!("Bind for 127.0.0.1:{port} failed: port is already allocated")),
        "{err}"
    );
    assert_eq!(root.ok(&["ps", "-a", "-q", "--no-trunc"]).trim(), id);
    let dirs = std::fs::read_dir(root.path().join("store/containers")).unwrap().count();
    assert_eq!(dirs, 1);
    // The first container still serves.
    assert_eq!(body(&http_get(port).unwrap()), "hi\n");

    // Stopped: the port is free, nothing is published.
    root.ok(&["stop", "-t", "1", "web"]);
    assert!(port_freed(port), "port {port} still held after stop");
    assert_eq!(root.ok(&["port", "web"]), "");
    assert_eq!(root.ok(&["ps", "-a", "--format", "{{.Ports}}"]), "\n");
    assert_eq!(
        root.ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"])
            .trim(),
        "{}"
    );

    // Started again, it holds and serves the port again (new container pid).
    root.ok(&["start", "web"]);
    assert_eq!(body(&http_get(port).expect("served after start")), "hi\n");
    root.ok(&["rm", "-f", "web"]);
    assert!(port_freed(port), "port {port} still held after rm -f");
}

/// `-p PORT:80` with no address is Docker's every address of both
/// families: `0.0.0.0` and `[::]` on the same port, both shown; a port
/// taken on IPv6 alone is refused before anything is made.
#[test]
#[ignore = "needs root"]
fn the_default_address_publishes_on_ipv4_and_ipv6() {
    let root = Root::new();
    root.busybox("bb");
    // Free on both families ([::] without IPV6_V6ONLY takes both).
    let port = TcpListener::bind("[::]:0").unwrap().local_addr().unwrap().port();
    let spec = format!("{port}:8080");
    root.ok(&["run", "-d", "--name", "web", "-p", &spec, "bb", "sh", "-c", HTTPD]);
    for host in ["127.0.0.1", "::1"] {
        let resp = http_get_at(host, port).unwrap_or_else(|| panic!("no answer on {host}"));
        assert_eq!(body(&resp), "hi\n", "{host}");
    }
    assert_eq!(
        root.ok(&["port", "web"]),
        format!("8080/tcp -> 0.0.0.0:{port}\n8080/tcp -> [::]:{port}\n")
    );
    assert_eq!(
        root.ok(&["ps", "--format", "{{.Ports}}"]),
        format!("0.0.0.0:{port}->8080/tcp, [::]:{port}->8080/tcp\n")
    );
    assert_eq!(
        root.ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"])
            .trim(),
        format!(r#"{{"8080/tcp":[{{"HostIp":"0.0.0.0","HostPort":"{port}"}},{{"HostIp":"::","HostPort":"{port}"}}]}}"#)
    );
    root.ok(&["rm", "-f", "web"]);
    assert!(port_freed(port));

    // Taken on [::1] only: the IPv6 side cannot be had.
    let held = TcpListener::bind("[::1]:0").unwrap();
    let taken = held.local_addr().unwrap().port();
    let o = root.run(&[
        "run",
        "-d",
        "--name",
        "web2",
        "-p",
        &format!("{taken}:8080"),
        "bb",
        "sleep",
        "100",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        common::stderr(&o).contains(&format!("[::]:{taken}")),
        "{}",
        common::stderr(&o)
    );
    assert_eq!(root.ok(&["ps", "-aq"]), "");
}

#[test]
fn random_host_port_and_policy_restart() {
    let root = Root::new();
    root.busybox("bb");
    // httpd daemonizes; the shell exits 1 after a moment: the policy restarts
    // the container, and the forwarder must follow the new process.
    root.ok(&[
        "run",
        "-d",
        "--name",
        "rs",
        "--restart",
        "on-failure",
        "-p",
        "127.0.0.1::8080",
        "bb",
        "sh",
        "-c",
        "echo hi > /tmp/index.html; httpd -p 8080 -h /tmp; sleep 1; exit 1",
    ]);
    let line = root.ok(&["port", "rs", "8080/tcp"]);
    let port: u16 = line
        .trim()
        .strip_prefix("127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected port output {line:?}"));
    assert_ne!(port, 0);
    assert_eq!(body(&http_get(port).unwrap()), "hi\n");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n: u32 = root
            .ok(&["inspect", "-f", "{{.RestartCount}}", "rs"])
            .trim()
            .parse()
            .unwrap();
        if n >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the container was not restarted");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Same host port across the restart, served by the new process.
    assert_eq!(root.ok(&["port", "rs", "8080"]).trim(), format!("127.0.0.1:{port}"));
    assert_eq!(body(&http_get(port).expect("served after the restart")), "hi\n");
    root.ok(&["rm", "-f", "rs"]);
    assert!(port_freed(port));
}

#[test]
fn publish_flag_errors_and_network_modes() {
    let root = Root::new();
    root.busybox("bb");
    for (spec, want) in [
        ("127.0.0.1:70000:80", "invalid hostPort: 70000"),
        ("127.0.0.1:8000:x", "invalid containerPort: x"),
        ("127.0.0.1:8000:80/sctp", "sctp is not supported"),
        ("300.1.1.1:8000:80", "invalid IP address: 300.1.1.1"),
    ] {
        let o = root.run(&["run", "--rm", "-p", spec, "bb", "true"]);
        assert_eq!(o.status.code(), Some(125), "{spec}");
        assert!(common::stderr(&o).contains(want), "{spec}: {}", common::stderr(&o));
    }
    let port = free_port().to_string();
    let spec = format!("127.0.0.1:{port}:80");
    let o = root.run(&["run", "--rm", "--network", "host", "-p", &spec, "bb", "true"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(
        common::stderr(&o).contains("WARNING: Published ports are discarded when using host network mode"),
        "{}",
        common::stderr(&o)
    );
    let o = root.run(&["run", "--rm", "--network", "none", "-p", &spec, "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(common::stderr(&o).contains("--network none"), "{}", common::stderr(&o));
    assert_eq!(root.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn foreground_run_publishes_until_exit() {
    let root = Root::new();
    root.busybox("bb");
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:8080");
    let mut child = root
        .cmd(&[
            "run",
            "--rm",
            "-p",
            &spec,
            "bb",
            "sh",
            "-c",
            "echo fg > /tmp/index.html; timeout 3 httpd -f -p 8080 -h /tmp; true",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let resp = http_get(port);
    let st = child.wait().unwrap();
    assert_eq!(body(&resp.expect("served while running in the foreground")), "fg\n");
    assert!(st.success());
    assert!(port_freed(port));
}

#[test]
#[ignore = "needs root"]
fn rootless_publish() {
    let rl = Rootless::new("berth-rl-net-");
    let run = |args: &str| rl.run(args);
    let o = run("import bb.tar bb");
    assert!(o.status.success(), "{}", common::stderr(&o));
    let port = free_port();
    let o = run(&format!(
        "run -d --name web -p 127.0.0.1:{port}:8080 bb sh -c '{HTTPD}'"
    ));
    assert!(o.status.success(), "{}", common::stderr(&o));
    let resp = http_get(port);
    let o2 = run("port web");
    let _ = run("rm -f web");
    assert_eq!(body(&resp.expect("the rootless container's port answers")), "hi\n");
    assert_eq!(common::stdout(&o2), format!("8080/tcp -> 127.0.0.1:{port}\n"));
    assert!(port_freed(port));
}
