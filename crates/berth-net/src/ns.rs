//! Handles on network namespaces: the host's, a container's (a bind-mounted
//! `/run/netns/NAME`, `/proc/PID/ns/net`, …), and the rootless network
//! namespace's. berth-net reaches into a namespace only through sockets
//! created inside it (a socket stays in the namespace it was made in):
//!
//! * as root, the calling thread enters the namespace, makes the socket
//!   and goes back to its own namespace at once;
//! * rootless, a namespace owned by another user namespace can be entered
//!   only after joining that user namespace, which needs a single-threaded
//!   process, so the forked helper of `netns.rs` makes the socket.
//!
//! Outside those few system calls, the calling thread stays in its own
//! namespace.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{NetError, Result};
use crate::netns::{NetnsHelper, SocketKind};
use crate::nl::Netlink;

/// A network namespace, and the user namespace to join before entering
/// it (rootless).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// The namespace file: `/run/netns/x`, `/proc/PID/ns/net`, …
    pub netns: PathBuf,
    /// The owning user namespace's file, when it is not ours.
    pub userns: Option<PathBuf>,
}

fn open(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| NetError::io(format!("opening network namespace {}", path.display()), e))
}

impl Namespace {
    /// A namespace we may enter directly (root).
    pub fn path(netns: impl Into<PathBuf>) -> Namespace {
        Namespace {
            netns: netns.into(),
            userns: None,
        }
    }

    /// The namespace of process `pid` (and its user namespace, when
    /// joining it is needed to enter).
    pub fn of_pid(pid: u32, with_userns: bool) -> Namespace {
        Namespace {
            netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
            userns: with_userns.then(|| PathBuf::from(format!("/proc/{pid}/ns/user"))),
        }
    }

    /// The namespace file, open.
    pub fn open(&self) -> Result<OwnedFd> {
        open(&self.netns)
    }

    /// An rtnetlink connection inside this namespace.
    pub fn netlink(&self) -> Result<Netlink> {
        Netlink::from_fd(self.socket(SocketKind::NetlinkRoute)?)
    }

    /// A TCP socket (IPv4) inside this namespace.
    pub fn tcp_socket(&self) -> Result<OwnedFd> {
        self.socket(SocketKind::Tcp4)
    }

    /// A UDP socket (IPv4) inside this namespace.
    pub fn udp_socket(&self) -> Result<OwnedFd> {
        self.socket(SocketKind::Udp4)
    }

    /// Turns IPv6 on for the interfaces `ifnames` (`eth0`, `lo`…) inside
    /// this namespace, which starts with it off (see
    /// [`ipv6_off_by_default`]): each one's `disable_ipv6` switch, as
    /// Docker sets it for an IPv6 network's endpoint.
    pub fn enable_ipv6(&self, ifnames: &[&str]) -> Result<()> {
        let shown = |ifname: &str| format!("{} in {}", ipv6_switch_path(ifname), self.netns.display());
        if let Some(bad) = ifnames.iter().find(|n| !crate::netns::valid_ifname(n.as_bytes())) {
            return Err(NetError::io(
                shown(bad),
                std::io::Error::from_raw_os_error(libc::EINVAL),
            ));
        }
        let open_here = || -> Result<Vec<OwnedFd>> {
            ifnames
                .iter()
                .map(|n| {
                    rustix::fs::open(
                        ipv6_switch_path(n).as_str(),
                        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
                        rustix::fs::Mode::empty(),
                    )
                    .map_err(|e| NetError::io(shown(n), e))
                })
                .collect()
        };
        let fds = match &self.userns {
            None if is_current(&self.netns) => open_here()?,
            None => with_netns(self.open()?.as_fd(), &self.netns.to_string_lossy(), open_here)?,
            Some(u) => {
                // One helper (one fork) for all of them.
                let helper = NetnsHelper::spawn_fds(0, Some(self.open()?), Some(open(u)?))?;
                ifnames
                    .iter()
                    .map(|n| helper.ipv6_switch(n).map_err(|e| NetError::io(shown(n), e)))
                    .collect::<Result<Vec<_>>>()?
            }
        };
        for (fd, n) in fds.iter().zip(ifnames) {
            rustix::io::write(fd, b"0").map_err(|e| NetError::io(shown(n), e))?;
        }
        Ok(())
    }

    fn socket(&self, kind: SocketKind) -> Result<OwnedFd> {
        if self.userns.is_none() && is_current(&self.netns) {
            return make_socket(kind).map_err(|e| NetError::io("making a socket", e));
        }
        let ns = self.open()?;
        match &self.userns {
            Some(u) => {
                let user = open(u)?;
                let helper = NetnsHelper::spawn_fds(0, Some(ns), Some(user))?;
                helper
                    .socket(kind)
                    .map_err(|e| NetError::io(format!("making a socket in {}", self.netns.display()), e))
            }
            None => socket_via_thread(ns, kind, &self.netns),
        }
    }
}

fn is_current(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata("/proc/thread-self/ns/net"), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

fn make_socket(kind: SocketKind) -> std::io::Result<OwnedFd> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let (fam, ty, proto) = match kind {
        SocketKind::Tcp4 => (AddressFamily::INET, SocketType::STREAM, None),
        SocketKind::Udp4 => (AddressFamily::INET, SocketType::DGRAM, None),
        SocketKind::NetlinkRoute => (AddressFamily::NETLINK, SocketType::RAW, None), // NETLINK_ROUTE is protocol 0
    };
    Ok(rustix::net::socket_with(fam, ty, SocketFlags::CLOEXEC, proto)?)
}

/// Makes a socket inside `ns` from the calling thread, which moves there
/// for one socket(2) and back (see [`with_netns`]).
fn socket_via_thread(ns: OwnedFd, kind: SocketKind, path: &Path) -> Result<OwnedFd> {
    let shown = path.display().to_string();
    with_netns(ns.as_fd(), &shown, || {
        make_socket(kind).map_err(|e| NetError::io(format!("making a socket in {shown}"), e))
    })
}

/// The calling thread's network namespace, open (to come back to).
fn current_netns() -> Result<OwnedFd> {
    open(Path::new("/proc/thread-self/ns/net"))
}

/// Puts the calling thread back into `orig`. A thread that cannot go back
/// would go on making sockets in a container's namespace: nothing sane is
/// left to do then.
fn restore_netns(orig: &OwnedFd) {
    if let Err(e) =
        rustix::thread::move_into_link_name_space(orig.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
    {
        eprintln!("berth: cannot return to the original network namespace: {e}");
        std::process::abort();
    }
}

/// Runs `f` with the calling thread in the network namespace `ns`, then
/// puts the thread back. Only this thread moves (a network namespace is a
/// per-thread attribute), for the few system calls `f` makes; no thread
/// is started, which under load saves a scheduling round trip (10-40 ms
/// on the project machine with a load of 10 on 2 cores).
fn with_netns<T>(ns: BorrowedFd<'_>, shown: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let orig = current_netns()?;
    rustix::thread::move_into_link_name_space(ns, Some(rustix::thread::LinkNameSpaceType::Network))
        .map_err(|e| NetError::io(format!("entering network namespace {shown}"), e))?;
    let r = f();
    restore_netns(&orig);
    r
}

/// Makes a new network namespace (loopback up) kept alive by a bind
/// mount at `path`, as `ip netns add` does, for a container to join
/// (`ns:<path>` in its spec). Root only: rootless containers' namespaces
/// are made inside the rootless user namespace. The calling thread makes
/// it (unshare) and goes back to its own namespace.
pub fn create_persistent(path: &Path) -> Result<Namespace> {
    // The mount point is made just before the mount, and made again if it
    // vanished meanwhile: the store's run directory goes with its last
    // network (a prune beside this run may remove it between the two steps).
    let orig = current_netns()?;
    // SAFETY: only the network namespace is unshared, for this thread,
    // which goes back to `orig` below whatever happens in between (the
    // unsafety concerns CLONE_FILES and CLONE_FS-style flags).
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
        .map_err(|e| NetError::io("unshare(CLONE_NEWNET)", e))?;
    let made = (|| -> Result<()> {
        let mut attempts = 0;
        loop {
            make_mount_point(path)?;
            match rustix::mount::mount_bind("/proc/thread-self/ns/net", path) {
                Ok(()) => break,
                Err(rustix::io::Errno::NOENT) if attempts < 5 => attempts += 1,
                Err(e) => {
                    return Err(NetError::io(
                        format!("bind-mounting the namespace on {}", path.display()),
                        e,
                    ))
                }
            }
        }
        let mut nl = Netlink::new()?;
        if let Some(lo) = nl.link("lo")? {
            nl.set_up(lo.index)?;
        }
        no_dad_by_default();
        ipv6_off_by_default();
        Ok(())
    })();
    restore_netns(&orig);
    if let Err(e) = made {
        let _ = remove_persistent(path);
        return Err(e);
    }
    Ok(Namespace::path(path))
}

/// Turns IPv6 duplicate address detection off for the interfaces made
/// later in the calling thread's network namespace (`/proc/sys/net`
/// follows the caller's namespace), as Docker and Podman do for a
/// container's side: an address is usable at once. Best effort: a kernel
/// without IPv6 has no such file.
fn no_dad_by_default() {
    let p = "/proc/sys/net/ipv6/conf/default/accept_dad";
    if let Err(e) = std::fs::write(p, "0") {
        log::debug!("{p}: {e}");
    }
}

/// An interface's IPv6 switch under `/proc/sys/net` (of the namespace of
/// whoever opens it).
fn ipv6_switch_path(ifname: &str) -> String {
    use crate::netns::{IPV6_CONF, IPV6_SWITCH_FILE};
    format!("{IPV6_CONF}{ifname}/{IPV6_SWITCH_FILE}")
}

/// The switches [`ipv6_off_by_default`] turns off, in that order (also
/// written by the rootless holder's child, which may not allocate).
pub(crate) const IPV6_DEFAULT_SWITCHES: [&std::ffi::CStr; 2] = [
    c"/proc/sys/net/ipv6/conf/default/disable_ipv6",
    c"/proc/sys/net/ipv6/conf/all/disable_ipv6",
];

/// Turns IPv6 off in the calling thread's network namespace, for the
/// interfaces in it (loopback) and those made or moved in later, as
/// dockerd 20.10 does in a container's namespace: an interface gets it
/// back only on a network with IPv6 ([`Namespace::set_ipv6`]). `default`
/// first, then `all`, which the kernel passes on to every interface in
/// the namespace. Best effort: a kernel without IPv6 has no such files.
pub(crate) fn ipv6_off_by_default() {
    use std::os::unix::ffi::OsStrExt;
    for p in IPV6_DEFAULT_SWITCHES {
        let p = Path::new(std::ffi::OsStr::from_bytes(p.to_bytes()));
        if let Err(e) = std::fs::write(p, "1") {
            log::debug!("{}: {e}", p.display());
        }
    }
}

/// Unmounts and removes a namespace made by [`create_persistent`]; the
/// kernel frees it (and the veths in it) once nothing else holds it.
pub fn remove_persistent(path: &Path) -> Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(NetError::io(format!("unmounting {}", path.display()), e)),
    }
    remove_mount_point(path)
}

/// Makes the empty file (and its directory) a namespace is bind-mounted on.
/// Made again if its directory vanishes in between: the store's run
/// directory goes with its last network, which a prune beside a run may
/// remove at any moment.
pub(crate) fn make_mount_point(path: &Path) -> Result<()> {
    let mut attempts = 0;
    loop {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| NetError::io(format!("creating {}", dir.display()), e))?;
        }
        match std::fs::File::create(path) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 5 => attempts += 1,
            Err(e) => return Err(NetError::io(format!("creating {}", path.display()), e)),
        }
    }
}

/// Removes a namespace's mount point; one already gone is no error.
pub(crate) fn remove_mount_point(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::io(format!("removing {}", path.display()), e)),
    }
}

/// Namespace mounts (nsfs) under `dir`, from this process's mount table.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    nsfs_mounts_under("/proc/self/mountinfo", dir)
}

/// Namespace mounts (nsfs) under `dir` in the mount table `mountinfo`
/// (`/proc/<pid>/mountinfo`: that process's mount namespace).
pub(crate) fn nsfs_mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let table = std::fs::read_to_string(mountinfo).unwrap_or_default();
    table
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (f.get(sep + 1) == Some(&"nsfs")).then(|| PathBuf::from(f[4]))
        })
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// The host's (this process's) network namespace.
pub fn host() -> Namespace {
    Namespace::path("/proc/self/ns/net")
}
