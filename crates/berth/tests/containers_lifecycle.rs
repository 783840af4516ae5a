//! The container lifecycle after `run`: ps, logs, stop/start/restart, kill,
//! rm, wait, rename, pause, exec, inspect, cp, diff, commit, export, prune,
//! and what happens when a monitor is killed.

mod common;

use common::{stderr, stdout, Env};
use std::process::Command;
use std::time::{Duration, Instant};

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
#[ignore = "needs root"]
fn ps_stop_start_restart_rm() {
    let e = Env::new();
    let r = &e.root;
    let id = r
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-l",
            "tier=front",
            "bb",
            "sh",
            "-c",
            "trap 'exit 0' TERM; sleep 1000000 & wait",
        ])
        .trim()
        .to_string();
    let ps = r.ok(&["ps"]);
    let mut lines = ps.lines();
    let header = lines.next().unwrap();
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let row = lines.next().unwrap();
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains("\"sh -c 'trap 'exit 0…\""), "{row}");
    assert!(row.contains("Up "), "{row}");
    assert!(row.trim_end().ends_with("web"), "{row}");
    // Filters and formats.
    assert_eq!(r.ok(&["ps", "-q", "--filter", "label=tier=front"]).trim(), &id[..12]);
    assert_eq!(r.ok(&["ps", "-q", "--filter", "name=nomatch"]), "");
    assert_eq!(r.ok(&["ps", "--format", "{{.Names}} {{.State}}"]), "web running\n");
    assert_eq!(r.ok(&["ps", "-q", "--no-trunc", "--filter", "ancestor=bb"]).trim(), id);
    // A prefix of the ID works everywhere.
    assert_eq!(r.ok(&["inspect", "-f", "{{.Name}}", &id[..5]]), "/web\n");

    // rm refuses a running container.
    let o = r.run(&["rm", "web"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("cannot remove container \"/web\": container is running: stop the container before removing or force remove"), "{}", stderr(&o));

    // stop: the trap exits 0.
    assert_eq!(r.ok(&["stop", "web"]), "web\n");
    let st = r.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(st.starts_with("Exited (0) "), "{st}");
    assert_eq!(r.ok(&["ps", "-q"]), "");
    assert_eq!(
        r.ok(&["inspect", "-f", "{{.State.Status}} {{.State.Running}}", "web"]),
        "exited false\n"
    );

    // start and restart.
    r.ok(&["start", "web"]);
    assert_eq!(r.ok(&["inspect", "-f", "{{.State.Status}}", "web"]), "running\n");
    let pid1 = r.ok(&["inspect", "-f", "{{.State.Pid}}", "web"]);
    r.ok(&["restart", "-t", "1", "web"]);
    let pid2 = r.ok(&["inspect", "-f", "{{.State.Pid}}", "web"]);
    assert_ne!(pid1, pid2);
    assert_eq!(r.ok(&["inspect", "-f", "{{.State.Status}}", "web"]), "running\n");

    // kill -s, then wait reports 128+9.
    r.ok(&["kill", "-s", "KILL", "web"]);
    assert_eq!(r.ok(&["wait", "web"]), "137\n");

    r.ok(&["rename", "web", "web2"]);
    assert_eq!(r.ok(&["ps", "-a", "--format", "{{.Names}}"]), "web2\n");
    assert_eq!(r.ok(&["rm", "web2"]), "web2\n");
    let o = r.run(&["rm", "web2"]);
    assert!(stderr(&o).contains("No such container: web2"), "{}", stderr(&o));
    let o = r.run(&["logs", "nothere"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Error response from daemon: No such container: nothere"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root"]
fn logs_wait_exec_pause_top_stats() {
    let e = Env::new();
    let r = &e.root;
    r.ok(&[
        "run",
        "-d",
        "--name",
        "talk",
        "bb",
        "sh",
        "-c",
        "echo one; echo two >&2; sleep 0.3; echo three",
    ]);
    assert_eq!(r.ok(&["wait", "talk"]), "0\n");
    let o = r.run(&["logs", "talk"]);
    assert_eq!(stdout(&o), "one\nthree\n");
    assert_eq!(stderr(&o), "two\n");
    assert_eq!(r.ok(&["logs", "--tail", "1", "talk"]), "three\n");
    // --details: each line after its attributes (none here) and a space.
    assert_eq!(r.ok(&["logs", "--details", "--tail", "1", "talk"]), " three\n");
    let ts = r.ok(&["logs", "-t", "--tail", "1", "talk"]);
    assert!(ts.ends_with(" three\n") && ts.contains('T') && ts.contains('Z'), "{ts}");
    assert_eq!(r.ok(&["logs", "--since", "1h", "talk"]), "one\nthree\n");
    assert_eq!(r.ok(&["logs", "--until", "2000-01-01T00:00:00Z", "talk"]), "");

    r.ok(&["run", "-d", "--name", "live", "bb", "sleep", "1000"]);
    // logs -f ends when the container does.
    r.ok(&[
        "run",
        "-d",
        "--name",
        "ff",
        "bb",
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.2; done",
    ]);
    assert_eq!(r.ok(&["logs", "-f", "ff"]), "1\n2\n3\n");

    assert_eq!(
        r.ok(&["exec", "live", "sh", "-c", "echo in $(hostname)"]).len(),
        "in \n".len() + 12
    );
    let o = r.run(&["exec", "live", "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5));
    let o = r.run(&["exec", "live", "nosuch"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert_eq!(
        r.ok(&[
            "exec",
            "-e",
            "X=y",
            "-w",
            "/etc",
            "-u",
            "nobody",
            "live",
            "sh",
            "-c",
            "echo $X $(pwd) $(id -u)"
        ]),
        "y /etc 65534\n"
    );
    r.ok(&["exec", "-d", "live", "touch", "/tmp/detached"]);
    eventually("exec -d to run", || {
        r.run(&["exec", "live", "test", "-f", "/tmp/detached"]).status.success()
    });
    // `exec -d` keeps nothing of the caller's open: the pipe on berth's
    // output ends when berth does, while the command goes on (it used to
    // hold the pipe until the command ended, and print into it).
    let o = r.run(&["exec", "-d", "live", "sh", "-c", "echo never-shown; exec sleep 30"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
    assert!(
        r.ok(&["exec", "live", "ps"]).contains("sleep 30"),
        "the detached command still runs after its caller's pipe closed"
    );

    let top = r.ok(&["top", "live"]);
    assert!(
        top.starts_with("UID") && top.contains("PID") && top.contains("sleep 1000"),
        "{top}"
    );
    // ps options: the container's processes only, in those columns.
    let top = r.ok(&["top", "live", "-o", "pid,args"]);
    let lines: Vec<&str> = top.lines().collect();
    assert!(
        lines[0].starts_with("PID") && lines[0].trim_end().ends_with("COMMAND"),
        "{top}"
    );
    assert!(lines[1..].iter().all(|l| !l.contains("berth")), "{top}");
    assert!(lines.iter().any(|l| l.ends_with("sleep 1000")), "{top}");
    let o = r.run(&["top", "live", "-o", "user=PID"]);
    assert!(
        stderr(&o).contains("specifying \"user=PID\" is not allowed"),
        "{}",
        stderr(&o)
    );
    let stats = r.ok(&["stats", "--no-stream"]);
    assert!(
        stats.contains("CONTAINER ID") && stats.contains("MEM USAGE / LIMIT") && stats.contains("live"),
        "{stats}"
    );

    r.ok(&["pause", "live"]);
    assert!(r.ok(&["ps", "--format", "{{.Status}}"]).contains("(Paused)"));
    let o = r.run(&["exec", "live", "true"]);
    assert_ne!(o.status.code(), Some(0));
    r.ok(&["unpause", "live"]);
    assert_eq!(r.ok(&["inspect", "-f", "{{.State.Status}}", "live"]), "running\n");
    assert_eq!(r.ok(&["port", "live"]), "");
    r.ok(&["rm", "-f", "live"]);
    assert!(!r.ok(&["ps", "-a"]).contains("live"));
}

#[test]
#[ignore = "needs root"]
fn inspect_has_dockers_shape() {
    let e = Env::new();
    let r = &e.root;
    let host = tempfile::tempdir().unwrap();
    let bind = format!("{}:/data:ro", host.path().display());
    r.ok(&[
        "create",
        "--name",
        "shape",
        "-e",
        "A=b",
        "-v",
        &bind,
        "--restart",
        "on-failure:3",
        "--cpus",
        "0.5",
        "bb",
        "sh",
        "-c",
        "true",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.ok(&["inspect", "shape"])).unwrap();
    let c = &v[0];
    for k in [
        "Id",
        "Created",
        "Path",
        "Args",
        "State",
        "Image",
        "ResolvConfPath",
        "HostnamePath",
        "HostsPath",
        "LogPath",
        "Name",
        "RestartCount",
        "Driver",
        "Platform",
        "MountLabel",
        "Mounts",
        "Config",
        "HostConfig",
        "NetworkSettings",
    ] {
        assert!(c.get(k).is_some(), "missing {k}");
    }
    for k in [
        "Status",
        "Running",
        "Paused",
        "Restarting",
        "OOMKilled",
        "Dead",
        "Pid",
        "ExitCode",
        "Error",
        "StartedAt",
        "FinishedAt",
    ] {
        assert!(c["State"].get(k).is_some(), "missing State.{k}");
    }
    assert_eq!(c["State"]["Status"], "created");
    assert_eq!(c["Name"], "/shape");
    assert_eq!(c["Path"], "sh");
    assert!(c["Config"]["Env"].as_array().unwrap().iter().any(|e| e == "A=b"));
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(c["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 3);
    assert_eq!(c["HostConfig"]["NanoCpus"], 500_000_000);
    assert_eq!(c["Mounts"][0]["Type"], "bind");
    assert_eq!(c["Mounts"][0]["Destination"], "/data");
    assert_eq!(c["Mounts"][0]["RW"], false);
    assert!(c["Image"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(r.ok(&["inspect", "-f", "{{.Config.Image}}", "shape"]), "bb\n");
}

#[test]
#[ignore = "needs root"]
fn cp_both_ways_and_never_outside_the_container() {
    let e = Env::new();
    let r = &e.root;
    let id = r
        .ok(&[
            "run",
            "-d",
            "bb",
            "sh",
            "-c",
            "echo content > /test.txt; mkdir -p /d/sub; echo deep > /d/sub/f; ln -s / /escape",
        ])
        .trim()
        .to_string();
    r.ok(&["wait", &id]);
    // From a stopped container, as in the course.
    let work = tempfile::tempdir().unwrap();
    let o = r
        .cmd(&["cp", &format!("{id}:/test.txt"), "./"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(work.path().join("test.txt")).unwrap(),
        "content\n"
    );
    // A directory into a new name, and a tar stream.
    let dst = work.path().join("copied");
    r.ok(&["cp", &format!("{}:/d", &id[..12]), dst.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(dst.join("sub/f")).unwrap(), "deep\n");
    let o = r.run(&["cp", &format!("{id}:/d"), "-"]);
    let mut names: Vec<String> = tar::Archive::new(&o.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["d/", "d/sub/", "d/sub/f"]);
    // The stopped container's rootfs is not left mounted.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(r.path().to_str().unwrap()), "{mounts}");

    // Into a container through a symlink to `/`: lands in the container.
    let marker = format!("berth-cve-test-{}", std::process::id());
    let src = work.path().join("payload");
    std::fs::write(&src, "payload\n").unwrap();
    r.ok(&["cp", src.to_str().unwrap(), &format!("{id}:/escape/tmp/{marker}")]);
    assert!(
        !std::path::Path::new("/tmp").join(&marker).exists(),
        "cp wrote on the host!"
    );
    r.ok(&["start", &id]);
    r.ok(&["wait", &id]);
    let o = r.run(&["cp", &format!("{id}:/tmp/{marker}"), "-"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("payload"));
    // Reading through the symlink stays inside too.
    let o = r.run(&["cp", &format!("{id}:/escape/etc/shadow"), work.path().to_str().unwrap()]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "read the host's /etc/shadow through the container"
    );
    assert!(!work.path().join("shadow").exists());
    // A tar stream into a running container.
    r.ok(&["run", "-d", "--name", "run", "bb", "sleep", "1000"]);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, "fromtar.txt", &b"hi\n"[..]).unwrap();
    let data = b.into_inner().unwrap();
    let mut c = r.cmd(&["cp", "-", "run:/tmp"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&data).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(r.ok(&["exec", "run", "cat", "/tmp/fromtar.txt"]), "hi\n");
}

#[test]
#[ignore = "needs root"]
fn diff_commit_export_prune() {
    let e = Env::new();
    let r = &e.root;
    r.ok(&[
        "run",
        "--name",
        "ch",
        "bb",
        "sh",
        "-c",
        "echo new > /tmp/added; rm /etc/group; echo x >> /etc/passwd",
    ]);
    let diff = r.ok(&["diff", "ch"]);
    let lines: Vec<&str> = diff.lines().collect();
    assert!(lines.contains(&"C /tmp"), "{diff}");
    assert!(lines.contains(&"A /tmp/added"), "{diff}");
    assert!(lines.contains(&"D /etc/group"), "{diff}");
    assert!(lines.contains(&"C /etc/passwd"), "{diff}");
    assert!(!diff.contains("/etc/hosts") && !diff.contains("/proc"), "{diff}");

    // An image without /etc: the directory made for /etc/hosts and the
    // other runtime files is no change of the container's (Docker keeps it
    // in its init layer); a file written there is.
    let bare = tempfile::tempdir().unwrap();
    std::fs::create_dir(bare.path().join("bin")).unwrap();
    std::fs::copy("/bin/busybox", bare.path().join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bare.path().join("bin/sh")).unwrap();
    let tar = bare.path().join("bare.tar");
    let st = Command::new("tar")
        .args(["--exclude", "./bare.tar", "-C"])
        .arg(bare.path())
        .args(["-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    r.ok(&["import", tar.to_str().unwrap(), "bare"]);
    r.ok(&["run", "--name", "bare", "--network", "none", "bare", "sh", "-c", "true"]);
    assert_eq!(r.ok(&["diff", "bare"]), "");
    r.ok(&[
        "run",
        "--name",
        "bare2",
        "--network",
        "none",
        "bare",
        "sh",
        "-c",
        "echo x > /etc/new",
    ]);
    assert_eq!(r.ok(&["diff", "bare2"]), "A /etc\nA /etc/new\n");
    // A container that changed nothing commits to no layer: only a
    // history entry, as dockerd commits it; the image names the container.
    let bare_id = r.ok(&["inspect", "-f", "{{.Id}}", "bare"]);
    r.ok(&["commit", "bare", "unchanged"]);
    let layers = |img: &str| r.ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", img]);
    assert_eq!(layers("unchanged"), layers("bare"));
    assert_eq!(
        r.ok(&["history", "--format", "{{.Size}}", "unchanged"]).lines().next(),
        Some("0B")
    );
    assert_eq!(
        r.ok(&["image", "inspect", "-f", "{{.Container}}", "unchanged"]),
        bare_id
    );
    r.ok(&["rm", "bare", "bare2"]);
    r.ok(&["rmi", "unchanged"]);

    let id = r.ok(&[
        "commit",
        "-m",
        "snap",
        "-c",
        "CMD [\"cat\", \"/tmp/added\"]",
        "ch",
        "snap:1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(r.ok(&["run", "--rm", "snap:1"]), "new\n");
    // An image without PATH: the process has Docker's default one, while
    // the container's and the committed image's Env record none (as Docker's).
    assert_eq!(r.ok(&["inspect", "-f", "{{json .Config.Env}}", "ch"]), "null\n");
    assert_eq!(
        r.ok(&["image", "inspect", "-f", "{{json .Config.Env}}", "snap:1"]),
        "null\n"
    );
    assert_eq!(
        r.ok(&["run", "--rm", "snap:1", "sh", "-c", "echo $PATH"]),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    let o = r.run(&["run", "--rm", "snap:1", "cat", "/etc/group"]);
    assert_ne!(o.status.code(), Some(0), "the deletion is committed too");

    let o = r.run(&["export", "ch"]);
    assert!(o.status.success());
    let names: Vec<String> = tar::Archive::new(&o.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "tmp/added"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"));
    assert!(!names.iter().any(|n| n == "etc/group"));

    r.ok(&["run", "-d", "--name", "keep", "bb", "sleep", "1000"]);
    r.ok(&["create", "--name", "fresh", "bb", "true"]);
    let out = r.ok(&["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:"), "{out}");
    assert_eq!(r.ok(&["ps", "-a", "--format", "{{.Names}}"]), "keep\n");
}

#[test]
#[ignore = "needs root"]
fn killed_monitor_is_recovered_not_invented() {
    let e = Env::new();
    let r = &e.root;
    let id = r.ok(&["run", "-d", "bb", "sleep", "1000"]).trim().to_string();
    let state_file = r.path().join("store/containers").join(&id).join("state.json");
    let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    let monitor = st["monitor_pid"].as_i64().unwrap() as i32;
    let pid = st["pid"].as_i64().unwrap() as i32;
    // SAFETY-free: kill(2) through std's Command.
    assert!(std::process::Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap()
        .success());
    // The container itself still runs: ps says so.
    std::thread::sleep(Duration::from_millis(200));
    assert!(r.ok(&["ps", "--format", "{{.Status}}"]).starts_with("Up "));
    // Once it is gone too, ps records an unknown exit (255), never a made-up 0.
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    eventually("the container to be seen as exited", || {
        r.ok(&["ps", "-a", "--format", "{{.Status}}"])
            .starts_with("Exited (255)")
    });
    let err = r.ok(&["inspect", "-f", "{{.State.Error}}", &id]);
    assert!(err.contains("monitor died"), "{err}");
    r.ok(&["rm", &id]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(r.path().to_str().unwrap()));
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}")).exists());
}

/// The engine records a container running before its program runs: the
/// program, reading its own state (its hostname is its short ID), finds
/// itself running with its own pid, on every start, the first and a restart.
#[test]
#[ignore = "needs root"]
fn a_program_finds_itself_recorded_running() {
    let e = Env::new();
    let r = &e.root;
    let containers = r.path().join("store/containers");
    let script = "cat /c/$(hostname)*/state.json";
    let volume = format!("{}:/c:ro", containers.display());
    let running = |out: &str| {
        let st: serde_json::Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(st["status"], "running", "{out}");
        assert!(st["pid"].as_i64().unwrap() > 0, "{out}");
    };
    for _ in 0..3 {
        running(&r.ok(&["run", "--rm", "-v", &volume, "bb", "sh", "-c", script]));
    }
    // A second start of the same container.
    running(&r.ok(&["run", "--name", "again", "-v", &volume, "bb", "sh", "-c", script]));
    running(&r.ok(&["start", "-a", "again"]));
    r.ok(&["rm", "again"]);
}

/// `--log-opt max-size=…,max-file=…` (json-file): the log is rotated as
/// Docker's driver does, `logs` reads what is kept in order, `logs -f`
/// follows across a rotation; bad options get the daemon's words.
#[test]
#[ignore = "needs root"]
fn log_opts_rotate_the_log_and_logs_read_it_in_order() {
    let env = Env::new();
    let root = &env.root;
    let id = root.ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        "bb",
        "sh",
        "-c",
        // Paced (about one rotation per pause): a follower that falls more
        // than max-file rotations behind loses lines, in Docker too.
        "sleep 0.5; i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); [ $((i % 20)) = 0 ] && sleep 0.05; done; true",
    ]);
    let id = id.trim();
    // Following from the start sees every line, rotations included.
    let follow = root.run(&["logs", "-f", id]);
    let followed: Vec<String> = stdout(&follow).lines().map(String::from).collect();
    let all: Vec<String> = (0..400).map(|i| format!("line-{i}")).collect();
    assert_eq!(followed, all, "logs -f across rotations");
    let log_path = root.ok(&["inspect", "--format", "{{.LogPath}}", id]);
    let dir = std::path::Path::new(log_path.trim()).parent().unwrap().to_path_buf();
    let logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("ctr.log"))
        .collect();
    assert_eq!(logs.len(), 3, "{logs:?}");
    // What is kept: the newest lines, in order, ending with the last.
    let kept = root.ok(&["logs", id]);
    let kept: Vec<&str> = kept.lines().collect();
    assert!(kept.len() < 400 && kept.len() > 20, "{}", kept.len());
    assert_eq!(kept.last(), Some(&"line-399"));
    let first: usize = kept[0]["line-".len()..].parse().unwrap();
    assert_eq!(kept, all[first..].iter().map(String::as_str).collect::<Vec<_>>());
    let fmt = root.ok(&["inspect", "--format", "{{json .HostConfig.LogConfig}}", id]);
    assert_eq!(
        fmt.trim(),
        r#"{"Type":"json-file","Config":{"max-file":"3","max-size":"2k"}}"#
    );
    root.ok(&["rm", id]);

    for (opt, want) in [
        ("max-size=0", "max-size must be a positive number"),
        ("max-file=0", "max-file cannot be less than 1"),
        ("bogus=1", "unknown log opt 'bogus' for json-file log driver"),
    ] {
        // `run` ends 125 on a daemon error (`create` ends 1, as Docker's).
        let o = root.run(&["run", "--rm", "--log-opt", opt, "bb", "true"]);
        assert_eq!(o.status.code(), Some(125), "{opt}");
        assert!(stderr(&o).contains(want), "{opt}: {}", stderr(&o));
    }
}
