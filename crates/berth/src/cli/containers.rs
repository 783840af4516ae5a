//! Container commands: run, create, start, stop, restart, kill, rm, ps,
//! logs, wait, exec, cp, top, stats, attach, pause, unpause, rename, port,
//! diff, commit, export, prune. Parse as Docker does, call one engine
//! function, print as Docker prints.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::terminal::{self, Signals, Terminal};
use anyhow::{anyhow, bail, Context, Result};
use berth_engine::streams::{AttachEnd, AttachOptions, ExecOptions};
use clap::Subcommand;
use serde_json::{json, Value};

use super::format::{human_size, human_size_4, Format};
use berth_engine::containers::files::{CpEnd, CpOptions};
use berth_engine::containers::view::PsFilter;
use berth_engine::containers::CreateOptions;
use berth_engine::spec::{self, ContainerSpec};
use berth_engine::Engine;

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    #[command(override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Run(RunArgs),
    /// Create a new container
    #[command(override_usage = "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Create(CreateCmdArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArgs),
    /// Execute a command in a running container
    #[command(override_usage = "berth exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
    Exec(ExecArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Attach to a running container's output
    Attach(AttachArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(OneArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Update configuration of one or more containers
    Update(super::update::UpdateArgs),
    /// Run a container's healthcheck now (exit 0 healthy, 1 unhealthy)
    Healthcheck {
        #[command(subcommand)]
        cmd: HealthcheckCommand,
    },
    /// (internal) supervise one container
    #[command(name = "__monitor", hide = true)]
    Monitor(MonitorArgs),
}

#[derive(Subcommand, Debug)]
pub enum HealthcheckCommand {
    /// Run the healthcheck of a running container once and record the result
    Run(OneArgs),
}

#[derive(clap::Args, Debug)]
pub struct MonitorArgs {
    pub container_dir: std::path::PathBuf,
}

#[derive(clap::Args, Debug, Default)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub userns: super::userns::UsernsArgs,
    /// Docker's flags berth parses but refuses unless they ask for its defaults.
    #[command(flatten)]
    pub more: super::run_flags::MoreRunArgs,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Set meta data on a container
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    pub label_file: Vec<PathBuf>,
    /// Bind mount a volume (/host:/ctr[:ro], name:/ctr, /ctr)
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=bind|volume|tmpfs,…)
    #[arg(long = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Security Options
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Add a host device to the container
    #[arg(long)]
    pub device: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long)]
    pub stop_timeout: Option<u32>,
    /// Connect a container to a network (bridge, a network's name, none, host, container:NAME); repeatable
    #[arg(long, alias = "net")]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<std::net::Ipv6Addr>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<std::net::IpAddr>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip or host:host-gateway)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Add link to another container (name[:alias])
    #[arg(long)]
    pub link: Vec<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<PathBuf>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long)]
    pub pull: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long = "publish", value_name = "[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Command to run to check health
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long)]
    pub health_retries: Option<u32>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period
    #[arg(long)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Suppress the pull output
    #[arg(short, long)]
    pub quiet: bool,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, value_name = "IMAGE [COMMAND] [ARG...]", trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
    pub image_and_cmd: Vec<String>,
}

/// `create`'s own flags, then those it shares with `run`.
#[derive(clap::Args, Debug)]
pub struct CreateCmdArgs {
    /// Attach to STDIN, STDOUT or STDERR (accepted; `start -a` attaches all)
    #[arg(short, long, value_parser = attach_stream)]
    pub attach: Vec<String>,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `-a` takes Docker's stream names (any case).
fn attach_stream(s: &str) -> std::result::Result<String, String> {
    match s.to_ascii_lowercase().as_str() {
        "stdin" | "stdout" | "stderr" => Ok(s.to_ascii_lowercase()),
        _ => Err("valid streams are STDIN, STDOUT and STDERR".into()),
    }
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Attach to STDIN, STDOUT or STDERR (accepted; berth attaches all)
    #[arg(short, long, value_parser = attach_stream)]
    pub attach: Vec<String>,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long)]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short, long = "timeout", alias = "time", allow_hyphen_values = true)]
    pub time: Option<u32>,
    /// Signal to send to the container (accepted; the stop signal is used)
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove the specified link (accepted, no links exist)
    #[arg(short, long)]
    pub link: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, allow_hyphen_values = true)]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a Go template, "table", or "json"
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" or a number)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m)
    #[arg(long)]
    pub until: Option<String>,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct OneArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching (accepted, unused)
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., value_name = "CONTAINER COMMAND [ARG...]", trailing_var_arg = true, allow_hyphen_values = true)]
    pub container_and_cmd: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy (accepted)
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(value_name = "CONTAINER:SRC_PATH")]
    pub src: String,
    #[arg(value_name = "DEST_PATH|-")]
    pub dest: String,
}

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// ps options (the host's ps, as Docker's daemon runs it)
    #[arg(value_name = "[ps OPTIONS]", trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a Go template
    #[arg(long)]
    pub format: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching (default ctrl-p,ctrl-q)
    #[arg(long)]
    pub detach_keys: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

#[derive(clap::Args, Debug)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=k=v", "label!=k")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

/// `berth container …`: the top-level container commands plus the ones
/// only the group has (as in Docker: `container ls`, `inspect`, `prune`).
#[derive(Subcommand, Debug)]
pub enum ContainerGroup {
    #[command(flatten)]
    Common(Box<ContainerCommand>),
    /// List containers
    #[command(visible_alias = "list")]
    Ls(PsArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Remove one or more containers (as `rm`)
    #[command(name = "remove")]
    Remove(RmArgs),
}

#[derive(clap::Args, Debug)]
pub struct ContainerInspectArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

pub fn dispatch_group(engine: &Engine, cmd: ContainerGroup) -> Result<i32> {
    match cmd {
        ContainerGroup::Common(c) => dispatch(engine, *c),
        ContainerGroup::Ls(a) => ps(engine, a),
        ContainerGroup::Prune(a) => prune(engine, a),
        ContainerGroup::Remove(a) => dispatch(engine, ContainerCommand::Rm(a)),
        ContainerGroup::Inspect(a) => {
            let fmt = super::format::Format::parse_inspect(a.format.as_deref())?;
            let mut values = Vec::new();
            let mut code = 0;
            for c in &a.containers {
                match engine.inspect_container(c, a.size) {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        eprintln!("{}", super::error_text(&e.into()));
                        code = 1;
                    }
                }
            }
            super::images::print_inspect(&fmt, &values)?;
            Ok(code)
        }
    }
}

pub fn dispatch(engine: &Engine, cmd: ContainerCommand) -> Result<i32> {
    match cmd {
        ContainerCommand::Run(a) => run(engine, a),
        ContainerCommand::Create(a) => create(engine, a.create),
        ContainerCommand::Start(a) => start(engine, a),
        ContainerCommand::Stop(a) => report(engine.stop_containers(&a.containers, a.time), false),
        ContainerCommand::Restart(a) => report(
            engine.restart_containers(&a.containers, a.time, terminal::console_size()),
            false,
        ),
        ContainerCommand::Kill(a) => each(&a.containers, |c| engine.kill_container(c, &a.signal)),
        ContainerCommand::Rm(a) => report(engine.remove_containers(&a.containers, a.force, a.volumes), a.force),
        ContainerCommand::Ps(a) => ps(engine, a),
        ContainerCommand::Logs(a) => logs(engine, a),
        ContainerCommand::Wait(a) => wait(engine, a),
        ContainerCommand::Exec(a) => exec(engine, a),
        ContainerCommand::Cp(a) => cp(engine, a),
        ContainerCommand::Top(a) => top(engine, a),
        ContainerCommand::Stats(a) => stats(engine, a),
        ContainerCommand::Attach(a) => attach(engine, a),
        ContainerCommand::Pause(a) => each(&a.containers, |c| engine.pause_container(c)),
        ContainerCommand::Unpause(a) => each(&a.containers, |c| engine.unpause_container(c)),
        ContainerCommand::Rename(a) => match engine.rename_container(&a.container, &a.new_name) {
            Ok(()) => Ok(0),
            Err(e) => {
                eprintln!("{}", super::error_text(&e.into()));
                eprintln!("Error: failed to rename container named {}", a.container);
                Ok(1)
            }
        },
        ContainerCommand::Port(a) => port(engine, a),
        ContainerCommand::Healthcheck {
            cmd: HealthcheckCommand::Run(a),
        } => {
            if engine.healthcheck_run(&a.container)? {
                Ok(0)
            } else {
                println!("unhealthy");
                Ok(1)
            }
        }
        ContainerCommand::Diff(a) => {
            let mut out = String::new();
            for (k, p) in engine.container_diff(&a.container)? {
                out.push_str(&format!("{k} {p}\n"));
            }
            io::stdout().write_all(out.as_bytes())?;
            Ok(0)
        }
        ContainerCommand::Commit(a) => {
            let id = engine.commit_container(
                &a.container,
                a.reference.as_deref(),
                &a.change,
                a.message.as_deref(),
                a.author.as_deref(),
                a.pause,
            )?;
            println!("{id}");
            Ok(0)
        }
        ContainerCommand::Export(a) => export(engine, a),
        ContainerCommand::Update(a) => super::update::run(engine, a),
        ContainerCommand::Monitor(_) => bail!("__monitor is internal"),
    }
}

/// Runs `f` on each name, printing the name on success and the error on
/// failure (Docker's behaviour for stop, rm, kill, …); exit 1 if any failed.
fn each<E: Into<anyhow::Error>>(
    names: &[String],
    mut f: impl FnMut(&str) -> std::result::Result<(), E>,
) -> Result<i32> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{}", super::error_text(&e.into()));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Prints each name whose operation succeeded, and the error of each one
/// that failed, in the order given (Docker's output for stop, rm, …);
/// exit 1 if any failed.
/// With `missing_ok` (`rm -f`), a container that does not exist is said
/// but is no failure, as Docker's.
fn report(results: Vec<(String, berth_engine::Result<()>)>, missing_ok: bool) -> Result<i32> {
    let mut failed = false;
    for (n, r) in results {
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => {
                let e = anyhow::Error::from(e);
                eprintln!("{}", super::error_text(&e));
                failed |= !(missing_ok && super::is_not_found(&e));
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// The operands after the flags take hyphens (`run bb ls -la`), so clap
/// cannot reject a mistyped flag before the image or container: do it here,
/// in Docker's words and with its exit code (125).
fn reject_flag_as_operand(word: &str, command: &str) -> Result<()> {
    if word.starts_with('-') && word.len() > 1 {
        eprintln!("{}", super::flags::unknown_flag_message(&[command], word));
        return Err(berth_engine::EngineError::exit(125, "").into());
    }
    Ok(())
}

/// The lines of an `--env-file` or `--label-file`, as Docker's CLI reads
/// them: leading blanks dropped, empty lines and `#` comments skipped, the
/// rest as it is. (The one reader of such files: the engine never opens
/// files a flag names.)
fn read_lines_file(p: &Path, what: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {what} {}", p.display()))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// `--env-file`s then `-e`s, resolved as Docker's CLI does: `KEY` alone
/// takes this process's value; when unset, an env file's is dropped and a
/// `-e`'s is sent bare (it unsets KEY in the container).
fn resolved_env(files: &[PathBuf], flags: &[String]) -> Result<Vec<String>> {
    let lookup = |k: &str| std::env::var(k).ok();
    let mut out = Vec::new();
    for f in files {
        for line in read_lines_file(f, "env file")? {
            out.extend(spec::parse_env(&line, &lookup).with_context(|| format!("env file {}", f.display()))?);
        }
    }
    for e in flags {
        out.push(spec::parse_env_flag(e, &lookup)?);
    }
    Ok(out)
}

/// `--network` (repeatable): the first is the container's network mode;
/// host, none and container: cannot be combined with others.
fn network_mode(a: &CreateArgs) -> Result<spec::NetworkMode> {
    let first = spec::NetworkMode::parse(a.network.first().map(String::as_str).unwrap_or(""))?;
    if a.network.len() > 1 {
        for n in &a.network {
            if !matches!(
                spec::NetworkMode::parse(n)?,
                spec::NetworkMode::Network(_) | spec::NetworkMode::Private(_)
            ) {
                bail!("conflicting options: cannot attach both user-defined and non-user-defined network-modes");
            }
        }
    }
    Ok(first)
}

/// One endpoint per `--network` NAME; `--network-alias`, `--ip`, `--ip6`
/// and `--mac-address` go to the first, as Docker does.
fn endpoint_specs(a: &CreateArgs) -> Vec<spec::EndpointSpec> {
    let mut eps: Vec<spec::EndpointSpec> = a
        .network
        .iter()
        .filter(|n| matches!(spec::NetworkMode::parse(n), Ok(spec::NetworkMode::Network(_))))
        .map(|n| spec::EndpointSpec {
            network: n.clone(),
            ..Default::default()
        })
        .collect();
    let any = !a.network_alias.is_empty() || a.ip.is_some() || a.ip6.is_some() || !a.more.link_local_ip.is_empty();
    if eps.is_empty() && any {
        // The default network: create refuses aliases and addresses there, in Docker's words.
        eps.push(spec::EndpointSpec {
            network: "bridge".into(),
            ..Default::default()
        });
    }
    if let Some(first) = eps.first_mut() {
        first.aliases = a.network_alias.clone();
        first.ipv4 = a.ip;
        first.ipv6 = a.ip6;
        first.mac_address = a.mac_address.clone();
        first.link_local_ips = a.more.link_local_ip.clone();
    }
    eps
}

/// `KEY=VALUE` values of a repeated flag as pairs (`KEY` alone: an empty value).
fn pairs(values: &[String]) -> std::collections::BTreeMap<String, String> {
    values
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Each value of a repeated flag through the engine's parser.
fn parse_all<T>(values: &[String], parse: fn(&str) -> berth_engine::Result<T>) -> Result<Vec<T>> {
    Ok(values.iter().map(|v| parse(v)).collect::<berth_engine::Result<_>>()?)
}

/// Docker's flags → the engine's typed request. Every value is parsed and
/// checked here or by the engine's validation; files named by flags
/// (`--env-file`, `--label-file`) are read here, relative paths are taken
/// from this process's working directory.
fn container_spec(a: &CreateArgs, command: &str) -> Result<ContainerSpec> {
    let mut it = a.image_and_cmd.iter();
    let image = it
        .next()
        .cloned()
        .ok_or_else(|| anyhow!("\"run\" requires at least 1 argument"))?;
    reject_flag_as_operand(&image, command)?;
    a.more.check()?;
    // The docker CLI's own check (the engine has the same rule): its words, exit 125.
    if a.more.log_driver.as_deref() == Some("none") && !a.more.log_opt.is_empty() {
        eprintln!("berth: invalid logging opts for driver none\n\nRun 'berth {command} --help' for more information");
        return Err(berth_engine::EngineError::exit(125, "").into());
    }
    // The docker CLI checks the name before it looks for the image.
    if let Err(e) = berth_store::Reference::parse(&image) {
        bail!("{e}");
    }
    let cwd = std::env::current_dir().context("finding the working directory")?;
    let mut labels = std::collections::BTreeMap::new();
    for f in &a.label_file {
        for line in read_lines_file(f, "label file")? {
            let (k, v) = spec::parse_label(&line)?;
            labels.insert(k, v);
        }
    }
    for l in &a.label {
        let (k, v) = spec::parse_label(l)?;
        labels.insert(k, v);
    }
    let mut mounts = Vec::new();
    for v in &a.volume {
        mounts.push(spec::parse_volume(v, &cwd)?);
    }
    for m in &a.mount {
        mounts.push(spec::parse_mount(m, &cwd)?);
    }
    for t in &a.tmpfs {
        mounts.push(spec::parse_tmpfs(t)?);
    }
    let mut ports = Vec::new();
    for p in &a.publish {
        ports.extend(spec::parse_publish(p)?);
    }
    let duration = |v: &Option<String>, flag: &str| -> Result<Option<std::time::Duration>> {
        v.as_deref()
            .map(spec::parse_duration)
            .transpose()
            .with_context(|| format!("--{flag}"))
    };
    let memory_swap = match a.memory_swap.as_deref() {
        Some("-1") => Some(spec::MemorySwap::Unlimited),
        Some(s) => Some(spec::MemorySwap::Limit(spec::parse_bytes("--memory-swap", s)?)),
        None => None,
    };
    Ok(ContainerSpec {
        image,
        command: it.cloned().collect(),
        name: a.name.clone(),
        entrypoint: a
            .entrypoint
            .as_ref()
            .map(|e| if e.is_empty() { vec![] } else { vec![e.clone()] }),
        env: resolved_env(&a.env_file, &a.env)?,
        working_dir: a.workdir.clone(),
        user: a.user.as_deref().map(spec::UserSpec::parse).transpose()?,
        hostname: a.hostname.clone(),
        domainname: a.domainname.clone(),
        labels,
        mounts,
        files: Vec::new(),
        read_only: a.read_only,
        resources: spec::Resources {
            memory: a
                .memory
                .as_deref()
                .map(|m| spec::parse_bytes("--memory", m))
                .transpose()?,
            memory_swap,
            nano_cpus: a.cpus.as_deref().map(spec::parse_cpus).transpose()?,
            cpu_shares: a.cpu_shares,
            pids_limit: a.pids_limit,
            ulimits: parse_all(&a.ulimit, spec::parse_ulimit)?,
            blkio_weight: a.more.blkio_weight,
            blkio_weight_device: parse_all(&a.more.blkio_weight_device, spec::parse_weight_device)?,
            device_read_bps: parse_all(&a.more.device_read_bps, spec::parse_throttle_bps)?,
            device_write_bps: parse_all(&a.more.device_write_bps, spec::parse_throttle_bps)?,
            device_read_iops: parse_all(&a.more.device_read_iops, spec::parse_throttle_iops)?,
            device_write_iops: parse_all(&a.more.device_write_iops, spec::parse_throttle_iops)?,
            device_cgroup_rules: a.more.device_cgroup_rule.clone(),
            cgroup_parent: a.more.cgroup_parent.clone(),
            cpu_rt_period: a.more.cpu_rt_period,
            cpu_rt_runtime: a.more.cpu_rt_runtime,
            cpuset_cpus: a.more.cpuset_cpus.clone(),
            cpuset_mems: a.more.cpuset_mems.clone(),
            cpu_period: a.more.cpu_period,
            cpu_quota: a.more.cpu_quota,
            memory_reservation: a
                .more
                .memory_reservation
                .as_deref()
                .map(|m| spec::parse_bytes("--memory-reservation", m))
                .transpose()?,
            kernel_memory: a
                .more
                .kernel_memory
                .as_deref()
                .map(|m| spec::parse_bytes("--kernel-memory", m))
                .transpose()?,
            memory_swappiness: a.more.memory_swappiness,
            oom_kill_disable: a.more.oom_kill_disable,
            oom_score_adj: a.more.oom_score_adj,
        },
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        security_opt: a.security_opt.clone(),
        devices: a.device.clone(),
        privileged: a.privileged,
        init: a.init,
        restart: spec::parse_restart(a.restart.as_deref().unwrap_or("no"))?,
        stop_signal: a.stop_signal.as_deref().map(spec::Signal::parse).transpose()?,
        stop_timeout: a.stop_timeout.map(|s| std::time::Duration::from_secs(s.into())),
        network: network_mode(a)?,
        endpoints: endpoint_specs(a),
        dns: spec::DnsSpec {
            servers: a.dns.clone(),
            search: a.dns_search.clone(),
            options: a.dns_option.clone(),
        },
        extra_hosts: a
            .add_host
            .iter()
            .map(|h| match h.split_once('=').or_else(|| h.split_once(':')) {
                Some((n, ip)) => Ok((n.to_string(), ip.to_string())),
                None => Err(anyhow::anyhow!(
                    "invalid argument {h:?} for \"--add-host\" flag: bad format for add-host: {h:?}"
                )),
            })
            .collect::<Result<_>>()?,
        links: a
            .link
            .iter()
            .map(|l| match l.split_once(':') {
                Some((c, al)) => (c.to_string(), al.to_string()),
                None => (l.clone(), l.clone()),
            })
            .collect(),
        mac_address: a.mac_address.clone(),
        ports,
        publish_all: a.publish_all,
        tty: a.tty,
        open_stdin: a.interactive,
        detached: false,
        auto_remove: a.rm,
        platform: a.platform.clone(),
        pull: spec::PullPolicy::parse(a.pull.as_deref().unwrap_or("missing"))?,
        userns: a.userns.userns.clone(),
        log_driver: a.more.log_driver.clone(),
        volumes_from: a.more.volumes_from.clone(),
        storage_opts: pairs(&a.more.storage_opt),
        log_opts: pairs(&a.more.log_opt),
        shm_size: a
            .more
            .shm_size
            .as_deref()
            .map(|s| spec::parse_bytes("--shm-size", s))
            .transpose()?,
        sysctls: parse_all(&a.more.sysctl, spec::parse_sysctl)?.into_iter().collect(),
        expose: parse_all(&a.more.expose, spec::parse_expose)?.concat(),
        group_add: a.more.group_add.clone(),
        use_api_socket: a.more.use_api_socket,
        pid: namespace(spec::NamespaceKind::Pid, &a.more.pid)?,
        ipc: namespace(spec::NamespaceKind::Ipc, &a.more.ipc)?,
        uts: namespace(spec::NamespaceKind::Uts, &a.more.uts)?,
        cgroupns: namespace(spec::NamespaceKind::Cgroup, &a.more.cgroupns)?,
        annotations: parse_all(&a.more.annotation, spec::parse_annotation)?
            .into_iter()
            .collect(),
        health: spec::HealthSpec {
            disabled: a.no_healthcheck,
            test: a.health_cmd.clone().map(|c| vec!["CMD-SHELL".to_string(), c]),
            interval: duration(&a.health_interval, "health-interval")?,
            timeout: duration(&a.health_timeout, "health-timeout")?,
            start_period: duration(&a.health_start_period, "health-start-period")?,
            start_interval: duration(&a.health_start_interval, "health-start-interval")?,
            retries: a.health_retries,
        },
    })
}

/// `--pid`, `--ipc`, `--uts`, `--cgroupns` (absent: the container's own).
/// A bad value of the first three is the docker CLI's own error; of
/// `--ipc`, its daemon's.
fn namespace(kind: spec::NamespaceKind, v: &Option<String>) -> Result<spec::NamespaceMode> {
    spec::NamespaceMode::parse(kind, v.as_deref().unwrap_or("")).map_err(|e| match kind {
        spec::NamespaceKind::Ipc => e.into(),
        _ => anyhow!("{}", e.message()),
    })
}

/// Creates the container (pulling its image as `--pull` says, with
/// Docker's lines on stderr); writes `--cidfile`. `detached`: `run -d`.
fn do_create(engine: &Engine, a: &CreateArgs, start_next: bool, detached: bool) -> Result<String> {
    if let Some(f) = &a.cidfile {
        if f.exists() {
            bail!(
                "Container ID file found, make sure the other container isn't running or delete {}",
                f.display()
            );
        }
    }
    let mut spec = container_spec(a, if start_next { "run" } else { "create" })?;
    spec.detached = detached;
    let progress = super::layer_progress::plain_to_stderr();
    let created = engine.create_container_pulling(
        &spec,
        CreateOptions {
            start_next,
            ..Default::default()
        },
        &progress,
    )?;
    for w in &created.warnings {
        eprintln!("WARNING: {w}");
    }
    if let Some(f) = &a.cidfile {
        std::fs::write(f, &created.id).with_context(|| format!("writing the container ID file {}", f.display()))?;
    }
    Ok(created.id)
}

fn run(engine: &Engine, a: RunArgs) -> Result<i32> {
    // `-it` in the foreground: the container runs under its own monitor
    // and this process attaches to it, so Ctrl-P Ctrl-Q can leave it running.
    let interactive_tty = !a.detach && a.create.tty && a.create.interactive;
    let keys = detach_keys(a.detach_keys.as_deref())?;
    if interactive_tty {
        need_terminal()?;
    }
    let id = do_create(engine, &a.create, true, a.detach)?;
    if a.detach {
        // The docker CLI prints the ID of a created container even when
        // it then fails to start.
        let started = engine.start_detached(&id, terminal::console_size());
        println!("{id}");
        started?;
        return Ok(0);
    }
    if interactive_tty {
        let opts = AttachOptions {
            detach_keys: keys,
            close_stdin_on_eof: true,
        };
        let signals = if a.sig_proxy { Signals::Proxy } else { Signals::Own };
        let (_term, streams) = Terminal::open(true, true, true, signals)?;
        let end = engine.start_and_attach(&id, &opts, streams)?;
        return attach_exit(engine, &id, end, false);
    }
    // In the foreground, in this process: signals always go to the
    // container (Ctrl-C stops it, as with docker run).
    let (_term, streams) = Terminal::open(a.create.interactive, a.create.tty, a.create.tty, Signals::Proxy)?;
    Ok(engine.run_attached(&id, streams)?)
}

/// `-it` needs this process's stdin to be a terminal: Docker's words and
/// exit code (1, for `run` too) when it is not. `BERTH_TTY_OVER_PIPE=1`
/// lets a session run over pipes instead (what the attach tests drive).
fn need_terminal() -> Result<()> {
    let over_pipe = std::env::var_os("BERTH_TTY_OVER_PIPE").is_some_and(|v| v == "1");
    if !io::stdin().is_terminal() && !over_pipe {
        eprintln!("the input device is not a TTY");
        return Err(berth_engine::EngineError::exit(1, "").into());
    }
    Ok(())
}

/// Parses `--detach-keys` (absent or empty: Ctrl-P Ctrl-Q).
fn detach_keys(spec: Option<&str>) -> Result<Vec<u8>> {
    berth_runtime::attach::parse_detach_keys(spec.unwrap_or("")).map_err(|e| anyhow!(e))
}

/// The exit code after an attach session: the container's; after a
/// detach 0 (`run`, `start`) or 1 with Docker's message (`attach`).
fn attach_exit(engine: &Engine, id: &str, end: AttachEnd, from_attach: bool) -> Result<i32> {
    match end {
        AttachEnd::Exited(code) => Ok(code),
        AttachEnd::Detached if from_attach => {
            eprintln!("read escape sequence");
            Ok(1)
        }
        AttachEnd::Detached | AttachEnd::Closed => Ok(0),
        AttachEnd::Lost => match engine.container(id) {
            Ok(c) if !c.state.is_running() => Ok(c.state.exit_code),
            _ => bail!(
                "lost the connection to container {id}'s monitor before it reported an exit; `berth ps -a` shows its state"
            ),
        },
    }
}

fn create(engine: &Engine, a: CreateArgs) -> Result<i32> {
    let id = do_create(engine, &a, false, false)?;
    println!("{id}");
    Ok(0)
}

fn start(engine: &Engine, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let keys = detach_keys(a.detach_keys.as_deref())?;
        let c = engine.container(&a.containers[0])?;
        let opts = AttachOptions {
            detach_keys: keys,
            close_stdin_on_eof: a.interactive,
        };
        let stdin = a.interactive && c.cfg.open_stdin;
        let (_term, streams) = Terminal::open(stdin, c.cfg.tty, c.cfg.tty && stdin, Signals::Proxy)?;
        let end = if c.state.is_running() {
            engine.attach_container(&c.rec.id, &opts, streams)?
        } else {
            engine.start_and_attach(&c.rec.id, &opts, streams)?
        };
        return attach_exit(engine, &c.rec.id, end, false);
    }
    let mut failed = Vec::new();
    for c in &a.containers {
        let r = engine.container(c).and_then(|ctr| {
            if ctr.state.is_running() {
                return Ok(());
            }
            engine.start_detached(c, terminal::console_size())
        });
        match r {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("{}", super::error_text(&e.into()));
                failed.push(c.as_str());
            }
        }
    }
    if failed.is_empty() {
        return Ok(0);
    }
    // Docker's summary line after each container's own error.
    eprintln!("Error: failed to start containers: {}", failed.join(", "));
    Ok(1)
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`: `80/tcp -> 0.0.0.0:8000` lines,
/// or only the host addresses of one port.
fn port(engine: &Engine, a: PortArgs) -> Result<i32> {
    let c = engine.container(&a.container)?;
    let bindings = engine.container_ports(&c);
    let mut out = String::new();
    match a.port.as_deref() {
        None => {
            for b in &bindings {
                out.push_str(&format!("{} -> {}\n", b.key(), b.host_addr()));
            }
        }
        Some(p) => {
            let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            let num: u16 = num
                .parse()
                .map_err(|_| anyhow!("invalid port {p:?}: use PRIVATE_PORT[/PROTO], e.g. 80/tcp"))?;
            let proto = berth_net::Proto::parse(proto).map_err(|e| anyhow!("invalid port {p:?}: {e}"))?;
            let hits: Vec<_> = bindings
                .iter()
                .filter(|b| b.container_port == num && b.proto == proto)
                .collect();
            if hits.is_empty() {
                // The docker CLI's words, the port as given, "Error: " its own.
                bail!("Error: No public port '{p}' published for {}", a.container);
            }
            for b in hits {
                out.push_str(&format!("{}\n", b.host_addr()));
            }
        }
    }
    io::stdout().write_all(out.as_bytes())?;
    Ok(0)
}

fn ps(engine: &Engine, a: PsArgs) -> Result<i32> {
    let filter = PsFilter::parse(&a.filter)?;
    let limit = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n > 0).map(|n| n as usize)
    };
    let all = a.all || limit.is_some();
    let mut list = engine.ps(all, &filter)?;
    if let Some(n) = limit {
        list.truncate(n);
    }
    if a.quiet {
        let mut out = String::new();
        for c in &list {
            out.push_str(if a.no_trunc { &c.rec.id } else { c.short_id() });
            out.push('\n');
        }
        io::stdout().write_all(out.as_bytes())?;
        return Ok(0);
    }
    // A template that shows the size has it measured, as Docker's.
    let size = a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let rows: Vec<Value> = list.iter().map(|c| engine.ps_row(c, a.no_trunc, size)).collect();
    let default = if a.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    let spec = match a.format.as_deref() {
        None | Some("") | Some("table") => default.to_string(),
        Some(f) => f.to_string(),
    };
    let headers: HashMap<&str, &str> = [
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("Status", "STATUS"),
        ("State", "STATE"),
        ("Size", "SIZE"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("Networks", "NETWORKS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
    ]
    .into_iter()
    .collect();
    // `ps`'s words for a template that fails as it runs.
    Format::parse_ps(Some(&spec))?
        .print_items(&rows, &headers)
        .map_err(|e| {
            let text = e.to_string();
            anyhow!(
                "failed to execute template: {}",
                text.strip_prefix("template parsing error: ").unwrap_or(&text)
            )
        })?;
    Ok(0)
}

/// A `--since`/`--until` value: RFC 3339, a unix timestamp, or a Go
/// duration relative to now (the engine's one reading of times).
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    Ok(berth_engine::containers::prune::parse_time(s)?)
}

fn logs(engine: &Engine, a: LogsArgs) -> Result<i32> {
    let tail = match a.tail.as_str() {
        "all" | "" => None,
        n => Some(
            n.parse::<i64>()
                .map_err(|_| anyhow!("invalid --tail {n:?}: use a number or \"all\""))?
                .max(0) as usize,
        ),
    };
    let opts = berth_runtime::LogOptions {
        follow: a.follow,
        tail,
        timestamps: a.timestamps,
        details: a.details,
        since: a.since.as_deref().map(parse_time).transpose()?,
        until: a.until.as_deref().map(parse_time).transpose()?,
    };
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    engine.container_logs(&a.container, &opts, &mut out, &mut err)?;
    out.flush()?;
    Ok(0)
}

fn wait(engine: &Engine, a: NamesArgs) -> Result<i32> {
    let mut failed = false;
    for c in &a.containers {
        match engine.wait_container(c) {
            Ok(code) => println!("{code}"),
            Err(e) => {
                eprintln!("{}", super::error_text(&e.into()));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn exec(engine: &Engine, a: ExecArgs) -> Result<i32> {
    let (ctr, cmd) = a
        .container_and_cmd
        .split_first()
        .ok_or_else(|| anyhow!("exec needs a container and a command"))?;
    reject_flag_as_operand(ctr, "exec")?;
    if a.tty && a.interactive && !a.detach {
        need_terminal()?;
    }
    let env = resolved_env(&a.env_file, &a.env)?;
    let opts = ExecOptions {
        cmd: cmd.to_vec(),
        env,
        working_dir: a.workdir.clone(),
        user: a.user.clone(),
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        privileged: a.privileged,
    };
    // The runtime takes this terminal as its own (raw mode, window size,
    // signals), as `docker exec -it` does; `-d` keeps nothing of ours open.
    let streams = if a.detach {
        None
    } else {
        Some(Terminal::plain(a.interactive, a.tty)?)
    };
    Ok(engine.exec_in_container(ctr, &opts, streams)?)
}

/// `CONTAINER:PATH` or a local path (anything starting with `/` or `.`, or
/// without a colon).
fn cp_end(s: &str) -> CpEnd {
    if s.starts_with('/') || s.starts_with('.') || s == "-" {
        return CpEnd::Host(s.to_string());
    }
    match s.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.contains('/') => CpEnd::Container {
            word: c.to_string(),
            path: if p.is_empty() { "/".into() } else { p.to_string() },
        },
        _ => CpEnd::Host(s.to_string()),
    }
}

/// What `cp CTR:SRC DEST` wrote: DEST itself, or DEST/<name of SRC> when
/// DEST is a directory that was there.
fn cp_dest_of(src: &str, dest: &Path) -> PathBuf {
    let name = Path::new(src.trim_end_matches('/')).file_name();
    match name {
        Some(n) if dest.join(n).exists() && dest.is_dir() && !src.ends_with("/.") => dest.join(n),
        _ => dest.to_path_buf(),
    }
}

/// The size of the tar stream `cp` moves for `p` (what Docker's "Successfully
/// copied 2.05kB" counts): a 512-byte header per entry, contents padded to
/// 512, and the 1024-byte end.
fn tar_size(p: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        let mut n = 512;
        if m.is_file() {
            n += m.len().div_ceil(512) * 512;
        } else if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                n += rd.flatten().map(|e| walk(&e.path())).sum::<u64>();
            }
        }
        n
    }
    walk(p) + 1024
}

fn cp(engine: &Engine, a: CpArgs) -> Result<i32> {
    let o = CpOptions {
        archive: a.archive,
        follow_link: a.follow_link,
    };
    match (cp_end(&a.src), cp_end(&a.dest)) {
        (CpEnd::Container { word, path }, CpEnd::Host(dest)) => {
            if dest == "-" && io::stdout().is_terminal() {
                bail!("cowardly refusing to write a tar archive to a terminal; redirect the output");
            }
            let stdout = io::stdout();
            let mut out = stdout.lock();
            engine.copy_from_container(&word, &path, &dest, &o, &mut out)?;
            out.flush()?;
            if dest != "-" && !a.quiet && io::stderr().is_terminal() {
                let copied = cp_dest_of(&path, Path::new(&dest));
                eprintln!("Successfully copied {} to {dest}", human_size(tar_size(&copied)));
            }
        }
        (CpEnd::Host(src), CpEnd::Container { word, path }) => {
            engine.copy_into_container(&src, &word, &path, &o, Box::new(io::stdin()))?;
            if src != "-" && !a.quiet && io::stderr().is_terminal() {
                eprintln!(
                    "Successfully copied {} to {word}:{path}",
                    human_size(tar_size(Path::new(&src)))
                );
            }
        }
        (CpEnd::Container { .. }, CpEnd::Container { .. }) => {
            bail!("copying between containers is not supported")
        }
        (CpEnd::Host(_), CpEnd::Host(_)) => {
            bail!("must specify at least one container source (CONTAINER:PATH)")
        }
    }
    Ok(0)
}

fn top(engine: &Engine, a: TopArgs) -> Result<i32> {
    let t = engine.container_top_table(&a.container, &a.ps_args.join(" "))?;
    let rows: Vec<Vec<String>> = std::iter::once(t.titles).chain(t.processes).collect();
    // Docker's table: columns at least 20 wide, 3 spaces apart.
    let ncols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..ncols)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
                + 3
        })
        .map(|w| w.max(20))
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    io::stdout().write_all(out.as_bytes())?;
    Ok(0)
}

/// go-units BytesSize: binary units, 4 significant digits ("1.5MiB").
fn bytes_size(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    // Go's %.4g: four significant digits.
    let decimals = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}{}", units[i])
}

fn stats(engine: &Engine, a: StatsArgs) -> Result<i32> {
    let headers: HashMap<&str, &str> = [
        ("Container", "CONTAINER"),
        ("ID", "CONTAINER ID"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ]
    .into_iter()
    .collect();
    let spec = a.format.clone().unwrap_or_else(|| {
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
            .into()
    });
    let fmt = Format::parse(Some(&spec))?;
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    loop {
        let list = if a.containers.is_empty() {
            engine.ps(a.all, &PsFilter::default())?
        } else {
            a.containers
                .iter()
                .map(|c| engine.container(c))
                .collect::<berth_engine::Result<Vec<_>>>()?
        };
        let first: Vec<Option<berth_runtime::Stats>> = list
            .iter()
            .map(|c| c.state.is_running().then(|| engine.container_stats(c).ok()).flatten())
            .collect();
        let t0 = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let mut rows = Vec::new();
        for (c, s0) in list.iter().zip(first) {
            let s1 = c.state.is_running().then(|| engine.container_stats(c).ok()).flatten();
            let (cpu, mem, pids) = match (&s0, &s1) {
                (Some(a0), Some(a1)) => {
                    let dt = t0.elapsed().as_nanos() as f64;
                    let used = a1.cpu_usage_ns.saturating_sub(a0.cpu_usage_ns) as f64;
                    let limit = a1.memory_limit.unwrap_or_else(berth_engine::system::host_memory);
                    let pct = if limit > 0 {
                        a1.memory_usage as f64 * 100.0 / limit as f64
                    } else {
                        0.0
                    };
                    (
                        format!("{:.2}%", used * 100.0 / dt),
                        (
                            format!("{} / {}", bytes_size(a1.memory_usage), bytes_size(limit)),
                            format!("{pct:.2}%"),
                        ),
                        a1.pids_current.to_string(),
                    )
                }
                _ => ("0.00%".into(), ("0B / 0B".into(), "0.00%".into()), "0".into()),
            };
            let _ = ncpu;
            let pair = |(a, b): (u64, u64)| {
                format!(
                    "{} / {}",
                    berth_engine::human::human_size(a),
                    berth_engine::human::human_size(b)
                )
            };
            let (net_io, block_io) = match &s1 {
                Some(s) => (pair(s.net_totals()), pair(s.blkio_totals())),
                None => ("0B / 0B".to_string(), "0B / 0B".to_string()),
            };
            rows.push(json!({
                "Container": c.short_id(),
                "ID": if a.no_trunc { c.rec.id.clone() } else { c.short_id().to_string() },
                "Name": c.rec.name,
                "CPUPerc": cpu,
                "MemUsage": mem.0,
                "MemPerc": mem.1,
                "NetIO": net_io,
                "BlockIO": block_io,
                "PIDs": pids,
            }));
        }
        if !a.no_stream {
            print!("\x1b[2J\x1b[H");
        }
        fmt.print_items(&rows, &headers)?;
        io::stdout().flush()?;
        if a.no_stream {
            return Ok(0);
        }
    }
}

/// Joins a running container's output (and stdin, when it was created
/// with `-i`) until it exits or the user detaches.
fn attach(engine: &Engine, a: AttachArgs) -> Result<i32> {
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let c = engine.container(&a.container)?;
    let opts = AttachOptions {
        detach_keys: keys,
        close_stdin_on_eof: false,
    };
    let stdin = !a.no_stdin && c.cfg.open_stdin;
    let signals = if a.sig_proxy { Signals::Proxy } else { Signals::Own };
    let (_term, streams) = Terminal::open(stdin, c.cfg.tty, c.cfg.tty && stdin, signals)?;
    let end = engine.attach_container(&c.rec.id, &opts, streams)?;
    attach_exit(engine, &c.rec.id, end, true)
}

fn export(engine: &Engine, a: ExportArgs) -> Result<i32> {
    match &a.output {
        Some(p) => {
            let tmp = p.with_extension("berth-tmp");
            let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let r = engine
                .export_container(&a.container, &mut f)
                .and_then(|_| Ok(f.sync_all()?));
            if let Err(e) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            std::fs::rename(&tmp, p).with_context(|| format!("writing {}", p.display()))?;
        }
        None => {
            if io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            engine.export_container(&a.container, &mut out)?;
            out.flush()?;
        }
    }
    Ok(0)
}

fn prune(engine: &Engine, a: PruneArgs) -> Result<i32> {
    let filter = berth_engine::containers::prune::PruneFilter::parse(&a.filter)?;
    if !a.force && !super::images::confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(0);
    }
    let (removed, freed) = engine.prune_containers_filtered(&filter)?;
    if !removed.is_empty() {
        println!("Deleted Containers:");
        for id in &removed {
            println!("{id}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size_4(freed));
    Ok(0)
}

/// `berth __monitor DIR`: supervise a detached container until it is done
/// (the engine's monitor, as `berth-monitor` runs it).
pub fn monitor(_root: &Path, a: &MonitorArgs) -> Result<i32> {
    Ok(berth_engine::monitor::detached_monitor_main(&a.container_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_ends() {
        assert!(matches!(cp_end("web:/a"), CpEnd::Container { .. }));
        assert!(matches!(cp_end("./a:b"), CpEnd::Host(_)));
        assert!(matches!(cp_end("/x"), CpEnd::Host(_)));
        assert!(matches!(cp_end("-"), CpEnd::Host(_)));
        assert!(matches!(cp_end("file"), CpEnd::Host(_)));
    }

    #[test]
    fn binary_sizes() {
        assert_eq!(bytes_size(1536 * 1024), "1.5MiB");
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(25_276_000_000), "23.54GiB");
    }
}
