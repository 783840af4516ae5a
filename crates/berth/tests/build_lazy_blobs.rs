//! As root, a build step's layer is kept as its unpacked directory only:
//! its tar blob is not written by the build. The store makes the blob from
//! the directory the first time something reads it (`save`, `push`, the
//! cache export), checks it against the diff ID, and refuses a directory
//! that no longer matches.

#[path = "build_support.rs"]
mod support;

use std::path::PathBuf;

use support::*;

const DOCKERFILE: &str = "FROM bb\nCOPY . /app\nRUN echo ran > /ran\n";

fn built(root: &Root) -> (tempfile::TempDir, Vec<String>) {
    root.busybox("bb");
    let ctx = context(&[
        ("Dockerfile", DOCKERFILE),
        ("a.txt", "a\n"),
        ("sub/b.txt", "b\n"),
        ("sub/deeper/c.txt", "c\n"),
    ]);
    build_ok(root, &["-q", "-t", "app", ctx.path().to_str().unwrap()]);
    let layers = diff_ids(root, "app");
    assert_eq!(layers.len(), 3, "{layers:?}");
    (ctx, layers)
}

/// `app` built in a fresh root, as root (layers are adopted as
/// directories only as root).
fn built_as_root() -> (Root, tempfile::TempDir, Vec<String>) {
    need_root();
    let r = Root::new();
    let (ctx, layers) = built(&r);
    (r, ctx, layers)
}

fn blob_path(root: &Root, digest: &str) -> PathBuf {
    root.path()
        .join("store/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn sha256_file(p: &std::path::Path) -> String {
    let bytes = std::fs::read(p).unwrap();
    format!("sha256:{:x}", <sha2::Sha256 as sha2::Digest>::digest(&bytes))
}

#[test]
#[ignore = "needs root"]
fn a_built_layer_blob_is_made_by_save_and_loads_as_the_same_image() {
    let (r, _ctx, layers) = built_as_root();
    let id = image_id(&r, "app");
    for d in &layers[1..] {
        assert!(!blob_path(&r, d).exists(), "the build wrote the blob of layer {d}");
    }
    // Sizes come from the layer records, not from blob files.
    let v = inspect(&r, "app");
    let base = inspect(&r, "bb");
    assert!(
        v["Size"].as_u64().unwrap() > base["Size"].as_u64().unwrap(),
        "the built layers count in the size: {v}"
    );
    let hist = r.ok(&["history", "--no-trunc", "app"]);
    assert!(hist.contains("COPY"), "{hist}");
    r.ok(&["system", "df"]);
    r.ok(&["image", "prune", "-f"]);

    let tar = r.path().join("app.tar");
    r.ok(&["save", "-o", tar.to_str().unwrap(), "app"]);
    for d in &layers {
        let p = blob_path(&r, d);
        assert!(p.exists(), "save made the blob of layer {d}");
        assert_eq!(&sha256_file(&p), d, "the made blob is the layer's tar");
    }
    // Saved again: the blob is there now, nothing changes.
    let again = r.path().join("again.tar");
    r.ok(&["save", "-o", again.to_str().unwrap(), "app"]);
    assert_eq!(sha256_file(&tar), sha256_file(&again));

    let fresh = Root::new();
    let out = fresh.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("Loaded image: app:latest"), "{out}");
    assert_eq!(image_id(&fresh, "app"), id);
    let ran = fresh.ok(&["run", "--rm", "app", "cat", "/ran", "/app/sub/deeper/c.txt"]);
    assert_eq!(ran, "ran\nc\n");
}

#[test]
#[ignore = "needs root"]
fn an_oci_save_and_a_cache_export_make_the_blobs_too() {
    let (r, ctx, _layers) = built_as_root();
    let id = image_id(&r, "app");
    let oci = r.path().join("app-oci.tar");
    r.ok(&["save", "--format", "oci-archive", "-o", oci.to_str().unwrap(), "app"]);
    let fresh = Root::new();
    fresh.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(image_id(&fresh, "app"), id);

    // --cache-to, where the build made the blobs lazy.
    let c = Root::new();
    c.busybox("bb");
    let base = c.path().join("bb.tar");
    c.ok(&["save", "-o", base.to_str().unwrap(), "bb"]);
    let dest = c.path().join("cache");
    let spec = format!("type=local,dest={}", dest.display());
    build_ok(
        &c,
        &["-q", "--cache-to", &spec, "-t", "app", ctx.path().to_str().unwrap()],
    );
    let id = image_id(&c, "app");
    for d in &diff_ids(&c, "app") {
        let p = dest.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
        assert_eq!(&sha256_file(&p), d, "the cache holds layer {d}");
    }
    // A fresh store builds from that cache without running a step.
    let f = Root::new();
    f.ok(&["load", "-i", base.to_str().unwrap()]);
    let spec = format!("type=local,src={}", dest.display());
    let out = build_ok(&f, &["--cache-from", &spec, "-t", "app", ctx.path().to_str().unwrap()]);
    assert!(!out.contains("Running in"), "{out}");
    assert_eq!(image_id(&f, "app"), id);
}

#[test]
#[ignore = "needs root"]
fn a_damaged_layer_dir_fails_save_and_stores_no_wrong_blob() {
    let (r, _ctx, layers) = built_as_root();
    let copy_layer = &layers[1];
    let lowers = inspect(&r, "app")["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = lowers
        .split(':')
        .map(PathBuf::from)
        .find(|d| d.join("app/a.txt").exists())
        .expect("the COPY layer's directory");
    let f = dir.join("app/a.txt");
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    {
        use std::io::Write;
        let mut h = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
        h.write_all(b"tampered").unwrap();
        h.set_modified(mtime).unwrap();
    }
    let tar = r.path().join("app.tar");
    let o = r.run(&["save", "-o", tar.to_str().unwrap(), "app"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(copy_layer.as_str()) && err.contains("--no-cache"),
        "the error names the layer and says to rebuild: {err}"
    );
    assert!(!blob_path(&r, copy_layer).exists(), "no blob for the damaged layer");
    for e in std::fs::read_dir(r.path().join("store/blobs/sha256")).unwrap() {
        let p = e.unwrap().path();
        let name = format!("sha256:{}", p.file_name().unwrap().to_string_lossy());
        assert_eq!(sha256_file(&p), name, "blob {} is damaged", p.display());
    }
    // Nothing was left staged: no staging dir, no lock, no partial blob.
    let left: Vec<_> = std::fs::read_dir(r.path().join("store/tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left staged: {left:?}");
}
