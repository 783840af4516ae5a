//! `berth volume create|ls|inspect|rm|prune`: Docker's flags, columns and
//! JSON, over the engine's volume functions.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use super::format::{human_size_4, Format};
use super::network::{inspect_each, key_values};
use berth_engine::volumes::{volume_json, VolumeCreate, VolumeFilters};
use berth_engine::Engine;

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    /// The volume's name (random when omitted)
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long = "filter")]
    pub filters: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes (no error when missing)
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long)]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// Docker's "Are you sure you want to continue? [y/N]" (no terminal: no).
pub fn confirm(warning: &str) -> Result<bool> {
    println!("{warning}");
    print!("Are you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    if !std::io::stdin().is_terminal() {
        println!();
        return Ok(false);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

pub fn dispatch(engine: &Engine, cmd: VolumeCommand) -> Result<i32> {
    match cmd {
        VolumeCommand::Create(a) => {
            let v = engine.volume_create(&VolumeCreate {
                name: a.name,
                driver: Some(a.driver),
                options: key_values(&a.opt, "option")?,
                labels: key_values(&a.label, "label")?,
            })?;
            println!("{}", v.record.name);
            Ok(0)
        }
        VolumeCommand::Ls(a) => ls(engine, a),
        VolumeCommand::Inspect(a) => inspect_each(a.format.as_deref(), &a.volumes, |v| engine.volume_inspect(v)),
        VolumeCommand::Rm(a) => {
            let mut failed = false;
            for v in &a.volumes {
                match engine.volume_remove(v, a.force) {
                    Ok(_) => println!("{v}"),
                    Err(e) => {
                        eprintln!("{}", super::error_text(&e.into()));
                        failed = true;
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        VolumeCommand::Prune(a) => {
            let filters = berth_engine::volumes::VolumeFilters::parse_prune(&a.filter)?;
            let warning = if a.all {
                "WARNING! This will remove all local volumes not used by at least one container."
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            };
            if !a.force && !confirm(warning)? {
                return Ok(0);
            }
            let (gone, bytes) = engine.volume_prune(a.all, &filters)?;
            if !gone.is_empty() {
                println!("Deleted Volumes:");
                for n in &gone {
                    println!("{n}");
                }
                println!();
            }
            println!("Total reclaimed space: {}", human_size_4(bytes));
            Ok(0)
        }
    }
}

fn ls(engine: &Engine, a: LsArgs) -> Result<i32> {
    let views = engine.volume_list(&VolumeFilters::parse(&a.filters)?)?;
    if a.quiet {
        for v in &views {
            println!("{}", v.volume.record.name);
        }
        return Ok(0);
    }
    let spec = match a.format.as_deref() {
        None | Some("") | Some("table") => "table {{.Driver}}\t{{.Name}}".to_string(),
        Some(s) => s.to_string(),
    };
    let items: Vec<Value> = views
        .iter()
        .map(|v| {
            let mut j = volume_json(v);
            let labels = v
                .volume
                .record
                .labels
                .iter()
                .map(|(k, x)| format!("{k}={x}"))
                .collect::<Vec<_>>()
                .join(",");
            j["Labels"] = json!(labels);
            j["Links"] = json!(v.users.len().to_string());
            j["Size"] = json!("N/A");
            j
        })
        .collect();
    let headers: HashMap<&str, &str> = [
        ("Driver", "DRIVER"),
        ("Name", "VOLUME NAME"),
        ("Scope", "SCOPE"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Labels", "LABELS"),
        ("Links", "LINKS"),
        ("Size", "SIZE"),
        ("CreatedAt", "CREATED AT"),
    ]
    .into_iter()
    .collect();
    Format::parse(Some(&spec))?.print_items(&items, &headers)?;
    Ok(0)
}
