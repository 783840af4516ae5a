//! `Store::check`: a store damaged the ways killed processes and careless
//! hands damage it is reported, and `repair` makes it whole again without
//! losing anything still usable.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use berth_store::{FindingKind, Store};
use common::image;

fn kinds(r: &berth_store::CheckReport) -> Vec<FindingKind> {
    let mut k: Vec<_> = r.findings.iter().map(|f| f.kind).collect();
    k.sort_by_key(|k| format!("{k:?}"));
    k
}

#[test]
fn a_fresh_store_with_images_checks_clean() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(&t.path().join("store")).unwrap();
    image(&s, "a", &["docker.io/library/a:latest"]);
    let r = s.check(false).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn what_killed_processes_and_careless_hands_leave_is_found_and_repaired() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let s = Store::open(&root).unwrap();
    let keep = image(&s, "keep", &["docker.io/library/keep:latest"]);
    let lost = image(&s, "lost", &["docker.io/library/lost:latest"]);

    // A layer directory gone (its blob is still there: it can be unpacked again).
    let keep_chain = s.image(&keep).unwrap().layers[0].clone();
    berth_store::staging::remove_tree(&s.layer_path(&keep_chain));
    // An image whose config blob is gone for good.
    s.blobs().remove(&lost);
    // Garbage: a blob nothing names, a layer directory with no record.
    let stray = s.put_blob(b"nobody's").unwrap();
    let orphan = root.join("layers").join("ab".repeat(32));
    fs::create_dir_all(orphan.join("diff")).unwrap();
    fs::set_permissions(&orphan, fs::Permissions::from_mode(0o700)).unwrap();
    // A tag left on a deleted image (as an older berth could leave).
    let db = rusqlite::Connection::open(root.join("berth.db")).unwrap();
    db.execute(
        "INSERT INTO tags (name, image_id, added) VALUES ('docker.io/library/ghost:latest', ?1, 0)",
        [format!("sha256:{}", "cd".repeat(32))],
    )
    .unwrap();
    // Opened up by hand.
    fs::set_permissions(root.join("containers"), fs::Permissions::from_mode(0o755)).unwrap();

    let r = s.check(false).unwrap();
    assert_eq!(
        kinds(&r),
        [
            FindingKind::BlobUnreferenced,
            FindingKind::DanglingName,
            FindingKind::ImageBlobMissing,
            FindingKind::LayerDirMissing,
            FindingKind::LayerDirUnrecorded,
            FindingKind::TooOpen,
        ],
        "{:#?}",
        r.findings
    );
    assert!(!r.is_clean());
    assert!(
        r.findings.iter().all(|f| f.repaired.is_none()),
        "a check without --repair changed something"
    );
    let text: Vec<String> = r.findings.iter().map(|f| f.to_string()).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("tag docker.io/library/ghost:latest: names image")),
        "{text:#?}"
    );

    let r = s.check(true).unwrap();
    assert!(r.is_clean(), "{:#?}", r.findings);
    // Whole again: the layer unpacked from its blob, the broken image gone,
    // the garbage gone, the mode tightened — and nothing else lost.
    assert_eq!(fs::read(s.layer_dir(&keep_chain).join("keep")).unwrap(), b"keep");
    assert!(s.image(&keep).is_ok());
    assert!(s.image(&lost).is_err());
    assert!(!s.blobs().contains(&stray));
    assert!(!orphan.exists());
    assert_eq!(
        fs::metadata(root.join("containers")).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let r = s.check(false).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}
