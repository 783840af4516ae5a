//! Reading a source tree: in-root symlink resolution of source paths,
//! wildcard expansion, and the filtered, sorted walk shared by the digest
//! and the copy.
//!
//! Read-only: nothing here may ever create, change or remove a file, and no
//! path may resolve outside its root (symlinks are followed as if the root
//! were `/`; `..` stops at the root).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::dockerignore::{split, IgnoreMatcher};
use super::pattern::Seg;
use super::{ContextError, Filter, Source};

/// Symlinks followed while resolving one path, as the kernel's limit.
const MAX_HOPS: u32 = 40;

/// Path components of a cleaned relative path, `..` clamped at the root.
pub(crate) fn clean_components(p: &str) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.into()),
        }
    }
    out
}

pub(crate) fn join(comps: &[OsString]) -> PathBuf {
    comps.iter().collect()
}

/// Resolve `comps` inside `root`, following every symlink (the last one
/// only when `follow_last`) with `root` as `/`. Returns the real,
/// symlink-free path relative to `root`.
pub(crate) fn resolve_path(root: &Path, comps: &[OsString], follow_last: bool) -> io::Result<Vec<OsString>> {
    let mut todo: VecDeque<OsString> = comps.iter().cloned().collect();
    let mut done: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        if c == "." || c.is_empty() {
            continue;
        }
        if c == ".." {
            done.pop();
            continue;
        }
        let mut cand = root.join(join(&done));
        cand.push(&c);
        let meta = fs::symlink_metadata(&cand)?;
        let last = todo.is_empty();
        if meta.file_type().is_symlink() && (!last || follow_last) {
            hops += 1;
            if hops > MAX_HOPS {
                return Err(io::Error::from_raw_os_error(libc_eloop()));
            }
            let target = fs::read_link(&cand)?;
            let t = target.as_os_str().as_bytes();
            if t.starts_with(b"/") {
                done.clear();
            }
            for part in t.split(|&b| b == b'/').rev() {
                todo.push_front(OsStr::from_bytes(part).to_owned());
            }
            continue;
        }
        if !last && !meta.is_dir() {
            return Err(io::Error::from_raw_os_error(libc_enotdir()));
        }
        done.push(c);
    }
    Ok(done)
}

fn libc_eloop() -> i32 {
    rustix::io::Errno::LOOP.raw_os_error()
}

fn libc_enotdir() -> i32 {
    rustix::io::Errno::NOTDIR.raw_os_error()
}

/// Path bytes as a `/`-separated string for pattern matching (lossy for
/// names that are not UTF-8).
pub(crate) fn rel_str(p: &Path) -> std::borrow::Cow<'_, str> {
    p.to_string_lossy()
}

/// Visibility of a path under a filter.
pub(crate) struct Verdict {
    /// Excluded.
    pub ignored: bool,
    /// Excluded, but an exception may re-include something below it.
    pub descend: bool,
}

/// Judge a path by several matchers, each given the path relative to its
/// own base.
pub(crate) fn judge(checks: &[(&IgnoreMatcher, &str)]) -> Verdict {
    let mut v = Verdict {
        ignored: false,
        descend: true,
    };
    for (m, rel) in checks {
        let segs = split(rel);
        if m.ignored_segs(&segs) {
            v.ignored = true;
            if !m.may_include_below_segs(&segs) {
                v.descend = false;
            }
        }
    }
    v
}

/// One entry of a walked source.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Real path relative to the source root (the context).
    pub root_rel: PathBuf,
    /// Path relative to the copied source: "" for the source itself (a
    /// directory) or the name a single file is copied as.
    pub rel: PathBuf,
    pub meta: Metadata,
}

/// Expand a source (its directory contents, filtered) into `out`, sorted,
/// parents before children. `extra` is an additional ignore matcher
/// relative to `root`.
pub(crate) fn walk_source(
    root: &Path,
    src: &Source,
    extra: Option<&IgnoreMatcher>,
    out: &mut Vec<Entry>,
) -> Result<(), ContextError> {
    let top = root.join(&src.rel);
    let meta = fs::metadata(&top).map_err(|e| ContextError::not_found(&src.rel, e))?;
    if !src.is_dir || !meta.is_dir() {
        out.push(Entry {
            root_rel: src.rel.clone(),
            rel: PathBuf::from(&src.name),
            meta,
        });
        return Ok(());
    }
    out.push(Entry {
        root_rel: src.rel.clone(),
        rel: PathBuf::new(),
        meta,
    });
    let mut w = Walker {
        root,
        filter: &src.filter,
        extra,
    };
    w.dir(&src.rel, Path::new(""), out)?;
    Ok(())
}

struct Walker<'a> {
    root: &'a Path,
    filter: &'a Filter,
    extra: Option<&'a IgnoreMatcher>,
}

impl Walker<'_> {
    /// Append the visible entries below `root_rel` (source-relative
    /// `rel`). Returns whether anything was appended.
    fn dir(&mut self, root_rel: &Path, rel: &Path, out: &mut Vec<Entry>) -> Result<bool, ContextError> {
        let abs = self.root.join(root_rel);
        let rd = fs::read_dir(&abs).map_err(|e| ContextError::io("read directory", &abs, e))?;
        let mut kids: Vec<(OsString, Metadata)> = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| ContextError::io("read directory", &abs, e))?;
            let meta = ent.metadata().map_err(|e| ContextError::io("stat", &ent.path(), e))?;
            kids.push((ent.file_name(), meta));
        }
        kids.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let before = out.len();
        for (name, meta) in kids {
            let child_root = root_rel.join(&name);
            let child_rel = rel.join(&name);
            let root_s = rel_str(&child_root);
            let rel_s = rel_str(&child_rel);
            let mut checks: Vec<(&IgnoreMatcher, &str)> = Vec::with_capacity(3);
            if let Some(m) = self.filter.ignore.as_deref() {
                checks.push((m, &root_s));
            }
            if let Some(m) = self.filter.exclude.as_deref() {
                checks.push((m, &rel_s));
            }
            if let Some(m) = self.extra {
                checks.push((m, &root_s));
            }
            let v = judge(&checks);
            let ft = meta.file_type();
            if ft.is_socket() {
                continue;
            }
            if !v.ignored {
                let is_dir = ft.is_dir();
                out.push(Entry {
                    root_rel: child_root.clone(),
                    rel: child_rel.clone(),
                    meta,
                });
                if is_dir {
                    self.dir(&child_root, &child_rel, out)?;
                }
            } else if ft.is_dir() && v.descend {
                // Walk it; keep the directory only if something inside is
                // re-included.
                let at = out.len();
                out.push(Entry {
                    root_rel: child_root.clone(),
                    rel: child_rel.clone(),
                    meta,
                });
                if !self.dir(&child_root, &child_rel, out)? {
                    out.truncate(at);
                }
            }
        }
        Ok(out.len() > before)
    }
}

/// Expand one wildcard source: `base` is the resolved, non-wildcard
/// leading directory (relative to root), `pat` the remaining segments.
/// Returns (real path relative to root, path relative to `base`).
pub(crate) fn expand_wildcard(
    root: &Path,
    base: &[OsString],
    pat: &[Seg],
    filter: &Filter,
    out: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), ContextError> {
    let base_path = join(base);
    expand_level(root, &base_path, Path::new(""), pat, filter, out)
}

fn expand_level(
    root: &Path,
    dir_root_rel: &Path,
    dir_rel: &Path,
    pat: &[Seg],
    filter: &Filter,
    out: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), ContextError> {
    let Some((seg, rest)) = pat.split_first() else {
        return Ok(());
    };
    let abs = root.join(dir_root_rel);
    let rd = match fs::read_dir(&abs) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc_enotdir()) => return Ok(()),
        Err(e) => return Err(ContextError::io("read directory", &abs, e)),
    };
    let mut names: Vec<(OsString, bool)> = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| ContextError::io("read directory", &abs, e))?;
        let name = ent.file_name();
        if !seg.matches(&name.to_string_lossy()) {
            continue;
        }
        let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
        names.push((name, is_dir));
    }
    names.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, is_dir) in names {
        let child_root = dir_root_rel.join(&name);
        let child_rel = dir_rel.join(&name);
        let mut checks: Vec<(&IgnoreMatcher, &str)> = Vec::new();
        let root_s = rel_str(&child_root);
        if let Some(m) = filter.ignore.as_deref() {
            checks.push((m, &root_s));
        }
        let v = judge(&checks);
        if v.ignored && !(is_dir && v.descend) {
            continue;
        }
        if rest.is_empty() {
            out.push((child_root, child_rel));
        } else if is_dir {
            expand_level(root, &child_root, &child_rel, rest, filter, out)?;
        }
    }
    Ok(())
}
