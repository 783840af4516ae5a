//! One name, several platforms: the default a name means, what deleting a
//! variant or re-tagging the name does to the others.

mod common;

use berth_store::{Platform, Store, Variant};
use common::image;

#[test]
fn a_name_keeps_its_platforms_side_by_side_until_it_is_given_one_image() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(&t.path().join("store")).unwrap();
    let name = "docker.io/library/m:latest";
    let foreign = Platform::parse("linux/s390x").unwrap();
    let (a, b) = (image(&s, "a", &[]), image(&s, "b", &[]));
    s.set_variants(
        name,
        &[
            Variant {
                platform: Platform::host(),
                image_id: b.clone(),
            },
            Variant {
                platform: foreign.clone(),
                image_id: a.clone(),
            },
        ],
    )
    .unwrap();
    // Without a platform the name means the host's variant, though the
    // foreign one came last; both images carry the name.
    assert_eq!(s.resolve_image("m").unwrap().id, b);
    assert_eq!(s.resolve_image_for("m", &foreign).unwrap().unwrap().id, a);
    for id in [&a, &b] {
        assert_eq!(s.image(id).unwrap().tags, vec![name.to_string()]);
    }
    // Nor is a variant dangling.
    assert!(!s.delete_dangling_image(&a).unwrap());
    let index: serde_json::Value = serde_json::from_slice(&s.variants_index(name).unwrap().unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);

    // Deleting the default: the name means the other platform.
    s.delete_image(&b).unwrap();
    assert_eq!(s.resolve_image("m").unwrap().id, a);
    assert_eq!(s.variants(name).unwrap().len(), 1);

    // Given one image the ordinary way, the name has no variants left.
    let c = image(&s, "c", &[]);
    s.tag(&c, name).unwrap();
    assert!(s.variants(name).unwrap().is_empty());
    assert_eq!(s.resolve_image("m").unwrap().id, c);
    assert!(s.image(&a).unwrap().tags.is_empty());
    assert!(s.delete_dangling_image(&a).unwrap());
}
