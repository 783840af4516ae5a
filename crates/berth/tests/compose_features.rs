//! The compose file features a project leans on, each seen in real
//! containers: `.env` interpolation with every operator, YAML merge keys,
//! `extends` (same file and another file), the override file and several
//! `-f` files merged, profiles (`--profile`, `COMPOSE_PROFILES`),
//! `--scale`, and secrets and configs from files, the environment and
//! inline content with their target, owner and mode. One busybox image
//! for all; every service uses `network_mode: none`. And what berth
//! cannot honour is a warning, never silence.

mod common;
#[path = "common/compose.rs"]
mod compose_helpers;

use std::path::Path;

use common::{stderr, stdout, Env, Root};
use compose_helpers::{compose, compose_env, ok, ok_env, Down};

/// The environment of service `svc`'s first container, as `env` prints it.
fn env_of(root: &Root, dir: &Path, files: &[&str], svc: &str) -> Vec<String> {
    let mut args: Vec<&str> = files.iter().flat_map(|f| ["-f", f]).collect();
    args.extend(["exec", "-T", svc, "env"]);
    let (out, _) = ok(root, dir, &args);
    let mut lines: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with("PATH=") && !l.starts_with("HOSTNAME=") && !l.starts_with("HOME="))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

const MAIN: &str = r#"x-common: &common
  image: bb
  network_mode: none
  stop_signal: SIGKILL
  command: [sleep, "1000"]
  labels:
    from.anchor: "yes"
services:
  base:
    <<: *common
    environment:
      A: ${PLAIN}
      B: $PLAIN
      C: ${UNSET:-dflt}
      D: ${EMPTY:-dflt}
      E: ${EMPTY-dflt}
      F: ${UNSET-dflt}
      G: ${PLAIN:?plain is needed}
      H: ${EMPTY?empty must be set}
      I: ${PLAIN:+alt}
      J: ${EMPTY:+alt}
      K: $$PLAIN
      L: ${UNSET:-${PLAIN:-x}-nested}
      M: ${UNSET}
  child:
    extends: base
    environment:
      A: child
  other:
    extends:
      file: common.yaml
      service: shared
    environment:
      OWN: other
  worker:
    <<: *common
  dbg:
    <<: *common
    profiles: [debug]
  extra:
    <<: *common
    profiles: [x]
"#;

const COMMON: &str = r#"services:
  shared:
    image: bb
    network_mode: none
    stop_signal: SIGKILL
    command: [sleep, "1000"]
    environment:
      FROM: common.yaml
"#;

const OVERRIDE: &str = r#"services:
  base:
    environment:
      OVR: override
"#;

const EXTRA: &str = r#"services:
  base:
    environment:
      EXTRA: extra
      A: replaced
"#;

#[test]
#[ignore = "needs root"]
fn interpolation_merge_keys_extends_files_profiles_and_scale() {
    let env = Env::new();
    let root = &env.root;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("feat");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("compose.yaml"), MAIN).unwrap();
    std::fs::write(d.join("common.yaml"), COMMON).unwrap();
    std::fs::write(d.join("compose.override.yaml"), OVERRIDE).unwrap();
    std::fs::write(d.join("extra.yaml"), EXTRA).unwrap();
    std::fs::write(d.join(".env"), "PLAIN=plain\nEMPTY=\n").unwrap();
    let _down = Down(root, d.clone());

    // The override file is read beside compose.yaml; profiled services
    // stay out; the unset variable warns in compose's words.
    let (_, err) = ok(root, &d, &["up", "-d"]);
    assert!(
        err.contains("WARN[0000] The \"UNSET\" variable is not set. Defaulting to a blank string."),
        "{err}"
    );
    for svc in ["base", "child", "other", "worker"] {
        assert_eq!(env.status(&format!("feat-{svc}-1")), "running", "{svc}");
    }
    for svc in ["dbg", "extra"] {
        assert!(
            root.run(&["inspect", &format!("feat-{svc}-1")]).status.code() != Some(0),
            "{svc} is in a profile not enabled"
        );
    }
    assert_eq!(
        env_of(root, &d, &[], "base"),
        [
            "A=plain",
            "B=plain",
            "C=dflt",
            "D=dflt",
            "E=",
            "F=dflt",
            "G=plain",
            "H=",
            "I=alt",
            "J=",
            "K=$PLAIN",
            "L=plain-nested",
            "M=",
            "OVR=override",
        ]
    );
    // YAML merge key: the anchor's labels and command came along.
    let labels = root.ok(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"from.anchor\"}}",
        "feat-worker-1",
    ]);
    assert_eq!(labels.trim(), "yes");
    // extends in the same file (overriding one variable, keeping the rest,
    // the override file's among them) and from another file.
    let child = env_of(root, &d, &[], "child");
    assert!(child.contains(&"A=child".to_string()), "{child:?}");
    assert!(child.contains(&"L=plain-nested".to_string()), "{child:?}");
    assert_eq!(env_of(root, &d, &[], "other"), ["FROM=common.yaml", "OWN=other"]);

    // Several -f files merged in order, and then no override file.
    let files = ["compose.yaml", "extra.yaml"];
    ok(root, &d, &["-f", files[0], "-f", files[1], "up", "-d", "base"]);
    let base = env_of(root, &d, &files, "base");
    assert!(base.contains(&"A=replaced".to_string()), "{base:?}");
    assert!(base.contains(&"EXTRA=extra".to_string()), "{base:?}");
    assert!(base.contains(&"B=plain".to_string()), "{base:?}");
    assert!(!base.iter().any(|l| l.starts_with("OVR=")), "{base:?}");

    // Profiles: by flag, then by COMPOSE_PROFILES.
    ok(root, &d, &["--profile", "debug", "up", "-d", "dbg"]);
    assert_eq!(env.status("feat-dbg-1"), "running");
    let (services, _) = ok_env(root, &d, &[("COMPOSE_PROFILES", "x,debug")], &["config", "--services"]);
    assert_eq!(
        services.lines().collect::<Vec<_>>(),
        ["base", "child", "dbg", "extra", "other", "worker"]
    );
    ok_env(root, &d, &[("COMPOSE_PROFILES", "x")], &["up", "-d", "extra"]);
    assert_eq!(env.status("feat-extra-1"), "running");

    // --scale: three workers, then one again.
    ok(root, &d, &["up", "-d", "--scale", "worker=3", "worker"]);
    for n in 1..=3 {
        assert_eq!(env.status(&format!("feat-worker-{n}")), "running", "worker {n}");
    }
    let (ps, _) = ok(root, &d, &["ps", "--format", "{{.Name}}", "worker"]);
    assert_eq!(
        ps.lines().collect::<Vec<_>>(),
        ["feat-worker-1", "feat-worker-2", "feat-worker-3"]
    );
    ok(root, &d, &["up", "-d", "--scale", "worker=1", "worker"]);
    assert_eq!(env.status("feat-worker-1"), "running");
    for n in 2..=3 {
        assert!(root.run(&["inspect", &format!("feat-worker-{n}")]).status.code() != Some(0));
    }

    ok(root, &d, &["--profile", "*", "down", "-t", "0", "--remove-orphans"]);
    assert_eq!(root.ok(&["ps", "-aq"]), "");
}

const SECRETS: &str = r#"services:
  app:
    image: bb
    network_mode: none
    stop_signal: SIGKILL
    command: [sleep, "1000"]
    secrets:
      - from_file
      - source: from_env
        target: env_secret
        uid: "1000"
        gid: "1001"
        mode: 0400
      - source: inline
        target: /etc/inline.txt
      - source: from_file
        target: owned
        uid: "7"
        mode: 0440
    configs:
      - app_conf
      - source: app_conf
        target: /etc/app.conf
        gid: "5"
        mode: 0640
      - source: conf_file
        target: /etc/from-file.conf
secrets:
  from_file:
    file: ./token.txt
  from_env:
    environment: SECRET_VALUE
  inline:
    content: inline secret
configs:
  app_conf:
    content: |
      key=value
  conf_file:
    file: ./app.conf
"#;

#[test]
#[ignore = "needs root"]
fn secrets_and_configs_from_files_environment_and_content() {
    let env = Env::new();
    let root = &env.root;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("sec");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("compose.yaml"), SECRETS).unwrap();
    std::fs::write(d.join("token.txt"), "from a file\n").unwrap();
    std::fs::write(d.join("app.conf"), "conf from a file\n").unwrap();
    let _down = Down(root, d.clone());
    let secret_env = [("SECRET_VALUE", "from the environment")];
    ok_env(root, &d, &secret_env, &["up", "-d"]);

    let show = |path: &str| -> String {
        let script = format!("stat -c '%a %u:%g' {path}; cat {path}");
        ok(root, &d, &["exec", "-T", "app", "sh", "-c", &script]).0
    };
    // A plain file source is the host file, bind-mounted read-only.
    assert_eq!(show("/run/secrets/from_file"), "644 0:0\nfrom a file\n");
    let w = compose_env(
        root,
        &d,
        &[],
        &["exec", "-T", "app", "sh", "-c", "echo x > /run/secrets/from_file"],
    );
    assert!(!w.status.success(), "a secret is read-only");
    assert_eq!(show("/run/secrets/env_secret"), "400 1000:1001\nfrom the environment");
    assert_eq!(show("/etc/inline.txt"), "444 0:0\ninline secret");
    assert_eq!(show("/run/secrets/owned"), "440 7:0\nfrom a file\n");
    assert_eq!(show("/app_conf"), "444 0:0\nkey=value\n");
    assert_eq!(show("/etc/app.conf"), "640 0:5\nkey=value\n");
    assert_eq!(show("/etc/from-file.conf"), "644 0:0\nconf from a file\n");

    // The values live in the container's private directory in the store,
    // never in /tmp, a layer or the log.
    let id = root.ok(&["inspect", "--format", "{{.Id}}", "sec-app-1"]);
    let files = root.path().join("store/containers").join(id.trim()).join("files");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&files).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", files.display());
    let mut found = Vec::new();
    for e in std::fs::read_dir(&files).unwrap() {
        found.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    found.sort();
    assert!(found.contains(&"from the environment".to_string()), "{found:?}");
    let (logs, _) = ok(root, &d, &["logs"]);
    assert!(!logs.contains("from the environment"), "{logs}");
    let upper = root.path().join("store/containers").join(id.trim()).join("upper");
    let grep = std::process::Command::new("grep")
        .args(["-rl", "from the environment"])
        .arg(&upper)
        .output()
        .unwrap();
    assert_eq!(stdout(&grep), "", "the secret is not in the container's layer");

    // An environment source that is not set is an error before anything is made.
    ok(root, &d, &["down", "-t", "0"]);
    let o = compose_env(root, &d, &[], &["up", "-d"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("secret \"from_env\": environment variable \"SECRET_VALUE\" is not set"),
        "{}",
        stderr(&o)
    );
    assert_eq!(root.ok(&["ps", "-aq"]), "");
    assert!(!files.exists(), "down removed the container and its files");
}

const EVENTS: &str = r#"services:
  a:
    image: bb
    network_mode: none
    stop_signal: SIGKILL
    command: [sleep, "1000"]
  b:
    image: bb
    network_mode: none
    command: ["true"]
"#;

#[test]
#[ignore = "needs root"]
fn events_are_the_projects_container_events() {
    let env = Env::new();
    let root = &env.root;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("evp");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("compose.yaml"), EVENTS).unwrap();
    let _down = Down(root, d.clone());
    // A container outside the project: not the project's events.
    root.ok(&["create", "--name", "evp-plain", "bb", "true"]);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let start = format!("{:.3}", now() - 1.0);
    ok(root, &d, &["up", "-d"]);
    ok(root, &d, &["down", "-t", "0"]);
    root.ok(&["rm", "evp-plain"]);
    // A past --until ends the stream once the journal is read.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let end = format!("{:.3}", now());

    // Text: compose's `TIME container ACTION ID (attributes)`, compose's
    // own labels left out.
    let (text, _) = ok(root, &d, &["events", "--since", &start, "--until", &end]);
    let actions: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f[2], "container", "{l}");
            assert!(!l.contains("com.docker.compose"), "{l}");
            let name = l.split("name=").nth(1).unwrap().trim_end_matches(')').to_string();
            (name, f[3].to_string())
        })
        .collect();
    for (name, action) in [
        ("evp-a-1", "create"),
        ("evp-a-1", "start"),
        ("evp-a-1", "die"),
        ("evp-a-1", "destroy"),
        ("evp-b-1", "create"),
        ("evp-b-1", "start"),
        ("evp-b-1", "die"),
        ("evp-b-1", "destroy"),
    ] {
        assert!(
            actions.contains(&(name.to_string(), action.to_string())),
            "{name} {action} missing from\n{text}"
        );
    }
    assert!(actions.iter().all(|(n, _)| n.starts_with("evp-")), "{text}");
    assert!(!text.contains("evp-plain"), "{text}");

    // JSON lines for one service.
    let (json, _) = ok(root, &d, &["events", "--json", "--since", &start, "--until", &end, "b"]);
    let mut seen = Vec::new();
    for l in json.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["type"], "container", "{l}");
        assert_eq!(v["service"], "b", "{l}");
        assert_eq!(v["attributes"]["name"], "evp-b-1", "{l}");
        assert_eq!(v["id"].as_str().unwrap().len(), 64, "{l}");
        seen.push(v["action"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.first().map(String::as_str), Some("create"), "{json}");
    assert_eq!(seen.last().map(String::as_str), Some("destroy"), "{json}");

    // An unknown service is refused.
    let o = compose_env(root, &d, &[], &["events", "nosuch"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no such service: nosuch"), "{}", stderr(&o));
}

const ATTACH: &str = r#"services:
  a:
    image: bb
    network_mode: none
    command: [echo, from-a]
  b:
    image: bb
    network_mode: none
    command: [echo, from-b]
    depends_on: [a]
"#;

#[test]
#[ignore = "needs root"]
fn attached_up_follows_the_services_it_is_told_to() {
    let env = Env::new();
    let root = &env.root;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("att");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("compose.yaml"), ATTACH).unwrap();
    let _down = Down(root, d.clone());
    // (args, whose output shows)
    let cases: [(&[&str], &[&str]); 5] = [
        (&["up"], &["a", "b"]),
        (&["up", "--attach", "b"], &["b"]),
        (&["up", "--no-attach", "b"], &["a"]),
        (&["up", "b"], &["b"]),
        (&["up", "--attach-dependencies", "b"], &["a", "b"]),
    ];
    for (args, shown) in cases {
        let (out, _) = ok(root, &d, args);
        for svc in ["a", "b"] {
            let line = format!("{svc}-1  | from-{svc}\n");
            assert_eq!(out.contains(&line), shown.contains(&svc), "{args:?}: {svc}\n{out}");
        }
        ok(root, &d, &["down", "-t", "0"]);
    }
    let o = compose_env(root, &d, &[], &["up", "--attach", "nosuch"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no such service: nosuch"), "{}", stderr(&o));
    assert_eq!(root.ok(&["ps", "-aq"]), "", "nothing made for a bad --attach");
}

/// `volumes_from`, `shm_size`, `logging.driver`, `deploy.restart_policy`,
/// `sysctls` and the memory reservation reach the containers, with no
/// warning; a `required: false` dependency that fails warns and its
/// dependent starts anyway.
#[test]
#[ignore = "needs root"]
fn settings_reach_the_containers_or_warn() {
    let env = Env::new();
    let root = &env.root;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("warned");
    std::fs::create_dir(&d).unwrap();
    let text = "services:
  data:
    image: bb
    network_mode: none
    stop_signal: SIGKILL
    command: [sh, -c, 'echo kept > /shared/f; exec sleep 1000']
    volumes: [/shared]
  app:
    image: bb
    network_mode: none
    stop_signal: SIGKILL
    command: [sleep, '1000']
    volumes_from: ['data:ro']
    shm_size: 16m
    sysctls: {net.core.somaxconn: '1024'}
    logging: {driver: none}
    deploy:
      restart_policy: {condition: on-failure, max_attempts: 2}
      resources: {reservations: {memory: 64m}}
    depends_on:
      data: {condition: service_started}
      fails: {condition: service_completed_successfully, required: false}
  fails:
    image: bb
    network_mode: none
    command: [sh, -c, 'exit 3']
";
    std::fs::write(d.join("compose.yaml"), text).unwrap();
    let _down = Down(root, d.clone());
    let (_, err) = ok(root, &d, &["up", "-d"]);
    let want =
        "WARN[0000] optional dependency \"fails\" failed: service \"fails\" didn't complete successfully: exit 3";
    assert!(err.contains(want), "no {want:?} in:\n{err}");
    assert!(
        !err.contains("not supported by berth"),
        "nothing here is ignored:\n{err}"
    );
    let (out, _) = ok(
        root,
        &d,
        &[
            "exec",
            "-T",
            "app",
            "sh",
            "-c",
            "cat /shared/f; df -k /dev/shm | tail -1; cat /proc/sys/net/core/somaxconn",
        ],
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("kept"));
    let shm: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(shm[1], "16384", "{out}");
    assert_eq!(lines.next(), Some("1024"), "sysctls reach the container: {out}");
    assert!(!err.contains("sysctls"), "{err}");
    let w = compose(root, &d, &["exec", "-T", "app", "touch", "/shared/g"]);
    assert!(!w.status.success(), "volumes_from data:ro is read-only");
    let fmt = "{{.HostConfig.LogConfig.Type}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.MemoryReservation}}";
    assert_eq!(
        root.ok(&["inspect", "--format", fmt, "warned-app-1"]),
        "none on-failure:2 67108864\n"
    );
    assert!(!err.contains("reservations"), "{err}");
}
