//! Helpers for the store's integration tests: one-file layers and the
//! images made of them.
#![allow(dead_code)]

use berth_store::images::{NewImage, NewLayer, MEDIA_OCI_LAYER};
use berth_store::{Digest, Store};

/// A tar holding one file `name` whose content is its name.
pub fn layer_tar(name: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_size(name.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append(&h, name.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

/// The config of the image [`image`] makes for `name`.
pub fn config_for(name: &str) -> String {
    let diff_id = Digest::of_bytes(&layer_tar(name));
    format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["{name}"]}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    )
}

/// The ID [`image`] gives the image it makes for `name`.
pub fn expected_id(name: &str) -> Digest {
    Digest::of_bytes(config_for(name).as_bytes())
}

/// Imports a one-layer image holding the file `name`, with `tags`; its ID.
pub fn image(store: &Store, name: &str, tags: &[&str]) -> Digest {
    let tar = layer_tar(name);
    let mut w = store.blob_writer("test").unwrap();
    std::io::Write::write_all(&mut w, &tar).unwrap();
    let blob = w.finish().unwrap();
    let staged = store.stage_layer(&tar[..], name).unwrap();
    store
        .commit_image(NewImage {
            config: config_for(name).into_bytes(),
            layers: vec![NewLayer {
                diff_id: staged.diff_id.clone(),
                blob: blob.digest.clone(),
                media_type: MEDIA_OCI_LAYER.to_string(),
                blob_size: blob.size,
                size: tar.len() as u64,
                staged_blob: Some(blob),
                staged_dir: Some(staged),
            }],
            parent: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            repo_digests: Vec::new(),
            manifest: None,
        })
        .unwrap()
        .id
}
