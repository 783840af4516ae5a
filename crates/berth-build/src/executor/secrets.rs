//! Build secrets (`--secret id=…,src=FILE` or `env=VAR`): what a
//! `RUN --mount=type=secret` binds into the step's container.
//!
//! A secret given as a value (from the environment) is written once per
//! build into a private directory (0700) in this process's staging
//! directory of the store, as a 0600 file created new (never through a
//! symlink), and removed when the build ends however it ends: returned
//! error, panic (the [`SecretFiles`] guard drops), or kill (the staging
//! directory of a dead process is swept by the next berth that opens the
//! store). A secret must never be written anywhere else: not in `/tmp`,
//! not in a log, not in a layer, and never shown by `Debug`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use berth_archive::perms;
use berth_store::Store;

use super::{store_err, BuildError};

/// Where a secret comes from.
#[derive(Clone)]
pub enum SecretSource {
    /// A file on the host, bound as it is.
    File(PathBuf),
    /// The secret itself (e.g. read from an environment variable).
    Value(SecretValue),
}

impl From<PathBuf> for SecretSource {
    fn from(p: PathBuf) -> Self {
        SecretSource::File(p)
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(p) => f.debug_tuple("File").field(p).finish(),
            SecretSource::Value(v) => f.debug_tuple("Value").field(v).finish(),
        }
    }
}

/// A secret's bytes: never printed, zeroed when dropped.
#[derive(Clone)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        SecretValue(bytes.into())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes, redacted>", self.0.len())
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: `b` is a valid, aligned, exclusive reference into
            // the vector; a volatile write keeps the zeroing from being
            // optimised away.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// The files a build binds for its secrets; the private ones are removed
/// when this drops.
pub(crate) struct SecretFiles {
    /// The private directory holding the value secrets, if any.
    dir: Option<PathBuf>,
    paths: BTreeMap<String, PathBuf>,
}

impl SecretFiles {
    /// Writes the value secrets into a fresh private directory in the
    /// store's staging; file secrets are used where they are.
    pub(crate) fn new(store: &Store, secrets: &BTreeMap<String, SecretSource>) -> Result<Self, BuildError> {
        let mut files = SecretFiles {
            dir: None,
            paths: BTreeMap::new(),
        };
        for (id, src) in secrets {
            let path = match src {
                SecretSource::File(p) => p.clone(),
                SecretSource::Value(v) => {
                    let dir = match &files.dir {
                        Some(d) => d.clone(),
                        None => {
                            let d = store
                                .staging()
                                .path("secrets")
                                .map_err(|e| store_err("staging secrets", e))?;
                            perms::create_dir(&d, perms::PRIVATE_DIR)
                                .map_err(|e| store_err(&format!("creating {}", d.display()), e))?;
                            files.dir = Some(d.clone());
                            d
                        }
                    };
                    // Named by position: an ID may hold any character.
                    let p = dir.join(format!("secret-{}", files.paths.len()));
                    perms::write_new(&p, &v.0, perms::PRIVATE_FILE)
                        .map_err(|e| store_err(&format!("writing secret {id}"), e))?;
                    p
                }
            };
            files.paths.insert(id.clone(), path);
        }
        Ok(files)
    }

    /// The file to bind for secret `id`, if it was given.
    pub(crate) fn get(&self, id: &str) -> Option<&Path> {
        self.paths.get(id).map(PathBuf::as_path)
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            if let Err(e) = std::fs::remove_dir_all(d) {
                log::warn!("removing the build's secrets in {}: {e}", d.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_value_secret_lives_in_a_private_file_only_while_the_build_runs() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("root")).unwrap();
        let secrets: BTreeMap<String, SecretSource> = [
            ("token".to_string(), SecretSource::Value(SecretValue::new("s3cr3t"))),
            ("file".to_string(), SecretSource::File("/etc/hostname".into())),
        ]
        .into();
        assert!(!format!("{secrets:?}").contains("s3cr3t"), "Debug shows the value");
        let files = SecretFiles::new(&store, &secrets).unwrap();
        let p = files.get("token").unwrap().to_path_buf();
        assert!(p.starts_with(store.staging().dir().unwrap()), "{}", p.display());
        assert_eq!(std::fs::read(&p).unwrap(), b"s3cr3t");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(p.parent().unwrap()).unwrap().mode() & 0o777, 0o700);
        assert_eq!(files.get("file"), Some(Path::new("/etc/hostname")));
        // A panicking build drops its guard while unwinding.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _files = files;
            panic!("a stage panicked");
        }));
        assert!(r.is_err());
        assert!(!p.exists(), "the secret outlived the build");
        assert!(!p.parent().unwrap().exists());
    }
}
