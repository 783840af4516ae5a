//! Registries: pull, push, login, logout and manifest lists.
//!
//! A pull is all-or-nothing, like `load`: layer blobs stream from the
//! registry into staged blob writers (hashed as they arrive) while the same
//! bytes are unpacked into staged layer directories, 2–3 layers at once;
//! every blob digest and every diff ID is checked, and only then is the
//! image committed — blobs, layers and the record in one `commit_image`.
//! A pull killed at any moment leaves only staging garbage that the next
//! command sweeps, and the layers it was downloading as partial downloads
//! (`downloads/`, see `berth_store::partial`): the next pull asks the
//! registry for the rest with a `Range` request (all of it again if the
//! registry answers 200) and checks the digest over the whole blob. A
//! tampered blob is refused and nothing of it is kept.
//!
//! A push sends what the registry lacks (HEAD, then a cross-repository
//! mount, then an upload), compressing plain-tar layers on the way out and
//! remembering the compressed digest so the next push only has to ask.
//!
//! The network side runs on a current-thread tokio runtime made here; the
//! CPU side (hashing, unpacking, compressing) runs on scoped threads.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::Scope;

use crate::error::{bail, Result};
use anyhow::{anyhow, Context};
use berth_archive::{HashingWriter, TeeReader};
use berth_registry::bytes::Bytes;
use berth_registry::futures_util::{StreamExt, TryStreamExt};
use berth_registry::platform::{self, Platform};
use berth_registry::tokio::sync::{mpsc, oneshot};
use berth_registry::{auth, AuthFile, Credentials, LayerCompression, Options, Registry, RegistryError};
use berth_store::reference::familiar_name;
use berth_store::{
    chain_ids, Digest, ImageConfig, ImageRecord, NewImage, NewLayer, PartialBlob, Reference, StagedBlob, StagedLayer,
    Store,
};
use serde_json::{json, Value};

use super::Engine;
use crate::progress::{Event, Progress};

/// Layers downloaded or uploaded at once.
pub(super) const PARALLEL: usize = 3;
/// Bytes per PATCH of a chunked upload.
const UPLOAD_CHUNK: usize = 16 << 20;
/// Whole-blob attempts on transient failures (each request retries too).
const BLOB_ATTEMPTS: u32 = 3;

#[derive(Clone, Debug, Default)]
/// What `pull` does.
pub struct PullOptions {
    /// `os/arch[/variant]`; None: this machine's.
    pub platform: Option<String>,
    /// `-a`: every tag of the repository.
    pub all_tags: bool,
    /// How to reach the registry (TLS, credentials, certificates).
    pub registry: Options,
}

/// A registry's answer for a name, without pulling
/// ([`Engine::distribution_inspect`]).
#[derive(Clone, Debug)]
pub struct RemoteImage {
    /// The media type of what the name points at (a manifest or an index).
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The platforms it offers.
    pub platforms: Vec<OciPlatform>,
}

/// A platform as OCI's image index and image config name its fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OciPlatform {
    /// `amd64`, `arm64`…
    pub architecture: String,
    /// `linux`, `windows`…
    pub os: String,
    /// The OS version, where one matters (Windows).
    #[serde(rename = "os.version", skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// Required OS features.
    #[serde(rename = "os.features", skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// The CPU variant (`v7`, `v8`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl OciPlatform {
    /// From an index entry's `platform` or an image config (same keys).
    fn from_json(v: &Value) -> OciPlatform {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        OciPlatform {
            architecture: s("architecture"),
            os: s("os"),
            os_version: s("os.version"),
            os_features: v["os.features"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect(),
            variant: s("variant"),
        }
    }
}

/// One image a pull brought (or found up to date).
#[derive(Clone, Debug)]
pub struct PulledImage {
    /// The image's ID.
    pub id: Digest,
    /// Full name pulled (`127.0.0.1:5000/x:latest` or `…@sha256:…`).
    pub name: String,
    /// Digest of what the name pointed at (the index for multi-platform images).
    pub digest: Digest,
    /// False if the image was already complete.
    pub downloaded: bool,
}

#[derive(Clone, Debug, Default)]
/// What `push` does.
pub struct PushOptions {
    /// `--all-tags`: every local tag of the repository.
    pub all_tags: bool,
    /// `--compression-format`: recompress layers that are not already in it
    /// (plain-tar layers are always compressed, with gzip by default).
    pub compression: Option<LayerCompression>,
    /// How to reach the registry (TLS, credentials, certificates).
    pub registry: Options,
    /// `--platform`: of a name with several platforms, push only this
    /// one's manifest under the tag (default: the index over all of them).
    pub platform: Option<String>,
}

#[derive(Clone, Debug)]
/// One image a push sent.
pub struct PushedImage {
    /// Full destination name.
    pub name: String,
    /// The tag it went under (`None`: by digest).
    pub tag: Option<String>,
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's size.
    pub size: u64,
}

/// A layer as pushed: digest, size, media type, a compression learned
/// (diff ID, format) and whether bytes were sent.
type SentLayer = (Digest, u64, String, Option<(Digest, LayerCompression)>, bool);

pub(super) fn runtime() -> anyhow::Result<berth_registry::tokio::runtime::Runtime> {
    berth_registry::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the network runtime")
}

/// What berth remembers about blobs between commands: the compressed
/// digests of layers it compressed for a push (so the next push only
/// HEADs), and the repositories a blob is known to be in (for mounts).
/// A cache: losing it costs time, never correctness.
pub(super) struct BlobInfo {
    path: PathBuf,
    doc: Value,
    dirty: bool,
}

impl BlobInfo {
    pub(super) fn load(root: &Path) -> BlobInfo {
        let path = root.join("registry").join("blobinfo.json");
        let doc = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({"compressed": {}, "sources": {}}));
        BlobInfo {
            path,
            doc,
            dirty: false,
        }
    }

    fn compressed(&self, diff_id: &Digest, c: LayerCompression) -> Option<(Digest, u64)> {
        let e = &self.doc["compressed"][format!("{diff_id} {}", c.name())];
        Some((Digest::parse(e["digest"].as_str()?).ok()?, e["size"].as_u64()?))
    }

    fn set_compressed(&mut self, diff_id: &Digest, c: LayerCompression, d: &Digest, size: u64) {
        if !self.doc["compressed"].is_object() {
            self.doc["compressed"] = json!({});
        }
        self.doc["compressed"][format!("{diff_id} {}", c.name())] = json!({"digest": d.as_str(), "size": size});
        self.dirty = true;
    }

    fn sources(&self, d: &Digest) -> Vec<String> {
        self.doc["sources"][d.as_str()]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    }

    fn add_source(&mut self, d: &Digest, repo: &str) {
        if !self.doc["sources"].is_object() {
            self.doc["sources"] = json!({});
        }
        let list = &mut self.doc["sources"][d.as_str()];
        if !list.is_array() {
            *list = json!([]);
        }
        let arr = list.as_array_mut().expect("array");
        if !arr.iter().any(|v| v == repo) {
            arr.push(json!(repo));
            // Keep the newest few.
            if arr.len() > 8 {
                arr.remove(0);
            }
            self.dirty = true;
        }
    }

    pub(super) fn save(&self) {
        if !self.dirty {
            return;
        }
        let Some(dir) = self.path.parent() else { return };
        use berth_archive::perms;
        let _ = perms::create_dir_all(dir, perms::PRIVATE_DIR);
        let bytes = serde_json::to_vec(&self.doc).unwrap_or_default();
        let _ = perms::write_atomic(&self.path, &bytes, perms::PRIVATE_FILE);
    }
}

/// A descriptor from a manifest.
#[derive(Clone, Debug)]
pub(super) struct Desc {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

pub(super) fn desc_of(v: &Value, what: &str) -> anyhow::Result<Desc> {
    Ok(Desc {
        media_type: v["mediaType"].as_str().unwrap_or_default().to_string(),
        digest: Digest::parse(v["digest"].as_str().unwrap_or_default())
            .with_context(|| format!("{what} has a bad digest"))?,
        size: v["size"].as_u64().ok_or_else(|| anyhow!("{what} has no size"))?,
    })
}

/// Reads what the download task sends; EOF when the sender is gone.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// Sends what is written, in chunks, to the upload task.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(UPLOAD_CHUNK));
        self.tx
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| io::Error::other("the upload stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(UPLOAD_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == UPLOAD_CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What taking in a layer stream gave: the unpacking's outcome (staged
/// layer, diff ID, size) and the reading's.
type Consumed = (Result<(Option<StagedLayer>, Digest, u64)>, io::Result<u64>);

/// Take a layer stream: write it to `sink` (which keeps and hashes it)
/// and, if `unpack`, unpack it into a staged layer (else only hash its
/// uncompressed content). Whatever happens, the stream is read to its end,
/// so the blob digest can be checked before any error of the unpacking is
/// believed. Returns the unpacking's outcome and the reading's.
fn consume_layer(store: &Store, mut reader: impl Read, sink: &mut dyn Write, unpack: bool, what: &str) -> Consumed {
    let outcome: Result<(Option<StagedLayer>, Digest, u64)> = {
        let mut tee = TeeReader::new(&mut reader, &mut *sink);
        if unpack {
            store
                .stage_layer(&mut tee, what)
                .map(|sl| {
                    let (d, n) = (sl.diff_id.clone(), sl.size);
                    (Some(sl), d, n)
                })
                .map_err(Into::into)
        } else {
            (|| {
                let mut dec = berth_archive::decompressed(&mut tee)?;
                let mut hw = HashingWriter::new(io::sink());
                io::copy(&mut dec, &mut hw)?;
                let (_, d, n) = hw.finish();
                Ok((None, Digest::parse(&d)?, n))
            })()
        }
    };
    let drained = io::copy(&mut TeeReader::new(&mut reader, &mut *sink), &mut io::sink());
    (outcome, drained)
}

/// Check what `consume_layer` made: the blob digest first (so a tampered
/// blob is reported as a digest mismatch even when it also broke the
/// unpacking), then the reading, the unpacking and the diff ID.
fn check_layer(
    staged: StagedBlob,
    (outcome, drained): Consumed,
    blob: &Digest,
    diff_id: &Digest,
    what: &str,
) -> anyhow::Result<(StagedBlob, Option<StagedLayer>, u64)> {
    staged.verify(Some(blob), what)?;
    drained.with_context(|| format!("reading {what}"))?;
    let (sl, got, size) = outcome?;
    if got != *diff_id {
        bail!("digest mismatch for {what}: its content is {got}, but the image config says {diff_id}");
    }
    Ok((staged, sl, size))
}

/// Take in a layer into a fresh staged blob.
fn take_layer(
    store: &Store,
    reader: impl Read,
    unpack: bool,
    blob: &Digest,
    diff_id: &Digest,
    what: &str,
) -> anyhow::Result<(StagedBlob, Option<StagedLayer>, u64)> {
    let mut writer = store.blob_writer("pull")?;
    let res = consume_layer(store, reader, &mut writer, unpack, what);
    let staged = writer.finish()?;
    check_layer(staged, res, blob, diff_id, what)
}

/// Take in a layer through its partial download: the stream starts at the
/// byte `starts` says (what the registry agreed to resume from), the bytes
/// before it are read back from the partial, the new ones appended to it;
/// the digest is checked over the whole. A stream that ends short leaves
/// the partial for the next attempt; a complete one becomes the staged blob.
#[allow(clippy::too_many_arguments)]
fn take_layer_resuming(
    store: &Store,
    mut partial: PartialBlob,
    starts: std::sync::mpsc::Receiver<u64>,
    body: impl Read,
    unpack: bool,
    desc: &Desc,
    diff_id: &Digest,
    what: &str,
) -> anyhow::Result<(StagedBlob, Option<StagedLayer>, u64)> {
    let start = starts
        .recv()
        .map_err(|_| anyhow!("the download of {what} did not start"))?;
    partial.truncate(start)?;
    let prefix = partial.prefix(start)?;
    let mut hasher = HashingWriter::new(io::sink());
    let res = {
        let body = TeeReader::new(body, &mut partial);
        consume_layer(store, prefix.chain(body), &mut hasher, unpack, what)
    };
    let (_, d, n) = hasher.finish();
    if n != desc.size {
        // Cut short: keep what arrived for the next try.
        partial.flush()?;
        return Err(res
            .1
            .err()
            .map(anyhow::Error::from)
            .unwrap_or_else(|| anyhow!("{what}: the download ended at byte {n} of {}", desc.size)));
    }
    let staged = partial.finish(store, Digest::parse(&d)?, n)?;
    check_layer(staged, res, &desc.digest, diff_id, what)
}

impl Engine {
    // ---- pull -------------------------------------------------------------

    /// Pull an image (or with `all_tags`, a repository). Progress lines as
    /// Docker prints them go to `progress` (None: silent — what `run`,
    /// `create` and `build` want for `--pull=missing`).
    pub fn pull(&self, reference: &str, opts: &PullOptions, out: &Progress) -> Result<Vec<PulledImage>> {
        let pulled = crate::off_runtime(|| self.pull_here(reference, opts, out))?;
        for p in &pulled {
            let name = berth_store::reference::familiar_name(&p.name);
            self.record_image_event("pull", &name, &name);
        }
        Ok(pulled)
    }

    fn pull_here(&self, reference: &str, opts: &PullOptions, out: &Progress) -> Result<Vec<PulledImage>> {
        let r = Reference::parse(reference)?;
        let explicit_platform = opts.platform.is_some();
        let want = match &opts.platform {
            Some(p) => platform::parse(p)?,
            None => Platform::host(),
        };
        if opts.all_tags && (r.digest.is_some() || has_explicit_tag(reference)) {
            bail!("tag can't be used with --all-tags/-a");
        }
        if !opts.all_tags && r.digest.is_none() && !has_explicit_tag(reference) {
            out.status("Using default tag: latest");
        }
        let rt = runtime()?;
        let _lock = self.store.write_lock()?;
        let mut info = BlobInfo::load(self.root());
        let result = std::thread::scope(|s| {
            rt.block_on(async {
                let reg = Registry::connect(&r.domain, &opts.registry).await?;
                let refs = if opts.all_tags {
                    let tags = reg.list_tags(&r.path).await?;
                    if tags.is_empty() {
                        bail!("{} has no tags to pull", r.repository());
                    }
                    out.status(format!("Pulling all tags of {}", r.familiar_repository()));
                    tags.into_iter()
                        .map(|t| Reference::parse(&format!("{}:{t}", r.repository())))
                        .collect::<std::result::Result<Vec<_>, _>>()?
                } else {
                    vec![r.clone()]
                };
                let mut pulled = Vec::new();
                for rr in &refs {
                    pulled.push(
                        self.pull_image(s, &reg, rr, &want, explicit_platform, out, &mut info)
                            .await?,
                    );
                }
                Ok::<_, anyhow::Error>(pulled)
            })
        });
        info.save();
        let pulled = result?;
        if opts.all_tags {
            out.status(r.repository());
        }
        Ok(pulled)
    }

    #[allow(clippy::too_many_arguments)]
    async fn pull_image<'scope, 'env>(
        &'env self,
        s: &'scope Scope<'scope, 'env>,
        reg: &Registry,
        r: &Reference,
        want: &Platform,
        explicit_platform: bool,
        out: &Progress,
        info: &mut BlobInfo,
    ) -> anyhow::Result<PulledImage> {
        let repo = &r.path;
        let shown_ref = r
            .tag
            .clone()
            .unwrap_or_else(|| r.digest.as_ref().map(|d| d.to_string()).unwrap_or_default());
        let reference = r.tag_or_digest();
        out.status(format!("{shown_ref}: Pulling from {}", r.path));
        let top = reg.get_manifest(repo, &reference).await?;
        let top_digest = top.digest.clone();
        let mut manifest = top.clone();
        if platform::is_index(&top.media_type) {
            let idx = top.json().context("the index is not valid JSON")?;
            let entry = platform::select(&idx, want).ok_or_else(|| {
                anyhow!(
                    "no matching manifest for {want} in the manifest list entries of {} (it offers: {})",
                    r.familiar(),
                    platform::offered(&idx).join(", ")
                )
            })?;
            let d = desc_of(entry, "an index entry")?;
            manifest = reg.get_manifest(repo, d.digest.as_str()).await?;
            if platform::is_index(&manifest.media_type) {
                bail!("{}: an index inside an index is not supported", r.familiar());
            }
        }
        if manifest.media_type == platform::DOCKER_SCHEMA1 || manifest.media_type == platform::DOCKER_SCHEMA1_SIGNED {
            bail!(
                "{} uses Docker's image manifest schema 1, which is deprecated and not supported: push it again with a current Docker or skopeo",
                r.familiar()
            );
        }
        let m = manifest.json().context("the manifest is not valid JSON")?;
        let config_desc = desc_of(&m["config"], "the manifest's config")?;
        let layer_descs: Vec<Desc> = m["layers"]
            .as_array()
            .ok_or_else(|| anyhow!("the manifest of {} lists no layers", r.familiar()))?
            .iter()
            .enumerate()
            .map(|(i, l)| desc_of(l, &format!("layer {} of the manifest", i + 1)))
            .collect::<anyhow::Result<_>>()?;
        let config = reg.get_blob_bytes(repo, &config_desc.digest, 32 << 20).await?;
        let cfg = ImageConfig::from_bytes(&config).context("the image config is not valid")?;
        if explicit_platform {
            let got = Platform::from_json(&serde_json::from_slice::<Value>(&config).unwrap_or_default());
            if let Some(got) = got.filter(|g| g.os != want.os || g.architecture != want.architecture) {
                bail!(
                    "image with reference {} was found but does not match the specified platform: wanted {want}, actual: {got}",
                    r.familiar()
                );
            }
        }
        let diff_ids: Vec<Digest> = cfg.diff_ids()?;
        if diff_ids.len() != layer_descs.len() {
            bail!(
                "the image config of {} lists {} layers but its manifest {}",
                r.familiar(),
                diff_ids.len(),
                layer_descs.len()
            );
        }
        let chains = chain_ids(&diff_ids);
        // From an index, the name gets this platform beside the others
        // pulled from the same index (see `Store::add_variant`).
        let from_index = platform::is_index(&top.media_type);
        let tags: Vec<String> = if r.tag.is_some() && !from_index {
            vec![r.full()]
        } else {
            vec![]
        };
        // The name's other platforms stay when the index offers the very
        // same images (asked of the registry: one small manifest each).
        let mut keep: Vec<Digest> = Vec::new();
        if from_index && r.tag.is_some() {
            let idx = top.json().unwrap_or_default();
            for v in self.store.variants(&r.full())? {
                let Some(d) = platform::select(&idx, &v.platform).and_then(|e| desc_of(e, "an index entry").ok())
                else {
                    continue;
                };
                if d.digest == manifest.digest {
                    continue;
                }
                if let Ok(m) = reg.get_manifest(repo, d.digest.as_str()).await {
                    let config = m.json().ok().and_then(|m| desc_of(&m["config"], "config").ok());
                    if config.is_some_and(|c| c.digest == v.image_id) {
                        keep.push(v.image_id);
                    }
                }
            }
        }
        let variant_of = |id: &Digest| -> anyhow::Result<()> {
            if from_index && r.tag.is_some() {
                let p = self.store.image_platform(id)?;
                self.store.add_variant(&r.full(), &p, id, top_digest.as_str(), &keep)?;
            }
            Ok(())
        };
        let repo_digests = vec![format!("{}@{}", r.repository(), top_digest)];
        let full_repo = format!("{}/{}", reg.name(), repo);

        // Already complete: only names change. As Docker says, an image
        // is "newer" when the name did not mean it before.
        let existing = self.store.image(&config_desc.digest).ok();
        if let Some(img) = existing.filter(|img| img.layers.iter().all(|c| self.store.has_layer_dir(c))) {
            let renamed = tags.iter().any(|t| !img.tags.contains(t));
            let layers = self.store.image_layers(&img)?;
            let manifest_bytes = self.store.blobs().read(&img.manifest)?;
            let rec = self.store.commit_image(NewImage {
                config,
                layers,
                parent: None,
                tags,
                repo_digests,
                manifest: Some(manifest_bytes),
            })?;
            variant_of(&rec.id)?;
            return Ok(pulled(out, r, rec.id, top_digest, renamed));
        }

        let jobs = layer_descs.iter().enumerate().map(|(i, d)| {
            let what = format!("layer {} ({}) of {full_repo}", i + 1, d.digest);
            self.pull_layer(s, reg, repo, d, &diff_ids[i], &chains[i], what, out)
        });
        let layers: Vec<NewLayer> = berth_registry::futures_util::stream::iter(jobs)
            .buffered(PARALLEL)
            .try_collect()
            .await?;
        for d in &layer_descs {
            info.add_source(&d.digest, &full_repo);
        }
        let rec = self.store.commit_image(NewImage {
            config,
            layers,
            parent: None,
            tags,
            repo_digests,
            manifest: Some(manifest.bytes.clone()),
        })?;
        variant_of(&rec.id)?;
        Ok(pulled(out, r, rec.id, top_digest, true))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn pull_layer<'scope, 'env>(
        &'env self,
        s: &'scope Scope<'scope, 'env>,
        reg: &Registry,
        repo: &str,
        desc: &Desc,
        diff_id: &Digest,
        chain: &Digest,
        what: String,
        out: &Progress,
    ) -> anyhow::Result<NewLayer> {
        let store: &'env Store = &self.store;
        let short = desc.digest.short().to_string();
        // The files may be unpacked under another stack (a composed image's
        // part): shared, never unpacked twice (see `Store::layer_key`).
        let have_dir = store.has_layer_files(chain, diff_id)?;
        let chain = &store.layer_key(chain, diff_id, false, &[])?;
        // A lazy blob counts only for this very layer, as a build recorded
        // it (its blob is its own uncompressed tar, made from its dir on
        // demand). Another layer's dir with the same diff ID may have been
        // unpacked from another tool's tar, which berth cannot remake
        // byte for byte: the registry has the real bytes.
        let have_blob = store.blobs().contains(&desc.digest)
            || (have_dir && store.layer(chain)?.is_some_and(|l| l.blob == desc.digest));
        let media_type = if desc.media_type.is_empty() {
            berth_store::images::MEDIA_OCI_LAYER_GZIP.to_string()
        } else {
            desc.media_type.clone()
        };
        let new_layer = |staged_blob, staged_dir, size| NewLayer {
            diff_id: diff_id.clone(),
            blob: desc.digest.clone(),
            media_type: media_type.clone(),
            blob_size: desc.size,
            size,
            staged_blob,
            staged_dir,
        };
        if have_dir && have_blob {
            let size = store.layer(chain)?.map(|l| l.size).unwrap_or(desc.size);
            out.layer(&short, "Already exists");
            return Ok(new_layer(None, None, size));
        }
        let (done_tx, done_rx) = oneshot::channel();
        let (blob, diff) = (desc.digest.clone(), diff_id.clone());
        if have_blob {
            // The blob is here (another image's): only unpack it.
            let what2 = what.clone();
            s.spawn(move || {
                let r = (|| -> anyhow::Result<_> {
                    let f = BufReader::with_capacity(1 << 20, store.open_layer_blob(&blob)?);
                    let sl = store.stage_layer(f, &what2)?;
                    if sl.diff_id != diff {
                        bail!(
                            "digest mismatch for {what2}: its content is {}, but the image config says {diff}",
                            sl.diff_id
                        );
                    }
                    let n = sl.size;
                    Ok((sl, n))
                })();
                let _ = done_tx.send(r);
            });
            let (sl, size) = done_rx.await.map_err(|_| anyhow!("unpacking {what} failed"))??;
            out.layer(&short, "Pull complete");
            return Ok(new_layer(None, Some(sl), size));
        }
        let mut last: Option<anyhow::Error> = None;
        let mut fresh_retry = false;
        for attempt in 0..BLOB_ATTEMPTS {
            if attempt > 0 && !fresh_retry {
                berth_registry::tokio::time::sleep(std::time::Duration::from_millis(500 << attempt)).await;
            }
            fresh_retry = false;
            let (tx, rx) = mpsc::channel::<Bytes>(256);
            let (done_tx, done_rx) = oneshot::channel();
            let (desc2, diff, what2) = (desc.clone(), diff_id.clone(), what.clone());
            let unpack = !have_dir;
            // What an interrupted pull left (None: another pull is at it).
            let mut partial = store.partial_blob(&desc.digest)?;
            let mut have = 0;
            if let Some(p) = partial.as_mut() {
                have = p.len();
                if have >= desc.size {
                    p.truncate(0)?;
                    have = 0;
                }
            }
            if have > 0 {
                out.layer(
                    &short,
                    format!("Resuming download at {}", crate::human::human_size(have)),
                );
            }
            let (start_tx, start_rx) = std::sync::mpsc::channel::<u64>();
            s.spawn(move || {
                let reader = ChannelReader { rx, cur: Bytes::new() };
                let r = match partial {
                    Some(p) => take_layer_resuming(store, p, start_rx, reader, unpack, &desc2, &diff, &what2),
                    None => take_layer(store, reader, unpack, &desc2.digest, &diff, &what2),
                };
                let _ = done_tx.send(r);
            });
            let began = std::cell::Cell::new(0u64);
            let on_start = |n: u64| {
                began.set(n);
                let _ = start_tx.send(n);
            };
            let fetched = reg
                .fetch_blob(repo, &desc.digest, desc.size, have, &on_start, &tx, &|n| {
                    out.bytes(&short, n, desc.size)
                })
                .await;
            drop(tx);
            drop(start_tx);
            let consumed = done_rx.await.map_err(|_| anyhow!("the thread taking in {what} died"))?;
            match (fetched, consumed) {
                (Ok(()), Ok((sb, sl, size))) => {
                    out.layer(&short, "Pull complete");
                    return Ok(new_layer(Some(sb), sl, size));
                }
                // A resumed download that proves wrong: the partial is gone
                // with it; once more from the start.
                (Ok(()), Err(e)) if began.get() > 0 && attempt + 1 < BLOB_ATTEMPTS => {
                    log::debug!("{what}: resumed at {} but {e:#}; downloading it all", began.get());
                    out.layer(&short, "Resumed download was wrong; downloading it again");
                    fresh_retry = true;
                    last = Some(e);
                }
                (Err(RegistryError::Cancelled), Err(e)) | (Ok(()), Err(e)) => return Err(e),
                (Err(e), _) if e.is_transient() => {
                    log::debug!("{what}: {e}; trying again");
                    last = Some(e.into());
                }
                (Err(e), _) => return Err(e.into()),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("{what}: download failed")))
    }

    // ---- push -------------------------------------------------------------

    /// Push `source` (a local image) to `dest` (default: `source`'s name).
    /// With `all_tags`, every local tag of the repository. Progress lines go
    /// to `progress`.
    pub fn push(
        &self,
        source: &str,
        dest: Option<&str>,
        opts: &PushOptions,
        out: &Progress,
    ) -> Result<Vec<PushedImage>> {
        let pushed = crate::off_runtime(|| self.push_here(source, dest, opts, out))?;
        for p in &pushed {
            let name = berth_store::reference::familiar_name(&p.name);
            self.record_image_event("push", &name, &name);
        }
        Ok(pushed)
    }

    fn push_here(
        &self,
        source: &str,
        dest: Option<&str>,
        opts: &PushOptions,
        out: &Progress,
    ) -> Result<Vec<PushedImage>> {
        if let Some(p) = opts.platform.as_deref().filter(|p| !p.is_empty()) {
            platform::parse(p)?;
        }
        let target_word = dest.unwrap_or(source);
        let target = Reference::parse(target_word).with_context(|| {
            format!("{target_word:?} is not a name to push to: tag the image first (berth tag IMAGE HOST/NAME:TAG)")
        })?;
        // (image, tag) pairs.
        let mut work: Vec<(ImageRecord, Option<String>)> = Vec::new();
        if opts.all_tags {
            if has_explicit_tag(target_word) || target.digest.is_some() {
                bail!("tag can't be used with --all-tags/-a");
            }
            let repo = target.repository();
            for img in self.store.list_images()? {
                for t in &img.tags {
                    let (tr, tt) = berth_store::reference::split_repo(t);
                    // Of a name with several platforms, the one it means.
                    let default = self.store.resolve_image(t).map(|i| i.id == img.id).unwrap_or(true);
                    if tr == repo && default {
                        work.push((img.clone(), Some(tt.trim_start_matches(':').to_string())));
                    }
                }
            }
            if work.is_empty() {
                bail!(
                    "An image does not exist locally with the tag: {}",
                    target.familiar_repository()
                );
            }
            work.sort_by(|a, b| a.1.cmp(&b.1));
        } else if let Some(vs) = self.push_variants_of(source, opts)? {
            return self.push_index(&target, vs, opts, out);
        } else {
            let img = match self.push_source(source, opts.platform.as_deref()) {
                Ok(i) => i,
                Err(berth_store::StoreError::ImageNotFound(_)) => {
                    let shown = Reference::parse(source)
                        .map(|r| r.familiar())
                        .unwrap_or_else(|_| source.to_string());
                    bail!("An image does not exist locally with the tag: {shown}");
                }
                Err(e) => return Err(e.into()),
            };
            work.push((img, target.tag.clone()));
        }
        let rt = runtime()?;
        let mut info = BlobInfo::load(self.root());
        out.status(format!(
            "The push refers to repository [{}]",
            target.familiar_repository()
        ));
        let result = std::thread::scope(|s| {
            rt.block_on(async {
                let reg = Registry::connect(&target.domain, &opts.registry).await?;
                let mut done_blobs: HashSet<Digest> = HashSet::new();
                let mut pushed = Vec::new();
                for (img, tag) in &work {
                    let (digest, size, _media) = self
                        .push_image(
                            s,
                            &reg,
                            &target.path,
                            img,
                            tag.as_deref(),
                            opts.compression,
                            out,
                            &mut info,
                            &mut done_blobs,
                        )
                        .await?;
                    let name = match tag {
                        Some(t) => format!("{}:{t}", target.repository()),
                        None => format!("{}@{digest}", target.repository()),
                    };
                    out.status(format!(
                        "{}: digest: {digest} size: {size}",
                        tag.as_deref().unwrap_or(digest.as_str())
                    ));
                    pushed.push(PushedImage {
                        name,
                        tag: tag.clone(),
                        digest,
                        size,
                    });
                }
                Ok::<_, anyhow::Error>(pushed)
            })
        });
        info.save();
        let pushed = result?;
        // Docker records what a push proved: NAME@DIGEST points at the image.
        for (p, (img, _)) in pushed.iter().zip(&work) {
            let _ = self.record_repo_digest(img, &format!("{}@{}", target.repository(), p.digest));
        }
        Ok(pushed)
    }

    /// The image `source` means for `platform` (a name's variant).
    fn push_source(&self, source: &str, platform: Option<&str>) -> berth_store::Result<ImageRecord> {
        match platform.filter(|p| !p.is_empty()) {
            None => self.store.resolve_image(source),
            Some(p) => {
                let want = berth_store::Platform::parse(p)
                    .map_err(|_| berth_store::StoreError::ImageNotFound(source.to_string()))?;
                self.store
                    .resolve_image_for(source, &want)?
                    .ok_or_else(|| berth_store::StoreError::ImageNotFound(source.to_string()))
            }
        }
    }

    /// The variants to push as one index: those of a name that has
    /// several platforms, unless `--platform` picks one.
    fn push_variants_of(
        &self,
        source: &str,
        opts: &PushOptions,
    ) -> anyhow::Result<Option<Vec<(ImageRecord, berth_store::Platform)>>> {
        if opts.platform.as_deref().is_some_and(|p| !p.is_empty()) {
            return Ok(None);
        }
        let Ok(r) = Reference::parse(source) else {
            return Ok(None);
        };
        let vs = self.store.variants(&r.full())?;
        if vs.len() < 2 {
            return Ok(None);
        }
        vs.into_iter()
            .map(|v| Ok((self.store.image(&v.image_id)?, v.platform)))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }

    /// Pushes each variant's manifest (by digest), then an OCI index over
    /// them under the target's tag.
    fn push_index(
        &self,
        target: &Reference,
        variants: Vec<(ImageRecord, berth_store::Platform)>,
        opts: &PushOptions,
        out: &Progress,
    ) -> Result<Vec<PushedImage>> {
        let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
        let rt = runtime()?;
        let mut info = BlobInfo::load(self.root());
        out.status(format!(
            "The push refers to repository [{}]",
            target.familiar_repository()
        ));
        let result = std::thread::scope(|s| {
            rt.block_on(async {
                let reg = Registry::connect(&target.domain, &opts.registry).await?;
                let mut done = HashSet::new();
                let mut entries = Vec::new();
                let mut sent = Vec::new();
                for (img, p) in &variants {
                    let (d, size, mt) = self
                        .push_image(
                            s,
                            &reg,
                            &target.path,
                            img,
                            None,
                            opts.compression,
                            out,
                            &mut info,
                            &mut done,
                        )
                        .await?;
                    out.status(format!("{p}: digest: {d} size: {size}"));
                    let mut plat = json!({"architecture": p.architecture, "os": p.os});
                    if let Some(v) = &p.variant {
                        plat["variant"] = json!(v);
                    }
                    entries.push(json!({"mediaType": mt, "digest": d.as_str(), "size": size, "platform": plat}));
                    sent.push((img.clone(), d));
                }
                let index = json!({"schemaVersion": 2, "mediaType": platform::OCI_INDEX, "manifests": entries});
                let bytes = serde_json::to_vec(&index)?;
                let d = reg
                    .put_manifest(&target.path, &tag, platform::OCI_INDEX, &bytes)
                    .await?;
                out.status(format!("{tag}: digest: {d} size: {}", bytes.len()));
                Ok::<_, anyhow::Error>((d, bytes.len() as u64, sent))
            })
        });
        info.save();
        let (digest, size, sent) = result?;
        for (img, d) in &sent {
            let _ = self.record_repo_digest(img, &format!("{}@{d}", target.repository()));
        }
        Ok(vec![PushedImage {
            name: format!("{}:{tag}", target.repository()),
            tag: Some(tag),
            digest,
            size,
        }])
    }

    /// Add a RepoDigest to an image (recommitting it with what it has).
    fn record_repo_digest(&self, img: &ImageRecord, name: &str) -> anyhow::Result<()> {
        if img.repo_digests.iter().any(|d| d == name) {
            return Ok(());
        }
        let config = self.store.blobs().read(&img.id)?;
        let manifest = self.store.blobs().read(&img.manifest)?;
        self.store.commit_image(NewImage {
            config,
            layers: self.store.image_layers(img)?,
            parent: img.parent.clone(),
            tags: vec![],
            repo_digests: vec![name.to_string()],
            manifest: Some(manifest),
        })?;
        Ok(())
    }

    /// Push one image's blobs and manifest; put the manifest under `tag`
    /// (or its digest). Returns the manifest's digest, size and media type.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn push_image<'scope, 'env>(
        &'env self,
        s: &'scope Scope<'scope, 'env>,
        reg: &Registry,
        repo: &str,
        img: &ImageRecord,
        tag: Option<&str>,
        compression: Option<LayerCompression>,
        out: &Progress,
        info: &mut BlobInfo,
        done: &mut HashSet<Digest>,
    ) -> anyhow::Result<(Digest, u64, String)> {
        let store = &self.store;
        let config = store.blobs().read(&img.id)?;
        let stored_bytes = store.blobs().read(&img.manifest).ok();
        let stored_manifest: Value = stored_bytes
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let stored_layers: Vec<Option<Desc>> = stored_manifest["layers"]
            .as_array()
            .map(|a| a.iter().map(|l| desc_of(l, "layer").ok()).collect())
            .unwrap_or_default();
        // What to send for each layer.
        struct Plan {
            diff_id: Digest,
            source: Digest,
            source_size: u64,
            media_type: String,
            /// Compress (from the source blob) into this format.
            recompress: Option<LayerCompression>,
            /// The compressed digest remembered from an earlier push.
            known: Option<(Digest, u64)>,
        }
        let mut plans = Vec::new();
        let mut verbatim = stored_layers.len() == img.layers.len();
        for (i, chain) in img.layers.iter().enumerate() {
            let rec = store
                .layer(chain)?
                .ok_or_else(|| anyhow!("layer {} of image {} has no record", i + 1, img.id))?;
            let (blob, size, mt) = match stored_layers.get(i).cloned().flatten() {
                Some(d) if store.has_layer_blob(&d.digest)? => (d.digest, d.size, d.media_type),
                _ => {
                    verbatim = false;
                    (rec.blob.clone(), rec.blob_size, rec.media_type.clone())
                }
            };
            let mut have = LayerCompression::of_media_type(&mt);
            if have.is_none() && !mt.ends_with(".tar") {
                // An unknown media type: trust the bytes.
                let mut head = [0u8; 4];
                let n = store
                    .open_layer_blob(&blob)
                    .ok()
                    .and_then(|mut f| f.read(&mut head).ok())
                    .unwrap_or(0);
                have = match berth_archive::sniff(&head[..n]) {
                    berth_archive::Compression::Gzip => Some(LayerCompression::Gzip),
                    berth_archive::Compression::Zstd => Some(LayerCompression::Zstd),
                    berth_archive::Compression::None => None,
                };
            }
            let recompress = match (compression, have) {
                (Some(want), Some(h)) if want != h => Some(want),
                (Some(want), None) => Some(want),
                (None, None) => Some(LayerCompression::Gzip),
                _ => None,
            };
            if recompress.is_some() {
                verbatim = false;
            }
            let known = recompress.and_then(|c| info.compressed(&rec.diff_id, c));
            plans.push(Plan {
                diff_id: rec.diff_id.clone(),
                source: blob,
                source_size: size,
                media_type: mt,
                recompress,
                known,
            });
        }
        let full_repo = format!("{}/{}", reg.name(), repo);
        // Every layer is announced before any moves, as Docker does.
        for p in &plans {
            out.layer(p.diff_id.short(), "Preparing");
        }
        // Upload layers, a few at once; each yields its final descriptor.
        let jobs = plans.iter().map(|p| {
            let sources = info.sources(p.known.as_ref().map(|k| &k.0).unwrap_or(&p.source));
            let skip = done.contains(p.known.as_ref().map(|k| &k.0).unwrap_or(&p.source));
            async move {
                let short = p.diff_id.short().to_string();
                let (digest, size) = match (&p.recompress, &p.known) {
                    (None, _) => (p.source.clone(), p.source_size),
                    (Some(_), Some((d, n))) => (d.clone(), *n),
                    (Some(c), None) => {
                        let (d, n) = self.upload_compressed(s, reg, repo, &p.source, *c, &short, out).await?;
                        return Ok::<_, anyhow::Error>((
                            d,
                            n,
                            c.media_type().to_string(),
                            Some((p.diff_id.clone(), *c)),
                            true,
                        ));
                    }
                };
                let media = p
                    .recompress
                    .map(|c| c.media_type().to_string())
                    .unwrap_or_else(|| p.media_type.clone());
                if skip || reg.blob_size(repo, &digest).await?.is_some() {
                    out.layer(&short, "Layer already exists");
                    return Ok((digest, size, media, None, false));
                }
                for from in sources
                    .iter()
                    .filter_map(|s| s.strip_prefix(&format!("{}/", reg.name())))
                {
                    if from != repo && reg.mount_blob(repo, &digest, from).await? {
                        out.layer(&short, format!("Mounted from {from}"));
                        return Ok((digest, size, media, None, false));
                    }
                }
                match p.recompress {
                    None => {
                        out.bytes(&short, 0, size);
                        self.upload_stored(reg, repo, &digest, size).await?;
                        out.bytes(&short, size, size);
                    }
                    Some(c) => {
                        // The remembered digest is not there: compress again
                        // (deterministic, so the digest is the same).
                        let (d, n) = self.upload_compressed(s, reg, repo, &p.source, c, &short, out).await?;
                        return Ok((d, n, media, Some((p.diff_id.clone(), c)), true));
                    }
                }
                out.layer(&short, "Pushed");
                Ok((digest, size, media, None, true))
            }
        });
        let results: Vec<SentLayer> = berth_registry::futures_util::stream::iter(jobs)
            .buffered(PARALLEL)
            .try_collect()
            .await?;
        let mut layer_descs = Vec::new();
        for (d, n, media, learned, _) in &results {
            if let Some((diff, c)) = learned {
                info.set_compressed(diff, *c, d, *n);
            }
            info.add_source(d, &full_repo);
            done.insert(d.clone());
            layer_descs.push(json!({"mediaType": media, "digest": d.as_str(), "size": n}));
        }
        // Config.
        if !done.contains(&img.id) && reg.blob_size(repo, &img.id).await?.is_none() {
            reg.upload_bytes(repo, &img.id, Bytes::from(config.clone())).await?;
        }
        done.insert(img.id.clone());
        // Manifest: the stored one as it is when it still describes what
        // was sent (a re-push keeps its digest), else a new OCI manifest.
        let (bytes, media_type) = match stored_bytes {
            Some(b) if verbatim && stored_manifest["config"]["digest"].as_str() == Some(img.id.as_str()) => {
                let mt = stored_manifest["mediaType"]
                    .as_str()
                    .unwrap_or(platform::OCI_MANIFEST)
                    .to_string();
                (b, mt)
            }
            _ => {
                let config_mt = stored_manifest["config"]["mediaType"]
                    .as_str()
                    .filter(|m| *m == platform::DOCKER_CONFIG || *m == platform::OCI_CONFIG)
                    .unwrap_or(platform::OCI_CONFIG);
                let mut m = json!({
                    "schemaVersion": 2,
                    "mediaType": platform::OCI_MANIFEST,
                    "config": {"mediaType": config_mt, "digest": img.id.as_str(), "size": config.len()},
                    "layers": layer_descs,
                });
                if let Some(a) = stored_manifest.get("annotations").filter(|a| a.is_object()) {
                    m["annotations"] = a.clone(); // a composed image's parents
                }
                (serde_json::to_vec(&m)?, platform::OCI_MANIFEST.to_string())
            }
        };
        let digest = Digest::of_bytes(&bytes);
        let reference = tag.map(str::to_string).unwrap_or_else(|| digest.to_string());
        reg.put_manifest(repo, &reference, &media_type, &bytes).await?;
        Ok((digest, bytes.len() as u64, media_type))
    }

    /// Upload a blob from the store, retrying the whole blob on transient
    /// failures.
    async fn upload_stored(&self, reg: &Registry, repo: &str, digest: &Digest, size: u64) -> anyhow::Result<()> {
        let path = self.store.layer_blob_by_digest(digest)?;
        let mut attempt = 0;
        loop {
            match reg.upload_file(repo, digest, &path, size).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() && attempt + 1 < BLOB_ATTEMPTS => {
                    log::debug!("{e}; trying again");
                    attempt += 1;
                    berth_registry::tokio::time::sleep(std::time::Duration::from_millis(500 << attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Compress a stored layer (any compression in, `c` out) on a thread
    /// while its chunks are uploaded; returns the compressed digest and size.
    #[allow(clippy::too_many_arguments)]
    async fn upload_compressed<'scope, 'env>(
        &'env self,
        s: &'scope Scope<'scope, 'env>,
        reg: &Registry,
        repo: &str,
        source: &Digest,
        c: LayerCompression,
        short: &str,
        out: &Progress,
    ) -> anyhow::Result<(Digest, u64)> {
        let store: &'env Store = &self.store;
        let mut attempt = 0;
        loop {
            let (tx, mut rx) = mpsc::channel::<Bytes>(2);
            let (done_tx, done_rx) = oneshot::channel::<anyhow::Result<(Digest, u64)>>();
            let src = source.clone();
            s.spawn(move || {
                let r = (|| -> anyhow::Result<(Digest, u64)> {
                    // A lazy blob is made here, off the network thread.
                    let f = BufReader::with_capacity(1 << 20, store.open_layer_blob(&src)?);
                    let mut plain = berth_archive::decompressed(f)?;
                    let mut hw = HashingWriter::new(ChannelWriter {
                        tx,
                        buf: Vec::with_capacity(UPLOAD_CHUNK),
                    });
                    {
                        let mut enc = c.encoder(&mut hw)?;
                        io::copy(&mut plain, &mut enc).with_context(|| format!("compressing layer blob {src}"))?;
                        enc.finish()?;
                    }
                    let (mut w, d, n) = hw.finish();
                    w.send_buf()?;
                    Ok((Digest::parse(&d)?, n))
                })();
                let _ = done_tx.send(r);
            });
            let upload = async {
                let mut loc = reg.start_upload(repo).await?;
                let mut offset = 0u64;
                while let Some(chunk) = rx.recv().await {
                    let n = chunk.len() as u64;
                    let t = std::time::Instant::now();
                    loc = reg.upload_chunk(repo, &loc, offset, chunk).await?;
                    log::debug!("layer {short}: sent {n} bytes at {offset} in {:?}", t.elapsed());
                    offset += n;
                    out.bytes(short, offset, 0);
                }
                Ok::<_, RegistryError>((loc, offset))
            }
            .await;
            drop(rx);
            let compressed = done_rx.await.map_err(|_| anyhow!("the compressing thread died"))?;
            let res = match (upload, compressed) {
                (Ok((loc, sent)), Ok((d, n))) => {
                    if sent != n {
                        bail!("layer {short}: compressed {n} bytes but uploaded {sent}");
                    }
                    reg.finish_upload(repo, &loc, &d, None).await.map(|_| (d, n))
                }
                (Ok(_), Err(e)) => return Err(e),
                (Err(e), _) => Err(e),
            };
            match res {
                Ok(v) => {
                    out.layer(short, "Pushed");
                    return Ok(v);
                }
                Err(e) if e.is_transient() && attempt + 1 < BLOB_ATTEMPTS => {
                    log::debug!("{e}; trying again");
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    // ---- login / logout ---------------------------------------------------

    /// Check credentials against the registry and store them. Returns
    /// where they went (the auth file, or the credential helper it names).
    pub fn login(&self, server: &str, creds: &Credentials, opts: &Options) -> Result<String> {
        login(server, creds, opts)
    }

    /// `logout`: forgets the credentials stored for `server`; false if there were none.
    pub fn logout(&self, server: &str, opts: &Options) -> Result<bool> {
        logout(server, opts)
    }
}

/// `login` needs no store: usable before one exists.
pub fn login(server: &str, creds: &Credentials, opts: &Options) -> Result<String> {
    crate::off_runtime(|| login_here(server, creds, opts))
}

fn login_here(server: &str, creds: &Credentials, opts: &Options) -> Result<String> {
    let domain = auth::normalize_server(server);
    let rt = runtime()?;
    rt.block_on(async {
        let reg = Registry::connect_with(&domain, opts, Some(creds.clone())).await?;
        reg.check_login().await
    })
    .map_err(|e| match e {
        RegistryError::BadCredentials { registry, detail } => {
            anyhow!("login to {registry} failed: unauthorized: incorrect username or password{detail}")
        }
        e => e.into(),
    })?;
    let path = opts.auth_file.clone().unwrap_or_else(auth::default_auth_file);
    let mut f = AuthFile::open(&path)?;
    Ok(match f.store(&domain, creds)? {
        Some(helper) => format!("docker-credential-{helper} (named in {})", path.display()),
        None => path.display().to_string(),
    })
}

/// Forget the login for `server`; false if there was none.
pub fn logout(server: &str, opts: &Options) -> Result<bool> {
    let path = opts.auth_file.clone().unwrap_or_else(auth::default_auth_file);
    let mut f = AuthFile::open(&path)?;
    Ok(f.forget(server)?)
}

/// A pull's last lines (Docker's `Digest:`, `Status:`, the name) and its
/// image event.
fn pulled(out: &Progress, r: &Reference, id: Digest, digest: Digest, downloaded: bool) -> PulledImage {
    out.status(format!("Digest: {digest}"));
    let what = if downloaded {
        "Downloaded newer image for"
    } else {
        "Image is up to date for"
    };
    out.status(format!("Status: {what} {}", r.familiar()));
    out.status(r.full());
    out.emit(Event::Image {
        id: id.to_string(),
        name: Some(r.full()),
    });
    PulledImage {
        id,
        name: r.full(),
        digest,
        downloaded,
    }
}

/// Did the user write a tag (`x:1`, `host:5000/x:1`, not `host:5000/x`)?
fn has_explicit_tag(word: &str) -> bool {
    let name = word.split('@').next().unwrap_or(word);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':')
}

// ---- manifest lists ---------------------------------------------------------

/// A local manifest list (an image index being put together), kept in
/// `$ROOT/manifests/<sha256 of name>.json` with the local image behind each
/// entry.
#[derive(Debug, Clone)]
pub struct ManifestList {
    /// The list's full name.
    pub name: String,
    /// The OCI image index being put together.
    pub index: Value,
    /// Entry manifest digest → local image ID.
    pub images: BTreeMap<String, String>,
}

/// Options of `manifest add` / `manifest annotate`.
#[derive(Debug, Clone, Default)]
pub struct EntryOptions {
    /// The entry's operating system.
    pub os: Option<String>,
    /// The entry's architecture.
    pub arch: Option<String>,
    /// The entry's architecture variant.
    pub variant: Option<String>,
    /// The entry's OS version.
    pub os_version: Option<String>,
    /// The entry's OS features.
    pub os_features: Vec<String>,
    /// `KEY=VALUE` annotations of the entry.
    pub annotations: Vec<String>,
}

impl Engine {
    fn list_path(&self, name: &str) -> PathBuf {
        self.root()
            .join("manifests")
            .join(format!("{}.json", Digest::of_bytes(name.as_bytes()).hex()))
    }

    fn list_name(word: &str) -> anyhow::Result<String> {
        Ok(Reference::parse(word)
            .with_context(|| format!("{word:?} is not a valid manifest list name"))?
            .full())
    }

    /// The local manifest list named `word`, if there is one.
    pub fn manifest_list(&self, word: &str) -> Result<Option<ManifestList>> {
        let name = Self::list_name(word)?;
        let p = self.list_path(&name);
        let b = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(anyhow::Error::from(e)
                    .context(format!("reading {}", p.display()))
                    .into())
            }
        };
        let v: Value = serde_json::from_slice(&b).with_context(|| format!("{} is damaged", p.display()))?;
        Ok(Some(ManifestList {
            name,
            index: v["index"].clone(),
            images: serde_json::from_value(v["images"].clone()).unwrap_or_default(),
        }))
    }

    fn save_list(&self, l: &ManifestList) -> anyhow::Result<()> {
        let p = self.list_path(&l.name);
        let dir = p.parent().expect("has a parent");
        berth_archive::perms::create_dir_all(dir, berth_archive::perms::PRIVATE_DIR)
            .with_context(|| format!("creating {}", dir.display()))?;
        let tmp = self.store.staging().path("manifest-list")?;
        let doc = json!({"name": l.name, "index": l.index, "images": l.images});
        let mut f = berth_archive::perms::create_new(&tmp, berth_archive::perms::PRIVATE_FILE)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(&doc)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
        Ok(())
    }

    /// `manifest create NAME [IMAGE…]`.
    pub fn manifest_create(&self, word: &str, images: &[String], amend: bool) -> Result<ManifestList> {
        let name = Self::list_name(word)?;
        let mut list = match self.manifest_list(word)? {
            Some(l) if amend => l,
            Some(_) => bail!(
                "a manifest list named {} already exists: use --amend, or berth manifest rm {} first",
                familiar_name(&name),
                familiar_name(&name)
            ),
            None => ManifestList {
                name,
                index: json!({"schemaVersion": 2, "mediaType": platform::OCI_INDEX, "manifests": []}),
                images: BTreeMap::new(),
            },
        };
        for i in images {
            self.add_entry(&mut list, i, &EntryOptions::default())?;
        }
        self.save_list(&list)?;
        Ok(list)
    }

    /// `manifest add NAME IMAGE`: returns the entry's manifest digest.
    pub fn manifest_add(&self, word: &str, image: &str, opts: &EntryOptions) -> Result<Digest> {
        let mut list = self
            .manifest_list(word)?
            .ok_or_else(|| anyhow!("{word} is not a manifest list: create it with berth manifest create {word}"))?;
        let d = self.add_entry(&mut list, image, opts)?;
        self.save_list(&list)?;
        Ok(d)
    }

    fn add_entry(&self, list: &mut ManifestList, image: &str, opts: &EntryOptions) -> anyhow::Result<Digest> {
        let img = self.store.resolve_image(image).with_context(|| {
            format!(
                "adding {image} to {}: only local images can be added",
                familiar_name(&list.name)
            )
        })?;
        let manifest = self.store.blobs().read(&img.manifest)?;
        let mv: Value = serde_json::from_slice(&manifest).unwrap_or_default();
        let cfg: Value = serde_json::from_slice(&self.store.blobs().read(&img.id)?).unwrap_or_default();
        let mut plat = json!({
            "architecture": cfg["architecture"].as_str().unwrap_or("amd64"),
            "os": cfg["os"].as_str().unwrap_or("linux"),
        });
        if let Some(v) = cfg["variant"].as_str() {
            plat["variant"] = json!(v);
        }
        let entry = json!({
            "mediaType": mv["mediaType"].as_str().unwrap_or(platform::OCI_MANIFEST),
            "digest": img.manifest.as_str(),
            "size": manifest.len(),
            "platform": plat,
        });
        let arr = list.index["manifests"]
            .as_array_mut()
            .ok_or_else(|| anyhow!("the list is damaged"))?;
        arr.retain(|e| e["digest"].as_str() != Some(img.manifest.as_str()));
        arr.push(entry);
        list.images.insert(img.manifest.to_string(), img.id.to_string());
        annotate_entry(list, &img.manifest, opts)?;
        Ok(img.manifest.clone())
    }

    /// `manifest annotate NAME IMAGE|DIGEST`.
    pub fn manifest_annotate(&self, word: &str, image: &str, opts: &EntryOptions) -> Result<()> {
        let mut list = self
            .manifest_list(word)?
            .ok_or_else(|| anyhow!("{word} is not a manifest list"))?;
        let digest = match Digest::parse(image) {
            Ok(d) if list.images.contains_key(d.as_str()) => d,
            _ => {
                let img = self.store.resolve_image(image)?;
                let d = list
                    .images
                    .iter()
                    .find(|(_, id)| **id == img.id.as_str())
                    .map(|(m, _)| Digest::parse(m))
                    .transpose()?;
                d.ok_or_else(|| anyhow!("{image} is not in the manifest list {}", familiar_name(&list.name)))?
            }
        };
        annotate_entry(&mut list, &digest, opts)?;
        Ok(self.save_list(&list)?)
    }

    /// `manifest rm NAME`: false if there is no such list.
    pub fn manifest_rm(&self, word: &str) -> Result<bool> {
        let name = Self::list_name(word)?;
        match std::fs::remove_file(self.list_path(&name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// `manifest inspect NAME`: the local list, else the registry's manifest.
    pub fn manifest_inspect(&self, word: &str, opts: &Options) -> Result<Value> {
        crate::off_runtime(|| self.manifest_inspect_here(word, opts))
    }

    fn manifest_inspect_here(&self, word: &str, opts: &Options) -> Result<Value> {
        if let Some(l) = self.manifest_list(word)? {
            return Ok(l.index);
        }
        let r = Reference::parse(word)?;
        let rt = runtime()?;
        let m = rt.block_on(async {
            let reg = Registry::connect(&r.domain, opts).await?;
            reg.get_manifest(&r.path, &r.tag_or_digest()).await
        })?;
        Ok(m.json()?)
    }

    /// What the registry says of `reference` without pulling it (the
    /// API's `GET /distribution/{name}/json`): the descriptor of the
    /// manifest or index the name points at, and the platforms it offers:
    /// an index's entries', or a single manifest's from its image config.
    pub fn distribution_inspect(&self, reference: &str, opts: &Options) -> Result<RemoteImage> {
        crate::off_runtime(|| {
            let r = Reference::parse(reference)?;
            let rt = runtime()?;
            rt.block_on(async {
                let reg = Registry::connect(&r.domain, opts).await?;
                let m = reg.get_manifest(&r.path, &r.tag_or_digest()).await?;
                let doc = m.json()?;
                let platforms = if platform::is_index(&m.media_type) {
                    doc["manifests"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|d| OciPlatform::from_json(&d["platform"]))
                        .collect()
                } else {
                    let desc = &doc["config"];
                    let digest = desc["digest"]
                        .as_str()
                        .and_then(|d| Digest::parse(d).ok())
                        .ok_or_else(|| anyhow!("the manifest of {reference} names no image config"))?;
                    let config = reg.get_blob_bytes(&r.path, &digest, 32 << 20).await?;
                    let config: Value = serde_json::from_slice(&config)
                        .with_context(|| format!("the image config of {reference} is not JSON"))?;
                    vec![OciPlatform::from_json(&config)]
                };
                Ok(RemoteImage {
                    media_type: m.media_type.clone(),
                    size: m.bytes.len() as u64,
                    digest: m.digest,
                    platforms,
                })
            })
        })
    }

    /// `manifest push NAME [DEST]`: push every image of the list by digest,
    /// then the index under DEST's tag. Returns the index digest.
    pub fn manifest_push(&self, word: &str, dest: Option<&str>, opts: &PushOptions, out: &Progress) -> Result<Digest> {
        crate::off_runtime(|| self.manifest_push_here(word, dest, opts, out))
    }

    fn manifest_push_here(&self, word: &str, dest: Option<&str>, opts: &PushOptions, out: &Progress) -> Result<Digest> {
        let list = self
            .manifest_list(word)?
            .ok_or_else(|| anyhow!("{word} is not a manifest list: create it with berth manifest create"))?;
        let target = Reference::parse(dest.unwrap_or(word))?;
        let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
        let rt = runtime()?;
        let mut info = BlobInfo::load(self.root());
        let result = std::thread::scope(|s| {
            rt.block_on(async {
                let reg = Registry::connect(&target.domain, &opts.registry).await?;
                let mut done = HashSet::new();
                let mut index = list.index.clone();
                let entries = index["manifests"]
                    .as_array_mut()
                    .ok_or_else(|| anyhow!("the list is damaged"))?;
                if entries.is_empty() {
                    bail!(
                        "the manifest list {} is empty: add images with berth manifest add",
                        familiar_name(&list.name)
                    );
                }
                for e in entries.iter_mut() {
                    let md = e["digest"].as_str().unwrap_or_default().to_string();
                    let id = list
                        .images
                        .get(&md)
                        .ok_or_else(|| anyhow!("entry {md} of the list has no local image"))?;
                    let img = self.store.image(&Digest::parse(id)?).with_context(|| {
                        format!("the image {id} of entry {md} is gone: berth manifest add it again")
                    })?;
                    let (d, size, mt) = self
                        .push_image(
                            s,
                            &reg,
                            &target.path,
                            &img,
                            None,
                            opts.compression,
                            out,
                            &mut info,
                            &mut done,
                        )
                        .await?;
                    e["digest"] = json!(d.as_str());
                    e["size"] = json!(size);
                    e["mediaType"] = json!(mt);
                }
                let bytes = serde_json::to_vec(&index)?;
                let d = reg
                    .put_manifest(&target.path, &tag, platform::OCI_INDEX, &bytes)
                    .await?;
                out.status(format!("{tag}: digest: {d} size: {}", bytes.len()));
                Ok::<_, anyhow::Error>(d)
            })
        });
        info.save();
        Ok(result?)
    }
}

fn annotate_entry(list: &mut ManifestList, digest: &Digest, o: &EntryOptions) -> anyhow::Result<()> {
    let arr = list.index["manifests"]
        .as_array_mut()
        .ok_or_else(|| anyhow!("the list is damaged"))?;
    let e = arr
        .iter_mut()
        .find(|e| e["digest"].as_str() == Some(digest.as_str()))
        .ok_or_else(|| anyhow!("{digest} is not in the manifest list"))?;
    if let Some(v) = &o.os {
        e["platform"]["os"] = json!(v);
    }
    if let Some(v) = &o.arch {
        let p = platform::parse(&format!("linux/{v}"))?;
        e["platform"]["architecture"] = json!(p.architecture);
    }
    if let Some(v) = &o.variant {
        e["platform"]["variant"] = json!(v);
    }
    if let Some(v) = &o.os_version {
        e["platform"]["os.version"] = json!(v);
    }
    if !o.os_features.is_empty() {
        e["platform"]["os.features"] = json!(o.os_features);
    }
    for a in &o.annotations {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| anyhow!("annotation {a:?} must be KEY=VALUE"))?;
        if !e["annotations"].is_object() {
            e["annotations"] = json!({});
        }
        e["annotations"][k] = json!(v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_tags() {
        assert!(has_explicit_tag("x:1"));
        assert!(has_explicit_tag("127.0.0.1:5000/x:1"));
        assert!(!has_explicit_tag("127.0.0.1:5000/x"));
        assert!(!has_explicit_tag("x"));
        assert!(!has_explicit_tag(&format!("x@sha256:{}", "a".repeat(64))));
    }

    #[test]
    fn channel_writer_sends_whole_chunks() {
        let rt = runtime().unwrap();
        let (tx, mut rx) = mpsc::channel::<Bytes>(64);
        let h = std::thread::spawn(move || {
            let mut w = ChannelWriter { tx, buf: Vec::new() };
            w.write_all(&vec![7u8; UPLOAD_CHUNK + 10]).unwrap();
            w.send_buf().unwrap();
        });
        let sizes = rt.block_on(async {
            let mut v = Vec::new();
            while let Some(b) = rx.recv().await {
                v.push(b.len());
            }
            v
        });
        h.join().unwrap();
        assert_eq!(sizes, [UPLOAD_CHUNK, 10]);
    }
}
