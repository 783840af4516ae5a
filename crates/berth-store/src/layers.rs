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

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_archive::{apply_layer, perms, write_layer, ApplyOptions, DiffOptions};
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
    /// Bytes of the layer's uncompressed tar (what `save` writes).
    pub size: u64,
    /// Bytes of its files, as Docker shows a layer's size
    /// ([`berth_archive::tree_size`]).
    pub content_size: u64,
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

/// `ROOT/layers/<hex>`: where the layer whose chain ID has the hex digits
/// `chain_hex` lives in the store at `root` (its files in `diff/` below).
pub(crate) fn layer_path_in(root: &Path, chain_hex: &str) -> PathBuf {
    root.join("layers").join(chain_hex)
}

impl Store {
    /// `layers/<hex>` — the layer's own directory.
    pub fn layer_path(&self, chain: &Digest) -> PathBuf {
        layer_path_in(self.root(), chain.hex())
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
                "SELECT chain_id, diff_id, parent, size, blob, media_type, blob_size, content_size FROM layers WHERE chain_id = ?1",
                params![chain.as_str()],
                row_to_layer,
            )
            .optional()?;
        row.transpose()
    }

    /// The content size of the layer whose files are at `chain` (see
    /// [`LayerRecord::content_size`]): recorded, or counted from its
    /// directory when it is new.
    pub(crate) fn layer_content_size(&self, chain: &Digest) -> Result<u64> {
        let recorded: Option<i64> = self
            .db()
            .query_row(
                "SELECT content_size FROM layers WHERE chain_id = ?1",
                params![chain.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match recorded {
            Some(n) => n as u64,
            None => berth_archive::tree_size(&self.layer_dir(chain)),
        })
    }

    /// Apply a layer stream (any compression) into a fresh staged directory.
    /// `what` names the layer in errors.
    pub fn stage_layer<R: Read>(&self, input: R, what: &str) -> Result<StagedLayer> {
        let dir = self.staging().path("layer")?;
        let diff = dir.join("diff");
        perms::create_dir(&dir, perms::PRIVATE_DIR).ctx("creating staged layer", &dir)?;
        // The root of what a container on this layer sees.
        perms::create_dir(&diff, perms::CONTENT_DIR).ctx("creating staged layer", &diff)?;
        let mut staged = StagedLayer {
            diff_id: Digest::of_bytes(b""),
            size: 0,
            dir,
        };
        let opts = ApplyOptions {
            limits: self.layer_limits(),
            ..ApplyOptions::for_current_user()
        };
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
        perms::create_dir(&staged, perms::PRIVATE_DIR).ctx("creating staged layer", &staged)?;
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

    /// Where the files of the layer at `chain` (content `diff_id`) are, for
    /// an image whose lower layers are at `below`: `chain`'s own directory
    /// when it exists or the caller brings the files (`own_files`);
    /// otherwise the directory of a layer with the same diff ID under
    /// another stack. A layer directory holds that layer's files only (its
    /// whiteouts included), never its parents', so its content depends on
    /// the diff ID alone and every stack with that layer can share it: an
    /// image made of other images' layers unpacks nothing. One directory
    /// never serves two positions of an image (overlayfs refuses a lower
    /// dir given twice).
    pub fn layer_key(&self, chain: &Digest, diff_id: &Digest, own_files: bool, below: &[Digest]) -> Result<Digest> {
        if self.has_layer_dir(chain) || own_files {
            if below.contains(chain) {
                return Err(StoreError::Conflict(format!(
                    "layer {chain} would stand twice in one image"
                )));
            }
            return Ok(chain.clone());
        }
        Ok(self
            .layer_dirs_for_diff(diff_id)?
            .into_iter()
            .find(|k| !below.contains(k))
            .unwrap_or_else(|| chain.clone()))
    }

    /// Whether the store has the files of the layer `diff_id` at `chain`:
    /// its own directory or a shared one (see [`layer_key`](Self::layer_key)).
    pub fn has_layer_files(&self, chain: &Digest, diff_id: &Digest) -> Result<bool> {
        Ok(self.has_layer_dir(chain) || self.layer_dir_for_diff(diff_id)?.is_some())
    }

    /// Chain IDs (in order) of the layers with this diff ID whose directory exists.
    fn layer_dirs_for_diff(&self, diff_id: &Digest) -> Result<Vec<Digest>> {
        let chains: Vec<String> = {
            let db = self.db();
            let mut st = db.prepare_cached("SELECT chain_id FROM layers WHERE diff_id = ?1 ORDER BY chain_id")?;
            let rows = st.query_map(params![diff_id.as_str()], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut out = Vec::new();
        for c in chains {
            let c = Digest::parse(&c)?;
            if self.has_layer_dir(&c) {
                out.push(c);
            }
        }
        Ok(out)
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
        let file = perms::create_new(&staging, perms::PRIVATE_FILE).ctx("creating staged blob", &staging)?;
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
        let mut st = db
            .prepare("SELECT chain_id, diff_id, parent, size, blob, media_type, blob_size, content_size FROM layers")?;
        let rows = st.query_map([], row_to_layer)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    /// The layers that mounts of this mount namespace use as lower dirs
    /// (from `/proc/self/mountinfo`: overlay mounts' `lowerdir=` and
    /// `lowerdir+=` options).
    pub fn mounted_layers(&self) -> HashSet<Digest> {
        let layers = self.root().join("layers");
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut out = HashSet::new();
        for line in info.lines() {
            let Some((_, rest)) = line.split_once(" - ") else {
                continue;
            };
            let mut f = rest.split(' ');
            if f.next() != Some("overlay") {
                continue;
            }
            let opts = f.nth(1).unwrap_or("");
            for o in opts.split(',') {
                let Some(dirs) = o.strip_prefix("lowerdir=").or_else(|| o.strip_prefix("lowerdir+=")) else {
                    continue;
                };
                for d in dirs.split(':') {
                    let d = unescape_mountinfo(d);
                    let Ok(rel) = Path::new(&d).strip_prefix(&layers) else {
                        continue;
                    };
                    if let Some(c) = rel.iter().next().and_then(|c| c.to_str()) {
                        if let Ok(c) = Digest::from_hex(c) {
                            out.insert(c);
                        }
                    }
                }
            }
        }
        out
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

/// Undo mountinfo's octal escapes (`\040` for a space, …).
pub(crate) fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn row_to_layer(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<LayerRecord>> {
    let chain: String = r.get(0)?;
    let diff: String = r.get(1)?;
    let parent: Option<String> = r.get(2)?;
    let size: i64 = r.get(3)?;
    let blob: String = r.get(4)?;
    let media_type: String = r.get(5)?;
    let blob_size: i64 = r.get(6)?;
    let content_size: i64 = r.get(7)?;
    Ok((|| {
        Ok(LayerRecord {
            chain_id: Digest::parse(&chain)?,
            diff_id: Digest::parse(&diff)?,
            parent: parent.as_deref().map(Digest::parse).transpose()?,
            size: size as u64,
            content_size: content_size as u64,
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

    /// Every path under `dir`, sorted.
    fn tree(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    todo.push(e.path());
                }
                out.push(e.path());
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_layer_past_its_size_limit_leaves_the_store_as_it_was() {
        use std::io::Write;
        let t = tempfile::tempdir().unwrap();
        let mut store = Store::open(&t.path().join("root")).unwrap();
        store.set_layer_limits(berth_archive::Limits {
            max_size: 16 << 20,
            ..Default::default()
        });
        let _ = store.staging().dir().unwrap();
        let before = tree(store.root());
        // A gzip of a tar of 256 MiB of zeros: a few hundred KB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let mut h = tar::Header::new_gnu();
        h.set_path("zeros").unwrap();
        h.set_size(256 << 20);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        gz.write_all(h.as_bytes()).unwrap();
        for _ in 0..256 {
            gz.write_all(&[0u8; 1 << 20]).unwrap();
        }
        let bomb = gz.finish().unwrap();
        // As an import does: the raw input teed into a blob as it is applied.
        let mut w = store.blob_writer("import").unwrap();
        let e = match store.stage_layer(berth_archive::TeeReader::new(&bomb[..], &mut w), "imported tar") {
            Ok(_) => panic!("the bomb was applied"),
            Err(e) => e,
        };
        drop(w);
        assert!(e.to_string().contains("more than 16 MiB"), "{e}");
        assert!(e.to_string().contains("BERTH_MAX_LAYER_SIZE="), "{e}");
        assert_eq!(tree(store.root()), before, "the store changed");
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
