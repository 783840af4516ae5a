//! Test helpers: a busybox rootfs, overlay-mounted per container, and a way
//! to run containers through the real OCI runtime.
#![allow(dead_code)]

use berth_runtime::{build_spec, mount_overlay, unmount, ContainerConfig, OciRuntime};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Fails the test unless containers can run here: as root, with an OCI
/// runtime and busybox installed. Such tests are `#[ignore = "needs
/// root"]`; `scripts/test` runs them as root with `--include-ignored`.
pub fn need_root() {
    assert!(
        rustix::process::geteuid().as_raw() == 0,
        "this test needs root: run it as root with --include-ignored (scripts/test does)"
    );
    assert!(
        OciRuntime::select(None, Path::new("/tmp")).is_ok(),
        "no OCI runtime (runc/crun) is installed (scripts/setup installs them)"
    );
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox is missing (apt-get install busybox-static)"
    );
}

/// A shared read-only busybox layer.
pub fn busybox_layer() -> &'static Path {
    static L: OnceLock<PathBuf> = OnceLock::new();
    L.get_or_init(|| {
        // Built once per target dir: staged under a unique name, renamed into place.
        let done = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("berth-runtime-busybox-layer-v1");
        if done.join("etc/group").exists() {
            return done;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("busybox-layer-tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        for d in ["etc", "mnt", "tmp", "proc", "sys", "dev", "root"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
        let out = std::process::Command::new("/bin/busybox").arg("--list").output().unwrap();
        for name in String::from_utf8(out.stdout).unwrap().lines() {
            if name != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(name));
            }
        }
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:root,app\n",
        )
        .unwrap();
        if std::fs::rename(&dir, &done).is_err() {
            // Another test binary won the race; use its copy.
            let _ = std::fs::remove_dir_all(&dir);
        }
        done
    })
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One container's directory with an overlay rootfs; unmounts on drop.
pub struct Ctr {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub merged: PathBuf,
    pub cfg: ContainerConfig,
    pub runtime: OciRuntime,
}

impl Ctr {
    pub fn new(name: &str, args: &[&str]) -> Ctr {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ctr");
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let merged = dir.join("merged");
        mount_overlay(
            &[busybox_layer().to_path_buf()],
            &dir.join("upper"),
            &dir.join("work"),
            &merged,
        )
        .unwrap();
        let id = format!(
            "brt-{}-{}-{name}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let cfg = ContainerConfig {
            id: id.clone(),
            name: name.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let runtime = OciRuntime::select(None, &tmp.path().join("runtime")).unwrap();
        Ctr {
            tmp,
            dir,
            merged,
            cfg,
            runtime,
        }
    }

    /// Writes config.json and berth.json from `self.cfg`.
    pub fn prepare(&self) {
        let spec = build_spec(&self.cfg, &self.merged, &self.dir).unwrap();
        spec.save(self.dir.join("config.json")).unwrap();
        std::fs::write(self.dir.join("berth.json"), serde_json::to_vec(&self.cfg).unwrap()).unwrap();
    }

    pub fn opts(&self) -> berth_runtime::MonitorOptions {
        berth_runtime::MonitorOptions {
            runtime: self.runtime.clone(),
            attached: None,
            remove_when_done: false,
            on_done: Default::default(),
            wait_attach: false,
            // The tests run `exec` from this very process.
            reap_strays: true,
            hold: false,
            ready: None,
        }
    }

    /// Runs to completion in-process; returns the monitor's result.
    pub fn run(&self) -> berth_runtime::Result<i32> {
        self.prepare();
        berth_runtime::monitor_main(&self.dir, self.opts())
    }

    /// The container's stdout+stderr as recorded in ctr.log.
    pub fn output(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("ctr.log")).unwrap_or_default();
        text.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["log"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    pub fn state(&self) -> berth_runtime::ContainerState {
        berth_runtime::read_state(&self.dir).unwrap()
    }

    /// Waits until `f(state)` holds (or panics after `secs`).
    pub fn wait_for(&self, secs: u64, what: &str, f: impl Fn(&berth_runtime::ContainerState) -> bool) {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let st = self.state();
            if f(&st) {
                return;
            }
            assert!(std::time::Instant::now() < end, "timed out waiting for {what}: {st:?}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = self.runtime.delete(&self.cfg.id, true);
        let _ = unmount(&self.merged);
    }
}

/// A writer that keeps what it gets; clones share it.
#[derive(Clone, Default)]
pub struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Buf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    pub fn stream(&self) -> berth_runtime::StreamOut {
        berth_runtime::StreamOut::Writer(Box::new(self.clone()))
    }
}

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
