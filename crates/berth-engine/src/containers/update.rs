//! `update`: a container's restart policy and resource limits after
//! `create`. The new values go into its runtime config (`berth.json`, which
//! the monitor reads again before each restart decision), its OCI spec
//! (every later start) and its record (`inspect`); a running or paused
//! container's cgroup gets them through the runtime's `update`.

use serde_json::json;

use super::Container;
use crate::spec::{MemorySwap, RestartPolicy, MIN_MEMORY, MIN_NANO_CPUS};
use crate::{Engine, EngineError, Result};

/// What `update` changes; `None` leaves a value as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateSpec {
    /// `--restart`.
    pub restart: Option<RestartPolicy>,
    /// `--memory`, bytes.
    pub memory: Option<u64>,
    /// `--memory-swap`.
    pub memory_swap: Option<MemorySwap>,
    /// `--cpus`, in billionths of a CPU.
    pub nano_cpus: Option<u64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--pids-limit`: 0 or less is unlimited.
    pub pids_limit: Option<i64>,
    /// `--cpu-rt-period`, µs.
    pub cpu_rt_period: Option<i64>,
    /// `--cpu-rt-runtime`, µs.
    pub cpu_rt_runtime: Option<i64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--cpu-period`, µs.
    pub cpu_period: Option<i64>,
    /// `--cpu-quota`, µs; `-1` lifts it.
    pub cpu_quota: Option<i64>,
    /// `--memory-reservation`, bytes.
    pub memory_reservation: Option<u64>,
    /// `--blkio-weight`: 10–1000 (0 leaves it as it is, as Docker's).
    pub blkio_weight: Option<u16>,
}

impl UpdateSpec {
    fn resources(&self) -> bool {
        self.memory.is_some()
            || self.memory_swap.is_some()
            || self.nano_cpus.is_some()
            || self.cpu_shares.is_some()
            || self.pids_limit.is_some()
            || self.cpu_rt_period.is_some()
            || self.cpu_rt_runtime.is_some()
            || self.cpuset_cpus.is_some()
            || self.cpuset_mems.is_some()
            || self.cpu_period.is_some()
            || self.cpu_quota.is_some()
            || self.memory_reservation.is_some()
            || self.blkio_weight.is_some_and(|w| w > 0)
    }
}

impl Engine {
    /// `update`: Docker's checks, then the new values everywhere they live.
    /// Returns the warnings Docker's API answers with.
    pub fn update_container(&self, word: &str, u: &UpdateSpec) -> Result<Vec<String>> {
        let c = self.container(word)?;
        // Its next start is to create what this changes.
        self.let_go_held(&c);
        let mut cfg = c.cfg.clone();
        if let Some(p) = &u.restart {
            if cfg.auto_remove && *p != RestartPolicy::No {
                return Err(EngineError::invalid(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container",
                ));
            }
            cfg.restart_policy = p.clone();
        }
        let r = &mut cfg.resources;
        if let Some(m) = u.memory {
            if m < MIN_MEMORY {
                return Err(EngineError::invalid("Minimum memory limit allowed is 6MB"));
            }
            let m = i64::try_from(m).map_err(|_| EngineError::invalid(format!("invalid memory limit {m}")))?;
            if u.memory_swap.is_none() && r.memory_swap.is_some_and(|s| s > 0 && m > s) {
                return Err(EngineError::invalid(
                    "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
                ));
            }
            r.memory = Some(m);
        }
        if let Some(s) = u.memory_swap {
            let s = match s {
                MemorySwap::Unlimited => -1,
                MemorySwap::Limit(n) => i64::try_from(n).unwrap_or(i64::MAX),
            };
            match r.memory.filter(|m| *m > 0) {
                None => {
                    return Err(EngineError::invalid(
                        "You should always set the Memory limit when using Memoryswap limit, see usage",
                    ))
                }
                Some(m) if s > 0 && s < m => {
                    return Err(EngineError::invalid(
                        "Minimum memoryswap limit should be larger than memory limit, see usage",
                    ))
                }
                _ => {}
            }
            r.memory_swap = Some(s);
        }
        if let Some(n) = u.nano_cpus {
            let ncpu = crate::host_cpus() as u64;
            if n > 0 && !(MIN_NANO_CPUS..=ncpu * 1_000_000_000).contains(&n) {
                return Err(EngineError::invalid(format!(
                    "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
                )));
            }
            r.cpus = (n > 0).then(|| n as f64 / 1e9);
        }
        if let Some(s) = u.cpu_shares {
            r.cpu_shares = (s > 0).then_some(s);
        }
        if let Some(p) = u.pids_limit {
            r.pids_limit = (p > 0).then_some(p);
        }
        if u.cpu_rt_period.is_some() || u.cpu_rt_runtime.is_some() {
            // The checks create makes, on the values the container ends with.
            let mut check = crate::spec::ContainerSpec::new("-");
            check.resources.cpu_rt_period = u.cpu_rt_period.or(r.cpu_rt_period.map(|p| p as i64));
            check.resources.cpu_rt_runtime = u.cpu_rt_runtime.or(r.cpu_rt_runtime);
            check.validate_realtime()?;
            if let Some(p) = u.cpu_rt_period {
                r.cpu_rt_period = (p > 0).then_some(p as u64);
            }
            if let Some(rt) = u.cpu_rt_runtime {
                r.cpu_rt_runtime = (rt != 0).then_some(rt);
            }
        }
        if u.cpuset_cpus.is_some()
            || u.cpuset_mems.is_some()
            || u.cpu_period.is_some()
            || u.cpu_quota.is_some()
            || u.memory_reservation.is_some()
        {
            if let Some(c) = &u.cpuset_cpus {
                r.cpuset_cpus = Some(c.clone()).filter(|c| !c.is_empty());
            }
            if let Some(m) = &u.cpuset_mems {
                r.cpuset_mems = Some(m.clone()).filter(|m| !m.is_empty());
            }
            if let Some(p) = u.cpu_period {
                r.cpu_period = (p > 0).then_some(p as u64);
            }
            if let Some(q) = u.cpu_quota {
                r.cpu_quota = (q > 0).then_some(q);
            }
            if let Some(m) = u.memory_reservation {
                r.memory_reservation = (m > 0).then_some(m as i64);
            }
            // Create's checks, on the values the container ends with.
            let mut check = crate::spec::ContainerSpec::new("-");
            let cr = &mut check.resources;
            cr.cpuset_cpus = r.cpuset_cpus.clone();
            cr.cpuset_mems = r.cpuset_mems.clone();
            cr.cpu_period = r.cpu_period.map(|p| p as i64);
            cr.cpu_quota = r.cpu_quota;
            cr.memory_reservation = r.memory_reservation.map(|m| m as u64);
            cr.memory = r.memory.map(|m| m as u64);
            cr.nano_cpus = r.cpus.map(|c| (c * 1e9).round() as u64);
            check.validate()?;
        }
        let mut warnings = Vec::new();
        if let Some(w) = super::create::blkio_weight(u.blkio_weight.unwrap_or(0), &mut warnings)? {
            r.blkio.weight = Some(w);
        }
        if u.resources() && c.dir.is_dir() {
            let rt = self.container_runtime(&c)?;
            berth_runtime::ops::update_resources(&c.dir, &rt, &c.cfg.resources, &cfg.resources).map_err(|e| {
                EngineError::new(
                    crate::ErrorKind::Other,
                    format!("Cannot update container {}: {e}", c.rec.id),
                )
            })?;
        }
        if c.dir.is_dir() {
            super::write_atomic(
                &c.dir.join(berth_runtime::monitor::CONFIG_FILE),
                &serde_json::to_vec_pretty(&cfg)?,
            )?;
        }
        self.record_update(&c, &cfg)?;
        self.record_container_event("update", &c, &[]);
        Ok(warnings)
    }

    /// The record's `HostConfig` with the new values, as `inspect` shows them.
    fn record_update(&self, c: &Container, cfg: &berth_runtime::ContainerConfig) -> Result<()> {
        let mut doc = c.doc();
        let (name, max) = match &cfg.restart_policy {
            RestartPolicy::No => ("no", 0),
            RestartPolicy::Always => ("always", 0),
            RestartPolicy::UnlessStopped => ("unless-stopped", 0),
            RestartPolicy::OnFailure { max } => ("on-failure", *max),
        };
        let r = &cfg.resources;
        let h = &mut doc.host_config.rest;
        h.insert("RestartPolicy".into(), json!({"Name": name, "MaximumRetryCount": max}));
        h.insert("Memory".into(), json!(r.memory.unwrap_or(0)));
        h.insert("MemorySwap".into(), json!(r.memory_swap.unwrap_or(0)));
        h.insert(
            "NanoCpus".into(),
            json!(r.cpus.map(|c| (c * 1e9).round() as i64).unwrap_or(0)),
        );
        h.insert("CpuShares".into(), json!(r.cpu_shares.unwrap_or(0)));
        h.insert("PidsLimit".into(), json!(r.pids_limit));
        h.insert("CpuRealtimePeriod".into(), json!(r.cpu_rt_period.unwrap_or(0)));
        h.insert("CpuRealtimeRuntime".into(), json!(r.cpu_rt_runtime.unwrap_or(0)));
        h.insert("CpusetCpus".into(), json!(r.cpuset_cpus.clone().unwrap_or_default()));
        h.insert("CpusetMems".into(), json!(r.cpuset_mems.clone().unwrap_or_default()));
        h.insert("CpuPeriod".into(), json!(r.cpu_period.unwrap_or(0)));
        h.insert("CpuQuota".into(), json!(r.cpu_quota.unwrap_or(0)));
        h.insert("MemoryReservation".into(), json!(r.memory_reservation.unwrap_or(0)));
        h.insert("BlkioWeight".into(), json!(r.blkio.weight.unwrap_or(0)));
        self.store.update_container_config(&c.rec.id, &doc.to_value())?;
        Ok(())
    }
}
