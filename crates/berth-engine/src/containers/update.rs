//! `update`: new resource limits and restart policy for a container,
//! applied to it live when it runs (through the runtime's `update`) and
//! recorded for its next start and for `inspect`.

use berth_runtime::config::RestartPolicy;
use serde_json::json;

use crate::error::Result;
use crate::spec::MemorySwap;
use crate::{Engine, EngineError};

/// What `update` changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateSpec {
    /// Memory limit in bytes (0: unlimited).
    pub memory: Option<u64>,
    /// Memory plus swap.
    pub memory_swap: Option<MemorySwap>,
    /// CPU time in billionths of a CPU.
    pub nano_cpus: Option<u64>,
    /// Relative CPU weight.
    pub cpu_shares: Option<u64>,
    /// Most processes at once (`-1` or 0: unlimited).
    pub pids_limit: Option<i64>,
    /// The restart policy.
    pub restart: Option<RestartPolicy>,
}

impl Engine {
    /// `update`: changes `word`'s limits and restart policy (Docker's
    /// refusals: `--restart` with `--rm`, a memory limit above the swap
    /// limit).
    pub fn update_container(&self, word: &str, u: &UpdateSpec) -> Result<()> {
        let c = self.container(word)?;
        let mut cfg = c.cfg.clone();
        if u.restart.as_ref().is_some_and(|r| *r != RestartPolicy::No) && cfg.auto_remove {
            return Err(EngineError::invalid(
                "Cannot update container: Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        let r = &mut cfg.resources;
        if let Some(m) = u.memory {
            r.memory = (m > 0).then_some(m as i64);
        }
        if let Some(s) = u.memory_swap {
            r.memory_swap = Some(match s {
                MemorySwap::Unlimited => -1,
                MemorySwap::Limit(n) => n as i64,
            });
        }
        if let (Some(m), Some(s)) = (r.memory, r.memory_swap) {
            if s > 0 && s < m {
                return Err(EngineError::invalid(
                    "Minimum memoryswap limit should be larger than memory limit, see usage",
                ));
            }
        }
        if let Some(n) = u.nano_cpus {
            let cpus = n as f64 / 1e9;
            let host = crate::host_cpus();
            if cpus > host as f64 {
                return Err(EngineError::invalid(format!(
                    "range of CPUs is from 0.01 to {host}.00, as there are only {host} CPUs available"
                )));
            }
            r.cpus = (n > 0).then_some(cpus);
        }
        if let Some(s) = u.cpu_shares {
            r.cpu_shares = (s > 0).then_some(s);
        }
        if let Some(p) = u.pids_limit {
            r.pids_limit = Some(p);
        }
        if let Some(p) = &u.restart {
            cfg.restart_policy = p.clone();
        }
        if c.dir.is_dir() {
            let rt = self.container_runtime(&c)?;
            berth_runtime::update_resources(&c.dir, &rt, &cfg.resources)
                .map_err(|e| EngineError::from(e).context("Cannot update container"))?;
            super::write_atomic(
                &c.dir.join(berth_runtime::monitor::CONFIG_FILE),
                &serde_json::to_vec_pretty(&cfg)?,
            )?;
        }
        // What `inspect` shows.
        let mut doc = c.rec.config.clone();
        if let Some(h) = doc.get_mut("HostConfig").and_then(|h| h.as_object_mut()) {
            let r = &cfg.resources;
            h.insert("Memory".into(), json!(r.memory.unwrap_or(0)));
            h.insert("MemorySwap".into(), json!(r.memory_swap.unwrap_or(0)));
            h.insert("NanoCpus".into(), json!(r.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0)));
            h.insert("CpuShares".into(), json!(r.cpu_shares.unwrap_or(0)));
            h.insert("PidsLimit".into(), json!(r.pids_limit));
            let (name, max) = match &cfg.restart_policy {
                RestartPolicy::No => ("no", 0),
                RestartPolicy::Always => ("always", 0),
                RestartPolicy::UnlessStopped => ("unless-stopped", 0),
                RestartPolicy::OnFailure { max } => ("on-failure", *max),
            };
            h.insert("RestartPolicy".into(), json!({"Name": name, "MaximumRetryCount": max}));
        }
        self.store.update_container_config(&c.rec.id, &doc)?;
        Ok(())
    }
}
