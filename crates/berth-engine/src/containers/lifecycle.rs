//! The container's life after `create`: start (attached in this process, or
//! detached under a monitor process), stop, kill, restart, pause, wait,
//! rename, exec, logs, top, stats, rm and prune.
//!
//! Mount discipline: the rootfs is mounted by whoever starts the container
//! and unmounted by whoever saw it end (the foreground `run`, the detached
//! monitor's wrapper, `stop`, `rm`); unmounting twice is harmless, and
//! nothing is ever deleted while the rootfs is still mounted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{bail, Result};
use anyhow::{anyhow, Context};
use berth_runtime::state::{pid_alive, REMOVE_MARKER};
use berth_runtime::{
    warm_cgroup_attach, AttachClient, AttachEnd, AttachOptions, AttachWarmer, ConsoleSize, ExecOptions, LogOptions,
    MonitorOptions, OciRuntime, ProcessInfo, RuntimeError, Stats, Streams,
};
use berth_store::Digest;

use super::warm::HeldStart;
use super::{Container, ContainerStatus, ROOTFS};
use crate::{Engine, EngineError};

/// The monitor program installed beside `berth` (see `src/bin/berth-monitor.rs`).
pub const MONITOR_EXE: &str = "berth-monitor";

/// Turns a runtime error into the exit code Docker would use.
pub fn runtime_exit(e: RuntimeError) -> EngineError {
    match e {
        // The runtime could not create the container: Docker's daemon's words
        // (containerd's shim, the runtime's reason, gRPC's status).
        RuntimeError::StartFailed { code, message } if message.starts_with("OCI runtime create failed") => {
            EngineError::exit(code, format!("failed to create shim task: {message}: unknown")).from_daemon()
        }
        RuntimeError::StartFailed { code, message } => EngineError::exit(code, message),
        // The runtime already printed why on our stderr: only the code.
        RuntimeError::Reported { code } => EngineError::exit(code, ""),
        e => e.into(),
    }
}

/// Blocks until the container's monitor is gone (or `timeout` passes;
/// then false). Woken by the monitor's end (a pidfd), not by polling: a
/// `--rm` run's client waits for this, and every millisecond shows.
pub(super) fn wait_monitor_gone(dir: &Path, timeout: Duration) -> bool {
    let end = std::time::Instant::now() + timeout;
    loop {
        let Ok(st) = berth_runtime::read_state(dir) else {
            return true;
        };
        if !monitor_alive(&st) {
            return true;
        }
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        // Bounded: a monitor that exec'd another program keeps its pid.
        berth_runtime::watch::wait_process_exit(
            st.monitor_pid,
            st.monitor_start,
            left.min(berth_runtime::watch::FALLBACK),
        );
    }
}

/// Whether the container's monitor process is still alive (and is not us
/// or our parent, which may be running this command as its exit hook).
fn monitor_alive(st: &berth_runtime::ContainerState) -> bool {
    let me = std::process::id() as i32;
    let parent = rustix::process::getppid()
        .map(|p| p.as_raw_nonzero().get())
        .unwrap_or(0);
    st.monitor_pid != me
        && st.monitor_pid != parent
        && pid_alive(st.monitor_pid, st.monitor_start)
        && !is_zombie(st.monitor_pid)
}

/// A process that exited but was not yet reaped (a detached monitor's
/// parent is whatever adopted it, which may reap late).
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
        })
        .is_some_and(|st| st == "Z" || st == "X")
}

/// Unmounts a container's rootfs; fails if it is still mounted afterwards.
pub fn unmount_rootfs(dir: &Path) -> Result<()> {
    if crate::is_rootless() {
        return Ok(()); // only ever mounted inside the container
    }
    let rootfs = dir.join(ROOTFS);
    berth_runtime::unmount(&rootfs)?;
    // A shareable IPC namespace's /dev/shm (--ipc shareable).
    berth_runtime::unmount(&dir.join(berth_runtime::mount::SHM_DIR))?;
    if berth_runtime::mount::is_mountpoint(&rootfs) {
        bail!("{} is still mounted; unmount it and try again", rootfs.display());
    }
    Ok(())
}

/// How much of its bridge networks a container gets before the runtime
/// creates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NetStep {
    /// Everything: a start.
    Whole,
    /// Its namespace only (see [`Engine::net_namespace`]): an early
    /// create, whose start joins the networks.
    NamespaceOnly,
}

impl Engine {
    /// Checks a container can start and mounts its rootfs. The warmer
    /// returned with the runtime should live until the container runs.
    fn prepare_start(&self, c: &Container, console: Option<ConsoleSize>) -> Result<(OciRuntime, Option<AttachWarmer>)> {
        if !c.status().can_start() {
            return Err(EngineError::conflict(format!(
                "container {} is already running",
                c.rec.name
            )));
        }
        if !c.dir.is_dir() {
            bail!(
                "container {} cannot start: its directory {} is missing; remove it with `berth rm {}`",
                c.rec.name,
                c.dir.display(),
                c.rec.name
            );
        }
        // A previous monitor may still be finishing (unmounting, exit hook).
        wait_monitor_gone(&c.dir, Duration::from_secs(10));
        self.prepare_started(c, console, NetStep::Whole)
            .inspect_err(|_| self.abandon_start(c))
    }

    /// Undoes a start that failed: nothing of it stays behind (rootfs,
    /// networks), and a `--rm` container goes, as Docker removes it.
    fn abandon_start(&self, c: &Container) {
        let _ = unmount_rootfs(&c.dir);
        let _ = self.net_down(&c.rec.id);
        if c.cfg.auto_remove {
            let _ = self.remove_container(&c.rec.id, true, true);
        }
    }

    /// [`Self::prepare_start`] once the container may start; its bridge
    /// networks as far as `net` says.
    pub(super) fn prepare_started(
        &self,
        c: &Container,
        console: Option<ConsoleSize>,
        net: NetStep,
    ) -> Result<(OciRuntime, Option<AttachWarmer>)> {
        let _ = std::fs::remove_file(c.dir.join(REMOVE_MARKER));
        // Another container's namespaces: those of its process now.
        self.prepare_namespaces(c)?;
        let warm = warm_cgroup_attach();
        // An explicit --runtime picks the runtime for this start.
        let rt = match self.runtime {
            Some(_) => self.oci_runtime()?,
            None => self.container_runtime(c)?,
        };
        let img = self
            .store
            .image(&Digest::parse(&c.rec.image_id)?)
            .with_context(|| format!("the image of container {} is gone", c.rec.name))?;
        self.mount_rootfs(&img, &c.dir, c.cfg.auto_remove)?;
        if c.cfg.tty {
            berth_runtime::term::set_console_size(&c.dir, console)?;
        }
        match net {
            // Bridge networks: its namespace, addresses, DNS names, /etc files.
            NetStep::Whole => self.net_up(c)?,
            NetStep::NamespaceOnly => {
                self.net_namespace(c)?;
            }
        }
        Ok((rt, warm))
    }

    /// Runs the container in this process with the caller's `streams`
    /// (its output copied there as well as to the log, stdin from there
    /// with `-i`, window sizes and signals from their control channel)
    /// until it exits, restarts included; returns its exit code. Removes it
    /// afterwards with `--rm`.
    pub fn run_attached(&self, word: &str, streams: Streams) -> Result<i32> {
        let c = self.container(word)?;
        // Held, as create's lease is: a prune beside this start leaves the
        // container and the namespace its start makes before it runs.
        let _held = self.hold_container(&c.rec.id)?;
        // This process is its monitor: a monitor holding it created goes.
        self.let_go_held(&c);
        let (rt, _warm) = self.prepare_start(&c, streams.console_size)?;
        // This process is the container's attached client, as `docker run`'s.
        self.record_started(&c, true);
        let res = berth_runtime::monitor_main(&c.dir, MonitorOptions::attached(rt, streams));
        let code = res.as_ref().map(|c| *c).unwrap_or_else(|e| e.exit_code());
        self.record_container_event("die", &c, &[("exitCode", code.to_string())]);
        let _ = unmount_rootfs(&c.dir);
        if let Err(e) = self.net_down(&c.rec.id) {
            log::warn!("container {}: leaving its networks: {e}", c.rec.name);
        }
        if c.cfg.auto_remove {
            self.remove_container(&c.rec.id, true, true)?;
        }
        res.map_err(runtime_exit)
    }

    /// Starts the container under a detached monitor; returns once it
    /// runs. A tty container starts with `console` as its window size.
    pub fn start_detached(&self, word: &str, console: Option<ConsoleSize>) -> Result<()> {
        self.start_monitored(word, false, console).map(|_| ())
    }

    /// Starts the container under a detached monitor with a client
    /// attached from before the start (so it sees all the output), and
    /// runs the attach session on `streams` in this process: `run -it`,
    /// `start -a`. The container outlives a detach (Ctrl-P Ctrl-Q).
    pub fn start_and_attach(&self, word: &str, opts: &AttachOptions, streams: Streams) -> Result<AttachEnd> {
        let (dir, client) = self.start_monitored(word, true, streams.console_size)?;
        let client = client.context("the monitor did not accept the attach")?;
        session_then_wait(client, &dir, opts, streams)
    }

    /// [`Self::start_and_attach`] in two halves, for a front whose client
    /// attached before the start (the API: `attach`, then `start`): starts
    /// the container with a client connected before its process runs, and
    /// returns that client for the caller to run the session on later.
    pub fn start_with_session(&self, word: &str, console: Option<ConsoleSize>) -> Result<PendingSession> {
        let (_, client) = self.start_monitored(word, true, console)?;
        let client = client.context("the monitor did not accept the attach")?;
        Ok(PendingSession { client })
    }

    /// `attach`: joins a running container's monitor with `streams`.
    pub fn attach_container(&self, word: &str, opts: &AttachOptions, streams: Streams) -> Result<AttachEnd> {
        let c = self.container(word)?;
        if !c.status().is_up() {
            return Err(EngineError::not_running(
                "You cannot attach to a stopped container, start it first",
            ));
        }
        if c.status() == ContainerStatus::Paused {
            return Err(EngineError::conflict(
                "You cannot attach to a paused container, unpause it first",
            ));
        }
        let client = AttachClient::connect(&c.dir).map_err(|e| {
            anyhow!(
                "cannot attach to container {}: {e} (its monitor is gone or predates attach support; `berth logs -f {}` follows its output)",
                c.rec.name,
                c.rec.name
            )
        })?;
        self.record_container_event("attach", &c, &[]);
        session_then_wait(client, &c.dir, opts, streams)
    }

    /// Starts the container under its monitor; returns the container's
    /// directory and, with `attach`, the client connected before the start.
    fn start_monitored(
        &self,
        word: &str,
        attach: bool,
        console: Option<ConsoleSize>,
    ) -> Result<(PathBuf, Option<AttachClient>)> {
        let c = self.container(word)?;
        // Held while it starts (see run_attached).
        let _held = self.hold_container(&c.rec.id)?;
        // A container held created (see super::warm) starts with a word.
        let held = if c.status().can_start() {
            self.start_held(&c, attach)
        } else {
            Ok(HeldStart::NotHeld)
        };
        let started = match held {
            Ok(HeldStart::Started(client)) => Ok(client),
            Ok(HeldStart::NotHeld) => {
                // Undoes itself when it fails.
                let (rt, _warm) = self.prepare_start(&c, console)?;
                let opts = MonitorOptions {
                    runtime: rt,
                    attached: None,
                    // `--rm`: the monitor removes the container through this
                    // library when it is done (see crate::monitor).
                    remove_when_done: c.cfg.auto_remove,
                    on_done: Default::default(),
                    wait_attach: attach,
                    reap_strays: false,
                    hold: false,
                    ready: None,
                };
                let (monitor_exe, args) = self.monitor_program()?;
                let mut client = None;
                let mut connect = || {
                    client = Some(AttachClient::connect(&c.dir)?);
                    Ok(())
                };
                let spawned = self.spawn_monitor(&c.dir, &monitor_exe, &args, &opts, &mut connect);
                spawned.map(|_| client).map_err(runtime_exit)
            }
            Err(e) => Err(e),
        };
        match started {
            Ok(client) => {
                self.record_started(&c, attach);
                Ok((c.dir.clone(), client))
            }
            Err(e) => {
                // The monitor unmounts on its way out; make sure of it.
                wait_monitor_gone(&c.dir, Duration::from_secs(5));
                self.abandon_start(&c);
                Err(e)
            }
        }
    }

    /// The events of a start, in dockerd's order: a client's `attach`
    /// (one attached before the start: run -it, start -a, the API's attach
    /// then start), its networks' `connect`, `start`.
    fn record_started(&self, c: &Container, attached: bool) {
        if attached {
            self.record_container_event("attach", c, &[]);
        }
        self.record_network_connects(c);
        self.record_container_event("start", c, &[]);
    }

    /// Starts the monitor of the container in `dir` with `opts` (see
    /// [`berth_runtime::spawn_monitor_with`]): a spare one if there is
    /// one, else a new one.
    pub(super) fn spawn_monitor(
        &self,
        dir: &Path,
        exe: &Path,
        args: &[String],
        opts: &MonitorOptions,
        on_listening: &mut dyn FnMut() -> berth_runtime::Result<()>,
    ) -> berth_runtime::Result<u32> {
        match self.take_spare_monitor(exe, args, &opts.runtime) {
            Some(spare) => spare
                .take(dir, opts, on_listening)
                .unwrap_or_else(|_| berth_runtime::spawn_monitor_with(dir, exe, args, opts, on_listening)),
            None => berth_runtime::spawn_monitor_with(dir, exe, args, opts, on_listening),
        }
    }

    /// A long-lived engine's spare monitor for this start, if it has a live
    /// one; a new spare is started beside, for the next start (with `rt`'s
    /// program copied ahead). A command (one start at most) never keeps
    /// one.
    fn take_spare_monitor(
        &self,
        exe: &Path,
        args: &[String],
        rt: &OciRuntime,
    ) -> Option<berth_runtime::spare::SpareMonitor> {
        self.long_lived
            .then(|| self.spare_monitor.take(exe, args, rt.copied_ahead()))
            .flatten()
    }

    /// The program a detached monitor runs as: the one set with
    /// [`Engine::set_monitor_program`]; else the small `berth-monitor`
    /// beside this executable (it needs no flags: everything is in
    /// `monitor.json`); else this executable's own `__monitor` (a front
    /// that has one: the CLI).
    pub(super) fn monitor_program(&self) -> Result<(PathBuf, Vec<String>)> {
        if let Some(m) = &self.monitor {
            return Ok(m.clone());
        }
        let exe = std::env::current_exe().context("finding this executable")?;
        let small = exe.with_file_name(MONITOR_EXE);
        Ok(if small.is_file() {
            (small, vec!["__monitor".to_string()])
        } else {
            let root = self.root().display().to_string();
            (exe, vec!["--root".to_string(), root, "__monitor".into()])
        })
    }

    /// `stop`: stop signal, then SIGKILL after the timeout; unmounts.
    pub fn stop_container(&self, word: &str, timeout: Option<u32>) -> Result<()> {
        let c = self.container(word)?;
        if !c.dir.is_dir() {
            return Ok(());
        }
        let rt = self.container_runtime(&c)?;
        berth_runtime::stop(&c.dir, &rt, timeout)?;
        self.record_container_event("stop", &c, &[]);
        wait_monitor_gone(&c.dir, Duration::from_secs(5));
        if c.dir.is_dir()
            && !berth_runtime::read_state(&c.dir)
                .map(|s| s.is_running())
                .unwrap_or(false)
        {
            unmount_rootfs(&c.dir)?;
            // Its monitor left the networks on its way out, unless it was killed.
            self.net_down(&c.rec.id)?;
        }
        Ok(())
    }

    /// `kill -s SIGNAL`.
    pub fn kill_container(&self, word: &str, signal: &str) -> Result<()> {
        crate::spec::Signal::parse(signal)?;
        // Docker's words: its daemon says which container it cannot kill.
        let c = self
            .container(word)
            .map_err(|e| e.context(format!("Cannot kill container: {word}")))?;
        let rt = self.container_runtime(&c)?;
        berth_runtime::kill(&c.dir, &rt, signal).map_err(|e| match e {
            RuntimeError::WrongState { .. } => EngineError::not_running(format!(
                "Cannot kill container: {}: Container {} is not running",
                word, c.rec.id
            )),
            e => e.into(),
        })?;
        self.record_container_event("kill", &c, &[("signal", signal.to_string())]);
        Ok(())
    }

    /// `restart`: stop (if running) and start detached; a tty container
    /// starts with `console` as its window size.
    pub fn restart_container(&self, word: &str, timeout: Option<u32>, console: Option<ConsoleSize>) -> Result<()> {
        self.stop_container(word, timeout)?;
        self.start_detached(word, console)
    }

    /// `pause`: freezes every process of a running container.
    pub fn pause_container(&self, word: &str) -> Result<()> {
        let c = self.container(word)?;
        let rt = self.container_runtime(&c)?;
        berth_runtime::pause(&c.dir, &rt).map_err(|e| match e {
            // Docker's words (409 either way).
            RuntimeError::WrongState { .. } if c.state.status == "paused" => {
                EngineError::conflict(format!("Container {} is already paused", c.rec.id))
            }
            RuntimeError::WrongState { .. } => {
                EngineError::not_running(format!("Container {} is not running", c.rec.id))
            }
            e => e.into(),
        })?;
        self.record_container_event("pause", &c, &[]);
        Ok(())
    }

    /// `unpause`: thaws a paused container ([`crate::ErrorKind::NotPaused`] if it is not).
    pub fn unpause_container(&self, word: &str) -> Result<()> {
        let c = self.container(word)?;
        let rt = self.container_runtime(&c)?;
        berth_runtime::unpause(&c.dir, &rt).map_err(|e| match e {
            RuntimeError::WrongState { .. } => EngineError::not_paused(format!("Container {} is not paused", c.rec.id)),
            e => e.into(),
        })?;
        self.record_container_event("unpause", &c, &[]);
        Ok(())
    }

    /// `wait`: blocks until the container is stopped; returns its exit code.
    pub fn wait_container(&self, word: &str) -> Result<i32> {
        let c = self.container(word)?;
        let watch = berth_runtime::watch::DirWatch::new(&c.dir);
        loop {
            if !c.dir.is_dir() {
                // Removed while we waited (--rm): the last recorded code is gone with it.
                return Ok(c.state.exit_code);
            }
            let st = berth_runtime::read_state(&c.dir)?;
            if matches!(st.status.as_str(), "exited" | "dead") {
                return Ok(st.exit_code);
            }
            watch.wait(berth_runtime::watch::FALLBACK);
        }
    }

    /// `rename OLD NEW`.
    pub fn rename_container(&self, word: &str, new_name: &str) -> Result<()> {
        let c = self.container(word)?;
        let n = new_name.strip_prefix('/').unwrap_or(new_name);
        if !super::valid_name(n) {
            bail!("Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        }
        if c.rec.name == n {
            return Err(EngineError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        self.store
            .rename_container(&c.rec.id, n)
            .map_err(|e| EngineError::from(e).context("Error when allocating new name"))?;
        self.container_event(&c.rec.id, "rename", &[("oldName", format!("/{}", c.rec.name))]);
        let mut cfg = c.cfg.clone();
        cfg.name = n.to_string();
        if c.dir.is_dir() {
            super::write_atomic(
                &c.dir.join(berth_runtime::monitor::CONFIG_FILE),
                &serde_json::to_vec_pretty(&cfg)?,
            )?;
        }
        Ok(())
    }

    /// `rm [-f] [-v]`: removes the container, its directory and (with
    /// `volumes`) its anonymous volumes.
    pub fn remove_container(&self, word: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.container(word)?;
        // Held while it goes: a prune beside an `rm -f` finds it stopped
        // once it is killed, and must leave it to this removal.
        let _held = self.hold_container(&c.rec.id)?;
        let mut grave_tree = None;
        if c.dir.is_dir() {
            self.let_go_held(&c);
            if !c.status().can_remove(false) {
                if !force {
                    return Err(EngineError::conflict(format!(
                        "cannot remove container \"/{}\": container is {}: stop the container before removing or force remove",
                        c.rec.name,
                        if c.status() == ContainerStatus::Paused { "paused" } else { "running" }
                    )));
                }
                super::write_atomic(&c.dir.join(REMOVE_MARKER), b"")
                    .with_context(|| format!("marking {} for removal", c.dir.display()))?;
                let rt = self.container_runtime(&c)?;
                // Docker's `rm -f`: SIGKILL at once, no stop signal first
                // (and its `kill` event, as dockerd records it).
                self.record_container_event("kill", &c, &[("signal", "9".to_string())]);
                berth_runtime::ops::kill_and_wait(&c.dir, &rt)?;
            }
            wait_monitor_gone(&c.dir, Duration::from_secs(5));
            // The monitor deletes the runtime's state when the container
            // exits; only a dead monitor leaves some behind.
            if let Ok(rt) = self.container_runtime(&c) {
                if rt.root.join(&c.rec.id).exists() {
                    let _ = rt.delete(&c.rec.id, true);
                }
            }
            unmount_rootfs(&c.dir)?;
            self.net_down(&c.rec.id)?;
            // Move the directory out of sight first: a crash from here on
            // leaves only garbage in tmp/, never a half-removed container.
            let grave = self.store.staging().path(&format!("rm-{}", c.short_id()))?;
            match std::fs::rename(&c.dir, &grave) {
                Ok(()) => {}
                // Removed under us (a `--rm` monitor's exit hook won the race).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !c.dir.exists() => {}
                Err(e) => {
                    return Err(anyhow::Error::from(e)
                        .context(format!("moving {} away", c.dir.display()))
                        .into())
                }
            }
            self.store.remove_container(&c.rec.id)?;
            grave_tree = Some(grave);
        } else {
            self.net_down(&c.rec.id)?;
            self.store.remove_container(&c.rec.id)?;
        }
        self.store.free_host_ids(&c.rec.id)?;
        self.record_container_event("destroy", &c, &[]);
        // The container is gone: its moved-away directory is garbage. A
        // `wait --condition removed` wakes at the first file deleted here,
        // so `destroy` is in the journal before it returns.
        if let Some(grave) = grave_tree {
            berth_store::staging::remove_tree(&grave);
        }
        if volumes {
            self.remove_anonymous_volumes(&c)?;
        }
        Ok(())
    }

    /// The first half of a forced removal of several containers: marks each
    /// running one for removal and sends it SIGKILL without waiting, so
    /// their monitors wind down side by side while [`Self::remove_container`]
    /// takes them one by one. Errors are left for that second half to report.
    pub fn kill_for_removal(&self, word: &str) {
        let Ok(c) = self.container(word) else { return };
        if !c.dir.is_dir() || !c.state.is_running() {
            return;
        }
        if super::write_atomic(&c.dir.join(REMOVE_MARKER), b"").is_err() {
            return;
        }
        if let Ok(rt) = self.container_runtime(&c) {
            let _ = berth_runtime::ops::kill_now(&c.dir, &rt);
        }
    }

    fn remove_anonymous_volumes(&self, c: &Container) -> Result<()> {
        let anon = c.doc().anonymous_volumes;
        if anon.is_empty() {
            return Ok(());
        }
        let in_use: std::collections::HashSet<String> = self
            .store
            .list_containers()?
            .iter()
            .flat_map(|o| {
                super::record::ContainerDoc::from_value(&o.config)
                    .volume_names()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        for v in anon.iter().filter(|v| !in_use.contains(*v)) {
            self.store.remove_volume(v)?;
            berth_store::staging::remove_tree(&self.store.volumes_dir().join(v));
        }
        Ok(())
    }

    /// `exec`: runs a command in a running container with the caller's
    /// `streams` (none with `opts.detach`: a detached command's stdio is
    /// `/dev/null`); returns its exit code (0 once a detached one started).
    pub fn exec_in_container(&self, word: &str, opts: &ExecOptions, streams: Option<Streams>) -> Result<i32> {
        let c = self.container(word)?;
        match c.status() {
            s if s.can_exec() => {}
            ContainerStatus::Paused => {
                return Err(EngineError::conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    c.rec.id
                )))
            }
            _ => {
                // Docker's words.
                return Err(EngineError::not_running(format!(
                    "Container {} is not running",
                    c.rec.id
                )));
            }
        }
        let _warm = warm_cgroup_attach();
        let rt = self.container_runtime(&c)?;
        berth_runtime::exec(&c.dir, &rt, &c.rec.id, opts, streams).map_err(runtime_exit)
    }

    /// `logs`: the container's recorded output, stdout to `out` and stderr
    /// to `err` (following it with `opts.follow`).
    pub fn container_logs(
        &self,
        word: &str,
        opts: &LogOptions,
        out: &mut dyn std::io::Write,
        err: &mut dyn std::io::Write,
    ) -> Result<()> {
        let c = self.container(word)?;
        logs_readable(&c)?;
        berth_runtime::read_logs(&c.dir, opts, out, err)?;
        Ok(())
    }

    /// `top`: the processes of a running container.
    pub fn container_top(&self, word: &str) -> Result<(Container, Vec<ProcessInfo>)> {
        let c = self.container(word)?;
        if !c.state.is_running() {
            // Docker's words for top.
            return Err(EngineError::not_running(format!(
                "Container {} is not running",
                c.rec.id
            )));
        }
        let rt = self.container_runtime(&c)?;
        let ps = berth_runtime::top(&c.dir, &rt)?;
        Ok((c, ps))
    }

    /// `stats`: the container's resource usage now. Interfaces are shown
    /// for a container on bridge networks only, as Docker does (the host's
    /// or another container's namespace is not its own).
    pub fn container_stats(&self, c: &Container) -> Result<Stats> {
        let on_bridge = super::network::on_bridge(&c.dir);
        Ok(berth_runtime::stats(&c.dir, on_bridge)?)
    }
}

impl Engine {
    /// `healthcheck run`: one probe now, recorded like the monitor's own;
    /// returns whether this probe passed.
    pub fn healthcheck_run(&self, word: &str) -> Result<bool> {
        let c = self.container(word)?;
        let Some(h) = &c.cfg.healthcheck else {
            bail!("container {} has no healthcheck", c.rec.name);
        };
        let Some(sched) = berth_runtime::health::schedule(h, &c.cfg.shell) else {
            bail!("container {} has no healthcheck", c.rec.name);
        };
        if !c.state.is_running() {
            return Err(EngineError::not_running(format!(
                "container {} is not running",
                c.rec.name
            )));
        }
        let rt = self.container_runtime(&c)?;
        let result = berth_runtime::health::probe(&c.dir, &rt, &c.rec.id, &sched);
        let passed = result.exit_code == 0;
        berth_runtime::state::update_state(&c.dir, |s| {
            let health = s.health.get_or_insert_with(Default::default);
            berth_runtime::health::apply_result(health, result, false, sched.retries);
        })?;
        Ok(passed)
    }
}

/// Whether `logs` has anything to read for `c` (a front that streams the
/// log asks before its answer starts).
pub fn logs_readable(c: &Container) -> Result<()> {
    if c.cfg.log_driver == "none" {
        // Docker's words: nothing was kept to read.
        return Err(EngineError::new(
            crate::ErrorKind::Other,
            "configured logging driver does not support reading",
        ));
    }
    Ok(())
}

/// A started container's attach client, connected before the start (see
/// [`Engine::start_with_session`]).
pub struct PendingSession {
    client: AttachClient,
}

impl PendingSession {
    /// Runs the session on `streams` until the container exits or the
    /// client detaches or closes. It ends with the container's output, as
    /// dockerd's attach stream does, not after the monitor's work (unmount,
    /// `--rm`): an API client that needs the final state waits for it
    /// (`/wait`, which the docker CLI's `run` and `start -a` call).
    pub fn run(self, opts: &AttachOptions, streams: Streams) -> Result<AttachEnd> {
        self.client.session(opts, streams).map_err(runtime_exit)
    }
}

/// Runs an attach session; once it saw the container exit, waits (briefly)
/// for the monitor to finish (unmount, `--rm`), so the next command sees
/// the final state, as after `docker run`. The directory is known from
/// before: with `--rm` the container is gone by then.
fn session_then_wait(client: AttachClient, dir: &Path, opts: &AttachOptions, streams: Streams) -> Result<AttachEnd> {
    let end = client.session(opts, streams).map_err(runtime_exit)?;
    if !matches!(end, AttachEnd::Detached | AttachEnd::Closed) {
        wait_monitor_gone(dir, Duration::from_secs(10));
    }
    Ok(end)
}
