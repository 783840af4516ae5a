//! Operations on a container from outside its monitor: stop, kill, pause,
//! unpause, top, stats. They are what `berth stop/kill/pause/top/stats` call.
//!
//! They signal through the OCI runtime and read the cgroup and /proc; they
//! must never write the state except for facts they caused (pause) or
//! observed (a monitor that died).

use crate::error::{Result, RuntimeError};
use crate::monitor::{cgroup_file, load_config};
use crate::oci::OciRuntime;
use crate::state::{self, read_state, update_state, STOP_MARKER};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

/// Normalizes "SIGTERM", "TERM", "15" to the runtime's spelling ("TERM" or "15").
pub fn normalize_signal(sig: &str) -> Result<String> {
    let s = sig.trim().to_ascii_uppercase();
    let s = s.strip_prefix("SIG").unwrap_or(&s).to_string();
    if s.is_empty() {
        return Err(RuntimeError::InvalidConfig("empty signal name".into()));
    }
    if let Ok(n) = s.parse::<u32>() {
        if (1..=64).contains(&n) {
            return Ok(n.to_string());
        }
    }
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM",
        "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF",
        "WINCH", "IO", "PWR", "SYS",
    ];
    if NAMES.contains(&s.as_str()) || s.starts_with("RTMIN") || s.starts_with("RTMAX") {
        Ok(s)
    } else {
        Err(RuntimeError::InvalidConfig(format!(
            "invalid signal {sig:?} (use a name like SIGTERM or a number)"
        )))
    }
}

/// Polls `done` until it holds or `timeout` passes: every millisecond at
/// first (a process dies, a monitor records an exit, in a few ms), backing
/// off to every 50 ms.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if done() {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        std::thread::sleep(pause.min(end - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Sends SIGKILL to `pid` if it is still the process that started at
/// `start` (never to a process that reused the pid). False when it could
/// not be sent that way.
fn kill_process(pid: i32, start: u64) -> bool {
    if start == 0 {
        return false;
    }
    let Some(p) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) else {
        return false;
    };
    // The pidfd pins one process: if it still has the recorded start
    // time, it is the container's and the signal goes to it alone.
    if state::process_start_time(pid) != Some(start) {
        return false;
    }
    rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL).is_ok()
}

/// Leaves the marker that tells the monitor the user stopped the
/// container (no restart policy applies).
fn mark_user_stop(container_dir: &Path) -> Result<()> {
    let p = container_dir.join(STOP_MARKER);
    berth_archive::perms::open_rw(&p, berth_archive::perms::PRIVATE_FILE)
        .map(drop)
        .map_err(|e| RuntimeError::io(format!("writing {}", p.display()), e))
}

/// SIGKILL now, no stop signal and no grace period, as `rm -f` does:
/// marks the container stopped by the user and kills its main process
/// (the init of its own pid namespace, so everything in it dies), without
/// waiting. Does nothing to a container that is not running.
pub fn kill_now(container_dir: &Path, runtime: &OciRuntime) -> Result<()> {
    let st = read_state(container_dir)?;
    if !st.is_running() {
        return Ok(());
    }
    mark_user_stop(container_dir)?;
    if st.status == "running" && kill_process(st.pid, st.pid_start) {
        return Ok(());
    }
    let cfg = load_config(container_dir)?;
    let _ = runtime.kill(&cfg.id, "KILL", false);
    if st.status == "paused" {
        let _ = runtime.resume(&cfg.id);
    }
    Ok(())
}

/// [`kill_now`], then waits like [`stop`] until the monitor has recorded
/// the exit (or records it itself when the monitor is gone).
pub fn kill_and_wait(container_dir: &Path, runtime: &OciRuntime) -> Result<()> {
    let st = read_state(container_dir)?;
    if !st.is_running() || st.status == "restarting" {
        // A restarting container has no process: stop() handles the marker.
        return stop(container_dir, runtime, Some(0));
    }
    kill_now(container_dir, runtime)?;
    let cfg = load_config(container_dir)?;
    if !wait_until(Duration::from_secs(10), || !alive(&st)) {
        kill_all_and_wait(runtime, &cfg.id, &st, "20s")?;
    }
    await_recorded(container_dir, runtime, &cfg.id)
}

fn alive(st: &state::ContainerState) -> bool {
    state::pid_alive(st.pid, st.pid_start)
}

/// SIGKILL to every process of the container, then up to 10 s for the
/// main process to go; `survived` says for how long it has resisted by then.
fn kill_all_and_wait(runtime: &OciRuntime, id: &str, st: &state::ContainerState, survived: &str) -> Result<()> {
    // `kill --all` needs the container's cgroup; rootless runc may have none.
    if runtime.kill(id, "KILL", true).is_err() {
        let _ = runtime.kill(id, "KILL", false);
    }
    if wait_until(Duration::from_secs(10), || !alive(st)) {
        return Ok(());
    }
    Err(RuntimeError::WrongState {
        id: id.to_string(),
        status: "running".into(),
        what: format!(
            "process {} survived SIGKILL for {survived} (stuck in the kernel?); try again",
            st.pid
        ),
    })
}

/// Stops the container like `docker stop`: marks it stopped by the user (so
/// no restart policy applies), sends its stop signal, and after `timeout`
/// seconds (default: the container's stop timeout, else 10) SIGKILL. Waits
/// until the monitor has recorded the exit. If the monitor is gone, records
/// the exit itself (code unknown) and deletes the runtime state.
pub fn stop(container_dir: &Path, runtime: &OciRuntime, timeout: Option<u32>) -> Result<()> {
    let cfg = load_config(container_dir)?;
    mark_user_stop(container_dir)?;
    let st = read_state(container_dir)?;
    if !st.is_running() {
        return Ok(());
    }
    let sig = normalize_signal(cfg.stop_signal.as_deref().unwrap_or("TERM"))?;
    let secs = timeout.or(cfg.stop_timeout).unwrap_or(10);
    if st.status != "restarting" {
        let _ = runtime.kill(&cfg.id, &sig, false);
        if st.status == "paused" {
            let _ = runtime.resume(&cfg.id);
        }
        if !wait_until(Duration::from_secs(secs as u64), || !alive(&st)) {
            kill_all_and_wait(runtime, &cfg.id, &st, "10s")?;
        }
    }
    await_recorded(container_dir, runtime, &cfg.id)
}

/// Lets the monitor record the exit (or notice the stop marker while
/// restarting); records it when the monitor does not.
fn await_recorded(container_dir: &Path, runtime: &OciRuntime, id: &str) -> Result<()> {
    let recorded = wait_until(Duration::from_secs(10), || {
        read_state(container_dir).map(|s| !s.is_running()).unwrap_or(true)
    });
    if !recorded {
        let _ = runtime.delete(id, true);
        update_state(container_dir, |s| {
            if s.is_running() {
                s.status = "exited".into();
                s.exit_code = state::EXIT_UNKNOWN;
                s.finished_at = Some(state::now_rfc3339());
                s.error = "the monitor did not record the exit; recorded by stop".into();
            }
        })?;
    }
    Ok(())
}

/// Sends `signal` to the container's main process. SIGKILL and the
/// container's stop signal count as a user stop (no restart), as in Docker.
pub fn kill(container_dir: &Path, runtime: &OciRuntime, signal: &str) -> Result<()> {
    let cfg = load_config(container_dir)?;
    let st = read_state(container_dir)?;
    if !st.is_running() {
        return Err(RuntimeError::WrongState {
            id: cfg.id,
            status: st.status,
            what: "cannot kill a container that is not running; start it first".into(),
        });
    }
    let sig = normalize_signal(signal)?;
    let stop_sig = normalize_signal(cfg.stop_signal.as_deref().unwrap_or("TERM"))?;
    if sig == "KILL" || sig == "9" || sig == stop_sig {
        let _ = mark_user_stop(container_dir);
    }
    runtime.kill(&cfg.id, &sig, false)
}

/// New resource limits for a container: written into its OCI spec (every
/// later start has them) and, while it runs or is paused, applied to its
/// cgroup through the runtime's `update`. What `resources` leaves
/// unlimited and `before` limited is made unlimited.
pub fn update_resources(
    container_dir: &Path,
    runtime: &OciRuntime,
    before: &crate::config::Resources,
    resources: &crate::config::Resources,
) -> Result<()> {
    let limits = crate::spec::resource_limits(resources)?;
    let mut spec = crate::exec::load_spec_json(container_dir)?;
    let res = &mut spec["linux"]["resources"];
    if !res.is_object() {
        *res = serde_json::json!({});
    }
    if let Some(m) = res.as_object_mut() {
        for k in ["memory", "cpu", "pids"] {
            m.remove(k);
        }
        m.extend(limits.clone());
    }
    crate::exec::save_spec_json(container_dir, &spec)?;
    let st = read_state(container_dir)?;
    if st.status != "running" && st.status != "paused" {
        return Ok(());
    }
    // The runtime changes only what the document names: spell out the
    // limits lifted.
    let mut doc = serde_json::Value::Object(limits);
    if doc.get("memory").is_none() && before.memory.is_some_and(|m| m > 0) {
        doc["memory"] = serde_json::json!({"limit": -1, "swap": -1});
    }
    if doc["cpu"].get("quota").is_none() && before.cpus.is_some_and(|c| c > 0.0) {
        doc["cpu"]["quota"] = serde_json::json!(-1);
    }
    if before.cpu_rt_runtime.is_some_and(|rt| rt != 0) && doc["cpu"].get("realtimeRuntime").is_none() {
        doc["cpu"]["realtimeRuntime"] = serde_json::json!(0);
    }
    if doc["cpu"].get("quota").is_none() && before.cpu_quota.is_some_and(|q| q > 0) {
        doc["cpu"]["quota"] = serde_json::json!(-1);
    }
    if doc["memory"].get("reservation").is_none() && before.memory_reservation.is_some_and(|m| m > 0) {
        doc["memory"]["reservation"] = serde_json::json!(-1);
    }
    if doc.get("pids").is_none() && before.pids_limit.is_some_and(|p| p > 0) {
        doc["pids"] = serde_json::json!({"limit": -1});
    }
    let cfg = load_config(container_dir)?;
    // crun (1.8) writes a quota of -1 to cgroup v1's cpu.cfs_quota_us as
    // an unsigned number, which the kernel refuses (ERANGE): lift it here.
    let v1_quota = Path::new("/sys/fs/cgroup/cpu")
        .join(crate::spec::cgroups_path(&cfg).trim_start_matches('/'))
        .join("cpu.cfs_quota_us");
    let lift_v1_quota = doc["cpu"]["quota"] == -1 && v1_quota.exists();
    if lift_v1_quota {
        if let Some(cpu) = doc["cpu"].as_object_mut() {
            cpu.remove("quota");
        }
    }
    let file = container_dir.join("resources-update.json");
    let bytes = serde_json::to_vec(&doc).map_err(|e| RuntimeError::InvalidConfig(e.to_string()))?;
    crate::spec::write_atomic(&file, &bytes, berth_archive::perms::PRIVATE_FILE)?;
    let r = runtime.update(&cfg.id, &file);
    let _ = std::fs::remove_file(&file);
    r?;
    if lift_v1_quota {
        std::fs::write(&v1_quota, "-1")
            .map_err(|e| RuntimeError::InvalidConfig(format!("lifting the CPU quota ({}): {e}", v1_quota.display())))?;
    }
    Ok(())
}

/// Freezes the container.
pub fn pause(container_dir: &Path, runtime: &OciRuntime) -> Result<()> {
    transition(
        container_dir,
        ("running", "paused"),
        "only a running container can be paused",
        |id| runtime.pause(id),
    )
}

/// Thaws a paused container.
pub fn unpause(container_dir: &Path, runtime: &OciRuntime) -> Result<()> {
    transition(
        container_dir,
        ("paused", "running"),
        "the container is not paused",
        |id| runtime.resume(id),
    )
}

/// Runs `op` on a container in status `from`, then records `to` (unless
/// the status changed meanwhile); `what` is the error for any other status.
fn transition(
    container_dir: &Path,
    (from, to): (&str, &str),
    what: &str,
    op: impl FnOnce(&str) -> Result<()>,
) -> Result<()> {
    let cfg = load_config(container_dir)?;
    let st = read_state(container_dir)?;
    if st.status != from {
        return Err(RuntimeError::WrongState {
            id: cfg.id,
            status: st.status,
            what: what.into(),
        });
    }
    op(&cfg.id)?;
    update_state(container_dir, |s| {
        if s.status == from {
            s.status = to.into()
        }
    })?;
    Ok(())
}

/// One process of a container, for `berth top`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessInfo {
    pub uid: u32,
    pub pid: i32,
    pub ppid: i32,
    /// CPU time used (user + system), seconds.
    pub cpu_seconds: u64,
    pub cmd: String,
}

fn process_info(pid: i32) -> Option<ProcessInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, tail) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let f: Vec<&str> = tail.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = if cmdline.is_empty() {
        format!("[{comm}]")
    } else {
        String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " ")
    };
    Some(ProcessInfo {
        uid,
        pid,
        ppid,
        cpu_seconds: ticks / 100,
        cmd,
    })
}

/// The container's processes (host pids), like `docker top`.
pub fn top(container_dir: &Path, runtime: &OciRuntime) -> Result<Vec<ProcessInfo>> {
    let cfg = load_config(container_dir)?;
    let st = read_state(container_dir)?;
    if !st.is_running() {
        return Err(RuntimeError::WrongState {
            id: cfg.id,
            status: st.status,
            what: "top needs a running container".into(),
        });
    }
    let pids = runtime.ps(&cfg.id)?;
    Ok(pids.into_iter().filter_map(process_info).collect())
}

/// Resource usage, for `berth stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Stats {
    pub memory_usage: u64,
    /// `None` = unlimited.
    pub memory_limit: Option<u64>,
    /// Total CPU time, nanoseconds.
    pub cpu_usage_ns: u64,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
    /// Bytes read and written per device and operation (cgroup v1's
    /// `blkio.throttle.io_service_bytes_recursive`, v2's `io.stat`).
    pub blkio_bytes: Vec<BlkioEntry>,
    /// Operations per device and kind (v1's `io_serviced_recursive`; v2:
    /// `rios`/`wios`).
    pub blkio_ios: Vec<BlkioEntry>,
    /// The interfaces of the container's network namespace other than
    /// `lo`, counted from inside (`/proc/<pid>/net/dev`).
    pub networks: Vec<(String, NetCounters)>,
}

impl Stats {
    /// Bytes received and sent over every interface (`stats`' NET I/O).
    pub fn net_totals(&self) -> (u64, u64) {
        self.networks
            .iter()
            .fold((0, 0), |(rx, tx), (_, c)| (rx + c.rx_bytes, tx + c.tx_bytes))
    }

    /// Bytes read and written over every device (`stats`' BLOCK I/O).
    pub fn blkio_totals(&self) -> (u64, u64) {
        self.blkio_bytes.iter().fold((0, 0), |(r, w), e| {
            if e.op.eq_ignore_ascii_case("read") {
                (r + e.value, w)
            } else if e.op.eq_ignore_ascii_case("write") {
                (r, w + e.value)
            } else {
                (r, w)
            }
        })
    }
}

/// One line of a blkio counter: a device, an operation (`Read`, `Write`,
/// `Sync`, `Async`, `Discard`, `Total` on v1; `read`, `write` on v2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// An interface's counters as `/proc/net/dev` has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// `blkio.throttle.io_service_bytes_recursive` and its kin: `MAJ:MIN OP
/// VALUE` lines (and a last `Total N` line, left out).
fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?.parse().ok()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value,
            })
        })
        .collect()
}

/// v2's `io.stat` (`MAJ:MIN rbytes=… wbytes=… rios=… wios=…`) as
/// (bytes, operations), each `read` then `write` per device, as dockerd
/// reports it.
fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        let kv: std::collections::HashMap<&str, u64> = f
            .filter_map(|x| x.split_once('=').and_then(|(k, v)| Some((k, v.parse().ok()?))))
            .collect();
        let entry = |op: &str, key: &str| BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value: kv.get(key).copied().unwrap_or(0),
        };
        bytes.extend([entry("read", "rbytes"), entry("write", "wbytes")]);
        ios.extend([entry("read", "rios"), entry("write", "wios")]);
    }
    (bytes, ios)
}

/// `/proc/net/dev`'s interfaces other than `lo`.
fn parse_net_dev(text: &str) -> Vec<(String, NetCounters)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            if name == "lo" || v.len() < 12 {
                return None;
            }
            Some((
                name.to_string(),
                NetCounters {
                    rx_bytes: v[0],
                    rx_packets: v[1],
                    rx_errors: v[2],
                    rx_dropped: v[3],
                    tx_bytes: v[8],
                    tx_packets: v[9],
                    tx_errors: v[10],
                    tx_dropped: v[11],
                },
            ))
        })
        .collect()
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Reads the container's cgroup counters (v1 or v2), and with
/// `networks` its interfaces' counters (a container in a network namespace
/// of its own; the host's or another container's are not its to show).
pub fn stats(container_dir: &Path, networks: bool) -> Result<Stats> {
    let cfg = load_config(container_dir)?;
    let id = cfg.id.as_str();
    let f = |ctrl: &str, file: &str| cgroup_file(&cfg, ctrl, file);
    if !f("memory", "").exists() && !f("pids", "").exists() {
        return Err(RuntimeError::WrongState {
            id: id.into(),
            status: read_state(container_dir).map(|s| s.status).unwrap_or_default(),
            what: "no cgroup found (is it running?)".into(),
        });
    }
    let mut s = Stats::default();
    if crate::spec::cgroup_v2_unified() {
        s.memory_usage = read_u64(&f("", "memory.current")).unwrap_or(0);
        s.memory_limit = read_u64(&f("", "memory.max"));
        s.cpu_usage_ns = std::fs::read_to_string(f("", "cpu.stat"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1000;
        s.pids_limit = read_u64(&f("", "pids.max"));
        (s.blkio_bytes, s.blkio_ios) = parse_io_stat(&std::fs::read_to_string(f("", "io.stat")).unwrap_or_default());
    } else {
        s.memory_usage = read_u64(&f("memory", "memory.usage_in_bytes")).unwrap_or(0);
        s.memory_limit = read_u64(&f("memory", "memory.limit_in_bytes")).filter(|l| *l < (1u64 << 62));
        s.cpu_usage_ns = read_u64(&f("cpuacct", "cpuacct.usage")).unwrap_or(0);
        s.pids_limit = read_u64(&f("pids", "pids.max"));
        let blkio = |name: &str| parse_blkio_v1(&std::fs::read_to_string(f("blkio", name)).unwrap_or_default());
        s.blkio_bytes = blkio("blkio.throttle.io_service_bytes_recursive");
        s.blkio_ios = blkio("blkio.throttle.io_serviced_recursive");
    }
    s.pids_current = read_u64(&f("pids", "pids.current")).unwrap_or(0);
    if let Some(st) = read_state(container_dir).ok().filter(|st| networks && st.pid > 0) {
        s.networks = parse_net_dev(&std::fs::read_to_string(format!("/proc/{}/net/dev", st.pid)).unwrap_or_default());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_parse_as_the_kernel_writes_them() {
        let v1 = parse_blkio_v1("8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n");
        assert_eq!(v1.len(), 3);
        assert_eq!(
            (v1[1].major, v1[1].minor, v1[1].op.as_str(), v1[1].value),
            (8, 0, "Write", 512)
        );
        let (b, i) = parse_io_stat("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            b.iter().map(|e| (e.op.as_str(), e.value)).collect::<Vec<_>>(),
            [("read", 10), ("write", 20)]
        );
        assert_eq!(i[1].value, 2);
        let dev = [
            "Inter-|   Receive                                                |  Transmit",
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
            "    lo:       5       1    0    0    0     0          0         0        5       1    0    0    0     0       0          0",
            "  eth0:    1000      10    1    2    0     0          0         0      300       3    4    5    0     0       0          0",
        ]
        .join("\n");
        let n = parse_net_dev(&dev);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].0, "eth0");
        assert_eq!(
            n[0].1,
            NetCounters {
                rx_bytes: 1000,
                rx_packets: 10,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 300,
                tx_packets: 3,
                tx_errors: 4,
                tx_dropped: 5
            }
        );
    }

    #[test]
    fn signals_normalize() {
        assert_eq!(normalize_signal("SIGTERM").unwrap(), "TERM");
        assert_eq!(normalize_signal("kill").unwrap(), "KILL");
        assert_eq!(normalize_signal("9").unwrap(), "9");
        assert!(normalize_signal("SIGNOPE").is_err());
        assert!(normalize_signal("99").is_err());
    }
}
