//! The build cache in a registry: `berth build --cache-to
//! type=registry,ref=HOST/REPO:TAG[,mode=min|max]` and `--cache-from
//! type=registry,ref=…`.
//!
//! # Format
//!
//! A cache is one OCI image index, pushed under the ref's tag:
//!
//! ```text
//! {
//!   "schemaVersion": 2,
//!   "mediaType": "application/vnd.oci.image.index.v1+json",
//!   "artifactType": "application/vnd.berth.build-cache.v1+json",
//!   "annotations": {"io.berth.build-cache.version": "1"},
//!   "manifests": [
//!     { "mediaType": "application/vnd.oci.image.manifest.v1+json",
//!       "digest": "sha256:…", "size": 1234,
//!       "annotations": {
//!         "io.berth.build-cache.image": "sha256:<image ID>",
//!         "io.berth.build-cache.parent": "sha256:<parent step's image ID>",
//!         "io.berth.build-cache.keys": "sha256:<step key>,sha256:<step key>" } },
//!     …
//!   ]
//! }
//! ```
//!
//! Every entry is a step image exactly as the build committed it: an
//! ordinary image manifest (pushed by digest into the same repository) with
//! its config and layers, so the cache is plain OCI content any registry
//! stores and any tool copies. The records BuildKit keeps in a separate
//! config blob (which key produced which layers) are here the entry's
//! annotations: the step keys (see `berth_build::executor::cache::step_key`)
//! that the image answers, the image ID (its config digest, checked when
//! imported) and its parent step. Entries are ordered parents first.
//!
//! `mode=min` (the default, as in BuildKit) exports the steps of the final
//! image's own chain; `mode=max` every step the build ran or reused,
//! other stages' included. A `COPY --from=STAGE` step's key names the
//! source stage's image, so with `min` a fresh store that has to run the
//! other stages again is served only up to the first such step: use `max`
//! for multi-stage builds.
//!
//! Importing is lazy: the index is read before the build, and a step image
//! is downloaded only when the build asks for its key, so a cache that
//! misses costs one manifest request. A cache that cannot be read is a
//! warning (the build runs without it); a cache that cannot be written is
//! an error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::error::{bail, Result};
use anyhow::{anyhow, Context};
use berth_build::executor::{CacheLookup, CachedStep};
use berth_registry::futures_util::{StreamExt, TryStreamExt};
use berth_registry::platform;
use berth_registry::{Options, Registry};
use berth_store::{chain_ids, Digest, ImageConfig, NewImage, NewLayer, Reference};
use serde_json::{json, Value};

use super::registry::{desc_of, runtime, BlobInfo, Desc, PARALLEL};
use super::Engine;
use crate::progress::Progress;

/// The index's `artifactType`.
pub const CACHE_ARTIFACT: &str = "application/vnd.berth.build-cache.v1+json";
const A_VERSION: &str = "io.berth.build-cache.version";
const A_IMAGE: &str = "io.berth.build-cache.image";
const A_PARENT: &str = "io.berth.build-cache.parent";
const A_KEYS: &str = "io.berth.build-cache.keys";

/// Which steps `--cache-to` exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// The final image's chain of steps.
    #[default]
    Min,
    /// Every step of the build.
    Max,
}

/// A `type=registry` cache: where, and for `--cache-to` which steps.
#[derive(Clone, Debug)]
pub struct RegistryCache {
    /// Where the cache lives (`HOST/REPO:TAG`).
    pub reference: Reference,
    /// Which steps are exported: the final image's (`min`) or all (`max`).
    pub mode: CacheMode,
}

impl RegistryCache {
    /// `ref=HOST/REPO[:TAG][,mode=min|max]` (the `type=registry` part
    /// already taken off); `flag` names the option in errors.
    pub fn parse(flag: &str, spec: &str, fields: &BTreeMap<String, String>) -> Result<RegistryCache> {
        let r = fields
            .get("ref")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| anyhow!("{flag} {spec}: type=registry needs ref=HOST/REPOSITORY[:TAG]"))?;
        let reference =
            Reference::parse(r).with_context(|| format!("{flag} {spec}: {r:?} is not a valid image reference"))?;
        if reference.digest.is_some() && flag == "--cache-to" {
            bail!("{flag} {spec}: the cache is pushed under a tag, not a digest ({r})");
        }
        let mode = match fields.get("mode").map(String::as_str) {
            None | Some("min") => CacheMode::Min,
            Some("max") => CacheMode::Max,
            Some(m) => bail!("{flag} {spec}: mode={m} is not a cache mode (use min or max)"),
        };
        for k in fields.keys() {
            if !["type", "ref", "mode"].contains(&k.as_str()) {
                bail!("{flag} {spec}: unknown option {k} for type=registry (known: ref, mode)");
            }
        }
        Ok(RegistryCache { reference, mode })
    }

    fn tag_or_digest(&self) -> String {
        self.reference.tag_or_digest()
    }
}

/// One step image of a cache index.
#[derive(Clone, Debug)]
struct Entry {
    manifest: Desc,
    image: Digest,
    parent: Option<Digest>,
    keys: Vec<String>,
}

fn parse_index(bytes: &[u8], what: &str) -> anyhow::Result<Vec<Entry>> {
    let v: Value = serde_json::from_slice(bytes).with_context(|| format!("{what} is not JSON"))?;
    if v["annotations"][A_VERSION].as_str() != Some("1") {
        bail!(
            "{what} is not a berth build cache (no {A_VERSION}=1 annotation): was it written by berth build --cache-to type=registry?"
        );
    }
    let mut out = Vec::new();
    for (i, m) in v["manifests"].as_array().into_iter().flatten().enumerate() {
        let a = &m["annotations"];
        let what = format!("entry {} of {what}", i + 1);
        let image = Digest::parse(a[A_IMAGE].as_str().unwrap_or_default())
            .with_context(|| format!("{what} has no valid {A_IMAGE}"))?;
        let parent = a[A_PARENT].as_str().and_then(|p| Digest::parse(p).ok());
        let keys = a[A_KEYS]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect();
        out.push(Entry {
            manifest: desc_of(m, &what)?,
            image,
            parent,
            keys,
        });
    }
    Ok(out)
}

/// The caches of one build, read lazily from the builder's threads.
struct RemoteCaches {
    inner: Mutex<Inner>,
}

struct Inner {
    rt: berth_registry::tokio::runtime::Runtime,
    engine: Engine,
    caches: Vec<Loaded>,
}

/// One cache read: where it is, its entries and which entry answers a key.
struct Loaded {
    reg: Registry,
    repo: String,
    entries: Vec<Entry>,
    keys: HashMap<String, usize>,
}

impl RemoteCaches {
    fn lookup(&self, key: &str) -> anyhow::Result<Option<Digest>, String> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for Loaded {
            reg,
            repo,
            entries,
            keys,
        } in &inner.caches
        {
            let Some(&i) = keys.get(key) else { continue };
            let e = &entries[i];
            let what = format!("{}/{repo}", reg.name());
            let id = std::thread::scope(|s| inner.rt.block_on(inner.engine.import_cache_image(s, reg, repo, e)))
                .map_err(|err| format!("importing step {} from {what}: {err:#}", e.image.short()))?;
            return Ok(Some(id));
        }
        Ok(None)
    }
}

impl Engine {
    /// Read the indexes of `--cache-from type=registry` caches. Caches that
    /// cannot be read are reported through `warn` and left out; None when
    /// no cache is usable.
    pub fn open_registry_caches(
        &self,
        caches: &[RegistryCache],
        opts: &Options,
        warn: &mut (dyn FnMut(String) + Send),
    ) -> Result<Option<CacheLookup>> {
        crate::off_runtime(|| self.open_registry_caches_here(caches, opts, warn))
    }

    fn open_registry_caches_here(
        &self,
        caches: &[RegistryCache],
        opts: &Options,
        warn: &mut (dyn FnMut(String) + Send),
    ) -> Result<Option<CacheLookup>> {
        if caches.is_empty() {
            return Ok(None);
        }
        let rt = runtime()?;
        let mut loaded = Vec::new();
        for c in caches {
            let r = &c.reference;
            let shown = r.familiar();
            let res = rt.block_on(async {
                let reg = Registry::connect(&r.domain, opts).await?;
                let m = reg.get_manifest(&r.path, &c.tag_or_digest()).await?;
                if !platform::is_index(&m.media_type) {
                    bail!("{shown} is an image, not a build cache (an image index written by berth build --cache-to type=registry)");
                }
                let entries = parse_index(&m.bytes, &format!("the index {shown}"))?;
                Ok::<_, anyhow::Error>((reg, entries))
            });
            match res {
                Ok((reg, entries)) => {
                    let mut keys = HashMap::new();
                    for (i, e) in entries.iter().enumerate() {
                        for k in &e.keys {
                            keys.insert(k.clone(), i);
                        }
                    }
                    log::debug!("cache {shown}: {} step images, {} keys", entries.len(), keys.len());
                    loaded.push(Loaded {
                        reg,
                        repo: r.path.clone(),
                        entries,
                        keys,
                    });
                }
                Err(e) => warn(format!(
                    "[Warning] --cache-from type=registry,ref={shown}: {e:#}; building without it"
                )),
            }
        }
        if loaded.is_empty() {
            return Ok(None);
        }
        let engine = Engine::open(self.root(), self.runtime.clone())?;
        let rc = Arc::new(RemoteCaches {
            inner: Mutex::new(Inner {
                rt,
                engine,
                caches: loaded,
            }),
        });
        Ok(Some(CacheLookup(Arc::new(move |key| rc.lookup(key)))))
    }

    /// Check before a build that `--cache-to` can reach its registry (and
    /// that it is allowed).
    pub fn check_registry_cache_target(&self, cache: &RegistryCache, opts: &Options) -> Result<()> {
        crate::off_runtime(|| self.check_registry_cache_target_here(cache, opts))
    }

    fn check_registry_cache_target_here(&self, cache: &RegistryCache, opts: &Options) -> Result<()> {
        let rt = runtime()?;
        rt.block_on(Registry::connect(&cache.reference.domain, opts))?;
        Ok(())
    }

    /// Bring one cached step image into the store (its manifest, config and
    /// the layers the store lacks, every digest checked) and record its
    /// step keys. Returns the image ID.
    async fn import_cache_image<'scope, 'env>(
        &'env self,
        s: &'scope std::thread::Scope<'scope, 'env>,
        reg: &Registry,
        repo: &str,
        e: &Entry,
    ) -> anyhow::Result<Digest> {
        let store = &self.store;
        let complete = store
            .image(&e.image)
            .map(|img| img.layers.iter().all(|c| store.has_layer_dir(c)))
            .unwrap_or(false);
        if !complete {
            let m = reg.get_manifest(repo, e.manifest.digest.as_str()).await?;
            let mv = m.json().context("the step manifest is not JSON")?;
            let config_desc = desc_of(&mv["config"], "the step manifest's config")?;
            if config_desc.digest != e.image {
                bail!(
                    "the cache says step image {} but its manifest {} holds config {}",
                    e.image,
                    e.manifest.digest,
                    config_desc.digest
                );
            }
            let config = reg.get_blob_bytes(repo, &config_desc.digest, 32 << 20).await?;
            let cfg = ImageConfig::from_bytes(&config).context("the step's image config is not valid")?;
            let diff_ids = cfg.diff_ids()?;
            let layer_descs: Vec<Desc> = mv["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, l)| desc_of(l, &format!("layer {} of the step manifest", i + 1)))
                .collect::<anyhow::Result<_>>()?;
            if diff_ids.len() != layer_descs.len() {
                bail!(
                    "step image {}: its config lists {} layers, its manifest {}",
                    e.image,
                    diff_ids.len(),
                    layer_descs.len()
                );
            }
            let chains = chain_ids(&diff_ids);
            let full_repo = format!("{}/{repo}", reg.name());
            let quiet = Progress::none();
            let jobs = layer_descs.iter().enumerate().map(|(i, d)| {
                let what = format!("cached layer {} ({}) of {full_repo}", i + 1, d.digest);
                self.pull_layer(s, reg, repo, d, &diff_ids[i], &chains[i], what, &quiet)
            });
            let layers: Vec<NewLayer> = berth_registry::futures_util::stream::iter(jobs)
                .buffered(PARALLEL)
                .try_collect()
                .await?;
            let parent = e.parent.clone().filter(|p| store.image(p).is_ok());
            store.commit_image(NewImage {
                config,
                layers,
                parent,
                tags: Vec::new(),
                repo_digests: Vec::new(),
                manifest: Some(m.bytes.clone()),
            })?;
        }
        for k in &e.keys {
            store.cache_put(k, &e.image)?;
        }
        Ok(e.image.clone())
    }

    /// Push the steps of a build as a cache index under `cache`'s tag.
    /// Returns the index digest and the number of step images.
    pub fn export_registry_cache(
        &self,
        cache: &RegistryCache,
        steps: &[CachedStep],
        final_image: &Digest,
        opts: &Options,
        out: &Progress,
    ) -> Result<(Digest, usize)> {
        crate::off_runtime(|| self.export_registry_cache_here(cache, steps, final_image, opts, out))
    }

    fn export_registry_cache_here(
        &self,
        cache: &RegistryCache,
        steps: &[CachedStep],
        final_image: &Digest,
        opts: &Options,
        out: &Progress,
    ) -> Result<(Digest, usize)> {
        let store = &self.store;
        // The steps to export, grouped by image, parents first.
        let wanted: Option<HashSet<Digest>> = match cache.mode {
            CacheMode::Max => None,
            CacheMode::Min => {
                let mut chain = HashSet::new();
                let mut cur = Some(final_image.clone());
                while let Some(id) = cur {
                    if !chain.insert(id.clone()) {
                        break;
                    }
                    cur = store.image(&id).ok().and_then(|i| i.parent);
                }
                Some(chain)
            }
        };
        let mut order: Vec<Digest> = Vec::new();
        let mut keys: HashMap<Digest, Vec<String>> = HashMap::new();
        for st in steps {
            if wanted.as_ref().is_some_and(|w| !w.contains(&st.image)) {
                continue;
            }
            let k = keys.entry(st.image.clone()).or_default();
            if k.is_empty() {
                order.push(st.image.clone());
            }
            if !k.contains(&st.key) {
                k.push(st.key.clone());
            }
        }
        let mut images = Vec::new();
        for id in &order {
            images.push(
                store
                    .image(id)
                    .with_context(|| format!("step image {} is no longer in the store", id.short()))?,
            );
        }
        // Parents before children: the order steps finished in already is,
        // within a stage; across stages, sort by depth.
        images.sort_by_key(|i| i.layers.len());
        let target = &cache.reference;
        let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
        out.status(format!(
            "Exporting the build cache ({} step images) to {}",
            images.len(),
            target.familiar()
        ));
        let rt = runtime()?;
        let mut info = BlobInfo::load(self.root());
        let result = std::thread::scope(|s| {
            rt.block_on(async {
                let reg = Registry::connect(&target.domain, opts).await?;
                let mut done = HashSet::new();
                let mut manifests = Vec::new();
                for img in &images {
                    let (d, size, mt) = self
                        .push_image(s, &reg, &target.path, img, None, None, out, &mut info, &mut done)
                        .await?;
                    let mut a = json!({
                        A_IMAGE: img.id.as_str(),
                        A_KEYS: keys[&img.id].join(","),
                    });
                    if let Some(p) = &img.parent {
                        a[A_PARENT] = json!(p.as_str());
                    }
                    manifests.push(json!({"mediaType": mt, "digest": d.as_str(), "size": size, "annotations": a}));
                }
                let index = json!({
                    "schemaVersion": 2,
                    "mediaType": platform::OCI_INDEX,
                    "artifactType": CACHE_ARTIFACT,
                    "annotations": {A_VERSION: "1"},
                    "manifests": manifests,
                });
                let bytes = serde_json::to_vec(&index)?;
                let d = reg
                    .put_manifest(&target.path, &tag, platform::OCI_INDEX, &bytes)
                    .await?;
                Ok::<_, anyhow::Error>(d)
            })
        });
        info.save();
        let d = result?;
        out.status(format!("cache {tag}: digest: {d}"));
        Ok((d, images.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &str) -> BTreeMap<String, String> {
        s.split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn specs_parse_with_clear_errors() {
        let spec = "type=registry,ref=127.0.0.1:5000/app:cache,mode=max";
        let c = RegistryCache::parse("--cache-to", spec, &fields(spec)).unwrap();
        assert_eq!(c.mode, CacheMode::Max);
        assert_eq!(c.reference.tag.as_deref(), Some("cache"));
        let spec = "type=registry,ref=127.0.0.1:5000/app";
        let c = RegistryCache::parse("--cache-from", spec, &fields(spec)).unwrap();
        assert_eq!(c.mode, CacheMode::Min);
        assert_eq!(c.tag_or_digest(), "latest");
        for (spec, want) in [
            ("type=registry", "needs ref="),
            ("type=registry,ref=h:5000/Bad", "not a valid image reference"),
            ("type=registry,ref=h:5000/x,mode=all", "mode=all is not a cache mode"),
            (
                "type=registry,ref=h:5000/x,compression=zstd",
                "unknown option compression",
            ),
        ] {
            let e = RegistryCache::parse("--cache-to", spec, &fields(spec)).unwrap_err();
            assert!(format!("{e:#}").contains(want), "{spec}: {e:#}");
        }
    }

    #[test]
    fn index_round_trip_and_foreign_index_refused() {
        let d = Digest::of_bytes(b"m");
        let id = Digest::of_bytes(b"c");
        let idx = json!({
            "schemaVersion": 2,
            "mediaType": platform::OCI_INDEX,
            "annotations": {A_VERSION: "1"},
            "manifests": [{"mediaType": platform::OCI_MANIFEST, "digest": d.as_str(), "size": 3,
                "annotations": {A_IMAGE: id.as_str(), A_KEYS: "sha256:a,sha256:b"}}],
        });
        let e = parse_index(&serde_json::to_vec(&idx).unwrap(), "x").unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].keys, ["sha256:a", "sha256:b"]);
        assert_eq!(e[0].image, id);
        assert!(e[0].parent.is_none());
        let foreign = json!({"schemaVersion": 2, "manifests": []});
        let err = parse_index(&serde_json::to_vec(&foreign).unwrap(), "the index x").unwrap_err();
        assert!(err.to_string().contains("not a berth build cache"), "{err}");
    }
}
