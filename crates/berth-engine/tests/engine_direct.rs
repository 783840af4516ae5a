//! A front's view of the engine, with no CLI process anywhere: what an API
//! server or compose does — create a container from a typed spec, start
//! it, exec into it with captured (and multiplexed) output, attach with
//! in-memory streams (stdin written, stdout and stderr read apart), remove
//! it.

mod common;

/// This binary as a container's monitor (see common::engine).
#[test]
fn monitor_entry() {
    common::monitor_entry();
}

use berth_engine::containers::CreateOptions;
use berth_engine::spec::ContainerSpec;
use berth_engine::streams::{
    multiplexed, AttachEnd, AttachOptions, Demultiplexer, ExecOptions, SharedBuffer, StreamIn, StreamOut, Streams,
};
use berth_engine::ErrorKind;

#[test]
#[ignore = "needs root"]
fn a_container_lives_its_whole_life_through_the_engine_alone() {
    common::need_root();
    let (_dir, engine) = common::engine();
    common::busybox(&engine, "bb");

    // Create: a shell that echoes each line it reads to stdout and stderr.
    let mut spec = ContainerSpec::new("bb");
    spec.name = Some("echoer".into());
    spec.open_stdin = true;
    spec.env = vec!["GREETING=hi".into()];
    spec.command = vec![
        "sh".into(),
        "-c".into(),
        "while read l; do echo out:$l; echo err:$l >&2; done; echo bye".into(),
    ];
    let created = engine.create_container(&spec, CreateOptions::default()).unwrap();
    assert_eq!(created.name, "echoer");
    engine.start_detached("echoer", None).unwrap();
    assert!(engine.container("echoer").unwrap().state.is_running());

    // Exec with captured output, stdout and stderr apart.
    let (out, err) = (SharedBuffer::new(), SharedBuffer::new());
    let exec = ExecOptions {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "echo exec-out $GREETING; echo exec-err >&2; exit 3".into(),
        ],
        ..Default::default()
    };
    let code = engine
        .exec_in_container("echoer", &exec, Some(Streams::output(out.stream(), err.stream())))
        .unwrap();
    assert_eq!(code, 3);
    assert_eq!(out.contents(), b"exec-out hi\n");
    assert_eq!(err.contents(), b"exec-err\n");

    // The same over one connection, framed as Docker's API frames it.
    let conn = SharedBuffer::new();
    let (mux_out, mux_err) = multiplexed(conn.clone());
    let streams = Streams::output(
        StreamOut::Writer(Box::new(mux_out)),
        StreamOut::Writer(Box::new(mux_err)),
    );
    engine.exec_in_container("echoer", &exec, Some(streams)).unwrap();
    let (o, e) = Demultiplexer::new(&conn.contents()[..]).split_all().unwrap();
    assert_eq!(
        (o.as_slice(), e.as_slice()),
        (&b"exec-out hi\n"[..], &b"exec-err\n"[..])
    );

    // Attach with in-memory streams: two lines in; when they end, the
    // container's stdin closes, its loop ends, and so does the session.
    let (out, err) = (SharedBuffer::new(), SharedBuffer::new());
    let mut streams = Streams::output(out.stream(), err.stream());
    streams.stdin = Some(StreamIn::Reader(Box::new(std::io::Cursor::new(b"one\ntwo\n".to_vec()))));
    let opts = AttachOptions {
        close_stdin_on_eof: true,
        ..Default::default()
    };
    let end = engine.attach_container("echoer", &opts, streams).unwrap();
    assert_eq!(end, AttachEnd::Exited(0));
    assert_eq!(String::from_utf8(out.contents()).unwrap(), "out:one\nout:two\nbye\n");
    assert_eq!(String::from_utf8(err.contents()).unwrap(), "err:one\nerr:two\n");
    assert!(!engine.container("echoer").unwrap().state.is_running());

    // Remove: gone, and asking for it again is NotFound.
    engine.remove_container("echoer", false, true).unwrap();
    assert_eq!(
        engine.container("echoer").err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert!(!created.dir.exists());
}

/// A foreground run in this process with the caller's streams: output
/// copied there as well as to the log, the exit code returned.
#[test]
#[ignore = "needs root"]
fn a_foreground_run_writes_to_the_streams_it_is_given() {
    common::need_root();
    let (_dir, engine) = common::engine();
    common::busybox(&engine, "bb");
    let mut spec = ContainerSpec::new("bb");
    spec.open_stdin = true;
    spec.command = vec![
        "sh".into(),
        "-c".into(),
        "read l; echo got:$l; echo oops >&2; exit 4".into(),
    ];
    let c = engine
        .create_container(
            &spec,
            CreateOptions {
                start_next: true,
                ..Default::default()
            },
        )
        .unwrap();
    let (out, err) = (SharedBuffer::new(), SharedBuffer::new());
    let mut streams = Streams::output(out.stream(), err.stream());
    streams.stdin = Some(StreamIn::Reader(Box::new(std::io::Cursor::new(b"line\n".to_vec()))));
    assert_eq!(engine.run_attached(&c.id, streams).unwrap(), 4);
    assert_eq!(out.contents(), b"got:line\n");
    assert_eq!(err.contents(), b"oops\n");
    engine.remove_container(&c.id, false, false).unwrap();
}
