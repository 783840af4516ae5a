//! Running extra processes in a live container (`berth exec`, healthcheck
//! probes) through the OCI runtime's `exec` with a process description
//! derived from the container's own spec.
//!
//! It must never enter namespaces itself; the runtime does that.

use crate::error::{IoContext, Result, RuntimeError};
use crate::oci::{start_error_of, OciRuntime};
use crate::spec;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// `berth exec` options.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    pub cmd: Vec<String>,
    /// Extra `KEY=value` entries (override the container's).
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `uid[:gid]` or `name[:group]`; default the container's user.
    pub user: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub privileged: bool,
}

/// Reads the container's OCI spec (`config.json`) as JSON.
pub(crate) fn load_spec_json(container_dir: &Path) -> Result<Value> {
    let p = container_dir.join("config.json");
    let text = std::fs::read_to_string(&p).ctx(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| RuntimeError::Corrupt {
        path: p,
        reason: e.to_string(),
    })
}

/// Writes the container's OCI spec back (atomically).
pub(crate) fn save_spec_json(container_dir: &Path, spec: &Value) -> Result<()> {
    let bytes = serde_json::to_vec(spec).map_err(|e| RuntimeError::InvalidConfig(e.to_string()))?;
    spec::write_atomic(&container_dir.join("config.json"), &bytes)
}

/// Builds the OCI process for an exec from the container's spec.
pub fn exec_process(spec: &Value, opts: &ExecOptions) -> Result<Value> {
    if opts.cmd.is_empty() {
        return Err(RuntimeError::InvalidConfig("exec needs a command".into()));
    }
    let mut p = spec
        .get("process")
        .cloned()
        .ok_or_else(|| RuntimeError::InvalidConfig("container spec has no process".into()))?;
    p["args"] = json!(opts.cmd);
    p["terminal"] = json!(opts.tty);
    let mut env: Vec<String> = p["env"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    for e in &opts.env {
        let k = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(k));
        env.push(e.clone());
    }
    if opts.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    p["env"] = json!(env);
    if let Some(wd) = opts.working_dir.as_ref().filter(|w| !w.is_empty()) {
        p["cwd"] = json!(wd);
    }
    if let Some(u) = opts.user.as_ref().filter(|u| !u.is_empty()) {
        let rootfs = PathBuf::from(spec["root"]["path"].as_str().unwrap_or("/nonexistent"));
        let r = spec::resolve_user(&rootfs, u)?;
        p["user"] = json!({"uid": r.uid, "gid": r.gid});
        if !r.additional_gids.is_empty() {
            p["user"]["additionalGids"] = json!(r.additional_gids);
        }
    }
    if opts.privileged {
        let all: Vec<&str> = spec::ALL_CAPS.to_vec();
        p["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
    }
    if let Some(o) = p.as_object_mut() {
        o.remove("consoleSize");
    }
    Ok(p)
}

/// Writes an exec process description into the container dir; returns its path.
pub(crate) fn write_process_file(container_dir: &Path, process: &Value) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let p = container_dir.join(format!("exec-{}-{n}.json", std::process::id()));
    std::fs::write(&p, serde_json::to_vec(process).expect("json serializes"))
        .ctx(|| format!("writing {}", p.display()))?;
    Ok(p)
}

/// Runs `opts.cmd` in the running container. Attached (not `detach`), the
/// process uses this process's stdio (stdin only with `interactive`) and the
/// exec'd process's exit code is returned; detached, 0 once it started.
/// A command that cannot be found/executed gives `StartFailed` (127/126).
pub fn exec(container_dir: &Path, runtime: &OciRuntime, id: &str, opts: &ExecOptions) -> Result<i32> {
    let spec = load_spec_json(container_dir)?;
    let process = exec_process(&spec, opts)?;
    let pfile = write_process_file(container_dir, &process)?;
    let log = pfile.with_extension("log");
    let mut cmd = runtime.exec_command(id, &pfile, opts.tty, opts.detach, None, None, Some(&log));
    if !opts.interactive {
        cmd.stdin(Stdio::null());
    }
    let status = cmd.status().ctx(|| format!("running {} exec", runtime.name));
    let start_error = status.as_ref().ok().and_then(|st| exec_start_error(*st, &log));
    let _ = std::fs::remove_file(&pfile);
    let _ = std::fs::remove_file(&log);
    let status = status?;
    match start_error {
        // crun and runc print the same message on their stderr, which is
        // ours: say it once, as docker does.
        Some(e) if prints_own_errors(&runtime.name) => Err(RuntimeError::Reported { code: e.exit_code() }),
        Some(e) => Err(e),
        None => Ok(exit_code_of(status)),
    }
}

/// Why the runtime could not start an exec'd process, from its `--log`,
/// when it failed for that reason (and not because the process ran and
/// failed): a `StartFailed` with Docker's 125/126/127.
pub(crate) fn exec_start_error(status: std::process::ExitStatus, log: &Path) -> Option<RuntimeError> {
    if status.success() {
        return None;
    }
    let msg = crate::oci::read_runtime_log_error(log).filter(|m| m.contains("exec") || m.contains("start"))?;
    Some(start_error_of("exec", &msg))
}

/// Runtimes that write a failed exec's reason to their own stderr (as
/// well as to `--log`): seen with crun 1.8 and runc 1.1; youki does not.
fn prints_own_errors(runtime_name: &str) -> bool {
    matches!(runtime_name, "crun" | "runc")
}

/// Docker's exit code for a finished process: the code, or 128+signal.
pub fn exit_code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
