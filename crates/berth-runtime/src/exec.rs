//! Running extra processes in a live container (`berth exec`, healthcheck
//! probes) through the OCI runtime's `exec` with a process description
//! derived from the container's own spec.
//!
//! It must never enter namespaces itself; the runtime does that.

use crate::error::{IoContext, Result, RuntimeError};
use crate::oci::{start_error_of, OciRuntime};
use crate::spec;
use crate::streams::{Control, ControlReceiver, StreamOut, Streams};
use berth_archive::perms;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fd::OwnedFd;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
pub fn load_spec_json(container_dir: &Path) -> Result<Value> {
    let p = container_dir.join("config.json");
    let text = std::fs::read_to_string(&p).ctx(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| RuntimeError::Corrupt {
        path: p,
        reason: e.to_string(),
    })
}

/// Writes the container's OCI spec back (atomically).
pub fn save_spec_json(container_dir: &Path, spec: &Value) -> Result<()> {
    let bytes = serde_json::to_vec(spec).map_err(|e| RuntimeError::InvalidConfig(e.to_string()))?;
    spec::write_atomic(&container_dir.join("config.json"), &bytes, perms::PRIVATE_FILE)
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
    crate::config::replace_or_append_env(&mut env, &opts.env);
    if opts.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    p["env"] = json!(env);
    if let Some(wd) = opts.working_dir.as_ref().filter(|w| !w.is_empty()) {
        p["cwd"] = json!(wd);
    }
    if let Some(u) = opts.user.as_ref().filter(|u| !u.is_empty()) {
        let rootfs = PathBuf::from(spec["root"]["path"].as_str().unwrap_or("/nonexistent"));
        let r = spec::resolve_process_user(&rootfs, u)?;
        p["user"] = json!({"uid": r.uid, "gid": r.gid});
        if !r.additional_gids.is_empty() {
            p["user"]["additionalGids"] = json!(r.additional_gids);
        }
    }
    if opts.privileged {
        // What this process may hand on, as `run --privileged` grants: a
        // host that withholds a capability would make capset fail.
        let all: Vec<String> = spec::grantable_caps().into_iter().collect();
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
    // Holds the process's environment: the container's secrets.
    spec::write_atomic(
        &p,
        &serde_json::to_vec(process).expect("json serializes"),
        perms::PRIVATE_FILE,
    )?;
    Ok(p)
}

/// Runs `opts.cmd` in the running container and returns its exit code.
///
/// Attached, the process's stdio is `streams`: file descriptors are handed
/// to the runtime as they are (a terminal stays the runtime's terminal);
/// readers and writers are copied through pipes by threads of this
/// process; with a tty and no terminal to hand on, a pty of ours stands in
/// for one ([`pty_bridge`]). Signals sent on the control channel go to the
/// runtime, which passes them on to the process.
///
/// Detached (`opts.detach`), its stdio is `/dev/null` and 0 is returned
/// once it started: nothing of the caller's (a pipe, a terminal) is kept
/// open by the process.
///
/// A command that cannot be found/executed gives `StartFailed` (127/126).
pub fn exec(
    container_dir: &Path,
    runtime: &OciRuntime,
    id: &str,
    opts: &ExecOptions,
    streams: Option<Streams>,
) -> Result<i32> {
    let spec = load_spec_json(container_dir)?;
    let process = exec_process(&spec, opts)?;
    let pfile = write_process_file(container_dir, &process)?;
    let log = pfile.with_extension("log");
    let mut cmd = runtime.exec_command(id, &pfile, opts.tty, opts.detach, None, None, Some(&log));
    let run = match streams.filter(|_| !opts.detach) {
        None => {
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            cmd.status().ctx(|| format!("running {} exec", runtime.name))
        }
        Some(s) if opts.tty && !is_terminal_stream(&s) => pty_bridge(cmd, s, runtime),
        Some(s) => run_with_streams(cmd, s, runtime),
    };
    let status = match run {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&pfile);
            let _ = std::fs::remove_file(&log);
            return Err(e);
        }
    };
    let start_error = exec_start_error(status, &log);
    let _ = std::fs::remove_file(&pfile);
    let _ = std::fs::remove_file(&log);
    match start_error {
        // crun and runc print the same message on their stderr, which is
        // the caller's: say it once, as docker does.
        Some(e) if prints_own_errors(&runtime.name) => Err(RuntimeError::Reported { code: e.exit_code() }),
        Some(e) => Err(e),
        None => Ok(exit_code_of(status)),
    }
}

/// Whether the streams hold a terminal fd the runtime can use as its own
/// (then it sets up the process's pty itself, as `docker exec -t` in a
/// terminal does; it looks for one among its stdin, stdout and stderr).
fn is_terminal_stream(s: &Streams) -> bool {
    let out = |o: &StreamOut| matches!(o, StreamOut::Fd(fd) if rustix::termios::isatty(fd));
    let input = matches!(&s.stdin, Some(crate::streams::StreamIn::Fd(fd)) if rustix::termios::isatty(fd));
    input || out(&s.stdout) || out(&s.stderr)
}

/// Where a child's stdio goes: the fd itself, or a pipe plus the thread
/// that copies it.
fn stdio_out(o: StreamOut) -> (Stdio, Option<Box<dyn Write + Send>>) {
    match o {
        StreamOut::Fd(fd) => (Stdio::from(fd), None),
        StreamOut::Writer(w) => (Stdio::piped(), Some(w)),
    }
}

fn copy_out(r: impl Read + Send + 'static, mut w: Box<dyn Write + Send>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = r;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if w.write_all(&buf[..n]).and_then(|_| w.flush()).is_err() {
                        // The caller stopped listening: drain, so the process is not blocked.
                        let _ = std::io::copy(&mut r, &mut std::io::sink());
                        break;
                    }
                }
            }
        }
    })
}

/// Forwards the control channel's signals to `pid` (the runtime, which
/// passes them on) until the process ends; window sizes go to `pty`.
fn forward_controls(
    controls: Option<ControlReceiver>,
    pid: u32,
    pty: Option<OwnedFd>,
) -> Option<std::thread::JoinHandle<()>> {
    let mut c = controls?;
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid as i32)?,
        rustix::process::PidfdFlags::empty(),
    )
    .ok()?;
    Some(std::thread::spawn(move || loop {
        let mut fds = [
            PollFd::from_borrowed_fd(c.fd(), PollFlags::IN),
            PollFd::new(&pidfd, PollFlags::IN),
        ];
        if poll(&mut fds, None).is_err() {
            return;
        }
        let (ctl, ended) = (fds[0].revents(), fds[1].revents());
        if !ended.is_empty() {
            return;
        }
        if ctl.is_empty() {
            continue;
        }
        let (msgs, closed) = c.drain();
        for m in msgs {
            match m {
                Control::Signal(sig) if sig > 0 && sig < 65 => {
                    // SAFETY: kill(2) on our own (unreaped) child, watched by its pidfd.
                    unsafe { libc::kill(pid as i32, sig) };
                }
                Control::Resize(s) => {
                    if let Some(p) = &pty {
                        let _ = rustix::termios::tcsetwinsize(
                            p,
                            rustix::termios::Winsize {
                                ws_row: s.rows,
                                ws_col: s.cols,
                                ws_xpixel: 0,
                                ws_ypixel: 0,
                            },
                        );
                    }
                }
                Control::Signal(_) => {}
            }
        }
        if closed {
            return;
        }
    }))
}

type Ran = Result<std::process::ExitStatus>;

/// Runs the runtime's exec with `s` as its stdio (pipes, no terminal; or
/// a terminal fd it uses as its own).
fn run_with_streams(mut cmd: Command, mut s: Streams, runtime: &OciRuntime) -> Ran {
    let stdin = s.stdin_fd()?;
    cmd.stdin(match stdin {
        Some(fd) => Stdio::from(fd),
        None => Stdio::null(),
    });
    let (out, out_w) = stdio_out(s.stdout);
    let (err, err_w) = stdio_out(s.stderr);
    cmd.stdout(out).stderr(err);
    let mut child = cmd.spawn().ctx(|| format!("running {} exec", runtime.name))?;
    let mut copies = Vec::new();
    if let (Some(w), Some(r)) = (out_w, child.stdout.take()) {
        copies.push(copy_out(r, w));
    }
    if let (Some(w), Some(r)) = (err_w, child.stderr.take()) {
        copies.push(copy_out(r, w));
    }
    let ctl = forward_controls(s.controls.take(), child.id(), None);
    let status = child.wait().ctx(|| format!("waiting for {} exec", runtime.name))?;
    for c in copies {
        let _ = c.join();
    }
    if let Some(t) = ctl {
        let _ = t.join();
    }
    Ok(status)
}

/// A tty exec for a caller without a terminal (a server's connection, a
/// test's buffers): the runtime gets the slave of a pty of ours as its
/// terminal (it makes the process's own pty and copies between the two),
/// and this process copies between the pty's master and the streams.
/// Window sizes set on our master reach the runtime as SIGWINCH (the slave
/// is its controlling terminal), which resizes the process's pty.
fn pty_bridge(mut cmd: Command, mut s: Streams, runtime: &OciRuntime) -> Ran {
    use std::os::unix::process::CommandExt;
    let master = rustix::pty::openpt(
        rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY | rustix::pty::OpenptFlags::CLOEXEC,
    )
    .ctx(|| "opening a pty for the exec".to_string())?;
    rustix::pty::grantpt(&master).ctx(|| "granting the exec's pty".to_string())?;
    rustix::pty::unlockpt(&master).ctx(|| "unlocking the exec's pty".to_string())?;
    let name = rustix::pty::ptsname(&master, Vec::new()).ctx(|| "naming the exec's pty".to_string())?;
    let slave = rustix::fs::open(
        std::path::Path::new(std::ffi::OsStr::from_bytes(name.to_bytes())),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| "opening the exec's pty".to_string())?;
    if let Some(size) = s.console_size {
        let _ = rustix::termios::tcsetwinsize(
            &master,
            rustix::termios::Winsize {
                ws_row: size.rows,
                ws_col: size.cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        );
    }
    // Raw: the bytes pass through unchanged, as through a socket.
    if let Ok(mut t) = rustix::termios::tcgetattr(&slave) {
        t.make_raw();
        let _ = rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &t);
    }
    let dup = |fd: &OwnedFd| fd.try_clone().ctx(|| "duplicating the exec's pty".to_string());
    cmd.stdin(Stdio::from(dup(&slave)?))
        .stdout(Stdio::from(dup(&slave)?))
        .stderr(Stdio::from(slave));
    // SAFETY: runs in the forked child before exec; setsid and ioctl are
    // async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let stdin = s.stdin_fd()?;
    let mut child = cmd.spawn().ctx(|| format!("running {} exec", runtime.name))?;
    drop(cmd);
    let reader = std::fs::File::from(dup(&master)?);
    let out = copy_out(reader, s.stdout.into_writer());
    if let Some(fd) = stdin {
        let mut w = std::fs::File::from(dup(&master)?);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::fs::File::from(fd), &mut w);
        });
    }
    let ctl = forward_controls(s.controls.take(), child.id(), Some(dup(&master)?));
    let status = child.wait().ctx(|| format!("waiting for {} exec", runtime.name))?;
    // The slave's last holder is gone: the master reads EIO, the copy ends.
    drop(master);
    let _ = out.join();
    if let Some(t) = ctl {
        let _ = t.join();
    }
    Ok(status)
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
