//! The step cache: a no-op rebuild runs nothing and gives the same ID; a
//! changed file reruns only the COPY that copies it and what follows; the
//! cache exported from one store makes every step a hit in a fresh one.

#[path = "build_support.rs"]
mod support;

use std::time::Instant;

use support::*;

const THREE_STAGES: &str = "\
FROM bb AS deps
COPY deps.txt /deps/
RUN cat /deps/deps.txt > /deps/installed
FROM deps AS build
COPY src/ /src/
RUN cat /src/*.c > /out.bin
FROM bb
COPY --from=build /out.bin /app/
COPY config.txt /app/
RUN ls /app > /app/listing
CMD [\"cat\", \"/app/listing\"]
";

fn project() -> tempfile::TempDir {
    context(&[
        ("Dockerfile", THREE_STAGES),
        ("deps.txt", "libfoo\n"),
        ("src/a.c", "int a;\n"),
        ("src/b.c", "int b;\n"),
        ("config.txt", "port=8000\n"),
    ])
}

/// The lines printed for step `n` (up to the next step).
fn step_block(out: &str, n: usize) -> String {
    let start = out
        .find(&format!("Step {n}/"))
        .unwrap_or_else(|| panic!("no step {n} in\n{out}"));
    let rest = &out[start..];
    let end = rest[1..].find("Step ").map(|e| e + 1).unwrap_or(rest.len());
    rest[..end].to_string()
}

#[test]
#[ignore = "needs root"]
fn noop_rebuild_runs_nothing_and_changed_file_reruns_only_its_copy() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = project();
    let dir = ctx.path().to_str().unwrap();
    let first = build_ok(&root, &["-t", "app", dir]);
    assert_eq!(running_lines(&first), 3, "{first}");
    let id = image_id(&root, "app");

    let t = Instant::now();
    let again = build_ok(&root, &["-t", "app", dir]);
    let took = t.elapsed();
    eprintln!("no-op rebuild of the 3-stage project: {took:?}");
    assert_eq!(running_lines(&again), 0, "{again}");
    assert_eq!(again.matches(" ---> Using cache").count(), 8, "{again}");
    assert_eq!(image_id(&root, "app"), id);
    assert!(took.as_secs_f64() < 2.0, "no-op rebuild took {took:?}");

    // Only the last stage copies config.txt.
    std::fs::write(ctx.path().join("config.txt"), "port=9000\n").unwrap();
    let out = build_ok(&root, &["-t", "app", dir]);
    for n in [2, 3, 5, 6, 8] {
        assert!(
            step_block(&out, n).contains("Using cache"),
            "step {n} should hit:\n{out}"
        );
    }
    for n in [9, 10, 11] {
        assert!(
            !step_block(&out, n).contains("Using cache"),
            "step {n} should run:\n{out}"
        );
    }
    assert_eq!(running_lines(&out), 1, "{out}");
    assert_ne!(image_id(&root, "app"), id);
    assert_eq!(
        image_file(&root, "app", "/app/config.txt").as_deref(),
        Some("port=9000\n")
    );

    // Touching (no content change) keeps every step cached.
    let f = std::fs::File::options()
        .append(true)
        .open(ctx.path().join("config.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let again = build_ok(&root, &["-t", "app", dir]);
    assert_eq!(running_lines(&again), 0, "{again}");

    // --no-cache runs everything again.
    let out = build_ok(&root, &["--no-cache", "-t", "app2", dir]);
    assert_eq!(running_lines(&out), 3, "{out}");
    assert!(!out.contains("Using cache"), "{out}");
}

#[test]
#[ignore = "needs root"]
fn every_step_is_an_image_with_its_parent() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[("Dockerfile", "FROM bb\nENV A=1\nRUN echo $A > /a\nCMD [\"sh\"]\n")]);
    let out = build_ok(&root, &["-t", "x", ctx.path().to_str().unwrap()]);
    let ids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix(" ---> "))
        .filter(|l| !l.starts_with("Running") && !l.starts_with("Using"))
        .collect();
    assert_eq!(ids.len(), 4, "{out}");
    for w in ids.windows(2) {
        let v = inspect(&root, w[1]);
        assert!(
            v["Parent"].as_str().unwrap().contains(w[0]),
            "{} is not the parent of {}",
            w[0],
            w[1]
        );
    }
    let hist = root.ok(&["history", "--no-trunc", "x"]);
    assert!(hist.contains("/bin/sh -c echo $A > /a"), "{hist}");
    assert!(hist.contains("/bin/sh -c #(nop)  ENV A=1"), "{hist}");
    let v = inspect(&root, "x");
    assert_eq!(
        v["RootFS"]["Layers"].as_array().unwrap().len(),
        2,
        "ENV and CMD add no layer"
    );
}

#[test]
#[ignore = "needs root"]
fn cache_exported_from_one_store_is_used_by_a_fresh_one() {
    need_root();
    let a = Root::new();
    a.busybox("bb");
    let base = a.path().join("bb.tar");
    a.ok(&["save", "-o", base.to_str().unwrap(), "bb"]);
    let ctx = project();
    let dir = ctx.path().to_str().unwrap();
    let cache = a.path().join("cache");
    let spec = format!("type=local,dest={}", cache.display());
    let out = build_ok(&a, &["--cache-to", &spec, "-t", "app", dir]);
    assert_eq!(running_lines(&out), 3);
    assert!(cache.join("index.json").is_file() && cache.join("oci-layout").is_file());
    assert!(cache.join("berth-cache.json").is_file());
    let id = image_id(&a, "app");

    let b = Root::new();
    b.ok(&["load", "-i", base.to_str().unwrap()]);
    let spec = format!("type=local,src={}", cache.display());
    let out = build_ok(&b, &["--cache-from", &spec, "-t", "app", dir]);
    assert_eq!(running_lines(&out), 0, "{out}");
    assert_eq!(out.matches(" ---> Using cache").count(), 8, "{out}");
    assert_eq!(image_id(&b, "app"), id);
    assert_eq!(image_file(&b, "app", "/out.bin"), None);
    assert_eq!(
        image_file(&b, "app", "/app/out.bin").as_deref(),
        Some("int a;\nint b;\n")
    );
}

/// `build --cache-from IMAGE` (a bare reference, as a Docker user writes it
/// with the classic builder): an image loaded into a fresh store serves as
/// the cache, step by step, and gives the same ID; a changed file runs
/// from its COPY on.
#[test]
#[ignore = "needs root"]
fn cache_from_an_image_loaded_into_a_fresh_store() {
    need_root();
    let a = Root::new();
    a.busybox("bb");
    let ctx = context(&[
        ("Dockerfile", "FROM bb\nENV A=1\nCOPY f /f\nRUN cat /f > /g\n"),
        ("f", "one\n"),
    ]);
    let dir = ctx.path().to_str().unwrap();
    build_ok(&a, &["-t", "app", dir]);
    let id = image_id(&a, "app");
    let tar = a.path().join("app.tar");
    a.ok(&["save", "-o", tar.to_str().unwrap(), "app", "bb"]);

    let b = Root::new();
    b.ok(&["load", "-i", tar.to_str().unwrap()]);
    let out = build_ok(&b, &["--cache-from", "app", "-t", "again", dir]);
    assert_eq!(running_lines(&out), 0, "{out}");
    assert_eq!(out.matches(" ---> Using cache").count(), 3, "{out}");
    assert_eq!(image_id(&b, "again"), id);

    std::fs::write(ctx.path().join("f"), "two\n").unwrap();
    let out = build_ok(&b, &["--cache-from", "app", "-t", "changed", dir]);
    assert_eq!(out.matches(" ---> Using cache").count(), 1, "ENV only: {out}");
    assert_eq!(running_lines(&out), 1, "{out}");
    assert_eq!(image_file(&b, "changed", "/g").as_deref(), Some("two\n"));
}
