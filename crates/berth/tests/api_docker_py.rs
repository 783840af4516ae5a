//! docker-py (from PyPI, in the venv scripts/setup makes) drives
//! `berth system service`: images, a container berth's CLI created,
//! archives both ways, errors as docker-py's exceptions, attach over a
//! websocket.

#[path = "common/api.rs"]
mod api;
mod common;

use std::process::Output;

use api::{docker_py, Service};
use common::{stderr, stdout, Env};

/// Runs `tests/api/<script>` with docker-py's python and `args`.
fn py(script: &str, args: &[&str]) -> Output {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api")
        .join(script);
    std::process::Command::new(docker_py())
        .arg(path)
        .args(args)
        .output()
        .unwrap()
}

/// The script succeeded and its last word is `marker`.
fn assert_passed(o: &Output, marker: &str) {
    assert!(
        o.status.success() && stdout(o).contains(marker),
        "docker-py failed:\nstdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

#[test]
#[ignore = "needs root"]
fn docker_py_drives_images_and_a_container_through_the_socket() {
    let env = Env::new();
    let root = &env.root;
    root.ok(&["create", "--name", "pyweb", "-l", "made-by=berth", "bb", "sleep", "300"]);
    let svc = Service::start(root);
    let o = py("docker_py_story.py", &[&svc.host(), "pyweb"]);
    assert_passed(&o, "docker-py: every check passed");
    assert_eq!(root.ok(&["ps", "-aq"]).trim(), "", "berth's CLI sees the removal");
}

#[test]
#[ignore = "needs root"]
fn docker_py_attaches_over_a_websocket() {
    let env = Env::new();
    let root = &env.root;
    // docker-py speaks websocket only over TCP.
    let svc = Service::start_tcp(root);
    let o = py("docker_py_attach_ws.py", &[&svc.host()]);
    assert_passed(&o, "docker-py attach/ws: every check passed");
    assert_eq!(root.ok(&["ps", "-aq"]).trim(), "", "every container was removed");
}

#[test]
#[ignore = "needs root"]
fn docker_py_runs_builds_execs_and_sixteen_clients_at_once() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let o = py("docker_py_run.py", &[&svc.host()]);
    assert_passed(&o, "docker-py run: every check passed");
    // The store agrees: nothing left, nothing half-made.
    assert_eq!(root.ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(root.ok(&["volume", "ls", "-q"]).trim(), "");
}

#[test]
#[ignore = "needs root"]
fn sixteen_docker_py_clients_pull_build_run_and_race_at_once() {
    let env = Env::new();
    let root = &env.root;
    // Four images in a registry on loopback that the store does not hold.
    let reg = root.path().join("registry");
    std::fs::create_dir_all(&reg).unwrap();
    let (mut registry, port) = common::serve_registry(&reg, "", "", std::process::Stdio::null());
    let registry_addr = format!("127.0.0.1:{port}");
    for k in 0..4 {
        let ctx = root.path().join(format!("ctx{k}"));
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), format!("FROM bb\nRUN echo {k} > /k\n")).unwrap();
        let name = format!("{registry_addr}/conc/img{k}");
        root.ok(&["build", "-q", "-t", &name, ctx.to_str().unwrap()]);
        root.ok(&["push", &name]);
        root.ok(&["rmi", &name]);
    }
    root.ok(&["image", "prune", "-f"]);

    let svc = Service::start(root);
    let o = py("docker_py_concurrent.py", &[&svc.host(), &registry_addr]);
    let _ = registry.kill();
    let _ = registry.wait();
    assert_passed(&o, "16 clients, every check passed");
    // berth's CLI sees the same store: sixteen tags of eight builds, nothing running.
    assert_eq!(root.ok(&["ps", "-aq"]).trim(), "");
    let built = root.ok(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(built.lines().filter(|l| l.starts_with("built")).count(), 16, "{built}");
}

#[test]
#[ignore = "needs root"]
fn docker_py_sends_every_build_parameter_and_reads_stats_and_platforms() {
    let env = Env::new();
    let root = &env.root;
    let reg = root.path().join("registry");
    std::fs::create_dir_all(&reg).unwrap();
    let (mut registry, port) = common::serve_registry(&reg, "", "", std::process::Stdio::null());
    let registry_addr = format!("127.0.0.1:{port}");
    let name = format!("{registry_addr}/plat/bb:1");
    root.ok(&["tag", "bb", &name]);
    root.ok(&["push", &name]);
    root.ok(&["rmi", &name]);

    let svc = Service::start(root);
    let o = py("docker_py_build_params.py", &[&svc.host(), &registry_addr]);
    let _ = registry.kill();
    let _ = registry.wait();
    assert_passed(&o, "docker-py build params: every check passed");
    assert_eq!(root.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
#[ignore = "needs root"]
fn docker_py_host_config_fields_reach_the_container() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let o = py("docker_py_hostconfig.py", &[&svc.host()]);
    assert_passed(&o, "docker-py hostconfig: every check passed");
    assert_eq!(root.ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(
        root.ok(&["volume", "ls", "-q"]).trim(),
        "",
        "rm -v took the anonymous volume"
    );
}
