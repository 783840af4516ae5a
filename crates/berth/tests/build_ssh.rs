//! `RUN --mount=type=ssh` with `berth build --ssh`: a real ssh-agent's
//! socket is bound into the step's container and SSH_AUTH_SOCK names it.

#[path = "build_support.rs"]
mod support;

use std::process::{Child, Command, Stdio};

use support::*;

/// `ssh-agent -D -a SOCK`, killed on drop.
struct Agent {
    child: Child,
    sock: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Option<Agent> {
        assert!(
            have("ssh-agent"),
            "ssh-agent (openssh-client) is not installed (scripts/setup --tests installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let mut child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // The agent prints its variables once the socket listens; wait for
        // the socket itself.
        for _ in 0..500 {
            if sock.exists() {
                return Some(Agent { child, sock, _dir: dir });
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("ssh-agent exited: {st}");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("ssh-agent made no socket");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs root"]
fn ssh_mount_binds_the_agent_socket_and_sets_ssh_auth_sock() {
    need_root();
    let Some(agent) = Agent::start() else { return };
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb
RUN --mount=type=ssh [ -S \"$SSH_AUTH_SOCK\" ] && echo \"$SSH_AUTH_SOCK\" > /default
RUN --mount=type=ssh,id=work,target=/tmp/agent.sock,required=true [ -S /tmp/agent.sock ] && echo \"$SSH_AUTH_SOCK\" > /named
RUN --mount=type=ssh,id=absent echo \"[${SSH_AUTH_SOCK:-unset}]\" > /absent
",
    )]);
    let default_arg = format!("default={}", agent.sock.display());
    let work_arg = format!("work={}", agent.sock.display());
    build_ok(
        &root,
        &[
            "--ssh",
            &default_arg,
            "--ssh",
            &work_arg,
            "-t",
            "ssh",
            ctx.path().to_str().unwrap(),
        ],
    );
    assert_eq!(
        image_file(&root, "ssh", "/default").as_deref(),
        Some("/run/buildkit/ssh_agent.0\n")
    );
    assert_eq!(image_file(&root, "ssh", "/named").as_deref(), Some("/tmp/agent.sock\n"));
    // An optional agent that was not given is simply not mounted.
    assert_eq!(image_file(&root, "ssh", "/absent").as_deref(), Some("[unset]\n"));
    // The mount points are not part of the layers.
    assert_eq!(image_file(&root, "ssh", "/run/buildkit/ssh_agent.0"), None);
    let v = inspect(&root, "ssh");
    let lowers = v["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap().to_string();
    for dir in lowers.split(':') {
        assert!(
            !std::path::Path::new(dir).join("run/buildkit").exists(),
            "{dir} keeps the mount point"
        );
        assert!(!std::path::Path::new(dir).join("tmp/agent.sock").exists(), "{dir}");
    }

    // `--ssh default` takes the agent from $SSH_AUTH_SOCK.
    let ctx2 = context(&[(
        "Dockerfile",
        "FROM bb\nRUN --mount=type=ssh,required [ -S \"$SSH_AUTH_SOCK\" ] && echo env > /ok\n",
    )]);
    let o = root
        .cmd(&["build", "--ssh", "default", "-t", "ssh2", ctx2.path().to_str().unwrap()])
        .env("SSH_AUTH_SOCK", &agent.sock)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(image_file(&root, "ssh2", "/ok").as_deref(), Some("env\n"));
}

#[test]
#[ignore = "needs root"]
fn required_agent_missing_and_bad_flags_are_clear_errors() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb\nRUN true\n  RUN --mount=type=ssh,required=true ssh-add -l\n",
    )]);
    let o = build(&root, &[ctx.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the SSH agent \"default\" is required but none was given: build with --ssh default"),
        "{err}"
    );
    assert!(err.contains("at Dockerfile:3:3"), "{err}");

    let o = root
        .cmd(&["build", "--ssh", "default", ctx.path().to_str().unwrap()])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("$SSH_AUTH_SOCK is not set"), "{}", stderr(&o));

    let o = build(&root, &["--ssh", "k=/etc/passwd", ctx.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/etc/passwd is not a unix socket"),
        "{}",
        stderr(&o)
    );
}
