//! Other CPU architectures on this host: images made offline from Debian's
//! per-architecture busybox-static (scripts/foreign-rootfs), run and built
//! through qemu-user-static after `berth system binfmt --install`.
//!
//! Registering a handler changes the kernel for the whole machine, so these
//! tests need root, take a lock against each other, and put the host's
//! binfmt_misc back exactly as they found it (handlers, switches, and the
//! mount itself) when they end, passed or failed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_runtime::binfmt::{BinfmtMisc, Snapshot, HOST_BINFMT_DIR};
use common::{stderr, stdout, Root, Rootless};

/// The host's binfmt_misc as it was, put back on drop; holds a lock so
/// that no two tests change it at once.
struct HostBinfmt {
    _lock: std::fs::File,
    before: Option<Snapshot>,
}

impl HostBinfmt {
    fn take() -> HostBinfmt {
        let lock = std::fs::File::create("/run/lock/berth-binfmt-tests.lock").unwrap();
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
        let before = BinfmtMisc::find().map(|b| b.snapshot().unwrap());
        HostBinfmt { _lock: lock, before }
    }
}

impl HostBinfmt {
    /// Puts the host's binfmt_misc back as it was (again on drop).
    fn put_back(&self) {
        let Some(now) = BinfmtMisc::find() else { return };
        match &self.before {
            Some(before) => now.restore(before).expect("restoring the host's binfmt handlers"),
            // It was not mounted: unmounting drops every handler again.
            None => rustix::mount::unmount(HOST_BINFMT_DIR, rustix::mount::UnmountFlags::empty())
                .expect("unmounting the binfmt_misc this test mounted"),
        }
    }
}

impl Drop for HostBinfmt {
    fn drop(&mut self) {
        self.put_back();
    }
}

/// A tar of a busybox root file system for `platform`, made once per
/// machine by scripts/foreign-rootfs from Debian's busybox-static.
fn rootfs(platform: &str) -> PathBuf {
    let name = platform.trim_start_matches("linux/").replace('/', "-");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("busybox-{name}.tar"));
    if !out.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/foreign-rootfs");
        let o = Command::new(script).arg(platform).arg(&out).output().unwrap();
        assert!(o.status.success(), "foreign-rootfs {platform}: {}", stderr(&o));
    }
    out
}

/// `bb-ARCH`, imported with its platform in the image config.
fn import(root: &Root, platform: &str) -> String {
    let name = format!(
        "bb-{}",
        platform.trim_start_matches("linux/").split('/').next().unwrap()
    );
    let tar = rootfs(platform);
    root.ok(&["import", "--platform", platform, tar.to_str().unwrap(), &name]);
    name
}

fn install(root: &Root, arches: &[&str]) -> String {
    let mut args = vec!["system", "binfmt", "--install"];
    args.extend_from_slice(arches);
    root.ok(&args)
}

fn runtimes() -> Vec<&'static str> {
    ["crun", "runc", "youki"]
        .into_iter()
        .filter(|rt| common::have(rt) || Path::new(&format!("/usr/local/bin/{rt}")).exists())
        .collect()
}

#[test]
#[ignore = "needs root"]
fn after_binfmt_install_an_arm64_image_runs_on_every_runtime() {
    let _host = HostBinfmt::take();
    let root = Root::new();
    let out = install(&root, &["arm64"]);
    assert!(
        out.starts_with("arm64: registered") || out.starts_with("arm64: present") || out.starts_with("arm64: replaced"),
        "{out}"
    );
    let table = root.ok(&["system", "binfmt", "--format", "{{.Arch}} {{.Status}} {{.Flags}}"]);
    let arm64 = table.lines().find(|l| l.starts_with("arm64 ")).unwrap();
    assert!(arm64.starts_with("arm64 emulated ") && arm64.contains('F'), "{table}");

    let image = import(&root, "linux/arm64");
    assert_eq!(
        root.ok(&["image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", &image]),
        "linux/arm64\n"
    );
    for rt in runtimes() {
        let o = root.run(&["--runtime", rt, "run", "--rm", &image, "uname", "-m"]);
        assert_eq!(stdout(&o), "aarch64\n", "{rt}: {}", stderr(&o));
    }
}

#[test]
#[ignore = "needs root"]
fn arm_ppc64le_and_s390x_run_emulated_and_386_runs_natively() {
    let _host = HostBinfmt::take();
    let root = Root::new();
    install(&root, &["arm", "ppc64le", "s390x"]);
    for (platform, machine) in [
        ("linux/arm/v7", "armv7l"),
        ("linux/ppc64le", "ppc64le"),
        ("linux/s390x", "s390x"),
    ] {
        let image = import(&root, platform);
        assert_eq!(
            root.ok(&["run", "--rm", &image, "uname", "-m"]),
            format!("{machine}\n"),
            "{platform}"
        );
    }
    // 386 needs no handler on amd64: the kernel runs 32-bit programs itself.
    if berth_store::ImageConfig::host_architecture() == "amd64" {
        let table = root.ok(&["system", "binfmt", "--format", "{{.Arch}} {{.Status}}"]);
        assert!(table.lines().any(|l| l == "386 native"), "{table}");
        let image = import(&root, "linux/386");
        // The busybox that answers is a 32-bit ELF (class byte 1).
        let class = root.ok(&["run", "--rm", &image, "od", "-An", "-tx1", "-j4", "-N1", "/bin/busybox"]);
        assert_eq!(class.trim(), "01");
    }
}

#[test]
#[ignore = "needs root"]
fn a_build_runs_the_run_steps_of_an_arm64_image_under_emulation() {
    let _host = HostBinfmt::take();
    let root = Root::new();
    install(&root, &["arm64"]);
    let base = import(&root, "linux/arm64");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nRUN uname -m > /arch\n"),
    )
    .unwrap();
    root.ok(&["build", "-q", "-t", "built-arm64", ctx.path().to_str().unwrap()]);
    assert_eq!(root.ok(&["run", "--rm", "built-arm64", "cat", "/arch"]), "aarch64\n");
    assert_eq!(
        root.ok(&["image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "built-arm64"]),
        "linux/arm64\n"
    );
}

#[test]
#[ignore = "needs root"]
fn a_rootless_user_runs_an_arm64_image_through_the_handler_root_installed() {
    let _host = HostBinfmt::take();
    let rl = Rootless::new("berth-platforms-");
    let tar = rl.dir.path().join("arm64.tar");
    std::fs::copy(rootfs("linux/arm64"), &tar).unwrap();
    std::os::unix::fs::chown(&tar, Some(rl.uid), Some(rl.gid)).unwrap();

    // The user may not register; berth says what root must run.
    let o = rl.run("system binfmt --install arm64");
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("needs root; as root run:\n  berth system binfmt --install arm64"),
        "{e}"
    );
    assert!(e.contains(":qemu-aarch64:M:"), "{e}");

    Root::new().ok(&["system", "binfmt", "--install", "arm64"]);
    let o = rl.run("import --platform linux/arm64 arm64.tar bb-arm64");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rl.run("run --rm bb-arm64 uname -m");
    assert_eq!(stdout(&o), "aarch64\n", "{}", stderr(&o));
}

#[test]
#[ignore = "needs root"]
fn uninstall_removes_the_handler_and_the_host_is_restored_afterwards() {
    let host = HostBinfmt::take();
    let root = Root::new();
    install(&root, &["riscv64"]);
    let status = |root: &Root| {
        let t = root.ok(&["system", "binfmt", "--format", "{{.Arch}} {{.Status}}"]);
        t.lines().find(|l| l.starts_with("riscv64 ")).unwrap().to_string()
    };
    assert_eq!(status(&root), "riscv64 emulated");
    let out = root.ok(&["system", "binfmt", "--uninstall", "riscv64"]);
    assert_eq!(out, "removed qemu-riscv64\n");
    assert_eq!(status(&root), "riscv64 none");
    install(&root, &["riscv64", "s390x"]);
    host.put_back();
    assert_eq!(
        BinfmtMisc::find().map(|b| b.snapshot().unwrap()),
        host.before,
        "the host is as it was"
    );
}

fn context(dockerfile: &str) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    ctx
}

/// A stage `FROM --platform=$BUILDPLATFORM` writes what it was built for
/// and on, and what machine it ran on; the final stage copies that.
const CROSS: &str = "FROM --platform=$BUILDPLATFORM bb AS build\n\
                     ARG BUILDARCH TARGETARCH\n\
                     RUN echo \"$BUILDARCH/$TARGETARCH $(uname -m)\" > /out\n\
                     FROM BASE\n\
                     COPY --from=build /out /out\n\
                     RUN uname -m >> /out\n";

#[test]
#[ignore = "needs root"]
fn a_build_for_the_native_platform_gets_its_platform_args() {
    let root = Root::new();
    root.busybox("bb");
    let ctx = context(&CROSS.replace("FROM BASE", "FROM bb"));
    let host = berth_store::ImageConfig::host_architecture();
    let platform = format!("linux/{host}");
    root.ok(&[
        "build",
        "-q",
        "--platform",
        &platform,
        "-t",
        "native",
        ctx.path().to_str().unwrap(),
    ]);
    let machine = std::env::consts::ARCH;
    assert_eq!(
        root.ok(&["run", "--rm", "native", "cat", "/out"]),
        format!("{host}/{host} {machine}\n{machine}\n")
    );
    assert_eq!(
        root.ok(&["image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "native"]),
        format!("{platform}\n")
    );
}

#[test]
#[ignore = "needs root"]
fn a_cross_build_runs_its_buildplatform_stage_natively_and_the_target_stage_under_qemu() {
    let _host = HostBinfmt::take();
    let root = Root::new();
    install(&root, &["arm64"]);
    root.busybox("bb");
    let base = import(&root, "linux/arm64");
    let ctx = context(&CROSS.replace("FROM BASE", &format!("FROM {base}")));
    let out = root.ok(&[
        "build",
        "--platform",
        "linux/arm64",
        "-t",
        "cross",
        ctx.path().to_str().unwrap(),
    ]);
    let host = berth_store::ImageConfig::host_architecture();
    // uname -m in the $BUILDPLATFORM stage is the host's: no emulation.
    assert_eq!(
        root.ok(&["run", "--rm", "cross", "cat", "/out"]),
        format!("{host}/arm64 {}\naarch64\n", std::env::consts::ARCH)
    );
    assert_eq!(
        root.ok(&["image", "inspect", "-f", "{{.Architecture}}", "cross"]),
        "arm64\n"
    );
    // The image of that stage's RUN step says it is the host's.
    let step_ids: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("---> "))
        .filter(|w| w.len() == 12 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    let run_step = step_ids[2]; // FROM, ARG, RUN of the first stage
    assert_eq!(
        root.ok(&["image", "inspect", "-f", "{{.Architecture}}", run_step]),
        format!("{host}\n")
    );
}

#[test]
#[ignore = "needs root"]
fn without_a_handler_a_foreign_run_step_fails_with_what_to_do() {
    let _host = HostBinfmt::take();
    let root = Root::new();
    root.ok(&["system", "binfmt", "--uninstall", "arm64"]);
    let base = import(&root, "linux/arm64");
    let ctx = context(&format!("FROM {base}\nRUN uname -m > /arch\n"));
    let o = root.run(&["build", "-t", "nohandler", ctx.path().to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "image is linux/arm64, this host is linux/{} and has no binfmt handler for it: run berth system binfmt --install arm64",
            berth_store::ImageConfig::host_architecture()
        )),
        "{e}"
    );
    assert!(e.contains("Dockerfile:2"), "{e}");
}

#[test]
#[ignore = "needs root"]
fn run_platform_picks_the_arm64_variant_and_without_a_handler_refuses_before_starting() {
    let _host = HostBinfmt::take();
    let root = Root::new();
    let image = import(&root, "linux/arm64");
    install(&root, &["arm64"]);
    assert_eq!(
        root.ok(&["run", "--rm", "--platform", "linux/arm64", &image, "uname", "-m"]),
        "aarch64\n"
    );
    // No variant for the platform asked, and no pulling: Docker's words.
    let o = root.run(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--platform",
        "linux/amd64",
        &image,
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains(&format!("No such image: {image}")),
        "{}",
        stderr(&o)
    );

    // Nor anywhere to pull it from: what is here, and what was asked.
    let host = berth_store::ImageConfig::host_architecture();
    let o = root.run(&["run", "--rm", "--platform", &format!("linux/{host}"), &image, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains(&format!(
            "image with reference {image} was found but does not match the specified platform: wanted linux/{host}, actual: linux/arm64"
        )),
        "{}",
        stderr(&o)
    );

    root.ok(&["system", "binfmt", "--uninstall", "arm64"]);
    for platform in [&["--platform", "linux/arm64"][..], &[]] {
        let mut args = vec!["run", "--rm", "--name", "never-started"];
        args.extend_from_slice(platform);
        args.extend_from_slice(&[&image, "uname", "-m"]);
        let o = root.run(&args);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(&format!(
                "image is linux/arm64, this host is linux/{host} and has no binfmt handler for it: run berth system binfmt --install arm64"
            )),
            "{e}"
        );
        assert!(!e.contains("exec format error"), "{e}");
        // Refused before anything was made.
        assert_eq!(root.ok(&["ps", "-aq"]), "");
    }
}

/// A registry on 127.0.0.1 with `REG/bb` an index over busybox for this
/// host and for arm64 (what scripts/foreign-images --push makes).
struct Registry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    addr: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registry_with_base(root: &Root) -> Registry {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (child, port) = common::serve_registry(dir.path(), "log:\n  level: error\n", "", std::process::Stdio::null());
    let reg = Registry {
        child,
        _dir: dir,
        addr: format!("127.0.0.1:{port}"),
    };
    let host = berth_store::ImageConfig::host_architecture();
    root.busybox("bb-host");
    let arm = import(root, "linux/arm64");
    let mut parts = Vec::new();
    for (image, arch) in [("bb-host", host), (arm.as_str(), "arm64")] {
        let name = format!("{}/bb:{arch}", reg.addr);
        root.ok(&["tag", image, &name]);
        root.ok(&["push", "-q", &name]);
        parts.push(name);
    }
    let list = format!("{}/bb:latest", reg.addr);
    let mut args = vec!["manifest", "create", list.as_str()];
    args.extend(parts.iter().map(String::as_str));
    root.ok(&args);
    root.ok(&["manifest", "push", "-q", &list]);
    reg
}

/// The `(platform, digest)` entries of an index, sorted.
fn index_platforms(raw: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(raw).unwrap();
    assert_eq!(v["mediaType"], "application/vnd.oci.image.index.v1+json", "{raw}");
    let mut out: Vec<String> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// The step images a multi-platform build printed for a stage
/// (`[linux/arm64 name]  ---> <id>`), of every platform.
fn stage_images<'a>(out: &'a str, stage: &str) -> Vec<&'a str> {
    let mark = format!(" {stage}]  ---> ");
    out.lines()
        .filter_map(|l| l.split_once(&mark).map(|x| x.1))
        .filter(|w| w.len() == 12 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .collect()
}

#[test]
#[ignore = "needs root"]
fn a_two_platform_build_is_pushed_as_an_index_and_pulled_saved_and_loaded_per_platform() {
    let _host = HostBinfmt::take();
    let root = Root::new();
    install(&root, &["arm64"]);
    let reg = registry_with_base(&root);
    let host = berth_store::ImageConfig::host_architecture();
    let machine = std::env::consts::ARCH;
    let base = format!("{}/bb", reg.addr);
    // `gen` depends on no target platform: built once for both. `cross`
    // runs on the build platform for each target; the last stage per target.
    let ctx = context(&format!(
        "FROM --platform=$BUILDPLATFORM {base} AS gen\n\
         RUN echo generated > /g\n\
         FROM --platform=$BUILDPLATFORM {base} AS cross\n\
         ARG BUILDARCH TARGETARCH\n\
         RUN echo \"$BUILDARCH/$TARGETARCH $(uname -m)\" > /out\n\
         FROM {base}\n\
         COPY --from=gen /g /g\n\
         COPY --from=cross /out /out\n\
         RUN uname -m >> /out\n"
    ));
    let multi = format!("{}/multi", reg.addr);
    let mut both = vec![format!("linux/{host}"), "linux/arm64".to_string()];
    both.sort();
    let out = root.ok(&[
        "build",
        "--no-cache",
        "--platform",
        &format!("linux/{host},linux/arm64"),
        "-t",
        &multi,
        "--push",
        ctx.path().to_str().unwrap(),
    ]);
    // The shared stage ran once, even with --no-cache; the second platform
    // took what the first made.
    let gen: Vec<&str> = out.lines().filter(|l| l.contains(" gen] ")).collect();
    // Each line says which platform it is of.
    for p in &both {
        assert!(
            out.contains(&format!("[{p} stage-2] Step 9/9 : RUN uname -m >> /out")),
            "{out}"
        );
    }
    assert_eq!(gen.iter().filter(|l| l.contains("Running in")).count(), 1, "{out}");
    assert_eq!(gen.iter().filter(|l| l.contains("Using cache")).count(), 1, "{out}");
    // Every image of the $BUILDPLATFORM stage, for both targets, is the
    // host's: its RUN never went through qemu.
    let cross = stage_images(&out, "cross");
    assert_eq!(cross.len(), 6, "FROM, ARG, RUN for each target:\n{out}");
    for id in &cross {
        assert_eq!(
            root.ok(&["image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", id]),
            format!("linux/{host}\n")
        );
    }

    // The registry has an index over both.
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{multi}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(index_platforms(&stdout(&o)), both);

    // push --platform sends that platform's manifest alone.
    let arm_only = format!("{}/arm-only", reg.addr);
    root.ok(&["push", "-q", "--platform", "linux/arm64", &multi, &arm_only]);
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{arm_only}")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(v["Architecture"], "arm64", "{}", stderr(&o));

    // A fresh root pulls one platform, then the default beside it.
    let fresh = Root::new();
    fresh.ok(&["pull", "-q", "--platform", "linux/arm64", &multi]);
    let arm_out = format!("{host}/arm64 {machine}\naarch64\n");
    let host_out = format!("{host}/{host} {machine}\n{machine}\n");
    assert_eq!(fresh.ok(&["run", "--rm", &multi, "cat", "/out"]), arm_out);
    fresh.ok(&["pull", "-q", &multi]);
    assert_eq!(fresh.ok(&["run", "--rm", &multi, "cat", "/out"]), host_out);
    assert_eq!(
        fresh.ok(&["run", "--rm", "--platform", "linux/arm64", &multi, "cat", "/out", "/g"]),
        format!("{arm_out}generated\n")
    );
    let mut rows: Vec<String> = fresh
        .ok(&["images", "--format", "{{.Repository}} {{.Platform}}"])
        .lines()
        .map(String::from)
        .collect();
    rows.sort();
    let want: Vec<String> = both.iter().map(|p| format!("{multi} {p}")).collect();
    assert_eq!(rows, want);
    assert_eq!(
        fresh.ok(&[
            "image",
            "inspect",
            "--platform",
            "linux/arm64",
            "-f",
            "{{.Os}}/{{.Architecture}}",
            &multi
        ]),
        "linux/arm64\n"
    );

    let arm_id = fresh.ok(&["image", "inspect", "--platform", "linux/arm64", "-f", "{{.Id}}", &multi]);
    let history = fresh.ok(&["history", "--platform", "linux/arm64", "-q", "--no-trunc", &multi]);
    assert_eq!(history.lines().next(), Some(arm_id.trim()));
    // save --platform writes that platform alone.
    let arm_tar = fresh.path().join("arm.tar");
    fresh.ok(&[
        "save",
        "--platform",
        "linux/arm64",
        "-o",
        arm_tar.to_str().unwrap(),
        &multi,
    ]);
    let o = Command::new("skopeo")
        .args(["inspect", &format!("oci-archive:{}", arm_tar.display())])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(v["Architecture"], "arm64", "{}", stderr(&o));

    // save writes both under one index; load brings both back.
    let tar = fresh.path().join("multi.tar");
    fresh.ok(&["save", "-o", tar.to_str().unwrap(), &multi]);
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", &format!("oci-archive:{}", tar.display())])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(index_platforms(&stdout(&o)), both);
    let other = Root::new();
    assert_eq!(
        other.ok(&["load", "-i", tar.to_str().unwrap()]),
        format!("Loaded image: {multi}:latest\n")
    );
    assert_eq!(other.ok(&["run", "--rm", &multi, "cat", "/out"]), host_out);
    assert_eq!(
        other.ok(&["run", "--rm", "--platform", "linux/arm64", &multi, "cat", "/out"]),
        arm_out
    );
    // rmi --platform takes one platform away and leaves the other.
    other.ok(&["rmi", "--platform", "linux/arm64", &multi]);
    assert_eq!(
        other.ok(&["images", "--format", "{{.Repository}} {{.Platform}}"]),
        format!("{multi} linux/{host}\n")
    );
    // run --platform pulls the platform it lacks; the other stays beside it.
    assert_eq!(
        other.ok(&["run", "--rm", "--platform", "linux/arm64", &multi, "cat", "/out"]),
        arm_out
    );
    assert_eq!(other.ok(&["run", "--rm", &multi, "cat", "/out"]), host_out);
    // rmi of the name in the root that has both: the name and both images go.
    let ids = fresh.ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(ids.lines().count(), 2, "{ids}");
    let out = fresh.ok(&["rmi", &multi]);
    // Both images, each followed by the layers that went with it.
    for id in ids.lines() {
        assert!(out.lines().any(|l| l == format!("Deleted: {id}")), "{id}:\n{out}");
    }
    assert!(out.lines().filter(|l| l.starts_with("Deleted: ")).count() > 2, "{out}");
    assert_eq!(fresh.ok(&["images", "-q"]), "");
}
