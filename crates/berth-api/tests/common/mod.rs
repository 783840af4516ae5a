//! A test server: berth-api's own connection code with a handler the test
//! provides, on a unix socket in a temp dir; and a raw HTTP/1.1 client
//! that shows exactly what went over the wire.
#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use berth_api::body::Body;
use berth_api::hijack::Takeover;
use hyper::body::Incoming;
use hyper::{Request, Response};

/// A server running `handler` for every request, on its own thread.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
}

impl TestServer {
    pub fn start<F, Fut>(handler: F) -> TestServer
    where
        F: Fn(Request<Incoming>, Takeover) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("api.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::UnixListener::from_std(listener).unwrap();
                loop {
                    let (s, _) = l.accept().await.unwrap();
                    tokio::spawn(berth_api::server::serve_connection_with(s, handler.clone()));
                }
            });
        });
        TestServer { dir, socket }
    }

    pub fn connect(&self) -> UnixStream {
        UnixStream::connect(&self.socket).unwrap()
    }
}

/// Reads a response head (up to the blank line) byte by byte, so nothing
/// after it is consumed.
pub fn read_head(s: &mut UnixStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).unwrap();
        assert!(
            n == 1,
            "the connection closed inside a response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// A header's value in a head (case-insensitive name).
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Sends a request with a small body and returns the head and the body
/// (by Content-Length).
pub fn request(s: &mut UnixStream, method: &str, path: &str, body: &[u8]) -> (String, Vec<u8>) {
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let head = read_head(s);
    let len: usize = header(&head, "content-length").map(|v| v.parse().unwrap()).unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head, body)
}

/// The peak resident memory of this process (VmHWM), in bytes.
pub fn peak_rss() -> u64 {
    proc_status_kb("VmHWM:") * 1024
}

/// The current resident memory of this process, in bytes.
pub fn rss() -> u64 {
    proc_status_kb("VmRSS:") * 1024
}

fn proc_status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Deterministic bytes (xorshift), so both ends can check them without
/// keeping them.
pub struct Pattern(u64);

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        Pattern(seed | 1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let b = self.0.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
    }
}

/// Checks a stream against a [`Pattern`] as it arrives, one block at a
/// time (compared with `==`, so the check is as fast as memcmp).
pub struct PatternCheck {
    pattern: Pattern,
    expect: Vec<u8>,
    have: Vec<u8>,
    pub total: u64,
    pub matches: bool,
}

/// The block size both sides generate patterns in.
pub const BLOCK: usize = 1 << 20;

impl PatternCheck {
    pub fn new(seed: u64) -> PatternCheck {
        PatternCheck {
            pattern: Pattern::new(seed),
            expect: vec![0u8; BLOCK],
            have: Vec::with_capacity(BLOCK),
            total: 0,
            matches: true,
        }
    }

    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        while !data.is_empty() {
            let k = (BLOCK - self.have.len()).min(data.len());
            self.have.extend_from_slice(&data[..k]);
            data = &data[k..];
            if self.have.len() == BLOCK {
                self.pattern.fill(&mut self.expect);
                self.matches &= self.have == self.expect;
                self.have.clear();
            }
        }
    }

    /// Whether everything matched (a partial last block is compared too).
    pub fn finish(mut self) -> bool {
        if !self.have.is_empty() {
            let n = self.have.len();
            self.pattern.fill(&mut self.expect);
            self.matches &= self.have[..] == self.expect[..n];
        }
        self.matches
    }
}
