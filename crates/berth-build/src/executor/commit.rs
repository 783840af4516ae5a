//! Step images: the parent's config with the step's changes, one more
//! history entry (`empty_layer` when the step added no files), the parent's
//! layers plus the step's own, recorded with the parent link so `berth
//! history` and the failure report can walk back.

use std::path::{Path, PathBuf};

use berth_archive::{write_layer, DiffOptions, Diffed};
use berth_store::images::MEDIA_OCI_LAYER;
use berth_store::{Digest, History, ImageConfig, NewImage, NewLayer, StagedBlob, StagedLayer, Store, StoreLock};

use super::{layer_dir, store_err, BuildError};

/// A layer a step wrote, staged until its image is committed.
pub(crate) struct LayerOut {
    pub diff_id: Digest,
    /// Bytes of the (uncompressed) tar: the blob's size and digest are the
    /// diff ID's.
    pub size: u64,
    /// The blob, synced; `None` when the store already holds it, or when
    /// `dir` is set (the blob is then lazy: made from the layer directory
    /// when something reads it).
    pub blob: Option<StagedBlob>,
    /// The step's upper dir, taken over as the unpacked layer (as root); the
    /// store unpacks the blob instead when this is `None`.
    pub dir: Option<StagedLayer>,
    /// Keeps garbage collection from removing a blob this layer relies on
    /// before the image is recorded.
    _lock: StoreLock,
}

impl LayerOut {
    /// A layer the store holds already (its blob is `diff_id`, uncompressed),
    /// to be committed again on another parent.
    pub(crate) fn stored(store: &Store, diff_id: Digest, size: u64) -> Result<LayerOut, BuildError> {
        let lock = store.write_lock().map_err(|e| store_err("locking the store", e))?;
        Ok(LayerOut {
            diff_id,
            size,
            blob: None,
            dir: None,
            _lock: lock,
        })
    }
}

/// The `created` time of new configs and history entries: the
/// SOURCE_DATE_EPOCH when given (reproducible), else now.
pub(crate) fn created_time(epoch: Option<i64>) -> String {
    match epoch.and_then(|e| chrono::DateTime::from_timestamp(e, 0)) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => berth_store::config::rfc3339_go(chrono::Utc::now()),
    }
}

/// A file in the store's staging dir, removed on drop unless kept.
struct StagedFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Diff a step's upper dir (`exclude`: paths left out of the layer) into a
/// staged layer. Where it can be, the upper dir itself becomes the unpacked
/// layer and the tar is only hashed, never written: the store makes the
/// blob from the layer directory when something reads it (a lazy blob, see
/// `berth_store::layers`). Otherwise (rootless, or the dir could not be
/// prepared or moved) the tar is staged as the blob, which the store
/// unpacks. `None` when nothing changed (no entries). Consumes the upper
/// dir when it is adopted.
pub(crate) fn diff_upper(
    store: &Store,
    upper: &Path,
    epoch: Option<i64>,
    exclude: Vec<String>,
) -> Result<Option<LayerOut>, BuildError> {
    let lock = store.write_lock().map_err(|e| store_err("locking the store", e))?;
    let adopt = layer_dir::adoptable()
        && match layer_dir::prepare(upper, &exclude, epoch) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("{}: not adopted as a layer ({e}); it will be unpacked", upper.display());
                false
            }
        };
    let opts = DiffOptions {
        source_date_epoch: epoch,
        overlay_whiteouts: true,
        exclude,
        ..Default::default()
    };
    if adopt {
        // Only the diff ID and size: the directory is the layer.
        let d = write_layer(upper, std::io::sink(), &opts).map_err(|e| store_err("writing the step's layer", e))?;
        let Some(diff_id) = diff_id_of(&d)? else {
            return Ok(None);
        };
        match store.adopt_layer_dir(upper, diff_id.clone(), d.size) {
            Ok(l) => {
                return Ok(Some(LayerOut {
                    diff_id,
                    size: d.size,
                    blob: None,
                    dir: Some(l),
                    _lock: lock,
                }))
            }
            Err(e) => {
                // Left where it was: write the tar after all.
                log::debug!("{}: not adopted as a layer ({e}); it will be unpacked", upper.display());
            }
        }
    }
    let staged = StagedFile {
        path: store
            .staging()
            .path("build-layer")
            .map_err(|e| store_err("staging a layer", e))?,
        keep: false,
    };
    let path = staged.path.clone();
    let io = |e: std::io::Error| store_err(&format!("staging a layer: {}", path.display()), e);
    let mut file = berth_archive::perms::create_new(&staged.path, berth_archive::perms::PRIVATE_FILE).map_err(io)?;
    // write_layer hands the file 1 MiB chunks and hashes on a second thread.
    let d = write_layer(upper, &mut file, &opts).map_err(|e| store_err("writing the step's layer", e))?;
    let Some(diff_id) = diff_id_of(&d)? else {
        return Ok(None); // the staged file goes
    };
    // An unchanged step (a --no-cache rebuild) makes a blob the store has:
    // no need to make this copy durable.
    let blob = if store.blobs().contains(&diff_id) {
        None
    } else {
        file.sync_all().map_err(io)?;
        let mut staged = staged;
        staged.keep = true;
        Some(store.blobs().adopt_staged(path.clone(), diff_id.clone(), d.size))
    };
    drop(file);
    Ok(Some(LayerOut {
        diff_id,
        size: d.size,
        blob,
        dir: None,
        _lock: lock,
    }))
}

/// The diff ID of a layer `write_layer` went through; `None` when it has
/// no entries (the step changed nothing).
fn diff_id_of(d: &Diffed) -> Result<Option<Digest>, BuildError> {
    if d.entries == 0 {
        return Ok(None);
    }
    Digest::parse(&d.diff_id)
        .map(Some)
        .map_err(|e| store_err("layer digest", e))
}

/// The layers of an image as `NewLayer`s that are already stored.
pub(crate) fn stored_layers(store: &Store, image: &Digest) -> Result<Vec<NewLayer>, BuildError> {
    let rec = store
        .image(image)
        .map_err(|e| store_err("reading the parent image", e))?;
    store
        .image_layers(&rec)
        .map_err(|e| store_err("reading the parent image's layers", e))
}

/// Commit a step: `config` is the parent's config with the step's changes
/// applied; this adds the created time, the history entry and the layer.
pub(crate) fn commit_step(
    store: &Store,
    lease: &berth_store::Lease<'_>,
    parent: Option<&Digest>,
    config: ImageConfig,
    layer: Option<LayerOut>,
    created_by: &str,
    epoch: Option<i64>,
) -> Result<(Digest, ImageConfig), BuildError> {
    let layer = layer.map(|l| NewLayer {
        diff_id: l.diff_id.clone(),
        blob: l.diff_id.clone(),
        media_type: MEDIA_OCI_LAYER.to_string(),
        blob_size: l.size,
        size: l.size,
        staged_blob: l.blob,
        staged_dir: l.dir,
    });
    commit_step_layers(
        store,
        lease,
        parent,
        config,
        vec![(created_by.to_string(), layer)],
        epoch,
    )
}

/// [`commit_step`] for a step that adds several layers (or none): one
/// history entry per `(created_by, layer)`, `empty_layer` where `None`.
pub(crate) fn commit_step_layers(
    store: &Store,
    lease: &berth_store::Lease<'_>,
    parent: Option<&Digest>,
    mut config: ImageConfig,
    entries: Vec<(String, Option<NewLayer>)>,
    epoch: Option<i64>,
) -> Result<(Digest, ImageConfig), BuildError> {
    let created = created_time(epoch);
    let mut layers = match parent {
        Some(p) => stored_layers(store, p)?,
        None => Vec::new(),
    };
    config.created = Some(created.clone());
    for (created_by, layer) in entries {
        config.history.push(History {
            created: Some(created.clone()),
            created_by: Some(created_by),
            author: None,
            comment: None,
            empty_layer: layer.is_none(),
        });
        if let Some(l) = layer {
            config.rootfs.diff_ids.push(l.diff_id.to_string());
            layers.push(l);
        }
    }
    let bytes = config.to_bytes();
    // Held from before it exists: a prune beside the build never sees it
    // unleased (dangling, as step images are).
    lease
        .hold(berth_store::LeaseKind::Image, &Digest::of_bytes(&bytes))
        .map_err(|e| store_err("leasing the step's image", e))?;
    let rec = store
        .commit_image(NewImage {
            config: bytes,
            layers,
            parent: parent.cloned(),
            tags: Vec::new(),
            repo_digests: Vec::new(),
            manifest: None,
        })
        .map_err(|e| store_err("committing the step's image", e))?;
    Ok((rec.id, config))
}

/// The config a `FROM scratch` stage starts from.
pub(crate) fn scratch_config(platform: &[String; 3]) -> ImageConfig {
    ImageConfig {
        os: platform[0].clone(),
        architecture: platform[1].clone(),
        variant: Some(platform[2].clone()).filter(|v| !v.is_empty()),
        ..Default::default()
    }
}

/// An image of `parent`'s layers and history with `config` (which differs
/// only in its platform fields): no step of its own.
pub(crate) fn commit_config(store: &Store, parent: &Digest, config: &ImageConfig) -> Result<Digest, BuildError> {
    let rec = store
        .commit_image(NewImage {
            config: config.to_bytes(),
            layers: stored_layers(store, parent)?,
            parent: Some(parent.clone()),
            tags: Vec::new(),
            repo_digests: Vec::new(),
            manifest: None,
        })
        .map_err(|e| store_err("committing the image for the target platform", e))?;
    Ok(rec.id)
}

/// `--annotation`: the image's manifest with these annotations added (its
/// config and layers unchanged, so the image ID stays).
pub(crate) fn annotate_manifest(
    store: &Store,
    id: &Digest,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<(), BuildError> {
    let rec = store.image(id).map_err(|e| store_err("reading the image", e))?;
    let bytes = store
        .blobs()
        .read(&rec.manifest)
        .map_err(|e| store_err("reading the image's manifest", e))?;
    let mut m: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| store_err("reading the image's manifest", e))?;
    if !m["annotations"].is_object() {
        m["annotations"] = serde_json::json!({});
    }
    for (k, v) in annotations {
        m["annotations"][k] = serde_json::Value::String(v.clone());
    }
    let bytes = serde_json::to_vec(&m).map_err(|e| store_err("writing the image's manifest", e))?;
    store
        .set_image_manifest(id, &bytes)
        .map_err(|e| store_err("recording the image's manifest", e))?;
    Ok(())
}
