//! The seed corpus of every fuzz target, replayed on stable as ordinary
//! tests: what once crashed berth (and what it must always read) stays
//! fixed without a fuzzer. `scripts/fuzz` grows the corpus; new findings
//! are added here as files.

#[test]
fn dockerfile_seeds() {
    assert!(berth_fuzz::replay("dockerfile", berth_fuzz::dockerfile) > 5);
}

#[test]
fn layer_apply_seeds() {
    assert!(berth_fuzz::replay("layer_apply", berth_fuzz::layer_apply) > 3);
}

#[test]
fn archive_load_seeds() {
    let t = tempfile::tempdir().unwrap();
    let engine = berth_engine::Engine::open(&t.path().join("store"), None).unwrap();
    let n = berth_fuzz::replay("archive_load", |data| berth_fuzz::archive_load_into(&engine, data));
    assert!(n > 1);
}

#[test]
fn image_json_seeds() {
    assert!(berth_fuzz::replay("image_json", berth_fuzz::image_json) > 3);
}

#[test]
fn flags_seeds() {
    assert!(berth_fuzz::replay("flags", berth_fuzz::flags) > 0);
}
