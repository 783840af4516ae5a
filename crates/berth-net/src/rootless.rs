//! The rootless network namespace: one per user, holding that user's
//! bridges, as Podman has it. An unprivileged user cannot make bridges or
//! firewall rules in the host's namespace, so berth makes them in a network
//! namespace of its own, owned by a user namespace of its own (root in it
//! is the user; the user's `/etc/subuid` range is mapped too, so
//! containers can live inside it), and connects that namespace to the
//! host through `pasta` (Debian's `passt` package): outbound connections
//! leave through pasta's sockets on the host, DNS queries to
//! [`DNS_FORWARD`] reach the host's resolver.
//!
//! A small holder process keeps the namespaces alive (`sleep infinity`,
//! shown as `berth-rootless-netns`); its pid is in `holder.pid` in the
//! directory given (`$XDG_RUNTIME_DIR/berth-rootless-netns`). berth
//! processes reach into it by joining its user namespace first (the
//! forked helper of `netns.rs`, or `setns` between fork and exec).
//!
//! Containers on the user's bridge networks live in this user namespace:
//! a veth can be moved only into a network namespace owned by the user
//! namespace of the one it leaves (or a descendant). berth makes each such
//! container's network namespace from inside the holder's user and mount
//! namespaces ([`RootlessNetns::create_container_netns`]), bind-mounted in
//! the holder's mount namespace and reached from outside through
//! `/proc/<holder>/root` ([`RootlessNetns::view`]); the container's OCI
//! spec then joins the holder's user namespace by path instead of making
//! one of its own, with the same mappings (root is the user, the
//! `/etc/subuid` range after it), so ids mean what they mean in any other
//! rootless container.

use std::ffi::CString;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bridge::{store_tag, NetContext};
use crate::error::{NetError, Result};
use crate::ns::Namespace;

/// The address inside the namespace whose DNS queries pasta forwards to
/// the host's first resolver.
pub const DNS_FORWARD: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// `--dns` servers as a rootless container's queries can reach them.
/// The network's DNS server forwards from the rootless namespace, where
/// the host's loopback is not: `127.0.0.1` becomes `gateway` (pasta maps
/// the namespace's default gateway to the host's loopback), a loopback
/// resolver of the host's `resolv.conf` (`127.0.0.53`) becomes
/// [`DNS_FORWARD`] (pasta forwards it to that resolver). Other loopback
/// addresses cannot be reached: an error says so. Others stay.
pub fn reachable_dns(
    servers: &[std::net::IpAddr],
    gateway: Option<Ipv4Addr>,
    host_resolv: &str,
) -> Result<Vec<std::net::IpAddr>> {
    use std::net::IpAddr;
    let host_ns: Vec<IpAddr> = host_resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    let mut out = Vec::new();
    for s in servers {
        let mapped = match s {
            IpAddr::V4(a) if *a == Ipv4Addr::LOCALHOST && gateway.is_some() => gateway.map(IpAddr::V4),
            IpAddr::V6(a) if a.is_loopback() && gateway.is_some() => gateway.map(IpAddr::V4),
            a if a.is_loopback() && host_ns.first() == Some(a) => Some(IpAddr::V4(DNS_FORWARD)),
            a if a.is_loopback() => None,
            a => Some(*a),
        };
        match mapped {
            Some(m) => {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
            None => {
                return Err(err(format!(
                    "--dns {s}: a rootless container cannot reach this loopback address of the host (only 127.0.0.1 and the host's own resolver are forwarded)"
                )))
            }
        }
    }
    Ok(out)
}

/// What the holder's command line says, to tell it from a reused pid.
const HOLDER_NAME: &str = "berth-rootless-netns";

/// A running rootless network namespace.
#[derive(Clone, Debug)]
pub struct RootlessNetns {
    dir: PathBuf,
    holder: i32,
}

fn err(m: impl Into<String>) -> NetError {
    NetError::Rootless(m.into())
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// `(start, count)` of `name`'s (or `uid`'s) range in /etc/subuid or /etc/subgid.
fn subid(file: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        (f.len() == 3 && (f[0] == name || f[0] == id.to_string()))
            .then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))
            .flatten()
    })
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_default()
}

/// The per-user directory: `$XDG_RUNTIME_DIR/berth-rootless-netns`, or
/// `/tmp/berth-<uid>/rootless-netns` without one.
pub fn default_dir() -> PathBuf {
    let uid = rustix::process::geteuid().as_raw();
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("berth-rootless-netns"),
        None => PathBuf::from(format!("/tmp/berth-{uid}/rootless-netns")),
    }
}

/// The run directory (DNS server files, locks) of the store at
/// `store_root` in the rootless namespace of `dir`, whether or not that
/// namespace runs.
pub fn run_dir(dir: &Path, store_root: &Path) -> PathBuf {
    dir.join(format!("net-{}", store_tag(store_root)))
}

impl RootlessNetns {
    /// The running namespace of `dir`, made (holder and pasta) when there is none.
    pub fn ensure(dir: &Path) -> Result<RootlessNetns> {
        let _lock = crate::lock_file(&dir.join("lock"))?;
        Self::ensure_locked(dir)
    }

    /// [`Self::ensure`] for the store at `store_root`, which is about to use
    /// the namespace: its run directory is made under the same lock, so
    /// [`Self::stop_if_unused`] from another store sees it as a user (a
    /// store with networks but no container yet has one too).
    pub fn ensure_for(dir: &Path, store_root: &Path) -> Result<RootlessNetns> {
        let _lock = crate::lock_file(&dir.join("lock"))?;
        let rl = Self::ensure_locked(dir)?;
        let run_dir = rl.context(store_root).run_dir;
        std::fs::create_dir_all(&run_dir).map_err(|e| NetError::io(format!("creating {}", run_dir.display()), e))?;
        Ok(rl)
    }

    fn ensure_locked(dir: &Path) -> Result<RootlessNetns> {
        if let Some(rl) = Self::running(dir) {
            // pasta gone (killed) while the namespace lives: connect it again.
            if rl.pasta_pid().is_none() {
                rl.start_pasta()?;
            }
            return Ok(rl);
        }
        // A holder that died (kill -9) took its namespace, its bridges and
        // its mounts with it; what still runs in that namespace goes too.
        Self::end_orphans(dir);
        let holder = spawn_holder()?;
        let rl = RootlessNetns {
            dir: dir.to_path_buf(),
            holder,
        };
        std::fs::write(dir.join("holder.pid"), holder.to_string())
            .map_err(|e| NetError::io("writing holder.pid", e))?;
        if let Err(e) = rl.start_pasta() {
            rl.stop();
            return Err(e);
        }
        Ok(rl)
    }

    /// The namespace of `dir` if its holder is alive.
    pub fn running(dir: &Path) -> Option<RootlessNetns> {
        let pid = read_pid(&dir.join("holder.pid"))?;
        cmdline(pid).starts_with(HOLDER_NAME).then(|| RootlessNetns {
            dir: dir.to_path_buf(),
            holder: pid,
        })
    }

    /// The holder's pid (what the port forwarder enters).
    pub fn holder_pid(&self) -> i32 {
        self.holder
    }

    /// The pid of pasta, if it runs.
    pub fn pasta_pid(&self) -> Option<i32> {
        pasta_of(&self.dir)
    }

    /// Ends what an earlier namespace of `dir`, whose holder is gone, left
    /// running: its pasta and the DNS servers of its run directories
    /// (each is this dir's by its command line). Their records stay for
    /// the next server.
    fn end_orphans(dir: &Path) {
        if let Some(p) = pasta_of(dir) {
            // SAFETY: kill(2) on pasta's pid, checked to be this dir's pasta.
            unsafe { libc::kill(p, libc::SIGKILL) };
            for _ in 0..200 {
                if !alive(p) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_file(dir.join("pasta.pid"));
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with("net-") {
                crate::dns::Dns::new(&e.path(), crate::ns::host()).stop();
            }
        }
    }

    /// The network namespace holding the bridges (entered through its user namespace).
    pub fn namespace(&self) -> Namespace {
        Namespace::of_pid(self.holder as u32, true)
    }

    /// The user namespace containers must be created under.
    pub fn userns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/user", self.holder))
    }

    /// A context for one store's networks inside this namespace.
    pub fn context(&self, store_root: &Path) -> NetContext {
        let tag = store_tag(store_root);
        NetContext {
            run_dir: run_dir(&self.dir, store_root),
            lock_dir: self.dir.clone(),
            bridge_ns: self.namespace(),
            tag,
            default_store: false,
            dns_forward: Some(DNS_FORWARD),
            set_ip_forward: false,
            upstream_override: None,
        }
    }

    /// The mount namespace the containers' network namespaces are bind-mounted in.
    fn mntns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/mnt", self.holder))
    }

    /// `path` (a path in the holder's mount namespace) as this process
    /// reaches it: through `/proc/<holder>/root`.
    pub fn view(&self, path: &Path) -> PathBuf {
        let rel = path.strip_prefix("/").unwrap_or(path);
        PathBuf::from(format!("/proc/{}/root", self.holder)).join(rel)
    }

    /// The network namespace bind-mounted at `path` by
    /// [`Self::create_container_netns`], as berth-net enters it.
    pub fn container_namespace(&self, path: &Path) -> Namespace {
        Namespace {
            netns: self.view(path),
            userns: Some(self.userns_path()),
        }
    }

    /// Makes a network namespace owned by the holder's user namespace,
    /// kept by a bind mount at `path` in the holder's mount namespace (a
    /// rootless container's, on bridge networks). Its loopback is brought
    /// up when it is connected.
    pub fn create_container_netns(&self, path: &Path) -> Result<Namespace> {
        crate::ns::make_mount_point(path)?;
        if let Err(e) = self.in_holder(HolderOp::MountNewNetns, path) {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(self.container_namespace(path))
    }

    /// Unmounts and removes what [`Self::create_container_netns`] made
    /// (the kernel frees the namespace, and its veths, with the last user).
    pub fn remove_container_netns(&self, path: &Path) -> Result<()> {
        if path.exists() {
            self.in_holder(HolderOp::Unmount, path)?;
        }
        crate::ns::remove_mount_point(path)
    }

    /// Namespace bind mounts (nsfs) under `dir` in the holder's mount namespace.
    pub fn mounts_under(&self, dir: &Path) -> Vec<PathBuf> {
        crate::ns::nsfs_mounts_under(&format!("/proc/{}/mountinfo", self.holder), dir)
    }

    /// Runs `op` on `path` in a forked child that joined the holder's user
    /// and mount namespaces (a multi-threaded process cannot join a user
    /// namespace; the child is single-threaded).
    fn in_holder(&self, op: HolderOp, path: &Path) -> Result<()> {
        let open = |p: PathBuf| {
            rustix::fs::open(
                &p,
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| NetError::io(format!("opening {}", p.display()), e))
        };
        let user = open(self.userns_path())?;
        let mnt = open(self.mntns_path())?;
        let target = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| err(format!("{} has a NUL byte", path.display())))?;
        let source = cstr("/proc/self/ns/net");
        let (r, w): (OwnedFd, OwnedFd) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| NetError::io("pipe", e))?;
        let (uf, mf, wf) = (user.as_raw_fd(), mnt.as_raw_fd(), w.as_raw_fd());
        // SAFETY: the child makes only raw system calls on integers and on
        // strings prepared above, then _exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(NetError::io("forking", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: see above.
            unsafe { in_holder_child(op, uf, mf, wf, &source, &target) }
        }
        drop(w);
        let mut b = [0u8; 8];
        let got = rustix::io::read(&r, &mut b).unwrap_or(0);
        let mut status = 0;
        // SAFETY: waitpid on the child we forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if got == 8 {
            let step = i32::from_ne_bytes(b[..4].try_into().expect("4 bytes"));
            let errno = i32::from_ne_bytes(b[4..].try_into().expect("4 bytes"));
            let what = [
                "joining the user namespace",
                "joining the mount namespace",
                "unshare(CLONE_NEWNET)",
                "mounting",
                "unmounting",
            ]
            .get(step as usize)
            .copied()
            .unwrap_or("?");
            if op == HolderOp::Unmount && step == 4 && (errno == libc::EINVAL || errno == libc::ENOENT) {
                return Ok(());
            }
            return Err(NetError::io(
                format!("{what} for {} in the rootless network namespace", path.display()),
                std::io::Error::from_raw_os_error(errno),
            ));
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            return Err(err(format!("the helper for {} failed ({status})", path.display())));
        }
        Ok(())
    }

    fn start_pasta(&self) -> Result<()> {
        let pidfile = self.dir.join("pasta.pid");
        let mut cmd = Command::new("pasta");
        cmd.args(["--config-net", "--quiet", "--foreground"])
            .args(["-t", "none", "-u", "none", "-T", "none", "-U", "none"])
            .arg("--dns-forward")
            .arg(DNS_FORWARD.to_string())
            .arg("--pid")
            .arg(&pidfile)
            .arg("--userns")
            .arg(self.userns_path())
            .arg("--netns")
            .arg(format!("/proc/{}/ns/net", self.holder))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: setsid(2) between fork and exec: pasta outlives this process.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| err(format!("starting pasta (install Debian's passt package): {e}")))?;
        // pasta writes its pid file once the namespace is configured.
        for _ in 0..200 {
            if let Ok(Some(st)) = child.try_wait() {
                return Err(err(format!("pasta exited ({st}) before configuring the namespace")));
            }
            if read_pid(&pidfile).is_some() {
                // Reaped by init once we exit; it must not be our zombie meanwhile.
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.kill();
        Err(err("pasta did not configure the namespace within 2 s"))
    }

    /// Stops the namespace when no store has networks in it any more (no
    /// `net-*` run directory is left); true when it was stopped.
    pub fn stop_if_unused(&self) -> bool {
        let Ok(_lock) = crate::lock_file(&self.dir.join("lock")) else {
            return false;
        };
        let used = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("net-"));
        if !used {
            self.stop();
        }
        !used
    }

    /// Ends pasta and the holder (the namespace goes with them), and
    /// waits (up to 2 s) until both are gone.
    pub fn stop(&self) {
        let mut pids = Vec::new();
        if let Some(p) = self.pasta_pid() {
            // SAFETY: kill(2) on pasta's pid, checked to be pasta.
            unsafe { libc::kill(p, libc::SIGTERM) };
            pids.push(p);
        }
        if cmdline(self.holder).starts_with(HOLDER_NAME) {
            // SAFETY: kill(2) on the holder, checked to be ours.
            unsafe { libc::kill(self.holder, libc::SIGKILL) };
            pids.push(self.holder);
        }
        for _ in 0..200 {
            if pids.iter().all(|p| !alive(*p)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(self.dir.join("pasta.pid"));
        let _ = std::fs::remove_file(self.dir.join("holder.pid"));
    }
}

/// The pasta of `dir`, if it runs (its command line names the pid file).
fn pasta_of(dir: &Path) -> Option<i32> {
    let file = dir.join("pasta.pid");
    let pid = read_pid(&file)?;
    let cmd = cmdline(pid);
    (cmd.contains("pasta") && cmd.contains(&*file.to_string_lossy()) && alive(pid)).then_some(pid)
}

/// Running (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// What [`RootlessNetns::in_holder`] does in the holder's namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HolderOp {
    /// A new network namespace, bind-mounted on the target.
    MountNewNetns,
    /// Detach the mount on the target.
    Unmount,
}

/// The child of [`RootlessNetns::in_holder`]. Never returns; reports a
/// failure as (step, errno) on `wf`.
///
/// # Safety
/// Must be called only in a freshly forked child; uses raw system calls only.
unsafe fn in_holder_child(op: HolderOp, uf: i32, mf: i32, wf: i32, source: &CString, target: &CString) -> ! {
    let fail = |step: i32| -> ! {
        let e = *libc::__errno_location();
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&step.to_ne_bytes());
        b[4..].copy_from_slice(&e.to_ne_bytes());
        libc::write(wf, b.as_ptr().cast(), 8);
        libc::_exit(1)
    };
    if libc::setns(uf, libc::CLONE_NEWUSER) != 0 {
        fail(0);
    }
    if libc::setns(mf, libc::CLONE_NEWNS) != 0 {
        fail(1);
    }
    match op {
        HolderOp::MountNewNetns => {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                fail(2);
            }
            // No IPv6 duplicate address detection for the interfaces made
            // in it (best effort, as `ns::create_persistent` does as root).
            let f = libc::open(
                c"/proc/sys/net/ipv6/conf/default/accept_dad".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            if f >= 0 {
                libc::write(f, b"0".as_ptr().cast(), 1);
                libc::close(f);
            }
            // IPv6 off until a network with IPv6 turns it on for its
            // interface (see `ns::ipv6_off_by_default`).
            for p in crate::ns::IPV6_DEFAULT_SWITCHES {
                let f = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if f >= 0 {
                    libc::write(f, b"1".as_ptr().cast(), 1);
                    libc::close(f);
                }
            }
            if libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
            {
                fail(3);
            }
        }
        HolderOp::Unmount => {
            if libc::umount2(target.as_ptr(), libc::MNT_DETACH) != 0 {
                fail(4);
            }
        }
    }
    libc::_exit(0)
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// Forks the holder: new user namespace (mapped by newuidmap/newgidmap
/// from the parent), then new network and mount namespaces, loopback up,
/// IPv4 and IPv6 forwarding on, then `sleep infinity` under the holder's name.
fn spawn_holder() -> Result<i32> {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let name = user_name(uid);
    let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| NetError::io("pipe", e));
    let (to_parent_r, to_parent_w): (OwnedFd, OwnedFd) = pipe()?;
    let (to_child_r, to_child_w): (OwnedFd, OwnedFd) = pipe()?;
    let sleep = cstr("/bin/sleep");
    let argv0 = cstr(HOLDER_NAME);
    let argv1 = cstr("infinity");
    let fwd = cstr("/proc/sys/net/ipv4/ip_forward");
    let (pw, cr) = (to_parent_w.as_raw_fd(), to_child_r.as_raw_fd());
    // SAFETY: the child makes only raw system calls on integers and on
    // strings prepared above, then execs or _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(NetError::io(
            "forking the rootless namespace holder",
            std::io::Error::last_os_error(),
        ));
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe { holder_child(pw, cr, &sleep, &argv0, &argv1, &fwd) }
    }
    drop(to_parent_w);
    drop(to_child_r);
    let read_status = |fd: &OwnedFd| -> Option<i32> {
        let mut b = [0u8; 4];
        match rustix::io::read(fd, &mut b) {
            Ok(4) => Some(i32::from_ne_bytes(b)),
            _ => None,
        }
    };
    let fail = |m: String| {
        // SAFETY: kill/waitpid on the child we forked.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        err(m)
    };
    match read_status(&to_parent_r) {
        Some(0) => {}
        Some(e) => {
            return Err(fail(format!(
                "unshare(CLONE_NEWUSER): {}",
                std::io::Error::from_raw_os_error(e)
            )))
        }
        None => return Err(fail("the holder exited early".into())),
    }
    // Map root to the user, and the subordinate range after it.
    let map = |tool: &str, id: u32, file: &str| -> Result<()> {
        let mut args = vec![pid.to_string(), "0".into(), id.to_string(), "1".into()];
        if let Some((start, count)) = subid(file, &name, uid) {
            args.extend(["1".into(), start.to_string(), count.min(65536).to_string()]);
        }
        let o = Command::new(tool)
            .args(&args)
            .output()
            .map_err(|e| err(format!("running {tool} (install Debian's uidmap package): {e}")))?;
        if !o.status.success() {
            return Err(err(format!(
                "{tool} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            )));
        }
        Ok(())
    };
    if let Err(e) = map("newuidmap", uid, "/etc/subuid").and_then(|_| map("newgidmap", gid, "/etc/subgid")) {
        return Err(fail(e.to_string()));
    }
    let _ = rustix::io::write(&to_child_w, &[1u8]);
    match read_status(&to_parent_r) {
        Some(0) => {}
        Some(e) => {
            return Err(fail(format!(
                "making the network namespace: {}",
                std::io::Error::from_raw_os_error(e)
            )))
        }
        None => return Err(fail("the holder exited while making its namespaces".into())),
    }
    // The holder outlives us: a thread reaps it if it dies while we run.
    std::thread::spawn(move || {
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    });
    Ok(pid)
}

/// The holder's side. Never returns.
///
/// # Safety
/// Must be called only in a freshly forked child; uses raw system calls only.
unsafe fn holder_child(pw: i32, cr: i32, sleep: &CString, argv0: &CString, argv1: &CString, fwd: &CString) -> ! {
    let errno = || *libc::__errno_location();
    let report = |code: i32| {
        let b = code.to_ne_bytes();
        libc::write(pw, b.as_ptr().cast(), 4);
    };
    libc::setsid();
    if libc::unshare(libc::CLONE_NEWUSER) != 0 {
        report(errno());
        libc::_exit(1);
    }
    report(0);
    let mut b = [0u8; 1];
    if libc::read(cr, b.as_mut_ptr().cast(), 1) != 1 {
        libc::_exit(1);
    }
    // Root of the new user namespace (mapped to the user by now).
    if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
        report(errno());
        libc::_exit(1);
    }
    if libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) != 0 {
        report(errno());
        libc::_exit(1);
    }
    // Loopback up.
    let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if s >= 0 {
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req) == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(s, libc::SIOCSIFFLAGS, &req);
        }
        libc::close(s);
    }
    for p in [fwd.as_ptr(), c"/proc/sys/net/ipv6/conf/all/forwarding".as_ptr()] {
        let f = libc::open(p, libc::O_WRONLY | libc::O_CLOEXEC);
        if f >= 0 {
            libc::write(f, b"1".as_ptr().cast(), 1);
            libc::close(f);
        }
    }
    report(0);
    // Nothing of ours stays open in the holder.
    let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
    if devnull >= 0 {
        libc::dup2(devnull, 0);
        libc::dup2(devnull, 1);
        libc::dup2(devnull, 2);
    }
    libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    let argv = [argv0.as_ptr(), argv1.as_ptr(), std::ptr::null()];
    libc::execv(sleep.as_ptr(), argv.as_ptr());
    libc::_exit(127)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_dns_servers_are_rewritten_to_what_pasta_forwards() {
        let gw = Some(Ipv4Addr::new(10, 0, 2, 2));
        let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
        let host = "nameserver 127.0.0.53\nnameserver 10.1.1.1\n";
        assert_eq!(
            reachable_dns(
                &[ip("127.0.0.1"), ip("127.0.0.53"), ip("10.9.9.9"), ip("::1")],
                gw,
                host
            )
            .unwrap(),
            vec![ip("10.0.2.2"), ip("169.254.1.1"), ip("10.9.9.9")]
        );
        let e = reachable_dns(&[ip("127.0.0.2")], gw, host).unwrap_err().to_string();
        assert!(e.contains("--dns 127.0.0.2"), "{e}");
        assert!(reachable_dns(&[ip("127.0.0.1")], None, host).is_err());
    }
}
