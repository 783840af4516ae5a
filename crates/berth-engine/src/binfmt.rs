//! Other CPU architectures: what `berth system binfmt` reports and
//! `--install`/`--uninstall` do, and the check before a container of a
//! foreign image starts. A thin layer over `berth_runtime::binfmt` that adds
//! berth's policy: the host's binfmt_misc is the one at
//! /proc/sys/fs/binfmt_misc (mounted there by `--install` when missing,
//! as systemd would), `--install` alone means every architecture qemu
//! offers, and a rootless user is told the exact commands root must run.
//! Reading never mounts or registers anything.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_runtime::binfmt::{self, Arch, BinfmtMisc, Installed, QemuPackage, Support};

/// One architecture as `berth system binfmt` shows it.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchStatus {
    /// The OCI architecture (`arm64`).
    pub arch: String,
    /// native, emulated (a handler with F), host-only (a handler without
    /// F: not in containers), disabled, none.
    pub status: String,
    /// The handler's name, if one serves it.
    pub handler: Option<String>,
    /// The handler's interpreter.
    pub interpreter: Option<String>,
    /// The handler's flag letters (`POF`).
    pub flags: Option<String>,
}

/// The host's binfmt state.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BinfmtReport {
    /// The host's platform (`linux/amd64`).
    pub host: String,
    /// Where binfmt_misc is mounted; `None`: not mounted, so no handlers.
    pub mounted_at: Option<PathBuf>,
    /// Whether binfmt_misc as a whole is switched on.
    pub enabled: bool,
    /// Every known architecture, the host's first.
    pub arches: Vec<ArchStatus>,
}

fn host_arch() -> Result<&'static Arch> {
    let name = berth_store::ImageConfig::host_architecture();
    Arch::find(name).with_context(|| format!("berth knows no binfmt facts for this host's architecture {name}"))
}

/// `berth system binfmt`: per architecture, whether it runs here.
pub fn binfmt_status() -> Result<BinfmtReport> {
    let host = host_arch()?;
    let b = BinfmtMisc::find();
    let arches = binfmt::survey(host, b.as_ref())?
        .into_iter()
        .map(|(arch, s)| {
            let h = s.handler();
            ArchStatus {
                arch: arch.name.to_string(),
                status: s.word().to_string(),
                handler: h.map(|h| h.name.clone()),
                interpreter: h.map(|h| h.interpreter.display().to_string()),
                flags: h.map(|h| h.flags.clone()),
            }
        })
        .collect();
    Ok(BinfmtReport {
        host: format!("linux/{}", host.name),
        enabled: match &b {
            Some(b) => b.enabled()?,
            None => false,
        },
        mounted_at: b.map(|b| b.dir().to_path_buf()),
        arches,
    })
}

/// What `--install` did for one architecture.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstallLine {
    /// The OCI architecture.
    pub arch: String,
    /// native, present, registered, replaced.
    pub action: String,
    /// The handler now serving it, if any.
    pub handler: Option<String>,
    /// Its interpreter.
    pub interpreter: Option<String>,
}

/// The architectures `names` stands for: all foreign ones qemu offers when empty.
fn pick(names: &[String], qemu: &QemuPackage) -> Result<Vec<&'static Arch>> {
    let host = host_arch()?;
    if names.is_empty() {
        let mut all = Vec::new();
        for a in binfmt::ARCHES.iter().filter(|a| *a != host && !a.is_compat_on(host)) {
            if qemu.registration(a)?.is_some() {
                all.push(a);
            }
        }
        if all.is_empty() {
            bail!("qemu-user-static is not installed: apt-get install qemu-user-static");
        }
        return Ok(all);
    }
    names
        .iter()
        .map(|n| {
            let n = n.trim_start_matches("linux/");
            let n = n.split('/').next().unwrap_or(n);
            Arch::find(n).with_context(|| {
                let known: Vec<&str> = binfmt::ARCHES.iter().map(|a| a.name).collect();
                format!("unknown architecture {n:?}: berth knows {}", known.join(", "))
            })
        })
        .collect()
}

/// `berth system binfmt --install [ARCH…]`: registers Debian's qemu-user-static
/// handlers with the fix-binary flag, mounting binfmt_misc first if needed.
/// Root only; a rootless user gets the commands to give root.
pub fn binfmt_install(names: &[String]) -> Result<Vec<InstallLine>> {
    let qemu = QemuPackage::default();
    let arches = pick(names, &qemu)?;
    if crate::is_rootless() {
        bail!("{}", needs_root(&arches, &qemu));
    }
    let b = match BinfmtMisc::find() {
        Some(b) => b,
        None => BinfmtMisc::mount(binfmt::HOST_BINFMT_DIR)
            .with_context(|| format!("mounting binfmt_misc on {}", binfmt::HOST_BINFMT_DIR))?,
    };
    let done = binfmt::install(&b, host_arch()?, &arches, &qemu)?;
    Ok(done
        .into_iter()
        .map(|(arch, outcome)| {
            let (action, h) = match outcome {
                Installed::Native => ("native", None),
                Installed::Present(h) => ("present", Some(h)),
                Installed::Registered(h) => ("registered", Some(h)),
                Installed::Replaced { new, .. } => ("replaced", Some(new)),
            };
            InstallLine {
                arch: arch.name.to_string(),
                action: action.to_string(),
                handler: h.as_ref().map(|h| h.name.clone()),
                interpreter: h.map(|h| h.interpreter.display().to_string()),
            }
        })
        .collect())
}

/// The refusal a rootless `--install` gets: the command for root, and the
/// same without berth.
fn needs_root(arches: &[&'static Arch], qemu: &QemuPackage) -> String {
    let names: Vec<&str> = arches.iter().map(|a| a.name).collect();
    let mut msg = format!(
        "registering binfmt handlers changes the kernel for every user of this machine and needs root; as root run:\n  \
         berth system binfmt --install {}\nor, without berth:\n  \
         mountpoint -q {dir} || mount -t binfmt_misc binfmt_misc {dir}",
        names.join(" "),
        dir = binfmt::HOST_BINFMT_DIR
    );
    for a in arches {
        if let Ok(Some(h)) = qemu.registration(a) {
            msg.push_str(&format!(
                "\n  echo '{}' > {}/register",
                h.registration(),
                binfmt::HOST_BINFMT_DIR
            ));
        }
    }
    msg
}

/// `berth system binfmt --uninstall ARCH…`: removes every handler serving
/// those architectures. Root only.
pub fn binfmt_uninstall(names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        bail!("name the architectures whose handlers to remove, e.g. --uninstall arm64");
    }
    let arches = pick(names, &QemuPackage::default())?;
    let Some(b) = BinfmtMisc::find() else {
        return Ok(Vec::new());
    };
    if crate::is_rootless() {
        bail!(
            "removing binfmt handlers needs root: as root run berth system binfmt --uninstall {}",
            names.join(" ")
        );
    }
    let mut removed = Vec::new();
    for h in b.handlers()? {
        let serves = arches
            .iter()
            .any(|a| h.matches_header(&a.elf_header(false)) || h.matches_header(&a.elf_header(true)));
        if serves {
            b.unregister(&h.name)?;
            removed.push(h.name);
        }
    }
    Ok(removed)
}

/// The check before a container of an image of `os/architecture[/variant]`
/// starts: how this host will run it, or the typed error (exit 125) that
/// says which `berth system binfmt --install` is missing.
pub fn check_image_platform(
    os: &str,
    architecture: &str,
    variant: Option<&str>,
) -> Result<Support, berth_runtime::RuntimeError> {
    binfmt::check_on_this_host(os, architecture, variant)
}

/// Docker's warning for an image of another platform run without
/// `--platform`.
pub fn platform_warning(cfg: &berth_store::ImageConfig) -> Option<String> {
    if cfg.architecture.is_empty() {
        return None;
    }
    let os = if cfg.os.is_empty() { "linux" } else { &cfg.os };
    let have = berth_store::Platform::normalised(os, &cfg.architecture, cfg.variant.as_deref());
    let host = berth_store::Platform::host();
    (!have.same_os_arch(&host)).then(|| {
        format!(
            "The requested image's platform ({have}) does not match the detected host platform ({host}) and no specific platform was requested"
        )
    })
}

/// `run --platform P` of a name the store has only for other platforms,
/// when pulling P failed: Docker's refusal, which says what is here.
pub fn other_platform_only(
    store: &berth_store::Store,
    word: &str,
    platform: Option<&str>,
) -> Option<crate::EngineError> {
    let want = berth_store::Platform::parse(platform.filter(|p| !p.is_empty())?).ok()?;
    let img = store.resolve_image(word).ok()?;
    let have = store.image_platform(&img.id).ok()?;
    (!have.same_os_arch(&want)).then(|| {
        crate::EngineError::conflict(format!(
            "image with reference {word} was found but does not match the specified platform: wanted {want}, actual: {have}"
        ))
    })
}
