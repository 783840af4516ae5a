//! `berth run` end to end: real containers from a busybox image, checked
//! the way a user would see them (output, exit codes, files on the host).

mod common;

use common::{stderr, stdout, Env, Root};
use std::process::{Command, Stdio};

#[test]
#[ignore = "needs root"]
fn echo_hello_exit_codes_and_missing_things() {
    let e = Env::new();
    let r = &e.root;
    assert_eq!(r.ok(&["run", "--rm", "bb", "echo", "hello"]), "hello\n");

    let o = r.run(&["run", "--rm", "bb", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3));

    let o = r.run(&["run", "--rm", "bb", "nosuchcommand"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("nosuchcommand"), "{}", stderr(&o));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));

    let o = r.run(&["run", "--rm", "bb", "/etc"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exec: \"/etc\": permission denied"),
        "{}",
        stderr(&o)
    );

    // A container whose start failed stays created, with the exit code
    // and the reason, as Docker's does; it can be started again.
    let o = r.run(&["run", "-d", "--name", "never", "bb", "nosuchcommand"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exec: \"nosuchcommand\": executable file not found in $PATH"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        r.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]),
        "never Created\n"
    );
    let st = r.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.StartedAt}}",
        "never",
    ]);
    assert_eq!(st, "created 127 0001-01-01T00:00:00Z\n");
    // `start` fails as docker's does: 1, the reason, the names.
    let o = r.run(&["start", "never"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("executable file not found"), "{}", stderr(&o));
    assert_eq!(r.ok(&["ps", "-a", "--format", "{{.Status}}"]), "Created\n");
    r.ok(&["rm", "never"]);

    let o = r.run(&["run", "--rm", "nosuchimage"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("Unable to find image 'nosuchimage:latest' locally"),
        "{}",
        stderr(&o)
    );
    // Tests allow loopback registries only: the pull is refused unsent.
    assert!(
        stderr(&o).contains("registry docker.io is not allowed"),
        "{}",
        stderr(&o)
    );
    let o = r.run(&["run", "--rm", "--pull", "never", "nosuchimage"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("No such image: nosuchimage"), "{}", stderr(&o));

    // --rm left nothing behind.
    assert_eq!(r.ok(&["ps", "-aq"]), "");
    let left: Vec<_> = std::fs::read_dir(r.path().join("store/containers")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
#[ignore = "needs root"]
fn entrypoint_and_cmd_like_docker() {
    let e = Env::new();
    let r = &e.root;
    let tar = common::busybox_tar();
    r.ok(&[
        "import",
        "--change",
        r#"ENTRYPOINT ["ls"]"#,
        "--change",
        r#"CMD ["--help"]"#,
        tar.to_str().unwrap(),
        "lsimg",
    ]);
    // No args: ENTRYPOINT + CMD = `ls --help` (busybox prints usage on stderr).
    let o = r.run(&["run", "--rm", "lsimg"]);
    assert!(
        stderr(&o).contains("Usage: ls") || stdout(&o).contains("Usage: ls"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    // `.` replaces CMD.
    let out = r.ok(&["run", "--rm", "lsimg", "."]);
    assert!(
        out.lines().any(|l| l == "bin") && out.lines().any(|l| l == "etc"),
        "{out}"
    );
    // `-la` too.
    let out = r.ok(&["run", "--rm", "lsimg", "-la"]);
    assert!(out.contains("total") && out.contains("bin"), "{out}");
    // --entrypoint resets CMD.
    assert_eq!(
        r.ok(&["run", "--rm", "--entrypoint", "/bin/sh", "lsimg", "-c", "echo ok"]),
        "ok\n"
    );
    // --entrypoint '' clears it.
    assert_eq!(
        r.ok(&["run", "--rm", "--entrypoint", "", "lsimg", "echo", "cleared"]),
        "cleared\n"
    );
    // inspect shows Docker's Path/Args/Config.
    r.ok(&["create", "--name", "ep", "lsimg", "-la"]);
    let v: serde_json::Value = serde_json::from_str(&r.ok(&["inspect", "ep"])).unwrap();
    assert_eq!(v[0]["Path"], "ls");
    assert_eq!(v[0]["Args"], serde_json::json!(["-la"]));
    assert_eq!(v[0]["Config"]["Entrypoint"], serde_json::json!(["ls"]));
    assert_eq!(v[0]["Config"]["Cmd"], serde_json::json!(["-la"]));
    // An image without a command needs one: Docker's daemon's words.
    let o = r.run(&["run", "--rm", "bb"]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(
        stderr(&o),
        "berth: Error response from daemon: No command specified\n\nRun 'berth run --help' for more information\n"
    );
}

#[test]
#[ignore = "needs root"]
fn bind_mount_writes_a_host_file() {
    let e = Env::new();
    let r = &e.root;
    let host = tempfile::tempdir().unwrap();
    let spec = format!("{}:/test_mnt/", host.path().display());
    r.ok(&[
        "run",
        "--rm",
        "--volume",
        &spec,
        "bb",
        "sh",
        "-c",
        "echo written > /test_mnt/hello.txt",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.path().join("hello.txt")).unwrap(),
        "written\n"
    );
    // :ro refuses writes.
    let spec = format!("{}:/test_mnt:ro", host.path().display());
    let o = r.run(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "bb",
        "sh",
        "-c",
        "echo x > /test_mnt/no.txt",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!host.path().join("no.txt").exists());
}

#[test]
#[ignore = "needs root"]
fn named_volume_is_created_prefilled_and_kept() {
    let e = Env::new();
    let r = &e.root;
    // First use copies the image's /etc into the new volume.
    let out = r.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/etc",
        "bb",
        "sh",
        "-c",
        "cat /etc/passwd; echo kept > /etc/mine",
    ]);
    assert!(out.contains("root:x:0:0"), "{out}");
    let data = r.path().join("store/volumes/data/_data");
    assert!(data.join("passwd").is_file());
    assert_eq!(
        r.ok(&["run", "--rm", "-v", "data:/x", "bb", "cat", "/x/mine"]),
        "kept\n"
    );
    // --mount and --tmpfs.
    let out = r.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=data,target=/v",
        "--tmpfs",
        "/scratch",
        "bb",
        "sh",
        "-c",
        "cat /v/mine; grep /scratch /proc/mounts | cut -d' ' -f3",
    ]);
    assert_eq!(out, "kept\ntmpfs\n");
}

#[test]
#[ignore = "needs root"]
fn isolation_pid1_hostname_caps_no_mount() {
    let e = Env::new();
    let r = &e.root;
    assert_eq!(r.ok(&["run", "--rm", "bb", "sh", "-c", "echo $$"]), "1\n");
    assert_eq!(r.ok(&["run", "--rm", "--hostname", "box", "bb", "hostname"]), "box\n");
    let status = r.ok(&["run", "--rm", "bb", "cat", "/proc/self/status"]);
    let cap = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert_eq!(cap.split_whitespace().nth(1), Some("00000000a80425fb"), "{cap}");
    let o = r.run(&["run", "--rm", "bb", "mount", "-t", "tmpfs", "none", "/mnt"]);
    assert_ne!(o.status.code(), Some(0), "mount inside must fail");
    // --privileged lifts it.
    let status = r.ok(&["run", "--rm", "--privileged", "bb", "cat", "/proc/self/status"]);
    assert!(!status.contains("00000000a80425fb"));
    // Own network namespace: the default bridge's eth0 (as Docker), or only loopback.
    let out = r.ok(&["run", "--rm", "bb", "cat", "/proc/net/dev"]);
    assert!(out.contains("lo:") && out.contains("eth0"), "{out}");
    let out = r.ok(&["run", "--rm", "--network", "none", "bb", "cat", "/proc/net/dev"]);
    assert!(out.contains("lo:") && !out.contains("eth0"), "{out}");
    // Env, workdir, user, read-only.
    assert_eq!(
        r.ok(&[
            "run",
            "--rm",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "bb",
            "sh",
            "-c",
            "echo $A $(pwd) $(id -u)"
        ]),
        "1 /tmp 65534\n"
    );
    let o = r.run(&["run", "--rm", "--read-only", "bb", "touch", "/x"]);
    assert_ne!(o.status.code(), Some(0));
}

#[test]
#[ignore = "needs root"]
fn memory_limit_oom_kill_is_137_and_recorded() {
    let e = Env::new();
    let r = &e.root;
    let o = r.run(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "32m",
        "bb",
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(o.status.code(), Some(137), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        r.ok(&["inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog"]),
        "true 137\n"
    );
    let v: serde_json::Value = serde_json::from_str(&r.ok(&["inspect", "hog"])).unwrap();
    assert_eq!(v[0]["HostConfig"]["Memory"], 32 * 1024 * 1024);
}

#[test]
#[ignore = "needs root"]
fn interactive_stdin_and_a_real_tty() {
    let e = Env::new();
    let r = &e.root;
    let mut c = r.cmd(&["run", "--rm", "-i", "bb", "sh", "-c", "read x; echo got $x"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"line\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "got line\n");

    // -it under a pty (script(1)): the container sees a terminal.
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "script (bsdutils) is not installed (scripts/setup --tests installs it)"
    );
    let cmdline = format!(
        "{} --root {} run --rm -it bb sh -c 'tty; stty size >/dev/null && echo sized'",
        env!("CARGO_BIN_EXE_berth"),
        r.path().join("store").display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("sized"), "{out}");
}

#[test]
#[ignore = "needs root"]
fn names_conflicts_and_detached_rm() {
    let e = Env::new();
    let r = &e.root;
    let id = r
        .ok(&["run", "-d", "--name", "web", "bb", "sleep", "30"])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64);
    let o = r.run(&["run", "--name", "web", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("The container name \"/web\" is already in use by container"),
        "{}",
        stderr(&o)
    );
    // A failed create left no directory behind.
    assert_eq!(std::fs::read_dir(r.path().join("store/containers")).unwrap().count(), 1);
    // Random names look like Docker's.
    let id2 = r.ok(&["create", "bb", "true"]).trim().to_string();
    let name = r.ok(&["inspect", "-f", "{{.Name}}", &id2]);
    assert!(name.starts_with('/') && name.contains('_'), "{name}");
    // -d --rm: gone once it exits.
    let id3 = r.ok(&["run", "-d", "--rm", "bb", "true"]).trim().to_string();
    for _ in 0..100 {
        if !r.ok(&["ps", "-aq", "--no-trunc"]).contains(&id3) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!r.ok(&["ps", "-aq", "--no-trunc"]).contains(&id3));
    // --cidfile
    let cid = r.path().join("cid");
    let id4 = r
        .ok(&["run", "-d", "--cidfile", cid.to_str().unwrap(), "bb", "true"])
        .trim()
        .to_string();
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id4);
    r.ok(&["rm", "-f", &id]);
}

#[test]
fn a_mistyped_flag_before_the_image_is_an_unknown_flag() {
    let r = Root::new();
    r.busybox("bb");
    let o = r.run(&["run", "--rmm", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("unknown flag: --rmm"), "{}", stderr(&o));
    // Flags after the image belong to the command.
    assert_eq!(r.ok(&["run", "--rm", "bb", "ls", "-d", "/bin"]).trim(), "/bin");
}

/// `run -d --rm` needs no command line to clean up: the container's monitor
/// removes it (with its anonymous volume) through the engine library, so
/// it is gone even when the `berth` program that started it no longer
/// exists (it used to run that program again as `berth rm -f -v`).
#[test]
#[ignore = "needs root"]
fn a_detached_rm_container_is_removed_by_its_monitor_alone() {
    let e = Env::new();
    let store = e.root.path().join("store");
    let bin = tempfile::tempdir().unwrap();
    let berth = bin.path().join("berth");
    std::fs::copy(env!("CARGO_BIN_EXE_berth"), &berth).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_berth-monitor"), bin.path().join("berth-monitor")).unwrap();
    let o = Command::new(&berth)
        .arg("--root")
        .arg(&store)
        .args(["run", "-d", "--rm", "-v", "/anon", "bb", "sh", "-c", "sleep 1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(std::fs::read_dir(store.join("volumes")).unwrap().count(), 1);
    // The program that started it is gone before the container ends.
    std::fs::remove_file(&berth).unwrap();
    // Removed, with its directory and its anonymous volume (the record
    // goes first, the volume last).
    let cleaned = || {
        !e.root.ok(&["ps", "-aq", "--no-trunc"]).contains(&id)
            && !store.join("containers").join(&id).exists()
            && std::fs::read_dir(store.join("volumes")).unwrap().count() == 0
    };
    let mut done = false;
    for _ in 0..200 {
        if cleaned() {
            done = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(done, "container {id} and its anonymous volume were not removed");
}
