//! Container root that is not host root, with berth run as root:
//! `--userns=auto` gives each container its own range of host ids. Root
//! inside is an unprivileged uid outside: it owns what it writes to a bind
//! mount, it cannot open a root-only host file, and `ps` on the host shows
//! it. Ten containers started at once get ten disjoint ranges; the layers
//! are shared through idmapped mounts, not copied. Rootless, `keep-id` and
//! `nomap` map the user's own ids in or out.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{stderr, stdout, Root, Rootless};

/// A store with busybox as `bb` (the test needs root: see `#[ignore]`).
/// The container's root (an unprivileged host uid) must reach its rootfs
/// through the test's directory, which others may only search.
fn root_with_bb() -> Root {
    let root = Root::new();
    root.busybox("bb");
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    root
}

/// The first line of a running container's /proc/PID/uid_map, as
/// (inside, outside, count).
fn uid_map(root: &Root, name: &str) -> (u64, u64, u64) {
    let pid = root.ok(&["inspect", "-f", "{{.State.Pid}}", name]);
    let map = std::fs::read_to_string(format!("/proc/{}/uid_map", pid.trim())).unwrap();
    let f: Vec<u64> = map.split_whitespace().take(3).map(|x| x.parse().unwrap()).collect();
    (f[0], f[1], f[2])
}

fn layer_copies(root: &Root) -> usize {
    std::fs::read_dir(root.path().join("store/layers"))
        .unwrap()
        .flatten()
        .flat_map(|l| std::fs::read_dir(l.path()).unwrap().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with("shifted-"))
        .count()
}

#[test]
#[ignore = "needs root"]
fn root_inside_is_an_unprivileged_uid_outside() {
    let root = root_with_bb();
    let host = tempfile::Builder::new()
        .prefix("berth-userns-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    std::fs::set_permissions(host.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(host.path().join("root-only"), "secret\n").unwrap();
    std::fs::set_permissions(host.path().join("root-only"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let v = format!("{}:/x", host.path().display());

    root.ok(&[
        "run",
        "-d",
        "--name",
        "ctr",
        "--userns=auto",
        "-v",
        &v,
        "bb",
        "sleep",
        "300",
    ]);
    assert_eq!(root.ok(&["exec", "ctr", "id", "-u"]), "0\n", "root inside");
    let (inside, outside, count) = uid_map(&root, "ctr");
    assert_eq!((inside, count), (0, 65536));
    assert!(outside >= 65536, "an unprivileged host uid: {outside}");

    // `ps -o user` on the host: the container's process is that uid.
    let pid = root.ok(&["inspect", "-f", "{{.State.Pid}}", "ctr"]);
    let ps = std::process::Command::new("ps")
        .args(["-o", "user:12=", "-p", pid.trim()])
        .output()
        .unwrap();
    assert_eq!(stdout(&ps).trim(), outside.to_string(), "ps shows the mapped uid");

    // What root writes to a bind mount belongs to that uid on the host.
    root.ok(&["exec", "ctr", "sh", "-c", "echo hi > /x/written"]);
    let md = std::fs::metadata(host.path().join("written")).unwrap();
    assert_eq!((md.uid() as u64, md.gid() as u64), (outside, outside));

    // A root-only host file passed in by -v cannot be opened.
    let o = root.run(&["exec", "ctr", "cat", "/x/root-only"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));

    // The image's files are root's inside, the layers shared, not copied.
    assert_eq!(
        root.ok(&["exec", "ctr", "stat", "-c", "%u:%g", "/bin/busybox"]),
        "0:0\n"
    );
    assert_eq!(layer_copies(&root), 0, "no chowned copy of any layer");
    assert_eq!(
        root.ok(&["inspect", "-f", "{{.HostConfig.UsernsMode}}", "ctr"]),
        "auto\n"
    );

    // The store lets others search its root (the container's root must pass
    // it), yet another local user, who can read the rootfs path in
    // /proc/self/mountinfo, cannot enter it, nor reach the layers.
    let id = root.ok(&["inspect", "-f", "{{.Id}}", "ctr"]);
    let store = root.path().join("store");
    let rootfs = store.join("containers").join(id.trim()).join("rootfs");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(mountinfo.contains(&rootfs.display().to_string()), "the path is public");
    let as_nobody = |cmd: &str, path: &Path| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", cmd])
            .arg(path)
            .output()
            .unwrap()
    };
    // Search is allowed down to containers/ (so the denial below is the
    // container directory's own)...
    assert!(as_nobody("stat", &store.join("containers")).status.success());
    for path in [rootfs.join("bin"), store.join("layers")] {
        let o = as_nobody("ls", &path);
        assert!(!o.status.success(), "nobody listed {}", path.display());
        assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    }
    root.ok(&["rm", "-f", "ctr"]);
    // That search-only access is by design: the store check accepts it.
    assert_eq!(root.ok(&["system", "check"]).trim(), "No problems found.");

    // Docker's behaviour without the flag: root is host root.
    let map = root.ok(&["run", "--rm", "bb", "cat", "/proc/self/uid_map"]);
    assert_eq!(map.split_whitespace().collect::<Vec<_>>(), vec!["0", "0", "4294967295"]);
}

#[test]
#[ignore = "needs root"]
fn ten_containers_started_at_once_get_ten_disjoint_ranges() {
    let root = root_with_bb();
    let started: Vec<_> = (0..10)
        .map(|i| {
            let mut c = root.cmd(&[
                "run",
                "-d",
                "--name",
                &format!("c{i}"),
                "--userns=auto",
                "bb",
                "sleep",
                "300",
            ]);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for child in started {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let mut ranges: Vec<(u64, u64)> = (0..10)
        .map(|i| {
            let (_, start, count) = uid_map(&root, &format!("c{i}"));
            (start, start + count)
        })
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].1 <= w[1].0, "ranges overlap: {ranges:?}");
    }
    let info = root.ok(&["info"]);
    assert!(info.contains("Containers with their own host ids: 10"), "{info}");
    for i in 0..10 {
        root.ok(&["rm", "-f", &format!("c{i}")]);
    }
    let info = root.ok(&["info"]);
    assert!(
        info.contains("Containers with their own host ids: 0"),
        "freed at rm: {info}"
    );
}

#[test]
#[ignore = "needs root"]
fn the_store_default_and_the_copy_fallback_come_from_berth_toml() {
    let root = root_with_bb();
    let settings = root.path().join("store/berth.toml");
    std::fs::write(&settings, "userns = \"auto:size=1024\"\nuserns_idmap = \"copy\"\n").unwrap();
    let info = root.ok(&["info"]);
    assert!(info.contains(" Default: auto:size=1024"), "{info}");
    assert!(
        info.contains(" Layers: a chowned copy per mapping (userns_idmap = \"copy\""),
        "{info}"
    );

    let map = root.ok(&[
        "run",
        "--rm",
        "bb",
        "sh",
        "-c",
        "cat /proc/self/uid_map; stat -c %u /bin/busybox",
    ]);
    let f: Vec<&str> = map.split_whitespace().collect();
    assert_eq!((f[0], f[2], f[3]), ("0", "1024", "0"), "{map}");
    let copies = layer_copies(&root);
    assert_eq!(copies, 1, "bb's one layer, copied once for this mapping");
    // The next container gets the same (freed) range: the copy is reused.
    root.ok(&["run", "--rm", "bb", "true"]);
    assert_eq!(layer_copies(&root), copies);
    // --userns=host still means Docker's behaviour.
    let map = root.ok(&["run", "--rm", "--userns=host", "bb", "cat", "/proc/self/uid_map"]);
    assert!(map.split_whitespace().nth(1) == Some("0"), "{map}");

    std::fs::write(&settings, "userns = \"sideways\"\n").unwrap();
    let o = root.run(&["run", "--rm", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("userns in") && stderr(&o).contains("berth.toml"),
        "{}",
        stderr(&o)
    );
    std::fs::write(&settings, "usrens = \"auto\"\n").unwrap();
    let o = root.run(&["run", "--rm", "bb", "true"]);
    assert!(
        stderr(&o).contains("berth.toml: line 1, column 1: unknown field `usrens`"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root"]
fn cp_commit_export_and_volumes_see_the_containers_owners() {
    let root = root_with_bb();
    root.ok(&[
        "run",
        "-d",
        "--name",
        "ctr",
        "--userns=auto",
        "-v",
        "data:/data",
        "bb",
        "sleep",
        "300",
    ]);
    // A new volume is its root's.
    assert_eq!(
        root.ok(&["exec", "ctr", "sh", "-c", "touch /data/f && stat -c %u /data/f"]),
        "0\n"
    );
    // cp in: root's inside (Docker's rule), and readable as root.
    let f = root.path().join("in.txt");
    std::fs::write(&f, "in\n").unwrap();
    root.ok(&["cp", f.to_str().unwrap(), "ctr:/tmp/in.txt"]);
    assert_eq!(root.ok(&["exec", "ctr", "stat", "-c", "%u:%g", "/tmp/in.txt"]), "0:0\n");
    root.ok(&[
        "exec",
        "ctr",
        "sh",
        "-c",
        "echo x > /root/mine && chown 1000:1000 /root/mine",
    ]);
    // cp out, export and commit give the owners the container sees.
    let out = root.cmd(&["cp", "ctr:/root/mine", "-"]).output().unwrap();
    let mut ar = tar::Archive::new(&out.stdout[..]);
    let e = ar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!((e.header().uid().unwrap(), e.header().gid().unwrap()), (1000, 1000));
    let tar = root.path().join("c.tar");
    root.ok(&["export", "-o", tar.to_str().unwrap(), "ctr"]);
    let mut ar = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let owners: BTreeSet<(String, u64)> = ar
        .entries()
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.path().unwrap().to_string_lossy().to_string(),
                e.header().uid().unwrap(),
            )
        })
        .filter(|(p, _)| p == "root/mine" || p == "bin/busybox")
        .collect();
    assert_eq!(
        owners,
        [("bin/busybox".to_string(), 0), ("root/mine".to_string(), 1000)]
            .into_iter()
            .collect()
    );
    root.ok(&["commit", "ctr", "committed"]);
    assert_eq!(
        root.ok(&[
            "run",
            "--rm",
            "committed",
            "stat",
            "-c",
            "%u",
            "/root/mine",
            "/tmp/in.txt"
        ]),
        "1000\n0\n"
    );
    root.ok(&["rm", "-f", "ctr"]);
}

#[test]
#[ignore = "needs root"]
fn every_installed_runtime_runs_a_container_with_its_own_ids() {
    let root = root_with_bb();
    for rt in ["crun", "runc", "youki"] {
        let found = ["/usr/bin", "/usr/local/bin", "/usr/sbin"]
            .iter()
            .any(|d| Path::new(d).join(rt).exists());
        if !found {
            continue; // youki may be missing; the runtimes test says so
        }
        // youki cannot join a bridge network from its own user namespace:
        // refused in words at create (checked below), so it runs without.
        let network = if rt == "youki" { "none" } else { "bridge" };
        let o = root.run(&[
            "--runtime",
            rt,
            "run",
            "--rm",
            "--userns=auto",
            "--network",
            network,
            "bb",
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map",
        ]);
        assert!(o.status.success(), "{rt}: {}", stderr(&o));
        let out = stdout(&o);
        let f: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(f[0], "0", "{rt}");
        assert_ne!(f[2], "0", "{rt}: mapped away from host root: {out}");
        if rt == "youki" {
            let o = root.run(&["--runtime", rt, "run", "--rm", "--userns=auto", "bb", "true"]);
            assert_eq!(o.status.code(), Some(125));
            assert!(
                stderr(&o).contains("use crun or runc, or --network none"),
                "{}",
                stderr(&o)
            );
        }
    }
}

#[test]
#[ignore = "needs root"]
fn wrong_modes_are_refused_with_what_to_do() {
    let root = root_with_bb();
    let o = root.run(&["run", "--rm", "--userns=keep-id", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("only for rootless berth"), "{}", stderr(&o));
    let o = root.run(&["run", "--rm", "--userns=private", "bb", "true"]);
    assert!(
        stderr(&o).contains("use host, auto, auto:size=N, keep-id or nomap"),
        "{}",
        stderr(&o)
    );
    // A store in a directory others cannot search: said, with the fix.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let o = root.run(&["run", "--rm", "--userns=auto", "bb", "true"]);
    let err = stderr(&o);
    assert!(err.contains("does not let others search it; `chmod o+x"), "{err}");
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::write(root.path().join("store/berth.toml"), "userns_range = \"12\"\n").unwrap();
    let o = root.run(&["run", "--rm", "--userns=auto", "bb", "true"]);
    assert!(stderr(&o).contains("use START:COUNT"), "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(root.path().join("store/containers"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "a refused container leaves nothing");
}

#[test]
fn rootless_keep_id_and_nomap() {
    let rl = Rootless::new("berth-userns-");
    let o = rl.run("import bb.tar bb");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rl.run("run --rm --userns=auto bb true");
    assert!(
        stderr(&o).contains("--userns=auto is for berth run as root"),
        "{}",
        stderr(&o)
    );
    let runtime = stdout(&rl.run("info --format '{{.Runtime.Name}}'"));
    let o = rl.run("run --rm --userns=keep-id bb sh -c 'id -u; id -g'");
    if runtime.trim() == "runc" {
        // runc 1.1 chowns its exec fifo to the container's root, which a
        // rootless runc may not do when that root is not the user.
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains("use crun"), "{}", stderr(&o));
        let left: Vec<_> = std::fs::read_dir(rl.store().join("containers")).unwrap().collect();
        assert!(left.is_empty(), "nothing left of the refused container");
        return;
    }
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{}\n{}\n", rl.uid, rl.gid), "the user's ids inside");
    let o = rl.run("run --rm --userns=nomap bb sh -c 'id -u; stat -c %u /bin/busybox; cat /proc/self/uid_map'");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f[0], "0", "{out}");
    assert_eq!(f[1], "65534", "the user's own files are unmapped: {out}");
    assert_ne!(
        f[3],
        rl.uid.to_string(),
        "the user's uid is not the container's root: {out}"
    );
}
