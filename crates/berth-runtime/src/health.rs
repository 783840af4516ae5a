//! Healthchecks: runs the HEALTHCHECK probe in the container on Docker's
//! schedule and records `Health` (status, failing streak, last 5 results)
//! in the container's state.
//!
//! Runs inside the monitor, on its own thread; it must never block the
//! monitor's I/O loop and never write anything but the state's `health`.

use crate::config::{ContainerConfig, HealthConfig};
use crate::error::Result;
use crate::exec::{exec_process, load_spec_json, write_process_file, ExecOptions};
use crate::oci::OciRuntime;
use crate::state::{self, Health, HealthLog};
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Most output kept per probe (Docker's limit).
pub const MAX_OUTPUT: usize = 4096;
/// Results kept in the log.
pub const MAX_LOG: usize = 5;

/// A healthcheck with Docker's defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

fn dur(ns: u64, default: Duration) -> Duration {
    if ns == 0 {
        default
    } else {
        Duration::from_nanos(ns)
    }
}

/// The probe's argv and timings, or `None` when there is no healthcheck
/// (`NONE` or an empty test).
pub fn schedule(h: &HealthConfig, shell: &[String]) -> Option<Schedule> {
    let argv = match h.test.first().map(String::as_str) {
        Some("CMD") => h.test[1..].to_vec(),
        Some("CMD-SHELL") => {
            let mut a = if shell.is_empty() {
                vec!["/bin/sh".to_string(), "-c".to_string()]
            } else {
                shell.to_vec()
            };
            a.push(h.test[1..].join(" "));
            a
        }
        _ => return None,
    };
    if argv.is_empty() {
        return None;
    }
    Some(Schedule {
        argv,
        interval: dur(h.interval, Duration::from_secs(30)),
        timeout: dur(h.timeout, Duration::from_secs(30)),
        start_period: dur(h.start_period, Duration::ZERO),
        start_interval: dur(h.start_interval, Duration::from_secs(5)),
        retries: if h.retries == 0 { 3 } else { h.retries },
    })
}

/// Runs one probe: exit code (-1 on timeout or failure to run) and output.
pub fn probe(container_dir: &Path, runtime: &OciRuntime, id: &str, s: &Schedule) -> HealthLog {
    let start = state::now_rfc3339();
    let (code, output) = match run_probe(container_dir, runtime, id, s) {
        Ok(r) => r,
        Err(e) => (-1, format!("health check failed to run: {e}")),
    };
    HealthLog {
        start,
        end: state::now_rfc3339(),
        exit_code: code,
        output,
    }
}

fn run_probe(container_dir: &Path, runtime: &OciRuntime, id: &str, s: &Schedule) -> Result<(i32, String)> {
    let spec = load_spec_json(container_dir)?;
    let process = exec_process(
        &spec,
        &ExecOptions {
            cmd: s.argv.clone(),
            ..Default::default()
        },
    )?;
    let pfile = write_process_file(container_dir, &process)?;
    let pid_file = pfile.with_extension("pid");
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| crate::RuntimeError::io("creating a pipe for the health probe", e.into()))?;
    let w2 = w
        .try_clone()
        .map_err(|e| crate::RuntimeError::io("duplicating a pipe", e))?;
    let r = std::fs::File::from(r);
    let log = pfile.with_extension("log");
    let mut cmd = runtime.exec_command(id, &pfile, false, false, None, Some(&pid_file), Some(&log));
    cmd.stdin(Stdio::null()).stdout(w).stderr(w2);
    let spawned = cmd.spawn();
    drop(cmd);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&pfile);
            return Err(crate::RuntimeError::io(format!("running {} exec", runtime.name), e));
        }
    };
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let mut r = r;
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            if out.len() < MAX_OUTPUT {
                let take = n.min(MAX_OUTPUT - out.len());
                out.extend_from_slice(&buf[..take]);
            }
        }
        out
    });
    let deadline = Instant::now() + s.timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                if let Some(pid) = std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|p| p.trim().parse::<i32>().ok())
                {
                    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let out = reader.join().unwrap_or_default();
    let start_error = status.and_then(|st| crate::exec::exec_start_error(st, &log));
    for f in [&pfile, &pid_file, &log] {
        let _ = std::fs::remove_file(f);
    }
    if timed_out {
        return Ok((-1, format!("Health check exceeded timeout ({:?})", s.timeout)));
    }
    // A probe the runtime could not start has no exit code of its own:
    // Docker records -1 and the runtime's reason.
    if let Some(e) = start_error {
        return Ok((-1, e.to_string()));
    }
    let code = status.map(crate::exec::exit_code_of).unwrap_or(-1);
    Ok((code, String::from_utf8_lossy(&out).into_owned()))
}

/// Folds one probe result into `health` following Docker's rules: success
/// → healthy and streak 0; failure during the start period leaves the status
/// alone; otherwise the streak grows and reaching `retries` → unhealthy.
pub fn apply_result(health: &mut Health, result: HealthLog, in_start_period: bool, retries: u32) {
    if result.exit_code == 0 {
        health.status = "healthy".into();
        health.failing_streak = 0;
    } else if !in_start_period {
        health.failing_streak += 1;
        if health.failing_streak >= retries {
            health.status = "unhealthy".into();
        }
    }
    health.log.push(result);
    if health.log.len() > MAX_LOG {
        let extra = health.log.len() - MAX_LOG;
        health.log.drain(..extra);
    }
}

/// The monitor's health thread: probes until `stop` receives a message or disconnects.
pub(crate) fn health_loop(
    container_dir: &Path,
    runtime: &OciRuntime,
    cfg: &ContainerConfig,
    s: Schedule,
    stop: Receiver<()>,
) {
    let started = Instant::now();
    loop {
        let in_start = started.elapsed() < s.start_period;
        let healthy_once = state::read_state(container_dir)
            .ok()
            .and_then(|st| st.health)
            .is_some_and(|h| h.status == "healthy");
        let wait = if in_start && !healthy_once {
            s.start_interval
        } else {
            s.interval
        };
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let result = probe(container_dir, runtime, &cfg.id, &s);
        let in_start = started.elapsed() < s.start_period;
        if stop.try_recv().is_ok() {
            return;
        }
        let _ = state::update_state(container_dir, |st| {
            if st.status != "running" {
                return;
            }
            let h = st.health.get_or_insert_with(|| Health {
                status: "starting".into(),
                ..Default::default()
            });
            apply_result(h, result, in_start, s.retries);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(code: i32) -> HealthLog {
        HealthLog {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn transitions_follow_docker() {
        let mut h = Health {
            status: "starting".into(),
            ..Default::default()
        };
        apply_result(&mut h, log(1), true, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        apply_result(&mut h, log(1), false, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 1));
        apply_result(&mut h, log(1), false, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), ("unhealthy", 2));
        apply_result(&mut h, log(0), false, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
        for _ in 0..10 {
            apply_result(&mut h, log(0), false, 2);
        }
        assert_eq!(h.log.len(), MAX_LOG);
    }

    #[test]
    fn schedule_defaults_and_forms() {
        let h = HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            ..Default::default()
        };
        let s = schedule(&h, &[]).unwrap();
        assert_eq!(s.argv, vec!["/bin/sh", "-c", "true"]);
        assert_eq!(
            (s.interval, s.timeout, s.retries),
            (Duration::from_secs(30), Duration::from_secs(30), 3)
        );
        let h = HealthConfig {
            test: vec!["CMD".into(), "/bin/true".into(), "x".into()],
            interval: 1_000_000_000,
            ..Default::default()
        };
        let s = schedule(&h, &[]).unwrap();
        assert_eq!(s.argv, vec!["/bin/true", "x"]);
        assert_eq!(s.interval, Duration::from_secs(1));
        assert!(schedule(
            &HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            },
            &[]
        )
        .is_none());
    }
}
