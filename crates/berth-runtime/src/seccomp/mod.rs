//! berth's default seccomp profile: an allowlist (everything else fails with
//! EPERM) read from `default.policy`, berth's own data file, plus the few
//! rules that need argument filters. The effect matches Docker's default
//! profile: namespaces, mounts, kernel keyring, module loading, reboot,
//! kexec, BPF and friends are denied unless the matching capability is
//! granted.
//!
//! This module only produces data; it must never install a filter itself
//! (the OCI runtime does that inside the container).

pub mod precompiled;

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const POLICY: &str = include_str!("default.policy");

/// Clone flags that create namespaces (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET).
const CLONE_NS_FLAGS: u64 = 0x7E02_0000;
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// One section of the policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    Always,
    Cap(String),
    KernelAtLeast(u32, u32),
}

/// Parses `default.policy` into (condition, syscall names) groups.
pub(crate) fn parse_policy(text: &str) -> Result<Vec<(Condition, Vec<String>)>> {
    let mut groups: Vec<(Condition, Vec<String>)> = Vec::new();
    for (no, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let mut words = header.split_whitespace();
            let bad =
                || RuntimeError::InvalidConfig(format!("seccomp policy line {}: unknown section [{header}]", no + 1));
            if words.next() != Some("allow") {
                return Err(bad());
            }
            let cond = match words.next() {
                None => Condition::Always,
                Some(w) => {
                    if let Some(cap) = w.strip_prefix("cap=") {
                        Condition::Cap(cap.to_string())
                    } else if let Some(v) = w.strip_prefix("kernel>=") {
                        let (a, b) = v.split_once('.').ok_or_else(bad)?;
                        Condition::KernelAtLeast(a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)
                    } else {
                        return Err(bad());
                    }
                }
            };
            groups.push((cond, Vec::new()));
            continue;
        }
        let Some((_, names)) = groups.last_mut() else {
            return Err(RuntimeError::InvalidConfig(format!(
                "seccomp policy line {}: syscall names before any section",
                no + 1
            )));
        };
        names.extend(line.split_whitespace().map(str::to_string));
    }
    Ok(groups)
}

/// The host kernel's (major, minor), or (0, 0) if unknown.
pub(crate) fn kernel_version() -> (u32, u32) {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn architectures() -> Vec<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "x86" => vec!["SCMP_ARCH_X86"],
        "aarch64" => vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "arm" => vec!["SCMP_ARCH_ARM"],
        "riscv64" => vec!["SCMP_ARCH_RISCV64"],
        "s390x" => vec!["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        "powerpc64" => vec!["SCMP_ARCH_PPC64LE"],
        _ => vec![],
    }
}

/// The set of syscall names the default profile allows unconditionally for
/// a container holding `caps` (names like "CAP_SYS_ADMIN") on a kernel of
/// version `kernel`. Exposed for tests and `berth info`.
pub fn allowed_syscalls(caps: &BTreeSet<String>, kernel: (u32, u32)) -> BTreeSet<String> {
    let groups = parse_policy(POLICY).expect("built-in seccomp policy parses (unit-tested)");
    let mut out = BTreeSet::new();
    for (cond, names) in groups {
        let on = match cond {
            Condition::Always => true,
            Condition::Cap(c) => caps.contains(&c),
            Condition::KernelAtLeast(a, b) => kernel >= (a, b),
        };
        if on {
            out.extend(names);
        }
    }
    out.insert("socket".to_string());
    out
}

/// Builds the default profile for a container with the given capability set.
pub fn default_profile(caps: &BTreeSet<String>) -> Result<LinuxSeccomp> {
    let sys_admin = caps.contains("CAP_SYS_ADMIN");
    let mut allowed = allowed_syscalls(caps, kernel_version());
    let mut rules: Vec<Value> = Vec::new();
    if !sys_admin {
        // Plain fork/thread clones are fine; clones that create namespaces are not.
        allowed.remove("clone");
        rules.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NS_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
        }));
        // clone3 passes flags in memory, which seccomp cannot inspect: answer
        // ENOSYS so libc falls back to clone(2), which is filtered above.
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    } else {
        allowed.insert("clone3".to_string());
    }
    // personality(2): only the harmless personas (Linux, 32-bit Linux, and query).
    for persona in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
        rules.push(json!({
            "names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]
        }));
    }
    let mut syscalls = vec![json!({
        "names": allowed.into_iter().collect::<Vec<_>>(),
        "action": "SCMP_ACT_ALLOW"
    })];
    syscalls.extend(rules);
    let v = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": architectures(),
        "syscalls": syscalls,
    });
    serde_json::from_value(v)
        .map_err(|e| RuntimeError::InvalidConfig(format!("built-in seccomp profile does not fit the OCI schema: {e}")))
}

/// Loads a Docker/OCI-format seccomp profile from a file (`--security-opt seccomp=<path>`).
pub fn load_profile(path: &std::path::Path) -> Result<LinuxSeccomp> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RuntimeError::io(format!("reading seccomp profile {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| RuntimeError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("not an OCI seccomp profile: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn policy_parses_and_denies_dangerous_calls_by_default() {
        let a = allowed_syscalls(&caps(&["CAP_CHOWN"]), (6, 1));
        // clone is only allowed through the argument filter (see profile test).
        assert!(!a.contains("clone"));
        for denied in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "request_key",
            "bpf",
            "reboot",
            "kexec_load",
            "init_module",
            "finit_module",
            "open_by_handle_at",
        ] {
            assert!(!a.contains(denied), "{denied} must be denied");
        }
        for ok in ["read", "write", "execve", "openat", "socket", "ptrace", "fork"] {
            assert!(a.contains(ok), "{ok} must be allowed");
        }
    }

    #[test]
    fn ptrace_denied_on_old_kernels() {
        assert!(!allowed_syscalls(&caps(&[]), (4, 4)).contains("ptrace"));
        assert!(allowed_syscalls(&caps(&["CAP_SYS_PTRACE"]), (4, 4)).contains("ptrace"));
    }

    #[test]
    fn sys_admin_unlocks_mount() {
        let a = allowed_syscalls(&caps(&["CAP_SYS_ADMIN"]), (6, 1));
        assert!(a.contains("mount") && a.contains("unshare") && a.contains("setns"));
    }

    #[test]
    fn profile_filters_clone_without_sys_admin() {
        let p = default_profile(&caps(&["CAP_CHOWN"])).unwrap();
        let v = serde_json::to_value(&p).unwrap();
        let s = v.to_string();
        assert!(s.contains("SCMP_CMP_MASKED_EQ"), "{s}");
        let allow_all = &v["syscalls"][0]["names"];
        assert!(!allow_all.as_array().unwrap().iter().any(|n| n == "clone"));
        let p2 = default_profile(&caps(&["CAP_SYS_ADMIN"])).unwrap();
        let v2 = serde_json::to_value(&p2).unwrap();
        assert!(v2["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "clone3"));
    }

    #[test]
    fn bad_sections_are_rejected() {
        assert!(parse_policy("[deny]\nfoo").is_err());
        assert!(parse_policy("foo").is_err());
        assert!(parse_policy("[allow kernel>=x]\nfoo").is_err());
    }
}
