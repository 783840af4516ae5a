//! Dockerfile features end to end: ARG scoping and build args, ENV,
//! heredocs, RUN mounts (cache, secret, tmpfs, bind), ONBUILD, labels,
//! `-q`, `--iidfile`, a context on stdin, and the network sandbox.

#[path = "build_support.rs"]
mod support;

use std::io::Write;
use std::process::Stdio;

use support::*;

#[test]
#[ignore = "needs root"]
fn args_are_scoped_and_passed_to_run_but_not_kept() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE=bb
FROM ${BASE}
ARG V=1
ARG BASE
RUN echo \"$V ${UNDECLARED:-none} $BASE $TARGETARCH\" > /v
ARG TARGETARCH
RUN echo $TARGETARCH > /arch
ENV V=env
RUN echo $V > /env
",
    )]);
    let out = build_ok(
        &root,
        &[
            "--build-arg",
            "V=2",
            "--build-arg",
            "UNDECLARED=x",
            "-t",
            "args",
            ctx.path().to_str().unwrap(),
        ],
    );
    assert!(out.contains("build-args [UNDECLARED] were not consumed"), "{out}");
    assert_eq!(image_file(&root, "args", "/v").as_deref(), Some("2 none bb \n"));
    let arch = image_file(&root, "args", "/arch").unwrap();
    assert!(!arch.trim().is_empty());
    assert_eq!(image_file(&root, "args", "/env").as_deref(), Some("env\n"));
    let env = inspect(&root, "args")["Config"]["Env"].to_string();
    assert!(env.contains("V=env") && !env.contains("V=2"), "{env}");
    let hist = root.ok(&["history", "--no-trunc", "args"]);
    assert!(hist.contains("|2 BASE=bb V=2 /bin/sh -c echo"), "{hist}");

    // A different build arg value misses the cache for the RUN that sees it.
    let out = build_ok(
        &root,
        &["--build-arg", "V=3", "-t", "args3", ctx.path().to_str().unwrap()],
    );
    assert!(out.contains(" ---> Running in "), "{out}");
    assert_eq!(image_file(&root, "args3", "/v").as_deref(), Some("3 none bb \n"));
}

const HEREDOCS: &str = r#"FROM bb
WORKDIR /w
RUN <<EOF
echo one > a
echo two >> a
EOF
RUN <<EOF
#!/bin/sh
echo "script $0" > b
EOF
RUN cat <<A > c1 && cat <<B > c2
first
A
second
B
COPY <<EOF /w/d
made by a heredoc
EOF
USER nobody
RUN id -u > /tmp/uid
"#;

#[test]
#[ignore = "needs root"]
fn heredocs_workdir_user_and_copy_heredoc() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[("Dockerfile", HEREDOCS)]);
    build_ok(&root, &["-t", "hd", ctx.path().to_str().unwrap()]);
    assert_eq!(image_file(&root, "hd", "/w/a").as_deref(), Some("one\ntwo\n"));
    assert!(image_file(&root, "hd", "/w/b").unwrap().starts_with("script "));
    assert_eq!(image_file(&root, "hd", "/w/c1").as_deref(), Some("first\n"));
    assert_eq!(image_file(&root, "hd", "/w/c2").as_deref(), Some("second\n"));
    assert_eq!(image_file(&root, "hd", "/w/d").as_deref(), Some("made by a heredoc\n"));
    assert_eq!(image_file(&root, "hd", "/tmp/uid").as_deref(), Some("65534\n"));
}

const MOUNTS: &str = "FROM bb AS tools
RUN echo tool > /tool
FROM bb
ARG N
RUN --mount=type=cache,target=/var/cache/x echo run$N >> /var/cache/x/log && cat /var/cache/x/log > /seen
RUN --mount=type=secret,id=token cat /run/secrets/token | wc -c > /secret-len
RUN --mount=type=tmpfs,target=/scratch touch /scratch/f && ls /scratch > /tmpfs
RUN --mount=type=bind,source=data.txt,target=/in cat /in > /bound
RUN --mount=type=bind,from=tools,source=/tool,target=/t cat /t > /from-tools
";

#[test]
#[ignore = "needs root"]
fn run_mounts_cache_secret_tmpfs_bind() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let secret = root.path().join("token");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let ctx = context(&[("Dockerfile", MOUNTS), ("data.txt", "from the context\n")]);
    let dir = ctx.path().to_str().unwrap();
    let sec = format!("id=token,src={}", secret.display());
    build_ok(&root, &["--secret", &sec, "--build-arg", "N=1", "-t", "m1", dir]);
    build_ok(&root, &["--secret", &sec, "--build-arg", "N=2", "-t", "m2", dir]);
    // The cache mount kept the first run's line.
    assert_eq!(image_file(&root, "m2", "/seen").as_deref(), Some("run1\nrun2\n"));
    assert_eq!(image_file(&root, "m2", "/secret-len").as_deref(), Some("7\n"));
    assert_eq!(image_file(&root, "m2", "/tmpfs").as_deref(), Some("f\n"));
    assert_eq!(image_file(&root, "m2", "/bound").as_deref(), Some("from the context\n"));
    assert_eq!(image_file(&root, "m2", "/from-tools").as_deref(), Some("tool\n"));
    // Nothing of the mounts is in the image.
    for p in ["/var/cache/x/log", "/run/secrets/token", "/scratch/f", "/in", "/t"] {
        assert!(image_file(&root, "m2", p).is_none(), "{p} leaked into the image");
    }
    // A missing required secret fails the step.
    let ctx2 = context(&[(
        "Dockerfile",
        "FROM bb\nRUN --mount=type=secret,id=nope,required=true true\n",
    )]);
    let o = build(&root, &[ctx2.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("secret nope is required"), "{}", stderr(&o));
}

/// The history of metadata steps reads as Docker's classic builder
/// writes it (compared with dockerd 20.10's): Go's formatting of each
/// value, the shell SHELL set as the prefix; a base without PATH gets
/// Docker's default PATH in the image; a RUN step's output names its
/// sandbox going.
#[test]
#[ignore = "needs root"]
fn history_text_and_default_path_are_docker_s() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb\nENTRYPOINT [\"sh\",\"-c\"]\nCMD [\"echo a b\", \"x\"]\nSHELL [\"/bin/sh\",\"-ec\"]\n\
         VOLUME [\"/data\",\"/d2\"]\nEXPOSE 80 53/udp\nLABEL a=1 b=\"x y\"\nARG Z=3\nWORKDIR /w\n",
    )]);
    build_ok(&root, &["-t", "hist", ctx.path().to_str().unwrap()]);
    let out = root.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "hist"]);
    let want = [
        "/bin/sh -ec #(nop) WORKDIR /w",
        "/bin/sh -ec #(nop)  ARG Z=3",
        "/bin/sh -ec #(nop)  LABEL a=1 b=x y",
        "/bin/sh -ec #(nop)  EXPOSE 53/udp 80",
        "/bin/sh -ec #(nop)  VOLUME [/data /d2]",
        "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
        "/bin/sh -c #(nop)  CMD [\"echo a b\" \"x\"]",
        "/bin/sh -c #(nop)  ENTRYPOINT [\"sh\" \"-c\"]",
    ];
    let got: Vec<&str> = out.lines().take(want.len()).collect();
    assert_eq!(got, want, "{out}");
    let env = &inspect(&root, "hist")["Config"]["Env"];
    assert_eq!(
        env[0], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "{env}"
    );
    // A RUN step says its sandbox goes, as the classic builder does.
    let run = context(&[("Dockerfile", "FROM bb\nRUN true\n")]);
    let out = build_ok(&root, &[run.path().to_str().unwrap()]);
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix(" ---> Running in "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        out.contains(&format!("Removing intermediate container {id}\n")),
        "{out}"
    );
    // COPY --chown: its owner stands right before the source's digest,
    // without a space, as dockerd 20.10's classic builder writes it.
    let chown = context(&[("Dockerfile", "FROM bb\nCOPY --chown=5:6 f /app/\n"), ("f", "x\n")]);
    build_ok(&root, &["-t", "owned", chown.path().to_str().unwrap()]);
    let out = root.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "owned"]);
    let top = out.lines().next().unwrap_or_default();
    assert!(top.starts_with("/bin/sh -c #(nop) COPY --chown=5:6file:"), "{out}");
    assert!(top.ends_with(" in /app/ "), "{out}");
    // FROM alone is the base image itself, PATH or not.
    let bare = context(&[("Dockerfile", "FROM bb\n")]);
    build_ok(&root, &["-t", "same", bare.path().to_str().unwrap()]);
    assert_eq!(root.ok(&["images", "-q", "same"]), root.ok(&["images", "-q", "bb"]));
}

#[test]
#[ignore = "needs root"]
fn onbuild_triggers_run_in_the_child() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let parent = context(&[(
        "Dockerfile",
        "FROM bb\nONBUILD COPY marker.txt /marker\nONBUILD RUN echo triggered > /t\n",
    )]);
    build_ok(&root, &["-t", "parent", parent.path().to_str().unwrap()]);
    assert_eq!(
        inspect(&root, "parent")["Config"]["OnBuild"].as_array().unwrap().len(),
        2
    );
    let child = context(&[("Dockerfile", "FROM parent\nCMD [\"sh\"]\n"), ("marker.txt", "m\n")]);
    let out = build_ok(&root, &["-t", "child", child.path().to_str().unwrap()]);
    assert!(out.contains("Executing 2 build triggers"), "{out}");
    assert_eq!(image_file(&root, "child", "/marker").as_deref(), Some("m\n"));
    assert_eq!(image_file(&root, "child", "/t").as_deref(), Some("triggered\n"));
    assert!(inspect(&root, "child")["Config"]["OnBuild"].is_null());
}

#[test]
#[ignore = "needs root"]
fn quiet_iidfile_labels_tags_and_stdin_context() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[("Dockerfile", "FROM bb\nCOPY f /f\n"), ("f", "file\n")]);
    let iid = root.path().join("iid");
    let out = build_ok(
        &root,
        &[
            "-q",
            "--iidfile",
            iid.to_str().unwrap(),
            "--label",
            "org.example.team=core",
            "-t",
            "one",
            "-t",
            "two:v2",
            ctx.path().to_str().unwrap(),
        ],
    );
    let id = out.trim();
    assert!(id.starts_with("sha256:") && out.lines().count() == 1, "{out}");
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id);
    assert_eq!(image_id(&root, "one"), id);
    assert_eq!(image_id(&root, "two:v2"), id);
    assert_eq!(inspect(&root, "one")["Config"]["Labels"]["org.example.team"], "core");

    // The same context as a tar on stdin.
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(ctx.path())
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    let mut child = root
        .cmd(&["build", "-q", "-t", "fromstdin", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(image_file(&root, "fromstdin", "/f").as_deref(), Some("file\n"));
}

#[test]
#[ignore = "needs root"]
fn run_network_is_private_by_default_and_none_on_request() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb\nRUN ls /sys/class/net > /ifaces\nRUN --network=none ls /sys/class/net > /ifaces-none\n",
    )]);
    build_ok(&root, &["-t", "net", ctx.path().to_str().unwrap()]);
    assert_eq!(image_file(&root, "net", "/ifaces").as_deref(), Some("lo\n"));
    assert_eq!(image_file(&root, "net", "/ifaces-none").as_deref(), Some("lo\n"));
}
