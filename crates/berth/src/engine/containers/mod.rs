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

pub mod create;
pub mod files;
pub mod lifecycle;
pub mod view;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_runtime::{ContainerConfig, ContainerState, OciRuntime};
use berth_store::ContainerRecord;

use super::Engine;

pub use create::CreateOptions;

/// Subdirectories and files of a container directory.
pub const UPPER: &str = "upper";
pub const WORK: &str = "work";
pub const ROOTFS: &str = "rootfs";

/// A container as the commands see it: its record, its runtime config and
/// its current state.
pub struct Container {
    pub rec: ContainerRecord,
    pub dir: PathBuf,
    pub cfg: ContainerConfig,
    pub state: ContainerState,
}

impl Container {
    pub fn short_id(&self) -> &str {
        &self.rec.id[..12.min(self.rec.id.len())]
    }
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

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.store.containers_dir().join(id)
    }

    /// A container by name, full ID or unique ID prefix, with its state.
    pub fn container(&self, word: &str) -> Result<Container> {
        let rec = self.store.container(word)?;
        self.load_container(rec)
    }

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

    pub fn list_all_containers(&self) -> Result<Vec<Container>> {
        self.store
            .list_containers()?
            .into_iter()
            .map(|r| self.load_container(r))
            .collect()
    }
}

fn load_config(dir: &Path) -> Result<ContainerConfig> {
    let p = dir.join(berth_runtime::monitor::CONFIG_FILE);
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}

/// Writes `bytes` to `path` via a temp file and rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", path.display()))
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

/// Parses Docker's byte sizes (`32m`, `1g`, `512k`, `100000`, `1.5gb`), binary units.
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size: {s:?} (use e.g. 512k, 32m, 1g)"))?;
    let unit = unit.trim_end_matches("ib").trim_end_matches('b');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => anyhow::bail!("invalid size: {s:?} (use e.g. 512k, 32m, 1g)"),
    };
    Ok((n * mult) as i64)
}

/// Parses a Go duration (`1s`, `500ms`, `1m30s`, `2h`) into nanoseconds.
pub fn parse_duration_ns(s: &str) -> Result<u64> {
    let bad = || anyhow::anyhow!("invalid duration {s:?} (use e.g. 30s, 500ms, 1m30s)");
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
        assert_eq!(parse_bytes("32m").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("64MB").unwrap(), 64 << 20);
        assert!(parse_bytes("lots").is_err());
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
