//! End-to-end: the image commands as a Docker user types them, against a
//! fresh store root each, with skopeo and umoci proving the formats.

mod common;

use std::path::Path;
use std::process::Command;

use common::{busybox_tar, have, stderr, stdout, Root};

/// Every file under `dir` with its content hash, for "the store is exactly as before".
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            // SQLite's WAL/shm and lock files change on every open.
            if rel.ends_with("-wal") || rel.ends_with("-shm") || rel.ends_with(".lock") || rel.starts_with("tmp") {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
                out.push((rel, Vec::new()));
            } else if m.is_file() && rel != "berth.db" {
                out.push((rel, std::fs::read(&p).unwrap()));
            } else {
                out.push((rel, Vec::new()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn import_lists_inspects_and_shows_history() {
    let r = Root::new();
    let id = r.busybox("bb:latest");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let images = r.ok(&["images"]);
    let mut lines = images.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    let row: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["bb", "latest", &id[7..19]]);
    assert_eq!(r.ok(&["images", "-q"]).trim(), &id[7..19]);
    assert_eq!(r.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    assert_eq!(
        r.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).trim(),
        "bb:latest"
    );
    let j: serde_json::Value = serde_json::from_str(r.ok(&["images", "--format", "{{json .}}"]).trim()).unwrap();
    assert_eq!(j["Repository"], "bb");

    // inspect: Docker's shape, by name, full ID and short prefix.
    for word in ["bb", "bb:latest", "docker.io/library/bb:latest", &id, &id[7..15]] {
        let v: serde_json::Value = serde_json::from_str(&r.ok(&["image", "inspect", word])).unwrap();
        assert_eq!(v[0]["Id"], id.as_str(), "{word}");
        assert_eq!(v[0]["RepoTags"][0], "bb:latest");
        assert_eq!(v[0]["Os"], "linux");
        assert_eq!(v[0]["RootFS"]["Type"], "layers");
        assert_eq!(v[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);
        assert!(v[0]["Size"].as_u64().unwrap() > 1_000_000);
    }
    assert_eq!(r.ok(&["inspect", "--format", "{{.Id}}", "bb"]).trim(), id);
    let hist = r.ok(&["history", "bb"]);
    assert!(hist.starts_with("IMAGE"), "{hist}");
    // A file is imported as the docker CLI sends it: Docker records `-`.
    assert!(hist.contains("Imported from -"), "{hist}");
    assert_eq!(r.ok(&["history", "-q", "--no-trunc", "bb"]).trim(), id);
}

#[test]
fn import_applies_changes_and_message() {
    let r = Root::new();
    let tar = busybox_tar();
    let id = r.ok(&[
        "import",
        "--change",
        r#"ENTRYPOINT ["ls"]"#,
        "--change",
        r#"CMD ["--help"]"#,
        "-c",
        "ENV A=1 B=two",
        "-c",
        "WORKDIR /tmp",
        "-c",
        "EXPOSE 8080",
        "-c",
        "LABEL team=core",
        "-c",
        "USER nobody",
        "-c",
        "VOLUME /data",
        "-m",
        "from the test",
        tar.to_str().unwrap(),
        "ep",
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.ok(&["inspect", id.trim()])).unwrap();
    let c = &v[0]["Config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["ls"]));
    assert_eq!(c["Cmd"], serde_json::json!(["--help"]));
    assert_eq!(c["Env"], serde_json::json!(["A=1", "B=two"]));
    assert_eq!(c["WorkingDir"], "/tmp");
    assert_eq!(c["User"], "nobody");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    assert!(c["Volumes"]["/data"].is_object());
    assert_eq!(c["Labels"]["team"], "core");
    assert_eq!(v[0]["Comment"], "from the test");
    assert_eq!(
        r.ok(&["inspect", "-f", "{{.Config.Entrypoint}} {{.Config.Cmd}}", "ep"])
            .trim(),
        "[ls] [--help]"
    );
    assert_eq!(
        r.ok(&["images", "--filter", "label=team=core", "-q"]).trim(),
        &id.trim()[7..19]
    );
    assert_eq!(r.ok(&["images", "--filter", "label=team=other", "-q"]).trim(), "");

    let bad = r.run(&["import", "-c", "RUN echo no", tar.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("RUN is not a valid change command"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn import_reads_stdin_and_compressed_tars() {
    let r = Root::new();
    let tar = busybox_tar();
    let gz = r.path().join("bb.tar.gz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", tar.display(), gz.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let plain = r.ok(&["import", tar.to_str().unwrap()]);
    let f = std::fs::File::open(&gz).unwrap();
    let o = r.cmd(&["import", "-", "fromgz:1"]).stdin(f).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let gz_id = stdout(&o);
    // Same content, so the same diff ID (RootFS.Layers) though the blobs differ.
    let l1 = r.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", plain.trim()]);
    let l2 = r.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", gz_id.trim()]);
    assert_eq!(l1, l2);
    let rows = r.ok(&["images", "fromgz"]);
    assert!(rows.contains("fromgz") && rows.contains(" 1 "), "{rows}");
}

#[test]
fn references_normalise_and_ambiguity_is_an_error() {
    let r = Root::new();
    let id = r.busybox("bb");
    r.ok(&["tag", "bb", "localhost:5000/team/bb:v1"]);
    r.ok(&["tag", &id[7..19], "docker.io/library/other"]);
    let names = r.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for n in ["bb:latest", "localhost:5000/team/bb:v1", "other:latest"] {
        assert!(names.lines().any(|l| l == n), "{n} missing in {names}");
    }
    assert_eq!(
        r.ok(&[
            "images",
            "--filter",
            "reference=localhost:5000/*/*",
            "--format",
            "{{.Tag}}"
        ])
        .trim(),
        "v1"
    );
    let v: serde_json::Value =
        serde_json::from_str(&r.ok(&["inspect", "index.docker.io/library/other:latest"])).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());

    let missing = r.run(&["inspect", "nosuch"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("No such object: nosuch"),
        "{}",
        stderr(&missing)
    );
    let bad = r.run(&["tag", "bb", "Bad:Name"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("invalid reference format"), "{}", stderr(&bad));

    // Two images whose IDs share a first hex digit make that digit ambiguous.
    let tar = busybox_tar();
    let mut ids = vec![id.clone()];
    for i in 0..20 {
        let o = r.ok(&["import", "-m", &format!("v{i}"), tar.to_str().unwrap()]);
        ids.push(o.trim().to_string());
    }
    let first = ids
        .iter()
        .map(|i| &i[7..8])
        .find(|c| ids.iter().filter(|i| &i[7..8] == *c).count() > 1);
    let c = first.expect("21 IDs over 16 hex digits must share a first digit");
    let amb = r.run(&["image", "inspect", c]);
    assert_ne!(amb.status.code(), Some(0));
    assert!(stderr(&amb).contains("ambiguous"), "{}", stderr(&amb));
}

#[test]
fn rmi_untags_then_deletes_and_keeps_shared_layers() {
    let r = Root::new();
    let id = r.busybox("bb");
    r.ok(&["tag", "bb", "bb:two"]);
    // Two names: removing one only untags.
    assert_eq!(r.ok(&["rmi", "bb:two"]).trim(), "Untagged: bb:two");
    // By ID with several names needs -f.
    r.ok(&["tag", "bb", "bb:three"]);
    let o = r.run(&["rmi", &id[7..19]]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("must be forced"), "{}", stderr(&o));

    // A second image sharing the layer: deleting one keeps the layer.
    let tar = busybox_tar();
    let other = r.ok(&["import", "-m", "second", tar.to_str().unwrap(), "second"]);
    let layers_dir = r.path().join("store/layers");
    let count = || std::fs::read_dir(&layers_dir).unwrap().count();
    assert_eq!(count(), 1, "same content is unpacked once");
    let out = r.ok(&["rmi", "-f", &id[7..19]]);
    assert!(
        out.contains("Untagged: bb:latest") && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    assert_eq!(count(), 1, "the layer is still used by 'second'");
    let out = r.ok(&["rmi", "second"]);
    assert!(out.contains(&format!("Deleted: {}", other.trim())), "{out}");
    assert_eq!(count(), 0);
    let blobs = std::fs::read_dir(r.path().join("store/blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 0, "no blob left behind");
    let o = r.run(&["rmi", "second"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("No such image"), "{}", stderr(&o));
}

#[test]
fn prune_and_disk_usage() {
    let r = Root::new();
    r.busybox("bb");
    let tar = busybox_tar();
    let dangling = r.ok(&["import", "-m", "dangling", tar.to_str().unwrap()]);
    assert_eq!(
        r.ok(&["images", "-q", "--filter", "dangling=true", "--no-trunc"])
            .trim(),
        dangling.trim()
    );
    let df = r.ok(&["system", "df"]);
    assert!(
        df.starts_with("TYPE") && df.contains("Images") && df.contains("2 "),
        "{df}"
    );
    let out = r.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {}", dangling.trim())), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(r.ok(&["images", "-q"]).lines().count(), 1);
    // Without -f and with a "no" answer nothing is removed.
    let o = r
        .cmd(&["image", "prune", "-a"])
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(stdout(&o).contains("Are you sure"), "{}", stdout(&o));
    assert_eq!(r.ok(&["images", "-q"]).lines().count(), 1);
    r.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(r.ok(&["images", "-q"]).trim(), "");
}

#[test]
#[ignore = "needs root"]
fn save_is_read_by_skopeo_and_umoci() {
    common::need_root();
    if !have("skopeo") || !have("umoci") {
        panic!("skopeo and umoci are required (apt-get install skopeo umoci)");
    }
    let r = Root::new();
    let id = r.busybox("bb:latest");
    let dir = r.path();
    let docker = dir.join("bb-docker.tar");
    let oci = dir.join("bb-oci.tar");
    r.ok(&["save", "-o", docker.to_str().unwrap(), "bb"]);
    r.ok(&["save", "--format", "oci-archive", "-o", oci.to_str().unwrap(), "bb"]);

    let o = Command::new("skopeo")
        .args(["inspect", "--config", &format!("docker-archive:{}", docker.display())])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // skopeo reprints the config; compare content rather than bytes.
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let ours: serde_json::Value =
        serde_json::from_str(&r.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", "bb"])).unwrap();
    assert_eq!(v["rootfs"]["diff_ids"], ours);

    let o = Command::new("skopeo")
        .args(["inspect", &format!("oci-archive:{}", oci.display())])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);

    // umoci unpacks the OCI layout into a runnable bundle.
    let layout = dir.join("layout");
    std::fs::create_dir(&layout).unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-xf")
        .arg(&oci)
        .status()
        .unwrap();
    assert!(st.success());
    let bundle = dir.join("bundle");
    let o = Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:latest", layout.display())])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(bundle.join("rootfs/bin/busybox").is_file());

    // oci-dir writes the same layout as a directory.
    let ocidir = dir.join("ocidir");
    r.ok(&["save", "--format", "oci-dir", "-o", ocidir.to_str().unwrap(), "bb"]);
    assert!(ocidir.join("index.json").is_file() && ocidir.join("oci-layout").is_file());

    // And berth loads its own archives back with the same ID.
    let r2 = Root::new();
    let out = r2.ok(&["load", "-i", docker.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: bb:latest");
    assert_eq!(r2.ok(&["inspect", "-f", "{{.Id}}", "bb"]).trim(), id);
    let r3 = Root::new();
    r3.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(r3.ok(&["images", "-q", "--no-trunc"]).trim(), id);
}

#[test]
fn images_written_by_skopeo_load_with_the_same_id() {
    assert!(have("skopeo"), "skopeo is required");
    let r = Root::new();
    let id = r.busybox("bb:latest");
    let src = r.path().join("src.tar");
    r.ok(&["save", "-o", src.to_str().unwrap(), "bb"]);
    for (dest, name) in [("oci-archive", "bb:v2"), ("docker-archive", "bb:v3")] {
        let out = r.path().join(format!("{dest}.tar"));
        let o = Command::new("skopeo")
            .args(["copy", "-q", &format!("docker-archive:{}", src.display())])
            .arg(format!("{dest}:{}:{name}", out.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let fresh = Root::new();
        let f = std::fs::File::open(&out).unwrap();
        let o = fresh.cmd(&["load"]).stdin(f).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim(), format!("Loaded image: {name}"));
        assert_eq!(fresh.ok(&["inspect", "-f", "{{.Id}}", name]).trim(), id, "{dest}");
    }
}

#[test]
fn a_flipped_byte_fails_load_and_leaves_the_store_as_it_was() {
    let r = Root::new();
    r.busybox("bb");
    let archive = r.path().join("bb.tar");
    r.ok(&["save", "-o", archive.to_str().unwrap(), "bb"]);
    let mut bytes = std::fs::read(&archive).unwrap();
    // Find the layer member (the large one) and flip a byte in its data.
    let mut off = 0usize;
    let mut target = None;
    while off + 512 <= bytes.len() {
        let h = &bytes[off..off + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let size = usize::from_str_radix(
            std::str::from_utf8(&h[124..135])
                .unwrap()
                .trim_matches(|c: char| c == '\0' || c == ' '),
            8,
        )
        .unwrap();
        let name = String::from_utf8_lossy(&h[..100]).trim_end_matches('\0').to_string();
        if size > 100_000 {
            target = Some((off + 512 + size / 2, name));
        }
        off += 512 + size.div_ceil(512) * 512;
    }
    let (pos, layer) = target.expect("a layer member");
    bytes[pos] ^= 0xff;
    let bad = r.path().join("bad.tar");
    std::fs::write(&bad, &bytes).unwrap();

    let fresh = Root::new();
    fresh.ok(&["images"]);
    let store = fresh.path().join("store");
    let before = snapshot(&store);
    let images_before = fresh.ok(&["images", "-a", "--no-trunc"]);
    let o = fresh.run(&["load", "-i", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("digest mismatch") && err.contains(&layer), "{err}");
    assert_eq!(snapshot(&store), before, "the store changed");
    assert_eq!(fresh.ok(&["images", "-a", "--no-trunc"]), images_before);
}

#[test]
#[ignore = "needs root"]
fn hostile_layers_write_nothing_outside_the_store() {
    common::need_root();
    let r = Root::new();
    let outside = r.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let unique = format!("berth-hostile-{}", std::process::id());
    let host_tmp_target = Path::new("/tmp").join(&unique);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dotdot", tar_with(|b| add_file(b, "../../x", b"evil")), "../../x"),
        (
            "symlink-parent",
            tar_with(|b| {
                add_symlink(b, "lnk", "/tmp");
                add_file(b, &format!("lnk/{unique}"), b"evil");
            }),
            "",
        ),
        (
            "hardlink-out",
            tar_with(|b| add_hardlink(b, "h", "../../etc/hostname")),
            "h",
        ),
    ];
    for (name, tar, refused) in cases {
        let path = r.path().join(format!("{name}.tar"));
        std::fs::write(&path, &tar).unwrap();
        let o = r.run(&["import", path.to_str().unwrap(), &format!("hostile:{name}")]);
        if refused.is_empty() {
            // Confined: the symlinked parent resolves inside the layer, where
            // there is no tmp/ — so the entry is refused, naming it.
            let e = stderr(&o);
            assert!(
                o.status.success() || e.contains(&format!("lnk/{unique}")),
                "{name}: {e}"
            );
        } else {
            assert_eq!(o.status.code(), Some(1), "{name}");
            assert!(stderr(&o).contains(&format!("\"{refused}\"")), "{name}: {}", stderr(&o));
        }
        assert!(!host_tmp_target.exists(), "{name} wrote to the host's /tmp");
        assert!(
            !r.path().join("x").exists() && !r.path().parent().unwrap().join("x").exists(),
            "{name}"
        );
    }
    // With a tmp/ in the layer, the same entry lands inside it.
    let tar = tar_with(|b| {
        b.extend_from_slice(&header("tmp/", b'5', 0, ""));
        add_symlink(b, "lnk", "/tmp");
        add_file(b, &format!("lnk/{unique}"), b"confined");
    });
    let path = r.path().join("confined.tar");
    std::fs::write(&path, &tar).unwrap();
    r.ok(&["import", path.to_str().unwrap(), "hostile:confined"]);
    assert!(!host_tmp_target.exists(), "wrote to the host's /tmp");
    let layers: Vec<_> = std::fs::read_dir(r.path().join("store/layers"))
        .unwrap()
        .flatten()
        .collect();
    assert!(layers.iter().any(|l| l.path().join("diff/tmp").join(&unique).is_file()));
}

fn tar_with(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v.extend_from_slice(&[0u8; 1024]);
    v
}

fn header(name: &str, kind: u8, size: usize, link: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

fn add_file(b: &mut Vec<u8>, name: &str, data: &[u8]) {
    b.extend_from_slice(&header(name, b'0', data.len(), ""));
    b.extend_from_slice(data);
    b.resize(b.len().div_ceil(512) * 512, 0);
}

fn add_symlink(b: &mut Vec<u8>, name: &str, target: &str) {
    b.extend_from_slice(&header(name, b'2', 0, target));
}

fn add_hardlink(b: &mut Vec<u8>, name: &str, target: &str) {
    b.extend_from_slice(&header(name, b'1', 0, target));
}

#[test]
fn concurrent_imports_tags_and_removals_keep_the_store_consistent() {
    let r = Root::new();
    r.busybox("base");
    let tar = busybox_tar();
    let root = r.path().join("store");
    let exe = env!("CARGO_BIN_EXE_berth");
    let mut children = Vec::new();
    for i in 0..8 {
        let script = format!(
            "set -e; B='{exe} --root {root}'; \
             for j in 1 2 3; do \
               $B import -m w{i}-$j {tar} img{i}:$j >/dev/null; \
               $B import {tar} same:latest >/dev/null; \
               $B tag base t{i}-$j; \
               $B rmi t{i}-$j >/dev/null; \
             done; \
             $B rmi img{i}:1 >/dev/null",
            root = root.display(),
            tar = tar.display()
        );
        children.push(Command::new("sh").arg("-c").arg(script).spawn().unwrap());
    }
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a concurrent worker failed");
    }
    // Every listed image inspects, every layer it needs is on disk, nothing is half-written.
    let ids = r.ok(&["images", "-a", "-q", "--no-trunc"]);
    let ids: std::collections::BTreeSet<_> = ids.lines().collect();
    assert!(ids.len() >= 2, "{ids:?}");
    for id in &ids {
        let v: serde_json::Value = serde_json::from_str(&r.ok(&["image", "inspect", id])).unwrap();
        let lower = v[0]["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap().to_string();
        for d in lower.split(':') {
            assert!(
                Path::new(d).join("bin/busybox").exists() || Path::new(d).is_dir(),
                "{d}"
            );
        }
    }
    let names = r.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for i in 0..8 {
        assert!(
            names.contains(&format!("img{i}:2")) && names.contains(&format!("img{i}:3")),
            "{names}"
        );
        assert!(!names.contains(&format!("img{i}:1")), "{names}");
        assert!(!names.contains(&format!("t{i}-")), "{names}");
    }
    let tmp: Vec<_> = std::fs::read_dir(root.join("tmp")).unwrap().flatten().collect();
    assert!(tmp.len() <= 2, "staging leftovers: {tmp:?}");
}

#[test]
fn import_from_a_url() {
    let r = Root::new();
    let www = r.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::copy(busybox_tar(), www.join("rootfs.tar")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("busybox")
        .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
        .arg(&www)
        .spawn()
        .unwrap();
    // Wait until it answers.
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}/rootfs.tar");
    let o = r.run(&["import", &url, "fromurl:1"]);
    let missing = r.run(&["import", &format!("http://127.0.0.1:{port}/nosuch.tar")]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&r.ok(&["inspect", "fromurl:1"])).unwrap();
    assert_eq!(v[0]["Comment"], format!("Imported from {url}"));
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("HTTP 404"), "{}", stderr(&missing));
    let staged: Vec<_> = std::fs::read_dir(r.path().join("store/tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(staged
        .iter()
        .all(|e| !e.file_name().to_string_lossy().contains("download")));
}

#[test]
#[ignore = "needs root"]
fn another_users_store_is_a_clear_permission_error() {
    let rl = common::Rootless::new("berth-perm-");
    let r = Root::new();
    r.busybox("bb");
    let o = rl.run(&format!("images --root {}", r.path().join("store").display()));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("permission denied on the store"), "{}", stderr(&o));
}

/// Sizes are the bytes of the layers' files, as Docker counts them: a
/// symlink its target's length, a hard link once, directories and
/// whiteouts nothing (not the layer tar's headers and padding). The build
/// below is the one dockerd 20.10 showed as 23B and 0B.
#[test]
#[ignore = "needs root"]
fn sizes_count_the_layers_files_as_docker_does() {
    let r = Root::new();
    let src = tempfile::tempdir().unwrap();
    let d = src.path();
    std::fs::write(d.join("a"), "12345").unwrap();
    std::fs::hard_link(d.join("a"), d.join("b")).unwrap();
    std::os::unix::fs::symlink("a", d.join("l")).unwrap();
    std::fs::create_dir(d.join("d")).unwrap();
    std::fs::write(d.join("d/e"), "1234567").unwrap();
    let tar = r.path().join("sizes.tar");
    let st = Command::new("tar")
        .args(["-C", d.to_str().unwrap(), "-cf", tar.to_str().unwrap(), "."])
        .status()
        .unwrap();
    assert!(st.success());
    r.ok(&["import", tar.to_str().unwrap(), "files"]);
    let size = |img: &str| -> u64 {
        r.ok(&["image", "inspect", "-f", "{{.Size}}", img])
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(size("files"), 5 + 1 + 7);
    assert_eq!(r.ok(&["images", "--format", "{{.Size}}", "files"]).trim(), "13B");
    assert_eq!(r.ok(&["history", "--format", "{{.Size}}", "files"]).trim(), "13B");

    r.busybox("bb");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nRUN echo hi > /f && ln -s /some/target/x /l && ln /f /h && mkdir -p /d/e && : > /empty && echo 12345 > /d/e/g\nRUN rm /f\n",
    )
    .unwrap();
    r.ok(&["build", "-q", "-t", "sizes", ctx.path().to_str().unwrap()]);
    let hist = r.ok(&["history", "--format", "{{.Size}}", "sizes"]);
    let rows: Vec<&str> = hist.lines().collect();
    assert_eq!(rows[..2], ["0B", "23B"], "{hist}");
    assert_eq!(size("sizes"), size("bb") + 23);
    let ps_size = {
        r.ok(&["run", "--name", "wr", "sizes", "sh", "-c", "echo abc > /x"]);
        r.ok(&["ps", "-a", "-s", "--format", "{{.Size}}"])
    };
    assert!(ps_size.starts_with("4B (virtual "), "{ps_size}");
}

/// `rmi` tells the layers that went with each image right after it, top
/// layer first, as dockerd 20.10 does (`Deleted: <chain ID>`); a layer an
/// image that stays still uses (the base's) is not told and stays.
#[test]
#[ignore = "needs root"]
fn rmi_tells_the_layers_that_went_after_each_image() {
    let r = Root::new();
    r.busybox("bb");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM bb\nRUN echo hi > /f\nRUN rm /f\n").unwrap();
    let id = r.ok(&["build", "-q", "-t", "gone", ctx.path().to_str().unwrap()]);
    let step = r
        .ok(&["history", "-q", "--no-trunc", "gone"])
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let diffs: Vec<berth_store::Digest> =
        serde_json::from_str::<Vec<String>>(&r.ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", "gone"]))
            .unwrap()
            .iter()
            .map(|d| berth_store::Digest::parse(d).unwrap())
            .collect();
    let chains = berth_store::chain_ids(&diffs);
    assert_eq!(chains.len(), 3);
    let out = r.ok(&["rmi", "gone"]);
    let want = [
        "Untagged: gone:latest".to_string(),
        format!("Deleted: {}", id.trim()),
        format!("Deleted: {}", chains[2]),
        format!("Deleted: {step}"),
        format!("Deleted: {}", chains[1]),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");
    assert!(
        r.ok(&["run", "--rm", "bb", "true"]).is_empty(),
        "the base's layer stays"
    );
}
