//! A layer directory holds one layer's own files, so every stack that has
//! the layer shares it: an image made of other images' layers (a composed
//! image, a pull of one) unpacks nothing, and the directory lives as long
//! as any image standing on it.

use std::fs;
use std::path::Path;

use berth_archive::{write_layer, DiffOptions};
use berth_store::images::MEDIA_OCI_LAYER;
use berth_store::{Digest, NewImage, NewLayer, Store};

/// A one-file layer tar stored as a blob; returns (diff ID, size).
fn layer_blob(store: &Store, t: &Path, name: &str, content: &str) -> (Digest, u64) {
    let dir = t.join(format!("src-{name}"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), content).unwrap();
    let mut tar = Vec::new();
    let d = write_layer(&dir, &mut tar, &DiffOptions::default()).unwrap();
    let digest = store.put_blob(&tar).unwrap();
    assert_eq!(digest.as_str(), d.diff_id);
    (digest, d.size)
}

fn image(store: &Store, layers: &[(Digest, u64)]) -> berth_store::ImageRecord {
    let diff_ids: Vec<String> = layers.iter().map(|(d, _)| format!("\"{d}\"")).collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    store
        .commit_image(NewImage {
            config: config.into_bytes(),
            layers: layers
                .iter()
                .map(|(d, size)| NewLayer {
                    diff_id: d.clone(),
                    blob: d.clone(),
                    media_type: MEDIA_OCI_LAYER.to_string(),
                    blob_size: *size,
                    size: *size,
                    staged_blob: None,
                    staged_dir: None,
                })
                .collect(),
            parent: None,
            tags: Vec::new(),
            repo_digests: Vec::new(),
            manifest: None,
        })
        .unwrap()
}

fn layer_dirs(store: &Store) -> usize {
    fs::read_dir(store.root().join("layers")).unwrap().count()
}

#[test]
fn a_layer_on_another_stack_reuses_the_unpacked_directory() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(&t.path().join("root")).unwrap();
    let base = layer_blob(&store, t.path(), "base", "b");
    let python = layer_blob(&store, t.path(), "python", "p");
    let tools = layer_blob(&store, t.path(), "tools", "t");

    let py = image(&store, &[base.clone(), python.clone()]);
    let tl = image(&store, &[base.clone(), tools.clone()]);
    assert_eq!(layer_dirs(&store), 3, "base, python, tools: each unpacked once");

    // base + python + tools: the tools layer now stands on python, a chain
    // the store never saw, yet its directory is the one tools already had.
    let both = image(&store, &[base.clone(), python.clone(), tools.clone()]);
    assert_eq!(layer_dirs(&store), 3, "nothing unpacked again");
    assert_eq!(
        both.layers,
        vec![py.layers[0].clone(), py.layers[1].clone(), tl.layers[1].clone()]
    );
    assert_eq!(fs::read(store.layer_dir(&both.layers[2]).join("tools")).unwrap(), b"t");

    // The directory outlives the image that unpacked it.
    store.delete_image(&tl.id).unwrap();
    store.delete_image(&py.id).unwrap();
    store.gc().unwrap();
    for key in &both.layers {
        assert!(store.has_layer_dir(key), "{key} kept for the composed image");
    }
    store.delete_image(&both.id).unwrap();
    store.gc().unwrap();
    assert_eq!(layer_dirs(&store), 0);
}

#[test]
fn a_layer_twice_in_one_image_gets_two_directories() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(&t.path().join("root")).unwrap();
    let a = layer_blob(&store, t.path(), "a", "1");
    let b = layer_blob(&store, t.path(), "b", "2");
    let img = image(&store, &[a.clone(), b, a]);
    assert_ne!(
        img.layers[0], img.layers[2],
        "overlayfs refuses one lower dir given twice"
    );
    assert_eq!(layer_dirs(&store), 3);
}
