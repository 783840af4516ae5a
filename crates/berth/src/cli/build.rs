//! `berth build`: Docker's flags, one engine call, and the output: the
//! classic builder's lines (`--progress=plain`) or the live view
//! (`--progress=tty`; `auto` picks it when stdout, where build output goes,
//! is a terminal).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use berth_build::dockerfile::Severity;
use berth_build::executor::{BuildOptions, ErrorKind, Progress as StepView, ProgressMode, SecretSource, SecretValue};
use berth_store::reference::familiar_name;
use std::sync::Arc;

use berth_engine::build::{BuildRequest, BuildResult, ContextSource};
use berth_engine::build_cache::RegistryCache;
use berth_engine::progress::{Event, Progress};
use berth_engine::{Engine, EngineError};

use crate::cli::layer_progress::Display;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Name and optionally a tag (name:tag); may be repeated
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// Build this stage (and only what it needs)
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Push every -t name to its registry after a successful build
    #[arg(long)]
    pub push: bool,
    /// Set a build-time variable (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Do not use the cache
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the base images
    #[arg(long)]
    pub pull: bool,
    /// Set metadata on the image (KEY=VALUE)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Write the image ID to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Print only the image ID
    #[arg(short, long)]
    pub quiet: bool,
    /// Network for RUN steps: default (private, loopback only), none, host
    #[arg(long, default_value = "default", value_name = "MODE")]
    pub network: String,
    /// A secret for RUN --mount=type=secret: id=NAME,src=FILE (or env=VAR)
    #[arg(long = "secret", value_name = "id=NAME,src=FILE")]
    pub secrets: Vec<String>,
    /// SSH agent for RUN --mount=type=ssh: default (the agent at $SSH_AUTH_SOCK) or ID=SOCKET
    #[arg(long = "ssh", value_name = "default|ID=SOCKET")]
    pub ssh: Vec<String>,
    /// Target platform(s): os/arch[/variant], several comma-separated for one multi-platform image
    #[arg(long, value_name = "PLATFORM[,PLATFORM…]")]
    pub platform: Option<String>,
    /// Output style: auto (tty on a terminal, else plain), plain, tty, quiet
    #[arg(long, default_value = "auto", value_name = "TYPE")]
    pub progress: String,
    /// Check the Dockerfile (parse and lint) without building
    #[arg(long)]
    pub check: bool,
    /// Timestamp (seconds since the epoch) for created times and file mtimes
    #[arg(long, value_name = "SECONDS")]
    pub source_date_epoch: Option<i64>,
    /// Export the build cache: type=local,dest=DIR or type=registry,ref=HOST/REPO:TAG[,mode=min|max]
    #[arg(long = "cache-to", value_name = "type=local,dest=DIR")]
    pub cache_to: Option<String>,
    /// Import a build cache: type=local,src=DIR or type=registry,ref=HOST/REPO:TAG
    #[arg(long = "cache-from", value_name = "type=local,src=DIR")]
    pub cache_from: Vec<String>,
    /// What to do when a step fails: `shell` opens a shell in the last good step
    #[arg(long = "on-failure", value_name = "ACTION")]
    pub on_failure: Option<String>,
    #[command(flatten)]
    pub more: MoreBuildArgs,
    /// Build context (a directory, or - for a tar on stdin)
    #[arg(value_name = "PATH | URL | -")]
    pub context: Option<String>,
}

/// Flags of `docker build` (classic and BuildKit's) that berth accepts for
/// scripts' sake: the ones BuildKit itself takes as no-ops, the ones that
/// ask for what berth does anyway, and the rest refused by name when given
/// (never silently dropped).
#[derive(clap::Args, Debug, Default)]
pub struct MoreBuildArgs {
    /// Remove intermediate containers after a successful build (berth keeps none: accepted)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = super::flags::parse_go_bool)]
    pub rm: bool,
    /// Always remove intermediate containers (berth keeps none: accepted)
    #[arg(long)]
    pub force_rm: bool,
    /// Compress the build context using gzip (accepted; the context is not sent anywhere)
    #[arg(long)]
    pub compress: bool,
    /// Skip image verification (accepted)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = super::flags::parse_go_bool)]
    pub disable_content_trust: bool,
    /// Container isolation technology (default only)
    #[arg(long, value_name = "default")]
    pub isolation: Option<String>,
    /// Shorthand for "--output=type=docker": the image is in berth's store anyway (accepted)
    #[arg(long)]
    pub load: bool,
    /// Set type of build: "build" (the default) or "check" (as --check)
    #[arg(long, value_name = "build|check")]
    pub call: Option<String>,
    /// Write build result metadata to a file
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Allow extra privileged entitlement (network.host, security.insecure: accepted)
    #[arg(long, value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// Output destination: type=docker or type=image only (the store); others not supported yet
    #[arg(short = 'o', long, value_name = "PATH|type=TYPE[,KEY=VALUE]")]
    pub output: Vec<String>,
    /// Additional build contexts: NAME=DIR or NAME=docker-image://REF
    #[arg(long, value_name = "NAME=VALUE")]
    pub build_context: Vec<String>,
    /// Do not cache specified stages
    #[arg(long, value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,
    /// Add annotation to the image (its manifest's, when pushed or saved)
    #[arg(long, value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long, value_name = "HOST:IP", value_parser = add_host)]
    pub add_host: Vec<(String, String)>,
    /// Size of /dev/shm for RUN
    #[arg(long, value_name = "BYTES", value_parser = shm_size)]
    pub shm_size: Option<String>,
    /// Ulimit options for RUN
    #[arg(long, value_name = "NAME=SOFT[:HARD]", value_parser = ulimit)]
    pub ulimit: Vec<(String, u64, u64)>,
    /// Squash newly built layers into a single new layer (not supported)
    #[arg(long)]
    pub squash: bool,
    /// Optional parent cgroup for RUN (not supported yet)
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// Limit the CPU CFS period for RUN (not supported yet)
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<String>,
    /// Limit the CPU CFS quota for RUN (not supported yet)
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// CPU shares for RUN (not supported yet)
    #[arg(short = 'c', long, value_name = "N")]
    pub cpu_shares: Option<String>,
    /// CPUs in which to allow RUN (not supported yet)
    #[arg(long, value_name = "0-3,0,1")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow RUN (not supported yet)
    #[arg(long, value_name = "0-3,0,1")]
    pub cpuset_mems: Option<String>,
    /// Memory limit for RUN (not supported yet)
    #[arg(short = 'm', long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Swap limit for RUN (not supported yet)
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Security options for RUN (not supported yet)
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
}

impl MoreBuildArgs {
    /// Refuses what berth's builder cannot do, by name.
    fn check(&self) -> Result<()> {
        let refuse =
            |flag: &str| -> Result<()> { bail!("{flag} is not supported by berth's builder yet: leave it out") };
        if let Some(i) = self.isolation.as_deref().filter(|i| *i != "default") {
            bail!("--isolation {i}: berth supports only default");
        }
        if let Some(c) = self.call.as_deref().filter(|c| !matches!(*c, "build" | "check")) {
            bail!("--call {c}: berth supports build and check");
        }
        for o in &self.output {
            let kind = o.split(',').find_map(|kv| kv.strip_prefix("type=")).unwrap_or("local");
            if !matches!(kind, "docker" | "image" | "local" | "tar") {
                bail!("--output {o}: berth supports type=docker, image, local and tar");
            }
        }
        let lists: &[(&str, &Vec<String>)] = &[("--security-opt", &self.security_opt)];
        for (flag, v) in lists.iter().copied() {
            if !v.is_empty() {
                return refuse(flag);
            }
        }
        let values: &[(&str, &Option<String>)] = &[
            ("--cgroup-parent", &self.cgroup_parent),
            ("--cpu-period", &self.cpu_period),
            ("--cpu-quota", &self.cpu_quota),
            ("--cpu-shares", &self.cpu_shares),
            ("--cpuset-cpus", &self.cpuset_cpus),
            ("--cpuset-mems", &self.cpuset_mems),
            ("--memory", &self.memory),
            ("--memory-swap", &self.memory_swap),
        ];
        for (flag, v) in values.iter().copied() {
            if v.is_some() {
                return refuse(flag);
            }
        }
        if self.squash {
            return refuse("--squash");
        }
        Ok(())
    }
}

/// `--add-host NAME:IP` (or `NAME=IP`; an IPv6 address after `=` or in
/// brackets) → (name, address), checked as the docker CLI checks it.
fn add_host(h: &str) -> Result<(String, String), String> {
    let (name, ip) = h
        .split_once('=')
        .or_else(|| h.split_once(':'))
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| format!("bad format for add-host: {h:?}"))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address in add-host: {ip:?}"));
    }
    Ok((name.to_string(), ip.to_string()))
}

/// `--shm-size`: a size, refused in the docker CLI's words (kept as
/// written: the flags' common setup reads a number type as Go's integers).
fn shm_size(s: &str) -> Result<String, String> {
    berth_engine::spec::parse_bytes("--shm-size", s)
        .map(|_| s.to_string())
        .map_err(|_| format!("invalid size: '{s}'"))
}

/// `--ulimit NAME=SOFT[:HARD]` → (name, soft, hard), refused in the docker
/// CLI's words (a number as Go's strconv says).
fn ulimit(s: &str) -> Result<(String, u64, u64), String> {
    let (name, values) = s
        .split_once('=')
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    let number = |v: &str| -> Result<u64, String> {
        let n: i64 = super::flags::parse_go_int(v)?;
        Ok(if n < 0 { u64::MAX } else { n as u64 })
    };
    let (soft, hard) = match values.split_once(':') {
        Some((soft, hard)) => (number(soft)?, number(hard)?),
        None => {
            let n = number(values)?;
            (n, n)
        }
    };
    if soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok((name.to_string(), soft, hard))
}

/// `a=1,b=2` → map.
fn csv_map(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// A `--cache-to` / `--cache-from` value.
pub(super) enum CacheSpec {
    Local(PathBuf),
    Registry(RegistryCache),
    /// A bare image reference (`--cache-from app:1`): an image in the store
    /// whose history serves as a cache, as Docker's classic builder uses it.
    Image(String),
}

/// `--ssh default`, `--ssh ID` (both: the agent at $SSH_AUTH_SOCK) or
/// `--ssh ID=SOCKET` → (ID, absolute socket path), checked to be a socket.
pub(super) fn ssh_agent(spec: &str) -> Result<(String, PathBuf)> {
    use std::os::unix::fs::FileTypeExt;
    let (id, path) = match spec.split_once('=') {
        Some((id, p)) => (id.trim(), PathBuf::from(p.trim())),
        None => {
            let sock = std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .with_context(|| {
                    format!(
                        "--ssh {spec}: $SSH_AUTH_SOCK is not set: start an agent (eval $(ssh-agent); ssh-add) \
                     or name its socket: --ssh {spec}=/path/to/agent.sock"
                    )
                })?;
            (spec.trim(), PathBuf::from(sock))
        }
    };
    if id.is_empty() || id.contains(',') {
        bail!(
            "--ssh {spec}: expected default, ID or ID=SOCKET (one agent socket per --ssh; key files are not supported)"
        );
    }
    let path = std::path::absolute(&path).with_context(|| format!("--ssh {spec}: {}", path.display()))?;
    let meta = std::fs::metadata(&path)
        .with_context(|| format!("--ssh {spec}: cannot use the agent socket {}", path.display()))?;
    if !meta.file_type().is_socket() {
        bail!(
            "--ssh {spec}: {} is not a unix socket: give an SSH agent's socket (berth does not load key files)",
            path.display()
        );
    }
    Ok((id.to_string(), path))
}

pub(super) fn cache_spec(flag: &str, spec: &str, dir_key: &str) -> Result<CacheSpec> {
    if !spec.contains('=') {
        return Ok(CacheSpec::Image(spec.to_string()));
    }
    let m = csv_map(spec);
    match m.get("type").map(String::as_str) {
        Some("local") | None => m
            .get(dir_key)
            .map(|d| CacheSpec::Local(PathBuf::from(d)))
            .with_context(|| format!("{flag} {spec}: {dir_key}=DIR is required for type=local")),
        Some("registry") => Ok(CacheSpec::Registry(RegistryCache::parse(flag, spec, &m)?)),
        Some(t) => bail!("{flag} {spec}: type={t} is not supported (use type=local or type=registry)"),
    }
}

/// The registry caches of a build (the local ones go into the options).
#[derive(Default)]
struct RegistryCaches {
    to: Option<RegistryCache>,
    from: Vec<RegistryCache>,
}

fn options(a: &BuildArgs) -> Result<(BuildOptions, RegistryCaches)> {
    let mut build_args = BTreeMap::new();
    for ba in &a.build_args {
        match ba.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(ba) {
                    build_args.insert(ba.clone(), v);
                }
            }
        }
    }
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut secrets = BTreeMap::new();
    for s in &a.secrets {
        let m = csv_map(s);
        let id = m
            .get("id")
            .cloned()
            .with_context(|| format!("--secret {s}: id= is required"))?;
        let src = match (m.get("src").or_else(|| m.get("source")), m.get("env")) {
            (Some(src), _) => SecretSource::File(PathBuf::from(src)),
            (None, Some(var)) => {
                // The build writes it to a private file of its own.
                let v = std::env::var_os(var).with_context(|| format!("--secret {s}: ${var} is not set"))?;
                SecretSource::Value(SecretValue::new(std::os::unix::ffi::OsStringExt::into_vec(v)))
            }
            (None, None) => bail!("--secret {s}: src=FILE or env=VAR is required"),
        };
        secrets.insert(id, src);
    }
    let mut ssh = BTreeMap::new();
    for spec in &a.ssh {
        let (id, path) = ssh_agent(spec)?;
        ssh.insert(id, path);
    }
    let epoch = match a.source_date_epoch {
        Some(e) => Some(e),
        None => build_args
            .get("SOURCE_DATE_EPOCH")
            .cloned()
            .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))
            })
            .transpose()?,
    };
    match a.network.as_str() {
        "default" | "none" | "host" | "private" | "bridge" => {}
        n => bail!("--network {n}: use default, none or host"),
    }
    match a.progress.as_str() {
        "auto" | "plain" | "tty" | "quiet" => {}
        p => bail!("--progress {p}: unknown output style; use auto, plain, tty or quiet"),
    }
    let mut remote = RegistryCaches::default();
    let mut cache_to = None;
    if let Some(s) = a.cache_to.as_deref() {
        match cache_spec("--cache-to", s, "dest")? {
            CacheSpec::Local(d) => cache_to = Some(d),
            CacheSpec::Registry(r) => remote.to = Some(r),
            CacheSpec::Image(i) => bail!(
                "--cache-to {i}: give type=local,dest=DIR or type=registry,ref=REF (berth does not export a cache to a local image)"
            ),
        }
    }
    let mut cache_from = Vec::new();
    let mut cache_from_images = Vec::new();
    for s in &a.cache_from {
        match cache_spec("--cache-from", s, "src")? {
            CacheSpec::Local(d) => cache_from.push(d),
            CacheSpec::Registry(r) => remote.from.push(r),
            CacheSpec::Image(i) => cache_from_images.push(i),
        }
    }
    let more = &a.more;
    let extra_hosts = more.add_host.clone();
    let shm_size = more
        .shm_size
        .as_deref()
        .map(|s| berth_engine::spec::parse_bytes("--shm-size", s))
        .transpose()?;
    let ulimits = more.ulimit.clone();
    let mut context_images = BTreeMap::new();
    let mut context_dirs = BTreeMap::new();
    let here = std::env::current_dir().context("reading the working directory")?;
    for c in &more.build_context {
        let (name, value) = c.split_once('=').unwrap_or((c, ""));
        use berth_build::context::named::{parse_named, NamedContext};
        match parse_named(name, value, &here).map_err(|e| anyhow::anyhow!("--build-context {c}: {e}"))? {
            NamedContext::Image(image) => {
                context_images.insert(name.to_string(), image);
            }
            NamedContext::Dir(dir) => {
                context_dirs.insert(name.to_string(), dir);
            }
        }
    }
    let mut annotations = BTreeMap::new();
    for an in &more.annotation {
        // BuildKit's `[TYPE:]KEY=VALUE`; the image manifest is the default type.
        let (k, v) = an
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .with_context(|| format!("invalid annotation {an:?}: use KEY=VALUE"))?;
        let k = match k.split_once(':') {
            Some(("manifest", k)) => k,
            Some((t @ ("index" | "manifest-descriptor" | "index-descriptor"), _)) => {
                bail!("--annotation {an}: berth puts annotations on the image manifest only (not {t})")
            }
            _ => k,
        };
        annotations.insert(k.to_string(), v.to_string());
    }
    let opts = BuildOptions {
        build_args,
        extra_hosts,
        shm_size,
        ulimits,
        context_images,
        context_dirs,
        annotations,
        no_cache_stages: more.no_cache_filter.clone(),
        labels,
        secrets,
        ssh,
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        network: a.network.clone(),
        platform: a.platform.clone(),
        source_date_epoch: epoch,
        cache_to,
        cache_from,
        cache_from_images,
        ..Default::default()
    };
    Ok((opts, remote))
}

/// A tar archive, plain or compressed (gzip, bzip2, xz, zstd), as Docker
/// tells a context on stdin from a Dockerfile.
fn is_archive(data: &[u8]) -> bool {
    let magic: [&[u8]; 4] = [b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"];
    magic.iter().any(|m| data.starts_with(m)) || data.get(257..262) == Some(b"ustar")
}

/// `-o type=local,dest=DIR` / `-o type=tar,dest=FILE|-`: the built
/// image's file system (the image stays in berth's store as well).
fn export_output(engine: &Engine, image: &str, output: &str) -> Result<()> {
    use berth_engine::containers::files::FilesTarget;
    // `-o -`: a tar on stdout; `-o DIR`: type=local.
    let mut kind = if output == "-" { "tar" } else { "local" };
    let mut dest = None;
    for kv in output.split(',') {
        match kv.split_once('=') {
            Some(("type", t)) => kind = t,
            Some(("dest", d)) => dest = Some(d),
            _ if !kv.contains('=') && dest.is_none() => dest = Some(kv),
            _ => {}
        }
    }
    if !matches!(kind, "local" | "tar") {
        return Ok(());
    }
    let dest = dest.ok_or_else(|| anyhow!("--output {output}: dest is required for type={kind}"))?;
    match (kind, dest) {
        ("tar", "-") => engine.export_image_files(image, FilesTarget::Tar(&mut std::io::stdout().lock()))?,
        ("tar", path) => {
            let mut f = std::fs::File::create(path).with_context(|| format!("creating {path}"))?;
            engine.export_image_files(image, FilesTarget::Tar(&mut f))?;
        }
        (_, dir) => engine.export_image_files(image, FilesTarget::Dir(Path::new(dir)))?,
    }
    Ok(())
}

pub fn run(engine: &Engine, a: BuildArgs) -> Result<i32> {
    let Some(ctx) = a.context.clone() else {
        bail!("\"berth build\" requires exactly 1 argument: the build context (a directory, or - for stdin)");
    };
    if let Some(f) = a.on_failure.as_deref() {
        if f != "shell" && f != "none" {
            bail!("--on-failure {f}: use shell (or none)");
        }
    }
    // The docker CLI looks at the context before it asks for a build.
    if ctx != "-" && !Path::new(&ctx).is_dir() {
        bail!("unable to prepare context: path {ctx:?} not found");
    }
    let stdin_dockerfile = a.file.as_deref() == Some(Path::new("-"));
    if stdin_dockerfile && ctx == "-" {
        bail!("invalid argument: can't use stdin for both build context and dockerfile");
    }
    a.more.check()?;
    if a.check || a.more.call.as_deref() == Some("check") {
        return check(engine, &a, &ctx);
    }
    let (mut opts, remote) = options(&a)?;
    let quiet = a.quiet || a.progress == "quiet";
    let reg_opts = berth_registry::Options::from_config();
    if let Some(to) = &remote.to {
        // Fail before the build, not after it, when the cache cannot go there.
        engine
            .check_registry_cache_target(to, &reg_opts)
            .with_context(|| format!("--cache-to type=registry,ref={}", to.reference.familiar()))?;
    }
    opts.cache_lookup = engine.open_registry_caches(&remote.from, &reg_opts, &mut |w| eprintln!("{w}"))?;
    // Stdin: a context archive, or (as Docker) a Dockerfile alone, built
    // with an empty context; `-f -`: the Dockerfile, with the context given.
    // A Dockerfile from stdin goes to the engine as text.
    let mut file = a.file.clone();
    let mut inline = None;
    let stdin = || -> Result<Vec<u8>> {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut data).context("reading stdin")?;
        Ok(data)
    };
    let mut dockerfile = |data: Vec<u8>| -> Result<()> {
        inline = Some(String::from_utf8(data).context("the Dockerfile on stdin is not UTF-8")?);
        file = None;
        Ok(())
    };
    let context = if ctx == "-" {
        let data = stdin()?;
        if is_archive(&data) {
            ContextSource::Tar(Box::new(std::io::Cursor::new(data)))
        } else {
            // As Docker: a Dockerfile alone, built with an empty context.
            dockerfile(data)?;
            ContextSource::Empty
        }
    } else {
        if stdin_dockerfile {
            dockerfile(stdin()?)?;
        }
        ContextSource::Dir(PathBuf::from(&ctx))
    };
    let progress = if quiet {
        ProgressMode::Quiet
    } else if a.progress == "tty" || (a.progress == "auto" && std::io::stdout().is_terminal()) {
        ProgressMode::Tty {
            width: terminal_width(),
        }
    } else {
        ProgressMode::Plain
    };
    let req = BuildRequest {
        context,
        file,
        inline,
        tags: a.tags.clone(),
        options: opts,
    };
    // The builder's own renderer draws the engine's events: the classic
    // lines, the live view, or (quiet) nothing but what a failure shows.
    // With a tar on stdout (`-o -`) the build's lines go to stderr.
    let tar_on_stdout = a
        .more
        .output
        .iter()
        .any(|o| o == "-" || o.split(',').any(|kv| kv == "dest=-"));
    let sink: Box<dyn std::io::Write + Send> = if tar_on_stdout {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let view = Arc::new(StepView::new(sink, progress));
    let v = view.clone();
    let events = Progress::new(move |e| {
        if let Event::Build(b) = e {
            v.apply(b)
        }
    });
    let res = engine.build(req, &events);
    view.finish();
    let kept = view.kept();
    let res = res?;
    let plain = if quiet { Display::Quiet } else { Display::Plain };
    match res {
        BuildResult::Built(o) => {
            for arg in &o.unused_args {
                if !quiet {
                    println!("[Warning] One or more build-args [{arg}] were not consumed");
                }
            }
            if let Some(f) = &a.iidfile {
                std::fs::write(f, o.id.as_str()).with_context(|| format!("writing --iidfile {}", f.display()))?;
            }
            for out in &a.more.output {
                export_output(engine, o.id.as_str(), out)?;
            }
            if let Some(f) = &a.more.metadata_file {
                // BuildKit's keys for what a script reads back.
                let mut meta = serde_json::json!({ "containerimage.config.digest": o.id.as_str() });
                if !a.tags.is_empty() {
                    meta["image.name"] = a.tags.join(",").into();
                }
                std::fs::write(f, serde_json::to_vec_pretty(&meta)?)
                    .with_context(|| format!("writing --metadata-file {}", f.display()))?;
            }
            if quiet {
                if !tar_on_stdout {
                    println!("{}", o.id);
                }
            } else {
                let say = |line: String| {
                    if tar_on_stdout {
                        eprintln!("{line}");
                    } else {
                        println!("{line}");
                    }
                };
                say(format!("Successfully built {}", o.id.short()));
                for t in &a.tags {
                    let full = berth_store::Reference::parse(t)
                        .map(|r| r.full())
                        .unwrap_or_else(|_| t.clone());
                    say(format!("Successfully tagged {}", familiar_name(&full)));
                }
            }
            if let Some(to) = &remote.to {
                engine
                    .export_registry_cache(to, &o.steps, &o.id, &reg_opts, &plain.progress())
                    .with_context(|| {
                        format!(
                            "the image {} was built, but exporting the build cache to {} failed",
                            o.id.short(),
                            to.reference.familiar()
                        )
                    })?;
            }
            if a.push {
                if a.tags.is_empty() {
                    anyhow::bail!("--push needs at least one -t NAME to push to");
                }
                let opts = berth_engine::registry::PushOptions::default();
                for t in &a.tags {
                    engine.push(t, None, &opts, &plain.progress())?;
                }
            }
            Ok(0)
        }
        BuildResult::Failed(e) => {
            if quiet && !kept.is_empty() {
                eprint!("{kept}");
            }
            let mut msg = e.to_string();
            if e.kind == ErrorKind::Step || e.kind == ErrorKind::Other {
                if let Some(good) = &e.last_good {
                    msg.push_str(&format!(
                        "\n  last good step: {}\nTo debug: berth run --rm -it {} sh",
                        good.short(),
                        good.short()
                    ));
                    if a.on_failure.as_deref() == Some("shell") {
                        eprintln!("Error: {msg}");
                        return open_shell(engine, good.short());
                    }
                }
            }
            Err(EngineError::exit(1, msg).into())
        }
    }
}

/// Columns of the terminal on stdout (80 when it is not one, as with
/// `--progress=tty` into a pipe).
fn terminal_width() -> usize {
    match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(ws) if ws.ws_col > 0 => ws.ws_col as usize,
        _ => 80,
    }
}

/// `--on-failure=shell`: become `berth run --rm -it <id> sh`.
fn open_shell(engine: &Engine, id: &str) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("finding the berth binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--root").arg(engine.root());
    if let Some(r) = engine.runtime_choice() {
        cmd.arg("--runtime").arg(r);
    }
    cmd.args(["run", "--rm", "-it", id, "sh"]);
    eprintln!("Opening a shell in {id} (exit it to end the build)");
    let err = cmd.exec();
    Err(anyhow::anyhow!("starting the debug shell: {err}"))
}

/// `--check`: lint and report like `docker build --check`.
fn check(engine: &Engine, a: &BuildArgs, ctx: &str) -> Result<i32> {
    let dir = if ctx == "-" {
        PathBuf::from(".")
    } else {
        PathBuf::from(ctx)
    };
    let (name, res) = engine.build_check(&dir, a.file.as_deref())?;
    let diags = match res {
        Ok(d) => d,
        Err(e) => return Err(EngineError::exit(1, e.to_string()).into()),
    };
    let mut errors = 0;
    for d in &diags {
        let level = match d.severity {
            Severity::Warning => "WARNING",
            Severity::Error => {
                errors += 1;
                "ERROR"
            }
        };
        println!("{name}:{}:{}: {level} {}: {}", d.line, d.column, d.rule, d.message);
    }
    if diags.is_empty() {
        println!("Check complete, no warnings found.");
    } else {
        println!(
            "Check complete, {} warning{} found.",
            diags.len(),
            if diags.len() == 1 { " has been" } else { "s have been" }
        );
    }
    Ok(if errors > 0 { 1 } else { 0 })
}
