//! Image operations: list, inspect, history, tag, remove, prune, disk usage.
//! Docker's rules for what `rmi` untags versus deletes live here, once.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::error::Result;
use anyhow::Context;
use berth_store::reference::{familiar_name, familiar_repository, split_repo};
use berth_store::{Digest, ImageRecord, Reference};
use serde_json::{json, Value};

use super::{Engine, EngineError};

/// One row of `berth images`.
#[derive(Clone, Debug)]
pub struct ImageSummary {
    /// The image's ID.
    pub id: Digest,
    /// Familiar repository, or `<none>`.
    pub repository: String,
    /// The tag, or `<none>`.
    pub tag: String,
    /// The digest its registry gave it, or `<none>`.
    pub digest: String,
    /// When it was created (RFC 3339).
    pub created: String,
    /// Bytes of its unpacked layers.
    pub size: u64,
    /// No name, and no image built on it.
    pub dangling: bool,
    /// No name, but a parent of other images (a build step).
    pub intermediate: bool,
    /// Containers that use it.
    pub containers: usize,
    /// `os/arch[/variant]`, when [`ListFilter::platforms`] asked for it.
    pub platform: Option<String>,
}

#[derive(Default, Debug)]
/// What `images` lists.
pub struct ListFilter {
    /// Intermediate images too (`-a`).
    pub all: bool,
    /// `dangling=true|false`.
    pub dangling: Option<bool>,
    /// `reference=` patterns (all must match).
    pub references: Vec<String>,
    /// `key` or `key=value`
    pub labels: Vec<String>,
    /// `before=IMAGE`: added before that image.
    pub before: Option<String>,
    /// `since=IMAGE`: added after that image.
    pub since: Option<String>,
    /// A positional `[REPOSITORY[:TAG]]`.
    pub repository: Option<String>,
    /// Fill [`ImageSummary::platform`] (reads each image's config).
    pub platforms: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// One thing `rmi` or a prune did.
pub enum Removal {
    /// A name was removed.
    Untagged(String),
    /// An image was deleted.
    Deleted(Digest),
    /// A layer went with the image told before it (its chain ID): dockerd
    /// tells them as `Deleted:` too.
    DeletedLayer(Digest),
}

impl Removal {
    /// How Docker tells it: `("Untagged", name)` or `("Deleted", ID)` (a
    /// layer is told as deleted too).
    pub fn told(&self) -> (&'static str, &str) {
        match self {
            Removal::Untagged(n) => ("Untagged", n),
            Removal::Deleted(d) | Removal::DeletedLayer(d) => ("Deleted", d.as_str()),
        }
    }
}

/// The layers of the images a removal may delete, read before they go:
/// once the store collected what nothing uses, [`LayerReport::told`] puts
/// each layer that went after the last image that stood on it (the one
/// whose deletion let it go), top layer first, as dockerd releases them.
struct LayerReport {
    layers_of: HashMap<Digest, Vec<Digest>>,
}

impl LayerReport {
    fn before(store: &berth_store::Store) -> Result<LayerReport> {
        let layers_of = store.list_images()?.into_iter().map(|i| (i.id, i.layers)).collect();
        Ok(LayerReport { layers_of })
    }

    fn told(&self, out: Vec<Removal>, collected: Vec<Digest>) -> Vec<Removal> {
        let gone: HashSet<Digest> = collected.into_iter().collect();
        let layers = |r: &Removal| match r {
            Removal::Deleted(id) => self.layers_of.get(id).map(Vec::as_slice).unwrap_or_default(),
            _ => &[],
        };
        // Which removal each layer that went is told after.
        let mut last: HashMap<&Digest, usize> = HashMap::new();
        for (i, r) in out.iter().enumerate() {
            for l in layers(r).iter().filter(|l| gone.contains(*l)) {
                last.insert(l, i);
            }
        }
        let mut told = Vec::with_capacity(out.len() + last.len());
        for (i, r) in out.iter().enumerate() {
            let mine: Vec<Digest> = layers(r)
                .iter()
                .rev()
                .filter(|l| last.get(l) == Some(&i))
                .cloned()
                .collect();
            told.push(r.clone());
            told.extend(mine.into_iter().map(Removal::DeletedLayer));
        }
        told
    }
}

/// Go's path.Match subset Docker uses for `reference=` filters: `*`, `?`, `[...]`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn m(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != '/')
                .any(|i| m(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && n[0] != '/' && m(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else {
                    return false;
                };
                if n.is_empty() {
                    return false;
                }
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some('^') | Some('!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= n[0] && n[0] <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == n[0];
                        i += 1;
                    }
                }
                hit != neg && m(&p[end + 1..], &n[1..])
            }
            Some(&c) => !n.is_empty() && n[0] == c && m(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    m(&p, &n)
}

impl Engine {
    /// `berth images`: one row per tag (or one `<none>` row), Docker's rules
    /// for hiding intermediate build images unless `all`.
    pub fn list_images(&self, f: &ListFilter) -> Result<Vec<ImageSummary>> {
        let images = self.store.list_images()?;
        let parents: HashSet<Digest> = images.iter().filter_map(|i| i.parent.clone()).collect();
        let mut used: BTreeMap<String, usize> = BTreeMap::new();
        for c in self.store.list_containers()? {
            *used.entry(c.image_id).or_default() += 1;
        }
        let before = f.before.as_deref().map(|b| self.store.resolve_image(b)).transpose()?;
        let since = f.since.as_deref().map(|b| self.store.resolve_image(b)).transpose()?;
        let mut rows = Vec::new();
        for img in &images {
            let untagged = img.tags.is_empty();
            let intermediate = untagged && parents.contains(&img.id);
            if intermediate && !f.all {
                continue;
            }
            let dangling = untagged && !intermediate;
            if let Some(d) = f.dangling {
                if d != dangling {
                    continue;
                }
            }
            if let Some(b) = &before {
                if img.added >= b.added {
                    continue;
                }
            }
            if let Some(s) = &since {
                if img.added <= s.added {
                    continue;
                }
            }
            if !self.has_labels(&img.id, &f.labels) {
                continue;
            }
            let digest = img
                .repo_digests
                .first()
                .map(|d| d.split_once('@').map(|x| x.1.to_string()).unwrap_or_default())
                .unwrap_or_else(|| "<none>".into());
            let base = ImageSummary {
                id: img.id.clone(),
                repository: "<none>".into(),
                tag: "<none>".into(),
                digest,
                created: img.created.clone(),
                size: img.content_size,
                dangling,
                intermediate,
                containers: used.get(img.id.as_str()).copied().unwrap_or(0),
                platform: if f.platforms {
                    Some(self.store.image_platform(&img.id)?.to_string())
                } else {
                    None
                },
            };
            let names: Vec<(String, String)> = img
                .tags
                .iter()
                .map(|t| {
                    let (repo, suffix) = split_repo(t);
                    (familiar_repository(repo), suffix.trim_start_matches(':').to_string())
                })
                .collect();
            let names = if names.is_empty() {
                // Pulled by digest only: show the repository with <none> tag.
                img.repo_digests
                    .iter()
                    .map(|d| (familiar_repository(split_repo(d).0), "<none>".to_string()))
                    .collect::<Vec<_>>()
            } else {
                names
            };
            let wanted = |repo: &str, tag: &str| -> bool {
                let full = format!("{repo}:{tag}");
                let ref_ok = f.references.iter().all(|p| {
                    glob_match(p, &full)
                        || glob_match(p, repo)
                        || Reference::parse(p).map(|r| r.familiar() == full).unwrap_or(false)
                });
                let repo_ok = match &f.repository {
                    None => true,
                    Some(r) => match r.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                        Some((rr, t)) => {
                            familiar_repository(&Reference::parse(rr).map(|x| x.repository()).unwrap_or_default())
                                == repo
                                && t == tag
                        }
                        None => Reference::parse(r).map(|x| x.familiar_repository()).unwrap_or_default() == repo,
                    },
                };
                ref_ok && repo_ok
            };
            if names.is_empty() {
                if f.references.is_empty() && f.repository.is_none() {
                    rows.push(base);
                }
            } else {
                for (repo, tag) in names {
                    if wanted(&repo, &tag) {
                        rows.push(ImageSummary {
                            repository: repo,
                            tag,
                            ..base.clone()
                        });
                    }
                }
            }
        }
        Ok(rows)
    }

    /// Docker's `image inspect` JSON for one image.
    pub fn image_inspect(&self, word: &str) -> Result<Value> {
        let img = self.store.resolve_image(word)?;
        self.image_inspect_record(&img)
    }

    /// The image `word` means, or with `platform` (`--platform`) its
    /// variant for that platform (Docker 28's `--platform` of inspect,
    /// history, save, rmi).
    pub fn resolve_image_platform(&self, word: &str, platform: Option<&str>) -> Result<ImageRecord> {
        let Some(p) = platform.filter(|p| !p.is_empty()) else {
            return Ok(self.store.resolve_image(word)?);
        };
        let want = berth_store::Platform::parse(p).map_err(|e| EngineError::invalid_value(e.to_string()))?;
        match self.store.resolve_image_for(word, &want)? {
            Some(i) => Ok(i),
            None => Err(EngineError::not_found(format!(
                "image with reference {word} was found but does not provide the specified platform ({want})"
            ))),
        }
    }

    /// `image inspect --platform`.
    pub fn image_inspect_platform(&self, word: &str, platform: Option<&str>) -> Result<Value> {
        let img = self.resolve_image_platform(word, platform)?;
        self.image_inspect_record(&img)
    }

    /// Docker's `image inspect` JSON for an image record.
    pub fn image_inspect_record(&self, img: &ImageRecord) -> Result<Value> {
        let cfg = self.store.image_config(&img.id)?;
        let c = &cfg.config;
        let config = json!({
            "Hostname": "", "Domainname": "", "User": c.user,
            "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
            "ExposedPorts": c.exposed_ports,
            "Tty": false, "OpenStdin": false, "StdinOnce": false,
            "Env": c.env, "Cmd": c.cmd, "Healthcheck": c.healthcheck, "ArgsEscaped": c.args_escaped,
            "Image": "", "Volumes": c.volumes, "WorkingDir": c.working_dir,
            "Entrypoint": c.entrypoint, "OnBuild": c.on_build, "Labels": c.labels,
            "StopSignal": if c.stop_signal.is_empty() { Value::Null } else { json!(c.stop_signal) },
            "Shell": c.shell,
        });
        let mut config = config;
        if let Value::Object(m) = &mut config {
            // Docker omits these when unset.
            for k in ["ExposedPorts", "Healthcheck", "ArgsEscaped", "StopSignal", "Shell"] {
                if m.get(k).map(|v| v.is_null()).unwrap_or(false) {
                    m.remove(k);
                }
            }
        }
        let lower: Vec<String> = img
            .layers
            .iter()
            .rev()
            .map(|l| self.store.layer_dir(l).display().to_string())
            .collect();
        let comment = cfg.history.last().and_then(|h| h.comment.clone()).unwrap_or_default();
        Ok(json!({
            "Id": img.id.as_str(),
            "RepoTags": img.tags.iter().map(|t| familiar_name(t)).collect::<Vec<_>>(),
            "RepoDigests": img.repo_digests.iter().map(|t| familiar_name(t)).collect::<Vec<_>>(),
            "Parent": img.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            "Comment": comment,
            "Created": img.created,
            "Container": cfg.extra.get("container").and_then(|v| v.as_str()).unwrap_or(""),
            "DockerVersion": cfg.extra.get("docker_version").and_then(|v| v.as_str()).unwrap_or(""),
            "Author": cfg.author.clone().unwrap_or_default(),
            "Config": config,
            "Architecture": cfg.architecture,
            "Variant": cfg.variant,
            "Os": cfg.os,
            "Size": img.content_size,
            "GraphDriver": {
                "Data": { "LowerDir": lower.join(":") },
                "Name": "overlay"
            },
            "RootFS": { "Type": cfg.rootfs.kind, "Layers": cfg.rootfs.diff_ids },
            "Metadata": { "LastTagTime": chrono::DateTime::from_timestamp(img.added, 0).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)).unwrap_or_default() }
        }))
        .map(|mut v| {
            if v["Variant"].is_null() {
                v.as_object_mut().expect("object").remove("Variant");
            }
            v
        })
    }

    /// `berth history`: newest first, with the size of each step's layer.
    pub fn history(&self, word: &str) -> Result<Vec<Value>> {
        self.history_platform(word, None)
    }

    /// `history --platform`: of that platform's variant.
    pub fn history_platform(&self, word: &str, platform: Option<&str>) -> Result<Vec<Value>> {
        let img = self.resolve_image_platform(word, platform)?;
        let cfg = self.store.image_config(&img.id)?;
        let mut sizes = Vec::new();
        for chain in &img.layers {
            sizes.push(self.store.layer(chain)?.map(|l| l.content_size).unwrap_or(0));
        }
        let mut rows = Vec::new();
        let mut layer_i = 0usize;
        let history: Vec<berth_store::History> = if cfg.history.is_empty() {
            cfg.rootfs
                .diff_ids
                .iter()
                .map(|_| berth_store::History::default())
                .collect()
        } else {
            cfg.history.clone()
        };
        let n = history.len();
        for (i, h) in history.iter().enumerate() {
            let size = if h.empty_layer {
                0
            } else {
                let s = sizes.get(layer_i).copied().unwrap_or(0);
                layer_i += 1;
                s
            };
            // Only the newest row carries the image ID (Docker shows <missing> for the rest
            // unless the step's image is in the store; we record parents).
            let id = if i + 1 == n {
                img.id.to_string()
            } else {
                "<missing>".to_string()
            };
            rows.push(json!({
                "ID": id,
                "Created": h.created.clone().unwrap_or_default(),
                "CreatedBy": h.created_by.clone().unwrap_or_default(),
                "Size": size,
                "Comment": h.comment.clone().unwrap_or_default(),
                "Tags": if i + 1 == n { img.tags.iter().map(|t| familiar_name(t)).collect::<Vec<_>>() } else { vec![] },
            }));
        }
        // Fill step IDs from the parent chain we recorded at build time.
        let mut cur = img.parent.clone();
        for row in rows.iter_mut().rev().skip(1) {
            let is_step = row["Size"].as_u64() != Some(0) || row["CreatedBy"].as_str().is_some_and(|s| !s.is_empty());
            if !is_step {
                continue;
            }
            match cur.take() {
                Some(p) => match self.store.image(&p) {
                    Ok(parent) => {
                        row["ID"] = json!(parent.id.to_string());
                        cur = parent.parent.clone();
                    }
                    Err(_) => break,
                },
                None => break,
            }
        }
        rows.reverse();
        Ok(rows)
    }

    /// `berth tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let img = self.store.resolve_image(source)?;
        let r = Reference::parse(target)?;
        if r.digest.is_some() {
            return Err(EngineError::invalid(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        // A name with several platforms is tagged whole, as Docker tags
        // the index.
        let variants = match Reference::parse(source) {
            Ok(sr) if sr.full() != r.full() => self.store.variants(&sr.full())?,
            _ => Vec::new(),
        };
        if variants.len() > 1 {
            self.store.set_variants(&r.full(), &variants)?;
        } else {
            self.store.tag(&img.id, &r.full())?;
        }
        self.record_image_event("tag", img.id.as_str(), &familiar_name(&r.full()));
        Ok(())
    }

    /// `rmi NAME` of a name with several platforms.
    fn remove_platforms(&self, name: &str, vs: Vec<berth_store::Variant>, force: bool) -> Result<Vec<Removal>> {
        if !force {
            for v in &vs {
                if let Some(c) = self.store.containers_using(v.image_id.as_str())?.first() {
                    return Err(EngineError::conflict(format!(
                        "conflict: unable to remove repository reference \"{}\" (must force) - container {} is using its referenced image {}",
                        familiar_name(name),
                        &c.id[..12.min(c.id.len())],
                        v.image_id.short()
                    )));
                }
            }
        }
        let report = LayerReport::before(&self.store)?;
        self.store.untag(name)?;
        let mut out = vec![Removal::Untagged(familiar_name(name))];
        let mut deleted = false;
        for v in vs {
            let Ok(img) = self.store.image(&v.image_id) else {
                continue;
            };
            if img.tags.is_empty()
                && self.store.children(&img.id)?.is_empty()
                && self.store.containers_using(img.id.as_str())?.is_empty()
            {
                self.store.delete_image(&img.id)?;
                out.push(Removal::Deleted(img.id.clone()));
                deleted = true;
            }
        }
        if deleted {
            let collected = self.store.gc().context("collecting unused layers")?;
            return Ok(report.told(out, collected));
        }
        Ok(out)
    }

    /// `rmi --platform P NAME`: removes that platform's variant from the
    /// name (the image itself when nothing else names it).
    pub fn remove_image_platform(&self, word: &str, platform: &str, force: bool) -> Result<Vec<Removal>> {
        let img = self.resolve_image_platform(word, Some(platform))?;
        let want = berth_store::Platform::parse(platform).map_err(|e| EngineError::invalid_value(e.to_string()))?;
        let name = Reference::parse(word).ok().map(|r| r.full());
        let vs = match &name {
            Some(n) => self.store.variants(n)?,
            None => Vec::new(),
        };
        let Some(v) = vs
            .iter()
            .find(|v| v.image_id == img.id && v.platform.same_os_arch(&want))
        else {
            // One image of that platform: an ordinary rmi.
            return self.remove_image(word, force, true);
        };
        let name = name.expect("variants have a name");
        self.store.remove_variant(&name, &v.platform)?;
        let mut out = vec![Removal::Untagged(format!("{} ({})", familiar_name(&name), v.platform))];
        let img = self.store.image(&img.id)?;
        // Its digest references (the index's) do not keep it.
        if img.tags.is_empty()
            && self.store.children(&img.id)?.is_empty()
            && self.store.containers_using(img.id.as_str())?.is_empty()
        {
            let report = LayerReport::before(&self.store)?;
            self.store.delete_image(&img.id)?;
            out.push(Removal::Deleted(img.id.clone()));
            let collected = self.store.gc().context("collecting unused layers")?;
            return Ok(report.told(out, collected));
        }
        Ok(out)
    }

    /// `berth rmi`: untag, or delete when the last name goes, following Docker's conflicts.
    pub fn remove_image(&self, word: &str, force: bool, prune_parents: bool) -> Result<Vec<Removal>> {
        // dockerd names the image by its ID in untag and delete events.
        let id = self.store.resolve_image(word).map(|i| i.id.to_string()).ok();
        let out = self.remove_image_inner(word, force, prune_parents)?;
        for r in &out {
            match (r, &id) {
                (Removal::Untagged(_), Some(id)) => self.record_image_event("untag", id, id),
                (Removal::Untagged(n), None) => self.record_image_event("untag", n, n),
                (Removal::Deleted(d), _) => self.record_image_event("delete", d.as_str(), d.as_str()),
                (Removal::DeletedLayer(_), _) => {}
            }
        }
        Ok(out)
    }

    fn remove_image_inner(&self, word: &str, force: bool, prune_parents: bool) -> Result<Vec<Removal>> {
        // A name with several platforms goes whole, as Docker removes the
        // index: each platform's image too when nothing else holds it.
        if let Ok(r) = Reference::parse(word) {
            let vs = self.store.variants(&r.full())?;
            if vs.len() > 1 {
                return self.remove_platforms(&r.full(), vs, force);
            }
        }
        let img = self.store.resolve_image(word)?;
        let by_name = Reference::parse(word)
            .ok()
            .map(|r| r.full())
            .filter(|n| img.tags.contains(n) || img.repo_digests.contains(n));
        let users = self.store.containers_using(img.id.as_str())?;
        let mut out = Vec::new();
        // By ID, a running container's image cannot go, forced or not (Docker's hard conflict).
        if by_name.is_none() {
            let running = users
                .iter()
                .find(|c| self.container(&c.id).is_ok_and(|c| c.state.is_running()));
            if let Some(c) = running {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                    img.id.short(),
                    &c.id[..12.min(c.id.len())]
                )));
            }
        }
        if let Some(name) = by_name {
            // Other tags keep the image; its digest references alone do not
            // (Docker untags `repo@sha256:…` with the last tag and deletes).
            let is_tag = img.tags.contains(&name);
            if (is_tag && img.tags.len() > 1) || (!is_tag && img.tags.len() + img.repo_digests.len() > 1) {
                self.store.untag(&name)?;
                out.push(Removal::Untagged(familiar_name(&name)));
                return Ok(out);
            }
            if let Some(c) = users.first() {
                if !force {
                    return Err(EngineError::conflict(format!("conflict: unable to remove repository reference \"{word}\" (must force) - container {} is using its referenced image {}",
                        &c.id[..12.min(c.id.len())],
                        img.id.short()
                    )));
                }
                self.store.untag(&name)?;
                out.push(Removal::Untagged(familiar_name(&name)));
                return Ok(out);
            }
        } else {
            let names = img.tags.len() + img.repo_digests.len();
            if names > 1 && !force {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    img.id.short()
                )));
            }
            if let Some(c) = users.first() {
                if !force {
                    return Err(EngineError::conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                        img.id.short(),
                        &c.id[..12.min(c.id.len())]
                    )));
                }
                for t in img.tags.iter().chain(&img.repo_digests) {
                    self.store.untag(t)?;
                    out.push(Removal::Untagged(familiar_name(t)));
                }
                return Ok(out);
            }
        }
        if !self.store.children(&img.id)?.is_empty() {
            if out.is_empty() && img.tags.is_empty() {
                return Err(EngineError::conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                    img.id.short()
                )));
            }
            // Tagged parent of other images: untag only.
            for t in img.tags.iter().chain(&img.repo_digests) {
                self.store.untag(t)?;
                out.push(Removal::Untagged(familiar_name(t)));
            }
            return Ok(out);
        }
        for t in img.tags.iter().chain(&img.repo_digests) {
            out.push(Removal::Untagged(familiar_name(t)));
        }
        let report = LayerReport::before(&self.store)?;
        self.store.delete_image(&img.id)?;
        out.push(Removal::Deleted(img.id.clone()));
        // Untagged build parents that nothing else needs go too.
        let mut parent = if prune_parents { img.parent.clone() } else { None };
        while let Some(p) = parent.take() {
            let Ok(pimg) = self.store.image(&p) else { break };
            if !pimg.tags.is_empty()
                || !pimg.repo_digests.is_empty()
                || !self.store.children(&p)?.is_empty()
                || !self.store.containers_using(p.as_str())?.is_empty()
            {
                break;
            }
            match self.store.delete_dangling_image(&p) {
                Ok(true) => {}
                // Named, leased or used meanwhile: it stays, and so do its parents.
                Ok(false)
                | Err(berth_store::StoreError::InUse { .. })
                | Err(berth_store::StoreError::UsedByContainer { .. }) => break,
                Err(e) => return Err(e.into()),
            }
            out.push(Removal::Deleted(p));
            parent = pimg.parent.clone();
        }
        let collected = self.store.gc().context("collecting unused layers")?;
        Ok(report.told(out, collected))
    }

    /// `image prune`: dangling images (or, with `all`, every image no container uses).
    pub fn prune_images(&self, all: bool, labels: &[String]) -> Result<(Vec<Removal>, u64)> {
        let f = crate::containers::prune::PruneFilter {
            labels: labels.to_vec(),
            ..Default::default()
        };
        self.prune_images_filtered(all, &f)
    }

    /// `image prune --filter` / `system prune --filter`: as
    /// [`Engine::prune_images`], only images the filter lets go (`until=`
    /// by creation time, `label=`, `label!=`).
    pub fn prune_images_filtered(
        &self,
        all: bool,
        f: &crate::containers::prune::PruneFilter,
    ) -> Result<(Vec<Removal>, u64)> {
        let mut removed = Vec::new();
        let before = self.disk_usage_images()?;
        let report = LayerReport::before(&self.store)?;
        loop {
            let images = self.store.list_images()?;
            let parents: HashSet<Digest> = images.iter().filter_map(|i| i.parent.clone()).collect();
            let used: HashSet<String> = self.store.list_containers()?.into_iter().map(|c| c.image_id).collect();
            // What builds and runs in flight hold.
            let leased = self.store.leased()?;
            let mut progress = false;
            for img in &images {
                if used.contains(img.id.as_str()) || parents.contains(&img.id) || leased.images.contains(&img.id) {
                    continue;
                }
                let untagged = img.tags.is_empty() && img.repo_digests.is_empty();
                if !all && !untagged {
                    continue;
                }
                if !(f.labels.is_empty() && f.not_labels.is_empty() && f.until.is_none()) {
                    let labels = self
                        .store
                        .image_config(&img.id)
                        .ok()
                        .and_then(|c| c.config.labels)
                        .unwrap_or_default();
                    if !f.matches(&labels.into_iter().collect(), &img.created) {
                        continue;
                    }
                }
                for t in img.tags.iter().chain(&img.repo_digests) {
                    self.store.untag(t)?;
                    removed.push(Removal::Untagged(familiar_name(t)));
                }
                // Dangling is checked again as it is deleted: a build may
                // have named it since the list was read.
                let deleted = if untagged {
                    self.store.delete_dangling_image(&img.id)
                } else {
                    self.store.delete_image(&img.id).map(|()| true)
                };
                match deleted {
                    Ok(true) => {}
                    // Named, leased or given a container since the list was read.
                    Ok(false)
                    | Err(berth_store::StoreError::InUse { .. })
                    | Err(berth_store::StoreError::UsedByContainer { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
                removed.push(Removal::Deleted(img.id.clone()));
                progress = true;
            }
            if !progress {
                break;
            }
        }
        let collected = self.store.gc()?;
        let after = self.disk_usage_images()?;
        Ok((report.told(removed, collected), before.saturating_sub(after)))
    }

    /// Does the image carry every `key` / `key=value` label filter? Reads
    /// the config only when there is a filter.
    fn has_labels(&self, id: &Digest, filters: &[String]) -> bool {
        if filters.is_empty() {
            return true;
        }
        let labels = self
            .store
            .image_config(id)
            .ok()
            .and_then(|c| c.config.labels)
            .unwrap_or_default();
        filters.iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(f.as_str()),
        })
    }

    /// Bytes of all unpacked layers.
    pub(crate) fn disk_usage_images(&self) -> anyhow::Result<u64> {
        Ok(self.store.list_layers()?.iter().map(|l| l.content_size).sum())
    }

    /// `system df` numbers for images, as the docker CLI makes them from
    /// dockerd's answer: the images `images` lists, those containers use,
    /// the bytes of every layer in the store, and what is left of them
    /// once the images in use keep their own (not shared) layers.
    pub fn df_images(&self) -> Result<(usize, usize, u64, u64)> {
        let entries = self.image_entries(&Default::default(), true)?;
        let size: u64 = self.store.list_layers()?.iter().map(|l| l.content_size).sum();
        let in_use = entries.iter().filter(|e| e.containers > 0);
        let kept: u64 = in_use.clone().map(|e| e.size.saturating_sub(e.shared_size)).sum();
        Ok((entries.len(), in_use.count(), size, size.saturating_sub(kept)))
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn reference_globs_like_go_path_match() {
        assert!(glob_match("bb*", "bb:latest"));
        assert!(glob_match("*:latest", "bb:latest"));
        assert!(!glob_match("*", "a/b"));
        assert!(glob_match("a/*", "a/b"));
        assert!(glob_match("b[a-c]", "bb"));
        assert!(!glob_match("b[!a-c]", "bb"));
    }
}
