//! Images and their names. An image is recorded in one transaction, after
//! its config, manifest, layer blobs and unpacked layers are durable. Names
//! are stored fully qualified (`docker.io/library/bb:latest`).

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};
use serde_json::json;

use crate::blobs::StagedBlob;
use crate::config::ImageConfig;
use crate::digest::{chain_ids, Digest};
use crate::error::{Result, StoreError};
use crate::layers::StagedLayer;
use crate::reference::Reference;
use crate::{now_unix, Store};

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

#[derive(Clone, Debug)]
pub struct ImageRecord {
    pub id: Digest,
    pub manifest: Digest,
    pub created: String,
    /// Bytes of its layers' tars.
    pub size: u64,
    /// Bytes of its layers' files: the size Docker shows for an image.
    pub content_size: u64,
    pub parent: Option<Digest>,
    pub added: i64,
    /// Chain IDs, bottom layer first.
    pub layers: Vec<Digest>,
    /// Fully qualified names, e.g. `docker.io/library/bb:latest`.
    pub tags: Vec<String>,
    pub repo_digests: Vec<String>,
}

/// One layer of an image being recorded.
pub struct NewLayer {
    pub diff_id: Digest,
    /// Digest, media type and size of the blob as stored.
    pub blob: Digest,
    pub media_type: String,
    pub blob_size: u64,
    /// Unpacked size.
    pub size: u64,
    /// The blob, if it is still staged (commit it with the image).
    pub staged_blob: Option<StagedBlob>,
    /// The unpacked layer, if it had to be unpacked.
    pub staged_dir: Option<StagedLayer>,
}

pub struct NewImage {
    pub config: Vec<u8>,
    pub layers: Vec<NewLayer>,
    pub parent: Option<Digest>,
    /// Full names to point at this image (moved from any other image).
    pub tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// A manifest to keep as it is (pulled or loaded OCI images).
    pub manifest: Option<Vec<u8>>,
}

impl Store {
    /// Record an image: commit staged blobs and layers, write config and
    /// manifest, then one transaction for the metadata.
    pub fn commit_image(&self, new: NewImage) -> Result<ImageRecord> {
        let _lock = self.write_lock()?;
        let config = ImageConfig::from_bytes(&new.config).map_err(|source| StoreError::BadConfig {
            digest: Digest::of_bytes(&new.config).to_string(),
            source,
        })?;
        let diff_ids: Vec<Digest> = config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<_>>()?;
        if diff_ids.len() != new.layers.len() {
            return Err(StoreError::Conflict(format!(
                "image config lists {} layers but {} were supplied",
                diff_ids.len(),
                new.layers.len()
            )));
        }
        for (i, (want, l)) in diff_ids.iter().zip(&new.layers).enumerate() {
            if *want != l.diff_id {
                return Err(StoreError::DigestMismatch {
                    what: format!("layer {} (diff ID)", i + 1),
                    expected: want.to_string(),
                    actual: l.diff_id.to_string(),
                });
            }
        }
        let chains = chain_ids(&diff_ids);
        // Where each layer's files are (the image's `layers`): its own chain's
        // directory, or one with the same content under another stack.
        let mut keys: Vec<Digest> = Vec::with_capacity(chains.len());
        let mut layer_rows = Vec::new();
        let mut descriptors = Vec::new();
        let mut total = 0u64;
        let mut content_total = 0u64;
        for (i, l) in new.layers.into_iter().enumerate() {
            let NewLayer {
                diff_id,
                blob,
                media_type,
                blob_size,
                size,
                staged_blob,
                staged_dir,
            } = l;
            let chain = &self.layer_key(&chains[i], &diff_id, staged_dir.is_some(), &keys)?;
            if let Some(sb) = staged_blob {
                sb.commit()?;
            } else if !self.blobs().contains(&blob) {
                // The uncompressed tar of a layer the store has (or is
                // given) unpacked need not be stored: it is made on demand.
                let lazy = blob == diff_id
                    && (staged_dir.is_some() || self.has_layer_dir(chain) || self.layer_dir_for_diff(&blob)?.is_some());
                if !lazy {
                    return Err(StoreError::BlobNotFound(blob.to_string()));
                }
            }
            if !self.has_layer_dir(chain) {
                match staged_dir {
                    Some(sd) => self.publish_layer(sd, chain)?,
                    None => {
                        // Unpack from the blob (made first if lazy).
                        let f = self.open_layer_blob(&blob)?;
                        let sd = self.stage_layer(
                            std::io::BufReader::with_capacity(1 << 20, f),
                            &format!("layer {}", i + 1),
                        )?;
                        if sd.diff_id != diff_id {
                            return Err(StoreError::DigestMismatch {
                                what: format!("layer {} ({})", i + 1, blob),
                                expected: diff_id.to_string(),
                                actual: sd.diff_id.to_string(),
                            });
                        }
                        self.publish_layer(sd, chain)?;
                    }
                }
            }
            total += size;
            let content = self.layer_content_size(chain)?;
            content_total += content;
            descriptors.push(json!({"mediaType": media_type, "digest": blob.as_str(), "size": blob_size}));
            layer_rows.push((
                chain.clone(),
                diff_id,
                keys.last().cloned(),
                size,
                content,
                blob,
                media_type,
                blob_size,
            ));
            keys.push(chain.clone());
        }
        let config_digest = self.put_blob(&new.config)?;
        let manifest_bytes = match new.manifest {
            Some(m) => m,
            None => serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_OCI_MANIFEST,
                "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest.as_str(), "size": new.config.len()},
                "layers": descriptors,
            }))
            .expect("manifest serialises"),
        };
        let manifest_digest = self.put_blob(&manifest_bytes)?;
        let created = config.created.clone().unwrap_or_default();
        let layers_json = serde_json::to_string(&keys.iter().map(|c| c.as_str()).collect::<Vec<_>>()).expect("json");
        {
            let mut db = self.db();
            let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for (chain, diff, parent, size, content, blob, mt, bsize) in &layer_rows {
                tx.execute(
                    "INSERT OR IGNORE INTO layers (chain_id, diff_id, parent, size, blob, media_type, blob_size, content_size) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                    params![chain.as_str(), diff.as_str(), parent.as_ref().map(|p| p.as_str()), *size as i64, blob.as_str(), mt, *bsize as i64, *content as i64],
                )?;
            }
            tx.execute(
                "INSERT INTO images (id, manifest, created, size, parent, added, layers, content_size) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)
                 ON CONFLICT(id) DO UPDATE SET manifest = excluded.manifest",
                params![
                    config_digest.as_str(),
                    manifest_digest.as_str(),
                    created,
                    total as i64,
                    new.parent.as_ref().map(|p| p.as_str()),
                    now_unix(),
                    layers_json,
                    content_total as i64
                ],
            )?;
            for t in &new.tags {
                crate::variants::forget(&tx, t)?;
                tx.execute(
                    "INSERT OR REPLACE INTO tags (name, image_id, added) VALUES (?1, ?2, ?3)",
                    params![t, config_digest.as_str(), now_unix()],
                )?;
            }
            for d in &new.repo_digests {
                tx.execute(
                    "INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?1, ?2)",
                    params![d, config_digest.as_str()],
                )?;
            }
            tx.commit()?;
        }
        self.image(&config_digest)
    }

    pub fn image(&self, id: &Digest) -> Result<ImageRecord> {
        self.images_where("WHERE i.id = ?1", &[id.as_str()])?
            .pop()
            .ok_or_else(|| StoreError::ImageNotFound(id.to_string()))
    }

    /// Gives image `id` the manifest `bytes` (the same config and layers,
    /// other annotations): stored as a blob, recorded as the image's.
    pub fn set_image_manifest(&self, id: &Digest, bytes: &[u8]) -> Result<ImageRecord> {
        let digest = self.put_blob(bytes)?;
        let n = self.db().execute(
            "UPDATE images SET manifest = ?1 WHERE id = ?2",
            params![digest.as_str(), id.as_str()],
        )?;
        if n == 0 {
            return Err(StoreError::ImageNotFound(id.to_string()));
        }
        self.image(id)
    }

    pub fn list_images(&self) -> Result<Vec<ImageRecord>> {
        self.images_where("", &[])
    }

    fn images_where(&self, clause: &str, args: &[&str]) -> Result<Vec<ImageRecord>> {
        let db = self.db();
        let sql = format!("SELECT i.id, i.manifest, i.created, i.size, i.parent, i.added, i.layers, i.content_size FROM images i {clause} ORDER BY i.added DESC, i.id");
        let mut st = db.prepare_cached(&sql)?;
        let mut out = Vec::new();
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?;
        for row in rows {
            let (id, manifest, created, size, parent, added, layers, content_size) = row?;
            let layers: Vec<String> = serde_json::from_str(&layers).unwrap_or_default();
            out.push(ImageRecord {
                id: Digest::parse(&id)?,
                manifest: Digest::parse(&manifest)?,
                created,
                size: size as u64,
                content_size: content_size as u64,
                parent: parent.as_deref().map(Digest::parse).transpose()?,
                added,
                layers: layers.iter().map(|l| Digest::parse(l)).collect::<Result<_>>()?,
                tags: Vec::new(),
                repo_digests: Vec::new(),
            });
        }
        drop(st);
        // Names, in one query each.
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut st = db.prepare_cached("SELECT name, image_id FROM tags ORDER BY added, name")?;
        for r in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (n, i) = r?;
            tags.entry(i).or_default().push(n);
        }
        drop(st);
        // A variant that is not its name's default carries the name too.
        let mut st = db.prepare_cached("SELECT name, image_id FROM variants ORDER BY added, name")?;
        for r in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (n, i) = r?;
            let names = tags.entry(i).or_default();
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let mut digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut st = db.prepare_cached("SELECT name, image_id FROM repo_digests ORDER BY name")?;
        for r in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (n, i) = r?;
            digests.entry(i).or_default().push(n);
        }
        for img in &mut out {
            img.tags = tags.remove(img.id.as_str()).unwrap_or_default();
            img.repo_digests = digests.remove(img.id.as_str()).unwrap_or_default();
        }
        Ok(out)
    }

    /// The image a user's word names: a name (`bb`, `bb:1`, `host:5000/x`),
    /// `name@sha256:…`, a full ID, or a unique ID prefix.
    pub fn resolve_image(&self, word: &str) -> Result<ImageRecord> {
        if let Ok(r) = Reference::parse(word) {
            let db = self.db();
            let key = r.full();
            let table = if r.digest.is_some() && r.tag.is_none() {
                "repo_digests"
            } else {
                "tags"
            };
            let id: Option<String> = db
                .query_row(
                    &format!("SELECT image_id FROM {table} WHERE name = ?1"),
                    params![key],
                    |row| row.get(0),
                )
                .optional()?;
            drop(db);
            if let Some(id) = id {
                return self.image(&Digest::parse(&id)?);
            }
            if let (Some(d), None) = (&r.digest, &r.tag) {
                // name@digest where the digest is the manifest we hold.
                let found = self.images_where("WHERE i.manifest = ?1", &[d.as_str()])?;
                if let Some(img) = found.into_iter().next() {
                    return Ok(img);
                }
            }
        }
        let hex = word.strip_prefix("sha256:").unwrap_or(word);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            let pattern = format!("sha256:{hex}%");
            let found = self.images_where("WHERE i.id LIKE ?1", &[&pattern])?;
            match found.len() {
                1 => return Ok(found.into_iter().next().expect("one")),
                0 => {}
                n => {
                    return Err(StoreError::AmbiguousImage {
                        reference: word.to_string(),
                        count: n,
                    })
                }
            }
        }
        Err(StoreError::ImageNotFound(word.to_string()))
    }

    /// Point `name` (a full reference) at `id`, in one statement with the
    /// image's existence: a tag never points at a deleted image
    /// (`ImageNotFound` when `id` is gone).
    pub fn tag(&self, id: &Digest, name: &str) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "INSERT OR REPLACE INTO tags (name, image_id, added) SELECT ?1, id, ?3 FROM images WHERE id = ?2",
            params![name, id.as_str(), now_unix()],
        )?;
        if n == 0 {
            return Err(StoreError::ImageNotFound(id.to_string()));
        }
        crate::variants::forget(&tx, name)?;
        tx.commit()?;
        Ok(())
    }

    /// Remove a name; returns the image it pointed at.
    pub fn untag(&self, name: &str) -> Result<Option<Digest>> {
        let db = self.db();
        let id: Option<String> = db
            .query_row("SELECT image_id FROM tags WHERE name = ?1", params![name], |r| r.get(0))
            .optional()?;
        let id = match id {
            Some(i) => Some(i),
            None => db
                .query_row(
                    "SELECT image_id FROM repo_digests WHERE name = ?1",
                    params![name],
                    |r| r.get(0),
                )
                .optional()?,
        };
        db.execute("DELETE FROM tags WHERE name = ?1", params![name])?;
        db.execute("DELETE FROM repo_digests WHERE name = ?1", params![name])?;
        crate::variants::forget(&db, name)?;
        id.as_deref().map(Digest::parse).transpose()
    }

    /// Images whose parent is `id` (build steps grown from it).
    pub fn children(&self, id: &Digest) -> Result<Vec<Digest>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT id FROM images WHERE parent = ?1")?;
        let rows = st.query_map(params![id.as_str()], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(Digest::parse(&r?)?);
        }
        Ok(out)
    }

    /// An image's layers as they stand in the store, to build a new image on
    /// top of them (a build step, a commit, a pushed copy).
    pub fn image_layers(&self, img: &ImageRecord) -> Result<Vec<NewLayer>> {
        img.layers
            .iter()
            .map(|chain| {
                let l = self.layer(chain)?.ok_or_else(|| StoreError::LayerMissing {
                    layer: chain.to_string(),
                    image: img.id.to_string(),
                })?;
                Ok(NewLayer {
                    diff_id: l.diff_id,
                    blob: l.blob,
                    media_type: l.media_type,
                    blob_size: l.blob_size,
                    size: l.size,
                    staged_blob: None,
                    staged_dir: None,
                })
            })
            .collect()
    }

    /// Delete an image record and its names; files go at the next `gc`.
    /// An image a live process holds a lease on (a build standing on it, a
    /// `run` about to record its container) is refused with `InUse`, one a
    /// container was created from with `UsedByContainer`: both checked in
    /// the deleting transaction, so no lease or container can come between.
    pub fn delete_image(&self, id: &Digest) -> Result<()> {
        self.delete_image_unless(id, false).map(drop)
    }

    /// [`Self::delete_image`] for an image that is dangling: in the same
    /// transaction, an image that has (been given) a name meanwhile is left
    /// (false). What `prune` without `-a` deletes with.
    pub fn delete_dangling_image(&self, id: &Digest) -> Result<bool> {
        self.delete_image_unless(id, true)
    }

    fn delete_image_unless(&self, id: &Digest, named: bool) -> Result<bool> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let count = |sql: &str| -> rusqlite::Result<i64> { tx.query_row(sql, params![id.as_str()], |r| r.get(0)) };
        if named
            && count("SELECT (SELECT COUNT(*) FROM tags WHERE image_id = ?1) + (SELECT COUNT(*) FROM repo_digests WHERE image_id = ?1) + (SELECT COUNT(*) FROM variants WHERE image_id = ?1)")? > 0
        {
            return Ok(false);
        }
        let container: Option<String> = tx
            .query_row(
                "SELECT id FROM containers WHERE image_id = ?1 LIMIT 1",
                params![id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(c) = container {
            return Err(StoreError::UsedByContainer {
                image: id.short().to_string(),
                container: c[..12.min(c.len())].to_string(),
            });
        }
        // Inside the transaction: a lease taken after it sees the image gone.
        if let Some((what, pid)) = crate::leases::live_image_holder(&tx, id)? {
            return Err(StoreError::InUse {
                image: id.short().to_string(),
                what,
                pid,
            });
        }
        // A name with other platforms keeps meaning one of them.
        crate::variants::before_delete(&tx, id.as_str())?;
        tx.execute("DELETE FROM tags WHERE image_id = ?1", params![id.as_str()])?;
        tx.execute("DELETE FROM repo_digests WHERE image_id = ?1", params![id.as_str()])?;
        tx.execute("DELETE FROM build_cache WHERE image_id = ?1", params![id.as_str()])?;
        // Children keep standing on their own layers; they just lose the link.
        tx.execute(
            "UPDATE images SET parent = NULL WHERE parent = ?1",
            params![id.as_str()],
        )?;
        tx.execute("DELETE FROM images WHERE id = ?1", params![id.as_str()])?;
        tx.commit()?;
        Ok(true)
    }

    /// The parsed config of an image.
    pub fn image_config(&self, id: &Digest) -> Result<ImageConfig> {
        let bytes = self.blobs().read(id)?;
        ImageConfig::from_bytes(&bytes).map_err(|source| StoreError::BadConfig {
            digest: id.to_string(),
            source,
        })
    }

    /// Remove blobs and layers that no image references. Returns the chain
    /// IDs of the layer records it removed. A live layer's blob may be
    /// absent (lazy: made from its directory when read); that is not damage
    /// and nothing is done about it.
    ///
    /// Kept as well: what a live process leases, and every layer a mount
    /// uses as a lower dir (a step of a build, a container's root). A
    /// layer's record goes before its directory, so a kill in between
    /// leaves a directory without a record, which the next `gc` removes.
    pub fn gc(&self) -> Result<Vec<Digest>> {
        let _lock = self.gc_lock()?;
        let (keep_blobs, keep_layers) = self.referenced()?;
        let mut removed = Vec::new();
        // Layers.
        let layers = self.list_layers()?;
        for l in layers {
            if !keep_layers.contains(&l.chain_id) {
                self.db()
                    .execute("DELETE FROM layers WHERE chain_id = ?1", params![l.chain_id.as_str()])?;
                self.remove_layer_dir(&l.chain_id);
                removed.push(l.chain_id);
            }
        }
        // Layer dirs with no record (an interrupted publish).
        if let Ok(rd) = std::fs::read_dir(self.root().join("layers")) {
            for e in rd.flatten() {
                if let Some(d) = e.file_name().to_str().and_then(|n| Digest::from_hex(n).ok()) {
                    if !keep_layers.contains(&d) {
                        self.remove_layer_dir(&d);
                    }
                }
            }
        }
        for b in self.blobs().list()? {
            if !keep_blobs.contains(&b) {
                self.blobs().remove(&b);
            }
        }
        Ok(removed)
    }

    /// Build cache: the image a step key produced, if it still exists.
    pub fn cache_get(&self, key: &str) -> Result<Option<Digest>> {
        let db = self.db();
        let id: Option<String> = db
            .query_row(
                "SELECT c.image_id FROM build_cache c JOIN images i ON i.id = c.image_id WHERE c.key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?;
        id.as_deref().map(Digest::parse).transpose()
    }

    pub fn cache_put(&self, key: &str, id: &Digest) -> Result<()> {
        self.db().execute(
            "INSERT OR REPLACE INTO build_cache (key, image_id, added) VALUES (?1, ?2, ?3)",
            params![key, id.as_str(), now_unix()],
        )?;
        Ok(())
    }

    /// Forgets one build cache entry (`builder prune`); the image stays.
    pub fn cache_remove(&self, key: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM build_cache WHERE key = ?1", params![key])?;
        Ok(())
    }

    /// Every build cache entry: (step key, image ID), oldest first (for
    /// `system df`).
    pub fn cache_entries(&self) -> Result<Vec<(String, Digest)>> {
        let db = self.db();
        let mut st = db.prepare("SELECT key, image_id FROM build_cache ORDER BY added")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (k, id) = row?;
            out.push((k, Digest::parse(&id)?));
        }
        Ok(out)
    }

    /// Number of images and containers (for `berth info`).
    pub fn counts(&self) -> Result<(u64, u64)> {
        let db = self.db();
        let i: i64 = db.query_row("SELECT COUNT(*) FROM images", [], |r| r.get(0))?;
        let c: i64 = db.query_row("SELECT COUNT(*) FROM containers", [], |r| r.get(0))?;
        Ok((i as u64, c as u64))
    }
}
