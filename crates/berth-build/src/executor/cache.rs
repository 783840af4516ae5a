//! Step cache keys, and the cache as a directory another machine can use:
//! `--cache-to type=local,dest=DIR` writes an OCI image layout (every step
//! image the build made or reused: configs, manifests, layer blobs) plus
//! `berth-cache.json` mapping each step key to its image; `--cache-from
//! type=local,src=DIR` records those images and keys in the store, so a
//! fresh store reuses every step.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use berth_store::{Digest, ImageConfig, NewImage, NewLayer, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::UsedStep;

const KEY_VERSION: &str = "berth-build-cache/1";
const INDEX_MEDIA: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST_MEDIA: &str = "application/vnd.oci.image.manifest.v1+json";
/// The file in a cache dir that maps step keys to images.
pub const CACHE_FILE: &str = "berth-cache.json";

/// A step's cache key: the parent image, the expanded instruction and any
/// further inputs (build args in effect, the digest of copied files …).
pub fn step_key(parent: Option<&Digest>, instruction: &str, extra: &[(&str, String)]) -> String {
    let mut h = Sha256::new();
    h.update(KEY_VERSION.as_bytes());
    h.update([0]);
    h.update(parent.map(|p| p.as_str()).unwrap_or("scratch").as_bytes());
    h.update([0]);
    h.update(instruction.as_bytes());
    for (k, v) in extra {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([b'=']);
        h.update(v.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
struct CacheFile {
    version: u32,
    entries: Vec<CacheEntry>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct CacheEntry {
    key: String,
    /// The image ID (config digest).
    config: String,
    manifest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
}

fn blob_path(dir: &Path, d: &Digest) -> std::path::PathBuf {
    dir.join("blobs").join("sha256").join(d.hex())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Copy a blob into the cache dir (a lazy layer blob is made from its
/// layer directory first).
fn copy_blob(store: &Store, dir: &Path, d: &Digest) -> io::Result<u64> {
    let dst = blob_path(dir, d);
    if let Ok(m) = fs::metadata(&dst) {
        return Ok(m.len());
    }
    // (The store's error names the blob.)
    let src = store
        .layer_blob_by_digest(d)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let tmp = dst.with_extension("tmp");
    let n = fs::copy(&src, &tmp)?;
    fs::rename(&tmp, &dst)?;
    Ok(n)
}

/// Write the images of `used` (and their blobs) into the OCI layout `dir`,
/// keeping entries an earlier export left there.
pub(crate) fn export(store: &Store, dir: &Path, used: &[UsedStep]) -> io::Result<()> {
    fs::create_dir_all(dir.join("blobs").join("sha256"))?;
    write_atomic(&dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut file: CacheFile = fs::read(dir.join(CACHE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    file.version = 1;
    let mut by_key: BTreeMap<String, CacheEntry> = file.entries.drain(..).map(|e| (e.key.clone(), e)).collect();
    let other = |e: berth_store::StoreError| io::Error::other(e.to_string());
    for u in used {
        let rec = store.image(&u.image).map_err(other)?;
        copy_blob(store, dir, &rec.id)?;
        copy_blob(store, dir, &rec.manifest)?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&store.blobs().read(&rec.manifest).map_err(other)?).map_err(io::Error::other)?;
        for l in manifest["layers"].as_array().into_iter().flatten() {
            let d = l["digest"]
                .as_str()
                .and_then(|s| Digest::parse(s).ok())
                .ok_or_else(|| io::Error::other(format!("manifest {} has a bad layer digest", rec.manifest)))?;
            copy_blob(store, dir, &d)?;
        }
        by_key.insert(
            u.key.clone(),
            CacheEntry {
                key: u.key.clone(),
                config: rec.id.to_string(),
                manifest: rec.manifest.to_string(),
                parent: rec.parent.map(|p| p.to_string()),
            },
        );
    }
    file.entries = by_key.into_values().collect();
    let mut manifests = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for e in &file.entries {
        if !seen.insert(e.manifest.clone()) {
            continue;
        }
        let d = Digest::parse(&e.manifest).map_err(other)?;
        let size = fs::metadata(blob_path(dir, &d))?.len();
        manifests.push(serde_json::json!({
            "mediaType": MANIFEST_MEDIA,
            "digest": e.manifest,
            "size": size,
            "annotations": {"io.berth.image.id": e.config},
        }));
    }
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA, "manifests": manifests});
    write_atomic(&dir.join("index.json"), &serde_json::to_vec_pretty(&index)?)?;
    write_atomic(&dir.join(CACHE_FILE), &serde_json::to_vec_pretty(&file)?)?;
    Ok(())
}

/// Record the images of a cache dir in the store, and their step keys.
/// Returns how many keys were imported.
pub(crate) fn import(store: &Store, dir: &Path) -> io::Result<usize> {
    let bytes = fs::read(dir.join(CACHE_FILE))
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.join(CACHE_FILE).display())))?;
    let file: CacheFile = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
    let other = |e: berth_store::StoreError| io::Error::other(e.to_string());
    let mut n = 0;
    for e in &file.entries {
        let id = Digest::parse(&e.config).map_err(other)?;
        if store.image(&id).is_err() {
            let manifest_d = Digest::parse(&e.manifest).map_err(other)?;
            let manifest_bytes = fs::read(blob_path(dir, &manifest_d))?;
            if Digest::of_bytes(&manifest_bytes) != manifest_d {
                return Err(io::Error::other(format!(
                    "manifest {manifest_d} does not match its digest"
                )));
            }
            let config_bytes = fs::read(blob_path(dir, &id))?;
            if Digest::of_bytes(&config_bytes) != id {
                return Err(io::Error::other(format!("config {id} does not match its digest")));
            }
            let config = ImageConfig::from_bytes(&config_bytes).map_err(io::Error::other)?;
            let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).map_err(io::Error::other)?;
            let descs = manifest["layers"].as_array().cloned().unwrap_or_default();
            if descs.len() != config.rootfs.diff_ids.len() {
                return Err(io::Error::other(format!(
                    "image {id}: manifest and config disagree on layers"
                )));
            }
            let mut layers = Vec::new();
            for (desc, diff) in descs.iter().zip(&config.rootfs.diff_ids) {
                let blob = desc["digest"]
                    .as_str()
                    .and_then(|s| Digest::parse(s).ok())
                    .ok_or_else(|| io::Error::other("bad layer digest"))?;
                let media_type = desc["mediaType"].as_str().unwrap_or_default().to_string();
                let staged = if store.blobs().contains(&blob) {
                    None
                } else {
                    let mut w = store.blob_writer("cache-import").map_err(other)?;
                    io::copy(&mut fs::File::open(blob_path(dir, &blob))?, &mut w)?;
                    let s = w.finish().map_err(other)?;
                    s.verify(Some(&blob), "cached layer").map_err(other)?;
                    Some(s)
                };
                let blob_size = desc["size"].as_u64().unwrap_or(0);
                layers.push(NewLayer {
                    diff_id: Digest::parse(diff).map_err(other)?,
                    blob,
                    media_type,
                    blob_size,
                    size: blob_size,
                    staged_blob: staged,
                    staged_dir: None,
                });
            }
            store
                .commit_image(NewImage {
                    config: config_bytes,
                    layers,
                    parent: e.parent.as_deref().and_then(|p| Digest::parse(p).ok()),
                    tags: Vec::new(),
                    repo_digests: Vec::new(),
                    manifest: Some(manifest_bytes),
                })
                .map_err(other)?;
        }
        store.cache_put(&e.key, &id).map_err(other)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_every_input() {
        let p = Digest::of_bytes(b"parent");
        let a = step_key(Some(&p), "RUN make", &[]);
        assert_eq!(a, step_key(Some(&p), "RUN make", &[]));
        assert_ne!(a, step_key(None, "RUN make", &[]));
        assert_ne!(a, step_key(Some(&p), "RUN make ", &[]));
        assert_ne!(a, step_key(Some(&p), "RUN make", &[("arg", "A=1".into())]));
        assert!(a.starts_with("sha256:") && a.len() == 71);
    }
}
