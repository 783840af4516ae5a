//! The engine: one open store plus the host's settings, and every operation
//! the fronts offer. Functions here return data or write to the writers they
//! are given; they never parse command lines and never print on their own
//! except progress lines a caller asks for.

pub mod build;
pub mod build_cache;
pub mod changes;
pub mod containers;
pub mod image_archive;
pub mod images;
pub mod import;
pub mod registry;

use std::path::{Path, PathBuf};

use anyhow::Result;
use berth_store::Store;

/// A failure that carries the exit code berth must end with (a container's
/// own code, 126, 127 …). Anything else ends with 125.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    pub code: i32,
    pub message: String,
}

impl ExitError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        ExitError {
            code,
            message: message.into(),
        }
    }
}

pub struct Engine {
    pub store: Store,
    root: PathBuf,
    /// `--runtime` or the config file's choice; probed when None.
    pub runtime: Option<String>,
}

impl Engine {
    pub fn open(root: &Path, runtime: Option<String>) -> Result<Engine> {
        let store = Store::open(root).map_err(|e| {
            let denied = matches!(&e, berth_store::StoreError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied);
            if denied {
                anyhow::anyhow!(
                    "permission denied on the store at {}: it belongs to another user. As a normal user berth \
                     keeps its own store in ~/.local/share/berth (the default); choose another with --root DIR, \
                     or run as root ({e})",
                    root.display()
                )
            } else {
                anyhow::Error::new(e).context(format!("opening the store at {}", root.display()))
            }
        })?;
        Ok(Engine {
            store,
            root: root.to_path_buf(),
            runtime,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// `/var/lib/berth` as root, `$XDG_DATA_HOME/berth` (or `~/.local/share/berth`) otherwise.
pub fn default_root() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/berth");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("berth");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/share/berth")
}

pub fn is_rootless() -> bool {
    !rustix::process::geteuid().is_root()
}

/// RFC 3339 with nanoseconds and `Z`, as Docker (Go) writes times.
pub fn now_rfc3339() -> String {
    berth_store::config::rfc3339_go(chrono::Utc::now())
}
