//! `image compose`: one image made of several parents' layers, stacked as
//! they are — BASE's layers, then each PART's that the stack does not have
//! yet (by diff ID). Nothing is copied: the composed image names the same
//! blobs (a push mounts them across repositories, a pull downloads none it
//! has) and stands on the same unpacked layer directories (see
//! `Store::layer_key`). This is composition for additive parts, the way a
//! Nix closure adds store paths: a part must not delete what another parent
//! provides.
//!
//! Rules, in one place:
//! * **Order**: BASE, then the PARTs in the order given; a file present in
//!   two parents is the later parent's ("later part wins"), as overlayfs
//!   shows it; [`MergePlan::overlaps`] lists those paths.
//! * **Deletions**: a whiteout or opaque directory in a part's layer that
//!   would remove a path another parent provides is refused, naming the
//!   path; with `flatten_conflicts` that part's layers, from the first such
//!   one up, are squashed into one layer that only adds files (its
//!   deletions apply among those layers and are dropped below them).
//! * **Config**: BASE's. `PATH`-like variables (`PATH` and every name
//!   ending in `PATH`: `LD_LIBRARY_PATH`, `PYTHONPATH`, `MANPATH`, …) are
//!   merged: the entries the parts add, later parts first, then BASE's
//!   entries in BASE's order (Docker's default `PATH` when BASE sets
//!   none), each entry once. A variable only parts set
//!   is added (a later part's value wins); one BASE sets keeps BASE's value
//!   ([`MergePlan::env_conflicts`]). Then `--change`, as `import` applies it.
//! * **History**: every layer's history entry, its comment naming the
//!   parent it came from; a last entry names the parents. The manifest
//!   carries `org.opencontainers.image.base.{name,digest}` and
//!   [`PARENTS_ANNOTATION`].
//!
//! It must never change a parent image, and never record an image whose
//! layers it has not proven present.

use std::collections::{BTreeMap, HashSet};
use std::io::BufReader;

use anyhow::{anyhow, bail, Context, Result};
use berth_archive::{scan_layer_dir, write_layer, ApplyOptions, DiffOptions, EntryKind};
use berth_store::images::{MEDIA_OCI_CONFIG, MEDIA_OCI_LAYER, MEDIA_OCI_MANIFEST};
use berth_store::reference::familiar_name;
use berth_store::{Digest, History, ImageConfig, ImageRecord, NewImage, NewLayer, Reference};
use serde_json::{json, Value};

use crate::{now_rfc3339, Engine};

/// The manifest annotation that lists every parent, in stack order, as
/// `NAME@MANIFEST-DIGEST` separated by commas (NAME is the image ID when
/// the parent has no name).
pub const PARENTS_ANNOTATION: &str = "io.berth.image.parents";

/// What `image compose` is asked to make.
#[derive(Debug, Clone, Default)]
pub struct ImageMergeRequest {
    /// The image whose config and layers come first.
    pub base: String,
    /// The images stacked on it, in order.
    pub parts: Vec<String>,
    /// Name for the result.
    pub tag: Option<String>,
    /// Dockerfile instructions applied to the config, as `import --change`.
    pub changes: Vec<String>,
    /// Squash a part's deleting layers instead of refusing it.
    pub flatten_conflicts: bool,
}

/// One parent image.
#[derive(Debug, Clone)]
pub struct MergeParent {
    /// As the user named it.
    pub word: String,
    /// Its familiar name (`bb:latest`) or short ID.
    pub shown: String,
    /// Full name for the annotation (`docker.io/library/bb:latest`) or ID.
    pub full: String,
    /// The image ID (config digest).
    pub id: Digest,
    /// The digest of its manifest.
    pub manifest: Digest,
}

impl MergeParent {
    /// `base bb:latest`, `part 2 tools:latest`.
    pub fn role(&self, index: usize) -> String {
        if index == 0 {
            format!("base {}", self.shown)
        } else {
            format!("part {} {}", index, self.shown)
        }
    }
}

/// A layer of the composed image and where it comes from.
#[derive(Debug, Clone)]
pub struct StackedLayer {
    /// Index into [`MergePlan::parents`] (0 = BASE).
    pub parent: usize,
    /// Its position in that parent (0 = bottom).
    pub index: usize,
    /// Its uncompressed digest (diff ID).
    pub diff_id: Digest,
    /// The store's key for its files (shared with the parent).
    pub key: Digest,
    /// The blob as the parent's manifest names it.
    pub blob: Digest,
    /// The blob's media type.
    pub media_type: String,
    /// The blob's size in bytes.
    pub blob_size: u64,
    /// Bytes of its uncompressed tar.
    pub size: u64,
    /// Bytes of its files (the size Docker shows for a layer).
    pub content_size: u64,
    /// The parent's history entry for it.
    pub history: History,
}

/// A parent's layer the stack already had (same diff ID), not added again.
#[derive(Debug, Clone)]
pub struct SkippedLayer {
    /// Index into [`MergePlan::parents`].
    pub parent: usize,
    /// Its position in that parent (0 = bottom).
    pub index: usize,
    /// Its diff ID.
    pub diff_id: Digest,
    /// The parent whose copy of the layer is used.
    pub present_from: usize,
}

/// A path that more than one parent provides; the last one wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// `/etc/passwd`.
    pub path: String,
    /// (parent, what it has there), in stack order, one per parent.
    pub providers: Vec<(usize, EntryKind)>,
}

/// A deletion in a part's layer that reaches another parent's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// Index into [`MergePlan::parents`] of the part.
    pub parent: usize,
    /// The layer's position in that parent (0 = bottom).
    pub index: usize,
    /// `/etc/motd` (a whiteout) or `/usr/share/doc` (an opaque directory).
    pub path: String,
    /// An opaque directory rather than a whiteout of one path.
    pub opaque: bool,
    /// The other parents whose files it would remove.
    pub reaches: Vec<usize>,
}

/// An environment variable BASE sets and a part sets otherwise (not
/// `PATH`-like): BASE's value is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvConflict {
    /// The variable's name.
    pub name: String,
    /// BASE's value, which is kept.
    pub kept: String,
    /// (part, its value), ignored.
    pub ignored: Vec<(usize, String)>,
}

/// What composing would make, and what a user should know about it.
#[derive(Debug, Clone)]
pub struct MergePlan {
    /// BASE, then each part, in order.
    pub parents: Vec<MergeParent>,
    /// The composed stack, bottom first.
    pub layers: Vec<StackedLayer>,
    /// Parents' layers the stack already had.
    pub skipped: Vec<SkippedLayer>,
    /// Paths several parents provide (later wins).
    pub overlaps: Vec<Overlap>,
    /// Deletions in parts that reach other parents' files.
    pub deletions: Vec<Deletion>,
    /// The composed image's environment (`PATH`-like variables merged).
    pub env: Vec<String>,
    /// Variables a part sets otherwise than BASE (BASE wins).
    pub env_conflicts: Vec<EnvConflict>,
}

/// A part whose layers were squashed (`flatten_conflicts`).
#[derive(Debug, Clone)]
pub struct FlattenedPart {
    /// Index into [`MergePlan::parents`] of the part.
    pub parent: usize,
    /// Its layers from this position up became one.
    pub from_index: usize,
    /// How many layers became one.
    pub layers: usize,
    /// The diff ID of the squashed layer.
    pub diff_id: Digest,
    /// Paths whose deletion was dropped.
    pub dropped: Vec<String>,
}

/// The composed image.
#[derive(Debug, Clone)]
pub struct MergedImage {
    /// The composed image's ID.
    pub id: Digest,
    /// What was composed.
    pub plan: MergePlan,
    /// Parts squashed to drop their deletions.
    pub flattened: Vec<FlattenedPart>,
}

/// `PATH` and every variable whose name ends in `PATH`.
pub fn is_path_like(name: &str) -> bool {
    name.ends_with("PATH")
}

fn env_split(e: &str) -> (&str, &str) {
    e.split_once('=').unwrap_or((e, ""))
}

/// The module's environment rule (see the module docs): BASE's variables,
/// `PATH`-like ones merged, the ones only parts set added.
pub fn merge_env(base: &[String], parts: &[(usize, Vec<String>)]) -> (Vec<String>, Vec<EnvConflict>) {
    let mut out: Vec<String> = base.to_vec();
    let base_vals: BTreeMap<&str, &str> = base.iter().map(|e| env_split(e)).collect();
    let mut names: Vec<&str> = Vec::new();
    for (_, env) in parts {
        for e in env {
            let (k, _) = env_split(e);
            if !names.contains(&k) {
                names.push(k);
            }
        }
    }
    let mut conflicts = Vec::new();
    for name in names {
        let values: Vec<(usize, &str)> = parts
            .iter()
            .filter_map(|(i, env)| {
                env.iter()
                    .map(|e| env_split(e))
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*i, v))
            })
            .collect();
        let merged = if is_path_like(name) {
            let base_entries: Vec<&str> = base_vals
                .get(name)
                .map(|v| v.split(':').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default();
            let mut entries: Vec<&str> = Vec::new();
            for (_, v) in values.iter().rev() {
                for s in v.split(':').filter(|s| !s.is_empty()) {
                    if !base_entries.contains(&s) && !entries.contains(&s) {
                        entries.push(s);
                    }
                }
            }
            entries.extend(base_entries);
            entries.join(":")
        } else if let Some(kept) = base_vals.get(name) {
            let ignored: Vec<(usize, String)> = values
                .iter()
                .filter(|(_, v)| v != kept)
                .map(|(i, v)| (*i, v.to_string()))
                .collect();
            if !ignored.is_empty() {
                conflicts.push(EnvConflict {
                    name: name.to_string(),
                    kept: kept.to_string(),
                    ignored,
                });
            }
            continue;
        } else {
            values.last().map(|(_, v)| v.to_string()).unwrap_or_default()
        };
        let line = format!("{name}={merged}");
        match out.iter_mut().find(|e| env_split(e).0 == name) {
            Some(e) => *e = line,
            None => out.push(line),
        }
    }
    (out, conflicts)
}

/// Who provides each path of the stack so far, to find overlaps and
/// deletions that reach another parent.
#[derive(Default)]
struct PathOwners {
    /// path → (parent, kind), in stack order, one entry per parent.
    owners: BTreeMap<String, Vec<(usize, EntryKind)>>,
}

impl PathOwners {
    /// Parents other than `by` owning `path` (and, unless `below_only`,
    /// `path` itself) or anything under it; those entries are removed.
    fn delete(&mut self, path: &str, by: usize, below_only: bool) -> Vec<usize> {
        let prefix = format!("{path}/");
        let mut doomed: Vec<String> = self
            .owners
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        if !below_only && self.owners.contains_key(path) {
            doomed.push(path.to_string());
        }
        let mut reached = Vec::new();
        for p in doomed {
            for (parent, _) in self.owners.remove(&p).unwrap_or_default() {
                if parent != by && !reached.contains(&parent) {
                    reached.push(parent);
                }
            }
        }
        reached.sort_unstable();
        reached
    }

    fn add(&mut self, path: String, parent: usize, kind: EntryKind) {
        let owners = self.owners.entry(path).or_default();
        owners.retain(|(p, _)| *p != parent);
        owners.push((parent, kind));
    }

    /// Paths two or more parents provide where something is not a
    /// directory in all of them.
    fn overlaps(&self) -> Vec<Overlap> {
        self.owners
            .iter()
            .filter(|(_, o)| o.len() > 1 && o.iter().any(|(_, k)| !matches!(k, EntryKind::Dir { .. })))
            .map(|(path, o)| Overlap {
                path: format!("/{path}"),
                providers: o.clone(),
            })
            .collect()
    }
}

/// History entries of an image, one per layer (missing ones empty).
fn layer_histories(cfg: &ImageConfig) -> Vec<History> {
    let mut out: Vec<History> = cfg.history.iter().filter(|h| !h.empty_layer).cloned().collect();
    out.resize(cfg.rootfs.diff_ids.len(), History::default());
    out
}

/// Removes a staging directory when dropped.
struct RemoveTree(std::path::PathBuf);

impl Drop for RemoveTree {
    fn drop(&mut self) {
        berth_store::staging::remove_tree(&self.0);
    }
}

fn xattr_prefix() -> String {
    ApplyOptions::for_current_user().xattr_prefix
}

impl Engine {
    fn merge_parent(&self, word: &str) -> Result<(MergeParent, ImageRecord, ImageConfig)> {
        let img = self
            .store
            .resolve_image(word)
            .with_context(|| format!("image compose: {word}"))?;
        let cfg = self.store.image_config(&img.id)?;
        let (shown, full) = match img.tags.first() {
            Some(t) => (familiar_name(t), t.clone()),
            None => (img.id.short().to_string(), img.id.to_string()),
        };
        Ok((
            MergeParent {
                word: word.to_string(),
                shown,
                full,
                id: img.id.clone(),
                manifest: img.manifest.clone(),
            },
            img,
            cfg,
        ))
    }

    /// What composing `req` would make: the stack, the overlaps, the
    /// deletions that would be refused, the environment (`--check`).
    pub fn plan_image_merge(&self, req: &ImageMergeRequest) -> Result<MergePlan> {
        if req.parts.is_empty() {
            bail!("image compose needs a base image and at least one part: berth image compose -t NAME BASE PART [PART...]");
        }
        let mut parents = Vec::new();
        let mut configs = Vec::new();
        let mut layers: Vec<StackedLayer> = Vec::new();
        let mut skipped = Vec::new();
        let mut owners = PathOwners::default();
        let mut deletions = Vec::new();
        let prefix = xattr_prefix();
        for (pi, word) in std::iter::once(&req.base).chain(&req.parts).enumerate() {
            let (parent, img, cfg) = self.merge_parent(word)?;
            if let Some((base, base_cfg)) = parents.first().zip(configs.first()) {
                let base: &MergeParent = base;
                let base_cfg: &ImageConfig = base_cfg;
                if (&cfg.os, &cfg.architecture) != (&base_cfg.os, &base_cfg.architecture) {
                    bail!(
                        "image compose: part {} is {}/{} but base {} is {}/{}: parts must be of the base's platform",
                        parent.shown,
                        cfg.os,
                        cfg.architecture,
                        base.shown,
                        base_cfg.os,
                        base_cfg.architecture
                    );
                }
            }
            let diff_ids = cfg.diff_ids()?;
            if diff_ids.len() != img.layers.len() {
                bail!(
                    "image {}: its config lists {} layers but the store holds {}",
                    parent.shown,
                    diff_ids.len(),
                    img.layers.len()
                );
            }
            let descs = self.manifest_layer_descs(&img)?;
            let histories = layer_histories(&cfg);
            for (li, (diff_id, key)) in diff_ids.iter().zip(&img.layers).enumerate() {
                if let Some(have) = layers.iter().find(|l| &l.diff_id == diff_id) {
                    skipped.push(SkippedLayer {
                        parent: pi,
                        index: li,
                        diff_id: diff_id.clone(),
                        present_from: have.parent,
                    });
                    continue;
                }
                let rec = self
                    .store
                    .layer(key)?
                    .ok_or_else(|| anyhow!("layer {} of image {} has no record in the store", li + 1, parent.shown))?;
                let dir = self.store.layer_dir(key);
                let entries = scan_layer_dir(&dir, &prefix)
                    .with_context(|| format!("reading layer {} of {} ({})", li + 1, parent.shown, dir.display()))?;
                for e in &entries {
                    if !e.kind.deletes() {
                        continue;
                    }
                    let opaque = matches!(e.kind, EntryKind::Dir { .. });
                    let reaches = owners.delete(&e.path, pi, opaque);
                    if pi > 0 && !reaches.is_empty() {
                        deletions.push(Deletion {
                            parent: pi,
                            index: li,
                            path: format!("/{}", e.path),
                            opaque,
                            reaches,
                        });
                    }
                }
                for e in entries {
                    if e.kind != EntryKind::Whiteout {
                        owners.add(e.path, pi, e.kind);
                    }
                }
                let (blob, media_type, blob_size) = match descs.get(li).cloned().flatten() {
                    Some(d) => d,
                    None => (rec.blob.clone(), rec.media_type.clone(), rec.blob_size),
                };
                layers.push(StackedLayer {
                    parent: pi,
                    index: li,
                    diff_id: diff_id.clone(),
                    key: key.clone(),
                    blob,
                    media_type,
                    blob_size,
                    size: rec.size,
                    content_size: rec.content_size,
                    history: histories[li].clone(),
                });
            }
            parents.push(parent);
            configs.push(cfg);
        }
        let mut base_env = configs[0].config.env.clone().unwrap_or_default();
        if !base_env.iter().any(|e| env_split(e).0 == "PATH") {
            // What a container of BASE gets when its config sets no PATH.
            base_env.insert(0, format!("PATH={}", berth_runtime::spec::DEFAULT_PATH));
        }
        let part_envs: Vec<(usize, Vec<String>)> = configs
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, c)| (i, c.config.env.clone().unwrap_or_default()))
            .collect();
        let (env, env_conflicts) = merge_env(&base_env, &part_envs);
        Ok(MergePlan {
            parents,
            layers,
            skipped,
            overlaps: owners.overlaps(),
            deletions,
            env,
            env_conflicts,
        })
    }

    /// Each layer's descriptor (digest, media type, size) as the image's
    /// stored manifest names it, where the store can read that blob.
    fn manifest_layer_descs(&self, img: &ImageRecord) -> Result<Vec<Option<(Digest, String, u64)>>> {
        let m: Value = self
            .store
            .blobs()
            .read(&img.manifest)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let mut out = Vec::new();
        for l in m["layers"].as_array().into_iter().flatten() {
            let d = l["digest"].as_str().and_then(|d| Digest::parse(d).ok());
            let d = match d {
                Some(d) if self.store.has_layer_blob(&d)? => Some((
                    d,
                    l["mediaType"].as_str().unwrap_or(MEDIA_OCI_LAYER).to_string(),
                    l["size"].as_u64().unwrap_or(0),
                )),
                _ => None,
            };
            out.push(d);
        }
        Ok(out)
    }

    /// Compose and record the image (see the module docs).
    pub fn merge_images(&self, req: &ImageMergeRequest) -> Result<MergedImage> {
        let target = req.tag.as_deref().map(Reference::parse).transpose()?;
        // Blobs and layers stay put until the image is recorded.
        let _lock = self.store.write_lock()?;
        let plan = self.plan_image_merge(req)?;
        if !plan.deletions.is_empty() && !req.flatten_conflicts {
            let lines: Vec<String> = plan
                .deletions
                .iter()
                .map(|d| {
                    let whose: Vec<String> = d.reaches.iter().map(|p| plan.parents[*p].role(*p)).collect();
                    format!(
                        "  {} (layer {}) {} {}, which removes files of {}",
                        plan.parents[d.parent].role(d.parent),
                        d.index + 1,
                        if d.opaque { "empties the directory" } else { "deletes" },
                        d.path,
                        whose.join(", ")
                    )
                })
                .collect();
            bail!(
                "image compose: a part may only add files, and these layers delete files of other parents:\n{}\n\
                 rebuild the part without the deletion, or give --flatten-conflicts to squash its layers from there up into one that only adds files",
                lines.join("\n")
            );
        }
        let mut new_layers: Vec<NewLayer> = Vec::new();
        // (parent, position in it, entry), in stack order.
        let mut histories: Vec<(usize, usize, History)> = Vec::new();
        let mut diff_ids: Vec<String> = Vec::new();
        let mut descriptors: Vec<Value> = Vec::new();
        let mut flattened = Vec::new();
        let mut done_parents: HashSet<usize> = HashSet::new();
        for (i, l) in plan.layers.iter().enumerate() {
            let first_bad = plan
                .deletions
                .iter()
                .filter(|d| d.parent == l.parent)
                .map(|d| d.index)
                .min();
            if let Some(from) = first_bad.filter(|f| l.index >= *f) {
                if done_parents.insert(l.parent) {
                    let squash: Vec<&StackedLayer> = plan.layers[i..]
                        .iter()
                        .filter(|x| x.parent == l.parent && x.index >= from)
                        .collect();
                    let (layer, desc, f) = self.flatten_layers(&plan, &squash)?;
                    let p = &plan.parents[l.parent];
                    let h = History {
                        created: Some(now_rfc3339()),
                        created_by: Some(format!(
                            "berth image compose --flatten-conflicts: layers {}-{} of {}",
                            from + 1,
                            squash.last().map(|x| x.index + 1).unwrap_or(from + 1),
                            p.shown
                        )),
                        comment: Some(format!("{} (flattened)", p.role(l.parent))),
                        ..Default::default()
                    };
                    histories.push((l.parent, l.index, h));
                    diff_ids.push(layer.diff_id.to_string());
                    descriptors.push(desc);
                    new_layers.push(layer);
                    flattened.push(f);
                }
                continue;
            }
            let mut h = l.history.clone();
            let role = plan.parents[l.parent].role(l.parent);
            h.comment = Some(match h.comment.take().filter(|c| !c.is_empty()) {
                Some(c) => format!("{role}: {c}"),
                None => role,
            });
            h.empty_layer = false;
            histories.push((l.parent, l.index, h));
            diff_ids.push(l.diff_id.to_string());
            descriptors.push(json!({"mediaType": l.media_type, "digest": l.blob.as_str(), "size": l.blob_size}));
            new_layers.push(NewLayer {
                diff_id: l.diff_id.clone(),
                blob: l.blob.clone(),
                media_type: l.media_type.clone(),
                blob_size: l.blob_size,
                size: l.size,
                staged_blob: None,
                staged_dir: None,
            });
        }

        let base_cfg = self.store.image_config(&plan.parents[0].id)?;
        let created = now_rfc3339();
        let mut cfg = ImageConfig {
            created: Some(created.clone()),
            history: Vec::new(),
            ..base_cfg.clone()
        };
        cfg.config.env = Some(plan.env.clone()).filter(|e| !e.is_empty());
        crate::changes::apply_changes(&mut cfg, &req.changes)?;
        // BASE's config-only entries (ENV, CMD …) keep their place among
        // its layers; the parts' layers follow.
        let mut stack = histories.into_iter().peekable();
        let mut base_layer = 0;
        for h in &base_cfg.history {
            if h.empty_layer {
                cfg.history.push(h.clone());
                continue;
            }
            while let Some((_, _, h)) = stack.next_if(|(p, i, _)| *p == 0 && *i <= base_layer) {
                cfg.history.push(h);
            }
            base_layer += 1;
        }
        cfg.history.extend(stack.map(|(_, _, h)| h));
        let names: Vec<&str> = plan.parents.iter().map(|p| p.shown.as_str()).collect();
        let mut by = format!("berth image compose {}", names.join(" "));
        for c in &req.changes {
            by.push_str(&format!(" --change '{c}'"));
        }
        cfg.history.push(History {
            created: Some(created),
            created_by: Some(by),
            comment: Some(format!("composed of {}", names.join(", "))),
            empty_layer: true,
            ..Default::default()
        });
        cfg.rootfs.diff_ids = diff_ids;
        let config = cfg.to_bytes();
        let config_digest = Digest::of_bytes(&config);
        let parents_value: Vec<String> = plan
            .parents
            .iter()
            .map(|p| format!("{}@{}", p.full, p.manifest))
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest.as_str(), "size": config.len()},
            "layers": descriptors,
            "annotations": {
                "org.opencontainers.image.base.name": plan.parents[0].full,
                "org.opencontainers.image.base.digest": plan.parents[0].manifest.as_str(),
                PARENTS_ANNOTATION: parents_value.join(","),
            },
        });
        let rec = self.store.commit_image(NewImage {
            config,
            layers: new_layers,
            parent: None,
            tags: target.iter().map(|r| r.full()).collect(),
            repo_digests: Vec::new(),
            manifest: Some(serde_json::to_vec(&manifest)?),
        })?;
        Ok(MergedImage {
            id: rec.id,
            plan,
            flattened,
        })
    }

    /// One layer with what `layers` (one part's, bottom first) add, their
    /// deletions applied among themselves and dropped below: the layers'
    /// tars applied in order into an empty directory, whiteouts as
    /// removals; its tar is stored and unpacked like an imported one.
    fn flatten_layers(&self, plan: &MergePlan, layers: &[&StackedLayer]) -> Result<(NewLayer, Value, FlattenedPart)> {
        let first = layers.first().ok_or_else(|| anyhow!("nothing to flatten"))?;
        let dir = self.store.staging().path("flatten")?;
        let _cleanup = RemoveTree(dir.clone());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let opts = ApplyOptions {
            overlay_whiteouts: false,
            ..ApplyOptions::for_current_user()
        };
        for l in layers {
            let f = BufReader::with_capacity(1 << 20, self.store.open_layer_blob(&l.blob)?);
            berth_archive::apply_layer(f, &dir, &opts)
                .with_context(|| format!("flattening layer {} of {}", l.index + 1, plan.parents[l.parent].shown))?;
        }
        let mut writer = self.store.blob_writer("flatten")?;
        let d = write_layer(&dir, &mut writer, &DiffOptions::default()).context("writing the flattened layer")?;
        let blob = writer.finish()?;
        let staged = self
            .store
            .stage_layer(BufReader::new(std::fs::File::open(blob.path())?), "the flattened layer")?;
        let diff_id = Digest::parse(&d.diff_id)?;
        let dropped: Vec<String> = plan
            .deletions
            .iter()
            .filter(|x| x.parent == first.parent)
            .map(|x| x.path.clone())
            .collect();
        let desc = json!({"mediaType": MEDIA_OCI_LAYER, "digest": blob.digest.as_str(), "size": blob.size});
        let flat = FlattenedPart {
            parent: first.parent,
            from_index: first.index,
            layers: layers.len(),
            diff_id: diff_id.clone(),
            dropped,
        };
        let layer = NewLayer {
            diff_id,
            blob: blob.digest.clone(),
            media_type: MEDIA_OCI_LAYER.to_string(),
            blob_size: blob.size,
            size: staged.size,
            staged_blob: Some(blob),
            staged_dir: Some(staged),
        };
        Ok((layer, desc, flat))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn path_like_variables_merge_and_the_base_keeps_the_rest() {
        let base = v(&["PATH=/usr/sbin:/usr/bin:/bin", "LANG=C"]);
        let parts = vec![
            (
                1,
                v(&[
                    "PATH=/opt/python/bin:/usr/bin:/bin",
                    "LANG=C.UTF-8",
                    "PYTHONPATH=/opt/lib",
                ]),
            ),
            (
                2,
                v(&["PATH=/opt/tools/bin:/usr/bin", "PYTHONPATH=/opt/tools/py", "TOOLS=1"]),
            ),
        ];
        let (env, conflicts) = merge_env(&base, &parts);
        assert_eq!(
            env,
            v(&[
                "PATH=/opt/tools/bin:/opt/python/bin:/usr/sbin:/usr/bin:/bin",
                "LANG=C",
                "PYTHONPATH=/opt/tools/py:/opt/lib",
                "TOOLS=1",
            ])
        );
        assert_eq!(
            conflicts,
            vec![EnvConflict {
                name: "LANG".into(),
                kept: "C".into(),
                ignored: vec![(1, "C.UTF-8".into())]
            }]
        );
        assert!(is_path_like("LD_LIBRARY_PATH") && !is_path_like("PATHS"));
    }

    #[test]
    fn deletions_reach_only_other_parents() {
        let mut o = PathOwners::default();
        o.add("etc".into(), 0, EntryKind::Dir { opaque: false });
        o.add("etc/motd".into(), 0, EntryKind::File);
        o.add("opt/t/a".into(), 2, EntryKind::File);
        assert_eq!(
            o.delete("opt/t/a", 2, false),
            Vec::<usize>::new(),
            "a part may delete its own files"
        );
        assert_eq!(
            o.delete("etc", 1, true),
            vec![0],
            "an opaque /etc hides the base's /etc/motd"
        );
        assert!(o.owners.contains_key("etc"), "the opaque directory itself stays");
        o.add("bin".into(), 0, EntryKind::Symlink);
        o.add("bin".into(), 1, EntryKind::Dir { opaque: false });
        o.add("etc".into(), 1, EntryKind::Dir { opaque: false });
        let ov = o.overlaps();
        assert_eq!(ov.len(), 1, "{ov:?}");
        assert_eq!(ov[0].path, "/bin");
    }
}
