//! Hides the wait of the first cgroup attach behind the work before it.
//!
//! Moving a process into a cgroup (writing `cgroup.procs`, which the OCI
//! runtime does for every container and every `exec`) takes the kernel's
//! `cgroup_threadgroup_rwsem` for writing. That semaphore switches its
//! readers to a slow path first and waits one RCU grace period for them
//! (`rcu_sync_enter`): about 8 ms here, the biggest single wait of a
//! container start. Once switched it stays switched while writers keep
//! coming, and for about one more grace period after the last one, so a
//! second attach soon after the first costs some microseconds.
//!
//! So while berth prepares a container and starts the runtime, a thread
//! of the CLI "moves" its own process into the cgroup it is already in, a
//! no-op that the kernel still handles as an attach. It does so every few
//! milliseconds until the container has started (the guard is dropped),
//! and the runtime's own attach then finds the semaphore already switched.
//! Kernels built with `CONFIG_CGROUP_FAVOR_DYNMODS`, or a cgroup2 mounted
//! with `favordynmods`, never switch; there this costs a few writes.
//!
//! Best effort: it needs write access to the file (root), and gives up
//! quietly at the first error.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the thread attaches again: well inside one grace period.
const PERIOD: Duration = Duration::from_millis(4);
/// A start that takes longer than this gains nothing more from it.
const LIMIT: Duration = Duration::from_millis(500);

/// Keeps the attach path warm until dropped.
pub struct AttachWarmer {
    stop: Arc<AtomicBool>,
}

impl Drop for AttachWarmer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts warming when this process may attach itself to its own cgroup;
/// `None` where it may not (not root, no cgroup file found).
pub fn warm_cgroup_attach() -> Option<AttachWarmer> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let procs = own_cgroup_procs()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let pid = std::process::id().to_string();
    std::thread::Builder::new()
        .name("cgroup-warm".into())
        .spawn(move || {
            let begin = Instant::now();
            while !flag.load(Ordering::Relaxed) && begin.elapsed() < LIMIT {
                if std::fs::write(&procs, &pid).is_err() {
                    return;
                }
                std::thread::sleep(PERIOD);
            }
        })
        .ok()?;
    Some(AttachWarmer { stop })
}

/// The `cgroup.procs` of the cgroup this process is in: of a v1
/// hierarchy with controllers when there is one, else of the cgroup2 tree.
fn own_cgroup_procs() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    parse_own_cgroup(&text).into_iter().find(|p| p.is_file())
}

/// Candidate `cgroup.procs` paths from `/proc/self/cgroup`, v1 first.
fn parse_own_cgroup(text: &str) -> Vec<PathBuf> {
    let base = std::path::Path::new("/sys/fs/cgroup");
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if id == "0" && ctrls.is_empty() {
            v2.push(base.join(rel).join("cgroup.procs"));
            v2.push(base.join("unified").join(rel).join("cgroup.procs"));
        } else if !ctrls.is_empty() && !ctrls.starts_with("name=") {
            v1.push(base.join(ctrls).join(rel).join("cgroup.procs"));
        }
    }
    v1.extend(v2);
    v1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_a_v1_controller_then_cgroup2() {
        let text = "9:name=systemd:/\n8:pids:/user.slice\n4:cpu,cpuacct:/\n0::/init.scope\n";
        let got = parse_own_cgroup(text);
        assert_eq!(
            got,
            vec![
                PathBuf::from("/sys/fs/cgroup/pids/user.slice/cgroup.procs"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/cgroup.procs"),
                PathBuf::from("/sys/fs/cgroup/init.scope/cgroup.procs"),
                PathBuf::from("/sys/fs/cgroup/unified/init.scope/cgroup.procs"),
            ]
        );
    }

    #[test]
    fn a_pure_cgroup2_host_uses_its_one_tree() {
        let got = parse_own_cgroup("0::/\n");
        assert_eq!(got[0], PathBuf::from("/sys/fs/cgroup/cgroup.procs"));
    }
}
