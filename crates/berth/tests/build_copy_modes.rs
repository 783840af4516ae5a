//! `COPY --parents` (paths kept under the destination, `/./` pivots,
//! `--from`) and `COPY --link` (a layer built on its own and reused on a
//! new base without copying again).

#[path = "build_support.rs"]
mod support;

use support::*;

#[test]
#[ignore = "needs root"]
fn copy_parents_keeps_paths_with_pivots_and_from() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM bb AS src
RUN mkdir -p /opt/app/lib && echo so > /opt/app/lib/x.so
FROM bb
COPY --parents ./x/a.txt ./y/*.txt /dst/
COPY --parents ./src/./pkg/file top.txt /pivot/
COPY --parents dir /whole/
COPY --parents --from=src /opt/./app/lib/x.so /from/
RUN find /dst /pivot /whole /from -type f | sort > /list
",
        ),
        ("x/a.txt", "a\n"),
        ("x/skip.txt", "not copied\n"),
        ("y/b.txt", "b\n"),
        ("y/c.txt", "c\n"),
        ("src/pkg/file", "f\n"),
        ("top.txt", "t\n"),
        ("dir/sub/d.txt", "d\n"),
    ]);
    build_ok(&root, &["-t", "parents", ctx.path().to_str().unwrap()]);
    let list = image_file(&root, "parents", "/list").unwrap();
    assert_eq!(
        list,
        "/dst/x/a.txt\n/dst/y/b.txt\n/dst/y/c.txt\n/from/app/lib/x.so\n/pivot/pkg/file\n/pivot/top.txt\n/whole/dir/sub/d.txt\n",
    );
    assert_eq!(image_file(&root, "parents", "/dst/y/c.txt").as_deref(), Some("c\n"));

    // The same files under other paths are another step, not a cache hit.
    std::fs::rename(ctx.path().join("y/c.txt"), ctx.path().join("x/c.txt")).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM bb\nCOPY --parents ./x/*.txt /dst/\n",
    )
    .unwrap();
    build_ok(&root, &["-t", "p1", ctx.path().to_str().unwrap()]);
    std::fs::rename(ctx.path().join("x/c.txt"), ctx.path().join("x/d.txt")).unwrap();
    let out = build_ok(&root, &["-t", "p2", ctx.path().to_str().unwrap()]);
    assert!(!out.contains("Using cache"), "{out}");
    assert_eq!(image_file(&root, "p2", "/dst/x/d.txt").as_deref(), Some("c\n"));
}

/// The image's diff IDs.
#[test]
#[ignore = "needs root"]
fn copy_link_layer_survives_a_new_base() {
    need_root();
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&[
        (
            "Dockerfile",
            "ARG V=1
FROM bb AS base
ARG V
RUN echo $V > /base-version && mkdir -p /app && ln -s /tmp /app/data
FROM base
COPY --link app.txt /app/data/
RUN cat /app/data/app.txt /base-version > /seen
",
        ),
        ("app.txt", "app\n"),
    ]);
    let out = build_ok(&root, &["-t", "l1", ctx.path().to_str().unwrap()]);
    assert!(!out.contains("Using cache for the linked layer"), "{out}");
    let first = diff_ids(&root, "l1");
    // The layer was made in an empty directory: the base's symlink
    // /app/data was not followed, so the layer holds a directory
    // app/data/ and the file, and the file shadows the base's link.
    assert_eq!(image_file(&root, "l1", "/seen").as_deref(), Some("app\n1\n"));
    assert_eq!(image_file(&root, "l1", "/tmp/app.txt"), None);

    // A new base: the linked layer comes from the cache, same diff ID,
    // committed on the new parent.
    let out = build_ok(&root, &["--build-arg", "V=2", "-t", "l2", ctx.path().to_str().unwrap()]);
    assert!(out.contains(" ---> Using cache for the linked layer "), "{out}");
    let second = diff_ids(&root, "l2");
    assert_eq!(first.len(), second.len());
    let link_layer = first.len() - 2;
    assert_ne!(first[link_layer - 1], second[link_layer - 1], "the base layer changed");
    assert_eq!(
        first[link_layer], second[link_layer],
        "the --link layer is the same blob"
    );
    assert_eq!(image_file(&root, "l2", "/seen").as_deref(), Some("app\n2\n"));
    let v = inspect(&root, "l2");
    assert_ne!(v["Id"], inspect(&root, "l1")["Id"]);

    // A COPY without --link on the same change copies again.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        std::fs::read_to_string(ctx.path().join("Dockerfile"))
            .unwrap()
            .replace("COPY --link", "COPY"),
    )
    .unwrap();
    let out = build_ok(&root, &["--build-arg", "V=3", "-t", "l3", ctx.path().to_str().unwrap()]);
    assert!(!out.contains("linked layer"), "{out}");
    // Copied onto the base this time: through its /app/data -> /tmp link,
    // into a layer of its own.
    assert_eq!(image_file(&root, "l3", "/tmp/app.txt").as_deref(), Some("app\n"));
    let third = diff_ids(&root, "l3");
    assert_ne!(third[link_layer], first[link_layer], "without --link the layer differs");
}
