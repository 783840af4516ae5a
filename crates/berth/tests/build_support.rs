//! Helpers shared by the `build_*` tests (included with `#[path]`; compiled
//! on its own it has no tests).
#![allow(dead_code, clippy::new_without_default)]

#[path = "common/mod.rs"]
mod common;

pub use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository's `examples/` directory.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A build context directory with these files.
pub fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("berth-ctx-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    for (name, body) in files {
        let p = d.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    d
}

/// `berth build ARGS…`, returning the output whatever the status.
pub fn build(root: &Root, args: &[&str]) -> Output {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    root.run(&a)
}

/// `berth build ARGS…`, asserting success; returns stdout.
pub fn build_ok(root: &Root, args: &[&str]) -> String {
    let mut a = vec!["build"];
    a.extend_from_slice(args);
    root.ok(&a)
}

/// The 12-hex ID of `Successfully built …`.
pub fn built_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no 'Successfully built' in:\n{out}"))
        .trim()
        .to_string()
}

/// The full ID of an image.
pub fn image_id(root: &Root, name: &str) -> String {
    let v = inspect(root, name);
    v["Id"].as_str().unwrap().to_string()
}

pub fn inspect(root: &Root, name: &str) -> serde_json::Value {
    let out = root.ok(&["image", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

/// An image's layer diff IDs (`RootFS.Layers`).
pub fn diff_ids(root: &Root, image: &str) -> Vec<String> {
    inspect(root, image)["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A file of an image, read from its layer directories (top-most first).
pub fn image_file(root: &Root, image: &str, path: &str) -> Option<String> {
    let v = inspect(root, image);
    let lowers = v["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for dir in lowers.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(path.trim_start_matches('/'));
        if let Ok(s) = std::fs::read_to_string(&p) {
            return Some(s);
        }
    }
    None
}

/// `berth run --rm IMAGE ARGS…` stdout, or `None` when this berth has no
/// `run` yet (the container commands land separately).
pub fn run_in(root: &Root, image: &str, args: &[&str]) -> Option<String> {
    let mut a = vec!["run", "--rm", image];
    a.extend_from_slice(args);
    let o = root.run(&a);
    let err = stderr(&o);
    if err.contains("unrecognized subcommand") || err.contains("not available yet") {
        return None;
    }
    assert!(o.status.success(), "berth run {a:?} failed:\n{err}");
    Some(stdout(&o))
}

/// Lines of the build output that show a step ran a container.
pub fn running_lines(out: &str) -> usize {
    out.lines().filter(|l| l.contains(" ---> Running in ")).count()
}

/// Overlay mounts under `dir`, from this mount namespace's mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// Processes whose command line holds `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(mut cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            // Arguments are NUL-separated.
            for b in cmd.iter_mut().filter(|b| **b == 0) {
                *b = b' ';
            }
            if cmd.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                out.push(pid);
            }
        }
    }
    out
}
