//! `version`, `info`, `system df`, `system prune`.

use std::collections::HashMap;

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use super::format::{human_size, Format};
use crate::engine::{is_rootless, Engine};

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
}

pub fn version(a: &VersionArgs) -> Result<i32> {
    let v = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "Os": std::env::consts::OS,
        "Arch": berth_store::ImageConfig::host_architecture(),
        "ApiVersion": "1.43",
    });
    match &a.format {
        Some(f) => println!("{}", Format::parse(Some(f))?.render(&v)?),
        None => {
            println!("berth version {}", env!("CARGO_PKG_VERSION"));
            println!(
                " OS/Arch: {}/{}",
                std::env::consts::OS,
                berth_store::ImageConfig::host_architecture()
            );
        }
    }
    Ok(0)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else if std::path::Path::new("/sys/fs/cgroup/unified").exists() {
        "1 (hybrid)"
    } else {
        "1"
    }
}

pub fn info(engine: &Engine, a: InfoArgs) -> Result<i32> {
    let (images, containers) = engine.store.counts()?;
    let runtime = berth_runtime::OciRuntime::select(engine.runtime.as_deref(), &engine.root().join("runtime"));
    let (rname, rpath, reason) = match &runtime {
        Ok(r) => (r.name.clone(), r.path.display().to_string(), r.reason.clone()),
        Err(e) => ("none".into(), String::new(), e.to_string()),
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let v = json!({
        "Root": engine.root().display().to_string(),
        "Driver": "overlay",
        "Images": images,
        "Containers": containers,
        "Rootless": is_rootless(),
        "CgroupVersion": cgroup_version(),
        "Runtime": {"Name": rname, "Path": rpath, "Reason": reason},
        "KernelVersion": kernel.trim(),
        "OperatingSystem": std::env::consts::OS,
        "Architecture": berth_store::ImageConfig::host_architecture(),
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "ServerVersion": env!("CARGO_PKG_VERSION"),
    });
    if let Some(f) = &a.format {
        println!("{}", Format::parse(Some(f))?.render(&v)?);
        return Ok(0);
    }
    println!("Server Version: {}", v["ServerVersion"].as_str().unwrap_or(""));
    println!("Root Dir: {}", v["Root"].as_str().unwrap_or(""));
    println!("Storage Driver: overlay");
    println!("Images: {images}");
    println!("Containers: {containers}");
    println!("Rootless: {}", is_rootless());
    println!("Cgroup Version: {}", cgroup_version());
    println!("Default Runtime: {rname} ({rpath})");
    println!(" Why: {reason}");
    println!("Kernel Version: {}", kernel.trim());
    println!("Architecture: {}", v["Architecture"].as_str().unwrap_or(""));
    println!("CPUs: {}", v["NCPU"]);
    Ok(0)
}

pub fn dispatch(engine: &Engine, cmd: SystemCommand) -> Result<i32> {
    match cmd {
        SystemCommand::Df(a) => df(engine, a),
        SystemCommand::Prune(a) => prune(engine, a),
        SystemCommand::Info(a) => info(engine, a),
    }
}

fn df(engine: &Engine, a: DfArgs) -> Result<i32> {
    let (total, active, size, reclaimable) = engine.df_images()?;
    let containers = engine.store.list_containers()?.len();
    let pct = |r: u64, s: u64| match (r * 100).checked_div(s) {
        Some(p) => format!(" ({p}%)"),
        None => String::new(),
    };
    let rows = vec![
        json!({"Type": "Images", "TotalCount": total.to_string(), "Active": active.to_string(), "Size": human_size(size), "Reclaimable": format!("{}{}", human_size(reclaimable), pct(reclaimable, size))}),
        json!({"Type": "Containers", "TotalCount": containers.to_string(), "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
        json!({"Type": "Local Volumes", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
        json!({"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"}),
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
    Format::parse(Some(&spec))?.print_items(&rows, &headers)?;
    if a.verbose {
        println!("\nImages space usage:\n");
        let rows = engine.list_images(&Default::default())?;
        let items: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({"Repository": r.repository, "Tag": r.tag, "ID": r.id.short(), "CreatedSince": super::format::since(&r.created),
                       "Size": human_size(r.size), "Containers": r.containers.to_string()})
            })
            .collect();
        let h: HashMap<&str, &str> = [
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("Size", "SIZE"),
            ("Containers", "CONTAINERS"),
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
        ]
        .into_iter()
        .collect();
        Format::parse(Some(
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.Containers}}",
        ))?
        .print_items(&items, &h)?;
    }
    Ok(0)
}

fn prune(engine: &Engine, a: SystemPruneArgs) -> Result<i32> {
    let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n");
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if a.all {
        "  - all images without at least one container associated to them\n  - all build cache"
    } else {
        "  - all dangling images\n  - unused build cache"
    });
    if !a.force && !super::images::confirm(&warning)? {
        return Ok(0);
    }
    let removed_containers = super::containers::prune_stopped(engine)?;
    if !removed_containers.is_empty() {
        println!("Deleted Containers:");
        for c in &removed_containers {
            println!("{c}");
        }
        println!();
    }
    let (removed, freed) = engine.prune_images(a.all, &[])?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        for r in &removed {
            match r {
                crate::engine::images::Removal::Untagged(n) => println!("untagged: {n}"),
                crate::engine::images::Removal::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(0)
}
