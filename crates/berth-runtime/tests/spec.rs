//! build_spec and resolve_args (no containers started).

mod common;
use berth_runtime::*;
use oci_spec::runtime::{Capability, LinuxNamespaceType};
use std::collections::HashSet;

fn v(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn resolve_args_docker_table() {
    // Rows of Docker's ENTRYPOINT x CMD table (exec forms; shell forms are already lists).
    let ep_exec = v(&["/bin/ep", "p1"]);
    let ep_shell = v(&["/bin/sh", "-c", "exec_entry p1_entry"]);
    let cmd_exec = v(&["exec_cmd", "p1_cmd"]);
    let cmd_shell = v(&["/bin/sh", "-c", "exec_cmd p1_cmd"]);
    // No ENTRYPOINT
    assert_eq!(resolve_args(&[], &[], None, vec![]), Vec::<String>::new());
    assert_eq!(resolve_args(&[], &cmd_exec, None, vec![]), cmd_exec);
    assert_eq!(resolve_args(&[], &cmd_shell, None, vec![]), cmd_shell);
    // ENTRYPOINT exec_entry p1_entry (shell form)
    assert_eq!(resolve_args(&ep_shell, &[], None, vec![]), ep_shell);
    assert_eq!(
        resolve_args(&ep_shell, &cmd_exec, None, vec![]),
        v(&["/bin/sh", "-c", "exec_entry p1_entry", "exec_cmd", "p1_cmd"])
    );
    assert_eq!(
        resolve_args(&ep_shell, &cmd_shell, None, vec![]),
        v(&[
            "/bin/sh",
            "-c",
            "exec_entry p1_entry",
            "/bin/sh",
            "-c",
            "exec_cmd p1_cmd"
        ])
    );
    // ENTRYPOINT ["exec_entry", "p1_entry"]
    assert_eq!(resolve_args(&ep_exec, &[], None, vec![]), ep_exec);
    assert_eq!(
        resolve_args(&ep_exec, &cmd_exec, None, vec![]),
        v(&["/bin/ep", "p1", "exec_cmd", "p1_cmd"])
    );
    assert_eq!(
        resolve_args(&ep_exec, &cmd_shell, None, vec![]),
        v(&["/bin/ep", "p1", "/bin/sh", "-c", "exec_cmd p1_cmd"])
    );
    // User args replace CMD, keep ENTRYPOINT.
    assert_eq!(
        resolve_args(&ep_exec, &cmd_exec, None, v(&["x"])),
        v(&["/bin/ep", "p1", "x"])
    );
    assert_eq!(resolve_args(&[], &cmd_exec, None, v(&["x", "y"])), v(&["x", "y"]));
    // --entrypoint resets CMD.
    assert_eq!(
        resolve_args(&ep_exec, &cmd_exec, Some(v(&["/new"])), vec![]),
        v(&["/new"])
    );
    assert_eq!(
        resolve_args(&ep_exec, &cmd_exec, Some(v(&["/new"])), v(&["a"])),
        v(&["/new", "a"])
    );
    // --entrypoint '' clears both; only user args remain.
    assert_eq!(
        resolve_args(&ep_exec, &cmd_exec, Some(vec![]), vec![]),
        Vec::<String>::new()
    );
    assert_eq!(
        resolve_args(&ep_exec, &cmd_exec, Some(v(&[""])), v(&["sh"])),
        v(&["sh"])
    );
}

fn spec_for(cfg: &ContainerConfig) -> (tempfile::TempDir, oci_spec::runtime::Spec) {
    let t = tempfile::tempdir().unwrap();
    let s = build_spec(cfg, common::busybox_layer(), t.path()).unwrap();
    (t, s)
}

fn base() -> ContainerConfig {
    ContainerConfig {
        id: "0123456789abcdef0123".into(),
        args: v(&["sh"]),
        ..Default::default()
    }
}

#[test]
#[ignore = "needs root"]
fn spec_has_docker_defaults() {
    common::need_root();
    let (t, s) = spec_for(&base());
    let p = s.process().as_ref().unwrap();
    let caps = p.capabilities().as_ref().unwrap();
    let eff: HashSet<Capability> = caps.effective().clone().unwrap();
    assert_eq!(eff.len(), 14);
    assert!(eff.contains(&Capability::NetBindService) && eff.contains(&Capability::AuditWrite));
    assert!(!eff.contains(&Capability::SysAdmin) && !eff.contains(&Capability::NetAdmin));
    assert_eq!(caps.bounding(), caps.effective());
    let linux = s.linux().as_ref().unwrap();
    let ns: Vec<LinuxNamespaceType> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
    for t in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Cgroup,
    ] {
        assert!(ns.contains(&t), "{t:?} missing");
    }
    assert!(!ns.contains(&LinuxNamespaceType::User), "root needs no user namespace");
    let masked = linux.masked_paths().as_ref().unwrap();
    for m in [
        "/proc/kcore",
        "/proc/keys",
        "/sys/firmware",
        "/proc/scsi",
        "/sys/devices/virtual/powercap",
    ] {
        assert!(masked.iter().any(|x| x == m), "{m}");
    }
    let ro = linux.readonly_paths().as_ref().unwrap();
    assert!(ro.iter().any(|x| x == "/proc/sys") && ro.iter().any(|x| x == "/proc/sysrq-trigger"));
    assert!(linux.seccomp().is_some());
    assert_eq!(
        linux.cgroups_path().as_ref().unwrap().to_str().unwrap(),
        "/berth/0123456789abcdef0123"
    );
    assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
    let env = p.env().as_ref().unwrap();
    assert!(env.iter().any(|e| e.starts_with("PATH=/usr/local/sbin")));
    assert!(env.contains(&"HOSTNAME=0123456789ab".to_string()));
    assert!(!env.iter().any(|e| e.starts_with("TERM=")));
    // nofile: 1048576 clamped to what this process may set.
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    let nofile = p
        .rlimits()
        .as_ref()
        .unwrap()
        .iter()
        .find(|r| format!("{:?}", r.typ()).contains("Nofile"))
        .unwrap();
    assert!(nofile.hard() <= 1_048_576 && (nofile.hard() == 1_048_576 || nofile.hard() <= hard));
    let dests: Vec<String> = s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect();
    for d in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
        "/etc/hosts",
        "/etc/hostname",
        "/etc/resolv.conf",
    ] {
        assert!(dests.iter().any(|x| x == d), "{d} missing from {dests:?}");
    }
    assert!(std::fs::read_to_string(t.path().join("hosts"))
        .unwrap()
        .contains("127.0.0.1\tlocalhost"));
    assert_eq!(
        std::fs::read_to_string(t.path().join("hostname")).unwrap(),
        "0123456789ab\n"
    );
    // Round trip through config.json keeps the fields.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(json["process"]["user"]["uid"], 0);
}

#[test]
fn spec_resolves_users_from_the_image() {
    let mut c = base();
    c.user = "app".into();
    let (_t, s) = spec_for(&c);
    let u = s.process().as_ref().unwrap().user();
    assert_eq!((u.uid(), u.gid()), (1000, 1000));
    let mut extra = u.additional_gids().clone().unwrap();
    extra.sort();
    // As root the primary group is a supplementary one too, as Docker's.
    let want = if rustix::process::geteuid().is_root() {
        vec![10, 29, 1000]
    } else {
        vec![10, 29]
    };
    assert_eq!(extra, want);
    assert!(s
        .process()
        .as_ref()
        .unwrap()
        .env()
        .as_ref()
        .unwrap()
        .contains(&"HOME=/home/app".to_string()));
    c.user = "nobody:app".into();
    let (_t, s) = spec_for(&c);
    let u = s.process().as_ref().unwrap().user();
    assert_eq!((u.uid(), u.gid()), (65534, 1000));
    c.user = "4242:4343".into();
    let (_t, s) = spec_for(&c);
    let u = s.process().as_ref().unwrap().user();
    assert_eq!((u.uid(), u.gid()), (4242, 4343));
    c.user = "ghost".into();
    let e = build_spec(&c, common::busybox_layer(), tempfile::tempdir().unwrap().path()).unwrap_err();
    assert!(e.to_string().contains("ghost"), "{e}");
}

#[test]
#[ignore = "needs root"]
fn spec_options_privileged_host_net_tty_readonly() {
    common::need_root();
    let mut c = base();
    c.privileged = true;
    c.network_mode = "host".into();
    c.tty = true;
    c.read_only = true;
    c.cap_drop = vec!["ALL".into()];
    let (_t, s) = spec_for(&c);
    let linux = s.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().is_none());
    let ns: Vec<LinuxNamespaceType> = linux.namespaces().as_ref().unwrap().iter().map(|n| n.typ()).collect();
    assert!(!ns.contains(&LinuxNamespaceType::Network));
    assert!(s.root().as_ref().unwrap().readonly().unwrap());
    let p = s.process().as_ref().unwrap();
    assert!(p.terminal().unwrap());
    assert!(p.env().as_ref().unwrap().contains(&"TERM=xterm".to_string()));
    assert!(p
        .capabilities()
        .as_ref()
        .unwrap()
        .effective()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysAdmin));
    assert!(
        !linux.devices().as_ref().unwrap().is_empty(),
        "privileged gets host devices"
    );

    let mut c = base();
    c.cap_add = vec!["SYS_ADMIN".into()];
    c.security_opt = vec!["no-new-privileges".into()];
    c.resources.memory = Some(32 << 20);
    c.resources.pids_limit = Some(10);
    c.resources.cpus = Some(1.5);
    c.mounts = vec![MountSpec {
        kind: MountKind::Tmpfs,
        target: "/scratch".into(),
        options: vec!["size=1m".into()],
        ..Default::default()
    }];
    let (_t, s) = spec_for(&c);
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.no_new_privileges(), Some(true));
    assert!(p
        .capabilities()
        .as_ref()
        .unwrap()
        .effective()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysAdmin));
    let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
    assert_eq!(r.memory().as_ref().unwrap().limit(), Some(32 << 20));
    assert_eq!(r.pids().as_ref().unwrap().limit(), 10);
    assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(150_000));
    assert!(s
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .any(|m| m.destination().to_str() == Some("/scratch")));

    let mut c = base();
    c.init = true;
    match build_spec(&c, common::busybox_layer(), tempfile::tempdir().unwrap().path()) {
        Ok(s) => assert_eq!(s.process().as_ref().unwrap().args().as_ref().unwrap()[0], "/dev/init"),
        Err(e) => assert!(e.to_string().contains("tini"), "{e}"),
    }
    let mut c = base();
    c.args.clear();
    assert!(build_spec(&c, common::busybox_layer(), tempfile::tempdir().unwrap().path()).is_err());
}
