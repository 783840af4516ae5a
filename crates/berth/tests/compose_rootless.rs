//! `berth compose` as an unprivileged user with a subordinate id range
//! (the three-service file, rootless): `up -d --wait` returns once
//! db's healthcheck passes, web reaches db by its service name on the
//! project's network, `ps` shows compose's columns, `logs` prefixes each
//! service, `exec web …` runs, `up -d` again recreates nothing, and
//! `down -v` leaves no container, network, volume or process behind (the
//! rootless network namespace goes with the last network). Traffic stays
//! between the project's containers.

mod common;

use common::{stderr, stdout, Rootless};
use std::process::Output;

const PROJECT: &str = "services:
  db:
    image: bb
    command: [sh, -c, 'mkdir -p /www && echo db-answers > /www/index.html && sleep 0.5 && touch /tmp/ready && exec httpd -f -p 8080 -h /www']
    stop_signal: SIGKILL
    healthcheck:
      test: [CMD, test, -f, /tmp/ready]
      interval: 200ms
      retries: 100
    volumes: [data:/data]
  web:
    image: bb
    command: [sh, -c, 'echo web started; exec sleep 1000']
    stop_signal: SIGKILL
    depends_on:
      db:
        condition: service_healthy
  worker:
    image: bb
    command: [sh, -c, 'echo worker started; exec sleep 1000']
    stop_signal: SIGKILL
    depends_on: [db]
volumes:
  data:
";

/// The user's `berth compose` project in `<test dir>/shop`; `down -v` and
/// every process naming the test directory go on drop.
struct Project(Rootless);

impl Project {
    fn compose(&self, args: &str) -> Output {
        self.0.sh(&format!(
            "cd shop && env -u COMPOSE_FILE -u COMPOSE_PROJECT_NAME -u COMPOSE_PROFILES \
             ../berth --root {}/store compose {args}",
            self.0.dir.path().display()
        ))
    }

    #[track_caller]
    fn ok(&self, args: &str) -> (String, String) {
        let o = self.compose(args);
        assert!(
            o.status.success(),
            "compose {args} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        (stdout(&o), stderr(&o))
    }

    /// Live processes whose command line names the test directory.
    fn processes(&self) -> Vec<(i32, String)> {
        let dir = self.0.dir.path().to_string_lossy().to_string();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z') {
                continue;
            }
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&dir) {
                out.push((pid, cmd));
            }
        }
        out
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose("down -v --remove-orphans -t 0");
        for (pid, _) in self.processes() {
            // SAFETY: kill(2) on a process this test's berth started (its
            // command line names the test's own directory).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[test]
#[ignore = "needs root"]
fn three_services_rootless() {
    let p = Project(Rootless::new("berth-compose-rootless-"));
    let rl = &p.0;
    let o = rl.run("import bb.tar bb");
    assert!(o.status.success(), "import: {}", stderr(&o));
    let shop = rl.dir.path().join("shop");
    std::fs::create_dir(&shop).unwrap();
    std::fs::write(shop.join("compose.yaml"), PROJECT).unwrap();
    std::os::unix::fs::chown(&shop, Some(rl.uid), Some(rl.gid)).unwrap();

    // up -d --wait: returns once db is healthy, every service running.
    p.ok("up -d --wait");
    let health = rl.run("inspect --format '{{.State.Health.Status}}' shop-db-1");
    assert_eq!(stdout(&health).trim(), "healthy", "{}", stderr(&health));

    // ps: compose's columns, one row per service.
    let (ps, _) = p.ok("ps");
    let mut lines = ps.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    );
    let names: Vec<&str> = lines.map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(names, ["shop-db-1", "shop-web-1", "shop-worker-1"]);

    // logs: each service's lines behind its prefix.
    let (logs, _) = p.ok("logs --no-color");
    for (svc, line) in [("web", "web started"), ("worker", "worker started")] {
        assert!(
            logs.lines()
                .any(|l| l.starts_with(&format!("{svc}-1")) && l.ends_with(&format!("| {line}"))),
            "no `{svc}-1 | {line}` in:\n{logs}"
        );
    }

    // exec: web reaches db by its service name on the project network.
    let (page, _) = p.ok("exec -T web wget -q -O - http://db:8080/");
    assert_eq!(page, "db-answers\n");

    // up -d again: nothing recreated.
    let id = |c: &str| stdout(&rl.run(&format!("inspect --format '{{{{.Id}}}}' {c}")));
    let before: Vec<String> = ["shop-db-1", "shop-web-1", "shop-worker-1"]
        .iter()
        .map(|c| id(c))
        .collect();
    let (_, err) = p.ok("up -d");
    assert!(!err.contains("Recreate"), "{err}");
    let after: Vec<String> = ["shop-db-1", "shop-web-1", "shop-worker-1"]
        .iter()
        .map(|c| id(c))
        .collect();
    assert_eq!(before, after);

    // down -v: no container, network, volume or process is left.
    p.ok("down -v");
    assert_eq!(stdout(&rl.run("ps -aq")), "");
    let nets = stdout(&rl.run("network ls --format '{{.Name}}'"));
    assert!(!nets.contains("shop_"), "{nets}");
    assert_eq!(stdout(&rl.run("volume ls -q")), "");
    let mut left = p.processes();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = p.processes();
    }
    assert!(left.is_empty(), "processes left after down -v: {left:?}");
}
