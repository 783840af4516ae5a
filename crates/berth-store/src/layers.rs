//! Unpacked layers: `layers/<chain-id hex>/diff`, each unpacked once by
//! `berth-archive` into a staged directory and renamed into place. A layer
//! directory is read-only to everything but this module and is shared by
//! every image and container that stands on it.
//!
//! A layer a build step made is recorded with its uncompressed tar as its
//! blob (blob = diff ID), but that blob is not written: the step's upper
//! dir became the layer directory, and the tar is made again from it, and
//! checked against the diff ID, the first time something reads the blob
//! ([`Store::layer_blob_by_digest`]). Such a blob is *lazy*; everything that reads a
//! layer blob goes through the methods here, never `blobs()` directly.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_archive::{apply_layer, write_layer, ApplyOptions, DiffOptions};
use rusqlite::{params, OptionalExtension};

use crate::blobs::WritebackFile;
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

    /// Apply a layer stream (any compression) into a fresh staged directory.
    /// `what` names the layer in errors.
    pub fn stage_layer<R: Read>(&self, input: R, what: &str) -> Result<StagedLayer> {
        let dir = self.staging().path("layer")?;
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
        let staged = self.staging().path("layer")?;
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

    /// The first chain ID (in order) of a layer with this diff ID whose
    /// directory exists.
    pub(crate) fn layer_dir_for_diff(&self, diff_id: &Digest) -> Result<Option<Digest>> {
        let chains: Vec<String> = {
            let db = self.db();
            let mut st = db.prepare_cached("SELECT chain_id FROM layers WHERE diff_id = ?1 ORDER BY chain_id")?;
            let rows = st.query_map(params![diff_id.as_str()], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for c in chains {
            let c = Digest::parse(&c)?;
            if self.has_layer_dir(&c) {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Whether the layer blob `blob` can be read: it is stored, or it is
    /// the uncompressed tar of a layer whose directory the store has (a
    /// lazy blob, made on first read).
    pub fn has_layer_blob(&self, blob: &Digest) -> Result<bool> {
        Ok(self.blobs().contains(blob) || self.layer_dir_for_diff(blob)?.is_some())
    }

    /// The path of the layer blob `blob` (as a manifest names it), made
    /// first if it is the lazy tar of a layer the store has unpacked.
    pub fn layer_blob_by_digest(&self, blob: &Digest) -> Result<PathBuf> {
        let path = self.blobs().path(blob);
        if path.exists() {
            return Ok(path);
        }
        match self.layer_dir_for_diff(blob)? {
            Some(chain) => self.materialize_layer_blob(&chain, blob),
            None => Err(StoreError::BlobNotFound(blob.to_string())),
        }
    }

    /// Open the layer blob `blob` for reading (made first if lazy).
    pub fn open_layer_blob(&self, blob: &Digest) -> Result<File> {
        let path = self.layer_blob_by_digest(blob)?;
        File::open(&path).ctx("opening blob", path)
    }

    /// Write the tar of `layers/<chain>/diff` as the blob `diff_id`: staged,
    /// synced, proven to be `diff_id`, then renamed into `blobs/`. A tree
    /// that no longer gives `diff_id` is an error and stores nothing.
    fn materialize_layer_blob(&self, chain: &Digest, diff_id: &Digest) -> Result<PathBuf> {
        // As every writer: garbage collection waits until the blob is in.
        let _lock = self.write_lock()?;
        let target = self.blobs().path(diff_id);
        if target.exists() {
            return Ok(target); // another process made it meanwhile
        }
        let dir = self.layer_dir(chain);
        let staging = self.staging().path("lazy-layer")?;
        let file = File::create(&staging).ctx("creating staged blob", &staging)?;
        // Removed on any error below; committed once proven.
        let mut staged = self.blobs().adopt_staged(staging.clone(), diff_id.clone(), 0);
        let mut out = WritebackFile { file, written: 0 };
        // The directory was made exactly what unpacking the build's tar
        // gives (excludes removed, mtimes whole seconds already clamped to
        // SOURCE_DATE_EPOCH), so these options give the same tar: clamping
        // again would change nothing.
        let opts = DiffOptions {
            overlay_whiteouts: true,
            ..Default::default()
        };
        let d = write_layer(&dir, &mut out, &opts).map_err(|source| StoreError::Layer {
            layer: chain.to_string(),
            source,
        })?;
        let actual = Digest::parse(&d.diff_id)?;
        if actual != *diff_id {
            return Err(StoreError::LayerDirMismatch {
                chain: chain.to_string(),
                expected: diff_id.to_string(),
                actual: actual.to_string(),
            });
        }
        out.file.sync_all().ctx("syncing blob", &staging)?;
        drop(out);
        staged.size = d.size;
        staged.commit()?;
        log::debug!("layer {chain}: made its blob {diff_id} ({} bytes)", d.size);
        Ok(target)
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
            if let Some(doomed) = doomed.ok().filter(|d| fs::rename(&p, d).is_ok()) {
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
    use std::io;

    /// A store, and a build's upper dir in it holding `app/f` = "hello".
    fn store_with_upper(t: &tempfile::TempDir) -> (Store, std::path::PathBuf) {
        let store = Store::open(&t.path().join("root")).unwrap();
        let dir = store.root().join("build-upper");
        fs::create_dir_all(dir.join("app")).unwrap();
        fs::write(dir.join("app/f"), b"hello").unwrap();
        (store, dir)
    }

    /// Rewrites a file and puts its mtime back, as a change that a stat
    /// check cannot see.
    fn rewrite_keeping_mtime(f: &Path, content: &[u8]) {
        let before = fs::metadata(f).unwrap().modified().unwrap();
        fs::write(f, content).unwrap();
        fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(before)
            .unwrap();
    }

    #[test]
    fn adopted_dir_is_published_as_the_layer() {
        let t = tempfile::tempdir().unwrap();
        let (store, dir) = store_with_upper(&t);
        let diff_id = Digest::of_bytes(b"not checked");
        let staged = store.adopt_layer_dir(&dir, diff_id.clone(), 5).unwrap();
        assert!(!dir.exists(), "the directory moved");
        assert_eq!(fs::read(staged.diff_dir().join("app/f")).unwrap(), b"hello");
        let chain = chain_ids(std::slice::from_ref(&diff_id)).remove(0);
        store.publish_layer(staged, &chain).unwrap();
        assert_eq!(fs::read(store.layer_dir(&chain).join("app/f")).unwrap(), b"hello");
    }

    /// An adopted layer recorded without its blob: the blob is made on
    /// first read and proven; a damaged directory gives an error and no blob.
    #[test]
    fn a_lazy_blob_is_made_from_the_layer_dir_and_checked() {
        use crate::images::{NewImage, NewLayer, MEDIA_OCI_LAYER};
        let t = tempfile::tempdir().unwrap();
        let (store, dir) = store_with_upper(&t);
        let opts = DiffOptions {
            overlay_whiteouts: true,
            ..Default::default()
        };
        let d = write_layer(&dir, io::sink(), &opts).unwrap();
        let diff_id = Digest::parse(&d.diff_id).unwrap();
        let staged = store.adopt_layer_dir(&dir, diff_id.clone(), d.size).unwrap();
        let config =
            format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#);
        let img = store
            .commit_image(NewImage {
                config: config.into_bytes(),
                layers: vec![NewLayer {
                    diff_id: diff_id.clone(),
                    blob: diff_id.clone(),
                    media_type: MEDIA_OCI_LAYER.to_string(),
                    blob_size: d.size,
                    size: d.size,
                    staged_blob: None,
                    staged_dir: Some(staged),
                }],
                parent: None,
                tags: Vec::new(),
                repo_digests: Vec::new(),
                manifest: None,
            })
            .unwrap();
        assert!(!store.blobs().contains(&diff_id), "the blob is not written");
        assert!(store.has_layer_blob(&diff_id).unwrap());
        let rec = store.layer(&img.layers[0]).unwrap().unwrap();
        // gc keeps the layer and does not mind the missing blob.
        store.gc().unwrap();
        assert!(store.has_layer_dir(&rec.chain_id));

        // Damaged: refused, nothing stored, nothing left in staging.
        let f = store.layer_dir(&rec.chain_id).join("app/f");
        rewrite_keeping_mtime(&f, b"hellO");
        let e = store.layer_blob_by_digest(&rec.blob).unwrap_err();
        assert!(matches!(e, StoreError::LayerDirMismatch { .. }), "{e}");
        assert!(e.to_string().contains("--no-cache"), "{e}");
        assert!(!store.blobs().contains(&diff_id));
        let left: Vec<_> = fs::read_dir(store.staging().dir().unwrap()).unwrap().collect();
        assert!(left.is_empty(), "staging keeps nothing: {left:?}");

        // Repaired: made, and it is the tar the diff ID names.
        rewrite_keeping_mtime(&f, b"hello");
        let p = store.layer_blob_by_digest(&rec.blob).unwrap();
        assert_eq!(Digest::of_bytes(&fs::read(&p).unwrap()), diff_id);
        assert_eq!(store.layer_blob_by_digest(&diff_id).unwrap(), p);
    }

    #[test]
    fn failed_adoption_leaves_the_directory_and_no_staging() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("root")).unwrap();
        let missing = t.path().join("nope");
        assert!(store.adopt_layer_dir(&missing, Digest::of_bytes(b""), 0).is_err());
        let left: Vec<_> = fs::read_dir(store.staging().dir().unwrap()).unwrap().collect();
        assert!(left.is_empty(), "staging keeps nothing: {left:?}");
    }
}
