//! `--pid`, `--ipc`, `--uts` and `--cgroupns` as a Docker user writes
//! them: the host's namespaces, another container's (joined afresh at each
//! of its starts, refused while it is stopped), Docker's shareable IPC
//! rule, as root, rootless, through compose's `pid`/`ipc: service:X`.

mod common;
#[path = "common/compose.rs"]
mod compose_helpers;

use common::{stderr, stdout, Root, Rootless};
use compose_helpers::{ok, Down};

/// The mounts of this store left in the host's mount table.
fn mounts_of(root: &Root) -> Vec<String> {
    let store = root.path().to_str().unwrap().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&store))
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs root"]
fn the_hosts_namespaces_and_another_containers_as_docker_shares_them() {
    let root = Root::new();
    root.busybox("bb");

    // --pid host: the host's processes, its PID 1 among them.
    let host_init = std::fs::read_to_string("/proc/1/comm").unwrap();
    let out = root.ok(&["run", "--rm", "--pid", "host", "bb", "cat", "/proc/1/comm"]);
    assert_eq!(out, host_init);
    let own = root.ok(&["run", "--rm", "bb", "cat", "/proc/1/comm"]);
    assert_eq!(own, "cat\n");

    // --uts host: named as the host, and a name of its own is refused.
    let host_name = rustix::system::uname().nodename().to_string_lossy().into_owned();
    let out = root.ok(&[
        "run",
        "--rm",
        "--uts",
        "host",
        "bb",
        "sh",
        "-c",
        "hostname; cat /etc/hostname",
    ]);
    assert_eq!(out, format!("{host_name}\n{host_name}\n"));
    let o = root.run(&["run", "--rm", "--uts", "host", "-h", "mine", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("conflicting options: hostname and the UTS mode"),
        "{}",
        stderr(&o)
    );

    // --ipc host: the host's /dev/shm; --ipc none: none at all.
    let shm = format!("/dev/shm/berth-test-{}", std::process::id());
    std::fs::write(&shm, "from the host\n").unwrap();
    let o = root.run(&["run", "--rm", "--ipc", "host", "bb", "cat", &shm]);
    std::fs::remove_file(&shm).unwrap();
    assert_eq!(stdout(&o), "from the host\n", "{}", stderr(&o));
    let o = root.run(&["run", "--rm", "--ipc", "none", "bb", "ls", "/dev/shm"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));

    // --cgroupns host: the host's view of the container's cgroup.
    let out = root.ok(&["run", "--rm", "--cgroupns", "host", "bb", "cat", "/proc/self/cgroup"]);
    assert!(out.lines().any(|l| l.contains(":/berth/")), "{out}");
    let out = root.ok(&["run", "--rm", "bb", "cat", "/proc/self/cgroup"]);
    assert!(out.lines().all(|l| l.ends_with(":/")), "{out}");

    // Bad modes, in Docker's terms, before anything is made.
    for (flag, v) in [
        ("--pid", "bogus"),
        ("--uts", "container:x"),
        ("--cgroupns", "shareable"),
    ] {
        let o = root.run(&["run", "--rm", flag, v, "bb", "true"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains(&format!("{flag}: invalid")), "{}", stderr(&o));
    }
    let o = root.run(&["run", "--rm", "--pid", "container:nobody-here", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("No such container: nobody-here"), "{}", stderr(&o));

    // Another container's PID and IPC namespaces: its processes, its
    // shared memory, which only a shareable donor offers (Docker's rule).
    root.ok(&["run", "-d", "--name", "private", "bb", "sleep", "300"]);
    let o = root.run(&["run", "--rm", "--ipc", "container:private", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("non-shareable IPC"), "{}", stderr(&o));
    let o = root.run(&["ps", "-aq"]);
    assert_eq!(
        stdout(&o).lines().count(),
        1,
        "the refused --rm container is removed: {}",
        stdout(&o)
    );
    root.ok(&["rm", "-f", "private"]);

    root.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--ipc",
        "shareable",
        "bb",
        "sleep",
        "300",
    ]);
    root.ok(&["exec", "donor", "sh", "-c", "echo shared > /dev/shm/x"]);
    // Its processes (one sleep) and its shared memory, seen from a joiner.
    let joiner = [
        "--pid",
        "container:donor",
        "--ipc",
        "container:donor",
        "bb",
        "sh",
        "-c",
        "ps -o comm | grep -c sleep; cat /dev/shm/x",
    ];
    let out = root.ok(&[&["run", "--rm"][..], &joiner].concat());
    assert_eq!(out, "1\nshared\n");
    let donor_id = root.ok(&["inspect", "-f", "{{.Id}}", "donor"]).trim().to_string();
    root.ok(&[&["create", "--name", "joiner"][..], &joiner].concat());
    let shown = root.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.PidMode}} {{.HostConfig.IpcMode}} {{.HostConfig.UTSMode}}|{{.HostConfig.CgroupnsMode}}",
        "joiner",
    ]);
    assert_eq!(shown, format!("container:{donor_id} container:{donor_id} |private\n"));
    assert_eq!(
        root.ok(&["inspect", "-f", "{{.HostConfig.IpcMode}}", "donor"]),
        "shareable\n"
    );

    // A stopped donor: the joiner does not start, and says why.
    root.ok(&["stop", "-t", "0", "donor"]);
    let o = root.run(&["start", "joiner"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!(
            "Error response from daemon: container {donor_id} is not running"
        )),
        "{}",
        stderr(&o)
    );
    // Started again (a new process): the joiner finds it, and the shared
    // memory it has now.
    root.ok(&["start", "donor"]);
    root.ok(&["exec", "donor", "sh", "-c", "echo again > /dev/shm/x"]);
    let out = root.ok(&["start", "-a", "joiner"]);
    assert_eq!(out, "1\nagain\n");
    root.ok(&["rm", "-f", "joiner", "donor"]);
    assert_eq!(mounts_of(&root), Vec::<String>::new());
}

#[test]
#[ignore = "needs root"]
fn a_rootless_container_joins_another_ones_pid_and_ipc_namespaces() {
    let rl = Rootless::new("berth-ns-");
    let ok = |args: &str| {
        let o = rl.run(args);
        assert!(o.status.success(), "{args}: {}", stderr(&o));
        stdout(&o)
    };
    ok("import bb.tar bb");
    ok("run -d --name donor --ipc shareable bb sleep 300");
    ok("exec donor sh -c 'echo rootless > /dev/shm/x'");
    let out = ok(
        "run --rm --pid container:donor --ipc container:donor bb sh -c 'ps -o comm | grep -c sleep; cat /dev/shm/x'",
    );
    assert_eq!(out, "1\nrootless\n");
    let out = ok("run --rm --uts host bb hostname");
    assert_eq!(out.trim(), rustix::system::uname().nodename().to_string_lossy());
    ok("rm -f donor");
}

#[test]
#[ignore = "needs root"]
fn compose_services_share_another_services_pid_and_ipc_namespaces() {
    let root = Root::new();
    root.busybox("bb");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  db:\n    image: bb\n    network_mode: none\n    ipc: shareable\n    stop_signal: SIGKILL\n    \
         command: [sh, -c, 'echo from-db > /dev/shm/x; exec sleep 300']\n  app:\n    image: bb\n    network_mode: none\n    \
         pid: service:db\n    ipc: service:db\n    stop_signal: SIGKILL\n    command: [sleep, '300']\n",
    )
    .unwrap();
    let d = dir.path().to_path_buf();
    let _down = Down(&root, d.clone());
    // app depends on db through pid/ipc, so up starts db first.
    let (_, err) = ok(&root, &d, &["up", "-d"]);
    assert!(!err.contains("not supported"), "{err}");
    let (out, _) = ok(
        &root,
        &d,
        &[
            "exec",
            "-T",
            "app",
            "sh",
            "-c",
            "ps -o comm | grep -c sleep; cat /dev/shm/x",
        ],
    );
    assert_eq!(out, "2\nfrom-db\n");
}
