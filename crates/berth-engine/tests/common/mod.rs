//! Shared arrangements for the engine's own tests: a fresh store, a busybox
//! image imported through the engine (no CLI process anywhere), a registry
//! on 127.0.0.1.
#![allow(dead_code)]

use std::io::Cursor;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_engine::import::ImportOptions;
use berth_engine::Engine;

/// Registries on 127.0.0.1 only, whatever a test names.
pub fn loopback_only() {
    std::env::set_var("BERTH_ALLOWED_REGISTRIES", "loopback");
}

/// Fails the test unless it runs as root (such tests are
/// `#[ignore = "needs root"]`; scripts/test runs them).
pub fn need_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root: run it as root with --include-ignored (scripts/test does)"
    );
}

/// An engine on a fresh store, removed with the returned directory.
/// Detached containers' monitors are this test binary run again (as an
/// API server that embeds the monitor would): each test file has a
/// `monitor_entry` test that calls [`monitor_entry`].
pub fn engine() -> (tempfile::TempDir, Engine) {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("berth-engine-")
        .tempdir_in(base)
        .unwrap();
    let mut engine = Engine::open(&dir.path().join("store"), None).unwrap();
    let args = ["--exact", "monitor_entry", "--nocapture", "--test-threads=1"];
    engine.set_monitor_program(
        std::env::current_exe().unwrap(),
        args.iter().map(|s| s.to_string()).collect(),
    );
    (dir, engine)
}

/// The monitor's entry when this test binary is run as one: the last
/// argument is a container directory. (In a normal test run it does
/// nothing.)
pub fn monitor_entry() {
    if let Some(dir) = std::env::args()
        .next_back()
        .filter(|a| a.starts_with('/') && Path::new(a).join("berth.json").exists())
    {
        std::process::exit(berth_engine::monitor::detached_monitor_main(Path::new(&dir)));
    }
}

/// A tar of a busybox root file system: `bin/busybox`, a link per applet
/// the tests use, `/etc/passwd`, `/tmp`.
pub fn busybox_tar() -> Vec<u8> {
    let bb = Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "busybox-static is not installed (apt-get install busybox-static)"
    );
    let mut b = tar::Builder::new(Vec::new());
    let header = || {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    };
    let dir = |b: &mut tar::Builder<Vec<u8>>, name: &str, mode: u32| {
        let mut h = header();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    };
    for (d, m) in [("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700)] {
        dir(&mut b, d, m);
    }
    let data = std::fs::read(bb).unwrap();
    let mut h = header();
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, "bin/busybox", &data[..]).unwrap();
    for app in ["sh", "cat", "echo", "sleep", "true", "ls", "id", "head", "wc", "tr"] {
        let mut h = header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, format!("bin/{app}"), "busybox").unwrap();
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    let mut h = header();
    h.set_mode(0o644);
    h.set_size(passwd.len() as u64);
    b.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
    b.into_inner().unwrap()
}

/// Imports the busybox file system as `name`; returns the image ID.
pub fn busybox(engine: &Engine, name: &str) -> String {
    let opts = ImportOptions {
        reference: Some(name.to_string()),
        changes: vec!["CMD [\"sh\"]".into()],
        source_name: "busybox.tar".into(),
        ..Default::default()
    };
    engine.import(Cursor::new(busybox_tar()), &opts).unwrap().to_string()
}

/// A `docker-registry serve` on 127.0.0.1 (plain HTTP), killed on drop.
pub struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    /// Its port.
    pub port: u16,
}

impl Registry {
    pub fn start() -> Registry {
        assert!(
            Command::new("sh")
                .args(["-c", "command -v docker-registry"])
                .output()
                .is_ok_and(|o| o.status.success()),
            "docker-registry is not installed (scripts/setup --tests installs it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, _dir: dir, port }
    }

    /// `127.0.0.1:PORT/repo`.
    pub fn name(&self, repo: &str) -> String {
        format!("127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
