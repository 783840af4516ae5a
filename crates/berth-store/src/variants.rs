//! One name, several platforms: the variants of a name side by side, as an
//! image index holds them. `tags` keeps the one image a name means when no
//! platform is asked for (the host's variant when there is one, else the
//! last one recorded); `variants` lists every platform the name has here,
//! and where they came from (the digest of the index they were pulled
//! from, or `""` for ones made here). A name given to one image the
//! ordinary way (`tag`, a build, a single-platform pull) is that image
//! alone again: its variants go.

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::json;

use crate::digest::Digest;
use crate::error::Result;
use crate::images::ImageRecord;
use crate::platform::Platform;
use crate::{now_unix, Store};

/// Added to the database as version 4.
pub(crate) const MIGRATION_4: &str = r#"
CREATE TABLE IF NOT EXISTS variants (
    name        TEXT NOT NULL,         -- docker.io/library/bb:latest
    platform    TEXT NOT NULL,         -- linux/arm64, normalised
    image_id    TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '', -- the index it was pulled from ('' = made or loaded here)
    added       INTEGER NOT NULL,
    PRIMARY KEY (name, platform)
);
CREATE INDEX IF NOT EXISTS variants_image ON variants(image_id);
"#;

/// One platform of a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub platform: Platform,
    pub image_id: Digest,
}

/// The row `tags` should hold for `name` after its variants changed: the
/// host's platform, else the most recently added.
fn default_of(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<Option<String>> {
    let host = Platform::host().to_string();
    tx.query_row(
        "SELECT image_id FROM variants WHERE name = ?1 ORDER BY (platform = ?2) DESC, added DESC, platform LIMIT 1",
        params![name, host],
        |r| r.get(0),
    )
    .optional()
}

/// Points `tags` at the name's default variant (or drops the name).
fn retag(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<()> {
    match default_of(tx, name)? {
        Some(id) => {
            tx.execute(
                "INSERT OR REPLACE INTO tags (name, image_id, added) VALUES (?1, ?2, ?3)",
                params![name, id, now_unix()],
            )?;
        }
        None => {
            tx.execute("DELETE FROM tags WHERE name = ?1", params![name])?;
        }
    }
    Ok(())
}

/// Drops the variants of `name` (it now means one image): inside a write
/// of `tags`.
pub(crate) fn forget(tx: &rusqlite::Connection, name: &str) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM variants WHERE name = ?1", params![name])?;
    Ok(())
}

/// Before `image_id` is deleted: its variant rows go, and each name whose
/// default it was and that has other variants points at one of those.
/// Returns the names kept that way (their `tags` row must not be deleted).
pub(crate) fn before_delete(tx: &Transaction<'_>, image_id: &str) -> rusqlite::Result<Vec<String>> {
    let names: Vec<String> = {
        let mut st = tx.prepare("SELECT DISTINCT name FROM variants WHERE image_id = ?1")?;
        let rows = st.query_map(params![image_id], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    tx.execute("DELETE FROM variants WHERE image_id = ?1", params![image_id])?;
    let mut kept = Vec::new();
    for n in names {
        retag(tx, &n)?;
        let still: Option<String> = tx
            .query_row("SELECT image_id FROM tags WHERE name = ?1", params![n], |r| r.get(0))
            .optional()?;
        if still.is_some_and(|s| s != image_id) {
            kept.push(n);
        }
    }
    Ok(kept)
}

impl Store {
    /// Records `image_id` as `name`'s variant for `platform`, pulled from
    /// the index `source`: the name's other variants stay when they came
    /// from that index or are images in `keep` (ones the index offers too,
    /// loaded or pulled before); the rest go, as the name now means that
    /// index. A name that meant one image without variants means this one.
    pub fn add_variant(
        &self,
        name: &str,
        platform: &Platform,
        image_id: &Digest,
        source: &str,
        keep: &[Digest],
    ) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let others: Vec<(String, String, String)> = {
            let mut st = tx.prepare("SELECT platform, source, image_id FROM variants WHERE name = ?1")?;
            let rows = st.query_map(params![name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (p, src, id) in others {
            if src != source && !keep.iter().any(|d| d.as_str() == id) {
                tx.execute(
                    "DELETE FROM variants WHERE name = ?1 AND platform = ?2",
                    params![name, p],
                )?;
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO variants (name, platform, image_id, source, added) \
             SELECT ?1, ?2, id, ?4, ?5 FROM images WHERE id = ?3",
            params![name, platform.to_string(), image_id.as_str(), source, now_unix()],
        )?;
        retag(&tx, name)?;
        tx.commit()?;
        Ok(())
    }

    /// Gives `name` exactly these variants (a multi-platform build, load or
    /// tag), made here.
    pub fn set_variants(&self, name: &str, variants: &[Variant]) -> Result<()> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        forget(&tx, name)?;
        let t = now_unix();
        for (i, v) in variants.iter().enumerate() {
            // Later entries count as newer: the last is the default when
            // the host's platform is not among them.
            tx.execute(
                "INSERT OR REPLACE INTO variants (name, platform, image_id, source, added) \
                 SELECT ?1, ?2, id, '', ?4 FROM images WHERE id = ?3",
                params![name, v.platform.to_string(), v.image_id.as_str(), t + i as i64],
            )?;
        }
        retag(&tx, name)?;
        tx.commit()?;
        Ok(())
    }

    /// The variants `name` (a full reference) has, ordered by platform;
    /// empty when it names one image the ordinary way.
    pub fn variants(&self, name: &str) -> Result<Vec<Variant>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT platform, image_id FROM variants WHERE name = ?1 ORDER BY platform")?;
        let rows = st.query_map(params![name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (p, id) = r?;
            let Ok(platform) = Platform::parse(&p) else { continue };
            out.push(Variant {
                platform,
                image_id: Digest::parse(&id)?,
            });
        }
        Ok(out)
    }

    /// Removes one platform's variant of `name`; the name then means
    /// another of its variants, or nothing. Returns the image it was.
    pub fn remove_variant(&self, name: &str, platform: &Platform) -> Result<Option<Digest>> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id: Option<String> = tx
            .query_row(
                "SELECT image_id FROM variants WHERE name = ?1 AND platform = ?2",
                params![name, platform.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if id.is_some() {
            tx.execute(
                "DELETE FROM variants WHERE name = ?1 AND platform = ?2",
                params![name, platform.to_string()],
            )?;
            retag(&tx, name)?;
        }
        tx.commit()?;
        id.as_deref().map(Digest::parse).transpose()
    }

    /// The platform an image's config says it is for.
    pub fn image_platform(&self, id: &Digest) -> Result<Platform> {
        let c = self.image_config(id)?;
        Ok(Platform::normalised(
            if c.os.is_empty() { "linux" } else { &c.os },
            &c.architecture,
            c.variant.as_deref(),
        ))
    }

    /// The image `word` means for `platform`: the name's variant for it
    /// (same OS and architecture, the variant preferred when it matches),
    /// else the image the word names when that is of the platform. `None`:
    /// the store has the word, but not for that platform.
    pub fn resolve_image_for(&self, word: &str, platform: &Platform) -> Result<Option<ImageRecord>> {
        if let Ok(r) = crate::reference::Reference::parse(word) {
            let vs = self.variants(&r.full())?;
            let exact = vs.iter().find(|v| v.platform == *platform);
            let near = vs.iter().find(|v| v.platform.same_os_arch(platform));
            if let Some(v) = exact.or(near) {
                return self.image(&v.image_id).map(Some);
            }
        }
        let img = self.resolve_image(word)?;
        let have = self.image_platform(&img.id)?;
        Ok(have.same_os_arch(platform).then_some(img))
    }

    /// An OCI image index over `name`'s variants (each its manifest, as
    /// stored, with its platform), or `None` when it has none.
    pub fn variants_index(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let vs = self.variants(name)?;
        if vs.is_empty() {
            return Ok(None);
        }
        let mut manifests = Vec::new();
        for v in &vs {
            let img = self.image(&v.image_id)?;
            let bytes = self.blobs().read(&img.manifest)?;
            let mt = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|m| m["mediaType"].as_str().map(str::to_string))
                .unwrap_or_else(|| crate::images::MEDIA_OCI_MANIFEST.to_string());
            let mut p = json!({"architecture": v.platform.architecture, "os": v.platform.os});
            if let Some(var) = &v.platform.variant {
                p["variant"] = json!(var);
            }
            manifests.push(json!({
                "mediaType": mt,
                "digest": img.manifest.as_str(),
                "size": bytes.len(),
                "platform": p,
            }));
        }
        Ok(Some(
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_OCI_INDEX,
                "manifests": manifests,
            }))
            .expect("index serialises"),
        ))
    }
}

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
