//! COPY and ADD: sources resolved and digested by the context module (a
//! stat cache keeps an unchanged context from being read again); on a
//! cache miss the parent image is mounted, the sources copied into it with
//! Docker's path rules, and the upper dir becomes the step's layer.
//! `--from` copies out of a stage's or an image's mounted root; its cache
//! key is that image's ID (an image never changes).

use berth_store::Digest;

use super::cache::step_key;
use super::commit::diff_upper;
use super::stage::{cached_step, Cur};
use super::step_run::{resolve_from, StepDir};
use super::{new_step_id, BuildError, Builder};
use crate::context::{self, CopyOptions, Source};
use crate::dockerfile::{CopyArgs, Instruction};

fn ctx_err(e: context::ContextError) -> BuildError {
    BuildError::other(e.to_string())
}

pub(crate) fn copy_step(
    b: &Builder<'_>,
    cur: &mut Cur,
    x: &Instruction,
    c: &CopyArgs,
    is_add: bool,
) -> Result<(), BuildError> {
    let name = if is_add { "ADD" } else { "COPY" };
    if c.parents {
        return Err(BuildError::other(format!("{name} --parents is not supported yet")));
    }
    if let Some(u) = c.sources.iter().find(|s| context::is_url(s)) {
        return Err(BuildError::other(format!(
            "{name} {u}: remote sources are not supported yet (berth builds offline); download the file into the context"
        )));
    }
    if let Some(chmod) = &c.chmod {
        context::parse_chmod(chmod).map_err(ctx_err)?;
    }
    let mut extra: Vec<(&str, String)> = Vec::new();
    let from_image: Option<Option<Digest>> = match &c.from {
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
    let mut kind_word = "multi";
    let mut content = String::new();
    if from_image.is_none() && !c.sources.is_empty() {
        let sources = b.context.resolve(&c.sources, &c.exclude).map_err(ctx_err)?;
        let digest = {
            let mut sc = b.stat_cache.lock().unwrap_or_else(|p| p.into_inner());
            b.context.digest(&sources, None, &mut sc).map_err(ctx_err)?
        };
        if sources.len() == 1 && c.heredocs.is_empty() {
            kind_word = if sources[0].is_dir { "dir" } else { "file" };
        }
        content = digest.trim_start_matches("sha256:").to_string();
        extra.push(("sources", digest));
    } else if let Some(img) = &from_image {
        content = img.as_ref().map(|d| d.hex().to_string()).unwrap_or_default();
        kind_word = "dir";
    } else if c.heredocs.len() == 1 {
        kind_word = "file";
        use sha2::{Digest as _, Sha256};
        content = hex::encode(Sha256::digest(c.heredocs[0].content.as_bytes()));
    }
    let key = step_key(cur.image.as_ref(), &format!("{:?}", x.kind), &extra);
    let created_by = format!("/bin/sh -c #(nop) {name} {kind_word}:{content} in {} ", c.dest);
    cached_step(b, cur, key, |cur| {
        let id = new_step_id();
        let mut sd = StepDir::create(&b.build_dir, &id)?;
        let rootfs = sd.mount_image(b, cur.image.as_ref(), "root")?;
        let chown = c
            .chown
            .as_deref()
            .map(|s| context::resolve_chown(&rootfs.root, s))
            .transpose()
            .map_err(ctx_err)?;
        let chmod = c
            .chmod
            .as_deref()
            .map(context::parse_chmod)
            .transpose()
            .map_err(ctx_err)?;
        let opts = CopyOptions {
            chown,
            chmod,
            extract_archives: is_add,
            source_date_epoch: b.opts.source_date_epoch,
            ignore: None,
        };
        let workdir = if cur.config.config.working_dir.is_empty() {
            "/".to_string()
        } else {
            cur.config.config.working_dir.clone()
        };
        let copy = |src_root: &std::path::Path, sources: &[Source]| {
            context::copy_sources(src_root, sources, &rootfs.root, &c.dest, &workdir, &opts).map_err(ctx_err)
        };
        if !c.sources.is_empty() {
            match &from_image {
                Some(img) => {
                    let src = sd.mount_image(b, img.as_ref(), "from")?;
                    let sources = context::resolve_in(&src.root, &c.sources, &c.exclude).map_err(ctx_err)?;
                    copy(&src.root, &sources)?;
                }
                None => {
                    let sources = b.context.resolve(&c.sources, &c.exclude).map_err(ctx_err)?;
                    copy(&b.context.root, &sources)?;
                }
            }
        }
        if !c.heredocs.is_empty() {
            let dir = sd.dir.join("heredocs");
            std::fs::create_dir_all(&dir).map_err(|e| BuildError::other(format!("writing heredoc sources: {e}")))?;
            let mut names = Vec::new();
            for h in &c.heredocs {
                std::fs::write(dir.join(&h.name), &h.content)
                    .map_err(|e| BuildError::other(format!("writing heredoc {}: {e}", h.name)))?;
                names.push(h.name.clone());
            }
            let sources = context::resolve_in(&dir, &names, &[]).map_err(ctx_err)?;
            copy(&dir, &sources)?;
        }
        sd.unmount_all()?;
        let layer = diff_upper(b.store, &rootfs.upper, b.opts.source_date_epoch, Vec::new())?;
        drop(sd);
        Ok((cur.config.clone(), layer, created_by))
    })
}
