//! `run`/`create` flags that set a container's kernel parameters and
//! resources (issue #17), each checked as the docker command line with
//! what the container then sees, and with Docker's words when refused.

mod common;

use common::{stderr, Env};

/// `--sysctl`: namespaced parameters are set in the container's own
/// namespaces (the host's stay as they were); others, and `net.*` with
/// the host's network, are refused in Docker's words.
#[test]
#[ignore = "needs root"]
fn sysctl_sets_the_containers_namespaced_parameters() {
    let e = Env::new();
    let r = &e.root;
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    assert_eq!(
        r.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmni=1234",
            "bb",
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/kernel/shmmni",
        ]),
        "1\n1234\n"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(), host_shm);

    let id = r.ok(&[
        "create",
        "--network",
        "none",
        "--sysctl",
        "net.core.somaxconn=512",
        "bb",
        "true",
    ]);
    assert_eq!(
        r.ok(&["inspect", "-f", "{{json .HostConfig.Sysctls}}", id.trim()]),
        "{\"net.core.somaxconn\":\"512\"}\n"
    );
    let plain = r.ok(&["create", "--network", "none", "bb", "true"]);
    assert_eq!(
        r.ok(&["inspect", "-f", "{{json .HostConfig.Sysctls}}", plain.trim()]),
        "null\n"
    );

    let o = r.run(&["run", "--rm", "--sysctl", "kernel.hostname=x", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains(
            "invalid argument \"kernel.hostname=x\" for \"--sysctl\" flag: sysctl 'kernel.hostname=x' is not allowed"
        ),
        "{}",
        stderr(&o)
    );
    let o = r.run(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "bb",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"),
        "{}",
        stderr(&o)
    );
    r.ok(&["rm", id.trim(), plain.trim()]);
}
