//! The real `docker` CLI (the 28.x client and Debian's 20.10) drives
//! `berth system service`: what berth's own CLI did is there at once, and
//! what docker does through the socket berth's CLI sees (one store).

#[path = "common/api.rs"]
mod api;
mod common;

use api::{docker, docker_clients, docker_ok, Service};
use common::{stderr, stdout, Env, Root};

#[test]
fn docker_version_info_images_inspect_tag_save_load_and_rmi() {
    let root = Root::new();
    let id = root.busybox("bb");
    let svc = Service::start(&root);
    for client in docker_clients() {
        let d = |args: &[&str]| docker_ok(&client, &svc, &root, args);
        // The client negotiates berth's API version.
        let v = d(&[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
        ]);
        assert_eq!(v.trim(), "1.43 1.24 linux", "{}", client.display());
        let info = d(&["info", "--format", "{{.Images}} {{.DockerRootDir}} {{.OSType}}"]);
        assert_eq!(info.trim(), format!("1 {} linux", root.path().join("store").display()));

        let images = d(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
        assert_eq!(images.trim(), format!("bb:latest {}", &id[7..19]));
        let inspected = d(&["inspect", "--format", "{{.Id}} {{index .RepoTags 0}}", "bb"]);
        assert_eq!(inspected.trim(), format!("{id} bb:latest"));
        let history = d(&["history", "--format", "{{.ID}}", "--no-trunc", "bb"]);
        assert!(history.contains(&id), "{history}");

        // A tag made through the socket is berth's tag.
        d(&["tag", "bb", "bb:copy"]);
        assert!(root.ok(&["images", "--format", "{{.Tag}}"]).contains("copy"));
        let both = d(&["images", "--format", "{{.Tag}}", "bb"]);
        assert_eq!(both.lines().collect::<Vec<_>>().len(), 2, "{both}");

        // save | load through the socket, both ways streamed.
        let saved = docker(&client, &svc, &root, &["save", "bb:copy"]);
        assert!(saved.status.success(), "{}", stderr(&saved));
        assert!(saved.stdout.len() > 1 << 20, "a Docker archive of busybox");
        d(&["rmi", "bb:copy"]);
        let mut load = api::docker_cmd(&client, &svc, &root, &["load"]);
        load.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = load.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), &saved.stdout).unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim(), "Loaded image: bb:copy");

        let rmi = d(&["rmi", "bb:copy"]);
        assert_eq!(rmi.trim(), "Untagged: bb:copy");
        assert!(!root.ok(&["images", "--format", "{{.Tag}}"]).contains("copy"));

        // Errors come back in Docker's words, with Docker's exit code.
        let o = docker(&client, &svc, &root, &["rmi", "nosuch"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("No such image: nosuch"), "{}", stderr(&o));
        let o = docker(&client, &svc, &root, &["inspect", "nosuch"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("No such object: nosuch"), "{}", stderr(&o));
    }
}

#[test]
#[ignore = "needs root"]
fn docker_ps_start_cp_top_stop_rm_of_a_container_berth_created() {
    let env = Env::new();
    let root = &env.root;
    let svc = Service::start(root);
    let host = root.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    for client in docker_clients() {
        let d = |args: &[&str]| docker_ok(&client, &svc, root, args);
        let id = root.ok(&["create", "--name", "web", "-l", "tier=front", "bb", "sleep", "300"]);
        let id = id.trim();
        let ps = d(&[
            "ps",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Names}} {{.Status}} {{.Labels}}",
        ]);
        assert_eq!(
            ps.trim(),
            format!("{id} web Created tier=front"),
            "{}",
            client.display()
        );
        assert_eq!(d(&["ps", "-q"]).trim(), "", "nothing runs yet");

        assert_eq!(d(&["start", "web"]).trim(), "web");
        assert_eq!(d(&["inspect", "--format", "{{.State.Running}}", "web"]).trim(), "true");
        assert!(d(&["ps", "--format", "{{.Status}}"]).starts_with("Up "));
        assert_eq!(
            root.ok(&["inspect", "--format", "{{.State.Status}}", "web"]).trim(),
            "running"
        );
        let top = d(&["top", "web"]);
        assert!(top.contains("sleep 300"), "{top}");
        // ps options, as dockerd runs the host's ps with them; the CLI's
        // top gives the same table.
        let top = d(&["top", "web", "-o", "pid,comm"]);
        let cmds: Vec<&str> = top.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
        assert_eq!(cmds, ["COMMAND", "sleep"], "{top}");
        assert_eq!(top, root.ok(&["top", "web", "-o", "pid,comm"]));

        // cp both ways, into a directory and to a new name.
        let note = host.join("note.txt");
        std::fs::write(&note, "from the host\n").unwrap();
        d(&["cp", note.to_str().unwrap(), "web:/tmp/"]);
        d(&["cp", note.to_str().unwrap(), "web:/tmp/renamed.txt"]);
        let back = host.join("back.txt");
        let _ = std::fs::remove_file(&back);
        d(&["cp", "web:/tmp/renamed.txt", back.to_str().unwrap()]);
        assert_eq!(std::fs::read_to_string(&back).unwrap(), "from the host\n");
        let etc = host.join("etc-copy");
        let _ = std::fs::remove_dir_all(&etc);
        d(&["cp", "web:/etc", etc.to_str().unwrap()]);
        assert!(etc.join("passwd").is_file());
        let o = docker(&client, &svc, root, &["cp", "web:/nosuch", host.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        // The 28.x client words a 404 itself; 20.10 prints the daemon's message.
        let e = stderr(&o);
        assert!(
            e.contains("No such container:path: web:/nosuch")
                || e.contains("Could not find the file /nosuch in container web"),
            "{e}"
        );
        let diff = d(&["diff", "web"]);
        assert!(diff.contains("A /tmp/note.txt"), "{diff}");
        // commit (the running container paused meanwhile): its changes,
        // author, message and a change, and the container it came from.
        let img = d(&[
            "commit",
            "-a",
            "ann",
            "-m",
            "snap",
            "-c",
            "ENV MODE=snap",
            "web",
            "snap:1",
        ]);
        assert!(img.trim().starts_with("sha256:"), "{img}");
        assert_eq!(
            d(&[
                "inspect",
                "--format",
                "{{.Container}} {{.Author}} {{.Comment}}",
                "snap:1"
            ])
            .trim(),
            format!("{id} ann snap")
        );
        assert!(d(&["inspect", "--format", "{{json .Config.Env}}", "snap:1"]).contains("MODE=snap"));
        assert_eq!(d(&["run", "--rm", "snap:1", "cat", "/tmp/note.txt"]), "from the host\n");
        assert_eq!(
            d(&["inspect", "--format", "{{.State.Status}}", "web"]).trim(),
            "running"
        );
        d(&["rmi", "snap:1"]);

        assert_eq!(d(&["stop", "-t", "1", "web"]).trim(), "web");
        assert_eq!(d(&["inspect", "--format", "{{.State.Status}}", "web"]).trim(), "exited");
        let o = docker(&client, &svc, root, &["kill", "web"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
        // Removing a running container needs force: Docker's 409.
        d(&["start", "web"]);
        let o = docker(&client, &svc, root, &["rm", "web"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("stop the container before removing"),
            "{}",
            stderr(&o)
        );
        d(&["stop", "-t", "1", "web"]);
        assert_eq!(d(&["rm", "web"]).trim(), "web");
        assert_eq!(root.ok(&["ps", "-aq"]).trim(), "", "berth's CLI sees it gone");
        let o = docker(&client, &svc, root, &["rm", "web"]);
        assert!(stderr(&o).contains("No such container: web"), "{}", stderr(&o));
    }
}

/// `DOCKER_BUILDKIT=0 docker build --cache-from IMAGE`: an image saved in
/// one store and loaded into a fresh one serves its steps as a cache there
/// (matched by history, as the classic builder does); a step whose input
/// changed runs, and so do the steps after it.
#[test]
#[ignore = "needs root"]
fn docker_build_cache_from_an_image_loaded_into_a_fresh_store() {
    let env = Env::new();
    let a = &env.root;
    let ctx = a.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb\nENV STAGE=one\nCOPY greeting /greeting\nRUN cat /greeting > /copied && echo ran >> /copied\nCMD [\"cat\", \"/copied\"]\n",
    )
    .unwrap();
    std::fs::write(ctx.join("greeting"), "hello\n").unwrap();
    let client = &docker_clients()[0];
    let ctx_s = ctx.to_str().unwrap();
    let build = |svc: &Service, root: &Root, args: &[&str]| -> String {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        all.push(ctx_s);
        let o = api::docker_cmd(client, svc, root, &all)
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "docker build {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    };
    let sa = Service::start(a);
    let first = build(&sa, a, &["-t", "app"]);
    assert!(first.contains("Running in"), "{first}");
    let app_id = docker_ok(client, &sa, a, &["inspect", "-f", "{{.Id}}", "app"]);
    let archive = a.path().join("app.tar");
    docker_ok(client, &sa, a, &["save", "-o", archive.to_str().unwrap(), "app", "bb"]);

    // A fresh store with nothing but the loaded archive.
    let b = Root::new();
    let sb = Service::start(&b);
    docker_ok(client, &sb, &b, &["load", "-i", archive.to_str().unwrap()]);
    let again = build(&sb, &b, &["--cache-from", "app", "-t", "app2"]);
    assert_eq!(again.matches("Using cache").count(), 4, "ENV, COPY, RUN, CMD:\n{again}");
    assert!(!again.contains("Running in"), "{again}");
    // The last step is the cache image itself, as in Docker.
    let app2_id = docker_ok(client, &sb, &b, &["inspect", "-f", "{{.Id}}", "app2"]);
    assert_eq!(app2_id, app_id);
    let out = docker_ok(client, &sb, &b, &["run", "--rm", "app2"]);
    assert_eq!(out, "hello\nran\n");

    // New content: ENV still comes from the cache, COPY and what follows run.
    std::fs::write(ctx.join("greeting"), "bye\n").unwrap();
    let changed = build(&sb, &b, &["--cache-from", "app", "-t", "app3"]);
    assert_eq!(changed.matches("Using cache").count(), 1, "{changed}");
    assert!(changed.contains("Running in"), "{changed}");
    let out = docker_ok(client, &sb, &b, &["run", "--rm", "app3"]);
    assert_eq!(out, "bye\nran\n");
    // Without --cache-from a fresh store has nothing to reuse.
    let c = Root::new();
    let sc = Service::start(&c);
    docker_ok(client, &sc, &c, &["load", "-i", archive.to_str().unwrap()]);
    std::fs::write(ctx.join("greeting"), "hello\n").unwrap();
    let plain = build(&sc, &c, &["-t", "app4"]);
    assert_eq!(plain.matches("Using cache").count(), 0, "{plain}");
}
