//! `berth system check [--repair]`: the store compared with itself — the
//! database against the blobs, the unpacked layers, the containers'
//! directories, the mounts under the store, the leases and the modes —
//! after whatever killed processes or a full disk left (as Podman's
//! `system check`).
//!
//! Without `repair` it only reports. With it, each finding is put right
//! the one way that loses nothing still usable: garbage (unreferenced
//! blobs, layer directories without a record, stale mounts, containers'
//! directories without a record, dead leases, names of deleted images) is
//! removed, a layer whose directory is gone is unpacked again from its
//! blob, modes more open than the permissions model are tightened, and
//! only an image that cannot be made whole (a blob or layer gone for good)
//! is removed. It runs under the store's exclusive lock, so no import or
//! commit is half-way through while it looks. It never touches a mount
//! or directory whose owner is alive, nor layer content.

use std::collections::HashSet;
use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::params;

use crate::digest::Digest;
use crate::error::Result;
use crate::images::ImageRecord;
use crate::{Store, OPEN_PATHS};

/// A container directory without a record younger than this may be a
/// `run` still starting (it records the container last): left alone.
const YOUNG: Duration = Duration::from_secs(600);

/// What kind of damage or leftover a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// An image whose config or manifest blob is gone.
    ImageBlobMissing,
    /// An image standing on a layer that is gone for good.
    ImageLayerMissing,
    /// A layer record whose directory is gone.
    LayerDirMissing,
    /// A directory in `layers/` that no record describes.
    LayerDirUnrecorded,
    /// A blob nothing refers to.
    BlobUnreferenced,
    /// A tag, digest reference or build cache entry naming a deleted image.
    DanglingName,
    /// A container whose image is gone.
    ContainerImageMissing,
    /// A container record whose directory is gone.
    ContainerDirMissing,
    /// A container directory with no record (a `run` killed while starting).
    ContainerDirUnrecorded,
    /// A mount under the store that nothing owns any more.
    StaleMount,
    /// A lease of a process that is gone.
    DeadLease,
    /// A path more open to other users than the permissions model allows.
    TooOpen,
}

/// One thing found, and whether `--repair` put it right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// What it is about: an image ID, a path, a name.
    pub subject: String,
    /// What is wrong.
    pub problem: String,
    /// What the repair did (None: not repaired).
    pub repaired: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.problem)?;
        if let Some(r) = &self.repaired {
            write!(f, " — repaired: {r}")?;
        }
        Ok(())
    }
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub findings: Vec<Finding>,
    /// Whether repairs were asked for.
    pub repair: bool,
}

impl CheckReport {
    /// Findings not repaired.
    pub fn unrepaired(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.repaired.is_none())
    }

    /// Nothing found, or everything found repaired.
    pub fn is_clean(&self) -> bool {
        self.unrepaired().next().is_none()
    }
}

/// Collects findings, doing each repair when asked.
struct Checker<'s> {
    store: &'s Store,
    repair: bool,
    report: CheckReport,
}

impl Checker<'_> {
    /// Records a finding; `fix` runs when repairing and says what it did.
    fn found(
        &mut self,
        kind: FindingKind,
        subject: impl Into<String>,
        problem: impl Into<String>,
        fix: impl FnOnce(&Store) -> Result<String>,
    ) {
        let repaired = if self.repair {
            match fix(self.store) {
                Ok(what) => Some(what),
                Err(e) => {
                    log::warn!("repair failed: {e}");
                    None
                }
            }
        } else {
            None
        };
        self.report.findings.push(Finding {
            kind,
            subject: subject.into(),
            problem: problem.into(),
            repaired,
        });
    }

    /// Records a finding a repair of the store cannot put right (it needs
    /// the user, or the engine: removing a container).
    fn report(&mut self, kind: FindingKind, subject: impl Into<String>, problem: impl Into<String>) {
        self.report.findings.push(Finding {
            kind,
            subject: subject.into(),
            problem: problem.into(),
            repaired: None,
        });
    }
}

impl Store {
    /// Checks the store (see the module); with `repair`, puts right what
    /// it finds.
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        let _lock = self.gc_lock()?;
        let mut c = Checker {
            store: self,
            repair,
            report: CheckReport {
                findings: Vec::new(),
                repair,
            },
        };
        self.check_leases(&mut c)?;
        self.check_names(&mut c)?;
        self.check_layers(&mut c)?;
        self.check_images(&mut c)?;
        self.check_blobs(&mut c)?;
        self.check_containers(&mut c)?;
        self.check_modes(&mut c);
        Ok(c.report)
    }

    fn check_leases(&self, c: &mut Checker<'_>) -> Result<()> {
        let count =
            |s: &Store| -> Result<i64> { Ok(s.db().query_row("SELECT COUNT(*) FROM leases", [], |r| r.get(0))?) };
        let before = count(self)?;
        // Reading the live leases sweeps the dead ones: a repair by nature.
        self.leased()?;
        let dead = before - count(self)?;
        if dead > 0 {
            c.report.findings.push(Finding {
                kind: FindingKind::DeadLease,
                subject: format!("{dead} lease(s)"),
                problem: "held by processes that are gone".into(),
                repaired: Some("released".into()),
            });
        }
        Ok(())
    }

    fn check_names(&self, c: &mut Checker<'_>) -> Result<()> {
        for (table, what) in [
            ("tags", "tag"),
            ("repo_digests", "digest reference"),
            ("build_cache", "build cache entry"),
        ] {
            let key = if table == "build_cache" { "key" } else { "name" };
            let rows: Vec<(String, String)> = {
                let db = self.db();
                let mut st = db.prepare(&format!(
                    "SELECT {key}, image_id FROM {table} WHERE image_id NOT IN (SELECT id FROM images)"
                ))?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for (name, image) in rows {
                let sql = format!("DELETE FROM {table} WHERE {key} = ?1");
                c.found(
                    FindingKind::DanglingName,
                    format!("{what} {name}"),
                    format!("names image {image}, which is gone"),
                    |s| {
                        s.db().execute(&sql, params![name])?;
                        Ok("removed".into())
                    },
                );
            }
        }
        Ok(())
    }

    fn check_layers(&self, c: &mut Checker<'_>) -> Result<()> {
        let records = self.list_layers()?;
        let recorded: HashSet<Digest> = records.iter().map(|l| l.chain_id.clone()).collect();
        for l in &records {
            if self.has_layer_dir(&l.chain_id) {
                continue;
            }
            let (chain, blob, diff_id) = (l.chain_id.clone(), l.blob.clone(), l.diff_id.clone());
            let lazy = l.blob == l.diff_id && !self.blobs().contains(&l.blob);
            c.found(
                FindingKind::LayerDirMissing,
                format!("layer {chain}"),
                if lazy {
                    "its directory is gone and it has no blob to unpack it from".to_string()
                } else {
                    "its directory is gone".to_string()
                },
                |s| {
                    if lazy {
                        s.db()
                            .execute("DELETE FROM layers WHERE chain_id = ?1", params![chain.as_str()])?;
                        return Ok("its record removed (images on it are checked next)".into());
                    }
                    let f = s.blobs().open(&blob)?;
                    let staged = s.stage_layer(std::io::BufReader::with_capacity(1 << 20, f), &chain.to_string())?;
                    if staged.diff_id != diff_id {
                        return Err(crate::StoreError::DigestMismatch {
                            what: format!("layer {chain} (blob {blob})"),
                            expected: diff_id.to_string(),
                            actual: staged.diff_id.to_string(),
                        });
                    }
                    s.publish_layer(staged, &chain)?;
                    Ok("unpacked again from its blob".into())
                },
            );
        }
        let leased = self.leased()?;
        let mounted = self.mounted_layers();
        let dir = self.root().join("layers");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Some(chain) = e.file_name().to_str().and_then(|n| Digest::from_hex(n).ok()) else {
                continue;
            };
            if recorded.contains(&chain) || leased.layers.contains(&chain) || mounted.contains(&chain) {
                continue;
            }
            c.found(
                FindingKind::LayerDirUnrecorded,
                e.path().display().to_string(),
                "a layer directory no record describes (an unpack that was interrupted)",
                |s| {
                    s.remove_layer_dir(&chain);
                    Ok("removed".into())
                },
            );
        }
        Ok(())
    }

    fn check_images(&self, c: &mut Checker<'_>) -> Result<()> {
        // Layers that are there, or can be unpacked again from their blob
        // (reported on their own above).
        let present: HashSet<Digest> = self
            .list_layers()?
            .into_iter()
            .filter(|l| self.has_layer_dir(&l.chain_id) || self.blobs().contains(&l.blob))
            .map(|l| l.chain_id)
            .collect();
        for img in self.list_images()? {
            let mut problems = Vec::new();
            for (what, d) in [("config", &img.id), ("manifest", &img.manifest)] {
                if !self.blobs().contains(d) {
                    problems.push((FindingKind::ImageBlobMissing, format!("its {what} blob {d} is gone")));
                }
            }
            for l in &img.layers {
                if !present.contains(l) {
                    problems.push((FindingKind::ImageLayerMissing, format!("its layer {l} is gone")));
                }
            }
            if problems.is_empty() {
                continue;
            }
            let kind = problems[0].0;
            let text = problems.into_iter().map(|p| p.1).collect::<Vec<_>>().join("; ");
            let id = img.id.clone();
            c.found(
                kind,
                image_subject(&img),
                format!("{text}; pull, load or build it again"),
                |s| {
                    s.delete_image(&id)?;
                    Ok("the image removed (it could not be made whole)".into())
                },
            );
        }
        Ok(())
    }

    fn check_blobs(&self, c: &mut Checker<'_>) -> Result<()> {
        let (keep, _) = self.referenced()?;
        for b in self.blobs().list()? {
            if keep.contains(&b) {
                continue;
            }
            let size = self.blobs().size(&b).unwrap_or(0);
            let blob = b.clone();
            c.found(
                FindingKind::BlobUnreferenced,
                format!("blob {b}"),
                format!("{size} bytes nothing refers to"),
                |s| {
                    s.blobs().remove(&blob);
                    Ok("removed".into())
                },
            );
        }
        Ok(())
    }

    fn check_containers(&self, c: &mut Checker<'_>) -> Result<()> {
        let images: HashSet<String> = self.list_images()?.into_iter().map(|i| i.id.to_string()).collect();
        let records = self.list_containers()?;
        let recorded: HashSet<String> = records.iter().map(|r| r.id.clone()).collect();
        for r in &records {
            if !images.contains(&r.image_id) {
                c.report(
                    FindingKind::ContainerImageMissing,
                    format!("container {} ({})", short(&r.id), r.name),
                    format!("its image {} is gone; remove the container (berth rm)", r.image_id),
                );
            }
            if !self.containers_dir().join(&r.id).is_dir() {
                c.report(
                    FindingKind::ContainerDirMissing,
                    format!("container {} ({})", short(&r.id), r.name),
                    "its directory is gone; remove the container (berth rm -f)",
                );
            }
        }
        let mounts = mounts_under(self.root());
        let now = SystemTime::now();
        for e in std::fs::read_dir(self.containers_dir()).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if recorded.contains(&name) {
                continue;
            }
            let dir = e.path();
            let young = e
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() < YOUNG)
                .unwrap_or(true);
            if young {
                continue;
            }
            let inside: Vec<PathBuf> = mounts.iter().filter(|m| m.starts_with(&dir)).cloned().collect();
            c.found(
                FindingKind::ContainerDirUnrecorded,
                dir.display().to_string(),
                if inside.is_empty() {
                    "a container directory with no record (a run killed while starting)".to_string()
                } else {
                    format!(
                        "a container directory with no record, {} mount(s) still in it",
                        inside.len()
                    )
                },
                move |_| {
                    unmount_all(&inside)?;
                    crate::staging::remove_tree(&dir);
                    Ok("unmounted and removed".into())
                },
            );
        }
        // Mounts in staging: nothing mounts there but a process now gone
        // (its staging directory was swept; the mount point remains).
        for m in mounts.iter().filter(|m| m.starts_with(self.root().join("tmp"))) {
            let m = m.clone();
            c.found(
                FindingKind::StaleMount,
                m.display().to_string(),
                "a mount in the store's staging, left by a process that is gone",
                move |_| {
                    unmount_all(std::slice::from_ref(&m))?;
                    Ok("unmounted".into())
                },
            );
        }
        Ok(())
    }

    fn check_modes(&self, c: &mut Checker<'_>) {
        let root = self.root().to_path_buf();
        let mut todo = vec![root.clone()];
        while let Some(p) = todo.pop() {
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                continue;
            }
            let rel = p.strip_prefix(&root).unwrap_or(Path::new(""));
            if is_open_path(rel) {
                continue;
            }
            let mode = meta.mode() & 0o7777;
            // --userns=auto lets others search (never read or write) the
            // store root and containers/, so that a container's unprivileged
            // root reaches its own 0700 directory (berth-engine's userns).
            let searchable = meta.is_dir() && (rel == Path::new("") || rel == Path::new("containers"));
            let allowed = if searchable { 0o011 } else { 0 };
            if mode & 0o077 & !allowed != 0 {
                let path = p.clone();
                c.found(
                    FindingKind::TooOpen,
                    p.display().to_string(),
                    format!("mode {mode:04o} lets other users in"),
                    move |_| {
                        // Fully private: --userns=auto opens the search bits
                        // again when a container needs them.
                        let tight = mode & !0o077;
                        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(tight)).map_err(|e| {
                            crate::StoreError::Io {
                                context: "tightening",
                                path: path.clone(),
                                source: e,
                            }
                        })?;
                        Ok(format!("mode {tight:04o}"))
                    },
                );
            }
            if meta.is_dir() {
                for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                    todo.push(e.path());
                }
            }
        }
    }

    /// Blobs and layers that images (and leases) refer to: what `gc` keeps.
    pub(crate) fn referenced(&self) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        let leased = self.leased()?;
        let mut keep_blobs: HashSet<Digest> = leased.blobs;
        let mut keep_layers: HashSet<Digest> = leased.layers;
        keep_layers.extend(self.mounted_layers());
        for img in &self.list_images()? {
            keep_blobs.insert(img.id.clone());
            keep_blobs.insert(img.manifest.clone());
            if let Ok(m) = self.blobs().read(&img.manifest) {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m) {
                    for l in v["layers"].as_array().into_iter().flatten() {
                        if let Some(d) = l["digest"].as_str().and_then(|d| Digest::parse(d).ok()) {
                            keep_blobs.insert(d);
                        }
                    }
                }
            }
            keep_layers.extend(img.layers.iter().cloned());
        }
        for l in self.list_layers()? {
            if keep_layers.contains(&l.chain_id) {
                keep_blobs.insert(l.blob);
            }
        }
        Ok((keep_blobs, keep_layers))
    }
}

fn image_subject(img: &ImageRecord) -> String {
    match img.tags.first() {
        Some(t) => format!("image {} ({t})", img.id.short()),
        None => format!("image {}", img.id.short()),
    }
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// Whether `rel` (relative to the store root) is at or below one of the
/// [`OPEN_PATHS`].
pub fn is_open_path(rel: &Path) -> bool {
    let comps: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    OPEN_PATHS.iter().any(|pattern| {
        let pat: Vec<&str> = pattern.split('/').collect();
        pat.len() <= comps.len() && pat.iter().zip(&comps).all(|(p, c)| wildcard(p, c))
    })
}

/// `*` matches any run of characters (within one name).
fn wildcard(p: &str, s: &str) -> bool {
    match p.split_once('*') {
        None => p == s,
        Some((head, tail)) => {
            let Some(rest) = s.strip_prefix(head) else { return false };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && wildcard(tail, &rest[i..]))
        }
    }
}

/// Mount points at or below `root` (this mount namespace).
fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(crate::layers::unescape_mountinfo(m)))
        .filter(|m| m.starts_with(root))
        .collect()
}

/// Detaches each mount, innermost first.
fn unmount_all(mounts: &[PathBuf]) -> Result<()> {
    let mut ms = mounts.to_vec();
    ms.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for m in ms {
        rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH).map_err(|e| crate::StoreError::Io {
            context: "unmounting",
            path: m.clone(),
            source: e.into(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_paths_match_what_lies_below_them() {
        assert!(is_open_path(Path::new("layers/abc/diff")));
        assert!(is_open_path(Path::new("layers/abc/diff/usr/bin/su")));
        assert!(!is_open_path(Path::new("layers/abc")));
        assert!(is_open_path(Path::new("tmp/123-ff/layer-4/diff/x")));
        assert!(!is_open_path(Path::new("tmp/123-ff/layer-4")));
        assert!(!is_open_path(Path::new("containers/abc/berth.json")));
        assert!(is_open_path(Path::new("containers/abc/hosts")));
        assert!(!is_open_path(Path::new("berth.db")));
    }
}
