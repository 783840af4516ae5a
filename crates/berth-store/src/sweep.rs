//! What killed processes leave behind, removed when a store opens: a
//! build's step directories under `build/` (each `<id>` holds a step's
//! overlay mounts, `<id>.lock` is flocked while its build runs) whose lock
//! nobody holds any more. Their mounts are detached first, innermost first.
//! (Staging directories under `tmp/` are swept the same way by `staging`.)
//!
//! Cheap when there is nothing to do: one `readdir` of `build/` (the cache
//! mounts and stat cache there are skipped by name), and for each step
//! directory one try of its lock; `/proc/self/mountinfo` is read only when
//! a dead step is found. It never touches a step whose build is alive.

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::staging::remove_tree;

/// `build/<64 hex>`: a step directory; `build/<64 hex>.lock`: its lock.
fn step_name(name: &str) -> Option<&str> {
    let base = name.strip_suffix(".lock").unwrap_or(name);
    (base.len() == 64 && base.bytes().all(|c| c.is_ascii_hexdigit())).then_some(base)
}

/// The lock of step directory `dir`.
pub fn step_lock_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    dir.with_file_name(name)
}

/// A killed build's step container may outlive it: created and waiting
/// for a `start` that never comes, or still running its command. Its pid
/// (`ctr.pid`, written by the runtime) is killed when that process is
/// still the step's: its command line or cgroup names the step's ID.
fn kill_step_container(dir: &Path, id: &str) {
    let Some(pid) = std::fs::read_to_string(dir.join("ctr.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
        .filter(|&p| p > 1)
    else {
        return;
    };
    let names_step = |what: &str| {
        std::fs::read(format!("/proc/{pid}/{what}")).is_ok_and(|b| b.windows(id.len()).any(|w| w == id.as_bytes()))
    };
    if !id.is_empty() && (names_step("cmdline") || names_step("cgroup")) {
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            log::debug!("killing the step container {pid} of a build that is gone");
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
}

/// Removes the step directories (and mounts) of builds that are gone;
/// returns how many.
pub fn sweep_dead_steps(build_dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(build_dir) else { return 0 };
    let mut dead = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(base) = name.to_str().and_then(step_name) else {
            continue;
        };
        if !seen.insert(base.to_string()) {
            continue;
        }
        let dir = build_dir.join(base);
        let lock = step_lock_path(&dir);
        // A live build holds the lock from before its directory exists
        // (it is locked under a private name, then renamed into place).
        let held = match File::open(&lock) {
            Ok(f) => flock(&f, FlockOperation::NonBlockingLockExclusive).is_err(),
            Err(_) => false,
        };
        if !held {
            dead.push((dir, lock));
        }
    }
    if dead.is_empty() {
        return 0;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for (dir, lock) in &dead {
        log::debug!("sweeping the step directory of a build that is gone: {}", dir.display());
        let id = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        kill_step_container(dir, id);
        if let Some(runtime_state) = build_dir.parent().map(|r| r.join("runtime").join(id)) {
            remove_tree(&runtime_state);
        }
        let prefix = format!("{}/", dir.display());
        let mut mounts: Vec<String> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(crate::layers::unescape_mountinfo)
            .filter(|mp| mp.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            if let Err(e) = rustix::mount::unmount(m.as_str(), rustix::mount::UnmountFlags::DETACH) {
                log::warn!("unmounting {m} left by a killed build: {e}");
            }
        }
        remove_tree(dir);
        let _ = std::fs::remove_file(lock);
    }
    dead.len()
}
