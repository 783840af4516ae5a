//! Shared arrangements for the end-to-end tests: a fresh store root per test,
//! the real `berth` binary, and a busybox image made from Debian's
//! `busybox-static` (no network needed).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A fresh store root under the target dir's tmp, removed on drop.
pub struct Root {
    pub dir: tempfile::TempDir,
}

impl Root {
    pub fn new() -> Root {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(&base).unwrap();
        Root {
            dir: tempfile::Builder::new().prefix("berth-test-").tempdir_in(base).unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `berth --root <this root> ARGS…`
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.arg("--root").arg(self.path().join("store")).args(args);
        c.stdin(Stdio::null());
        // Tests talk to registries on 127.0.0.1 only; a name like `nosuch`
        // must never turn into a request to Docker Hub.
        c.env("BERTH_ALLOWED_REGISTRIES", "loopback");
        // `run -it` over pipes (Docker refuses it without a terminal): the
        // attach tests type into and read a session through pipes.
        c.env("BERTH_TTY_OVER_PIPE", "1");
        c
    }

    /// Run and return the output (no assertion).
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("berth runs")
    }

    /// Run, assert success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Import a busybox image as `name` and return its ID.
    pub fn busybox(&self, name: &str) -> String {
        let tar = busybox_tar();
        self.ok(&["import", tar.to_str().unwrap(), name]).trim().to_string()
    }
}

/// A tar of a tiny busybox root filesystem (cached per test process).
pub fn busybox_tar() -> PathBuf {
    static TAR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TAR.get_or_init(make_busybox_tar).clone()
}

fn make_busybox_tar() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("busybox-rootfs.tar");
    if out.exists() {
        return out;
    }
    let dir = tempfile::tempdir().unwrap();
    make_busybox_rootfs(dir.path());
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["--numeric-owner", "-cf"])
        .arg(&tmp)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// bin/busybox plus a relative symlink for every applet, /etc/passwd and
/// /etc/group with root and nobody, and the usual empty directories.
pub fn make_busybox_rootfs(root: &Path) {
    let bb = Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "busybox-static is not installed (apt-get install busybox-static)"
    );
    for d in ["bin", "etc", "tmp", "root", "var/www", "home"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(bb, root.join("bin/busybox")).unwrap();
    let list = Command::new(bb).arg("--list").output().unwrap();
    for name in String::from_utf8(list.stdout).unwrap().lines() {
        if name != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(name));
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A non-root user with a subordinate id range, as (name, uid, gid).
pub fn subuid_user() -> Option<(String, u32, u32)> {
    let subuid = std::fs::read_to_string("/etc/subuid").ok()?;
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    for line in subuid.lines() {
        let name = line.split(':').next()?;
        for p in passwd.lines() {
            let f: Vec<&str> = p.split(':').collect();
            if f.len() > 3 && f[0] == name && f[2] != "0" {
                return Some((name.to_string(), f[2].parse().ok()?, f[3].parse().ok()?));
            }
        }
    }
    None
}

/// Fails the test at once unless it runs as root. Tests that need root
/// are `#[ignore = "needs root"]`: `cargo test` lists them as ignored, and
/// `scripts/test` runs them as root with `--include-ignored`.
pub fn need_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root: run it as root with --include-ignored (scripts/test does)"
    );
}

/// A fresh root with busybox imported as `bb`, for tests that run
/// containers (as root: such tests are `#[ignore = "needs root"]`);
/// removes its containers on drop.
pub struct Env {
    pub root: Root,
}

impl Env {
    pub fn new() -> Env {
        need_root();
        let root = Root::new();
        root.busybox("bb");
        Env { root }
    }

    /// `.State.Status` of a container.
    pub fn status(&self, name: &str) -> String {
        let o = self.root.run(&["inspect", "--format", "{{.State.Status}}", name]);
        stdout(&o).trim().to_string()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in stdout(&self.root.run(&["ps", "-aq", "--no-trunc"])).lines() {
            let _ = self.root.run(&["rm", "-f", id]);
        }
    }
}

/// Is `tool` on PATH?
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A throwaway store owned by an unprivileged user with subordinate ids,
/// and a copy of berth that user can run. Needs root (to switch users), a
/// user with an `/etc/subuid` range and `newuidmap`: `scripts/test` makes
/// sure of all three; a machine without them fails the test, saying which.
pub struct Rootless {
    pub dir: tempfile::TempDir,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

impl Rootless {
    pub fn new(prefix: &str) -> Rootless {
        need_root();
        let (user, uid, gid) =
            subuid_user().expect("no user with an /etc/subuid range (scripts/test creates berth-rootless)");
        assert!(
            Path::new("/usr/bin/newuidmap").exists() || have("newuidmap"),
            "newuidmap is not installed (apt-get install uidmap; scripts/setup does)"
        );
        let dir = tempfile::Builder::new().prefix(prefix).tempdir_in("/tmp").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.path().join("berth");
        std::fs::copy(env!("CARGO_BIN_EXE_berth"), &exe).unwrap();
        // The monitor program beside it, as installed.
        let monitor = dir.path().join("berth-monitor");
        std::fs::copy(env!("CARGO_BIN_EXE_berth-monitor"), &monitor).unwrap();
        let tar = dir.path().join("bb.tar");
        std::fs::copy(busybox_tar(), &tar).unwrap();
        for p in [dir.path().to_path_buf(), exe, monitor, tar] {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        Rootless { dir, user, uid, gid }
    }

    /// `berth --root <store> ARGS` as the user, in the test dir (which holds `bb.tar`).
    pub fn run(&self, args: &str) -> Output {
        self.sh(&format!("./berth --root {}/store {args}", self.dir.path().display()))
    }

    /// A shell command line as the user, in the test dir, with HOME and
    /// XDG_RUNTIME_DIR there.
    pub fn sh(&self, cmd: &str) -> Output {
        let line = format!(
            "cd {d} && export HOME={d} XDG_RUNTIME_DIR={d} && {cmd}",
            d = self.dir.path().display()
        );
        Command::new("su")
            .args([self.user.as_str(), "-s", "/bin/sh", "-c", &line])
            .output()
            .unwrap()
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }
}

/// A `docker-registry serve` on a free port of 127.0.0.1 storing under
/// `dir/data`: `log` is its config's log section, `extra` is appended after
/// `http.addr` (TLS lines, an auth section); stdout to `stdout`, stderr to
/// `dir/registry.log`. Returns it and its port once it takes connections.
pub fn serve_registry(dir: &Path, log: &str, extra: &str, stdout: Stdio) -> (Child, u16) {
    assert!(
        have("docker-registry"),
        "docker-registry is not installed (apt-get install docker-registry)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = format!(
        "version: 0.1\n{log}storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
        dir.join("data").display()
    );
    std::fs::write(dir.join("config.yml"), cfg).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the registry did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (child, port)
}
