//! Debian's docker-compose 1.29 drives `berth system service`: a web
//! server and a client that fetches from it by service name, `up -d`
//! (twice: the second finds everything up to date), `ps`, `logs`,
//! `run --rm`, `down`.

#[path = "common/api.rs"]
mod api;
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use api::Service;
use common::{stdout, Env};

const COMPOSE_FILE: &str = r#"version: "3.8"
services:
  web:
    image: bb
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8000 -h /www"]
    labels:
      tier: front
  client:
    image: bb
    depends_on: [web]
    command: ["sh", "-c", "while true; do timeout 5 wget -q -O - http://web:8000/ && echo fetched-ok; sleep 1; done"]
"#;

/// `docker-compose -p berthapi ARGS` in `dir` against the service.
fn compose(svc: &Service, dir: &Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["120", "docker-compose", "--ansi", "never", "-p", "berthapi"])
        .args(args)
        .current_dir(dir)
        .env("DOCKER_HOST", svc.host())
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .env_remove("DOCKER_CONTEXT")
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .stdin(Stdio::null())
        .output()
        .expect("docker-compose runs (apt-get install docker-compose; scripts/setup --tests does)")
}

/// [`compose`], asserting success; stdout and stderr together.
fn compose_ok(svc: &Service, dir: &Path, args: &[&str]) -> String {
    let o = compose(svc, dir, args);
    let text = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert!(
        o.status.success(),
        "docker-compose {args:?} failed ({:?}):\n{text}",
        o.status.code()
    );
    text
}

/// Takes the project down however the test ends.
struct Project<'a> {
    svc: &'a Service,
    dir: &'a Path,
}

impl Drop for Project<'_> {
    fn drop(&mut self) {
        let _ = compose(self.svc, self.dir, &["down", "-v", "--timeout", "1"]);
    }
}

#[test]
#[ignore = "needs root"]
fn docker_compose_up_ps_logs_run_down() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let dir = root.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docker-compose.yml"), COMPOSE_FILE).unwrap();
    let project = Project { svc: &svc, dir: &dir };

    let up = compose_ok(&svc, &dir, &["up", "-d"]);
    assert!(up.contains("Creating network \"berthapi_default\""), "{up}");
    assert!(up.contains("Creating berthapi_web_1"), "{up}");
    assert!(up.contains("Creating berthapi_client_1"), "{up}");

    // The client reaches the web server by its service name.
    let mut logs = String::new();
    for _ in 0..150 {
        logs = compose_ok(&svc, &dir, &["logs", "--no-color", "client"]);
        if logs.contains("fetched-ok") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(logs.contains("client_1  | hello-from-web"), "{logs}");
    assert!(logs.contains("client_1  | fetched-ok"), "{logs}");

    let ps = compose_ok(&svc, &dir, &["ps"]);
    let rows: Vec<&str> = ps.lines().filter(|l| l.starts_with("berthapi_")).collect();
    assert_eq!(rows.len(), 2, "{ps}");
    assert!(rows.iter().all(|r| r.contains(" Up ")), "{ps}");
    let o = compose(&svc, &dir, &["ps", "--services", "--filter", "status=running"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let services = stdout(&o);
    let mut services: Vec<&str> = services.lines().collect();
    services.sort();
    assert_eq!(services, ["client", "web"]);

    // Nothing changed: the network and both containers are reused.
    let again = compose_ok(&svc, &dir, &["up", "-d"]);
    assert!(again.contains("berthapi_web_1 is up-to-date"), "{again}");
    assert!(again.contains("berthapi_client_1 is up-to-date"), "{again}");

    // A one-off container on the project's network; logs afterwards only
    // show the services' containers.
    let fetched = compose_ok(
        &svc,
        &dir,
        &["run", "--rm", "client", "wget", "-q", "-O", "-", "http://web:8000/"],
    );
    assert!(fetched.contains("hello-from-web"), "{fetched}");
    let tail = compose_ok(&svc, &dir, &["logs", "--no-color", "--tail", "1", "client"]);
    assert!(tail.contains("client_1  | "), "{tail}");

    let down = compose_ok(&svc, &dir, &["down", "--timeout", "1"]);
    assert!(down.contains("Removing berthapi_web_1"), "{down}");
    assert!(down.contains("Removing network berthapi_default"), "{down}");
    drop(project);
    assert_eq!(root.ok(&["ps", "-aq"]).trim(), "");
    let nets = root.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("berthapi"), "{nets}");
}
