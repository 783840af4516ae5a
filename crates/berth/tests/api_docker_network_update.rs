//! The real `docker` CLI through `berth system service`: `network
//! connect --alias` gives a running container a name on a user network
//! that another container resolves and reaches, `network disconnect`
//! takes it away; `update` changes a container's restart policy and
//! limits (the cgroup of a running one too).

#[path = "common/api.rs"]
mod api;
mod common;

use api::{docker, docker_clients, docker_ok, Service};
use common::{stderr, stdout, Env};

/// Removes the containers, then the networks, however the test ends.
struct NetEnv(Env);

impl Drop for NetEnv {
    fn drop(&mut self) {
        for id in stdout(&self.0.root.run(&["ps", "-aq", "--no-trunc"])).lines() {
            let _ = self.0.root.run(&["rm", "-f", id]);
        }
        let _ = self.0.root.run(&["network", "prune", "-f"]);
    }
}

#[test]
#[ignore = "needs root"]
fn docker_network_connect_disconnect_and_update() {
    let env = NetEnv(Env::new());
    let root = &env.0.root;
    let svc = Service::start(root);
    let clients = docker_clients();
    let cli = &clients[0];
    let d = |args: &[&str]| docker_ok(cli, &svc, root, args);

    d(&["network", "create", "apinet"]);
    d(&["run", "-d", "--name", "target", "bb", "sleep", "300"]);
    d(&[
        "run",
        "-d",
        "--name",
        "probe",
        "--network",
        "apinet",
        "bb",
        "sleep",
        "300",
    ]);

    // Connected live with an alias: the probe resolves it to the target's
    // address on that network and reaches it.
    d(&["network", "connect", "--alias", "webalias", "apinet", "target"]);
    let addr = d(&[
        "inspect",
        "--format",
        "{{(index .NetworkSettings.Networks \"apinet\").IPAddress}}",
        "target",
    ]);
    let addr = addr.trim();
    assert!(addr.starts_with("172."), "target's address on apinet: {addr:?}");
    let looked = d(&["exec", "probe", "nslookup", "webalias"]);
    assert!(looked.contains(&format!("Address: {addr}")), "{looked}");
    let ping = d(&["exec", "probe", "ping", "-c", "1", "-W", "2", "webalias"]);
    assert!(ping.contains(&format!("from {addr}")), "{ping}");

    // Twice is Docker's refusal; a missing network is a 404.
    let o = docker(cli, &svc, root, &["network", "connect", "apinet", "target"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("already exists in network apinet"),
        "{}",
        stderr(&o)
    );
    let o = docker(cli, &svc, root, &["network", "connect", "nosuchnet", "target"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nosuchnet"), "{}", stderr(&o));

    // Disconnected: the name is gone; a second disconnect is refused
    // unless forced.
    d(&["network", "disconnect", "apinet", "target"]);
    let o = docker(cli, &svc, root, &["exec", "probe", "nslookup", "webalias"]);
    assert!(!o.status.success(), "webalias still resolves: {}", stdout(&o));
    let nets = d(&[
        "inspect",
        "--format",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        "target",
    ]);
    assert_eq!(nets.trim(), "bridge");
    let o = docker(cli, &svc, root, &["network", "disconnect", "apinet", "target"]);
    assert!(
        stderr(&o).contains("is not connected to the network apinet"),
        "{}",
        stderr(&o)
    );
    d(&["network", "disconnect", "--force", "apinet", "target"]);

    // update: the restart policy and limits, in inspect and in the cgroup.
    for client in &clients {
        let out = docker_ok(
            client,
            &svc,
            root,
            &[
                "update",
                "--restart",
                "on-failure:3",
                "--memory",
                "64m",
                "--pids-limit",
                "40",
                "target",
            ],
        );
        assert_eq!(out.trim(), "target", "{}", client.display());
    }
    let shown = d(&[
        "inspect",
        "--format",
        "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
        "target",
    ]);
    assert_eq!(shown.trim(), "on-failure:3 67108864 40");
    let limits = d(&[
        "exec",
        "target",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(limits.split_whitespace().collect::<Vec<_>>(), ["67108864", "40"]);

    // A restart policy given after the start is the one the container's
    // monitor follows when it exits.
    d(&["run", "-d", "--name", "failing", "bb", "sh", "-c", "sleep 1; exit 1"]);
    d(&["update", "--restart", "on-failure:1", "failing"]);
    let code = d(&["wait", "failing"]);
    assert_eq!(code.trim(), "1");
    let mut count = String::new();
    for _ in 0..100 {
        count = d(&["inspect", "--format", "{{.RestartCount}} {{.State.Status}}", "failing"]);
        if count.trim() == "1 exited" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(count.trim(), "1 exited");

    // Docker's refusals.
    let o = docker(cli, &svc, root, &["update", "--memory", "1m", "target"]);
    assert!(
        stderr(&o).contains("Minimum memory limit allowed is 6MB"),
        "{}",
        stderr(&o)
    );
    let o = docker(cli, &svc, root, &["update", "--restart", "always", "nosuch"]);
    assert!(stderr(&o).contains("No such container: nosuch"), "{}", stderr(&o));
    d(&["rm", "-f", "target", "probe", "failing"]);
    d(&["network", "rm", "apinet"]);
}
