//! Seccomp filters compiled once, for crun.
//!
//! crun compiles the spec's seccomp profile to BPF with libseccomp on every
//! container start, which is more than half of its start-up here (≈ 15 of
//! 27 ms for Docker's profile). It also writes the program it loaded to
//! `seccomp.bpf` in its state directory, and it accepts a ready program in
//! the `run.oci.seccomp_bpf_data` annotation (base64), in which case it
//! skips the profile. So berth keeps the program crun compiled for a
//! profile, keyed by the profile and the crun binary, and hands it back on
//! later starts: the filter is the one crun itself made, byte for byte.
//!
//! Only data moves here; the runtime installs the filter in the container.

use crate::error::Result;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The annotation crun reads a compiled filter from.
pub const ANNOTATION: &str = "run.oci.seccomp_bpf_data";

/// What [`apply`] did to a bundle.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// No profile, one crun would not take from the cache (flags, a
    /// listener), or the annotation is already there.
    Nothing,
    /// The cached program is now in the bundle's `config.json`.
    FromCache,
    /// No program is cached for this profile yet: after the runtime has
    /// created the container, [`remember`] keeps the one it compiled.
    Missing(PathBuf),
}

/// Puts the cached program for the bundle's seccomp profile into its
/// `config.json`, when there is one. `runtime` is the crun binary (its
/// size and time are part of the key, so an upgrade recompiles).
pub fn apply(bundle: &Path, cache_dir: &Path, runtime: &Path) -> Result<Applied> {
    let mut spec = crate::exec::load_spec_json(bundle)?;
    let Some(profile) = spec.pointer("/linux/seccomp").filter(|p| !p.is_null()) else {
        return Ok(Applied::Nothing);
    };
    let has = |field: &str| {
        profile
            .get(field)
            .is_some_and(|v| !v.is_null() && v != &serde_json::json!([]) && v != "")
    };
    if has("flags") || has("listenerPath") || spec.pointer(&format!("/annotations/{ANNOTATION}")).is_some() {
        return Ok(Applied::Nothing);
    }
    let Some(key) = key(profile, runtime) else {
        return Ok(Applied::Nothing);
    };
    let cached = cache_dir.join(format!("{key}.bpf"));
    let program = match std::fs::read(&cached) {
        Ok(p) if valid(&p) => p,
        _ => return Ok(Applied::Missing(cached)),
    };
    let data = base64::engine::general_purpose::STANDARD.encode(program);
    match spec.get_mut("annotations").and_then(|a| a.as_object_mut()) {
        Some(a) => {
            a.insert(ANNOTATION.into(), data.into());
        }
        None => spec["annotations"] = serde_json::json!({ ANNOTATION: data }),
    }
    crate::exec::save_spec_json(bundle, &spec)?;
    Ok(Applied::FromCache)
}

/// Keeps the program the runtime compiled (`seccomp.bpf` in its state
/// directory for the container) as `cached`. Best effort: a start never
/// fails for the cache's sake.
pub fn remember(state_dir: &Path, cached: &Path) {
    let Ok(program) = std::fs::read(state_dir.join("seccomp.bpf")) else {
        return;
    };
    if !valid(&program) {
        return;
    }
    let Some(dir) = cached.parent() else { return };
    use berth_archive::perms;
    if perms::create_dir_all(dir, perms::PRIVATE_DIR).is_err() {
        return;
    }
    let _ = crate::spec::write_atomic(cached, &program, perms::PRIVATE_FILE);
}

/// A BPF program is a non-empty array of 8-byte instructions (at most
/// BPF_MAXINSNS of them).
fn valid(program: &[u8]) -> bool {
    !program.is_empty() && program.len() & 7 == 0 && program.len() / 8 <= 4096
}

fn key(profile: &serde_json::Value, runtime: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(runtime).ok()?;
    let mut h = Sha256::new();
    h.update(runtime.as_os_str().as_encoded_bytes());
    h.update(meta.size().to_le_bytes());
    h.update(meta.mtime().to_le_bytes());
    h.update(meta.mtime_nsec().to_le_bytes());
    h.update(std::env::consts::ARCH.as_bytes());
    h.update(serde_json::to_vec(profile).ok()?);
    Some(format!("{:x}", h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(dir: &Path, seccomp: serde_json::Value) {
        let spec = serde_json::json!({"ociVersion": "1.0.2", "linux": {"seccomp": seccomp}});
        std::fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    }

    #[test]
    fn a_remembered_program_goes_into_the_next_bundle() {
        let t = tempfile::tempdir().unwrap();
        let (b, cache, state) = (t.path().join("b"), t.path().join("cache"), t.path().join("state"));
        std::fs::create_dir_all(&b).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let runtime = t.path().join("crun");
        std::fs::write(&runtime, b"#!").unwrap();
        let profile = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []});
        bundle(&b, profile.clone());
        let Applied::Missing(cached) = apply(&b, &cache, &runtime).unwrap() else {
            panic!("nothing cached yet");
        };
        // A runtime's state with a 2-instruction program.
        let program: Vec<u8> = (0u8..16).collect();
        std::fs::write(state.join("seccomp.bpf"), &program).unwrap();
        remember(&state, &cached);
        assert_eq!(std::fs::read(&cached).unwrap(), program);
        assert_eq!(apply(&b, &cache, &runtime).unwrap(), Applied::FromCache);
        let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
        let data = spec["annotations"][ANNOTATION].as_str().unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(data).unwrap(), program);
        // Applied once; a different profile misses.
        assert_eq!(apply(&b, &cache, &runtime).unwrap(), Applied::Nothing);
        bundle(&b, serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        assert!(matches!(apply(&b, &cache, &runtime).unwrap(), Applied::Missing(_)));
    }

    #[test]
    fn flags_no_profile_and_bad_programs_are_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let runtime = t.path().join("crun");
        std::fs::write(&runtime, b"#!").unwrap();
        bundle(t.path(), serde_json::Value::Null);
        assert_eq!(apply(t.path(), t.path(), &runtime).unwrap(), Applied::Nothing);
        bundle(
            t.path(),
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}),
        );
        assert_eq!(apply(t.path(), t.path(), &runtime).unwrap(), Applied::Nothing);
        std::fs::write(t.path().join("seccomp.bpf"), b"odd").unwrap();
        let cached = t.path().join("c").join("k.bpf");
        remember(t.path(), &cached);
        assert!(!cached.exists());
    }
}
