//! Rootless: an unprivileged user with a /etc/subuid range runs a
//! container and is root inside it; files it writes to a bind mount belong
//! to the user on the host.

mod common;

use common::Rootless;

use std::os::unix::fs::{chown, MetadataExt};

#[test]
#[ignore = "needs root"]
fn rootless_run_is_root_inside() {
    let rl = Rootless::new("berth-rootless-");
    let (uid, gid) = (rl.uid, rl.gid);
    let host = rl.dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    chown(&host, Some(uid), Some(gid)).unwrap();
    let store = rl.store();
    let run = |args: &str| rl.run(args);
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
