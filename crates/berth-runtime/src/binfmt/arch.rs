//! The CPU architectures berth knows by their ELF facts (class, byte order,
//! machine number), so that a binfmt_misc handler registered by anyone,
//! under any name, can be recognised as serving one of them; and tiny
//! programs that only exit, to ask the kernel whether it runs an
//! architecture natively (386 on amd64).
//!
//! These are facts of the ELF format, not qemu's registrations: the magic
//! and mask berth registers come from the qemu package (see `QemuPackage`).

/// One CPU architecture as OCI names it, with what binfmt needs to know.
#[derive(Debug, PartialEq, Eq)]
pub struct Arch {
    /// The OCI `architecture`: `amd64`, `386`, `arm64`, `arm`, …
    pub name: &'static str,
    /// qemu's name for it: the emulator is `qemu-<qemu>-static`, Debian's
    /// handler `qemu-<qemu>`.
    pub qemu: &'static str,
    /// The kernel's spelling (`uname -m` of a 64-bit host, `x86_64`,
    /// `aarch64`), which image configs sometimes carry.
    pub kernel: &'static str,
    elf64: bool,
    big_endian: bool,
    machine: u16,
    /// The host architecture whose kernel can run this one in its 32-bit
    /// compatibility mode, when it was built so.
    compat_on: Option<&'static str>,
}

/// ELF `e_machine` numbers (from the ELF specification and its processor supplements).
const EM_386: u16 = 3;
const EM_MIPS: u16 = 8;
const EM_PPC64: u16 = 21;
const EM_S390: u16 = 22;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;
const EM_LOONGARCH: u16 = 258;

/// Every architecture berth can tell apart, the host's among them.
pub const ARCHES: &[Arch] = &[
    Arch::new("amd64", "x86_64", "x86_64", true, false, EM_X86_64, None),
    Arch::new("386", "i386", "i686", false, false, EM_386, Some("amd64")),
    Arch::new("arm64", "aarch64", "aarch64", true, false, EM_AARCH64, None),
    Arch::new("arm", "arm", "armv7l", false, false, EM_ARM, Some("arm64")),
    Arch::new("ppc64le", "ppc64le", "ppc64le", true, false, EM_PPC64, None),
    Arch::new("s390x", "s390x", "s390x", true, true, EM_S390, None),
    Arch::new("riscv64", "riscv64", "riscv64", true, false, EM_RISCV, None),
    Arch::new("mips64le", "mips64el", "mips64", true, false, EM_MIPS, None),
    Arch::new("loong64", "loongarch64", "loongarch64", true, false, EM_LOONGARCH, None),
];

impl Arch {
    const fn new(
        name: &'static str,
        qemu: &'static str,
        kernel: &'static str,
        elf64: bool,
        big_endian: bool,
        machine: u16,
        compat_on: Option<&'static str>,
    ) -> Arch {
        Arch {
            name,
            qemu,
            kernel,
            elf64,
            big_endian,
            machine,
            compat_on,
        }
    }

    /// The architecture called `name`: its OCI name, qemu's or the kernel's.
    pub fn find(name: &str) -> Option<&'static Arch> {
        let name = name.to_ascii_lowercase();
        ARCHES
            .iter()
            .find(|a| a.name == name || a.qemu == name || a.kernel == name)
    }

    /// The architecture this program was built for.
    pub fn this_host() -> Option<&'static Arch> {
        Arch::find(match std::env::consts::ARCH {
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "mips64" => "mips64le",
            "loongarch64" => "loong64",
            other => other,
        })
    }

    /// Whether a kernel of `host`'s architecture may run this one in its
    /// 32-bit compatibility mode (whether it does is for the kernel to say).
    pub fn is_compat_on(&self, host: &Arch) -> bool {
        self.compat_on == Some(host.name)
    }

    /// The first 20 bytes of an executable of this architecture
    /// (`e_ident`, `e_type`, `e_machine`), as binfmt_misc sees them.
    /// `position_independent` picks `ET_DYN` over `ET_EXEC`.
    pub fn elf_header(&self, position_independent: bool) -> [u8; 20] {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = if self.elf64 { 2 } else { 1 };
        h[5] = if self.big_endian { 2 } else { 1 };
        h[6] = 1; // EV_CURRENT
        let e_type: u16 = if position_independent { 3 } else { 2 };
        h[16..18].copy_from_slice(&self.u16_bytes(e_type));
        h[18..20].copy_from_slice(&self.u16_bytes(self.machine));
        h
    }

    fn u16_bytes(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A complete static executable of this architecture that only calls
    /// `exit(0)`, for the architectures a host may run natively (and arm64,
    /// for tests of emulation); `None` for the others.
    pub fn exit_program(&self) -> Option<Vec<u8>> {
        // Each: set the exit code register to 0, the syscall number of
        // exit, trap into the kernel.
        let (code, base): (&[u8], u64) = match self.name {
            // xor edi,edi; mov eax,60; syscall
            "amd64" => (&[0x31, 0xff, 0xb8, 60, 0, 0, 0, 0x0f, 0x05], 0x40_0000),
            // xor ebx,ebx; mov eax,1; int 0x80
            "386" => (&[0x31, 0xdb, 0xb8, 1, 0, 0, 0, 0xcd, 0x80], 0x0804_8000),
            // mov x0,#0; mov x8,#93; svc #0
            "arm64" => (
                &[0x00, 0x00, 0x80, 0xd2, 0xa8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4],
                0x40_0000,
            ),
            // mov r0,#0; mov r7,#1; svc #0
            "arm" => (
                &[0x00, 0x00, 0xa0, 0xe3, 0x01, 0x70, 0xa0, 0xe3, 0x00, 0x00, 0x00, 0xef],
                0x1_0000,
            ),
            _ => return None,
        };
        // EABI version 5 for arm; no flags elsewhere.
        let flags: u32 = if self.name == "arm" { 0x0500_0000 } else { 0 };
        Some(self.static_executable(code, base, flags))
    }

    /// An ELF executable with one loadable segment: headers, then `code`,
    /// all mapped at `base` and entered right after the headers.
    fn static_executable(&self, code: &[u8], base: u64, flags: u32) -> Vec<u8> {
        let (ehsize, phsize): (u16, u16) = if self.elf64 { (64, 56) } else { (52, 32) };
        let headers = u64::from(ehsize + phsize);
        let total = headers + code.len() as u64;
        let mut out = self.elf_header(false).to_vec();
        let word = |out: &mut Vec<u8>, v: u64| {
            if self.elf64 {
                out.extend_from_slice(&v.to_le_bytes());
            } else {
                out.extend_from_slice(&(v as u32).to_le_bytes());
            }
        };
        // Every multi-byte field below is little-endian: only the
        // little-endian architectures have an exit program.
        out.extend_from_slice(&1u32.to_le_bytes()); // e_version
        word(&mut out, base + headers); // e_entry
        word(&mut out, u64::from(ehsize)); // e_phoff
        word(&mut out, 0); // e_shoff
        out.extend_from_slice(&flags.to_le_bytes()); // e_flags
        for v in [ehsize, phsize, 1, 0, 0, 0] {
            // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
            out.extend_from_slice(&v.to_le_bytes());
        }
        // The program header: PT_LOAD, readable and executable.
        out.extend_from_slice(&1u32.to_le_bytes());
        if self.elf64 {
            out.extend_from_slice(&5u32.to_le_bytes()); // p_flags
            for v in [0, base, base, total, total, 0x1000] {
                out.extend_from_slice(&v.to_le_bytes()); // offset, vaddr, paddr, filesz, memsz, align
            }
        } else {
            for v in [0, base, base, total, total] {
                out.extend_from_slice(&(v as u32).to_le_bytes());
            }
            out.extend_from_slice(&5u32.to_le_bytes()); // p_flags
            out.extend_from_slice(&0x1000u32.to_le_bytes()); // p_align
        }
        out.extend_from_slice(code);
        out
    }
}

/// Whether this kernel runs `arch`'s programs itself: executes its exit
/// program from a memory file. A program that cannot be made or run for
/// another reason than `ENOEXEC` counts as runnable (the kernel did not
/// refuse the format).
pub(crate) fn kernel_runs(arch: &Arch) -> bool {
    let Some(program) = arch.exit_program() else {
        return false;
    };
    match run_from_memory(&program) {
        Ok(status) => status.success(),
        Err(e) => e.raw_os_error() != Some(libc::ENOEXEC),
    }
}

fn run_from_memory(program: &[u8]) -> std::io::Result<std::process::ExitStatus> {
    use rustix::fs::{memfd_create, MemfdFlags};
    use std::io::Write;
    use std::os::fd::AsRawFd;
    // MFD_EXEC (Linux 6.3+) keeps it executable where vm.memfd_noexec
    // would otherwise seal it; older kernels refuse the flag.
    let fd = memfd_create("berth-arch-probe", MemfdFlags::CLOEXEC | MemfdFlags::EXEC)
        .or_else(|_| memfd_create("berth-arch-probe", MemfdFlags::CLOEXEC))?;
    let mut writer = std::fs::File::from(fd);
    writer.write_all(program)?;
    // A file open for writing cannot be executed (ETXTBSY): keep a
    // read-only descriptor of it and close the writer.
    let reader = std::fs::File::open(format!("/proc/self/fd/{}", writer.as_raw_fd()))?;
    drop(writer);
    // The child opens it through this process's descriptor table: the path
    // is resolved before exec closes the child's copy (close-on-exec).
    let path = format!("/proc/{}/fd/{}", std::process::id(), reader.as_raw_fd());
    let mut tries = 0;
    loop {
        let status = std::process::Command::new(&path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            // Another thread's fork may still hold the writer for a moment.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}
