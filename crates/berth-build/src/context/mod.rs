//! The build context: a directory (or a tar on stdin) filtered by
//! `.dockerignore`, the expansion of COPY/ADD sources against it, the digest
//! of exactly what a step copies (with a persisted stat cache), and the copy
//! itself into a rootfs with Docker's path rules.
//!
//! It must never read a file outside the context root (or the rootfs given
//! to [`resolve_in`]), never show a file that `.dockerignore` excludes, and
//! never write outside the destination rootfs, whatever symlinks either
//! side holds.
//!
//! Pieces: [`dockerignore`] (rules), `pattern` (Go `filepath.Match`),
//! `walk` (in-root resolution and the filtered walk), `digest`,
//! [`statcache`], `copy`, `owner` (`--chown`/`--chmod`).

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_archive::{apply_layer, ApplyOptions, ArchiveError};

mod copy;
mod digest;
pub mod dockerignore;
pub mod named;
mod owner;
mod pattern;
pub mod statcache;
mod walk;

#[cfg(test)]
mod tests;

pub use copy::{CopyOptions, CopyStats};
pub use dockerignore::IgnoreMatcher;
pub use statcache::StatCache;

use pattern::{has_wildcard, Seg};
pub(crate) use walk::clean_components;
use walk::{expand_wildcard, join, judge, resolve_path};

/// Everything that can go wrong with a build context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A source that does not exist, or is excluded by `.dockerignore`.
    #[error(
        "COPY failed: file not found in build context or excluded by .dockerignore: stat {path}: file does not exist"
    )]
    NotFound {
        /// The source as written in the Dockerfile.
        path: String,
    },
    /// A malformed wildcard pattern (source, `.dockerignore` or `--exclude`).
    #[error("syntax error in pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Extracting a tar (context on stdin, ADD of an archive) failed.
    #[error("extracting {path}: {source}")]
    Archive {
        /// The archive.
        path: String,
        /// What went wrong.
        #[source]
        source: Box<ArchiveError>,
    },
    /// A feature not implemented yet (`ADD <url>`, …).
    #[error("{0}")]
    Unsupported(String),
    /// `--chown` with a user name the image does not know.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    /// `--chown` with a group name the image does not know.
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    /// A malformed `--chown` value.
    #[error("invalid chown value {0:?}")]
    InvalidChown(String),
    /// A `--chmod` value that is not an octal mode.
    #[error("invalid chmod parameter: {0:?}: it must be an octal number between 0 and 7777")]
    InvalidChmod(String),
    /// A path on the way to the destination is not a directory.
    #[error("cannot copy to non-directory: {path}")]
    NotADirectory {
        /// The path in the rootfs.
        path: String,
    },
    /// A non-directory would replace a directory.
    #[error("cannot replace directory {path} with a non-directory")]
    Conflict {
        /// The path in the rootfs.
        path: String,
    },
    /// The context itself is unusable (missing root, Dockerfile, …).
    #[error("invalid build context: {0}")]
    Invalid(String),
}

impl ContextError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        ContextError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn not_found(path: &Path, _source: io::Error) -> Self {
        ContextError::NotFound {
            path: path.display().to_string(),
        }
    }
}

/// The rules a source is seen through while its directory is walked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// `.dockerignore`, against paths relative to the context root.
    pub ignore: Option<Arc<IgnoreMatcher>>,
    /// `--exclude`, against paths relative to the source.
    pub exclude: Option<Arc<IgnoreMatcher>>,
}

/// One expanded COPY/ADD source.
#[derive(Debug, Clone)]
pub struct Source {
    /// Real path relative to its root, symlinks resolved in-root ("" is
    /// the root itself).
    pub rel: PathBuf,
    /// The path as written or matched, cleaned, relative to its root
    /// (symlinks not resolved): what `COPY --parents` keeps.
    pub path: PathBuf,
    /// A directory: its contents are copied, not itself.
    pub is_dir: bool,
    /// Came from a wildcard pattern.
    pub wildcard: bool,
    /// The name a single file is copied as into a directory destination:
    /// the last component as written or matched (a symlink's own name, not
    /// its target's).
    pub name: OsString,
    pub(crate) filter: Filter,
}

/// A build context directory with its ignore rules.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The context directory.
    pub root: PathBuf,
    /// The Dockerfile (may be outside `root`).
    pub dockerfile: PathBuf,
    /// The ignore file that was used, if any.
    pub ignore_file: Option<PathBuf>,
    ignore: Arc<IgnoreMatcher>,
}

impl BuildContext {
    /// Directory context. The ignore file is `<dockerfile path>.dockerignore`
    /// (beside the Dockerfile) if it exists, else `<root>/.dockerignore`.
    pub fn from_dir(root: &Path, dockerfile: &Path) -> Result<Self, ContextError> {
        let meta = fs::metadata(root).map_err(|e| ContextError::io("stat", root, e))?;
        if !meta.is_dir() {
            return Err(ContextError::Invalid(format!("{} is not a directory", root.display())));
        }
        let mut specific = dockerfile.as_os_str().to_owned();
        specific.push(".dockerignore");
        let candidates = [PathBuf::from(specific), root.join(".dockerignore")];
        let mut ignore = IgnoreMatcher::default();
        let mut ignore_file = None;
        for c in candidates {
            match fs::read(&c) {
                Ok(bytes) => {
                    ignore = IgnoreMatcher::parse(&String::from_utf8_lossy(&bytes))?;
                    ignore_file = Some(c);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => {}
                Err(e) => return Err(ContextError::io("read", &c, e)),
            }
        }
        Ok(BuildContext {
            root: root.to_owned(),
            dockerfile: dockerfile.to_owned(),
            ignore_file,
            ignore: Arc::new(ignore),
        })
    }

    /// Context as a tar on stdin: extracted (confined) into `staging`, an
    /// empty directory the caller owns and removes; `dockerfile_name` is
    /// looked up inside.
    pub fn from_tar<R: Read>(r: R, staging: &Path, dockerfile_name: &str) -> Result<Self, ContextError> {
        let base = ApplyOptions::for_current_user();
        let opts = ApplyOptions {
            overlay_whiteouts: false,
            preserve_owner: false,
            allow_devices: false,
            id_shift: 0,
            no_overwrite_dir_non_dir: false,
            owner: None,
            xattr_prefix: base.xattr_prefix,
            limits: base.limits,
        };
        apply_layer(r, staging, &opts).map_err(|source| ContextError::Archive {
            path: "build context".into(),
            source: Box::new(source),
        })?;
        let df = join(&clean_components(dockerfile_name));
        Self::from_dir(staging, &staging.join(df))
    }

    /// The compiled `.dockerignore` rules (empty if there is none).
    pub fn ignore(&self) -> &Arc<IgnoreMatcher> {
        &self.ignore
    }

    /// Is the context-relative path excluded by `.dockerignore`?
    pub fn is_ignored(&self, rel: &str) -> bool {
        self.ignore.is_ignored(rel)
    }

    /// Expand COPY/ADD sources against the context (see [`resolve_in`]),
    /// with ignored files invisible.
    pub fn resolve(&self, sources: &[String], excludes: &[String]) -> Result<Vec<Source>, ContextError> {
        let ignore = (!self.ignore.is_empty()).then(|| self.ignore.clone());
        resolve_with(&self.root, sources, excludes, ignore)
    }

    /// The digest of exactly these sources, with the owner they will get.
    pub fn digest(
        &self,
        sources: &[Source],
        chown: Option<(u32, u32)>,
        cache: &mut StatCache,
    ) -> Result<String, ContextError> {
        digest::digest_in(&self.root, sources, chown, Some(cache))
    }
}

/// Is this COPY/ADD source a remote URL (handled by the executor, not here)?
pub fn is_url(src: &str) -> bool {
    ["http://", "https://", "git@", "git://"]
        .iter()
        .any(|p| src.starts_with(p))
}

/// Resolve sources inside any directory (a mounted image rootfs for
/// `COPY --from`), with no ignore rules: Go `filepath.Match` wildcards,
/// `..` and absolute symlinks resolved with `root` as `/`, `--exclude`
/// patterns removed. A source that matches nothing is
/// [`ContextError::NotFound`].
pub fn resolve_in(root: &Path, sources: &[String], excludes: &[String]) -> Result<Vec<Source>, ContextError> {
    resolve_with(root, sources, excludes, None)
}

/// The digest of exactly these sources under `root` (see
/// [`BuildContext::digest`]); without a cache every file is read.
pub fn digest_in(
    root: &Path,
    sources: &[Source],
    chown: Option<(u32, u32)>,
    cache: Option<&mut StatCache>,
) -> Result<String, ContextError> {
    digest::digest_in(root, sources, chown, cache)
}

/// Copy resolved sources from `src_root` into the rootfs `dest_root` at
/// `dest` (absolute, or relative to `workdir`), with Docker's rules:
///
/// - the destination is a directory when it ends in `/` (or is `.`), when
///   there are several sources (after wildcard expansion), when a source is
///   a directory, or when it already is one (symlinks followed in-root);
///   missing directories are created 0755, owned by the chown user;
/// - a source directory copies its contents, not itself (a created
///   destination directory takes the source directory's mode and mtime);
/// - a single file to any other destination is written under that name;
/// - with `extract_archives` (ADD) a tar, plain or gzip/zstd compressed,
///   is extracted into the destination directory;
/// - modes are kept unless `chmod`, mtimes are kept (clamped to
///   `source_date_epoch`), the owner is `chown` or 0:0 (when running as
///   root; otherwise files stay the caller's);
/// - nothing is ever written outside `dest_root`: see the `copy` module.
pub fn copy_sources(
    src_root: &Path,
    sources: &[Source],
    dest_root: &Path,
    dest: &str,
    workdir: &str,
    opts: &CopyOptions,
) -> Result<CopyStats, ContextError> {
    copy::copy_sources(src_root, sources, dest_root, dest, workdir, opts)
}

/// `--chown` value (`user:group`, `uid:gid`, `user`, `uid`) → numeric ids,
/// names looked up in `dest_root`'s `/etc/passwd` and `/etc/group` (read
/// in-root). Without a group the gid equals the uid, as in Docker.
pub fn resolve_chown(dest_root: &Path, spec: &str) -> Result<(u32, u32), ContextError> {
    owner::resolve_chown(dest_root, spec)
}

/// `--chmod` value: octal, at most 7777.
pub fn parse_chmod(s: &str) -> Result<u32, ContextError> {
    owner::parse_chmod(s)
}

fn resolve_with(
    root: &Path,
    sources: &[String],
    excludes: &[String],
    ignore: Option<Arc<IgnoreMatcher>>,
) -> Result<Vec<Source>, ContextError> {
    let exclude = if excludes.is_empty() {
        None
    } else {
        Some(Arc::new(IgnoreMatcher::new(excludes)?))
    };
    let filter = Filter { ignore, exclude };
    let mut out = Vec::new();
    for s in sources {
        let before = out.len();
        resolve_one(root, s, &filter, &mut out)?;
        if out.len() == before {
            return Err(ContextError::NotFound {
                path: s.trim_start_matches('/').to_owned(),
            });
        }
    }
    Ok(out)
}

/// Is the real path `rel` visible through `filter` as a top-level source?
/// An ignored directory stays visible if an exception may re-include
/// something inside it.
fn visible(filter: &Filter, rel: &Path, is_dir: bool) -> bool {
    let Some(m) = filter.ignore.as_deref() else {
        return true;
    };
    let s = rel.to_string_lossy();
    let v = judge(&[(m, &s)]);
    !v.ignored || (is_dir && v.descend)
}

fn excluded(filter: &Filter, rel_to_base: &Path) -> bool {
    filter
        .exclude
        .as_deref()
        .is_some_and(|m| m.is_ignored(&rel_to_base.to_string_lossy()))
}

fn resolve_one(root: &Path, src: &str, filter: &Filter, out: &mut Vec<Source>) -> Result<(), ContextError> {
    let comps = clean_components(src);
    let Some(wild_at) = comps.iter().position(|c| has_wildcard(&c.to_string_lossy())) else {
        // A plain path: follow symlinks (the last one too) in-root.
        let Ok(real) = resolve_path(root, &comps, true) else {
            return Ok(());
        };
        let real = join(&real);
        let Ok(meta) = fs::symlink_metadata(root.join(&real)) else {
            return Ok(());
        };
        if !visible(filter, &real, meta.is_dir()) || excluded(filter, &join(&comps)) {
            return Ok(());
        }
        out.push(Source {
            rel: real,
            path: join(&comps),
            is_dir: meta.is_dir(),
            wildcard: false,
            name: comps.last().cloned().unwrap_or_default(),
            filter: filter.clone(),
        });
        return Ok(());
    };
    let (lit, pat) = comps.split_at(wild_at);
    let segs = pat
        .iter()
        .map(|c| Seg::compile(&c.to_string_lossy(), false))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ContextError::BadPattern {
            pattern: src.to_owned(),
            reason: e.0,
        })?;
    let Ok(base) = resolve_path(root, lit, true) else {
        return Ok(());
    };
    let mut matches = Vec::new();
    expand_wildcard(root, &base, &segs, filter, &mut matches)?;
    for (root_rel, base_rel) in matches {
        if excluded(filter, &base_rel) {
            continue;
        }
        // A matched symlink is followed in-root, as a named source is.
        let rc: Vec<OsString> = root_rel.iter().map(|c| c.to_owned()).collect();
        let Ok(real) = resolve_path(root, &rc, true) else {
            continue;
        };
        let real = join(&real);
        let Ok(meta) = fs::symlink_metadata(root.join(&real)) else {
            continue;
        };
        if real != root_rel && !visible(filter, &real, meta.is_dir()) {
            continue;
        }
        out.push(Source {
            name: root_rel.file_name().map(|n| n.to_owned()).unwrap_or_default(),
            path: root_rel.clone(),
            rel: real,
            is_dir: meta.is_dir(),
            wildcard: true,
            filter: filter.clone(),
        });
    }
    Ok(())
}
