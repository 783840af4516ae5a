//! Build execution: the stages a target needs (others never run), run in
//! parallel where they do not depend on each other; each step expanded,
//! keyed, looked up in the cache and, on a miss, executed and committed as a
//! real image whose parent is the previous step's image, so every step has
//! an ID `berth run` can start.
//!
//! Layout:
//! - [`mod@self`]: options, errors, the stage scheduler ([`build`]).
//! - `stage`: one stage's instructions (expansion, ARG scoping, metadata).
//! - `step_run`: RUN in a container of the parent image (overlay, mounts).
//! - `step_copy`: COPY/ADD through the context module.
//! - `remote`: `ADD <url>` sources (through the injected downloader).
//! - `commit`: step images (config, history, layers).
//! - [`cache`]: step keys, `--cache-to` / `--cache-from` (OCI layout dirs).
//! - `image_cache`: images as the classic builder's `--cache-from IMAGE`.
//! - [`progress`]: build output: the classic builder's plain lines, or a
//!   live terminal view.
//!
//! Side effects live here and nowhere in `dockerfile/`. A failed step leaves
//! nothing behind: its mounts are undone, its directory under
//! `$ROOT/build/` removed and its staged blob dropped.

pub mod cache;
mod commit;
mod image_cache;
mod layer_dir;
mod link_reuse;
pub mod progress;
mod remote;
mod secrets;
mod stage;
mod step_copy;
mod step_run;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use berth_archive::perms;
use berth_runtime::OciRuntime;
use berth_store::{Digest, ImageConfig, Store};

use crate::context::{BuildContext, StatCache};
use crate::dockerfile::{self, Dockerfile, ParseError};

pub use progress::{BuildEvent, EventSink, Progress, ProgressMode};
pub use secrets::{SecretSource, SecretValue};

/// Everything `berth build` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The context directory (a tar context is unpacked by the caller).
    pub context_dir: PathBuf,
    /// The Dockerfile's text and the name used in messages (`Dockerfile`).
    pub dockerfile_text: String,
    pub dockerfile_name: String,
    /// Where the Dockerfile is (for `Dockerfile.dockerignore`).
    pub dockerfile_path: PathBuf,
    /// Fully qualified names to tag the result with.
    pub tags: Vec<String>,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub no_cache: bool,
    /// `--no-cache-filter`: stages (by name or index) built without the
    /// cache; the others may still hit it.
    pub no_cache_stages: Vec<String>,
    pub pull: bool,
    pub labels: BTreeMap<String, String>,
    /// `default` (own network namespace, loopback only), `none`, `host`.
    pub network: String,
    /// `--secret id=…,src=FILE|env=VAR`: a file, or the value itself
    /// (written to a private file for the build only; see [`SecretSource`]).
    pub secrets: BTreeMap<String, SecretSource>,
    /// `--ssh ID=SOCKET`: SSH agent sockets for `RUN --mount=type=ssh`, by ID
    /// (`default` when the mount names none); absolute paths.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `os/arch[/variant]`
    pub platform: Option<String>,
    /// `--add-host NAME:IP`: lines added to every RUN's /etc/hosts, as
    /// (name, address); they are not part of the cache key, as in Docker.
    pub extra_hosts: Vec<(String, String)>,
    /// `--shm-size`: the size of every RUN's /dev/shm in bytes (None: 64 MiB).
    pub shm_size: Option<u64>,
    /// `--ulimit`: the resource limits of every RUN, as (name, soft, hard).
    pub ulimits: Vec<(String, u64, u64)>,
    /// `--build-context NAME=docker-image://REF`: `FROM NAME`, `COPY
    /// --from=NAME` and `RUN --mount=from=NAME` use the image REF.
    pub context_images: BTreeMap<String, String>,
    /// `--build-context NAME=DIR`: `COPY --from=NAME` copies from this
    /// directory (absolute), as from the main context; `FROM NAME` starts
    /// from its files as the whole root.
    pub context_dirs: BTreeMap<String, PathBuf>,
    /// `--annotation KEY=VALUE`: annotations of the image's manifest (as
    /// BuildKit's), carried by push and by save's OCI layout.
    pub annotations: BTreeMap<String, String>,
    pub source_date_epoch: Option<i64>,
    pub cache_from: Vec<PathBuf>,
    /// Images in the store whose history serves as a cache, as the classic
    /// builder's `--cache-from IMAGE` (see the `image_cache` module); names the
    /// store does not hold are skipped.
    pub cache_from_images: Vec<String>,
    pub cache_to: Option<PathBuf>,
    /// Preferred OCI runtime (probed when None).
    pub runtime: Option<String>,
    /// Fetches a base image that is missing (or always, with `pull`); the
    /// engine supplies it, since pulling lives above this crate.
    pub fetch_base: Option<BaseFetcher>,
    /// Downloads the sources of `ADD <url>`; the engine supplies it, since
    /// HTTP lives above this crate.
    pub download: Option<Downloader>,
    /// Steps built earlier in this same build request (key → image): with
    /// `no_cache`, a multi-platform build still builds a step that does not
    /// depend on the target platform once, as BuildKit does.
    pub fresh_steps: Option<FreshSteps>,
    /// Put before every stage's name in the progress (`linux/arm64`: one
    /// platform of a multi-platform build), and always show the names.
    pub label_prefix: Option<String>,
    /// Asked for a step key the store does not know (`--cache-from
    /// type=registry`): brings the cached step image into the store and
    /// returns its ID, or None when the remote cache has no such step.
    pub cache_lookup: Option<CacheLookup>,
}

/// Steps made by one build request, shared by its per-platform builds.
pub type FreshSteps = std::sync::Arc<std::sync::Mutex<HashMap<String, Digest>>>;

/// What a download told besides the body.
#[derive(Debug, Clone, Default)]
pub struct UrlMeta {
    /// The `Last-Modified` header, as sent.
    pub last_modified: Option<String>,
}

/// `(url, body sink) -> headers`, or why the URL could not be had.
pub type DownloadFn = dyn Fn(&str, &mut dyn std::io::Write) -> Result<UrlMeta, String> + Send + Sync;

/// A shareable downloader (see [`BuildOptions::download`]).
#[derive(Clone)]
pub struct Downloader(pub std::sync::Arc<DownloadFn>);

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Downloader")
    }
}

/// `(image, platform) -> progress text` or why the image could not be had.
pub type FetchFn = dyn Fn(&str, Option<&str>) -> Result<String, String> + Send + Sync;

/// A shareable base-image fetcher (see [`BuildOptions::fetch_base`]).
#[derive(Clone)]
pub struct BaseFetcher(pub std::sync::Arc<FetchFn>);

impl std::fmt::Debug for BaseFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BaseFetcher")
    }
}

/// `step key -> Some(image ID)` once that image is in the store, None for
/// a miss, or why the remote cache could not be read.
pub type CacheLookupFn = dyn Fn(&str) -> Result<Option<Digest>, String> + Send + Sync;

/// A shareable remote-cache lookup (see [`BuildOptions::cache_lookup`]).
#[derive(Clone)]
pub struct CacheLookup(pub std::sync::Arc<CacheLookupFn>);

impl std::fmt::Debug for CacheLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheLookup")
    }
}

/// A build step served from the cache or committed, as a cache export
/// records it: the step's cache key and its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedStep {
    pub key: String,
    pub image: Digest,
}

/// What a successful build produced.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub id: Digest,
    /// Steps that were served from the cache / that ran.
    pub cached_steps: usize,
    pub executed_steps: usize,
    /// Build args given but never declared.
    pub unused_args: Vec<String>,
    /// Every step of the build, in the order they finished (for cache exports).
    pub steps: Vec<CachedStep>,
}

/// Why a build failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The Dockerfile does not parse or expand.
    Dockerfile,
    /// A step's command failed.
    Step,
    /// Anything else (missing image, missing file, I/O).
    Other,
    /// Stopped because another stage failed.
    Aborted,
}

/// A build failure, with the place in the Dockerfile it belongs to and the
/// last step image that was good (boxed: errors travel through every step).
#[derive(Debug, Clone)]
pub struct BuildError(Box<BuildErrorInfo>);

/// What a [`BuildError`] says.
#[derive(Debug, Clone)]
pub struct BuildErrorInfo {
    pub kind: ErrorKind,
    pub message: String,
    pub file: String,
    /// 1-based; 0 when the error belongs to no line.
    pub line: usize,
    pub column: usize,
    pub hint: Option<String>,
    pub last_good: Option<Digest>,
    /// The failing command's exit code (Step errors).
    pub exit_code: Option<i32>,
}

impl std::ops::Deref for BuildError {
    type Target = BuildErrorInfo;
    fn deref(&self) -> &BuildErrorInfo {
        &self.0
    }
}

impl std::ops::DerefMut for BuildError {
    fn deref_mut(&mut self) -> &mut BuildErrorInfo {
        &mut self.0
    }
}

impl BuildError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BuildError(Box::new(BuildErrorInfo {
            kind,
            message: message.into(),
            file: String::new(),
            line: 0,
            column: 0,
            hint: None,
            last_good: None,
            exit_code: None,
        }))
    }

    pub fn other(message: impl Into<String>) -> Self {
        BuildError::new(ErrorKind::Other, message)
    }

    fn aborted() -> Self {
        BuildError::new(ErrorKind::Aborted, "aborted: another stage failed")
    }

    /// A failed command with its exit code.
    pub(crate) fn step(message: impl Into<String>, code: i32) -> Self {
        let mut e = BuildError::new(ErrorKind::Step, message);
        e.exit_code = Some(code);
        e
    }

    /// Attach the position if none is set yet.
    pub fn at(mut self, file: &str, line: usize, column: usize) -> Self {
        if self.line == 0 {
            self.file = file.to_string();
            self.line = line;
            self.column = column;
        }
        self
    }

    fn good(mut self, last: Option<&Digest>) -> Self {
        if self.last_good.is_none() {
            self.last_good = last.cloned();
        }
        self
    }
}

impl From<ParseError> for BuildError {
    fn from(e: ParseError) -> Self {
        let mut b = BuildError::new(ErrorKind::Dockerfile, e.message);
        b.file = e.file;
        b.line = e.line;
        b.column = e.column;
        b.hint = e.hint;
        b
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ErrorKind::Dockerfile && self.line > 0 {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        } else {
            write!(f, "{}", self.message)?;
            if self.line > 0 {
                write!(f, "\n  at {}:{}:{}", self.file, self.line, self.column)?;
            }
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BuildError {}

fn store_err(what: &str, e: impl fmt::Display) -> BuildError {
    BuildError::other(format!("{what}: {e}"))
}

/// The result of one stage, for the stages that build on it.
#[derive(Clone, Debug)]
pub(crate) struct StageOut {
    /// The stage's last image (None: `FROM scratch` with nothing committed).
    pub image: Option<Digest>,
    pub config: ImageConfig,
    /// The platform the stage was built for (normalised), which a stage
    /// built `FROM` it inherits.
    pub platform: [String; 3],
}

/// Stage results as they come in; stages wait here for their dependencies.
struct Board {
    results: Mutex<HashMap<usize, Result<StageOut, ()>>>,
    cv: Condvar,
}

impl Board {
    fn wait(&self, stage: usize) -> Result<StageOut, BuildError> {
        let mut r = self.results.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(res) = r.get(&stage) {
                return res.clone().map_err(|_| BuildError::aborted());
            }
            r = self.cv.wait(r).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn post(&self, stage: usize, res: Result<StageOut, ()>) {
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stage, res);
        self.cv.notify_all();
    }

    fn failed(&self) -> bool {
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|r| r.is_err())
    }
}

/// Posts a failure for its stage unless forgotten (the stage thread
/// panicked before posting).
struct PostOnDrop<'a> {
    board: &'a Board,
    stage: usize,
}

impl Drop for PostOnDrop<'_> {
    fn drop(&mut self) {
        self.board.post(self.stage, Err(()));
    }
}

/// One cache entry this build used or made (for `--cache-to`).
#[derive(Debug, Clone)]
pub(crate) struct UsedStep {
    pub key: String,
    pub image: Digest,
}

/// Shared by every stage thread of one build.
pub(crate) struct Builder<'a> {
    pub store: &'a Store,
    pub opts: &'a BuildOptions,
    pub df: &'a Dockerfile,
    pub progress: &'a Progress,
    pub runtime: OciRuntime,
    pub context: BuildContext,
    /// The `--build-context NAME=DIR` contexts, by name.
    pub named_dirs: BTreeMap<String, BuildContext>,
    pub stat_cache: Mutex<StatCache>,
    pub build_dir: PathBuf,
    board: Board,
    /// Step numbering: the first step number of each needed stage, and the total.
    step_base: HashMap<usize, usize>,
    pub total_steps: usize,
    pub target: usize,
    /// The stages that run.
    needed: BTreeSet<usize>,
    /// The global scope: the predefined platform ARGs and the global ARGs.
    pub globals: BTreeMap<String, String>,
    /// The platform the build is for (normalised `[os, arch, variant]`).
    pub target_platform: [String; 3],
    /// Whether `--platform` named it (else it is this host's, and a stage
    /// keeps its base image's platform, as in BuildKit).
    pub explicit_platform: bool,
    pub consumed_args: Mutex<BTreeSet<String>>,
    pub used: Mutex<Vec<UsedStep>>,
    pub counts: Mutex<(usize, usize)>,
    /// The files `RUN --mount=type=secret` binds (private ones removed
    /// when the build ends).
    pub secrets: secrets::SecretFiles,
    /// Holds the base and step images this build stands on, so `prune`
    /// and `rmi` beside it leave them be.
    pub lease: berth_store::Lease<'a>,
    /// The images of `cache_from_images`, held by `lease`.
    pub(crate) cache_sources: Vec<image_cache::CacheSource>,
}

impl Builder<'_> {
    pub fn stage_label(&self, s: usize) -> String {
        let name = self.df.stages[s].name.clone().unwrap_or_else(|| format!("stage-{s}"));
        match &self.opts.label_prefix {
            Some(p) => format!("{p} {name}"),
            None => name,
        }
    }

    /// Whether stage `s` is built without the cache (`--no-cache`, or
    /// `--no-cache-filter` naming it).
    pub fn stage_uncached(&self, s: usize) -> bool {
        self.opts.no_cache
            || self
                .opts
                .no_cache_stages
                .iter()
                .any(|f| self.df.stage_by_name_or_index(f).is_some_and(|st| st.index == s))
    }

    pub fn step_number(&self, stage: usize, offset: usize) -> usize {
        self.step_base.get(&stage).copied().unwrap_or(0) + offset
    }

    pub fn wait_stage(&self, s: usize) -> Result<StageOut, BuildError> {
        if !self.needed.contains(&s) {
            // Only possible when a name expands differently at run time than
            // the plan saw it (e.g. through a base image's ENV).
            return Err(BuildError::other(format!(
                "stage {:?} is not part of this build's plan: name stages literally or through ARGs",
                self.stage_label(s)
            )));
        }
        self.board.wait(s)
    }

    pub fn aborted(&self) -> bool {
        self.board.failed()
    }

    pub fn file(&self) -> &str {
        &self.df.file
    }
}

/// A platform `os/arch[/variant]` in containerd's normal form, as BuildKit
/// writes it into the platform ARGs and image configs (the one reading of
/// `--platform`, [`berth_store::Platform`]), as `[os, arch, variant]`.
pub fn normalise_platform(p: &str) -> Result<[String; 3], String> {
    let p = berth_store::Platform::parse(p).map_err(|e| e.to_string())?;
    Ok([p.os, p.architecture, p.variant.unwrap_or_default()])
}

/// `os/arch[/variant]` of normalised parts.
pub fn platform_string(p: &[String; 3]) -> String {
    if p[2].is_empty() {
        format!("{}/{}", p[0], p[1])
    } else {
        format!("{}/{}/{}", p[0], p[1], p[2])
    }
}

/// This host as a build platform (BuildKit's `BUILDPLATFORM`).
pub fn build_platform() -> [String; 3] {
    ["linux".into(), ImageConfig::host_architecture().into(), String::new()]
}

/// The predefined platform ARGs (`TARGETARCH`, `BUILDPLATFORM`, …) for a
/// build whose target is `target` (normalised, see [`normalise_platform`]):
/// in scope on FROM lines, and in a stage once it declares them with ARG.
pub fn predefined_args(target: &[String; 3]) -> BTreeMap<String, String> {
    let build = build_platform();
    let mut m = BTreeMap::new();
    for (prefix, p) in [("TARGET", target), ("BUILD", &build)] {
        m.insert(format!("{prefix}PLATFORM"), platform_string(p));
        m.insert(format!("{prefix}OS"), p[0].clone());
        m.insert(format!("{prefix}ARCH"), p[1].clone());
        m.insert(format!("{prefix}VARIANT"), p[2].clone());
    }
    m
}

/// Whether some two of `stages` can run at the same time (neither needs
/// the other, directly or not).
fn has_parallel_stages(df: &Dockerfile, stages: &[usize], args: &BTreeMap<String, String>) -> bool {
    let reach: HashMap<usize, BTreeSet<usize>> = stages
        .iter()
        .map(|&s| (s, df.needed_for_with_args(s, args).into_iter().collect()))
        .collect();
    for (i, &a) in stages.iter().enumerate() {
        for &b in &stages[i + 1..] {
            if !reach[&a].contains(&b) && !reach[&b].contains(&a) {
                return true;
            }
        }
    }
    false
}

/// Parse and lint only (`--check`): the diagnostics, in file order.
pub fn check(text: &str, file: &str) -> Result<Vec<dockerfile::Diagnostic>, BuildError> {
    let df = dockerfile::parse(text, file)?;
    let mut d = dockerfile::lint::check(&df);
    d.sort_by_key(|x| (x.line, x.column));
    Ok(d)
}

/// Build: parse, plan, run the needed stages, tag the result.
pub fn build(store: &Store, opts: &BuildOptions, progress: &mut Progress) -> Result<BuildOutcome, BuildError> {
    let mut df = dockerfile::parse(&opts.dockerfile_text, &opts.dockerfile_name)?;
    let requested = opts.platform.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let target_platform = match requested {
        None => build_platform(),
        Some(p) if p.contains(',') => {
            return Err(BuildError::other(format!(
                "--platform {p}: the executor builds one platform at a time (the engine builds each of a list)"
            )))
        }
        Some(p) => normalise_platform(p).map_err(|e| BuildError::other(format!("--platform: {e}")))?,
    };
    df.predefined_args = predefined_args(&target_platform);
    let globals = df
        .checked_global_arg_values(&opts.build_args)
        .map_err(|e| BuildError::from(e.with_file(&df.file)))?;
    if df.stages.is_empty() {
        return Err(BuildError::other(format!(
            "{}: the Dockerfile has no FROM instruction: a build needs at least one stage",
            opts.dockerfile_name
        )));
    }
    let target = match df.target_stage(opts.target.as_deref()) {
        Some(t) => t,
        None => {
            let t = opts.target.as_deref().unwrap_or_default();
            let names: Vec<&str> = df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
            let mut e = BuildError::other(format!("target stage \"{t}\" could not be found"));
            if !names.is_empty() {
                e.hint = Some(format!("stages in {}: {}", opts.dockerfile_name, names.join(", ")));
            }
            return Err(e);
        }
    };
    let cycle = df.dependency_cycle(&opts.build_args);
    if !cycle.is_empty() {
        let st = &df.stages[cycle[0]];
        let names: Vec<String> = cycle
            .iter()
            .map(|&s| df.stages[s].name.clone().unwrap_or_else(|| s.to_string()))
            .collect();
        return Err(BuildError::other(format!(
            "the stages {} depend on each other in a cycle",
            names.join(" → ")
        ))
        .at(&df.file, st.from_line, st.from_column));
    }
    let needed = df.needed_for_with_args(target, &opts.build_args);
    let mut step_base = HashMap::new();
    let mut total = 0;
    for &s in &needed {
        step_base.insert(s, total + 1);
        total += 1 + df.stages[s].instructions.len();
    }
    if !opts.labels.is_empty() {
        total += 1;
    }
    progress.set_prefix(opts.label_prefix.is_some() || has_parallel_stages(&df, &needed, &opts.build_args));

    let runtime = OciRuntime::select(opts.runtime.as_deref(), &store.root().join("runtime"))
        .map_err(|e| store_err("choosing an OCI runtime", e))?;
    let build_dir = store.root().join("build");
    perms::create_dir_all(&build_dir, perms::PRIVATE_DIR).map_err(|e| store_err("creating the build directory", e))?;
    berth_store::sweep::sweep_dead_steps(&build_dir);
    let context = BuildContext::from_dir(&opts.context_dir, &opts.dockerfile_path)
        .map_err(|e| store_err("reading the build context", e))?;
    let mut named_dirs = BTreeMap::new();
    for (name, dir) in &opts.context_dirs {
        let ctx = BuildContext::from_dir(dir, &dir.join("Dockerfile"))
            .map_err(|e| store_err(&format!("reading the build context {name:?}"), e))?;
        named_dirs.insert(name.clone(), ctx);
    }
    let stat_cache = StatCache::load(&build_dir.join("statcache"));
    for dir in &opts.cache_from {
        // As with docker, a cache that cannot be read only costs time.
        if let Err(e) = cache::import(store, dir) {
            progress.line(
                "",
                &format!("[Warning] --cache-from {}: {e}; building without it", dir.display()),
            );
        }
    }

    let mut consumed: BTreeSet<String> = df.global_args.iter().map(|a| a.name.clone()).collect();
    consumed.extend(df.predefined_args.keys().cloned());

    let b = Builder {
        store,
        opts,
        df: &df,
        progress,
        runtime,
        context,
        named_dirs,
        stat_cache: Mutex::new(stat_cache),
        build_dir: build_dir.clone(),
        board: Board {
            results: Mutex::new(HashMap::new()),
            cv: Condvar::new(),
        },
        step_base,
        total_steps: total,
        target,
        needed: needed.iter().copied().collect(),
        globals,
        target_platform,
        explicit_platform: requested.is_some(),
        consumed_args: Mutex::new(consumed),
        used: Mutex::new(Vec::new()),
        counts: Mutex::new((0, 0)),
        secrets: secrets::SecretFiles::new(store, &opts.secrets)?,
        lease: store
            .lease("build")
            .map_err(|e| store_err("leasing the build's images", e))?,
        cache_sources: Vec::new(),
    };
    let mut b = b;
    b.cache_sources = image_cache::sources(&b);
    let b = b;

    let errors: Mutex<Vec<BuildError>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for &s in &needed {
            let b = &b;
            let errors = &errors;
            scope.spawn(move || {
                // Even a panicking stage must post, or its dependents wait forever.
                let guard = PostOnDrop {
                    board: &b.board,
                    stage: s,
                };
                let res = stage::run_stage(b, s);
                std::mem::forget(guard);
                match res {
                    Ok(out) => b.board.post(s, Ok(out)),
                    Err(e) => {
                        b.progress.failed(&b.stage_label(s), e.kind == ErrorKind::Aborted);
                        b.board.post(s, Err(()));
                        errors.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                    }
                }
            });
        }
    });
    // The stat cache is worth keeping even when the build failed.
    {
        let sc = b.stat_cache.lock().unwrap_or_else(|p| p.into_inner());
        if sc.is_dirty() {
            let _ = sc.save(&build_dir.join("statcache"));
        }
    }
    let mut errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    if !errors.is_empty() {
        // The first real failure, not the stages it stopped.
        errors.sort_by_key(|e| e.kind == ErrorKind::Aborted);
        return Err(errors.swap_remove(0));
    }
    let out = b.board.wait(target)?;
    let id = match out.image {
        Some(id) => id,
        None => stage::commit_scratch(&b, &out.config)?,
    };
    let id = stage::commit_target_platform(&b, id, out.config)?;
    if !opts.annotations.is_empty() {
        commit::annotate_manifest(store, &id, &opts.annotations)?;
    }
    for t in &opts.tags {
        store.tag(&id, t).map_err(|e| store_err("tagging", e))?;
    }
    let used = b.used.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(dir) = &opts.cache_to {
        cache::export(store, dir, &used).map_err(|e| store_err(&format!("--cache-to {}", dir.display()), e))?;
    }
    let consumed = b.consumed_args.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let unused_args = opts
        .build_args
        .keys()
        .filter(|k| !consumed.contains(*k) && !dockerfile::lint::PREDEFINED_ARGS.contains(&k.as_str()))
        .cloned()
        .collect();
    let (cached_steps, executed_steps) = *b.counts.lock().unwrap_or_else(|p| p.into_inner());
    Ok(BuildOutcome {
        id,
        cached_steps,
        executed_steps,
        unused_args,
        steps: used
            .into_iter()
            .map(|u| CachedStep {
                key: u.key,
                image: u.image,
            })
            .collect(),
    })
}

/// `$ROOT/build/<step-id>`: a step's working directory.
pub(crate) fn step_dir(build_dir: &Path, id: &str) -> PathBuf {
    build_dir.join(id)
}

/// A fresh 64-hex ID for a step's container.
pub(crate) fn new_step_id() -> String {
    use sha2::{Digest as _, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(now.as_nanos().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    if let Ok(b) = std::fs::read("/proc/sys/kernel/random/uuid") {
        h.update(b);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_stage_detection() {
        let df = dockerfile::parse(
            "FROM bb AS a\nRUN x\nFROM bb AS b\nRUN y\nFROM bb\nCOPY --from=a /x /\nCOPY --from=b /y /\n",
            "Dockerfile",
        )
        .unwrap();
        let args = BTreeMap::new();
        assert!(has_parallel_stages(&df, &df.needed_for(2), &args));
        let df = dockerfile::parse("FROM bb AS a\nFROM a AS b\nFROM b\n", "Dockerfile").unwrap();
        assert!(!has_parallel_stages(&df, &df.needed_for(2), &args));
    }

    #[test]
    fn predefined_platform_args_are_normalised_as_buildkit_writes_them() {
        let m = predefined_args(&normalise_platform("linux/arm64/v8").unwrap());
        assert_eq!(m["TARGETARCH"], "arm64");
        assert_eq!(m["TARGETVARIANT"], "", "arm64's v8 is implied");
        assert_eq!(m["TARGETPLATFORM"], "linux/arm64");
        assert_eq!(m["BUILDOS"], "linux");
        assert_eq!(m["BUILDARCH"], ImageConfig::host_architecture());
        assert_eq!(
            m["BUILDPLATFORM"],
            format!("linux/{}", ImageConfig::host_architecture())
        );
        assert_eq!(m["BUILDVARIANT"], "");
        let m = predefined_args(&normalise_platform("linux/arm").unwrap());
        assert_eq!(
            (m["TARGETPLATFORM"].as_str(), m["TARGETVARIANT"].as_str()),
            ("linux/arm/v7", "v7")
        );
        assert_eq!(m.len(), 8);
    }

    #[test]
    fn platforms_are_normalised_like_containerd() {
        let n = |p: &str| normalise_platform(p).map(|x| platform_string(&x));
        assert_eq!(n("linux/x86_64").unwrap(), "linux/amd64");
        assert_eq!(n("linux/amd64/v1").unwrap(), "linux/amd64");
        assert_eq!(n("linux/amd64/v3").unwrap(), "linux/amd64/v3");
        assert_eq!(n("linux/aarch64").unwrap(), "linux/arm64");
        assert_eq!(n("linux/armhf").unwrap(), "linux/arm/v7");
        assert_eq!(n("linux/arm/6").unwrap(), "linux/arm/v6");
        assert_eq!(n("linux/i386").unwrap(), "linux/386");
        assert_eq!(n("arm64").unwrap(), "linux/arm64");
        assert_eq!(n("Linux/ARM64").unwrap(), "linux/arm64");
        assert_eq!(
            n("linux").unwrap(),
            format!("linux/{}", ImageConfig::host_architecture())
        );
        for bad in ["", "linux/", "/arm64", "a/b/c/d"] {
            assert!(n(bad).unwrap_err().contains("expected os/arch[/variant]"), "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_place() {
        let e = BuildError::other("The command '/bin/sh -c exit 1' returned a non-zero code: 1").at("Dockerfile", 3, 1);
        assert_eq!(
            e.to_string(),
            "The command '/bin/sh -c exit 1' returned a non-zero code: 1\n  at Dockerfile:3:1"
        );
        let p: BuildError = dockerfile::parse("FROM bb\nRUNN x\n", "Dockerfile").unwrap_err().into();
        assert!(p.to_string().starts_with("Dockerfile:2:1: "), "{p}");
    }
}
