//! Turns a [`ContainerConfig`] plus an image rootfs into an OCI runtime spec
//! (`config.json`) with Docker's defaults: namespaces, mounts, capabilities,
//! masked paths, seccomp, devices, rlimits, user, env and cgroup limits.
//!
//! It writes the container's `hosts`, `hostname` and `resolv.conf` into the
//! container directory (they are bind-mounted into the container). It must
//! never mount anything, start processes or modify the image's rootfs.
//!
//! DNS note: a container in its own network namespace cannot reach a
//! resolver on the host's loopback (127.x, e.g. systemd-resolved's
//! 127.0.0.53). Such nameservers are dropped from the copied resolv.conf
//! (systemd-resolved's upstream list is used when present); if none remain,
//! the file keeps only search/options lines and a comment saying why, and
//! berth's network layer is expected to supply a resolver.

use crate::config::{ContainerConfig, MountKind, Resources};
use crate::error::{IoContext, Result, RuntimeError};
use crate::seccomp;
use berth_archive::perms;
use oci_spec::runtime::Spec;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Once;

/// PATH used when the image does not set one (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set (CapEff 00000000a80425fb).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, in bit order (bit n = ALL_CAPS[n]).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Paths Docker hides from containers (bind-mounted over with /dev/null or an empty tmpfs).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only inside containers.
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Where `--init`'s binary is bound inside the container (on the /dev tmpfs,
/// so the image's file system is never touched).
pub const INIT_PATH_IN_CONTAINER: &str = "/dev/init";

/// Host locations searched for a tiny init for `--init`, in order.
pub const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/bin/tini",
    "/usr/local/bin/tini",
    "/usr/libexec/podman/catatonit",
    "/usr/bin/catatonit",
    "/usr/libexec/catatonit/catatonit",
    "/usr/bin/docker-init",
];

/// Default `RLIMIT_NOFILE` (containerd's), clamped to what this process may set.
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// Normalizes "chown", "CAP_CHOWN", "cap_chown" to "CAP_CHOWN"; "all" to "ALL".
pub fn normalize_cap(name: &str) -> Result<String> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(RuntimeError::InvalidConfig(format!(
            "unknown capability {name:?} (see capabilities(7) for the names)"
        )))
    }
}

/// The capability set Docker grants: defaults, plus `cap_add`, minus `cap_drop`
/// (`ALL` allowed on either side; `--cap-drop ALL --cap-add X` leaves only X).
pub fn effective_caps(cfg: &ContainerConfig) -> Result<BTreeSet<String>> {
    if cfg.privileged {
        return Ok(grantable_caps());
    }
    let add: Vec<String> = cfg.cap_add.iter().map(|c| normalize_cap(c)).collect::<Result<_>>()?;
    let drop: Vec<String> = cfg.cap_drop.iter().map(|c| normalize_cap(c)).collect::<Result<_>>()?;
    let mut caps: BTreeSet<String> = if drop.iter().any(|c| c == "ALL") {
        BTreeSet::new()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    for c in &drop {
        caps.remove(c);
    }
    if add.iter().any(|c| c == "ALL") {
        caps.extend(grantable_caps());
        for c in drop.iter().filter(|c| *c != "ALL") {
            caps.remove(c);
        }
    }
    caps.extend(add.into_iter().filter(|c| c != "ALL"));
    Ok(caps)
}

/// "All capabilities" means all this process may hand on (its bounding
/// set), as in Podman: a host that withholds one (e.g. CAP_SYS_RESOURCE in
/// a sandbox) would otherwise make every `--privileged` start fail.
pub(crate) fn grantable_caps() -> BTreeSet<String> {
    let mask = own_cap_mask("CapBnd:").unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// One of this process's capability masks in /proc/self/status
/// (`field` is e.g. "CapEff:").
pub(crate) fn own_cap_mask(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let v = status.lines().find_map(|l| l.strip_prefix(field))?;
    u64::from_str_radix(v.trim(), 16).ok()
}

/// The capability bit mask for a set of names (what /proc/<pid>/status shows as CapEff).
pub fn cap_mask(caps: &BTreeSet<String>) -> u64 {
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(_, c)| caps.contains(**c))
        .fold(0u64, |m, (i, _)| m | (1u64 << i))
}

/// A user resolved against the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
    pub name: Option<String>,
}

/// The user a container's process (its own, or an exec'd one) runs as:
/// [`resolve_user`], with the primary group a supplementary one too,
/// first, as Docker's process has it (`id` shows `groups=GID`). Only as
/// root: runc refuses any supplementary group to a rootless container.
pub fn resolve_process_user(rootfs: &Path, user: &str) -> Result<ResolvedUser> {
    let mut u = resolve_user(rootfs, user)?;
    if rustix::process::geteuid().is_root() {
        u.additional_gids.retain(|g| *g != u.gid);
        u.additional_gids.insert(0, u.gid);
    }
    Ok(u)
}

/// Reads a file of the rootfs without following symlinks out of it.
fn read_in_root(rootfs: &Path, rel: &str) -> Option<String> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let _ = CWD;
    let fd = openat2(
        &root,
        rel.trim_start_matches('/'),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
    .ok()?;
    let mut s = String::new();
    use std::io::Read;
    std::fs::File::from(fd).read_to_string(&mut s).ok()?;
    Some(s)
}

/// Resolves `uid[:gid]` / `name[:group]` against the rootfs' /etc/passwd
/// and /etc/group, including the supplementary groups listing the user
/// (Docker's rules: a numeric uid needs no passwd entry; a name must
/// exist).
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<ResolvedUser> {
    let passwd = read_in_root(rootfs, "/etc/passwd").unwrap_or_default();
    let group = read_in_root(rootfs, "/etc/group").unwrap_or_default();
    let user = if user.is_empty() { "0" } else { user };
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    // passwd: name:x:uid:gid:gecos:home:shell
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let found = entries
        .iter()
        .find(|f| f[0] == u || (u.parse::<u32>().ok().is_some() && f[2].parse::<u32>().ok() == u.parse::<u32>().ok()));
    let (uid, mut gid, home, name) = match (u.parse::<u32>(), found) {
        (_, Some(f)) => (
            f[2].parse::<u32>().map_err(|_| RuntimeError::UserNotFound {
                user: user.into(),
                reason: format!("bad uid {:?} in /etc/passwd", f[2]),
            })?,
            f[3].parse::<u32>().unwrap_or(0),
            f.get(5).copied().unwrap_or("/").to_string(),
            Some(f[0].to_string()),
        ),
        (Ok(n), None) => (n, 0, "/".to_string(), None),
        (Err(_), None) => {
            return Err(RuntimeError::UserNotFound {
                user: user.into(),
                reason: "no matching entries in passwd file".into(),
            })
        }
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| RuntimeError::UserNotFound {
                    user: user.into(),
                    reason: format!("group {g:?} not found in /etc/group"),
                })?,
        };
    }
    let mut additional_gids = Vec::new();
    if let (Some(n), None) = (&name, g) {
        for f in &groups {
            let members = f.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == n) {
                if let Ok(id) = f[2].parse::<u32>() {
                    if id != gid && !additional_gids.contains(&id) {
                        additional_gids.push(id);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
        name,
    })
}

/// `--group-add`: each group by number, or by a name of the rootfs'
/// /etc/group (a name it lacks is refused, as Docker refuses it).
pub fn resolve_groups(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let table = read_in_root(rootfs, "/etc/group").unwrap_or_default();
    groups
        .iter()
        .map(|g| {
            if let Ok(n) = g.parse::<u32>() {
                return Ok(n);
            }
            table
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| RuntimeError::GroupNotFound(g.clone()))
        })
        .collect()
}

fn warn_once(once: &'static Once, msg: String) {
    once.call_once(|| log::warn!("{msg}"));
}

static NOFILE_WARN: Once = Once::new();
static APPARMOR_WARN: Once = Once::new();

fn rlimit_resource(name: &str) -> Option<(&'static str, rustix::process::Resource)> {
    use rustix::process::Resource as R;
    Some(match name.to_ascii_lowercase().trim_start_matches("rlimit_") {
        "cpu" => ("RLIMIT_CPU", R::Cpu),
        "fsize" => ("RLIMIT_FSIZE", R::Fsize),
        "data" => ("RLIMIT_DATA", R::Data),
        "stack" => ("RLIMIT_STACK", R::Stack),
        "core" => ("RLIMIT_CORE", R::Core),
        "rss" => ("RLIMIT_RSS", R::Rss),
        "nproc" => ("RLIMIT_NPROC", R::Nproc),
        "nofile" => ("RLIMIT_NOFILE", R::Nofile),
        "memlock" => ("RLIMIT_MEMLOCK", R::Memlock),
        "as" => ("RLIMIT_AS", R::As),
        "locks" => ("RLIMIT_LOCKS", R::Locks),
        "sigpending" => ("RLIMIT_SIGPENDING", R::Sigpending),
        "msgqueue" => ("RLIMIT_MSGQUEUE", R::Msgqueue),
        "nice" => ("RLIMIT_NICE", R::Nice),
        "rtprio" => ("RLIMIT_RTPRIO", R::Rtprio),
        "rttime" => ("RLIMIT_RTTIME", R::Rttime),
        _ => return None,
    })
}

/// Whether this process can raise rlimits past their hard limit.
fn has_sys_resource() -> bool {
    own_cap_mask("CapEff:").is_some_and(|m| m & (1 << 24) != 0)
}

/// The rlimits for the container: nofile default plus `--ulimit`s, each
/// clamped to this process's hard limit when it cannot raise it (no
/// CAP_SYS_RESOURCE), with one warning.
fn rlimits(cfg: &ContainerConfig) -> Result<Vec<Value>> {
    // (name, resource, soft, hard, asked for by the user)
    let mut wanted: Vec<(&'static str, rustix::process::Resource, u64, u64, bool)> = Vec::new();
    let (n, r) = rlimit_resource("nofile").expect("nofile is known");
    wanted.push((n, r, DEFAULT_NOFILE, DEFAULT_NOFILE, false));
    for (name, soft, hard) in &cfg.resources.ulimits {
        let (n, r) = rlimit_resource(name).ok_or_else(|| {
            RuntimeError::InvalidConfig(format!(
                "unknown ulimit {name:?} (use e.g. nofile, nproc, core, memlock, stack)"
            ))
        })?;
        if soft > hard {
            return Err(RuntimeError::InvalidConfig(format!(
                "ulimit {name}: soft limit {soft} is greater than hard limit {hard}"
            )));
        }
        wanted.retain(|w| w.0 != n);
        wanted.push((n, r, *soft, *hard, true));
    }
    let can_raise = has_sys_resource();
    let mut out = Vec::new();
    for (name, res, mut soft, mut hard, asked) in wanted {
        if !can_raise {
            if let Some(max) = rustix::process::getrlimit(res).maximum {
                // The default is quietly fitted to the host; only a limit the
                // user asked for is worth a warning.
                if hard > max {
                    if asked {
                        warn_once(
                            &NOFILE_WARN,
                            format!(
                                "{name} hard limit {hard} exceeds this host's limit {max} and berth lacks CAP_SYS_RESOURCE; clamping to {max}"
                            ),
                        );
                    }
                    hard = max;
                    soft = soft.min(max);
                }
            }
        }
        out.push(json!({"type": name, "hard": hard, "soft": soft}));
    }
    Ok(out)
}

/// Writes `content` to `path` atomically (tmp + rename) with exactly
/// `mode` (see `berth_archive::perms`).
pub(crate) fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    perms::write_atomic(path, content, mode).ctx(|| format!("writing {}", path.display()))
}

/// The resolv.conf for a container: the host's, minus loopback nameservers
/// when the container has its own network namespace.
pub fn container_resolv_conf(host_resolv: &str, own_netns: bool) -> String {
    if !own_netns {
        return host_resolv.to_string();
    }
    let mut out = String::new();
    let mut dropped = Vec::new();
    let mut kept = 0;
    for line in host_resolv.lines() {
        let t = line.trim();
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            if ns.starts_with("127.") || ns == "::1" {
                dropped.push(ns.to_string());
                continue;
            }
            kept += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if kept == 0 && !dropped.is_empty() {
        out.push_str(&format!(
            "# berth: the host's nameserver(s) {} are on its loopback and unreachable from this container's network namespace\n",
            dropped.join(", ")
        ));
    }
    out
}

/// The host's switch for IPv6 on every interface; missing without IPv6.
const IPV6_ALL: &str = "/proc/sys/net/ipv6/conf/all/disable_ipv6";

/// The container's `linux.sysctl`: its `--sysctl`s and, when the runtime
/// makes its network namespace (`none`, a private loopback), IPv6 off in
/// it, as dockerd 20.10 leaves a namespace on no IPv6 network (a namespace
/// berth makes for bridge networks gets that from berth-net, which turns
/// IPv6 back on for an IPv6 network's interface). A `--sysctl` of
/// `net.ipv6.conf.all.disable_ipv6` leaves both to the user, as dockerd
/// does.
fn sysctls(cfg: &ContainerConfig, runtime_made_netns: bool) -> std::collections::BTreeMap<String, String> {
    const ALL: &str = "net.ipv6.conf.all.disable_ipv6";
    let mut out = cfg.sysctl.clone();
    if runtime_made_netns && !out.contains_key(ALL) && Path::new(IPV6_ALL).exists() {
        for key in [ALL, "net.ipv6.conf.default.disable_ipv6"] {
            out.entry(key.to_string()).or_insert_with(|| "1".to_string());
        }
    }
    out
}

fn network_mode(cfg: &ContainerConfig) -> (bool, Option<String>) {
    // (own new netns?, path to join)
    match cfg.network_mode.as_str() {
        "host" => (false, None),
        m => {
            if let Some(p) = m.strip_prefix("ns:").or_else(|| m.strip_prefix("netns:")) {
                (false, Some(p.to_string()))
            } else {
                (true, None)
            }
        }
    }
}

fn write_etc_files(cfg: &ContainerConfig, hostname: &str, container_dir: &Path) -> Result<()> {
    let (own_netns, joined) = network_mode(cfg);
    let host_net = !own_netns && joined.is_none();
    let hosts = if host_net {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| "127.0.0.1\tlocalhost\n".into())
    } else {
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.0.1\t{hostname}\n"
        )
    };
    // Bound into the container, where its non-root users read them.
    write_atomic(&container_dir.join("hosts"), hosts.as_bytes(), perms::MOUNTED_FILE)?;
    write_atomic(
        &container_dir.join("hostname"),
        format!("{hostname}\n").as_bytes(),
        perms::MOUNTED_FILE,
    )?;
    let mut host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if !host_net && host_resolv.lines().any(|l| l.trim().starts_with("nameserver 127.")) {
        if let Ok(upstream) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
            host_resolv = upstream;
        }
    }
    write_atomic(
        &container_dir.join("resolv.conf"),
        container_resolv_conf(&host_resolv, !host_net).as_bytes(),
        perms::MOUNTED_FILE,
    )
}

/// Parses a `--device host[:container[:perms]]` value into (OCI device, cgroup rule).
fn device_entry(spec: &str) -> Result<(Value, Value)> {
    let parts: Vec<&str> = spec.split(':').collect();
    let host = parts[0];
    let (ctr, perms) = match parts.len() {
        1 => (host, "rwm"),
        2 if parts[1].chars().all(|c| "rwm".contains(c)) && !parts[1].starts_with('/') => (host, parts[1]),
        2 => (parts[1], "rwm"),
        _ => (parts[1], parts[2]),
    };
    let md = std::fs::metadata(host).ctx(|| format!("--device {spec}: cannot stat {host}"))?;
    let ft = md.file_type();
    let t = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return Err(RuntimeError::InvalidConfig(format!(
            "--device {spec}: {host} is not a device node"
        )));
    };
    let rdev = md.rdev();
    let (maj, min) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    Ok((
        json!({"path": ctr, "type": t, "major": maj, "minor": min,
               "fileMode": md.mode() & 0o7777, "uid": md.uid(), "gid": md.gid()}),
        json!({"allow": true, "type": t, "major": maj, "minor": min, "access": perms}),
    ))
}

/// All device nodes under the host's /dev (for `--privileged`).
fn host_devices() -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let ft = md.file_type();
            if ft.is_dir() {
                let name = e.file_name();
                if !matches!(name.to_str(), Some("pts" | "shm" | "mqueue" | "fd")) {
                    stack.push(p);
                }
                continue;
            }
            let t = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            let s = p.to_string_lossy();
            if s == "/dev/console" || s == "/dev/ptmx" || s.starts_with("/dev/tty") && s != "/dev/tty" {
                continue;
            }
            out.push(json!({"path": s, "type": t, "major": rustix::fs::major(md.rdev()),
                            "minor": rustix::fs::minor(md.rdev()), "fileMode": md.mode() & 0o7777,
                            "uid": md.uid(), "gid": md.gid()}));
        }
    }
    out
}

/// Finds the host binary used for `--init`.
pub fn find_init() -> Result<PathBuf> {
    INIT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            RuntimeError::Unsupported(format!(
                "--init needs a tiny init on the host and none was found (looked for {}); install tini (apt install tini) or catatonit",
                INIT_CANDIDATES.join(", ")
            ))
        })
}

/// Reads this user's subordinate id range from /etc/subuid or /etc/subgid.
fn subid_range(file: &str, id: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
        p.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[2] == id.to_string())
            .map(|f| f[0].to_string())
    });
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        if f.len() == 3 && (f[0] == id.to_string() || Some(f[0]) == name.as_deref()) {
            Some((f[1].parse().ok()?, f[2].parse().ok()?))
        } else {
            None
        }
    })
}

/// A `--device-cgroup-rule` (`c 1:3 rwm`, `b *:* m`) as an OCI device rule.
pub fn device_cgroup_rule(rule: &str) -> Result<Value> {
    let bad = || RuntimeError::InvalidConfig(format!("invalid device cgroup format '{rule}'"));
    let mut parts = rule.split(' ');
    let (Some(kind), Some(numbers), Some(access), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !matches!(kind, "a" | "b" | "c")
        || access.is_empty()
        || access.len() > 3
        || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
    {
        return Err(bad());
    }
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let mut out = json!({"allow": true, "type": kind, "access": access});
    for (key, n) in [("major", major), ("minor", minor)] {
        if n != "*" {
            out[key] = json!(n.parse::<i64>().map_err(|_| bad())?);
        }
    }
    Ok(out)
}

/// Whether the host runs cgroup v2 only.
pub fn cgroup_v2_unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The cgroups path berth uses for a container: `/berth/<id>`, or
/// `<parent>/<id>` with `--cgroup-parent` (a relative parent taken from
/// the root of each hierarchy, as Docker's cgroupfs driver does).
pub fn cgroups_path(cfg: &ContainerConfig) -> String {
    match cfg.resources.cgroup_parent.as_deref().map(|p| p.trim_matches('/')) {
        Some("") => format!("/{}", cfg.id),
        Some(p) => format!("/{p}/{}", cfg.id),
        None => format!("/berth/{}", cfg.id),
    }
}

/// Whether the kernel schedules real-time tasks per cgroup (cgroup v1's
/// `cpu.rt_runtime_us`), which `--cpu-rt-period`/`--cpu-rt-runtime` need.
pub fn cpu_realtime_supported() -> bool {
    !cgroup_v2_unified() && Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists()
}

fn parse_security_opts(cfg: &ContainerConfig) -> Result<(Option<Option<PathBuf>>, bool)> {
    // (seccomp: None = default, Some(None) = unconfined, Some(Some(p)) = file ; no_new_privs)
    let mut seccomp = None;
    let mut nnp = false;
    for opt in &cfg.security_opt {
        let (k, v) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
        match k {
            "seccomp" if v == "unconfined" => seccomp = Some(None),
            "seccomp" if !v.is_empty() => seccomp = Some(Some(PathBuf::from(v))),
            "no-new-privileges" => nnp = v.is_empty() || v == "true",
            "apparmor" | "label" => warn_once(
                &APPARMOR_WARN,
                format!("--security-opt {opt}: AppArmor/SELinux options are ignored by berth"),
            ),
            _ => {
                return Err(RuntimeError::InvalidConfig(format!(
                    "unknown --security-opt {opt:?} (supported: seccomp=<path>|unconfined, no-new-privileges, apparmor=..., label=...)"
                )))
            }
        }
    }
    Ok((seccomp, nnp))
}

fn bind_opts(readonly: bool, propagation: &str) -> Vec<String> {
    let mut o = vec!["rbind".to_string()];
    o.push(if propagation.is_empty() {
        "rprivate".to_string()
    } else {
        propagation.to_string()
    });
    o.push(if readonly { "ro" } else { "rw" }.to_string());
    o
}

/// The OCI `linux.resources` entries for `r`: `memory`, `cpu` and `pids`,
/// each only when limited.
pub fn resource_limits(r: &Resources) -> Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    let mut m = json!({});
    if let Some(mem) = r.memory.filter(|m| *m > 0) {
        m["limit"] = json!(mem);
        let swap = match r.memory_swap {
            Some(-1) => Some(-1),
            Some(s) if s > 0 => {
                if s < mem {
                    return Err(RuntimeError::InvalidConfig(
                        "--memory-swap must be larger than or equal to --memory (it is memory + swap)".into(),
                    ));
                }
                Some(s)
            }
            _ => Some(mem.saturating_mul(2)),
        };
        let swap_supported =
            cgroup_v2_unified() || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
        if let Some(s) = swap {
            if swap_supported {
                m["swap"] = json!(s);
            } else {
                log::warn!("this kernel has no swap accounting; --memory-swap is ignored");
            }
        }
    }
    if let Some(res) = r.memory_reservation.filter(|m| *m > 0) {
        m["reservation"] = json!(res);
    }
    if let Some(sw) = r.memory_swappiness {
        m["swappiness"] = json!(sw);
    }
    if r.oom_kill_disable {
        m["disableOOMKiller"] = json!(true);
    }
    if m.as_object().is_some_and(|o| !o.is_empty()) {
        out.insert("memory".into(), m);
    }
    let mut cpu = serde_json::Map::new();
    if let Some(c) = r.cpus.filter(|c| *c > 0.0) {
        cpu.insert("period".into(), json!(100_000u64));
        cpu.insert("quota".into(), json!((c * 100_000.0).round() as i64));
    }
    if let Some(p) = r.cpu_period.filter(|p| *p > 0) {
        cpu.insert("period".into(), json!(p));
    }
    if let Some(q) = r.cpu_quota.filter(|q| *q > 0) {
        cpu.insert("quota".into(), json!(q));
    }
    if let Some(c) = r.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(m) = r.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
        cpu.insert("mems".into(), json!(m));
    }
    if let Some(s) = r.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(p) = r.cpu_rt_period.filter(|p| *p > 0) {
        cpu.insert("realtimePeriod".into(), json!(p));
    }
    if let Some(rt) = r.cpu_rt_runtime.filter(|rt| *rt != 0) {
        cpu.insert("realtimeRuntime".into(), json!(rt));
    }
    if !cpu.is_empty() {
        out.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = r.pids_limit.filter(|p| *p > 0) {
        out.insert("pids".into(), json!({"limit": p}));
    }
    if !r.blkio.is_empty() {
        let b = &r.blkio;
        let rates = |v: &[(i64, i64, u64)]| -> Value {
            v.iter()
                .map(|(major, minor, rate)| json!({"major": major, "minor": minor, "rate": rate}))
                .collect()
        };
        let mut io = json!({
            "weightDevice": b.weight_device.iter()
                .map(|(major, minor, weight)| json!({"major": major, "minor": minor, "weight": weight}))
                .collect::<Vec<_>>(),
            "throttleReadBpsDevice": rates(&b.read_bps),
            "throttleWriteBpsDevice": rates(&b.write_bps),
            "throttleReadIOPSDevice": rates(&b.read_iops),
            "throttleWriteIOPSDevice": rates(&b.write_iops),
        });
        if let Some(w) = b.weight {
            io["weight"] = json!(w);
        }
        out.insert("blockIO".into(), io);
    }
    Ok(out)
}

/// Builds the OCI runtime spec for `cfg`, with `rootfs` as the root file
/// system, writing hosts/hostname/resolv.conf into `container_dir`.
pub fn build_spec(cfg: &ContainerConfig, rootfs: &Path, container_dir: &Path) -> Result<Spec> {
    if cfg.args.is_empty() {
        return Err(RuntimeError::InvalidConfig(
            "no command specified: the image has no ENTRYPOINT or CMD; give a command after the image name".into(),
        ));
    }
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    let rootless = euid != 0;
    let hostname = if !cfg.hostname.is_empty() {
        cfg.hostname.clone()
    } else {
        cfg.id.chars().take(12).collect()
    };
    let (own_netns, join_netns) = network_mode(cfg);
    let mut user = resolve_process_user(rootfs, &cfg.user)?;
    for g in resolve_groups(rootfs, &cfg.group_add)? {
        if !user.additional_gids.contains(&g) {
            user.additional_gids.push(g);
        }
    }
    let caps = effective_caps(cfg)?;
    let (seccomp_opt, no_new_privs) = parse_security_opts(cfg)?;

    // Environment: Docker's defaults, the container's entries laid over
    // them (a bare KEY unsets it), then HOME from the user's entry.
    let mut env = vec![format!("PATH={DEFAULT_PATH}"), format!("HOSTNAME={hostname}")];
    if cfg.tty {
        env.push("TERM=xterm".into());
    }
    crate::config::replace_or_append_env(&mut env, &cfg.env);
    let has = |env: &Vec<String>, k: &str| env.iter().any(|e| crate::config::env_key(e) == k);
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", if user.home.is_empty() { "/" } else { &user.home }));
    }

    let mut args = cfg.args.clone();
    let mut mounts: Vec<Value> = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid","noexec","nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]}),
        if rootless {
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]})
        } else {
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]})
        },
    ];
    // A host path bound in, as the host's or another container's share is.
    let bind = |destination: &str, source: Value| json!({"destination": destination, "type": "bind", "source": source, "options": ["rbind","nosuid","noexec","nodev"]});
    // /dev/shm and /dev/mqueue belong with the IPC namespace: a shared one
    // brings its owner's (the host's, another container's).
    match cfg.ipc_mode.as_str() {
        "none" => {}
        "host" => mounts.push(bind("/dev/shm", json!("/dev/shm"))),
        // Made beside the container (crate::mount::mount_shm) by its start;
        // a joined one is its owner's, pointed at by each start.
        "shareable" => mounts.push(bind("/dev/shm", json!(container_dir.join(crate::mount::SHM_DIR)))),
        // The owner's is set by each start; a path that does not exist
        // until then, so a start that did not set it fails, binding nothing.
        m if m.starts_with("ns:") => mounts.push(bind("/dev/shm", json!(container_dir.join("ipc-owner-shm")))),
        _ => mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid","noexec","nodev","mode=1777",
            format!("size={}k", cfg.shm_size.map_or(65536, |b| b.div_ceil(1024)))]})),
    }
    // The host's message queues are its /dev/mqueue, bound where it has one
    // (a rootless user may not mount the host's IPC namespace's).
    match (cfg.ipc_mode.as_str(), Path::new("/dev/mqueue").is_dir()) {
        ("host", true) => mounts.push(bind("/dev/mqueue", json!("/dev/mqueue"))),
        ("host", false) if rootless => {}
        _ => mounts.push(json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid","noexec","nodev"]})),
    }
    if cfg.pid_mode == "host" && (rootless || cfg.id_mappings.is_some()) {
        // A new procfs of the host's PID namespace needs the host's user
        // namespace: its /proc is bound instead (masked paths still apply).
        mounts[0] = bind("/proc", json!("/proc"));
    }
    let sys_ro = if cfg.privileged { "rw" } else { "ro" };
    // sysfs can only be mounted by a user namespace that owns the network
    // namespace: with the host's network, the host's /sys is bound.
    let own_userns = rootless || cfg.id_mappings.is_some();
    // A joined namespace (a bridge network's, another container's) is
    // owned by the host's user namespace too.
    if own_userns && !own_netns {
        mounts.push(json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind","nosuid","noexec","nodev", sys_ro]}));
    } else {
        mounts.push(json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid","noexec","nodev", sys_ro]}));
    }
    mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid","noexec","nodev","relatime", sys_ro]}));

    write_etc_files(cfg, &hostname, container_dir)?;
    let user_targets: BTreeSet<String> = cfg
        .mounts
        .iter()
        .map(|m| m.target.trim_end_matches('/').to_string())
        .collect();
    mounts.retain(|m| !user_targets.contains(m["destination"].as_str().unwrap_or("")));
    for f in ["hosts", "hostname", "resolv.conf"] {
        let dest = format!("/etc/{f}");
        if !user_targets.contains(&dest) {
            let src = container_dir.join(f);
            mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind","rprivate", if cfg.read_only { "ro" } else { "rw" }]}));
        }
    }
    for m in &cfg.mounts {
        if !m.target.starts_with('/') {
            return Err(RuntimeError::InvalidConfig(format!(
                "mount target {:?} must be an absolute path",
                m.target
            )));
        }
        match m.kind {
            MountKind::Bind | MountKind::Volume => {
                if !m.source.exists() {
                    return Err(RuntimeError::InvalidConfig(format!(
                        "bind source path does not exist: {} (create it first or use a named volume)",
                        m.source.display()
                    )));
                }
                mounts.push(json!({"destination": m.target, "type": "bind", "source": m.source,
                                   "options": bind_opts(m.readonly, &m.propagation)}));
            }
            MountKind::Tmpfs => {
                let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
                for x in &m.options {
                    if x == "exec" {
                        o.retain(|y| y != "noexec");
                    } else if x == "suid" {
                        o.retain(|y| y != "nosuid");
                    } else if x == "dev" {
                        o.retain(|y| y != "nodev");
                    } else {
                        o.push(x.clone());
                    }
                }
                if m.readonly {
                    o.push("ro".into());
                }
                mounts.push(json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": o}));
            }
        }
    }
    if cfg.init {
        let init = find_init()?;
        mounts.push(json!({"destination": INIT_PATH_IN_CONTAINER, "type": "bind", "source": init, "options": ["bind","ro","nosuid","nodev"]}));
        let mut a = vec![INIT_PATH_IN_CONTAINER.to_string(), "--".to_string()];
        a.append(&mut args);
        args = a;
    }

    // Namespaces.
    // Each its own, the host's (none listed) or one joined by path.
    let mut namespaces = vec![json!({"type": "mount"})];
    for (kind, mode) in [
        ("pid", &cfg.pid_mode),
        ("uts", &cfg.uts_mode),
        ("ipc", &cfg.ipc_mode),
        ("cgroup", &cfg.cgroupns_mode),
    ] {
        match mode.strip_prefix("ns:") {
            _ if mode == "host" => {}
            Some(path) => namespaces.push(json!({"type": kind, "path": path})),
            // Its own ("", and for IPC "shareable" and "none").
            None => namespaces.push(json!({"type": kind})),
        }
    }
    if own_netns {
        namespaces.push(json!({"type": "network"}));
    } else if let Some(p) = &join_netns {
        namespaces.push(json!({"type": "network", "path": p}));
    }
    let mut uid_mappings = Vec::new();
    let mut gid_mappings = Vec::new();
    if let Some(m) = &cfg.id_mappings {
        namespaces.push(json!({"type": "user"}));
        uid_mappings = m.uid.iter().map(|x| json!(x)).collect();
        gid_mappings = m.gid.iter().map(|x| json!(x)).collect();
    } else if rootless {
        namespaces.push(json!({"type": "user"}));
        uid_mappings.push(json!({"containerID": 0, "hostID": euid, "size": 1}));
        gid_mappings.push(json!({"containerID": 0, "hostID": egid, "size": 1}));
        if let Some((start, count)) = subid_range("/etc/subuid", euid) {
            uid_mappings.push(json!({"containerID": 1, "hostID": start, "size": count.min(65536)}));
        }
        if let Some((start, count)) = subid_range("/etc/subgid", euid) {
            gid_mappings.push(json!({"containerID": 1, "hostID": start, "size": count.min(65536)}));
        }
    }

    // Devices and their cgroup rules.
    let mut devices: Vec<Value> = Vec::new();
    let mut dev_rules: Vec<Value> = Vec::new();
    if cfg.privileged && !rootless {
        devices = host_devices();
        dev_rules.push(json!({"allow": true, "access": "rwm"}));
    } else {
        dev_rules.push(json!({"allow": false, "access": "rwm"}));
        for (t, maj, min, acc) in [
            ("c", Some(1), Some(3), "rwm"), // null
            ("c", Some(1), Some(5), "rwm"), // zero
            ("c", Some(1), Some(7), "rwm"), // full
            ("c", Some(1), Some(8), "rwm"), // random
            ("c", Some(1), Some(9), "rwm"), // urandom
            ("c", Some(5), Some(0), "rwm"), // tty
            ("c", Some(5), Some(1), "rwm"), // console
            ("c", Some(5), Some(2), "rwm"), // ptmx
            ("c", Some(136), None, "rwm"),  // pts/*
            ("c", None, None, "m"),         // mknod of char devices
            ("b", None, None, "m"),         // mknod of block devices
        ] {
            let mut r = json!({"allow": true, "type": t, "access": acc});
            if let Some(m) = maj {
                r["major"] = json!(m);
            }
            if let Some(m) = min {
                r["minor"] = json!(m);
            }
            dev_rules.push(r);
        }
    }
    for rule in &cfg.resources.device_cgroup_rules {
        dev_rules.push(device_cgroup_rule(rule)?);
    }
    for d in &cfg.devices {
        let (dev, rule) = device_entry(d)?;
        devices.push(dev);
        dev_rules.push(rule);
    }

    // Resources.
    let mut resources = limits_json(&cfg.resources)?;
    resources["devices"] = json!(dev_rules);

    let cap_list: Vec<&String> = caps.iter().collect();
    let mut process = json!({
        "terminal": cfg.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": env,
        "cwd": if cfg.working_dir.is_empty() { "/" } else { cfg.working_dir.as_str() },
        "capabilities": {"bounding": cap_list, "effective": cap_list, "permitted": cap_list},
        "rlimits": rlimits(cfg)?,
        "noNewPrivileges": no_new_privs,
    });
    if !user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(user.additional_gids);
    }
    if let Some(adj) = cfg.resources.oom_score_adj {
        process["oomScoreAdj"] = json!(adj);
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "devices": devices,
    });
    if !rootless {
        linux["cgroupsPath"] = json!(cgroups_path(cfg));
    }
    let sysctl = sysctls(cfg, own_netns && join_netns.is_none());
    if !sysctl.is_empty() {
        linux["sysctl"] = json!(sysctl);
    }
    if own_userns {
        linux["uidMappings"] = json!(uid_mappings);
        linux["gidMappings"] = json!(gid_mappings);
    }
    if !cfg.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        let profile = match seccomp_opt {
            None => Some(seccomp::default_profile(&caps)?),
            Some(None) => None,
            Some(Some(p)) => Some(seccomp::load_profile(&p)?),
        };
        if let Some(p) = profile {
            linux["seccomp"] = serde_json::to_value(p).map_err(|e| RuntimeError::InvalidConfig(e.to_string()))?;
        }
    } else if let Some(Some(p)) = seccomp_opt {
        linux["seccomp"] =
            serde_json::to_value(seccomp::load_profile(&p)?).map_err(|e| RuntimeError::InvalidConfig(e.to_string()))?;
    }

    let mut spec = json!({
        "ociVersion": "1.0.2",
        "root": {"path": rootfs, "readonly": cfg.read_only},
        "mounts": mounts,
        "process": process,
        "linux": linux,
        "annotations": cfg.labels.iter().chain(&cfg.annotations).collect::<std::collections::BTreeMap<_, _>>(),
    });
    // A shared UTS namespace keeps the name it has.
    if cfg.uts_mode.is_empty() {
        spec["hostname"] = json!(hostname);
        if !cfg.domainname.is_empty() {
            spec["domainname"] = json!(cfg.domainname);
        }
    }
    serde_json::from_value(spec).map_err(|e| {
        RuntimeError::InvalidConfig(format!("generated OCI spec does not fit the schema (a berth bug): {e}"))
    })
}

/// [`resource_limits`] as one JSON object: the `linux.resources` a
/// container is created with (devices are added by [`build_spec`]).
pub fn limits_json(r: &crate::config::Resources) -> Result<Value> {
    resource_limits(r).map(Value::Object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_caps_mask_matches_docker() {
        let caps: BTreeSet<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        assert_eq!(format!("{:016x}", cap_mask(&caps)), "00000000a80425fb");
    }

    #[test]
    fn cap_add_drop_all() {
        let c = ContainerConfig {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["net_admin".into()],
            ..Default::default()
        };
        let caps = effective_caps(&c).unwrap();
        assert_eq!(caps.into_iter().collect::<Vec<_>>(), vec!["CAP_NET_ADMIN"]);
        let c = ContainerConfig {
            cap_add: vec!["ALL".into()],
            cap_drop: vec!["CAP_SYS_ADMIN".into()],
            ..Default::default()
        };
        let caps = effective_caps(&c).unwrap();
        let all = grantable_caps();
        assert_eq!(caps.len(), all.len() - usize::from(all.contains("CAP_SYS_ADMIN")));
        assert!(!caps.contains("CAP_SYS_ADMIN"));
        let mut c = ContainerConfig {
            cap_drop: vec!["chown".into()],
            ..Default::default()
        };
        let caps = effective_caps(&c).unwrap();
        assert!(!caps.contains("CAP_CHOWN") && caps.contains("CAP_KILL"));
        c.cap_add = vec!["NOPE".into()];
        assert!(effective_caps(&c).is_err());
    }

    #[test]
    fn resolv_conf_drops_loopback_resolvers() {
        let host = "search example.com\nnameserver 127.0.0.53\noptions edns0\n";
        let c = container_resolv_conf(host, true);
        assert!(!c.contains("nameserver 127.0.0.53\n"));
        assert!(c.contains("search example.com") && c.contains("unreachable"));
        assert_eq!(container_resolv_conf(host, false), host);
        let c = container_resolv_conf("nameserver 10.0.0.1\nnameserver 127.0.0.1\n", true);
        assert_eq!(c, "nameserver 10.0.0.1\n");
    }
}
