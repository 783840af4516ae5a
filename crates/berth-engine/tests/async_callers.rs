//! An async front (the API server) calls the engine from inside a tokio
//! runtime: its blocking calls go through `spawn_blocking`, and a registry
//! operation called straight from async code must not panic with "cannot
//! start a runtime from within a runtime" either. Push, pull and a build
//! that pulls its base image, against a registry on 127.0.0.1.

mod common;

/// This binary as a container's monitor (see common::engine).
#[test]
fn monitor_entry() {
    common::monitor_entry();
}

use std::sync::Arc;

use berth_engine::build::{BuildRequest, BuildResult, ContextSource};
use berth_engine::progress::{BuildEvent, Event, Progress};
use berth_engine::registry::{PullOptions, PushOptions};
use berth_registry::tokio;

/// A registry with `bb:1` in it, an engine, and a tokio runtime to call
/// the engine from.
fn arrange() -> (
    common::Registry,
    tempfile::TempDir,
    Arc<berth_engine::Engine>,
    String,
    tokio::runtime::Runtime,
) {
    common::loopback_only();
    let registry = common::Registry::start();
    let (dir, engine) = common::engine();
    let engine = Arc::new(engine);
    common::busybox(&engine, "bb");
    let name = registry.name("bb:1");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (registry, dir, engine, name, rt)
}

#[test]
fn push_and_pull_from_inside_a_tokio_runtime() {
    let (_registry, _dir, engine, name, rt) = arrange();
    rt.block_on(async {
        // The documented way: blocking engine calls on the blocking pool.
        let e = engine.clone();
        let n = name.clone();
        tokio::task::spawn_blocking(move || {
            e.tag("bb", &n).unwrap();
            e.push(&n, None, &PushOptions::default(), &Progress::none()).unwrap();
            e.remove_image(&n, false, false).unwrap();
            e.remove_image("bb", true, true).unwrap();
        })
        .await
        .unwrap();

        // Straight from async code: still no nested-runtime panic. The
        // image the pull brought is an event too.
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = events.clone();
        let progress = Progress::new(move |ev| seen.lock().unwrap().push(ev));
        let pulled = engine.pull(&name, &PullOptions::default(), &progress).unwrap();
        assert_eq!(pulled.len(), 1);
        assert!(pulled[0].downloaded);
        let events = events.lock().unwrap();
        assert!(
            events.contains(&Event::Status(format!("Status: Downloaded newer image for {name}"))),
            "{events:?}"
        );
        assert!(events.contains(&Event::Image {
            id: pulled[0].id.to_string(),
            name: Some(name.clone())
        }));
    });
}

/// Builds run their steps as root only (a user cannot mount a step's root
/// file system here).
#[test]
#[ignore = "needs root"]
fn a_build_that_pulls_its_base_from_inside_a_tokio_runtime() {
    common::need_root();
    let (_registry, _dir, engine, name, rt) = arrange();
    engine.tag("bb", &name).unwrap();
    engine
        .push(&name, None, &PushOptions::default(), &Progress::none())
        .unwrap();
    engine.remove_image(&name, false, false).unwrap();
    engine.remove_image("bb", true, true).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {name}\nCOPY hello /hello\n"),
    )
    .unwrap();
    std::fs::write(ctx.path().join("hello"), "hi\n").unwrap();
    rt.block_on(async {
        // Its FROM is pulled (from the builder's threads) while this
        // runtime drives the caller; its events arrive as data.
        let e = engine.clone();
        let dir = ctx.path().to_path_buf();
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = events.clone();
        let res = tokio::task::spawn_blocking(move || {
            let req = BuildRequest {
                context: ContextSource::Dir(dir),
                file: None,
                inline: None,
                tags: vec!["built".into()],
                options: Default::default(),
            };
            let progress = Progress::new(move |ev| seen.lock().unwrap().push(ev));
            e.build(req, &progress).unwrap()
        })
        .await
        .unwrap();
        let BuildResult::Built(outcome) = res else {
            panic!("the build failed");
        };
        let events = events.lock().unwrap();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Build(BuildEvent::Step { n: 2, total: 2, .. }))),
            "{events:?}"
        );
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::Image { id, .. } if *id == outcome.id.to_string())));
        assert!(engine.image_inspect("built").is_ok());
    });
}
