//! Connection takeover, both ways Docker clients ask for it: the raw
//! stream after the answer carries bytes both ways, including bytes the
//! client sent right behind its request, and half-closes pass through.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;

use berth_api::body;
use berth_api::hijack::{hijack, Takeover, RAW_STREAM};
use common::{header, read_head, request, TestServer};
use hyper::body::Incoming;
use hyper::{Request, Response};

/// `/_ping` answers OK; anything else takes the connection over and
/// echoes what the client sends, upper-cased, until the client's EOF.
async fn echo(req: Request<Incoming>, t: Takeover) -> Response<body::Body> {
    if req.uri().path() == "/_ping" {
        return Response::new(body::full("OK"));
    }
    let (resp, raw) = hijack(&req, &t, RAW_STREAM);
    tokio::spawn(async move {
        let Ok(raw) = raw.await else { return };
        let (mut from_client, mut to_client) = raw.into_blocking();
        tokio::task::spawn_blocking(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = from_client.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                to_client.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
            }
            to_client.write_all(b"|bye").unwrap();
            // Dropping the writer closes the client's reading side.
        });
    });
    resp
}

fn echo_server() -> TestServer {
    TestServer::start(echo)
}

#[test]
fn upgrade_tcp_answers_101_and_the_connection_becomes_a_raw_stream() {
    let srv = echo_server();
    let mut s = srv.connect();
    // The connection served plain requests before (clients reuse them).
    let (head, body) = request(&mut s, "GET", "/_ping", b"");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"OK");
    // The first bytes of the stream ride behind the request.
    write!(
        s,
        "POST /containers/web/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\nearly;"
    )
    .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(header(&head, "upgrade"), Some("tcp"));
    assert_eq!(header(&head, "connection"), Some("Upgrade"));
    assert_eq!(header(&head, "content-type"), Some(RAW_STREAM));
    s.write_all(b"later").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "EARLY;LATER|bye");
}

#[test]
fn a_plain_post_gets_dockers_legacy_raw_stream_answer() {
    let srv = echo_server();
    let mut s = srv.connect();
    write!(
        s,
        "POST /containers/web/attach?stream=1 HTTP/1.1\r\nHost: berth\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut s);
    // 200 with the raw-stream type and no length: the body is the stream
    // until the connection closes.
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert_eq!(header(&head, "content-type"), Some(RAW_STREAM));
    assert_eq!(header(&head, "content-length"), None, "{head}");
    assert_eq!(header(&head, "transfer-encoding"), None, "{head}");
    s.write_all(b"one ").unwrap();
    let mut got = [0u8; 4];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ONE ", "bytes travel both ways before the client closes");
    s.write_all(b"two").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "TWO|bye");
}

#[test]
fn connections_without_a_takeover_stay_plain_http() {
    let srv = echo_server();
    let mut s = srv.connect();
    for _ in 0..3 {
        let (head, body) = request(&mut s, "GET", "/_ping", b"");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"OK");
    }
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the server closes cleanly when the client does");
}
