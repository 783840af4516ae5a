//! Leases, atomic tags and the sweep of what killed processes leave: a
//! `prune` or `rmi` beside a build or a run never takes what they stand on.

mod common;

use std::fs;
use std::path::Path;

use berth_store::{Digest, LeaseKind, Store, StoreError};
use common::{expected_id, image};

fn store(t: &tempfile::TempDir) -> Store {
    Store::open(&t.path().join("store")).unwrap()
}

#[test]
fn an_image_a_build_stands_on_survives_rmi_and_gc_until_the_build_ends() {
    let t = tempfile::tempdir().unwrap();
    let s = store(&t);
    let id = image(&s, "base", &[]);
    let chain = s.image(&id).unwrap().layers[0].clone();
    let lease = s.lease("build").unwrap();
    lease.image(&id).unwrap();

    let e = s.delete_image(&id).unwrap_err();
    assert!(matches!(e, StoreError::InUse { .. }), "{e:?}");
    assert!(
        e.to_string().contains("image is being used by a running build (pid"),
        "{e}"
    );
    s.gc().unwrap();
    assert!(s.has_layer_dir(&chain), "gc took a leased image's layer");
    assert!(s.leased().unwrap().images.contains(&id));

    drop(lease);
    assert!(s.leased().unwrap().images.is_empty());
    s.delete_image(&id).unwrap();
    s.gc().unwrap();
    assert!(!s.has_layer_dir(&chain));
}

#[test]
fn a_step_image_held_before_its_commit_is_never_pruned_in_between() {
    let t = tempfile::tempdir().unwrap();
    let s = store(&t);
    let lease = s.lease("build").unwrap();
    // A build knows its step image's ID (its config's digest) before the
    // commit, and holds it from then on.
    let id = expected_id("step");
    lease.hold(LeaseKind::Image, &id).unwrap();
    assert!(matches!(lease.image(&id), Err(StoreError::ImageNotFound(_))));
    assert_eq!(image(&s, "step", &[]), id);
    // A prune right after the commit finds it dangling, and held.
    assert!(matches!(s.delete_image(&id), Err(StoreError::InUse { .. })));
    drop(lease);
    s.delete_image(&id).unwrap();
}

#[test]
fn a_lease_of_a_killed_process_counts_for_nothing_and_is_swept() {
    let t = tempfile::tempdir().unwrap();
    let s = store(&t);
    let id = image(&s, "base", &[]);
    // A process that leased the image and was killed: it is gone now.
    let mut child = std::process::Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = child.id();
    let start = berth_store_test_start(pid);
    {
        let db = rusqlite::Connection::open(t.path().join("store/berth.db")).unwrap();
        db.execute(
            "INSERT INTO leases (id, pid, start, what, created) VALUES ('dead', ?1, ?2, 'build', 0)",
            rusqlite::params![pid, start as i64],
        )
        .unwrap();
        db.execute(
            "INSERT INTO lease_refs (lease, kind, ref) VALUES ('dead', 'image', ?1)",
            rusqlite::params![id.as_str()],
        )
        .unwrap();
    }
    assert!(s.leased().unwrap().images.contains(&id), "alive, it holds the image");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(s.leased().unwrap().images.is_empty());
    s.delete_image(&id).unwrap();
    let db = rusqlite::Connection::open(t.path().join("store/berth.db")).unwrap();
    let left: i64 = db
        .query_row("SELECT COUNT(*) FROM lease_refs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "the dead lease was swept");
}

/// Field 22 of /proc/<pid>/stat.
fn berth_store_test_start(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

#[test]
fn a_tag_never_points_at_a_deleted_image_even_when_they_race() {
    let t = tempfile::tempdir().unwrap();
    let s = store(&t);
    let gone = image(&s, "gone", &[]);
    s.delete_image(&gone).unwrap();
    assert!(matches!(
        s.tag(&gone, "docker.io/library/x:latest"),
        Err(StoreError::ImageNotFound(_))
    ));
    // Taggers and removers at once, each in its own store as separate
    // commands would be.
    let root = t.path().join("store");
    let ids: Vec<Digest> = (0..20).map(|i| image(&s, &format!("img{i}"), &[])).collect();
    std::thread::scope(|sc| {
        let ids = &ids;
        let root = &root;
        sc.spawn(move || {
            let s = Store::open(root).unwrap();
            for id in ids {
                let _ = s.delete_image(id);
            }
        });
        for w in 0..3 {
            sc.spawn(move || {
                let s = Store::open(root).unwrap();
                for (i, id) in ids.iter().enumerate() {
                    let _ = s.tag(id, &format!("docker.io/library/t{w}:{i}"));
                }
            });
        }
    });
    let db = rusqlite::Connection::open(root.join("berth.db")).unwrap();
    let dangling: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM tags WHERE image_id NOT IN (SELECT id FROM images)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dangling, 0);
}

/// Mounts an overlay at `target` with `lower` as its lower dir.
fn overlay(lower: &Path, t: &Path, target: &Path) {
    let (upper, work) = (t.join("upper"), t.join("work"));
    for d in [&upper, &work, &target.to_path_buf()] {
        fs::create_dir_all(d).unwrap();
    }
    let st = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        ))
        .arg(target)
        .status()
        .unwrap();
    assert!(st.success());
}

fn umount(target: &Path) {
    let _ = std::process::Command::new("umount")
        .arg(target)
        .stderr(std::process::Stdio::null())
        .status();
}

#[test]
#[ignore = "needs root"]
fn gc_never_removes_a_layer_a_live_mount_uses_as_its_lower_dir() {
    let t = tempfile::tempdir().unwrap();
    let s = store(&t);
    let id = image(&s, "base", &[]);
    let chain = s.image(&id).unwrap().layers[0].clone();
    let target = t.path().join("mnt/rootfs");
    overlay(&s.layer_dir(&chain), &t.path().join("mnt"), &target);
    s.delete_image(&id).unwrap();
    s.gc().unwrap();
    let still = s.has_layer_dir(&chain) && fs::read(target.join("base")).is_ok();
    umount(&target);
    assert!(still, "gc removed a mounted lower dir");
    s.gc().unwrap();
    assert!(!s.has_layer_dir(&chain), "unmounted, it goes");
}

#[test]
#[ignore = "needs root"]
fn a_killed_builds_step_dir_and_mount_go_when_the_store_next_opens_and_a_live_one_stays() {
    let t = tempfile::tempdir().unwrap();
    let s = store(&t);
    let id = image(&s, "base", &[]);
    let lower = s.layer_dir(&s.image(&id).unwrap().layers[0]);
    let build = s.root().join("build");
    fs::create_dir_all(&build).unwrap();
    let dead = build.join("a".repeat(64));
    fs::write(build.join(format!("{}.lock", "a".repeat(64))), b"").unwrap();
    overlay(&lower, &dead.join("root1"), &dead.join("root1/rootfs"));
    // A live step: its lock is held (as by a build running beside us).
    let live = build.join("b".repeat(64));
    let lock = fs::File::create(build.join(format!("{}.lock", "b".repeat(64)))).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    overlay(&lower, &live.join("root1"), &live.join("root1/rootfs"));
    drop(s);

    let s = Store::open(&t.path().join("store")).unwrap();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dead_mounted = mountinfo.contains(&dead.display().to_string());
    let live_mounted = mountinfo.contains(&live.display().to_string());
    umount(&live.join("root1/rootfs"));
    umount(&dead.join("root1/rootfs"));
    assert!(!dead_mounted, "the dead step's mount was left");
    assert!(!dead.exists(), "the dead step's directory was left");
    assert!(live_mounted && live.exists(), "a live step was swept");
    drop(s);
}

#[test]
fn a_prune_never_deletes_an_image_named_or_given_a_container_since_it_looked() {
    let t = tempfile::tempdir().unwrap();
    let s = store(&t);
    let id = image(&s, "fresh", &[]);
    // A build names its image just after prune listed it as dangling.
    s.tag(&id, "docker.io/library/fresh:latest").unwrap();
    assert!(!s.delete_dangling_image(&id).unwrap());
    assert!(s.image(&id).is_ok());
    // A container created from it just after prune read the containers.
    s.untag("docker.io/library/fresh:latest").unwrap();
    s.insert_container(&berth_store::ContainerRecord {
        id: "c".repeat(64),
        name: "box".into(),
        image_id: id.to_string(),
        created: "now".into(),
        config: serde_json::Value::Null,
    })
    .unwrap();
    let e = s.delete_dangling_image(&id).unwrap_err();
    assert!(matches!(e, StoreError::UsedByContainer { .. }), "{e:?}");
    assert!(
        e.to_string().contains("image is being used by container cccccccccccc"),
        "{e}"
    );
    s.remove_container(&"c".repeat(64)).unwrap();
    assert!(s.delete_dangling_image(&id).unwrap());
}

#[test]
fn a_container_held_by_a_command_is_seen_as_leased_until_its_store_closes() {
    let t = tempfile::tempdir().unwrap();
    let s = store(&t);
    let other = store(&t);
    s.hold_for_process(LeaseKind::Container, &"d".repeat(64)).unwrap();
    assert!(other.leased().unwrap().containers.contains(&"d".repeat(64)));
    drop(s);
    assert!(other.leased().unwrap().containers.is_empty());
}
