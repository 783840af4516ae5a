//! binfmt: can this kernel execute a given CPU architecture's programs —
//! natively, in its 32-bit compatibility mode (386 on amd64), or through a
//! binfmt_misc handler such as Debian's qemu-user-static — and registering
//! those handlers so that containers can use them.
//!
//! * [`BinfmtMisc`]: one binfmt_misc instance (the host's, usually at
//!   `/proc/sys/fs/binfmt_misc`, or a private one a user namespace mounted,
//!   Linux 6.7+): read its handlers, register, unregister, snapshot, restore.
//! * [`QemuPackage`]: the registrations qemu-user-static ships, so the magic
//!   and mask berth registers are the package's own.
//! * [`support`] and [`survey`]: per architecture, what runs it here.
//! * [`check_platform`]: the check before a container of an image starts.
//! * [`install`]: registers qemu's handlers with the fix-binary flag `F`.
//!
//! Nothing here writes to a binfmt_misc instance unless asked to by one of
//! the functions that say so; reading never mounts anything. The magic and
//! masks registered always come from the qemu package's files; the ELF facts
//! in [`arch`] only recognise which architecture an existing handler serves.

pub mod arch;
pub mod handler;

use std::path::{Path, PathBuf};

pub use arch::{Arch, ARCHES};
pub use handler::{Handler, Rule};

use crate::error::{IoContext, Result, RuntimeError};

/// Where the host's binfmt_misc is mounted (systemd's place, and the one
/// berth mounts it on).
pub const HOST_BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// One mounted binfmt_misc instance (or a directory laid out like one).
#[derive(Clone, Debug)]
pub struct BinfmtMisc {
    dir: PathBuf,
}

/// The state of an instance: whether it is enabled and its handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The instance-wide switch (`status`).
    pub enabled: bool,
    /// Every handler, sorted by name.
    pub handlers: Vec<Handler>,
}

impl BinfmtMisc {
    /// The instance whose files are in `dir` (a mount point, or a test's
    /// directory of files in the same format).
    pub fn at(dir: impl Into<PathBuf>) -> BinfmtMisc {
        BinfmtMisc { dir: dir.into() }
    }

    /// The instance this process sees, where it is mounted: the usual place
    /// first, else any other mount of type binfmt_misc. `None` when none is
    /// mounted, which (for the host's instance) means no handler exists:
    /// the kernel drops every handler when its file system is unmounted.
    pub fn find() -> Option<BinfmtMisc> {
        let host = Path::new(HOST_BINFMT_DIR);
        if host.join("register").exists() {
            return Some(BinfmtMisc::at(host));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        mountinfo.lines().find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if right.split(' ').next()? != "binfmt_misc" {
                return None;
            }
            let target = left.split(' ').nth(4)?;
            Some(BinfmtMisc::at(unescape_mountinfo(target)))
        })
    }

    /// Mounts a binfmt_misc instance on `dir` (root, or the owner of a user
    /// namespace on Linux 6.7+, where the instance is that namespace's own).
    pub fn mount(dir: impl Into<PathBuf>) -> Result<BinfmtMisc> {
        use rustix::mount::{mount, MountFlags};
        let dir = dir.into();
        mount(
            "binfmt_misc",
            &dir,
            "binfmt_misc",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            c"",
        )
        .map_err(|e| RuntimeError::Mount {
            target: dir.clone(),
            reason: format!("binfmt_misc: {e}"),
        })?;
        Ok(BinfmtMisc { dir })
    }

    /// The directory of this instance.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the instance as a whole is on (`status` says `enabled`).
    pub fn enabled(&self) -> Result<bool> {
        let path = self.dir.join("status");
        let s = std::fs::read_to_string(&path).ctx(|| format!("reading {}", path.display()))?;
        Ok(s.trim() == "enabled")
    }

    /// Every handler registered in this instance, sorted by name.
    pub fn handlers(&self) -> Result<Vec<Handler>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir).ctx(|| format!("listing {}", self.dir.display()))?;
        for entry in entries {
            let entry = entry.ctx(|| format!("listing {}", self.dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "register" || name == "status" {
                continue;
            }
            match std::fs::read_to_string(entry.path()) {
                Ok(text) => out.push(Handler::from_kernel(&name, &text)?),
                // Unregistered by someone else while we listed.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RuntimeError::io(format!("reading {}", entry.path().display()), e)),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The handler called `name`, if there is one.
    pub fn handler(&self, name: &str) -> Result<Option<Handler>> {
        let path = self.dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Handler::from_kernel(name, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RuntimeError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Registers `handler` (and disables it if it says so). With `F` the
    /// kernel opens the interpreter now, in this process's mount namespace.
    pub fn register(&self, handler: &Handler) -> Result<()> {
        let path = self.dir.join("register");
        let line = handler.registration();
        std::fs::write(&path, &line).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::EEXIST) => "a handler of that name exists".to_string(),
                Some(libc::ENOENT) => format!("the interpreter {} does not exist", handler.interpreter.display()),
                _ => e.to_string(),
            };
            RuntimeError::Unsupported(format!(
                "registering binfmt handler {} in {}: {why}",
                handler.name,
                self.dir.display()
            ))
        })?;
        if !handler.enabled {
            self.write_to(&handler.name, "0")?;
        }
        Ok(())
    }

    /// Removes the handler called `name` (no error if it is gone already).
    pub fn unregister(&self, name: &str) -> Result<()> {
        match self.write_to(name, "-1") {
            Err(RuntimeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn write_to(&self, file: &str, what: &str) -> Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, what).ctx(|| format!("writing {what} to {}", path.display()))
    }

    /// The instance's state, to [`restore`](Self::restore) later.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot {
            enabled: self.enabled()?,
            handlers: self.handlers()?,
        })
    }

    /// Brings the instance back to `snap`: removes handlers it did not
    /// have, registers again those it had (an `F` interpreter is opened
    /// again by path), and restores each one's and the instance's switch.
    pub fn restore(&self, snap: &Snapshot) -> Result<()> {
        let now = self.handlers()?;
        for h in &now {
            let before = snap.handlers.iter().find(|b| b.name == h.name);
            if before.map(Handler::canonical) != Some(h.canonical()) {
                self.unregister(&h.name)?;
            }
        }
        let now = self.handlers()?;
        for h in &snap.handlers {
            if !now.iter().any(|n| n.name == h.name) {
                self.register(h)?;
            }
        }
        if self.enabled()? != snap.enabled {
            self.write_to("status", if snap.enabled { "1" } else { "0" })?;
        }
        Ok(())
    }
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = (b[i] == b'\\')
            .then(|| s.get(i + 1..i + 4))
            .flatten()
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match oct {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The handler registrations the qemu-user-static package installs:
/// systemd's binfmt.d lines (`/usr/lib/binfmt.d/qemu-ARCH.conf`), else
/// update-binfmts' format (`/usr/share/binfmts/qemu-ARCH`). Without systemd
/// or binfmt-support nothing registers them; [`install`] does.
#[derive(Clone, Debug)]
pub struct QemuPackage {
    /// Where the binfmt.d files are.
    pub binfmt_d: PathBuf,
    /// Where the update-binfmts files are.
    pub binfmts: PathBuf,
}

impl Default for QemuPackage {
    fn default() -> Self {
        QemuPackage {
            binfmt_d: PathBuf::from("/usr/lib/binfmt.d"),
            binfmts: PathBuf::from("/usr/share/binfmts"),
        }
    }
}

impl QemuPackage {
    /// The registration for `arch`, with `F` added if the package lacks it
    /// (containers need it); `None` if the package has none for it.
    pub fn registration(&self, arch: &Arch) -> Result<Option<Handler>> {
        let conf = self.binfmt_d.join(format!("qemu-{}.conf", arch.qemu));
        let mut handler = match std::fs::read_to_string(&conf) {
            Ok(text) => {
                let line = text
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
                    .ok_or_else(|| RuntimeError::InvalidConfig(format!("{} registers nothing", conf.display())))?;
                Handler::from_registration(line)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let path = self.binfmts.join(format!("qemu-{}", arch.qemu));
                match std::fs::read_to_string(&path) {
                    Ok(text) => from_update_binfmts(&format!("qemu-{}", arch.qemu), &text, &path)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(RuntimeError::io(format!("reading {}", path.display()), e)),
                }
            }
            Err(e) => return Err(RuntimeError::io(format!("reading {}", conf.display()), e)),
        };
        if !handler.fixes_binary() {
            handler.flags.push('F');
        }
        Ok(Some(handler))
    }
}

/// update-binfmts' `key value` lines (`interpreter`, `magic`, `mask`,
/// `offset`, `credentials`, `fix_binary`, `preserve`).
fn from_update_binfmts(name: &str, text: &str, path: &Path) -> Result<Handler> {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
            .map(str::trim)
    };
    let yes = |key: &str| get(key) == Some("yes");
    let mut flags = String::new();
    for (key, flag) in [("preserve", 'P'), ("credentials", 'C'), ("fix_binary", 'F')] {
        if yes(key) {
            flags.push(flag);
        }
    }
    let line = format!(
        ":{name}:M:{}:{}:{}:{}:{flags}",
        get("offset").unwrap_or("0"),
        get("magic").unwrap_or(""),
        get("mask").unwrap_or(""),
        get("interpreter").unwrap_or(""),
    );
    Handler::from_registration(&line).map_err(|e| RuntimeError::InvalidConfig(format!("{}: {e}", path.display())))
}

/// How this machine runs one architecture's programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Support {
    /// It is the host's own.
    Native,
    /// The kernel runs it in its 32-bit compatibility mode (386 on amd64).
    Compat,
    /// An enabled handler with `F` runs it, in containers too.
    Emulated(Handler),
    /// An enabled handler runs it, but without `F` its interpreter is
    /// looked up inside each container, where it is missing.
    HostOnly(Handler),
    /// A handler for it exists but is switched off (or binfmt_misc is).
    Disabled(Handler),
    /// Nothing runs it.
    None,
}

impl Support {
    /// A container of this architecture can start here.
    pub fn runs_containers(&self) -> bool {
        matches!(self, Support::Native | Support::Compat | Support::Emulated(_))
    }

    /// One word for tables: native, emulated, host-only, disabled, none.
    pub fn word(&self) -> &'static str {
        match self {
            Support::Native | Support::Compat => "native",
            Support::Emulated(_) => "emulated",
            Support::HostOnly(_) => "host-only",
            Support::Disabled(_) => "disabled",
            Support::None => "none",
        }
    }

    /// The handler behind it, if any.
    pub fn handler(&self) -> Option<&Handler> {
        match self {
            Support::Emulated(h) | Support::HostOnly(h) | Support::Disabled(h) => Some(h),
            _ => None,
        }
    }
}

/// How `arch` runs on a `host` whose binfmt_misc instance is `binfmt`
/// (`None`: not mounted, so no handlers). The best handler wins: an enabled
/// one with `F` over one without, over a disabled one.
pub fn support(arch: &Arch, host: &Arch, binfmt: Option<&BinfmtMisc>) -> Result<Support> {
    if arch == host {
        return Ok(Support::Native);
    }
    let (handlers, all_on) = match binfmt {
        Some(b) => (b.handlers()?, b.enabled()?),
        None => (Vec::new(), false),
    };
    Ok(support_among(arch, host, &handlers, all_on))
}

fn support_among(arch: &Arch, host: &Arch, handlers: &[Handler], all_on: bool) -> Support {
    let serving: Vec<&Handler> = handlers
        .iter()
        .filter(|h| h.matches_header(&arch.elf_header(false)) || h.matches_header(&arch.elf_header(true)))
        .collect();
    let on = |h: &&Handler| all_on && h.enabled;
    if let Some(h) = serving.iter().find(|h| on(h) && h.fixes_binary()) {
        return Support::Emulated((*h).clone());
    }
    if arch.is_compat_on(host) && arch::kernel_runs(arch) {
        return Support::Compat;
    }
    if let Some(h) = serving.iter().find(|h| on(h)) {
        return Support::HostOnly((*h).clone());
    }
    match serving.first() {
        Some(h) => Support::Disabled((*h).clone()),
        None => Support::None,
    }
}

/// Every known architecture and how it runs on `host` (the host first).
pub fn survey(host: &Arch, binfmt: Option<&BinfmtMisc>) -> Result<Vec<(&'static Arch, Support)>> {
    let (handlers, all_on) = match binfmt {
        Some(b) => (b.handlers()?, b.enabled()?),
        None => (Vec::new(), false),
    };
    let mut out: Vec<(&'static Arch, Support)> = ARCHES
        .iter()
        .map(|a| {
            let s = if a == host {
                Support::Native
            } else {
                support_among(a, host, &handlers, all_on)
            };
            (a, s)
        })
        .collect();
    out.sort_by_key(|(a, _)| a != &host);
    Ok(out)
}

/// `os/arch[/variant]`, arm64's implied `v8` left out.
fn platform_text(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant.filter(|v| !(v.is_empty() || arch == "arm64" && *v == "v8")) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    }
}

/// The check before a container of an image of platform
/// `os/architecture[/variant]` starts on a linux `host`: how it will run,
/// or [`RuntimeError::ForeignPlatform`] saying what to do, so that the user
/// never meets an `exec format error` from inside the runtime.
pub fn check_platform(
    os: &str,
    architecture: &str,
    variant: Option<&str>,
    host: &Arch,
    binfmt: Option<&BinfmtMisc>,
) -> Result<Support> {
    let image = platform_text(os, architecture, variant);
    let host_text = format!("linux/{}", host.name);
    let refuse = |gap: String| RuntimeError::ForeignPlatform {
        image: image.clone(),
        host: host_text.clone(),
        gap,
    };
    if !os.eq_ignore_ascii_case("linux") {
        return Err(refuse("runs linux images only".into()));
    }
    let Some(arch) = Arch::find(architecture) else {
        return Err(refuse(
            "has no binfmt handler for it (berth knows no emulator for this architecture)".into(),
        ));
    };
    let install = format!("run berth system binfmt --install {}", arch.name);
    match support(arch, host, binfmt)? {
        s if s.runs_containers() => Ok(s),
        Support::HostOnly(h) => Err(refuse(format!(
            "its binfmt handler {} lacks the F (fix-binary) flag, so containers cannot use it: {install}",
            h.name
        ))),
        Support::Disabled(h) => Err(refuse(format!("its binfmt handler {} is disabled: {install}", h.name))),
        _ => Err(refuse(format!("has no binfmt handler for it: {install}"))),
    }
}

/// [`check_platform`] on this host and the binfmt_misc it sees; reads
/// nothing for an image of the host's own architecture. A config that
/// names no architecture (or no OS) claims nothing and is let through as
/// native: the runtime will say if its programs cannot run.
pub fn check_on_this_host(os: &str, architecture: &str, variant: Option<&str>) -> Result<Support> {
    let host = Arch::this_host().ok_or_else(|| {
        RuntimeError::Unsupported(format!("berth knows no binfmt facts for {}", std::env::consts::ARCH))
    })?;
    if os.is_empty() || architecture.is_empty() {
        return Ok(Support::Native);
    }
    if os.eq_ignore_ascii_case("linux") && Arch::find(architecture) == Some(host) {
        return Ok(Support::Native);
    }
    check_platform(os, architecture, variant, host, BinfmtMisc::find().as_ref())
}

/// What [`install`] did for one architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Installed {
    /// The host runs it without a handler.
    Native,
    /// A handler with `F` was there already.
    Present(Handler),
    /// Registered.
    Registered(Handler),
    /// Registered in place of a handler without `F`, or a disabled one.
    Replaced { old: Handler, new: Handler },
}

/// Registers qemu's handler (with `F`) for each of `arches` in `binfmt`,
/// replacing a handler of the same name that lacks `F` or is disabled and
/// leaving good ones alone. All or nothing: on a failure the instance is
/// restored to its state before the call.
pub fn install(
    binfmt: &BinfmtMisc,
    host: &Arch,
    arches: &[&'static Arch],
    qemu: &QemuPackage,
) -> Result<Vec<(&'static Arch, Installed)>> {
    // Everything the package must provide, before anything changes.
    let mut plan = Vec::new();
    for arch in arches {
        let s = support(arch, host, Some(binfmt))?;
        let new = match s {
            Support::Native | Support::Compat | Support::Emulated(_) => None,
            _ => Some(qemu.registration(arch)?.ok_or_else(|| {
                RuntimeError::Unsupported(format!(
                    "no qemu emulator for {}: {} has no qemu-{}.conf (apt-get install qemu-user-static)",
                    arch.name,
                    qemu.binfmt_d.display(),
                    arch.qemu
                ))
            })?),
        };
        if let Some(h) = &new {
            if !h.interpreter.exists() {
                return Err(RuntimeError::Unsupported(format!(
                    "the qemu interpreter {} for {} is missing (apt-get install --reinstall qemu-user-static)",
                    h.interpreter.display(),
                    arch.name
                )));
            }
        }
        plan.push((*arch, s, new));
    }
    let before = binfmt.snapshot()?;
    let result = (|| {
        if !binfmt.enabled()? {
            binfmt.write_to("status", "1")?;
        }
        let mut done = Vec::new();
        for (arch, s, new) in plan {
            let outcome = match (s, new) {
                (Support::Native | Support::Compat, _) => Installed::Native,
                (Support::Emulated(h), _) => Installed::Present(h),
                (_, None) => unreachable!("planned above"),
                (_, Some(new)) => match binfmt.handler(&new.name)? {
                    Some(old) => {
                        binfmt.unregister(&old.name)?;
                        binfmt.register(&new)?;
                        Installed::Replaced { old, new }
                    }
                    None => {
                        binfmt.register(&new)?;
                        Installed::Registered(new)
                    }
                },
            };
            done.push((arch, outcome));
        }
        Ok(done)
    })();
    if result.is_err() {
        let _ = binfmt.restore(&before);
    }
    result
}

#[cfg(test)]
mod tests;
