//! `load` and `save`: Docker archives (as `docker save` writes them, both
//! the `<id>/layer.tar` and the `blobs/sha256/` layouts) and OCI image
//! layouts (as `skopeo copy … oci-archive:` writes them), gzip'd or not.
//!
//! Loading is all-or-nothing: every member is staged and hashed first, every
//! digest and diff ID checked, and only then is anything committed — a flipped
//! byte leaves the store exactly as it was. Archive member names never become
//! paths: staged files get names of our own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{bail, Result};
use anyhow::{anyhow, Context};
use berth_archive::HashingWriter;
use berth_store::images::{MEDIA_OCI_CONFIG, MEDIA_OCI_LAYER, MEDIA_OCI_MANIFEST};
use berth_store::reference::familiar_name;
use berth_store::{chain_ids, Digest, ImageConfig, ImageRecord, NewImage, NewLayer, Reference, StagedLayer};
use serde_json::{json, Value};

use super::Engine;

const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// What `save` writes.
pub enum SaveFormat {
    /// Docker's archive (`docker save`'s format; also read by skopeo).
    DockerArchive,
    /// An OCI image layout in a tar.
    OciArchive,
    /// An OCI image layout in a directory.
    OciDir,
}

impl std::str::FromStr for SaveFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "docker-archive" | "docker" => Ok(SaveFormat::DockerArchive),
            "oci-archive" | "oci" => Ok(SaveFormat::OciArchive),
            "oci-dir" => Ok(SaveFormat::OciDir),
            other => bail!("unknown save format {other:?}: use docker-archive, oci-archive or oci-dir"),
        }
    }
}

/// What `load` brought in.
#[derive(Debug)]
pub struct Loaded {
    /// The image's ID.
    pub id: Digest,
    /// Familiar names (`bb:latest`).
    pub tags: Vec<String>,
    /// One platform of a multi-platform image (named with the others).
    pub variant: bool,
}

struct StagedFile {
    path: PathBuf,
    digest: Digest,
    size: u64,
}

/// One image found in an archive, before verification.
struct PlannedImage {
    config_key: String,
    config_expected: Option<Digest>,
    layers: Vec<(String, Option<Digest>)>,
    manifest: Option<Vec<u8>>,
    tags: Vec<String>,
    /// One platform of a multi-platform image: the names it is a variant
    /// of, and its platform.
    variant: Option<(Vec<String>, berth_store::Platform)>,
}

/// What `save` writes: single images with the names given, and names
/// with several platforms (each written whole, under an image index).
struct SaveSet {
    singles: Vec<(ImageRecord, Vec<String>)>,
    multis: Vec<(String, Vec<(ImageRecord, berth_store::Platform)>)>,
}

/// `a/./b/../c` → `a/c`; refuses names that climb out.
fn clean_member(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            x => parts.push(x),
        }
    }
    Some(parts.join("/"))
}

fn digest_from_member(key: &str) -> Option<Digest> {
    if let Some(hex) = key.strip_prefix("blobs/sha256/") {
        return Digest::from_hex(hex).ok();
    }
    if let Some(hex) = key.strip_suffix(".json") {
        return Digest::from_hex(hex).ok();
    }
    None
}

impl Engine {
    /// Load every image of a Docker or OCI archive.
    pub fn load<R: Read>(&self, input: R, progress: &crate::progress::Progress) -> Result<Vec<Loaded>> {
        self.load_platform(input, None, progress)
    }

    /// `load --platform`: of a multi-platform image, only that platform
    /// (all of them by default, side by side under the image's name).
    pub fn load_platform<R: Read>(
        &self,
        input: R,
        platform: Option<&str>,
        progress: &crate::progress::Progress,
    ) -> Result<Vec<Loaded>> {
        let platform = platform
            .filter(|p| !p.is_empty())
            .map(berth_store::Platform::parse)
            .transpose()
            .map_err(|e| crate::EngineError::invalid(e.to_string()))?;
        let loaded = self.load_archive(input, platform.as_ref())?;
        for l in &loaded {
            let names: Vec<String> = if l.tags.is_empty() {
                vec![l.id.to_string()]
            } else {
                l.tags.clone()
            };
            for n in names {
                self.record_image_event("load", l.id.as_str(), &n);
            }
            if l.tags.is_empty() && !l.variant {
                progress.emit(crate::progress::Event::Image {
                    id: l.id.to_string(),
                    name: None,
                });
            }
            for t in &l.tags {
                progress.emit(crate::progress::Event::Image {
                    id: l.id.to_string(),
                    name: Some(t.clone()),
                });
            }
        }
        Ok(loaded)
    }

    fn load_archive<R: Read>(&self, input: R, platform: Option<&berth_store::Platform>) -> Result<Vec<Loaded>> {
        let input =
            berth_archive::decompressed(BufReader::with_capacity(1 << 20, input)).context("reading the archive")?;
        let mut ar = tar::Archive::new(input);
        let mut files: HashMap<String, StagedFile> = HashMap::new();
        let mut links: HashMap<String, String> = HashMap::new();
        for entry in ar.entries().context("reading the archive")? {
            let mut entry = entry.context("reading the archive")?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).to_string();
            let Some(key) = clean_member(&raw) else {
                bail!("archive member {raw:?} points outside the archive");
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let path = self.store.staging().path("load")?;
                    let f = berth_archive::perms::create_new(&path, berth_archive::perms::PRIVATE_FILE)
                        .with_context(|| format!("staging {}", path.display()))?;
                    let mut hw = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, f));
                    io::copy(&mut entry, &mut hw).with_context(|| format!("reading archive member {key}"))?;
                    let (mut w, digest, size) = hw.finish();
                    w.flush()?;
                    files.insert(
                        key,
                        StagedFile {
                            path,
                            digest: Digest::parse(&digest)?,
                            size,
                        },
                    );
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name()?
                        .map(|p| p.to_string_lossy().to_string())
                        .unwrap_or_default();
                    let joined = if entry.header().entry_type() == tar::EntryType::Symlink && !target.starts_with('/') {
                        let dir = key.rsplit_once('/').map(|x| x.0).unwrap_or("");
                        format!("{dir}/{target}")
                    } else {
                        target
                    };
                    if let Some(t) = clean_member(&joined) {
                        links.insert(key, t);
                    }
                }
                _ => {}
            }
        }
        // Resolve links (old Docker archives link shared layer.tar files).
        // A link may point at another link: follow a few hops.
        for (k, first) in &links {
            let mut t = first;
            for _ in 0..8 {
                match links.get(t) {
                    Some(next) if !files.contains_key(t) => t = next,
                    _ => break,
                }
            }
            if let Some(f) = files.get(t) {
                let (path, digest, size) = (f.path.clone(), f.digest.clone(), f.size);
                files.insert(k.clone(), StagedFile { path, digest, size });
            }
        }
        // A multi-platform image is only in the OCI part (manifest.json
        // can name one image per tag).
        let multi = files.contains_key("index.json")
            && serde_json::from_slice::<Value>(&self.read_member(&files, "index.json")?)
                .ok()
                .and_then(|v| {
                    v["manifests"].as_array().map(|a| {
                        a.iter()
                            .any(|d| d["mediaType"] == MEDIA_OCI_INDEX || d["mediaType"] == MEDIA_DOCKER_LIST)
                    })
                })
                .unwrap_or(false);
        let plans = if files.contains_key("manifest.json") && !multi {
            self.plan_docker(&files)?
        } else if files.contains_key("index.json") {
            self.plan_oci(&files, platform)?
        } else {
            bail!("this is neither a Docker archive (no manifest.json) nor an OCI archive (no index.json)");
        };
        if plans.is_empty() {
            bail!("the archive holds no images");
        }
        Ok(self.commit_plans(&files, plans)?)
    }

    fn read_member(&self, files: &HashMap<String, StagedFile>, key: &str) -> anyhow::Result<Vec<u8>> {
        let f = files
            .get(key)
            .ok_or_else(|| anyhow!("the archive has no member {key:?}"))?;
        std::fs::read(&f.path).with_context(|| format!("reading archive member {key}"))
    }

    fn plan_docker(&self, files: &HashMap<String, StagedFile>) -> anyhow::Result<Vec<PlannedImage>> {
        let manifest: Value = serde_json::from_slice(&self.read_member(files, "manifest.json")?)
            .context("manifest.json is not valid JSON")?;
        let arr = manifest
            .as_array()
            .ok_or_else(|| anyhow!("manifest.json is not a list"))?;
        let mut plans = Vec::new();
        for m in arr {
            let config_key = clean_member(
                m["Config"]
                    .as_str()
                    .ok_or_else(|| anyhow!("manifest.json: an entry has no Config"))?,
            )
            .ok_or_else(|| anyhow!("manifest.json: bad Config path"))?;
            let mut layers = Vec::new();
            for l in m["Layers"].as_array().into_iter().flatten() {
                let k = clean_member(l.as_str().unwrap_or_default())
                    .ok_or_else(|| anyhow!("manifest.json: bad layer path"))?;
                let d = digest_from_member(&k);
                layers.push((k, d));
            }
            let mut tags = Vec::new();
            for t in m["RepoTags"].as_array().into_iter().flatten() {
                if let Some(t) = t.as_str() {
                    tags.push(
                        Reference::parse(t)
                            .with_context(|| format!("manifest.json: bad RepoTag {t:?}"))?
                            .full(),
                    );
                }
            }
            plans.push(PlannedImage {
                config_expected: digest_from_member(&config_key),
                config_key,
                layers,
                manifest: None,
                tags,
                variant: None,
            });
        }
        Ok(plans)
    }

    fn plan_oci(
        &self,
        files: &HashMap<String, StagedFile>,
        platform: Option<&berth_store::Platform>,
    ) -> anyhow::Result<Vec<PlannedImage>> {
        let index: Value =
            serde_json::from_slice(&self.read_member(files, "index.json")?).context("index.json is not valid JSON")?;
        let mut plans = Vec::new();
        let mut queue: Vec<(Value, Vec<String>, Option<berth_store::Platform>)> = Vec::new();
        for d in index["manifests"].as_array().into_iter().flatten() {
            queue.push((d.clone(), Vec::new(), None));
        }
        while let Some((desc, inherited, variant)) = queue.pop() {
            let digest = Digest::parse(desc["digest"].as_str().unwrap_or_default())
                .context("index.json: a descriptor has a bad digest")?;
            let key = format!("blobs/sha256/{}", digest.hex());
            let bytes = self.read_member(files, &key)?;
            if Digest::of_bytes(&bytes) != digest {
                bail!("digest mismatch for manifest {digest}: the archive member {key} has different content");
            }
            let mut tags = inherited.clone();
            let ann = &desc["annotations"];
            let name = ann["io.containerd.image.name"]
                .as_str()
                .or(ann["org.opencontainers.image.ref.name"].as_str());
            if let Some(n) = name {
                // A bare tag ("latest") names no repository: such images load untagged.
                if n.contains(':') || n.contains('/') {
                    if let Ok(r) = Reference::parse(n) {
                        tags.push(r.full());
                    }
                }
            }
            let v: Value = serde_json::from_slice(&bytes).with_context(|| format!("{key} is not valid JSON"))?;
            let media = desc["mediaType"].as_str().or(v["mediaType"].as_str()).unwrap_or("");
            if media == MEDIA_OCI_INDEX || media == MEDIA_DOCKER_LIST || v["manifests"].is_array() {
                // Every platform the archive holds (an index may list more
                // than were saved), or the one asked for.
                let mut any = false;
                for e in v["manifests"].as_array().into_iter().flatten() {
                    let Some(p) = berth_store::Platform::from_json(&e["platform"]) else {
                        continue;
                    };
                    let held = Digest::parse(e["digest"].as_str().unwrap_or_default())
                        .is_ok_and(|d| files.contains_key(&format!("blobs/sha256/{}", d.hex())));
                    if !held || platform.is_some_and(|want| !want.same_os_arch(&p)) {
                        continue;
                    }
                    any = true;
                    queue.push((e.clone(), tags.clone(), Some(p)));
                }
                if !any {
                    match platform {
                        Some(want) => bail!("the archive holds no image for the platform {want}"),
                        None => bail!("the archive's index {digest} holds none of the images it lists"),
                    }
                }
                continue;
            }
            let config_digest = Digest::parse(v["config"]["digest"].as_str().unwrap_or_default())
                .with_context(|| format!("{key}: bad config digest"))?;
            let mut layers = Vec::new();
            for l in v["layers"].as_array().into_iter().flatten() {
                let d = Digest::parse(l["digest"].as_str().unwrap_or_default())
                    .with_context(|| format!("{key}: bad layer digest"))?;
                layers.push((format!("blobs/sha256/{}", d.hex()), Some(d)));
            }
            let (tags, variant) = match variant {
                Some(p) => (Vec::new(), Some((tags, p))),
                None => (tags, None),
            };
            plans.push(PlannedImage {
                config_key: format!("blobs/sha256/{}", config_digest.hex()),
                config_expected: Some(config_digest),
                layers,
                manifest: Some(bytes),
                tags,
                variant,
            });
        }
        plans.reverse();
        Ok(plans)
    }

    fn commit_plans(
        &self,
        files: &HashMap<String, StagedFile>,
        plans: Vec<PlannedImage>,
    ) -> anyhow::Result<Vec<Loaded>> {
        struct Ready {
            config: Vec<u8>,
            layers: Vec<(String, Digest, u64, Digest, String)>, // key, blob digest, blob size, diff id, media type
            manifest: Option<Vec<u8>>,
            tags: Vec<String>,
            variant: Option<(Vec<String>, berth_store::Platform)>,
        }
        let mut ready = Vec::new();
        let mut staged_layers: HashMap<Digest, StagedLayer> = HashMap::new();
        let mut layer_sizes: HashMap<Digest, u64> = HashMap::new();
        // Phase 1: verify everything; nothing becomes visible.
        for plan in plans {
            let config = self.read_member(files, &plan.config_key)?;
            let config_digest = Digest::of_bytes(&config);
            if let Some(exp) = &plan.config_expected {
                if *exp != config_digest {
                    bail!(
                        "digest mismatch for image config {}: expected {exp}, got {config_digest}",
                        plan.config_key
                    );
                }
            }
            let cfg = ImageConfig::from_bytes(&config)
                .with_context(|| format!("image config {} is not valid", plan.config_key))?;
            let diff_ids: Vec<Digest> = cfg.diff_ids()?;
            if diff_ids.len() != plan.layers.len() {
                bail!(
                    "image {config_digest}: its config lists {} layers but the archive gives {}",
                    diff_ids.len(),
                    plan.layers.len()
                );
            }
            let chains = chain_ids(&diff_ids);
            let manifest_media: Vec<Option<String>> = match &plan.manifest {
                Some(m) => {
                    let v: Value = serde_json::from_slice(m)?;
                    v["layers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|l| l["mediaType"].as_str().map(String::from))
                        .collect()
                }
                None => vec![None; plan.layers.len()],
            };
            let mut layers = Vec::new();
            for (i, (key, expected)) in plan.layers.iter().enumerate() {
                let what = format!("layer {} ({key})", i + 1);
                let f = files
                    .get(key)
                    .ok_or_else(|| anyhow!("{what} is missing from the archive"))?;
                if let Some(exp) = expected {
                    if *exp != f.digest {
                        bail!("digest mismatch for {what}: expected {exp}, got {}", f.digest);
                    }
                }
                let chain = &chains[i];
                let unpacked_size;
                if self.store.has_layer_files(chain, &diff_ids[i])? || staged_layers.contains_key(chain) {
                    // Present already: prove the blob is that layer without unpacking.
                    if f.digest != diff_ids[i] {
                        let (d, size) = hash_uncompressed(&f.path).with_context(|| format!("reading {what}"))?;
                        if d != diff_ids[i] {
                            bail!(
                                "digest mismatch for {what}: the config says its content is {}, the archive's is {d}",
                                diff_ids[i]
                            );
                        }
                        unpacked_size = size;
                    } else {
                        unpacked_size = f.size;
                    }
                } else {
                    let input = BufReader::with_capacity(1 << 20, File::open(&f.path)?);
                    let staged = self.store.stage_layer(input, &what)?;
                    if staged.diff_id != diff_ids[i] {
                        bail!(
                            "digest mismatch for {what}: the config says its content is {}, the archive's is {}",
                            diff_ids[i],
                            staged.diff_id
                        );
                    }
                    unpacked_size = staged.size;
                    staged_layers.insert(chain.clone(), staged);
                }
                layer_sizes.insert(chain.clone(), unpacked_size);
                let media = manifest_media.get(i).cloned().flatten().unwrap_or_else(|| {
                    let mut head = [0u8; 4];
                    let n = File::open(&f.path).and_then(|mut x| x.read(&mut head)).unwrap_or(0);
                    match berth_archive::sniff(&head[..n]) {
                        berth_archive::Compression::Gzip => berth_store::images::MEDIA_OCI_LAYER_GZIP.into(),
                        berth_archive::Compression::Zstd => berth_store::images::MEDIA_OCI_LAYER_ZSTD.into(),
                        berth_archive::Compression::None => MEDIA_OCI_LAYER.into(),
                    }
                });
                layers.push((key.clone(), f.digest.clone(), f.size, diff_ids[i].clone(), media));
            }
            ready.push(Ready {
                config,
                layers,
                manifest: plan.manifest,
                tags: plan.tags,
                variant: plan.variant,
            });
        }
        // Phase 2: commit.
        let mut out = Vec::new();
        let mut variants: BTreeMap<String, Vec<berth_store::Variant>> = BTreeMap::new();
        for r in ready {
            let cfg = ImageConfig::from_bytes(&r.config)?;
            let diff_ids: Vec<Digest> = cfg.diff_ids()?;
            let chains = chain_ids(&diff_ids);
            let mut layers = Vec::new();
            for (i, (key, blob, blob_size, diff_id, media)) in r.layers.into_iter().enumerate() {
                let f = &files[&key];
                layers.push(NewLayer {
                    diff_id,
                    blob: blob.clone(),
                    media_type: media,
                    blob_size,
                    size: layer_sizes.get(&chains[i]).copied().unwrap_or(blob_size),
                    staged_blob: Some(self.store.blobs().adopt_staged(f.path.clone(), blob, blob_size)),
                    staged_dir: staged_layers.remove(&chains[i]),
                });
            }
            let rec = self.store.commit_image(NewImage {
                config: r.config,
                layers,
                parent: None,
                tags: r.tags.clone(),
                repo_digests: vec![],
                manifest: r.manifest,
            })?;
            let mut shown: Vec<String> = r.tags.iter().map(|t| familiar_name(t)).collect();
            let is_variant = r.variant.is_some();
            if let Some((names, p)) = r.variant {
                for n in names {
                    let vs = variants.entry(n.clone()).or_default();
                    if vs.is_empty() {
                        shown.push(familiar_name(&n));
                    }
                    vs.push(berth_store::Variant {
                        platform: p.clone(),
                        image_id: rec.id.clone(),
                    });
                }
            }
            out.push(Loaded {
                id: rec.id,
                tags: shown,
                variant: is_variant,
            });
        }
        for (name, vs) in &variants {
            self.store.set_variants(name, vs)?;
        }
        Ok(out)
    }

    /// Resolve what to save: each image once, with the names the user
    /// gave; a name with several platforms whole (unless `platform` picks one).
    fn save_set(&self, refs: &[String], platform: Option<&str>) -> anyhow::Result<SaveSet> {
        let mut order: Vec<(ImageRecord, Vec<String>)> = Vec::new();
        let mut multis = Vec::new();
        for word in refs {
            if platform.is_none_or(str::is_empty) {
                if let Ok(r) = Reference::parse(word) {
                    let vs = self.store.variants(&r.full())?;
                    if vs.len() > 1 {
                        if !multis.iter().any(|(n, _)| *n == r.full()) {
                            let imgs = vs
                                .into_iter()
                                .map(|v| Ok((self.store.image(&v.image_id)?, v.platform)))
                                .collect::<anyhow::Result<Vec<_>>>()?;
                            multis.push((r.full(), imgs));
                        }
                        continue;
                    }
                }
            }
            let img = self.resolve_image_platform(word, platform)?;
            let name = Reference::parse(word)
                .ok()
                .map(|r| r.full())
                .filter(|n| img.tags.contains(n));
            match order.iter_mut().find(|(i, _)| i.id == img.id) {
                Some((_, names)) => names.extend(name),
                None => order.push((img, name.into_iter().collect())),
            }
        }
        Ok(SaveSet { singles: order, multis })
    }

    /// Write images to `out` as a Docker archive or an OCI archive.
    pub fn save<W: Write>(&self, refs: &[String], format: SaveFormat, out: W) -> Result<()> {
        self.save_platform(refs, None, format, out)
    }

    /// [`Self::save`] with `--platform`: only that platform of each image.
    pub fn save_platform<W: Write>(
        &self,
        refs: &[String],
        platform: Option<&str>,
        format: SaveFormat,
        out: W,
    ) -> Result<()> {
        let set = self.save_set(refs, platform)?;
        let mut b = tar::Builder::new(out);
        b.mode(tar::HeaderMode::Deterministic);
        match format {
            SaveFormat::DockerArchive => self.write_docker_archive(&mut b, &set)?,
            SaveFormat::OciArchive => self.write_oci_layout(&mut b, &set)?,
            SaveFormat::OciDir => bail!("oci-dir writes a directory: use save_oci_dir"),
        }
        b.into_inner().context("finishing the archive")?.flush()?;
        Ok(())
    }

    /// `--format oci-dir -o DIR`: an OCI image layout directory.
    pub fn save_oci_dir(&self, refs: &[String], dir: &Path) -> Result<()> {
        self.save_oci_dir_platform(refs, None, dir)
    }

    /// [`Self::save_oci_dir`] with `--platform`.
    pub fn save_oci_dir_platform(&self, refs: &[String], platform: Option<&str>, dir: &Path) -> Result<()> {
        let set = self.save_set(refs, platform)?;
        std::fs::create_dir_all(dir.join("blobs/sha256")).with_context(|| format!("creating {}", dir.display()))?;
        let copy_blobs = |img: &ImageRecord| -> anyhow::Result<usize> {
            let manifest = self.store.blobs().read(&img.manifest)?;
            let m: Value = serde_json::from_slice(&manifest)?;
            // A stored blob's path, or a lazy layer blob made first.
            let mut blobs = vec![img.manifest.clone(), img.id.clone()];
            for l in m["layers"].as_array().into_iter().flatten() {
                blobs.push(Digest::parse(l["digest"].as_str().unwrap_or_default())?);
            }
            for d in blobs {
                let target = dir.join("blobs/sha256").join(d.hex());
                if !target.exists() {
                    let src = self.store.layer_blob_by_digest(&d)?;
                    std::fs::copy(&src, &target).with_context(|| format!("writing {}", target.display()))?;
                }
            }
            Ok(manifest.len())
        };
        let mut index = Vec::new();
        for (img, names) in &set.singles {
            let len = copy_blobs(img)?;
            index.extend(index_entries(img, names, len));
        }
        for (name, imgs) in &set.multis {
            for (img, _) in imgs {
                copy_blobs(img)?;
            }
            let idx = self
                .store
                .variants_index(name)?
                .ok_or_else(|| anyhow!("{name} lost its platforms while being saved"))?;
            let d = Digest::of_bytes(&idx);
            std::fs::write(dir.join("blobs/sha256").join(d.hex()), &idx)?;
            index.push(name_entry(name, &d, idx.len()));
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index}))?,
        )?;
        Ok(())
    }

    fn write_oci_layout<W: Write>(&self, b: &mut tar::Builder<W>, set: &SaveSet) -> anyhow::Result<()> {
        let mut written: BTreeSet<Digest> = BTreeSet::new();
        let mut index = Vec::new();
        add_bytes(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add_dir(b, "blobs/")?;
        add_dir(b, "blobs/sha256/")?;
        let all = set
            .singles
            .iter()
            .map(|(i, n)| (i, Some(n)))
            .chain(set.multis.iter().flat_map(|(_, v)| v.iter().map(|(i, _)| (i, None))));
        for (img, names) in all {
            let manifest = self.store.blobs().read(&img.manifest)?;
            let m: Value = serde_json::from_slice(&manifest)?;
            // A stored blob, or a lazy layer blob made first.
            let mut blobs = Vec::new();
            for l in m["layers"].as_array().into_iter().flatten() {
                blobs.push(Digest::parse(l["digest"].as_str().unwrap_or_default())?);
            }
            blobs.push(img.id.clone());
            blobs.push(img.manifest.clone());
            for d in blobs {
                if written.insert(d.clone()) {
                    let f = self.store.open_layer_blob(&d)?;
                    let size = f.metadata().with_context(|| format!("reading blob {d}"))?.len();
                    add_reader(b, &format!("blobs/sha256/{}", d.hex()), size, f)?;
                }
            }
            if let Some(names) = names {
                index.extend(index_entries(img, names, manifest.len()));
            }
        }
        for (name, _) in &set.multis {
            let idx = self
                .store
                .variants_index(name)?
                .ok_or_else(|| anyhow!("{name} lost its platforms while being saved"))?;
            let d = Digest::of_bytes(&idx);
            if written.insert(d.clone()) {
                add_bytes(b, &format!("blobs/sha256/{}", d.hex()), &idx)?;
            }
            index.push(name_entry(name, &d, idx.len()));
        }
        let idx = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index}))?;
        add_bytes(b, "index.json", &idx)?;
        Ok(())
    }

    /// Docker's archive, in the layout Docker 25+ writes: OCI blobs plus
    /// `manifest.json` and `repositories`. Layers are written uncompressed,
    /// as `docker load` and skopeo expect of a Docker archive.
    fn write_docker_archive<W: Write>(&self, b: &mut tar::Builder<W>, set: &SaveSet) -> anyhow::Result<()> {
        let mut written: BTreeSet<Digest> = BTreeSet::new();
        let mut manifest_json = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut index = Vec::new();
        add_bytes(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add_dir(b, "blobs/")?;
        add_dir(b, "blobs/sha256/")?;
        // Each variant of a multi-platform name: its manifest (as written
        // here) goes into that name's index; manifest.json names only the
        // one the name means without a platform.
        type Item<'a> = (&'a ImageRecord, Vec<String>, Option<(usize, &'a berth_store::Platform)>);
        let mut items: Vec<Item<'_>> = set.singles.iter().map(|(i, n)| (i, n.clone(), None)).collect();
        let mut multi_entries: Vec<Vec<Value>> = Vec::new();
        for (k, (name, imgs)) in set.multis.iter().enumerate() {
            let default = self.store.resolve_image(name).ok().map(|i| i.id);
            for (img, p) in imgs {
                let names = if default.as_ref() == Some(&img.id) {
                    vec![name.clone()]
                } else {
                    vec![]
                };
                items.push((img, names, Some((k, p))));
            }
            multi_entries.push(Vec::new());
        }
        for (img, names, multi) in items {
            let names = &names;
            let cfg_bytes = self.store.blobs().read(&img.id)?;
            let mut layer_paths = Vec::new();
            let mut descs = Vec::new();
            for (i, chain) in img.layers.iter().enumerate() {
                let rec = self
                    .store
                    .layer(chain)?
                    .ok_or_else(|| anyhow!("layer {} of image {} has no record", i + 1, img.id))?;
                let path = format!("blobs/sha256/{}", rec.diff_id.hex());
                if written.insert(rec.diff_id.clone()) {
                    let f = BufReader::with_capacity(1 << 20, self.store.open_layer_blob(&rec.blob)?);
                    let r = berth_archive::decompressed(f)?;
                    add_reader(b, &path, rec.size, r).with_context(|| format!("writing layer {}", rec.diff_id))?;
                }
                descs.push(json!({"mediaType": MEDIA_OCI_LAYER, "digest": rec.diff_id.as_str(), "size": rec.size}));
                layer_paths.push(path);
            }
            if written.insert(img.id.clone()) {
                add_bytes(b, &format!("blobs/sha256/{}", img.id.hex()), &cfg_bytes)?;
            }
            let mut manifest = json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_OCI_MANIFEST,
                "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": img.id.as_str(), "size": cfg_bytes.len()},
                "layers": descs,
            });
            // The stored manifest's annotations (`build --annotation`) stay.
            let stored: Option<Value> = self
                .store
                .blobs()
                .read(&img.manifest)
                .ok()
                .and_then(|m| serde_json::from_slice(&m).ok());
            if let Some(a) = stored.as_ref().map(|m| &m["annotations"]).filter(|a| a.is_object()) {
                manifest["annotations"] = a.clone();
            }
            let manifest = serde_json::to_vec(&manifest)?;
            let mdigest = Digest::of_bytes(&manifest);
            if written.insert(mdigest.clone()) {
                add_bytes(b, &format!("blobs/sha256/{}", mdigest.hex()), &manifest)?;
            }
            let tags: Vec<String> = names.iter().map(|n| familiar_name(n)).collect();
            for t in names {
                let r = Reference::parse(t)?;
                repositories
                    .entry(r.familiar_repository())
                    .or_default()
                    .insert(r.tag.clone().unwrap_or_default(), img.id.hex().to_string());
            }
            let mut entry =
                json!({"mediaType": MEDIA_OCI_MANIFEST, "digest": mdigest.as_str(), "size": manifest.len()});
            if let Some((k, p)) = multi {
                let mut plat = json!({"architecture": p.architecture, "os": p.os});
                if let Some(v) = &p.variant {
                    plat["variant"] = json!(v);
                }
                entry["platform"] = plat;
                multi_entries[k].push(entry);
            } else {
                if let Some(first) = names.first() {
                    let r = Reference::parse(first)?;
                    entry["annotations"] = json!({"io.containerd.image.name": r.full(), "org.opencontainers.image.ref.name": r.tag.unwrap_or_default()});
                }
                index.push(entry);
            }
            manifest_json.push(json!({
                "Config": format!("blobs/sha256/{}", img.id.hex()),
                "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
                "Layers": layer_paths,
            }));
        }
        for ((name, _), entries) in set.multis.iter().zip(multi_entries) {
            let idx =
                serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": entries}))?;
            let d = Digest::of_bytes(&idx);
            if written.insert(d.clone()) {
                add_bytes(b, &format!("blobs/sha256/{}", d.hex()), &idx)?;
            }
            index.push(name_entry(name, &d, idx.len()));
        }
        add_bytes(
            b,
            "index.json",
            &serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index}))?,
        )?;
        add_bytes(b, "manifest.json", &serde_json::to_vec(&manifest_json)?)?;
        if !repositories.is_empty() {
            add_bytes(b, "repositories", &serde_json::to_vec(&repositories)?)?;
        }
        Ok(())
    }
}

/// index.json's entry for a multi-platform name: its image index.
fn name_entry(name: &str, index: &Digest, size: usize) -> Value {
    let tag = Reference::parse(name).ok().and_then(|r| r.tag).unwrap_or_default();
    json!({
        "mediaType": MEDIA_OCI_INDEX,
        "digest": index.as_str(),
        "size": size,
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
    })
}

fn index_entries(img: &ImageRecord, names: &[String], manifest_len: usize) -> Vec<Value> {
    let base = json!({"mediaType": MEDIA_OCI_MANIFEST, "digest": img.manifest.as_str(), "size": manifest_len});
    if names.is_empty() {
        return vec![base];
    }
    names
        .iter()
        .filter_map(|n| Reference::parse(n).ok())
        .map(|r| {
            let mut e = base.clone();
            e["annotations"] = json!({
                "io.containerd.image.name": r.full(),
                "org.opencontainers.image.ref.name": r.tag.clone().unwrap_or_default(),
            });
            e
        })
        .collect()
}

fn hash_uncompressed(path: &Path) -> anyhow::Result<(Digest, u64)> {
    let r = berth_archive::decompressed(BufReader::with_capacity(1 << 20, File::open(path)?))?;
    let mut hw = HashingWriter::new(io::sink());
    let mut r = r;
    io::copy(&mut r, &mut hw)?;
    let (_, d, n) = hw.finish();
    Ok((Digest::parse(&d)?, n))
}

fn header(size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn add_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> anyhow::Result<()> {
    let mut h = header(data.len() as u64, tar::EntryType::Regular, 0o644);
    b.append_data(&mut h, path, data)
        .with_context(|| format!("writing {path}"))?;
    Ok(())
}

fn add_dir<W: Write>(b: &mut tar::Builder<W>, path: &str) -> anyhow::Result<()> {
    let mut h = header(0, tar::EntryType::Directory, 0o755);
    b.append_data(&mut h, path, io::empty())
        .with_context(|| format!("writing {path}"))?;
    Ok(())
}

fn add_reader<W: Write, R: Read>(b: &mut tar::Builder<W>, path: &str, size: u64, r: R) -> anyhow::Result<()> {
    let mut h = header(size, tar::EntryType::Regular, 0o644);
    // A reader shorter or longer than promised would corrupt the archive: check.
    let mut counted = CountingReader { inner: r, n: 0 };
    b.append_data(&mut h, path, &mut counted)
        .with_context(|| format!("writing {path}"))?;
    if counted.n != size {
        bail!("{path}: expected {size} bytes, read {}", counted.n);
    }
    Ok(())
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::clean_member;

    #[test]
    fn member_names_never_climb_out() {
        assert_eq!(clean_member("./a/../b").as_deref(), Some("b"));
        assert_eq!(clean_member("blobs/sha256/x").as_deref(), Some("blobs/sha256/x"));
        assert_eq!(clean_member("../x"), None);
        assert_eq!(clean_member("/a/b").as_deref(), Some("a/b"));
    }
}
