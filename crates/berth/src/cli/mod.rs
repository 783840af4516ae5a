//! The command line: Docker's commands and flags, parsed by clap, each
//! handed to one engine function, the result printed as Docker prints it.

pub mod build;
pub mod containers;
pub mod format;
pub mod images;
pub mod layer_progress;
pub mod registry;
pub mod system;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::engine::{self, Engine, ExitError};

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
    /// Manage berth
    System {
        #[command(subcommand)]
        cmd: system::SystemCommand,
    },
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
    let cli = match Cli::try_parse() {
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
            let (code, shown) = match e.downcast_ref::<ExitError>() {
                Some(x) => (x.code, x.message.clone()),
                None => (125, error_chain(&e)),
            };
            if !shown.is_empty() {
                eprintln!("Error: {shown}");
            }
            code
        }
    }
}

/// "context: cause: cause", skipping a cause whose text the message above
/// already carries (library errors often include their source's text).
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let root = cli.root.clone().unwrap_or_else(engine::default_root);
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
        Command::Version(_) => unreachable!("handled above"),
        Command::Info(a) => system::info(&engine, a),
        Command::System { cmd } => system::dispatch(&engine, cmd),
    }
}

/// `berth inspect`: containers first, then images (as Docker does).
fn inspect(engine: &Engine, a: InspectArgs) -> anyhow::Result<i32> {
    let fmt = format::Format::parse(a.format.as_deref())?;
    let mut out = Vec::new();
    let mut failed = false;
    for name in &a.objects {
        let want_container = a.kind.as_deref() != Some("image");
        let want_image = a.kind.as_deref() != Some("container");
        let found = if want_container {
            containers::inspect_value(engine, name, a.size).ok()
        } else {
            None
        };
        let found = match found {
            Some(v) => Some(v),
            None if want_image => engine.image_inspect(name).ok(),
            None => None,
        };
        match found {
            Some(v) => out.push(v),
            None => {
                eprintln!("Error: No such object: {name}");
                failed = true;
            }
        }
    }
    images::print_inspect(&fmt, &out)?;
    Ok(if failed { 1 } else { 0 })
}
