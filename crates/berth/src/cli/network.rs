//! `berth network create|ls|inspect|rm|prune|connect|disconnect`: Docker's flags, columns and
//! JSON, over the engine's network functions.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use super::format::Format;
use super::images::print_inspect;
use berth_engine::human::since;
use berth_engine::networks::NetworkFilters;
use berth_engine::Engine;
use berth_net::bridge::NetworkRequest;

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<std::net::Ipv6Addr>,
    /// Add link to another container
    #[arg(long)]
    pub link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long, value_name = "IP", value_parser = super::flags::link_local_ip)]
    pub link_local_ip: Vec<std::net::IpAddr>,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the network (bridge)
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container IPs from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Set metadata on a network
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    /// Enable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Enable manual container attachment (accepted; every berth network is attachable)
    #[arg(long)]
    pub attachable: bool,
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short, long = "filter")]
    pub filters: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics (accepted)
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (accepted: until, label)
    #[arg(long = "filter")]
    pub filters: Vec<String>,
}

/// `KEY=VALUE` (a bare `KEY` means an empty value, as Docker's labels do).
pub fn key_values(items: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for i in items {
        let (k, v) = i.split_once('=').unwrap_or((i.as_str(), ""));
        if k.is_empty() {
            bail!("invalid {what} {i:?}: expected KEY=VALUE");
        }
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

/// The value of `flag` for one address family (`v6`): at most one each.
fn one(v: &[String], flag: &str, v6: bool) -> Result<Option<String>> {
    let mine: Vec<&String> = v.iter().filter(|s| berth_net::ipam::is_v6(s) == v6).collect();
    match mine.len() {
        0 => Ok(None),
        1 => Ok(Some(mine[0].clone())),
        _ => bail!("berth networks take one {} {flag}", if v6 { "IPv6" } else { "IPv4" }),
    }
}

pub fn dispatch(engine: &Engine, cmd: NetworkCommand) -> Result<i32> {
    match cmd {
        NetworkCommand::Create(a) => create(engine, a),
        NetworkCommand::Ls(a) => ls(engine, a),
        NetworkCommand::Inspect(a) => inspect(engine, a),
        NetworkCommand::Rm(a) => rm(engine, a),
        NetworkCommand::Prune(a) => prune(engine, a),
        NetworkCommand::Connect(a) => {
            let ep = berth_engine::spec::EndpointSpec {
                network: a.network.clone(),
                aliases: a.alias.clone(),
                ipv4: a.ip,
                ipv6: a.ip6,
                mac_address: None,
                link_local_ips: a.link_local_ip.clone(),
            };
            engine.network_connect(&a.container, &ep, &a.link)?;
            Ok(0)
        }
        NetworkCommand::Disconnect(a) => {
            engine.network_disconnect(&a.network, &a.container, a.force)?;
            Ok(0)
        }
    }
}

fn create(engine: &Engine, a: CreateArgs) -> Result<i32> {
    let subnet6 = one(&a.subnet, "--subnet", true)?;
    let req = NetworkRequest {
        name: a.name,
        driver: Some(a.driver),
        subnet: one(&a.subnet, "--subnet", false)?,
        gateway: one(&a.gateway, "--gateway", false)?,
        ip_range: one(&a.ip_range, "--ip-range", false)?,
        internal: a.internal,
        labels: key_values(&a.label, "label")?,
        options: key_values(&a.opt, "option")?,
        // An IPv6 subnet enables IPv6, as Podman does (Docker would ignore it).
        ipv6: a.ipv6 || subnet6.is_some(),
        subnet6,
        gateway6: one(&a.gateway, "--gateway", true)?,
        ip_range6: one(&a.ip_range, "--ip-range", true)?,
    };
    let n = engine.network_create(&req)?;
    println!("{}", n.id);
    Ok(0)
}

fn ls(engine: &Engine, a: LsArgs) -> Result<i32> {
    let rows = engine.network_list(&NetworkFilters::parse(&a.filters)?)?;
    let id = |s: &str| {
        if a.no_trunc {
            s.to_string()
        } else {
            s.chars().take(12).collect()
        }
    };
    if a.quiet {
        for r in &rows {
            println!("{}", id(&r.id));
        }
        return Ok(0);
    }
    let spec = match a.format.as_deref() {
        None | Some("") | Some("table") => "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".to_string(),
        Some(s) => s.to_string(),
    };
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let labels = r
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            json!({
                "ID": id(&r.id),
                "Name": r.name,
                "Driver": r.driver,
                "Scope": r.scope,
                "IPv6": r.ipv6,
                "Internal": r.internal,
                "Labels": labels,
                "CreatedAt": r.created,
                "CreatedSince": if r.created.is_empty() { String::new() } else { since(&r.created) },
            })
        })
        .collect();
    let headers: HashMap<&str, &str> = [
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ]
    .into_iter()
    .collect();
    Format::parse(Some(&spec))?.print_items(&items, &headers)?;
    Ok(0)
}

fn inspect(engine: &Engine, a: InspectArgs) -> Result<i32> {
    inspect_each(a.format.as_deref(), &a.networks, |n| engine.network_inspect(n))
}

/// `inspect` of several objects: the ones found printed together (JSON
/// array or one template line each), an error line for each one not
/// found, exit code 1 if any was not.
pub fn inspect_each(
    format: Option<&str>,
    names: &[String],
    get: impl Fn(&str) -> berth_engine::error::Result<Value>,
) -> Result<i32> {
    let fmt = Format::parse(format)?;
    let mut values = Vec::new();
    let mut failed = false;
    for n in names {
        match get(n) {
            Ok(v) => values.push(v),
            Err(e) => {
                eprintln!("{}", super::error_text(&e.into()));
                failed = true;
            }
        }
    }
    print_inspect(&fmt, &values)?;
    Ok(if failed { 1 } else { 0 })
}

fn rm(engine: &Engine, a: RmArgs) -> Result<i32> {
    let mut failed = false;
    for n in &a.networks {
        match engine.network_remove(n) {
            Ok(()) => println!("{n}"),
            Err(e) if a.force && e.kind() == berth_engine::error::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!("{}", super::error_text(&e.into()));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn prune(engine: &Engine, a: PruneArgs) -> Result<i32> {
    if !a.filters.is_empty() {
        bail!("network prune --filter is not supported by berth yet");
    }
    if !a.force
        && !super::volume::confirm("WARNING! This will remove all custom networks not used by at least one container.")?
    {
        return Ok(0);
    }
    let gone = engine.network_prune()?;
    if !gone.is_empty() {
        println!("Deleted Networks:");
        for n in gone {
            println!("{n}");
        }
        println!();
    }
    Ok(0)
}
