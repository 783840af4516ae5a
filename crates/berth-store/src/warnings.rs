//! What opening a store can find wrong with it without failing: a store
//! root readable or writable by others (more open than 0711) lets other
//! local users reach layer content
//! (set-uid binaries of any image), containers' configs (their `-e`
//! values) and logs. The root is tightened when this user owns it; either
//! way it is reported, for `berth info` and the like to show.
//!
//! This module only looks at the root directory (one `stat`); it never
//! walks the store (`Store::check` does that).

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_archive::perms;

/// Something wrong about a store that did not stop it from opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWarning {
    /// The root was more open than 0700 and was made 0700 now.
    RootTightened {
        path: PathBuf,
        /// Its mode before.
        was: u32,
    },
    /// The root is more open than 0700 and belongs to another user, so it
    /// was left as it is.
    RootTooOpen { path: PathBuf, mode: u32, owner: u32 },
}

impl fmt::Display for StoreWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreWarning::RootTightened { path, was } => write!(
                f,
                "the store {} was open to other users (mode {was:04o}): it is 0700 now",
                path.display()
            ),
            StoreWarning::RootTooOpen { path, mode, owner } => write!(
                f,
                "the store {} is open to other users (mode {mode:04o}), who can reach its images' set-uid files \
                 and its containers' environments and logs; its owner (uid {owner}) should run: chmod 700 {}",
                path.display(),
                path.display()
            ),
        }
    }
}

/// Checks (and, when it is ours, tightens) the store root's mode.
pub(crate) fn check_root(root: &Path) -> Vec<StoreWarning> {
    let Ok(meta) = std::fs::metadata(root) else {
        return Vec::new();
    };
    let mode = meta.mode() & 0o7777;
    // Search alone (0711) is what --userns=auto containers need to reach
    // their root file systems; it lets no one list or read the store, and
    // layers/ and the rest stay 0700.
    if mode & 0o066 == 0 {
        return Vec::new();
    }
    let owner = meta.uid();
    if owner == rustix::process::geteuid().as_raw() {
        use std::os::unix::fs::PermissionsExt;
        let tight = mode & !0o077 | perms::STORE_ROOT;
        if std::fs::set_permissions(root, std::fs::Permissions::from_mode(tight & 0o7777)).is_ok() {
            let w = StoreWarning::RootTightened {
                path: root.to_path_buf(),
                was: mode,
            };
            log::warn!("{w}");
            return vec![w];
        }
    }
    let w = StoreWarning::RootTooOpen {
        path: root.to_path_buf(),
        mode,
        owner,
    };
    log::warn!("{w}");
    vec![w]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_new_store_is_private_and_an_open_one_is_tightened_and_reported() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("new/store");
        let store = Store::open(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        assert!(store.warnings().is_empty());
        for sub in ["layers", "containers", "volumes", "blobs", "blobs/sha256", "tmp"] {
            assert_eq!(mode(&root.join(sub)), 0o700, "{sub}");
        }
        assert_eq!(mode(&root.join("berth.db")), 0o600);
        drop(store);

        // An older berth made it 0755: anyone could reach layers/*/diff.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = Store::open(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(
            store.warnings(),
            [StoreWarning::RootTightened {
                path: root.clone(),
                was: 0o755
            }]
        );
        assert!(
            store.warnings()[0].to_string().contains("mode 0755"),
            "{}",
            store.warnings()[0]
        );
    }
}
