//! Loading a compose project as Docker Compose v2 does: find the files
//! (`-f`, `COMPOSE_FILE`, or `compose.yaml`… searched upwards, plus the
//! override file), read the environment (`--env-file` or `.env`, under the
//! process environment), and for each file: parse, substitute variables,
//! expand short syntax, resolve `extends` and `include`; then merge the files,
//! check every reference with its location, type the result, and normalise it
//! (names, default network, env files, profiles, implicit dependencies).
//!
//! Loading never creates anything and never changes the process: warnings
//! are returned for the caller to print.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::canonical::{self, PathBase};
use crate::de::from_node;
use crate::env::{project_environment, read_env_file};
use crate::error::{ComposeError, Loc};
use crate::interpolate::{unset_warning, Interpolator};
use crate::merge::merge;
use crate::model::Project;
use crate::yaml::{parse_documents, Key, Node, Value};

/// The file names compose looks for, in its order of preference.
pub const COMPOSE_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The override files read beside a discovered file.
pub const OVERRIDE_FILE_NAMES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// What the command line and the process say about which project to load.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `-f` files, in order (empty: `COMPOSE_FILE` or discovery).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `--env-file` (empty: `.env` in the project directory).
    pub env_files: Vec<PathBuf>,
    /// `--profile`.
    pub profiles: Vec<String>,
    /// The directory the command runs in.
    pub working_dir: PathBuf,
    /// The process environment.
    pub os_env: BTreeMap<String, String>,
}

impl Options {
    /// Options for this process: its working directory and environment.
    pub fn from_process() -> std::io::Result<Options> {
        Ok(Options {
            working_dir: std::env::current_dir()?,
            os_env: std::env::vars().collect(),
            ..Options::default()
        })
    }
}

/// A loaded project and what was learnt loading it.
#[derive(Debug)]
pub struct Loaded {
    /// The typed, normalised project (active services only).
    pub project: Project,
    /// The project directory.
    pub working_dir: PathBuf,
    /// The compose files read, absolute (the `-f` ones and the override).
    pub config_files: Vec<PathBuf>,
    /// The project environment (process over `.env`).
    pub environment: BTreeMap<String, String>,
    /// Every profile named by any service, active or not.
    pub all_profiles: BTreeSet<String>,
    /// Warnings in compose's words (`WARN[0000] …`), to print on stderr.
    pub warnings: Vec<String>,
}

/// Load the project `opts` describe.
pub fn load(opts: &Options) -> Result<Loaded, ComposeError> {
    let mut warnings = Vec::new();
    let base = absolute(
        &opts.working_dir,
        opts.project_directory.as_deref().unwrap_or(Path::new(".")),
    );
    let explicit_env_files: Vec<PathBuf> = opts.env_files.iter().map(|f| absolute(&opts.working_dir, f)).collect();
    let mut env = environment_in(&base, &explicit_env_files, &opts.os_env)?;

    let files = config_files(opts, &base, &env, &mut warnings)?;
    let project_dir = match &opts.project_directory {
        Some(_) => base.clone(),
        None => files[0].parent().unwrap_or(Path::new("/")).to_path_buf(),
    };
    if project_dir != base && explicit_env_files.is_empty() {
        env = environment_in(&project_dir, &[], &opts.os_env)?;
    }

    let home = opts.os_env.get("HOME").map(PathBuf::from);
    let mut reader = FileReader {
        env: &env,
        home: home.clone(),
        unset: Vec::new(),
        warnings: Vec::new(),
        stack: Vec::new(),
    };
    let mut root: Option<Node> = None;
    for file in &files {
        let tree = reader.read(file, &project_dir)?;
        match &mut root {
            None => root = Some(tree),
            Some(r) => merge(r, tree, ""),
        }
    }
    let mut root = root.expect("at least one file");
    warnings.append(&mut reader.warnings);
    warnings.extend(reader.unset.iter().map(|v| unset_warning(v)));

    let declared_name = root.remove("name").and_then(|n| n.as_scalar().map(str::to_string));
    let name = project_name(opts, &env, declared_name, &project_dir)?;

    add_implicit_dependencies(&mut root);
    check_references(&root)?;
    check_cycles(&root)?;

    let mut project: Project = from_node(&root, "")?;
    project.name = name;
    collect_extensions(&root, &mut project);

    let all_profiles = project
        .services
        .values()
        .flat_map(|s| s.profiles.iter().cloned())
        .collect();
    apply_profiles(&mut project, &profiles_enabled(opts, &env))?;
    normalise(&mut project, &env)?;

    Ok(Loaded {
        project,
        working_dir: project_dir,
        config_files: files,
        environment: env,
        all_profiles,
        warnings,
    })
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    canonical::clean(&cwd.join(p))
}

/// The environment for a project directory: explicit env files, or `.env` there.
fn environment_in(
    dir: &Path,
    explicit: &[PathBuf],
    os_env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ComposeError> {
    project_environment(os_env, &env_files_or_dotenv(dir, explicit.to_vec()))
}

/// `explicit` env files, or `.env` in `dir` when there is one.
fn env_files_or_dotenv(dir: &Path, explicit: Vec<PathBuf>) -> Vec<PathBuf> {
    let dotenv = dir.join(".env");
    if !explicit.is_empty() {
        explicit
    } else if dotenv.is_file() {
        vec![dotenv]
    } else {
        Vec::new()
    }
}

/// `-f`, else `COMPOSE_FILE`, else the first directory upwards holding a
/// compose file (and its override file).
fn config_files(
    opts: &Options,
    base: &Path,
    env: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>, ComposeError> {
    let named: Vec<PathBuf> = if !opts.files.is_empty() {
        opts.files.iter().map(|f| absolute(&opts.working_dir, f)).collect()
    } else if let Some(list) = env.get("COMPOSE_FILE").filter(|l| !l.is_empty()) {
        let sep = env.get("COMPOSE_PATH_SEPARATOR").map(String::as_str).unwrap_or(":");
        list.split(sep)
            .filter(|f| !f.is_empty())
            .map(|f| absolute(base, Path::new(f)))
            .collect()
    } else {
        Vec::new()
    };
    if !named.is_empty() {
        for f in &named {
            if !f.is_file() {
                return Err(ComposeError::FileNotFound(f.clone()));
            }
        }
        return Ok(named);
    }
    let mut dir = Some(base);
    while let Some(d) = dir {
        let found: Vec<&str> = COMPOSE_FILE_NAMES
            .iter()
            .copied()
            .filter(|n| d.join(n).is_file())
            .collect();
        if let Some(first) = found.first() {
            if found.len() > 1 {
                warnings.push(format!(
                    "WARN[0000] Found multiple config files with supported names: {}",
                    found
                        .iter()
                        .map(|n| d.join(n).display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                warnings.push(format!("WARN[0000] Using {}", d.join(first).display()));
            }
            let mut files = vec![d.join(first)];
            if let Some(o) = OVERRIDE_FILE_NAMES.iter().find(|n| d.join(n).is_file()) {
                files.push(d.join(o));
            }
            return Ok(files);
        }
        dir = d.parent();
    }
    Err(ComposeError::NoConfigFile)
}

/// `-p`, `COMPOSE_PROJECT_NAME`, `name:`, or the project directory's name.
fn project_name(
    opts: &Options,
    env: &BTreeMap<String, String>,
    declared: Option<String>,
    project_dir: &Path,
) -> Result<String, ComposeError> {
    let explicit = opts
        .project_name
        .clone()
        .or_else(|| env.get("COMPOSE_PROJECT_NAME").cloned())
        .filter(|n| !n.is_empty())
        .or(declared.filter(|n| !n.is_empty()));
    if let Some(name) = explicit {
        if !valid_project_name(&name) {
            return Err(ComposeError::Project(format!(
                "invalid project name {name:?}: must consist only of lowercase alphanumeric \
                 characters, hyphens, and underscores as well as start with a letter or number"
            )));
        }
        return Ok(name);
    }
    let dir_name = project_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = normalize_project_name(&dir_name);
    if name.is_empty() {
        return Err(ComposeError::Project(format!(
            "project name {dir_name:?} derived from the directory is empty once normalised: \
             set one with -p or `name:`"
        )));
    }
    Ok(name)
}

/// A directory name as a project name, as compose makes it: lower case, only
/// `a-z 0-9 _ -`, no leading `_` or `-`.
pub fn normalize_project_name(s: &str) -> String {
    let kept: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

/// `^[a-z0-9][a-z0-9_-]*$`.
pub fn valid_project_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn profiles_enabled(opts: &Options, env: &BTreeMap<String, String>) -> BTreeSet<String> {
    if !opts.profiles.is_empty() {
        return opts.profiles.iter().cloned().collect();
    }
    env.get("COMPOSE_PROFILES")
        .map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Reads one compose file into a canonical tree (extends and include resolved).
struct FileReader<'a> {
    env: &'a BTreeMap<String, String>,
    home: Option<PathBuf>,
    unset: Vec<String>,
    warnings: Vec<String>,
    /// Files being read, for `include`/`extends` cycles.
    stack: Vec<PathBuf>,
}

impl FileReader<'_> {
    /// Read `file`, relative paths resolved against `base_dir`.
    fn read(&mut self, file: &Path, base_dir: &Path) -> Result<Node, ComposeError> {
        if self.stack.iter().any(|f| f == file) {
            return Err(ComposeError::Project(format!(
                "include cycle: {} includes itself through {}",
                file.display(),
                self.stack
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" -> ")
            )));
        }
        let text = std::fs::read_to_string(file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ComposeError::FileNotFound(file.to_path_buf()),
            _ => ComposeError::Io {
                path: file.to_path_buf(),
                source: e,
            },
        })?;
        let name: Arc<Path> = Arc::from(file);
        let mut docs = parse_documents(&text, &name)?.into_iter();
        let mut root = docs
            .next()
            .unwrap_or_else(|| Node::new(Value::Null, &Loc::new(&name, 1, 1)));
        for doc in docs {
            merge(&mut root, doc, "");
        }
        let mut interp = Interpolator::new(self.env);
        interp.tree(&mut root, "")?;
        for v in interp.unset {
            if !self.unset.contains(&v) {
                self.unset.push(v);
            }
        }
        if root.remove("version").is_some() {
            self.warnings.push(format!(
                "WARN[0000] {}: the attribute `version` is obsolete, it will be ignored, \
                 please remove it to avoid potential confusion",
                file.display()
            ));
        }
        let base = PathBase {
            dir: base_dir,
            home: self.home.as_deref(),
        };
        canonical::file(&mut root, &base)?;
        self.stack.push(file.to_path_buf());
        let result = self
            .resolve_extends(&mut root, base_dir)
            .and_then(|()| self.resolve_includes(&mut root, base_dir));
        self.stack.pop();
        result?;
        Ok(root)
    }

    fn resolve_extends(&mut self, root: &mut Node, base_dir: &Path) -> Result<(), ComposeError> {
        let Some(services) = root.get("services").cloned() else {
            return Ok(());
        };
        let names: Vec<String> = services
            .as_map()
            .map(|m| m.iter().map(|(k, _)| k.name.clone()).collect())
            .unwrap_or_default();
        for name in names {
            let resolved = self.extended(&services, &name, base_dir, &mut Vec::new())?;
            if let Some(slot) = root.get_mut("services").and_then(|s| s.get_mut(&name)) {
                *slot = resolved;
            }
        }
        Ok(())
    }

    /// Service `name` of `services` with its `extends` chain applied.
    fn extended(
        &mut self,
        services: &Node,
        name: &str,
        base_dir: &Path,
        chain: &mut Vec<String>,
    ) -> Result<Node, ComposeError> {
        let mut svc = services.get(name).cloned().expect("service exists");
        let Some(ext) = svc.remove("extends") else {
            return Ok(svc);
        };
        let path = format!("services.{name}.extends");
        let Some(base_name) = ext.get("service").and_then(Node::as_scalar).map(str::to_string) else {
            return Err(ComposeError::invalid(
                &ext.loc,
                &path,
                "missing required key \"service\"",
            ));
        };
        let mut base = match ext.get("file").and_then(Node::as_scalar) {
            Some(f) => {
                let other = canonical::clean(&base_dir.join(f));
                let other_dir = other.parent().unwrap_or(Path::new("/")).to_path_buf();
                let tree = self.read(&other, &other_dir)?;
                tree.get("services")
                    .and_then(|s| s.get(&base_name))
                    .cloned()
                    .ok_or_else(|| {
                        ComposeError::invalid(
                            &ext.loc,
                            &path,
                            format!(
                                "cannot extend service {base_name:?}: no such service in {}",
                                other.display()
                            ),
                        )
                    })?
            }
            None => {
                if services.get(&base_name).is_none() {
                    return Err(ComposeError::invalid(
                        &ext.loc,
                        &path,
                        format!("cannot extend service {base_name:?}: no such service in this file"),
                    ));
                }
                if chain.iter().any(|c| c == &base_name) || base_name == name {
                    chain.push(name.to_string());
                    return Err(ComposeError::invalid(
                        &ext.loc,
                        &path,
                        format!("circular reference with extends: {} -> {base_name}", chain.join(" -> ")),
                    ));
                }
                chain.push(name.to_string());
                let b = self.extended(services, &base_name, base_dir, chain)?;
                chain.pop();
                b
            }
        };
        // The base's values are checked where they were written (its own
        // file and `services.BASE` path), as compose validates each file
        // before applying `extends`: after the merge an error would carry
        // the extending service's path.
        from_node::<crate::model::Service>(&base, &format!("services.{base_name}"))?;
        merge(&mut base, svc, &format!("services.{name}"));
        Ok(base)
    }

    fn resolve_includes(&mut self, root: &mut Node, base_dir: &Path) -> Result<(), ComposeError> {
        let Some(include) = root.remove("include") else {
            return Ok(());
        };
        let Value::Seq(items) = &include.value else {
            return Err(ComposeError::invalid(&include.loc, "include", "expected a list"));
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("include[{i}]");
            let (paths, project_dir, env_files) = match &item.value {
                Value::Scalar { text, .. } => (vec![text.clone()], None, Vec::new()),
                Value::Map(_) => {
                    let list = |key: &str| -> Vec<String> {
                        match item.get(key).map(|n| &n.value) {
                            Some(Value::Seq(s)) => s.iter().filter_map(|n| n.as_scalar().map(str::to_string)).collect(),
                            Some(Value::Scalar { text, .. }) => vec![text.clone()],
                            _ => Vec::new(),
                        }
                    };
                    let dir = item
                        .get("project_directory")
                        .and_then(Node::as_scalar)
                        .map(str::to_string);
                    (list("path"), dir, list("env_file"))
                }
                _ => return Err(ComposeError::invalid(&item.loc, &path, "expected a path or a mapping")),
            };
            if paths.is_empty() {
                return Err(ComposeError::invalid(&item.loc, &path, "missing required key \"path\""));
            }
            let files: Vec<PathBuf> = paths.iter().map(|p| canonical::clean(&base_dir.join(p))).collect();
            let inc_dir = match project_dir {
                Some(d) => canonical::clean(&base_dir.join(d)),
                None => files[0].parent().unwrap_or(Path::new("/")).to_path_buf(),
            };
            // The included project's own env files, under this project's environment.
            let explicit = env_files.iter().map(|f| canonical::clean(&base_dir.join(f))).collect();
            let env_paths = env_files_or_dotenv(&inc_dir, explicit);
            let inc_env = project_environment(self.env, &env_paths)?;
            let mut sub = FileReader {
                env: &inc_env,
                home: self.home.clone(),
                unset: Vec::new(),
                warnings: Vec::new(),
                stack: self.stack.clone(),
            };
            let mut included: Option<Node> = None;
            for f in &files {
                let tree = sub.read(f, &inc_dir)?;
                match &mut included {
                    None => included = Some(tree),
                    Some(t) => merge(t, tree, ""),
                }
            }
            self.unset.extend(sub.unset);
            self.warnings.extend(sub.warnings);
            let included = included.expect("at least one included file");
            add_included(root, included, &files[0], &item.loc)?;
        }
        Ok(())
    }
}

/// Add an included project's resources; a name defined on both sides is an error.
fn add_included(root: &mut Node, included: Node, from: &Path, loc: &Loc) -> Result<(), ComposeError> {
    let Value::Map(sections) = included.value else {
        return Ok(());
    };
    for (section, value) in sections {
        let Value::Map(entries) = value.value else {
            continue;
        };
        if root.get(&section.name).is_none() {
            root.insert(&section.name, Node::map(loc));
        }
        let target = root.get_mut(&section.name).expect("inserted");
        if !matches!(target.value, Value::Map(_)) {
            continue;
        }
        for (k, v) in entries {
            if target.get(&k.name).is_some() {
                return Err(ComposeError::invalid(
                    &k.loc,
                    &format!("{}.{}", section.name, k.name),
                    format!("defined both here and in the included file {}", from.display()),
                ));
            }
            target.as_map_mut().expect("map").push((k, v));
        }
    }
    Ok(())
}

/// `links`, `volumes_from` (service), and `network_mode`, `pid` and `ipc`
/// of `service:X` are dependencies too, as compose records them
/// (`restart: true`).
fn add_implicit_dependencies(root: &mut Node) {
    let Some(Value::Map(services)) = root.get_mut("services").map(|s| &mut s.value) else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        let mut implied: Vec<(String, Loc)> = Vec::new();
        if let Some(links) = svc.get("links").and_then(Node::as_seq) {
            for l in links {
                if let Some(t) = l.as_scalar() {
                    let target = t.split(':').next().unwrap_or(t);
                    implied.push((target.to_string(), l.loc.clone()));
                }
            }
        }
        if let Some(from) = svc.get("volumes_from").and_then(Node::as_seq) {
            for v in from {
                if let Some(t) = v.as_scalar() {
                    if t.starts_with("container:") {
                        continue;
                    }
                    let t = t.strip_prefix("service:").unwrap_or(t);
                    let name = t.split(':').next().unwrap_or(t);
                    implied.push((name.to_string(), v.loc.clone()));
                }
            }
        }
        for key in ["network_mode", "pid", "ipc"] {
            if let Some(mode) = svc.get(key) {
                if let Some(s) = mode.as_scalar().and_then(|m| m.strip_prefix("service:")) {
                    implied.push((s.to_string(), mode.loc.clone()));
                }
            }
        }
        if implied.is_empty() {
            continue;
        }
        if svc.get("depends_on").is_none() {
            let loc = implied[0].1.clone();
            svc.insert("depends_on", Node::map(&loc));
        }
        let deps = svc.get_mut("depends_on").expect("inserted");
        for (name, loc) in implied {
            if deps.get(&name).is_some() {
                continue;
            }
            let mut d = Node::map(&loc);
            d.insert("condition", Node::string("service_started", &loc));
            d.insert("restart", Node::plain("true", &loc));
            d.insert("required", Node::plain("true", &loc));
            if let Some(m) = deps.as_map_mut() {
                m.push((Key { name, loc }, d));
            }
        }
    }
}

/// Every service, volume, network, secret and config a service names must
/// exist; errors point at the reference.
fn check_references(root: &Node) -> Result<(), ComposeError> {
    let names = |section: &str| -> BTreeSet<String> {
        root.get(section)
            .and_then(Node::as_map)
            .map(|m| m.iter().map(|(k, _)| k.name.clone()).collect())
            .unwrap_or_default()
    };
    let services = names("services");
    let volumes = names("volumes");
    let networks = names("networks");
    let secrets = names("secrets");
    let configs = names("configs");
    let Some(svcs) = root.get("services").and_then(Node::as_map) else {
        return Ok(());
    };
    for (svc_key, svc) in svcs {
        let s = &svc_key.name;
        let here = |n: &Node, message: String| ComposeError::invalid(&n.loc, &format!("services.{s}"), message);
        if svc.get("image").is_none() && svc.get("build").is_none() {
            return Err(ComposeError::invalid(
                &svc_key.loc,
                &format!("services.{s}"),
                format!("service {s:?} has neither an image nor a build context specified"),
            ));
        }
        if let (Some(mode), Some(_)) = (svc.get("network_mode"), svc.get("networks")) {
            return Err(here(
                mode,
                format!("service {s:?} declares mutually exclusive `network_mode` and `networks`"),
            ));
        }
        if let Some(restart) = svc.get("restart") {
            let policy = restart.as_scalar().unwrap_or("");
            let ok = match policy.split_once(':') {
                Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
                Some(_) => false,
                None => matches!(policy, "no" | "always" | "on-failure" | "unless-stopped"),
            };
            if !ok {
                return Err(ComposeError::invalid(
                    &restart.loc,
                    &format!("services.{s}.restart"),
                    format!(
                        "expected one of no, always, on-failure[:MAX_RETRIES], unless-stopped, got {}",
                        restart.kind()
                    ),
                ));
            }
        }
        if let Some(pp) = svc.get("pull_policy") {
            let policy = pp.as_scalar().unwrap_or("");
            let ok = matches!(
                policy,
                "always" | "never" | "missing" | "if_not_present" | "build" | "refresh" | "daily" | "weekly"
            ) || policy
                .strip_prefix("every_")
                .is_some_and(|d| crate::units::parse_duration(d).is_some());
            if !ok {
                return Err(ComposeError::invalid(
                    &pp.loc,
                    &format!("services.{s}.pull_policy"),
                    format!(
                        "expected one of always, never, missing, if_not_present, build, refresh, daily, \
                         weekly or every_<duration>, got {}",
                        pp.kind()
                    ),
                ));
            }
        }
        if let Some(deps) = svc.get("depends_on").and_then(Node::as_map) {
            for (k, _) in deps {
                if !services.contains(&k.name) {
                    return Err(ComposeError::invalid(
                        &k.loc,
                        &format!("services.{s}.depends_on"),
                        format!("service {s:?} depends on undefined service {:?}", k.name),
                    ));
                }
            }
        }
        if let Some(vols) = svc.get("volumes").and_then(Node::as_seq) {
            for (i, v) in vols.iter().enumerate() {
                let is_volume = v.get("type").and_then(Node::as_scalar) == Some("volume");
                if let (true, Some(src)) = (is_volume, v.get("source").and_then(Node::as_scalar)) {
                    if !volumes.contains(src) {
                        return Err(ComposeError::invalid(
                            &v.loc,
                            &format!("services.{s}.volumes[{i}]"),
                            format!(
                                "service {s:?} refers to undefined volume {src:?}: \
                                 declare it under the top-level `volumes:`"
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(nets) = svc.get("networks").and_then(Node::as_map) {
            for (k, _) in nets {
                if k.name != "default" && !networks.contains(&k.name) {
                    return Err(ComposeError::invalid(
                        &k.loc,
                        &format!("services.{s}.networks"),
                        format!(
                            "service {s:?} refers to undefined network {:?}: \
                             declare it under the top-level `networks:`",
                            k.name
                        ),
                    ));
                }
            }
        }
        for (kind, known) in [("secrets", &secrets), ("configs", &configs)] {
            if let Some(refs) = svc.get(kind).and_then(Node::as_seq) {
                for (i, r) in refs.iter().enumerate() {
                    if let Some(src) = r.get("source").and_then(Node::as_scalar) {
                        if !known.contains(src) {
                            let what = &kind[..kind.len() - 1];
                            return Err(ComposeError::invalid(
                                &r.loc,
                                &format!("services.{s}.{kind}[{i}]"),
                                format!("service {s:?} refers to undefined {what} {src:?}"),
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Copy `x-` keys from the tree beside the typed values they belong to.
fn collect_extensions(root: &Node, project: &mut Project) {
    fn ext(n: &Node) -> crate::model::Extensions {
        n.as_map()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.name.starts_with("x-"))
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect()
            })
            .unwrap_or_default()
    }
    project.extensions = ext(root);
    let section = |name: &str| -> Vec<(String, crate::model::Extensions)> {
        root.get(name)
            .and_then(Node::as_map)
            .map(|m| m.iter().map(|(k, v)| (k.name.clone(), ext(v))).collect())
            .unwrap_or_default()
    };
    macro_rules! fill {
        ($key:literal, $field:ident) => {
            for (k, e) in section($key) {
                if let Some(v) = project.$field.get_mut(&k) {
                    v.extensions = e;
                }
            }
        };
    }
    fill!("services", services);
    fill!("networks", networks);
    fill!("volumes", volumes);
    fill!("secrets", secrets);
    fill!("configs", configs);
}

/// Remove services whose profiles are all disabled (`*` enables every
/// profile); an enabled service that requires a disabled one is an error.
fn apply_profiles(project: &mut Project, enabled: &BTreeSet<String>) -> Result<(), ComposeError> {
    let active = |p: &[String]| p.is_empty() || enabled.contains("*") || p.iter().any(|x| enabled.contains(x));
    let disabled: BTreeMap<String, Vec<String>> = project
        .services
        .iter()
        .filter(|(_, s)| !active(&s.profiles))
        .map(|(n, s)| (n.clone(), s.profiles.clone()))
        .collect();
    for name in disabled.keys() {
        project.services.remove(name);
    }
    for (name, svc) in project.services.iter_mut() {
        let mut err = None;
        svc.depends_on.retain(|dep, d| match disabled.get(dep) {
            None => true,
            Some(_) if !d.required => false,
            Some(profiles) => {
                err.get_or_insert_with(|| {
                    ComposeError::Project(format!(
                        "service {dep:?} is required by {name:?} but is disabled; \
                         enable it with --profile {}",
                        profiles.join(" --profile ")
                    ))
                });
                true
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
    }
    Ok(())
}

/// Defaults and derived values, as `docker compose config` shows them.
fn normalise(project: &mut Project, env: &BTreeMap<String, String>) -> Result<(), ComposeError> {
    let name = project.name.clone();
    let mut uses_default = false;
    for (svc_name, svc) in project.services.iter_mut() {
        if svc.networks.is_empty() && svc.network_mode.is_none() {
            svc.networks.insert("default".into(), None);
        }
        uses_default |= svc.networks.contains_key("default");
        // compose prints extra hosts sorted, without duplicates.
        svc.extra_hosts.sort();
        svc.extra_hosts.dedup();
        if let (Some(scale), Some(replicas)) = (svc.scale, svc.deploy.as_ref().and_then(|d| d.replicas)) {
            if scale != replicas {
                return Err(ComposeError::Project(format!(
                    "services.{svc_name}: can't set distinct values on 'scale' and 'deploy.replicas'"
                )));
            }
        }
        // env_file values first, `environment` over them, then bare names from the environment.
        let mut merged: BTreeMap<String, Option<String>> = BTreeMap::new();
        for ef in &svc.env_file {
            let path = Path::new(&ef.path);
            if !path.exists() {
                if ef.required {
                    return Err(ComposeError::Project(format!(
                        "env file {} not found: stat {}: no such file or directory",
                        ef.path, ef.path
                    )));
                }
                continue;
            }
            let vars = if ef.format.as_deref() == Some("raw") {
                read_raw_env_file(path)?
            } else {
                read_env_file(path, env)?
            };
            for (k, v) in vars {
                merged.insert(k, Some(v));
            }
        }
        // label_file entries under the labels written in the file.
        let mut file_labels = BTreeMap::new();
        for lf in &svc.label_file {
            for (k, v) in read_env_file(Path::new(lf), &BTreeMap::new())? {
                file_labels.insert(k, v);
            }
        }
        for (k, v) in file_labels {
            svc.labels.entry(k).or_insert(v);
        }
        for (k, v) in std::mem::take(&mut svc.environment) {
            match v {
                Some(v) => {
                    merged.insert(k, Some(v));
                }
                None => {
                    let resolved = env.get(&k).cloned();
                    merged.insert(k, resolved);
                }
            }
        }
        svc.environment = merged;
        if let Some(build) = &mut svc.build {
            for (k, v) in build.args.iter_mut() {
                if v.is_none() {
                    *v = env.get(k).cloned();
                }
            }
        }
    }
    if uses_default && !project.networks.contains_key("default") {
        project.networks.insert("default".into(), Default::default());
    }
    for (key, net) in project.networks.iter_mut() {
        if net.name.is_none() {
            net.name = Some(if net.external {
                key.clone()
            } else {
                format!("{name}_{key}")
            });
        }
    }
    for (key, vol) in project.volumes.iter_mut() {
        if vol.name.is_none() {
            vol.name = Some(if vol.external {
                key.clone()
            } else {
                format!("{name}_{key}")
            });
        }
    }
    for objects in [&mut project.secrets, &mut project.configs] {
        for (key, obj) in objects.iter_mut() {
            if obj.external && obj.name.is_none() {
                obj.name = Some(key.clone());
            }
        }
    }
    Ok(())
}

/// An env file of `format: raw`: `KEY=VALUE` lines taken as written.
fn read_raw_env_file(path: &Path) -> Result<Vec<(String, String)>, ComposeError> {
    let text = std::fs::read_to_string(path).map_err(|e| ComposeError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect())
}

/// `dependency cycle detected: a -> b -> a`, located at the `depends_on`
/// entry that closes the cycle.
fn check_cycles(root: &Node) -> Result<(), ComposeError> {
    let Some(services) = root.get("services") else {
        return Ok(());
    };
    let deps = |name: &str| -> Vec<(String, Loc)> {
        services
            .get(name)
            .and_then(|s| s.get("depends_on"))
            .and_then(Node::as_map)
            .map(|m| m.iter().map(|(k, _)| (k.name.clone(), k.loc.clone())).collect())
            .unwrap_or_default()
    };
    fn visit(
        deps: &dyn Fn(&str) -> Vec<(String, Loc)>,
        name: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Result<(), ComposeError> {
        if done.contains(name) {
            return Ok(());
        }
        path.push(name.to_string());
        for (dep, loc) in deps(name) {
            if let Some(i) = path.iter().position(|n| *n == dep) {
                let mut cycle = path[i..].to_vec();
                cycle.push(dep);
                return Err(ComposeError::invalid(
                    &loc,
                    &format!("services.{name}.depends_on"),
                    format!("dependency cycle detected: {}", cycle.join(" -> ")),
                ));
            }
            visit(deps, &dep, path, done)?;
        }
        path.pop();
        done.insert(name.to_string());
        Ok(())
    }
    let mut done = BTreeSet::new();
    for (k, _) in services.as_map().into_iter().flatten() {
        visit(&deps, &k.name, &mut Vec::new(), &mut done)?;
    }
    Ok(())
}
