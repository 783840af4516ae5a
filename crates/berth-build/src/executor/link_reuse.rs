//! `COPY --link --from=IMAGE_OR_STAGE / /` by reusing the source's layers:
//! when stacking the source's layers on the target's gives exactly the
//! tree the copy would give, the step's layers are the source's own (same
//! blobs, same unpacked directories, nothing copied), so an image made of
//! independently built parts shares their layers, as `image compose` does.
//!
//! Whether both give the same tree is decided from the layers' entries
//! (never their contents): the copy's result (the target's tree, then
//! every path of the source's tree written over it, owned by root, as
//! COPY writes it) is compared with the stacked result (the layers applied
//! in order, whiteouts and opaque directories included) path by path. A
//! file must come from a layer with the same diff ID (the same file); a
//! directory must have the same mode and owner. The copy is kept where
//! they differ — a deletion in the source that reaches the target's
//! files, a directory of the source where the target has a symlink (the
//! copy follows it), a file the copy would chown — and the reason is said.
//!
//! It never writes: it reads the layer directories' metadata only.

use std::collections::BTreeMap;

use berth_archive::{scan_layer_dir, ApplyOptions, EntryKind, LayerEntry};
use berth_store::{Digest, NewLayer};

use super::{store_err, BuildError, Builder};
use crate::dockerfile::CopyArgs;

/// `COPY --link --from=X / /` and nothing else: the whole source onto
/// the whole target, with no option that changes what is written.
pub(crate) fn is_whole_image_copy(c: &CopyArgs, is_add: bool) -> bool {
    let root = |p: &str| matches!(p.trim_end_matches('/'), "" | "/." | ".");
    c.link
        && !is_add
        && c.from.is_some()
        && c.sources.len() == 1
        && root(&c.sources[0])
        && (c.dest.trim_end_matches('/').is_empty() || c.dest == "/.")
        && c.heredocs.is_empty()
        && c.chown.is_none()
        && c.chmod.is_none()
        && c.exclude.is_empty()
        && !c.parents
        && c.checksum.is_none()
}

/// The source's layers to stack (those the target does not have yet),
/// each with its position in the source (0 = bottom).
pub(crate) struct Reuse {
    pub layers: Vec<(usize, NewLayer)>,
    /// How many source layers the target had already.
    pub present: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Dir,
    Symlink,
    File,
}

/// Who provides a path, and what it is there.
#[derive(Clone, Debug)]
struct Provided {
    /// Index into the layer labels / diff IDs.
    layer: usize,
    class: Class,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

type Tree = BTreeMap<String, Provided>;

fn remove_below(tree: &mut Tree, path: &str, and_itself: bool) {
    let prefix = format!("{path}/");
    let doomed: Vec<String> = tree
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        tree.remove(&k);
    }
    if and_itself {
        tree.remove(path);
    }
}

/// Apply one layer's entries to a tree as overlayfs shows them: its
/// deletions hide what is below, a non-directory hides a directory's
/// subtree below it.
fn apply(tree: &mut Tree, layer: usize, entries: &[LayerEntry]) {
    for e in entries {
        match e.kind {
            EntryKind::Whiteout => remove_below(tree, &e.path, true),
            EntryKind::Dir { opaque: true } => remove_below(tree, &e.path, false),
            _ => {}
        }
    }
    for e in entries {
        let class = match e.kind {
            EntryKind::Whiteout => continue,
            EntryKind::Dir { .. } => Class::Dir,
            EntryKind::Symlink => Class::Symlink,
            EntryKind::File => Class::File,
        };
        if class != Class::Dir && tree.get(&e.path).is_some_and(|p| p.class == Class::Dir) {
            remove_below(tree, &e.path, false);
        }
        tree.insert(
            e.path.clone(),
            Provided {
                layer,
                class,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                mtime: e.mtime,
            },
        );
    }
}

fn class_word(c: Class) -> &'static str {
    match c {
        Class::Dir => "a directory",
        Class::Symlink => "a symlink",
        Class::File => "a file",
    }
}

/// The layers of an image: (diff ID, label, entries), bottom first.
fn scanned(
    b: &Builder<'_>,
    image: Option<&Digest>,
    name: &str,
) -> Result<Vec<(Digest, String, Vec<LayerEntry>)>, BuildError> {
    let Some(id) = image else { return Ok(Vec::new()) };
    let rec = b.store.image(id).map_err(|e| store_err("reading an image", e))?;
    let diffs = b
        .store
        .image_config(id)
        .and_then(|c| c.diff_ids())
        .map_err(|e| store_err("reading an image's config", e))?;
    let prefix = ApplyOptions::for_current_user().xattr_prefix;
    let mut out = Vec::new();
    for (i, (key, diff)) in rec.layers.iter().zip(diffs).enumerate() {
        let dir = b.store.layer_dir(key);
        let entries =
            scan_layer_dir(&dir, &prefix).map_err(|e| store_err(&format!("reading layer {} of {name}", i + 1), e))?;
        out.push((diff, format!("layer {} of {name}", i + 1), entries));
    }
    Ok(out)
}

/// Whether `source`'s layers can be stacked on `target` for `COPY --link
/// --from=… / /`: `Ok(Reuse)`, or `Err(reason)` to copy instead.
pub(crate) fn plan(
    b: &Builder<'_>,
    target: Option<&Digest>,
    source: &Digest,
    source_name: &str,
) -> Result<Result<Reuse, String>, BuildError> {
    let t = scanned(b, target, "the target")?;
    let s = scanned(b, Some(source), source_name)?;
    let labels: Vec<&str> = t.iter().chain(&s).map(|(_, l, _)| l.as_str()).collect();
    let diffs: Vec<&Digest> = t.iter().chain(&s).map(|(d, _, _)| d).collect();

    // What the copy writes: the target's tree, the source's over it.
    let mut target_tree = Tree::new();
    for (i, (_, _, e)) in t.iter().enumerate() {
        apply(&mut target_tree, i, e);
    }
    let mut source_tree = Tree::new();
    for (i, (_, _, e)) in s.iter().enumerate() {
        apply(&mut source_tree, t.len() + i, e);
    }
    let as_root = rustix::process::geteuid().is_root();
    let mut copied = target_tree.clone();
    for (path, p) in &source_tree {
        if let Some(had) = target_tree.get(path) {
            match (had.class, p.class) {
                (Class::Symlink, Class::Dir) => {
                    return Ok(Err(format!(
                        "/{path} is a symlink in the target and a directory in {source_name} (the copy follows the symlink)"
                    )))
                }
                (Class::Dir, c) if c != Class::Dir => {
                    return Ok(Err(format!(
                        "/{path} is a directory in the target and {} in {source_name}",
                        class_word(c)
                    )))
                }
                _ => {}
            }
        }
        if as_root && (p.uid, p.gid) != (0, 0) {
            return Ok(Err(format!(
                "/{path} is owned by {}:{} in {source_name} and the copy makes it root's",
                p.uid, p.gid
            )));
        }
        if b.opts.source_date_epoch.is_some_and(|e| p.mtime > e) {
            return Ok(Err(format!(
                "/{path} is newer than SOURCE_DATE_EPOCH and the copy would clamp its time"
            )));
        }
        if p.class != Class::Dir {
            remove_below(&mut copied, path, false);
        }
        copied.insert(path.clone(), p.clone());
    }

    // What stacking shows: the target's layers, then the source's it lacks.
    let mut stacked = target_tree;
    let mut layers = Vec::new();
    let mut present = 0;
    let src_rec = b.store.image(source).map_err(|e| store_err("reading an image", e))?;
    let src_layers = b
        .store
        .image_layers(&src_rec)
        .map_err(|e| store_err("reading an image's layers", e))?;
    let mut have: Vec<&Digest> = t.iter().map(|(d, _, _)| d).collect();
    for (i, ((diff, _, entries), nl)) in s.iter().zip(src_layers).enumerate() {
        if have.contains(&diff) {
            present += 1;
            continue;
        }
        have.push(diff);
        apply(&mut stacked, t.len() + i, entries);
        layers.push((i, nl));
    }

    for (path, want) in &copied {
        let Some(got) = stacked.get(path) else {
            return Ok(Err(format!(
                "/{path} ({}) would be hidden by a deletion in {source_name}",
                labels[want.layer]
            )));
        };
        let same = got.class == want.class
            && if want.class == Class::Dir {
                (got.mode, got.uid, got.gid) == (want.mode, want.uid, want.gid)
            } else {
                diffs[got.layer] == diffs[want.layer]
            };
        if !same {
            return Ok(Err(format!(
                "/{path}: the copy takes it from {}, the stacked layers would show {}'s",
                labels[want.layer], labels[got.layer]
            )));
        }
    }
    if let Some((path, got)) = stacked.iter().find(|(p, _)| !copied.contains_key(*p)) {
        return Ok(Err(format!("/{path} of {} would appear", labels[got.layer])));
    }
    Ok(Ok(Reuse { layers, present }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(path: &str, kind: EntryKind) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    #[test]
    fn layers_apply_as_overlayfs_shows_them() {
        let mut t = Tree::new();
        let dir = EntryKind::Dir { opaque: false };
        apply(
            &mut t,
            0,
            &[
                e("etc", dir),
                e("etc/a", EntryKind::File),
                e("lib", dir),
                e("lib/x", EntryKind::File),
            ],
        );
        apply(
            &mut t,
            1,
            &[e("etc/a", EntryKind::Whiteout), e("lib", EntryKind::Symlink)],
        );
        assert_eq!(t.keys().collect::<Vec<_>>(), vec!["etc", "lib"]);
        apply(
            &mut t,
            2,
            &[e("etc", EntryKind::Dir { opaque: true }), e("etc/b", EntryKind::File)],
        );
        assert_eq!(t.keys().collect::<Vec<_>>(), vec!["etc", "etc/b", "lib"]);
        assert_eq!(t["etc"].layer, 2);
    }
}
