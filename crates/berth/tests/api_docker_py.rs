//! docker-py (from PyPI, in the venv scripts/setup makes) drives
//! `berth system service`: images, a container berth's CLI created,
//! archives both ways, errors as docker-py's exceptions.

#[path = "common/api.rs"]
mod api;
mod common;

use api::{docker_py, Service};
use common::{stderr, stdout, Env};

#[test]
#[ignore = "needs root"]
fn docker_py_drives_images_and_a_container_through_the_socket() {
    let env = Env::new();
    let root = &env.root;
    root.ok(&["create", "--name", "pyweb", "-l", "made-by=berth", "bb", "sleep", "300"]);
    let svc = Service::start(root);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/docker_py_story.py");
    let o = std::process::Command::new(docker_py())
        .arg(&script)
        .arg(svc.host())
        .arg("pyweb")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker-py failed:\nstdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&o).contains("docker-py: every check passed"));
    assert_eq!(root.ok(&["ps", "-aq"]).trim(), "", "berth's CLI sees the removal");
}

#[test]
#[ignore = "needs root"]
fn docker_py_runs_builds_execs_and_sixteen_clients_at_once() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/docker_py_run.py");
    let o = std::process::Command::new(docker_py())
        .arg(&script)
        .arg(svc.host())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker-py failed:\nstdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&o).contains("docker-py run: every check passed"));
    // The store agrees: nothing left, nothing half-made.
    assert_eq!(root.ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(root.ok(&["volume", "ls", "-q"]).trim(), "");
}
