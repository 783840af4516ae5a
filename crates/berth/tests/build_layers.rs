//! A built step's layer directory in the store is what unpacking its blob
//! gives. The builder takes a step's upper dir over as the unpacked layer
//! (it never unpacks the blob it just wrote), so that directory must hold
//! exactly what the tar says: checked by saving the image and loading it
//! into a fresh store, which unpacks every blob, and comparing the layer
//! directories entry by entry (type, mode, owner, size, content, link
//! target, device, mtime, xattrs, hardlinks).

#[path = "build_support.rs"]
mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use support::*;

const DOCKERFILE: &str = r#"FROM bb
COPY . /app
COPY --chmod=0640 --chown=65534:65534 one.txt /etc/one.txt
RUN mkdir -p /opq/sub && echo old > /opq/old && echo s > /opq/sub/s
RUN rm /etc/group /bin/cat && rm -rf /opq && mkdir /opq && echo new > /opq/new \
 && mkdir -p /var/lib/x && echo y > /var/lib/x/y && ln /var/lib/x/y /var/lib/x/hard \
 && ln -s y /var/lib/x/sym && chmod 4755 /var/lib/x/y && mkfifo /var/lib/x/fifo \
 && touch -d @1000000000 /var/lib/x/old
WORKDIR /made/by/workdir
"#;

fn context_files() -> tempfile::TempDir {
    let long = format!("deep/{}/{}.txt", "d".repeat(90), "n".repeat(60));
    let ctx = context(&[
        ("Dockerfile", DOCKERFILE),
        ("one.txt", "one\n"),
        ("src/a.txt", "a\n"),
        ("src/sub/b.bin", "b\n"),
        ("src/empty/.keep", ""),
        (&long, "long name\n"),
    ]);
    let p = ctx.path();
    std::os::unix::fs::symlink("../one.txt", p.join("src/link")).unwrap();
    std::fs::hard_link(p.join("src/a.txt"), p.join("src/a-again.txt")).unwrap();
    std::fs::create_dir_all(p.join("src/empty-dir")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p.join("src/sub/b.bin"), std::fs::Permissions::from_mode(0o751)).unwrap();
    ctx
}

#[derive(Debug, PartialEq)]
struct Facts {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: Option<u64>,
    /// Unset for whiteouts, which `apply_layer` creates without times.
    mtime: Option<(i64, i64)>,
    content: Option<Vec<u8>>,
    link: Option<PathBuf>,
    rdev: u64,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The first path (in walk order) of the same inode, for hardlinks.
    first_link: Option<String>,
}

fn xattrs(p: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut list = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(p, &mut list[..]).unwrap_or(0);
    for name in list[..n].split(|&b| b == 0).filter(|x| !x.is_empty()) {
        let mut v = vec![0u8; 4096];
        let len = rustix::fs::lgetxattr(p, name, &mut v[..]).unwrap();
        out.insert(name.to_vec(), v[..len].to_vec());
    }
    out
}

fn walk(root: &Path, rel: &Path, inodes: &mut BTreeMap<u64, String>, out: &mut BTreeMap<String, Facts>) {
    let mut names: Vec<_> = std::fs::read_dir(root.join(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let r = rel.join(&name);
        let p = root.join(&r);
        let m = std::fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let whiteout = ft.is_char_device() && m.rdev() == 0;
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if whiteout {
            "whiteout"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "other"
        };
        let first_link = (!ft.is_dir() && m.nlink() > 1)
            .then(|| inodes.entry(m.ino()).or_insert_with(|| r.display().to_string()).clone());
        out.insert(
            r.display().to_string(),
            Facts {
                kind,
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                size: (!ft.is_dir()).then(|| m.size()),
                mtime: (!whiteout).then(|| (m.mtime(), m.mtime_nsec())),
                content: ft.is_file().then(|| std::fs::read(&p).unwrap()),
                link: ft.is_symlink().then(|| std::fs::read_link(&p).unwrap()),
                rdev: m.rdev(),
                xattrs: xattrs(&p),
                first_link,
            },
        );
        if ft.is_dir() {
            walk(root, &r, inodes, out);
        }
    }
}

fn tree(dir: &Path) -> BTreeMap<String, Facts> {
    let mut out = BTreeMap::new();
    walk(dir, Path::new(""), &mut BTreeMap::new(), &mut out);
    let m = std::fs::metadata(dir).unwrap();
    out.insert(
        "<root>".into(),
        Facts {
            kind: "root",
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: None,
            mtime: None,
            content: None,
            link: None,
            rdev: 0,
            xattrs: xattrs(dir),
            first_link: None,
        },
    );
    out
}

fn layer_dirs(root: &Root, image: &str) -> Vec<PathBuf> {
    let v = inspect(root, image);
    let mut dirs: Vec<PathBuf> = v["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .split(':')
        .map(PathBuf::from)
        .collect();
    dirs.reverse(); // bottom first
    dirs
}

/// Build, save, load into a fresh store; every layer dir must match.
fn check(extra: &[&str]) {
    need_root();
    let a = Root::new();
    a.busybox("bb");
    let ctx = context_files();
    let mut args = vec!["-q", "-t", "layers-test"];
    args.extend_from_slice(extra);
    args.push(ctx.path().to_str().unwrap());
    let id = build_ok(&a, &args).trim().to_string();
    let archive = a.path().join("img.tar");
    a.ok(&["save", "-o", archive.to_str().unwrap(), "layers-test"]);

    let b = Root::new();
    b.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(image_id(&b, "layers-test"), id, "the loaded image has the built ID");

    let (built, loaded) = (layer_dirs(&a, &id), layer_dirs(&b, &id));
    assert_eq!(built.len(), loaded.len());
    assert!(built.len() >= 6, "base + 2 COPY + 2 RUN + WORKDIR layers: {built:?}");
    for (x, y) in built.iter().zip(&loaded).skip(1) {
        let (tx, ty) = (tree(x), tree(y));
        for (path, fx) in &tx {
            assert_eq!(
                Some(fx),
                ty.get(path),
                "{path} in {} (built) vs {} (loaded)",
                x.display(),
                y.display()
            );
        }
        for path in ty.keys() {
            assert!(tx.contains_key(path), "{path} only in the loaded layer {}", y.display());
        }
    }
    // What the RUN steps left as overlay metadata is in the layers, once.
    let run2 = tree(&built[4]);
    assert_eq!(run2["etc/group"].kind, "whiteout");
    assert_eq!(
        run2["opq"].xattrs.get(&b"trusted.overlay.opaque"[..]),
        Some(&b"y".to_vec())
    );
    assert!(!run2.contains_key("opq/old"));
    assert_eq!(run2["var/lib/x/hard"].first_link.as_deref(), Some("var/lib/x/hard"));
    assert_eq!(run2["var/lib/x/y"].first_link.as_deref(), Some("var/lib/x/hard"));
    for leftover in ["proc", "sys", "dev", "etc/hosts", "etc/resolv.conf", "etc/hostname"] {
        assert!(
            !run2.contains_key(leftover),
            "runtime mount point {leftover} left in the layer"
        );
    }
    let copy = tree(&built[1]);
    assert_eq!(copy["app/src/a.txt"].content.as_deref(), Some(&b"a\n"[..]));
    assert_eq!(copy["app/src/link"].link.as_deref(), Some(Path::new("../one.txt")));
}

#[test]
#[ignore = "needs root"]
fn built_layer_dirs_match_their_blobs() {
    check(&[]);
}

#[test]
#[ignore = "needs root"]
fn built_layer_dirs_match_their_blobs_with_an_epoch() {
    check(&["--source-date-epoch", "1700000000", "--no-cache"]);
}
