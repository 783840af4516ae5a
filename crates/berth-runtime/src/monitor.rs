//! The container monitor: the one small process (berth re-executed, or the
//! foreground `berth run` itself) that owns a container's life. It creates
//! and starts the container through the OCI runtime, copies its output into
//! the json-file log (and to the terminal when attached), waits for it as
//! child subreaper, records the exit (code, OOM), deletes the runtime
//! state, applies the restart policy and runs the healthcheck.
//!
//! The monitor only reads and writes files in the container directory and
//! talks to the OCI runtime; it must never open the engine's database,
//! mount or unmount anything, or allocate in proportion to the container's
//! output.

use crate::attach::{AttachServer, Request};
use crate::config::{ContainerConfig, RestartPolicy};
use crate::error::{IoContext, Result, RuntimeError};
use crate::health;
use crate::logs::{LogWriter, Stream, LOG_FILE};
use crate::oci::OciRuntime;
use crate::state::{self, update_state, REMOVE_MARKER, STOP_MARKER};
use crate::streams::{Control, ControlReceiver, Streams};
use crate::term::pipe;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fd::{AsRawFd, FromRawFd, OwnedFd};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The container configuration the engine writes into the container dir.
pub const CONFIG_FILE: &str = "berth.json";
/// The monitor's options, written by [`spawn_monitor`].
pub const MONITOR_FILE: &str = "monitor.json";
/// The container process's pid, written by the runtime.
pub const PID_FILE: &str = "ctr.pid";
/// The runtime's own log (JSON lines), where create/start errors are read from.
pub const RUNTIME_LOG: &str = "runtime.log";
/// Environment variable naming the fd a detached monitor reports readiness on.
pub const READY_FD_ENV: &str = "BERTH_MONITOR_READY_FD";
/// How long a detached monitor's container runs before the monitor lets
/// go of its start-up code's pages (see `release_text_pages`).
const TRIM_AFTER: Duration = Duration::from_millis(500);
/// Longest wait between restarts (Docker's cap).
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How the monitor runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct MonitorOptions {
    pub runtime: OciRuntime,
    /// Foreground: the caller's streams. Output is copied there too, stdin
    /// (with `open_stdin`) comes from there, window sizes and signals from
    /// their control channel. Never written to `monitor.json`: a detached
    /// monitor has none.
    #[serde(skip)]
    pub attached: Option<Streams>,
    /// The container is to be removed once it has finally exited and will
    /// not be restarted (`--rm`). The monitor's program does the removal
    /// (see [`OnDone`]); this crate only records the wish.
    #[serde(default)]
    pub remove_when_done: bool,
    /// Run once the container has finally exited and will not be
    /// restarted, before attached clients are let go (so a client that saw
    /// the exit then sees the container gone). Never serialized.
    #[serde(skip)]
    pub on_done: OnDone,
    /// Start the container only once a client has attached (`run -it`,
    /// `start -a`): the monitor reports "listening" on the readiness fd,
    /// waits for the first connection to `attach.sock`, then starts.
    #[serde(default)]
    pub wait_attach: bool,
    /// Reap strays (see `reap_strays`) even without a healthcheck: for a
    /// caller that runs `exec` from the monitor's own process. A healthcheck
    /// turns it on by itself (its probes are the monitor's descendants).
    #[serde(default)]
    pub reap_strays: bool,
    /// Create the container at once and hold it created until told to
    /// start it (see [`crate::warm`]): the monitor reports "held" once the
    /// runtime's create is done; the start's answer goes to whoever says
    /// `go`.
    #[serde(default)]
    pub hold: bool,
    /// Where readiness ("ok <pid>" or "err <code> <message>") is written once.
    #[serde(skip)]
    pub ready: Option<OwnedFd>,
}

/// The runtime the last monitor of this container ran it with, if any
/// (from `monitor.json`; only that field is read).
pub fn recorded_runtime(container_dir: &Path) -> Option<OciRuntime> {
    #[derive(Deserialize)]
    struct Recorded {
        runtime: OciRuntime,
    }
    let text = std::fs::read(container_dir.join(MONITOR_FILE)).ok()?;
    serde_json::from_slice::<Recorded>(&text).ok().map(|r| r.runtime)
}

impl MonitorOptions {
    /// Options for a foreground run with the caller's `streams`.
    pub fn attached(runtime: OciRuntime, streams: Streams) -> Self {
        MonitorOptions {
            runtime,
            attached: Some(streams),
            remove_when_done: false,
            on_done: OnDone::default(),
            wait_attach: false,
            reap_strays: false,
            hold: false,
            ready: None,
        }
    }

    /// Loads the options [`spawn_monitor`] left in the container dir and
    /// picks up the readiness fd from the environment. This is what the
    /// engine's `berth __monitor <dir>` entry point calls.
    pub fn from_dir(container_dir: &Path) -> Result<Self> {
        let p = container_dir.join(MONITOR_FILE);
        let text = std::fs::read_to_string(&p).ctx(|| format!("reading {}", p.display()))?;
        let mut o: MonitorOptions = serde_json::from_str(&text).map_err(|e| RuntimeError::Corrupt {
            path: p,
            reason: e.to_string(),
        })?;
        if let Some(fd) = std::env::var(READY_FD_ENV).ok().and_then(|v| v.parse::<i32>().ok()) {
            std::env::remove_var(READY_FD_ENV);
            // SAFETY: fcntl(F_GETFD) on an arbitrary number only queries; no memory is touched.
            let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
            if open && fd > 2 {
                // SAFETY: the fd was handed to us by spawn_monitor for our exclusive use
                // (checked open above); nothing else in this process owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                let _ = rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC);
                o.ready = Some(owned);
            }
        }
        Ok(o)
    }
}

/// Reports readiness to whoever spawned the monitor, once.
struct Notifier {
    fd: Option<OwnedFd>,
    /// A held container's start was asked for (see [`crate::warm`]): the
    /// answer goes to whoever asked.
    start_asked: bool,
}

impl Notifier {
    /// An intermediate line; the fd stays open for the final word.
    fn line(&mut self, msg: &str) {
        if let Some(fd) = self.fd.as_ref() {
            let _ = rustix::io::write(fd, msg.as_bytes());
        }
    }
    fn send(&mut self, msg: &str) {
        if let Some(fd) = self.fd.take() {
            let mut f = std::fs::File::from(fd);
            let _ = f.write_all(msg.as_bytes());
        }
    }
    /// The final word goes to `fd` from now on.
    fn answer_on(&mut self, fd: OwnedFd) {
        self.fd = Some(fd);
        self.start_asked = true;
    }
    fn ok(&mut self, pid: i32) {
        self.send(&format!("ok {pid}\n"));
    }
    fn fail(&mut self, e: &RuntimeError) {
        let msg = e.to_string().replace('\n', " ");
        self.send(&format!("err {} {msg}\n", e.exit_code()));
    }
}

/// Loads `berth.json` from the container dir.
pub fn load_config(container_dir: &Path) -> Result<ContainerConfig> {
    let p = container_dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&p).ctx(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| RuntimeError::Corrupt {
        path: p,
        reason: e.to_string(),
    })
}

/// Runs the container in `container_dir` to completion (including
/// restarts) and returns its last exit code. The directory must hold the
/// bundle (`config.json` with a mounted rootfs) and `berth.json`.
/// A start failure is returned as `StartFailed` (exit code 125/126/127) and
/// also recorded in the state.
pub fn monitor_main(container_dir: &Path, mut opts: MonitorOptions) -> Result<i32> {
    let mut notifier = Notifier {
        fd: opts.ready.take(),
        start_asked: false,
    };
    // Whether the container had never run, as the monitor's first state
    // update found it (a failed first start keeps it created).
    let mut never_ran = None;
    let mut on_done = opts.on_done.0.take();
    let fg = match opts.attached.take().map(Foreground::new).transpose() {
        Ok(fg) => fg,
        Err(e) => {
            notifier.fail(&e);
            return Err(e);
        }
    };
    match run(container_dir, &opts, &mut notifier, fg, &mut on_done, &mut never_ran) {
        Ok(code) => Ok(code),
        // Held and let go, or failed before its start was asked for (that
        // start fails the same way, and says so): the container is as it was.
        Err(_) if opts.hold && !notifier.start_asked => Err(RuntimeError::WarmAbandoned),
        Err(e) => {
            // A container that never ran stays created when its start fails,
            // as Docker's does (with the exit code and the error). Read here
            // only if the monitor failed before its first state update.
            let never_ran =
                never_ran.unwrap_or_else(|| state::read_state(container_dir).is_ok_and(|s| s.status == "created"));
            notifier.fail(&e);
            let msg = e.to_string();
            let code = e.exit_code();
            let _ = update_state(container_dir, |s| {
                s.status = if never_ran { "created" } else { "exited" }.into();
                s.exit_code = code;
                s.error = msg;
                s.pid = 0;
                if never_ran {
                    s.started_at = None;
                } else {
                    s.finished_at = Some(state::now_rfc3339());
                }
            });
            if let Some(h) = on_done.take() {
                h();
            }
            Err(e)
        }
    }
}

/// What the monitor's program does once the container is done (remove a
/// `--rm` container through the engine library).
pub type DoneHook = Box<dyn FnOnce() + Send>;

/// A [`DoneHook`], if any.
#[derive(Default)]
pub struct OnDone(pub Option<DoneHook>);

impl std::fmt::Debug for OnDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "OnDone(Some)"
        } else {
            "OnDone(None)"
        })
    }
}

/// Whether Docker's policy restarts a container that exited with `code`
/// after `restarts` restarts.
pub fn should_restart(policy: &RestartPolicy, code: i32, restarts: u32) -> bool {
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure { max } => code != 0 && (*max == 0 || restarts < *max),
    }
}

fn user_stopped(dir: &Path) -> bool {
    dir.join(STOP_MARKER).exists() || dir.join(REMOVE_MARKER).exists()
}

/// A foreground run's side of the caller's streams.
struct Foreground {
    stdin: Option<OwnedFd>,
    out: Box<dyn Write + Send>,
    err: Box<dyn Write + Send>,
    controls: Option<ControlReceiver>,
}

impl Foreground {
    fn new(mut s: Streams) -> Result<Foreground> {
        Ok(Foreground {
            stdin: s.stdin_fd()?,
            controls: s.controls.take(),
            out: s.stdout.into_writer(),
            err: s.stderr.into_writer(),
        })
    }

    /// Container output to the caller, at once (a failing caller's output
    /// is not the container's problem: the log still has everything).
    fn write(&mut self, stream: Stream, data: &[u8]) {
        let w = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        let _ = w.write_all(data).and_then(|_| w.flush());
    }
}

fn run(
    dir: &Path,
    opts: &MonitorOptions,
    notifier: &mut Notifier,
    mut fg: Option<Foreground>,
    on_done: &mut Option<DoneHook>,
    never_ran: &mut Option<bool>,
) -> Result<i32> {
    let me = rustix::process::getpid();
    rustix::process::set_child_subreaper(Some(me)).ctx(|| "becoming child subreaper".to_string())?;
    let cfg = load_config(dir)?;
    let _ = std::fs::remove_file(dir.join(STOP_MARKER));
    let me_start = state::process_start_time(me.as_raw_nonzero().get()).unwrap_or(0);
    update_state(dir, |s| {
        *never_ran = Some(s.status == "created");
        s.monitor_pid = me.as_raw_nonzero().get();
        s.monitor_start = me_start;
        s.error.clear();
    })?;
    let ports = PublishedPorts::bind(dir, &cfg)?;
    let mut clients = AttachServer::bind(dir)?;
    if opts.wait_attach {
        notifier.line("listening\n");
        clients.wait_first(Duration::from_secs(30))?;
    }
    let sched = cfg.healthcheck.as_ref().and_then(|h| health::schedule(h, &cfg.shell));
    let mut log = if cfg.log_driver == "none" {
        LogWriter::discard()
    } else {
        LogWriter::open_limited(&dir.join(LOG_FILE), cfg.log_limits)?
    };
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    let mut last;
    loop {
        let t0 = Instant::now();
        let fwd = ports.as_ref().map(|p| &p.fwd);
        match run_once(
            dir,
            &cfg,
            opts,
            opts.hold && first,
            sched.as_ref(),
            notifier,
            fg.as_mut(),
            &mut log,
            fwd,
            &mut clients,
        ) {
            Ok(code) => {
                last = code;
                clients.send_exit(code);
            }
            Err(e) if first => return Err(e),
            Err(e) => {
                last = e.exit_code();
                clients.send_exit(last);
                let msg = e.to_string();
                update_state(dir, |s| {
                    s.status = "exited".into();
                    s.exit_code = last;
                    s.error = msg;
                    s.finished_at = Some(state::now_rfc3339());
                })?;
            }
        }
        first = false;
        let restarts = state::read_state(dir).map(|s| s.restart_count).unwrap_or(0);
        // The policy as recorded now: `update --restart` changes it on a live container.
        let policy = load_config(dir)
            .map(|c| c.restart_policy)
            .unwrap_or_else(|_| cfg.restart_policy.clone());
        if user_stopped(dir) || !should_restart(&policy, last, restarts) {
            break;
        }
        // Attached clients saw this exit; the restarted container is not theirs.
        clients.disconnect_all();
        if t0.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(100);
        }
        update_state(dir, |s| {
            s.status = "restarting".into();
            s.restart_count += 1;
        })?;
        let until = Instant::now() + backoff;
        while Instant::now() < until && !user_stopped(dir) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if user_stopped(dir) {
            update_state(dir, |s| s.status = "exited".into())?;
            break;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    if let Some(h) = on_done.take() {
        h();
    }
    clients.disconnect_all();
    Ok(last)
}

/// The host ports a container publishes, held from before its first start
/// until the monitor ends (restarts keep them); `ports.json` in the
/// container dir says which, while they are held.
struct PublishedPorts {
    fwd: berth_net::Forwarder,
    dir: PathBuf,
}

impl PublishedPorts {
    fn bind(dir: &Path, cfg: &ContainerConfig) -> Result<Option<Self>> {
        let mode = cfg.network_mode.as_str();
        // `netns:` is a bridge network's namespace (berth-engine made it):
        // its ports are forwarded like a private network's; `ns:` is another
        // container's, whose ports are that container's.
        if cfg.ports.is_empty() || mode == "host" || mode.starts_with("ns:") {
            return Ok(None);
        }
        let start_failed = |e: berth_net::NetError| RuntimeError::StartFailed {
            code: crate::error::EXIT_ENGINE_FAILURE,
            message: e.to_string(),
        };
        let fwd = berth_net::Forwarder::bind(&cfg.ports).map_err(start_failed)?;
        berth_net::write_bindings(dir, fwd.bindings()).map_err(start_failed)?;
        Ok(Some(PublishedPorts {
            fwd,
            dir: dir.to_path_buf(),
        }))
    }
}

impl Drop for PublishedPorts {
    fn drop(&mut self) {
        berth_net::remove_bindings(&self.dir);
    }
}

/// The container's output channels.
enum Io {
    Pipes {
        out: Option<OwnedFd>,
        err: Option<OwnedFd>,
        stdin: Option<OwnedFd>,
    },
    Pty {
        master: Option<OwnedFd>,
    },
}

/// A short, private directory for the console socket (unix socket paths are limited to 108 bytes).
fn console_socket_dir() -> Result<PathBuf> {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "berth-cs-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    berth_archive::perms::create_dir(&d, berth_archive::perms::PRIVATE_DIR)
        .ctx(|| format!("creating {}", d.display()))?;
    Ok(d)
}

/// Receives the pty master the runtime sends over the console socket.
fn receive_master(listener: &std::os::unix::net::UnixListener) -> Result<OwnedFd> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::mem::MaybeUninit;
    listener.set_nonblocking(true).ctx(|| "console socket".to_string())?;
    let (stream, _) = listener
        .accept()
        .ctx(|| "the OCI runtime did not connect to the console socket".to_string())?;
    let mut buf = [0u8; 4096];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    recvmsg(&stream, &mut iov, &mut anc, RecvFlags::CMSG_CLOEXEC).ctx(|| "receiving the pty master".to_string())?;
    for msg in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(RuntimeError::Unsupported(
        "the OCI runtime sent no pty master over the console socket".into(),
    ))
}

fn read_pid(path: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(path).ctx(|| format!("reading pid file {}", path.display()))?;
    text.trim().parse().map_err(|_| RuntimeError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("not a pid: {text:?}"),
    })
}

/// Drops this process's page-table entries for its program and library
/// code (read-only, executable, file-backed mappings no page of which was
/// ever written). A detached monitor calls it once the container runs: the
/// code of its start-up (option parsing, the runtime call) is then no
/// longer counted in its resident set, while the pages themselves stay in
/// the page cache, shared; what the wait loop touches faults back in (a
/// minor fault, no I/O). Writable and relocated (RELRO) mappings are never
/// touched, so no data is lost.
fn release_text_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut candidate: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((lo, hi)) = first.split_once('-') {
            // A mapping's header: "start-end perms offset dev inode path".
            let range = usize::from_str_radix(lo, 16)
                .ok()
                .zip(usize::from_str_radix(hi, 16).ok());
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            candidate = match range {
                Some((lo, hi)) if perms == "r-xp" && path.starts_with('/') && hi > lo => Some((lo, hi)),
                _ => None,
            };
        } else if first == "Anonymous:" {
            if let Some((lo, hi)) = candidate.take() {
                if fields.next() == Some("0") {
                    // SAFETY: [lo, hi) is a whole private, read-only, executable
                    // file mapping of this process with no anonymous (written,
                    // copy-on-write) pages: MADV_DONTNEED only drops its page-table
                    // entries, and every later access re-reads the same bytes from
                    // the file's page cache. No Rust object lives in it.
                    unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED) };
                }
            }
        }
    }
}

/// Cgroup file of the container, for the controller `ctrl` (v1) or the unified tree (v2).
pub fn cgroup_file(cfg: &ContainerConfig, ctrl: &str, file: &str) -> PathBuf {
    let rel = crate::spec::cgroups_path(cfg);
    if crate::spec::cgroup_v2_unified() {
        PathBuf::from(format!("/sys/fs/cgroup{rel}/{file}"))
    } else {
        PathBuf::from(format!("/sys/fs/cgroup/{ctrl}{rel}/{file}"))
    }
}

/// Whether the kernel's OOM killer hit the container's cgroup.
fn oom_killed(cfg: &ContainerConfig) -> bool {
    let file = if crate::spec::cgroup_v2_unified() {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    let text = std::fs::read_to_string(cgroup_file(cfg, "memory", file)).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

#[allow(clippy::too_many_arguments)]
fn run_once(
    dir: &Path,
    cfg: &ContainerConfig,
    opts: &MonitorOptions,
    hold: bool,
    sched: Option<&health::Schedule>,
    notifier: &mut Notifier,
    fg: Option<&mut Foreground>,
    log: &mut LogWriter,
    ports: Option<&berth_net::Forwarder>,
    clients: &mut AttachServer,
) -> Result<i32> {
    let rt = &opts.runtime;
    let id = cfg.id.as_str();
    let pid_file = dir.join(PID_FILE);
    let rlog = dir.join(RUNTIME_LOG);
    let _ = std::fs::remove_file(&pid_file);
    // Clears runtime state: leftovers before a start (a restart, a crashed
    // monitor), or a failed start's. Most starts have none, and asking the
    // runtime costs a whole process.
    let cleanup = |rt: &OciRuntime| {
        if rt.root.join(id).exists() {
            let _ = rt.delete(id, true);
        }
    };
    cleanup(rt);
    // Once the runtime has the process (its pid file is written), it is
    // recorded running, before crun's `start` lets its program go: a
    // container that asks the engine about itself finds itself running.
    let mut started: Option<(i32, rustix::process::Pid, OwnedFd)> = None;
    let mut created = || -> Result<()> {
        if hold {
            hold_created(dir, notifier, clients)?;
        }
        // The runtime wrote it with its own umask.
        let _ = berth_archive::perms::set_mode(&pid_file, berth_archive::perms::PRIVATE_FILE);
        let pid = read_pid(&pid_file)?;
        let waited = rustix::process::Pid::from_raw(pid).ok_or_else(|| RuntimeError::Corrupt {
            path: pid_file.clone(),
            reason: "pid 0".into(),
        })?;
        // The process is our child (we are its subreaper), so its pid is not
        // reused before we reap it.
        let pidfd = rustix::process::pidfd_open(waited, rustix::process::PidfdFlags::empty())
            .ctx(|| format!("watching process {}", waited.as_raw_nonzero()))?;
        if let Some(f) = ports {
            if let Err(e) = f.attach(pid) {
                let _ = rt.delete(id, true);
                let _ = rustix::process::waitpid(Some(waited), rustix::process::WaitOptions::empty());
                return Err(RuntimeError::StartFailed {
                    code: crate::error::EXIT_ENGINE_FAILURE,
                    message: format!("publishing ports: {e}"),
                });
            }
        }
        let pid_start = state::process_start_time(pid).unwrap_or(0);
        update_state(dir, |s| {
            s.status = "running".into();
            s.pid = pid;
            s.pid_start = pid_start;
            s.started_at = Some(state::now_rfc3339());
            s.finished_at = None;
            s.exit_code = 0;
            s.oom_killed = false;
            s.error.clear();
            s.health = sched.map(|_| state::Health {
                status: "starting".into(),
                ..Default::default()
            });
        })?;
        started = Some((pid, waited, pidfd));
        Ok(())
    };
    // runc: `run --detach` (create + start would cost one Go start-up
    // more); crun: create then start (see `OciRuntime::run_detached`).
    let mut io = if cfg.tty {
        let sock_dir = console_socket_dir()?;
        let sock = sock_dir.join("s");
        let listener = std::os::unix::net::UnixListener::bind(&sock).ctx(|| format!("binding {}", sock.display()))?;
        let res = rt
            .run_detached(
                id,
                dir,
                &pid_file,
                Some(&sock),
                (Stdio::null(), Stdio::null(), Stdio::null()),
                &rlog,
                &mut created,
            )
            .and_then(|_| receive_master(&listener));
        drop(listener);
        let _ = std::fs::remove_dir_all(&sock_dir);
        let master = res.inspect_err(|_| cleanup(rt))?;
        Io::Pty { master: Some(master) }
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        // With `-i` the container's stdin is a pipe the monitor holds open
        // for as long as the container runs: attached clients write to it.
        let (stdin_child, stdin_ours) = if cfg.open_stdin {
            let (r, w) = pipe()?;
            (Stdio::from(r), Some(w))
        } else {
            (Stdio::null(), None)
        };
        rt.run_detached(
            id,
            dir,
            &pid_file,
            None,
            (stdin_child, Stdio::from(out_w), Stdio::from(err_w)),
            &rlog,
            &mut created,
        )
        .inspect_err(|_| cleanup(rt))?;
        Io::Pipes {
            out: Some(out_r),
            err: Some(err_r),
            stdin: stdin_ours,
        }
    };
    let (pid, waited, pidfd) = started.take().ok_or_else(|| RuntimeError::Corrupt {
        path: pid_file.clone(),
        reason: "the runtime started the container without a pid".into(),
    })?;
    notifier.ok(pid);

    // Healthcheck thread.
    let (health_stop, health_thread) = match sched.cloned() {
        Some(s) => {
            let (tx, rx) = std::sync::mpsc::channel();
            let (d, r, c) = (dir.to_path_buf(), rt.clone(), cfg.clone());
            (
                Some(tx),
                Some(std::thread::spawn(move || health::health_loop(&d, &r, &c, s, rx))),
            )
        }
        None => (None, None),
    };

    // A detached monitor then only waits: it lets go of its start-up code
    // once the container has run a while (not at once: a container that
    // is done in a moment is waited for by its client).
    let trim_at = fg.is_none().then(|| Instant::now() + TRIM_AFTER);
    let status = pump(
        &mut io,
        &pidfd,
        waited,
        cfg.open_stdin,
        fg,
        log,
        clients,
        opts.reap_strays || sched.is_some(),
        trim_at,
    );
    if let Some(f) = ports {
        f.detach();
    }
    if let Some(tx) = health_stop {
        let _ = tx.send(());
    }
    if let Some(t) = health_thread {
        let _ = t.join();
    }
    log.flush()?;
    let code = status?;
    let oom = oom_killed(cfg);
    // The process is reaped: its runtime state goes (without a runtime start-up, for runc and crun).
    if rt.root.join(id).exists() {
        let _ = rt.delete_exited(id);
    }
    let _ = std::fs::remove_file(&pid_file);
    update_state(dir, |s| {
        s.status = "exited".into();
        s.exit_code = code;
        s.oom_killed = oom;
        s.pid = 0;
        s.finished_at = Some(state::now_rfc3339());
    })?;
    Ok(code)
}

/// Holds the created container until told to start it (see
/// [`crate::warm`]): `Ok` to start it, with attach clients that connected
/// before the word accepted first (they see all its output), and the
/// start's answer going to the word's connection;
/// [`RuntimeError::WarmAbandoned`] to let it go.
fn hold_created(dir: &Path, notifier: &mut Notifier, clients: &mut AttachServer) -> Result<()> {
    let holder = crate::warm::Holder::bind(dir)?;
    notifier.line("held\n");
    match holder.wait(crate::warm::HOLD_LIMIT) {
        crate::warm::Told::Go(conn) => {
            clients.accept();
            notifier.answer_on(conn);
            Ok(())
        }
        crate::warm::Told::Abort => Err(RuntimeError::WarmAbandoned),
    }
}

fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    // None = end of stream (EOF, or EIO on a pty whose other side closed).
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(0) => return None,
            Ok(n) => return Some(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => return Some(0),
            Err(_) => return None,
        }
    }
}

/// Copies output until the container exits and its output is drained;
/// returns the exit code (128+signal when killed). Output goes to the log,
/// to every attached client, and (foreground) to the caller's streams;
/// stdin comes from the caller (foreground `-i`) and from clients, window
/// sizes and signals from the caller's control channel.
#[allow(clippy::too_many_arguments)]
fn pump(
    io: &mut Io,
    pidfd: &OwnedFd,
    pid: rustix::process::Pid,
    open_stdin: bool,
    mut fg: Option<&mut Foreground>,
    log: &mut LogWriter,
    clients: &mut AttachServer,
    strays: bool,
    mut trim_at: Option<Instant>,
) -> Result<i32> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut exit: Option<i32> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut stdin_open = open_stdin && fg.as_ref().is_some_and(|f| f.stdin.is_some());
    // Close the container's stdin once `pending` is written (our stdin
    // ended, or a client said its stdin did).
    let mut close_stdin = false;
    let mut pending: Vec<u8> = Vec::new();
    if let Io::Pty { master: Some(m) } = io {
        let _ = rustix::io::ioctl_fionbio(&*m, true);
    }
    if let Io::Pipes { stdin: Some(w), .. } = io {
        let _ = rustix::io::ioctl_fionbio(&*w, true);
    }
    let mut next_reap = Instant::now();
    loop {
        let outputs_open = match io {
            Io::Pipes { out, err, .. } => out.is_some() || err.is_some(),
            Io::Pty { master } => master.is_some(),
        };
        if let Some(code) = exit {
            if !outputs_open || drain_deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(code);
            }
        }
        if close_stdin && pending.is_empty() {
            match &mut *io {
                Io::Pipes { stdin, .. } => *stdin = None, // EOF for the container
                // A terminal has no end: type Ctrl-D (EOF at the start of a
                // line in canonical mode), once, as a person would.
                Io::Pty { .. } => pending.push(0x04),
            }
            close_stdin = false;
        }
        // Output waits while a client is far behind (it is read again once
        // the client catches up; the container blocks meanwhile, as with Docker).
        let read_output = !clients.backlogged();
        // Build the poll set: slot kinds in parallel.
        #[derive(Clone, Copy)]
        enum Slot {
            Pid,
            Out,
            Err,
            Master,
            Stdin,
            StdinOut,
            Sig,
            Listen,
            Client(usize),
        }
        let mut fds: Vec<PollFd> = Vec::with_capacity(8);
        let mut kinds: Vec<Slot> = Vec::with_capacity(8);
        if exit.is_none() {
            fds.push(PollFd::new(pidfd, PollFlags::IN));
            kinds.push(Slot::Pid);
        }
        match io {
            Io::Pipes { out, err, stdin } => {
                if let (Some(o), true) = (out, read_output) {
                    fds.push(PollFd::new(&*o, PollFlags::IN));
                    kinds.push(Slot::Out);
                }
                if let (Some(e), true) = (err, read_output) {
                    fds.push(PollFd::new(&*e, PollFlags::IN));
                    kinds.push(Slot::Err);
                }
                if let (Some(w), false) = (stdin.as_ref(), pending.is_empty()) {
                    fds.push(PollFd::new(w, PollFlags::OUT));
                    kinds.push(Slot::StdinOut);
                }
            }
            Io::Pty { master } => {
                if let Some(m) = master {
                    let mut f = PollFlags::empty();
                    if read_output {
                        f |= PollFlags::IN;
                    }
                    if !pending.is_empty() {
                        f |= PollFlags::OUT;
                    }
                    fds.push(PollFd::new(&*m, f));
                    kinds.push(Slot::Master);
                }
            }
        }
        if let (true, true, None, Some(fd)) = (
            stdin_open,
            pending.len() < 64 * 1024,
            exit,
            fg.as_ref().and_then(|f| f.stdin.as_ref()),
        ) {
            fds.push(PollFd::new(fd, PollFlags::IN));
            kinds.push(Slot::Stdin);
        }
        if let Some(c) = fg.as_ref().and_then(|f| f.controls.as_ref()) {
            fds.push(PollFd::from_borrowed_fd(c.fd(), PollFlags::IN));
            kinds.push(Slot::Sig);
        }
        let listener = clients.listener();
        fds.push(PollFd::new(&listener, PollFlags::IN));
        kinds.push(Slot::Listen);
        let client_set = clients.poll_set();
        for (i, (fd, f)) in client_set.iter().enumerate() {
            fds.push(PollFd::new(fd, *f));
            kinds.push(Slot::Client(i));
        }
        // After the exit, drain the output briefly. While the container
        // runs, wake once a second to reap strays (see reap_strays) when
        // there can be any; otherwise sleep until something happens (an
        // idle monitor touches no pages).
        // The start-up code's release (see run_once) wakes it once too.
        let wake_in = match exit {
            Some(_) => Some(Duration::from_millis(100)),
            None => [
                strays.then_some(Duration::from_secs(1)),
                trim_at.map(|t| t.saturating_duration_since(Instant::now())),
            ]
            .into_iter()
            .flatten()
            .min(),
        };
        let timeout = wake_in.and_then(|d| rustix::event::Timespec::try_from(d).ok());
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(RuntimeError::io("waiting for the container", e.into())),
        }
        let ready: Vec<(Slot, PollFlags)> = kinds.iter().copied().zip(fds.iter().map(|f| f.revents())).collect();
        drop(fds);
        drop(client_set);
        for (kind, rev) in ready {
            if rev.is_empty() {
                continue;
            }
            match kind {
                Slot::Pid => {
                    let st = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                        .ctx(|| format!("waiting for container process {pid:?}"))?;
                    let code = match st {
                        Some((_, ws)) => ws
                            .exit_status()
                            .or_else(|| ws.terminating_signal().map(|s| 128 + s))
                            .unwrap_or(crate::state::EXIT_UNKNOWN),
                        None => crate::state::EXIT_UNKNOWN,
                    };
                    exit = Some(code);
                    drain_deadline = Some(Instant::now() + Duration::from_secs(2));
                }
                Slot::Out | Slot::Err => {
                    let (stream, slot) = match (kind, &mut *io) {
                        (Slot::Out, Io::Pipes { out, .. }) => (Stream::Stdout, out),
                        (_, Io::Pipes { err, .. }) => (Stream::Stderr, err),
                        _ => unreachable!("pipe slots only exist for pipe io"),
                    };
                    let fd = slot.as_ref().expect("polled fd is open");
                    match read_some(fd, &mut buf) {
                        Some(n) => output(log, clients, fg.as_deref_mut(), stream, &buf[..n])?,
                        None => *slot = None,
                    }
                }
                Slot::Master => {
                    let Io::Pty { master } = &mut *io else {
                        continue;
                    };
                    if rev.contains(PollFlags::OUT) && !pending.is_empty() {
                        if let Some(m) = master.as_ref() {
                            if let Ok(n) = rustix::io::write(m, &pending) {
                                pending.drain(..n);
                            }
                        }
                    }
                    if rev.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
                        let m = master.as_ref().expect("polled fd is open");
                        match read_some(m, &mut buf) {
                            Some(n) => output(log, clients, fg.as_deref_mut(), Stream::Stdout, &buf[..n])?,
                            None => *master = None,
                        }
                    }
                }
                Slot::StdinOut => {
                    if let Io::Pipes { stdin: Some(w), .. } = &*io {
                        match rustix::io::write(w, &pending) {
                            Ok(n) => {
                                pending.drain(..n);
                            }
                            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                            Err(_) => pending.clear(),
                        }
                    }
                }
                Slot::Stdin => {
                    let Some(fd) = fg.as_ref().and_then(|f| f.stdin.as_ref()) else {
                        continue;
                    };
                    match rustix::io::read(fd, &mut buf) {
                        Ok(0) | Err(_) => {
                            stdin_open = false;
                            close_stdin = true;
                        }
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                }
                Slot::Sig => {
                    let Some(f) = fg.as_deref_mut() else { continue };
                    let Some(c) = f.controls.as_mut() else { continue };
                    let (msgs, closed) = c.drain();
                    if closed {
                        f.controls = None;
                    }
                    for m in msgs {
                        match m {
                            Control::Resize(s) => {
                                if let Io::Pty { master: Some(m) } = &*io {
                                    set_winsize(m, s.rows, s.cols);
                                }
                            }
                            Control::Signal(sig) => {
                                if exit.is_none() && sig > 0 && sig < 65 {
                                    signal(pid, sig);
                                }
                            }
                        }
                    }
                }
                Slot::Listen => clients.accept(),
                Slot::Client(i) => {
                    for req in clients.service(i, rev) {
                        match req {
                            Request::Stdin(d) => {
                                let has_stdin = match &*io {
                                    Io::Pipes { stdin, .. } => stdin.is_some(),
                                    Io::Pty { master } => master.is_some(),
                                };
                                if has_stdin && exit.is_none() {
                                    pending.extend_from_slice(&d);
                                }
                            }
                            Request::Resize { rows, cols } => {
                                if let Io::Pty { master: Some(m) } = &*io {
                                    set_winsize(m, rows, cols);
                                }
                            }
                            Request::CloseStdin => close_stdin = true,
                            Request::Signal(sig) => {
                                if exit.is_none() && sig > 0 && sig < 65 {
                                    signal(pid, sig);
                                }
                            }
                        }
                    }
                }
            }
        }
        clients.reap();
        if exit.is_none() && trim_at.is_some_and(|t| Instant::now() >= t) {
            release_text_pages();
            crate::oci::drop_sealed_copies();
            trim_at = None;
        }
        // At most once a second, not after every chunk of output.
        if strays && exit.is_none() && Instant::now() >= next_reap {
            reap_strays();
            next_reap = Instant::now() + Duration::from_secs(1);
        }
    }
}

/// Reaps zombie children of ours that live in a container's pid
/// namespace without being its init. They come from a runtime's `exec`
/// that exited without waiting for its own child (crun does when the
/// command cannot be started): orphaned, they are handed to us, the
/// subreaper, when we are the exec's ancestor (healthchecks, an in-process
/// caller). Unreaped, such a zombie keeps the container's init from ever
/// finishing its exit (the kernel waits for every process of the pid
/// namespace to be reaped), and the monitor would wait forever.
///
/// `waitid(WNOWAIT)` shows one waitable child without reaping it; only a
/// stray is then reaped, so children that other code waits for (runtime
/// commands, the container itself) are left alone. A stray behind one of
/// those is found on a later call.
fn reap_strays() {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid(2).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid(2) writes into the local siginfo_t only.
        let rc = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
        // SAFETY: waitid filled info (or left it zeroed: si_pid 0).
        let pid = unsafe { info.si_pid() };
        if rc != 0 || pid <= 0 || !is_stray(pid) {
            return;
        }
        let _ = rustix::process::waitpid(
            rustix::process::Pid::from_raw(pid),
            rustix::process::WaitOptions::NOHANG,
        );
    }
}

/// A process in a nested pid namespace that is not that namespace's init.
fn is_stray(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let nspid: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| v.split_whitespace().collect())
        .unwrap_or_default();
    nspid.len() > 1 && nspid.last() != Some(&"1")
}

/// Sets the container's pty to `rows` × `cols`.
fn set_winsize(master: &OwnedFd, rows: u16, cols: u16) {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = rustix::termios::tcsetwinsize(master, ws);
}

/// Sends `sig` to the container's process.
fn signal(pid: rustix::process::Pid, sig: i32) {
    // SAFETY: kill(2) with a pid we own (our unreaped child) and a signal number.
    unsafe { libc::kill(pid.as_raw_nonzero().get(), sig) };
}

/// One piece of the container's output: into the log, to every attached
/// client, and to the caller's streams when the run is in the foreground.
fn output(
    log: &mut LogWriter,
    clients: &mut AttachServer,
    fg: Option<&mut Foreground>,
    stream: Stream,
    data: &[u8],
) -> Result<()> {
    log.write(stream, data)?;
    if !clients.is_empty() {
        let tag = match stream {
            Stream::Stdout => crate::attach::TAG_STDOUT,
            Stream::Stderr => crate::attach::TAG_STDERR,
        };
        clients.broadcast(tag, data);
    }
    if let Some(f) = fg {
        f.write(stream, data);
    }
    Ok(())
}

/// The container's root file system mount point inside its directory.
pub const ROOTFS_DIR: &str = "rootfs";

/// The whole life of a detached monitor process (`berth-monitor __monitor
/// DIR`, or `berth __monitor DIR`): load the options [`spawn_monitor`]
/// left, supervise the container until it is done, unmount its rootfs.
/// When the options ask for removal, `on_done` makes the hook run then
/// (made once the options are read, before the container starts).
/// Returns how it ended.
pub fn detached_monitor_main(container_dir: &Path, on_done: impl FnOnce() -> DoneHook) -> Ended {
    let res = MonitorOptions::from_dir(container_dir).and_then(|mut opts| {
        if opts.remove_when_done {
            opts.on_done = OnDone(Some(on_done()));
        }
        monitor_main(container_dir, opts)
    });
    let _ = crate::mount::unmount(&container_dir.join(ROOTFS_DIR));
    let _ = crate::mount::unmount(&container_dir.join(crate::mount::SHM_DIR));
    match res {
        Ok(code) => Ended { code, abandoned: false },
        Err(RuntimeError::WarmAbandoned) => Ended {
            code: 0,
            abandoned: true,
        },
        Err(e) => {
            eprintln!("Error: {e}");
            Ended {
                code: e.exit_code(),
                abandoned: false,
            }
        }
    }
}

/// How a detached monitor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// The process's exit code: the container's last one, or Docker's
    /// code for a start that failed.
    pub code: i32,
    /// It held the container created and let it go: nothing ran, nothing
    /// is to be recorded.
    pub abandoned: bool,
}

/// Starts a detached monitor: writes `monitor.json`, runs
/// `exe args... <container_dir>` in a new session with stdio on /dev/null,
/// and waits until it reports the container running (returns the monitor's
/// pid) or failed to start (returns its error, with Docker's exit code).
pub fn spawn_monitor(container_dir: &Path, exe: &Path, args: &[String], opts: &MonitorOptions) -> Result<u32> {
    spawn_monitor_with(container_dir, exe, args, opts, &mut || Ok(()))
}

/// [`spawn_monitor`] for a monitor with `wait_attach`: `on_listening`
/// runs once the monitor listens on its attach socket and before the
/// container starts (it connects the client that will see everything).
pub fn spawn_monitor_with(
    container_dir: &Path,
    exe: &Path,
    args: &[String],
    opts: &MonitorOptions,
    on_listening: &mut dyn FnMut() -> Result<()>,
) -> Result<u32> {
    write_monitor_options(container_dir, opts)?;
    let (child, ready) = launch_monitor(exe, args, container_dir.as_os_str(), Stdio::null(), None)?;
    await_monitor(container_dir, child, ready, on_listening)
}

/// Writes the options a detached monitor loads ([`MonitorOptions::from_dir`]).
pub(crate) fn write_monitor_options(container_dir: &Path, opts: &MonitorOptions) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(opts).map_err(|e| RuntimeError::InvalidConfig(e.to_string()))?;
    crate::spec::write_atomic(
        &container_dir.join(MONITOR_FILE),
        &bytes,
        berth_archive::perms::PRIVATE_FILE,
    )
}

/// Runs `exe args… dir` as a monitor: in a new session, stdout and stderr
/// on /dev/null, `stdin` as given, and the write end of a readiness pipe
/// as its fd 3 (named by [`READY_FD_ENV`]). Returns the child and the
/// read end.
pub(crate) fn launch_monitor(
    exe: &Path,
    args: &[String],
    dir: &std::ffi::OsStr,
    stdin: Stdio,
    env: Option<(&str, &std::ffi::OsStr)>,
) -> Result<(std::process::Child, std::fs::File)> {
    use std::os::unix::process::CommandExt;
    let (r, w) = pipe()?;
    let wfd = w.as_raw_fd();
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args)
        .arg(dir)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env(READY_FD_ENV, "3");
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (setsid, dup2, fcntl) on plain integers.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if wfd == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(wfd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().ctx(|| format!("starting the monitor {}", exe.display()))?;
    drop(cmd);
    drop(w);
    Ok((child, std::fs::File::from(r)))
}

/// Reads a launched monitor's readiness for the container in
/// `container_dir`: its pid once the container runs, or the error it
/// reported (with Docker's exit code). `on_listening` runs each time it
/// says it listens for the attach client it waits for.
pub(crate) fn await_monitor(
    container_dir: &Path,
    mut child: std::process::Child,
    ready: std::fs::File,
    on_listening: &mut dyn FnMut() -> Result<()>,
) -> Result<u32> {
    use std::io::BufRead;
    let pid = child.id();
    let mut lines = std::io::BufReader::new(ready);
    let mut line = String::new();
    loop {
        line.clear();
        let _ = lines.read_line(&mut line);
        if line.trim_end() != "listening" {
            break;
        }
        if let Err(e) = on_listening() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    }
    let line = line.trim_end().to_string();
    // "held": created, waiting for its start (see crate::warm).
    if line.starts_with("ok") || line == "held" {
        // Reap the monitor whenever it ends, so long-lived callers keep no zombies.
        std::thread::spawn(move || child.wait());
        return Ok(pid);
    }
    if let Some(rest) = line.strip_prefix("err ") {
        let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
        let _ = child.wait();
        return Err(RuntimeError::StartFailed {
            code: code.parse().unwrap_or(crate::error::EXIT_ENGINE_FAILURE),
            message: message.to_string(),
        });
    }
    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
    Err(RuntimeError::StartFailed {
        code: crate::error::EXIT_ENGINE_FAILURE,
        message: format!(
            "the container monitor exited before the container started ({status}); see {}",
            container_dir.join(RUNTIME_LOG).display()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_decisions() {
        assert!(!should_restart(&RestartPolicy::No, 1, 0));
        assert!(should_restart(&RestartPolicy::Always, 0, 100));
        assert!(should_restart(&RestartPolicy::UnlessStopped, 0, 0));
        assert!(!should_restart(&RestartPolicy::OnFailure { max: 2 }, 0, 0));
        assert!(should_restart(&RestartPolicy::OnFailure { max: 2 }, 1, 1));
        assert!(!should_restart(&RestartPolicy::OnFailure { max: 2 }, 1, 2));
        assert!(should_restart(&RestartPolicy::OnFailure { max: 0 }, 1, 99));
    }
}
