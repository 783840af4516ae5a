//! `berth network` and `berth volume` as a user types them: create, list
//! (Docker's columns, --format, --filter, -q), inspect (Docker's JSON
//! shape), rm (Docker's refusals) and prune, with nothing left behind.

mod common;

use common::{stderr, stdout, Env, Root};
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

#[test]
#[ignore = "needs root"]
fn network_create_ls_inspect_rm_prune() {
    let root = Root::new();
    let id = root.ok(&["network", "create", "app-net"]).trim().to_string();
    assert_eq!(id.len(), 64);
    root.ok(&[
        "network",
        "create",
        "--subnet",
        "10.231.0.0/24",
        "--gateway",
        "10.231.0.254",
        "--ip-range",
        "10.231.0.128/25",
        "--internal",
        "--label",
        "team=web",
        "back",
    ]);
    // Docker's columns, IDs cut to 12, names sorted, host/none built in.
    let ls = root.ok(&["network", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    );
    let row = lines.iter().find(|l| l.contains("app-net")).unwrap();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [&id[..12], "app-net", "bridge", "local"]
    );
    assert!(ls.contains(" host ") && ls.contains(" none "), "{ls}");
    assert_eq!(
        root.ok(&["network", "ls", "-q", "--filter", "name=app"]).trim(),
        &id[..12]
    );
    assert_eq!(
        root.ok(&[
            "network",
            "ls",
            "--filter",
            "label=team=web",
            "--format",
            "{{.Name}} {{.Internal}} {{.Labels}}"
        ]),
        "back true team=web\n"
    );
    // inspect: Docker's shape.
    let v = json(&root.ok(&["network", "inspect", "back"]));
    let n = &v[0];
    assert_eq!(n["Name"], "back");
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["Scope"], "local");
    assert_eq!(n["Internal"], true);
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.231.0.0/24");
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.231.0.254");
    assert_eq!(n["IPAM"]["Config"][0]["IPRange"], "10.231.0.128/25");
    assert_eq!(n["Labels"]["team"], "web");
    // The IPAM config as asked for (dockerd 20.10's): a subnet alone shows
    // no gateway, the one the engine chose still serves the containers.
    root.ok(&["network", "create", "--subnet", "10.232.0.0/24", "subonly"]);
    let s = json(&root.ok(&["network", "inspect", "subonly"]));
    assert_eq!(s[0]["IPAM"]["Config"], serde_json::json!([{"Subnet": "10.232.0.0/24"}]));
    root.ok(&["network", "rm", "subonly"]);
    assert!(n["Containers"].as_object().unwrap().is_empty());
    let bridge = n["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        root.ok(&["network", "inspect", "-f", "{{.Name}} {{.Internal}}", "app-net"]),
        "app-net false\n"
    );
    // The bridge exists with the gateway address.
    let addr = std::process::Command::new("ip")
        .args(["-br", "addr", "show", &bridge])
        .output()
        .unwrap();
    assert!(stdout(&addr).contains("10.231.0.254/24"), "{}", stdout(&addr));

    // Refusals, in Docker's words.
    let o = root.run(&["network", "create", "app-net"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("network with name app-net already exists"),
        "{}",
        stderr(&o)
    );
    let o = root.run(&["network", "create", "--subnet", "10.231.0.0/16", "clash"]);
    assert!(
        stderr(&o).contains("Pool overlaps with other one on this address space"),
        "{}",
        stderr(&o)
    );
    let o = root.run(&["network", "create", "--driver", "overlay", "x"]);
    assert!(stderr(&o).contains("plugin \"overlay\" not found"), "{}", stderr(&o));
    let o = root.run(&["network", "rm", "none"]);
    assert!(stderr(&o).contains("none is a pre-defined network and cannot be removed"));
    let o = root.run(&["network", "rm", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("network nosuch not found"), "{}", stderr(&o));
    assert!(root.run(&["network", "rm", "-f", "nosuch"]).status.success());

    // rm and prune; nothing of either network is left on the host.
    assert_eq!(root.ok(&["network", "rm", "back"]), "back\n");
    assert_eq!(root.ok(&["network", "prune", "-f"]), "Deleted Networks:\napp-net\n\n");
    let links = std::process::Command::new("ip").args(["-br", "link"]).output().unwrap();
    assert!(!stdout(&links).contains(&bridge) && !stdout(&links).contains(&id[..12]));
    let nft = std::process::Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    assert!(!stdout(&nft).contains(&bridge) && !stdout(&nft).contains(&format!("br-{}", &id[..12])));
    assert_eq!(root.ok(&["network", "ls", "-q", "--filter", "type=custom"]), "");
}

#[test]
fn volume_create_ls_inspect_rm_prune() {
    let root = Root::new();
    let store = root.path().join("store");
    let anon = root.ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64);
    assert_eq!(
        root.ok(&[
            "volume",
            "create",
            "--label",
            "x=y",
            "--opt",
            "type=tmpfs",
            "--opt",
            "device=tmpfs",
            "--opt",
            "o=size=1m",
            "scratch"
        ]),
        "scratch\n"
    );
    assert_eq!(root.ok(&["volume", "create", "data"]), "data\n");
    // The same name again is the same volume.
    assert_eq!(root.ok(&["volume", "create", "data"]), "data\n");
    let ls = root.ok(&["volume", "ls"]);
    assert_eq!(
        ls.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["DRIVER", "VOLUME", "NAME"]
    );
    assert!(ls.contains(&format!("local     {anon}")), "{ls}");
    assert_eq!(root.ok(&["volume", "ls", "-q", "--filter", "label=x"]), "scratch\n");
    let v = json(&root.ok(&["volume", "inspect", "scratch"]));
    let s = &v[0];
    assert_eq!(s["Name"], "scratch");
    assert_eq!(s["Driver"], "local");
    assert_eq!(s["Scope"], "local");
    assert_eq!(s["Labels"]["x"], "y");
    assert_eq!(s["Options"]["type"], "tmpfs");
    assert_eq!(s["Options"]["o"], "size=1m");
    let mp = s["Mountpoint"].as_str().unwrap();
    assert_eq!(std::path::Path::new(mp), store.join("volumes/scratch/_data"));
    assert!(std::path::Path::new(mp).is_dir());
    assert!(s["CreatedAt"].as_str().unwrap().ends_with('Z'));

    // Refusals, in Docker's words.
    let o = root.run(&["volume", "rm", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("get nosuch: no such volume"), "{}", stderr(&o));
    assert!(root.run(&["volume", "rm", "-f", "nosuch"]).status.success());
    let o = root.run(&["volume", "create", "--opt", "color=red", "v2"]);
    assert!(stderr(&o).contains("invalid option key"), "{}", stderr(&o));
    let o = root.run(&["volume", "create", "--driver", "nfs", "v3"]);
    assert!(stderr(&o).contains("plugin \"nfs\" not found"), "{}", stderr(&o));

    // prune takes anonymous volumes; -a takes named ones too.
    let out = root.ok(&["volume", "prune", "-f"]);
    assert!(out.starts_with(&format!("Deleted Volumes:\n{anon}\n")), "{out}");
    assert!(!store.join("volumes").join(&anon).exists());
    assert_eq!(root.ok(&["volume", "rm", "scratch"]), "scratch\n");
    assert!(!store.join("volumes/scratch").exists());
    assert!(root.ok(&["volume", "prune", "-a", "-f"]).contains("data"));
    assert_eq!(root.ok(&["volume", "ls", "-q"]), "");
}

#[test]
#[ignore = "needs root"]
fn a_volume_written_by_one_container_is_read_by_another_and_cannot_go_while_used() {
    let env = Env::new();
    let root = &env.root;
    root.ok(&["volume", "create", "shared"]);
    root.ok(&[
        "run",
        "--rm",
        "-v",
        "shared:/data",
        "bb",
        "sh",
        "-c",
        "echo from-the-first > /data/f",
    ]);
    assert_eq!(
        root.ok(&["run", "--rm", "-v", "shared:/data", "bb", "cat", "/data/f"]),
        "from-the-first\n"
    );
    let id = root
        .ok(&["create", "--name", "holder", "-v", "shared:/data", "bb", "true"])
        .trim()
        .to_string();
    let o = root.run(&["volume", "rm", "shared"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("remove shared: volume is in use - [{id}]")),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        root.ok(&["volume", "ls", "-q", "--filter", "dangling=false"]),
        "shared\n"
    );
    root.ok(&["rm", "holder"]);
    assert_eq!(root.ok(&["volume", "rm", "shared"]), "shared\n");
}

#[test]
#[ignore = "needs root (runs berth as the berth-rootless user)"]
fn rootless_networks_live_in_the_users_own_namespace_and_go_with_the_last_one() {
    let rl = common::Rootless::new("berth-netcli-");
    let o = rl.run("network create app");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rl.run("network inspect -f '{{.Name}} {{index .Options \"com.docker.network.bridge.name\"}}' app");
    let shown = stdout(&o);
    let bridge = shown.split_whitespace().nth(1).unwrap().to_string();
    // The bridge is in the user's namespace, not the host's.
    let host = std::process::Command::new("ip").args(["-br", "link"]).output().unwrap();
    assert!(!stdout(&host).contains(&bridge));
    let o = rl.sh(&format!(
        "nsenter -U -n -t $(cat berth-rootless-netns/holder.pid) ip -br addr show {bridge}"
    ));
    assert!(stdout(&o).contains("172."), "{} {}", stdout(&o), stderr(&o));
    let o = rl.run("network rm app");
    assert_eq!(stdout(&o), "app\n", "{}", stderr(&o));
    // The namespace's holder and pasta are gone with the last network.
    let left = std::process::Command::new("pgrep")
        .args(["-u", &rl.uid.to_string(), "-a"])
        .output()
        .unwrap();
    let running: Vec<String> = stdout(&left)
        .lines()
        .filter(|l| !l.contains("<defunct>"))
        .map(String::from)
        .collect();
    assert!(running.is_empty(), "{running:?}");
}

#[test]
#[ignore = "needs root"]
fn volume_options_mount_options_anonymous_volumes_and_disk_usage() {
    let env = Env::new();
    let root = &env.root;
    // type=tmpfs: the container sees a tmpfs of that size.
    root.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "tv",
    ]);
    let m = root.ok(&["run", "--rm", "-v", "tv:/d", "bb", "grep", " /d ", "/proc/mounts"]);
    assert!(m.starts_with("tmpfs /d tmpfs rw,") && m.contains("size=1024k"), "{m}");
    // type=none,o=bind: the device directory itself.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("host-file"), "from-host").unwrap();
    let dev = format!("device={}", dir.path().display());
    root.ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &dev,
        "bv",
    ]);
    assert_eq!(
        root.ok(&["run", "--rm", "-v", "bv:/d", "bb", "cat", "/d/host-file"]),
        "from-host"
    );
    let o = root.run(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        "device=/nosuch",
        "b2",
    ]);
    assert!(
        stderr(&o).contains("bind source path does not exist: /nosuch"),
        "{}",
        stderr(&o)
    );
    // --mount volume-opt=… creates the volume with them; readonly holds.
    let m = root.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=mv,dst=/m,volume-opt=type=tmpfs,volume-opt=device=tmpfs,\"volume-opt=o=size=2m,uid=7\",readonly",
        "bb",
        "sh",
        "-c",
        "grep ' /m ' /proc/mounts; touch /m/x 2>/dev/null || echo refused",
    ]);
    assert!(
        m.starts_with("tmpfs /m tmpfs ro,") && m.contains("size=2048k") && m.contains("uid=7"),
        "{m}"
    );
    assert!(m.ends_with("refused\n"), "{m}");
    let v = json(&root.ok(&["volume", "inspect", "mv"]));
    assert_eq!(v[0]["Options"]["o"], "size=2m,uid=7");

    // An image's VOLUME: an anonymous volume per container, gone with
    // `run --rm` and `rm -v`, kept by plain `rm` (then `prune` takes it).
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM bb\nVOLUME /data\n").unwrap();
    root.ok(&["build", "-q", "-t", "bbv", ctx.path().to_str().unwrap()]);
    let named = ["bv", "mv", "tv"];
    let anonymous = || -> Vec<String> {
        root.ok(&["volume", "ls", "-q"])
            .lines()
            .filter(|n| !named.contains(n))
            .map(String::from)
            .collect()
    };
    root.ok(&["run", "--rm", "bbv", "sh", "-c", "echo x > /data/f"]);
    assert!(anonymous().is_empty());
    root.ok(&["run", "--name", "v1", "bbv", "sh", "-c", "echo 12345 > /data/f"]);
    root.ok(&["run", "--name", "v2", "bbv", "true"]);
    let two = anonymous();
    assert_eq!(two.len(), 2, "{two:?}");
    // system df -v: each volume, its users, its size.
    let df = root.ok(&["system", "df", "-v"]);
    let table = df.split("Local Volumes space usage:\n\n").nth(1).unwrap();
    let row = |name: &str| -> Vec<String> {
        let l = table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{df}"));
        l.split_whitespace().map(String::from).collect()
    };
    let v1_vol = root
        .ok(&["inspect", "-f", "{{(index .Mounts 0).Name}}", "v1"])
        .trim()
        .to_string();
    assert_eq!(row(&v1_vol), [v1_vol.as_str(), "1", "6B"]);
    assert_eq!(row("tv"), ["tv", "0", "0B"]);
    root.ok(&["rm", "-v", "v1"]);
    assert_eq!(anonymous().len(), 1);
    root.ok(&["rm", "v2"]);
    assert_eq!(anonymous().len(), 1);
    // prune without -a: only the anonymous one; with -a: the rest.
    let out = root.ok(&["volume", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted Volumes:\n") && out.lines().count() == 4,
        "{out}"
    );
    assert!(anonymous().is_empty());
    assert_eq!(root.ok(&["volume", "ls", "-q"]), "bv\nmv\ntv\n");
    root.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(root.ok(&["volume", "ls", "-q"]), "");
    // The bind volume's device is the user's: never emptied.
    assert!(dir.path().join("host-file").exists());
}

/// A new volume is filled from the image's files at its target, unless the
/// mount says `nocopy` (`-v NAME:/p:nocopy`, `--mount …,volume-nocopy`,
/// the API's `VolumeOptions.NoCopy`, compose's `volume.nocopy`).
#[test]
#[ignore = "needs root"]
fn a_new_volume_is_filled_from_the_image_unless_nocopy() {
    let env = Env::new();
    let root = &env.root;
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nRUN mkdir /data && echo from-image > /data/x\n",
    )
    .unwrap();
    root.ok(&["build", "-q", "-t", "bbdata", ctx.path().to_str().unwrap()]);
    let ls = |mount: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(mount);
        args.extend_from_slice(&["bbdata", "ls", "/data"]);
        root.ok(&args)
    };
    assert_eq!(ls(&["-v", "filled:/data"]), "x\n");
    assert_eq!(ls(&["-v", "empty:/data:nocopy"]), "");
    assert_eq!(ls(&["--mount", "src=empty2,dst=/data,volume-nocopy"]), "");
    assert_eq!(ls(&["--mount", "src=filled2,dst=/data,volume-nocopy=false"]), "x\n");
    // An anonymous volume too.
    assert_eq!(ls(&["-v", "/data:nocopy"]), "");
    root.ok(&["volume", "prune", "-af"]);
}
