//! RUN: a real container of the step's parent image. The rootfs is an
//! overlay of the parent's layer dirs and a fresh upper dir under
//! `$ROOT/build/<step-id>/`; the container runs through berth-runtime's
//! monitor (output tailed from its log, so parallel stages can prefix it);
//! the upper dir, minus the mount points the runtime had to create, becomes
//! the step's layer.
//!
//! [`StepDir`] owns every mount and the directory: whatever happens, a step
//! leaves no mount and no directory behind.

use berth_archive::perms;
use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_runtime::{build_spec, monitor_main, unmount, ContainerConfig, MonitorOptions, MountKind, MountSpec};
use berth_store::Digest;

use super::commit::diff_upper;
use super::image_cache::ClassicStep;
use super::stage::{cached_step, run_created_by, shell_argv, Cur};
use super::{new_step_id, store_err, BuildError, Builder, Progress};
use crate::dockerfile::{
    run_heredoc_plan, Instruction, InstructionKind, MountKind as RunMountKind, RunHeredocPlan, ShellOrExec,
};

/// A step's working directory and the mounts in it; dropped: everything
/// unmounted (innermost first) and the directory removed.
/// While a step runs, `<step-dir>.lock` is flocked: the sweep of dead
/// steps (`berth_store::sweep`) leaves live steps of concurrent builds alone.
pub(crate) struct StepDir {
    pub dir: PathBuf,
    mounts: Vec<PathBuf>,
    n: usize,
    lock: Option<(std::fs::File, PathBuf)>,
}

impl StepDir {
    pub fn create(build_dir: &Path, id: &str) -> Result<StepDir, BuildError> {
        let dir = super::step_dir(build_dir, id);
        let lp = berth_store::sweep::step_lock_path(&dir);
        // Locked under a private name, then renamed into place: a sweeping
        // neighbour never sees the lock unheld (see berth_store::sweep).
        let private = build_dir.join(format!(".{id}.lock-new"));
        let lock = perms::create_new(&private, perms::PRIVATE_FILE)
            .map_err(|e| store_err(&format!("creating {}", private.display()), e))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| store_err(&format!("locking {}", private.display()), e))?;
        std::fs::rename(&private, &lp).map_err(|e| store_err(&format!("creating {}", lp.display()), e))?;
        let sd = StepDir {
            dir,
            mounts: Vec::new(),
            n: 0,
            lock: Some((lock, lp)),
        };
        perms::create_dir_all(&sd.dir, perms::PRIVATE_DIR)
            .map_err(|e| store_err(&format!("creating {}", sd.dir.display()), e))?;
        Ok(sd)
    }

    /// Mount `image` (None: an empty root) as an overlay with a throwaway
    /// upper under this step dir; returns the mounted root.
    pub fn mount_image(&mut self, b: &Builder<'_>, image: Option<&Digest>, name: &str) -> Result<Rootfs, BuildError> {
        self.n += 1;
        let base = self.dir.join(format!("{name}{}", self.n));
        let (upper, work, root) = (base.join("upper"), base.join("work"), base.join("rootfs"));
        // The upper dir's mode is the container's `/`.
        for (d, mode) in [
            (&base, perms::PRIVATE_DIR),
            (&upper, perms::CONTENT_DIR),
            (&work, perms::PRIVATE_DIR),
            (&root, perms::PRIVATE_DIR),
        ] {
            perms::create_dir_all(d, mode).map_err(|e| store_err(&format!("creating {}", d.display()), e))?;
        }
        let lowers = image_lowers(b, image, "reading an image")?;
        mount_step_overlay(&lowers, &upper, &work, &root)?;
        self.mounts.push(root.clone());
        Ok(Rootfs { root, upper, lowers })
    }

    /// Undo every mount now (before reading the upper dir).
    pub fn unmount_all(&mut self) -> Result<(), BuildError> {
        while let Some(m) = self.mounts.pop() {
            unmount(&m).map_err(|e| store_err("unmounting the step's root filesystem", e))?;
        }
        Ok(())
    }
}

impl Drop for StepDir {
    fn drop(&mut self) {
        while let Some(m) = self.mounts.pop() {
            let _ = unmount(&m);
        }
        berth_store::staging::remove_tree(&self.dir);
        if let Some((_, p)) = self.lock.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The layer dirs of `image` (None: none), topmost first, as overlay lowers.
pub(crate) fn image_lowers(b: &Builder<'_>, image: Option<&Digest>, what: &str) -> Result<Vec<PathBuf>, BuildError> {
    let Some(id) = image else { return Ok(Vec::new()) };
    let rec = b.store.image(id).map_err(|e| store_err(what, e))?;
    Ok(rec.layers.iter().rev().map(|chain| b.store.layer_dir(chain)).collect())
}

/// A step's overlay: a container's, but `volatile`. Unmounting a plain
/// overlay syncs its whole upper file system; a step's upper dir is either
/// thrown away or becomes a layer, which the store syncs once when it
/// publishes it, so that sync only costs time.
fn mount_step_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, root: &Path) -> Result<(), BuildError> {
    berth_runtime::mount_overlay_opts(lowers, upper, work, root, true)
        .map_err(|e| store_err("mounting the step's root filesystem", e))
}

/// A mounted image root.
pub(crate) struct Rootfs {
    pub root: PathBuf,
    pub upper: PathBuf,
    pub lowers: Vec<PathBuf>,
}

/// Files and directories the runtime creates as mount points when the
/// image lacks them; left out of the layer when they were absent before.
const RUNTIME_MOUNT_POINTS: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf", "dev", "proc", "sys"];

pub(crate) fn run_step(b: &Builder<'_>, cur: &mut Cur, x: &Instruction) -> Result<(), BuildError> {
    let InstructionKind::Run {
        cmd,
        mounts,
        network,
        security,
        heredocs,
    } = &x.kind
    else {
        unreachable!("run_step is only called for RUN");
    };
    let mut script = None;
    let argv = match run_heredoc_plan(cmd, heredocs) {
        None => shell_argv(cmd, &cur.config),
        Some(RunHeredocPlan::Script(body)) if body.starts_with("#!") => {
            let name = heredocs.first().map(|h| h.name.clone()).unwrap_or_else(|| "EOF".into());
            let path = format!("/dev/pipes/{name}");
            script = Some((name, body));
            vec![path]
        }
        Some(RunHeredocPlan::Script(body) | RunHeredocPlan::Shell(body)) => {
            shell_argv(&ShellOrExec::Shell(body), &cur.config)
        }
    };
    let args = cur.run_args();
    let created_by = run_created_by(&argv, &args);
    let net = match network.as_deref().unwrap_or("default") {
        "default" | "" => b.opts.network.clone(),
        other => other.to_string(),
    };
    let net = match net.as_str() {
        "" | "default" | "private" | "bridge" => String::new(),
        "none" => "none".to_string(),
        "host" => "host".to_string(),
        other => {
            return Err(BuildError::other(format!(
                "network mode {other:?} is not supported for RUN: use default, none or host"
            )))
        }
    };
    // A required SSH agent must be there even when the step is cached.
    for m in mounts.iter().filter(|m| m.kind == RunMountKind::Ssh) {
        let sid = m.options.get("id").map(String::as_str).unwrap_or("default");
        if m.options.get("required").map(String::as_str) == Some("true") && !b.opts.ssh.contains_key(sid) {
            let arg = if sid == "default" {
                "--ssh default (the agent at $SSH_AUTH_SOCK)".to_string()
            } else {
                format!("--ssh {sid}=/path/to/agent.sock")
            };
            return Err(BuildError::other(format!(
                "--mount=type=ssh: the SSH agent \"{sid}\" is required but none was given: build with {arg}"
            )));
        }
    }
    let mut extra: Vec<(&str, String)> = args.iter().map(|(k, v)| ("arg", format!("{k}={v}"))).collect();
    // Bind mounts from other stages: their image is an input of the step.
    let mut from_images = Vec::new();
    for m in mounts {
        if let Some(from) = m.options.get("from") {
            let img = resolve_from(b, from)?;
            extra.push(("mount-from", img.as_ref().map(|d| d.to_string()).unwrap_or_default()));
            from_images.push((from.clone(), img));
        } else if m.kind == RunMountKind::Bind {
            // Bound context files are inputs too, as in BuildKit.
            let src = m.options.get("source").cloned().unwrap_or_else(|| "/".into());
            let sources = b
                .context
                .resolve(std::slice::from_ref(&src), &[])
                .map_err(|e| BuildError::other(format!("--mount=type=bind,source={src}: {e}")))?;
            let mut sc = b.stat_cache.lock().unwrap_or_else(|p| p.into_inner());
            let d = b
                .context
                .digest(&sources, None, &mut sc)
                .map_err(|e| BuildError::other(e.to_string()))?;
            extra.push(("mount-bind", d));
        }
    }
    let key = cur.step_key(&format!("{:?}", x.kind), &extra);
    let cmd_text = argv.join(" ");
    // Its history text holds all its inputs only without the BuildKit flags.
    let classic = (mounts.is_empty() && network.is_none() && security.is_none()).then(|| ClassicStep {
        created_by: created_by.clone(),
        config: cur.config.clone(),
    });
    cached_step(b, cur, key, classic, |cur| {
        // A foreign platform's programs need a binfmt handler: say so
        // here rather than let the runtime fail with "exec format error".
        let c = &cur.config;
        berth_runtime::binfmt::check_on_this_host(&c.os, &c.architecture, c.variant.as_deref())
            .map_err(|e| BuildError::other(e.to_string()))?;
        let layer = execute(b, cur, &argv, script, mounts, &from_images, &net, &cmd_text)?;
        Ok((cur.config.clone(), layer, created_by))
    })
}

/// The image a `from=` names: a stage (waited for) or a stored image.
pub(crate) fn resolve_from(b: &Builder<'_>, from: &str) -> Result<Option<Digest>, BuildError> {
    if let Some(st) = b.df.stage_by_name_or_index(from) {
        return Ok(b.wait_stage(st.index)?.image);
    }
    if b.opts.context_dirs.contains_key(from) {
        return Err(BuildError::other(format!(
            "--from={from}: the build context {from:?} is a directory: berth takes a directory context in COPY --from and FROM, not here"
        )));
    }
    // `--build-context NAME=docker-image://REF`: REF, pulled when missing.
    let from = match b.opts.context_images.get(from) {
        Some(image) => {
            if let (Err(_), Some(fetch)) = (b.store.resolve_image(image), &b.opts.fetch_base) {
                (fetch.0)(image, None).map_err(|e| BuildError::other(format!("failed to pull {image}: {e}")))?;
            }
            image.as_str()
        }
        None => from,
    };
    super::stage::lease_resolved(b, from).map(|r| Some(r.id)).map_err(|_| {
        BuildError::other(format!(
            "{from:?} is neither a stage of this Dockerfile nor an image in the store"
        ))
    })
}

fn cache_mount_dir(b: &Builder<'_>, id: &str) -> PathBuf {
    use sha2::{Digest as _, Sha256};
    let h = hex::encode(Sha256::digest(id.as_bytes()));
    b.build_dir.join("cache-mounts").join(&h[..24])
}

fn rel(target: &str) -> String {
    target.trim_start_matches('/').trim_end_matches('/').to_string()
}

#[allow(clippy::too_many_arguments)]
fn execute(
    b: &Builder<'_>,
    cur: &Cur,
    argv: &[String],
    script: Option<(String, String)>,
    mounts: &[crate::dockerfile::RunMount],
    from_images: &[(String, Option<Digest>)],
    net: &str,
    cmd_text: &str,
) -> Result<Option<super::commit::LayerOut>, BuildError> {
    let id = new_step_id();
    let short = id[..12].to_string();
    let mut sd = StepDir::create(&b.build_dir, &id)?;
    let rootfs = sd.mount_image(b, cur.image.as_ref(), "root")?;
    let root = rootfs.root.clone();

    let mut specs: Vec<MountSpec> = Vec::new();
    let mut candidates: Vec<String> = RUNTIME_MOUNT_POINTS.iter().map(|s| s.to_string()).collect();
    // SSH mounts are numbered in order; the first one is SSH_AUTH_SOCK.
    let mut ssh_n = 0;
    let mut ssh_sock: Option<String> = None;
    for m in mounts {
        let target = m.target.clone().unwrap_or_default();
        let opt = |k: &str| m.options.get(k).map(String::as_str);
        let ro_default = matches!(m.kind, RunMountKind::Bind | RunMountKind::Secret);
        let readonly = match opt("readonly") {
            Some(v) => v == "true",
            None => ro_default,
        };
        match m.kind {
            RunMountKind::Cache => {
                let cid = opt("id").unwrap_or(&target).to_string();
                let dir = cache_mount_dir(b, &cid);
                if !dir.exists() {
                    if let Some(parent) = dir.parent() {
                        perms::create_dir_all(parent, perms::PRIVATE_DIR)
                            .map_err(|e| store_err("creating a cache mount", e))?;
                    }
                    // Mounted into the step's container, like a volume.
                    perms::create_dir(&dir, perms::CONTENT_DIR).map_err(|e| store_err("creating a cache mount", e))?;
                    let uid = opt("uid").and_then(|u| u.parse::<u32>().ok());
                    let gid = opt("gid").and_then(|g| g.parse::<u32>().ok());
                    if uid.is_some() || gid.is_some() {
                        let _ = std::os::unix::fs::chown(&dir, uid, gid);
                    }
                    if let Some(mode) = opt("mode").and_then(|m| u32::from_str_radix(m, 8).ok()) {
                        use std::os::unix::fs::PermissionsExt;
                        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode));
                    }
                }
                specs.push(MountSpec {
                    kind: MountKind::Bind,
                    source: dir,
                    target: target.clone(),
                    readonly,
                    ..Default::default()
                });
            }
            RunMountKind::Bind => {
                let source = opt("source").unwrap_or("/");
                let src = match opt("from") {
                    Some(from) => {
                        let img = from_images.iter().find(|(f, _)| f == from).and_then(|(_, i)| i.clone());
                        let r = sd.mount_image(b, img.as_ref(), "bind")?;
                        r.root.join(rel(source))
                    }
                    None => {
                        let p = b.opts.context_dir.join(rel(source));
                        let canon = p.canonicalize().unwrap_or(p.clone());
                        let ctx = b.opts.context_dir.canonicalize().unwrap_or(b.opts.context_dir.clone());
                        if !canon.starts_with(&ctx) {
                            return Err(BuildError::other(format!(
                                "--mount=type=bind,source={source}: the source is outside the build context"
                            )));
                        }
                        p
                    }
                };
                if !src.exists() {
                    return Err(BuildError::other(format!(
                        "--mount=type=bind,source={source}: no such file or directory"
                    )));
                }
                specs.push(MountSpec {
                    kind: MountKind::Bind,
                    source: src,
                    target: target.clone(),
                    readonly,
                    ..Default::default()
                });
            }
            RunMountKind::Tmpfs => {
                let mut options = Vec::new();
                if let Some(s) = opt("size") {
                    options.push(format!("size={s}"));
                }
                options.push("exec".into());
                specs.push(MountSpec {
                    kind: MountKind::Tmpfs,
                    target: target.clone(),
                    options,
                    ..Default::default()
                });
            }
            RunMountKind::Secret => {
                let sid = opt("id")
                    .map(String::from)
                    .or_else(|| target.rsplit('/').next().map(String::from))
                    .unwrap_or_default();
                let t = if target.is_empty() {
                    format!("/run/secrets/{sid}")
                } else {
                    target.clone()
                };
                match b.secrets.get(&sid) {
                    Some(src) if src.exists() => {
                        specs.push(MountSpec {
                            kind: MountKind::Bind,
                            source: src.to_path_buf(),
                            target: t.clone(),
                            readonly: true,
                            ..Default::default()
                        });
                        candidates.push(rel(&t));
                        if target.is_empty() {
                            candidates.push("run/secrets".into());
                            candidates.push("run".into());
                        }
                    }
                    _ if opt("required") == Some("true") => {
                        return Err(BuildError::other(format!(
                            "secret {sid} is required but was not given (use --secret id={sid},src=FILE)"
                        )))
                    }
                    _ => {}
                }
                continue;
            }
            RunMountKind::Ssh => {
                // The agent's socket itself is bound in (uid, gid and mode
                // are the host socket's: it cannot be changed for one RUN).
                let sid = opt("id").unwrap_or("default").to_string();
                let t = if target.is_empty() {
                    format!("/run/buildkit/ssh_agent.{ssh_n}")
                } else {
                    target.clone()
                };
                ssh_n += 1;
                // An optional agent that was not given is not mounted.
                if let Some(sock) = b.opts.ssh.get(&sid) {
                    specs.push(MountSpec {
                        kind: MountKind::Bind,
                        source: sock.clone(),
                        target: t.clone(),
                        readonly: false,
                        ..Default::default()
                    });
                    candidates.push(rel(&t));
                    if target.is_empty() {
                        candidates.push("run/buildkit".into());
                        candidates.push("run".into());
                    }
                    if ssh_sock.is_none() {
                        ssh_sock = Some(t);
                    }
                }
                continue;
            }
        }
        if !target.is_empty() {
            candidates.push(rel(&target));
        }
    }
    if let Some((name, body)) = &script {
        let p = sd.dir.join(format!("heredoc-{name}"));
        // Mounted into the step's container and run by its user.
        perms::write_new(&p, body.as_bytes(), 0o755).map_err(|e| store_err("writing the heredoc script", e))?;
        specs.push(MountSpec {
            kind: MountKind::Bind,
            source: p,
            target: format!("/dev/pipes/{name}"),
            readonly: true,
            ..Default::default()
        });
    }
    // Which mount points exist before the runtime creates them.
    let absent: Vec<String> = candidates
        .into_iter()
        .filter(|c| std::fs::symlink_metadata(root.join(c)).is_err())
        .collect();

    let mut env = cur.config.config.env.clone().unwrap_or_default();
    for (k, v) in cur.run_args() {
        env.push(format!("{k}={v}"));
    }
    if let Some(sock) = ssh_sock {
        env.retain(|e| !e.starts_with("SSH_AUTH_SOCK="));
        env.push(format!("SSH_AUTH_SOCK={sock}"));
    }
    let cfg = ContainerConfig {
        id: id.clone(),
        name: format!("berth-build-{short}"),
        image_id: cur.image.as_ref().map(|d| d.to_string()).unwrap_or_default(),
        image_ref: cur.image.as_ref().map(|d| d.to_string()).unwrap_or_default(),
        args: argv.to_vec(),
        env,
        working_dir: if cur.config.config.working_dir.is_empty() {
            "/".into()
        } else {
            cur.config.config.working_dir.clone()
        },
        user: cur.config.config.user.clone(),
        hostname: short.clone(),
        network_mode: net.to_string(),
        mounts: specs,
        shell: cur
            .config
            .config
            .shell
            .clone()
            .unwrap_or_else(crate::metadata::default_shell),
        shm_size: b.opts.shm_size,
        resources: berth_runtime::config::Resources {
            ulimits: b.opts.ulimits.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let spec = build_spec(&cfg, &root, &sd.dir).map_err(|e| store_err("preparing the step's container", e))?;
    if !b.opts.extra_hosts.is_empty() {
        // `--add-host`: after the runtime's own lines, as Docker puts them.
        let hosts = sd.dir.join("hosts");
        let mut text = std::fs::read_to_string(&hosts).map_err(|e| store_err("reading the step's /etc/hosts", e))?;
        for (name, ip) in &b.opts.extra_hosts {
            text.push_str(&format!("{ip}\t{name}\n"));
        }
        std::fs::write(&hosts, text).map_err(|e| store_err("writing the step's /etc/hosts", e))?;
    }
    // Both hold the step's environment (build args among them).
    let spec_json = serde_json::to_vec(&spec).map_err(|e| store_err("writing the step's bundle", e))?;
    perms::write_new(&sd.dir.join("config.json"), &spec_json, perms::PRIVATE_FILE)
        .map_err(|e| store_err("writing the step's bundle", e))?;
    let cfg_json = serde_json::to_vec_pretty(&cfg).map_err(|e| store_err("writing the step's config", e))?;
    perms::write_new(
        &sd.dir.join(berth_runtime::monitor::CONFIG_FILE),
        &cfg_json,
        perms::PRIVATE_FILE,
    )
    .map_err(|e| store_err("writing the step's config", e))?;

    b.progress.line(&cur.label, &format!(" ---> Running in {short}"));
    let stop = AtomicBool::new(false);
    let log = sd.dir.join(berth_runtime::logs::LOG_FILE);
    let res = std::thread::scope(|s| {
        let t = s.spawn(|| tail_log(&log, &stop, b.progress, &cur.label));
        let opts = MonitorOptions {
            runtime: b.runtime.clone(),
            attached: None,
            remove_when_done: false,
            on_done: Default::default(),
            wait_attach: false,
            reap_strays: false,
            hold: false,
            ready: None,
        };
        let r = monitor_main(&sd.dir, opts);
        stop.store(true, Ordering::SeqCst);
        let _ = t.join();
        r
    });
    sd.unmount_all()?;
    let code = match res {
        Ok(c) => c,
        Err(e) => {
            return Err(BuildError::step(
                format!("The command '{cmd_text}' could not be started: {e}"),
                e.exit_code(),
            ))
        }
    };
    if code != 0 {
        return Err(BuildError::step(
            format!("The command '{cmd_text}' returned a non-zero code: {code}"),
            code,
        ));
    }
    let exclude = leftover_mount_points(&rootfs.upper, &rootfs.lowers, &absent);
    let out = diff_upper(b.store, &rootfs.upper, b.opts.source_date_epoch, exclude)?;
    // The step's sandbox goes with `sd`, as Docker's classic builder says
    // of its step container once it is committed.
    b.progress
        .line(&cur.label, &format!("Removing intermediate container {short}"));
    Ok(out)
}

/// Mount points the runtime created (absent before, still empty) and the
/// directories that exist in the upper dir only because of them.
fn leftover_mount_points(upper: &Path, lowers: &[PathBuf], absent: &[String]) -> Vec<String> {
    let mut ex: BTreeSet<String> = BTreeSet::new();
    for a in absent {
        let p = upper.join(a);
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let empty = if md.is_dir() {
            std::fs::read_dir(&p).map(|mut r| r.next().is_none()).unwrap_or(false)
        } else {
            md.is_file() && md.len() == 0
        };
        if empty {
            ex.insert(a.clone());
        }
    }
    // Parents copied up only to hold an excluded mount point.
    let mut parents: Vec<String> = ex
        .iter()
        .flat_map(|e| {
            let mut v = Vec::new();
            let mut cur = e.as_str();
            while let Some((parent, _)) = cur.rsplit_once('/') {
                v.push(parent.to_string());
                cur = parent;
            }
            v
        })
        .collect();
    parents.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    parents.dedup();
    for parent in parents {
        let p = upper.join(&parent);
        let Ok(rd) = std::fs::read_dir(&p) else { continue };
        let all_excluded = rd
            .flatten()
            .all(|e| ex.contains(&format!("{parent}/{}", e.file_name().to_string_lossy())));
        let in_lower = lowers.iter().any(|l| l.join(&parent).is_dir());
        if all_excluded && (in_lower || absent.contains(&parent)) {
            ex.insert(parent);
        }
    }
    ex.into_iter().collect()
}

/// Print the container's output as the monitor logs it.
fn tail_log(path: &Path, stop: &AtomicBool, p: &Progress, label: &str) {
    let mut off = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let last = stop.load(Ordering::SeqCst);
        if let Ok(mut f) = std::fs::File::open(path) {
            if f.seek(SeekFrom::Start(off)).is_ok() {
                buf.clear();
                if let Ok(n) = f.read_to_end(&mut buf) {
                    off += n as u64;
                    pending.extend_from_slice(&buf);
                }
            }
        }
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|c| *c == b'\n') {
            let line = &pending[start..start + pos];
            start += pos + 1;
            if let Ok(e) = serde_json::from_slice::<berth_runtime::logs::LogEntry>(line) {
                p.output(label, &e.log);
            }
        }
        pending.drain(..start);
        if last {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_only_empty_new_mount_points() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower) = (t.path().join("u"), t.path().join("l"));
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("proc")).unwrap();
        std::fs::create_dir_all(upper.join("dev")).unwrap();
        std::fs::write(upper.join("dev/keep"), "x").unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        let absent: Vec<String> = RUNTIME_MOUNT_POINTS.iter().map(|s| s.to_string()).collect();
        let ex = leftover_mount_points(&upper, std::slice::from_ref(&lower), &absent);
        assert_eq!(ex, ["etc", "etc/hosts", "proc"]);
        // A real change next to the mount point keeps the directory.
        std::fs::write(upper.join("etc/motd"), "hi").unwrap();
        let ex = leftover_mount_points(&upper, &[lower], &absent);
        assert_eq!(ex, ["etc/hosts", "proc"]);
    }
}
