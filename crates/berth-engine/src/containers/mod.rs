//! Containers: create, start, stop, remove, and everything in between.
//!
//! The database holds a container's record (ID, name, image, and the
//! Docker-shaped `Config`/`HostConfig` that `inspect` shows); the container
//! directory `$ROOT/containers/<id>/` holds everything the runtime and the
//! monitor need (`berth.json`, `config.json`, `upper/`, `work/`, `rootfs/`,
//! `state.json`, `ctr.log`). Live state is always read from the directory,
//! never from the database.
//!
//! * [`create`] — options → container dir + record (volumes, mounts, spec).
//! * [`lifecycle`] — start/stop/kill/restart/rm/wait/pause/rename/prune/exec.
//! * [`view`] — `ps` rows and `inspect` JSON.
//! * [`files`] — cp, diff, commit, export (all confined to the rootfs).
//! * `api_socket` — `--use-api-socket`: the API socket and logins inside.
//! * `namespaces` — `--pid`, `--ipc`, `--uts`, `--cgroupns`: the host's or
//!   another container's namespaces, joined afresh at each start.

mod api_socket;
pub mod create;
pub mod files;
pub mod lifecycle;
mod namespaces;
pub mod network;
pub mod prune;
pub mod record;
pub mod top;
pub mod update;
pub mod view;
pub(crate) mod warm;

pub use warm::PendingHold;

use std::path::{Path, PathBuf};

use crate::error::Result;
use anyhow::Context;
use berth_runtime::{ContainerConfig, ContainerState, OciRuntime};
use berth_store::ContainerRecord;

use super::Engine;

pub use create::{CreateOptions, Created};

#[cfg(test)]
mod status_tests {
    use super::ContainerStatus as S;

    #[test]
    fn what_each_status_allows() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
            assert_eq!(s.can_stop(), s.is_up(), "{s}");
            assert!(s.can_remove(true));
        }
        assert!(S::Exited.can_start() && S::Created.can_start() && !S::Paused.can_start());
        assert!(S::Running.can_exec() && !S::Paused.can_exec() && !S::Exited.can_exec());
        assert!(S::Paused.can_unpause() && !S::Running.can_unpause());
        assert!(!S::Running.can_remove(false) && S::Exited.can_remove(false));
        assert_eq!(S::parse("bogus"), None);
    }
}

/// Subdirectories and files of a container directory.
pub const UPPER: &str = "upper";
/// The overlay's work directory in a container directory.
pub const WORK: &str = "work";
/// The mount point of the container's root file system.
pub const ROOTFS: &str = "rootfs";

/// A container's status, as Docker names it, with what each allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Made, never started (or its start failed before it ran).
    Created,
    /// Between two runs, waiting out its restart policy's back-off.
    Restarting,
    /// Its process runs.
    Running,
    /// Being removed.
    Removing,
    /// Its processes are frozen.
    Paused,
    /// It ran and ended.
    Exited,
    /// Its state cannot be known (its directory or monitor is gone).
    Dead,
}

impl ContainerStatus {
    /// Every status, in Docker's order (what `ps --filter status=` takes).
    pub const ALL: [ContainerStatus; 7] = [
        ContainerStatus::Created,
        ContainerStatus::Restarting,
        ContainerStatus::Running,
        ContainerStatus::Removing,
        ContainerStatus::Paused,
        ContainerStatus::Exited,
        ContainerStatus::Dead,
    ];

    /// The status named `s` (`running`, `exited` …).
    pub fn parse(s: &str) -> Option<ContainerStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Docker's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Restarting => "restarting",
            ContainerStatus::Running => "running",
            ContainerStatus::Removing => "removing",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Exited => "exited",
            ContainerStatus::Dead => "dead",
        }
    }

    /// Its processes exist (running, paused, or between restarts): what
    /// `ps` shows without `-a`, and what `stop` and `rm -f` act on.
    pub fn is_up(self) -> bool {
        matches!(
            self,
            ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Restarting
        )
    }

    /// `start` may start it.
    pub fn can_start(self) -> bool {
        !self.is_up() && self != ContainerStatus::Removing
    }

    /// `stop` has something to stop.
    pub fn can_stop(self) -> bool {
        self.is_up()
    }

    /// `exec`, `top`, `attach` and `pause` need it running (not paused).
    pub fn can_exec(self) -> bool {
        self == ContainerStatus::Running
    }

    /// `unpause` needs it paused.
    pub fn can_unpause(self) -> bool {
        self == ContainerStatus::Paused
    }

    /// `rm` may remove it (with `force`, whatever it is doing).
    pub fn can_remove(self, force: bool) -> bool {
        force || !self.is_up()
    }
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container as the commands see it: its record, its runtime config and
/// its current state.
#[derive(Debug)]
pub struct Container {
    /// The database record (ID, name, image, Docker-shaped config).
    pub rec: ContainerRecord,
    /// The container directory.
    pub dir: PathBuf,
    /// The runtime configuration (`berth.json`).
    pub cfg: ContainerConfig,
    /// The live state (`state.json`, checked against the processes).
    pub state: ContainerState,
}

impl Container {
    /// The first 12 characters of the ID, as Docker shows it.
    pub fn short_id(&self) -> &str {
        &self.rec.id[..12.min(self.rec.id.len())]
    }
    /// Its status now (an unknown one reads as [`ContainerStatus::Dead`]).
    pub fn status(&self) -> ContainerStatus {
        ContainerStatus::parse(&self.state.status).unwrap_or(ContainerStatus::Dead)
    }

    /// Its record, typed.
    pub fn doc(&self) -> record::ContainerDoc {
        record::ContainerDoc::from_value(&self.rec.config)
    }

    /// Where its root file system is mounted.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join(ROOTFS)
    }
}

impl Engine {
    /// The OCI runtime for this engine (`--runtime`, or probed).
    pub fn oci_runtime(&self) -> Result<OciRuntime> {
        Ok(OciRuntime::select(
            self.runtime.as_deref(),
            &self.root().join("runtime"),
        )?)
    }

    /// The runtime that runs (or last ran) a container: the one its
    /// monitor recorded at the last start, so a container started with
    /// `--runtime runc` is stopped, exec'd into and removed by runc
    /// whatever this command would pick (as Docker and Podman keep a
    /// container's runtime). A container never started gets this
    /// command's choice.
    pub fn container_runtime(&self, c: &Container) -> Result<OciRuntime> {
        match berth_runtime::monitor::recorded_runtime(&c.dir) {
            Some(rt) => Ok(rt),
            None => self.oci_runtime(),
        }
    }

    /// The directory of the container `id`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.store.containers_dir().join(id)
    }

    /// A container by name, full ID or unique ID prefix, with its state.
    pub fn container(&self, word: &str) -> Result<Container> {
        let rec = self.store.container(word)?;
        self.load_container(rec)
    }

    /// A container from its record, with its config and live state.
    pub fn load_container(&self, rec: ContainerRecord) -> Result<Container> {
        let dir = self.container_dir(&rec.id);
        let cfg = load_config(&dir).unwrap_or_else(|_| ContainerConfig {
            id: rec.id.clone(),
            name: rec.name.clone(),
            image_id: rec.image_id.clone(),
            ..Default::default()
        });
        let state = if dir.is_dir() {
            berth_runtime::read_state(&dir).unwrap_or_else(|e| ContainerState {
                status: "dead".into(),
                error: e.to_string(),
                ..Default::default()
            })
        } else {
            ContainerState {
                status: "dead".into(),
                error: format!("the container directory {} is missing", dir.display()),
                ..Default::default()
            }
        };
        Ok(Container { rec, dir, cfg, state })
    }

    /// Every container, with its state.
    pub fn list_all_containers(&self) -> Result<Vec<Container>> {
        self.store
            .list_containers()?
            .into_iter()
            .map(|r| self.load_container(r))
            .collect()
    }
}

fn load_config(dir: &Path) -> anyhow::Result<ContainerConfig> {
    let p = dir.join(berth_runtime::monitor::CONFIG_FILE);
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}

/// Writes `bytes` to `path` via a temp file and rename, private to the
/// store's owner (a container's files hold its environment).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    berth_archive::perms::write_atomic(path, bytes, berth_archive::perms::PRIVATE_FILE)
        .with_context(|| format!("writing {}", path.display()))
}

/// `n` random bytes as lowercase hex, from the kernel's CSPRNG.
pub fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !ok {
        // Fall back to time and pid mixed through sha256: still unique enough for IDs.
        use sha2::Digest as _;
        let seed = format!(
            "{:?}{}{:?}",
            std::time::SystemTime::now(),
            std::process::id(),
            std::thread::current().id()
        );
        let h = sha2::Sha256::digest(seed.as_bytes());
        buf.iter_mut().zip(h.iter().cycle()).for_each(|(b, h)| *b = *h);
    }
    hex::encode(buf)
}

const ADJECTIVES: &[&str] = &[
    "agile",
    "amazing",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "cool",
    "crisp",
    "curious",
    "daring",
    "eager",
    "elegant",
    "epic",
    "fervent",
    "fond",
    "gallant",
    "gentle",
    "happy",
    "hopeful",
    "jolly",
    "keen",
    "kind",
    "lucid",
    "merry",
    "modest",
    "nifty",
    "noble",
    "patient",
    "peaceful",
    "plucky",
    "quick",
    "quiet",
    "relaxed",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "steady",
    "stoic",
    "sunny",
    "swift",
    "tender",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "wizardly",
    "wonderful",
    "zealous",
];

const SURNAMES: &[&str] = &[
    "agnesi",
    "archimedes",
    "babbage",
    "bohr",
    "boole",
    "cantor",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "gauss",
    "germain",
    "goodall",
    "hamilton",
    "hawking",
    "hopper",
    "hypatia",
    "kepler",
    "knuth",
    "lamarr",
    "leakey",
    "lovelace",
    "maxwell",
    "meitner",
    "mendel",
    "newton",
    "noether",
    "pascal",
    "pasteur",
    "planck",
    "ramanujan",
    "ritchie",
    "shannon",
    "snyder",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "volta",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
    "zhukovsky",
    "wilson",
];

/// A Docker-style `adjective_surname` name.
pub fn random_name() -> String {
    let r = random_hex(4);
    let n = u32::from_str_radix(&r, 16).unwrap_or(0) as usize;
    format!(
        "{}_{}",
        ADJECTIVES[n % ADJECTIVES.len()],
        SURNAMES[(n / ADJECTIVES.len()) % SURNAMES.len()]
    )
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Parses a Go duration (`1s`, `500ms`, `1m30s`, `2h`) into nanoseconds.
pub fn parse_duration_ns(s: &str) -> Result<u64> {
    let bad = || crate::EngineError::invalid_value(format!("invalid duration {s:?} (use e.g. 30s, 500ms, 1m30s)"));
    let t = s.trim();
    if t == "0" {
        return Ok(0);
    }
    let mut total = 0f64;
    let mut rest = t;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let i = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let n: f64 = rest[..i].parse().map_err(|_| bad())?;
        rest = &rest[i..];
        let j = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..j] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[j..];
    }
    Ok(total as u64)
}

/// Docker's display of a duration in nanoseconds (`1s`, `1m30s`, `500ms`).
pub fn go_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", ns / 1_000_000);
    }
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_duration_ns("1s").unwrap(), 1_000_000_000);
        assert_eq!(parse_duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration_ns("500ms").unwrap(), 500_000_000);
        assert!(parse_duration_ns("5").is_err());
        assert_eq!(go_duration(90_000_000_000), "1m30s");
    }

    #[test]
    fn names() {
        assert!(valid_name("web"));
        assert!(valid_name("a.b-c_d"));
        assert!(!valid_name("/web"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a"));
        let n = random_name();
        assert!(valid_name(&n) && n.contains('_'));
        assert_eq!(random_hex(32).len(), 64);
    }
}
