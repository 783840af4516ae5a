//! The command line: Docker's commands and flags, parsed by clap, each
//! handed to one engine function, the result printed as Docker prints it.

pub mod binfmt;
pub mod build;
pub mod compose;
pub mod compose_cmds;
pub mod containers;
pub mod events;
pub mod flags;
pub mod format;
pub mod image_merge;
pub mod images;
pub mod layer_progress;
pub mod network;
pub mod pipe;
pub mod registry;
pub mod run_flags;
pub mod service;
pub mod system;
pub mod terminal;
pub mod update;
pub mod userns;
pub mod volume;

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use berth_engine::{Engine, EngineError, ErrorKind};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A daemonless, Docker-compatible container engine",
    disable_help_subcommand = true,
    disable_version_flag = true
)]
pub struct Cli {
    /// Store root (default /var/lib/berth as root, ~/.local/share/berth otherwise)
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    pub log_level: String,
    /// Set the logging level (as --log-level; before the command only)
    #[arg(short = 'l', value_name = "LEVEL", hide = true)]
    pub log_level_short: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Print version information and quit
    #[arg(short = 'v', long)]
    pub version: bool,
    /// Daemon socket to connect to: berth has no daemon, so only a local
    /// unix socket is accepted (and ignored: commands act on --root)
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub host: Vec<String>,
    /// Name of the context to use: only "default" (berth has one, local, engine)
    #[arg(short = 'c', long = "context", value_name = "NAME")]
    pub context: Option<String>,
    /// Location of client config files (registry credentials: config.json)
    #[arg(long = "config", value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// Use TLS / verify the remote (accepted for scripts; berth has no remote daemon)
    #[arg(long, hide = true)]
    pub tls: bool,
    /// (accepted for scripts; berth has no remote daemon)
    #[arg(long, hide = true)]
    pub tlsverify: bool,
    /// OCI runtime to use (crun, runc, youki, or a path); probed when unset
    #[arg(long, global = true, env = "BERTH_RUNTIME", value_name = "NAME|PATH")]
    pub runtime: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    #[command(flatten)]
    Images(images::ImageCommand),
    /// Manage images
    Image {
        #[command(subcommand)]
        cmd: images::ImageGroup,
    },
    #[command(flatten)]
    Containers(containers::ContainerCommand),
    /// Manage containers
    Container {
        #[command(subcommand)]
        cmd: containers::ContainerGroup,
    },
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    #[command(flatten)]
    Registry(registry::RegistryCommand),
    /// Return low-level information on containers or images
    Inspect(InspectArgs),
    /// Show berth's version
    Version(system::VersionArgs),
    /// Display system-wide information
    Info(system::InfoArgs),
    /// Manage networks
    Network {
        #[command(subcommand)]
        cmd: network::NetworkCommand,
    },
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        cmd: volume::VolumeCommand,
    },
    /// Manage builds
    Builder {
        #[command(subcommand)]
        cmd: system::BuilderCommand,
    },
    /// Manage berth
    System {
        #[command(subcommand)]
        cmd: system::SystemCommand,
    },
    /// Define and run multi-container applications (Docker Compose)
    Compose(compose::ComposeArgs),
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only inspect this type of object (container or image)
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes (containers)
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true, value_name = "NAME|ID")]
    pub objects: Vec<String>,
}

/// Parse, run, and return the process exit code.
pub fn main() -> i32 {
    pipe::install();
    let mut cmd = flags::docker_style(Cli::command());
    let argv = flags::normalize(&cmd, compose::argv());
    let cli = match cmd
        .try_get_matches_from_mut(argv.iter())
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m))
    {
        Ok(c) => c,
        Err(e) => return flags::report(&cmd, &e, &argv),
    };
    let level = if cli.debug {
        log::LevelFilter::Debug
    } else {
        let l = cli.log_level_short.as_deref().unwrap_or(&cli.log_level);
        // Docker's "fatal" is berth's "error".
        let l = if l == "fatal" { "error" } else { l };
        match l.parse::<log::LevelFilter>() {
            Ok(l) => l,
            Err(_) => {
                eprintln!("Unable to parse logging level: {l}");
                return 1;
            }
        }
    };
    env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp(None)
        .format_target(false)
        .init();
    if let Err(msg) = global_flags(&cli) {
        eprintln!("{msg}");
        return 1;
    }
    if cli.version {
        return system::short_version();
    }
    let Some(command) = cli.command else {
        pipe::print(&cmd.render_help().to_string());
        return 0;
    };
    // `run` ends with 125 when berth fails (its container's code otherwise),
    // every other command with 1, as the docker CLI.
    let is_run = matches!(&command, Command::Containers(containers::ContainerCommand::Run(_)))
        || matches!(&command, Command::Container { cmd: containers::ContainerGroup::Common(c) } if matches!(**c, containers::ContainerCommand::Run(_)));
    let global = Global {
        root: cli.root,
        runtime: cli.runtime,
    };
    match run(global, command) {
        Ok(code) => code,
        Err(e) => {
            if pipe::closed_output_error(&e) {
                pipe::die();
            }
            let (code, shown) = exit_code_and_message(&e, is_run);
            if !shown.is_empty() {
                eprintln!("{shown}");
            }
            code
        }
    }
}

/// The docker CLI's global flags berth takes for scripts' sake: `--config`
/// names where registry credentials live; `-H` and `-c` only where they
/// mean "this machine" (berth has no daemon to talk to: anything else is
/// refused rather than silently acting on the local store).
fn global_flags(cli: &Cli) -> Result<(), String> {
    for h in &cli.host {
        if !(h.is_empty() || h.starts_with("unix://") || h.starts_with('/')) {
            return Err(format!(
                "-H/--host {h}: berth has no daemon and cannot act on a remote host; \
                 only a local unix socket is accepted (commands act on this machine's store)"
            ));
        }
    }
    if let Some(c) = cli.context.as_deref().filter(|c| *c != "default") {
        return Err(format!(
            "Failed to initialize: unable to resolve docker endpoint: context {c:?}: context not found \
             (berth has only the \"default\" context)"
        ));
    }
    if let Some(dir) = &cli.config {
        // Read by berth-registry's credential store; set before any thread starts.
        std::env::set_var("DOCKER_CONFIG", dir);
    }
    Ok(())
}

/// How an error reads, as the docker CLI shows it: what the engine
/// refused or failed at (Docker's daemon) as `Error response from daemon:
/// …`; a bad value the docker CLI checks itself (the engine marks those:
/// `EngineError::is_client_side`) and an error of the CLI bare. Also the line for each failed item of a
/// command on many (`rm a b`).
pub fn error_text(e: &anyhow::Error) -> String {
    let engine_error = e.chain().find_map(|c| c.downcast_ref::<EngineError>());
    let text = berth_engine::error::chain_text(e.chain().map(|c| c.to_string()));
    match engine_error {
        Some(x) if x.is_daemon_answer() => format!("Error response from daemon: {text}"),
        _ => text,
    }
}

/// Is this error (or its cause) a missing object?
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain()
        .find_map(|c| c.downcast_ref::<EngineError>())
        .is_some_and(|x| x.kind() == ErrorKind::NotFound)
}

/// The global options a command needs once parsing is done.
struct Global {
    root: Option<PathBuf>,
    runtime: Option<String>,
}

/// The one place where an error becomes the exit code and message berth
/// ends with, as the docker CLI does:
///
/// - a failure that carries an exit code (a container's own, 126/127, 1
///   for a failed build) ends with that code and shows only its message
///   (nothing when whoever failed already said why);
/// - what the engine refused or failed at (Docker's daemon) reads
///   `Error response from daemon: …`, except a bad value the docker CLI
///   itself finds (marked so by the engine, whatever the command) and an
///   error of the CLI itself (a template, a file a flag names): bare;
/// - `run` ends with 125 (`berth: …` and where to look for help), every
///   other command with 1.
pub fn exit_code_and_message(e: &anyhow::Error, run: bool) -> (i32, String) {
    let engine_error = e.chain().find_map(|c| c.downcast_ref::<EngineError>());
    let mut code = None;
    if let Some(x) = engine_error.filter(|x| matches!(x.kind(), ErrorKind::Exit(_))) {
        if !x.is_daemon_answer() {
            let m = x.message();
            return (x.exit_code(), if m.is_empty() { m } else { format!("Error: {m}") });
        }
        code = Some(x.exit_code());
    }
    let shown = error_text(e);
    if run {
        (
            code.unwrap_or(berth_engine::error::EXIT_ENGINE_FAILURE),
            format!("berth: {shown}\n\nRun 'berth run --help' for more information"),
        )
    } else {
        (code.unwrap_or(1), shown)
    }
}

fn run(cli: Global, command: Command) -> anyhow::Result<i32> {
    // `image pull|push|build` and `container remove` are other names.
    let command = match command {
        Command::Image {
            cmd: images::ImageGroup::Pull(a),
        } => Command::Registry(registry::RegistryCommand::Pull(a)),
        Command::Image {
            cmd: images::ImageGroup::Push(a),
        } => Command::Registry(registry::RegistryCommand::Push(a)),
        Command::Image {
            cmd: images::ImageGroup::Build(a),
        } => Command::Build(a),
        c => c,
    };
    let root = cli.root.clone().unwrap_or_else(berth_engine::default_root);
    // Absolute from here on: the root is written into bundles, monitor
    // options and hooks that run from other directories.
    let root = anyhow::Context::with_context(std::path::absolute(&root), || {
        format!("resolving the store root {}", root.display())
    })?;
    // Commands that need no store.
    if let Command::Version(a) = &command {
        return system::version(a);
    }
    if let Command::Containers(containers::ContainerCommand::Monitor(a)) = &command {
        return containers::monitor(&root, a);
    }
    if let Command::Compose(a) = command {
        return compose::run(&root, cli.runtime, a);
    }
    if let Command::Registry(c) = &command {
        if let Some(r) = registry::run_without_store(c) {
            return r;
        }
    }
    let engine = Engine::open(&root, cli.runtime.clone())?;
    match command {
        Command::Images(c) => images::dispatch(&engine, c),
        Command::Image { cmd } => images::dispatch_group(&engine, cmd),
        Command::Containers(c) => containers::dispatch(&engine, c),
        Command::Container { cmd } => containers::dispatch_group(&engine, cmd),
        Command::Build(a) => build::run(&engine, a),
        Command::Registry(c) => registry::dispatch(&engine, c),
        Command::Inspect(a) => inspect(&engine, a),
        Command::Version(_) | Command::Compose(_) => unreachable!("handled above"),
        Command::Info(a) => system::info(&engine, a),
        Command::System { cmd } => system::dispatch(&engine, cmd),
        Command::Builder { cmd } => system::builder(&engine, cmd),
        Command::Network { cmd } => network::dispatch(&engine, cmd),
        Command::Volume { cmd } => volume::dispatch(&engine, cmd),
        Command::Events(a) => events::run(&engine, a),
    }
}

/// `berth inspect`: the engine looks (containers first, then images).
fn inspect(engine: &Engine, a: InspectArgs) -> anyhow::Result<i32> {
    let fmt = format::Format::parse_inspect(a.format.as_deref())?;
    let kind = berth_engine::system::InspectKind::parse(a.kind.as_deref())?;
    let mut out = Vec::new();
    let mut failed = false;
    for name in &a.objects {
        match engine.inspect(name, kind, a.size) {
            Ok(v) => out.push(v),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                eprintln!("Error: No such object: {name}");
                failed = true;
            }
            Err(e) => {
                eprintln!("{}", error_text(&e.into()));
                failed = true;
            }
        }
    }
    images::print_inspect(&fmt, &out)?;
    Ok(if failed { 1 } else { 0 })
}
