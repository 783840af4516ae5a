//! The course examples in `examples/`, built end to end offline with the
//! busybox image as `bb`.

#[path = "build_support.rs"]
mod support;

use support::*;

fn example(name: &str) -> String {
    examples().join(name).to_string_lossy().into_owned()
}

#[test]
fn every_example_passes_check() {
    let root = Root::new();
    for ex in ["multistage", "healthcheck", "entrypoint", "failing-build"] {
        let out = build_ok(&root, &["--check", &example(ex)]);
        assert!(out.contains("Check complete"), "{ex}: {out}");
    }
}

#[test]
#[ignore = "needs root"]
fn multistage_production_never_runs_the_shell_stage() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let dir = example("multistage");
    let file = format!("{dir}/Dockerfile");
    let out = build_ok(&root, &["-f", &file, "--target", "production", "-t", "ms", &dir]);
    assert!(out.contains("Successfully tagged ms:latest"), "{out}");
    // The shell stage's steps never show up: it is not needed.
    assert!(!out.contains("FROM base AS shell"), "{out}");
    assert!(!out.contains("PS1"), "{out}");
    assert_eq!(running_lines(&out), 2, "download's two RUNs only:\n{out}");
    let v = inspect(&root, "ms");
    assert_eq!(v["Config"]["Cmd"][0], "httpd");
    assert!(v["Config"]["ExposedPorts"]["8000/tcp"].is_object());
    assert_eq!(v["Config"]["WorkingDir"], "/app");
    let data = image_file(&root, "ms", "/app/elev_bump_8k.txt").expect("data copied from download");
    assert!(data.contains("Stand-in"));
    let sizes = image_file(&root, "ms", "/app/sizes.txt").expect("derived file copied");
    assert!(sizes.contains("elev_bump_8k.txt"));
    // The tools of the download stage stay behind.
    assert!(image_file(&root, "ms", "/tools/README").is_none());

    // The shell target reuses every shared step.
    let out = build_ok(&root, &["-f", &file, "--target", "shell", "-t", "mss", &dir]);
    assert!(!out.contains("AS production"), "{out}");
    assert_eq!(running_lines(&out), 1, "only the shell stage's own RUN:\n{out}");
    assert!(image_file(&root, "mss", "/root/.profile").unwrap().contains("PS1"));
    assert_eq!(inspect(&root, "mss")["Config"]["Cmd"][0], "/bin/sh");
}

#[test]
#[ignore = "needs root"]
fn healthcheck_example_records_the_check() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let out = build_ok(&root, &["-t", "hc", &example("healthcheck")]);
    assert!(out.contains("Step 6/6 : HEALTHCHECK"), "{out}");
    let v = inspect(&root, "hc");
    let h = &v["Config"]["Healthcheck"];
    assert_eq!(h["Test"][0], "CMD-SHELL");
    assert!(h["Test"][1]
        .as_str()
        .unwrap()
        .starts_with("wget -q -O /dev/null http://localhost:8000/"));
    assert_eq!(h["Interval"], 5_000_000_000i64);
    assert_eq!(h["Timeout"], 3_000_000_000i64);
    assert!(image_file(&root, "hc", "/app/index.html")
        .unwrap()
        .contains("busybox httpd"));
}

#[test]
fn entrypoint_example_sets_entrypoint_and_cmd() {
    let root = Root::new();
    root.busybox("bb");
    let out = build_ok(&root, &["-t", "ep", &example("entrypoint")]);
    assert_eq!(running_lines(&out), 0, "metadata only:\n{out}");
    let v = inspect(&root, "ep");
    assert_eq!(v["Config"]["Entrypoint"], serde_json::json!(["ls"]));
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["--help"]));
    // History as the classic builder writes it.
    let hist = root.ok(&["history", "--no-trunc", "ep"]);
    assert!(hist.contains("/bin/sh -c #(nop)  CMD [\"--help\"]"), "{hist}");
    assert!(hist.contains("/bin/sh -c #(nop)  ENTRYPOINT [\"ls\"]"), "{hist}");
    if let Some(out) = run_in(&root, "ep", &["/"]) {
        assert!(out.contains("bin"), "{out}");
    }
}

#[test]
#[ignore = "needs root"]
fn failing_build_prints_a_runnable_last_good_id() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let o = build(&root, &["-t", "test", &example("failing-build")]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let err = stderr(&o);
    assert!(out.contains("Step 3/4 : RUN exit 1"), "{out}");
    assert!(!out.contains("Step 4/4"), "the build stops at the failure:\n{out}");
    assert!(
        err.contains("Error: The command '/bin/sh -c exit 1' returned a non-zero code: 1"),
        "{err}"
    );
    assert!(err.contains("  at Dockerfile:8:1"), "{err}");
    // The last good step is step 2's image, and the message says how to enter it.
    let step2 = out
        .split("Step 2/4")
        .nth(1)
        .and_then(|s| s.split("Step 3/4").next())
        .and_then(|s| s.lines().filter_map(|l| l.strip_prefix(" ---> ")).next_back())
        .unwrap()
        .trim()
        .to_string();
    assert!(
        err.contains(&format!("To debug: berth run --rm -it {step2} sh")),
        "{err}"
    );
    assert_eq!(image_file(&root, &step2, "/test.txt").as_deref(), Some("hello\n"));
    if let Some(out) = run_in(&root, &step2, &["cat", "test.txt"]) {
        assert_eq!(out, "hello\n");
    }
    // Nothing is tagged, nothing is left mounted or staged.
    assert!(root.run(&["image", "inspect", "test"]).status.code() != Some(0));
    let build_dir = root.path().join("store/build");
    let left: Vec<_> = std::fs::read_dir(&build_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "statcache" && n != "cache-mounts")
        .collect();
    assert!(left.is_empty(), "step dirs left behind: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&build_dir.to_string_lossy().into_owned()));
}
