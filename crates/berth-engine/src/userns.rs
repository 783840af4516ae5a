//! `--userns`, as Podman has it, so that container root need not be host
//! root even when berth runs as root:
//!
//! * `host` — Docker's behaviour and the default: as root, container root
//!   is host root; rootless, the user's own default mapping.
//! * `auto[:size=N]` (as root) — the container gets its own range of
//!   N (65536) host ids, allocated in the store from a pool (`userns_range`
//!   in `berth.toml`, else the ranges user `berth` has in both
//!   `/etc/subuid` and `/etc/subgid`) and freed at `rm`; root inside is the
//!   first id of the range, an unprivileged user outside.
//! * `keep-id` (rootless) — the user's uid and gid are the same inside,
//!   and the container runs as them unless `--user` says otherwise.
//! * `nomap` (rootless) — the user's own ids are not mapped at all.
//!
//! `userns = "auto"` in `berth.toml` makes `auto` the default of every
//! container berth runs as root. Layers stay shared between containers of
//! different mappings: the rootfs is an overlay of idmapped mounts of the
//! layer directories (berth makes them; the OCI runtime needs no idmap
//! support), or, where the kernel or the file system cannot idmap (or
//! `userns_idmap = "copy"`), of a chowned copy of each layer made once per
//! mapping. The container's upper dir holds host ids; reading it (commit,
//! export, cp) maps them back.
//!
//! The container's mapping is kept in its directory (`idmap.json`), so
//! whoever mounts its rootfs finds it without the database. This module
//! never changes a layer directory.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use berth_runtime::idmap::{user_namespace, IdMap, IdMappings};
use berth_store::userns::{common_ranges, subid_ranges, IdRange};
use berth_store::ImageRecord;
use serde::Serialize;

use crate::containers::{ROOTFS, UPPER, WORK};
use crate::{is_rootless, Engine};

/// The container directory's record of its mapping.
pub const MAPPING_FILE: &str = "idmap.json";
/// Host ids a `--userns=auto` container gets unless `size=` says otherwise.
pub const DEFAULT_AUTO_SIZE: u32 = 65536;
/// The user whose subordinate ids are the default pool of `auto`.
pub const POOL_USER: &str = "berth";

/// A `--userns` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsernsMode {
    /// The host's user namespace (Docker's behaviour).
    Host,
    /// A range of `size` host ids of its own, unused by any other container.
    Auto {
        /// How many ids.
        size: u32,
    },
    /// Rootless: the user's uid is the same inside.
    KeepId,
    /// Rootless: only the user's uid is mapped (to itself).
    NoMap,
}

impl UsernsMode {
    /// `host`, `auto`, `auto:size=N`, `keep-id`, `nomap` (empty: `host`).
    pub fn parse(s: &str) -> Result<UsernsMode> {
        let bad = || anyhow!("invalid --userns {s:?}: use host, auto, auto:size=N, keep-id or nomap");
        Ok(match s {
            "" | "host" => UsernsMode::Host,
            "keep-id" => UsernsMode::KeepId,
            "nomap" => UsernsMode::NoMap,
            "auto" => UsernsMode::Auto {
                size: DEFAULT_AUTO_SIZE,
            },
            _ => {
                let opts = s.strip_prefix("auto:").ok_or_else(bad)?;
                let mut size = DEFAULT_AUTO_SIZE;
                for o in opts.split(',') {
                    match o.split_once('=') {
                        Some(("size", n)) => size = n.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?,
                        _ => bail!(
                            "invalid --userns {s:?}: berth's auto takes size=N only (uidmapping= and gidmapping= are not supported)"
                        ),
                    }
                }
                UsernsMode::Auto { size }
            }
        })
    }

    /// As `inspect` shows it (`HostConfig.UsernsMode`; Docker's "" for host).
    pub fn shown(&self) -> String {
        match self {
            UsernsMode::Host => String::new(),
            UsernsMode::Auto { size } if *size == DEFAULT_AUTO_SIZE => "auto".into(),
            UsernsMode::Auto { size } => format!("auto:size={size}"),
            UsernsMode::KeepId => "keep-id".into(),
            UsernsMode::NoMap => "nomap".into(),
        }
    }
}

/// What a container's user namespace asks of `create`.
#[derive(Debug, Clone, Default)]
pub struct UsernsSetup {
    /// The maps for the OCI spec (`None`: berth's usual behaviour).
    pub mappings: Option<IdMappings>,
    /// The user the container runs as when `--user` is not given (keep-id).
    pub user: Option<String>,
    /// `HostConfig.UsernsMode`.
    pub shown: String,
}

/// How containers of different mappings share layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "Path", rename_all = "PascalCase")]
pub enum LayerSharing {
    /// Idmapped mounts of the layer directories under the overlay.
    IdmappedMounts,
    /// A chowned copy of each layer per mapping, and why.
    ChownedCopies {
        /// Why idmapped mounts could not be used.
        why: String,
    },
}

/// `berth info`'s lines on user namespaces.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsernsInfo {
    /// The default `--userns` of containers run as root (`host` unless
    /// `berth.toml` says otherwise).
    pub default: String,
    /// The pool of `auto` (`START:COUNT` each), or why there is none.
    pub pool: std::result::Result<Vec<String>, String>,
    /// How containers of different mappings share layers.
    pub layers: LayerSharing,
    /// Containers holding host ids now.
    pub allocated: usize,
}

/// The mapping recorded in a container directory, if it has its own.
pub fn dir_mappings(dir: &Path) -> Option<IdMappings> {
    let text = std::fs::read(dir.join(MAPPING_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// `(host start, size)` of a root-run `auto` container (a plain shift).
pub fn dir_shift(dir: &Path) -> Option<(u32, u32)> {
    dir_mappings(dir).filter(|_| !is_rootless()).and_then(|m| m.as_shift())
}

/// The owner (container root) of files berth makes for the container.
pub fn dir_root_owner(dir: &Path) -> Option<(u32, u32)> {
    dir_shift(dir).map(|(start, _)| (start, start))
}

fn passwd_name(uid: u32) -> Option<String> {
    std::fs::read_to_string("/etc/passwd").ok()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
    })
}

/// The first subordinate range of this user in `file` (at most 65536 ids,
/// as berth's rootless mapping takes).
fn own_subids(file: &str, id: u32) -> Result<IdRange> {
    let name = passwd_name(rustix::process::geteuid().as_raw()).unwrap_or_default();
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut r = subid_ranges(&text, &name, Some(id))
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("--userns needs a range for {name} in {file} (as for any rootless container)"))?;
    r.size = r.size.min(65536);
    Ok(r)
}

/// keep-id: `id` is itself inside; the rest of 0..size comes from `sub`.
fn keep_id_map(id: u32, sub: IdRange) -> Vec<IdMap> {
    let mut m = Vec::new();
    let below = id.min(sub.size);
    if below > 0 {
        m.push(IdMap {
            container_id: 0,
            host_id: sub.start,
            size: below,
        });
    }
    m.push(IdMap {
        container_id: id,
        host_id: id,
        size: 1,
    });
    if sub.size > below {
        m.push(IdMap {
            container_id: id + 1,
            host_id: sub.start + below,
            size: sub.size - below,
        });
    }
    m
}

fn chown(path: &Path, owner: (u32, u32)) -> Result<()> {
    std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1))
        .with_context(|| format!("giving {} to the container's root", path.display()))
}

impl Engine {
    /// The `--userns` of a new container: the flag, else (as root) the
    /// store's `userns` setting, else `host`.
    pub fn userns_mode(&self, flag: Option<&str>) -> Result<UsernsMode> {
        if let Some(f) = flag {
            return UsernsMode::parse(f);
        }
        if is_rootless() {
            return Ok(UsernsMode::Host);
        }
        match self.store.settings()?.userns {
            Some(s) => {
                UsernsMode::parse(&s).with_context(|| format!("userns in {}", self.store.settings_path().display()))
            }
            None => Ok(UsernsMode::Host),
        }
    }

    /// The host ids `--userns=auto` hands out.
    pub fn userns_pool(&self) -> Result<Vec<IdRange>> {
        if let Some(r) = self.store.settings()?.userns_range {
            let range = IdRange::parse(&r).ok_or_else(|| {
                anyhow!(
                    "userns_range {r:?} in {}: use START:COUNT, e.g. \"2147483647:2147483648\"",
                    self.store.settings_path().display()
                )
            })?;
            return Ok(vec![range]);
        }
        let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
        let uid = passwd_uid(POOL_USER);
        let pool = common_ranges(
            &subid_ranges(&read("/etc/subuid"), POOL_USER, uid),
            &subid_ranges(&read("/etc/subgid"), POOL_USER, uid),
        );
        if pool.is_empty() {
            bail!(
                "--userns=auto needs host ids to give containers: add the same range for user {POOL_USER} to /etc/subuid and \
                 /etc/subgid (e.g. `{POOL_USER}:2147483647:2147483648`, after `useradd --system {POOL_USER}`), or set \
                 userns_range = \"START:COUNT\" in {}",
                self.store.settings_path().display()
            );
        }
        Ok(pool)
    }

    /// Sets up the user namespace of container `id` (its directory `dir`
    /// exists): allocates its host ids (`auto`), records the mapping in
    /// the directory and gives its upper and work dirs to its root.
    pub fn container_userns(&self, mode: &UsernsMode, id: &str, dir: &Path) -> Result<UsernsSetup> {
        let rootless = is_rootless();
        let mut setup = UsernsSetup {
            shown: mode.shown(),
            ..Default::default()
        };
        let maps = match (mode, rootless) {
            (UsernsMode::Host, _) => return Ok(setup),
            (UsernsMode::Auto { size }, false) => {
                self.make_reachable(dir)?;
                let pool = self.userns_pool()?;
                let r = self.store.allocate_host_ids(id, *size, &pool)?;
                for sub in [UPPER, WORK, ROOTFS] {
                    chown(&dir.join(sub), (r.start, r.start))?;
                }
                // The container's directory is its root's alone (0700): the
                // store's root and containers/ let others search (0711), so
                // no one else may pass this one to reach the root file system
                // (whose path /proc/*/mountinfo shows to every user).
                chown(dir, (r.start, r.start))?;
                IdMappings::shifted(r.start, r.size)
            }
            (UsernsMode::Auto { .. }, true) => bail!(
                "--userns=auto is for berth run as root; a rootless container already runs in your own user namespace (see --userns=keep-id or nomap)"
            ),
            (UsernsMode::KeepId | UsernsMode::NoMap, false) => bail!(
                "--userns={} is only for rootless berth, as in Podman; as root use --userns=auto",
                mode.shown()
            ),
            (UsernsMode::KeepId | UsernsMode::NoMap, true) if self.oci_runtime()?.name == "runc" => bail!(
                "--userns={} needs an OCI runtime that can make a rootless container whose root is not you, and runc \
                 cannot (it gives its exec fifo to the container's root, which only a privileged process may do); use \
                 crun (--runtime crun, on a host whose cgroups crun accepts) or run berth as root with --userns=auto",
                mode.shown()
            ),
            (UsernsMode::KeepId, true) => {
                let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
                setup.user = Some(format!("{uid}:{gid}"));
                IdMappings {
                    uid: keep_id_map(uid, own_subids("/etc/subuid", uid)?),
                    gid: keep_id_map(gid, own_subids("/etc/subgid", uid)?),
                }
            }
            (UsernsMode::NoMap, true) => {
                let uid = rustix::process::geteuid().as_raw();
                let whole = |r: IdRange| {
                    vec![IdMap {
                        container_id: 0,
                        host_id: r.start,
                        size: r.size,
                    }]
                };
                IdMappings {
                    uid: whole(own_subids("/etc/subuid", uid)?),
                    gid: whole(own_subids("/etc/subgid", uid)?),
                }
            }
        };
        crate::containers::write_atomic(&dir.join(MAPPING_FILE), &serde_json::to_vec(&maps)?)?;
        setup.mappings = Some(maps);
        Ok(setup)
    }

    /// The OCI runtime reaches the rootfs as the container's root, an
    /// unprivileged host uid: every directory above the container's must
    /// let others search it. Directories of the store are made so (others
    /// may search, never read or write: 0711; `layers/` and the rest stay
    /// 0700); one above the store that is not is an error that names it.
    fn make_reachable(&self, dir: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let store = self.root();
        for d in dir.ancestors().skip(1) {
            let md = std::fs::metadata(d).with_context(|| format!("reading {}", d.display()))?;
            let mode = md.permissions().mode();
            if mode & 0o001 != 0 {
                continue;
            }
            if d.starts_with(store) {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode((mode & 0o7777) | 0o011))
                    .with_context(|| format!("letting the container's root search {}", d.display()))?;
            } else {
                bail!(
                    "--userns=auto: the container's root (an unprivileged host uid) cannot reach its root file system: {} \
                     (mode {:o}) does not let others search it; `chmod o+x {}`, or put the store (--root) elsewhere",
                    d.display(),
                    mode & 0o7777,
                    d.display()
                );
            }
        }
        Ok(())
    }

    /// Gives what berth made for the container (its /etc/hosts,
    /// /etc/hostname, /etc/resolv.conf; new volumes) to its root.
    pub fn give_to_container_root(&self, dir: &Path, paths: &[PathBuf]) -> Result<()> {
        let Some(owner) = dir_root_owner(dir) else {
            return Ok(());
        };
        for f in ["hosts", "hostname", "resolv.conf"] {
            let p = dir.join(f);
            if p.exists() {
                chown(&p, owner)?;
            }
        }
        for p in paths {
            chown(p, owner)?;
        }
        Ok(())
    }

    /// Mounts the rootfs of a container with its own mapping: the layers
    /// idmapped, else their chowned copies (see the module docs).
    pub fn mount_rootfs_userns(
        &self,
        img: &ImageRecord,
        dir: &Path,
        disposable: bool,
        maps: &IdMappings,
    ) -> Result<()> {
        let (upper, work, rootfs) = (dir.join(UPPER), dir.join(WORK), dir.join(ROOTFS));
        let lowers: Vec<PathBuf> = img.layers.iter().rev().map(|l| self.store.layer_dir(l)).collect();
        if let Some(l) = lowers.iter().find(|l| !l.is_dir()) {
            bail!(
                "the image's layer {} is missing from the store; re-import or re-pull the image",
                l.display()
            );
        }
        if !lowers.is_empty() && self.layer_sharing_setting()?.is_none() {
            let idmapped = user_namespace(maps)
                .map_err(|e| anyhow!("making the container's user namespace: {e}"))
                .and_then(|ns| {
                    berth_runtime::idmap::mount_overlay_idmapped(&lowers, &upper, &work, &rootfs, disposable, &ns)
                        .map_err(anyhow::Error::from)
                });
            match idmapped {
                Ok(()) => return Ok(()),
                Err(e) => log::warn!("{e:#}; using chowned copies of the layers instead"),
            }
        }
        let (shift, _) = maps
            .as_shift()
            .ok_or_else(|| anyhow!("this mapping is not a plain shift; the layers cannot be copied for it"))?;
        let copies: Vec<PathBuf> = img
            .layers
            .iter()
            .rev()
            .map(|l| self.store.shifted_layer_dir(l, shift))
            .collect::<std::result::Result<_, _>>()?;
        berth_runtime::mount_overlay_opts(&copies, &upper, &work, &rootfs, disposable)?;
        Ok(())
    }

    /// `Some(why)` when the store says always to copy layers.
    fn layer_sharing_setting(&self) -> Result<Option<String>> {
        Ok(match self.store.settings()?.userns_idmap.as_deref() {
            None | Some("auto") => None,
            Some("copy") => Some(format!(
                "userns_idmap = \"copy\" in {}",
                self.store.settings_path().display()
            )),
            Some(other) => bail!(
                "userns_idmap {other:?} in {}: use \"auto\" or \"copy\"",
                self.store.settings_path().display()
            ),
        })
    }

    /// How layers are shared between mappings here: the setting, then a
    /// probe of this kernel and of the store's file system (once per
    /// process).
    pub fn layer_sharing(&self) -> Result<LayerSharing> {
        if let Some(why) = self.layer_sharing_setting()? {
            return Ok(LayerSharing::ChownedCopies { why });
        }
        static PROBE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
        let probe = PROBE.get_or_init(|| {
            if is_rootless() {
                return Err("rootless: the runtime mounts the overlay inside the container's namespace".into());
            }
            let scratch = self.store.staging().path("idmap-probe").map_err(|e| e.to_string())?;
            berth_runtime::idmap::probe_idmapped_overlay(&scratch)
        });
        Ok(match probe {
            Ok(()) => LayerSharing::IdmappedMounts,
            Err(why) => LayerSharing::ChownedCopies { why: why.clone() },
        })
    }

    /// What `berth info` says about user namespaces.
    pub fn userns_info(&self) -> Result<UsernsInfo> {
        let default = self.userns_mode(None)?;
        Ok(UsernsInfo {
            default: if default == UsernsMode::Host {
                "host".into()
            } else {
                default.shown()
            },
            pool: self
                .userns_pool()
                .map(|p| p.iter().map(|r| format!("{}:{}", r.start, r.size)).collect())
                .map_err(|e| e.to_string()),
            layers: self.layer_sharing()?,
            allocated: self.store.host_id_allocations()?.len(),
        })
    }
}

fn passwd_uid(name: &str) -> Option<u32> {
    std::fs::read_to_string("/etc/passwd").ok()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[0] == name).then(|| f[2].parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_podman_spells_them() {
        assert_eq!(UsernsMode::parse("").unwrap(), UsernsMode::Host);
        assert_eq!(UsernsMode::parse("auto").unwrap(), UsernsMode::Auto { size: 65536 });
        assert_eq!(
            UsernsMode::parse("auto:size=1024").unwrap(),
            UsernsMode::Auto { size: 1024 }
        );
        assert_eq!(UsernsMode::parse("auto:size=1024").unwrap().shown(), "auto:size=1024");
        assert_eq!(UsernsMode::parse("keep-id").unwrap(), UsernsMode::KeepId);
        assert!(UsernsMode::parse("auto:size=0").is_err());
        assert!(UsernsMode::parse("private")
            .unwrap_err()
            .to_string()
            .contains("use host, auto"));
        assert!(UsernsMode::parse("auto:uidmapping=0:1:2")
            .unwrap_err()
            .to_string()
            .contains("size=N only"));
    }

    #[test]
    fn keep_id_maps_the_user_to_itself() {
        let sub = IdRange {
            start: 100_000,
            size: 65536,
        };
        let m = keep_id_map(1000, sub);
        assert_eq!(
            m,
            vec![
                IdMap {
                    container_id: 0,
                    host_id: 100_000,
                    size: 1000
                },
                IdMap {
                    container_id: 1000,
                    host_id: 1000,
                    size: 1
                },
                IdMap {
                    container_id: 1001,
                    host_id: 101_000,
                    size: 64536
                },
            ]
        );
    }
}
