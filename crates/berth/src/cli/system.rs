//! `version`, `info`, `system df`, `system prune`, `system check`.

use std::collections::HashMap;

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use super::format::{human_size, human_size_4, Format};
use berth_engine::system::UsageRow;
use berth_engine::Engine;

#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show disk usage
    Df(DfArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Show which CPU architectures run here; register qemu's binfmt handlers
    Binfmt(super::binfmt::BinfmtArgs),
    /// Serve the Docker Engine API on a socket
    Service(super::service::ServiceArgs),
    /// Check the store for damage and leftovers (and repair them)
    Check(CheckArgs),
    /// Get real time events from the server
    Events(super::events::EventsArgs),
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Repair what is found: remove garbage and stale mounts, unpack lost
    /// layers again, tighten modes, remove images that cannot be made whole
    #[arg(long)]
    pub repair: bool,
}

#[derive(clap::Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>", "until=24h")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// `berth builder …`: the build cache.
#[derive(Subcommand, Debug)]
pub enum BuilderCommand {
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(clap::Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Amount of disk space to keep for cache (not supported yet)
    #[arg(long, value_name = "BYTES")]
    pub keep_storage: Option<String>,
}

/// `builder prune`: forgets cached build steps and deletes their images
/// that nothing else holds.
pub fn builder(engine: &Engine, cmd: BuilderCommand) -> Result<i32> {
    let BuilderCommand::Prune(a) = cmd;
    if a.keep_storage.is_some() {
        anyhow::bail!("--keep-storage is not supported by berth yet: leave it out");
    }
    let filter = berth_engine::containers::prune::PruneFilter::parse(&a.filter)?;
    let warning = if a.all {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    if !a.force && !super::images::confirm(warning)? {
        return Ok(0);
    }
    let (ids, freed) = engine.prune_build_cache(&filter)?;
    if !ids.is_empty() {
        println!("Deleted build cache objects:");
        for id in &ids {
            println!("{}", id.trim_start_matches("sha256:"));
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size_4(freed));
    Ok(0)
}

/// `berth -v`: one line, as `docker -v` (`Docker version 28.2.2, build e6534b4`).
pub fn short_version() -> i32 {
    let v = berth_engine::system::version();
    println!(
        "berth version {}, build {}",
        v.version,
        option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown")
    );
    0
}

/// `version`'s data in Docker's shape: a `Client` and a `Server` section
/// (berth is both: the server is the engine this process runs), so that
/// `{{.Client.Version}}`, `{{.Server.Version}}` and `{{.Server.APIVersion}}`
/// read as with Docker.
fn version_value() -> Value {
    let v = berth_engine::system::version();
    let commit = option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    json!({
        "Client": {
            "Platform": {"Name": "berth"},
            "Version": v.version,
            "ApiVersion": v.api_version,
            "DefaultAPIVersion": v.api_version,
            "GitCommit": commit,
            "GoVersion": "",
            "Os": v.os,
            "Arch": v.arch,
            "BuildTime": "",
            "Context": "default",
        },
        "Server": {
            "Platform": {"Name": "berth"},
            "Components": [{
                "Name": "Engine",
                "Version": v.version,
                "Details": {
                    "ApiVersion": v.api_version,
                    "Arch": v.arch,
                    "BuildTime": "",
                    "Experimental": "false",
                    "GitCommit": commit,
                    "GoVersion": "",
                    "KernelVersion": kernel,
                    "MinAPIVersion": "1.24",
                    "Os": v.os,
                },
            }],
            "Version": v.version,
            "ApiVersion": v.api_version,
            "APIVersion": v.api_version,
            "MinAPIVersion": "1.24",
            "GitCommit": commit,
            "GoVersion": "",
            "Os": v.os,
            "Arch": v.arch,
            "KernelVersion": kernel,
            "Experimental": false,
            "BuildTime": "",
        },
    })
}

pub fn version(a: &VersionArgs) -> Result<i32> {
    let v = version_value();
    if let Some(f) = &a.format {
        println!("{}", Format::parse_inspect(Some(f))?.render(&v)?);
        return Ok(0);
    }
    let c = &v["Client"];
    let s = &v["Server"];
    let line = |indent: &str, k: &str, val: &Value| {
        let val = val.as_str().map(str::to_string).unwrap_or_else(|| val.to_string());
        println!(
            "{indent}{:<width$}{val}",
            format!("{k}:"),
            width = 19 - indent.len() + 1
        );
    };
    println!("Client:");
    line(" ", "Version", &c["Version"]);
    line(" ", "API version", &c["ApiVersion"]);
    line(" ", "Git commit", &c["GitCommit"]);
    line(
        " ",
        "OS/Arch",
        &json!(format!(
            "{}/{}",
            c["Os"].as_str().unwrap_or(""),
            c["Arch"].as_str().unwrap_or("")
        )),
    );
    line(" ", "Context", &c["Context"]);
    println!();
    println!("Server: berth (no daemon: the engine runs in each berth process)");
    println!(" Engine:");
    line("  ", "Version", &s["Version"]);
    line(
        "  ",
        "API version",
        &json!(format!(
            "{} (minimum version {})",
            s["ApiVersion"].as_str().unwrap_or(""),
            s["MinAPIVersion"].as_str().unwrap_or("")
        )),
    );
    line("  ", "Git commit", &s["GitCommit"]);
    line(
        "  ",
        "OS/Arch",
        &json!(format!(
            "{}/{}",
            s["Os"].as_str().unwrap_or(""),
            s["Arch"].as_str().unwrap_or("")
        )),
    );
    line("  ", "Experimental", &json!("false"));
    Ok(0)
}

/// `23.54GiB`, as Docker's `units.BytesSize`.
fn binary_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    // Go's %.4g: four significant digits, trailing zeros dropped.
    let digits = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// `info`'s data: the engine's, with the keys Docker's has that scripts read
/// (`DockerRootDir`, `DefaultRuntime`, `Runtimes`, `LoggingDriver`, …).
fn info_value(i: &berth_engine::system::Info) -> Result<Value> {
    let mut v = serde_json::to_value(i)?;
    if let Some(m) = v.as_object_mut() {
        m.insert("DockerRootDir".into(), json!(i.root));
        m.insert("DefaultRuntime".into(), json!(i.runtime.name));
        m.insert(
            "Runtimes".into(),
            json!({ i.runtime.name.clone(): {"path": i.runtime.path} }),
        );
        m.insert("LoggingDriver".into(), json!("json-file"));
        m.insert("CgroupDriver".into(), json!("cgroupfs"));
        m.insert("IndexServerAddress".into(), json!("https://index.docker.io/v1/"));
        m.insert("Debug".into(), json!(false));
    }
    Ok(v)
}

pub fn info(engine: &Engine, a: InfoArgs) -> Result<i32> {
    let i = engine.info()?;
    if let Some(f) = &a.format {
        println!("{}", Format::parse_inspect(Some(f))?.render(&info_value(&i)?)?);
        return Ok(0);
    }
    let v = version_value();
    println!("Client:");
    println!(" Version:    {}", v["Client"]["Version"].as_str().unwrap_or(""));
    println!(" Context:    default");
    println!(" Debug Mode: false");
    println!();
    println!("Server:");
    println!(" Containers: {}", i.containers);
    println!("  Running: {}", i.containers_running);
    println!("  Paused: {}", i.containers_paused);
    println!("  Stopped: {}", i.containers_stopped);
    println!(" Images: {}", i.images);
    println!(" Server Version: {}", i.server_version);
    println!(" Storage Driver: {}", i.driver);
    println!(" Logging Driver: json-file");
    println!(" Cgroup Driver: cgroupfs");
    println!(
        " Cgroup Version: {}{}",
        i.cgroup_version,
        if i.cgroup_hybrid { " (hybrid)" } else { "" }
    );
    println!(" Runtimes: {}", i.runtime.name);
    println!(" Default Runtime: {} ({})", i.runtime.name, i.runtime.path);
    println!("  Why: {}", i.runtime.reason);
    println!(" Rootless: {}", i.rootless);
    println!(" Kernel Version: {}", i.kernel_version);
    println!(" Operating System: {}", i.operating_system);
    println!(" OSType: {}", i.os_type);
    println!(" Architecture: {}", i.architecture);
    println!(" CPUs: {}", i.ncpu);
    println!(" Total Memory: {}", binary_size(i.mem_total));
    println!(" Name: {}", i.name);
    println!(" Docker Root Dir: {}", i.root);
    match &i.userns {
        Some(u) => super::userns::print_info(u),
        None => {
            if let Err(e) = engine.userns_info() {
                println!("User Namespaces: {e:#}");
            }
        }
    }
    for w in &i.warnings {
        println!("WARNING: {w}");
    }
    Ok(0)
}

pub fn dispatch(engine: &Engine, cmd: SystemCommand) -> Result<i32> {
    match cmd {
        SystemCommand::Df(a) => df(engine, a),
        SystemCommand::Prune(a) => prune(engine, a),
        SystemCommand::Info(a) => info(engine, a),
        SystemCommand::Binfmt(a) => super::binfmt::run(a),
        SystemCommand::Service(a) => super::service::run(engine, a),
        SystemCommand::Check(a) => check(engine, a),
        SystemCommand::Events(a) => super::events::run(engine, a),
    }
}

/// Prints each finding; exits 1 while something is left unrepaired.
fn check(engine: &Engine, a: CheckArgs) -> Result<i32> {
    let report = engine.system_check(a.repair)?;
    for f in &report.findings {
        println!("{f}");
    }
    let found = report.findings.len();
    let left = report.unrepaired().count();
    if found == 0 {
        println!("No problems found.");
    } else if left == 0 {
        println!("{found} problem(s) found, all repaired.");
    } else if a.repair {
        println!("{found} problem(s) found, {} repaired, {left} left.", found - left);
    } else {
        println!("{found} problem(s) found; `berth system check --repair` repairs them.");
    }
    Ok(if left == 0 { 0 } else { 1 })
}

fn df(engine: &Engine, a: DfArgs) -> Result<i32> {
    let du = engine.disk_usage()?;
    // Docker's RECLAIMABLE: the size, and its share of the row's size.
    let reclaimable = |r: &UsageRow| match (r.reclaimable * 100).checked_div(r.size) {
        Some(p) => format!("{} ({p}%)", human_size_4(r.reclaimable)),
        None => human_size_4(r.reclaimable),
    };
    let row = |kind: &str, r: &UsageRow| {
        json!({"Type": kind, "TotalCount": r.total.to_string(), "Active": r.active.to_string(),
               "Size": human_size_4(r.size), "Reclaimable": reclaimable(r)})
    };
    let rows = vec![
        row("Images", &du.images),
        row("Containers", &du.containers),
        row("Local Volumes", &du.volumes),
        row("Build Cache", &du.build_cache),
    ];
    let headers: HashMap<&str, &str> = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ]
    .into_iter()
    .collect();
    let spec = a
        .format
        .clone()
        .unwrap_or_else(|| "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".into());
    if !a.verbose {
        Format::parse(Some(&spec))?.print_items(&rows, &headers)?;
    }
    if a.verbose {
        // Docker's -v: the four sections, without the summary.
        println!("Images space usage:\n");
        let rows = engine.list_images(&Default::default())?;
        let ids: Vec<_> = rows.iter().map(|r| r.id.clone()).collect();
        let usage = engine.image_layer_usage(&ids)?;
        let items: Vec<Value> = rows
            .iter()
            .map(|r| {
                let u = usage.get(&r.id).copied().unwrap_or_default();
                json!({"Repository": r.repository, "Tag": r.tag, "ID": r.id.short(), "CreatedSince": super::format::since(&r.created),
                       "Size": human_size(r.size), "SharedSize": human_size_4(u.shared), "UniqueSize": human_size_4(u.unique),
                       "Containers": r.containers.to_string()})
            })
            .collect();
        let h: HashMap<&str, &str> = [
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("Size", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("Containers", "CONTAINERS"),
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
        ]
        .into_iter()
        .collect();
        Format::parse(Some(
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        ))?
        .print_items(&items, &h)?;

        println!("\nContainers space usage:\n");
        let all = engine.ps(true, &Default::default())?;
        let items: Vec<Value> = all
            .iter()
            .map(|c| {
                let mut row = engine.ps_row(c, false, true);
                // The writable layer alone, not "(virtual …)".
                if let Some(s) = row["Size"]
                    .as_str()
                    .map(|s| s.split(" (").next().unwrap_or("").to_string())
                {
                    row["Size"] = json!(s);
                }
                row
            })
            .collect();
        let h: HashMap<&str, &str> = [
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("Size", "SIZE"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("Names", "NAMES"),
        ]
        .into_iter()
        .collect();
        Format::parse(Some(
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        ))?
        .print_items(&items, &h)?;

        println!("\nLocal Volumes space usage:\n");
        let detail = engine.disk_usage_detail()?;
        let items: Vec<Value> = detail
            .volumes
            .iter()
            .map(|v| json!({"Name": v.volume.record.name, "Links": v.ref_count.to_string(), "Size": human_size_4(v.size)}))
            .collect();
        let h: HashMap<&str, &str> = [("Name", "VOLUME NAME"), ("Links", "LINKS"), ("Size", "SIZE")]
            .into_iter()
            .collect();
        Format::parse(Some("table {{.Name}}\t{{.Links}}\t{{.Size}}"))?.print_items(&items, &h)?;

        println!("\nBuild cache usage: {}\n", human_size_4(du.build_cache.size));
        println!("CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED");
    }
    Ok(0)
}

fn prune(engine: &Engine, a: SystemPruneArgs) -> Result<i32> {
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if a.all {
        "  - all images without at least one container associated to them\n  - all build cache"
    } else {
        "  - all dangling images\n  - unused build cache"
    });
    let filter = berth_engine::containers::prune::PruneFilter::parse(&a.filter)?;
    if !a.force && !super::images::confirm(&warning)? {
        return Ok(0);
    }
    let (removed_containers, mut freed) = engine.prune_containers_filtered(&filter)?;
    if !removed_containers.is_empty() {
        println!("Deleted Containers:");
        for c in &removed_containers {
            println!("{c}");
        }
        println!();
    }
    // As Docker: unused networks go too (berth's network prune has no filters yet).
    if a.filter.is_empty() {
        let gone = engine.network_prune()?;
        if !gone.is_empty() {
            println!("Deleted Networks:");
            for n in &gone {
                println!("{n}");
            }
            println!();
        }
    }
    if a.volumes {
        let (gone, bytes) = engine.volume_prune(false, &Default::default())?;
        freed += bytes;
        if !gone.is_empty() {
            println!("Deleted Volumes:");
            for n in &gone {
                println!("{n}");
            }
            println!();
        }
    }
    let (removed, bytes) = engine.prune_images_filtered(a.all, &filter)?;
    freed += bytes;
    super::images::print_pruned_images(&removed);
    let (cached, bytes) = engine.prune_build_cache(&filter)?;
    freed += bytes;
    if !cached.is_empty() {
        println!("Deleted build cache objects:");
        for id in &cached {
            println!("{}", id.trim_start_matches("sha256:"));
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size_4(freed));
    Ok(0)
}
