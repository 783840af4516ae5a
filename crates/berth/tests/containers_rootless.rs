//! Rootless: an unprivileged user with a /etc/subuid range runs a
//! container and is root inside it; files it writes to a bind mount belong
//! to the user on the host.

mod common;

use common::subuid_user;

use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::process::Command;

#[test]
fn rootless_run_is_root_inside() {
    if !rustix::process::geteuid().is_root() {
        println!("SKIP: this test switches to an unprivileged user and must start as root");
        return;
    }
    let Some((user, uid, gid)) = subuid_user() else {
        println!("SKIP: no user with an /etc/subuid range");
        return;
    };
    if Command::new("newuidmap").arg("--help").output().is_err() && !std::path::Path::new("/usr/bin/newuidmap").exists()
    {
        println!("SKIP: newuidmap (uidmap) is not installed");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-rootless-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("berth");
    std::fs::copy(env!("CARGO_BIN_EXE_berth"), &exe).unwrap();
    let tar = dir.path().join("bb.tar");
    std::fs::copy(common::busybox_tar(), &tar).unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    for p in [dir.path().to_path_buf(), exe.clone(), tar.clone(), host.clone()] {
        chown(&p, Some(uid), Some(gid)).unwrap();
    }
    let store = dir.path().join("store");
    let run = |args: &str| {
        let line = format!(
            "cd {d} && HOME={d} XDG_RUNTIME_DIR={d} ./berth --root {s} {args}",
            d = dir.path().display(),
            s = store.display()
        );
        Command::new("su")
            .args([user.as_str(), "-s", "/bin/sh", "-c", &line])
            .output()
            .unwrap()
    };
    let o = run("import bb.tar bb");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run("run --rm bb id -u");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n");
    let o = run(&format!(
        "run --rm -v {}:/m bb sh -c 'echo hi > /m/f; exit 3'",
        host.display()
    ));
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::metadata(host.join("f")).unwrap().uid(), uid);
    // Detached, stopped and removed as the user.
    let o = run("run -d --name bg bb sleep 100");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run("rm -f bg");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let left: Vec<_> = std::fs::read_dir(store.join("containers")).unwrap().collect();
    assert!(left.is_empty());
}
