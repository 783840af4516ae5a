//! Step images: the parent's config with the step's changes, one more
//! history entry (`empty_layer` when the step added no files), the parent's
//! layers plus the step's own, recorded with the parent link so `berth
//! history` and the failure report can walk back.

use std::path::Path;

use berth_archive::{write_layer, DiffOptions};
use berth_store::images::MEDIA_OCI_LAYER;
use berth_store::{Digest, History, ImageConfig, NewImage, NewLayer, StagedBlob, Store};

use super::{store_err, BuildError};

/// A layer a step wrote, staged until its image is committed.
pub(crate) struct LayerOut {
    pub diff_id: Digest,
    pub size: u64,
    pub blob: StagedBlob,
}

/// The `created` time of new configs and history entries: the
/// SOURCE_DATE_EPOCH when given (reproducible), else now.
pub(crate) fn created_time(epoch: Option<i64>) -> String {
    match epoch.and_then(|e| chrono::DateTime::from_timestamp(e, 0)) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    }
}

/// Diff a step's upper dir into a staged layer blob; `None` when nothing
/// changed (no entries).
pub(crate) fn diff_upper(
    store: &Store,
    upper: &Path,
    epoch: Option<i64>,
    exclude: Vec<String>,
) -> Result<Option<LayerOut>, BuildError> {
    let mut w = store
        .blob_writer("build-layer")
        .map_err(|e| store_err("staging a layer", e))?;
    let opts = DiffOptions {
        source_date_epoch: epoch,
        overlay_whiteouts: true,
        exclude,
        ..Default::default()
    };
    let d = write_layer(upper, &mut w, &opts).map_err(|e| store_err("writing the step's layer", e))?;
    if d.entries == 0 {
        return Ok(None); // the writer is dropped: its staged file goes
    }
    let blob = w.finish().map_err(|e| store_err("staging a layer", e))?;
    let diff_id = Digest::parse(&d.diff_id).map_err(|e| store_err("layer digest", e))?;
    Ok(Some(LayerOut {
        diff_id,
        size: d.size,
        blob,
    }))
}

/// The layers of an image as `NewLayer`s that are already stored.
pub(crate) fn stored_layers(store: &Store, image: &Digest) -> Result<Vec<NewLayer>, BuildError> {
    let rec = store
        .image(image)
        .map_err(|e| store_err("reading the parent image", e))?;
    let mut out = Vec::with_capacity(rec.layers.len());
    for chain in &rec.layers {
        let l = store
            .layer(chain)
            .map_err(|e| store_err("reading a layer record", e))?
            .ok_or_else(|| BuildError::other(format!("layer {chain} of image {image} is not in the store")))?;
        out.push(NewLayer {
            diff_id: l.diff_id,
            blob: l.blob,
            media_type: l.media_type,
            blob_size: l.blob_size,
            size: l.size,
            staged_blob: None,
            staged_dir: None,
        });
    }
    Ok(out)
}

/// Commit a step: `config` is the parent's config with the step's changes
/// applied; this adds the created time, the history entry and the layer.
pub(crate) fn commit_step(
    store: &Store,
    parent: Option<&Digest>,
    mut config: ImageConfig,
    layer: Option<LayerOut>,
    created_by: &str,
    epoch: Option<i64>,
) -> Result<(Digest, ImageConfig), BuildError> {
    let created = created_time(epoch);
    let mut layers = match parent {
        Some(p) => stored_layers(store, p)?,
        None => Vec::new(),
    };
    config.created = Some(created.clone());
    config.history.push(History {
        created: Some(created),
        created_by: Some(created_by.to_string()),
        author: None,
        comment: None,
        empty_layer: layer.is_none(),
    });
    if let Some(l) = layer {
        config.rootfs.diff_ids.push(l.diff_id.to_string());
        layers.push(NewLayer {
            diff_id: l.diff_id.clone(),
            blob: l.blob.digest.clone(),
            media_type: MEDIA_OCI_LAYER.to_string(),
            blob_size: l.blob.size,
            size: l.size,
            staged_blob: Some(l.blob),
            staged_dir: None,
        });
    }
    let bytes = config.to_bytes();
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
pub(crate) fn scratch_config(platform: Option<&str>) -> ImageConfig {
    let p = super::predefined_args(platform);
    ImageConfig {
        architecture: p["TARGETARCH"].clone(),
        os: p["TARGETOS"].clone(),
        variant: Some(p["TARGETVARIANT"].clone()).filter(|v| !v.is_empty()),
        ..Default::default()
    }
}
