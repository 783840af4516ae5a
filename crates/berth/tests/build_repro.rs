//! Reproducible builds: with SOURCE_DATE_EPOCH two cold builds on two fresh
//! stores give the same image ID.

#[path = "build_support.rs"]
mod support;

use support::*;

const DOCKERFILE: &str = "FROM bb
WORKDIR /app
COPY hello.txt ./
RUN echo built > built.txt && mkdir -p /var/lib/x && touch /var/lib/x/y
ENV MODE=prod
CMD [\"cat\", \"/app/hello.txt\"]
";

#[test]
#[ignore = "needs root"]
fn same_epoch_same_id_on_fresh_stores() {
    need_root();
    let a = Root::new();
    a.busybox("bb");
    let base = a.path().join("bb.tar");
    a.ok(&["save", "-o", base.to_str().unwrap(), "bb"]);
    let b = Root::new();
    b.ok(&["load", "-i", base.to_str().unwrap()]);
    let ctx = context(&[("Dockerfile", DOCKERFILE), ("hello.txt", "hi\n")]);
    let dir = ctx.path().to_str().unwrap();
    let out_a = build_ok(&a, &["--source-date-epoch", "1700000000", "-q", dir]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // The same epoch from the environment.
    let out_b = b
        .cmd(&["build", "-q", dir])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(out_b.status.success(), "{}", stderr(&out_b));
    let id_a = out_a.trim().to_string();
    let id_b = stdout(&out_b).trim().to_string();
    assert!(id_a.starts_with("sha256:") && id_a.len() == 71, "{id_a}");
    assert_eq!(id_a, id_b);
    let v = inspect(&a, &id_a);
    assert_eq!(v["Created"], "2023-11-14T22:13:20Z");

    // Without the epoch the ID differs, but a no-op rebuild keeps it.
    let c = Root::new();
    c.ok(&["load", "-i", base.to_str().unwrap()]);
    let id_c = c.ok(&["build", "-q", dir]).trim().to_string();
    assert_ne!(id_c, id_a);
    assert_eq!(c.ok(&["build", "-q", dir]).trim(), id_c);
}
