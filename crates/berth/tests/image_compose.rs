//! Images composed from several parents: `berth image compose` and
//! `COPY --link --from=X / /`. A Python-like part and a tools part, made
//! separately, are stacked on a base; the composed image stands on the
//! very layers of its parents (same digests, same directories), a push
//! mounts their blobs and a fresh pull transfers each once (counted in
//! the registry's access log); a part that deletes another parent's file
//! is refused or flattened.

#[path = "build_support.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::*;

/// A tar of the files `(path, content)` (a path ending in `/` is a
/// directory; `bin/.wh.vi` a whiteout), owned by root.
fn part_tar(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = dir.join(format!("{name}-root"));
    for (p, body) in files {
        let path = root.join(p);
        if p.ends_with('/') {
            std::fs::create_dir_all(&path).unwrap();
        } else {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, body).unwrap();
            if body.starts_with("#!") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
    }
    let tar = dir.join(format!("{name}.tar"));
    let st = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

/// bb, and the parts `python` (an interpreter stand-in and /etc/motd) and
/// `tools` (a tool and its own /etc/motd), each imported on its own.
fn base_and_parts(root: &Root) {
    root.busybox("bb");
    let d = root.path();
    let py = part_tar(
        d,
        "python",
        &[
            ("opt/python/bin/python3", "#!/bin/sh\necho python \"$@\"\n"),
            ("etc/motd", "python\n"),
        ],
    );
    let tools = part_tar(
        d,
        "tools",
        &[
            ("opt/tools/bin/tool", "#!/bin/sh\necho tool\n"),
            ("etc/motd", "tools\n"),
        ],
    );
    root.ok(&[
        "import",
        "--change",
        "ENV PATH=/opt/python/bin:/usr/bin:/bin",
        py.to_str().unwrap(),
        "python",
    ]);
    root.ok(&[
        "import",
        "--change",
        "ENV PATH=/opt/tools/bin:/bin",
        tools.to_str().unwrap(),
        "tools",
    ]);
}

fn layer_dirs(root: &Root) -> usize {
    std::fs::read_dir(root.path().join("store/layers")).unwrap().count()
}

#[test]
fn a_composed_image_is_its_parents_layers_with_nothing_copied() {
    let root = Root::new();
    base_and_parts(&root);
    let dirs = layer_dirs(&root);
    let id = root.ok(&["image", "compose", "-t", "app", "bb", "python", "tools"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(layer_dirs(&root), dirs, "no layer unpacked or copied");

    let mut want = diff_ids(&root, "bb");
    want.extend(diff_ids(&root, "python"));
    want.extend(diff_ids(&root, "tools"));
    assert_eq!(diff_ids(&root, "app"), want, "the parents' layers, in order");

    let v = inspect(&root, "app");
    assert_eq!(
        v["Config"]["Env"][0],
        "PATH=/opt/tools/bin:/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PATH-like variables merged: the parts' additions, later first, then the base's (Docker's default)"
    );
    // history: each layer names its parent.
    let comments = root.ok(&["history", "--format", "{{.Comment}}", "app"]);
    let lines: Vec<&str> = comments.lines().collect();
    assert_eq!(lines[0], "composed of bb:latest, python:latest, tools:latest");
    assert!(lines[1].starts_with("part 2 tools:latest: Imported from"), "{comments}");
    assert!(
        lines[2].starts_with("part 1 python:latest: Imported from"),
        "{comments}"
    );
    assert!(lines[3].starts_with("base bb:latest"), "{comments}");

    // --check: /etc/motd is in both parts, the later one wins.
    let check = root.ok(&["image", "compose", "--check", "bb", "python", "tools"]);
    assert!(
        check.contains("/etc/motd: part 1 python:latest (file), part 2 tools:latest (file)"),
        "{check}"
    );
    assert!(
        check.contains("Deletions that reach other parents' files: 0"),
        "{check}"
    );

    // --change as import has it.
    root.ok(&[
        "image",
        "merge",
        "-t",
        "app2",
        "--change",
        "CMD [\"tool\"]",
        "bb",
        "python",
        "tools",
    ]);
    assert_eq!(inspect(&root, "app2")["Config"]["Cmd"][0], "tool");

    // One image's layers counted once in system df; each app shares them.
    let df = root.ok(&["system", "df", "-v"]);
    let row = df.lines().find(|l| l.starts_with("app2 ")).unwrap();
    assert!(row.contains("0B"), "app2 has no layer of its own: {row}");
}

#[test]
#[ignore = "needs root"]
fn a_composed_image_runs_with_the_files_of_both_parts() {
    let root = Root::new();
    base_and_parts(&root);
    root.ok(&["image", "compose", "-t", "app", "bb", "python", "tools"]);
    let out = root.ok(&[
        "run",
        "--rm",
        "app",
        "sh",
        "-c",
        "python3 hi; tool; cat /etc/motd; ls /bin/vi",
    ]);
    assert_eq!(
        out, "python hi\ntool\ntools\n/bin/vi\n",
        "both parts, the base, later part wins"
    );
}

#[test]
fn a_part_that_deletes_a_base_file_is_refused_or_flattened() {
    let root = Root::new();
    root.busybox("bb");
    let slim = part_tar(root.path(), "slim", &[("bin/.wh.vi", ""), ("opt/slim/", "")]);
    let extra = part_tar(root.path(), "extra", &[("opt/slim/added", "yes\n")]);
    root.ok(&["import", slim.to_str().unwrap(), "slim"]);
    // slim: its own layer deletes /bin/vi, then one that adds a file.
    let ctx = context(&[("Dockerfile", "FROM slim\nADD extra.tar /\n")]);
    std::fs::copy(&extra, ctx.path().join("extra.tar")).unwrap();
    // ADD of a tar needs a build; import the second layer instead when not root.
    let slim2 = if rustix::process::geteuid().is_root() {
        build_ok(&root, &["-q", "-t", "slim2", ctx.path().to_str().unwrap()]);
        "slim2"
    } else {
        "slim"
    };

    let o = root.run(&["image", "compose", "-t", "app", "bb", slim2]);
    assert_eq!(o.status.code(), Some(1), "refused");
    let err = stderr(&o);
    assert!(err.contains("deletes /bin/vi"), "{err}");
    assert!(err.contains("removes files of base bb:latest"), "{err}");
    assert!(err.contains("--flatten-conflicts"), "{err}");
    assert!(
        root.run(&["image", "inspect", "app"]).status.code() != Some(0),
        "nothing recorded"
    );

    let o = root.run(&["image", "compose", "--check", "bb", slim2]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("/bin/vi: part 1"), "{}", stdout(&o));

    let o = root.run(&["image", "compose", "--flatten-conflicts", "-t", "app", "bb", slim2]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("deletions dropped: /bin/vi"), "{}", stderr(&o));
    let layers = diff_ids(&root, "app");
    assert_eq!(layers.len(), 2, "bb's layer and one flattened layer");
    assert_eq!(layers[0], diff_ids(&root, "bb")[0]);
    assert!(image_file(&root, "app", "/etc/passwd").is_some());
    if slim2 == "slim2" {
        assert_eq!(image_file(&root, "app", "/opt/slim/added").as_deref(), Some("yes\n"));
    }
    // The flattened layer has no whiteout: /bin/vi is bb's again.
    let v = inspect(&root, "app");
    let top = v["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert!(!Path::new(&top).join("bin/vi").exists(), "no whiteout left in {top}");
}

/// A `docker-registry` on 127.0.0.1 with its access log kept, to count
/// what clients fetch. Killed on drop.
struct CountingRegistry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl CountingRegistry {
    fn start() -> CountingRegistry {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let log = std::fs::File::create(dir.path().join("access.log")).unwrap();
        let (child, port) = serve_registry(
            dir.path(),
            "log:\n  level: error\n  accesslog:\n    disabled: false\n",
            "",
            Stdio::from(log),
        );
        CountingRegistry { child, dir, port }
    }

    fn name(&self, repo: &str) -> String {
        format!("127.0.0.1:{}/{repo}", self.port)
    }

    /// Successful `GET …/blobs/DIGEST` so far, per digest.
    fn blob_gets(&self) -> BTreeMap<String, usize> {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        let mut n = BTreeMap::new();
        for l in log.lines() {
            let Some(req) = l.split('"').nth(1) else { continue };
            let status = l
                .split('"')
                .nth(2)
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("");
            if let Some(path) = req.strip_prefix("GET ") {
                if let Some((_, d)) = path.split_once("/blobs/") {
                    if status == "200" {
                        *n.entry(d.split_whitespace().next().unwrap().to_string()).or_default() += 1;
                    }
                }
            }
        }
        n
    }
}

impl Drop for CountingRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_push_mounts_the_parents_blobs_and_a_pull_fetches_each_once() {
    let reg = CountingRegistry::start();
    let a = Root::new();
    base_and_parts(&a);
    a.ok(&["image", "compose", "-t", "app", "bb", "python", "tools"]);
    for (local, repo) in [("bb", "bb"), ("python", "python"), ("tools", "tools")] {
        a.ok(&["tag", local, &reg.name(repo)]);
        a.ok(&["push", &reg.name(repo)]);
    }
    a.ok(&["tag", "app", &reg.name("app")]);
    let out = a.ok(&["push", &reg.name("app")]);
    assert!(
        !out.contains(": Pushed"),
        "every layer is one the parents pushed:\n{out}"
    );
    assert_eq!(out.matches("Mounted from").count(), 3, "{out}");

    // The manifest lists the parents.
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}", reg.name("app")))
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let parents = m["annotations"]["io.berth.image.parents"].as_str().unwrap();
    assert!(
        parents.starts_with("docker.io/library/bb:latest@sha256:") && parents.contains("python:latest@sha256:"),
        "{parents}"
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.base.name"],
        "docker.io/library/bb:latest"
    );

    // A fresh root pulls app alone: each blob crosses once.
    let b = Root::new();
    let before = reg.blob_gets();
    b.ok(&["pull", &reg.name("app")]);
    let after = reg.blob_gets();
    let fetched: Vec<(&String, usize)> = after
        .iter()
        .map(|(d, n)| (d, n - before.get(d).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(fetched.len(), 4, "3 layers and the config: {fetched:?}");
    assert!(fetched.iter().all(|(_, n)| *n == 1), "each once: {fetched:?}");
    assert_eq!(diff_ids(&b, &reg.name("app")), diff_ids(&a, "app"));

    // A root that has the parents pulls app and downloads no layer.
    let c = Root::new();
    for repo in ["bb", "python", "tools"] {
        c.ok(&["pull", &reg.name(repo)]);
    }
    let dirs = layer_dirs(&c);
    let before = reg.blob_gets();
    let out = c.ok(&["pull", &reg.name("app")]);
    let after = reg.blob_gets();
    let new: usize = after.iter().map(|(d, n)| n - before.get(d).copied().unwrap_or(0)).sum();
    assert_eq!(new, 1, "only the new config:\n{out}");
    assert_eq!(out.matches("Already exists").count(), 3, "{out}");
    assert_eq!(layer_dirs(&c), dirs, "nothing unpacked again");
}

/// Every entry of a container's filesystem (from `export`): type, mode,
/// owner, size, mtime, link target and content digest, by path.
fn tree(root: &Root, image: &str) -> BTreeMap<String, String> {
    let name = format!("tree-{}", image.replace([':', '/'], "-"));
    root.ok(&["create", "--name", &name, image, "true"]);
    let tar = root.path().join(format!("{name}.tar"));
    root.ok(&["export", "-o", tar.to_str().unwrap(), &name]);
    root.ok(&["rm", &name]);
    let mut ar = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_string();
        if ["etc/hosts", "etc/hostname", "etc/resolv.conf", "etc", "."].contains(&path.as_str()) {
            continue; // made for each container
        }
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        use sha2::Digest as _;
        let fact = format!(
            "{:?} {:o} {}:{} {} {} {:?} {}",
            h.entry_type(),
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.size().unwrap(),
            h.mtime().unwrap(),
            h.link_name().unwrap(),
            hex::encode(sha2::Sha256::digest(&body))
        );
        out.insert(path, fact);
    }
    out
}

#[test]
#[ignore = "needs root"]
fn copy_link_from_a_whole_stage_reuses_its_layers_and_gives_the_copys_tree() {
    let root = Root::new();
    root.busybox("bb");
    let df = "FROM bb AS py\n\
              RUN mkdir -p /opt/python/bin && echo py > /opt/python/bin/python3 && chmod 755 /opt/python/bin/python3\n\
              FROM bb AS tools\n\
              RUN mkdir -p /opt/tools && echo t > /opt/tools/tool && ln -s tool /opt/tools/t\n\
              FROM bb AS linked\n\
              COPY --link --from=py / /\n\
              COPY --link --from=tools / /\n\
              FROM bb AS copied\n\
              COPY --from=py / /\n\
              COPY --from=tools / /\n";
    let ctx = context(&[("Dockerfile", df)]);
    let dir = ctx.path().to_str().unwrap();
    let out = build_ok(&root, &["--progress=plain", "--target", "linked", "-t", "linked", dir]);
    assert_eq!(out.matches("Reusing 1 layer of").count(), 2, "{out}");
    assert!(out.contains("nothing copied"), "{out}");
    build_ok(&root, &["--target", "py", "-t", "py", dir]);
    build_ok(&root, &["--target", "tools", "-t", "tools", dir]);
    build_ok(&root, &["--target", "copied", "-t", "copied", dir]);

    let (bb, py, tools) = (diff_ids(&root, "bb"), diff_ids(&root, "py"), diff_ids(&root, "tools"));
    assert_eq!(
        diff_ids(&root, "linked"),
        vec![bb[0].clone(), py[1].clone(), tools[1].clone()],
        "the stages' own layers, the shared base once"
    );
    assert_eq!(tree(&root, "linked"), tree(&root, "copied"), "the tree the copy gives");
}

#[test]
#[ignore = "needs root"]
fn copy_link_from_a_stage_that_deletes_a_target_file_copies_and_says_why() {
    let root = Root::new();
    root.busybox("bb");
    let df = "FROM bb AS slim\n\
              RUN rm /bin/vi && mkdir /opt && echo s > /opt/s\n\
              FROM bb AS linked\n\
              COPY --link --from=slim / /\n\
              FROM bb AS copied\n\
              COPY --from=slim / /\n";
    let ctx = context(&[("Dockerfile", df)]);
    let dir = ctx.path().to_str().unwrap();
    let out = build_ok(&root, &["--progress=plain", "--target", "linked", "-t", "linked", dir]);
    assert!(
        out.contains(
            "COPY --link --from=slim / /: copying the files, the layers cannot be reused as they are: /bin/vi"
        ),
        "{out}"
    );
    build_ok(&root, &["--target", "copied", "-t", "copied", dir]);
    let t = tree(&root, "linked");
    assert!(t.contains_key("bin/vi"), "the copy keeps the target's /bin/vi");
    assert_eq!(t, tree(&root, "copied"));
    assert_eq!(diff_ids(&root, "linked").len(), 2, "bb's layer and one copied layer");
}
