//! Volumes as objects, Docker's `local` driver model: `volume create/ls/
//! inspect/rm/prune`. A volume's data is `$ROOT/volumes/NAME/_data`
//! (created before the record, removed after it); options `type`,
//! `device` and `o` are recorded for the mount made when a container uses
//! the volume (`type=tmpfs`, `type=none,o=bind,device=/path`, or a device).
//! A volume is in use while any container, running or not, mounts it.
//!
//! Docker's wording: "get NAME: no such volume", "remove NAME: volume is
//! in use - [IDs]".

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_store::volumes::{Volume, VolumeRecord, ANONYMOUS_LABEL};
use serde_json::{json, Value};

use crate::error::{EngineError, Result};
use crate::networks::{dangling_value, label_matches, split_filter};
use crate::{now_rfc3339, Engine};

/// What `volume create` asks for.
#[derive(Clone, Debug, Default)]
pub struct VolumeCreate {
    /// A random 64-hex name when `None`.
    pub name: Option<String>,
    /// `local` (the default) is the only driver.
    pub driver: Option<String>,
    /// `--opt type=… device=… o=…`.
    pub options: BTreeMap<String, String>,
    /// `--label` values.
    pub labels: BTreeMap<String, String>,
}

/// Docker's `local` driver, the only one berth has.
pub const LOCAL_DRIVER: &str = "local";

/// `volume ls --filter` values.
#[derive(Clone, Debug, Default)]
pub struct VolumeFilters {
    /// `name=` values (substrings).
    pub names: Vec<String>,
    /// `driver=` values.
    pub drivers: Vec<String>,
    /// `label=` values (`KEY` or `KEY=VALUE`).
    pub labels: Vec<String>,
    /// `label!=` values: volumes without that label.
    pub not_labels: Vec<String>,
    /// `dangling=true`: volumes no container uses.
    pub dangling: Option<bool>,
}

impl VolumeFilters {
    /// Parses `--filter KEY=VALUE` values.
    pub fn parse(filters: &[String]) -> Result<VolumeFilters> {
        let mut f = VolumeFilters::default();
        for raw in filters {
            let (k, v) = split_filter(raw)?;
            match k {
                "name" => f.names.push(v.into()),
                "driver" => f.drivers.push(v.into()),
                "label" => f.labels.push(v.into()),
                "label!" => f.not_labels.push(v.into()),
                "dangling" => f.dangling = Some(dangling_value(v)?),
                other => {
                    return Err(EngineError::invalid(format!(
                        "invalid filter {other:?}: volumes take name, driver, label, label!, dangling"
                    )))
                }
            }
        }
        Ok(f)
    }

    /// Whether a volume named `name` of `driver` with `labels`, used by a
    /// container or not, passes these filters.
    pub fn keeps(&self, name: &str, driver: &str, labels: &BTreeMap<String, String>, in_use: bool) -> bool {
        (self.names.is_empty() || self.names.iter().any(|n| name.contains(n.as_str())))
            && (self.drivers.is_empty() || self.drivers.iter().any(|d| d == driver))
            && self.labels.iter().all(|l| label_matches(labels, l))
            && !self.not_labels.iter().any(|l| label_matches(labels, l))
            && self.dangling.is_none_or(|d| d != in_use)
    }

    /// Parses `volume prune --filter` values: `label=` and `label!=` only,
    /// as Docker's.
    pub fn parse_prune(filters: &[String]) -> Result<VolumeFilters> {
        for raw in filters {
            let (k, _) = split_filter(raw)?;
            if !matches!(k, "label" | "label!") {
                return Err(EngineError::invalid(format!("invalid filter '{k}'")));
            }
        }
        Self::parse(filters)
    }
}

/// A volume as `ls` and `inspect` show it.
#[derive(Clone, Debug)]
pub struct VolumeView {
    /// The stored volume.
    pub volume: Volume,
    /// Where its data lives on the host.
    pub mountpoint: String,
    /// IDs of the containers that mount it.
    pub users: Vec<String>,
}

fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() > 1
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Docker's `CreatedAt`: seconds, `Z`.
fn created_at(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => rfc3339.to_string(),
    }
}

fn check_options(opts: &BTreeMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !["type", "device", "o", "size"].contains(&k.as_str()) {
            return Err(EngineError::invalid(format!(
                "invalid option key: {k:?} (the local driver takes type, device and o)"
            )));
        }
    }
    match opts.get("type").map(String::as_str) {
        None if opts.contains_key("device") || opts.contains_key("o") => {
            return Err(EngineError::invalid(
                "missing required option: \"type\" (e.g. type=tmpfs, or type=none with o=bind)",
            ));
        }
        Some("none") if opts.get("o").is_some_and(|o| o.split(',').any(|x| x == "bind")) => {
            let dev = opts
                .get("device")
                .ok_or_else(|| EngineError::invalid("missing required option: \"device\" (the directory to bind)"))?;
            if !std::path::Path::new(dev).is_dir() {
                return Err(EngineError::invalid(format!(
                    "invalid mount config for type \"none\": bind source path does not exist: {dev}"
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

impl Engine {
    /// `volume create`: makes `volumes/NAME/_data`, then the record. An
    /// existing volume of that name is returned as it is (Docker does the
    /// same) unless other options were asked for.
    pub fn volume_create(&self, req: &VolumeCreate) -> Result<Volume> {
        let driver = req.driver.clone().unwrap_or_else(|| LOCAL_DRIVER.into());
        let name = req.name.clone().unwrap_or_else(|| crate::containers::random_hex(32));
        if driver != LOCAL_DRIVER {
            return Err(EngineError::not_found(format!(
                "create {name}: error looking up volume plugin {driver}: plugin {driver:?} not found"
            )));
        }
        if !valid_name(&name) {
            return Err(EngineError::invalid(format!("create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")));
        }
        check_options(&req.options).map_err(|e| e.context(format!("create {name}")))?;
        if let Some(v) = self.store.volume_full(&name)? {
            if !req.options.is_empty() && v.options != req.options {
                return Err(EngineError::conflict(format!(
                    "create {name}: a volume with the same name already exists with different options"
                )));
            }
            return Ok(v);
        }
        self.make_volume_dirs(&name)?;
        let mut labels = req.labels.clone();
        if req.name.is_none() {
            // Unnamed: anonymous, as Docker marks it, so `prune` takes it.
            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
        }
        let v = Volume {
            record: VolumeRecord {
                name: name.clone(),
                created: now_rfc3339(),
                labels,
            },
            driver,
            options: req.options.clone(),
        };
        if !self.store.insert_volume_full(&v)? {
            // Another process made it meanwhile: theirs stands.
            return self
                .store
                .volume_full(&name)?
                .ok_or_else(|| EngineError::not_found(format!("volume {name} vanished")));
        }
        self.volume_event("create", &name, &v.driver);
        Ok(v)
    }

    /// `volumes/NAME/_data` (the volume's own directory private, its data
    /// as content), returned.
    fn make_volume_dirs(&self, name: &str) -> Result<PathBuf> {
        use berth_archive::perms;
        let vdir = self.store.volumes_dir().join(name);
        let data = vdir.join("_data");
        perms::create_dir_all(&vdir, perms::PRIVATE_DIR)
            .and_then(|()| perms::create_dir_all(&data, perms::CONTENT_DIR))
            .map_err(|e| {
                EngineError::from(anyhow::Error::new(e))
                    .context(format!("creating volume directory {}", data.display()))
            })?;
        Ok(data)
    }

    /// The volume a container mounts, created now when missing (with
    /// `options` from `--mount volume-opt=…`, marked anonymous when it has
    /// no name of the user's): the volume, its data dir, and whether it was
    /// created now.
    pub(crate) fn volume_for_container(
        &self,
        name: &str,
        anonymous: bool,
        options: &BTreeMap<String, String>,
    ) -> Result<(Volume, PathBuf, bool)> {
        let data = self.store.volumes_dir().join(name).join("_data");
        if let Some(v) = self.store.volume_full(name)? {
            if data.is_dir() {
                return Ok((v, data, false));
            }
        }
        check_options(options).map_err(|e| e.context(format!("create {name}")))?;
        let data = self.make_volume_dirs(name)?;
        let mut labels = BTreeMap::new();
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
        }
        let v = Volume {
            record: VolumeRecord {
                name: name.to_string(),
                created: now_rfc3339(),
                labels,
            },
            driver: LOCAL_DRIVER.into(),
            options: options.clone(),
        };
        if !self.store.insert_volume_full(&v)? {
            // Recorded already (by another process, or its directory had
            // gone): the record stands.
            let v = self
                .store
                .volume_full(name)?
                .ok_or_else(|| EngineError::not_found(format!("volume {name} vanished")))?;
            return Ok((v, data, false));
        }
        self.volume_event("create", name, LOCAL_DRIVER);
        Ok((v, data, true))
    }

    /// IDs of the containers that mount volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .store
            .list_containers()?
            .into_iter()
            .filter(|c| {
                c.config["Mounts"]
                    .as_array()
                    .is_some_and(|ms| ms.iter().any(|m| m["Name"].as_str() == Some(name)))
            })
            .map(|c| c.id)
            .collect())
    }

    fn view(&self, v: Volume) -> Result<VolumeView> {
        let mountpoint = self
            .store
            .volumes_dir()
            .join(&v.record.name)
            .join("_data")
            .display()
            .to_string();
        let users = self.volume_users(&v.record.name)?;
        Ok(VolumeView {
            volume: v,
            mountpoint,
            users,
        })
    }

    /// `volume ls`, filtered, by name.
    pub fn volume_list(&self, f: &VolumeFilters) -> Result<Vec<VolumeView>> {
        let mut out = Vec::new();
        for v in self.store.list_volumes_full()? {
            let view = self.view(v)?;
            let r = &view.volume.record;
            if f.keeps(&r.name, &view.volume.driver, &r.labels, !view.users.is_empty()) {
                out.push(view);
            }
        }
        Ok(out)
    }

    /// `volume inspect`: Docker's JSON shape.
    pub fn volume_inspect(&self, name: &str) -> Result<Value> {
        let v = self
            .store
            .volume_full(name)?
            .ok_or_else(|| EngineError::not_found(format!("get {name}: no such volume")))?;
        let view = self.view(v)?;
        Ok(volume_json(&view))
    }

    /// `volume rm [-f]`: refused while a container mounts it; with
    /// `force`, a missing volume is no error.
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<bool> {
        if self.store.volume_full(name)?.is_none() {
            if force {
                return Ok(false);
            }
            return Err(EngineError::not_found(format!("get {name}: no such volume")));
        }
        let users = self.volume_users(name)?;
        if !users.is_empty() {
            return Err(EngineError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.store.remove_volume(name)?;
        berth_store::staging::remove_tree(&self.store.volumes_dir().join(name));
        self.volume_event("destroy", name, LOCAL_DRIVER);
        Ok(true)
    }

    /// The volumes with their use (as [`Engine::volumes`] gives them) that
    /// `f` keeps: the API's volume list.
    pub fn volumes_filtered(&self, f: &VolumeFilters) -> Result<Vec<crate::system::VolumeUsage>> {
        Ok(self
            .volumes(false)?
            .into_iter()
            .filter(|v| {
                let r = &v.volume.record;
                f.keeps(&r.name, LOCAL_DRIVER, &r.labels, v.ref_count > 0)
            })
            .collect())
    }

    /// `volume prune`: unused anonymous volumes (all unused with `all`)
    /// that `filters` keep (their labels); returns their names and the
    /// bytes freed.
    pub fn volume_prune(&self, all: bool, filters: &VolumeFilters) -> Result<(Vec<String>, u64)> {
        let mut gone = Vec::new();
        let mut bytes = 0;
        for view in self.volume_list(filters)? {
            if !view.users.is_empty() || !(all || view.volume.anonymous()) {
                continue;
            }
            bytes += berth_archive::tree_size(std::path::Path::new(&view.mountpoint));
            if self.volume_remove(&view.volume.record.name, true)? {
                gone.push(view.volume.record.name);
            }
        }
        Ok((gone, bytes))
    }
}

/// What the runtime mounts for a volume, by its local-driver options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeMount {
    /// The volume's own `_data` directory (no options).
    Data,
    /// `type=tmpfs`: a tmpfs with these options (`o=size=…,mode=…`).
    Tmpfs(Vec<String>),
    /// `type=none,o=bind,device=DIR`: DIR.
    Bind(PathBuf),
}

/// How volume `v` is mounted into a container. Docker mounts a `tmpfs`
/// volume once on the host and binds it into each user; here each
/// container gets its own tmpfs, so two containers running at once do not
/// share a tmpfs volume's contents (its contents go with the container in
/// both). Other device types (`ext4`, `nfs`, …) are refused.
pub fn volume_mount(v: &Volume) -> Result<VolumeMount> {
    let name = &v.record.name;
    let o: Vec<String> = v
        .options
        .get("o")
        .map(|o| o.split(',').filter(|x| !x.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    match v.options.get("type").map(String::as_str) {
        None | Some("") => Ok(VolumeMount::Data),
        Some("tmpfs") => {
            // A volume is executable, as Docker's bind of its tmpfs is;
            // the user's own `noexec` (after this) still wins.
            let mut opts = vec!["exec".to_string()];
            opts.extend(o);
            Ok(VolumeMount::Tmpfs(opts))
        }
        Some("none") if o.iter().any(|x| x == "bind" || x == "rbind") => {
            let dev = v
                .options
                .get("device")
                .ok_or_else(|| EngineError::invalid(format!("volume {name}: missing required option: \"device\"")))?;
            let dev = PathBuf::from(dev);
            if !dev.is_dir() {
                return Err(EngineError::invalid(format!(
                    "error while mounting volume '{name}': failed to mount local volume: no such file or directory: {}",
                    dev.display()
                )));
            }
            Ok(VolumeMount::Bind(dev))
        }
        Some(t) => Err(EngineError::invalid(format!(
            "error while mounting volume '{name}': local volumes of type {t:?} are not supported (use type=tmpfs, or type=none with o=bind)"
        ))),
    }
}

/// `volume inspect`'s object.
pub fn volume_json(view: &VolumeView) -> Value {
    volume_object(&view.volume, &view.mountpoint)
}

/// Docker's `Volume` as the API lists it; with `usage`, its `UsageData`
/// (`/system/df`).
pub fn volume_usage_json(v: &crate::system::VolumeUsage, usage: bool) -> Value {
    let mut out = volume_object(&v.volume, &v.mountpoint.display().to_string());
    if usage {
        out["UsageData"] = json!({"RefCount": v.ref_count, "Size": v.size});
    }
    out
}

/// Docker's `Volume` object: `Options` null when none were given, as
/// dockerd shows it.
fn volume_object(v: &Volume, mountpoint: &str) -> Value {
    let r = &v.record;
    json!({
        "CreatedAt": created_at(&r.created),
        "Driver": v.driver,
        "Labels": r.labels,
        "Mountpoint": mountpoint,
        "Name": r.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": "local",
    })
}
