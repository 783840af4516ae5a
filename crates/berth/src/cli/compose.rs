//! `berth compose`: Docker Compose v2's command line over `berth-compose`.
//! Each command loads the project, asks `berth_compose::ops` (or the
//! engine, for one container) to act and draws what comes back: progress
//! lines on stderr, tables and logs on stdout. The terminal (raw mode,
//! signals) is this module's; the rest is the library's.
//!
//! Also the `docker-compose` entry: invoked as `docker-compose` or
//! `berth-compose` (a symlink to berth), the arguments are read as
//! `berth compose …`, so the course's `docker-compose build` lines work.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use berth_compose::identity::{config_hash, image_name, labels};
use berth_compose::ops::{Compose, Event};

pub use super::compose_cmds::{
    BuildArgs, CpArgs, CreateArgs, DownArgs, EventsArgs, ExecArgs, ImagesArgs, KillArgs, LogsArgs, PortArgs, PsArgs,
    PullArgs, PushArgs, RmArgs, RunArgs, ServicesArgs, StopArgs, UpArgs, WaitArgs,
};
use berth_compose::{render, ComposeError, Loaded, Options};
use berth_engine::{Engine, EngineError};

/// The names under which berth behaves as `docker-compose`.
const COMPOSE_ARGV0: [&str; 2] = ["docker-compose", "berth-compose"];

/// The process arguments, with `compose` inserted when berth was started
/// as `docker-compose` or `berth-compose`.
pub fn argv() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name().map(|n| n.to_string_lossy().into_owned()));
    if invoked_as.is_some_and(|n| COMPOSE_ARGV0.contains(&n.as_str())) {
        args[0] = "berth".into();
        args.insert(1, "compose".into());
    }
    args
}

/// `berth compose` and its global flags.
#[derive(clap::Args, Debug)]
pub struct ComposeArgs {
    /// Compose configuration files (default: compose.yaml… searched upwards, and its override file)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Alternate working directory (default: the directory of the first compose file)
    #[arg(long, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Alternate environment files (default: .env in the project directory)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Profiles to enable
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// How many operations run at once (-1: unlimited)
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_name = "N", env = "COMPOSE_PARALLEL_LIMIT")]
    pub parallel: i64,
    /// Control character output
    #[arg(long, default_value = "auto", value_parser = ["never", "always", "auto"], env = "COMPOSE_ANSI")]
    pub ansi: String,
    /// Progress output
    #[arg(long, default_value = "auto", value_parser = ["auto", "tty", "plain", "json", "quiet"], env = "COMPOSE_PROGRESS")]
    pub progress: String,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

/// The compose commands.
#[derive(clap::Subcommand, Debug)]
pub enum ComposeCommand {
    /// Create and start containers
    Up(UpArgs),
    /// Stop and remove containers, networks
    Down(DownArgs),
    /// List containers
    Ps(PsArgs),
    /// View output from containers
    Logs(LogsArgs),
    /// Build or rebuild services
    Build(BuildArgs),
    /// Pull service images
    Pull(PullArgs),
    /// Push service images
    Push(PushArgs),
    /// Run a one-off command on a service
    Run(RunArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Creates containers for a service
    Create(CreateArgs),
    /// Start services
    Start(ServicesArgs),
    /// Stop services
    Stop(StopArgs),
    /// Restart service containers
    Restart(StopArgs),
    /// Force stop service containers
    Kill(KillArgs),
    /// Removes stopped service containers
    Rm(RmArgs),
    /// Pause services
    Pause(ServicesArgs),
    /// Unpause services
    Unpause(ServicesArgs),
    /// Display the running processes
    Top(ServicesArgs),
    /// List images used by the created containers
    Images(ImagesArgs),
    /// Print the public port for a port binding
    Port(PortArgs),
    /// Copy files/folders between a service container and the local filesystem
    Cp(CpArgs),
    /// Block until the first service container stops
    Wait(WaitArgs),
    /// Receive real time events from containers
    Events(EventsArgs),
    /// Parse, resolve and render the compose file in canonical format
    Config(ConfigArgs),
    /// Show the compose version information
    Version(VersionArgs),
    /// List running compose projects
    Ls(LsArgs),
}

/// `compose config`.
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// Output format
    #[arg(long, default_value = "yaml", value_parser = ["yaml", "json"])]
    pub format: String,
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Print the profile names, one per line
    #[arg(long)]
    pub profiles: bool,
    /// Print the image names, one per line
    #[arg(long)]
    pub images: bool,
    /// Print the service config hash, one per line ("*" for all services)
    #[arg(long, value_name = "SERVICE")]
    pub hash: Option<String>,
    /// Only validate the configuration, print nothing
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the environment used for interpolation
    #[arg(long)]
    pub environment: bool,
    /// Save to file (default: stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `compose version`.
#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    /// Format the output (pretty or json)
    #[arg(short, long, value_parser = ["pretty", "json"])]
    pub format: Option<String>,
    /// Show only the version number
    #[arg(long)]
    pub short: bool,
}

/// `compose ls`.
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Show all stopped projects too
    #[arg(short, long)]
    pub all: bool,
    /// Output format (table or json)
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Only display project names
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided (name=NAME)
    #[arg(long, value_name = "name=NAME")]
    pub filter: Vec<String>,
}

/// Run `berth compose …`; the store is opened only by commands that need it.
pub fn run(root: &Path, runtime: Option<String>, a: ComposeArgs) -> Result<i32> {
    match &a.command {
        ComposeCommand::Version(v) => return version(v),
        ComposeCommand::Ls(l) => {
            let engine = Engine::open(root, runtime)?;
            return ls(&engine, l);
        }
        _ => {}
    }
    // As compose: `-p NAME` alone names a project for the commands that
    // find its objects by their labels.
    let loaded = if by_name_only(&a) {
        let name = a.project_name.clone().unwrap_or_default();
        Loaded {
            project: berth_compose::Project {
                name: berth_compose::loader::normalize_project_name(&name),
                ..Default::default()
            },
            working_dir: std::env::current_dir()?,
            config_files: Vec::new(),
            environment: BTreeMap::new(),
            all_profiles: Default::default(),
            warnings: Vec::new(),
        }
    } else {
        match load(&a) {
            Ok(l) => l,
            Err(code) => return code,
        }
    };
    if let ComposeCommand::Config(c) = &a.command {
        return config(&loaded, c);
    }
    let engine = Engine::open(root, runtime.clone())?;
    let quiet_progress = a.progress == "quiet";
    let report = move |e: Event| {
        if e.kind == "Warning" {
            eprintln!("WARN[0000] {}", e.status);
        } else if !quiet_progress {
            eprintln!(" {} {}  {}", e.kind, e.name, e.status);
        }
    };
    // --parallel 1: one thing at a time; otherwise independent services
    // and replicas side by side, each on an engine of its own.
    let (fork_root, fork_runtime) = (root.to_path_buf(), runtime.clone());
    let fork = move || Engine::open(&fork_root, fork_runtime.clone());
    let compose = Compose {
        engine: &engine,
        loaded: &loaded,
        report: &report,
        fork: (a.parallel != 1).then_some(&fork as &(dyn Fn() -> berth_engine::Result<Engine> + Sync)),
        parallel: usize::try_from(a.parallel).unwrap_or(0),
    };
    let ctx = Ctx {
        root,
        runtime,
        compose: &compose,
        ansi: &a.ansi,
    };
    // Compose ends a failed command with 1 (a container's own code where
    // it reports one), not with Docker's 125.
    super::compose_cmds::dispatch(&ctx, a.command).map_err(|e| {
        let exit = e
            .chain()
            .filter_map(|c| c.downcast_ref::<EngineError>())
            .any(|x| matches!(x.kind(), berth_engine::error::ErrorKind::Exit(_)));
        let (_, message) = super::exit_code_and_message(&e, false);
        if !exit {
            EngineError::exit(1, message).into()
        } else {
            e
        }
    })
}

/// What every command gets.
pub struct Ctx<'a> {
    /// The store root.
    pub root: &'a Path,
    /// `--runtime`.
    pub runtime: Option<String>,
    /// The project bound to the engine.
    pub compose: &'a Compose<'a>,
    /// `--ansi`.
    pub ansi: &'a str,
}

/// `-p NAME` with no compose file to be found, for a command that acts on
/// the project's existing containers (down, ps, logs, stop…).
fn by_name_only(a: &ComposeArgs) -> bool {
    use ComposeCommand as C;
    let acts_on_existing = matches!(
        &a.command,
        C::Down(_)
            | C::Ps(_)
            | C::Logs(_)
            | C::Stop(_)
            | C::Start(_)
            | C::Restart(_)
            | C::Kill(_)
            | C::Rm(_)
            | C::Pause(_)
            | C::Unpause(_)
            | C::Top(_)
            | C::Images(_)
            | C::Events(_)
    );
    acts_on_existing
        && a.project_name.is_some()
        && a.files.is_empty()
        && std::env::var_os("COMPOSE_FILE").is_none()
        && {
            let mut opts = Options::from_process().unwrap_or_default();
            opts.project_name = a.project_name.clone();
            opts.project_directory = a.project_directory.clone();
            matches!(berth_compose::load(&opts), Err(ComposeError::NoConfigFile))
        }
}

/// Load the project the global flags name; on failure print compose's
/// message and give its exit code (14 no file, 15 bad file).
fn load(a: &ComposeArgs) -> std::result::Result<Loaded, Result<i32>> {
    let mut opts = Options::from_process()
        .context("reading the working directory")
        .map_err(Err)?;
    opts.files = a.files.clone();
    opts.project_name = a.project_name.clone();
    opts.project_directory = a.project_directory.clone();
    opts.env_files = a.env_files.clone();
    opts.profiles = a.profiles.clone();
    match berth_compose::load(&opts) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            Ok(loaded)
        }
        Err(e) => Err(Err(fail(&e))),
    }
}

fn fail(e: &ComposeError) -> anyhow::Error {
    eprintln!("{e}");
    EngineError::exit(e.exit_code(), "").into()
}

fn config(loaded: &Loaded, c: &ConfigArgs) -> Result<i32> {
    let project = &loaded.project;
    if c.quiet {
        return Ok(0);
    }
    let text = if c.services {
        lines(project.services.keys())
    } else if c.volumes {
        lines(project.volumes.keys())
    } else if c.profiles {
        lines(loaded.all_profiles.iter())
    } else if c.images {
        lines(project.services.iter().map(|(n, s)| image_name(&project.name, n, s)))
    } else if c.environment {
        lines(loaded.environment.iter().map(|(k, v)| format!("{k}={v}")))
    } else if let Some(which) = &c.hash {
        let mut out = String::new();
        for (name, svc) in &project.services {
            if which == "*" || which.split(',').any(|w| w == name) {
                out.push_str(&format!("{name} {}\n", config_hash(svc)));
            }
        }
        out
    } else if c.format == "json" {
        render::to_json_text(project) + "\n"
    } else {
        render::to_yaml_text(project)
    };
    match &c.output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(0)
}

fn lines<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| format!("{i}\n")).collect()
}

fn version(v: &VersionArgs) -> Result<i32> {
    let number = env!("CARGO_PKG_VERSION");
    if v.short {
        println!("{number}");
    } else if v.format.as_deref() == Some("json") {
        println!("{}", serde_json::json!({ "version": format!("v{number}") }));
    } else {
        println!("berth compose version v{number}");
    }
    Ok(0)
}

/// `compose ls`: projects by their containers' `com.docker.compose.project` label.
fn ls(engine: &Engine, l: &LsArgs) -> Result<i32> {
    // `--filter name=X`: projects whose name contains X (compose's match).
    let mut names = Vec::new();
    for f in &l.filter {
        match f.split_once('=') {
            Some(("name", v)) => names.push(v.to_string()),
            _ => anyhow::bail!("invalid filter {f:?}: berth compose ls filters by name=NAME"),
        }
    }
    // project → (status → count, config files)
    let mut projects: BTreeMap<String, (BTreeMap<String, usize>, String)> = BTreeMap::new();
    for c in engine.list_all_containers()? {
        let Some(project) = c.cfg.labels.get(labels::PROJECT) else {
            continue;
        };
        let entry = projects.entry(project.clone()).or_default();
        *entry.0.entry(c.state.status.clone()).or_default() += 1;
        if let Some(files) = c.cfg.labels.get(labels::CONFIG_FILES) {
            entry.1 = files.clone();
        }
    }
    let rows: Vec<(String, String, String)> = projects
        .into_iter()
        .filter(|(_, (status, _))| l.all || status.contains_key("running"))
        .filter(|(name, _)| names.is_empty() || names.iter().any(|n| name.contains(n.as_str())))
        .map(|(name, (status, files))| {
            let s = status
                .iter()
                .map(|(k, n)| format!("{k}({n})"))
                .collect::<Vec<_>>()
                .join(", ");
            (name, s, files)
        })
        .collect();
    if l.quiet {
        for (name, _, _) in &rows {
            println!("{name}");
        }
    } else if l.format == "json" {
        let items: Vec<_> = rows
            .iter()
            .map(|(n, s, f)| serde_json::json!({"Name": n, "Status": s, "ConfigFiles": f}))
            .collect();
        println!("{}", serde_json::to_string(&items)?);
    } else {
        let mut table = vec![("NAME".to_string(), "STATUS".to_string(), "CONFIG FILES".to_string())];
        table.extend(rows);
        let w0 = table.iter().map(|r| r.0.len()).max().unwrap_or(0).max(16) + 3;
        let w1 = table.iter().map(|r| r.1.len()).max().unwrap_or(0).max(16) + 3;
        for (n, s, f) in table {
            println!("{n:<w0$}{s:<w1$}{f}");
        }
    }
    Ok(0)
}
