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

/// The container's cgroup v1 directory of `controller` (from its
/// process's `/proc/PID/cgroup`), as the runtime made it.
fn cgroup_dir(r: &common::Root, id: &str, controller: &str) -> std::path::PathBuf {
    let pid = r.ok(&["inspect", "-f", "{{.State.Pid}}", id]).trim().to_string();
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = text
        .lines()
        .find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            ctrls.split(',').any(|c| c == controller).then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("no {controller} cgroup in {text}"));
    std::path::Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'))
}

fn read(p: std::path::PathBuf) -> String {
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// `--cpuset-cpus`, `--cpuset-mems`, `--cpu-period`, `--cpu-quota`,
/// `--memory-reservation`, `--memory-swappiness`, `--oom-score-adj` and
/// `--oom-kill-disable`: what the container's process and its cgroup get,
/// what inspect shows, and Docker's refusals.
#[test]
#[ignore = "needs root"]
fn cpu_and_memory_controls_reach_the_cgroup() {
    let e = Env::new();
    let r = &e.root;
    // What the process sees.
    assert_eq!(
        r.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--cpuset-cpus",
            "0",
            "bb",
            "grep",
            "Cpus_allowed_list",
            "/proc/self/status"
        ]),
        "Cpus_allowed_list:\t0\n"
    );
    assert_eq!(
        r.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--oom-score-adj",
            "100",
            "bb",
            "cat",
            "/proc/self/oom_score_adj"
        ]),
        "100\n"
    );
    // What the cgroup holds (v1 controllers, as crun uses them here).
    let id = r
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--cpuset-cpus",
            "0",
            "--cpuset-mems",
            "0",
            "--cpu-period",
            "50000",
            "--cpu-quota",
            "25000",
            "-m",
            "64m",
            "--memory-reservation",
            "32m",
            "--memory-swappiness",
            "10",
            "--oom-kill-disable",
            "bb",
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let v1 = std::path::Path::new("/sys/fs/cgroup/cpuset/cpuset.cpus").exists();
    if v1 {
        assert_eq!(read(cgroup_dir(r, &id, "cpuset").join("cpuset.cpus")), "0");
        assert_eq!(read(cgroup_dir(r, &id, "cpuset").join("cpuset.mems")), "0");
        assert_eq!(read(cgroup_dir(r, &id, "cpu").join("cpu.cfs_period_us")), "50000");
        assert_eq!(read(cgroup_dir(r, &id, "cpu").join("cpu.cfs_quota_us")), "25000");
        let mem = cgroup_dir(r, &id, "memory");
        assert_eq!(read(mem.join("memory.soft_limit_in_bytes")), (32u64 << 20).to_string());
        assert_eq!(read(mem.join("memory.swappiness")), "10");
        assert!(read(mem.join("memory.oom_control")).contains("oom_kill_disable 1"));
    } else {
        let pid = r.ok(&["inspect", "-f", "{{.State.Pid}}", &id]).trim().to_string();
        let path = read(format!("/proc/{pid}/cgroup").into());
        let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches("0::/"));
        assert_eq!(read(dir.join("cpuset.cpus")), "0");
        assert_eq!(read(dir.join("cpu.max")), "25000 50000");
        assert_eq!(read(dir.join("memory.low")), (32u64 << 20).to_string());
    }
    assert_eq!(
        r.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.CpusetCpus}} {{.HostConfig.CpusetMems}} {{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.MemoryReservation}} {{.HostConfig.MemorySwappiness}} {{.HostConfig.OomKillDisable}} {{.HostConfig.OomScoreAdj}}",
            &id
        ]),
        "0 0 50000 25000 33554432 10 true 0\n"
    );
    r.ok(&["rm", "-f", &id]);
    let plain = r.ok(&["create", "--network", "none", "bb", "true"]).trim().to_string();
    assert_eq!(
        r.ok(&["inspect", "-f", "{{.HostConfig.CpusetCpus}}|{{.HostConfig.CpuQuota}} {{json .HostConfig.MemorySwappiness}} {{.HostConfig.OomKillDisable}}", &plain]),
        "|0 null false\n"
    );
    r.ok(&["rm", &plain]);
    // Docker's warning for an OOM killer disabled without a memory limit.
    let o = r.run(&["create", "--network", "none", "--oom-kill-disable", "bb", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "WARNING: Disabling the OOM killer on containers without setting a '-m/--memory' limit may be dangerous."
        ),
        "{}",
        stderr(&o)
    );
    r.ok(&["rm", common::stdout(&o).trim()]);
    // Docker's refusals, in its words.
    for (args, want) in [
        (&["--cpuset-cpus", "a"][..], "Invalid value a for cpuset cpus"),
        (
            &["--cpuset-cpus", "0-4096"][..],
            "Requested CPUs are not available - requested 0-4096, available: ",
        ),
        (
            &["--cpuset-mems", "7"][..],
            "Requested memory nodes are not available - requested 7, available: ",
        ),
        (
            &["--cpu-period", "999"][..],
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            &["--cpu-quota", "999"][..],
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ),
        (
            &["--cpus", "1", "--cpu-quota", "5000"][..],
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ),
        (
            &["--memory-reservation", "1m"][..],
            "Minimum memory reservation allowed is 6MB",
        ),
        (
            &["-m", "16m", "--memory-reservation", "32m"][..],
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ),
        (
            &["--kernel-memory", "4m"][..],
            "Minimum kernel memory limit allowed is 6MB",
        ),
        (
            &["--memory-swappiness", "101"][..],
            "Invalid value: 101, valid memory swappiness range is 0-100",
        ),
        (
            &["--oom-score-adj", "1001"][..],
            "Invalid value 1001, range for oom score adj is [-1000, 1000]",
        ),
    ] {
        let o = r.run(&[&["run", "--rm"][..], args, &["bb", "true"]].concat());
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(r.ok(&["ps", "-aq"]), "");
    // A kernel memory limit no cgroup here can hold: run, with Docker's warnings.
    let o = r.run(&["run", "--rm", "--kernel-memory", "8m", "bb", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "WARNING: Specifying a kernel memory limit is deprecated and will be removed in a future release.\n\
         WARNING: Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. \
         Limitation discarded.\n"
    );
}

/// `update --cpuset-cpus/--cpu-period/--cpu-quota/--memory-reservation`:
/// a running container's cgroup and inspect follow; `--cpu-quota -1`
/// lifts the quota.
#[test]
#[ignore = "needs root"]
fn update_changes_cpuset_cfs_and_reservation_live() {
    let e = Env::new();
    let r = &e.root;
    let id = r
        .ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--cpu-quota",
            "20000",
            "bb",
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    r.ok(&[
        "update",
        "--cpuset-cpus",
        "0",
        "--cpu-period",
        "40000",
        "--cpu-quota",
        "30000",
        "--memory-reservation",
        "48m",
        &id,
    ]);
    assert_eq!(
        r.ok(&["exec", &id, "grep", "Cpus_allowed_list", "/proc/self/status"]),
        "Cpus_allowed_list:\t0\n"
    );
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists() {
        let cpu = cgroup_dir(r, &id, "cpu");
        assert_eq!(read(cpu.join("cpu.cfs_period_us")), "40000");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "30000");
        assert_eq!(
            read(cgroup_dir(r, &id, "memory").join("memory.soft_limit_in_bytes")),
            (48u64 << 20).to_string()
        );
    }
    assert_eq!(
        r.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.CpusetCpus}} {{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.MemoryReservation}}",
            &id
        ]),
        "0 40000 30000 50331648\n"
    );
    r.ok(&["update", "--cpu-quota", "-1", &id]);
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists() {
        assert_eq!(read(cgroup_dir(r, &id, "cpu").join("cpu.cfs_quota_us")), "-1");
    }
    assert_eq!(r.ok(&["inspect", "-f", "{{.HostConfig.CpuQuota}}", &id]), "0\n");
    let o = r.run(&["update", "--cpuset-cpus", "0-4096", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Requested CPUs are not available - requested 0-4096"),
        "{}",
        stderr(&o)
    );
    r.ok(&["rm", "-f", &id]);
}

/// `--annotation`: in the OCI config the runtime gets and in inspect's
/// HostConfig.Annotations.
#[test]
#[ignore = "needs root"]
fn annotation_reaches_the_oci_config() {
    let e = Env::new();
    let r = &e.root;
    let id = r
        .ok(&[
            "create",
            "--network",
            "none",
            "--annotation",
            "org.example.k=v1",
            "bb",
            "true",
        ])
        .trim()
        .to_string();
    assert_eq!(
        r.ok(&["inspect", "-f", "{{json .HostConfig.Annotations}}", &id]),
        "{\"org.example.k\":\"v1\"}\n"
    );
    r.ok(&["start", &id]);
    let cfg = std::fs::read_to_string(r.path().join("store/containers").join(&id).join("config.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(v["annotations"]["org.example.k"], "v1", "{cfg}");
    let o = r.run(&["create", "--annotation", "novalue", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    r.ok(&["rm", "-f", &id]);
}

/// `--expose`: Config.ExposedPorts (a range one key per port), and `-P`
/// publishes it on a host port.
#[test]
#[ignore = "needs root"]
fn expose_adds_exposed_ports_and_p_publishes_them() {
    let e = Env::new();
    let r = &e.root;
    let id = r
        .ok(&["create", "--expose", "7070", "--expose", "7080-7081/udp", "bb", "true"])
        .trim()
        .to_string();
    assert_eq!(
        r.ok(&["inspect", "-f", "{{json .Config.ExposedPorts}}", &id]),
        "{\"7070/tcp\":{},\"7080/udp\":{},\"7081/udp\":{}}\n"
    );
    let published = r
        .ok(&["run", "-d", "-P", "--expose", "7070", "bb", "sleep", "1000"])
        .trim()
        .to_string();
    let port = r.ok(&["port", &published, "7070/tcp"]);
    let host_port: u16 = port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(host_port > 0, "{port}");
    let o = r.run(&["create", "--expose", "x", "bb", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid range format for --expose: x"),
        "{}",
        stderr(&o)
    );
    r.ok(&["rm", "-f", &id, &published]);
}

/// `--group-add`: supplementary groups by number and by a name of the
/// image's /etc/group (`id -G` inside), shown by inspect; exec gets them
/// too; a group the image lacks is refused.
#[test]
#[ignore = "needs root"]
fn group_add_gives_the_process_supplementary_groups() {
    let e = Env::new();
    let r = &e.root;
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nRUN mkdir -p /etc && echo 'root:x:0:' > /etc/group && echo 'staff:x:50:' >> /etc/group\n",
    )
    .unwrap();
    r.ok(&["build", "-q", "-t", "bbgroups", ctx.path().to_str().unwrap()]);
    let out = r.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--group-add",
        "1234",
        "--group-add",
        "staff",
        "bbgroups",
        "id",
        "-G",
    ]);
    let groups: Vec<&str> = out.split_whitespace().collect();
    assert!(groups.contains(&"1234") && groups.contains(&"50"), "{out}");
    let id = r.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--group-add",
        "777",
        "bbgroups",
        "sleep",
        "1000",
    ]);
    let id = id.trim();
    assert_eq!(
        r.ok(&["inspect", "--format", "{{json .HostConfig.GroupAdd}}", id])
            .trim(),
        r#"["777"]"#
    );
    assert!(r.ok(&["exec", id, "id", "-G"]).split_whitespace().any(|g| g == "777"));
    // The primary group is among the supplementary ones, as in Docker's
    // containers (`id` shows `groups=2000,…`), for run and exec alike.
    let groups = |args: &[&str]| {
        let out = r.ok(args);
        let (_, list) = out.trim().rsplit_once("groups=").unwrap_or_else(|| panic!("{out}"));
        list.to_string()
    };
    assert_eq!(groups(&["exec", "-u", "1000:2000", id, "id"]), "2000");
    r.ok(&["rm", "-f", id]);
    let run = ["run", "--rm", "--network", "none"];
    assert_eq!(groups(&[&run[..], &["bb", "id"]].concat()), "0(root)");
    assert_eq!(
        groups(&[&run[..], &["-u", "1000:2000", "--group-add", "3000", "bb", "id"]].concat()),
        "2000,3000"
    );
    let o = r.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--group-add",
        "nosuch",
        "bbgroups",
        "true",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("unable to find group nosuch"), "{}", stderr(&o));
}
