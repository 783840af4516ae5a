//! Early create through the API (berth-engine's containers/warm.rs): the
//! service has the runtime create a container as soon as a client created
//! it, and holds it created; the start is then a word to its monitor.
//! Driven by the real docker CLI; the hold itself is seen in the store
//! (`warm.sock` in the container's directory, the runtime's state), since
//! a client must see nothing of it.

#[path = "common/api.rs"]
mod api;
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use api::{docker, docker_clients, docker_ok, events_until_now, Service};
use common::{stderr, stdout, Env, Root};

fn container_dir(root: &Root, id: &str) -> PathBuf {
    root.path().join("store/containers").join(id)
}

/// The runtime's state of a container (crun's, under the store's root).
fn runtime_state(root: &Root, id: &str) -> PathBuf {
    root.path().join("store/runtime").join(id)
}

fn held(root: &Root, id: &str) -> bool {
    container_dir(root, id).join("warm.sock").exists()
}

fn wait_until(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The bind mount that keeps container `id`'s network namespace (berth's
/// run directory, `/run/berth/net-*/netns/ID`), if there is one.
fn netns_of(id: &str) -> Option<PathBuf> {
    std::fs::read_dir("/run/berth")
        .ok()?
        .flatten()
        .map(|e| e.path().join("netns").join(id))
        .find(|p| p.exists())
}

/// Whether anything is mounted under `dir`.
fn mounted_under(dir: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.display().to_string();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&d)))
}

/// `docker create ARGS`, once the service holds the container; its ID.
fn create_held(root: &Root, d: &dyn Fn(&[&str]) -> String, args: &[&str]) -> String {
    let id = d(&[&["create"], args].concat()).trim().to_string();
    wait_until("the container is held", Duration::from_secs(10), || held(root, &id));
    id
}

/// Nothing of an early create is left: no runtime state, no mount, no
/// socket; the container is as `create` left it.
fn assert_let_go(root: &Root, id: &str) {
    assert!(!held(root, id), "still held");
    assert!(!runtime_state(root, id).exists(), "the runtime's state is left");
    assert!(!mounted_under(&container_dir(root, id)), "its rootfs is still mounted");
}

/// The actions of the events of container `name` from `since` until now.
fn actions(d: &dyn Fn(&[&str]) -> String, since: &str, name: &str) -> Vec<String> {
    d(&[
        "events",
        "--since",
        since,
        "--until",
        &events_until_now(),
        "--filter",
        &format!("container={name}"),
        "--format",
        "{{.Action}}",
    ])
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

#[test]
#[ignore = "needs root"]
fn a_created_container_is_held_and_its_start_is_a_word() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let cli = &docker_clients()[0];
    let d = |args: &[&str]| docker_ok(cli, &svc, root, args);

    // `run --rm` through a hold: output, exit code, and gone.
    let o = docker(
        cli,
        &svc,
        root,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "bb",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    assert_eq!(d(&["ps", "-aq"]), "");

    // Held after create, and still `created` for everyone.
    let id = create_held(
        root,
        &d,
        &["--network", "none", "--name", "held", "bb", "sh", "-c", "echo hi"],
    );
    assert!(runtime_state(root, &id).exists(), "held, yet no runtime state");
    assert_eq!(
        d(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Pid}} {{.State.StartedAt}}",
            "held"
        ])
        .trim(),
        "created 0 0001-01-01T00:00:00Z"
    );
    assert_eq!(
        d(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]).trim(),
        "held Created"
    );
    let since = d(&["inspect", "-f", "{{.Created}}", "held"]).trim().to_string();
    assert_eq!(d(&["start", "-a", "held"]), "hi\n");
    assert!(!held(root, &id));
    assert_eq!(
        d(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "held"]).trim(),
        "exited 0"
    );
    // Docker's events for a create and a start -a, nothing more.
    assert_eq!(actions(&d, &since, "held"), ["create", "attach", "start", "die"]);

    // `rm` of a held container: nothing of the hold is left behind.
    let gone = create_held(root, &d, &["--network", "none", "bb", "true"]);
    d(&["rm", &gone]);
    assert!(!container_dir(root, &gone).exists());
    assert_let_go(root, &gone);

    // berth's own CLI starts a container the service holds.
    let by_cli = create_held(root, &d, &["--network", "none", "bb", "sh", "-c", "echo cli"]);
    assert_eq!(root.ok(&["start", "-a", &by_cli]), "cli\n");

    // A change before the start lets the hold go: the start creates the
    // container anew, as it now is.
    let updated = create_held(
        root,
        &d,
        &[
            "--network",
            "none",
            "bb",
            "sh",
            "-c",
            "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
        ],
    );
    d(&["update", "--pids-limit", "77", &updated]);
    assert_let_go(root, &updated);
    assert_eq!(d(&["start", "-a", &updated]), "77\n");

    // A command that is not there: the hold's create fails, quietly; the
    // start fails as Docker's does, and says why.
    let o = docker(
        cli,
        &svc,
        root,
        &["run", "--network", "none", "--name", "nope", "bb", "nope"],
    );
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("\"nope\": executable file not found"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        d(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "nope"]).trim(),
        "created 127"
    );
}

/// A shell line that prints the container's line of /etc/hosts for its
/// address on eth0.
const OWN_HOSTS_LINE: &str =
    "a=$(ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1); grep \"^$a\\s\" /etc/hosts";

/// Whether `out` (of [`OWN_HOSTS_LINE`]) is one line naming a bridge
/// address: the container's short ID (its host name), when given.
fn names_its_address(out: &str, id: Option<&str>) -> bool {
    let mut lines = out.lines();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return false;
    };
    let mut fields = line.split_whitespace();
    let addr_ok = fields
        .next()
        .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .is_some_and(|a| a.is_private());
    addr_ok && id.is_none_or(|id| fields.any(|n| n == &id[..12]))
}

#[test]
#[ignore = "needs root"]
fn a_container_on_a_bridge_is_held_in_a_namespace_of_its_own_and_joins_at_its_start() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let cli = &docker_clients()[0];
    let d = |args: &[&str]| docker_ok(cli, &svc, root, args);

    // `docker run --rm` on the default bridge: joined while the runtime
    // created it, its /etc/hosts names it at its address.
    let out = d(&["run", "--rm", "bb", "sh", "-c", OWN_HOSTS_LINE]);
    assert!(names_its_address(&out, None), "{out:?}");

    // Held: its namespace exists, and nothing else of the network shows.
    let id = create_held(root, &d, &["--name", "bheld", "bb", "sh", "-c", OWN_HOSTS_LINE]);
    assert!(
        netns_of(&id).is_some(),
        "held on a bridge without a namespace of its own"
    );
    assert_eq!(
        d(&["network", "inspect", "-f", "{{len .Containers}}", "bridge"]).trim(),
        "0"
    );
    assert_eq!(
        d(&[
            "inspect",
            "-f",
            "[{{.NetworkSettings.Networks.bridge.IPAddress}}]",
            "bheld"
        ])
        .trim(),
        "[]"
    );
    // Started (a while after its create): it joins then.
    let line = d(&["start", "-a", "bheld"]);
    assert_eq!(d(&["inspect", "-f", "{{.State.Status}}", "bheld"]).trim(), "exited");
    assert!(names_its_address(&line, Some(&id)), "{line:?}");
    assert!(netns_of(&id).is_none(), "its namespace outlived it");
    // Docker's events (dockerd 20.10 gives the same, on a network of its
    // own): the network's connect just before the start, its disconnect
    // after the end.
    let since = d(&["inspect", "-f", "{{.Created}}", "bheld"]).trim().to_string();
    let until = events_until_now();
    let events = d(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"container\"}} {{.Actor.Attributes.name}}",
    ]);
    let mine: Vec<String> = events
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let about = match f[0] {
                "network" => f[3] == id && f[4] == "bridge",
                _ => f[2] == id,
            };
            about.then(|| format!("{} {}", f[0], f[1]))
        })
        .collect();
    assert_eq!(
        mine,
        [
            "container create",
            "container attach",
            "network connect",
            "container start",
            "container die",
            "network disconnect"
        ],
        "{events}"
    );

    // A held one removed: no namespace, no endpoint left.
    let gone = create_held(root, &d, &["bb", "true"]);
    d(&["rm", &gone]);
    assert_let_go(root, &gone);
    assert!(
        netns_of(&gone).is_none(),
        "the namespace of a removed held container is left"
    );
    assert_eq!(
        d(&["network", "inspect", "-f", "{{len .Containers}}", "bridge"]).trim(),
        "0"
    );

    // `rm -f` of a running one: dockerd's kill (signal 9), then die.
    d(&["run", "-d", "--name", "killed", "bb", "sleep", "100"]);
    let since = d(&["inspect", "-f", "{{.Created}}", "killed"]).trim().to_string();
    d(&["rm", "-f", "killed"]);
    assert_eq!(
        actions(&d, &since, "killed"),
        ["create", "start", "kill", "die", "destroy"]
    );

    // Held, it is still only created: a prune takes it, as dockerd's would.
    let pruned = create_held(root, &d, &["bb", "true"]);
    assert!(
        d(&["container", "prune", "-f"]).contains(&pruned),
        "a held container was not pruned"
    );
    assert!(!container_dir(root, &pruned).exists());
    assert_let_go(root, &pruned);
    assert!(
        netns_of(&pruned).is_none(),
        "the namespace of a pruned held container is left"
    );
}

#[test]
#[ignore = "needs root"]
fn a_hold_nobody_starts_is_let_go_without_a_trace() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let cli = &docker_clients()[0];
    let d = |args: &[&str]| docker_ok(cli, &svc, root, args);

    let id = create_held(root, &d, &["--network", "none", "--name", "idle", "bb", "echo", "late"]);
    let bridged = create_held(root, &d, &["--name", "idle-bridged", "bb", "sh", "-c", OWN_HOSTS_LINE]);
    // berth_runtime::warm::HOLD_LIMIT is 10 s.
    wait_until("the hold is let go", Duration::from_secs(30), || {
        [&id, &bridged]
            .iter()
            .all(|id| !held(root, id) && !runtime_state(root, id).exists() && !mounted_under(&container_dir(root, id)))
    });
    assert_let_go(root, &id);
    assert_let_go(root, &bridged);
    assert!(netns_of(&bridged).is_none(), "the namespace of a hold let go is left");
    // Started later, it makes its namespace and joins its network anew.
    let line = d(&["start", "-a", "idle-bridged"]);
    assert!(names_its_address(&line, Some(&bridged)), "{line:?}");
    assert_eq!(
        d(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} [{{.State.Error}}]",
            "idle"
        ])
        .trim(),
        "created 0 []"
    );
    let since = d(&["inspect", "-f", "{{.Created}}", "idle"]).trim().to_string();
    assert_eq!(actions(&d, &since, "idle"), ["create"]);
    // Started later, the usual way.
    assert_eq!(d(&["start", "-a", "idle"]), "late\n");
    assert_eq!(d(&["inspect", "-f", "{{.State.Status}}", "idle"]).trim(), "exited");
}
