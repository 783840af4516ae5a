//! The userspace forwarder (what docker-proxy and rootlessport do): host
//! listeners on the published ports, and for each TCP connection (or UDP
//! peer) a socket made inside the container's network namespace,
//! connected to `127.0.0.1:<container port>`, with bytes relayed both ways.
//!
//! Threads: one acceptor for all TCP listeners, one per UDP mapping, one
//! per open TCP connection (small stacks, 2 × 16 KiB buffers). All of them
//! also poll a stop pipe, so dropping the [`Forwarder`] ends everything.

use crate::error::{NetError, Result};
use crate::netns::{NetnsHelper, SocketKind};
use crate::publish::{PortBinding, PortMapping, Proto};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fd::OwnedFd;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const THREAD_STACK: usize = 64 * 1024;
const RELAY_BUF: usize = 16 * 1024;
const UDP_IDLE: Duration = Duration::from_secs(90);
const UDP_MAX_FLOWS: usize = 1024;

/// How connections reach the container: sockets made by a helper inside
/// some namespace (none: this process's own) connected to `ip`.
struct Route {
    helper: Option<NetnsHelper>,
    ip: Ipv4Addr,
}

/// The container the forwarder currently sends to: a generation number
/// (bumped on every attach/detach) and the route, while it runs.
#[derive(Default)]
struct Target {
    generation: u64,
    helper: Option<Arc<Route>>,
}

type SharedTarget = Arc<Mutex<Target>>;

fn current(t: &SharedTarget) -> (u64, Option<Arc<Route>>) {
    let g = t.lock().unwrap_or_else(|e| e.into_inner());
    (g.generation, g.helper.clone())
}

enum Socket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// Published ports of one container, held for as long as this lives.
pub struct Forwarder {
    bindings: Vec<PortBinding>,
    target: SharedTarget,
    stop_w: Option<OwnedFd>,
    threads: Vec<JoinHandle<()>>,
}

impl Forwarder {
    /// Binds every mapping on the host (failing with a clear error, and
    /// holding nothing, if any port is taken) and starts listening.
    /// Connections are refused until [`Forwarder::attach`].
    pub fn bind(maps: &[PortMapping]) -> Result<Forwarder> {
        let socks = bind_all(maps)?;
        let (stop_r, stop_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| NetError::io("creating a pipe", e))?;
        let stop_r = Arc::new(stop_r);
        let target: SharedTarget = Arc::default();
        let bindings = socks.iter().map(|(_, b)| *b).collect();
        let mut tcp = Vec::new();
        let mut threads = Vec::new();
        for (s, b) in socks {
            match s {
                Socket::Tcp(l) => tcp.push((l, b.container_port)),
                Socket::Udp(u) => {
                    let (stop, target) = (stop_r.clone(), target.clone());
                    threads.push(spawn("berth-udp", move || {
                        udp_loop(u, b.container_port, &stop, &target)
                    })?);
                }
            }
        }
        if !tcp.is_empty() {
            let (stop, target) = (stop_r.clone(), target.clone());
            threads.push(spawn("berth-accept", move || accept_loop(tcp, stop, target))?);
        }
        Ok(Forwarder {
            bindings,
            target,
            stop_w: Some(stop_w),
            threads,
        })
    }

    /// The host ports actually held (random ports resolved).
    pub fn bindings(&self) -> &[PortBinding] {
        &self.bindings
    }

    /// Points the forwarder at the (new) container process `pid`: its
    /// namespace's loopback (a container with a private network).
    pub fn attach(&self, pid: i32) -> Result<()> {
        self.set_route(Route {
            helper: Some(NetnsHelper::spawn(pid)?),
            ip: Ipv4Addr::LOCALHOST,
        });
        Ok(())
    }

    /// Points the forwarder at a container's address on a bridge network,
    /// reached from this process's namespace (root) or from the namespace
    /// of process `via` (rootless: the rootless network namespace's holder).
    pub fn attach_address(&self, ip: Ipv4Addr, via: Option<i32>) -> Result<()> {
        let helper = match via {
            Some(pid) => Some(NetnsHelper::spawn(pid)?),
            None => None,
        };
        self.set_route(Route { helper, ip });
        Ok(())
    }

    fn set_route(&self, r: Route) {
        let mut t = self.target.lock().unwrap_or_else(|e| e.into_inner());
        t.generation += 1;
        t.helper = Some(Arc::new(r));
    }

    /// The container exited: refuse new connections until the next attach.
    pub fn detach(&self) {
        let old = {
            let mut t = self.target.lock().unwrap_or_else(|e| e.into_inner());
            t.generation += 1;
            t.helper.take()
        };
        drop(old);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // Closing the write end wakes every poller with POLLHUP.
        self.stop_w.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.detach();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(THREAD_STACK)
        .spawn(f)
        .map_err(|e| NetError::io("starting a port forwarder thread", e))
}

/// Checks that every fixed host port could be bound now (nothing is held afterwards).
pub fn check_available(maps: &[PortMapping]) -> Result<()> {
    bind_all(maps).map(drop)
}

fn bind_all(maps: &[PortMapping]) -> Result<Vec<(Socket, PortBinding)>> {
    let mut out = Vec::new();
    for m in maps {
        let first = bind_one(m)?;
        let port = first.1.host_port;
        out.push(first);
        // Docker's default address is every one of both families: `[::]`
        // too, on the port `0.0.0.0` got (a host without IPv6 has only
        // the one).
        if m.host_ip.is_none() {
            out.extend(bind_any_v6(m, port, m.host_port == 0)?);
        }
    }
    Ok(out)
}

/// `[::]:port` for mapping `m`, IPv6 only (its IPv4 side is bound apart).
/// None where the host has no IPv6, or (`optional`: a port the kernel
/// picked for IPv4) where that port is taken on IPv6.
fn bind_any_v6(m: &PortMapping, port: u16, optional: bool) -> Result<Option<(Socket, PortBinding)>> {
    use rustix::io::Errno;
    use rustix::net::{bind, listen, socket_with, sockopt, AddressFamily, SocketFlags, SocketType};
    let addr = SocketAddr::new(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), port);
    let shown = addr.to_string();
    let kind = match m.proto {
        Proto::Tcp => SocketType::STREAM,
        Proto::Udp => SocketType::DGRAM,
    };
    let fd = match socket_with(AddressFamily::INET6, kind, SocketFlags::CLOEXEC, None) {
        Ok(fd) => fd,
        Err(Errno::AFNOSUPPORT) => return Ok(None),
        Err(e) => {
            return Err(NetError::io(
                format!("making a socket for {shown}"),
                std::io::Error::from(e),
            ))
        }
    };
    let setup = || -> std::result::Result<(), Errno> {
        sockopt::set_ipv6_v6only(&fd, true)?;
        if m.proto == Proto::Tcp {
            // As std's TcpListener: a port in TIME_WAIT can be bound again.
            sockopt::set_socket_reuseaddr(&fd, true)?;
        }
        bind(&fd, &addr)?;
        if m.proto == Proto::Tcp {
            listen(&fd, 128)?;
        }
        Ok(())
    };
    match setup() {
        Ok(()) => {}
        Err(Errno::ADDRNOTAVAIL) | Err(Errno::AFNOSUPPORT) => return Ok(None),
        Err(Errno::ADDRINUSE) if optional => return Ok(None),
        Err(e) => return Err(bind_failed(e.into(), addr, m.proto)),
    }
    let sock = match m.proto {
        Proto::Tcp => Socket::Tcp(TcpListener::from(fd)),
        Proto::Udp => Socket::Udp(UdpSocket::from(fd)),
    };
    Ok(Some((
        sock,
        PortBinding {
            host_ip: addr.ip(),
            host_port: port,
            container_port: m.container_port,
            proto: m.proto,
        },
    )))
}

/// Why binding `addr` failed, in words that say what to do.
fn bind_failed(e: std::io::Error, addr: SocketAddr, proto: Proto) -> NetError {
    let shown = addr.to_string();
    match e.kind() {
        ErrorKind::AddrInUse => NetError::PortInUse { addr: shown },
        ErrorKind::PermissionDenied => NetError::PrivilegedPort {
            addr: shown,
            limit: unprivileged_port_start(),
        },
        ErrorKind::AddrNotAvailable => NetError::AddressNotAvailable {
            addr: shown,
            ip: addr.ip(),
        },
        _ => NetError::io(format!("binding {shown} ({proto})"), e),
    }
}

fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

fn bind_one(m: &PortMapping) -> Result<(Socket, PortBinding)> {
    let ip = m.bind_ip();
    let last = m.host_port_end.unwrap_or(m.host_port).max(m.host_port);
    let mut port = m.host_port;
    loop {
        let addr = SocketAddr::new(ip, port);
        let res = match m.proto {
            Proto::Tcp => TcpListener::bind(addr).map(Socket::Tcp),
            Proto::Udp => UdpSocket::bind(addr).map(Socket::Udp),
        };
        // `1.2.3.4:80` or `[::1]:80`.
        let shown = addr.to_string();
        match res {
            Ok(s) => {
                let local = match &s {
                    Socket::Tcp(l) => l.local_addr(),
                    Socket::Udp(u) => u.local_addr(),
                }
                .map_err(|e| NetError::io(format!("reading the address of {shown}"), e))?;
                let b = PortBinding {
                    host_ip: ip,
                    host_port: local.port(),
                    container_port: m.container_port,
                    proto: m.proto,
                };
                return Ok((s, b));
            }
            Err(e) if e.kind() == ErrorKind::AddrInUse && port < last => port += 1,
            Err(e) if e.kind() == ErrorKind::AddrInUse && m.host_port_end.is_some_and(|e| e != m.host_port) => {
                return Err(NetError::RangeExhausted {
                    ip,
                    first: m.host_port,
                    last,
                })
            }
            Err(e) => return Err(bind_failed(e, addr, m.proto)),
        }
    }
}

fn accept_loop(listeners: Vec<(TcpListener, u16)>, stop: Arc<OwnedFd>, target: SharedTarget) {
    for (l, _) in &listeners {
        let _ = l.set_nonblocking(true);
    }
    loop {
        let mut fds: Vec<PollFd> = Vec::with_capacity(listeners.len() + 1);
        fds.push(PollFd::new(&*stop, PollFlags::IN));
        for (l, _) in &listeners {
            fds.push(PollFd::new(l, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                log::warn!("port forwarder: poll failed: {e}");
                return;
            }
        }
        if !fds[0].revents().is_empty() {
            return;
        }
        let ready: Vec<bool> = fds[1..].iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        for ((l, port), r) in listeners.iter().zip(ready) {
            if !r {
                continue;
            }
            while let Ok((conn, peer)) = l.accept() {
                let (_, helper) = current(&target);
                let Some(helper) = helper else {
                    log::debug!("port forwarder: container not running, closing connection from {peer}");
                    continue;
                };
                let (stop, port) = (stop.clone(), *port);
                if let Err(e) = spawn("berth-relay", move || tcp_relay(conn, helper, port, &stop)) {
                    log::warn!("port forwarder: {e}");
                }
            }
        }
    }
}

fn connect_inside(route: &Route, kind: SocketKind, port: u16) -> std::io::Result<OwnedFd> {
    let fd = match &route.helper {
        Some(h) => h.socket(kind)?,
        None => {
            use rustix::net::{AddressFamily, SocketFlags, SocketType};
            let ty = if kind == SocketKind::Udp4 {
                SocketType::DGRAM
            } else {
                SocketType::STREAM
            };
            rustix::net::socket_with(AddressFamily::INET, ty, SocketFlags::CLOEXEC, None)?
        }
    };
    rustix::net::connect(&fd, &SocketAddrV4::new(route.ip, port))?;
    Ok(fd)
}

fn tcp_relay(client: TcpStream, helper: Arc<Route>, port: u16, stop: &OwnedFd) {
    let up = match connect_inside(&helper, SocketKind::Tcp4, port) {
        Ok(fd) => TcpStream::from(fd),
        Err(e) => {
            log::debug!(
                "port forwarder: connecting to {}:{port} in the container: {e}",
                helper.ip
            );
            return;
        }
    };
    drop(helper);
    let _ = client.set_nodelay(true);
    let _ = up.set_nodelay(true);
    if client.set_nonblocking(true).is_err() || up.set_nonblocking(true).is_err() {
        return;
    }
    pump(&client, &up, stop);
}

/// One direction of a relay: bytes read from one side, not yet written to the other.
struct Half {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    shut: bool,
}

impl Half {
    fn new() -> Half {
        Half {
            buf: vec![0u8; RELAY_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            shut: false,
        }
    }
    fn pending(&self) -> bool {
        self.start < self.end
    }
    fn wants_read(&self) -> bool {
        !self.eof && self.end < self.buf.len()
    }
    fn done(&self) -> bool {
        self.shut
    }
    /// Reads what is available; false on a hard error.
    fn fill(&mut self, mut from: &TcpStream) -> bool {
        loop {
            match from.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return true;
                }
                Ok(n) => {
                    self.end += n;
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    }
    /// Writes what is buffered; false on a hard error.
    fn drain(&mut self, mut to: &TcpStream) -> bool {
        while self.pending() {
            match to.write(&self.buf[self.start..self.end]) {
                Ok(n) => self.start += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return false,
            }
        }
        if !self.pending() {
            self.start = 0;
            self.end = 0;
        }
        if self.eof && !self.pending() && !self.shut {
            let _ = to.shutdown(std::net::Shutdown::Write);
            self.shut = true;
        }
        true
    }
}

/// Copies bytes both ways until both directions ended, either side failed,
/// or the forwarder stops.
fn pump(a: &TcpStream, b: &TcpStream, stop: &OwnedFd) {
    let (mut ab, mut ba) = (Half::new(), Half::new());
    while !(ab.done() && ba.done()) {
        let mut ea = PollFlags::empty();
        let mut eb = PollFlags::empty();
        if ab.wants_read() {
            ea |= PollFlags::IN;
        }
        if ba.wants_read() {
            eb |= PollFlags::IN;
        }
        if ab.pending() {
            eb |= PollFlags::OUT;
        }
        if ba.pending() {
            ea |= PollFlags::OUT;
        }
        let mut fds = [PollFd::new(stop, PollFlags::IN), PollFd::new(a, ea), PollFd::new(b, eb)];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
        let (rs, ra, rb) = (fds[0].revents(), fds[1].revents(), fds[2].revents());
        if !rs.is_empty() || ra.contains(PollFlags::ERR) || rb.contains(PollFlags::ERR) {
            return;
        }
        let readable = |r: PollFlags| r.intersects(PollFlags::IN | PollFlags::HUP);
        if ab.wants_read() && readable(ra) && !ab.fill(a) {
            return;
        }
        if ba.wants_read() && readable(rb) && !ba.fill(b) {
            return;
        }
        if !ab.drain(b) || !ba.drain(a) {
            return;
        }
        // Both peers hung up and nothing is left to move.
        if ra.contains(PollFlags::HUP) && rb.contains(PollFlags::HUP) && !ab.pending() && !ba.pending() {
            return;
        }
    }
}

/// One UDP peer: its own socket in the container's namespace.
struct Flow {
    client: SocketAddr,
    up: UdpSocket,
    generation: u64,
    last: Instant,
}

fn udp_loop(host: UdpSocket, port: u16, stop: &OwnedFd, target: &SharedTarget) {
    let _ = host.set_nonblocking(true);
    let mut flows: Vec<Flow> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (generation, _) = current(target);
        flows.retain(|f| f.generation == generation && f.last.elapsed() < UDP_IDLE);
        let mut fds: Vec<PollFd> = Vec::with_capacity(flows.len() + 2);
        fds.push(PollFd::new(stop, PollFlags::IN));
        fds.push(PollFd::new(&host, PollFlags::IN));
        for f in &flows {
            fds.push(PollFd::new(&f.up, PollFlags::IN));
        }
        let timeout = Timespec { tv_sec: 10, tv_nsec: 0 };
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
        if !fds[0].revents().is_empty() {
            return;
        }
        let host_ready = !fds[1].revents().is_empty();
        let ready: Vec<bool> = fds[2..].iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        // Replies from the container go back to their peer.
        let mut dead = vec![false; flows.len()];
        for (i, f) in flows.iter_mut().enumerate() {
            if !ready[i] {
                continue;
            }
            loop {
                match f.up.recv(&mut buf) {
                    Ok(n) => {
                        f.last = Instant::now();
                        let _ = host.send_to(&buf[..n], f.client);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        dead[i] = true;
                        break;
                    }
                }
            }
        }
        let mut i = 0;
        flows.retain(|_| {
            i += 1;
            !dead[i - 1]
        });
        if !host_ready {
            continue;
        }
        // Datagrams from peers go into the container.
        loop {
            let (n, peer) = match host.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let idx = match flows.iter().position(|f| f.client == peer) {
                Some(i) => i,
                None => {
                    let (generation, helper) = current(target);
                    let Some(helper) = helper else { continue };
                    if flows.len() >= UDP_MAX_FLOWS {
                        if let Some(oldest) = (0..flows.len()).min_by_key(|&i| flows[i].last) {
                            flows.swap_remove(oldest);
                        }
                    }
                    let up = match connect_inside(&helper, SocketKind::Udp4, port) {
                        Ok(fd) => UdpSocket::from(fd),
                        Err(e) => {
                            log::debug!("port forwarder: udp socket in the container: {e}");
                            continue;
                        }
                    };
                    let _ = up.set_nonblocking(true);
                    flows.push(Flow {
                        client: peer,
                        up,
                        generation,
                        last: Instant::now(),
                    });
                    flows.len() - 1
                }
            };
            let f = &mut flows[idx];
            f.last = Instant::now();
            let _ = f.up.send(&buf[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn local(port: u16, container_port: u16, proto: Proto) -> PortMapping {
        PortMapping {
            host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            host_port: port,
            host_port_end: None,
            container_port,
            proto,
        }
    }

    #[test]
    fn tcp_round_trip_and_half_close() {
        // The "container" is this process: its network namespace is ours.
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let sport = server.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut c, _) = server.accept().unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap();
            c.write_all(&got).unwrap();
            c.write_all(b"!").unwrap();
        });
        let f = Forwarder::bind(&[local(0, sport, Proto::Tcp)]).unwrap();
        let hport = f.bindings()[0].host_port;
        assert_ne!(hport, 0);
        f.attach(std::process::id() as i32).unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", hport)).unwrap();
        let big = vec![7u8; 200_000];
        c.write_all(&big).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), big.len() + 1);
        assert_eq!(back.last(), Some(&b'!'));
        t.join().unwrap();
    }

    #[test]
    fn attach_address_connects_to_the_container_address() {
        // A bridge container's address, stood in for by 127.0.0.1 here.
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let sport = server.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut c, _) = server.accept().unwrap();
            c.write_all(b"from the container").unwrap();
        });
        let f = Forwarder::bind(&[local(0, sport, Proto::Tcp)]).unwrap();
        f.attach_address(Ipv4Addr::LOCALHOST, None).unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", f.bindings()[0].host_port)).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, "from the container");
        t.join().unwrap();
    }

    #[test]
    fn detached_refuses_and_drop_frees_the_port() {
        let f = Forwarder::bind(&[local(0, 1, Proto::Tcp)]).unwrap();
        let hport = f.bindings()[0].host_port;
        let err = match Forwarder::bind(&[local(hport, 1, Proto::Tcp)]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("bound twice"),
        };
        assert_eq!(
            err,
            format!("Bind for 127.0.0.1:{hport} failed: port is already allocated")
        );
        assert!(check_available(&[local(hport, 1, Proto::Tcp)]).is_err());
        // Not attached: the connection is accepted and closed.
        let mut c = TcpStream::connect(("127.0.0.1", hport)).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(c.read(&mut b).unwrap_or(0), 0);
        drop(f);
        check_available(&[local(hport, 1, Proto::Tcp)]).unwrap();
    }

    #[test]
    fn host_port_range_takes_the_next_free_port() {
        let a = Forwarder::bind(&[local(0, 1, Proto::Tcp)]).unwrap();
        let p = a.bindings()[0].host_port;
        if p == u16::MAX {
            return;
        }
        let mut m = local(p, 1, Proto::Tcp);
        m.host_port_end = Some(p + 1);
        match Forwarder::bind(&[m]) {
            Ok(b) => assert_eq!(b.bindings()[0].host_port, p + 1),
            Err(e) => assert!(e.to_string().contains("no free port"), "{e}"),
        }
    }

    #[test]
    fn udp_round_trip() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sport = server.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 64];
            let (n, from) = server.recv_from(&mut b).unwrap();
            server.send_to(&b[..n], from).unwrap();
        });
        let f = Forwarder::bind(&[local(0, sport, Proto::Udp)]).unwrap();
        f.attach(std::process::id() as i32).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.send_to(b"ping", ("127.0.0.1", f.bindings()[0].host_port)).unwrap();
        let mut b = [0u8; 64];
        let (n, _) = c.recv_from(&mut b).unwrap();
        assert_eq!(&b[..n], b"ping");
        t.join().unwrap();
    }
}
