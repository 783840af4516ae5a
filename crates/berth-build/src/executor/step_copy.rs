//! COPY and ADD: sources resolved and digested by the context module (a
//! stat cache keeps an unchanged context from being read again); on a
//! cache miss the parent image is mounted, the sources copied into it with
//! Docker's path rules, and the upper dir becomes the step's layer.
//! `--from` copies out of a stage's or an image's mounted root; its cache
//! key is that image's ID (an image never changes). `ADD <url>` sources are
//! downloaded first (see `remote`).
//!
//! `--parents` keeps each source's path (relative to the context, the
//! `--from` root, or the `/./` pivot in the source) under the destination.
//!
//! `--link` builds the layer on its own: the sources go into an empty
//! directory (nothing of the parent is seen or followed), and the layer is
//! cached under a key without the parent (pointing at the first step image
//! that has it on top), so a changed base re-commits the same layer blob on
//! the new parent instead of copying again.

use berth_archive::perms;
use std::path::{Path, PathBuf};

use berth_store::Digest;

use super::cache::step_key;
use super::commit::{commit_step, commit_step_layers, diff_upper, LayerOut};
use super::image_cache::ClassicStep;
use super::link_reuse::{self, is_whole_image_copy};
use super::remote::{self, Fetched};
use super::stage::{cached_step_committed, Cur};
use super::step_run::{resolve_from, StepDir};
use super::{new_step_id, store_err, BuildError, Builder};
use crate::context::{self, BuildContext, CopyOptions, Source};
use crate::dockerfile::{CopyArgs, Instruction};

fn ctx_err(e: context::ContextError) -> BuildError {
    BuildError::other(e.to_string())
}

/// `--parents`: how many leading components of a source's path are left
/// out under the destination (those before a `/./` pivot), and the path
/// to resolve (the source without the pivot marker).
fn pivot(src: &str) -> (usize, String) {
    match src.rfind("/./") {
        Some(i) => {
            let before = &src[..i];
            (
                context::clean_components(before).len(),
                format!("{before}/{}", &src[i + 3..]),
            )
        }
        None => (0, src.to_string()),
    }
}

/// `--parents`: the directory under `dest` a source goes to.
fn parents_dest(dest: &str, src: &Source, skip: usize) -> String {
    let kept: PathBuf = src.path.components().skip(skip).collect();
    let dir = if src.is_dir {
        kept
    } else {
        kept.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let base = dest.trim_end_matches('/');
    if dir.as_os_str().is_empty() {
        format!("{base}/")
    } else {
        format!("{base}/{}/", dir.display())
    }
}

pub(crate) fn copy_step(
    b: &Builder<'_>,
    cur: &mut Cur,
    x: &Instruction,
    c: &CopyArgs,
    is_add: bool,
) -> Result<(), BuildError> {
    let name = if is_add { "ADD" } else { "COPY" };
    if let Some(g) = c.sources.iter().find(|s| remote::is_git(s)) {
        return Err(BuildError::other(format!(
            "{name} {g}: git sources are not supported by berth: clone the repository into the build context and {name} it from there"
        )));
    }
    let urls: Vec<&String> = c.sources.iter().filter(|s| context::is_url(s)).collect();
    let locals: Vec<String> = c.sources.iter().filter(|s| !context::is_url(s)).cloned().collect();
    if let Some(u) = urls.first() {
        if !is_add {
            return Err(BuildError::other(format!(
                "COPY {u}: COPY cannot take a URL: use ADD {u} {}",
                c.dest
            )));
        }
        if c.from.is_some() {
            return Err(BuildError::other(format!("ADD --from cannot take a URL ({u})")));
        }
        if c.parents {
            return Err(BuildError::other(format!("ADD --parents cannot take a URL ({u})")));
        }
        if c.sources.len() + c.heredocs.len() > 1 && !c.dest.ends_with('/') {
            return Err(BuildError::other(format!(
                "When using ADD with more than one source file, the destination must be a directory and end with a / (not {:?})",
                c.dest
            )));
        }
    }
    let checksum = match &c.checksum {
        Some(_) if urls.is_empty() => {
            return Err(BuildError::other(format!(
                "{name} --checksum is only for http(s) URL sources: compare a context file's checksum in a RUN step instead"
            )))
        }
        Some(cs) => Some(remote::parse_checksum(cs)?),
        None => None,
    };
    if let Some(chmod) = &c.chmod {
        context::parse_chmod(chmod).map_err(ctx_err)?;
    }
    let mut extra: Vec<(&str, String)> = Vec::new();
    // `--from=NAME` of a `--build-context NAME=DIR` (and no stage of that
    // name): copied from that directory as from the main context.
    let dir_ctx = c
        .from
        .as_deref()
        .filter(|f| b.df.stage_by_name_or_index(f).is_none())
        .and_then(|f| b.named_dirs.get(f).map(|ctx| (f, ctx)));
    if let Some((f, _)) = dir_ctx {
        extra.push(("context", f.to_string()));
    }
    let ctx = dir_ctx.map_or(&b.context, |(_, ctx)| ctx);
    let from_image: Option<Option<Digest>> = match &c.from {
        Some(_) if dir_ctx.is_some() => None,
        Some(f) => {
            let img = resolve_from(b, f)?;
            extra.push((
                "from",
                img.as_ref().map(|d| d.to_string()).unwrap_or_else(|| "scratch".into()),
            ));
            Some(img)
        }
        None => None,
    };
    // --parents: sources without their pivot marker, and what to skip.
    let pivots: Vec<(usize, String)> = locals
        .iter()
        .map(|s| if c.parents { pivot(s) } else { (0, s.clone()) })
        .collect();
    let local_paths: Vec<String> = pivots.iter().map(|(_, s)| s.clone()).collect();

    // Remote sources: downloaded on every build; their digests key the step.
    let mut dl_dir = None;
    let mut fetched: Vec<Fetched> = Vec::new();
    if !urls.is_empty() {
        let sd = StepDir::create(&b.build_dir, &new_step_id())?;
        for (i, u) in urls.iter().enumerate() {
            let file_name = match remote::url_file_name(u) {
                Some(n) => n,
                None if !c.dest.ends_with('/') => "download".to_string(),
                None => {
                    return Err(BuildError::other(format!(
                        "ADD {u}: the URL names no file: give the destination a file name (not ending in /)"
                    )))
                }
            };
            let f = remote::fetch(b, u, &sd.dir.join(format!("url{i}")), &file_name, checksum.as_deref())?;
            b.progress
                .line(&cur.label, &format!(" ---> Downloaded {u}: {}", f.digest));
            extra.push((
                "url",
                format!("{u} {} {}", f.digest, f.last_modified.as_deref().unwrap_or("")),
            ));
            fetched.push(f);
        }
        dl_dir = Some(sd);
    }

    let mut kind_word = "multi";
    let mut content = String::new();
    // Context sources as resolved for the key: a miss copies these.
    let mut resolved = None;
    if from_image.is_none() && !locals.is_empty() {
        let sources = ctx.resolve(&local_paths, &c.exclude).map_err(ctx_err)?;
        let digest = {
            let mut sc = b.stat_cache.lock().unwrap_or_else(|p| p.into_inner());
            ctx.digest(&sources, None, &mut sc).map_err(ctx_err)?
        };
        if sources.len() == 1 && c.heredocs.is_empty() && fetched.is_empty() {
            kind_word = if sources[0].is_dir { "dir" } else { "file" };
        }
        content = digest.trim_start_matches("sha256:").to_string();
        extra.push(("sources", digest));
        if c.parents {
            // Where each file lands depends on its path, not only its content.
            let paths: Vec<String> = sources.iter().map(|s| s.path.display().to_string()).collect();
            extra.push(("parents", paths.join("\0")));
        }
        resolved = Some(sources);
    } else if let Some(img) = &from_image {
        content = img.as_ref().map(|d| d.hex().to_string()).unwrap_or_default();
        kind_word = "dir";
    } else if c.heredocs.len() == 1 && fetched.is_empty() {
        kind_word = "file";
        use sha2::{Digest as _, Sha256};
        content = hex::encode(Sha256::digest(c.heredocs[0].content.as_bytes()));
    } else if fetched.len() == 1 && c.heredocs.is_empty() {
        kind_word = "file";
        content = fetched[0].digest.trim_start_matches("sha256:").to_string();
    }
    let key = cur.step_key(&format!("{:?}", x.kind), &extra);
    // dockerd's classic builder puts `--chown=` right before the source,
    // without a space: `COPY --chown=5:6dir:<digest> in /app/ `.
    let chown = c.chown.as_ref().map(|o| format!("--chown={o}")).unwrap_or_default();
    let created_by = format!(
        "{} {name} {chown}{kind_word}:{content} in {} ",
        super::stage::nop_prefix(&cur.config),
        c.dest
    );
    let workdir = if cur.config.config.working_dir.is_empty() {
        "/".to_string()
    } else {
        cur.config.config.working_dir.clone()
    };
    let mut link_record = None;
    // Its history text holds the content's digest, not these options.
    let classic = (c.chown.is_none() && c.chmod.is_none() && c.exclude.is_empty() && !c.parents).then(|| ClassicStep {
        created_by: created_by.clone(),
        config: cur.config.clone(),
    });
    let res = cached_step_committed(b, cur, key, classic, |cur| {
        if let (true, Some(Some(src))) = (is_whole_image_copy(c, is_add), &from_image) {
            let name = c.from.as_deref().unwrap_or_default();
            match link_reuse::plan(b, cur.image.as_ref(), src, name)? {
                Ok(reuse) => {
                    b.progress.line(
                        &cur.label,
                        &format!(
                            " ---> Reusing {} of {name} as they are ({} already below): nothing copied",
                            plural(reuse.layers.len(), "layer"),
                            reuse.present
                        ),
                    );
                    let mut entries: Vec<(String, Option<berth_store::NewLayer>)> = reuse
                        .layers
                        .into_iter()
                        .map(|(i, l)| (format!("{created_by}# layer {} of {name}, reused", i + 1), Some(l)))
                        .collect();
                    if entries.is_empty() {
                        entries.push((created_by.clone(), None));
                    }
                    let epoch = b.opts.source_date_epoch;
                    return commit_step_layers(b.store, &b.lease, cur.image.as_ref(), cur.config.clone(), entries, epoch);
                }
                Err(why) => b.progress.line(
                    &cur.label,
                    &format!(" ---> COPY --link --from={name} / /: copying the files, the layers cannot be reused as they are: {why}"),
                ),
            }
        }
        let job = CopyJob {
            c,
            is_add,
            from_image: &from_image,
            context: ctx,
            pivots: &pivots,
            resolved: resolved.as_deref(),
            fetched: &fetched,
            workdir: &workdir,
        };
        let layer = if c.link {
            let (layer, record) = linked_layer(b, cur, x, &extra, &job)?;
            link_record = record;
            layer
        } else {
            let id = new_step_id();
            let mut sd = StepDir::create(&b.build_dir, &id)?;
            let rootfs = sd.mount_image(b, cur.image.as_ref(), "root")?;
            let chown = resolve_owner(c, &rootfs.root)?;
            job.copy_into(b, &mut sd, &rootfs.root, chown)?;
            sd.unmount_all()?;
            let layer = diff_upper(b.store, &rootfs.upper, b.opts.source_date_epoch, Vec::new())?;
            drop(sd);
            layer
        };
        let epoch = b.opts.source_date_epoch;
        commit_step(
            b.store,
            &b.lease,
            cur.image.as_ref(),
            cur.config.clone(),
            layer,
            &created_by,
            epoch,
        )
    });
    drop(dl_dir);
    res?;
    if let (Some(link_key), Some(img)) = (link_record, &cur.image) {
        b.store
            .cache_put(&link_key, img)
            .map_err(|e| store_err("recording the build cache", e))?;
    }
    Ok(())
}

/// `1 layer`, `2 layers`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `--chown` as numeric ids, names looked up in `root`.
fn resolve_owner(c: &CopyArgs, root: &Path) -> Result<Option<(u32, u32)>, BuildError> {
    c.chown
        .as_deref()
        .map(|s| context::resolve_chown(root, s))
        .transpose()
        .map_err(ctx_err)
}

/// Sources as written → resolved (in the context or a `--from` root).
type Resolver<'a> = dyn Fn(&[String]) -> Result<Vec<Source>, BuildError> + 'a;

/// What one COPY/ADD writes, wherever it writes it.
struct CopyJob<'a> {
    c: &'a CopyArgs,
    is_add: bool,
    from_image: &'a Option<Option<Digest>>,
    /// The context the local sources are in (the main one, or a named one).
    context: &'a BuildContext,
    pivots: &'a [(usize, String)],
    /// The context sources, already resolved (not with `--from`).
    resolved: Option<&'a [Source]>,
    fetched: &'a [Fetched],
    workdir: &'a str,
}

impl CopyJob<'_> {
    /// Copy every source into the rootfs `dest_root`.
    fn copy_into(
        &self,
        b: &Builder<'_>,
        sd: &mut StepDir,
        dest_root: &Path,
        chown: Option<(u32, u32)>,
    ) -> Result<(), BuildError> {
        let c = self.c;
        let chmod = c
            .chmod
            .as_deref()
            .map(context::parse_chmod)
            .transpose()
            .map_err(ctx_err)?;
        let opts = CopyOptions {
            chown,
            chmod,
            extract_archives: self.is_add,
            source_date_epoch: b.opts.source_date_epoch,
            ignore: None,
        };
        let copy = |src_root: &Path, sources: &[Source], opts: &CopyOptions| {
            context::copy_sources(src_root, sources, dest_root, &c.dest, self.workdir, opts).map_err(ctx_err)
        };
        // --parents: one source at a time, each to its own directory.
        let copy_local = |src_root: &Path, resolve: &Resolver<'_>| {
            if !c.parents {
                let all: Vec<String> = self.pivots.iter().map(|(_, s)| s.clone()).collect();
                let sources = resolve(&all)?;
                return copy(src_root, &sources, &opts).map(|_| ());
            }
            for (skip, src) in self.pivots {
                for s in resolve(std::slice::from_ref(src))? {
                    let dest = parents_dest(&c.dest, &s, *skip);
                    context::copy_sources(
                        src_root,
                        std::slice::from_ref(&s),
                        dest_root,
                        &dest,
                        self.workdir,
                        &opts,
                    )
                    .map_err(ctx_err)?;
                }
            }
            Ok(())
        };
        if !self.pivots.is_empty() {
            match self.from_image {
                Some(img) => {
                    let src = sd.mount_image(b, img.as_ref(), "from")?;
                    let root = src.root.clone();
                    copy_local(&root, &|s: &[String]| {
                        context::resolve_in(&root, s, &c.exclude).map_err(ctx_err)
                    })?;
                }
                None => match self.resolved {
                    Some(sources) if !c.parents => {
                        copy(&self.context.root, sources, &opts)?;
                    }
                    _ => copy_local(&self.context.root, &|s: &[String]| {
                        self.context.resolve(s, &c.exclude).map_err(ctx_err)
                    })?,
                },
            }
        }
        // Downloads are copied as they are: never extracted.
        let plain = CopyOptions {
            extract_archives: false,
            ..opts.clone()
        };
        for f in self.fetched {
            let sources = context::resolve_in(&f.dir, std::slice::from_ref(&f.name), &[]).map_err(ctx_err)?;
            copy(&f.dir, &sources, &plain)?;
        }
        if !c.heredocs.is_empty() {
            let dir = sd.dir.join("heredocs");
            perms::create_dir(&dir, perms::PRIVATE_DIR)
                .map_err(|e| BuildError::other(format!("writing heredoc sources: {e}")))?;
            let mut names = Vec::new();
            for h in &c.heredocs {
                // What COPY gives a heredoc file without --chmod, as Docker.
                perms::write_new(&dir.join(&h.name), h.content.as_bytes(), 0o644)
                    .map_err(|e| BuildError::other(format!("writing heredoc {}: {e}", h.name)))?;
                names.push(h.name.clone());
            }
            let sources = context::resolve_in(&dir, &names, &[]).map_err(ctx_err)?;
            copy(&dir, &sources, &opts)?;
        }
        Ok(())
    }
}

/// `--link`: the step's layer, from the link cache (keyed without the
/// parent image) or copied into an empty directory. The link cache maps
/// that key to a step image whose top layer is the linked layer (the image
/// keeps the blob alive); returns the key to record for the step's image
/// when the layer was made here.
fn linked_layer(
    b: &Builder<'_>,
    cur: &Cur,
    x: &Instruction,
    extra: &[(&str, String)],
    job: &CopyJob<'_>,
) -> Result<(Option<LayerOut>, Option<String>), BuildError> {
    let mut sd = StepDir::create(&b.build_dir, &new_step_id())?;
    // User names are looked up in the parent (read only); the numeric
    // result is part of the key.
    let chown = match &job.c.chown {
        Some(_) => {
            let parent = sd.mount_image(b, cur.image.as_ref(), "parent")?;
            resolve_owner(job.c, &parent.root)?
        }
        None => None,
    };
    let mut link_extra: Vec<(&str, String)> = extra.to_vec();
    link_extra.push(("chown", format!("{chown:?}")));
    link_extra.push(("workdir", job.workdir.to_string()));
    link_extra.push(("epoch", format!("{:?}", b.opts.source_date_epoch)));
    let link_key = step_key(None, &format!("link {:?}", x.kind), &link_extra);
    let store = b.store;
    if !cur.no_cache {
        let holder = store
            .cache_get(&link_key)
            .map_err(|e| store_err("reading the build cache", e))?
            .filter(|id| b.lease.image(id).is_ok());
        if let Some(img) = holder {
            let rec = store
                .image(&img)
                .map_err(|e| store_err("reading the linked layer", e))?;
            let layers = store
                .image_layers(&rec)
                .map_err(|e| store_err("reading the linked layer", e))?;
            if let Some(l) = layers.into_iter().last() {
                b.progress.line(
                    &cur.label,
                    &format!(" ---> Using cache for the linked layer {}", &l.diff_id.hex()[..12]),
                );
                return Ok((Some(LayerOut::stored(store, l.diff_id, l.blob_size)?), None));
            }
        }
    }
    let upper = sd.dir.join("link");
    perms::create_dir(&upper, perms::CONTENT_DIR).map_err(|e| store_err("creating the linked layer's directory", e))?;
    job.copy_into(b, &mut sd, &upper, chown)?;
    sd.unmount_all()?;
    let layer = diff_upper(store, &upper, b.opts.source_date_epoch, Vec::new())?;
    let record = layer.is_some().then_some(link_key);
    Ok((layer, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pivots_split_where_the_path_is_kept() {
        assert_eq!(pivot("./src/./pkg/file"), (1, "./src/pkg/file".to_string()));
        assert_eq!(pivot("x/a.txt"), (0, "x/a.txt".to_string()));
        assert_eq!(pivot("a/b/./c/*.txt"), (2, "a/b/c/*.txt".to_string()));
    }

    #[test]
    fn parents_destinations() {
        let src = |path: &str, is_dir: bool| Source {
            rel: PathBuf::from(path),
            path: PathBuf::from(path),
            is_dir,
            wildcard: false,
            name: Path::new(path).file_name().unwrap().to_owned(),
            filter: Default::default(),
        };
        assert_eq!(parents_dest("/dst/", &src("x/a.txt", false), 0), "/dst/x/");
        assert_eq!(parents_dest("/dst", &src("src/pkg/file", false), 1), "/dst/pkg/");
        assert_eq!(parents_dest("/dst", &src("top.txt", false), 0), "/dst/");
        assert_eq!(parents_dest("rel/", &src("d/sub", true), 0), "rel/d/sub/");
    }
}
