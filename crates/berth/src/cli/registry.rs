//! Registry commands: pull, push, login, logout, manifest. Parse, call the
//! engine, print as Docker prints.

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use berth_registry::{Credentials, LayerCompression, Options};
use clap::Subcommand;

use crate::cli::layer_progress::Display;
use berth_engine::registry::{EntryOptions, PullOptions, PushOptions};
use berth_engine::Engine;

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Manage manifest lists (multi-platform image indexes)
    Manifest {
        #[command(subcommand)]
        cmd: ManifestCommand,
    },
}

/// How to reach the registry (shared by every command that talks to one).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnArgs {
    /// Require HTTPS with a verified certificate (true), or allow plain HTTP
    /// and unverified certificates (false). Default: verify, except for
    /// localhost and insecure registries
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// Directory with the registry's CA certificates (*.crt) and client certificate (*.cert, *.key)
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Credentials USERNAME:PASSWORD for this command only
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// Auth file (default ${XDG_CONFIG_HOME:-~/.config}/berth/auth.json)
    #[arg(long, value_name = "FILE", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
}

impl ConnArgs {
    pub fn options(&self) -> Result<Options> {
        let mut o = Options::from_config();
        o.tls_verify = self.tls_verify;
        o.cert_dir = self.cert_dir.clone();
        o.auth_file = self.authfile.clone();
        o.creds = self.creds.as_deref().map(Credentials::parse).transpose()?;
        Ok(o)
    }
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// Skip image signing/verification (berth verifies digests, never signatures: accepted)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = super::flags::parse_go_bool)]
    pub disable_content_trust: bool,
    /// Download all tagged images in the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Set platform if the image is multi-platform (os/arch[/variant])
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Skip image signing/verification (berth verifies digests, never signatures: accepted)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = super::flags::parse_go_bool)]
    pub disable_content_trust: bool,
    /// Push all tags of an image to the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Compression for layers that are not compressed that way already (gzip or zstd)
    #[arg(long, value_name = "gzip|zstd")]
    pub compression_format: Option<LayerCompression>,
    /// Push only this platform's variant of a multi-platform image
    #[arg(long, value_name = "os/arch[/variant]")]
    pub platform: Option<String>,
    /// Write the digest of the pushed image to this file
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<PathBuf>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    #[arg(value_name = "NAME[:TAG]")]
    pub image: String,
    /// Destination (default: the image's name)
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Registry (default docker.io)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// Auth file (default ${XDG_CONFIG_HOME:-~/.config}/berth/auth.json)
    #[arg(long, value_name = "FILE", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
    /// Registry (default docker.io)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ManifestCommand {
    /// Create a local manifest list, optionally from images
    Create(ManifestCreateArgs),
    /// Add an image to a manifest list
    Add(ManifestAddArgs),
    /// Set the platform or annotations of an entry
    Annotate(ManifestAddArgs),
    /// Show a manifest list (local) or a manifest/index (in a registry)
    Inspect(ManifestInspectArgs),
    /// Push a manifest list and its images to a registry
    Push(ManifestPushArgs),
    /// Delete local manifest lists
    #[command(visible_alias = "remove")]
    Rm(ManifestRmArgs),
}

#[derive(clap::Args, Debug)]
pub struct ManifestCreateArgs {
    /// Add to an existing list of that name
    #[arg(long)]
    pub amend: bool,
    pub name: String,
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ManifestAddArgs {
    /// Operating system of the entry
    #[arg(long)]
    pub os: Option<String>,
    /// Architecture of the entry
    #[arg(long)]
    pub arch: Option<String>,
    /// Architecture variant of the entry
    #[arg(long)]
    pub variant: Option<String>,
    /// OS version of the entry
    #[arg(long)]
    pub os_version: Option<String>,
    /// OS features of the entry
    #[arg(long = "os-features")]
    pub os_features: Vec<String>,
    /// Annotation KEY=VALUE for the entry
    #[arg(long = "annotation")]
    pub annotations: Vec<String>,
    pub list: String,
    /// A local image (for annotate also the entry's digest)
    pub image: String,
}

#[derive(clap::Args, Debug)]
pub struct ManifestInspectArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct ManifestPushArgs {
    /// Delete the local list after a successful push
    #[arg(long)]
    pub rm: bool,
    /// Compression for layers (gzip or zstd)
    #[arg(long, value_name = "gzip|zstd")]
    pub compression_format: Option<LayerCompression>,
    /// Write the digest of the pushed index to this file
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<PathBuf>,
    /// Push all images of the list (always done; accepted for podman compatibility)
    #[arg(long)]
    pub all: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    pub list: String,
    pub destination: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ManifestRmArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Commands that need no store (login, logout).
pub fn run_without_store(cmd: &RegistryCommand) -> Option<Result<i32>> {
    match cmd {
        RegistryCommand::Login(a) => Some(login(a)),
        RegistryCommand::Logout(a) => Some(logout(a)),
        _ => None,
    }
}

pub fn dispatch(engine: &Engine, cmd: RegistryCommand) -> Result<i32> {
    if let Some(r) = run_without_store(&cmd) {
        return r;
    }
    match cmd {
        RegistryCommand::Pull(a) => pull(engine, a),
        RegistryCommand::Push(a) => push(engine, a),
        RegistryCommand::Manifest { cmd } => manifest(engine, cmd),
        RegistryCommand::Login(_) | RegistryCommand::Logout(_) => unreachable!("handled above"),
    }
}

fn pull(engine: &Engine, a: PullArgs) -> Result<i32> {
    let display = Display::choose(a.quiet);
    let opts = PullOptions {
        platform: a.platform.clone().filter(|p| !p.is_empty()),
        all_tags: a.all_tags,
        registry: a.conn.options()?,
    };
    let mut stdout = io::stdout();
    let pulled = engine.pull(&a.image, &opts, &display.progress())?;
    if a.quiet {
        for p in &pulled {
            writeln!(stdout, "{}", p.name)?;
        }
    }
    Ok(0)
}

fn push(engine: &Engine, a: PushArgs) -> Result<i32> {
    let display = Display::choose(a.quiet);
    let opts = PushOptions {
        all_tags: a.all_tags,
        compression: a.compression_format,
        registry: a.conn.options()?,
        platform: a.platform.clone(),
    };
    let pushed = engine.push(&a.image, a.destination.as_deref(), &opts, &display.progress())?;
    if a.quiet {
        let mut stdout = io::stdout();
        for p in &pushed {
            writeln!(stdout, "{}", p.name)?;
        }
    }
    if let (Some(f), Some(last)) = (&a.digestfile, pushed.last()) {
        std::fs::write(f, last.digest.as_str()).with_context(|| format!("writing {}", f.display()))?;
    }
    Ok(0)
}

fn server_of(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "docker.io".to_string())
}

fn login(a: &LoginArgs) -> Result<i32> {
    let server = server_of(&a.server);
    let opts = a.conn.options()?;
    if a.password.is_some() && a.password_stdin {
        bail!("conflicting options: cannot specify both --password and --password-stdin");
    }
    if a.password_stdin && a.username.is_none() {
        bail!("the --password-stdin option requires --username to be set");
    }
    const NO_TTY: &str = "Error: Cannot perform an interactive login from a non TTY device";
    let stdin = io::stdin();
    let username = match &a.username {
        Some(u) => u.clone(),
        None if stdin.is_terminal() && !a.password_stdin => {
            eprint!("Username: ");
            io::stderr().flush()?;
            let mut line = String::new();
            stdin.read_line(&mut line)?;
            line.trim().to_string()
        }
        None => bail!(NO_TTY),
    };
    if username.is_empty() {
        bail!("Error: Non-null Username Required");
    }
    let password = if a.password_stdin {
        let mut s = String::new();
        stdin
            .lock()
            .read_to_string(&mut s)
            .context("reading the password from stdin")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = &a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else if stdin.is_terminal() {
        read_password_from_tty()?
    } else {
        bail!(NO_TTY);
    };
    if password.is_empty() {
        // What Docker asks a terminal for again, refused without one.
        bail!(NO_TTY);
    }
    let creds = Credentials { username, password };
    berth_engine::registry::login(&server, &creds, &opts)?;
    println!("Login Succeeded");
    Ok(0)
}

/// Read a line from the terminal with echo off.
fn read_password_from_tty() -> Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = io::stdin();
    eprint!("Password: ");
    io::stderr().flush()?;
    let old = tcgetattr(&stdin).map_err(|e| anyhow!("reading the terminal settings: {e}"))?;
    let mut quiet = old.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).map_err(|e| anyhow!("turning echo off: {e}"))?;
    let mut line = String::new();
    let r = stdin.read_line(&mut line);
    let _ = tcsetattr(&stdin, OptionalActions::Now, &old);
    eprintln!();
    r?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn logout(a: &LogoutArgs) -> Result<i32> {
    let server = server_of(&a.server);
    let opts = Options {
        auth_file: a.authfile.clone(),
        ..Options::default()
    };
    let shown = berth_registry::auth::normalize_server(&server);
    if berth_engine::registry::logout(&server, &opts)? {
        println!("Removing login credentials for {shown}");
    } else {
        println!("Not logged in to {shown}");
    }
    Ok(0)
}

fn entry_opts(a: &ManifestAddArgs) -> EntryOptions {
    EntryOptions {
        os: a.os.clone(),
        arch: a.arch.clone(),
        variant: a.variant.clone(),
        os_version: a.os_version.clone(),
        os_features: a.os_features.clone(),
        annotations: a.annotations.clone(),
    }
}

fn manifest(engine: &Engine, cmd: ManifestCommand) -> Result<i32> {
    let mut stdout = io::stdout();
    match cmd {
        ManifestCommand::Create(a) => {
            let l = engine.manifest_create(&a.name, &a.images, a.amend)?;
            writeln!(
                stdout,
                "Created manifest list {}",
                berth_store::reference::familiar_name(&l.name)
            )?;
        }
        ManifestCommand::Add(a) => {
            let d = engine.manifest_add(&a.list, &a.image, &entry_opts(&a))?;
            writeln!(stdout, "{d}")?;
        }
        ManifestCommand::Annotate(a) => engine.manifest_annotate(&a.list, &a.image, &entry_opts(&a))?,
        ManifestCommand::Inspect(a) => {
            let v = engine.manifest_inspect(&a.name, &a.conn.options()?)?;
            writeln!(stdout, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        ManifestCommand::Push(a) => {
            let opts = PushOptions {
                all_tags: false,
                compression: a.compression_format,
                registry: a.conn.options()?,
                platform: None,
            };
            let progress = if a.quiet { Display::Quiet } else { Display::Plain };
            let d = engine.manifest_push(&a.list, a.destination.as_deref(), &opts, &progress.progress())?;
            if let Some(f) = &a.digestfile {
                std::fs::write(f, d.as_str()).with_context(|| format!("writing {}", f.display()))?;
            }
            if a.quiet {
                writeln!(stdout, "{d}")?;
            }
            if a.rm {
                engine.manifest_rm(&a.list)?;
            }
        }
        ManifestCommand::Rm(a) => {
            let mut failed = false;
            for n in &a.names {
                if engine.manifest_rm(n)? {
                    writeln!(stdout, "Untagged: {n}")?;
                } else {
                    eprintln!("Error: {n}: no such manifest list");
                    failed = true;
                }
            }
            return Ok(if failed { 1 } else { 0 });
        }
    }
    Ok(0)
}
