//! `build`: the engine side of the builder. Prepares the context (a
//! directory, or a tar read from stdin and unpacked into staging), reads the
//! Dockerfile and hands everything to `berth_build::executor`, which owns
//! the stage graph, the steps and the cache.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{bail, Result};
use anyhow::Context;
use berth_build::context::BuildContext;
use berth_build::dockerfile::Diagnostic;
use berth_build::executor::{self, BuildError, BuildOptions, BuildOutcome};
use berth_store::Reference;

use super::Engine;
use crate::progress::{Event, Progress};

/// Where the context comes from.
pub enum ContextSource<'a> {
    /// A directory on this machine.
    Dir(PathBuf),
    /// `-`: a tar on stdin.
    Tar(Box<dyn Read + 'a>),
    /// No context at all: `build -` given a Dockerfile alone (its text in
    /// [`BuildRequest::inline`]), built with an empty context as Docker does.
    Empty,
}

/// A build request as the fronts make it.
pub struct BuildRequest<'a> {
    /// The build context.
    pub context: ContextSource<'a>,
    /// `-f`: a path (relative to the current directory); default
    /// `<context>/Dockerfile` (for a tar: `Dockerfile` inside it).
    pub file: Option<PathBuf>,
    /// The Dockerfile's text itself, when it is no file (read from stdin,
    /// compose's `dockerfile_inline`): `file` is not read, and messages
    /// name it `Dockerfile`.
    pub inline: Option<String>,
    /// Names as the user wrote them (`bb`, `bb:1`).
    pub tags: Vec<String>,
    /// Build args, labels, target, cache settings… (the builder's options).
    pub options: BuildOptions,
}

/// The Dockerfile's text, its display name and its path.
fn read_dockerfile(context_dir: &Path, file: Option<&Path>) -> anyhow::Result<(String, String, PathBuf)> {
    let (path, name) = match file {
        Some(f) => {
            let shown = f.to_string_lossy().into_owned();
            let p = if f.is_absolute() || f.exists() {
                f.to_path_buf()
            } else {
                context_dir.join(f)
            };
            (p, shown)
        }
        None => (context_dir.join("Dockerfile"), "Dockerfile".to_string()),
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("unable to read the Dockerfile {}", path.display()))?;
    Ok((text, name, path))
}

/// [`read_dockerfile`] for a context that came as a tar: the Dockerfile is
/// the tar's, never a file the process sees from its own directory or
/// reaches through a link out of the context.
fn read_staged_dockerfile(context_dir: &Path, file: Option<&Path>) -> anyhow::Result<(String, String, PathBuf)> {
    let name = file.unwrap_or(Path::new("Dockerfile"));
    let path = context_dir.join(name);
    let real = path
        .canonicalize()
        .with_context(|| format!("unable to read the Dockerfile {}", name.display()))?;
    if !real.starts_with(context_dir.canonicalize()?) {
        bail!("the Dockerfile {} is outside the build context", name.display());
    }
    let text =
        std::fs::read_to_string(&real).with_context(|| format!("unable to read the Dockerfile {}", name.display()))?;
    Ok((text, name.to_string_lossy().into_owned(), path))
}

/// A finished build, or why it failed (with the failing step's position).
pub enum BuildResult {
    /// The image was built.
    Built(BuildOutcome),
    /// A step failed; where and why (and the last good step's image).
    Failed(BuildError),
}

impl Engine {
    /// `berth build --check`: parse and lint, run nothing.
    pub fn build_check(
        &self,
        context_dir: &Path,
        file: Option<&Path>,
    ) -> Result<(String, Result<Vec<Diagnostic>, BuildError>)> {
        let (text, name, _) = read_dockerfile(context_dir, file)?;
        Ok((name.clone(), executor::check(&text, &name)))
    }

    /// Build an image. Every step, cache hit and line of output goes to
    /// `progress` as an [`Event::Build`]; the image made as an
    /// [`Event::Image`].
    pub fn build(&self, req: BuildRequest<'_>, progress: &Progress) -> Result<BuildResult> {
        let mut opts = req.options;
        // `--platform a,b`: one build per platform, joined under each name.
        let mut platforms = Vec::new();
        for p in opts.platform.as_deref().unwrap_or_default().split(',') {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let parsed =
                berth_store::Platform::parse(p).map_err(|e| crate::EngineError::invalid_value(e.to_string()))?;
            if !platforms.contains(&parsed) {
                platforms.push(parsed);
            }
        }
        let staged_context;
        let staged = matches!(req.context, ContextSource::Tar(_) | ContextSource::Empty);
        let (context_dir, file) = match req.context {
            ContextSource::Dir(d) => {
                if !d.is_dir() {
                    bail!(
                        "unable to prepare context: path {:?} not found",
                        d.display().to_string()
                    );
                }
                (d, req.file)
            }
            ContextSource::Tar(r) => {
                let dir = self.store.staging().path("context")?;
                berth_archive::perms::create_dir(&dir, berth_archive::perms::PRIVATE_DIR)?;
                staged_context = StagedDir(dir.clone());
                let name = req
                    .file
                    .as_ref()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "Dockerfile".into());
                BuildContext::from_tar(r, &staged_context.0, &name).context("reading the build context from stdin")?;
                (dir, Some(PathBuf::from(name)))
            }
            ContextSource::Empty => {
                let dir = self.store.staging().path("empty-context")?;
                berth_archive::perms::create_dir(&dir, berth_archive::perms::PRIVATE_DIR)?;
                staged_context = StagedDir(dir);
                (staged_context.0.clone(), None)
            }
        };
        let (text, name, path) = if let Some(text) = req.inline {
            let path = context_dir.join("Dockerfile");
            (text, "Dockerfile".to_string(), path)
        } else if staged {
            read_staged_dockerfile(&context_dir, file.as_deref())?
        } else {
            read_dockerfile(&context_dir, file.as_deref())?
        };
        opts.context_dir = context_dir;
        opts.dockerfile_text = text;
        opts.dockerfile_name = name;
        opts.dockerfile_path = path;
        let mut tags = Vec::new();
        for t in &req.tags {
            let r = Reference::parse(t).with_context(|| format!("invalid tag {t:?}"))?;
            tags.push(r.full());
        }
        opts.tags = tags;
        if opts.runtime.is_none() {
            opts.runtime = self.runtime.clone();
        }
        if opts.fetch_base.is_none() {
            // Pulls run on the builder's threads: each opens its own engine.
            let root = self.root().to_path_buf();
            let runtime = self.runtime.clone();
            opts.fetch_base = Some(executor::BaseFetcher(std::sync::Arc::new(move |image, platform| {
                let engine = Engine::open(&root, runtime.clone()).map_err(|e| format!("{e:#}"))?;
                let pull = super::registry::PullOptions {
                    platform: platform.map(String::from),
                    ..Default::default()
                };
                let (lines, text) = Progress::collect_lines();
                engine.pull(image, &pull, &lines).map_err(|e| format!("{e:#}"))?;
                let text = text.lock().unwrap_or_else(|p| p.into_inner()).clone();
                Ok(text)
            })));
        }
        if opts.download.is_none() {
            // ADD <url>: the registry crate's plain downloader, which obeys
            // BERTH_ALLOWED_REGISTRIES like every other request.
            opts.download = Some(executor::Downloader(std::sync::Arc::new(|url, out| {
                let d = berth_registry::fetch::download_meta(url, out).map_err(|e| e.to_string())?;
                Ok(executor::UrlMeta {
                    last_modified: d.last_modified,
                })
            })));
        }
        let sink = progress.clone();
        let mut steps = executor::Progress::to_events(std::sync::Arc::new(move |e| sink.emit(Event::Build(e))));
        if platforms.len() > 1 {
            let res = self.build_platforms(opts.clone(), &platforms, &mut steps);
            steps.finish();
            return res.inspect(|r| {
                if let BuildResult::Built(o) = r {
                    progress.emit(Event::Image {
                        id: o.id.to_string(),
                        name: opts.tags.first().cloned(),
                    });
                }
            });
        }
        let res = executor::build(&self.store, &opts, &mut steps);
        steps.finish();
        Ok(match res {
            Ok(o) => {
                for t in &opts.tags {
                    self.record_image_event("tag", o.id.as_str(), &berth_store::reference::familiar_name(t));
                }
                progress.emit(Event::Image {
                    id: o.id.to_string(),
                    name: opts.tags.first().cloned(),
                });
                BuildResult::Built(o)
            }
            Err(e) => BuildResult::Failed(e),
        })
    }
}

impl Engine {
    /// `build --platform a,b,…`: each platform built in turn (a foreign
    /// one's RUN steps through its binfmt handler; a stage that does not
    /// depend on the target platform is a cache hit after the first), and
    /// every name given the images side by side, one variant per platform
    /// (an image index when pushed or saved). The outcome is the host's
    /// variant's, else the last platform's.
    fn build_platforms(
        &self,
        mut opts: BuildOptions,
        platforms: &[berth_store::Platform],
        steps: &mut executor::Progress,
    ) -> Result<BuildResult> {
        let tags = std::mem::take(&mut opts.tags);
        opts.fresh_steps = Some(Default::default());
        let mut variants = Vec::new();
        let mut chosen: Option<BuildOutcome> = None;
        let mut have_host = false;
        for p in platforms {
            let mut o = opts.clone();
            o.platform = Some(p.to_string());
            o.label_prefix = Some(p.to_string());
            let out = match executor::build(&self.store, &o, steps) {
                Ok(out) => out,
                Err(e) => return Ok(BuildResult::Failed(e)),
            };
            variants.push(berth_store::Variant {
                platform: p.clone(),
                image_id: out.id.clone(),
            });
            let host = p.same_os_arch(&berth_store::Platform::host());
            if host || !have_host {
                chosen = Some(out);
            }
            have_host |= host;
        }
        for t in &tags {
            self.store.set_variants(t, &variants)?;
        }
        Ok(BuildResult::Built(chosen.expect("at least two platforms")))
    }
}

/// A staged directory removed when dropped.
struct StagedDir(PathBuf);

impl Drop for StagedDir {
    fn drop(&mut self) {
        berth_store::staging::remove_tree(&self.0);
    }
}
