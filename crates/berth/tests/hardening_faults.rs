//! The fault matrix of issue #12: each store-changing command killed with
//! SIGKILL part-way through (timed kills, at about a quarter and two thirds
//! of the time it takes), then `system check`. Whatever a kill leaves must
//! be garbage only (blobs nothing refers to, unrecorded layer directories,
//! dead leases, stale mounts), never anything visible that is half-made (a
//! name without its image, an image without a blob or layer, a container
//! without its directory); `--repair` must clean it, the next check must
//! say "No problems found.", no mount may stay, and the command must then
//! work whole.

#[path = "build_support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::*;

/// A root filesystem tar: busybox plus 32 MiB of incompressible data, so
/// that every command below takes long enough to be killed in the middle.
fn big_rootfs_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("data")).unwrap();
    make_busybox_rootfs(&rootfs);
    // A cheap xorshift stream: random enough that nothing compresses it.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..32 {
        let mut buf = vec![0u8; 1 << 20];
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        std::fs::write(rootfs.join("data").join(format!("f{i}")), buf).unwrap();
    }
    let tar = dir.join("big.tar");
    let st = std::process::Command::new("tar")
        .args(["-C", rootfs.to_str().unwrap(), "-cf", tar.to_str().unwrap(), "."])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(&rootfs).unwrap();
    tar
}

/// Lines of `system check` that show something half-made to a user, as
/// opposed to garbage that only costs space.
fn visible_damage(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter(|l| {
            l.contains("which is gone")
                || (l.contains("blob") && l.ends_with("is gone"))
                || l.contains(": its layer")
                || l.contains("its directory is gone")
                || l.contains("its image")
        })
        .collect()
}

/// One command of the matrix: `prepare` puts the store in the state the
/// command needs (and is run again before the whole run at the end).
struct Op<'a> {
    name: &'a str,
    args: Vec<String>,
    prepare: &'a dyn Fn(&Root),
}

/// Runs `op` whole once to time it, then kills it at two points; after
/// each kill checks, repairs, checks again and runs it whole.
/// What berth's commands could leave in the host's shared /tmp.
fn berth_entries_in_tmp() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("berth-") && !n.starts_with("berth-test"))
        .collect()
}

fn kill_and_check(root: &Root, op: &Op<'_>) {
    let args: Vec<&str> = op.args.iter().map(String::as_str).collect();
    (op.prepare)(root);
    let t = Instant::now();
    root.ok(&args);
    let whole = t.elapsed();
    for frac in [0.25, 0.65] {
        (op.prepare)(root);
        let tmp_before = berth_entries_in_tmp();
        let mut child = root
            .cmd(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole.mul_f64(frac));
        let _ = child.kill();
        let _ = child.wait();
        // Whatever the killed process started (a build step's container,
        // say) is given a moment to go with it.
        std::thread::sleep(Duration::from_millis(200));

        let o = root.run(&["system", "check"]);
        let report = stdout(&o) + &stderr(&o);
        let damage = visible_damage(&report);
        assert!(
            damage.is_empty(),
            "{} killed at {frac}: half-made state is visible:\n{report}",
            op.name
        );
        let o = root.run(&["system", "check", "--repair"]);
        assert!(
            o.status.success(),
            "{} killed at {frac}: repair failed:\n{}{}",
            op.name,
            stdout(&o),
            stderr(&o)
        );
        let again = root.ok(&["system", "check"]);
        assert_eq!(
            again.trim(),
            "No problems found.",
            "{} killed at {frac}: left after repair",
            op.name
        );
        let store = root.path().join("store");
        let left = mounts_under(&store);
        assert!(left.is_empty(), "{} killed at {frac}: mounts left: {left:?}", op.name);
        // Nor a process: a build's step container waiting for its start.
        let procs = processes_with(&format!("{}/", store.display()));
        assert!(
            procs.is_empty(),
            "{} killed at {frac}: left running: {procs:?}",
            op.name
        );
        // Nor a file in the host's /tmp: scratch files live in the store.
        let tmp_new: Vec<String> = berth_entries_in_tmp().difference(&tmp_before).cloned().collect();
        assert!(
            tmp_new.is_empty(),
            "{} killed at {frac}: left in /tmp: {tmp_new:?}",
            op.name
        );
        // The command works whole afterwards.
        (op.prepare)(root);
        root.ok(&args);
    }
}

#[test]
#[ignore = "needs root"]
fn every_store_command_killed_part_way_leaves_only_garbage_that_repair_removes() {
    let root = Root::new();
    root.busybox("bb");
    let tar = big_rootfs_tar(root.path());
    let tar_s = tar.to_str().unwrap().to_string();
    root.ok(&["import", &tar_s, "big"]);
    let saved = root.path().join("saved.tar");
    root.ok(&["save", "-o", saved.to_str().unwrap(), "big"]);
    let ctx = context(&[("Dockerfile", "FROM big\nRUN cp -r /data /copy\n")]);
    let ctx_s = ctx.path().to_str().unwrap().to_string();

    let gone = |root: &Root, what: &[&str]| {
        let mut a = vec!["rmi", "-f"];
        a.extend_from_slice(what);
        let _ = root.run(&a);
    };
    // `big` again after a prune took it.
    let saved_s = saved.to_str().unwrap().to_string();
    let have_big = move |root: &Root| {
        if !root.run(&["image", "inspect", "big"]).status.success() {
            root.ok(&["load", "-q", "-i", &saved_s]);
        }
    };
    // A stopped container whose upper layer holds a copy of /data.
    let changed = |root: &Root| {
        have_big(root);
        let _ = root.run(&["rm", "-f", "changed"]);
        root.ok(&["run", "--name", "changed", "big", "cp", "-r", "/data", "/copy"]);
    };
    let ops = [
        Op {
            name: "import",
            args: vec!["import".into(), tar_s.clone(), "imported".into()],
            prepare: &|r| gone(r, &["imported"]),
        },
        Op {
            name: "load",
            args: vec!["load".into(), "-q".into(), "-i".into(), saved.to_str().unwrap().into()],
            // Nothing of it in the store: every layer is written again.
            prepare: &|r| {
                gone(r, &["big", "imported"]);
                let _ = r.run(&["rm", "-f", "changed"]);
                r.ok(&["image", "prune", "-af"]);
            },
        },
        Op {
            name: "commit",
            args: vec!["commit".into(), "changed".into(), "committed".into()],
            prepare: &|r| {
                gone(r, &["committed"]);
                changed(r);
            },
        },
        Op {
            name: "build",
            args: vec![
                "build".into(),
                "-q".into(),
                "--no-cache".into(),
                "-t".into(),
                "built".into(),
                ctx_s.clone(),
            ],
            prepare: &|r| {
                have_big(r);
                gone(r, &["built"]);
            },
        },
        Op {
            name: "rm",
            args: vec!["rm".into(), "-v".into(), "changed".into()],
            prepare: &changed,
        },
        Op {
            name: "rmi",
            args: vec!["rmi".into(), "imported".into()],
            prepare: &|r| {
                if !r.run(&["image", "inspect", "imported"]).status.success() {
                    r.ok(&["import", &tar_s, "imported"]);
                }
            },
        },
        Op {
            name: "image prune",
            args: vec!["image".into(), "prune".into(), "-af".into()],
            prepare: &|r| {
                let _ = r.run(&["rm", "-f", "changed"]);
                if !r.run(&["image", "inspect", "imported"]).status.success() {
                    r.ok(&["import", &tar_s, "imported"]);
                }
            },
        },
        Op {
            name: "system prune",
            args: vec!["system".into(), "prune".into(), "-af".into()],
            prepare: &|r| {
                changed(r);
                if !r.run(&["image", "inspect", "imported"]).status.success() {
                    r.ok(&["import", &tar_s, "imported"]);
                }
            },
        },
    ];
    for op in &ops {
        kill_and_check(&root, op);
    }
    let _ = root.run(&["rm", "-f", "changed"]);
}
