//! `berth update`: new limits and restart policy for containers, live.

use anyhow::{bail, Result};

use berth_engine::containers::update::UpdateSpec;
use berth_engine::spec;
use berth_engine::Engine;

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short, long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "BYTES")]
    pub memory_reservation: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "0-3,0,1")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "0-3,0,1")]
    pub cpuset_mems: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// The request, checked once for all the containers.
fn update_spec(a: &UpdateArgs) -> Result<UpdateSpec> {
    let u = UpdateSpec {
        memory: a
            .memory
            .as_deref()
            .map(|m| spec::parse_bytes("--memory", m))
            .transpose()?,
        memory_swap: match a.memory_swap.as_deref() {
            Some("-1") => Some(spec::MemorySwap::Unlimited),
            Some(s) => Some(spec::MemorySwap::Limit(spec::parse_bytes("--memory-swap", s)?)),
            None => None,
        },
        nano_cpus: a.cpus.as_deref().map(spec::parse_cpus).transpose()?,
        cpu_shares: a.cpu_shares,
        pids_limit: a.pids_limit,
        restart: a.restart.as_deref().map(spec::parse_restart).transpose()?,
        cpu_rt_period: a.cpu_rt_period,
        cpu_rt_runtime: a.cpu_rt_runtime,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        memory_reservation: a
            .memory_reservation
            .as_deref()
            .map(|m| spec::parse_bytes("--memory-reservation", m))
            .transpose()?,
        blkio_weight: a.blkio_weight,
    };
    if u == UpdateSpec::default() {
        bail!("you must provide one or more flags when using this command");
    }
    Ok(u)
}

/// Prints each container updated, then the daemon's warnings (both on
/// stdout, as the docker CLI prints them), and the error of each one that
/// was not (then exits 1).
pub fn run(engine: &Engine, a: UpdateArgs) -> Result<i32> {
    let u = update_spec(&a)?;
    let mut failed = false;
    let mut warnings = Vec::new();
    for c in &a.containers {
        match engine.update_container(c, &u) {
            Ok(w) => {
                println!("{c}");
                warnings.extend(w);
            }
            Err(e) => {
                eprintln!("{}", super::error_text(&e.into()));
                failed = true;
            }
        }
    }
    for w in warnings {
        println!("{w}");
    }
    Ok(if failed { 1 } else { 0 })
}
