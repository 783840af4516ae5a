//! Build errors name the file, line and column, and exit 1 as docker build
//! does; `--check` reports lint findings without building.

#[path = "build_support.rs"]
mod support;

use support::*;

fn fails(root: &Root, dockerfile: &str, extra: &[&str]) -> String {
    let ctx = context(&[("Dockerfile", dockerfile), ("present.txt", "x\n")]);
    let mut args: Vec<&str> = extra.to_vec();
    let dir = ctx.path().to_str().unwrap().to_string();
    args.push(&dir);
    let o = build(root, &args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    stderr(&o)
}

#[test]
fn parse_errors_point_at_line_and_column() {
    let root = Root::new();
    let err = fails(&root, "FROM bb\n\nRUNN echo hi\n", &[]);
    assert!(err.contains("Dockerfile:3:1"), "{err}");
    assert!(err.contains("RUN"), "did-you-mean hint expected: {err}");
    let err = fails(&root, "FROM bb\nCOPY --from=x\n", &[]);
    assert!(err.contains("Dockerfile:2:"), "{err}");
}

#[test]
fn missing_base_image_is_a_clear_error() {
    let root = Root::new();
    // The test environment allows loopback registries only, so the pull
    // of a Docker Hub name is refused before any request is sent.
    let err = fails(&root, "FROM nosuchimage:1.0\nRUN true\n", &[]);
    assert!(err.contains("failed to pull nosuchimage:1.0"), "{err}");
    assert!(err.contains("not allowed here"), "{err}");
    assert!(err.contains("No such image"), "{err}");
    assert!(err.contains("at Dockerfile:1:1"), "{err}");
    // A registry that answers "no such manifest" is named in the error.
    let err = fails(&root, "FROM 127.0.0.1:1/nosuch:1\nRUN true\n", &[]);
    assert!(err.contains("failed to pull 127.0.0.1:1/nosuch:1"), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
#[ignore = "needs root"]
fn missing_copy_source_names_the_step() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let err = fails(&root, "FROM bb\nCOPY present.txt /\n  COPY missing.txt /\n", &[]);
    assert!(err.contains("missing.txt"), "{err}");
    assert!(err.contains("at Dockerfile:3:3"), "{err}");
    // The last good step is offered for debugging.
    assert!(err.contains("To debug: berth run --rm -it "), "{err}");
}

#[test]
fn unknown_target_lists_the_stages() {
    let root = Root::new();
    let err = fails(&root, "FROM bb AS one\nFROM bb AS two\n", &["--target", "three"]);
    assert!(err.contains("target stage \"three\" could not be found"), "{err}");
    assert!(err.contains("one, two"), "{err}");
}

#[test]
#[ignore = "needs root"]
fn failing_run_in_a_later_stage_reports_its_place() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let err = fails(
        &root,
        "FROM bb AS a\nRUN true\nFROM a\nENV X=1\nRUN echo out; echo err >&2; exit 3\n",
        &[],
    );
    assert!(
        err.contains("The command '/bin/sh -c echo out; echo err >&2; exit 3' returned a non-zero code: 3"),
        "{err}"
    );
    assert!(err.contains("at Dockerfile:5:1"), "{err}");
}

#[test]
fn check_prints_findings_and_exits_by_severity() {
    let root = Root::new();
    let ctx = context(&[("Dockerfile", "FROM bb\nCMD echo hi\n")]);
    let o = build(&root, &["--check", ctx.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("Dockerfile:2:1: WARNING JSONArgsRecommended: "), "{out}");

    let ctx = context(&[("Dockerfile", "FROM bb\nCOPY --from=7 /x /y\n")]);
    let o = build(&root, &["--check", ctx.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("Dockerfile:2:1: ERROR CopyFromInvalidStage"),
        "{}",
        stdout(&o)
    );

    // --check never builds: no image, not even the base is needed.
    let ctx = context(&[("Dockerfile", "FROM nosuchimage\nRUN exit 1\n")]);
    let o = build(&root, &["--check", ctx.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
