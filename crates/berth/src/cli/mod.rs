//! The command line: Docker's commands and flags, parsed by clap, each
//! handed to one engine function, the result printed as Docker prints it.

pub mod binfmt;
pub mod build;
pub mod compose;
pub mod compose_cmds;
pub mod containers;
pub mod format;
pub mod image_merge;
pub mod images;
pub mod layer_progress;
pub mod network;
pub mod registry;
pub mod service;
pub mod system;
pub mod terminal;
pub mod userns;
pub mod volume;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use berth_engine::{Engine, EngineError, ErrorKind};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A daemonless, Docker-compatible container engine",
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Store root (default /var/lib/berth as root, ~/.local/share/berth otherwise)
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    pub log_level: String,
    /// OCI runtime to use (crun, runc, youki, or a path); probed when unset
    #[arg(long, global = true, env = "BERTH_RUNTIME", value_name = "NAME|PATH")]
    pub runtime: Option<String>,
    #[command(subcommand)]
    pub command: Command,
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
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        cmd: volume::VolumeCommand,
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
    let cli = match Cli::try_parse_from(compose::argv()) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let level = cli
        .log_level
        .parse::<log::LevelFilter>()
        .unwrap_or(log::LevelFilter::Warn);
    env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp(None)
        .format_target(false)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let (code, shown) = exit_code_and_message(&e);
            if !shown.is_empty() {
                eprintln!("Error: {shown}");
            }
            code
        }
    }
}

/// The one place where an error becomes the exit code and message berth
/// ends with, as Docker's CLI does: a failure that carries an exit code (a
/// container's own, 126/127, 1 for a failed build) ends with that code and
/// shows only its message (nothing when whoever failed already said why);
/// any other kind ends with 125 and shows every context and cause once.
pub fn exit_code_and_message(e: &anyhow::Error) -> (i32, String) {
    let engine_error = e.chain().find_map(|c| c.downcast_ref::<EngineError>());
    match engine_error {
        Some(x) if matches!(x.kind(), ErrorKind::Exit(_)) => (x.exit_code(), x.message()),
        _ => (
            berth_engine::error::EXIT_ENGINE_FAILURE,
            berth_engine::error::chain_text(e.chain().map(|c| c.to_string())),
        ),
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let root = cli.root.clone().unwrap_or_else(berth_engine::default_root);
    // Absolute from here on: the root is written into bundles, monitor
    // options and hooks that run from other directories.
    let root = anyhow::Context::with_context(std::path::absolute(&root), || {
        format!("resolving the store root {}", root.display())
    })?;
    // Commands that need no store.
    if let Command::Version(a) = &cli.command {
        return system::version(a);
    }
    if let Command::Containers(containers::ContainerCommand::Monitor(a)) = &cli.command {
        return containers::monitor(&root, a);
    }
    if let Command::Compose(a) = cli.command {
        return compose::run(&root, cli.runtime, a);
    }
    if let Command::Registry(c) = &cli.command {
        if let Some(r) = registry::run_without_store(c) {
            return r;
        }
    }
    let engine = Engine::open(&root, cli.runtime.clone())?;
    match cli.command {
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
        Command::Network { cmd } => network::dispatch(&engine, cmd),
        Command::Volume { cmd } => volume::dispatch(&engine, cmd),
    }
}

/// `berth inspect`: the engine looks (containers first, then images).
fn inspect(engine: &Engine, a: InspectArgs) -> anyhow::Result<i32> {
    let fmt = format::Format::parse(a.format.as_deref())?;
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
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    images::print_inspect(&fmt, &out)?;
    Ok(if failed { 1 } else { 0 })
}
