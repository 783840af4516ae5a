//! The binfmt module's tests. Those that register handlers do it in a
//! binfmt_misc instance of their own: the test binary runs itself again
//! inside a new user and mount namespace (`unshare -Urm`), where Linux 6.7+
//! gives the namespace a private, empty instance. The host's handlers are
//! never touched, and the instance dies with the namespace.

use std::path::Path;

use super::*;

const AARCH64: &str = r":qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF";

fn arch(name: &str) -> &'static Arch {
    Arch::find(name).unwrap()
}

fn host() -> &'static Arch {
    Arch::this_host().expect("berth knows the architecture it was built for")
}

/// A directory laid out like a binfmt_misc instance: `status` and one file
/// per handler, as the kernel writes them.
fn fake_instance(dir: &Path, enabled: bool, handlers: &[Handler]) -> BinfmtMisc {
    std::fs::write(dir.join("register"), "").unwrap();
    std::fs::write(dir.join("status"), if enabled { "enabled\n" } else { "disabled\n" }).unwrap();
    for h in handlers {
        let Rule::Magic { offset, magic, mask } = &h.canonical().rule else {
            panic!("magic handlers only")
        };
        let mut text = format!(
            "{}\ninterpreter {}\nflags: {}\noffset {offset}\nmagic {}\n",
            if h.enabled { "enabled" } else { "disabled" },
            h.interpreter.display(),
            h.canonical().flags,
            hex::encode(magic)
        );
        if let Some(mask) = mask {
            text.push_str(&format!("mask {}\n", hex::encode(mask)));
        }
        std::fs::write(dir.join(&h.name), text).unwrap();
    }
    BinfmtMisc::at(dir)
}

fn aarch64(flags: &str, enabled: bool) -> Handler {
    let mut h = Handler::from_registration(AARCH64).unwrap();
    h.flags = flags.into();
    h.enabled = enabled;
    h
}

#[test]
fn a_registration_line_reads_and_writes_back_the_same() {
    let h = Handler::from_registration(AARCH64).unwrap();
    assert_eq!(h.name, "qemu-aarch64");
    assert_eq!(h.flags, "OPF");
    assert!(h.fixes_binary());
    assert_eq!(h.interpreter, Path::new("/usr/libexec/qemu-binfmt/aarch64-binfmt-P"));
    let Rule::Magic { offset, magic, mask } = &h.rule else {
        panic!("a magic rule")
    };
    assert_eq!((*offset, magic.len(), mask.as_ref().map(Vec::len)), (0, 20, Some(20)));
    assert_eq!(&magic[..4], b"\x7fELF");
    assert_eq!(Handler::from_registration(&h.registration()).unwrap(), h);
    // Literal characters in the magic are bytes too, as the kernel reads them.
    let loong = Handler::from_registration(r":l:M::\x7fELF\x02:\xff\xff\xff\xff\xff:/i:F").unwrap();
    let Rule::Magic { magic, .. } = loong.rule else {
        panic!()
    };
    assert_eq!(magic, b"\x7fELF\x02");
}

#[test]
fn bad_registration_lines_say_what_is_wrong() {
    for (line, why) in [
        ("", "empty"),
        (":x:M::\\x7f:", "expected"),
        (":x:Q::\\x7f::/i:", "type must be"),
        (":x:M::\\x7f:\\xff\\xff:/i:", "mask of another length"),
        (":x:M::\\x7:\\xff:/i:", "truncated"),
        (":x:M::\\x7f::/i:Z", "flags are"),
        (":../x:M::\\x7f::/i:", "invalid name"),
    ] {
        let e = Handler::from_registration(line).unwrap_err().to_string();
        assert!(e.contains(why), "{line:?}: {e}");
    }
}

#[test]
fn what_the_kernel_shows_of_a_handler_is_read() {
    let text = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\n\
                magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n";
    let h = Handler::from_kernel("qemu-aarch64", text).unwrap();
    assert_eq!(h.canonical(), Handler::from_registration(AARCH64).unwrap().canonical());
    let jar = Handler::from_kernel("jar", "disabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n").unwrap();
    assert!(!jar.enabled);
    assert_eq!(jar.rule, Rule::Extension("jar".into()));
    assert!(Handler::from_kernel("x", "enabled\ninterpreter /x\n").is_err());
}

#[test]
fn a_handler_is_recognised_by_the_architecture_it_serves() {
    let h = Handler::from_registration(AARCH64).unwrap();
    assert!(h.matches_header(&arch("arm64").elf_header(false)));
    assert!(h.matches_header(&arch("arm64").elf_header(true)), "PIE too");
    for other in ARCHES.iter().filter(|a| a.name != "arm64") {
        assert!(!h.matches_header(&other.elf_header(false)), "{}", other.name);
    }
}

#[test]
fn every_registration_of_debians_qemu_serves_its_architecture() {
    // The package's own files (scripts/setup installs qemu-user-static).
    let qemu = QemuPackage::default();
    for a in ARCHES.iter().filter(|a| !["amd64", "386"].contains(&a.name)) {
        let h = qemu
            .registration(a)
            .unwrap()
            .unwrap_or_else(|| panic!("qemu-user-static has no registration for {}", a.name));
        assert!(h.fixes_binary(), "{}: registered with F", a.name);
        assert!(h.matches_header(&a.elf_header(false)), "{} serves {}", h.name, a.name);
        let others: Vec<_> = ARCHES
            .iter()
            .filter(|o| o.name != a.name && h.matches_header(&o.elf_header(false)))
            .map(|o| o.name)
            .collect();
        assert!(others.is_empty(), "{} also takes {others:?}", h.name);
    }
}

#[test]
fn update_binfmts_files_are_read_when_there_is_no_binfmt_d_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("binfmts")).unwrap();
    std::fs::write(
        dir.path().join("binfmts/qemu-aarch64"),
        "package qemu-user-static\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n\
         magic \\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00\n\
         offset 0\nmask \\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff\n\
         credentials no\nfix_binary no\npreserve yes\n",
    )
    .unwrap();
    let qemu = QemuPackage {
        binfmt_d: dir.path().join("binfmt.d"),
        binfmts: dir.path().join("binfmts"),
    };
    let h = qemu.registration(arch("arm64")).unwrap().unwrap();
    assert_eq!(h.flags, "PF", "F is added: containers need it");
    assert_eq!(h.canonical().rule, aarch64("", true).canonical().rule);
    assert_eq!(qemu.registration(arch("s390x")).unwrap(), None);
}

#[test]
fn the_check_refuses_a_foreign_image_with_no_handler_in_these_words() {
    let dir = tempfile::tempdir().unwrap();
    let b = fake_instance(dir.path(), true, &[]);
    let amd64 = arch("amd64");
    let e = check_platform("linux", "arm64", Some("v8"), amd64, Some(&b)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "image is linux/arm64, this host is linux/amd64 and has no binfmt handler for it: run berth system binfmt --install arm64"
    );
    assert_eq!(e.exit_code(), 125);
    // Not mounted at all: the same.
    let e = check_platform("linux", "arm64", None, amd64, None).unwrap_err();
    assert!(e
        .to_string()
        .ends_with("has no binfmt handler for it: run berth system binfmt --install arm64"));
    let e = check_platform("linux", "arm", Some("v7"), amd64, None).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("image is linux/arm/v7, this host is linux/amd64"),
        "{e}"
    );
    assert!(e.to_string().ends_with("--install arm"), "{e}");
    let e = check_platform("windows", "amd64", None, amd64, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "image is windows/amd64, this host is linux/amd64 and runs linux images only"
    );
    let e = check_platform("linux", "sparc64", None, amd64, None).unwrap_err();
    assert!(e.to_string().contains("berth knows no emulator"), "{e}");
}

#[test]
fn the_check_passes_native_images_and_those_with_a_fix_binary_handler() {
    let dir = tempfile::tempdir().unwrap();
    let b = fake_instance(dir.path(), true, &[aarch64("POF", true)]);
    let amd64 = arch("amd64");
    assert_eq!(
        check_platform("linux", "amd64", None, amd64, Some(&b)).unwrap(),
        Support::Native
    );
    assert_eq!(
        check_platform("linux", "x86_64", None, amd64, None).unwrap(),
        Support::Native,
        "the kernel's spelling"
    );
    let s = check_platform("linux", "arm64", None, amd64, Some(&b)).unwrap();
    assert_eq!(s.handler().map(|h| h.name.as_str()), Some("qemu-aarch64"));
    assert_eq!(s.word(), "emulated");
    assert_eq!(check_platform("linux", "aarch64", None, amd64, Some(&b)).unwrap(), s);
}

#[test]
fn a_handler_without_f_or_switched_off_is_not_enough_and_the_error_says_why() {
    let amd64 = arch("amd64");
    let dir = tempfile::tempdir().unwrap();
    let b = fake_instance(dir.path(), true, &[aarch64("P", true)]);
    let e = check_platform("linux", "arm64", None, amd64, Some(&b)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "image is linux/arm64, this host is linux/amd64 and its binfmt handler qemu-aarch64 lacks the F (fix-binary) \
         flag, so containers cannot use it: run berth system binfmt --install arm64"
    );
    let dir = tempfile::tempdir().unwrap();
    let b = fake_instance(dir.path(), true, &[aarch64("POF", false)]);
    let e = check_platform("linux", "arm64", None, amd64, Some(&b)).unwrap_err();
    assert!(e
        .to_string()
        .ends_with("its binfmt handler qemu-aarch64 is disabled: run berth system binfmt --install arm64"));
    // binfmt_misc switched off as a whole.
    let dir = tempfile::tempdir().unwrap();
    let b = fake_instance(dir.path(), false, &[aarch64("POF", true)]);
    assert!(matches!(
        support(arch("arm64"), amd64, Some(&b)).unwrap(),
        Support::Disabled(_)
    ));
}

#[test]
fn the_survey_lists_the_host_first_and_every_architecture_once() {
    let dir = tempfile::tempdir().unwrap();
    let b = fake_instance(dir.path(), true, &[aarch64("OPF", true)]);
    let s = survey(host(), Some(&b)).unwrap();
    assert_eq!(s[0], (host(), Support::Native));
    assert_eq!(s.len(), ARCHES.len());
    if host().name == "amd64" {
        let of = |n: &str| s.iter().find(|(a, _)| a.name == n).unwrap().1.clone();
        assert!(matches!(of("arm64"), Support::Emulated(_)));
        assert_eq!(of("s390x"), Support::None);
    }
}

#[test]
fn the_exit_programs_are_real_executables() {
    assert!(arch::kernel_runs(host()), "the host's own architecture");
    // The foreign ones, run by qemu directly (no binfmt involved).
    let dir = tempfile::tempdir().unwrap();
    for a in ARCHES.iter().filter(|a| a != &host()) {
        let Some(program) = a.exit_program() else { continue };
        let path = dir.path().join(a.name);
        std::fs::write(&path, program).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let qemu = format!("/usr/bin/qemu-{}-static", a.qemu);
        if a.is_compat_on(host()) && !Path::new(&qemu).exists() {
            continue; // Debian ships no emulator for the host's own 32-bit mode.
        }
        let st = std::process::Command::new(&qemu)
            .arg(&path)
            .status()
            .unwrap_or_else(|e| panic!("{qemu}: {e}"));
        assert!(st.success(), "{} under {qemu}: {st}", a.name);
    }
}

// ---- In a private binfmt_misc instance (user namespace, Linux 6.7+) ----

/// A temporary directory something is mounted on: unmounted before it is
/// removed (else the removal fails, and the empty directory stays in /tmp
/// once the namespace and its mount are gone).
struct MountedDir(tempfile::TempDir);

impl MountedDir {
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for MountedDir {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.0.path(), rustix::mount::UnmountFlags::DETACH);
    }
}

const PRIVATE: &str = "BERTH_BINFMT_TEST_PRIVATE";

/// Inside the re-run: a private instance mounted on a fresh directory.
/// Outside: `None`, after running `test` again in a new user and mount
/// namespace and asserting that it passed there.
fn private_instance(test: &str) -> Option<(BinfmtMisc, MountedDir)> {
    if std::env::var_os(PRIVATE).is_some() {
        let dir = MountedDir(tempfile::tempdir().unwrap());
        let b = BinfmtMisc::mount(dir.path()).unwrap_or_else(|e| {
            panic!(
                "{e}: this test needs binfmt_misc in user namespaces (Linux 6.7+; this is {})",
                std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim()
            )
        });
        return Some((b, dir));
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--propagation", "private"])
        .arg(exe)
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(PRIVATE, "1")
        .output()
        .expect("unshare (util-linux) runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "in a private user namespace:\n{text}");
    assert!(text.contains("1 passed"), "the test ran there:\n{text}");
    None
}

#[test]
fn install_registers_qemu_with_f_so_arm64_programs_run_and_restore_undoes_it() {
    let Some((b, _dir)) =
        private_instance("binfmt::tests::install_registers_qemu_with_f_so_arm64_programs_run_and_restore_undoes_it")
    else {
        return;
    };
    let arm64 = arch("arm64");
    let empty = b.snapshot().unwrap();
    assert_eq!(
        empty,
        Snapshot {
            enabled: true,
            handlers: vec![]
        },
        "a fresh instance is empty"
    );
    // Private and empty: the host's handlers do not reach in here.
    assert!(!arch::kernel_runs(arm64));
    assert_eq!(support(arm64, host(), Some(&b)).unwrap(), Support::None);

    let done = install(&b, host(), &[arm64], &QemuPackage::default()).unwrap();
    let [(_, Installed::Registered(h))] = done.as_slice() else {
        panic!("{done:?}")
    };
    assert_eq!(h.name, "qemu-aarch64");
    let seen = b.handler("qemu-aarch64").unwrap().unwrap();
    assert!(seen.fixes_binary(), "{seen:?}");
    assert_eq!(seen.canonical(), h.canonical());
    assert!(arch::kernel_runs(arm64), "an arm64 program runs through qemu");
    assert_eq!(support(arm64, host(), Some(&b)).unwrap().word(), "emulated");

    // Again: nothing to do.
    let again = install(&b, host(), &[arm64], &QemuPackage::default()).unwrap();
    assert!(matches!(again[0].1, Installed::Present(_)), "{again:?}");

    // Switched off, then installed again: replaced by an enabled one.
    std::fs::write(b.dir().join("qemu-aarch64"), "0").unwrap();
    assert!(!arch::kernel_runs(arm64));
    let again = install(&b, host(), &[arm64], &QemuPackage::default()).unwrap();
    assert!(
        matches!(&again[0].1, Installed::Replaced { old, .. } if !old.enabled),
        "{again:?}"
    );
    assert!(arch::kernel_runs(arm64));

    b.restore(&empty).unwrap();
    assert_eq!(b.snapshot().unwrap(), empty);
    assert!(!arch::kernel_runs(arm64));
}

#[test]
fn a_handler_without_f_is_replaced_and_restore_brings_the_old_one_back() {
    let Some((b, _dir)) =
        private_instance("binfmt::tests::a_handler_without_f_is_replaced_and_restore_brings_the_old_one_back")
    else {
        return;
    };
    let arm64 = arch("arm64");
    let mut without_f = QemuPackage::default().registration(arm64).unwrap().unwrap();
    without_f.flags = without_f.flags.replace('F', "");
    b.register(&without_f).unwrap();
    let before = b.snapshot().unwrap();
    // Without F the kernel looks the interpreter up at each exec; here, on
    // the host's file system, it is found.
    assert!(matches!(
        support(arm64, host(), Some(&b)).unwrap(),
        Support::HostOnly(_)
    ));
    let e = check_platform("linux", "arm64", None, host(), Some(&b))
        .unwrap_err()
        .to_string();
    assert!(e.contains("lacks the F (fix-binary) flag"), "{e}");

    let done = install(&b, host(), &[arm64], &QemuPackage::default()).unwrap();
    assert!(matches!(&done[0].1, Installed::Replaced { old, new } if !old.fixes_binary() && new.fixes_binary()));
    assert!(check_platform("linux", "arm64", None, host(), Some(&b)).is_ok());

    b.restore(&before).unwrap();
    assert_eq!(b.snapshot().unwrap(), before);
}

#[test]
fn install_of_an_architecture_qemu_lacks_changes_nothing() {
    let Some((b, _dir)) = private_instance("binfmt::tests::install_of_an_architecture_qemu_lacks_changes_nothing")
    else {
        return;
    };
    let empty_pkg = tempfile::tempdir().unwrap();
    let qemu = QemuPackage {
        binfmt_d: empty_pkg.path().join("binfmt.d"),
        binfmts: empty_pkg.path().join("binfmts"),
    };
    let e = install(&b, host(), &[arch("arm64"), arch("s390x")], &qemu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("apt-get install qemu-user-static"), "{e}");
    assert!(b.handlers().unwrap().is_empty());
}

#[test]
fn the_32_bit_mode_of_the_host_counts_as_native() {
    let Some((b, _dir)) = private_instance("binfmt::tests::the_32_bit_mode_of_the_host_counts_as_native") else {
        return;
    };
    // No handler at all in here: whatever runs, the kernel runs itself.
    for a in ARCHES.iter().filter(|a| a.is_compat_on(host())) {
        assert_eq!(support(a, host(), Some(&b)).unwrap(), Support::Compat, "{}", a.name);
        assert_eq!(
            check_platform("linux", a.name, None, host(), Some(&b)).unwrap(),
            Support::Compat
        );
    }
}
