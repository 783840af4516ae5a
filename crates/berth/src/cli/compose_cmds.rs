//! The commands of `berth compose` that act on containers: their flags as
//! Docker Compose v2 spells them, and how their results are drawn.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use berth_compose::convert;
use berth_compose::identity;
use berth_compose::ops::{number_of, service_of, BuildWhen, DownOptions, UpOptions};
use berth_engine::build::BuildResult;
use berth_engine::containers::view::{command_string, status_string};
use berth_engine::containers::Container;
use berth_engine::progress::{Event as ProgressEvent, Progress};
use berth_engine::spec;
use berth_engine::streams::{AttachOptions, ExecOptions};
use berth_engine::{Engine, EngineError};
use serde_json::{json, Value};

use super::compose::{ComposeCommand, Ctx};
use super::terminal::{self, Signals, Terminal};

/// `up` (its `-V` is compose's, not `--version`).
#[derive(clap::Args, Debug)]
#[command(disable_version_flag = true)]
pub struct UpArgs {
    /// Detached mode: run containers in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't build an image, even if it's missing
    #[arg(long, conflicts_with = "build")]
    pub no_build: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long)]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long, conflicts_with = "force_recreate")]
    pub no_recreate: bool,
    /// Don't start linked services
    #[arg(long)]
    pub no_deps: bool,
    /// Scale SERVICE to NUM instances
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Wait for services to be running|healthy; implies detached mode
    #[arg(long)]
    pub wait: bool,
    /// Maximum duration in seconds to wait for the project to be running|healthy
    #[arg(long, value_name = "SECONDS")]
    pub wait_timeout: Option<u64>,
    /// Stops all containers if any container was stopped
    #[arg(long)]
    pub abort_on_container_exit: bool,
    /// Return the exit code of the selected service container; implies --abort-on-container-exit
    #[arg(long, value_name = "SERVICE")]
    pub exit_code_from: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// Recreate anonymous volumes instead of retrieving data from the previous containers
    #[arg(short = 'V', long)]
    pub renew_anon_volumes: bool,
    /// Don't print prefix in logs
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Restrict attaching to the specified services
    #[arg(long, value_name = "SERVICE", conflicts_with = "attach_dependencies")]
    pub attach: Vec<String>,
    /// Automatically attach to log output of dependent services
    #[arg(long)]
    pub attach_dependencies: bool,
    /// Do not attach (stream logs) to the specified services
    #[arg(long, value_name = "SERVICE")]
    pub no_attach: Vec<String>,
    /// Shutdown timeout in seconds
    #[arg(short, long, value_name = "SECONDS")]
    pub timeout: Option<u32>,
    /// Produce monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// Don't start the services after creating them
    #[arg(long, conflicts_with_all = ["detach", "wait"])]
    pub no_start: bool,
    /// Pull image before running
    #[arg(long, value_parser = ["always", "missing", "never"])]
    pub pull: Option<String>,
    /// Services
    pub services: Vec<String>,
}

/// `create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Don't build an image, even if it's missing
    #[arg(long, conflicts_with = "build")]
    pub no_build: bool,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long)]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long, conflicts_with = "force_recreate")]
    pub no_recreate: bool,
    /// Scale SERVICE to NUM instances
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// Pull image before running
    #[arg(long, value_parser = ["always", "missing", "never"])]
    pub pull: Option<String>,
    /// Services
    pub services: Vec<String>,
}

/// `down`.
#[derive(clap::Args, Debug)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section of the Compose file and anonymous volumes attached to containers
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove images used by services: "local" remove only images that don't have a custom tag, "all" remove all images
    #[arg(long, value_parser = ["local", "all"])]
    pub rmi: Option<String>,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short, long, value_name = "SECONDS")]
    pub timeout: Option<u32>,
}

/// `ps`.
#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Show all stopped containers (including those created by the run command)
    #[arg(short, long)]
    pub all: bool,
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display services
    #[arg(long)]
    pub services: bool,
    /// Format output: table, json, or a Go template
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Filter services by status
    #[arg(long)]
    pub status: Vec<String>,
    /// Filter services by a property (supported filters: status)
    #[arg(long, value_name = "status=STATUS")]
    pub filter: Vec<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Services
    pub service: Vec<String>,
}

/// `logs`.
#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp or relative duration (42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative duration
    #[arg(long)]
    pub until: Option<String>,
    /// Don't print prefix in logs
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Produce monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// index of the container if service has multiple replicas
    #[arg(long)]
    pub index: Option<u32>,
    /// Services
    pub services: Vec<String>,
}

/// `build`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Set build-time variables for services
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Don't print anything to stdout
    #[arg(short, long)]
    pub quiet: bool,
    /// Services
    pub services: Vec<String>,
}

/// Commands that take only services.
#[derive(clap::Args, Debug)]
pub struct ServicesArgs {
    /// Services
    pub services: Vec<String>,
}

/// `pull`.
#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// Pull what it can and ignores images with pull failures
    #[arg(long)]
    pub ignore_pull_failures: bool,
    /// Ignore images that can be built
    #[arg(long)]
    pub ignore_buildable: bool,
    /// Pull without printing progress information
    #[arg(short, long)]
    pub quiet: bool,
    /// Services
    pub services: Vec<String>,
}

/// `push`.
#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Push what it can and ignores images with push failures
    #[arg(long)]
    pub ignore_push_failures: bool,
    /// Push without printing progress information
    #[arg(short, long)]
    pub quiet: bool,
    /// Services
    pub services: Vec<String>,
}

/// `wait`.
#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    /// Drops project when the first container stops
    #[arg(long)]
    pub down_project: bool,
    /// Services
    #[arg(required = true)]
    pub services: Vec<String>,
}

/// `stop` and `restart`.
#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short, long, value_name = "SECONDS")]
    pub timeout: Option<u32>,
    /// Services
    pub services: Vec<String>,
}

/// `kill`.
#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// SIGNAL to send to the container
    #[arg(short, long, default_value = "SIGKILL")]
    pub signal: String,
    /// Services
    pub services: Vec<String>,
}

/// `rm`.
#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Don't ask to confirm removal
    #[arg(short, long)]
    pub force: bool,
    /// Stop the containers, if required, before removing
    #[arg(short, long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers
    #[arg(short, long)]
    pub volumes: bool,
    /// Services
    pub services: Vec<String>,
}

/// `images`.
#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output (table or json)
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Services
    pub services: Vec<String>,
}

/// `port`.
#[derive(clap::Args, Debug)]
pub struct PortArgs {
    /// tcp or udp
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// The service
    pub service: String,
    /// The private port
    pub private_port: u16,
}

/// `cp`.
#[derive(clap::Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Index of the container if service has multiple replicas (copying in: all of them by default)
    #[arg(long)]
    pub index: Option<u32>,
    /// SERVICE:SRC_PATH or a local path (- for a tar on stdin)
    pub src: String,
    /// SERVICE:DEST_PATH or a local path (- for a tar on stdout)
    pub dest: String,
}

/// `events`.
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Output events as a stream of json objects
    #[arg(long)]
    pub json: bool,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
    /// Only these services' events
    pub services: Vec<String>,
}

/// `run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached (the default)
    #[arg(short, long)]
    pub interactive: bool,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VAL")]
    pub env: Vec<String>,
    /// Override the entrypoint of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Run command with all service's ports enabled and mapped to the host
    #[arg(long)]
    pub service_ports: bool,
    /// Bind mount a volume
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Run as specified username or uid
    #[arg(short, long)]
    pub user: Option<String>,
    /// Don't start linked services
    #[arg(long)]
    pub no_deps: bool,
    /// Build image before starting container
    #[arg(long)]
    pub build: bool,
    /// Add Linux capabilities
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Add or override a label
    #[arg(short, long, value_name = "KEY=VAL")]
    pub label: Vec<String>,
    /// Use the service's network aliases in the network(s) the container connects to
    #[arg(long)]
    pub use_aliases: bool,
    /// The service, then the command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "SERVICE [COMMAND] [ARGS...]"
    )]
    pub service_and_cmd: Vec<String>,
}

/// `exec`.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: Run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Disable pseudo-TTY allocation (default: auto-detected)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VAL")]
    pub env: Vec<String>,
    /// Path to workdir directory for this command
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Run the command as this user
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the process
    #[arg(long)]
    pub privileged: bool,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// The service, then the command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "SERVICE COMMAND [ARGS...]"
    )]
    pub service_and_cmd: Vec<String>,
}

/// Runs one of the commands above.
pub fn dispatch(ctx: &Ctx<'_>, cmd: ComposeCommand) -> Result<i32> {
    let c = ctx.compose;
    match cmd {
        ComposeCommand::Up(a) => up(ctx, a),
        ComposeCommand::Create(a) => {
            let o = UpOptions {
                services: a.services.clone(),
                force_recreate: a.force_recreate,
                no_recreate: a.no_recreate,
                scale: scales(&a.scale)?,
                remove_orphans: a.remove_orphans,
                start: false,
                build: build_when(a.build, a.no_build),
                pull: a.pull.clone(),
                ..Default::default()
            };
            print_warnings(berth_compose::support::unsupported(&c.loaded.project));
            build_for_up(ctx, &o)?;
            print_warnings(c.up(&o)?);
            Ok(0)
        }
        ComposeCommand::Down(a) => {
            c.down(&DownOptions {
                volumes: a.volumes,
                rmi: a.rmi,
                remove_orphans: a.remove_orphans,
                timeout: a.timeout,
            })?;
            Ok(0)
        }
        ComposeCommand::Ps(a) => ps(ctx, a),
        ComposeCommand::Logs(a) => logs(ctx, a),
        ComposeCommand::Build(a) => {
            let args = build_args(&a.build_args)?;
            let names = if a.services.is_empty() {
                c.loaded.project.services.keys().cloned().collect()
            } else {
                a.services.clone()
            };
            for n in &names {
                c.check_service(n)?;
            }
            // Independent services side by side (each build's steps are
            // labelled with its service), as compose builds them.
            let names: Vec<String> = names
                .into_iter()
                .filter(|n| c.loaded.project.services[n].build.is_some())
                .collect();
            let label = names.len() > 1;
            c.par_map(&names, |c, n| {
                build_service(c, n, &args, a.no_cache, a.pull, a.quiet, label)
                    .map_err(|e| EngineError::exit(1, format!("{e:#}")))
            })?;
            Ok(0)
        }
        ComposeCommand::Pull(a) => pull(ctx, &a),
        ComposeCommand::Push(a) => push(ctx, &a),
        ComposeCommand::Run(a) => run(ctx, a),
        ComposeCommand::Exec(a) => exec(ctx, a),
        ComposeCommand::Start(a) => {
            c.start(&a.services)?;
            Ok(0)
        }
        ComposeCommand::Stop(a) => {
            c.stop(&a.services, a.timeout)?;
            Ok(0)
        }
        ComposeCommand::Restart(a) => {
            c.restart(&a.services, a.timeout)?;
            Ok(0)
        }
        ComposeCommand::Kill(a) => {
            c.kill(&a.services, &a.signal)?;
            Ok(0)
        }
        ComposeCommand::Rm(a) => {
            let n = c.rm(&a.services, a.stop, a.volumes)?;
            if n == 0 {
                eprintln!("No stopped containers");
            }
            Ok(0)
        }
        ComposeCommand::Pause(a) => {
            c.pause(&a.services, true)?;
            Ok(0)
        }
        ComposeCommand::Unpause(a) => {
            c.pause(&a.services, false)?;
            Ok(0)
        }
        ComposeCommand::Top(a) => top(ctx, &a.services),
        ComposeCommand::Cp(a) => cp(ctx, a),
        ComposeCommand::Events(a) => events(ctx, a),
        ComposeCommand::Images(a) => images(ctx, a),
        ComposeCommand::Port(a) => port(ctx, a),
        ComposeCommand::Wait(a) => wait(ctx, a),
        ComposeCommand::Config(_) | ComposeCommand::Version(_) | ComposeCommand::Ls(_) => {
            unreachable!("handled by compose::run")
        }
    }
}

/// `wait`: blocks until the first container of the services stops (each
/// waited for on an engine of its own) and returns its exit code; with
/// `--down-project`, the project goes down then.
fn wait(ctx: &Ctx<'_>, a: WaitArgs) -> Result<i32> {
    let c = ctx.compose;
    for s in &a.services {
        c.check_service(s)?;
    }
    let list = c.containers_of(&a.services, false)?;
    if list.is_empty() {
        bail!("no containers for the project");
    }
    let (tx, rx) = mpsc::channel();
    for ctr in &list {
        let (tx, id) = (tx.clone(), ctr.rec.id.clone());
        let (root, runtime) = (ctx.root.to_path_buf(), ctx.runtime.clone());
        // Not joined: the process ends with the first answer.
        std::thread::spawn(move || {
            let r = Engine::open(&root, runtime)
                .and_then(|e| e.wait_for_condition(&id, berth_engine::wait::WaitCondition::NotRunning, &|| false));
            let _ = tx.send(r);
        });
    }
    drop(tx);
    let code = rx.recv().map_err(|_| anyhow!("waiting for the containers failed"))??;
    if a.down_project {
        c.down(&DownOptions::default())?;
    }
    Ok(code)
}

fn print_warnings(w: Vec<String>) {
    for w in w {
        eprintln!("WARN[0000] {w}");
    }
}

fn build_when(build: bool, no_build: bool) -> BuildWhen {
    if build {
        BuildWhen::Always
    } else if no_build {
        BuildWhen::Never
    } else {
        BuildWhen::Missing
    }
}

fn scales(items: &[String]) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for s in items {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid --scale {s:?}: use SERVICE=NUM"))?;
        let n: u64 = v
            .parse()
            .map_err(|_| anyhow!("invalid --scale {s:?}: use SERVICE=NUM"))?;
        out.insert(k.to_string(), n);
    }
    Ok(out)
}

fn build_args(items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in items {
        match a.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

/// Builds service `name`'s image (nothing when it has no `build`), with
/// the builder's plain lines on stderr.
fn build_service(
    c: &berth_compose::ops::Compose<'_>,
    name: &str,
    args: &BTreeMap<String, String>,
    no_cache: bool,
    pull: bool,
    quiet: bool,
    label: bool,
) -> Result<()> {
    let Some(mut req) = convert::build_request(c.loaded, name, args, no_cache, pull)? else {
        return Ok(());
    };
    if label {
        req.options.label_prefix = Some(name.to_string());
    }
    // build.ssh and build.cache_from/cache_to: agent sockets and cache
    // directories of this host, read as `berth build --ssh/--cache-*`.
    if let Some(b) = c.loaded.project.services.get(name).and_then(|s| s.build.as_ref()) {
        for spec in &b.ssh {
            let (id, path) =
                super::build::ssh_agent(spec).map_err(|e| anyhow!("service {name:?}: build.ssh: {e:#}"))?;
            req.options.ssh.insert(id, path);
        }
        let mut local = |key: &str, spec: &str, dir_key: &str| -> Result<Option<PathBuf>> {
            match super::build::cache_spec(&format!("build.{key}"), spec, dir_key)
                .map_err(|e| anyhow!("service {name:?}: {e:#}"))?
            {
                super::build::CacheSpec::Local(d) => Ok(Some(c.loaded.working_dir.join(d))),
                // An image: its history serves as a cache (the classic builder's way).
                super::build::CacheSpec::Image(i) if key == "cache_from" => {
                    req.options.cache_from_images.push(i);
                    Ok(None)
                }
                super::build::CacheSpec::Image(i) => bail!(
                    "service {name:?}: build.cache_to {i}: give type=local,dest=DIR (berth does not export a cache to an image)"
                ),
                super::build::CacheSpec::Registry(_) => bail!(
                    "service {name:?}: build.{key} {spec}: registry caches are not supported by berth compose yet \
                     (use type=local,{dir_key}=DIR, or `berth build --{}`)",
                    key.replace('_', "-")
                ),
            }
        };
        for spec in &b.cache_from {
            if let Some(d) = local("cache_from", spec, "src")? {
                req.options.cache_from.push(d);
            }
        }
        if let Some(spec) = b.cache_to.first() {
            if b.cache_to.len() > 1 {
                bail!("service {name:?}: build.cache_to: berth writes one cache; give one entry");
            }
            req.options.cache_to = local("cache_to", spec, "dest")?;
        }
    }
    let mode = if quiet {
        berth_build::executor::ProgressMode::Quiet
    } else {
        berth_build::executor::ProgressMode::Plain
    };
    let view = Arc::new(berth_build::executor::Progress::new(Box::new(io::stderr()), mode));
    let v = view.clone();
    let events = Progress::new(move |e| {
        if let ProgressEvent::Build(b) = e {
            v.apply(b)
        }
    });
    let tag = req.tags[0].clone();
    (c.report)(berth_compose::ops::Event {
        kind: "Service",
        name: name.to_string(),
        status: "Building".into(),
    });
    let res = c.engine.build(req, &events);
    view.finish();
    match res? {
        BuildResult::Built(o) => {
            (c.report)(berth_compose::ops::Event {
                kind: "Service",
                name: name.to_string(),
                status: format!("Built ({tag} {})", o.id.short()),
            });
            Ok(())
        }
        BuildResult::Failed(e) => Err(EngineError::exit(1, format!("failed to solve: service {name:?}: {e}")).into()),
    }
}

/// Builds what `up`/`create` need before containers are made.
fn build_for_up(ctx: &Ctx<'_>, o: &UpOptions) -> Result<()> {
    let c = ctx.compose;
    let sel = c.selection(&o.services, o.no_deps)?;
    let names = c.to_build(&sel, o.build);
    let label = names.len() > 1;
    c.par_map(&names, |c, n| {
        build_service(c, n, &BTreeMap::new(), false, false, false, label)
            .map_err(|e| EngineError::exit(1, format!("{e:#}")))
    })?;
    Ok(())
}

fn up(ctx: &Ctx<'_>, a: UpArgs) -> Result<i32> {
    let c = ctx.compose;
    let abort = a.abort_on_container_exit || a.exit_code_from.is_some();
    if (a.detach || a.wait) && abort {
        bail!("--abort-on-container-exit and --detach are incompatible");
    }
    for s in a.exit_code_from.iter().chain(&a.attach).chain(&a.no_attach) {
        c.check_service(s)?;
    }
    let o = UpOptions {
        services: a.services.clone(),
        no_deps: a.no_deps,
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        scale: scales(&a.scale)?,
        remove_orphans: a.remove_orphans,
        start: !a.no_start,
        build: build_when(a.build, a.no_build),
        pull: a.pull.clone(),
        renew_anon_volumes: a.renew_anon_volumes,
    };
    print_warnings(berth_compose::support::unsupported(&c.loaded.project));
    build_for_up(ctx, &o)?;
    print_warnings(c.up(&o)?);
    let selection: Vec<String> = c.selection(&o.services, o.no_deps)?.into_iter().collect();
    if a.wait {
        let sel = selection.clone();
        match a.wait_timeout {
            None => c.wait_running(&sel)?,
            Some(secs) => {
                // The wait runs here; the timeout is a watchdog that ends the process.
                let (tx, rx) = mpsc::channel::<()>();
                let t = std::thread::spawn(move || {
                    if rx.recv_timeout(std::time::Duration::from_secs(secs)).is_err() {
                        eprintln!("application not healthy after {secs}s");
                        std::process::exit(1);
                    }
                });
                let r = c.wait_running(&sel);
                let _ = tx.send(());
                let _ = t.join();
                r?;
            }
        }
        return Ok(0);
    }
    if a.detach || a.no_start {
        return Ok(0);
    }
    // As compose: the services named (all when none are), their
    // dependencies too with --attach-dependencies; --attach names them
    // outright; --no-attach leaves some out. Ctrl-C stops them all.
    let attach: Vec<String> = if !a.attach.is_empty() {
        a.attach.clone()
    } else if a.services.is_empty() || a.attach_dependencies {
        selection.clone()
    } else {
        a.services.clone()
    };
    let attach: Vec<String> = attach.into_iter().filter(|s| !a.no_attach.contains(s)).collect();
    let never = Ctx {
        root: ctx.root,
        runtime: ctx.runtime.clone(),
        compose: ctx.compose,
        ansi: "never",
    };
    attached(
        if a.no_color { &never } else { ctx },
        &attach,
        &selection,
        abort,
        a.exit_code_from.as_deref(),
        a.no_log_prefix,
        a.timeout,
    )
}

/// One container's lines, prefixed, onto a shared stdout.
struct Prefixed {
    prefix: String,
    out: Arc<Mutex<io::Stdout>>,
    partial: Vec<u8>,
}

impl Write for Prefixed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(i) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let mut o = self.out.lock().unwrap_or_else(|p| p.into_inner());
            o.write_all(self.prefix.as_bytes())?;
            o.write_all(&line)?;
            o.flush()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Prefixed {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            self.partial.push(b'\n');
            let _ = self.write(&[]);
        }
    }
}

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// The log prefixes of `list`: `web-1  | `, padded to the longest, coloured on a terminal.
fn prefixes(ctx: &Ctx<'_>, list: &[Container], no_prefix: bool) -> Vec<String> {
    if no_prefix {
        return vec![String::new(); list.len()];
    }
    let names: Vec<String> = list.iter().map(short_name).collect();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let colour = ctx.ansi == "always" || (ctx.ansi == "auto" && io::stdout().is_terminal());
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let p = format!("{n:<width$}  | ");
            if colour {
                format!("\x1b[{}m{p}\x1b[0m", COLOURS[i % COLOURS.len()])
            } else {
                p
            }
        })
        .collect()
}

/// `web-1` for a service container, the full name for others.
fn short_name(c: &Container) -> String {
    let svc = service_of(c);
    if svc.is_empty() || berth_compose::ops::is_oneoff(c) {
        c.rec.name.clone()
    } else {
        format!("{svc}-{}", number_of(c))
    }
}

fn log_options(
    follow: bool,
    timestamps: bool,
    tail: &str,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<berth_runtime::LogOptions> {
    let tail = match tail {
        "all" | "" => None,
        n => Some(
            n.parse::<i64>()
                .map_err(|_| anyhow!("invalid --tail {n:?}: use a number or \"all\""))?
                .max(0) as usize,
        ),
    };
    let time = |s: Option<&str>| -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let Some(s) = s else { return Ok(None) };
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(Some(t.with_timezone(&chrono::Utc)));
        }
        let ns = berth_engine::containers::parse_duration_ns(s)
            .map_err(|_| anyhow!("invalid time {s:?}: use RFC 3339 or a duration like 42m"))?;
        Ok(Some(chrono::Utc::now() - chrono::Duration::nanoseconds(ns as i64)))
    };
    Ok(berth_runtime::LogOptions {
        follow,
        tail,
        timestamps,
        details: false,
        since: time(since)?,
        until: time(until)?,
    })
}

enum Ended {
    Exited(String, String, i32),
    Signal,
}

/// Follows the logs of `list` on threads of their own (each with its own
/// engine); each thread reports when its container has stopped.
fn follow_all(
    ctx: &Ctx<'_>,
    list: &[Container],
    opts: &berth_runtime::LogOptions,
    no_prefix: bool,
    tx: &mpsc::Sender<Ended>,
) -> Vec<std::thread::JoinHandle<()>> {
    let out = Arc::new(Mutex::new(io::stdout()));
    let mut threads = Vec::new();
    for (c, prefix) in list.iter().zip(prefixes(ctx, list, no_prefix)) {
        let root = ctx.root.to_path_buf();
        let runtime = ctx.runtime.clone();
        let id = c.rec.id.clone();
        let shown = short_name(c);
        let service = service_of(c).to_string();
        let opts = opts.clone();
        let out = out.clone();
        let tx = tx.clone();
        threads.push(std::thread::spawn(move || {
            let mut o = Prefixed {
                prefix: prefix.clone(),
                out: out.clone(),
                partial: Vec::new(),
            };
            let mut e = Prefixed {
                prefix,
                out,
                partial: Vec::new(),
            };
            let code = Engine::open(&root, runtime).ok().and_then(|engine| {
                let _ = engine.container_logs(&id, &opts, &mut o, &mut e);
                engine.container(&id).ok().map(|c| c.state.exit_code)
            });
            drop((o, e));
            let _ = tx.send(Ended::Exited(shown, service, code.unwrap_or(0)));
        }));
    }
    threads
}

/// Attached `up`: every container's output, prefixed, until they all
/// stop; Ctrl-C (or, with `abort`, the first exit) stops the project.
fn attached(
    ctx: &Ctx<'_>,
    attach: &[String],
    services: &[String],
    abort: bool,
    exit_code_from: Option<&str>,
    no_prefix: bool,
    timeout: Option<u32>,
) -> Result<i32> {
    let c = ctx.compose;
    let list = if attach.is_empty() {
        Vec::new()
    } else {
        c.containers_of(attach, false)?
    };
    let (tx, rx) = mpsc::channel();
    let pipe = berth_runtime::term::SignalPipe::install().context("installing signal handlers")?;
    let read_fd = rustix::io::dup(&pipe.read)?;
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut b = [0u8; 1];
            while let Ok(n) = rustix::io::read(&read_fd, &mut b) {
                if n == 0 {
                    break;
                }
                let sig = b[0] as i32;
                if sig == libc::SIGINT || sig == libc::SIGTERM || sig == libc::SIGHUP {
                    let _ = tx.send(Ended::Signal);
                }
            }
        });
    }
    let names: Vec<String> = list.iter().map(short_name).collect();
    println!("Attaching to {}", names.join(", "));
    let opts = log_options(true, false, "all", None, None)?;
    let _threads = follow_all(ctx, &list, &opts, no_prefix, &tx);
    drop(tx);
    // Nothing attached: the project runs until Ctrl-C.
    let mut remaining = list.len().max(1);
    let mut code = 0;
    let mut stopping = false;
    while remaining > 0 {
        match rx.recv() {
            Ok(Ended::Exited(name, service, exit)) => {
                remaining -= 1;
                println!("{name} exited with code {exit}");
                if exit_code_from == Some(service.as_str()) || (exit_code_from.is_none() && abort && !stopping) {
                    code = exit;
                }
                if abort && !stopping {
                    stopping = true;
                    eprintln!("Aborting on container exit...");
                    c.stop(services, timeout)?;
                }
            }
            Ok(Ended::Signal) => {
                if stopping {
                    eprintln!("Forcing the stop");
                    c.kill(services, "SIGKILL")?;
                    return Ok(130);
                }
                stopping = true;
                eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                c.stop(services, timeout)?;
                code = 130;
                if list.is_empty() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    drop(pipe);
    Ok(code)
}

fn logs(ctx: &Ctx<'_>, a: LogsArgs) -> Result<i32> {
    let c = ctx.compose;
    let mut list = c.containers_of(&a.services, true)?;
    if let Some(i) = a.index {
        list.retain(|c| number_of(c) == i);
    }
    let opts = log_options(a.follow, a.timestamps, &a.tail, a.since.as_deref(), a.until.as_deref())?;
    let (tx, rx) = mpsc::channel();
    let never = Ctx {
        root: ctx.root,
        runtime: ctx.runtime.clone(),
        compose: ctx.compose,
        ansi: "never",
    };
    let ctx = if a.no_color { &never } else { ctx };
    let threads = follow_all(ctx, &list, &opts, a.no_log_prefix, &tx);
    drop(tx);
    while rx.recv().is_ok() {}
    for t in threads {
        let _ = t.join();
    }
    Ok(0)
}

/// Compose's ps row.
fn ps_row(engine: &Engine, c: &Container, no_trunc: bool) -> Value {
    // As `docker ps`: 19 characters and an ellipsis unless --no-trunc.
    let cmd = command_string(c);
    let command = if no_trunc || cmd.chars().count() <= 20 {
        format!("\"{cmd}\"")
    } else {
        format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
    };
    let ports: Vec<String> = engine
        .container_ports(c)
        .iter()
        .map(|b| format!("{}->{}", b.host_addr(), b.key()))
        .collect();
    let image = c.cfg.image_ref.clone();
    let health = c.state.health.as_ref().map(|h| h.status.clone()).unwrap_or_default();
    json!({
        "ID": c.rec.id,
        "Name": c.rec.name,
        "Names": c.rec.name,
        "Image": image,
        "Command": command,
        "Project": c.cfg.labels.get(identity::labels::PROJECT).cloned().unwrap_or_default(),
        "Service": service_of(c),
        "CreatedAt": c.rec.created,
        "RunningFor": berth_engine::human::since(&c.rec.created),
        "State": c.state.status,
        "Health": health,
        "Status": status_string(c),
        "ExitCode": c.state.exit_code,
        "Ports": ports.join(", "),
        "Labels": c.cfg.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
    })
}

fn ps(ctx: &Ctx<'_>, a: PsArgs) -> Result<i32> {
    let c = ctx.compose;
    if a.services {
        let mut seen = std::collections::BTreeSet::new();
        for ctr in c.containers_of(&a.service, false)? {
            if ctr.state.is_running() || a.all {
                seen.insert(service_of(&ctr).to_string());
            }
        }
        for s in seen {
            println!("{s}");
        }
        return Ok(0);
    }
    // `--status S` and `--filter status=S` (as compose: a status asked for
    // shows stopped containers without -a).
    let mut statuses = a.status.clone();
    for f in &a.filter {
        match f.split_once('=') {
            Some(("status", v)) => statuses.push(v.to_string()),
            _ => bail!("invalid filter {f:?}: berth compose ps filters by status=STATUS"),
        }
    }
    let all = a.all || !statuses.is_empty();
    let list: Vec<Container> = c
        .containers_of(&a.service, all)?
        .into_iter()
        .filter(|ctr| all || ctr.state.is_running())
        .filter(|ctr| statuses.is_empty() || statuses.contains(&ctr.state.status))
        .collect();
    if a.quiet {
        for ctr in &list {
            println!("{}", ctr.rec.id);
        }
        return Ok(0);
    }
    // JSON carries the whole command, as compose's does.
    let no_trunc = a.no_trunc || a.format == "json";
    let rows: Vec<Value> = list.iter().map(|ctr| ps_row(c.engine, ctr, no_trunc)).collect();
    match a.format.as_str() {
        "json" => {
            let mut out = String::new();
            for r in &rows {
                out.push_str(&serde_json::to_string(r)?);
                out.push('\n');
            }
            io::stdout().write_all(out.as_bytes())?;
        }
        f => {
            let spec = if f == "table" {
                "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}"
            } else {
                f
            };
            let headers: std::collections::HashMap<&str, &str> = [
                ("Name", "NAME"),
                ("Names", "NAMES"),
                ("ID", "CONTAINER ID"),
                ("Image", "IMAGE"),
                ("Command", "COMMAND"),
                ("Service", "SERVICE"),
                ("RunningFor", "CREATED"),
                ("CreatedAt", "CREATED AT"),
                ("Status", "STATUS"),
                ("State", "STATE"),
                ("Health", "HEALTH"),
                ("Ports", "PORTS"),
                ("Project", "PROJECT"),
                ("ExitCode", "EXIT CODE"),
            ]
            .into_iter()
            .collect();
            super::format::Format::parse(Some(spec))?.print_items(&rows, &headers)?;
        }
    }
    Ok(0)
}

fn pull(ctx: &Ctx<'_>, a: &PullArgs) -> Result<i32> {
    let c = ctx.compose;
    let sel = c.selection(&a.services, true)?;
    for name in sel {
        let s = &c.loaded.project.services[&name];
        let Some(image) = &s.image else { continue };
        if s.build.is_some()
            && (a.ignore_buildable || c.image_id(&name).is_some())
            && s.pull_policy.as_deref() != Some("always")
        {
            continue;
        }
        // As compose: `pull_policy: build` images are built, never pulled.
        if s.pull_policy.as_deref() == Some("build") {
            continue;
        }
        if !a.quiet {
            eprintln!(" {name} Pulling");
        }
        let progress = if a.quiet {
            Progress::new(|_| {})
        } else {
            super::layer_progress::plain_to_stderr()
        };
        match c.engine.pull(image, &Default::default(), &progress) {
            Ok(_) if a.quiet => {}
            Ok(_) => eprintln!(" {name} Pulled"),
            Err(e) if s.build.is_some() || a.ignore_pull_failures => eprintln!(" {name} Warning: {e}"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(0)
}

fn push(ctx: &Ctx<'_>, a: &PushArgs) -> Result<i32> {
    let c = ctx.compose;
    let sel = c.selection(&a.services, true)?;
    for name in sel {
        let s = &c.loaded.project.services[&name];
        // As compose: only a service that builds an image it names with
        // `image:` is pushed (the project-service default has no registry).
        if s.build.is_none() || s.image.is_none() {
            if !a.quiet {
                eprintln!(" {name} Skipped");
            }
            continue;
        }
        let image = identity::image_name(&c.loaded.project.name, &name, s);
        if !a.quiet {
            eprintln!(" {name} Pushing");
        }
        let progress = if a.quiet {
            Progress::new(|_| {})
        } else {
            super::layer_progress::plain_to_stderr()
        };
        match c.engine.push(&image, None, &Default::default(), &progress) {
            Ok(_) if a.quiet => {}
            Ok(_) => eprintln!(" {name} Pushed"),
            Err(e) if a.ignore_push_failures => eprintln!(" {name} Warning: {e}"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(0)
}

fn run(ctx: &Ctx<'_>, a: RunArgs) -> Result<i32> {
    let c = ctx.compose;
    let (service, cmd) = a
        .service_and_cmd
        .split_first()
        .ok_or_else(|| anyhow!("run requires at least 1 argument"))?;
    let svc = c
        .loaded
        .project
        .services
        .get(service)
        .ok_or_else(|| EngineError::not_found(format!("no such service: {service}")))?;
    print_warnings(
        berth_compose::support::unsupported(&c.loaded.project)
            .into_iter()
            .filter(|w| w.starts_with(&format!("services.{service}.")))
            .collect(),
    );
    // Build what is missing first, as compose does.
    if svc.build.is_some() && (a.build || c.image_id(service).is_none()) {
        build_service(ctx.compose, service, &BTreeMap::new(), false, false, false, false)?;
    }
    let tty = !a.no_tty && !a.detach && (a.tty || (io::stdin().is_terminal() && io::stdout().is_terminal()));
    let cwd = std::env::current_dir()?;
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for e in &a.env {
        env.extend(spec::parse_env(e, &lookup)?);
    }
    let mut mounts = Vec::new();
    for v in &a.volume {
        mounts.push(spec::parse_volume(v, &cwd)?);
    }
    let mut publish = Vec::new();
    for p in &a.publish {
        publish.extend(spec::parse_publish(p)?);
    }
    if a.service_ports {
        publish.extend(convert::ports(service, &svc.ports)?);
    }
    let user = a.user.as_deref().map(spec::UserSpec::parse).transpose()?;
    let adjust = |s: &mut spec::ContainerSpec| -> berth_engine::Result<()> {
        if !cmd.is_empty() {
            s.command = cmd.to_vec();
        }
        if let Some(e) = &a.entrypoint {
            s.entrypoint = Some(if e.is_empty() {
                vec![]
            } else {
                shell_words::split(e).map_err(|e| EngineError::invalid_value(format!("--entrypoint: {e}")))?
            });
        }
        if let Some(n) = &a.name {
            s.name = Some(n.clone());
        }
        s.env.extend(env.iter().cloned());
        s.mounts.extend(mounts.iter().cloned());
        s.ports = publish.clone();
        if let Some(w) = &a.workdir {
            s.working_dir = Some(w.clone());
        }
        if let Some(u) = &user {
            s.user = Some(u.clone());
        }
        s.cap_add.extend(a.cap_add.iter().cloned());
        s.cap_drop.extend(a.cap_drop.iter().cloned());
        for l in &a.label {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            s.labels.insert(k.to_string(), v.to_string());
        }
        if a.use_aliases {
            // The service name and its aliases on each network, as the
            // service's own containers answer to them.
            for ep in &mut s.endpoints {
                let key = svc
                    .networks
                    .keys()
                    .find(|k| convert::network_name(c.loaded, k) == ep.network)
                    .cloned();
                let extra = key
                    .and_then(|k| svc.networks.get(&k).cloned().flatten())
                    .map(|n| n.aliases)
                    .unwrap_or_default();
                for alias in std::iter::once(service.clone()).chain(extra) {
                    if !ep.aliases.contains(&alias) {
                        ep.aliases.push(alias);
                    }
                }
            }
        }
        s.tty = tty;
        s.open_stdin = !a.detach;
        s.auto_remove = a.rm;
        // A one-off container does not restart.
        s.restart = Default::default();
        Ok(())
    };
    let (id, _name) = c.create_oneoff(service, a.no_deps, &adjust)?;
    let engine = c.engine;
    if a.detach {
        engine.start_detached(&id, terminal::console_size())?;
        println!("{id}");
        return Ok(0);
    }
    if tty {
        let opts = AttachOptions {
            detach_keys: berth_runtime::attach::parse_detach_keys("").map_err(|e| anyhow!(e))?,
            close_stdin_on_eof: true,
        };
        let (_term, streams) = Terminal::open(true, true, true, Signals::Proxy)?;
        let end = engine.start_and_attach(&id, &opts, streams)?;
        return Ok(match end {
            berth_engine::streams::AttachEnd::Exited(code) => code,
            _ => engine.container(&id).map(|c| c.state.exit_code).unwrap_or(0),
        });
    }
    let (_term, streams) = Terminal::open(true, false, false, Signals::Proxy)?;
    Ok(engine.run_attached(&id, streams)?)
}

/// The container of `service` with replica number `index`.
fn container_at(ctx: &Ctx<'_>, service: &str, index: u32) -> Result<Container> {
    let c = ctx.compose;
    c.containers_of(&[service.to_string()], false)?
        .into_iter()
        .find(|ctr| number_of(ctr) == index)
        .ok_or_else(|| EngineError::not_found(format!("service {service:?} is not running container #{index}")).into())
}

fn exec(ctx: &Ctx<'_>, a: ExecArgs) -> Result<i32> {
    let (service, cmd) = a
        .service_and_cmd
        .split_first()
        .ok_or_else(|| anyhow!("exec requires at least 2 arguments"))?;
    if cmd.is_empty() {
        bail!("exec requires at least 2 arguments");
    }
    ctx.compose.check_service(service)?;
    let ctr = container_at(ctx, service, a.index)?;
    if !ctr.state.is_running() {
        return Err(EngineError::not_running(format!("service {service:?} is not running")).into());
    }
    let tty = !a.no_tty && !a.detach && io::stdin().is_terminal() && io::stdout().is_terminal();
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for e in &a.env {
        env.extend(spec::parse_env(e, &lookup)?);
    }
    let opts = ExecOptions {
        cmd: cmd.to_vec(),
        env,
        working_dir: a.workdir.clone(),
        user: a.user.clone(),
        tty,
        interactive: !a.detach,
        detach: a.detach,
        privileged: a.privileged,
    };
    let streams = if a.detach {
        None
    } else {
        Some(Terminal::plain(true, tty)?)
    };
    Ok(ctx.compose.engine.exec_in_container(&ctr.rec.id, &opts, streams)?)
}

/// `SERVICE:PATH` → (service, path); a local path → None.
fn service_end(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('/') || s.starts_with('.') || s == "-" {
        return None;
    }
    match s.split_once(':') {
        Some((svc, p)) if !svc.is_empty() && !svc.contains('/') => Some((svc, if p.is_empty() { "/" } else { p })),
        _ => None,
    }
}

fn cp(ctx: &Ctx<'_>, a: CpArgs) -> Result<i32> {
    use berth_engine::containers::files::CpOptions;
    let o = CpOptions {
        archive: a.archive,
        follow_link: a.follow_link,
    };
    let engine = ctx.compose.engine;
    match (service_end(&a.src), service_end(&a.dest)) {
        (Some((svc, path)), None) => {
            ctx.compose.check_service(svc)?;
            let ctr = container_at(ctx, svc, a.index.unwrap_or(1))?;
            if a.dest == "-" && io::stdout().is_terminal() {
                bail!("cowardly refusing to write a tar archive to a terminal; redirect the output");
            }
            let stdout = io::stdout();
            let mut out = stdout.lock();
            engine.copy_from_container(&ctr.rec.id, path, &a.dest, &o, &mut out)?;
            out.flush()?;
        }
        (None, Some((svc, path))) => {
            ctx.compose.check_service(svc)?;
            // Every replica gets it, as compose copies, unless --index says which.
            for ctr in ctx.compose.containers_of(&[svc.to_string()], false)? {
                if a.index.is_some_and(|i| i != number_of(&ctr)) {
                    continue;
                }
                let input: Box<dyn io::Read + Send> = if a.src == "-" {
                    Box::new(io::stdin())
                } else {
                    Box::new(io::empty())
                };
                engine.copy_into_container(&a.src, &ctr.rec.id, path, &o, input)?;
            }
        }
        (Some(_), Some(_)) => bail!("copying between services is not supported"),
        (None, None) => bail!("must specify at least one container source (SERVICE:PATH)"),
    }
    Ok(0)
}

/// `events`: the project's container events from the store's journal, as
/// compose prints them (`TIME container ACTION ID (attributes)`, or JSON
/// lines with `--json`), compose's own labels left out of the attributes.
/// From now on unless `--since` says otherwise; until `--until` or Ctrl-C.
fn events(ctx: &Ctx<'_>, a: EventsArgs) -> Result<i32> {
    use berth_engine::events::{parse_time, EventFilter, EventQuery};
    let c = ctx.compose;
    for s in &a.services {
        c.check_service(s)?;
    }
    let now = chrono::Utc::now();
    let time = |s: &Option<String>| s.as_deref().map(|v| parse_time(v, now)).transpose();
    let q = EventQuery {
        since: Some(time(&a.since)?.unwrap_or_else(|| now.timestamp_nanos_opt().unwrap_or(0))),
        until: time(&a.until)?,
        follow: true,
        filter: EventFilter::parse(&[
            "type=container".to_string(),
            format!("label={}={}", identity::labels::PROJECT, c.loaded.project.name),
        ])?,
    };
    let mut out_err = None;
    // Ctrl-C ends the process, as it ends `berth events`.
    c.engine.events(&q, &|| false, &mut |ev| {
        let attrs = &ev.actor.attributes;
        let service = attrs.get(identity::labels::SERVICE).cloned().unwrap_or_default();
        if !a.services.is_empty() && !a.services.contains(&service) {
            return true;
        }
        let own: BTreeMap<&String, &String> = attrs
            .iter()
            .filter(|(k, _)| !k.starts_with("com.docker.compose."))
            .collect();
        let secs = ev.time_nano.div_euclid(1_000_000_000);
        let nanos = ev.time_nano.rem_euclid(1_000_000_000) as u32;
        let t = chrono::DateTime::from_timestamp(secs, nanos).unwrap_or_default();
        let line = if a.json {
            json!({
                "time": t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                "type": "container",
                "service": service,
                "id": ev.actor.id,
                "action": ev.action,
                "attributes": own,
            })
            .to_string()
        } else {
            let list: Vec<String> = own.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{} container {} {} ({})",
                t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S%.6f"),
                ev.action,
                ev.actor.id,
                list.join(", ")
            )
        };
        let mut out = io::stdout().lock();
        match writeln!(out, "{line}").and_then(|()| out.flush()) {
            Ok(()) => true,
            Err(e) => {
                out_err = Some(e);
                false
            }
        }
    })?;
    match out_err {
        Some(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

fn top(ctx: &Ctx<'_>, services: &[String]) -> Result<i32> {
    let c = ctx.compose;
    for ctr in c.containers_of(services, false)? {
        if !ctr.state.is_running() {
            continue;
        }
        let t = c.engine.container_top_table(&ctr.rec.id, "")?;
        let rows: Vec<String> = std::iter::once(t.titles)
            .chain(t.processes)
            .map(|r| r.join("\t"))
            .collect();
        println!("{}", ctr.rec.name);
        println!("{}", super::format::align(&rows));
    }
    Ok(0)
}

fn images(ctx: &Ctx<'_>, a: ImagesArgs) -> Result<i32> {
    let c = ctx.compose;
    let mut rows = Vec::new();
    for ctr in c.containers_of(&a.services, false)? {
        let v = c.engine.image_inspect(&ctr.rec.image_id).unwrap_or(Value::Null);
        let image = &ctr.cfg.image_ref;
        let (repo, tag) = match image.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((r, t)) => (r.to_string(), t.to_string()),
            None => (image.clone(), "latest".to_string()),
        };
        let id = ctr.rec.image_id.trim_start_matches("sha256:").to_string();
        let size = v["Size"].as_u64().unwrap_or(0);
        rows.push((ctr.rec.name.clone(), repo, tag, id, size));
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r.3);
        }
    } else if a.format == "json" {
        let items: Vec<Value> = rows
            .iter()
            .map(|(c, r, t, i, s)| json!({"ContainerName": c, "Repository": r, "Tag": t, "ID": i, "Size": s}))
            .collect();
        println!("{}", serde_json::to_string(&items)?);
    } else {
        let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(9) + 3;
        let wr = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(10) + 3;
        println!(
            "{:<w$}{:<wr$}{:<10}{:<15}SIZE",
            "CONTAINER", "REPOSITORY", "TAG", "IMAGE ID"
        );
        for (cn, r, t, i, s) in rows {
            println!(
                "{cn:<w$}{r:<wr$}{t:<10}{:<15}{}",
                &i[..12.min(i.len())],
                super::format::human_size(s)
            );
        }
    }
    Ok(0)
}

fn port(ctx: &Ctx<'_>, a: PortArgs) -> Result<i32> {
    ctx.compose.check_service(&a.service)?;
    let ctr = container_at(ctx, &a.service, a.index)?;
    let proto = berth_net::Proto::parse(&a.protocol).map_err(|e| anyhow!("--protocol: {e}"))?;
    let b = ctx
        .compose
        .engine
        .container_ports(&ctr)
        .into_iter()
        .find(|b| b.container_port == a.private_port && b.proto == proto)
        .ok_or_else(|| {
            anyhow!(
                "no port {}/{} for container {}",
                a.private_port,
                a.protocol,
                ctr.rec.name
            )
        })?;
    println!("{}", b.host_addr());
    Ok(0)
}
