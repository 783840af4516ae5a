//! `berth system service` as a service: Docker's answers on the wire,
//! the idle exit, systemd socket activation, the socket's rights (root
//! and rootless), and TCP only on loopback or behind client certificates.

#[path = "common/api.rs"]
mod api;
mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use api::{docker, docker_clients, docker_cmd, docker_ok, header, raw_http, raw_http_json, Service};
use common::{stderr, stdout, Env, Root, Rootless};

/// Waits (up to a minute) for a child to exit by itself.
fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < deadline, "the service did not exit on its own");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ping_version_and_errors_answer_as_dockerd_does() {
    let root = Root::new();
    let svc = Service::start(&root);

    let (head, body) = svc.http("HEAD", "/_ping");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.is_empty());
    for (name, value) in [
        ("api-version", "1.43"),
        ("docker-experimental", "false"),
        ("ostype", "linux"),
        ("builder-version", "1"),
        ("cache-control", "no-cache, no-store, must-revalidate"),
        ("pragma", "no-cache"),
    ] {
        assert_eq!(header(&head, name), Some(value), "{name} in\n{head}");
    }
    let (_, body) = svc.http("GET", "/_ping");
    assert_eq!(body, "OK");

    // Any supported version prefix, or none; too new and too old are 400s.
    let (head, body) = svc.http("GET", "/v1.24/version");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["ApiVersion"].as_str(), v["MinAPIVersion"].as_str()),
        (Some("1.43"), Some("1.24"))
    );
    assert_eq!(v["Components"][0]["Name"], "Engine");
    let (head, body) = svc.http("GET", "/v1.99/version");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert_eq!(
        body,
        r#"{"message":"client version 1.99 is too new. Maximum supported API version is 1.43"}"#
    );

    // Docker's 404s, and 501 for what berth does not serve yet.
    let (head, body) = svc.http("GET", "/nosuch");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert_eq!(body, r#"{"message":"page not found"}"#);
    let (head, body) = svc.http("GET", "/v1.43/containers/nosuch/json");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert_eq!(body, r#"{"message":"No such container: nosuch"}"#);
    let (head, body) = svc.http("GET", "/images/nosuch/json");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert_eq!(body, r#"{"message":"No such image: nosuch"}"#);
    let (head, body) = svc.http("POST", "/containers/create");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(body.contains("Config cannot be empty"), "{body}");
    let (head, body) = svc.http("POST", "/containers/nosuch/update");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert_eq!(body, r#"{"message":"No such container: nosuch"}"#);
    // A registry that does not answer: a 500 naming it, as dockerd's.
    let (head, body) = svc.http("GET", "/distribution/127.0.0.1:1/x/json");
    assert!(head.starts_with("HTTP/1.1 500"), "{head}");
    assert!(body.contains("cannot reach registry 127.0.0.1:1"), "{body}");
    let (head, body) = svc.http("GET", "/images/json?filters=%7Bnot-json");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(body.contains("invalid filter"), "{body}");
    let (head, _) = svc.http("GET", "/containers/json?limit=many");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

#[test]
fn the_service_exits_once_idle_for_its_time_and_removes_its_socket() {
    let root = Root::new();
    let mut svc = Service::start_with(&root, &["--time", "1"]);
    let client = &docker_clients()[0];
    docker_ok(client, &svc, &root, &["version"]);
    let st = wait_exit(&mut svc.child);
    assert!(st.success(), "{st}");
    assert!(!svc.socket.exists(), "the socket goes with the service");
}

#[test]
#[ignore = "needs root"]
fn a_request_in_flight_keeps_an_idle_service_alive() {
    let env = Env::new();
    let root = &env.root;
    root.ok(&["run", "-d", "--name", "napper", "bb", "sleep", "3"]);
    let mut svc = Service::start_with(root, &["--time", "1"]);
    let client = &docker_clients()[0];
    // The wait outlasts the idle time: the service must not leave under it.
    let waited = docker_ok(client, &svc, root, &["wait", "napper"]);
    assert_eq!(waited.trim(), "0");
    assert!(wait_exit(&mut svc.child).success());
    assert_eq!(
        env.status("napper"),
        "exited",
        "the container outlived nothing it needed"
    );
}

/// Starts berth the way systemd does: the listening socket as fd 3,
/// `LISTEN_FDS=1` and `LISTEN_PID` = the service's own pid.
fn activated(root: &Root, listener: &std::os::unix::net::UnixListener, time: &str) -> std::process::Child {
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", r#"export LISTEN_PID=$$ LISTEN_FDS=1; exec "$@""#, "sh"])
        .arg(env!("CARGO_BIN_EXE_berth"))
        .arg("--root")
        .arg(root.path().join("store"))
        .args(["system", "service", "--time", time])
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the child only calls dup2 and fcntl,
    // which are async-signal-safe, on plain integers.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

#[test]
fn systemd_socket_activation_serves_the_socket_it_is_given() {
    let root = Root::new();
    root.busybox("bb");
    // What berth.socket does: the socket exists before any service runs.
    let path = root.path().join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let client = &docker_clients()[0];
    let docker_at = |args: &[&str]| {
        Command::new(client)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", path.display()))
            .env("DOCKER_CONFIG", root.path().join("docker-config"))
            .output()
            .unwrap()
    };
    for round in 0..2 {
        let mut child = activated(&root, &listener, "1");
        let o = docker_at(&["images", "--format", "{{.Repository}}"]);
        assert!(o.status.success(), "round {round}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "bb");
        let st = wait_exit(&mut child);
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(st.success(), "round {round}: {st}: {err}");
        // The socket is systemd's: it stays for the next activation.
        assert!(path.exists(), "round {round}: the service removed systemd's socket");
    }
}

/// `run --use-api-socket`, as the docker CLI 28 does it: the service's
/// socket at /var/run/docker.sock (a docker CLI inside drives the engine
/// that runs it), berth's logins in a 0600 /run/secrets/docker/config.json
/// named by DOCKER_CONFIG; no socket to bind is a clear error.
#[test]
#[ignore = "needs root"]
fn use_api_socket_hands_the_container_the_service_and_the_logins() {
    let root = Root::new();
    root.busybox("bb");
    let o = root
        .cmd(&["run", "--rm", "--use-api-socket", "bb", "true"])
        .env("DOCKER_HOST", format!("unix://{}/none.sock", root.path().display()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("--use-api-socket: no Docker API socket at"),
        "{}",
        stderr(&o)
    );

    let svc = Service::start(&root);
    let auth = root.path().join("auth.json");
    std::fs::write(&auth, r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"}}}"#).unwrap();
    // The host's libraries too, for a client that is not static (Debian's).
    let client = api::docker_clients()[0].clone();
    let libs = ["/lib", "/lib64", "/usr/lib"].map(|d| format!("{d}:{d}:ro"));
    let script = "stat -c '%a %u' /run/secrets/docker/config.json; echo $DOCKER_CONFIG; \
                  grep -c dXNlcjpwYXNz /run/secrets/docker/config.json; \
                  /docker ps --format '{{.Image}} {{.Status}}'";
    let o = root
        .cmd(&[
            "run",
            "--rm",
            "--use-api-socket",
            "-v",
            &format!("{}:/docker:ro", client.display()),
            "-v",
            &libs[0],
            "-v",
            &libs[1],
            "-v",
            &libs[2],
            "bb",
            "sh",
            "-c",
            script,
        ])
        .env("DOCKER_HOST", format!("unix://{}", svc.socket.display()))
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["600 0", "/run/secrets/docker", "1"], "{out}");
    assert!(lines[3].starts_with("bb Up "), "{out}");

    // compose's `use_api_socket: true` is the same request.
    let project = root.path().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(
        project.join("compose.yaml"),
        "services:\n  cli:\n    image: bb\n    network_mode: none\n    use_api_socket: true\n    \
         command: [sh, -c, 'test -S /var/run/docker.sock && echo $$DOCKER_CONFIG']\n",
    )
    .unwrap();
    let o = root
        .cmd(&["compose", "run", "--rm", "cli"])
        .current_dir(&project)
        .env("DOCKER_HOST", format!("unix://{}", svc.socket.display()))
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("use_api_socket"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "/run/secrets/docker\n");
}

#[test]
#[ignore = "needs root"]
fn the_socket_is_root_and_the_berth_group_s_or_root_s_alone() {
    let root = Root::new();
    let svc = Service::start(&root);
    let md = std::fs::metadata(&svc.socket).unwrap();
    let group = std::fs::read_to_string("/etc/group").unwrap().lines().find_map(|l| {
        l.strip_prefix("berth:")
            .and_then(|r| r.split(':').nth(1)?.parse::<u32>().ok())
    });
    assert_eq!(md.uid(), 0);
    match group {
        Some(gid) => {
            assert_eq!(md.permissions().mode() & 0o777, 0o660);
            assert_eq!(md.gid(), gid);
        }
        None => assert_eq!(md.permissions().mode() & 0o777, 0o600),
    }
}

#[test]
#[ignore = "needs root"]
fn a_rootless_service_is_the_user_s_alone_and_docker_drives_it() {
    let rl = Rootless::new("berth-api-rootless-");
    let client = docker_clients()[0].display().to_string();
    let o = rl.run("import bb.tar bb");
    assert!(o.status.success(), "{}", stderr(&o));
    // Default socket: $XDG_RUNTIME_DIR/berth/berth.sock (the test dir here).
    let script = format!(
        r#"export XDG_RUNTIME_DIR=$PWD/run; mkdir -m 700 "$XDG_RUNTIME_DIR"
./berth --root {store} system service --time 2 & svc=$!
sock=$XDG_RUNTIME_DIR/berth/berth.sock
for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
stat -c '%a %u' "$sock" "$XDG_RUNTIME_DIR/berth"
DOCKER_HOST=unix://$sock {client} images --format '{{{{.Repository}}}}:{{{{.Tag}}}}'
wait $svc; echo "service exit $?""#,
        store = rl.store().display()
    );
    let o = rl.sh(&script);
    let out = stdout(&o) + &stderr(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("600 {}", rl.uid), "{out}");
    assert_eq!(lines[1], format!("700 {}", rl.uid), "{out}");
    assert_eq!(lines[2], "bb:latest", "{out}");
    assert_eq!(lines[3], "service exit 0", "{out}");
}

#[test]
#[ignore = "needs root"]
fn the_docker_cli_runs_execs_and_removes_containers_through_a_rootless_service() {
    let rl = Rootless::new("berth-api-rootless-run-");
    let o = rl.run("import bb.tar bb");
    assert!(o.status.success(), "{}", stderr(&o));
    for client in docker_clients() {
        let script = format!(
            r#"export XDG_RUNTIME_DIR=$PWD/run DOCKER_CONFIG=$PWD/docker-config; mkdir -p -m 700 "$XDG_RUNTIME_DIR"
./berth --root {store} system service --time 0 2>service.log & svc=$!
trap 'kill $svc; wait $svc' EXIT
sock=$XDG_RUNTIME_DIR/berth/berth.sock
for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
export DOCKER_HOST=unix://$sock
d={client}
step() {{ echo "== $*"; "$@" 2>&1 || echo "exit $?"; }}
step $d version --format '{{{{.Server.Os}}}} {{{{.Server.APIVersion}}}}'
step $d run --rm bb sh -c 'id -u; echo hi'
id=$($d run -d --name bg bb sh -c 'echo started; exec sleep 300')
echo "== run -d ${{#id}}"
step $d ps --format '{{{{.Names}}}} {{{{.Image}}}} {{{{.State}}}}'
for i in $(seq 50); do [ -n "$($d logs bg)" ] && break; sleep 0.1; done
step $d logs bg
step $d exec bg sh -c 'head -1 /proc/self/uid_map; echo in-$(hostname)'
step $d exec bg ps -o comm
step $d rm -f bg
step $d ps -aq
step ./berth --root {store} ps -aq
echo "== end""#,
            store = rl.store().display(),
            client = client.display()
        );
        let o = rl.sh(&script);
        let out = stdout(&o) + &stderr(&o);
        let uid_map = format!("0 {} 1", rl.uid);
        let want = [
            "== version --format {{.Server.Os}} {{.Server.APIVersion}}".to_string(),
            "linux 1.43".into(),
            "== run --rm bb sh -c id -u; echo hi".into(),
            "0".into(),
            "hi".into(),
            "== run -d 64".into(),
            "== ps --format {{.Names}} {{.Image}} {{.State}}".into(),
            "bg bb running".into(),
            "== logs bg".into(),
            "started".into(),
            "== exec bg sh -c head -1 /proc/self/uid_map; echo in-$(hostname)".into(),
            uid_map,
            format!("in-{}", "<id>"),
            "== exec bg ps -o comm".into(),
            "COMMAND".into(),
            "sleep".into(),
            "ps".into(),
            "== rm -f bg".into(),
            "bg".into(),
            "== ps -aq".into(),
            "== ./berth --root <store> ps -aq".into(),
            "== end".into(),
        ];
        // The client's path and the store's, the container's ID and the
        // uid_map's spacing are masked.
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("in-"))
            .unwrap_or("")
            .to_string();
        let got: Vec<String> = out
            .replace(&client.display().to_string(), "")
            .replace(&rl.store().display().to_string(), "<store>")
            .lines()
            .map(|l| {
                let l = l.split_whitespace().collect::<Vec<_>>().join(" ");
                let l = l.replace("== ", "==").replacen("==", "== ", 1);
                if !id.is_empty() && l == format!("in-{id}") {
                    "in-<id>".to_string()
                } else {
                    l
                }
            })
            .collect();
        assert_eq!(got, want, "{}:\n{out}", client.display());
        assert_eq!(id.len(), 12, "the hostname is the short ID: {out}");
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, by
/// openssl, in `dir`.
fn make_certs(dir: &Path) {
    let sh = |script: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{script}: {}", stderr(&o));
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh(&format!(
        "openssl req -x509 {ec} -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=berth-test-ca"
    ));
    for (name, cn, ext) in [
        (
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        sh(&format!(
            "openssl req {ec} -keyout {name}-key.pem -out {name}.csr -subj /CN={cn}"
        ));
        sh(&format!(
            "openssl x509 -req -in {name}.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out {name}.pem -days 2 -extfile {name}.ext"
        ));
    }
}

/// Runs `f` until it succeeds (a service starting up) or 30 s pass; the last output.
fn until_ok(mut f: impl FnMut() -> std::process::Output) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = f();
        if o.status.success() || Instant::now() > deadline {
            return o;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn tcp_is_loopback_only_unless_clients_must_show_certificates() {
    let root = Root::new();
    // Any address but loopback, without TLS: refused before it listens.
    let o = root.run(&[
        "system",
        "service",
        "--time",
        "1",
        &format!("tcp://0.0.0.0:{}", free_port()),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--tlsverify"), "{}", stderr(&o));
    let o = root.run(&["system", "service", "--tlscert", "x.pem", "tcp://127.0.0.1:1"]);
    assert!(stderr(&o).contains("only with client certificates"), "{}", stderr(&o));

    let client = &docker_clients()[0];
    let config = root.path().join("docker-config");
    let docker_tcp = |host: &str, extra: &[&str]| {
        Command::new(client)
            .arg("-H")
            .arg(host)
            .args(extra)
            .args(["version", "--format", "{{.Server.APIVersion}}"])
            .env("DOCKER_CONFIG", &config)
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap()
    };

    // Loopback, plain.
    let port = free_port();
    let mut plain = root
        .cmd(&["system", "service", "--time", "0", &format!("tcp://127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let host = format!("tcp://127.0.0.1:{port}");
    let o = until_ok(|| docker_tcp(&host, &[]));
    assert_eq!(stdout(&o).trim(), "1.43", "{}", stderr(&o));
    let _ = plain.kill();
    let _ = plain.wait();

    // TLS with client certificates.
    let certs = root.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certs(&certs);
    let c = |f: &str| certs.join(f).display().to_string();
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let mut tls = root
        .cmd(&[
            "system",
            "service",
            "--time",
            "0",
            "--tlsverify",
            "--tlscacert",
            &c("ca.pem"),
            "--tlscert",
            &c("server.pem"),
            "--tlskey",
            &c("server-key.pem"),
            &host,
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let with_cert = [
        "--tlsverify",
        "--tlscacert",
        &c("ca.pem"),
        "--tlscert",
        &c("client.pem"),
        "--tlskey",
        &c("client-key.pem"),
    ];
    let o = until_ok(|| docker_tcp(&host, &with_cert));
    assert_eq!(stdout(&o).trim(), "1.43", "{}", stderr(&o));
    // Without a client certificate, or without TLS, nothing.
    let o = docker_tcp(&host, &["--tls", "--tlscacert", &c("ca.pem")]);
    assert!(
        !o.status.success(),
        "a client without a certificate got in: {}",
        stdout(&o)
    );
    let o = docker_tcp(&host, &[]);
    assert!(!o.status.success(), "plain HTTP got in: {}", stdout(&o));
    let _ = tls.kill();
    let _ = tls.wait();
}

#[test]
#[ignore = "needs root"]
fn what_the_cli_does_is_seen_through_the_socket_at_once() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let client = &docker_clients()[0];
    root.ok(&["run", "-d", "--name", "seen", "bb", "sleep", "60"]);
    let ps = docker_ok(client, &svc, root, &["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.trim(), "seen running");
    root.ok(&["rm", "-f", "seen"]);
    let o = docker(client, &svc, root, &["inspect", "seen"]);
    assert_eq!(o.status.code(), Some(1));
    let (_, body) = raw_http(&svc.socket, "GET", "/containers/json?all=1");
    assert_eq!(body, "[]");
}

/// `HostConfig.KernelMemory`, deprecated: checked and discarded with
/// dockerd's warnings up to API 1.41 (the docker CLI sends it then),
/// ignored from 1.42 on, as dockerd ignores it.
#[test]
#[ignore = "needs root"]
fn kernel_memory_is_checked_below_api_1_42_and_ignored_from_it() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let client = &docker_clients()[0];
    let old = |args: &[&str]| {
        let mut c = docker_cmd(client, &svc, root, args);
        c.env("DOCKER_API_VERSION", "1.41");
        c.output().unwrap()
    };
    let o = old(&["run", "--rm", "--kernel-memory", "4m", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("Error response from daemon: Minimum kernel memory limit allowed is 6MB"),
        "{}",
        stderr(&o)
    );
    let o = old(&["run", "--rm", "--kernel-memory", "8m", "bb", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("WARNING: Specifying a kernel memory limit is deprecated"),
        "{}",
        stderr(&o)
    );
    // From 1.42 the field is not read at all, whatever its value.
    let body = r#"{"Image": "bb", "Cmd": ["true"], "HostConfig": {"KernelMemory": 4194304}}"#;
    let (head, out) = raw_http_json(&svc.socket, "POST", "/v1.43/containers/create", body);
    assert!(head.starts_with("HTTP/1.1 201"), "{head}\n{out}");
    assert!(out.contains(r#""Warnings":[]"#), "{out}");
    let (head, out) = raw_http_json(&svc.socket, "POST", "/v1.41/containers/create", body);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}\n{out}");
    assert!(out.contains("Minimum kernel memory limit allowed is 6MB"), "{out}");
    root.ok(&["container", "prune", "-f"]);
}

/// Through the docker CLI, a command that is not there or cannot run
/// gives Docker's exit codes (the client reads them from the error's
/// words: 127, 126) and leaves the container created, as dockerd does.
#[test]
#[ignore = "needs root"]
fn start_errors_reach_the_docker_cli_as_dockerd_s() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let client = &docker_clients()[0];
    let o = docker(client, &svc, root, &["run", "--name", "typo", "bb", "nosuchcommand"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exec: \"nosuchcommand\": executable file not found in $PATH"),
        "{}",
        stderr(&o)
    );
    let o = docker(client, &svc, root, &["run", "--rm", "bb", "/etc"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exec: \"/etc\": permission denied"),
        "{}",
        stderr(&o)
    );
    let ps = docker_ok(client, &svc, root, &["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert_eq!(ps, "typo Created\n");
    let st = docker_ok(
        client,
        &svc,
        root,
        &["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "typo"],
    );
    assert_eq!(st, "created 127\n");
    root.ok(&["rm", "typo"]);
}

/// `POST /volumes/prune`: from API 1.42 only anonymous volumes unless
/// `all=true`; a client of an older version gets every unused volume
/// pruned, as dockerd prunes for it.
#[test]
#[ignore = "needs root"]
fn volume_prune_follows_the_client_s_api_version() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let client = &docker_clients()[0];
    root.ok(&["volume", "create", "kept"]);
    let o = docker(client, &svc, root, &["volume", "prune", "-f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(root.ok(&["volume", "ls", "-q"]), "kept\n");
    let mut c = docker_cmd(client, &svc, root, &["volume", "prune", "-f"]);
    let o = c.env("DOCKER_API_VERSION", "1.41").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Deleted Volumes:\nkept\n"), "{}", stdout(&o));
    assert_eq!(root.ok(&["volume", "ls", "-q"]), "");
    // Label filters choose among the unused: through the socket and the CLI.
    for (name, label) in [("va", "keep=1"), ("vb", "tier=db"), ("vc", "tier=web")] {
        root.ok(&["volume", "create", "--label", label, name]);
    }
    // The list takes the CLI's filters, through the engine's one rule.
    for filter in ["label!=keep", "driver=local", "label=tier", "name=v", "dangling=true"] {
        let args = ["volume", "ls", "-q", "--filter", filter];
        let o = docker(client, &svc, root, &args);
        assert!(o.status.success(), "{filter}: {}", stderr(&o));
        assert_eq!(stdout(&o), root.ok(&args), "{filter}");
    }
    let o = docker(client, &svc, root, &["volume", "ls", "-q", "--filter", "label!=keep"]);
    assert_eq!(stdout(&o), "vb\nvc\n");
    let o = docker(
        client,
        &svc,
        root,
        &["volume", "prune", "-f", "-a", "--filter", "label!=keep"],
    );
    assert!(
        stdout(&o).contains("Deleted Volumes:\nvb\nvc\n"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    root.ok(&["volume", "create", "--label", "tier=db", "vb"]);
    let out = root.ok(&["volume", "prune", "-f", "-a", "--filter", "label=tier=db"]);
    assert!(out.contains("Deleted Volumes:\nvb\n"), "{out}");
    assert_eq!(root.ok(&["volume", "ls", "-q"]), "va\n");
    let o = root.run(&["volume", "prune", "-f", "--filter", "name=va"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid filter 'name'"), "{}", stderr(&o));
}

/// `docker ps --filter`: every filter the CLI's `ps` takes works through
/// the socket too (volume, network, expose, before, since; the socket
/// refused them).
#[test]
#[ignore = "needs root"]
fn ps_filters_through_the_socket_are_the_cli_s() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let client = &docker_clients()[0];
    let host = root.path().join("hd");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/hd:ro", host.display());
    root.ok(&[
        "create",
        "--name",
        "first",
        "--network",
        "none",
        "-v",
        "data:/data",
        "bb",
        "true",
    ]);
    root.ok(&[
        "create",
        "--name",
        "second",
        "--network",
        "none",
        "-v",
        &bind,
        "--expose",
        "8080",
        "bb",
        "true",
    ]);
    root.ok(&["create", "--name", "third", "--network", "none", "bb", "true"]);
    let ps = |filter: &str| {
        let args = ["ps", "-a", "--filter", filter, "--format", "{{.Names}}"];
        let o = docker(client, &svc, root, &args);
        assert!(o.status.success(), "{filter}: {}", stderr(&o));
        assert_eq!(stdout(&o), root.ok(&args), "{filter}: the CLI and the socket differ");
        stdout(&o)
    };
    assert_eq!(ps("volume=data"), "first\n");
    assert_eq!(ps("volume=/hd"), "second\n");
    // Ports count for running containers only, as Docker's.
    assert_eq!(ps("expose=8080"), "");
    assert_eq!(ps("before=third"), "second\nfirst\n");
    assert_eq!(ps("since=first"), "third\nsecond\n");
    assert_eq!(ps("network=none"), "third\nsecond\nfirst\n");
    root.ok(&["rm", "first", "second", "third"]);
    root.ok(&["volume", "rm", "data"]);
}

/// The service's spare monitors waiting for a container: its children
/// `berth-monitor __monitor -` whose stdin is still the service's pipe (a
/// spare that took a container keeps its command line; its stdin is then
/// /dev/null).
fn spares_of(svc: &Service) -> Vec<i32> {
    let parent = svc.child.id().to_string();
    let mut found = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid …: the fields after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().nth(1).unwrap_or_default());
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let stdin = std::fs::read_link(e.path().join("fd/0")).unwrap_or_default();
        if ppid == Some(parent.as_str())
            && cmdline.ends_with(b"__monitor\0-\0")
            && stdin.to_string_lossy().starts_with("pipe:")
        {
            found.push(pid);
        }
    }
    found
}

/// Waits (up to 10 s) for the service to have exactly one spare monitor.
fn one_spare(svc: &Service) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = spares_of(svc);
        if s.len() == 1 {
            return s[0];
        }
        assert!(
            Instant::now() < deadline,
            "the service has spare monitors {s:?}, not one"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process is gone (or a zombie nobody reaped yet).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// A start through the service hands the container to a monitor started
/// ahead of it; a spare that died is replaced and the start still works;
/// no spare outlives the service.
#[test]
#[ignore = "needs root"]
fn a_start_takes_the_service_s_spare_monitor_and_none_outlives_it() {
    let env = Env::new();
    let root = &env.root;
    let mut svc = Service::start(root);
    let client = &docker_clients()[0];
    assert!(spares_of(&svc).is_empty(), "no spare before any start");
    docker_ok(client, &svc, root, &["run", "-d", "--name", "one", "bb", "sleep", "60"]);
    let spare = one_spare(&svc);

    let id = docker_ok(client, &svc, root, &["run", "-d", "--name", "two", "bb", "sleep", "60"]);
    let state = root.path().join("store/containers").join(id.trim()).join("state.json");
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(
        state["monitor_pid"], spare,
        "the second container's monitor is the spare"
    );
    assert_eq!(state["status"], "running");

    // A spare killed in the meantime: the start falls back to a new monitor.
    let next = one_spare(&svc);
    assert_ne!(next, spare);
    let pid = rustix::process::Pid::from_raw(next).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(next) {
        assert!(Instant::now() < deadline, "the killed spare {next} is still there");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = docker_ok(client, &svc, root, &["run", "--rm", "bb", "echo", "after"]);
    assert_eq!(out.trim(), "after");
    let ps = docker_ok(client, &svc, root, &["ps", "--format", "{{.Names}} {{.State}}"]);
    let mut names: Vec<&str> = ps.lines().collect();
    names.sort();
    assert_eq!(names, ["one running", "two running"]);

    docker_ok(client, &svc, root, &["rm", "-f", "one", "two"]);
    let last = one_spare(&svc);
    svc.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(last) {
        assert!(Instant::now() < deadline, "the spare {last} outlived the service");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `-e KEY` with KEY unset where the client runs: the docker CLI sends it
/// bare and dockerd takes it as "unset KEY" (the image's too); the
/// container's environment is Docker's defaults with the container's
/// entries laid over them in place. The expected lines are dockerd 20.10's
/// for the same image and flags; berth's own CLI gives the same.
#[test]
#[ignore = "needs root"]
fn a_bare_e_unsets_the_variable_as_dockerd_does() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let client = &docker_clients()[0];
    let tar = common::busybox_tar();
    let changes = ["-c", "ENV PATH=/bin", "-c", "ENV Z=img", "-c", "ENV Y=img"];
    root.ok(&[&["import"][..], &changes[..], &[tar.to_str().unwrap(), "envimg"]].concat());
    let args = [
        "run", "--name", "ee", "-e", "B=2", "-e", "Y", "-e", "Q", "envimg", "env",
    ];
    let mut cmd = docker_cmd(client, &svc, root, &args);
    let out = cmd.env_remove("Y").env_remove("Q").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let cli = root.ok(&[
        "run", "--name", "ee2", "-e", "B=2", "-e", "Y", "-e", "Q", "envimg", "env",
    ]);
    for (who, out) in [("docker", stdout(&out)), ("berth", cli)] {
        // HOSTNAME second, HOME (from the image's passwd) last, as runc adds it.
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{who}:\n{out}");
        assert_eq!(
            [lines[0], lines[2], lines[3]],
            ["PATH=/bin", "B=2", "Z=img"],
            "{who}:\n{out}"
        );
        assert!(
            lines[1].starts_with("HOSTNAME=") && lines[4].starts_with("HOME="),
            "{who}:\n{out}"
        );
    }
    // The caller's entries first (the docker CLI sends its -e's in no
    // fixed order), then the image's it did not name.
    let recorded = docker_ok(client, &svc, root, &["inspect", "-f", "{{json .Config.Env}}", "ee"]);
    let mut recorded: Vec<String> = serde_json::from_str(&recorded).unwrap();
    recorded[..3].sort();
    assert_eq!(recorded, ["B=2", "Q", "Y", "PATH=/bin", "Z=img"]);
    let recorded = root.ok(&["inspect", "-f", "{{json .Config.Env}}", "ee2"]);
    assert_eq!(recorded.trim(), r#"["B=2","Y","Q","PATH=/bin","Z=img"]"#);
    docker_ok(client, &svc, root, &["rm", "ee", "ee2"]);
}

/// A create naming something missing other than its image answers 400,
/// as dockerd's does; a 404 would make the docker CLI take it for a
/// missing image and pull. (The image here is named on an unreachable
/// loopback registry, so that a pull could only fail here.)
#[test]
#[ignore = "needs root"]
fn a_create_naming_what_is_missing_is_a_400_and_the_docker_cli_does_not_pull() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let client = &docker_clients()[0];
    root.ok(&["tag", "bb", "127.0.0.1:1/bb"]);
    let image = r#""Image":"127.0.0.1:1/bb","Cmd":["true"]"#;
    for (extra, message) in [
        (
            r#""HostConfig":{"NetworkMode":"nosuchnet"}"#,
            "network nosuchnet not found",
        ),
        (
            r#""HostConfig":{"VolumesFrom":["nosuchc"]}"#,
            "No such container: nosuchc",
        ),
        (
            r#""HostConfig":{"IpcMode":"container:nosuchc"}"#,
            "No such container: nosuchc",
        ),
        (
            r#""HostConfig":{"PidMode":"container:nosuchc"}"#,
            "No such container: nosuchc",
        ),
        (
            r#""HostConfig":{"Links":["nosuchc:al"]}"#,
            "could not get container for nosuchc: No such container: nosuchc",
        ),
    ] {
        let body = format!("{{{image},{extra}}}");
        let (head, out) = raw_http_json(&svc.socket, "POST", "/v1.41/containers/create", &body);
        assert!(head.starts_with("HTTP/1.1 400"), "{body}\n{head}\n{out}");
        assert_eq!(out, format!(r#"{{"message":"{message}"}}"#), "{body}");
    }
    let (head, out) = raw_http_json(&svc.socket, "POST", "/containers/create", r#"{"Image":"nosuchimage"}"#);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}\n{out}");

    let o = docker(
        client,
        &svc,
        root,
        &["run", "--rm", "--network", "nosuchnet", "127.0.0.1:1/bb", "true"],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(!stderr(&o).contains("Unable to find image"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Error response from daemon: network nosuchnet not found"),
        "{}",
        stderr(&o)
    );
    let (_, body) = raw_http(&svc.socket, "GET", "/containers/json?all=1");
    assert_eq!(body, "[]", "nothing was created");
}

/// Volumes through the socket are the engine's objects, as dockerd shows
/// them: their driver options (null when none), `CreatedAt` in seconds.
#[test]
#[ignore = "needs root"]
fn volumes_through_the_socket_show_their_options_as_dockerd_does() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    root.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "tv",
    ]);
    root.ok(&["volume", "create", "pv"]);
    let (_, list) = raw_http(&svc.socket, "GET", "/v1.41/volumes");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let (_, one) = raw_http(&svc.socket, "GET", "/v1.41/volumes/tv");
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    let tv = list["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["Name"] == "tv")
        .unwrap();
    assert_eq!(tv, &one, "list and inspect agree");
    assert_eq!(
        one["Options"],
        serde_json::json!({"device": "tmpfs", "o": "size=1m", "type": "tmpfs"})
    );
    let created = one["CreatedAt"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    let (_, pv) = raw_http(&svc.socket, "GET", "/v1.41/volumes/pv");
    let pv: serde_json::Value = serde_json::from_str(&pv).unwrap();
    assert!(pv["Options"].is_null(), "{pv}");
    assert_eq!(
        root.ok(&["volume", "inspect", "-f", "{{json .Options}}", "pv"]),
        "null\n"
    );
    root.ok(&["volume", "rm", "tv", "pv"]);
}

/// Image events name the image as dockerd 20.10's do: import, then tag
/// with the name given; tag with the new name; untag and delete by the
/// image's ID; and `--filter image=` finds them by name or ID.
#[test]
#[ignore = "needs root"]
fn image_events_name_the_image_as_dockerd_does() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let client = &docker_clients()[0];
    let tar = common::busybox_tar();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let start = now() - 1;
    let id = docker_ok(client, &svc, root, &["import", tar.to_str().unwrap(), "evimg"]);
    let id = id.trim();
    docker_ok(client, &svc, root, &["tag", "evimg", "evimg2"]);
    docker_ok(client, &svc, root, &["rmi", "evimg2"]);
    let until = (now() + 1).to_string();
    let events = |filter: &str| {
        docker_ok(
            client,
            &svc,
            root,
            &[
                "events",
                "--since",
                &start.to_string(),
                "--until",
                &until,
                "--filter",
                filter,
                "--format",
                "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
            ],
        )
    };
    // The environment imported its own image before: this one's only.
    let all = events(&format!("image={id}"));
    let want = [
        format!("import {id} {id}"),
        format!("tag {id} evimg"),
        format!("tag {id} evimg2:latest"),
        format!("untag {id} {id}"),
    ];
    assert_eq!(all.lines().collect::<Vec<_>>(), want, "{all}");
    assert_eq!(events("image=evimg2").lines().count(), 1, "by name");
    assert_eq!(
        events(&format!("image={}", &id[7..19])).lines().count(),
        4,
        "by short ID"
    );
}
