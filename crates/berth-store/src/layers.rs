//! Unpacked layers: `layers/<chain-id hex>/diff`, each unpacked once by
//! `berth-archive` into a staged directory and renamed into place. A layer
//! directory is read-only to everything but this module and is shared by
//! every image and container that stands on it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_archive::{apply_layer, ApplyOptions};
use rusqlite::{params, OptionalExtension};

use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::staging::remove_tree;
use crate::Store;

#[derive(Clone, Debug)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    pub size: u64,
    pub blob: Digest,
    pub media_type: String,
    pub blob_size: u64,
}

/// A layer applied into a staged directory, not yet visible.
pub struct StagedLayer {
    pub diff_id: Digest,
    pub size: u64,
    dir: PathBuf,
}

impl StagedLayer {
    /// The staged `diff` directory (the layer's files).
    pub fn diff_dir(&self) -> PathBuf {
        self.dir.join("diff")
    }
}

impl Drop for StagedLayer {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            remove_tree(&self.dir);
        }
    }
}

impl Store {
    /// `layers/<hex>` — the layer's own directory.
    pub fn layer_path(&self, chain: &Digest) -> PathBuf {
        self.root().join("layers").join(chain.hex())
    }

    /// The directory overlayfs uses as a lower dir.
    pub fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.layer_path(chain).join("diff")
    }

    pub fn has_layer_dir(&self, chain: &Digest) -> bool {
        self.layer_path(chain).join("diff").is_dir()
    }

    pub fn layer(&self, chain: &Digest) -> Result<Option<LayerRecord>> {
        let db = self.db();
        let row = db
            .query_row(
                "SELECT chain_id, diff_id, parent, size, blob, media_type, blob_size FROM layers WHERE chain_id = ?1",
                params![chain.as_str()],
                row_to_layer,
            )
            .optional()?;
        row.transpose()
    }

    /// Layer records by diff ID (any chain): used to find a blob for a diff ID.
    pub fn layer_by_diff_id(&self, diff_id: &Digest) -> Result<Option<LayerRecord>> {
        let db = self.db();
        let row = db
            .query_row(
                "SELECT chain_id, diff_id, parent, size, blob, media_type, blob_size FROM layers WHERE diff_id = ?1 LIMIT 1",
                params![diff_id.as_str()],
                row_to_layer,
            )
            .optional()?;
        row.transpose()
    }

    /// Apply a layer stream (any compression) into a fresh staged directory.
    /// `what` names the layer in errors.
    pub fn stage_layer<R: Read>(&self, input: R, what: &str) -> Result<StagedLayer> {
        let dir = self.staging().path("layer");
        let diff = dir.join("diff");
        fs::create_dir_all(&diff).ctx("creating staged layer", &diff)?;
        let mut staged = StagedLayer {
            diff_id: Digest::of_bytes(b""),
            size: 0,
            dir,
        };
        let opts = ApplyOptions::for_current_user();
        let applied = apply_layer(input, &diff, &opts).map_err(|source| StoreError::Layer {
            layer: what.to_string(),
            source,
        })?;
        staged.diff_id = Digest::parse(&applied.diff_id)?;
        staged.size = applied.size;
        Ok(staged)
    }

    /// Take over `dir`, a directory on the store's filesystem that holds
    /// exactly what [`stage_layer`](Self::stage_layer) would unpack from the
    /// layer tar with `diff_id` and `size` (the files of a build step's
    /// upper dir, diffed into that tar): it is renamed into the staging area
    /// as the staged layer's `diff`, so the tar is never unpacked again.
    /// The caller vouches for the match; nothing is checked here. On error
    /// `dir` is left where it was.
    pub fn adopt_layer_dir(&self, dir: &Path, diff_id: Digest, size: u64) -> Result<StagedLayer> {
        let staged = self.staging().path("layer");
        fs::create_dir(&staged).ctx("creating staged layer", &staged)?;
        let layer = StagedLayer {
            diff_id,
            size,
            dir: staged,
        };
        // Dropped on error: removes the (still empty) staged directory.
        fs::rename(dir, layer.diff_dir()).ctx("adopting a layer directory", dir)?;
        Ok(layer)
    }

    /// Make a staged layer visible as `layers/<chain>`; if another process
    /// got there first, keep theirs.
    pub(crate) fn publish_layer(&self, mut staged: StagedLayer, chain: &Digest) -> Result<()> {
        let target = self.layer_path(chain);
        if target.join("diff").is_dir() {
            return Ok(());
        }
        berth_archive::sync_tree(&staged.dir).map_err(|source| StoreError::Layer {
            layer: chain.to_string(),
            source,
        })?;
        match fs::rename(&staged.dir, &target) {
            Ok(()) => {
                staged.dir = PathBuf::new();
                Ok(())
            }
            // ENOTEMPTY / EEXIST: a concurrent unpack won the race.
            Err(_) if target.join("diff").is_dir() => Ok(()),
            Err(e) => Err(StoreError::Io {
                context: "publishing layer",
                path: target,
                source: e,
            }),
        }
    }

    pub fn list_layers(&self) -> Result<Vec<LayerRecord>> {
        let db = self.db();
        let mut st = db.prepare("SELECT chain_id, diff_id, parent, size, blob, media_type, blob_size FROM layers")?;
        let rows = st.query_map([], row_to_layer)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    /// Remove a layer directory (only called by gc).
    pub(crate) fn remove_layer_dir(&self, chain: &Digest) {
        let p = self.layer_path(chain);
        if p.exists() {
            // Rename first so a half-removed layer is never visible as present.
            let doomed = self.staging().path("doomed-layer");
            if fs::rename(&p, &doomed).is_ok() {
                remove_tree(&doomed);
            } else {
                remove_tree(&p);
            }
        }
    }
}

pub(crate) fn row_to_layer(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<LayerRecord>> {
    let chain: String = r.get(0)?;
    let diff: String = r.get(1)?;
    let parent: Option<String> = r.get(2)?;
    let size: i64 = r.get(3)?;
    let blob: String = r.get(4)?;
    let media_type: String = r.get(5)?;
    let blob_size: i64 = r.get(6)?;
    Ok((|| {
        Ok(LayerRecord {
            chain_id: Digest::parse(&chain)?,
            diff_id: Digest::parse(&diff)?,
            parent: parent.as_deref().map(Digest::parse).transpose()?,
            size: size as u64,
            blob: Digest::parse(&blob)?,
            media_type,
            blob_size: blob_size as u64,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::chain_ids;

    #[test]
    fn adopted_dir_is_published_as_the_layer() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("root")).unwrap();
        let dir = store.root().join("build-upper");
        fs::create_dir_all(dir.join("app")).unwrap();
        fs::write(dir.join("app/f"), b"hello").unwrap();
        let diff_id = Digest::of_bytes(b"not checked");
        let staged = store.adopt_layer_dir(&dir, diff_id.clone(), 5).unwrap();
        assert!(!dir.exists(), "the directory moved");
        assert_eq!(fs::read(staged.diff_dir().join("app/f")).unwrap(), b"hello");
        let chain = chain_ids(std::slice::from_ref(&diff_id)).remove(0);
        store.publish_layer(staged, &chain).unwrap();
        assert_eq!(fs::read(store.layer_dir(&chain).join("app/f")).unwrap(), b"hello");
    }

    #[test]
    fn failed_adoption_leaves_the_directory_and_no_staging() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("root")).unwrap();
        let missing = t.path().join("nope");
        assert!(store.adopt_layer_dir(&missing, Digest::of_bytes(b""), 0).is_err());
        let left: Vec<_> = fs::read_dir(store.staging().dir()).unwrap().collect();
        assert!(left.is_empty(), "staging keeps nothing: {left:?}");
    }
}
