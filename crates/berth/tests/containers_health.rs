//! Healthchecks: busybox httpd probed with wget turns healthy, and
//! unhealthy once httpd is killed.

mod common;

use common::Root;
use std::time::{Duration, Instant};

#[test]
#[ignore = "needs root"]
fn httpd_turns_healthy_then_unhealthy() {
    common::need_root();
    let r = Root::new();
    r.busybox("bb");
    r.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        "bb",
        "sh",
        "-c",
        "echo ok > /tmp/index.html; httpd -f -p 8080 -h /tmp & exec sleep 100000",
    ]);
    let wait_for = |want: &str| {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let st = r.ok(&["ps", "--format", "{{.Status}}"]);
            if st.contains(want) {
                return st;
            }
            assert!(Instant::now() < end, "never became {want}: {st}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let st = wait_for("(healthy)");
    assert!(st.starts_with("Up "), "{st}");
    assert_eq!(r.ok(&["ps", "-q", "--filter", "health=healthy"]).lines().count(), 1);
    // `healthcheck run` probes now: silent and 0 while httpd answers.
    assert_eq!(r.ok(&["healthcheck", "run", "web"]), "");
    r.ok(&["exec", "web", "killall", "httpd"]);
    let o = r.run(&["healthcheck", "run", "web"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "unhealthy");
    wait_for("(unhealthy)");
    let v: serde_json::Value = serde_json::from_str(&r.ok(&["inspect", "web"])).unwrap();
    let h = &v[0]["State"]["Health"];
    assert_eq!(h["Status"], "unhealthy");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2);
    assert!(!h["Log"].as_array().unwrap().is_empty());
    r.ok(&["rm", "-f", "web"]);
}

/// A probe in exec form whose command does not exist fails (the runtime's
/// exec cannot start it; crun leaves its child as an orphan in the
/// container's pid namespace, handed to the monitor): the container still
/// turns unhealthy, and `stop` ends it instead of waiting forever for a
/// pid namespace that cannot empty.
#[test]
#[ignore = "needs root"]
fn a_probe_that_cannot_start_turns_unhealthy_and_stop_still_ends_it() {
    // Env removes the container even when an assertion fails.
    let env = common::Env::new();
    let r = &env.root;
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nHEALTHCHECK --interval=1s --retries=2 CMD [\"/nosuchprobe\"]\n",
    )
    .unwrap();
    r.ok(&["build", "-q", "-t", "probe", ctx.path().to_str().unwrap()]);
    r.ok(&["run", "-d", "--name", "pr", "probe", "sleep", "100000"]);
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let st = r.ok(&["ps", "--format", "{{.Status}}"]);
        if st.contains("(unhealthy)") {
            break;
        }
        assert!(Instant::now() < end, "never became unhealthy: {st}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = r.ok(&["inspect", "--format", "{{json .State.Health.Log}}", "pr"]);
    assert!(log.contains("nosuchprobe"), "{log}");
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    let last = log.as_array().unwrap().last().unwrap();
    // Docker's record of a probe that could not start: -1 and the reason.
    assert_eq!(last["ExitCode"], -1, "{log}");
    assert!(last["Output"].as_str().unwrap().contains("not found"), "{log}");
    assert!(
        last["Output"].as_str().unwrap().contains("OCI runtime exec failed"),
        "{log}"
    );
    // `stop` in a thread: a hang is a failure, not a stuck test run.
    let mut stop = r.cmd(&["stop", "-t", "1", "pr"]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(stop.output().unwrap());
    });
    let o = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("stop never returned: the container's pid namespace never emptied");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(r
        .ok(&["ps", "-a", "--format", "{{.Status}}"])
        .starts_with("Exited (137)"));
    r.ok(&["rm", "pr"]);
}
