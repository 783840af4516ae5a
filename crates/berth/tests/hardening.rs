//! Hardening (issue #12), end to end with the real binary: what another
//! local user, a hostile image or a hostile Dockerfile could do to a store,
//! and what a careless user leaves behind.

#[path = "build_support.rs"]
mod support;

use std::path::{Path, PathBuf};

use support::*;

/// Every regular file under `dir` (not following symlinks).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

/// Names in /tmp that look like a berth secret.
fn secrets_in_tmp() -> Vec<String> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("berth-secret"))
        .collect()
}

#[test]
#[ignore = "needs root"]
fn a_secret_from_the_environment_reaches_the_run_and_nothing_else() {
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb\nRUN --mount=type=secret,id=token,required=true wc -c < /run/secrets/token > /len\n",
    )]);
    let value = format!("tok-{}-do-not-leak", std::process::id());
    let before = secrets_in_tmp();
    let out = root
        .cmd(&[
            "build",
            "--secret",
            "id=token,env=API_TOKEN",
            "-t",
            "sec",
            ctx.path().to_str().unwrap(),
        ])
        .env("API_TOKEN", &value)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The RUN saw it...
    let len = root.ok(&["run", "--rm", "sec", "cat", "/len"]);
    assert_eq!(len.trim(), value.len().to_string());
    // ...but no shared directory did, and nothing in the store keeps it:
    // not a layer, not the database, not a staging file, not a log.
    assert_eq!(secrets_in_tmp(), before, "a secret file was left in /tmp");
    for f in files_under(&root.path().join("store")) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "the secret is in {}",
            f.display()
        );
    }
}

// ---------------------------------------------------------------- permissions

/// `find STORE ! -type l ( -perm /o+rwx -o -perm /g+rwx )`, skipping the
/// documented open paths (`berth_store::OPEN_PATHS`) and what is below
/// them: what another local user (or group) could read, write or run.
fn open_to_others(store: &Path) -> Vec<String> {
    let mut cmd = std::process::Command::new("find");
    cmd.arg(store).arg("(");
    for (i, glob) in berth_store::OPEN_PATHS.iter().enumerate() {
        if i > 0 {
            cmd.arg("-o");
        }
        cmd.arg("-path").arg(store.join(glob));
    }
    cmd.args([
        ")", "-prune", "-o", "!", "-type", "l", "(", "-perm", "/o+rwx", "-o", "-perm", "/g+rwx", ")", "-print",
    ]);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// Runs `args` as `nobody` (uid and gid 65534, no other groups).
fn as_nobody(args: &[&str]) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args)
        .output()
        .unwrap()
}

const FULL_ROUND: &str = "FROM bb
RUN --mount=type=cache,target=/cache echo hi > /cache/x && echo built > /b
COPY <<EOF /greeting
hello
EOF
";

#[test]
#[ignore = "needs root"]
fn after_import_build_run_and_logs_no_other_user_can_read_anything_in_the_store() {
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[("Dockerfile", FULL_ROUND)]);
    build_ok(&root, &["-t", "round", ctx.path().to_str().unwrap()]);
    let id = root
        .ok(&[
            "run",
            "-d",
            "--name",
            "keeper",
            "-e",
            "API_TOKEN=hunter2",
            "round",
            "sh",
            "-c",
            "echo started; sleep 300",
        ])
        .trim()
        .to_string();
    let vol = root.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "round",
        "sh",
        "-c",
        "echo v > /data/f",
    ]);
    assert!(vol.is_empty(), "{vol}");
    for _ in 0..50 {
        if root.ok(&["logs", "keeper"]).contains("started") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let store = root.path().join("store");
    assert_eq!(mode(&store), 0o700);
    let open = open_to_others(&store);
    assert!(open.is_empty(), "open to other users:\n{}", open.join("\n"));

    // And as another user: nothing to list, nothing to read.
    let config = store.join("containers").join(&id).join("berth.json");
    assert!(std::fs::read_to_string(&config).unwrap().contains("hunter2"));
    let log = store.join("containers").join(&id).join("ctr.log");
    let db = store.join("berth.db");
    for args in [
        vec!["ls", store.to_str().unwrap()],
        vec!["cat", config.to_str().unwrap()],
        vec!["cat", log.to_str().unwrap()],
        vec!["cat", db.to_str().unwrap()],
    ] {
        let o = as_nobody(&args);
        assert!(!o.status.success(), "nobody could run {args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
            "{args:?}: {o:?}"
        );
    }
    root.ok(&["rm", "-f", "keeper"]);
}

/// A root filesystem tar with a set-uid-root busybox, a busybox that
/// carries `cap_setuid=ep`, and a 0666 character device.
fn hostile_rootfs(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let rootfs = dir.join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    make_busybox_rootfs(&rootfs);
    // busybox runs the applet its file is named after: `id`.
    for d in ["suid", "cap"] {
        std::fs::create_dir(rootfs.join(d)).unwrap();
    }
    let suid = rootfs.join("suid/id");
    std::fs::copy("/bin/busybox", &suid).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let cap = rootfs.join("cap/id");
    std::fs::copy("/bin/busybox", &cap).unwrap();
    let st = std::process::Command::new("setcap")
        .arg("cap_setuid=ep")
        .arg(&cap)
        .status()
        .unwrap();
    assert!(st.success());
    let st = std::process::Command::new("mknod")
        .arg(rootfs.join("null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::set_permissions(rootfs.join("null"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let tar = dir.join("hostile.tar");
    let st = std::process::Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

#[test]
#[ignore = "needs root"]
fn a_hostile_images_setuid_and_capability_binaries_cannot_be_run_by_another_user() {
    use std::os::unix::fs::MetadataExt;
    let root = Root::new();
    let tmp = tempfile::tempdir().unwrap();
    let tar = hostile_rootfs(tmp.path());
    let id = root
        .ok(&["import", tar.to_str().unwrap(), "hostile"])
        .trim()
        .to_string();
    let store = root.path().join("store");
    let chain = std::fs::read_dir(store.join("layers"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let diff = chain.join("diff");
    // The image is as hostile as it says: set-uid root, a capability, a 0666 device.
    let suid = diff.join("suid/id");
    let m = std::fs::metadata(&suid).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o4755));
    let cap = diff.join("cap/id");
    let caps = std::process::Command::new("getcap").arg(&cap).output().unwrap();
    assert!(String::from_utf8_lossy(&caps.stdout).contains("cap_setuid"), "{caps:?}");
    assert_eq!(mode(&diff.join("null")), 0o666);

    // Another local user cannot get to any of it.
    let write_dev = format!("echo x > {}", diff.join("null").display());
    for args in [
        vec![suid.to_str().unwrap(), "id", "-u"],
        vec![cap.to_str().unwrap(), "id", "-u"],
        vec!["sh", "-c", &write_dev],
    ] {
        let o = as_nobody(&args);
        assert!(
            !o.status.success(),
            "nobody ran {args:?}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(String::from_utf8_lossy(&o.stdout).is_empty(), "{o:?}");
    }
    // The image itself still works.
    let out = root.ok(&["run", "--rm", &id, "/suid/id", "-u"]);
    assert_eq!(out, "0\n");
}

#[test]
fn a_store_left_open_by_an_older_berth_is_tightened_and_info_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let root = Root::new();
    root.ok(&["images"]);
    let store = root.path().join("store");
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = root.run(&["info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("WARNING: the store") && out.contains("was open to other users (mode 0755): it is 0700 now"),
        "{out}"
    );
    assert_eq!(mode(&store), 0o700);
    // Once: the next command finds nothing to say.
    let out = root.ok(&["info"]);
    assert!(!out.contains("WARNING"), "{out}");
}

#[test]
#[ignore = "needs root"]
fn a_rootless_store_is_as_private_after_import_run_and_logs() {
    let rl = Rootless::new("berth-rootless-perms-");
    let ok = |args: &str| {
        let o = rl.run(args);
        assert!(o.status.success(), "{args}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok("import bb.tar round");
    // (No build: a rootless build cannot mount its steps' overlays yet.)
    ok("run -d --name keeper -e API_TOKEN=hunter2 round sh -c 'echo started; sleep 300'");
    for _ in 0..50 {
        if ok("logs keeper").contains("started") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let store = rl.store();
    let open = open_to_others(&store);
    let store_mode = mode(&store);
    ok("rm -f keeper");
    assert_eq!(store_mode, 0o700);
    assert!(open.is_empty(), "open to other users:\n{}", open.join("\n"));
}

// ---------------------------------------------------------------- liveness

#[test]
#[ignore = "needs root"]
fn a_build_killed_in_the_middle_of_a_step_leaves_nothing_once_the_next_command_opens_the_store() {
    use std::os::unix::process::CommandExt;
    let root = Root::new();
    root.busybox("bb");
    // A sleep no other process on the machine is likely to run.
    let marker = format!("sleep {}", 100_000 + std::process::id() % 100_000);
    let ctx = context(&[("Dockerfile", &format!("FROM bb\nRUN {marker}\n"))]);
    let store = root.path().join("store");
    let mut child = root
        .cmd(&["build", "--no-cache", ctx.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let build = store.join("build");
    let mut mounted = false;
    for _ in 0..200 {
        if !mounts_under(&build).is_empty() && !processes_with(&marker).is_empty() {
            mounted = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // kill -9 the build and everything it started.
    let pgid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    child.wait().unwrap();
    for pid in processes_with(&marker) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
    let left_mounted = !mounts_under(&build).is_empty();

    // Any command opening the store sweeps what the dead build left (and
    // this test leaves no mount behind even when an assertion fails).
    root.ok(&["images"]);
    let still = mounts_under(&store);
    for m in &still {
        let _ = rustix::mount::unmount(m.as_str(), rustix::mount::UnmountFlags::DETACH);
    }
    assert!(mounted, "the step never started");
    assert!(left_mounted, "the killed build's mount is there until someone looks");
    assert_eq!(still, Vec::<String>::new());
    let left: Vec<_> = std::fs::read_dir(&build)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.len() >= 64)
        .collect();
    assert!(left.is_empty(), "step directories left: {left:?}");
    // Its lease is dead: it counted for nothing and goes at the first look.
    let check = root.run(&["system", "check"]);
    assert!(check.status.success(), "{}", stdout(&check));
    let out = stdout(&check);
    assert!(
        out.contains("1 lease(s): held by processes that are gone — repaired: released"),
        "{out}"
    );
    assert_eq!(root.ok(&["system", "check"]).trim(), "No problems found.");
    // And the image the build stood on was never at risk.
    root.ok(&["run", "--rm", "bb", "true"]);
}

/// Eight workers (two builders, two taggers, a puller, an importer, a
/// loader and a committer) go round for a minute while two prune loops run
/// beside them: not one command may fail, and afterwards the store checks
/// clean with no mount left and no tag pointing at nothing.
#[test]
#[ignore = "needs root"]
fn two_prune_loops_beside_eight_workers_for_a_minute_break_none_of_them() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[("Dockerfile", "FROM bb\nRUN echo step > /one\nRUN echo step > /two\n")]);
    let ctx = ctx.path().to_str().unwrap().to_string();

    // An image only the registry has, pulled again and again.
    let reg_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (mut registry, port) = serve_registry(
        reg_dir.path(),
        "log:\n  level: error\n",
        "",
        std::process::Stdio::null(),
    );
    let remote = format!("127.0.0.1:{port}/pulled:latest");
    let pctx = context(&[("Dockerfile", "FROM bb\nRUN echo pulled > /p\n")]);
    build_ok(&root, &["-q", "-t", &remote, pctx.path().to_str().unwrap()]);
    root.ok(&["push", "-q", &remote]);
    root.ok(&["rmi", &remote]);
    // An image only an archive has, loaded again and again.
    let lctx = context(&[("Dockerfile", "FROM bb\nRUN echo loaded > /l\n")]);
    build_ok(&root, &["-q", "-t", "forload", lctx.path().to_str().unwrap()]);
    let saved = root.path().join("forload.tar");
    let saved = saved.to_str().unwrap().to_string();
    root.ok(&["save", "-o", &saved, "forload"]);
    root.ok(&["rmi", "forload"]);
    let tar = busybox_tar();
    let tar = tar.to_str().unwrap().to_string();

    let stop = AtomicBool::new(false);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let rounds = Mutex::new(0usize);
    let attempt = |args: &[&str]| {
        let o = root.run(args);
        *rounds.lock().unwrap() += 1;
        if !o.status.success() {
            failures
                .lock()
                .unwrap()
                .push(format!("berth {args:?}: {}", stderr(&o).trim()));
        }
    };
    // Each worker: one round of its commands, numbered `n`.
    type Round<'a> = Box<dyn Fn(usize) + Send + Sync + 'a>;
    let mut workers: Vec<Round<'_>> = Vec::new();
    for w in 0..2 {
        let (attempt, ctx) = (&attempt, &ctx);
        workers.push(Box::new(move |n| {
            let tag = format!("built{w}:{n}");
            attempt(&["build", "-q", "--no-cache", "-t", &tag, ctx]);
            // Named: two runs that start together can draw the same
            // generated name (an engine race of its own, not prune's).
            attempt(&["run", "--rm", "--name", &format!("b{w}-{n}"), &tag, "cat", "/two"]);
            attempt(&["rmi", &tag]);
        }));
        workers.push(Box::new(move |n| {
            let tag = format!("tagged{w}:{n}");
            attempt(&["run", "--rm", "--name", &format!("t{w}-{n}"), "bb", "true"]);
            attempt(&["tag", "bb", &tag]);
            attempt(&["rmi", &tag]);
        }));
    }
    let (attempt, remote, tar, saved) = (&attempt, &remote, &tar, &saved);
    workers.push(Box::new(move |n| {
        attempt(&["pull", "-q", remote]);
        attempt(&["run", "--rm", "--name", &format!("p-{n}"), remote, "cat", "/p"]);
        attempt(&["rmi", remote]);
    }));
    workers.push(Box::new(move |n| {
        let tag = format!("imported:{n}");
        attempt(&["import", tar, &tag]);
        attempt(&["run", "--rm", "--name", &format!("i-{n}"), &tag, "true"]);
        attempt(&["rmi", &tag]);
    }));
    workers.push(Box::new(move |n| {
        attempt(&["load", "-q", "-i", saved]);
        attempt(&["run", "--rm", "--name", &format!("l-{n}"), "forload", "cat", "/l"]);
        attempt(&["rmi", "forload"]);
    }));
    workers.push(Box::new(move |n| {
        let (name, tag) = (format!("c-{n}"), format!("committed:{n}"));
        // Running: prune takes stopped containers, as Docker's does.
        attempt(&["run", "-d", "--name", &name, "bb", "sleep", "60"]);
        attempt(&["exec", &name, "sh", "-c", "echo committed > /c"]);
        attempt(&["commit", &name, &tag]);
        attempt(&["rm", "-f", &name]);
        attempt(&["run", "--rm", "--name", &format!("cr-{n}"), &tag, "cat", "/c"]);
        attempt(&["rmi", &tag]);
    }));
    assert_eq!(workers.len(), 8);
    std::thread::scope(|s| {
        for round in &workers {
            let stop = &stop;
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    round(n);
                    n += 1;
                }
            });
        }
        for prune in [["system", "prune", "-f"], ["image", "prune", "-f"]] {
            let stop = &stop;
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    attempt(&prune);
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_secs(60));
        stop.store(true, Ordering::Relaxed);
    });
    drop(workers);
    let _ = registry.kill();
    let _ = registry.wait();
    let failures = failures.into_inner().unwrap();
    let rounds = rounds.into_inner().unwrap();
    eprintln!("{rounds} commands beside the prune loops");
    assert!(
        failures.is_empty(),
        "{} of {rounds} commands failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let store = root.path().join("store");
    assert_eq!(mounts_under(&store), Vec::<String>::new(), "mounts left");
    // No dangling tag, nothing half-done: the store checks clean.
    assert_eq!(root.ok(&["system", "check"]).trim(), "No problems found.");
    root.ok(&["system", "prune", "-f"]);
    let images = root.ok(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(images.trim(), "bb", "only bb is left tagged");
}

// ---------------------------------------------------------------- bombs

/// Runs a shell line (test fixtures only).
fn sh(line: &str) {
    let st = std::process::Command::new("sh").args(["-c", line]).status().unwrap();
    assert!(st.success(), "{line}");
}

/// Bytes allocated on disk under `dir`.
fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            total += m.blocks() * 512;
            if m.is_dir() {
                todo.push(e.path());
            }
        }
    }
    total
}

#[test]
fn a_ten_kilobyte_sparse_tar_of_a_20_gib_disk_image_imports_in_kilobytes() {
    let root = Root::new();
    let t = tempfile::tempdir().unwrap();
    let d = t.path().display();
    sh(&format!(
        "mkdir {d}/src && truncate -s 20G {d}/src/disk.img && printf tail >> {d}/src/disk.img \
         && tar --sparse --format=gnu -C {d}/src -cf {d}/sparse.tar disk.img && rm {d}/src/disk.img"
    ));
    let tar = t.path().join("sparse.tar");
    assert!(std::fs::metadata(&tar).unwrap().len() <= 20 * 1024);
    root.ok(&["import", tar.to_str().unwrap(), "disk"]);
    let store = root.path().join("store");
    assert!(disk_usage(&store) < 16 << 20, "{} bytes on disk", disk_usage(&store));
    let layer = std::fs::read_dir(store.join("layers"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let img = layer.join("diff/disk.img");
    assert_eq!(std::fs::metadata(&img).unwrap().len(), (20 << 30) + 4);
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(&img).unwrap();
    f.seek(std::io::SeekFrom::End(-4)).unwrap();
    let mut tail = [0u8; 4];
    f.read_exact(&mut tail).unwrap();
    assert_eq!(&tail, b"tail");
}

#[test]
fn a_gzip_of_zeros_stops_at_the_limit_for_import_and_load_and_leaves_the_store_as_it_was() {
    let root = Root::new();
    root.ok(&["images"]);
    let t = tempfile::tempdir().unwrap();
    let d = t.path().display();
    // 256 MiB of zeros as a layer, and as a member of a gzipped image archive.
    sh(&format!(
        "mkdir {d}/l {d}/a && truncate -s 256M {d}/l/zeros && tar -C {d}/l -cf {d}/a/layer.tar zeros \
         && echo '[]' > {d}/a/manifest.json && tar -C {d}/l -c zeros | gzip -1 > {d}/layer.tar.gz \
         && tar -C {d}/a -c manifest.json layer.tar | gzip -1 > {d}/archive.tar.gz"
    ));
    let store = root.path().join("store");
    let before = files_under(&store);
    for args in [
        vec!["import", "layer.tar.gz", "bomb"],
        vec!["load", "-i", "archive.tar.gz"],
    ] {
        let o = root
            .cmd(&args)
            .current_dir(t.path())
            .env("BERTH_MAX_LAYER_SIZE", "64M")
            .output()
            .unwrap();
        assert!(!o.status.success(), "{args:?} got through");
        let err = stderr(&o);
        assert!(
            err.contains("more than 64 MiB") && err.contains("BERTH_MAX_LAYER_SIZE=128M"),
            "{args:?}: {err}"
        );
        assert_eq!(files_under(&store), before, "{args:?} changed the store");
    }
    assert_eq!(root.ok(&["images", "-q"]), "");
    // Raised, the same layer goes in.
    let o = root
        .cmd(&["import", "layer.tar.gz", "zeros"])
        .current_dir(t.path())
        .env("BERTH_MAX_LAYER_SIZE", "1G")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A tar for `cp -` holding `etc` as a regular file, and `bin/sh/` as a
/// directory: each would replace a node of the other kind.
fn kind_changing_tars(dir: &Path) -> (PathBuf, PathBuf) {
    let files = dir.join("files");
    std::fs::create_dir_all(files.join("bin/sh")).unwrap();
    std::fs::write(files.join("etc"), "not a directory\n").unwrap();
    let tar = |name: &str, what: &str| {
        let out = dir.join(name);
        let st = std::process::Command::new("tar")
            .args(["-C", files.to_str().unwrap(), "-cf", out.to_str().unwrap(), what])
            .status()
            .unwrap();
        assert!(st.success());
        out
    };
    (tar("etc.tar", "etc"), tar("bin.tar", "bin"))
}

#[test]
#[ignore = "needs root"]
fn cp_of_a_file_named_etc_cannot_replace_the_containers_etc_directory() {
    let root = Root::new();
    root.busybox("bb");
    root.ok(&["run", "-d", "--name", "victim", "bb", "sleep", "300"]);
    let (etc_tar, bin_tar) = kind_changing_tars(root.path());
    for (tar, words) in [
        (&etc_tar, "cannot overwrite directory \"/etc\" with non-directory"),
        (&bin_tar, "cannot overwrite non-directory \"/bin/sh\" with directory"),
    ] {
        let o = root
            .cmd(&["cp", "-", "victim:/"])
            .stdin(std::fs::File::open(tar).unwrap())
            .output()
            .unwrap();
        assert!(!o.status.success(), "cp of {} succeeded", tar.display());
        let err = stderr(&o);
        assert!(err.contains(words), "{err}");
        assert!(!err.contains(root.path().to_str().unwrap()), "host path in: {err}");
    }
    // Both are untouched: /etc is still the image's directory, sh still runs.
    let etc = root.ok(&[
        "exec",
        "victim",
        "sh",
        "-c",
        "test -d /etc && cat /etc/passwd | head -1",
    ]);
    assert!(etc.starts_with("root:"), "{etc}");
    root.ok(&["rm", "-f", "victim"]);
}
