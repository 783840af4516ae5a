//! Streamed bodies both ways never sit in memory: a 1 GiB upload is read
//! by a blocking reader a few chunks at a time, a 1 GiB download is
//! written by a blocking writer as fast as the client reads, and the
//! process's peak memory stays far below either.

mod common;

use std::io::{BufRead, Read, Write};

use berth_api::body::{self, BodyReader};
use berth_api::error::ApiError;
use berth_api::hijack::Takeover;
use common::{header, peak_rss, read_head, Pattern, PatternCheck, TestServer, BLOCK};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

const GIB: u64 = 1 << 30;
const UP_SEED: u64 = 42;
const DOWN_SEED: u64 = 7;

/// POST /upload: reads the body through a BodyReader and checks it
/// against the pattern. GET /download?n=BYTES: writes that many pattern
/// bytes through a BodyWriter.
async fn handler(req: Request<Incoming>, _t: Takeover) -> Response<body::Body> {
    if req.uri().path() == "/upload" {
        let mut input = BodyReader::new(req.into_body());
        let (n, ok) = tokio::task::spawn_blocking(move || {
            let mut check = PatternCheck::new(UP_SEED);
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let got = input.read(&mut buf).unwrap();
                if got == 0 {
                    break;
                }
                check.push(&buf[..got]);
            }
            (check.total, check.finish())
        })
        .await
        .unwrap();
        return body::json(StatusCode::OK, &serde_json::json!({"bytes": n, "matches": ok}));
    }
    let n: u64 = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("n="))
        .unwrap()
        .parse()
        .unwrap();
    let b = body::stream_from_blocking(move |w| {
        let mut p = Pattern::new(DOWN_SEED);
        let mut buf = vec![0u8; BLOCK];
        let mut left = n;
        while left > 0 {
            let k = left.min(BLOCK as u64) as usize;
            p.fill(&mut buf[..k]);
            w.write_all(&buf[..k]).map_err(|e| ApiError::internal(e.to_string()))?;
            left -= k as u64;
        }
        Ok(())
    })
    .await
    .unwrap();
    Response::new(b)
}

#[test]
fn a_gib_up_and_a_gib_down_stream_without_filling_memory() {
    let srv = TestServer::start(handler);
    let before = peak_rss();

    // Up: 1 GiB written as it is generated.
    let mut s = srv.connect();
    write!(
        s,
        "POST /upload HTTP/1.1\r\nHost: berth\r\nContent-Length: {GIB}\r\n\r\n"
    )
    .unwrap();
    let mut p = Pattern::new(UP_SEED);
    let mut buf = vec![0u8; BLOCK];
    for _ in 0..GIB / BLOCK as u64 {
        p.fill(&mut buf);
        s.write_all(&buf).unwrap();
    }
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let len: usize = header(&head, "content-length").unwrap().parse().unwrap();
    let mut answer = vec![0u8; len];
    s.read_exact(&mut answer).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(v["bytes"], GIB);
    assert_eq!(v["matches"], true, "the server read exactly what was sent");

    // Down: 1 GiB, chunked, checked as it comes.
    let mut s = srv.connect();
    write!(
        s,
        "GET /download?n={GIB} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut s);
    assert_eq!(header(&head, "transfer-encoding"), Some("chunked"), "{head}");
    let mut check = PatternCheck::new(DOWN_SEED);
    let mut r = std::io::BufReader::new(s);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let size = usize::from_str_radix(line.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        let mut left = size;
        while left > 0 {
            let k = left.min(buf.len());
            r.read_exact(&mut buf[..k]).unwrap();
            check.push(&buf[..k]);
            left -= k;
        }
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).unwrap();
    }
    assert_eq!(check.total, GIB);
    assert!(check.finish(), "the client read exactly what the writer wrote");

    let grown = peak_rss().saturating_sub(before);
    assert!(
        grown < 128 << 20,
        "peak memory grew by {} MiB while 2 GiB went through",
        grown >> 20
    );
}
