//! apply_layer: confinement, replacement, whiteouts, devices, compression.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use berth_archive::{apply_layer, sync_tree, ApplyOptions, ArchiveError, TeeReader};
use common::*;
use sha2::{Digest, Sha256};
use tar::EntryType;

/// A root two levels below the tempdir, so `../..` from it is still a
/// directory we own and can inspect.
fn nested_root(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    let root = tmp.path().join("a/root");
    fs::create_dir_all(&root).unwrap();
    root
}

#[test]
fn dotdot_entry_is_refused_and_writes_nothing_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let name = unique("dotdot");
    let evil = format!("../../{name}");
    let tar = Tar::new().file(&evil, b"pwned").finish();
    let err = apply_layer(&tar[..], &root, &opts()).unwrap_err();
    assert!(matches!(err, ArchiveError::Escapes { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("layer entry \"{evil}\" escapes the layer root")
    );
    assert_eq!(err.path(), evil);
    assert!(!tmp.path().join(&name).exists());
    assert!(!tmp.path().join("a").join(&name).exists());
    assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
}

#[test]
fn dotdot_inside_that_stays_inside_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let tar = Tar::new().dir("d/").file("d/../f", b"ok").finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    assert_eq!(fs::read(root.join("f")).unwrap(), b"ok");
}

#[test]
fn absolute_name_lands_inside_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let name = unique("abs");
    let tar = Tar::new().file(&format!("/tmp/{name}"), b"inside").finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    assert_eq!(fs::read(root.join("tmp").join(&name)).unwrap(), b"inside");
    assert!(!Path::new("/tmp").join(&name).exists());
}

#[test]
fn absolute_symlink_parent_resolves_inside_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let name = unique("abslink");
    let tar = Tar::new()
        .dir("tmp/")
        .symlink("lnk", "/tmp")
        .file(&format!("lnk/{name}"), b"confined")
        .finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    assert_eq!(fs::read(root.join("tmp").join(&name)).unwrap(), b"confined");
    assert!(!Path::new("/tmp").join(&name).exists());
}

#[test]
fn absolute_symlink_to_missing_dir_is_refused_not_followed_to_host() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let name = unique("abslink-missing");
    let entry = format!("lnk/{name}");
    let tar = Tar::new().symlink("lnk", "/tmp").file(&entry, b"x").finish();
    let err = apply_layer(&tar[..], &root, &opts()).unwrap_err();
    assert_eq!(err.path(), entry);
    assert!(!Path::new("/tmp").join(&name).exists());
    assert!(!root.join("tmp").exists());
}

#[test]
fn relative_symlink_climbing_out_is_confined() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let name = unique("climb");
    let tar = Tar::new()
        .symlink("lnk", "../../..")
        .file(&format!("lnk/{name}"), b"confined")
        .finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    // `..` at the root stays at the root.
    assert_eq!(fs::read(root.join(&name)).unwrap(), b"confined");
    assert!(!tmp.path().join(&name).exists());
    assert!(!tmp.path().join("a").join(&name).exists());
    assert!(!tmp.path().parent().unwrap().join(&name).exists());
}

#[test]
fn hardlink_target_escaping_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let tar = Tar::new().hardlink("evil", "../../etc/hostname").finish();
    let err = apply_layer(&tar[..], &root, &opts()).unwrap_err();
    assert!(matches!(err, ArchiveError::LinkEscapes { .. }), "{err:?}");
    assert_eq!(err.path(), "evil");
    assert!(err.to_string().contains("\"evil\""), "{err}");
    assert!(!root.join("evil").exists());
}

#[test]
fn hardlink_to_symlink_pointing_out_links_the_symlink_not_the_host_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let secret = tmp.path().join("secret");
    fs::write(&secret, b"host secret").unwrap();
    let tar = Tar::new()
        .symlink("sym", secret.to_str().unwrap())
        .hardlink("hl", "sym")
        .finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    let md = fs::symlink_metadata(root.join("hl")).unwrap();
    assert!(md.file_type().is_symlink(), "hl must be the symlink itself");
    assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
    assert_ne!(md.ino(), fs::metadata(&secret).unwrap().ino());
}

#[test]
fn hardlink_through_symlinked_dir_cannot_reach_host_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    // tmp/secret is outside root; `up/../secret`-style tricks via a symlink.
    fs::write(tmp.path().join("secret"), b"host secret").unwrap();
    let tar = Tar::new().symlink("up", "../..").hardlink("hl", "up/secret").finish();
    let err = apply_layer(&tar[..], &root, &opts()).unwrap_err();
    assert_eq!(err.path(), "hl");
    assert_eq!(fs::metadata(tmp.path().join("secret")).unwrap().nlink(), 1);
    assert!(!root.join("hl").exists());
}

#[test]
fn hardlinks_inside_root_share_the_inode() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let tar = Tar::new()
        .dir("d/")
        .file("d/a", b"data")
        .hardlink("b", "d/a")
        .hardlink("c", "/d/a")
        .finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    let a = fs::metadata(root.join("d/a")).unwrap();
    assert_eq!(a.nlink(), 3);
    assert_eq!(fs::metadata(root.join("b")).unwrap().ino(), a.ino());
    assert_eq!(fs::metadata(root.join("c")).unwrap().ino(), a.ino());
}

#[test]
fn file_replaces_existing_symlink_without_writing_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let outside = tmp.path().join("outside.txt");
    fs::write(&outside, b"original").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("f")).unwrap();
    let tar = Tar::new().file("f", b"new content").finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    assert_eq!(fs::read(&outside).unwrap(), b"original");
    let md = fs::symlink_metadata(root.join("f")).unwrap();
    assert!(md.file_type().is_file());
    assert_eq!(fs::read(root.join("f")).unwrap(), b"new content");
}

#[test]
fn symlink_then_same_name_file_in_one_layer() {
    // The classic two-step attack within a single layer.
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let outside = tmp.path().join("victim");
    fs::write(&outside, b"original").unwrap();
    let tar = Tar::new()
        .symlink("f", outside.to_str().unwrap())
        .file("f", b"overwrite")
        .finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    assert_eq!(fs::read(&outside).unwrap(), b"original");
    assert_eq!(fs::read(root.join("f")).unwrap(), b"overwrite");
}

#[test]
fn dir_replaces_file_and_file_replaces_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    fs::write(root.join("was_file"), b"x").unwrap();
    fs::create_dir_all(root.join("was_dir/deep/er")).unwrap();
    fs::write(root.join("was_dir/deep/er/f"), b"x").unwrap();
    let tar = Tar::new()
        .dir("was_file/")
        .file("was_file/inner", b"in")
        .file("was_dir", b"now a file")
        .finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    assert_eq!(fs::read(root.join("was_file/inner")).unwrap(), b"in");
    assert_eq!(fs::read(root.join("was_dir")).unwrap(), b"now a file");
}

#[test]
fn existing_dir_is_kept_and_its_metadata_updated() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/old"), b"old").unwrap();
    let mut h = Tar::header("d/", EntryType::Directory, 0, 0o711);
    h.set_mtime(1_234_567_890);
    let tar = Tar::new().raw(h, &[]).file("d/new", b"new").finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    assert_eq!(fs::read(root.join("d/old")).unwrap(), b"old");
    let md = fs::metadata(root.join("d")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o711);
    // Set after `d/new` was created inside it.
    assert_eq!(md.mtime(), 1_234_567_890);
}

#[test]
fn missing_parents_are_created() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let tar = Tar::new().file("x/y/z/f", b"deep").finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    assert_eq!(fs::read(root.join("x/y/z/f")).unwrap(), b"deep");
    assert!(fs::metadata(root.join("x/y")).unwrap().is_dir());
}

#[test]
fn devices_skipped_unless_allowed_fifos_always() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let tar = Tar::new()
        .node("null", EntryType::Char, 1, 3)
        .node("sda", EntryType::Block, 8, 0)
        .node("pipe", EntryType::Fifo, 0, 0)
        .finish();
    let applied = apply_layer(&tar[..], &root, &opts()).unwrap();
    assert_eq!(applied.entries, 3);
    assert!(fs::symlink_metadata(root.join("null")).is_err());
    assert!(fs::symlink_metadata(root.join("sda")).is_err());
    let pipe = fs::symlink_metadata(root.join("pipe")).unwrap();
    assert!(pipe.file_type().is_fifo());
    assert_eq!(pipe.mode() & 0o7777, 0o640);

    if is_root() {
        let root2 = tmp.path().join("devs");
        fs::create_dir(&root2).unwrap();
        let o = ApplyOptions {
            allow_devices: true,
            ..opts()
        };
        apply_layer(&tar[..], &root2, &o).unwrap();
        let null = fs::symlink_metadata(root2.join("null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
        assert_eq!(null.mode() & 0o7777, 0o640);
        let sda = fs::symlink_metadata(root2.join("sda")).unwrap();
        assert!(sda.file_type().is_block_device());
        assert_eq!(sda.rdev(), rustix::fs::makedev(8, 0));
    }
}

#[test]
fn overlay_whiteouts_become_char_devices_and_opaque_xattr() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let tar = Tar::new()
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .file("d/kept", b"k")
        .file(".wh.foo", b"")
        .file("e/.wh.bar", b"")
        .finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    for wh in ["foo", "e/bar"] {
        let md = fs::symlink_metadata(root.join(wh)).unwrap();
        assert!(md.file_type().is_char_device(), "{wh}");
        assert_eq!(md.rdev(), 0);
    }
    assert_eq!(
        get_xattr(&root.join("d"), "user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!root.join("d/.wh..wh..opq").exists());
    assert!(!root.join(".wh.foo").exists());
    assert_eq!(fs::read(root.join("d/kept")).unwrap(), b"k");

    if is_root() {
        let root2 = tmp.path().join("trusted");
        fs::create_dir(&root2).unwrap();
        let o = ApplyOptions {
            xattr_prefix: "trusted.overlay.".into(),
            ..opts()
        };
        apply_layer(&tar[..], &root2, &o).unwrap();
        assert_eq!(
            get_xattr(&root2.join("d"), "trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
    }
}

#[test]
fn plain_whiteouts_remove_paths_and_opaque_empties_old_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    fs::create_dir_all(root.join("foo/sub")).unwrap();
    fs::write(root.join("foo/sub/f"), b"x").unwrap();
    fs::write(root.join("bar"), b"x").unwrap();
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/old"), b"x").unwrap();
    fs::create_dir(root.join("d/olddir")).unwrap();
    // A symlink whose whiteout must remove the link, not its target.
    let outside = tmp.path().join("keepme");
    fs::write(&outside, b"x").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("lnk")).unwrap();
    let tar = Tar::new()
        .file(".wh.foo", b"")
        .file(".wh.bar", b"")
        .file(".wh.lnk", b"")
        .file(".wh.never-existed", b"")
        .file("nodir/.wh.x", b"")
        .dir("d/")
        .file("d/new-before-marker", b"n")
        .file("d/.wh..wh..opq", b"")
        .file("d/new", b"n")
        .finish();
    apply_layer(&tar[..], &root, &plain_opts()).unwrap();
    assert!(!root.join("foo").exists());
    assert!(!root.join("bar").exists());
    assert!(fs::symlink_metadata(root.join("lnk")).is_err());
    assert!(outside.exists());
    assert!(!root.join("d/old").exists());
    assert!(!root.join("d/olddir").exists());
    assert!(root.join("d/new-before-marker").exists());
    assert!(root.join("d/new").exists());
    assert!(!root.join("nodir").exists());
    assert!(fs::read_dir(&root)
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".wh.")));
}

#[test]
fn whiteout_naming_dotdot_or_escaping_is_refused() {
    for (overlay, name) in [
        (true, "d/.wh..."),
        (false, "d/.wh..."),
        (true, "../.wh.x"),
        (false, "../../.wh.x"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let root = nested_root(&tmp);
        fs::write(tmp.path().join("a/x"), b"keep").unwrap();
        let o = ApplyOptions {
            overlay_whiteouts: overlay,
            ..opts()
        };
        let tar = Tar::new().dir("d/").file(name, b"").finish();
        let err = apply_layer(&tar[..], &root, &o).unwrap_err();
        assert!(matches!(err, ArchiveError::Escapes { .. }), "{name}: {err:?}");
        assert_eq!(err.path(), name);
        assert!(tmp.path().join("a/x").exists());
        assert!(root.join("d").exists() || name.starts_with(".."));
    }
    // `.wh..` names `.`: not an escape, but not a file either.
    let tmp = tempfile::tempdir().unwrap();
    let tar = Tar::new().dir("d/").file("d/.wh..", b"").finish();
    let err = apply_layer(&tar[..], tmp.path(), &plain_opts()).unwrap_err();
    assert!(matches!(err, ArchiveError::Invalid { .. }), "{err:?}");
    assert!(tmp.path().join("d").exists());
}

fn sample_layer() -> Vec<u8> {
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
    let mut t = Tar::new();
    t.dir("bin/")
        .file_mode("bin/tool", b"#!/bin/sh\necho hi\n", 0o755, MTIME)
        .file("big", &big)
        .symlink("sh", "bin/tool");
    let mut tar = t.finish();
    // Trailing record padding, as GNU tar writes: part of the stream.
    tar.extend_from_slice(&[0u8; 8192]);
    tar
}

#[test]
fn plain_gzip_zstd_apply_alike_with_uncompressed_digest_and_read_to_eof() {
    let plain = sample_layer();
    let want = format!("sha256:{}", hex::encode(Sha256::digest(&plain)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::stream::encode_all(&plain[..], 3).unwrap();
    let mut snaps = Vec::new();
    for blob in [&plain, &gz, &zst] {
        let tmp = tempfile::tempdir().unwrap();
        let mut tee = TeeReader::new(&blob[..], Vec::new());
        let applied = apply_layer(&mut tee, tmp.path(), &opts()).unwrap();
        assert_eq!(applied.diff_id, want);
        assert_eq!(applied.size, plain.len() as u64);
        assert_eq!(applied.entries, 4);
        let (_, copy) = tee.into_inner();
        assert!(copy == *blob, "input was not read to EOF");
        snaps.push(snapshot(tmp.path()));
    }
    assert_eq!(snaps[0], snaps[1]);
    assert_eq!(snaps[0], snaps[2]);
    let tool = &snaps[0]["bin/tool"];
    assert_eq!(tool.mode, 0o755);
    assert_eq!(tool.mtime, MTIME as i64);
}

#[test]
fn truncated_stream_error_names_the_entry() {
    let tar = Tar::new().file("first", b"1").file("second", &[7u8; 5000]).finish();
    let cut = &tar[..512 * 2 + 512 + 1000];
    let tmp = tempfile::tempdir().unwrap();
    let err = apply_layer(cut, tmp.path(), &opts()).unwrap_err();
    assert_eq!(err.path(), "second", "{err}");
}

#[test]
fn pax_long_names_xattrs_and_mtime() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let tar = Tar::new()
        .pax(&[
            ("path", long.as_bytes()),
            ("SCHILY.xattr.user.note", b"hello"),
            ("SCHILY.xattr.user.overlay.redirect", b"/etc"),
            ("mtime", b"1500000000.25"),
        ])
        .file("short-name-ignored", b"long")
        .finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    let f = root.join(&long);
    assert_eq!(fs::read(&f).unwrap(), b"long");
    assert_eq!(get_xattr(&f, "user.note").as_deref(), Some(&b"hello"[..]));
    // Overlay metadata must not be smuggled in.
    assert_eq!(get_xattr(&f, "user.overlay.redirect"), None);
    let md = fs::metadata(&f).unwrap();
    assert_eq!(md.mtime(), 1_500_000_000);
    assert_eq!(md.mtime_nsec(), 250_000_000);
}

#[test]
#[ignore = "needs root"]
fn owner_mode_and_id_shift_as_root() {
    assert!(
        is_root(),
        "this test needs root: run it as root with --include-ignored (scripts/test does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let mut h = Tar::header("suid", EntryType::Regular, 2, 0o4755);
    h.set_uid(1000);
    h.set_gid(1000);
    let mut d = Tar::header("dir/", EntryType::Directory, 0, 0o2775);
    d.set_uid(5);
    d.set_gid(6);
    let tar = Tar::new().raw(h, b"hi").raw(d, &[]).finish();
    let o = ApplyOptions {
        preserve_owner: true,
        ..opts()
    };
    apply_layer(&tar[..], &root, &o).unwrap();
    let md = fs::metadata(root.join("suid")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    // Mode is set after chown, which would have cleared the setuid bit.
    assert_eq!(md.mode() & 0o7777, 0o4755);
    let dm = fs::metadata(root.join("dir")).unwrap();
    assert_eq!((dm.uid(), dm.gid()), (5, 6));
    assert_eq!(dm.mode() & 0o7777, 0o2775);

    let root2 = tmp.path().join("shifted");
    fs::create_dir(&root2).unwrap();
    let o = ApplyOptions {
        preserve_owner: true,
        id_shift: 100_000,
        ..opts()
    };
    apply_layer(&tar[..], &root2, &o).unwrap();
    let md = fs::metadata(root2.join("suid")).unwrap();
    assert_eq!((md.uid(), md.gid()), (101_000, 101_000));
    assert_eq!(md.mode() & 0o7777, 0o4755);
}

#[test]
fn owner_not_preserved_leaves_current_user() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = Tar::header("f", EntryType::Regular, 1, 0o600);
    h.set_uid(4242);
    let tar = Tar::new().raw(h, b"x").finish();
    apply_layer(&tar[..], tmp.path(), &opts()).unwrap();
    let md = fs::metadata(tmp.path().join("f")).unwrap();
    assert_eq!(md.uid(), rustix::process::geteuid().as_raw());
    assert_eq!(md.permissions().mode() & 0o7777, 0o600);
}

#[test]
fn root_entry_is_skipped_and_empty_stream_is_an_empty_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let before = fs::metadata(tmp.path()).unwrap().mode();
    let mut h = Tar::header("./", EntryType::Directory, 0, 0o700);
    h.set_mtime(1);
    let tar = Tar::new().raw(h, &[]).finish();
    apply_layer(&tar[..], tmp.path(), &opts()).unwrap();
    assert_eq!(fs::metadata(tmp.path()).unwrap().mode(), before);

    let applied = apply_layer(&b""[..], tmp.path(), &opts()).unwrap();
    assert_eq!(applied.entries, 0);
    assert_eq!(applied.size, 0);
    assert_eq!(
        applied.diff_id,
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn missing_root_is_an_error_and_sync_tree_works() {
    let tmp = tempfile::tempdir().unwrap();
    let err = apply_layer(&b""[..], &tmp.path().join("nope"), &opts()).unwrap_err();
    assert!(matches!(err, ArchiveError::Root { .. }), "{err:?}");
    sync_tree(tmp.path()).unwrap();
    assert!(sync_tree(&tmp.path().join("nope")).is_err());
}

#[test]
fn decompressed_reader_matches() {
    let plain = sample_layer();
    let zst = zstd::stream::encode_all(&plain[..], 1).unwrap();
    let mut out = Vec::new();
    berth_archive::decompressed(&zst[..])
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert!(out == plain);
}

#[test]
fn old_style_directory_by_trailing_slash() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = Tar::new()
        .raw(Tar::header("olddir/", EntryType::Regular, 0, 0o750), &[])
        .file("olddir/f", b"x")
        .finish();
    apply_layer(&tar[..], tmp.path(), &opts()).unwrap();
    let md = fs::metadata(tmp.path().join("olddir")).unwrap();
    assert!(md.is_dir());
    assert_eq!(md.mode() & 0o7777, 0o750);
}

#[test]
#[ignore = "needs root"]
fn xattrs_on_symlinks_are_set_on_the_link_itself() {
    assert!(
        is_root(),
        "this test needs root: run it as root with --include-ignored (scripts/test does)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let target = tmp.path().join("target");
    fs::write(&target, b"t").unwrap();
    let tar = Tar::new()
        .pax(&[("SCHILY.xattr.trusted.berth-test", b"v")])
        .symlink("lnk", target.to_str().unwrap())
        .finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    assert_eq!(
        get_xattr(&root.join("lnk"), "trusted.berth-test").as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(get_xattr(&target, "trusted.berth-test"), None);
}

#[test]
fn parent_replaced_mid_layer_is_resolved_afresh() {
    let tmp = tempfile::tempdir().unwrap();
    let root = nested_root(&tmp);
    let tar = Tar::new()
        .dir("a/")
        .file("a/f1", b"1")
        .dir("b/")
        .symlink("a", "/b")
        .file("a/f2", b"2")
        .finish();
    apply_layer(&tar[..], &root, &opts()).unwrap();
    assert!(fs::symlink_metadata(root.join("a")).unwrap().file_type().is_symlink());
    assert_eq!(fs::read(root.join("b/f2")).unwrap(), b"2");
    assert!(!root.join("b/f1").exists());
}
