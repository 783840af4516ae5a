//! The same container life on every OCI runtime berth can drive here:
//! crun (the default as root), runc (the default rootless on a hybrid
//! host), and youki (when installed: `scripts/setup` builds it with cargo).
//! crun refuses hybrid cgroups whose v2 mount holds controllers; as root,
//! berth hides that mount from it in a private mount namespace, and
//! rootless it says why crun cannot run and what to do.

mod common;

use common::{stderr, stdout, Root};
use std::io::Write;
use std::process::Stdio;

fn runtime_path(name: &str) -> Option<String> {
    [
        "/usr/local/bin",
        "/usr/local/sbin",
        "/usr/bin",
        "/usr/sbin",
        "/root/.cargo/bin",
    ]
    .iter()
    .map(|d| format!("{d}/{name}"))
    .find(|p| std::path::Path::new(p).is_file())
}

/// A root whose every command passes `--runtime PATH`.
struct On {
    root: Root,
    rt: String,
}

impl On {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut a = vec!["--runtime", self.rt.as_str()];
        a.extend_from_slice(args);
        self.root.run(&a)
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{} {args:?}: {:?}\n{}",
            self.rt,
            o.status.code(),
            stderr(&o)
        );
        stdout(&o)
    }
}

fn life_on(rt: &str) {
    let on = On {
        root: Root::new(),
        rt: rt.to_string(),
    };
    on.root.busybox("bb");
    assert_eq!(on.ok(&["run", "--rm", "bb", "echo", "hello"]), "hello\n");
    assert_eq!(
        on.run(&["run", "--rm", "bb", "sh", "-c", "exit 3"]).status.code(),
        Some(3)
    );
    let o = on.run(&["run", "--rm", "bb", "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127), "{rt}: {}", stderr(&o));
    let o = on.run(&["run", "--rm", "bb", "/etc"]);
    assert_eq!(o.status.code(), Some(126), "{rt}: {}", stderr(&o));
    // PID 1 is the command; Docker's capabilities.
    assert_eq!(on.ok(&["run", "--rm", "bb", "sh", "-c", "echo $$"]), "1\n");
    let caps = on.ok(&["run", "--rm", "bb", "grep", "CapEff", "/proc/self/status"]);
    assert!(caps.contains("00000000a80425fb"), "{rt}: {caps}");
    // Detached, exec, stop, rm.
    on.ok(&["run", "-d", "--name", "bg", "bb", "sleep", "1000"]);
    assert_eq!(on.ok(&["exec", "bg", "echo", "in"]), "in\n");
    // An exec of a missing command exits 127 and says why once: crun and
    // runc print the reason themselves, berth then adds nothing.
    let o = on.run(&["exec", "bg", "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127), "{rt}: {}", stderr(&o));
    assert_eq!(stderr(&o).matches("nosuchcmd").count(), 1, "{rt}: {}", stderr(&o));
    on.ok(&["stop", "-t", "1", "bg"]);
    assert!(on
        .ok(&["ps", "-a", "--format", "{{.Status}}"])
        .starts_with("Exited (137)"));
    on.ok(&["rm", "bg"]);
    // Paused (the freezer), listed by top, resumed, and gone without a
    // trace: no runtime state, no cgroup directory of any controller.
    let id = on.ok(&["run", "-d", "--name", "pz", "bb", "sleep", "1000"]);
    let id = id.trim();
    on.ok(&["pause", "pz"]);
    assert!(on.ok(&["ps", "--format", "{{.Status}}"]).contains("(Paused)"));
    assert!(on.ok(&["top", "pz"]).contains("sleep 1000"));
    on.ok(&["unpause", "pz"]);
    assert_eq!(on.ok(&["exec", "pz", "echo", "awake"]), "awake\n");
    on.ok(&["rm", "-f", "pz"]);
    // Root::cmd passes `--root <dir>/store`; the runtime's state is under it.
    let state = on.root.path().join("store").join("runtime");
    assert!(state.is_dir(), "{rt}: no runtime state dir at {}", state.display());
    assert!(!state.join(id).exists(), "{rt}: runtime state left");
    // Every v1 controller's tree, and a cgroup2-only host's one tree.
    let trees = std::iter::once(std::path::PathBuf::from("/sys/fs/cgroup"))
        .chain(std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten().map(|e| e.path()));
    for tree in trees {
        let cg = tree.join("berth").join(id);
        assert!(!cg.exists(), "{rt}: {} left behind", cg.display());
    }
    // A tty, detached with Ctrl-P Ctrl-Q, then attached again.
    let mut child = on
        .root
        .cmd(&["--runtime", rt, "run", "-it", "--name", "tt", "bb", "sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut i = child.stdin.take().unwrap();
    i.write_all(b"echo typed-$((1+1))\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    i.write_all(b"\x10\x11").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{rt}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("typed-2"));
    let mut a = on
        .root
        .cmd(&["--runtime", rt, "attach", "tt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    a.stdin.take().unwrap().write_all(b"exit 6\n").unwrap();
    assert_eq!(a.wait_with_output().unwrap().status.code(), Some(6));
    on.ok(&["rm", "tt"]);
    // A memory limit the kernel enforces: OOM kill, 137, recorded.
    let o = on.run(&[
        "run",
        "--name",
        "oom",
        "--memory",
        "32m",
        "--memory-swap",
        "32m",
        "bb",
        "sh",
        "-c",
        "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}",
    ]);
    assert_eq!(o.status.code(), Some(137), "{rt}: {}", stderr(&o));
    assert_eq!(
        on.ok(&["inspect", "--format", "{{.State.OOMKilled}}", "oom"]).trim(),
        "true"
    );
    on.ok(&["rm", "oom"]);
}

/// A hybrid host whose cgroup2 mount holds controllers: the layout crun
/// refuses.
fn hybrid_with_v2_controllers() -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").is_ok_and(|c| !c.trim().is_empty())
}

/// The path of an OCI runtime scripts/setup installs; the test fails when
/// it is missing.
fn installed(name: &str) -> String {
    runtime_path(name).unwrap_or_else(|| panic!("{name} is not installed (scripts/setup --tests installs it)"))
}

/// This host's cgroup layout is the hybrid one crun refuses: the tests of
/// what berth does about it need it (Debian 12's, this project's CI).
fn need_hybrid_host() {
    assert!(
        hybrid_with_v2_controllers(),
        "this test is about hybrid cgroup hosts whose cgroup2 mount holds controllers; this host is not one"
    );
}

#[test]
#[ignore = "needs root"]
fn runc_runs_the_whole_life() {
    common::need_root();
    let Some(rt) = runtime_path("runc") else {
        panic!("runc is not installed (scripts/setup installs it)");
    };
    life_on(&rt);
}

#[test]
#[ignore = "needs root"]
fn youki_runs_the_whole_life() {
    common::need_root();
    life_on(&installed("youki"));
}

#[test]
#[ignore = "needs root"]
fn crun_runs_the_whole_life() {
    common::need_root();
    let rt = installed("crun");
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    life_on(&rt);
    // The private mount namespace crun ran in left the host's mounts as
    // they were: no tmpfs over the cgroup2 mount out here.
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let unified = |m: &str| m.lines().filter(|l| l.contains(" /sys/fs/cgroup/unified ")).count();
    assert_eq!(unified(&mounts_before), unified(&mounts_after));
}

/// The default runtime as root (with CAP_SYS_ADMIN, as tests run) is
/// crun, whatever the cgroup layout, and `info` says why.
#[test]
#[ignore = "needs root"]
fn crun_is_the_default_as_root() {
    common::need_root();
    installed("crun");
    let root = Root::new();
    let info = root.ok(&["info"]);
    assert!(info.contains("Default Runtime: crun"), "{info}");
    let hybrid = hybrid_with_v2_controllers();
    if hybrid {
        assert!(info.contains("private mount namespace"), "{info}");
    }
}

/// A container keeps the runtime it was started with: started with
/// `--runtime runc` where the default is crun, it is exec'd into, paused,
/// stopped, started again and removed by runc without the flag.
#[test]
#[ignore = "needs root"]
fn a_container_keeps_the_runtime_it_was_started_with() {
    common::need_root();
    let runc = installed("runc");
    installed("crun");
    let r = Root::new();
    let info = r.ok(&["info"]);
    assert!(info.contains("Default Runtime: crun"), "{info}");
    r.busybox("bb");
    r.ok(&["--runtime", &runc, "run", "-d", "--name", "kept", "bb", "sleep", "1000"]);
    assert_eq!(r.ok(&["exec", "kept", "echo", "in"]), "in\n");
    assert!(r.ok(&["top", "kept"]).contains("sleep 1000"));
    r.ok(&["pause", "kept"]);
    r.ok(&["unpause", "kept"]);
    r.ok(&["stop", "-t", "1", "kept"]);
    r.ok(&["start", "kept"]);
    assert_eq!(r.ok(&["exec", "kept", "echo", "again"]), "again\n");
    r.ok(&["rm", "-f", "kept"]);
    assert_eq!(r.ok(&["ps", "-aq"]), "");
}

/// Rootless on a hybrid host, crun cannot run (hiding the cgroup2 mount
/// takes a mount namespace an unprivileged user cannot make without
/// losing its subordinate ids): berth passes crun's reason on with what to
/// do, exits 125, and leaves nothing behind; by default it picks runc.
#[test]
#[ignore = "needs root"]
fn rootless_crun_on_a_hybrid_host_says_why_not() {
    need_hybrid_host();
    installed("crun");
    let rl = common::Rootless::new("berth-rl-crun-");
    let o = rl.run("import bb.tar bb");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rl.run("--runtime crun run --rm bb true");
    assert_eq!(o.status.code(), Some(125));
    let err = stderr(&o);
    assert!(err.contains("hybrid") && err.contains("drop --runtime crun"), "{err}");
    assert_eq!(stdout(&rl.run("ps -aq")), "");
    let info = stdout(&rl.run("info"));
    assert!(info.contains("Default Runtime: runc"), "{info}");
}

/// Root without CAP_SYS_ADMIN (root in a container, say) cannot make the
/// mount namespace that hides the cgroup2 mount from crun: on a hybrid
/// host berth then picks runc, and says why.
#[test]
#[ignore = "needs root"]
fn root_without_cap_sys_admin_picks_runc_on_a_hybrid_host() {
    common::need_root();
    need_hybrid_host();
    installed("crun");
    installed("runc");
    assert!(
        common::have("capsh"),
        "capsh (libcap2-bin) is not installed (scripts/setup --tests installs it)"
    );
    let root = Root::new();
    let line = format!(
        "{} --root {} info",
        env!("CARGO_BIN_EXE_berth"),
        root.path().join("store").display()
    );
    let o = std::process::Command::new("capsh")
        .args(["--drop=cap_sys_admin", "--", "-c", &line])
        .output()
        .unwrap();
    let info = stdout(&o);
    assert!(info.contains("Default Runtime: runc"), "{info}{}", stderr(&o));
    assert!(info.contains("no CAP_SYS_ADMIN"), "{info}");
}
