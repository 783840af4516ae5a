//! The container's files: `cp` both ways, `diff`, `commit`, `export`, and
//! pre-filling volumes from the image.
//!
//! Every path inside a container is resolved by the kernel with `openat2`
//! and `RESOLVE_IN_ROOT` against the container's rootfs, and every write
//! into a container goes through `berth_archive::apply_layer` rooted at the
//! rootfs, so a symlink in the container (`/escape -> /`) can never make
//! berth read or write the host's files (CVE-2018-15664, CVE-2019-14271).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{bail, Result};
use anyhow::{anyhow, Context};
use berth_archive::{apply_layer, write_layer, ApplyOptions, DiffOptions};
use berth_store::{Digest, History, NewImage, NewLayer, Reference};
use rustix::fs::{openat2, FileType, Mode, OFlags, ResolveFlags};

use super::{Container, ROOTFS, UPPER};
use crate::{now_rfc3339, Engine, EngineError};

/// Paths the runtime creates as mount points (Docker keeps them in an init
/// layer): never shown by `diff`, never committed.
const RUNTIME_PATHS: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "etc/mtab",
    "proc",
    "sys",
    "dev",
    ".dockerenv",
];

/// Opens `path` inside `root` as an O_PATH fd, resolving every symlink as
/// the container would (absolute targets and `..` stay inside `root`).
/// `follow` decides whether a final symlink is followed.
pub fn open_in_root(root: &Path, path: &str, follow: bool) -> std::io::Result<OwnedFd> {
    let rootfd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let mut tries = 0;
    loop {
        match openat2(
            &rootfd,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(rustix::io::Errno::AGAIN) if tries < 32 => tries += 1,
            r => return r.map_err(Into::into),
        }
    }
}

/// The procfs path of an fd, usable to reopen an O_PATH fd.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn os_pipe() -> anyhow::Result<(File, File)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("creating a pipe")?;
    Ok((File::from(r), File::from(w)))
}

/// Applies a tar stream produced by `produce` (on another thread) into `root`.
fn pipe_into_root<F>(root: &Path, opts: &ApplyOptions, produce: F) -> Result<()>
where
    F: FnOnce(File) -> anyhow::Result<()> + Send + 'static,
{
    let (r, w) = os_pipe()?;
    let t = std::thread::spawn(move || produce(w));
    let applied = apply_layer(r, root, opts);
    let produced = t.join().map_err(|_| anyhow!("the tar writer thread panicked"))?;
    produced?;
    match applied {
        // The user's archive, not the store, is at fault: no host path.
        Err(e @ berth_archive::ArchiveError::KindChange { .. }) => {
            return Err(crate::EngineError::invalid(e.to_string()));
        }
        r => r.with_context(|| format!("writing into {}", root.display()))?,
    };
    Ok(())
}

fn apply_opts(preserve_owner: bool) -> ApplyOptions {
    let mut o = ApplyOptions::for_current_user();
    o.overlay_whiteouts = false;
    o.no_overwrite_dir_non_dir = true;
    o.preserve_owner = preserve_owner && rustix::process::geteuid().is_root();
    o
}

/// Copies the image's content at `target` (inside the mounted `rootfs`)
/// into a new volume's `data` dir, with the directory's mode and owner, as
/// Docker does the first time a volume is used.
pub fn copy_image_path_into(rootfs: &Path, target: &str, data: &Path) -> Result<()> {
    let fd = match open_in_root(rootfs, target, true) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(anyhow::Error::from(e)
                .context(format!("opening {target} in the image"))
                .into())
        }
    };
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Ok(());
    }
    let _ = rustix::fs::chmod(data, Mode::from_raw_mode(st.st_mode & 0o7777));
    if rustix::process::geteuid().is_root() {
        let _ = std::os::unix::fs::chown(data, Some(st.st_uid), Some(st.st_gid));
    }
    let src = fd_path(&fd);
    let mut opts = apply_opts(true);
    opts.overlay_whiteouts = false;
    pipe_into_root(data, &opts, move |w| {
        write_layer(&src, w, &DiffOptions::default()).context("reading the image's files")?;
        drop(fd);
        Ok(())
    })?;
    Ok(())
}

/// Writes a tar of `path` (inside `root`) to `out`. The top entry is named
/// `top` (a file, a symlink, or a directory with everything under it);
/// with `top = None` only a directory's contents are written.
/// `unshift`: owners as the container sees them (`--userns=auto`, see
/// `DiffOptions::id_unshift`).
pub fn tar_from_root<W: Write>(
    root: &Path,
    path: &str,
    follow: bool,
    top: Option<&str>,
    unshift: Option<(u32, u32)>,
    out: W,
) -> Result<W> {
    let fd = open_in_root(root, path, follow).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            EngineError::not_found(format!("Could not find the file {path} in container"))
        } else {
            EngineError::from(anyhow!("opening {path} in the container: {e}"))
        }
    })?;
    let st = rustix::fs::fstat(&fd)?;
    let ft = FileType::from_raw_mode(st.st_mode);
    let mut b = tar::Builder::new(out);
    let own = |id: u32| match unshift {
        Some((start, size)) if id >= start && id - start < size => id - start,
        _ => id,
    };
    let header_for = |kind: tar::EntryType| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(own(st.st_uid) as u64);
        h.set_gid(own(st.st_gid) as u64);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        h
    };
    match ft {
        FileType::Directory => {
            let prefix = match top {
                Some(t) => {
                    let mut h = header_for(tar::EntryType::Directory);
                    b.append_data(&mut h, format!("{t}/"), std::io::empty())?;
                    format!("{t}/")
                }
                None => String::new(),
            };
            let (r, w) = os_pipe()?;
            let src = fd_path(&fd);
            let opts = DiffOptions {
                id_unshift: unshift,
                ..DiffOptions::default()
            };
            let t = std::thread::spawn(move || write_layer(&src, w, &opts));
            let mut ar = tar::Archive::new(r);
            let res = reprefix(&mut ar, &prefix, &mut b);
            let produced = t.join().map_err(|_| anyhow!("the tar writer thread panicked"))?;
            drop(fd);
            produced.context("reading the container's files")?;
            res?;
        }
        FileType::RegularFile => {
            let f = File::open(fd_path(&fd)).with_context(|| format!("opening {path} in the container"))?;
            let mut h = header_for(tar::EntryType::Regular);
            h.set_size(st.st_size as u64);
            let name = top.map(str::to_string).unwrap_or_else(|| base_name(path));
            b.append_data(&mut h, name, f.take(st.st_size as u64))?;
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
            let mut h = header_for(tar::EntryType::Symlink);
            let name = top.map(str::to_string).unwrap_or_else(|| base_name(path));
            b.append_link(&mut h, name, target.to_string_lossy().as_ref())?;
        }
        _ => bail!("{path} in the container is not a file, directory or symlink; cannot copy it"),
    }
    Ok(b.into_inner()?)
}

/// Copies every entry of `ar` into `b` with `prefix` before its name (and
/// before hard link targets).
fn reprefix<R: Read, W: Write>(ar: &mut tar::Archive<R>, prefix: &str, b: &mut tar::Builder<W>) -> anyhow::Result<()> {
    for entry in ar.entries().context("reading a tar stream")? {
        let mut e = entry.context("reading a tar entry")?;
        let path = e.path()?.to_string_lossy().into_owned();
        let mut h = e.header().clone();
        let kind = h.entry_type();
        let name = format!("{prefix}{path}");
        if kind.is_symlink() || kind.is_hard_link() {
            let link = e
                .link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let link = if kind.is_hard_link() {
                format!("{prefix}{link}")
            } else {
                link
            };
            b.append_link(&mut h, &name, &link)?;
        } else if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() || kind.is_gnu_longname() {
            continue;
        } else {
            b.append_data(&mut h, &name, &mut e)?;
        }
    }
    Ok(())
}

pub(crate) fn base_name(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some((_, b)) if !b.is_empty() => b.to_string(),
        _ if t.is_empty() => "/".into(),
        _ => t.to_string(),
    }
}

/// Where a `cp` goes: a container path or a host path.
#[derive(Debug, Clone)]
pub enum CpEnd {
    /// A path in a container.
    Container {
        /// The container's name or ID.
        word: String,
        /// The path inside it.
        path: String,
    },
    /// A path on this machine (`-` for a tar on stdin/stdout).
    Host(String),
}

/// Options of `cp`.
#[derive(Debug, Clone, Default)]
pub struct CpOptions {
    /// Keep owners (`-a`).
    pub archive: bool,
    /// Follow a symbolic link at the source (`-L`).
    pub follow_link: bool,
}

/// Keeps a stopped container's rootfs mounted for the duration of an operation.
pub(crate) struct TempMount {
    rootfs: Option<PathBuf>,
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if let Some(r) = self.rootfs.take() {
            let _ = berth_runtime::unmount(&r);
        }
    }
}

impl Engine {
    /// Mounts the container's rootfs unless it is mounted already (running).
    pub(crate) fn temp_mount(&self, c: &Container) -> anyhow::Result<TempMount> {
        let rootfs = c.dir.join(ROOTFS);
        if crate::is_rootless() {
            bail!(
                "this needs the container's filesystem mounted on the host, which rootless berth cannot do yet (the rootfs is mounted only inside the container)"
            );
        }
        if berth_runtime::mount::is_mountpoint(&rootfs) {
            return Ok(TempMount { rootfs: None });
        }
        let img = self
            .store
            .image(&Digest::parse(&c.rec.image_id)?)
            .with_context(|| format!("the image of container {} is gone", c.rec.name))?;
        self.mount_rootfs(&img, &c.dir, c.cfg.auto_remove)?;
        Ok(TempMount { rootfs: Some(rootfs) })
    }

    /// `cp` from a container: writes a tar to `out` when `dest` is `-`,
    /// otherwise extracts on the host following Docker's rules.
    pub fn copy_from_container(
        &self,
        word: &str,
        src: &str,
        dest: &str,
        o: &CpOptions,
        out: &mut dyn Write,
    ) -> Result<()> {
        let c = self.container(word)?;
        let _m = self.temp_mount(&c)?;
        let rootfs = c.rootfs();
        let contents_only = src.ends_with("/.") || src == ".";
        if dest == "-" {
            let top = base_name(src);
            let top = if contents_only { None } else { Some(top.as_str()) };
            tar_from_root(&rootfs, src, o.follow_link, top, crate::userns::dir_shift(&c.dir), out)?;
            return Ok(());
        }
        // What is the source?
        let fd = open_in_root(&rootfs, src, o.follow_link).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                EngineError::not_found(format!("Could not find the file {src} in container {word}"))
            } else {
                EngineError::from(anyhow!("opening {src} in container {word}: {e}"))
            }
        })?;
        let src_is_dir = FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) == FileType::Directory;
        drop(fd);
        if src.ends_with('/') && !src_is_dir {
            bail!("{src} is not a directory in container {word}");
        }
        let dest_path = PathBuf::from(dest);
        let dest_meta = std::fs::metadata(&dest_path).ok();
        let (into, top): (PathBuf, Option<String>) = match (&dest_meta, src_is_dir) {
            (Some(m), _) if m.is_dir() => {
                if src_is_dir && contents_only {
                    (dest_path.clone(), None)
                } else {
                    (dest_path.clone(), Some(base_name(src)))
                }
            }
            (Some(_), true) => bail!("cannot copy a directory to a file: {dest}"),
            (Some(_), false) => (parent_of(&dest_path), Some(base_name(dest))),
            (None, _) => {
                if dest.ends_with('/') {
                    bail!("destination directory {dest} does not exist");
                }
                let parent = parent_of(&dest_path);
                if !parent.is_dir() {
                    bail!("destination directory {} does not exist", parent.display());
                }
                (parent, Some(base_name(dest)))
            }
        };
        let (src_s, follow) = (src.to_string(), o.follow_link);
        let opts = apply_opts(o.archive);
        let top2 = top.clone();
        let unshift = crate::userns::dir_shift(&c.dir);
        pipe_into_root(&into, &opts, move |w| {
            tar_from_root(&rootfs, &src_s, follow, top2.as_deref(), unshift, w)?;
            Ok(())
        })
    }

    /// `cp` into a container: `src` is a host path, or `-` for a tar on `input`.
    pub fn copy_into_container(
        &self,
        src: &str,
        word: &str,
        dest: &str,
        o: &CpOptions,
        input: Box<dyn Read + Send>,
    ) -> Result<()> {
        let c = self.container(word)?;
        let _m = self.temp_mount(&c)?;
        let rootfs = c.rootfs();
        let dest_abs = if dest.starts_with('/') {
            dest.to_string()
        } else {
            format!(
                "{}/{dest}",
                if c.cfg.working_dir.is_empty() {
                    ""
                } else {
                    c.cfg.working_dir.trim_end_matches('/')
                }
            )
        };
        // How does the destination resolve inside the container?
        let dest_kind = match open_in_root(&rootfs, &dest_abs, true) {
            Ok(fd) => Some(FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(EngineError::from(e).context(format!("resolving {dest} in container {word}")));
            }
        };
        let rel = |p: &str| p.trim_start_matches('/').trim_end_matches('/').to_string();
        let mut opts = apply_opts(o.archive);
        if let Some((start, _)) = crate::userns::dir_shift(&c.dir) {
            // Owners as the container sees them: -a keeps them, else root's.
            opts.id_shift = if o.archive { start } else { 0 };
            opts.owner = (!o.archive).then_some((start, start));
        }
        if src == "-" {
            if dest_kind != Some(FileType::Directory) {
                bail!("destination {dest} must be a directory in container {word} when copying a tar stream");
            }
            let prefix = if rel(&dest_abs).is_empty() {
                String::new()
            } else {
                format!("{}/", rel(&dest_abs))
            };
            return pipe_into_root(&rootfs, &opts, move |w| {
                let mut ar = tar::Archive::new(input);
                let mut b = tar::Builder::new(w);
                reprefix(&mut ar, &prefix, &mut b)?;
                b.finish()?;
                Ok(())
            });
        }
        let src_path = PathBuf::from(src);
        let meta = if o.follow_link {
            std::fs::metadata(&src_path)
        } else {
            std::fs::symlink_metadata(&src_path)
        }
        .with_context(|| format!("no such file or directory: {src}"))?;
        let contents_only = src.ends_with("/.");
        let target: String = match dest_kind {
            Some(FileType::Directory) => {
                if meta.is_dir() && contents_only {
                    rel(&dest_abs)
                } else {
                    let b = base_name(src);
                    format!("{}/{b}", rel(&dest_abs)).trim_start_matches('/').to_string()
                }
            }
            Some(_) if meta.is_dir() => bail!("cannot copy a directory to a file: {dest} in container {word}"),
            Some(_) => rel(&dest_abs),
            None => {
                if dest.ends_with('/') {
                    bail!("destination directory {dest} does not exist in container {word}");
                }
                let parent = parent_str(&dest_abs);
                match open_in_root(&rootfs, &parent, true) {
                    Ok(fd) if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) == FileType::Directory => {}
                    _ => {
                        return Err(EngineError::not_found(format!(
                            "Could not find the file {parent} in container {word}"
                        )))
                    }
                }
                rel(&dest_abs)
            }
        };
        let follow = o.follow_link;
        pipe_into_root(&rootfs, &opts, move |w| {
            let mut b = tar::Builder::new(w);
            b.follow_symlinks(follow);
            b.mode(tar::HeaderMode::Complete);
            if meta.is_dir() {
                if target.is_empty() {
                    b.append_dir_all(".", &src_path)?;
                } else {
                    b.append_dir_all(&target, &src_path)?;
                }
            } else {
                b.append_path_with_name(&src_path, &target)?;
            }
            b.finish()?;
            Ok(())
        })
    }

    /// `diff`: A/C/D entries of the container's upper dir, sorted by path.
    pub fn container_diff(&self, word: &str) -> Result<Vec<(char, String)>> {
        let c = self.container(word)?;
        let img = self.store.image(&Digest::parse(&c.rec.image_id)?)?;
        let lowers: Vec<PathBuf> = img.layers.iter().rev().map(|l| self.store.layer_dir(l)).collect();
        let upper = c.dir.join(UPPER);
        let mut out: Vec<(char, String)> = Vec::new();
        let excluded = mount_excludes(&c);
        walk_upper(&upper, "", &lowers, &excluded, &mut out)?;
        out.sort_by(|a, b| a.1.cmp(&b.1));
        // Directories copied up only to hold a runtime mount point show
        // nothing; nor does one made for the runtime's files alone.
        let made_for_runtime = runtime_made_dirs(&upper, &lowers);
        let keep: Vec<bool> = out
            .iter()
            .map(|(k, p)| {
                let dir = upper.join(p.trim_start_matches('/')).is_dir();
                let children = out.iter().any(|(_, q)| q.starts_with(&format!("{p}/")));
                match k {
                    'C' => !dir || children,
                    'A' => !made_for_runtime.iter().any(|d| d == p.trim_start_matches('/')),
                    _ => true,
                }
            })
            .collect();
        Ok(out.into_iter().zip(keep).filter(|(_, k)| *k).map(|(e, _)| e).collect())
    }

    /// `commit`: the container's changes as a new image on top of its own.
    pub fn commit_container(
        &self,
        word: &str,
        reference: Option<&str>,
        changes: &[String],
        message: Option<&str>,
        author: Option<&str>,
        pause: bool,
    ) -> Result<Digest> {
        let c = self.container(word)?;
        let target = reference.map(Reference::parse).transpose()?;
        let rt = self.container_runtime(&c)?;
        let paused = pause && c.state.status == "running" && berth_runtime::pause(&c.dir, &rt).is_ok();
        let res = self.commit_inner(&c, target, changes, message, author);
        if paused {
            let _ = berth_runtime::unpause(&c.dir, &rt);
        }
        if let Ok(id) = &res {
            self.record_container_event("commit", &c, &[("imageID", id.to_string())]);
        }
        Ok(res?)
    }

    fn commit_inner(
        &self,
        c: &Container,
        target: Option<Reference>,
        changes: &[String],
        message: Option<&str>,
        author: Option<&str>,
    ) -> anyhow::Result<Digest> {
        let parent = self.store.image(&Digest::parse(&c.rec.image_id)?)?;
        let mut cfg = self.store.image_config(&parent.id)?;
        // The container's own settings become the image's, as in Docker.
        let rc = c.doc().config;
        cfg.config.env = rc.env.filter(|e| !e.is_empty()).or(cfg.config.env.take());
        cfg.config.cmd = rc.cmd;
        cfg.config.entrypoint = rc.entrypoint;
        cfg.config.working_dir = rc.working_dir;
        cfg.config.user = rc.user;
        if !c.cfg.labels.is_empty() {
            cfg.config.labels = Some(c.cfg.labels.clone());
        }
        super::super::changes::apply_changes(&mut cfg, changes)?;

        let mut excludes: Vec<String> = RUNTIME_PATHS.iter().map(|s| s.to_string()).collect();
        excludes.extend(mount_excludes(c));
        let lowers: Vec<PathBuf> = parent.layers.iter().map(|l| self.store.layer_dir(l)).collect();
        excludes.extend(runtime_made_dirs(&c.dir.join(UPPER), &lowers));
        let root = rustix::process::geteuid().is_root();
        let diff_opts = DiffOptions {
            source_date_epoch: None,
            overlay_whiteouts: true,
            xattr_prefix: if root {
                "trusted.overlay.".into()
            } else {
                "user.overlay.".into()
            },
            exclude: excludes,
            id_unshift: crate::userns::dir_shift(&c.dir),
        };
        let mut writer = self.store.blob_writer("commit")?;
        let diffed =
            write_layer(&c.dir.join(UPPER), &mut writer, &diff_opts).context("writing the container's changes")?;
        let staged = writer.finish()?;
        let created = now_rfc3339();
        cfg.created = Some(created.clone());
        if let Some(a) = author {
            cfg.author = Some(a.to_string());
        }
        // The container it came from, as dockerd records it (`Container`
        // in inspect).
        cfg.extra.insert("container".into(), serde_json::json!(c.rec.id));
        // No change at all: no layer, only a history entry, as dockerd
        // commits it (the build's steps do the same).
        let empty = diffed.entries == 0;
        if !empty {
            cfg.rootfs.diff_ids.push(diffed.diff_id.clone());
        }
        let cmd_shown = format!(
            "{} {}",
            c.cfg.args.first().cloned().unwrap_or_default(),
            c.cfg.args.get(1..).unwrap_or(&[]).join(" ")
        );
        cfg.history.push(History {
            created: Some(created),
            created_by: Some(cmd_shown.trim().to_string()),
            author: author.map(str::to_string),
            comment: message.map(str::to_string),
            empty_layer: empty,
        });
        let mut layers = self.store.image_layers(&parent)?;
        if !empty {
            layers.push(NewLayer {
                diff_id: Digest::parse(&diffed.diff_id)?,
                blob: staged.digest.clone(),
                media_type: berth_store::images::MEDIA_OCI_LAYER.to_string(),
                blob_size: staged.size,
                size: diffed.size,
                staged_blob: Some(staged),
                staged_dir: None,
            });
        }
        let rec = self.store.commit_image(NewImage {
            config: cfg.to_bytes(),
            layers,
            parent: Some(parent.id.clone()),
            tags: target.iter().map(|r| r.full()).collect(),
            repo_digests: vec![],
            manifest: None,
        })?;
        Ok(rec.id)
    }

    /// `export`: the container's merged filesystem as a tar.
    pub fn export_container(&self, word: &str, out: &mut dyn Write) -> Result<()> {
        let c = self.container(word)?;
        let _m = self.temp_mount(&c)?;
        let opts = DiffOptions {
            exclude: mount_excludes(&c),
            id_unshift: crate::userns::dir_shift(&c.dir),
            ..DiffOptions::default()
        };
        write_layer(&c.rootfs(), out, &opts).context("writing the container's filesystem")?;
        Ok(())
    }

    /// `build -o type=tar|local`: an image's file system as BuildKit's
    /// exporters write it, read through a container that is created,
    /// exported and removed, never started.
    pub fn export_image_files(&self, image: &str, to: FilesTarget<'_>) -> Result<()> {
        let mut spec = crate::spec::ContainerSpec::new(image);
        spec.command = vec!["true".into()];
        spec.network = crate::spec::NetworkMode::None;
        let c = self.create_container(&spec, Default::default())?;
        let written = match to {
            FilesTarget::Tar(out) => self.export_container(&c.id, out),
            FilesTarget::Dir(dir) => self.export_container_into(&c.id, dir),
        };
        let removed = self.remove_container(&c.id, true, true);
        written?;
        removed
    }

    /// [`Self::export_container`] unpacked under `dir` (made if missing),
    /// streamed through a pipe.
    fn export_container_into(&self, word: &str, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (reader, mut writer) = std::io::pipe().context("making a pipe")?;
        std::thread::scope(|s| {
            let export = s.spawn(move || self.export_container(word, &mut writer));
            let mut ar = tar::Archive::new(reader);
            ar.set_preserve_permissions(true);
            let unpacked = ar
                .unpack(dir)
                .with_context(|| format!("writing the image's files to {}", dir.display()));
            export.join().map_err(|_| anyhow!("the export thread panicked"))??;
            unpacked?;
            Ok(())
        })
    }
}

/// Where [`Engine::export_image_files`] writes an image's file system.
pub enum FilesTarget<'a> {
    /// A tar stream.
    Tar(&'a mut dyn Write),
    /// The files themselves, under this directory.
    Dir(&'a Path),
}

/// The container's mount targets, relative (left out of commit and diff).
fn mount_excludes(c: &Container) -> Vec<String> {
    c.cfg
        .mounts
        .iter()
        .map(|m| m.target.trim_matches('/').to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(x) if !x.as_os_str().is_empty() => x.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Directories (relative) the runtime made in the container's upper dir
/// only to hold its files: an image without /etc gets one for /etc/hosts.
/// Docker keeps those in its init layer, so they are no change of the
/// container's: `diff` does not show them and `commit` leaves them out.
fn runtime_made_dirs(upper: &Path, lowers: &[PathBuf]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in RUNTIME_PATHS {
        let Some((dir, _)) = r.rsplit_once('/') else { continue };
        if out.iter().any(|d| d == dir)
            || !upper.join(dir).is_dir()
            || lowers.iter().any(|l| l.join(dir).symlink_metadata().is_ok())
        {
            continue;
        }
        let only_runtime = std::fs::read_dir(upper.join(dir)).is_ok_and(|rd| {
            rd.flatten().all(|e| {
                let rel = format!("{dir}/{}", e.file_name().to_string_lossy());
                RUNTIME_PATHS.contains(&rel.as_str())
            })
        });
        if only_runtime {
            out.push(dir.to_string());
        }
    }
    out
}

fn parent_str(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rsplit_once('/') {
        Some((a, _)) if !a.is_empty() => a.to_string(),
        _ => "/".to_string(),
    }
}

fn walk_upper(
    upper: &Path,
    rel: &str,
    lowers: &[PathBuf],
    excluded: &[String],
    out: &mut Vec<(char, String)>,
) -> Result<()> {
    let dir = if rel.is_empty() {
        upper.to_path_buf()
    } else {
        upper.join(rel)
    };
    let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(()) };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if RUNTIME_PATHS.contains(&r.as_str()) || excluded.contains(&r) {
            continue;
        }
        let p = e.path();
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        if md.file_type().is_char_device() && md.rdev() == 0 {
            out.push(('D', format!("/{r}")));
            continue;
        }
        let in_lower = lowers.iter().any(|l| std::fs::symlink_metadata(l.join(&r)).is_ok());
        out.push((if in_lower { 'C' } else { 'A' }, format!("/{r}")));
        if md.is_dir() {
            walk_upper(upper, &r, lowers, excluded, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(base_name("/a/b"), "b");
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("b"), "b");
        assert_eq!(parent_str("/a/b"), "/a");
        assert_eq!(parent_str("/a"), "/");
    }

    #[test]
    fn in_root_resolution_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", t.path().join("escape")).unwrap();
        std::fs::create_dir(t.path().join("tmp")).unwrap();
        std::fs::write(t.path().join("tmp/inside"), "x").unwrap();
        // /escape/tmp/inside resolves to <root>/tmp/inside, not the host's /tmp.
        let fd = open_in_root(t.path(), "/escape/tmp/inside", true).unwrap();
        assert_eq!(std::fs::read_to_string(fd_path(&fd)).unwrap(), "x");
        assert!(open_in_root(t.path(), "/escape/etc/passwd", true).is_err());
    }
}
