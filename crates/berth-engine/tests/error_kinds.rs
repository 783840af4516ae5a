//! Every kind of engine error, as a front sees it: told apart by kind
//! (what an API server turns into 404, 409, 400, 401, or the CLI into an
//! exit code), never by reading the message.

mod common;

/// This binary as a container's monitor (see common::engine).
#[test]
fn monitor_entry() {
    common::monitor_entry();
}

use std::io::{Read, Write};

use berth_engine::containers::CreateOptions;
use berth_engine::progress::Progress;
use berth_engine::registry::PullOptions;
use berth_engine::spec::{self, ContainerSpec};
use berth_engine::streams::ExecOptions;
use berth_engine::ErrorKind;

#[test]
fn a_missing_container_or_image_is_not_found() {
    let (_dir, engine) = common::engine();
    let e = engine.container("nosuch").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.to_string(), "No such container: nosuch");
    let e = engine.image_inspect("nosuch").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = engine
        .inspect("nosuch", berth_engine::system::InspectKind::Any, false)
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.to_string().as_str()),
        (ErrorKind::NotFound, "No such object: nosuch")
    );
    // Creating from an image the store does not have (and may not pull).
    let mut s = ContainerSpec::new("nosuch");
    s.pull = spec::PullPolicy::Never;
    let e = engine
        .create_container_pulling(&s, CreateOptions::default(), &Progress::none())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[test]
fn a_bad_value_in_a_spec_is_an_invalid_argument() {
    let (_dir, engine) = common::engine();
    common::busybox(&engine, "bb");
    let mut s = ContainerSpec::new("bb");
    s.resources.memory = Some(1000); // below Docker's 6 MB
    let e = engine.create_container(&s, CreateOptions::default()).unwrap_err();
    assert_eq!(
        (e.kind(), e.to_string().as_str()),
        (ErrorKind::InvalidArgument, "Minimum memory limit allowed is 6MB")
    );
    let mut s = ContainerSpec::new("bb");
    s.env = vec!["=x".into()];
    let e = engine.create_container(&s, CreateOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let e = spec::parse_bytes("--memory", "lots").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    // Nothing was created.
    assert!(engine.list_all_containers().unwrap().is_empty());
}

#[test]
#[ignore = "needs root"]
fn a_name_in_use_is_a_conflict_and_a_stopped_container_is_not_running() {
    common::need_root();
    let (_dir, engine) = common::engine();
    common::busybox(&engine, "bb");
    let mut s = ContainerSpec::new("bb");
    s.name = Some("web".into());
    // Up until removed (the image's sh would end at once, stdin closed).
    s.command = vec!["sleep".into(), "1000".into()];
    engine.create_container(&s, CreateOptions::default()).unwrap();
    let e = engine.create_container(&s, CreateOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("\"/web\" is already in use"), "{e}");

    // Created, never started.
    let exec = ExecOptions {
        cmd: vec!["true".into()],
        ..Default::default()
    };
    let e = engine.exec_in_container("web", &exec, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotRunning, "{e}");
    let e = engine.kill_container("web", "KILL").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotRunning, "{e}");

    // Running but not paused; running and in the way of rm.
    engine.start_detached("web", None).unwrap_or_else(|e| panic!("{e}"));
    let e = engine.unpause_container("web").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotPaused, "{e}");
    let e = engine.remove_container("web", false, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    engine.remove_container("web", true, true).unwrap();
}

#[test]
#[ignore = "needs root"]
fn a_command_that_cannot_start_carries_dockers_exit_code() {
    common::need_root();
    let (_dir, engine) = common::engine();
    common::busybox(&engine, "bb");
    let mut s = ContainerSpec::new("bb");
    s.command = vec!["no-such-command".into()];
    let c = engine.create_container(&s, CreateOptions::default()).unwrap();
    let e = engine.start_detached(&c.id, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Exit(127), "{e}");
    assert_eq!(e.exit_code(), 127);
    engine.remove_container(&c.id, true, true).unwrap();
}

/// A registry that wants credentials nobody gave: every request gets 401
/// with a Basic challenge.
fn challenging_registry() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\n\
                  Docker-Distribution-API-Version: registry/2.0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    port
}

#[test]
fn a_registry_that_refuses_is_unauthorized() {
    common::loopback_only();
    let (_dir, engine) = common::engine();
    let port = challenging_registry();
    let e = engine
        .pull(
            &format!("127.0.0.1:{port}/private/app:1"),
            &PullOptions::default(),
            &Progress::none(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
}
