//! The real `docker` CLI runs containers through `berth system service`:
//! `run` (attached, `--rm`, `-d`, `-it` under a pty with Ctrl-P Ctrl-Q),
//! `logs`, `exec` (and `-it`), `attach`, `stats`, `build`, `push`/`pull`
//! against a local registry, volumes and networks, and `events` seeing
//! what berth's own CLI did. One service and one store for the file.

#[path = "common/api.rs"]
mod api;
mod common;

use std::process::{Command, Stdio};

use api::{docker, docker_clients, docker_ok, events_until_now, Service};
use common::{serve_registry, stderr, stdout, Env};

/// Runs `docker ARGS` under a pty (`script`), feeding `keys` (each after a
/// pause, so the container reads them as typed); the terminal's text and
/// the exit code.
fn under_pty(svc: &Service, root: &common::Root, args: &str, keys: &[&str]) -> (String, Option<i32>) {
    let config = root.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let mut feed = String::new();
    for k in keys {
        feed.push_str(&format!("sleep 1; printf '{k}'; "));
    }
    feed.push_str("sleep 1");
    let cmd = format!(
        "({feed}) | DOCKER_HOST={} DOCKER_CONFIG={} script -qec 'docker {args}' /dev/null",
        svc.host(),
        config.display()
    );
    let o = Command::new("timeout")
        .args(["60", "bash", "-o", "pipefail", "-c", &cmd])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (stdout(&o).replace('\r', ""), o.status.code())
}

#[test]
#[ignore = "needs root"]
fn docker_runs_execs_attaches_builds_and_pushes_through_the_socket() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let clients = docker_clients();
    let cli = &clients[0];
    let d = |args: &[&str]| docker_ok(cli, &svc, root, args);

    // Attached runs give the container's output and exit code, with both
    // clients (20.10 waits for `removed` with --rm, 28.x for `next-exit`).
    for client in &clients {
        let o = docker(
            client,
            &svc,
            root,
            &["run", "--rm", "bb", "sh", "-c", "echo out; echo err >&2; exit 3"],
        );
        assert_eq!(o.status.code(), Some(3), "{}: {}", client.display(), stderr(&o));
        assert_eq!(stdout(&o), "out\n");
        assert_eq!(stderr(&o), "err\n");
    }
    let o = docker(
        cli,
        &svc,
        root,
        &[
            "run",
            "--name",
            "kept",
            "-e",
            "A=1",
            "-l",
            "k=v",
            "bb",
            "sh",
            "-c",
            "echo $A; exit 4",
        ],
    );
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(4), "1\n"));
    assert_eq!(
        root.ok(&[
            "inspect",
            "--format",
            "{{.State.ExitCode}} {{index .Config.Labels \"k\"}}",
            "kept"
        ])
        .trim(),
        "4 v"
    );
    // `start -a` of a container that ran before: the attach waits for the
    // start, so the output of each run comes, as with dockerd.
    for client in &clients {
        let o = docker(client, &svc, root, &["start", "-a", "kept"]);
        assert_eq!(
            (o.status.code(), stdout(&o).as_str()),
            (Some(4), "1\n"),
            "{}: {}",
            client.display(),
            stderr(&o)
        );
    }
    d(&["rm", "kept"]);

    // Detached, with a port, a volume, a tmpfs and resources: what berth's
    // inspect shows is what the API was given.
    d(&["volume", "create", "data"]);
    let id = d(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1::8080",
        "-v",
        "data:/data",
        "--tmpfs",
        "/scratch",
        "--memory",
        "64m",
        "--restart",
        "on-failure:2",
        "--cap-drop",
        "MKNOD",
        "bb",
        "sh",
        "-c",
        "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.2; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    let shown = root.ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}} {{range .Mounts}}{{.Destination}} {{end}}",
        "web",
    ]);
    assert!(shown.starts_with("67108864 on-failure"), "{shown}");
    assert!(shown.contains("/data"), "{shown}");
    let port = d(&["port", "web", "8080"]);
    assert!(port.starts_with("127.0.0.1:"), "{port}");
    let ps = d(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ps.contains("web 127.0.0.1:"), "{ps}");

    // Logs: tail, timestamps, follow.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !d(&["logs", "web"]).contains("line2") {
        assert!(std::time::Instant::now() < deadline, "no logs");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let tail = d(&["logs", "--tail", "1", "-t", "web"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.contains("Z line"), "{tail}");
    let mut follow = api::docker_cmd(cli, &svc, root, &["logs", "-f", "web"]);
    let mut child = follow.stdout(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
    for _ in 0..5 {
        std::io::BufRead::read_line(&mut r, &mut first).unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.starts_with("line0\nline1\n"), "{first}");

    // Exec: output, exit code, environment, user.
    let o = docker(
        cli,
        &svc,
        root,
        &[
            "exec",
            "-e",
            "B=2",
            "-u",
            "1000",
            "web",
            "sh",
            "-c",
            "echo $B $(id -u); exit 7",
        ],
    );
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(7), "2 1000\n"),
        "{}",
        stderr(&o)
    );
    let o = docker(cli, &svc, root, &["exec", "web", "nosuch"]);
    assert_ne!(o.status.code(), Some(0));

    // exec -it under a terminal: a tty, input, the exit code.
    let (text, code) = under_pty(&svc, root, "exec -it web sh", &["tty; echo $((6*7))\\r", "exit 5\\r"]);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("42"), "{text}");
    assert_eq!(code, Some(5), "{text}");

    // run -it, detach with Ctrl-P Ctrl-Q, attach again, detach again.
    let (text, code) = under_pty(&svc, root, "run -it --name it bb sh", &["echo in-run\\r", "\\x10\\x11"]);
    assert!(text.contains("in-run"), "{text}");
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(env.status("it"), "running");
    let (text, _) = under_pty(&svc, root, "attach it", &["echo attached-again\\r", "\\x10\\x11"]);
    assert!(text.contains("attached-again"), "{text}");
    assert_eq!(env.status("it"), "running");

    // Stats, one sample.
    let stats = d(&["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "web"]);
    assert!(stats.starts_with("web "), "{stats}");

    // A build through /build (the classic protocol), then run it.
    let ctx = root.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb AS base\nARG MSG=none\nRUN echo built-$MSG > /msg\nFROM base AS final\nLABEL made=api\nCMD [\"cat\", \"/msg\"]\nFROM base AS other\nRUN false\n",
    )
    .unwrap();
    let mut b = api::docker_cmd(
        cli,
        &svc,
        root,
        &[
            "build",
            "-t",
            "built:1",
            "--build-arg",
            "MSG=hey",
            "--target",
            "final",
            ctx.to_str().unwrap(),
        ],
    );
    let o = b.env("DOCKER_BUILDKIT", "0").output().unwrap();
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("Successfully tagged built:1"), "{}", stdout(&o));
    assert_eq!(d(&["run", "--rm", "built:1"]), "built-hey\n");
    assert_eq!(
        root.ok(&["inspect", "--format", "{{.Config.Labels.made}}", "built:1"])
            .trim(),
        "api"
    );
    let mut b = api::docker_cmd(cli, &svc, root, &["build", "--target", "other", ctx.to_str().unwrap()]);
    let o = b.env("DOCKER_BUILDKIT", "0").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "a failing step fails the build");

    // push and pull against a registry on loopback.
    let reg = root.path().join("registry");
    std::fs::create_dir_all(&reg).unwrap();
    let (mut registry, port) = serve_registry(&reg, "", "", Stdio::null());
    let name = format!("127.0.0.1:{port}/team/built:1");
    d(&["tag", "built:1", &name]);
    let pushed = d(&["push", &name]);
    assert!(pushed.contains("digest: sha256:"), "{pushed}");
    d(&["rmi", &name, "built:1"]);
    let pulled = d(&["pull", &name]);
    assert!(
        pulled.contains("Downloaded newer image") || pulled.contains(&name),
        "{pulled}"
    );
    assert_eq!(d(&["run", "--rm", &name]), "built-hey\n");
    let _ = registry.kill();
    let _ = registry.wait();

    // Networks and volumes.
    d(&["network", "create", "--subnet", "10.77.0.0/24", "apinet"]);
    let nets = d(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(nets.contains("apinet bridge"), "{nets}");
    let o = docker(cli, &svc, root, &["network", "create", "apinet"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    d(&["network", "rm", "apinet"]);
    let vols = d(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(vols.lines().any(|l| l == "data"), "{vols}");
    let o = docker(cli, &svc, root, &["volume", "rm", "data"]);
    assert!(stderr(&o).contains("volume is in use"), "{}", stderr(&o));

    // Events: what berth's own CLI does appears in `docker events`.
    root.ok(&["run", "--rm", "--name", "from-cli", "bb", "true"]);
    let until = events_until_now();
    let ev = d(&[
        "events",
        "--since",
        "5m",
        "--until",
        &until,
        "--filter",
        "container=from-cli",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let lines: Vec<&str> = ev.lines().collect();
    assert_eq!(
        lines,
        [
            "container create from-cli",
            "container attach from-cli",
            "container start from-cli",
            "container die from-cli",
            "container destroy from-cli"
        ],
        "{ev}"
    );
    let ev = d(&[
        "events",
        "--since",
        "5m",
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
    ]);
    assert!(ev.contains(&format!("push {name} {name}")), "{ev}");
    // As dockerd: a tag event names the image by its ID, the tag by name.
    let tag = ev.lines().find(|l| l.starts_with("tag ") && l.ends_with(" built:1"));
    let built = tag.and_then(|l| l.split(' ').nth(1)).unwrap_or_default();
    assert!(built.starts_with("sha256:"), "{ev}");
    assert!(ev.contains(&format!("untag {built} {built}")), "{ev}");

    d(&["rm", "-f", "web", "it"]);
    d(&["volume", "rm", "data"]);
    assert_eq!(root.ok(&["ps", "-aq"]).trim(), "");
}
