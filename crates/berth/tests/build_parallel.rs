//! Independent stages run at the same time: two stages that each sleep 3 s
//! record /proc/uptime before and after, and their intervals must overlap.

#[path = "build_support.rs"]
mod support;

use support::*;

fn interval(root: &Root, image: &str, name: &str) -> (f64, f64) {
    let read = |f: &str| -> f64 {
        image_file(root, image, &format!("/times/{name}.{f}"))
            .unwrap_or_else(|| panic!("/times/{name}.{f} missing"))
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (read("start"), read("end"))
}

#[test]
#[ignore = "needs root"]
fn independent_stages_overlap() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[(
        "Dockerfile",
        "FROM bb AS a
RUN cat /proc/uptime > /a.start && sleep 3 && cat /proc/uptime > /a.end
FROM bb AS b
RUN cat /proc/uptime > /b.start && sleep 3 && cat /proc/uptime > /b.end
FROM bb AS unused
RUN exit 1
FROM bb
COPY --from=a /a.start /a.end /times/
COPY --from=b /b.start /b.end /times/
",
    )]);
    let out = build_ok(&root, &["-t", "par", ctx.path().to_str().unwrap()]);
    // Parallel stages label their lines.
    assert!(out.contains("[a] "), "{out}");
    assert!(out.contains("[b] "), "{out}");
    assert!(!out.contains("[unused]"), "{out}");
    let (a0, a1) = interval(&root, "par", "a");
    let (b0, b1) = interval(&root, "par", "b");
    assert!(a1 - a0 >= 2.9 && b1 - b0 >= 2.9);
    assert!(
        a0 < b1 && b0 < a1,
        "the stages did not overlap: a=[{a0},{a1}] b=[{b0},{b1}]"
    );
}
