//! Driving an OCI runtime (runc, crun, youki) through its command line.
//!
//! Every container operation that touches namespaces or cgroups goes through
//! the runtime binary; this module builds the command lines, runs them, and
//! turns their failures into [`RuntimeError`]s with the runtime's own error
//! text. It must never implement container setup itself.

use crate::error::{Result, RuntimeError, EXIT_ENGINE_FAILURE, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The state the runtime reports for a container (`runc state`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OciState {
    #[serde(rename = "ociVersion", default)]
    pub oci_version: String,
    pub id: String,
    /// "creating" | "created" | "running" | "paused" | "stopped"
    pub status: String,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub bundle: String,
}

/// An OCI runtime binary and its state directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OciRuntime {
    /// "runc", "crun", "youki", or the file name of an explicit path.
    pub name: String,
    pub path: PathBuf,
    /// Why this runtime was chosen.
    pub reason: String,
    /// The runtime's `--root` (berth uses `<berth-root>/runtime`).
    pub root: PathBuf,
}

const SEARCH_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .filter(|d| !d.is_empty())
        .chain(SEARCH_DIRS.iter().copied())
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Whether crun can run on this host's cgroup layout, and if not, why.
pub fn crun_cgroup_probe() -> std::result::Result<(), String> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return Ok(());
    }
    let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    match std::fs::read_to_string(unified) {
        Ok(c) if !c.trim().is_empty() => Err(format!(
            "crun refuses hybrid cgroups whose v2 mount holds controllers ({}); using runc",
            c.trim()
        )),
        _ => Ok(()),
    }
}

impl OciRuntime {
    /// Picks the runtime for this host. An explicit `preferred` name or path
    /// wins; otherwise crun if this host's cgroups suit it, else runc, else
    /// crun, else youki. `root` is the runtime state directory.
    pub fn select(preferred: Option<&str>, root: &Path) -> Result<Self> {
        let make = |name: &str, path: PathBuf, reason: String| OciRuntime {
            name: name.to_string(),
            path,
            reason,
            root: root.to_path_buf(),
        };
        if let Some(p) = preferred.filter(|p| !p.is_empty()) {
            let path = if p.contains('/') {
                PathBuf::from(p)
            } else {
                find_binary(p).ok_or_else(|| RuntimeError::NoRuntime(format!("runtime {p:?} is not in PATH")))?
            };
            if !path.is_file() {
                return Err(RuntimeError::NoRuntime(format!("{} does not exist", path.display())));
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Ok(make(&name, path, "explicitly requested".into()));
        }
        let crun = find_binary("crun");
        let runc = find_binary("runc");
        match (crun, runc) {
            (Some(c), runc) => match crun_cgroup_probe() {
                Ok(()) => Ok(make(
                    "crun",
                    c,
                    "crun found and this host's cgroup layout suits it".into(),
                )),
                Err(why) => match runc {
                    Some(r) => Ok(make("runc", r, why)),
                    None => Ok(make(
                        "crun",
                        c,
                        format!("{why}; but runc is not installed, trying crun anyway"),
                    )),
                },
            },
            (None, Some(r)) => Ok(make("runc", r, "crun not installed; runc found".into())),
            (None, None) => match find_binary("youki") {
                Some(y) => Ok(make("youki", y, "neither crun nor runc installed; youki found".into())),
                None => Err(RuntimeError::NoRuntime(
                    "neither crun, runc nor youki is installed".into(),
                )),
            },
        }
    }

    /// A command for this runtime with the global flags set.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.arg("--root").arg(&self.root);
        c
    }

    fn ensure_root(&self) -> Result<()> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| RuntimeError::io(format!("creating runtime state dir {}", self.root.display()), e))
    }

    /// Runs a command to completion, capturing stderr, and maps failure to an error.
    fn run(&self, what: &str, mut cmd: Command) -> Result<Vec<u8>> {
        cmd.stdin(Stdio::null());
        let out = cmd
            .output()
            .map_err(|e| RuntimeError::io(format!("running {} {what}", self.path.display()), e))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(self.failure(what, &out.status, &String::from_utf8_lossy(&out.stderr)))
        }
    }

    fn failure(&self, what: &str, status: &std::process::ExitStatus, stderr: &str) -> RuntimeError {
        RuntimeError::RuntimeFailed {
            runtime: self.name.clone(),
            command: what.to_string(),
            status: status.to_string(),
            message: clean_message(stderr),
        }
    }

    /// `run --detach`: `create` and `start` in one invocation of the
    /// runtime (one process start-up less). Returns once the container's
    /// process runs; it is then a child of the nearest subreaper.
    #[allow(clippy::too_many_arguments)]
    pub fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: (Stdio, Stdio, Stdio),
        log_file: &Path,
    ) -> Result<()> {
        let action = ["run", "--detach"];
        self.ensure_root()?;
        let _ = std::fs::remove_file(log_file);
        let mut cmd = self.command();
        cmd.arg("--log").arg(log_file).arg("--log-format").arg("json");
        cmd.args(action)
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file);
        if let Some(s) = console_socket {
            cmd.arg("--console-socket").arg(s);
        }
        cmd.arg(id);
        cmd.stdin(stdio.0).stdout(stdio.1).stderr(stdio.2);
        let status = cmd
            .status()
            .map_err(|e| RuntimeError::io(format!("running {} {}", self.path.display(), action[0]), e))?;
        drop(cmd);
        if status.success() {
            return Ok(());
        }
        let msg = read_runtime_log_error(log_file)
            .unwrap_or_else(|| format!("{} {} exited with {status}", self.name, action[0]));
        Err(start_error(&msg))
    }

    /// `state`.
    pub fn state(&self, id: &str) -> Result<OciState> {
        let mut cmd = self.command();
        cmd.arg("state").arg(id);
        let out = self.run("state", cmd)?;
        serde_json::from_slice(&out).map_err(|e| RuntimeError::Corrupt {
            path: self.root.join(id),
            reason: format!("{} state output: {e}", self.name),
        })
    }

    /// `kill [--all] id SIGNAL`.
    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("kill");
        if all {
            cmd.arg("--all");
        }
        cmd.arg(id).arg(signal);
        self.run("kill", cmd).map(|_| ())
    }

    /// `delete [--force] id`. A container the runtime does not know is not an error.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("delete");
        if force {
            cmd.arg("--force");
        }
        cmd.arg(id);
        match self.run("delete", cmd) {
            Ok(_) => Ok(()),
            Err(RuntimeError::RuntimeFailed { message, .. })
                if message.contains("does not exist")
                    || message.contains("not found")
                    || message.contains("No such") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Removes what the runtime keeps for a container whose init process
    /// has exited and been reaped (the monitor's case after every run):
    /// for runc that is its state directory and the container's empty
    /// cgroup directories, which take a few rmdirs, where `runc delete`
    /// costs a whole Go start-up (≈ 8 ms of a 60 ms `run --rm`). Only for
    /// runc, whose state file lists the cgroup paths, and only when the
    /// bundle has no hooks (a poststop hook must run through the runtime);
    /// anything unexpected (a cgroup still busy, say, with `--pid host`)
    /// falls back to `delete --force`.
    pub fn delete_exited(&self, id: &str) -> Result<()> {
        if self.name != "runc" || self.remove_runc_state(id).is_err() {
            return self.delete(id, true);
        }
        Ok(())
    }

    fn remove_runc_state(&self, id: &str) -> std::result::Result<(), ()> {
        #[derive(Deserialize)]
        struct RuncState {
            #[serde(default)]
            cgroup_paths: std::collections::BTreeMap<String, PathBuf>,
            #[serde(default)]
            config: serde_json::Value,
        }
        let dir = self.root.join(id);
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(());
        }
        let text = match std::fs::read(dir.join("state.json")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => return Ok(()),
            Err(_) => return Err(()),
        };
        let st: RuncState = serde_json::from_slice(&text).map_err(|_| ())?;
        let has_hooks = |h: Option<&serde_json::Value>| {
            h.and_then(|h| h.as_object())
                .is_some_and(|o| o.values().any(|v| v.as_array().is_some_and(|a| !a.is_empty())))
        };
        if has_hooks(st.config.get("Hooks")) || has_hooks(st.config.get("hooks")) {
            return Err(());
        }
        for path in st.cgroup_paths.values() {
            // Only the container's own leaf, under the cgroup file system.
            if !path.starts_with("/sys/fs/cgroup") || !path.ends_with(id) {
                return Err(());
            }
            match std::fs::remove_dir(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => return Err(()),
            }
        }
        std::fs::remove_dir_all(&dir).map_err(|_| ())
    }

    /// `pause`.
    pub fn pause(&self, id: &str) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("pause").arg(id);
        self.run("pause", cmd).map(|_| ())
    }

    /// `resume`.
    pub fn resume(&self, id: &str) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("resume").arg(id);
        self.run("resume", cmd).map(|_| ())
    }

    /// `ps --format json`: the host pids of the container's processes.
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        let mut cmd = self.command();
        cmd.arg("ps").arg("--format").arg("json").arg(id);
        let out = self.run("ps", cmd)?;
        let v: Option<Vec<i32>> = serde_json::from_slice(&out).map_err(|e| RuntimeError::Corrupt {
            path: self.root.join(id),
            reason: format!("{} ps output: {e}", self.name),
        })?;
        Ok(v.unwrap_or_default())
    }

    /// An `exec` command, ready for the caller to attach stdio and run.
    /// `process_json` is an OCI process description; the runtime's errors
    /// also go to `log_file` (JSON lines) when given.
    #[allow(clippy::too_many_arguments)]
    pub fn exec_command(
        &self,
        id: &str,
        process_json: &Path,
        tty: bool,
        detach: bool,
        console_socket: Option<&Path>,
        pid_file: Option<&Path>,
        log_file: Option<&Path>,
    ) -> Command {
        let mut cmd = self.command();
        if let Some(l) = log_file {
            cmd.arg("--log").arg(l).arg("--log-format").arg("json");
        }
        cmd.arg("exec").arg("--process").arg(process_json);
        if tty {
            cmd.arg("--tty");
        }
        if detach {
            cmd.arg("--detach");
        }
        if let Some(s) = console_socket {
            cmd.arg("--console-socket").arg(s);
        }
        if let Some(p) = pid_file {
            cmd.arg("--pid-file").arg(p);
        }
        cmd.arg(id);
        cmd
    }
}

/// The message of one JSON log line: runc and crun write `msg`, youki
/// `message` (with an anyhow backtrace after a blank line, dropped here).
fn log_message(v: &serde_json::Value) -> Option<String> {
    let m = v.get("msg").or_else(|| v.get("message"))?.as_str()?;
    let m = m.split("\n\nStack backtrace:").next().unwrap_or(m);
    Some(m.trim().to_string())
}

/// Picks the useful line out of a runtime's stderr: the last one, by its
/// message when it is a JSON log line.
fn clean_message(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| log_message(&v))
                .unwrap_or_else(|| l.to_string())
        })
        .unwrap_or_else(|| "no error message".into())
}

/// Reads the last error message from a runtime's JSON log file.
pub fn read_runtime_log_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v.get("level")
                .and_then(|l| l.as_str())
                .is_some_and(|l| l.eq_ignore_ascii_case("error") || l.eq_ignore_ascii_case("fatal"))
        })
        .filter_map(|v| log_message(&v))
        .next_back()
        .or_else(|| {
            let t = text.trim();
            (!t.is_empty()).then(|| clean_message(t))
        })
}

/// Classifies a runtime's create/start error the way Docker does:
/// command not found → 127, not executable → 126, anything else → 125.
pub fn start_error(message: &str) -> RuntimeError {
    let m = message.to_ascii_lowercase();
    let is_exec = m.contains("exec:") || m.contains("exec ") || m.contains("executable") || m.contains("execve");
    // runc: `exec: "x": executable file not found in $PATH`; youki:
    // `executable 'x' not found in $PATH`.
    let code = if m.contains("executable file not found")
        || (is_exec && (m.contains("no such file or directory") || m.contains("not found in $path")))
    {
        EXIT_NOT_FOUND
    } else if is_exec
        && (m.contains("permission denied")
            || m.contains("is a directory")
            || m.contains("does not have correct permissions"))
    {
        EXIT_NOT_EXECUTABLE
    } else {
        EXIT_ENGINE_FAILURE
    };
    let hint = if m.contains("hybrid mode not supported") {
        " (crun refuses hosts whose cgroup2 mount holds controllers while the others are on v1; \
         berth picks runc or youki there by default: drop --runtime crun)"
    } else {
        ""
    };
    RuntimeError::StartFailed {
        code,
        message: format!("OCI runtime create failed: {message}{hint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_start_errors_like_docker() {
        let e = start_error("runc create failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH");
        assert_eq!(e.exit_code(), 127);
        let e = start_error("unable to start container process: exec: \"/etc\": permission denied");
        assert_eq!(e.exit_code(), 126);
        let e = start_error(
            "unable to start container process: exec: \"/nope/x\": stat /nope/x: no such file or directory",
        );
        assert_eq!(e.exit_code(), 127);
        let e = start_error("cgroup: cannot write memory.limit_in_bytes: device or resource busy");
        assert_eq!(e.exit_code(), 125);
        // youki's wording.
        let e = start_error(
            "failed to create container: exec process failed with error error in executing process : executable 'nope' not found in $PATH",
        );
        assert_eq!(e.exit_code(), 127);
    }

    #[test]
    fn select_prefers_runc_on_hybrid_hosts_with_v2_controllers() {
        let root = std::path::Path::new("/tmp/berth-select-test");
        let Ok(rt) = OciRuntime::select(None, root) else {
            println!("SKIP: no OCI runtime installed");
            return;
        };
        assert_eq!(rt.root, root);
        assert!(!rt.reason.is_empty());
        if crun_cgroup_probe().is_err() && find_binary("runc").is_some() {
            assert_eq!(rt.name, "runc");
            assert!(rt.reason.contains("crun refuses hybrid"), "{}", rt.reason);
        }
        let explicit = OciRuntime::select(Some(rt.path.to_str().unwrap()), root).unwrap();
        assert_eq!(explicit.reason, "explicitly requested");
        assert!(OciRuntime::select(Some("/nonexistent/runtime"), root).is_err());
    }

    #[test]
    fn youki_log_lines_lose_their_backtrace() {
        let line = r#"{"timestamp":"2026-11-29T14:12:07Z","level":"ERROR","message":"error in executing command: failed to create container\n\nStack backtrace:\n   0: <unknown>","target":"youki"}"#;
        assert_eq!(
            clean_message(line),
            "error in executing command: failed to create container"
        );
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("log");
        std::fs::write(&log, format!("{line}\n")).unwrap();
        assert_eq!(
            read_runtime_log_error(&log).as_deref(),
            Some("error in executing command: failed to create container")
        );
    }

    #[test]
    fn clean_message_takes_json_msg() {
        assert_eq!(clean_message("{\"level\":\"error\",\"msg\":\"boom\"}\n"), "boom");
        assert_eq!(clean_message("plain\n"), "plain");
    }
}
