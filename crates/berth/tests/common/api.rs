//! `berth system service` for the API tests: started on a socket in the
//! test's root, stopped (SIGTERM, then waited for) on drop; the real
//! Docker clients pointed at it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::Root;

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The URI of a service on `socket`, or on the loopback `tcp` port.
fn uri(socket: &Path, tcp: Option<u16>) -> String {
    match tcp {
        Some(port) => format!("tcp://127.0.0.1:{port}"),
        None => format!("unix://{}", socket.display()),
    }
}

/// A running service.
pub struct Service {
    pub child: Child,
    /// Where the socket is (none is made when serving on TCP).
    pub socket: PathBuf,
    /// The loopback port when serving on TCP instead of the socket.
    pub tcp: Option<u16>,
}

impl Service {
    /// `berth --root <root>/store system service --time 0 unix://<root>/berth.sock`.
    pub fn start(root: &Root) -> Service {
        Service::start_with(root, &["--time", "0"])
    }

    /// Started with these `system service` flags (the URI is added).
    pub fn start_with(root: &Root, flags: &[&str]) -> Service {
        Service::spawn(root, flags, None)
    }

    /// `berth system service --time 0 tcp://127.0.0.1:<a free port>` (for
    /// what a client does only over TCP, as docker-py's websockets).
    pub fn start_tcp(root: &Root) -> Service {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        Service::spawn(root, &["--time", "0"], Some(port))
    }

    /// The service on `<root>/berth.sock`, or on the loopback `tcp` port.
    fn spawn(root: &Root, flags: &[&str], tcp: Option<u16>) -> Service {
        let socket = root.path().join("berth.sock");
        let mut cmd = root.cmd(&["system", "service"]);
        cmd.args(flags)
            .arg(uri(&socket, tcp))
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        let child = cmd.spawn().expect("berth system service starts");
        let mut s = Service { child, socket, tcp };
        s.wait_ready();
        s
    }

    /// Waits until the socket answers `/_ping` (the service failing to
    /// start fails the test with its error).
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ping = |s: &mut dyn ReadWrite| {
                let _ = s.write_all(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n");
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                out.starts_with("HTTP/1.1 200")
            };
            let answered = match self.tcp {
                Some(port) => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| ping(&mut s)),
                None => UnixStream::connect(&self.socket).is_ok_and(|mut s| ping(&mut s)),
            };
            if answered {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("berth system service exited ({st}) before serving:\n{err}");
            }
            assert!(
                Instant::now() < deadline,
                "berth system service did not answer on {}",
                self.host()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `unix:///…/berth.sock` (`tcp://127.0.0.1:PORT` on TCP)
    pub fn host(&self) -> String {
        uri(&self.socket, self.tcp)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = self.child.wait();
    }

    /// A raw HTTP/1.1 exchange (for what clients hide): head and body.
    pub fn http(&self, method: &str, path: &str) -> (String, String) {
        raw_http(&self.socket, method, path)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One request on a fresh connection (`Connection: close`): (head, body).
pub fn raw_http(socket: &Path, method: &str, path: &str) -> (String, String) {
    raw_http_json(socket, method, path, "")
}

/// [`raw_http`] with a JSON body.
pub fn raw_http_json(socket: &Path, method: &str, path: &str, json: &str) -> (String, String) {
    let mut s = UnixStream::connect(socket).expect("the service's socket accepts");
    let kind = if json.is_empty() {
        String::new()
    } else {
        "Content-Type: application/json\r\n".to_string()
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n{kind}Content-Length: {}\r\n\r\n{json}",
        json.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.to_string(), body.to_string())
}

/// A header's value in a response head (case-insensitive name).
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `docker events --until` for "now": the client sends whole seconds, so
/// the next second covers everything so far.
pub fn events_until_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (now + 1).to_string()
}

/// The docker CLIs on this machine: the 28.x client in /usr/local/bin and
/// Debian's docker.io 20.10 in /usr/bin (scripts/setup installs it).
pub fn docker_clients() -> Vec<PathBuf> {
    let found: Vec<PathBuf> = ["/usr/local/bin/docker", "/usr/bin/docker"]
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    assert!(
        !found.is_empty(),
        "no docker CLI: install Debian's docker.io (scripts/setup does)"
    );
    found
}

/// `docker ARGS` against the service, with a config dir of its own (no
/// credential helpers, nothing of the user's).
pub fn docker(client: &Path, svc: &Service, root: &Root, args: &[&str]) -> Output {
    docker_cmd(client, svc, root, args).output().expect("docker runs")
}

pub fn docker_cmd(client: &Path, svc: &Service, root: &Root, args: &[&str]) -> Command {
    let config = root.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let mut c = Command::new(client);
    c.args(args)
        .env("DOCKER_HOST", svc.host())
        .env("DOCKER_CONFIG", &config)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .stdin(Stdio::null());
    c
}

/// `docker ARGS`, asserting success; stdout.
pub fn docker_ok(client: &Path, svc: &Service, root: &Root, args: &[&str]) -> String {
    let o = docker(client, svc, root, args);
    assert!(
        o.status.success(),
        "{} {args:?} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        client.display(),
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The Python of the venv scripts/setup makes with docker-py in it.
pub fn docker_py() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf();
    let py = target.join("docker-py-venv/bin/python");
    assert!(
        py.is_file(),
        "{} is missing: scripts/setup makes the docker-py venv (python3 -m venv target/docker-py-venv; pip install docker)",
        py.display()
    );
    py
}
