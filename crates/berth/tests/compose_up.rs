//! `berth compose up` and the commands around it, on real containers: a
//! database with a healthcheck and a named volume, a web service that
//! waits for it to be healthy; ps, logs, exec, run, convergence by config
//! hash, --scale, --exit-code-from and `down -v`. The services of the first
//! test use `network_mode: none` (a compose feature) so it needs nothing
//! of bridge networks; `project_networks_and_names` checks what needs them.

mod common;
#[path = "common/compose.rs"]
mod compose_helpers;

use common::{stderr, stdout, Env};
use compose_helpers::{compose, ok, Down};

/// A GET of / from `addr` (on 127.0.0.1), retried while the server starts.
fn http_get(addr: &str) -> String {
    use std::io::{Read, Write};
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            if s.read_to_string(&mut out).is_ok() && !out.is_empty() {
                return out;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("nothing answered on {addr}");
}

const PROJECT: &str = "services:
  db:
    image: bb
    network_mode: none
    command: [sh, -c, 'echo db up; sleep 0.3; touch /tmp/ready; exec sleep 1000']
    stop_signal: SIGKILL
    healthcheck:
      test: [CMD, test, -f, /tmp/ready]
      interval: 100ms
      retries: 100
    volumes: [data:/data]
  web:
    image: bb
    network_mode: none
    command: [sh, -c, 'echo web $$GREETING; exec sleep 1000']
    stop_signal: SIGKILL
    environment:
      GREETING: hello
    volumes: [/cache]
    secrets: [token]
    depends_on:
      db:
        condition: service_healthy
  edge:
    image: bb
    network_mode: bridge
    command: [sh, -c, 'echo edge > /var/www/index.html; exec httpd -f -p 8080 -h /var/www']
    stop_signal: SIGKILL
    ports: ['127.0.0.1::8080']
volumes:
  data:
secrets:
  token:
    file: ./token.txt
";

#[test]
#[ignore = "needs root"]
fn up_converges_and_down_removes_everything() {
    let env = Env::new();
    let root = &env.root;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("shop");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("compose.yaml"), PROJECT).unwrap();
    std::fs::write(d.join("token.txt"), "s3cret\n").unwrap();
    let _down = Down(root, d.clone());

    // up -d --wait: the volume, then db, which must be healthy before web starts.
    let (_, err) = ok(root, &d, &["up", "-d", "--wait"]);
    let pos = |needle: &str| err.find(needle).unwrap_or_else(|| panic!("no {needle:?} in:\n{err}"));
    assert!(pos("Volume shop_data  Created") < pos("Container shop-db-1  Started"));
    assert!(pos("Container shop-db-1  Healthy") < pos("Container shop-web-1  Started"));
    assert_eq!(env.status("shop-db-1"), "running");
    assert_eq!(env.status("shop-web-1"), "running");
    let health = root.ok(&["inspect", "--format", "{{.State.Health.Status}}", "shop-db-1"]);
    assert_eq!(health.trim(), "healthy");

    // Compose's identity on the container.
    let labels = root.ok(&["inspect", "--format", "{{json .Config.Labels}}", "shop-web-1"]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["com.docker.compose.project"], "shop");
    assert_eq!(labels["com.docker.compose.service"], "web");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["com.docker.compose.oneoff"], "False");
    assert_eq!(labels["com.docker.compose.depends_on"], "db:service_healthy:false");
    let files = labels["com.docker.compose.project.config_files"].as_str().unwrap();
    assert!(files.ends_with("shop/compose.yaml"), "{files}");
    assert_eq!(labels["com.docker.compose.config-hash"].as_str().unwrap().len(), 64);

    // ps: compose's columns; -q; json.
    let (ps, _) = ok(root, &d, &["ps"]);
    let mut lines = ps.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{ps}");
    assert!(
        rows[0].starts_with("shop-db-1") && rows[0].contains("(healthy)"),
        "{ps}"
    );
    assert!(
        rows[1].starts_with("shop-edge-1") && rows[1].contains("127.0.0.1:"),
        "{ps}"
    );
    assert!(rows[2].starts_with("shop-web-1") && rows[2].contains(" web "), "{ps}");
    let (json, _) = ok(root, &d, &["ps", "--format", "json"]);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["Service"], "db");
    assert_eq!(first["State"], "running");
    assert_eq!(ok(root, &d, &["ps", "-q"]).0.lines().count(), 3);

    // port: the published port answers on 127.0.0.1.
    let (addr, _) = ok(root, &d, &["port", "edge", "8080"]);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let page = http_get(addr.trim());
    assert!(page.ends_with("\r\n\r\nedge\n"), "{page}");

    // logs with prefixes; exec in a service; a one-off run, removed after.
    let (logs, _) = ok(root, &d, &["logs"]);
    assert!(logs.lines().any(|l| l == "web-1   | web hello"), "{logs}");
    assert!(logs.lines().any(|l| l == "db-1    | db up"), "{logs}");
    let (logs, _) = ok(root, &d, &["logs", "--no-log-prefix", "web"]);
    assert_eq!(logs, "web hello\n");
    let (out, _) = ok(
        root,
        &d,
        &[
            "exec",
            "-T",
            "web",
            "sh",
            "-c",
            "echo $GREETING > /cache/x; cat /cache/x /run/secrets/token",
        ],
    );
    assert_eq!(out, "hello\ns3cret\n");
    ok(root, &d, &["exec", "-T", "db", "sh", "-c", "echo kept > /data/file"]);
    let (out, _) = ok(
        root,
        &d,
        &[
            "run",
            "--rm",
            "-T",
            "--no-deps",
            "-e",
            "X=1",
            "web",
            "sh",
            "-c",
            "echo run $X",
        ],
    );
    assert_eq!(out, "run 1\n");
    assert_eq!(
        root.ok(&["ps", "-aq"]).lines().count(),
        3,
        "the one-off container is gone"
    );

    // A second up changes nothing; a changed service alone is recreated.
    let web_id = root.ok(&["inspect", "--format", "{{.Id}}", "shop-web-1"]);
    let db_id = root.ok(&["inspect", "--format", "{{.Id}}", "shop-db-1"]);
    let (_, err) = ok(root, &d, &["up", "-d"]);
    assert!(!err.contains("Recreate") && !err.contains("Created"), "{err}");
    assert_eq!(root.ok(&["inspect", "--format", "{{.Id}}", "shop-web-1"]), web_id);
    std::fs::write(
        d.join("compose.yaml"),
        PROJECT.replace("GREETING: hello", "GREETING: bye"),
    )
    .unwrap();
    let (_, err) = ok(root, &d, &["up", "-d"]);
    assert!(err.contains("Container shop-web-1  Recreated"), "{err}");
    assert!(!err.contains("shop-db-1  Recreate"), "{err}");
    assert_ne!(root.ok(&["inspect", "--format", "{{.Id}}", "shop-web-1"]), web_id);
    assert_eq!(root.ok(&["inspect", "--format", "{{.Id}}", "shop-db-1"]), db_id);
    // The recreated container has the new environment and the old one's
    // anonymous volume.
    let (out, _) = ok(
        root,
        &d,
        &["exec", "-T", "web", "sh", "-c", "echo $GREETING; cat /cache/x"],
    );
    assert_eq!(out, "bye\nhello\n");

    // --scale: a second web, then back to one.
    ok(root, &d, &["up", "-d", "--scale", "web=2"]);
    assert_eq!(env.status("shop-web-2"), "running");
    assert_eq!(env.status("shop-web-1"), "running");
    ok(root, &d, &["up", "-d"]);
    assert!(root.run(&["inspect", "shop-web-2"]).status.code() != Some(0));

    // logs -f follows every container, prefixed, until they stop;
    // stop/start keep the containers; the volume's data survives them.
    let follow = {
        let mut c = root.cmd(&["compose", "logs", "-f"]);
        c.current_dir(&d).stdout(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    ok(root, &d, &["stop"]);
    let followed = follow.wait_with_output().unwrap();
    assert!(followed.status.success());
    let followed = stdout(&followed);
    for line in ["db-1    | db up", "web-1   | web bye"] {
        assert!(
            followed.lines().any(|l| l.starts_with(line)),
            "{line:?} in:\n{followed}"
        );
    }
    assert_eq!(env.status("shop-db-1"), "exited");
    ok(root, &d, &["start"]);
    assert_eq!(env.status("shop-web-1"), "running");
    let (out, _) = ok(root, &d, &["exec", "-T", "db", "cat", "/data/file"]);
    assert_eq!(out, "kept\n");

    // down -v by project name alone, from a directory without the file:
    // no container, no volume.
    ok(root, dir.path(), &["-p", "shop", "down", "-v"]);
    assert_eq!(root.ok(&["ps", "-aq"]), "");
    assert_eq!(root.ok(&["volume", "ls", "-q"]), "");

    // Attached up with --exit-code-from: the job's code, the rest stopped.
    std::fs::write(
        d.join("job.yaml"),
        "services:
  job:
    image: bb
    network_mode: none
    command: [sh, -c, 'echo working; exit 3']
  idle:
    image: bb
    network_mode: none
    stop_signal: SIGKILL
    command: [sleep, '1000']
",
    )
    .unwrap();
    let o = compose(root, &d, &["-f", "job.yaml", "up", "--exit-code-from", "job"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stdout(&o).contains("job-1   | working"), "{}", stdout(&o));
    assert!(stdout(&o).starts_with("Attaching to idle-1, job-1\n"), "{}", stdout(&o));
    assert!(stdout(&o).contains("job-1 exited with code 3"), "{}", stdout(&o));
    assert_eq!(env.status("shop-idle-1"), "exited");
    ok(root, &d, &["-f", "job.yaml", "down"]);
    assert_eq!(root.ok(&["ps", "-aq"]), "");

    // service_completed_successfully: the app starts after init exited 0;
    // a failing init stops `up` with compose's message.
    let init = "services:
  init:
    image: bb
    network_mode: none
    command: [sh, -c, 'echo init done; exit CODE']
  app:
    image: bb
    network_mode: none
    stop_signal: SIGKILL
    command: [sleep, '1000']
    depends_on:
      init:
        condition: service_completed_successfully
";
    std::fs::write(d.join("init.yaml"), init.replace("CODE", "0")).unwrap();
    ok(root, &d, &["-f", "init.yaml", "up", "-d"]);
    assert_eq!(env.status("shop-init-1"), "exited");
    assert_eq!(env.status("shop-app-1"), "running");
    ok(root, &d, &["-f", "init.yaml", "down"]);
    std::fs::write(d.join("init.yaml"), init.replace("CODE", "3")).unwrap();
    let o = compose(root, &d, &["-f", "init.yaml", "up", "-d"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("service \"init\" didn't complete successfully: exit 3"),
        "{}",
        stderr(&o)
    );
    assert!(
        root.run(&["inspect", "shop-app-1"]).status.code() != Some(0),
        "app was not created"
    );
    ok(root, &d, &["-f", "init.yaml", "down"]);

    // build (dockerfile_inline, args, target) through up; cp in and out.
    std::fs::write(
        d.join("build.yaml"),
        "services:
  app:
    build:
      context: .
      target: final
      args: {WHO: compose}
      dockerfile_inline: |
        FROM bb AS base
        ARG WHO=nobody
        RUN echo built by $$WHO > /built
        FROM base AS final
    network_mode: none
    stop_signal: SIGKILL
    command: [sleep, '1000']
",
    )
    .unwrap();
    ok(root, &d, &["-f", "build.yaml", "up", "-d"]);
    let (out, _) = ok(root, &d, &["-f", "build.yaml", "exec", "-T", "app", "cat", "/built"]);
    assert_eq!(out, "built by compose\n");
    ok(root, &d, &["-f", "build.yaml", "cp", "token.txt", "app:/tmp/token"]);
    ok(root, &d, &["-f", "build.yaml", "cp", "app:/tmp/token", "copied.txt"]);
    assert_eq!(std::fs::read_to_string(d.join("copied.txt")).unwrap(), "s3cret\n");
    ok(root, &d, &["-f", "build.yaml", "down", "--rmi", "local"]);
    assert!(
        root.run(&["image", "inspect", "shop-app"]).status.code() != Some(0),
        "--rmi local removed it"
    );
}

/// Needs bridge networks joined by name (the net work): the project's
/// default network with compose's name and labels, service names and
/// aliases resolving between containers, `links`, and `down` removing it.
#[test]
#[ignore = "needs root"]
fn project_networks_and_names() {
    let env = Env::new();
    let root = &env.root;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("netp");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(
        d.join("compose.yaml"),
        "services:
  db:
    image: bb
    stop_signal: SIGKILL
    command: [sleep, '1000']
    networks:
      default:
      back:
        aliases: [database]
  web:
    image: bb
    stop_signal: SIGKILL
    command: [sleep, '1000']
    links: ['db:store']
    networks: [default, back]
networks:
  back:
",
    )
    .unwrap();
    let _down = Down(root, d.clone());
    ok(root, &d, &["up", "-d"]);
    let nets = root.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(nets.lines().any(|n| n == "netp_default"), "{nets}");
    assert!(nets.lines().any(|n| n == "netp_back"), "{nets}");
    let labels = root.ok(&["network", "inspect", "--format", "{{json .Labels}}", "netp_back"]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["com.docker.compose.project"], "netp");
    assert_eq!(labels["com.docker.compose.network"], "back");
    for name in ["db", "database", "store", "netp-db-1"] {
        let (out, _) = ok(root, &d, &["exec", "-T", "web", "ping", "-c", "1", "-W", "5", name]);
        assert!(out.contains("1 packets received"), "{name}: {out}");
    }
    ok(root, &d, &["down"]);
    let nets = root.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("netp_"), "{nets}");
    assert_eq!(root.ok(&["ps", "-aq"]), "");
}

/// The same project as an unprivileged user: healthy dependency, secret,
/// named volume, exec and `down -v`.
#[test]
#[ignore = "needs root"]
fn rootless_up_and_down() {
    let rl = common::Rootless::new("berth-compose-rootless-");
    let p = rl.dir.path().join("p");
    std::fs::create_dir(&p).unwrap();
    // Without the service that publishes a port.
    let (head, rest) = PROJECT.split_once("  edge:\n").unwrap();
    let tail = &rest[rest.find("volumes:\n").unwrap()..];
    std::fs::write(p.join("compose.yaml"), format!("{head}{tail}")).unwrap();
    std::fs::write(p.join("token.txt"), "s3cret\n").unwrap();
    for f in [p.clone(), p.join("compose.yaml"), p.join("token.txt")] {
        std::os::unix::fs::chown(&f, Some(rl.uid), Some(rl.gid)).unwrap();
    }
    let o = rl.run("import bb.tar bb");
    assert!(o.status.success(), "{}", stderr(&o));
    let store = rl.store();
    let compose = |args: &str| rl.sh(&format!("cd p && ../berth --root {} compose {args}", store.display()));
    struct Down<'a>(&'a common::Rootless, String);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = self.0.sh(&self.1);
        }
    }
    let _down = Down(
        &rl,
        format!("cd p && ../berth --root {} compose down -v", store.display()),
    );
    let o = compose("up -d --wait");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("Container p-db-1  Healthy"), "{}", stderr(&o));
    let o = compose("exec -T web sh -c 'id -u; cat /run/secrets/token'");
    assert_eq!(stdout(&o), "0\ns3cret\n", "{}", stderr(&o));
    let o = compose("down -v");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rl.run("ps -aq");
    assert_eq!(stdout(&o), "");
    let o = rl.run("volume ls -q");
    assert_eq!(stdout(&o), "");
}
