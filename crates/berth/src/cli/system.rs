//! `version`, `info`, `system df`, `system prune`, `system check`.

use std::collections::HashMap;

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use super::format::{human_size, Format};
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
}

pub fn version(a: &VersionArgs) -> Result<i32> {
    let v = berth_engine::system::version();
    match &a.format {
        Some(f) => println!("{}", Format::parse(Some(f))?.render(&serde_json::to_value(&v)?)?),
        None => {
            println!("berth version {}", v.version);
            println!(" OS/Arch: {}/{}", v.os, v.arch);
        }
    }
    Ok(0)
}

pub fn info(engine: &Engine, a: InfoArgs) -> Result<i32> {
    let i = engine.info()?;
    if let Some(f) = &a.format {
        println!("{}", Format::parse(Some(f))?.render(&serde_json::to_value(&i)?)?);
        return Ok(0);
    }
    println!("Server Version: {}", i.server_version);
    println!("Root Dir: {}", i.root);
    println!("Storage Driver: {}", i.driver);
    println!("Images: {}", i.images);
    println!("Containers: {}", i.containers);
    println!("Rootless: {}", i.rootless);
    println!(
        "Cgroup Version: {}{}",
        i.cgroup_version,
        if i.cgroup_hybrid { " (hybrid)" } else { "" }
    );
    println!("Default Runtime: {} ({})", i.runtime.name, i.runtime.path);
    println!(" Why: {}", i.runtime.reason);
    println!("Kernel Version: {}", i.kernel_version);
    println!("Architecture: {}", i.architecture);
    println!("CPUs: {}", i.ncpu);
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
        Some(p) => format!("{} ({p}%)", human_size(r.reclaimable)),
        None => human_size(r.reclaimable),
    };
    let row = |kind: &str, r: &UsageRow| {
        json!({"Type": kind, "TotalCount": r.total.to_string(), "Active": r.active.to_string(),
               "Size": human_size(r.size), "Reclaimable": reclaimable(r)})
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
    Format::parse(Some(&spec))?.print_items(&rows, &headers)?;
    if a.verbose {
        println!("\nImages space usage:\n");
        let rows = engine.list_images(&Default::default())?;
        let ids: Vec<_> = rows.iter().map(|r| r.id.clone()).collect();
        let usage = engine.image_layer_usage(&ids)?;
        let items: Vec<Value> = rows
            .iter()
            .map(|r| {
                let u = usage.get(&r.id).copied().unwrap_or_default();
                json!({"Repository": r.repository, "Tag": r.tag, "ID": r.id.short(), "CreatedSince": super::format::since(&r.created),
                       "Size": human_size(r.size), "SharedSize": human_size(u.shared), "UniqueSize": human_size(u.unique),
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
        // Docker's third table: each volume, how many containers mount it, its size.
        println!("\nLocal Volumes space usage:\n");
        let items: Vec<Value> = engine
            .volumes(true)?
            .iter()
            .map(|v| json!({"Name": v.name, "Links": v.ref_count.to_string(), "Size": human_size(v.size)}))
            .collect();
        let h: HashMap<&str, &str> = [("Name", "VOLUME NAME"), ("Links", "LINKS"), ("Size", "SIZE")]
            .into_iter()
            .collect();
        Format::parse(Some("table {{.Name}}\t{{.Links}}\t{{.Size}}"))?.print_items(&items, &h)?;
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
    let removed_containers = engine.prune_containers()?;
    if !removed_containers.is_empty() {
        println!("Deleted Containers:");
        for c in &removed_containers {
            println!("{c}");
        }
        println!();
    }
    let mut volume_bytes = 0;
    if a.volumes {
        let (gone, bytes) = engine.volume_prune(false)?;
        volume_bytes = bytes;
        if !gone.is_empty() {
            println!("Deleted Volumes:");
            for v in &gone {
                println!("{v}");
            }
            println!();
        }
    }
    let (removed, freed) = engine.prune_images(a.all, &[])?;
    let freed = freed + volume_bytes;
    if !removed.is_empty() {
        println!("Deleted Images:");
        for r in &removed {
            match r {
                berth_engine::images::Removal::Untagged(n) => println!("untagged: {n}"),
                berth_engine::images::Removal::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(0)
}
