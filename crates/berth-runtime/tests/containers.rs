//! Real containers through the OCI runtime (root; skipped without runc/crun).

mod common;
use berth_runtime::*;
use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[test]
#[ignore = "needs root"]
fn echo_hello_is_logged_in_json_file_format() {
    need_root();
    let c = Ctr::new("hello", &["echo", "hello"]);
    assert_eq!(c.run().unwrap(), 0);
    let log = std::fs::read_to_string(c.dir.join("ctr.log")).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "hello\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    let st = c.state();
    assert_eq!((st.status.as_str(), st.exit_code), ("exited", 0));
    assert!(st.started_at.is_some() && st.finished_at.is_some());
}

#[test]
#[ignore = "needs root"]
fn exit_code_and_stderr() {
    need_root();
    let c = Ctr::new("exit3", &["sh", "-c", "echo oops >&2; exit 3"]);
    assert_eq!(c.run().unwrap(), 3);
    let log = std::fs::read_to_string(c.dir.join("ctr.log")).unwrap();
    assert!(log.contains(r#""log":"oops\n","stream":"stderr""#), "{log}");
    assert_eq!(c.state().exit_code, 3);
}

#[test]
#[ignore = "needs root"]
fn missing_command_is_127_and_not_executable_is_126() {
    need_root();
    let c = Ctr::new("missing", &["no-such-command"]);
    let e = c.run().unwrap_err();
    assert_eq!(e.exit_code(), 127, "{e}");
    assert!(e.to_string().contains("no-such-command"), "{e}");
    assert_eq!(c.state().exit_code, 127);
    // It never ran: it stays created, as Docker's does.
    assert_eq!(c.state().status, "created");

    let c = Ctr::new("notexec", &["/etc/passwd"]);
    let e = c.run().unwrap_err();
    assert_eq!(e.exit_code(), 126, "{e}");
}

#[test]
#[ignore = "needs root"]
fn pid1_caps_hostname_user_and_env() {
    need_root();
    let mut c = Ctr::new("inside", &[
        "sh",
        "-c",
        "echo pid=$$; grep CapEff /proc/self/status; echo host=$(hostname); echo env=$HOSTNAME; echo path=$PATH; id -u",
    ]);
    c.cfg.hostname = "myhost".into();
    assert_eq!(c.run().unwrap(), 0);
    let out = c.output();
    assert!(out.contains("pid=1\n"), "{out}");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("host=myhost\n"), "{out}");
    assert!(out.contains("env=myhost\n"), "{out}");
    assert!(
        out.contains("path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"),
        "{out}"
    );
    assert!(out.ends_with("0\n"), "{out}");

    let mut c = Ctr::new("nobody", &["sh", "-c", "id -u; id -g; grep CapEff /proc/self/status"]);
    c.cfg.user = "app".into();
    assert_eq!(c.run().unwrap(), 0);
    let out = c.output();
    assert!(out.starts_with("1000\n1000\n"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
}

#[test]
#[ignore = "needs root"]
fn mounting_inside_is_denied_and_masks_apply() {
    need_root();
    let c = Ctr::new("nomount", &[
        "sh",
        "-c",
        "mount -t tmpfs x /mnt && echo MOUNTED; unshare -n true && echo UNSHARED; echo timer=$(wc -c < /proc/timer_list); echo fw=$(ls /sys/firmware | wc -l); echo x > /proc/sys/kernel/domainname || echo ro-ok",
    ]);
    c.run().unwrap();
    let out = c.output();
    assert!(!out.contains("MOUNTED"), "{out}");
    assert!(!out.contains("UNSHARED"), "{out}");
    assert!(out.contains("timer=0"), "{out}");
    assert!(out.contains("fw=0"), "{out}");
    assert!(out.contains("ro-ok"), "{out}");
}

#[test]
#[ignore = "needs root"]
fn loopback_is_up_in_private_network() {
    need_root();
    let c = Ctr::new("lo", &["sh", "-c", "ip addr show lo; ip link | grep -c '^[0-9]'"]);
    c.run().unwrap();
    let out = c.output();
    assert!(out.contains("inet 127.0.0.1/8"), "{out}");
    assert!(out.contains("UP"), "{out}");
    assert!(out.trim_end().ends_with('1'), "only lo expected: {out}");
}

#[test]
#[ignore = "needs root"]
fn etc_files_are_bound() {
    need_root();
    let mut c = Ctr::new("etc", &["sh", "-c", "cat /etc/hostname; grep webhost /etc/hosts"]);
    c.cfg.hostname = "webhost".into();
    c.run().unwrap();
    let out = c.output();
    assert!(out.starts_with("webhost\n"), "{out}");
    assert!(out.contains("127.0.0.1\twebhost"), "{out}");
}

#[test]
#[ignore = "needs root"]
fn tty_output_goes_through_a_pty() {
    need_root();
    let mut c = Ctr::new("tty", &["sh", "-c", "tty; echo TERM=$TERM"]);
    c.cfg.tty = true;
    assert_eq!(c.run().unwrap(), 0);
    let out = c.output();
    assert!(
        out.contains("/dev/pts/0\r\n") || out.contains("/dev/console\r\n"),
        "{out:?}"
    );
    assert!(out.contains("TERM=xterm\r\n"), "{out:?}");
}

#[test]
#[ignore = "needs root"]
fn memory_limit_oom_kills_with_137() {
    need_root();
    let mut c = Ctr::new("oom", &["tail", "/dev/zero"]);
    c.cfg.resources.memory = Some(32 * 1024 * 1024);
    assert_eq!(c.run().unwrap(), 137);
    let st = c.state();
    assert!(st.oom_killed, "{st:?}");
    assert_eq!(st.exit_code, 137);
}

#[test]
#[ignore = "needs root"]
fn ulimit_pids_and_cpu_limits_apply() {
    need_root();
    let mut c = Ctr::new(
        "limits",
        &[
            "sh",
            "-c",
            "ulimit -n; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        ],
    );
    c.cfg.resources.ulimits = vec![("nofile".into(), 1234, 2345)];
    c.cfg.resources.pids_limit = Some(42);
    c.cfg.resources.cpus = Some(0.5);
    assert_eq!(c.run().unwrap(), 0);
    let out = c.output();
    assert!(out.starts_with("1234\n"), "{out}");
    assert!(out.contains("42"), "{out}");
}

fn run_in_thread(c: &Ctr) -> std::thread::JoinHandle<Result<i32>> {
    c.prepare();
    let (dir, opts) = (c.dir.clone(), c.opts());
    std::thread::spawn(move || monitor_main(&dir, opts))
}

#[test]
#[ignore = "needs root"]
fn stop_sends_signal_then_kills_after_timeout_and_does_not_restart() {
    need_root();
    // sleep as PID 1 ignores SIGTERM (no handler), so stop must escalate.
    let mut c = Ctr::new("stop", &["sleep", "1000"]);
    c.cfg.restart_policy = RestartPolicy::Always;
    let h = run_in_thread(&c);
    c.wait_for(10, "running", |s| s.status == "running");
    let t0 = Instant::now();
    stop(&c.dir, &c.runtime, Some(1)).unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(900), "stopped too early: {took:?}");
    assert!(took < Duration::from_secs(8), "stop too slow: {took:?}");
    assert_eq!(h.join().unwrap().unwrap(), 137);
    let st = c.state();
    assert_eq!((st.status.as_str(), st.exit_code, st.restart_count), ("exited", 137, 0));
    // Nothing left behind: runtime state and cgroups are gone.
    assert!(!c.runtime.root.join(&c.cfg.id).exists());
    for ctrl in ["memory", "pids", "cpu"] {
        let p = PathBuf::from(format!("/sys/fs/cgroup/{ctrl}/berth/{}", c.cfg.id));
        assert!(!p.exists(), "{} left behind", p.display());
    }
    let p = PathBuf::from(format!("/sys/fs/cgroup/berth/{}", c.cfg.id));
    assert!(!p.exists());
}

#[test]
#[ignore = "needs root"]
fn stop_with_graceful_signal_handler() {
    need_root();
    let c = Ctr::new(
        "graceful",
        &[
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
        ],
    );
    let h = run_in_thread(&c);
    c.wait_for(10, "running", |s| s.status == "running");
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    stop(&c.dir, &c.runtime, Some(10)).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(h.join().unwrap().unwrap(), 0);
    assert!(c.output().contains("bye"));
}

#[test]
#[ignore = "needs root"]
fn on_failure_restarts_with_backoff_up_to_max() {
    need_root();
    let mut c = Ctr::new("restart", &["sh", "-c", "echo run; exit 1"]);
    c.cfg.restart_policy = RestartPolicy::OnFailure { max: 2 };
    let t0 = Instant::now();
    assert_eq!(c.run().unwrap(), 1);
    let st = c.state();
    assert_eq!(st.restart_count, 2);
    assert_eq!(c.output().matches("run\n").count(), 3);
    // backoff 100ms + 200ms
    assert!(t0.elapsed() >= Duration::from_millis(300));
}

#[test]
#[ignore = "needs root"]
fn healthcheck_becomes_healthy_or_unhealthy() {
    need_root();
    let ms = 1_000_000u64;
    let mut good = Ctr::new("healthy", &["sleep", "1000"]);
    good.cfg.healthcheck = Some(HealthConfig {
        test: vec!["CMD-SHELL".into(), "echo ok".into()],
        interval: 200 * ms,
        timeout: 5000 * ms,
        retries: 2,
        ..Default::default()
    });
    let mut bad = Ctr::new("unhealthy", &["sleep", "1000"]);
    bad.cfg.healthcheck = Some(HealthConfig {
        test: vec!["CMD".into(), "false".into()],
        interval: 200 * ms,
        timeout: 5000 * ms,
        retries: 2,
        ..Default::default()
    });
    let hg = run_in_thread(&good);
    let hb = run_in_thread(&bad);
    good.wait_for(10, "running", |s| s.status == "running");
    assert_eq!(good.state().health.unwrap().status, "starting");
    good.wait_for(20, "healthy", |s| {
        s.health.as_ref().is_some_and(|h| h.status == "healthy")
    });
    let h = good.state().health.unwrap();
    assert_eq!(h.log.last().unwrap().output, "ok\n");
    assert_eq!(h.log.last().unwrap().exit_code, 0);
    bad.wait_for(20, "unhealthy", |s| {
        s.health.as_ref().is_some_and(|h| h.status == "unhealthy")
    });
    let h = bad.state().health.unwrap();
    assert!(h.failing_streak >= 2);
    assert_eq!(h.log.last().unwrap().exit_code, 1);
    stop(&good.dir, &good.runtime, Some(0)).unwrap();
    stop(&bad.dir, &bad.runtime, Some(0)).unwrap();
    assert_eq!(hg.join().unwrap().unwrap(), 137);
    assert_eq!(hb.join().unwrap().unwrap(), 137);
}

#[test]
#[ignore = "needs root"]
fn exec_top_stats_pause_in_running_container() {
    need_root();
    let mut c = Ctr::new("exec", &["sleep", "1000"]);
    c.cfg.resources.memory = Some(64 * 1024 * 1024);
    let h = run_in_thread(&c);
    c.wait_for(10, "running", |s| s.status == "running");
    // The exec'd process's stdin, stdout and stderr are the caller's streams.
    let (out, err) = (common::Buf::default(), common::Buf::default());
    let mut streams = Streams::output(out.stream(), err.stream());
    streams.stdin = Some(StreamIn::Reader(Box::new(std::io::Cursor::new(b"typed\n".to_vec()))));
    let code = exec(
        &c.dir,
        &c.runtime,
        &c.cfg.id,
        &ExecOptions {
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "read l; echo out-$l; echo err-$l >&2; exit 5".into(),
            ],
            interactive: true,
            ..Default::default()
        },
        Some(streams),
    )
    .unwrap();
    assert_eq!(code, 5);
    assert_eq!(
        (out.text().as_str(), err.text().as_str()),
        ("out-typed\n", "err-typed\n")
    );
    // With a tty and no terminal of the caller's, a pty of ours stands in.
    let tty_out = common::Buf::default();
    let mut streams = Streams::output(tty_out.stream(), common::Buf::default().stream());
    streams.tty = true;
    let code = exec(
        &c.dir,
        &c.runtime,
        &c.cfg.id,
        &ExecOptions {
            cmd: vec!["sh".into(), "-c".into(), "tty >/dev/null && echo has-a-tty".into()],
            tty: true,
            ..Default::default()
        },
        Some(streams),
    )
    .unwrap();
    assert_eq!(code, 0);
    assert!(tty_out.text().contains("has-a-tty"), "{:?}", tty_out.text());
    let e = exec(
        &c.dir,
        &c.runtime,
        &c.cfg.id,
        &ExecOptions {
            cmd: vec!["nope".into()],
            ..Default::default()
        },
        Some(Streams::output(
            common::Buf::default().stream(),
            common::Buf::default().stream(),
        )),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 127, "{e}");
    let procs = top(&c.dir, &c.runtime).unwrap();
    assert!(procs.iter().any(|p| p.cmd == "sleep 1000"), "{procs:?}");
    let s = stats(&c.dir, false).unwrap();
    assert_eq!(s.memory_limit, Some(64 * 1024 * 1024));
    assert!(s.pids_current >= 1);
    pause(&c.dir, &c.runtime).unwrap();
    assert_eq!(c.state().status, "paused");
    assert_eq!(c.runtime.state(&c.cfg.id).unwrap().status, "paused");
    unpause(&c.dir, &c.runtime).unwrap();
    assert_eq!(c.state().status, "running");
    kill(&c.dir, &c.runtime, "SIGKILL").unwrap();
    assert_eq!(h.join().unwrap().unwrap(), 137);
}

#[test]
fn read_state_recovers_dead_monitor_without_inventing() {
    let d = tempfile::tempdir().unwrap();
    state::update_state(d.path(), |s| {
        s.status = "running".into();
        s.pid = 9_999_990;
        s.monitor_pid = 9_999_991;
    })
    .unwrap();
    let st = read_state(d.path()).unwrap();
    assert_eq!((st.status.as_str(), st.exit_code), ("exited", 255));
    assert!(st.error.contains("monitor"));
    // Our own pid is alive: stays running.
    state::update_state(d.path(), |s| {
        s.status = "running".into();
        s.monitor_pid = std::process::id() as i32;
        s.monitor_start = 0;
    })
    .unwrap();
    assert_eq!(read_state(d.path()).unwrap().status, "running");
}

/// Entry point for the detached-monitor test: the test binary re-executed.
#[test]
fn monitor_child_entry() {
    if let Some(dir) = std::env::args()
        .next_back()
        .filter(|a| a.starts_with('/') && Path::new(a).join("berth.json").exists())
    {
        let opts = MonitorOptions::from_dir(Path::new(&dir)).unwrap();
        let code = match monitor_main(Path::new(&dir), opts) {
            Ok(c) => c,
            Err(e) => e.exit_code(),
        };
        std::process::exit(code);
    }
}

#[test]
#[ignore = "needs root"]
fn detached_monitor_reports_start_and_failure() {
    need_root();
    let exe = std::env::current_exe().unwrap();
    let args: Vec<String> = ["--exact", "monitor_child_entry", "--nocapture", "--test-threads=1"]
        .iter()
        .map(|s| s.to_string())
        .collect();

    let bad = Ctr::new("detached-bad", &["no-such-thing"]);
    bad.prepare();
    let e = spawn_monitor(&bad.dir, &exe, &args, &bad.opts()).unwrap_err();
    assert_eq!(e.exit_code(), 127, "{e}");
    assert!(e.to_string().contains("no-such-thing"), "{e}");

    let good = Ctr::new("detached", &["sh", "-c", "echo started; sleep 1000"]);
    good.prepare();
    let mpid = spawn_monitor(&good.dir, &exe, &args, &good.opts()).unwrap();
    let st = good.state();
    assert_eq!(st.status, "running");
    assert_eq!(st.monitor_pid as u32, mpid);
    // The monitor reaps whatever the runtime left reparented to it: no zombies.
    std::thread::sleep(Duration::from_millis(300));
    let mut zombies = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{mpid}/task")).unwrap().flatten() {
        let kids = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for k in kids.split_whitespace() {
            let stat = std::fs::read_to_string(format!("/proc/{k}/stat")).unwrap_or_default();
            if stat
                .rsplit_once(')')
                .is_some_and(|(_, t)| t.trim_start().starts_with('Z'))
            {
                zombies.push(stat);
            }
        }
    }
    assert!(zombies.is_empty(), "zombie children of the monitor: {zombies:?}");
    // The monitor is in its own session.
    let sid = rustix::process::getsid(rustix::process::Pid::from_raw(mpid as i32)).unwrap();
    assert_eq!(sid.as_raw_nonzero().get() as u32, mpid);
    stop(&good.dir, &good.runtime, Some(1)).unwrap();
    let st = good.state();
    assert_eq!((st.status.as_str(), st.exit_code), ("exited", 137));
    assert!(good.output().contains("started\n"));
}

#[test]
#[ignore = "needs root"]
fn overlay_with_130_lowers_and_scratch() {
    need_root();
    let t = tempfile::tempdir().unwrap();
    // Long paths so the legacy option string could not hold them.
    let base = t
        .path()
        .join("a-rather-long-directory-name-to-make-the-option-string-overflow-one-page");
    let mut lowers = Vec::new();
    for i in 0..130 {
        let l = base.join(format!("layer-{i:04}-with-some-padding-in-the-name/diff"));
        std::fs::create_dir_all(&l).unwrap();
        std::fs::write(l.join(format!("f{i}")), format!("{i}")).unwrap();
        std::fs::write(l.join("shared"), format!("{i}")).unwrap();
        lowers.push(l);
    }
    lowers.reverse(); // top-most first: layer 129 wins
    let total: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(total > 4096, "test must exceed one page ({total})");
    let (upper, work, merged) = (t.path().join("u"), t.path().join("w"), t.path().join("m"));
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).unwrap();
    }
    mount_overlay(&lowers, &upper, &work, &merged).unwrap();
    assert!(berth_runtime::mount::is_mountpoint(&merged));
    for i in 0..130 {
        assert_eq!(
            std::fs::read_to_string(merged.join(format!("f{i}"))).unwrap(),
            i.to_string()
        );
    }
    assert_eq!(std::fs::read_to_string(merged.join("shared")).unwrap(), "129");
    std::fs::write(merged.join("new"), "x").unwrap();
    assert!(upper.join("new").exists());
    unmount(&merged).unwrap();
    assert!(!berth_runtime::mount::is_mountpoint(&merged));
    unmount(&merged).unwrap(); // not mounted: fine

    let (u2, w2, m2) = (t.path().join("u2"), t.path().join("w2"), t.path().join("m2"));
    for d in [&u2, &w2, &m2] {
        std::fs::create_dir_all(d).unwrap();
    }
    mount_overlay(&[], &u2, &w2, &m2).unwrap();
    assert_eq!(std::fs::read_dir(&m2).unwrap().count(), 0);
    unmount(&m2).unwrap();
}

/// A `crun` on PATH's terms that records each command it is given, then
/// runs the real crun.
fn recording_crun(dir: &Path) -> (PathBuf, PathBuf) {
    let real = ["/usr/bin/crun", "/usr/local/bin/crun", "/bin/crun"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("crun is not installed (scripts/setup installs it)");
    let log = dir.join("crun-commands");
    let wrapper = dir.join("bin").join("crun");
    std::fs::create_dir_all(wrapper.parent().unwrap()).unwrap();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\nexec {} \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (wrapper, log)
}

/// The crun subcommands run so far (`create`, `start`, `delete`…).
fn crun_commands(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let words = ["create", "start", "run", "delete", "kill", "state"];
    text.lines()
        .filter_map(|l| l.split_whitespace().find(|w| words.contains(w)).map(str::to_string))
        .collect()
}

#[test]
#[ignore = "needs root"]
fn a_created_crun_container_is_started_through_its_fifo_unless_its_spec_has_hooks() {
    need_root();
    // No hooks: crun creates, berth releases the process itself.
    let mut c = Ctr::new("fifo", &["sh", "-c", "echo released; exit 4"]);
    let (wrapper, log) = recording_crun(c.tmp.path());
    c.runtime = OciRuntime::select(Some(wrapper.to_str().unwrap()), &c.tmp.path().join("runtime")).unwrap();
    assert_eq!(c.run().unwrap(), 4);
    assert_eq!(c.output(), "released\n");
    assert_eq!(crun_commands(&log), ["create"], "crun's start was run");
    assert!(
        !c.tmp.path().join("runtime").join(&c.cfg.id).exists(),
        "crun's state stayed"
    );

    // A poststart hook: only `crun start` runs it, so crun starts it.
    let mut c = Ctr::new("hooked", &["echo", "hooked"]);
    let (wrapper, log) = recording_crun(c.tmp.path());
    c.runtime = OciRuntime::select(Some(wrapper.to_str().unwrap()), &c.tmp.path().join("runtime")).unwrap();
    c.prepare();
    let mark = c.tmp.path().join("poststart-ran");
    let config = c.dir.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    // A hook reads the state crun writes to its stdin (crun dies of
    // SIGPIPE when the hook went before it wrote).
    let hook = format!("cat > /dev/null; echo ran > {}", mark.display());
    spec["hooks"] = serde_json::json!({"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]});
    std::fs::write(&config, serde_json::to_vec(&spec).unwrap()).unwrap();
    assert_eq!(berth_runtime::monitor_main(&c.dir, c.opts()).unwrap(), 0);
    assert_eq!(c.output(), "hooked\n");
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "ran\n");
    let commands = crun_commands(&log);
    assert_eq!(&commands[..2], ["create", "start"], "{commands:?}");
}
