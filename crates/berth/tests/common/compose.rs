//! `berth compose` as the compose_*.rs suites run it: in a project
//! directory, with compose's own variables (and the interpolation tests'
//! ones) cleared from the inherited environment so the caller's shell
//! cannot change what a test sees.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{stderr, stdout, Root};

/// Variables removed from every compose command's environment.
const CLEARED: [&str; 6] = [
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
    "COMPOSE_PROFILES",
    "PLAIN",
    "EMPTY",
    "UNSET",
];

/// `berth --root … compose ARGS` in `dir`, with `env` set.
pub fn compose_env(root: &Root, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut full = vec!["compose"];
    full.extend_from_slice(args);
    let mut c = root.cmd(&full);
    c.current_dir(dir);
    for k in CLEARED {
        c.env_remove(k);
    }
    c.envs(env.iter().copied());
    c.output().unwrap()
}

/// `berth --root … compose ARGS` in `dir`.
pub fn compose(root: &Root, dir: &Path, args: &[&str]) -> Output {
    compose_env(root, dir, &[], args)
}

/// [`compose_env`], asserting success; (stdout, stderr).
pub fn ok_env(root: &Root, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (String, String) {
    let o = compose_env(root, dir, env, args);
    assert!(
        o.status.success(),
        "compose {args:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    (stdout(&o), stderr(&o))
}

/// [`compose`], asserting success; (stdout, stderr).
pub fn ok(root: &Root, dir: &Path, args: &[&str]) -> (String, String) {
    ok_env(root, dir, &[], args)
}

/// Runs `compose down -v --remove-orphans -t 0` in the directory when
/// dropped, so a failing test leaves no container, network or volume of
/// the project behind.
pub struct Down<'a>(pub &'a Root, pub PathBuf);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = compose(self.0, &self.1, &["down", "-v", "--remove-orphans", "-t", "0"]);
    }
}
