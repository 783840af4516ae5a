//! Sockets inside a container's network namespace.
//!
//! A socket belongs for life to the network namespace it was created in, so
//! the forwarder needs sockets made *inside* the container's namespace and
//! can then use them from anywhere. Entering a namespace owned by another
//! user namespace (every rootless container) needs CAP_SYS_ADMIN there,
//! which means joining that user namespace first, which the kernel only
//! allows a single-threaded process. So a tiny helper is forked (no exec):
//! it joins the container's user namespace (when it differs from ours) and
//! network namespace, then makes sockets on request and passes them back
//! over a unix socket pair (SCM_RIGHTS). The same path serves root and
//! rootless; as root the user namespace step is simply skipped.
//!
//! The child runs only async-signal-safe system calls (no allocation, no
//! locks), because the parent is multi-threaded when it forks.

use crate::error::{NetError, Result};
use rustix::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

/// What the helper is asked to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SocketKind {
    Tcp4 = 1,
    Udp4 = 2,
    /// `NETLINK_ROUTE`, to configure the namespace's links.
    NetlinkRoute = 3,
}

/// A forked helper living in a container's network namespace.
pub(crate) struct NetnsHelper {
    pid: libc::pid_t,
    chan: Mutex<OwnedFd>,
}

fn same_ns(a: &str, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.ino() == y.ino() && x.dev() == y.dev(),
        _ => false,
    }
}

fn open_ns(pid: i32, kind: &str) -> Result<OwnedFd> {
    let path = format!("/proc/{pid}/ns/{kind}");
    let open = || {
        rustix::fs::open(
            path.as_str(),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
    };
    // `runc start` returns before the container's init has exec'd its
    // program; until then runc's init is not dumpable and, rootless, its
    // namespaces refuse the user (EACCES): wait for the exec (up to 2 s).
    let mut r = open();
    for _ in 0..200 {
        if !matches!(r, Err(rustix::io::Errno::ACCESS)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        r = open();
    }
    r.map_err(|e| NetError::Netns {
        pid,
        reason: format!("opening {path}: {}", std::io::Error::from(e)),
    })
}

impl NetnsHelper {
    /// Forks the helper for the network namespace of process `pid`.
    pub(crate) fn spawn(pid: i32) -> Result<NetnsHelper> {
        // Already there (host network, or a test): nothing to enter.
        let netns = if same_ns("/proc/self/ns/net", &format!("/proc/{pid}/ns/net")) {
            None
        } else {
            Some(open_ns(pid, "net")?)
        };
        let userns = if same_ns("/proc/self/ns/user", &format!("/proc/{pid}/ns/user")) {
            None
        } else {
            Some(open_ns(pid, "user")?)
        };
        Self::spawn_fds(pid, netns, userns)
    }

    /// Forks the helper for the network namespace `netns` (an open
    /// namespace file), joining the user namespace `userns` first when
    /// given. `pid` only names the target in errors.
    pub(crate) fn spawn_fds(pid: i32, netns: Option<OwnedFd>, userns: Option<OwnedFd>) -> Result<NetnsHelper> {
        let (ours, theirs) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| NetError::io("creating a socket pair", e))?;
        let parent = std::process::id() as libc::pid_t;
        let (c_chan, c_net, c_user) = (
            theirs.as_raw_fd(),
            netns.as_ref().map_or(-1, |f| f.as_raw_fd()),
            userns.as_ref().map_or(-1, |f| f.as_raw_fd()),
        );
        // SAFETY: fork(2) in a multi-threaded process is sound as long as the
        // child only makes async-signal-safe calls before exiting; child_main
        // uses nothing but raw system calls on integers and stack buffers and
        // never returns.
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(NetError::io(
                "forking the port forwarder's namespace helper",
                std::io::Error::last_os_error(),
            ));
        }
        if child == 0 {
            child_main(c_chan, c_net, c_user, parent);
        }
        drop(theirs);
        drop(netns);
        drop(userns);
        let helper = NetnsHelper {
            pid: child,
            chan: Mutex::new(ours),
        };
        // The child reports whether it entered the namespaces.
        let mut st = [0u8; 4];
        let n = {
            let chan = helper.chan.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                match rustix::io::read(&*chan, &mut st) {
                    Err(rustix::io::Errno::INTR) => continue,
                    r => break r,
                }
            }
        };
        match n {
            Ok(4) if i32::from_ne_bytes(st) == 0 => Ok(helper),
            Ok(4) => Err(NetError::Netns {
                pid,
                reason: format!(
                    "setns: {}{}",
                    std::io::Error::from_raw_os_error(i32::from_ne_bytes(st)),
                    if rustix::process::geteuid().is_root() {
                        ""
                    } else {
                        " (rootless: the container's user namespace must be owned by this user)"
                    }
                ),
            }),
            _ => Err(NetError::Netns {
                pid,
                reason: "the namespace helper exited before reporting".into(),
            }),
        }
    }

    /// A new socket of `kind`, created inside the namespace.
    pub(crate) fn socket(&self, kind: SocketKind) -> std::io::Result<OwnedFd> {
        self.request(&[kind as u8])
    }

    /// The namespace's `/proc/sys/net/ipv6/conf/IFNAME/disable_ipv6`,
    /// open for writing (a sysctl file belongs to the namespace it was
    /// opened in).
    pub(crate) fn ipv6_switch(&self, ifname: &str) -> std::io::Result<OwnedFd> {
        if !valid_ifname(ifname.as_bytes()) {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut req = vec![IPV6_SWITCH];
        req.extend_from_slice(ifname.as_bytes());
        self.request(&req)
    }

    /// Sends one request; returns the descriptor the helper made for it.
    fn request(&self, req: &[u8]) -> std::io::Result<OwnedFd> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendFlags};
        use std::mem::MaybeUninit;
        let chan = self.chan.lock().unwrap_or_else(|e| e.into_inner());
        rustix::net::send(&*chan, req, SendFlags::NOSIGNAL)?;
        let mut st = [0u8; 4];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [std::io::IoSliceMut::new(&mut st)];
        let got = loop {
            match rustix::net::recvmsg(&*chan, &mut iov, &mut anc, RecvFlags::CMSG_CLOEXEC) {
                Err(rustix::io::Errno::INTR) => continue,
                r => break r?,
            }
        };
        let mut fd = None;
        for msg in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
                fd = fds.next();
            }
        }
        if got.bytes != 4 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the container's namespace helper is gone (did the container exit?)",
            ));
        }
        let code = i32::from_ne_bytes(st);
        match fd {
            Some(fd) if code == 0 => Ok(fd),
            _ => Err(std::io::Error::from_raw_os_error(if code == 0 {
                libc::EIO
            } else {
                code
            })),
        }
    }
}

impl Drop for NetnsHelper {
    fn drop(&mut self) {
        // SAFETY: kill(2) and waitpid(2) on the helper we forked and have not reaped yet.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The request for an interface's IPv6 switch (followed by its name).
const IPV6_SWITCH: u8 = 4;

/// The directory of a network namespace's IPv6 settings (of whoever
/// opens it), and the name of each interface's on/off switch in it.
pub(crate) const IPV6_CONF: &str = "/proc/sys/net/ipv6/conf/";
pub(crate) const IPV6_SWITCH_FILE: &str = "disable_ipv6";

/// An interface name the kernel could have (IFNAMSIZ less its NUL), safe
/// to put in a path. On bytes, without allocating: the helper's child
/// checks it too.
pub(crate) fn valid_ifname(name: &[u8]) -> bool {
    (1..=15).contains(&name.len()) && name != b"." && name != b".." && !name.iter().any(|&b| b == b'/' || b == 0)
}

/// Sends a 4-byte status and, optionally, one file descriptor.
///
/// SAFETY (for callers): `chan` must be an open socket; only raw system calls are made.
unsafe fn send_reply(chan: i32, code: i32, fd: i32) {
    let mut body = code.to_ne_bytes();
    let mut iov = libc::iovec {
        iov_base: body.as_mut_ptr().cast(),
        iov_len: body.len(),
    };
    // Room for one cmsghdr with one int, 8-byte aligned.
    let mut cbuf = [0u64; 4];
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if fd >= 0 {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) as _;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
    }
    while libc::sendmsg(chan, &msg, libc::MSG_NOSIGNAL) < 0 && errno() == libc::EINTR {}
}

fn errno() -> i32 {
    // SAFETY: reading this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// The forked child: enter the namespaces, then serve socket requests
/// until the parent closes its end. Never returns.
fn child_main(chan: i32, netns: i32, userns: i32, parent: libc::pid_t) -> ! {
    // SAFETY: only async-signal-safe system calls on integers and stack
    // buffers follow; the process ends with _exit(2).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        let mut status = 0;
        if userns >= 0 && libc::setns(userns, libc::CLONE_NEWUSER) != 0 {
            status = errno();
        }
        if status == 0 && netns >= 0 && libc::setns(netns, libc::CLONE_NEWNET) != 0 {
            status = errno();
        }
        // Keep only the channel (as fd 3): listeners, pipes and the
        // monitor's readiness fd must not live on in this process.
        let chan = if chan == 3 || libc::dup2(chan, 3) == 3 { 3 } else { chan };
        if chan == 3 && libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
            for fd in 4..4096 {
                libc::close(fd);
            }
        }
        send_reply(chan, status, -1);
        if status != 0 {
            libc::_exit(1);
        }
        loop {
            // A kind, or IPV6_SWITCH and an interface name.
            let mut req = [0u8; 17];
            let n = libc::recv(chan, req.as_mut_ptr().cast(), req.len(), 0);
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            if n <= 0 {
                libc::_exit(0);
            }
            if req[0] == IPV6_SWITCH {
                let name = &req[1..n as usize];
                if !valid_ifname(name) {
                    send_reply(chan, libc::EINVAL, -1);
                    continue;
                }
                // IPV6_CONF NAME "/" IPV6_SWITCH_FILE NUL, on the stack.
                let mut path = [0u8; 64];
                let mut len = 0;
                for part in [IPV6_CONF.as_bytes(), name, b"/", IPV6_SWITCH_FILE.as_bytes()] {
                    path[len..len + part.len()].copy_from_slice(part);
                    len += part.len();
                }
                let f = libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
                if f < 0 {
                    send_reply(chan, errno(), -1);
                } else {
                    send_reply(chan, 0, f);
                    libc::close(f);
                }
                continue;
            }
            let (family, ty, proto) = match req[0] {
                1 => (libc::AF_INET, libc::SOCK_STREAM, 0),
                2 => (libc::AF_INET, libc::SOCK_DGRAM, 0),
                3 => (libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE),
                _ => {
                    send_reply(chan, libc::EINVAL, -1);
                    continue;
                }
            };
            let s = libc::socket(family, ty | libc::SOCK_CLOEXEC, proto);
            if s < 0 {
                send_reply(chan, errno(), -1);
            } else {
                send_reply(chan, 0, s);
                libc::close(s);
            }
        }
    }
}
