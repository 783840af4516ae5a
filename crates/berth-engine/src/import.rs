//! `berth import`: a root filesystem tar (plain, gzip or zstd) becomes a
//! one-layer image in a single pass — the raw bytes are hashed into a blob
//! while the same stream is unpacked into a staged layer.

use std::io::{Read, Write};

use crate::error::Result;
use anyhow::Context;
use berth_archive::TeeReader;
use berth_store::{Digest, History, ImageConfig, NewImage, NewLayer, Reference, RootFs};

use super::{now_rfc3339, Engine};

#[derive(Default, Debug)]
/// What `import` makes of a tar.
pub struct ImportOptions {
    /// The name to give the image.
    pub reference: Option<String>,
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=b` …).
    pub changes: Vec<String>,
    /// The history's comment (`-m`).
    pub message: Option<String>,
    /// `os/arch[/variant]`
    pub platform: Option<String>,
    /// What the history says it came from (`-`, a file name, a URL).
    pub source_name: String,
}

/// `--platform` → (os, architecture, variant) for an image config, this
/// host's when none is given (see [`berth_store::Platform::parse`]).
pub fn parse_platform(p: Option<&str>) -> Result<(String, String, Option<String>)> {
    let p = match p.filter(|p| !p.is_empty()) {
        Some(p) => berth_store::Platform::parse(p).map_err(|e| crate::EngineError::invalid(e.to_string()))?,
        None => berth_store::Platform::host(),
    };
    Ok((p.os, p.architecture, p.variant))
}

impl Engine {
    /// Download `url` into staging, then import it.
    pub fn import_url(&self, url: &str, opts: &ImportOptions) -> Result<Digest> {
        crate::off_runtime(|| self.import_url_here(url, opts))
    }

    fn import_url_here(&self, url: &str, opts: &ImportOptions) -> Result<Digest> {
        let path = self.store.staging().path("download")?;
        let result = (|| {
            let mut f = std::io::BufWriter::new(
                berth_archive::perms::create_new(&path, berth_archive::perms::PRIVATE_FILE)
                    .with_context(|| format!("staging {}", path.display()))?,
            );
            berth_registry::fetch::download(url, &mut f)?;
            f.flush()?;
            drop(f);
            let f = std::fs::File::open(&path)?;
            self.import(std::io::BufReader::with_capacity(1 << 20, f), opts)
        })();
        let _ = std::fs::remove_file(&path);
        result
    }

    /// Imports a root file system tar (plain, gzip or zstd) from `input` as a
    /// one-layer image; returns its ID.
    pub fn import<R: Read>(&self, input: R, opts: &ImportOptions) -> Result<Digest> {
        let target = opts.reference.as_deref().map(Reference::parse).transpose()?;
        let (os, architecture, variant) = parse_platform(opts.platform.as_deref())?;
        let mut changed = ImageConfig::default();
        super::changes::apply_changes(&mut changed, &opts.changes)?;

        let mut writer = self.store.blob_writer("import")?;
        let staged_layer = {
            let tee = TeeReader::new(input, &mut writer);
            self.store
                .stage_layer(tee, "imported tar")
                .context("importing the root filesystem")?
        };
        let staged_blob = writer.finish()?;
        let mut head = [0u8; 4];
        let n = std::fs::File::open(staged_blob.path())
            .and_then(|mut f| f.read(&mut head))
            .unwrap_or(0);
        let media_type = match berth_archive::sniff(&head[..n]) {
            berth_archive::Compression::Gzip => berth_store::images::MEDIA_OCI_LAYER_GZIP,
            berth_archive::Compression::Zstd => berth_store::images::MEDIA_OCI_LAYER_ZSTD,
            berth_archive::Compression::None => berth_store::images::MEDIA_OCI_LAYER,
        };
        let created = now_rfc3339();
        let comment = opts
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {}", opts.source_name));
        let config = ImageConfig {
            created: Some(created.clone()),
            author: None,
            architecture,
            os,
            variant,
            config: changed.config,
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![staged_layer.diff_id.to_string()],
            },
            history: vec![History {
                created: Some(created),
                comment: Some(comment),
                ..Default::default()
            }],
            extra: Default::default(),
        };
        let layer = NewLayer {
            diff_id: staged_layer.diff_id.clone(),
            blob: staged_blob.digest.clone(),
            media_type: media_type.to_string(),
            blob_size: staged_blob.size,
            size: staged_layer.size,
            staged_blob: Some(staged_blob),
            staged_dir: Some(staged_layer),
        };
        let rec = self.store.commit_image(NewImage {
            config: config.to_bytes(),
            layers: vec![layer],
            parent: None,
            tags: target.iter().map(|r| r.full()).collect(),
            repo_digests: vec![],
            manifest: None,
        })?;
        // dockerd's events for an import: the image, then its name.
        self.record_image_event("import", rec.id.as_str(), rec.id.as_str());
        if let Some(word) = opts.reference.as_deref() {
            self.record_image_event("tag", rec.id.as_str(), word);
        }
        Ok(rec.id)
    }
}
