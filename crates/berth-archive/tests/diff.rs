//! write_layer: round trips through apply_layer, determinism, format.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use berth_archive::{apply_layer, write_layer, ApplyOptions, DiffOptions};
use common::*;
use sha2::{Digest, Sha256};
use tar::EntryType;

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// file, dirs, symlinks, hardlinks, fifo, modes, mtimes, long names.
fn build_tree(root: &Path) {
    fs::create_dir_all(root.join("etc/conf.d")).unwrap();
    fs::create_dir(root.join("bin")).unwrap();
    fs::write(root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    chmod(&root.join("etc/passwd"), 0o644);
    fs::write(root.join("etc/shadow"), b"secret").unwrap();
    chmod(&root.join("etc/shadow"), 0o600);
    fs::write(root.join("bin/tool"), vec![0xAB; 2_500_000]).unwrap();
    chmod(&root.join("bin/tool"), 0o755);
    fs::hard_link(root.join("bin/tool"), root.join("bin/tool-alias")).unwrap();
    symlink("../bin/tool", root.join("etc/tool-link")).unwrap();
    symlink("/nonexistent/absolute", root.join("dangling")).unwrap();
    let long_dir = root.join("x".repeat(90));
    fs::create_dir(&long_dir).unwrap();
    fs::write(long_dir.join("y".repeat(60)), b"long").unwrap();
    symlink("z".repeat(150), root.join("long-target")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    chmod(&root.join("fifo"), 0o620);
    chmod(&root.join("etc/conf.d"), 0o750);
    // mtimes last, deepest first, so creating children does not bump them.
    for p in [
        "etc/passwd",
        "etc/shadow",
        "bin/tool",
        "fifo",
        &format!("{}/{}", "x".repeat(90), "y".repeat(60)),
    ] {
        set_mtime(&root.join(p), 1_500_000_000);
    }
    for p in ["etc/conf.d", "etc", "bin", &"x".repeat(90)] {
        set_mtime(&root.join(p), 1_400_000_000);
    }
}

fn layer(dir: &Path, opts: &DiffOptions) -> (Vec<u8>, berth_archive::Diffed) {
    let mut out = Vec::new();
    let d = write_layer(dir, &mut out, opts).unwrap();
    (out, d)
}

fn names(tar: &[u8]) -> Vec<(String, EntryType)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                e.header().entry_type(),
            )
        })
        .collect()
}

#[test]
fn round_trip_preserves_the_tree() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let (tar, d) = layer(src.path(), &DiffOptions::default());
    assert_eq!(d.size, tar.len() as u64);
    assert_eq!(d.diff_id, format!("sha256:{}", hex::encode(Sha256::digest(&tar))));

    let dst = tempfile::tempdir().unwrap();
    let o = ApplyOptions {
        preserve_owner: is_root(),
        ..opts()
    };
    let applied = apply_layer(&tar[..], dst.path(), &o).unwrap();
    assert_eq!(applied.diff_id, d.diff_id);
    assert_eq!(applied.entries, d.entries);

    let want = snapshot(src.path());
    let got = snapshot(dst.path());
    assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
    for (k, w) in &want {
        assert_eq!(&got[k], w, "{k}");
    }
    assert_eq!(got["etc/shadow"].mode, 0o600);
    assert_eq!(got["bin/tool"].mode, 0o755);
    assert_eq!(got["etc/conf.d"].mode, 0o750);
    assert_eq!(got["etc"].mtime, 1_400_000_000);
    assert_eq!(got["bin/tool-alias"].link_group.as_deref(), Some("bin/tool"));
}

#[test]
fn same_tree_same_bytes() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let (a, da) = layer(src.path(), &DiffOptions::default());
    let (b, db) = layer(src.path(), &DiffOptions::default());
    assert!(a == b);
    assert_eq!(da, db);
}

#[test]
fn layout_is_docker_like() {
    let src = tempfile::tempdir().unwrap();
    build_tree(src.path());
    let (tar, d) = layer(src.path(), &DiffOptions::default());
    let entries = names(&tar);
    assert_eq!(entries.len() as u64, d.entries);
    let paths: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    let long_dir = format!("{}/", "x".repeat(90));
    let long_file = format!("{}/{}", "x".repeat(90), "y".repeat(60));
    assert_eq!(
        paths,
        [
            "bin/",
            "bin/tool",
            "bin/tool-alias",
            "dangling",
            "etc/",
            "etc/conf.d/",
            "etc/passwd",
            "etc/shadow",
            "etc/tool-link",
            "fifo",
            "long-target",
            &long_dir,
            &long_file,
        ]
    );
    let kinds: Vec<EntryType> = entries.iter().map(|(_, k)| *k).collect();
    assert_eq!(kinds[0], EntryType::Directory);
    assert_eq!(kinds[2], EntryType::Link);
    assert_eq!(kinds[3], EntryType::Symlink);
    assert_eq!(kinds[9], EntryType::Fifo);
    // USTAR magic, as Go's archive/tar writes for Docker.
    assert_eq!(&tar[257..263], b"ustar\0");
    // Ends with exactly two zero blocks.
    assert_eq!(tar.len() % 512, 0);
    assert!(tar[tar.len() - 1024..].iter().all(|&b| b == 0));
}

#[test]
fn source_date_epoch_clamps_mtimes() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("new"), b"n").unwrap();
    fs::write(src.path().join("old"), b"o").unwrap();
    set_mtime(&src.path().join("new"), 2_000_000_000);
    set_mtime(&src.path().join("old"), 1_000_000_000);
    let o = DiffOptions {
        source_date_epoch: Some(1_700_000_000),
        ..Default::default()
    };
    let (tar, _) = layer(src.path(), &o);
    let mut a = tar::Archive::new(&tar[..]);
    let mtimes: Vec<(String, u64)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_str().unwrap().to_owned(),
                e.header().mtime().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        mtimes,
        [("new".to_owned(), 1_700_000_000), ("old".to_owned(), 1_000_000_000)]
    );
    // And the clamped layer is stable even if the file is touched again.
    set_mtime(&src.path().join("new"), 2_100_000_000);
    let (again, _) = layer(src.path(), &o);
    assert!(again == tar);
}

#[test]
fn overlay_upper_dir_becomes_whiteout_entries_and_back() {
    let upper = tempfile::tempdir().unwrap();
    let u = upper.path();
    fs::create_dir(u.join("o")).unwrap();
    fs::write(u.join("o/fresh"), b"f").unwrap();
    rustix::fs::setxattr(
        u.join("o"),
        "user.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    // Char device 0:0: a whiteout (mknod of 0:0 needs no CAP_MKNOD).
    rustix::fs::mknodat(
        rustix::fs::CWD,
        u.join("gone"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
    let o = DiffOptions {
        overlay_whiteouts: true,
        xattr_prefix: "user.overlay.".into(),
        ..Default::default()
    };
    let (tar, _) = layer(u, &o);
    let entries = names(&tar);
    assert_eq!(
        entries,
        [
            (".wh.gone".to_owned(), EntryType::Regular),
            ("o/".to_owned(), EntryType::Directory),
            ("o/.wh..wh..opq".to_owned(), EntryType::Regular),
            ("o/fresh".to_owned(), EntryType::Regular),
        ]
    );
    // The opaque xattr itself is not exported.
    assert!(!String::from_utf8_lossy(&tar).contains("overlay.opaque"));

    let dst = tempfile::tempdir().unwrap();
    apply_layer(&tar[..], dst.path(), &opts()).unwrap();
    let gone = fs::symlink_metadata(dst.path().join("gone")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&gone.file_type()));
    assert_eq!(std::os::unix::fs::MetadataExt::rdev(&gone), 0);
    assert_eq!(
        get_xattr(&dst.path().join("o"), "user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );

    // Without overlay mode the same dir is exported as it is on disk.
    let (plain, _) = layer(u, &DiffOptions::default());
    let entries = names(&plain);
    assert_eq!(entries[0], ("gone".to_owned(), EntryType::Char));
    assert_eq!(entries.len(), 3);
}

#[test]
fn excluded_paths_and_their_contents_are_left_out() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("mnt/data")).unwrap();
    fs::write(src.path().join("mnt/data/f"), b"x").unwrap();
    fs::write(src.path().join("etc-hosts"), b"x").unwrap();
    fs::write(src.path().join("kept"), b"x").unwrap();
    let o = DiffOptions {
        exclude: vec!["/mnt/data/".into(), "etc-hosts".into()],
        ..Default::default()
    };
    let (tar, d) = layer(src.path(), &o);
    let paths: Vec<String> = names(&tar).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["kept", "mnt/"]);
    assert_eq!(d.entries, 2);
}

#[test]
#[ignore = "needs root"]
fn capability_xattr_is_written_and_restored() {
    assert!(
        is_root(),
        "this test needs root: run it as root with --include-ignored (scripts/test does)"
    );
    let src = tempfile::tempdir().unwrap();
    let f = src.path().join("ping");
    fs::write(&f, b"elf").unwrap();
    // VFS_CAP_REVISION_2 with cap_net_raw (bit 13) permitted + effective.
    let cap: [u8; 20] = [
        0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    rustix::fs::setxattr(&f, "security.capability", &cap, rustix::fs::XattrFlags::empty()).unwrap();
    let (tar, _) = layer(src.path(), &DiffOptions::default());
    let mut a = tar::Archive::new(&tar[..]);
    let mut e = a.entries().unwrap().next().unwrap().unwrap();
    let exts: Vec<(String, Vec<u8>)> = e
        .pax_extensions()
        .unwrap()
        .unwrap()
        .map(|x| {
            let x = x.unwrap();
            (x.key().unwrap().to_owned(), x.value_bytes().to_vec())
        })
        .collect();
    assert_eq!(exts, [("SCHILY.xattr.security.capability".to_owned(), cap.to_vec())]);
    let mut body = Vec::new();
    e.read_to_end(&mut body).unwrap();
    assert_eq!(body, b"elf");

    let dst = tempfile::tempdir().unwrap();
    let o = ApplyOptions {
        preserve_owner: true,
        ..opts()
    };
    apply_layer(&tar[..], dst.path(), &o).unwrap();
    assert_eq!(
        get_xattr(&dst.path().join("ping"), "security.capability").as_deref(),
        Some(&cap[..])
    );
}

#[test]
fn missing_dir_is_a_root_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = write_layer(&tmp.path().join("nope"), Vec::new(), &DiffOptions::default()).unwrap_err();
    assert!(matches!(err, berth_archive::ArchiveError::Root { .. }));
}

#[test]
fn write_errors_name_the_entry() {
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let src = tempfile::tempdir().unwrap();
    // Bigger than one chunk so the first write happens mid-file.
    fs::write(src.path().join("big"), vec![1u8; 3 << 20]).unwrap();
    let err = write_layer(src.path(), Full, &DiffOptions::default()).unwrap_err();
    assert_eq!(err.path(), "big", "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
}
