//! `--progress`: the live view under a real terminal (a pty made by
//! `script` from bsdutils), and plain lines when output is not a terminal.

#[path = "build_support.rs"]
mod support;

use std::process::{Command, Output};

use support::*;

/// `berth build ARGS` with stdout and stderr on a pty; `script` copies
/// what the terminal showed to our stdout.
fn build_on_pty(root: &Root, args: &[&str]) -> Output {
    let mut line = format!(
        "{} --root {} build",
        env!("CARGO_BIN_EXE_berth"),
        root.path().join("store").display()
    );
    for a in args {
        assert!(!a.contains('\''), "{a}");
        line.push_str(&format!(" '{a}'"));
    }
    Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("BERTH_ALLOWED_REGISTRIES", "loopback")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (bsdutils) runs")
}

#[test]
#[ignore = "needs root"]
fn tty_view_redraws_in_place_and_ends_with_a_summary() {
    need_root();
    assert!(
        have("script"),
        "script (bsdutils) is not installed (scripts/setup --tests installs it)"
    );
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM bb AS a\nRUN echo from-a > /a\nFROM bb\nCOPY --from=a /a /a\nRUN echo hello-run && cat /a\n",
        ),
        ("x", "x\n"),
    ]);
    let o = build_on_pty(&root, &["--progress=tty", "-t", "shown", ctx.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    // Frames are replaced in place: cursor up, clear to the end of screen.
    assert!(out.contains("\x1b[J"), "{out:?}");
    assert!(
        out.split("\x1b[").skip(1).any(|s| {
            let n = s.split('A').next().unwrap_or("");
            s.contains('A') && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())
        }),
        "no cursor-up sequence: {out:?}"
    );
    // No classic lines in this mode.
    assert!(!out.contains("Step 1/5 :"), "{out}");
    let id = image_id(&root, "shown");
    let short = &id.trim_start_matches("sha256:")[..12];
    assert!(out.contains(&format!("Successfully built {short}")), "{out}");
    // The summary: every step once more with its state, time and image ID.
    let summary = out.rsplit("\x1b[J").next().unwrap();
    let last_row = out
        .lines()
        .rev()
        .find(|l| l.contains("[stage-1 5/5] RUN echo hello-run && cat /a"))
        .unwrap_or_else(|| panic!("no row for the last step: {out:?}"));
    assert!(last_row.contains(" done ") && last_row.contains(short), "{last_row:?}");
    assert!(last_row.trim_end().ends_with(short), "{last_row:?}");
    assert!(summary.contains("Successfully built"), "{summary:?}");
    // Cached the second time: rows say so.
    let o = build_on_pty(&root, &["--progress=tty", ctx.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("[stage-1 5/5] RUN echo hello-run") && l.contains("cached") && l.contains(short)),
        "{out}"
    );
}

#[test]
#[ignore = "needs root"]
fn tty_failure_shows_the_output_the_place_and_the_last_good_step() {
    need_root();
    assert!(
        have("script"),
        "script (bsdutils) is not installed (scripts/setup --tests installs it)"
    );
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[("Dockerfile", "FROM bb\nENV A=1\nRUN echo broken-output; exit 7\n")]);
    let o = build_on_pty(&root, &["--progress=tty", ctx.path().to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let row = out
        .lines()
        .rev()
        .find(|l| l.contains("[stage-0 3/3] RUN echo broken-output; exit 7") && !l.starts_with(" > "))
        .unwrap();
    assert!(row.contains(" error "), "{row:?}");
    assert!(
        out.contains(" > [stage-0 3/3] RUN echo broken-output; exit 7:\r\n"),
        "{out:?}"
    );
    assert!(out.contains("broken-output\r\n------"), "{out:?}");
    assert!(out.contains("returned a non-zero code: 7"), "{out}");
    assert!(out.contains("at Dockerfile:3:1"), "{out}");
    assert!(out.contains("To debug: berth run --rm -it "), "{out}");
}

#[test]
#[ignore = "needs root"]
fn auto_is_plain_when_output_is_not_a_terminal() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[("Dockerfile", "FROM bb\nRUN echo hi\n")]);
    for style in ["auto", "plain"] {
        let out = build_ok(&root, &[&format!("--progress={style}"), ctx.path().to_str().unwrap()]);
        assert!(out.contains("Step 2/2 : RUN echo hi"), "{out}");
        assert!(!out.contains('\x1b'), "{out:?}");
    }
    let o = build(&root, &["--progress=fancy", ctx.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--progress fancy"), "{}", stderr(&o));
}
