//! One stage: FROM (a prior stage, a stored image or scratch, then the base
//! image's ONBUILD triggers), then each instruction expanded with the
//! stage's ENV and declared ARGs, keyed, and served from the cache or run.

use std::collections::BTreeMap;

use berth_store::{Digest, ImageConfig};

use super::cache::step_key;
use super::commit::{commit_step, diff_upper, scratch_config, LayerOut};
use super::image_cache::ClassicStep;
use super::{step_copy, step_run, store_err, BuildError, Builder, ErrorKind, StageOut, UsedStep};
use crate::dockerfile::expand::{expand_from, map_lookup, vars_too_long, MAX_VARS_LEN};
use crate::dockerfile::{expand_instruction, Instruction, InstructionKind, ShellOrExec};
use crate::metadata::{apply_metadata, env_get, MetaState};

/// Where a stage is: its last image and what the next step builds on.
pub(crate) struct Cur {
    pub image: Option<Digest>,
    pub config: ImageConfig,
    pub meta: MetaState,
    /// ARGs declared in this stage that have a value.
    pub args: BTreeMap<String, String>,
    /// Stage name for output prefixes.
    pub label: String,
    /// The platform the stage is built for (normalised `[os, arch, variant]`).
    pub platform: [String; 3],
    /// Build without the cache (`--no-cache`, `--no-cache-filter`).
    pub no_cache: bool,
}

impl Cur {
    /// Variables for expansion: ENV wins over ARG, as in Docker.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        let env = self.config.config.env.as_deref().unwrap_or(&[]);
        move |k: &str| env_get(env, k).map(String::from).or_else(|| self.args.get(k).cloned())
    }

    /// ARG values a RUN sees as environment variables (those ENV does not set).
    pub fn run_args(&self) -> Vec<(String, String)> {
        let env = self.config.config.env.as_deref().unwrap_or(&[]);
        self.args
            .iter()
            .filter(|(k, _)| env_get(env, k).is_none())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The cache key of a step on this stage's current image. A step on
    /// nothing (`FROM scratch`) depends on the platform its config carries.
    pub fn step_key(&self, instruction: &str, extra: &[(&str, String)]) -> String {
        if self.image.is_some() {
            return step_key(self.image.as_ref(), instruction, extra);
        }
        let mut extra = extra.to_vec();
        extra.push(("scratch-platform", super::platform_string(&self.platform)));
        step_key(None, instruction, &extra)
    }
}

/// Build one stage to its end.
pub(crate) fn run_stage(b: &Builder<'_>, s: usize) -> Result<StageOut, BuildError> {
    let df = b.df;
    let stage = &df.stages[s];
    let label = b.stage_label(s);
    let esc = df.directives.escape;
    let p = b.progress;
    // A stage starts (and says so) once every stage it needs is done: its
    // output then never interleaves with theirs.
    for dep in df.dependencies_with_args(s, &b.opts.build_args) {
        b.wait_stage(dep)?;
    }
    let base_out = match df.base_stage(s, &b.opts.build_args) {
        Some(dep) => Some(b.wait_stage(dep)?),
        None => None,
    };
    p.step(&label, b.step_number(s, 0), b.total_steps, stage.from_original.trim());
    let at = |e: BuildError| e.at(b.file(), stage.from_line, stage.from_column);
    let globals = map_lookup(&b.globals);
    let (base, platform) = expand_from(stage, &globals, esc).map_err(|e| BuildError::from(e.with_file(b.file())))?;
    // `FROM --platform=…`: this stage's own platform ($BUILDPLATFORM for a
    // stage that cross-compiles natively).
    let stage_platform = match platform {
        None => None,
        Some(p) if p.trim().is_empty() => {
            return Err(at(BuildError::other(format!(
                "empty platform value from expression {}",
                stage.platform.as_deref().unwrap_or_default()
            ))))
        }
        Some(p) => Some(
            super::normalise_platform(&p).map_err(|e| at(BuildError::other(format!("FROM --platform={p}: {e}"))))?,
        ),
    };
    let mut cur = Cur {
        image: None,
        config: scratch_config(&b.target_platform),
        meta: MetaState::default(),
        args: BTreeMap::new(),
        label: label.clone(),
        platform: b.target_platform.clone(),
        no_cache: b.stage_uncached(s),
    };
    // `--build-context NAME=…`: FROM NAME means what the context names: an
    // image, or a directory's files as the whole root (as BuildKit's local
    // contexts).
    let mut dir_base = None;
    let base = match b.opts.context_images.get(&base) {
        Some(image) if base_out.is_none() => image.clone(),
        _ if base_out.is_none() && b.opts.context_dirs.contains_key(&base) => {
            dir_base = Some(base);
            "scratch".to_string()
        }
        _ => base,
    };
    if let Some(out) = base_out {
        // A stage built on a stage keeps its platform, as in BuildKit.
        cur.image = out.image;
        cur.config = out.config;
        cur.platform = out.platform;
    } else if base.eq_ignore_ascii_case("scratch") {
        // Nothing to start from: the target platform's empty config.
    } else {
        if base.is_empty() {
            return Err(at(BuildError::other(
                "FROM names no image (the expanded value is empty)",
            )));
        }
        let want = stage_platform
            .clone()
            .or_else(|| b.explicit_platform.then(|| b.target_platform.clone()));
        let want_text = want.as_ref().map(super::platform_string);
        let want_platform = want_text.as_deref();
        let want_p = want_text.as_deref().and_then(|t| berth_store::Platform::parse(t).ok());
        // Missing for the platform wanted: a name the store has only for
        // other platforms is pulled for this one.
        let missing = match &want_p {
            Some(wp) => !matches!(b.store.resolve_image_for(&base, wp), Ok(Some(_))),
            None => b.store.resolve_image(&base).is_err(),
        };
        let mut pull_error = None;
        if b.opts.pull || missing {
            match &b.opts.fetch_base {
                Some(fetch) => match (fetch.0)(&base, want_platform) {
                    Ok(text) => {
                        for line in text.lines() {
                            p.line(&label, line);
                        }
                    }
                    Err(e) => pull_error = Some(e),
                },
                None if b.opts.pull => {
                    p.line(
                        &label,
                        &format!(" ---> --pull: no registry client here; using the local {base}"),
                    );
                }
                None => {}
            }
        }
        let rec = lease_resolved_for(b, &base, want_p.as_ref()).map_err(|e| {
            let mut err = at(BuildError::other(match &pull_error {
                Some(pe) => format!("failed to pull {base}: {pe}"),
                None => format!(
                    "pull access denied for {base}, repository does not exist or may require authorization: No such image: {base}"
                ),
            }));
            err.hint = Some(format!(
                "check the name, `berth login` to its registry, or `berth load`/`berth import` it first ({e})"
            ));
            err
        })?;
        cur.config = b
            .store
            .image_config(&rec.id)
            .map_err(|e| at(store_err("reading the base image", e)))?;
        let have = config_platform(&cur.config);
        if let Some(want) = &want {
            if (&have[0], &have[1]) != (&want[0], &want[1]) {
                p.line(
                    &label,
                    &format!(
                        " ---> [Warning] {base} is {}, not the requested {}",
                        super::platform_string(&have),
                        super::platform_string(want)
                    ),
                );
            }
        }
        // Without a platform asked for, the stage is the base image's
        // (BuildKit's automatic platform).
        cur.platform = want.unwrap_or(have);
        cur.image = Some(rec.id);
    }
    // Docker's builders (classic and BuildKit) give a stage whose base has
    // no PATH the default one; its steps, and the image, have it.
    let env = cur.config.config.env.get_or_insert_with(Vec::new);
    if cur.config.os != "windows" && !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={}", berth_runtime::spec::DEFAULT_PATH));
    }
    if let Some(name) = dir_base {
        let c = crate::dockerfile::CopyArgs {
            sources: vec![".".into()],
            dest: "/".into(),
            from: Some(name.clone()),
            ..Default::default()
        };
        let x = Instruction {
            line: stage.from_line,
            end_line: stage.from_line,
            column: stage.from_column,
            keyword: "COPY".into(),
            original: format!("COPY --from={name} . /"),
            kind: InstructionKind::Copy(c.clone()),
        };
        // It says its own ` ---> ID` (or that the cache had it).
        super::step_copy::copy_step(b, &mut cur, &x, &c, false).map_err(at)?;
    } else if let Some(id) = &cur.image {
        p.done(&label, id.short());
    } else {
        p.settled(&label);
    }
    // ONBUILD triggers of the base image run now and are not inherited.
    if let Some(triggers) = cur.config.config.on_build.take().filter(|t| !t.is_empty()) {
        p.line(
            &label,
            &format!(
                " # Executing {} build trigger{}",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ),
        );
        for t in triggers {
            let parsed = crate::dockerfile::parse(&format!("FROM scratch\n{t}\n"), b.file())
                .map_err(|e| at(BuildError::other(format!("ONBUILD trigger {t:?}: {}", e.message))))?;
            for ins in parsed.stages.into_iter().flat_map(|st| st.instructions) {
                let mut ins = ins;
                ins.line = stage.from_line;
                ins.column = stage.from_column;
                if matches!(ins.kind, InstructionKind::Onbuild(_)) {
                    return Err(at(BuildError::other("ONBUILD triggers may not contain ONBUILD")));
                }
                exec_instruction(b, &mut cur, &ins).map_err(|e| e.good(cur.image.as_ref()))?;
            }
        }
    }
    for (i, ins) in stage.instructions.iter().enumerate() {
        if b.aborted() {
            return Err(BuildError::new(super::ErrorKind::Aborted, "aborted"));
        }
        p.step(&label, b.step_number(s, i + 1), b.total_steps, ins.original.trim());
        exec_instruction(b, &mut cur, ins)
            .map_err(|e| e.at(b.file(), ins.line, ins.column).good(cur.image.as_ref()))?;
    }
    if s == b.target && !b.opts.labels.is_empty() {
        let pairs: Vec<(String, String)> = b.opts.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let text = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", quote_if_needed(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let original = format!("LABEL {text}");
        p.step(&label, b.total_steps, b.total_steps, &original);
        let ins = Instruction {
            line: 0,
            end_line: 0,
            column: 0,
            keyword: "LABEL".into(),
            original,
            kind: InstructionKind::Label(pairs),
        };
        // Already literal: expansion must not touch `$` in the values.
        meta_step(b, &mut cur, &ins).map_err(|e| e.good(cur.image.as_ref()))?;
    }
    Ok(StageOut {
        image: cur.image,
        config: cur.config,
        platform: cur.platform,
    })
}

/// The normalised platform an image config says it is for.
fn config_platform(c: &ImageConfig) -> [String; 3] {
    let text = format!("{}/{}/{}", c.os, c.architecture, c.variant.as_deref().unwrap_or(""));
    super::normalise_platform(text.trim_end_matches('/')).unwrap_or_else(|_| {
        [
            c.os.clone(),
            c.architecture.clone(),
            c.variant.clone().unwrap_or_default(),
        ]
    })
}

/// With `--platform`, the built image says it is for the target platform
/// whatever its last stage was built on (a `FROM --platform=$BUILDPLATFORM`
/// stage, a base image of another platform), as BuildKit writes it: os and
/// architecture always, the variant when the target has one or the
/// architecture changed. Commits an image with only that change when one
/// is needed; else `id` as it is.
pub(crate) fn commit_target_platform(
    b: &Builder<'_>,
    id: Digest,
    mut config: ImageConfig,
) -> Result<Digest, BuildError> {
    if !b.explicit_platform {
        return Ok(id);
    }
    let [os, arch, variant] = &b.target_platform;
    let same_os_arch = &config.os == os && &config.architecture == arch;
    let mut changed = config.clone();
    changed.os = os.clone();
    changed.architecture = arch.clone();
    if !variant.is_empty() || !same_os_arch {
        changed.variant = Some(variant.clone()).filter(|v| !v.is_empty());
    }
    if changed.to_bytes() == config.to_bytes() {
        return Ok(id);
    }
    config = changed;
    super::commit::commit_config(b.store, &id, &config)
}

fn quote_if_needed(v: &str) -> String {
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\') {
        format!("{v:?}")
    } else {
        v.to_string()
    }
}

/// Expand and run one instruction on `cur`.
pub(crate) fn exec_instruction(b: &Builder<'_>, cur: &mut Cur, ins: &Instruction) -> Result<(), BuildError> {
    let esc = b.df.directives.escape;
    let x = {
        let vars = cur.lookup();
        expand_instruction(ins, &vars, esc).map_err(|e| BuildError::from(e.with_file(b.file())))?
    };
    match &x.kind {
        InstructionKind::Arg(decls) => {
            let mut shown = Vec::new();
            for d in decls {
                let value = b
                    .opts
                    .build_args
                    .get(&d.name)
                    .cloned()
                    .or_else(|| d.default.clone())
                    // Else the global scope's value: a global ARG's, or a
                    // predefined platform ARG's (BuildKit's scoping).
                    .or_else(|| b.globals.get(&d.name).cloned());
                b.consumed_args
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(d.name.clone());
                match &value {
                    Some(v) => {
                        cur.args.insert(d.name.clone(), v.clone());
                        shown.push(format!("{}={v}", d.name));
                    }
                    None => {
                        cur.args.remove(&d.name);
                        shown.push(d.name.clone());
                    }
                }
            }
            check_vars(b, cur, ins)?;
            let text = format!("ARG {}", shown.join(" "));
            let created_by = format!("{}  {}", nop_prefix(&cur.config), ins.original.trim());
            let config = cur.config.clone();
            let classic = ClassicStep {
                created_by: created_by.clone(),
                config: config.clone(),
            };
            cached_step(b, cur, cur.step_key(&text, &[]), Some(classic), move |_| {
                Ok((config, None, created_by))
            })
        }
        InstructionKind::Env(_) => {
            meta_step(b, cur, &x)?;
            check_vars(b, cur, ins)
        }
        InstructionKind::Run { .. } => step_run::run_step(b, cur, &x),
        InstructionKind::Copy(c) => step_copy::copy_step(b, cur, &x, c, false),
        InstructionKind::Add(c) => step_copy::copy_step(b, cur, &x, c, true),
        _ => meta_step(b, cur, &x),
    }
}

/// The stage's ARG and ENV values together stay within [`MAX_VARS_LEN`]
/// (each instruction's words are bounded by the expander; this bounds
/// their sum over the stage).
fn check_vars(b: &Builder<'_>, cur: &Cur, ins: &Instruction) -> Result<(), BuildError> {
    let env: usize = cur.config.config.env.iter().flatten().map(|e| e.len()).sum();
    let args: usize = cur.args.iter().map(|(k, v)| k.len() + v.len()).sum();
    if env + args > MAX_VARS_LEN {
        return Err(BuildError::new(ErrorKind::Dockerfile, vars_too_long()).at(b.file(), ins.line, ins.column));
    }
    Ok(())
}

/// A metadata instruction (already expanded): a config change, no layer.
fn meta_step(b: &Builder<'_>, cur: &mut Cur, x: &Instruction) -> Result<(), BuildError> {
    let mut config = cur.config.clone();
    let mut meta = cur.meta.clone();
    apply_metadata(&x.kind, &x.original, &mut config, &mut meta);
    let created_by = nop_created_by(x, &config);
    let key_text = match &x.kind {
        InstructionKind::Onbuild(_) => x.original.trim().to_string(),
        k => format!("{k:?}"),
    };
    let key = cur.step_key(&key_text, &[]);
    cur.meta = meta;
    let is_workdir = matches!(x.kind, InstructionKind::Workdir(_));
    let classic = ClassicStep {
        created_by: created_by.clone(),
        config: config.clone(),
    };
    cached_step(b, cur, key, Some(classic), move |cur| {
        // WORKDIR creates the directory when the image lacks it.
        let layer = if is_workdir {
            workdir_layer(b, cur, &config.config.working_dir)?
        } else {
            None
        };
        Ok((config, layer, created_by))
    })
}

/// A layer holding `dir` (and its missing parents) when the parent image
/// does not have it; existing parents keep their mode, owner and mtime.
/// Paths through a symlink are left to the runtime.
fn workdir_layer(b: &Builder<'_>, cur: &Cur, dir: &str) -> Result<Option<LayerOut>, BuildError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let comps: Vec<&str> = dir.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if comps.is_empty() {
        return Ok(None);
    }
    let lowers = super::step_run::image_lowers(b, cur.image.as_ref(), "reading the parent image")?;
    let find = |rel: &str| lowers.iter().find_map(|l| std::fs::symlink_metadata(l.join(rel)).ok());
    if find(&comps.join("/")).is_some() {
        return Ok(None);
    }
    let sd = super::step_run::StepDir::create(&b.build_dir, &super::new_step_id())?;
    let upper = sd.dir.join("upper");
    let io = |e: std::io::Error| store_err("creating the WORKDIR", e);
    berth_archive::perms::create_dir(&upper, berth_archive::perms::CONTENT_DIR).map_err(io)?;
    let mut rel = String::new();
    for c in comps {
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str(c);
        let p = upper.join(&rel);
        match find(&rel) {
            Some(m) if m.is_dir() => {
                std::fs::create_dir(&p).map_err(io)?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m.mode() & 0o7777)).map_err(io)?;
                let _ = std::os::unix::fs::chown(&p, Some(m.uid()), Some(m.gid()));
                if let Ok(t) = m.modified() {
                    let _ = std::fs::File::open(&p).and_then(|f| f.set_modified(t));
                }
            }
            Some(_) => return Ok(None),
            None => {
                std::fs::create_dir(&p).map_err(io)?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
            }
        }
    }
    diff_upper(b.store, &upper, b.opts.source_date_epoch, Vec::new())
}

/// The classic builder's history prefix: the stage's shell as it is then
/// (`/bin/sh -c`, or what `SHELL` made it) and `#(nop)`.
pub(crate) fn nop_prefix(config: &ImageConfig) -> String {
    let shell = match config.config.shell.as_deref() {
        Some(s) if !s.is_empty() => s.join(" "),
        _ => "/bin/sh -c".to_string(),
    };
    format!("{shell} #(nop)")
}

/// Go's `%q` of a `[]string`: `["echo a" "b"]`.
fn go_quoted_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| berth_template::gofmt::quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// Docker's history text for a metadata step, as its classic builder
/// writes it (Go's formatting of each value): `/bin/sh -c #(nop)  CMD
/// ["sh" "-c"]`, `VOLUME [/data]`, `EXPOSE 443 80`.
fn nop_created_by(x: &Instruction, config: &ImageConfig) -> String {
    let prefix = nop_prefix(config);
    let q = |v: &Option<Vec<String>>| go_quoted_list(v.as_deref().unwrap_or(&[]));
    let rest = || {
        let t = x.original.trim();
        t.split_once(char::is_whitespace)
            .map(|(_, r)| r.trim().to_string())
            .unwrap_or_default()
    };
    let text = match &x.kind {
        InstructionKind::Cmd(_) => format!("CMD {}", q(&config.config.cmd)),
        InstructionKind::Entrypoint(_) => format!("ENTRYPOINT {}", q(&config.config.entrypoint)),
        InstructionKind::Shell(v) => format!("SHELL [{}]", v.join(" ")),
        InstructionKind::Env(pairs) => format!(
            "ENV {}",
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        InstructionKind::Label(pairs) => format!(
            "LABEL {}",
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        InstructionKind::Workdir(w) => return format!("{prefix} WORKDIR {w}"),
        InstructionKind::User(u) => format!("USER {u}"),
        InstructionKind::Expose(p) => {
            let mut ports = p.clone();
            ports.sort();
            format!("EXPOSE {}", ports.join(" "))
        }
        InstructionKind::Volume(v) => format!("VOLUME [{}]", v.join(" ")),
        InstructionKind::Stopsignal(s) => format!("STOPSIGNAL {s}"),
        InstructionKind::Healthcheck(_) => match &config.config.healthcheck {
            Some(h) if h.test.first().map(String::as_str) == Some("NONE") => "HEALTHCHECK NONE".to_string(),
            Some(h) => format!(
                "HEALTHCHECK &{{{} \"{}\" \"{}\" \"{}\" \"{}\" '\\x{:02x}'}}",
                go_quoted_list(&h.test),
                go_duration(h.interval),
                go_duration(h.timeout),
                go_duration(h.start_period),
                go_duration(h.start_interval),
                h.retries
            ),
            None => format!("HEALTHCHECK {}", rest()),
        },
        other => format!("{} {}", other.name(), rest()),
    };
    format!("{prefix}  {text}")
}

/// Nanoseconds as Go prints a `time.Duration` (`5s`, `1m30s`, `0s`).
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let secs = ns as f64 / 1e9;
    let (h, rem) = ((secs / 3600.0).floor() as i64, secs % 3600.0);
    let (m, s) = ((rem / 60.0).floor() as i64, rem % 60.0);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    let s_txt = format!("{s}");
    out.push_str(&s_txt);
    out.push('s');
    out
}

/// The history text of a RUN: `|2 A=1 B=2 /bin/sh -c make` (ARGs in effect
/// first, as the classic builder records them).
pub(crate) fn run_created_by(argv: &[String], args: &[(String, String)]) -> String {
    let cmd = argv.join(" ");
    if args.is_empty() {
        cmd
    } else {
        let a: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("|{} {} {cmd}", a.len(), a.join(" "))
    }
}

/// The shell a shell-form command runs with.
pub(crate) fn shell_argv(cmd: &ShellOrExec, config: &ImageConfig) -> Vec<String> {
    crate::metadata::to_argv(cmd, config.config.shell.as_ref())
}

/// Serve a step from the cache, or run `make` and commit what it returns
/// (the new config, the layer, the history text).
pub(crate) fn cached_step<F>(
    b: &Builder<'_>,
    cur: &mut Cur,
    key: String,
    classic: Option<ClassicStep>,
    make: F,
) -> Result<(), BuildError>
where
    F: FnOnce(&mut Cur) -> Result<(ImageConfig, Option<LayerOut>, String), BuildError>,
{
    cached_step_committed(b, cur, key, classic, |cur| {
        let (config, layer, created_by) = make(cur)?;
        commit_step(
            b.store,
            &b.lease,
            cur.image.as_ref(),
            config,
            layer,
            &created_by,
            b.opts.source_date_epoch,
        )
    })
}

/// [`cached_step`] for a step that commits its image itself (a step of
/// several layers): `commit` returns the image and its config. `classic`
/// is what the step adds to its parent when its history text holds all
/// its inputs: then an image of `cache_from_images` may serve it.
pub(crate) fn cached_step_committed<F>(
    b: &Builder<'_>,
    cur: &mut Cur,
    key: String,
    classic: Option<ClassicStep>,
    commit: F,
) -> Result<(), BuildError>
where
    F: FnOnce(&mut Cur) -> Result<(Digest, ImageConfig), BuildError>,
{
    let p = b.progress;
    let fresh = b.opts.fresh_steps.as_ref();
    let hit = if cur.no_cache {
        fresh.and_then(|f| f.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned())
    } else {
        let mut hit = b
            .store
            .cache_get(&key)
            .map_err(|e| store_err("reading the build cache", e))?;
        if hit.is_none() {
            if let Some(lookup) = &b.opts.cache_lookup {
                // A remote cache that fails only costs this step's time.
                match (lookup.0)(&key) {
                    Ok(found) => hit = found,
                    Err(e) => p.line(&cur.label, &format!("[Warning] --cache-from: {e}; running the step")),
                }
            }
        }
        if let (None, Some(step)) = (&hit, classic.as_ref().filter(|_| !b.cache_sources.is_empty())) {
            if let Some((id, _)) = super::image_cache::find(b, cur.image.as_ref(), &cur.config, step)? {
                // Found once: the store's own cache has it from now on.
                b.store
                    .cache_put(&key, &id)
                    .map_err(|e| store_err("recording the build cache", e))?;
                hit = Some(id);
            }
        }
        hit
    };
    // A hit is held before it is used; one removed meanwhile is a miss.
    let hit = hit.filter(|id| b.lease.image(id).is_ok());
    let ran = hit.is_none();
    let (id, config) = match hit {
        Some(id) => {
            let config = b
                .store
                .image_config(&id)
                .map_err(|e| store_err("reading a cached step", e))?;
            p.cached(&cur.label, id.short());
            (id, config)
        }
        None => {
            let (id, config) = commit(cur)?;
            b.store
                .cache_put(&key, &id)
                .map_err(|e| store_err("recording the build cache", e))?;
            if let Some(f) = fresh {
                f.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.clone(), id.clone());
            }
            p.done(&cur.label, id.short());
            (id, config)
        }
    };
    cur.image = Some(id.clone());
    cur.config = config;
    b.used
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(UsedStep { key, image: id });
    let mut counts = b.counts.lock().unwrap_or_else(|p| p.into_inner());
    if ran {
        counts.1 += 1;
    } else {
        counts.0 += 1;
    }
    Ok(())
}

/// The image `word` names, held by the build's lease (resolved again if it
/// was removed between the lookup and the lease).
pub(crate) fn lease_resolved(b: &Builder<'_>, word: &str) -> berth_store::Result<berth_store::ImageRecord> {
    loop {
        let rec = b.store.resolve_image(word)?;
        match b.lease.image(&rec.id) {
            Err(berth_store::StoreError::ImageNotFound(_)) => continue,
            r => return r.map(|()| rec),
        }
    }
}

/// [`lease_resolved`] for a platform: the name's variant for it when the
/// store has one, else whatever the name means.
pub(crate) fn lease_resolved_for(
    b: &Builder<'_>,
    word: &str,
    platform: Option<&berth_store::Platform>,
) -> berth_store::Result<berth_store::ImageRecord> {
    let Some(p) = platform else {
        return lease_resolved(b, word);
    };
    loop {
        let Some(rec) = b.store.resolve_image_for(word, p)? else {
            return lease_resolved(b, word);
        };
        match b.lease.image(&rec.id) {
            Err(berth_store::StoreError::ImageNotFound(_)) => continue,
            r => return r.map(|()| rec),
        }
    }
}

/// A `FROM scratch` target with no steps still needs an image.
pub(crate) fn commit_scratch(b: &Builder<'_>, config: &ImageConfig) -> Result<Digest, BuildError> {
    let (id, _) = commit_step(
        b.store,
        &b.lease,
        None,
        config.clone(),
        None,
        "/bin/sh -c #(nop)  FROM scratch",
        b.opts.source_date_epoch,
    )?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_texts_follow_docker() {
        assert_eq!(go_duration(5_000_000_000), "5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(
            run_created_by(&["/bin/sh".into(), "-c".into(), "echo hi".into()], &[]),
            "/bin/sh -c echo hi"
        );
        assert_eq!(
            run_created_by(
                &["/bin/sh".into(), "-c".into(), "make".into()],
                &[("V".into(), "1".into())]
            ),
            "|1 V=1 /bin/sh -c make"
        );
        let df = crate::dockerfile::parse("FROM scratch\nCMD [\"sh\"]\nWORKDIR /app\n", "D").unwrap();
        let mut cfg = ImageConfig::default();
        let mut st = MetaState::default();
        let ins = &df.stages[0].instructions[0];
        apply_metadata(&ins.kind, &ins.original, &mut cfg, &mut st);
        assert_eq!(nop_created_by(ins, &cfg), "/bin/sh -c #(nop)  CMD [\"sh\"]");
        // Go's formatting, and the shell SHELL set, as the classic builder.
        cfg.config.cmd = Some(vec!["echo a b".into(), "x\"y".into()]);
        assert_eq!(
            nop_created_by(ins, &cfg),
            "/bin/sh -c #(nop)  CMD [\"echo a b\" \"x\\\"y\"]"
        );
        cfg.config.shell = Some(vec!["/bin/bash".into(), "-ec".into()]);
        assert_eq!(
            nop_created_by(ins, &cfg),
            "/bin/bash -ec #(nop)  CMD [\"echo a b\" \"x\\\"y\"]"
        );
        cfg.config.shell = None;
        let ins = &df.stages[0].instructions[1];
        assert_eq!(nop_created_by(ins, &cfg), "/bin/sh -c #(nop) WORKDIR /app");
    }
}
