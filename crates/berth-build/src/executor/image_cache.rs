//! The classic builder's `--cache-from IMAGE` (`/build?cachefrom=`): images
//! in the store, pulled or loaded from elsewhere, whose history serves as a
//! cache. Their step images are not in this store and their step keys are
//! unknown (a saved image carries only its history), so a step is matched
//! as Docker's classic builder matches it: the source's history begins
//! with the parent image's history and layers, and its next entry was made
//! by the same instruction (the same history text). Then the step is taken
//! from the source: the last entry is the source image itself; an earlier
//! one becomes an image of the parent plus that entry and its layer.
//!
//! The history text is all there is to match, so only steps whose text
//! holds every input may match: RUN without `--mount`, `--network` or
//! `--security` (its text holds the build args in effect), COPY/ADD
//! without `--chown`, `--chmod`, `--exclude` or `--parents` (its text holds
//! the content's digest), and the metadata instructions.

use berth_store::{Digest, History, ImageConfig, NewImage, NewLayer};

use super::commit::stored_layers;
use super::{store_err, BuildError, Builder};

/// An image named in `cache_from_images`, as found when the build began.
pub(crate) struct CacheSource {
    id: Digest,
    config: ImageConfig,
    /// Its layers, in `config.rootfs.diff_ids` order.
    layers: Vec<NewLayer>,
}

/// What a step adds to its parent, for matching against the sources: its
/// history text and the config it makes.
pub(crate) struct ClassicStep {
    pub created_by: String,
    pub config: ImageConfig,
}

/// The sources of `opts.cache_from_images`, held by the build's lease. A
/// name the store does not hold is skipped, as Docker's daemon skips it
/// (with a line in its log, not the client's).
pub(crate) fn sources(b: &Builder<'_>) -> Vec<CacheSource> {
    let mut out = Vec::new();
    for name in &b.opts.cache_from_images {
        let found = super::stage::lease_resolved(b, name).and_then(|rec| {
            let config = b.store.image_config(&rec.id)?;
            let layers = b.store.image_layers(&rec)?;
            Ok(CacheSource {
                id: rec.id,
                config,
                layers,
            })
        });
        match found {
            Ok(s) if s.layers.len() == s.config.rootfs.diff_ids.len() => out.push(s),
            Ok(_) => log::warn!("cache-from {name}: its layers do not match its config; skipped"),
            Err(e) => log::warn!("cache-from {name}: {e}; skipped"),
        }
    }
    out
}

/// Where `source` continues `parent` with `created_by`: the index of that
/// history entry, or None.
fn continues(source: &ImageConfig, parent: &ImageConfig, created_by: &str) -> Option<usize> {
    let (sh, ph) = (&source.history, &parent.history);
    let (sd, pd) = (&source.rootfs.diff_ids, &parent.rootfs.diff_ids);
    if sh.len() <= ph.len() || sh[..ph.len()] != ph[..] || !sd.starts_with(pd) {
        return None;
    }
    (sh[ph.len()].created_by.as_deref() == Some(created_by)).then_some(ph.len())
}

/// The step's image from a cache source, committed when it is not the
/// source itself; None when no source continues the parent this way.
pub(crate) fn find(
    b: &Builder<'_>,
    parent: Option<&Digest>,
    parent_config: &ImageConfig,
    step: &ClassicStep,
) -> Result<Option<(Digest, ImageConfig)>, BuildError> {
    for s in &b.cache_sources {
        let Some(i) = continues(&s.config, parent_config, &step.created_by) else {
            continue;
        };
        if i + 1 == s.config.history.len() {
            return Ok(Some((s.id.clone(), s.config.clone())));
        }
        let entry = s.config.history[i].clone();
        let layer = if entry.empty_layer {
            None
        } else {
            let n = s.config.history[..i].iter().filter(|h| !h.empty_layer).count();
            match s.layers.get(n) {
                Some(l) => Some(NewLayer {
                    diff_id: l.diff_id.clone(),
                    blob: l.blob.clone(),
                    media_type: l.media_type.clone(),
                    blob_size: l.blob_size,
                    size: l.size,
                    staged_blob: None,
                    staged_dir: None,
                }),
                None => continue,
            }
        };
        return commit_entry(b, parent, step.config.clone(), entry, layer).map(Some);
    }
    Ok(None)
}

/// An image of `parent` plus one history entry taken as it is (its time
/// too, so the same source gives the same images every time) and its layer.
fn commit_entry(
    b: &Builder<'_>,
    parent: Option<&Digest>,
    mut config: ImageConfig,
    entry: History,
    layer: Option<NewLayer>,
) -> Result<(Digest, ImageConfig), BuildError> {
    let mut layers = match parent {
        Some(p) => stored_layers(b.store, p)?,
        None => Vec::new(),
    };
    config.created = entry.created.clone();
    config.history.push(entry);
    if let Some(l) = layer {
        config.rootfs.diff_ids.push(l.diff_id.to_string());
        layers.push(l);
    }
    let bytes = config.to_bytes();
    b.lease
        .hold(berth_store::LeaseKind::Image, &Digest::of_bytes(&bytes))
        .map_err(|e| store_err("leasing the step's image", e))?;
    let rec = b
        .store
        .commit_image(NewImage {
            config: bytes,
            layers,
            parent: parent.cloned(),
            tags: Vec::new(),
            repo_digests: Vec::new(),
            manifest: None,
        })
        .map_err(|e| store_err("committing a step from a cache image", e))?;
    Ok((rec.id, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(by: &str, empty: bool) -> History {
        History {
            created: Some("2026-01-01T00:00:00Z".into()),
            created_by: Some(by.into()),
            empty_layer: empty,
            ..Default::default()
        }
    }

    fn cfg(history: Vec<History>, diff_ids: &[&str]) -> ImageConfig {
        ImageConfig {
            history,
            rootfs: berth_store::config::RootFs {
                kind: "layers".into(),
                diff_ids: diff_ids.iter().map(|d| d.to_string()).collect(),
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_source_continues_a_parent_with_the_same_history_and_layers() {
        let base = cfg(vec![h("ADD file:1 in /", false)], &["sha256:a"]);
        let src = cfg(
            vec![h("ADD file:1 in /", false), h("ENV A=1", true), h("RUN make", false)],
            &["sha256:a", "sha256:b"],
        );
        assert_eq!(continues(&src, &base, "ENV A=1"), Some(1));
        assert_eq!(continues(&src, &base, "ENV A=2"), None, "another instruction");
        let mut other_base = base.clone();
        other_base.rootfs.diff_ids = vec!["sha256:z".into()];
        assert_eq!(continues(&src, &other_base, "ENV A=1"), None, "another parent");
        let mut later = base.clone();
        later.history[0].created = Some("2027-01-01T00:00:00Z".into());
        assert_eq!(continues(&src, &later, "ENV A=1"), None, "another history");
        assert_eq!(continues(&src, &src, "RUN make"), None, "nothing after its end");
        // FROM scratch: any source's first entry.
        assert_eq!(continues(&src, &ImageConfig::default(), "ADD file:1 in /"), Some(0));
    }
}
