//! What each fuzz target does with its input, as plain functions: the
//! libFuzzer targets in `fuzz_targets/` call them, and `tests/corpus.rs`
//! replays the seed corpus through them on stable. Every input is
//! untrusted in berth's own use (a Dockerfile, a layer or an image archive
//! from anywhere, a registry's JSON, a command line): none may panic, hang,
//! exhaust memory, or write outside the directory it is given.
//!
//! It must never touch anything but temporary directories of its own.

use std::collections::BTreeMap;
use std::path::Path;

use berth_archive::{apply_layer, ApplyOptions, Limits};
use berth_build::dockerfile::expand::{expand_from, map_lookup, MAX_WORD_LEN};
use berth_build::dockerfile::{self, expand, expand_instruction, expand_words};

/// Dockerfile lexer, parser, expander, stage graph and linter.
pub fn dockerfile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = berth_build::executor::check(&text, "Dockerfile");
    let vars: BTreeMap<String, String> = [("A", "1"), ("PATH", "/usr/bin:/bin"), ("EMPTY", "")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let look = map_lookup(&vars);
    for line in text.lines().take(64) {
        if let Ok(w) = expand(line, &look, '\\') {
            assert!(w.len() <= MAX_WORD_LEN, "a word expanded past the limit");
        }
        let _ = expand_words(line, &look, '`');
    }
    let Ok(df) = dockerfile::parse(&text, "Dockerfile") else {
        return;
    };
    let esc = df.directives.escape;
    let args = BTreeMap::new();
    let _ = df.checked_global_arg_values(&args);
    let _ = df.global_arg_values(&args);
    let _ = df.dependency_cycle(&args);
    if let Some(t) = df.target_stage(None) {
        let _ = df.needed_for_with_args(t, &args);
    }
    for st in &df.stages {
        let _ = expand_from(st, &look, esc);
        let _ = df.dependencies_with_args(st.index, &args);
        for ins in &st.instructions {
            let _ = expand_instruction(ins, &look, esc);
        }
    }
}

/// A layer tar (any compression) applied into an empty directory, with
/// small limits: nothing may appear beside that directory.
pub fn layer_apply(data: &[u8]) {
    let t = tempfile::tempdir().expect("a temporary directory");
    let (root, outside) = (t.path().join("root"), t.path().join("outside"));
    std::fs::create_dir(&root).expect("root");
    std::fs::create_dir(&outside).expect("outside");
    let opts = ApplyOptions {
        overlay_whiteouts: data.first().is_some_and(|b| b & 1 == 0),
        xattr_prefix: "user.overlay.".into(),
        allow_devices: false,
        preserve_owner: false,
        id_shift: 0,
        no_overwrite_dir_non_dir: false,
        owner: None,
        limits: Limits {
            max_size: 16 << 20,
            max_entries: 10_000,
        },
    };
    let _ = apply_layer(data, &root, &opts);
    let escaped: Vec<_> = std::fs::read_dir(&outside).expect("outside").collect();
    assert!(escaped.is_empty(), "a layer wrote outside its root: {escaped:?}");
    let beside: Vec<_> = std::fs::read_dir(t.path())
        .expect("tempdir")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "root" && n != "outside")
        .collect();
    assert!(beside.is_empty(), "a layer wrote beside its root: {beside:?}");
    // Layers may hold read-only directories: made writable to remove.
    berth_store::staging::remove_tree(t.path());
}

/// A Docker or OCI image archive loaded into a store (as `berth load`):
/// manifests, indexes, configs and layers all come from the archive.
pub fn archive_load(data: &[u8]) {
    with_engine(|engine| archive_load_into(engine, data));
}

/// [`archive_load`] into the store of `engine`.
pub fn archive_load_into(engine: &berth_engine::Engine, data: &[u8]) {
    let _ = engine.load(data, &berth_engine::progress::Progress::none());
    // Whatever loaded goes again, so the store stays small.
    let _ = engine.prune_images(true, &[]);
}

/// One store per fuzzing process (opening one per input would be most of
/// the work), in the temporary directory: `scripts/fuzz` points TMPDIR at
/// its own, which it removes.
fn with_engine(f: impl FnOnce(&berth_engine::Engine)) {
    use std::sync::{Mutex, OnceLock};
    static ENGINE: OnceLock<Mutex<(tempfile::TempDir, berth_engine::Engine)>> = OnceLock::new();
    let e = ENGINE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("berth-fuzz-store-")
            .tempdir()
            .expect("a temporary directory");
        let engine = berth_engine::Engine::open(&dir.path().join("store"), None).expect("a store");
        Mutex::new((dir, engine))
    });
    let guard = e.lock().unwrap_or_else(|p| p.into_inner());
    f(&guard.1);
}

/// An image config, manifest or index as a registry or archive sends it.
pub fn image_json(data: &[u8]) {
    use berth_registry::platform::{self, Platform};
    if let Ok(config) = berth_store::ImageConfig::from_bytes(data) {
        let _ = config.diff_ids();
        let _ = config.to_bytes();
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = platform::manifest_media_type(None, &v);
    let _ = platform::manifest_media_type(Some("application/vnd.oci.image.index.v1+json; x=y"), &v);
    let _ = Platform::from_json(&v);
    for want in [Platform::host(), Platform::parse("linux/arm/v7").expect("a platform")] {
        let _ = platform::select(&v, &want);
    }
    for l in v["layers"].as_array().into_iter().flatten() {
        if let Some(d) = l["digest"].as_str() {
            let _ = berth_store::Digest::parse(d);
        }
    }
    for t in v["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
    {
        let _ = berth_store::Reference::parse(t);
    }
}

/// Command-line and header words: `-p`, `-v`, `--mount`, `--tmpfs`,
/// `RUN --mount`, sizes, durations, references, digests, platforms,
/// registry auth challenges and credentials, one per line.
pub fn flags(data: &[u8]) {
    use berth_engine::spec::{parse_bytes, parse_mount, parse_tmpfs, parse_volume};
    let cwd = std::path::Path::new("/");
    let text = String::from_utf8_lossy(data);
    for line in text.lines().take(256) {
        let _ = berth_net::parse_publish(line);
        let _ = berth_net::publish::parse_exposed(line);
        let _ = parse_volume(line, cwd);
        let _ = parse_mount(line, cwd);
        let _ = parse_tmpfs(line);
        let _ = parse_bytes("size", line);
        let _ = berth_engine::containers::parse_duration_ns(line);
        let _ = dockerfile::parser::parse_mount(line);
        let _ = dockerfile::parser::parse_go_duration(line);
        let _ = berth_archive::parse_size(line);
        let _ = berth_store::Reference::parse(line);
        let _ = berth_store::Digest::parse(line);
        let _ = berth_registry::platform::Platform::parse(line);
        let _ = berth_registry::auth::parse_challenge(line);
        let _ = berth_registry::auth::Credentials::parse(line);
    }
}

/// Feeds every file of `fuzz/corpus/<target>/` to `f` (the seed replay).
pub fn replay(target: &str, f: impl Fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    let mut n = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for p in files {
        let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        f(&data);
        n += 1;
    }
    n
}
