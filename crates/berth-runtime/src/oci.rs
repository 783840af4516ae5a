//! Driving an OCI runtime (runc, crun, youki) through its command line.
//!
//! Every container operation that touches namespaces or cgroups goes through
//! the runtime binary; this module builds the command lines, runs them, and
//! turns their failures into [`RuntimeError`]s with the runtime's own error
//! text. It must never implement container setup itself.

use crate::error::{Result, RuntimeError, EXIT_ENGINE_FAILURE, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND};
use serde::{Deserialize, Serialize};
use std::io::Seek;
use std::os::fd::OwnedFd;
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
    /// Run the runtime in a private mount namespace in which the hybrid
    /// host's cgroup2 mount (`/sys/fs/cgroup/unified`) is covered, so crun
    /// sees a plain cgroup v1 host instead of refusing the hybrid layout.
    #[serde(default)]
    pub hide_cgroup2: bool,
}

/// This process's sealed copies of runtime programs (see [`sealed_copy`]).
static COPIES: std::sync::Mutex<Vec<(PathBuf, Option<OwnedFd>)>> = std::sync::Mutex::new(Vec::new());

/// Makes this process's sealed copy of the runtime program at `path` now,
/// ahead of its first run (a spare monitor, while it waits).
pub fn prepare_sealed_copy(path: &Path) {
    let _ = sealed_copy(path);
}

/// Lets go of this process's sealed copies (a monitor whose container
/// runs: the memory is the program's size; a later run makes one again).
pub fn drop_sealed_copies() {
    if let Ok(mut copies) = COPIES.lock() {
        copies.clear();
    }
}

/// This process's sealed in-memory copy of the runtime program at `path`
/// (made once, kept until [`drop_sealed_copies`]), as a descriptor to
/// execute.
///
/// crun and runc protect the host from a container that would overwrite
/// their program through `/proc/<pid>/exe` (CVE-2019-5736): each run
/// first makes itself a private copy and executes itself again, unless it
/// already runs from a memfd sealed against any change (runc's
/// `memfd-bind` does that system-wide). That costs a whole second start of
/// the program, about 1.7 ms of every `crun create` here; the copy made
/// once costs 0.1 ms and protects the same way. None for a program that is
/// not ELF (a wrapper script cannot run from a descriptor closed at exec)
/// or when the copy cannot be made: the program runs from its path.
fn sealed_copy(path: &Path) -> Option<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    let mut copies = COPIES.lock().ok()?;
    if let Some((_, fd)) = copies.iter().find(|(p, _)| p == path) {
        return fd.as_ref().map(|f| f.as_raw_fd());
    }
    let copy = make_sealed_copy(path);
    let raw = copy.as_ref().map(|f| f.as_raw_fd());
    copies.push((path.to_path_buf(), copy));
    raw
}

fn make_sealed_copy(path: &Path) -> Option<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    use std::io::Read;
    let mut src = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 4];
    src.read_exact(&mut magic).ok()?;
    if &magic != b"\x7fELF" {
        return None;
    }
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // Executable, said so where the kernel knows the flag (6.3+).
    let fd = rustix::fs::memfd_create("berth-runtime", flags | MemfdFlags::EXEC)
        .or_else(|_| rustix::fs::memfd_create("berth-runtime", flags))
        .ok()?;
    let mut dst = std::fs::File::from(fd);
    src.rewind().ok()?;
    std::io::copy(&mut src, &mut dst).ok()?;
    // Exactly the seals the runtimes look for.
    rustix::fs::fcntl_add_seals(
        &dst,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )
    .ok()?;
    Some(OwnedFd::from(dst))
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

/// Whether crun can run on this host's cgroup layout as it is, and if
/// not, why: crun refuses a hybrid host whose cgroup2 mount holds
/// controllers (`cgroups in hybrid mode not supported`).
pub fn crun_cgroup_probe() -> std::result::Result<(), String> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return Ok(());
    }
    let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    match std::fs::read_to_string(unified) {
        Ok(c) if !c.trim().is_empty() => Err(format!(
            "this host's cgroups are hybrid and the cgroup2 mount holds controllers ({}), which crun refuses",
            c.trim()
        )),
        _ => Ok(()),
    }
}

/// Whether this process has CAP_SYS_ADMIN in its effective set (bit 21 of
/// `CapEff` in /proc/self/status).
fn has_cap_sys_admin() -> bool {
    crate::spec::own_cap_mask("CapEff:").is_some_and(|caps| caps & (1 << 21) != 0)
}

/// Between fork and exec of the runtime: a private mount namespace whose
/// `/sys/fs/cgroup/unified` is covered by an empty tmpfs. The runtime then
/// sees (and uses) the host's v1 controllers only; the host's mounts are
/// untouched, and the namespace ends with the runtime process. The tmpfs is
/// writable because crun still makes the container's directory in the
/// (now controller-less) unified hierarchy.
fn hide_cgroup2_mount() -> std::io::Result<()> {
    // SAFETY: unshare and mount are async-signal-safe system calls; every
    // argument is a static NUL-terminated string or null, so nothing is
    // allocated between fork and exec.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Nothing mounted here may propagate back to the host.
        let none = c"none";
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        if libc::mount(
            none.as_ptr(),
            c"/sys/fs/cgroup/unified".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"size=64k".as_ptr().cast(),
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

impl OciRuntime {
    /// Picks the runtime for this host. An explicit `preferred` name or path
    /// wins; otherwise crun, else runc, else youki. On a hybrid host whose
    /// cgroup2 mount holds controllers, crun runs with that mount hidden
    /// (see [`hide_cgroup2_mount`]) when berth runs as root; rootless, that
    /// needs a mount namespace the user cannot make, so runc is preferred
    /// there. `root` is the runtime state directory.
    pub fn select(preferred: Option<&str>, root: &Path) -> Result<Self> {
        let probe = crun_cgroup_probe();
        // Hiding the cgroup2 mount takes a mount namespace: root with
        // CAP_SYS_ADMIN (not, say, root in a container without it).
        let can_hide = probe.is_err() && rustix::process::geteuid().is_root() && has_cap_sys_admin();
        let make = |name: &str, path: PathBuf, reason: String| OciRuntime {
            hide_cgroup2: name == "crun" && can_hide,
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
            (Some(c), runc) => match probe {
                Ok(()) => Ok(make(
                    "crun",
                    c,
                    "crun found and this host's cgroup layout suits it".into(),
                )),
                Err(why) if can_hide => Ok(make(
                    "crun",
                    c,
                    format!(
                        "crun found; {why}, so berth runs it in a private mount namespace \
                         where that mount is hidden and the v1 controllers are used"
                    ),
                )),
                Err(why) => match runc {
                    Some(r) => Ok(make(
                        "runc",
                        r,
                        format!("{why}; hiding that mount needs a mount namespace, which this process cannot make (rootless, or no CAP_SYS_ADMIN); runc found"),
                    )),
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

    /// The program a process that will run this runtime may copy ahead
    /// ([`prepare_sealed_copy`]): crun's, half a megabyte. runc's is
    /// seventeen times that, too much to keep in an idle process: it is
    /// copied when it runs.
    pub fn copied_ahead(&self) -> Option<&Path> {
        (self.name == "crun").then_some(self.path.as_path())
    }

    /// A command for this runtime with the global flags set. crun and runc
    /// run from a sealed in-memory copy of themselves when one can be made
    /// (see [`sealed_copy`]).
    pub fn command(&self) -> Command {
        let sealed = match self.name.as_str() {
            "crun" | "runc" => sealed_copy(&self.path),
            _ => None,
        };
        let mut c = match sealed {
            Some(fd) => {
                use std::os::unix::process::CommandExt;
                // Opened by execve itself, before it closes this
                // close-on-exec descriptor (an ELF program needs no more).
                let mut c = Command::new(format!("/proc/self/fd/{fd}"));
                c.arg0(&self.path);
                c
            }
            None => Command::new(&self.path),
        };
        c.arg("--root").arg(&self.root);
        if self.hide_cgroup2 {
            use std::os::unix::process::CommandExt;
            // SAFETY: hide_cgroup2_mount only makes system calls with
            // static arguments; it neither allocates nor takes locks.
            unsafe { c.pre_exec(hide_cgroup2_mount) };
        }
        c
    }

    /// [`Self::command`] with the runtime's JSON log going to `log`.
    fn logged_command(&self, log: &Path) -> Command {
        // The runtime appends to it with its own umask: made private first.
        // (Failing here is left to the runtime to report.)
        let _ = berth_archive::perms::open_append(log, berth_archive::perms::PRIVATE_FILE);
        let mut c = self.command();
        c.arg("--log").arg(log).arg("--log-format").arg("json");
        c
    }

    fn ensure_root(&self) -> Result<()> {
        berth_archive::perms::create_dir_all(&self.root, berth_archive::perms::PRIVATE_DIR)
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

    /// Creates and starts a container, returning once its process runs; it
    /// is then a child of the nearest subreaper. runc and youki do both in
    /// one `run --detach` (one Go start-up less). crun gets `create` then
    /// `start`: after `crun run --detach` a process that exits at once may
    /// already have been reaped by crun, and its exit code lost, whereas a
    /// created container waits for `start`, by which time it is ours (a
    /// start berth does itself when it can: [`Self::release_created`]).
    /// `created` runs once the pid file is written: between crun's `create`
    /// and `start`, after `run --detach` for the others; its error ends the
    /// start (the caller deletes what the runtime made).
    #[allow(clippy::too_many_arguments)]
    pub fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: (Stdio, Stdio, Stdio),
        log_file: &Path,
        created: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        let two_step = self.name == "crun";
        let action: &[&str] = if two_step { &["create"] } else { &["run", "--detach"] };
        self.ensure_root()?;
        // crun: the seccomp program it compiled for this profile before.
        let seccomp = match (two_step, self.root.parent()) {
            (true, Some(berth_root)) => {
                crate::seccomp::precompiled::apply(bundle, &berth_root.join("cache").join("seccomp"), &self.path)
                    .unwrap_or(crate::seccomp::precompiled::Applied::Nothing)
            }
            _ => crate::seccomp::precompiled::Applied::Nothing,
        };
        let _ = std::fs::remove_file(log_file);
        let mut cmd = self.logged_command(log_file);
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
        self.status_or_start_error(action[0], cmd, log_file, bundle)?;
        if let crate::seccomp::precompiled::Applied::Missing(cached) = seccomp {
            crate::seccomp::precompiled::remember(&self.root.join(id), &cached);
        }
        // The pid file is written: with crun the process waits in the
        // runtime's exec fifo until `start`, so whoever looks at the state
        // from now on finds it running before its program does anything.
        created()?;
        if two_step {
            if self.release_created(id).is_ok() {
                return Ok(());
            }
            let mut cmd = self.logged_command(log_file);
            cmd.arg("start").arg(id);
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            // On failure the caller deletes what create left (as after a
            // failed create).
            self.status_or_start_error("start", cmd, log_file, bundle)?;
        }
        Ok(())
    }

    /// crun's `start` without a crun process (≈ 5 ms of a run here: its
    /// start-up, the mount namespace berth makes it, its reading of the
    /// whole spec): a created crun container's process waits until a byte
    /// is written to `exec.fifo` in its state directory, and `crun start`
    /// does only that (open for writing, unlink, write) when the spec has
    /// no poststart hooks, which it would run. Opened without blocking, so
    /// a process that is gone fails the open instead of hanging it. Any
    /// error before the write leaves the container created, for `crun
    /// start` to do it (and report what is wrong in its words).
    fn release_created(&self, id: &str) -> std::result::Result<(), ()> {
        use rustix::fs::{Mode, OFlags};
        let dir = self.state_dir(id)?;
        if crun_spec_has_hooks(&dir)? {
            return Err(());
        }
        let fifo = dir.join("exec.fifo");
        let fd = rustix::fs::open(
            &fifo,
            OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|_| ())?;
        if !rustix::fs::fstat(&fd)
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo)
        {
            return Err(());
        }
        // Gone before the write, as crun's own start does: the container
        // counts as started from here (`crun state` says running).
        std::fs::remove_file(&fifo).map_err(|_| ())?;
        match rustix::io::write(&fd, &[0]) {
            Ok(1) => Ok(()),
            _ => Err(()),
        }
    }

    /// Runs a create/start step; a failure becomes the runtime's own error
    /// from its JSON log, classified and worded like Docker's (see
    /// [`start_error_for`]; the command is the bundle's).
    fn status_or_start_error(&self, what: &str, mut cmd: Command, log_file: &Path, bundle: &Path) -> Result<()> {
        let status = cmd
            .status()
            .map_err(|e| RuntimeError::io(format!("running {} {what}", self.path.display()), e))?;
        drop(cmd);
        if status.success() {
            return Ok(());
        }
        let msg =
            read_runtime_log_error(log_file).unwrap_or_else(|| format!("{} {what} exited with {status}", self.name));
        Err(start_error_for("create", &msg, bundle_command(bundle).as_deref()))
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
    /// its state directory and the container's empty cgroup directories,
    /// which take a few rmdirs, where `delete` costs a whole runtime
    /// start-up (≈ 8 ms of a 60 ms `run --rm` for runc's Go, ≈ 5 ms for
    /// crun). Only for runc and crun, whose state files name the cgroups,
    /// and only when the bundle has no hooks (a poststop hook must run
    /// through the runtime); anything unexpected (a cgroup still busy, say,
    /// with `--pid host`) falls back to `delete --force`.
    pub fn delete_exited(&self, id: &str) -> Result<()> {
        let removed = match self.name.as_str() {
            "runc" => self.remove_runc_state(id),
            "crun" => self.remove_crun_state(id),
            _ => Err(()),
        };
        if removed.is_err() {
            return self.delete(id, true);
        }
        Ok(())
    }

    /// The runtime's state directory for `id`, when `id` is a plain name.
    fn state_dir(&self, id: &str) -> std::result::Result<PathBuf, ()> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(());
        }
        Ok(self.root.join(id))
    }

    fn remove_runc_state(&self, id: &str) -> std::result::Result<(), ()> {
        #[derive(Deserialize)]
        struct RuncState {
            #[serde(default)]
            cgroup_paths: std::collections::BTreeMap<String, PathBuf>,
            #[serde(default)]
            config: serde_json::Value,
        }
        let dir = self.state_dir(id)?;
        let Some(text) = read_state_file(&dir, "state.json")? else {
            return Ok(());
        };
        let st: RuncState = serde_json::from_slice(&text).map_err(|_| ())?;
        if has_hooks(st.config.get("Hooks")) || has_hooks(st.config.get("hooks")) {
            return Err(());
        }
        for path in st.cgroup_paths.values() {
            // Only the container's own leaf, under the cgroup file system.
            if !path.starts_with("/sys/fs/cgroup") || !path.ends_with(id) {
                return Err(());
            }
            remove_cgroup_dir(path)?;
        }
        std::fs::remove_dir_all(&dir).map_err(|_| ())
    }

    /// crun keeps `status` (with the cgroup path relative to each
    /// hierarchy) and a copy of the bundle's `config.json`.
    fn remove_crun_state(&self, id: &str) -> std::result::Result<(), ()> {
        #[derive(Deserialize)]
        struct CrunStatus {
            #[serde(rename = "cgroup-path", default)]
            cgroup_path: String,
            #[serde(rename = "systemd-cgroup", default)]
            systemd_cgroup: bool,
        }
        let dir = self.state_dir(id)?;
        let Some(text) = read_state_file(&dir, "status")? else {
            return Ok(());
        };
        let st: CrunStatus = serde_json::from_slice(&text).map_err(|_| ())?;
        if st.systemd_cgroup || crun_spec_has_hooks(&dir)? {
            return Err(());
        }
        if !st.cgroup_path.is_empty() {
            let rel = Path::new(st.cgroup_path.trim_start_matches('/'));
            // Only the container's own leaf, never a shared parent.
            if !rel.ends_with(id) || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                return Err(());
            }
            for hierarchy in cgroup_hierarchies(self.hide_cgroup2) {
                remove_cgroup_dir(&hierarchy.join(rel))?;
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

    /// `update --resources FILE`: new limits for a live container (an OCI
    /// `linux.resources` document).
    pub fn update(&self, id: &str, resources: &Path) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("update").arg("--resources").arg(resources).arg(id);
        self.run("update", cmd).map(|_| ())
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
        let mut cmd = match log_file {
            Some(l) => self.logged_command(l),
            None => self.command(),
        };
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

/// A runtime's state file for a container; `None` when the runtime keeps
/// no state for it at all (nothing to remove).
fn read_state_file(dir: &Path, name: &str) -> std::result::Result<Option<Vec<u8>>, ()> {
    match std::fs::read(dir.join(name)) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => Ok(None),
        Err(_) => Err(()),
    }
}

/// Whether crun's copy of a container's spec (in its state directory
/// `dir`) has any hook. Only `hooks` is read: the rest (the seccomp
/// profile and program among it) is skipped unparsed.
fn crun_spec_has_hooks(dir: &Path) -> std::result::Result<bool, ()> {
    #[derive(Deserialize)]
    struct Hooks {
        #[serde(default)]
        hooks: Option<serde_json::Value>,
    }
    let config: Hooks =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).map_err(|_| ())?).map_err(|_| ())?;
    Ok(has_hooks(config.hooks.as_ref()))
}

/// Whether an OCI `hooks` object holds any hook.
fn has_hooks(h: Option<&serde_json::Value>) -> bool {
    h.and_then(|h| h.as_object())
        .is_some_and(|o| o.values().any(|v| v.as_array().is_some_and(|a| !a.is_empty())))
}

/// Removes one (empty) cgroup directory; one that is not there is fine.
fn remove_cgroup_dir(path: &Path) -> std::result::Result<(), ()> {
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => Err(()),
    }
}

/// The roots of the cgroup hierarchies a runtime places containers in:
/// `/sys/fs/cgroup` on a cgroup2 host; otherwise every v1 hierarchy under
/// it (symlinks such as `cpu -> cpu,cpuacct` skipped), and the hybrid
/// host's cgroup2 mount unless it was hidden from the runtime.
fn cgroup_hierarchies(cgroup2_hidden: bool) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_path_buf()];
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !(cgroup2_hidden && e.file_name() == "unified"))
        .map(|e| e.path())
        .collect()
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
    start_error_of("create", message)
}

/// [`start_error`] for the runtime command `verb` ("create", "exec"),
/// worded like Docker's "OCI runtime exec failed: …".
pub fn start_error_of(verb: &str, message: &str) -> RuntimeError {
    start_error_for(verb, message, None)
}

/// The first argument of the process in a bundle's `config.json`.
fn bundle_command(bundle: &Path) -> Option<String> {
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    let spec: serde_json::Value = serde_json::from_slice(&text).ok()?;
    spec["process"]["args"][0].as_str().map(str::to_string)
}

/// The command a runtime's "not found" message names: crun's
/// `executable file `x` not found`, youki's `executable 'x' not found`,
/// runc's `exec: "x": …`.
fn named_command(message: &str) -> Option<&str> {
    [("`", "`"), ("executable '", "'"), ("exec: \"", "\"")]
        .iter()
        .find_map(|(open, close)| {
            let rest = &message[message.find(open)? + open.len()..];
            Some(&rest[..rest.find(close)?])
        })
        .filter(|n| !n.is_empty())
}

/// [`start_error_of`], knowing the command the process was to run: a
/// command that is not there or cannot run is told in runc's words
/// (`exec: "x": executable file not found in $PATH`, `exec: "x":
/// permission denied`), whatever the runtime's, since clients of Docker's
/// API read the exit code from them (the docker CLI gives 127 and 126
/// only for these words).
pub fn start_error_for(verb: &str, message: &str, command: Option<&str>) -> RuntimeError {
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
            || m.contains("operation not permitted")
            || m.contains("is a directory")
            || m.contains("does not have correct permissions"))
    {
        EXIT_NOT_EXECUTABLE
    } else {
        EXIT_ENGINE_FAILURE
    };
    let hint = if m.contains("hybrid mode not supported") {
        " (crun refuses hosts whose cgroup2 mount holds controllers while the others are on v1; \
         berth hides that mount from crun when it runs as root, but a rootless user cannot: \
         drop --runtime crun, and berth picks runc or youki)"
    } else {
        ""
    };
    let name = named_command(message).or(command).unwrap_or_default();
    let message = match code {
        // The docker CLI's test is case-sensitive: crun's "No such file"
        // would not do.
        EXIT_NOT_FOUND
            if !message.contains("executable file not found") && !message.contains("no such file or directory") =>
        {
            format!("unable to start container process: exec: {name:?}: executable file not found in $PATH")
        }
        EXIT_NOT_EXECUTABLE if !message.contains("permission denied") => {
            format!("unable to start container process: exec: {name:?}: permission denied")
        }
        _ => message.to_string(),
    };
    RuntimeError::StartFailed {
        code,
        message: format!("OCI runtime {verb} failed: {message}{hint}"),
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
        // crun's wording, for a missing command and for a directory.
        let e = start_error("executable file `nosuch` not found in $PATH: No such file or directory");
        assert_eq!(e.exit_code(), 127);
        let e = start_error("open executable: Operation not permitted");
        assert_eq!(e.exit_code(), 126);
    }

    #[test]
    fn words_missing_and_unrunnable_commands_as_runc_does() {
        let words = |m: &str, cmd: Option<&str>| start_error_for("create", m, cmd).to_string();
        let want = "exec: \"nosuch\": executable file not found in $PATH";
        for m in [
            "executable file `nosuch` not found in $PATH: No such file or directory",
            "error in executing process : executable 'nosuch' not found in $PATH",
            "unable to start container process: exec: \"nosuch\": executable file not found in $PATH",
        ] {
            assert!(words(m, Some("other")).contains(want), "{m}: {}", words(m, None));
        }
        // crun names no command for a directory: the bundle's is used.
        let e = words("open executable: Operation not permitted", Some("/etc"));
        assert!(e.contains("exec: \"/etc\": permission denied"), "{e}");
        // Anything else keeps the runtime's words.
        let e = words("cgroup: cannot write memory.max: busy", Some("x"));
        assert!(e.contains("cgroup: cannot write memory.max: busy"), "{e}");
    }

    #[test]
    fn select_hides_cgroup2_from_crun_on_hybrid_hosts() {
        let root = std::path::Path::new("/tmp/berth-select-test");
        let rt =
            OciRuntime::select(None, root).expect("an OCI runtime is installed (scripts/setup installs crun and runc)");
        assert_eq!(rt.root, root);
        assert!(!rt.reason.is_empty());
        let root_user = rustix::process::geteuid().is_root() && has_cap_sys_admin();
        if find_binary("crun").is_some() && crun_cgroup_probe().is_err() {
            if root_user {
                assert_eq!(rt.name, "crun");
                assert!(rt.hide_cgroup2);
                assert!(rt.reason.contains("private mount namespace"), "{}", rt.reason);
            } else if find_binary("runc").is_some() {
                assert_eq!(rt.name, "runc");
                assert!(rt.reason.contains("which crun refuses"), "{}", rt.reason);
            }
        } else {
            assert!(!rt.hide_cgroup2);
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
