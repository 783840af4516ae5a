//! What a front asks about the engine as a whole, and the operations on
//! several objects at once, with Docker's policy in one place: `info`,
//! `version`, `system df` (computed as Docker does), per-image summaries
//! (one entry per image, with every name it has), `inspect` of any object
//! (containers first, then images), stopping several containers side by
//! side, and `rm -f` of several killing them all first.
//!
//! Fronts turn these values into their own shapes (the CLI's lines, the
//! API's JSON); none of them reads the store for these answers itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use berth_registry::{Credentials, Options, Registry};
use berth_store::reference::familiar_name;
use serde::Serialize;
use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::images::ListFilter;
use crate::Engine;

/// `info`'s data (Docker's field names where Docker has the field).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    /// The store's root directory.
    pub root: String,
    /// The storage driver (always `overlay`).
    pub driver: String,
    /// Images in the store.
    pub images: u64,
    /// Containers in the store.
    pub containers: u64,
    /// Containers running (or restarting).
    pub containers_running: u64,
    /// Containers paused.
    pub containers_paused: u64,
    /// Containers neither running nor paused.
    pub containers_stopped: u64,
    /// Not running as root.
    pub rootless: bool,
    /// `1` or `2`, Docker's values (a hybrid host is `1`).
    pub cgroup_version: String,
    /// cgroup v1 controllers beside a cgroup2 mount.
    #[serde(skip)]
    pub cgroup_hybrid: bool,
    /// The OCI runtime new containers get, and why.
    pub runtime: RuntimeInfo,
    /// The kernel's release.
    pub kernel_version: String,
    /// `PRETTY_NAME` of /etc/os-release (`Debian GNU/Linux 12 (bookworm)`).
    pub operating_system: String,
    /// `VERSION_ID` of /etc/os-release.
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// The host's architecture as images name it (`amd64`, `arm64`).
    pub architecture: String,
    /// `uname -m` (`x86_64`).
    #[serde(skip)]
    pub machine: String,
    /// CPUs.
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    /// The host's memory in bytes.
    pub mem_total: u64,
    /// The host's name.
    pub name: String,
    /// berth's version.
    pub server_version: String,
    /// How containers get user namespaces (`--userns`), when it could be read.
    pub userns: Option<crate::userns::UsernsInfo>,
    /// What the user should know: a store more open than it should be, …
    pub warnings: Vec<String>,
}

/// The OCI runtime `info` reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeInfo {
    /// `crun`, `runc`, `youki`, or `none`.
    pub name: String,
    /// Its executable.
    pub path: String,
    /// Why it was chosen (or why none could be).
    pub reason: String,
}

/// `berth version`'s data.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    /// berth's version.
    pub version: String,
    /// `linux`.
    pub os: String,
    /// The host's architecture as images name it.
    pub arch: String,
    /// The Docker Engine API version berth speaks.
    pub api_version: String,
}

/// berth's version and platform.
pub fn version() -> Version {
    Version {
        version: env!("CARGO_PKG_VERSION").to_string(),
        os: std::env::consts::OS.to_string(),
        arch: berth_store::ImageConfig::host_architecture().to_string(),
        api_version: "1.43".to_string(),
    }
}

/// One row of `system df`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsageRow {
    /// How many there are.
    pub total: usize,
    /// How many are in use (images used by a container, running
    /// containers, volumes mounted by a container).
    pub active: usize,
    /// Bytes they take.
    pub size: u64,
    /// Bytes a prune would free.
    pub reclaimable: u64,
}

/// `system df`: disk usage by kind, as Docker counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    /// Images: every unpacked layer once; reclaimable = what no
    /// container's image needs.
    pub images: UsageRow,
    /// Containers: their writable layers; reclaimable = those of
    /// containers not running.
    pub containers: UsageRow,
    /// Volumes: their data; reclaimable = volumes no container mounts.
    pub volumes: UsageRow,
    /// Build cache: the cached build steps, and the layers only they hold.
    pub build_cache: UsageRow,
}

/// Which objects `inspect` looks among.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InspectKind {
    /// Containers first, then images (Docker's order).
    #[default]
    Any,
    /// Containers only.
    Container,
    /// Images only.
    Image,
}

impl InspectKind {
    /// Parses `--type`: `container`, `image`, or nothing.
    pub fn parse(s: Option<&str>) -> Result<InspectKind> {
        match s {
            None | Some("") => Ok(InspectKind::Any),
            Some("container") => Ok(InspectKind::Container),
            Some("image") => Ok(InspectKind::Image),
            Some(t) => Err(EngineError::invalid(format!(
                "{} is not a valid value for --type",
                crate::error::shown(t)
            ))),
        }
    }
}

impl Engine {
    /// `info`: counts from the store, containers' live states, the host.
    pub fn info(&self) -> Result<Info> {
        let (images, _) = self.store.counts()?;
        let containers = self.list_all_containers()?;
        let count = |s: &str| containers.iter().filter(|c| c.state.status == s).count() as u64;
        let (running, paused) = (count("running") + count("restarting"), count("paused"));
        let runtime = match berth_runtime::OciRuntime::select(self.runtime.as_deref(), &self.root().join("runtime")) {
            Ok(r) => RuntimeInfo {
                name: r.name.clone(),
                path: r.path.display().to_string(),
                reason: r.reason.clone(),
            },
            Err(e) => RuntimeInfo {
                name: "none".into(),
                path: String::new(),
                reason: e.to_string(),
            },
        };
        let (cgroup_version, cgroup_hybrid) = cgroup_layout();
        let (operating_system, os_version) = os_release();
        let uts = rustix::system::uname();
        Ok(Info {
            root: self.root().display().to_string(),
            driver: "overlay".into(),
            images,
            containers: containers.len() as u64,
            containers_running: running,
            containers_paused: paused,
            containers_stopped: containers.len() as u64 - running - paused,
            rootless: crate::is_rootless(),
            cgroup_version: cgroup_version.into(),
            cgroup_hybrid,
            runtime,
            kernel_version: uts.release().to_string_lossy().into_owned(),
            operating_system,
            os_version,
            os_type: std::env::consts::OS.into(),
            architecture: berth_store::ImageConfig::host_architecture().into(),
            machine: uts.machine().to_string_lossy().into_owned(),
            ncpu: crate::host_cpus(),
            mem_total: host_memory(),
            name: uts.nodename().to_string_lossy().into_owned(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            userns: self.userns_info().ok(),
            warnings: self.store.warnings().iter().map(|w| w.to_string()).collect(),
        })
    }

    /// `inspect NAME`: a container's or an image's Docker-shaped JSON
    /// (containers first, as Docker looks); [`ErrorKind::NotFound`]
    /// (`No such object`) when neither has that name.
    ///
    /// [`ErrorKind::NotFound`]: crate::ErrorKind::NotFound
    pub fn inspect(&self, name: &str, kind: InspectKind, size: bool) -> Result<Value> {
        if kind != InspectKind::Image {
            match self.inspect_container(name, size) {
                Ok(v) => return Ok(v),
                Err(e) if kind == InspectKind::Container => return Err(e),
                Err(_) => {}
            }
        }
        match self.image_inspect(name) {
            Ok(v) => Ok(v),
            Err(e) if kind == InspectKind::Image => Err(e),
            Err(_) => Err(EngineError::not_found(format!("No such object: {name}"))),
        }
    }

    /// `stop` of several containers, side by side (as Docker does): each
    /// name with its outcome, in the order given.
    pub fn stop_containers(&self, names: &[String], timeout: Option<u32>) -> Vec<(String, Result<()>)> {
        self.each_parallel(names, |n| self.stop_container(n, timeout))
    }

    /// `restart` of several containers, side by side (tty ones with
    /// `console` as their window size).
    pub fn restart_containers(
        &self,
        names: &[String],
        timeout: Option<u32>,
        console: Option<crate::streams::ConsoleSize>,
    ) -> Vec<(String, Result<()>)> {
        self.each_parallel(names, |n| self.restart_container(n, timeout, console))
    }

    /// `rm` of several containers. With `force`, every running one is sent
    /// SIGKILL first, so their monitors wind down side by side; then they
    /// are removed one by one. Each name with its outcome.
    pub fn remove_containers(&self, names: &[String], force: bool, volumes: bool) -> Vec<(String, Result<()>)> {
        if force && names.len() > 1 {
            for n in names {
                self.kill_for_removal(n);
            }
        }
        names
            .iter()
            .map(|n| (n.clone(), self.remove_container(n, force, volumes)))
            .collect()
    }

    fn each_parallel(&self, names: &[String], f: impl Fn(&str) -> Result<()> + Sync) -> Vec<(String, Result<()>)> {
        std::thread::scope(|s| {
            let handles: Vec<_> = names.iter().map(|n| s.spawn(|| f(n))).collect();
            names
                .iter()
                .zip(handles)
                .map(|(n, h)| {
                    let r = h.join().unwrap_or_else(|_| {
                        Err(EngineError::new(
                            crate::ErrorKind::Other,
                            "internal error: worker panicked",
                        ))
                    });
                    (n.clone(), r)
                })
                .collect()
        })
    }

    /// `system df`.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let (total, active, size, reclaimable) = self.df_images()?;
        let images = UsageRow {
            total,
            active,
            size,
            reclaimable,
        };

        let all = self.list_all_containers()?;
        let mut containers = UsageRow {
            total: all.len(),
            ..Default::default()
        };
        for c in &all {
            let rw = berth_archive::tree_size(&c.dir.join(super::containers::UPPER));
            containers.size += rw;
            if c.state.is_running() {
                containers.active += 1;
            } else {
                containers.reclaimable += rw;
            }
        }

        let used: HashSet<String> = all
            .iter()
            .flat_map(|c| c.doc().volume_names().map(str::to_string).collect::<Vec<_>>())
            .collect();
        let mut volumes = UsageRow::default();
        for v in self.store.list_volumes()? {
            let bytes = berth_archive::tree_size(&self.store.volumes_dir().join(&v.name).join("_data"));
            volumes.total += 1;
            volumes.size += bytes;
            if used.contains(&v.name) {
                volumes.active += 1;
            } else {
                volumes.reclaimable += bytes;
            }
        }

        Ok(DiskUsage {
            images,
            containers,
            volumes,
            build_cache: self.build_cache_usage()?,
        })
    }

    /// The build cache: every cached step whose image still exists; its
    /// size is that of the layers only step images hold (a tagged image's
    /// or a container's layers are the images' row), all reclaimable.
    fn build_cache_usage(&self) -> Result<UsageRow> {
        let images = self.store.list_images()?;
        let entries = self.store.cache_entries()?;
        let by_id: BTreeMap<&str, &berth_store::ImageRecord> = images.iter().map(|i| (i.id.as_str(), i)).collect();
        let cached: HashSet<&str> = entries
            .iter()
            .map(|(_, id)| id.as_str())
            .filter(|id| by_id.contains_key(id))
            .collect();
        let used: HashSet<String> = self.store.list_containers()?.into_iter().map(|c| c.image_id).collect();
        let kept: HashSet<&berth_store::Digest> = images
            .iter()
            .filter(|i| !cached.contains(i.id.as_str()) || !i.tags.is_empty() || used.contains(i.id.as_str()))
            .flat_map(|i| i.layers.iter())
            .collect();
        let cache_layers: HashSet<&berth_store::Digest> = cached
            .iter()
            .filter_map(|id| by_id.get(id))
            .flat_map(|i| i.layers.iter())
            .filter(|l| !kept.contains(l))
            .collect();
        let sizes: BTreeMap<berth_store::Digest, u64> = self
            .store
            .list_layers()?
            .into_iter()
            .map(|l| (l.chain_id, l.content_size))
            .collect();
        let size: u64 = cache_layers.iter().map(|l| sizes.get(*l).copied().unwrap_or(0)).sum();
        Ok(UsageRow {
            total: entries.iter().filter(|(_, id)| by_id.contains_key(id.as_str())).count(),
            active: 0,
            size,
            reclaimable: size,
        })
    }
}

/// One image with all its names, as `/images/json` and `system df` list it.
#[derive(Debug, Clone)]
pub struct ImageEntry {
    /// `sha256:…`
    pub id: String,
    /// The parent image's ID, or empty.
    pub parent: String,
    /// Familiar `repo:tag` names (only those a reference filter matched).
    pub repo_tags: Vec<String>,
    /// Familiar `repo@sha256:…` names.
    pub repo_digests: Vec<String>,
    /// Seconds since the epoch.
    pub created: i64,
    /// Bytes of all its layers.
    pub size: u64,
    /// Bytes of layers this image shares with another image.
    pub shared_size: u64,
    /// Containers (running or not) made from it.
    pub containers: usize,
    /// The image's labels.
    pub labels: BTreeMap<String, String>,
}

/// A volume and what uses it, for `system df`.
#[derive(Debug, Clone)]
pub struct VolumeUsage {
    /// The stored volume (name, labels, driver, options).
    pub volume: berth_store::volumes::Volume,
    /// Where its data lives on the host.
    pub mountpoint: PathBuf,
    /// Bytes of its data (0 when not asked for).
    pub size: u64,
    /// How many containers mount it.
    pub ref_count: usize,
}

/// `system df -v` and the API's `/system/df`: every image, every volume,
/// and the layers' total size. (Containers' sizes come with their inspect data.)
#[derive(Debug, Clone)]
pub struct DiskUsageDetail {
    /// Bytes of every unpacked layer, each once.
    pub layers_size: u64,
    /// Every image, one entry each.
    pub images: Vec<ImageEntry>,
    /// Every volume.
    pub volumes: Vec<VolumeUsage>,
}

fn cgroup_layout() -> (&'static str, bool) {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        ("2", false)
    } else if std::path::Path::new("/sys/fs/cgroup/unified").exists() {
        ("1", true)
    } else {
        ("1", false)
    }
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let pretty = field("PRETTY_NAME");
    (
        if pretty.is_empty() { "Linux".into() } else { pretty },
        field("VERSION_ID"),
    )
}

/// The host's memory (MemTotal), in bytes; 0 when unknown.
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn unix_seconds(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// Checks a user name and password against a registry (the API's
/// `/auth`); stores nothing, unlike `login`.
pub fn check_login(server: &str, username: &str, password: &str) -> Result<()> {
    let domain = berth_registry::auth::normalize_server(server);
    let creds = Credentials {
        username: username.to_string(),
        password: password.to_string(),
    };
    let rt = crate::registry::runtime()?;
    rt.block_on(async {
        Registry::connect_with(&domain, &Options::default(), Some(creds))
            .await?
            .check_login()
            .await
    })?;
    Ok(())
}

impl Engine {
    /// Images one entry each, with the names [`Engine::list_images`] keeps
    /// under `f` (its filters decide which images and which names), newest
    /// first. `shared_size` is computed only when asked: the bytes of an
    /// image's layers another listed image also stands on, as dockerd
    /// counts them (a build's step images under it are not listed, so they
    /// share nothing).
    pub fn image_entries(&self, f: &ListFilter, shared_size: bool) -> Result<Vec<ImageEntry>> {
        let rows = self.list_images(f)?;
        let records: HashMap<String, berth_store::ImageRecord> = self
            .store
            .list_images()?
            .into_iter()
            .map(|r| (r.id.to_string(), r))
            .collect();
        let usage = if shared_size {
            let mut ids: Vec<berth_store::Digest> = rows.iter().map(|r| r.id.clone()).collect();
            ids.sort();
            ids.dedup();
            self.image_layer_usage(&ids)?
        } else {
            Default::default()
        };
        let mut out: Vec<ImageEntry> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for row in rows {
            let id = row.id.to_string();
            let name =
                (row.repository != "<none>" && row.tag != "<none>").then(|| format!("{}:{}", row.repository, row.tag));
            if let Some(&i) = seen.get(&id) {
                if let Some(n) = name {
                    out[i].repo_tags.push(n);
                }
                continue;
            }
            let Some(rec) = records.get(&id) else { continue };
            let labels = self
                .store
                .image_config(&rec.id)
                .ok()
                .and_then(|c| c.config.labels)
                .unwrap_or_default();
            let shared = usage.get(&rec.id).map(|u| u.shared).unwrap_or(0);
            seen.insert(id.clone(), out.len());
            out.push(ImageEntry {
                id,
                parent: rec.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                repo_tags: name.into_iter().collect(),
                repo_digests: rec.repo_digests.iter().map(|d| familiar_name(d)).collect(),
                created: unix_seconds(&rec.created),
                size: rec.content_size,
                shared_size: shared,
                containers: row.containers,
                labels,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Every volume, with how many containers mount it, and (`with_size`:
    /// a walk of each) its size.
    pub fn volumes(&self, with_size: bool) -> Result<Vec<VolumeUsage>> {
        let containers = self.store.list_containers()?;
        let mut users: HashMap<String, usize> = HashMap::new();
        for c in &containers {
            let names: HashSet<&str> = c.config["Mounts"]
                .as_array()
                .map(|ms| ms.iter().filter_map(|m| m["Name"].as_str()).collect())
                .unwrap_or_default();
            for n in names {
                *users.entry(n.to_string()).or_default() += 1;
            }
        }
        Ok(self
            .store
            .list_volumes_full()?
            .into_iter()
            .map(|v| {
                let mountpoint = self.store.volumes_dir().join(&v.record.name).join("_data");
                VolumeUsage {
                    size: if with_size {
                        berth_archive::tree_size(&mountpoint)
                    } else {
                        0
                    },
                    ref_count: users.get(&v.record.name).copied().unwrap_or(0),
                    mountpoint,
                    volume: v,
                }
            })
            .collect())
    }

    /// `system df -v` / `/system/df`: images (with shared sizes), volumes, layers' total.
    pub fn disk_usage_detail(&self) -> Result<DiskUsageDetail> {
        // What `images` lists, as dockerd counts them: not the build steps
        // under them (their layers are in the layers' size).
        let images = self.image_entries(&ListFilter::default(), true)?;
        let layers_size = self.store.list_layers()?.iter().map(|l| l.content_size).sum();
        let volumes = self.volumes(true)?;
        Ok(DiskUsageDetail {
            layers_size,
            images,
            volumes,
        })
    }
}
