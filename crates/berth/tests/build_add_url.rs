//! `ADD <url>`: files from a small HTTP server on 127.0.0.1 (nothing else
//! is ever contacted): names, mode 0600, Last-Modified as mtime, archives
//! kept whole, --chown/--chmod, --checksum, the cache keyed on content.

#[path = "build_support.rs"]
mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use support::*;

const LAST_MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
const LAST_MODIFIED_SECS: &str = "784111777";

/// A one-thread HTTP/1.1 server on 127.0.0.1: path → body (with
/// Last-Modified), counting the requests it answers.
struct Server {
    port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<AtomicUsize>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let (f, h) = (files.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                        break;
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body = f.lock().unwrap().get(&path).cloned();
                let _ = match body {
                    Some(b) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: {LAST_MODIFIED}\r\nConnection: close\r\n\r\n",
                            b.len()
                        );
                        conn.write_all(&b)
                    }
                    None => conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
                };
            }
        });
        Server { port, files, hits }
    }

    fn put(&self, path: &str, body: &[u8]) {
        self.files.lock().unwrap().insert(path.to_string(), body.to_vec());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn sha256_hex(data: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, data).unwrap();
    let o = std::process::Command::new("sha256sum").arg(&p).output().unwrap();
    String::from_utf8(o.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A gzip'd tar holding `inner.txt`.
fn tar_gz() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inner.txt"), "inside\n").unwrap();
    let o = std::process::Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-czf", "-", "inner.txt"])
        .output()
        .unwrap();
    assert!(o.status.success());
    o.stdout
}

#[test]
#[ignore = "needs root"]
fn add_url_names_modes_mtime_archives_owner_and_cache() {
    need_root();
    let srv = Server::start();
    srv.put("/files/hello.txt", b"hello v1\n");
    srv.put("/files/data.tar.gz", &tar_gz());
    let root = Root::new();
    root.busybox("bb");
    let sum = sha256_hex(b"hello v1\n");
    let dockerfile = format!(
        "FROM bb
ADD {hello} /dl/
ADD {hello} /renamed.txt
ADD {tgz} /arch/
ADD --chown=65534:65534 --chmod=0644 {hello} /owned.txt
ADD --checksum=sha256:{sum} {hello} /checked/
RUN stat -c '%a %u %Y' /dl/hello.txt > /stat1 && stat -c '%a %u:%g' /owned.txt > /stat2 && ls /arch > /archls
ADD --link {hello} /linked/
",
        hello = srv.url("/files/hello.txt"),
        tgz = srv.url("/files/data.tar.gz"),
    );
    let ctx = context(&[("Dockerfile", &dockerfile)]);
    let out = build_ok(&root, &["-t", "remote", ctx.path().to_str().unwrap()]);
    assert!(
        out.contains(&format!(
            " ---> Downloaded {}: sha256:{sum}",
            srv.url("/files/hello.txt")
        )),
        "{out}"
    );
    let file = |p: &str| image_file(&root, "remote", p);
    assert_eq!(file("/dl/hello.txt").as_deref(), Some("hello v1\n"));
    assert_eq!(file("/renamed.txt").as_deref(), Some("hello v1\n"));
    assert_eq!(file("/checked/hello.txt").as_deref(), Some("hello v1\n"));
    // Mode 0600, owner root, mtime from Last-Modified.
    assert_eq!(file("/stat1").unwrap().trim(), format!("600 0 {LAST_MODIFIED_SECS}"));
    assert_eq!(file("/stat2").unwrap().trim(), "644 65534:65534");
    // The archive is kept as downloaded, not extracted.
    assert_eq!(file("/archls").unwrap().trim(), "data.tar.gz");
    assert_eq!(file("/arch/inner.txt"), None);
    assert_eq!(file("/linked/hello.txt").as_deref(), Some("hello v1\n"));

    // Downloaded again on the next build; same content: every step cached.
    let before = srv.hits();
    let out = build_ok(&root, &[ctx.path().to_str().unwrap()]);
    assert_eq!(srv.hits(), before + 6, "each URL source is fetched once per build");
    assert_eq!(running_lines(&out), 0, "{out}");
    assert_eq!(out.matches(" ---> Using cache").count(), 7, "{out}");

    // Changed content: the ADD steps that use it run again.
    srv.put("/files/hello.txt", b"hello v2\n");
    let dockerfile2 = dockerfile.replace(&format!("ADD --checksum=sha256:{sum} "), "ADD ");
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile2).unwrap();
    let out = build_ok(&root, &["-t", "remote2", ctx.path().to_str().unwrap()]);
    assert!(
        out.contains("Step 2/8 : ADD") && !out.split("Step 3/8").next().unwrap().contains("Using cache"),
        "{out}"
    );
    assert_eq!(
        image_file(&root, "remote2", "/renamed.txt").as_deref(),
        Some("hello v2\n")
    );
}

#[test]
fn add_url_errors_are_clear() {
    let srv = Server::start();
    srv.put("/f.txt", b"content\n");
    let root = Root::new();
    root.busybox("bb");
    let fails = |dockerfile: &str, env: Option<(&str, &str)>| -> String {
        let ctx = context(&[("Dockerfile", dockerfile)]);
        let mut cmd = root.cmd(&["build", ctx.path().to_str().unwrap()]);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        stderr(&o)
    };
    let wrong = "0".repeat(64);
    let err = fails(
        &format!("FROM bb\n\nADD --checksum=sha256:{wrong} {} /f\n", srv.url("/f.txt")),
        None,
    );
    assert!(err.contains("checksum mismatch: --checksum=sha256:0000"), "{err}");
    assert!(
        err.contains(&format!("but the download is sha256:{}", sha256_hex(b"content\n"))),
        "{err}"
    );
    assert!(err.contains("at Dockerfile:3:1"), "{err}");

    let err = fails(&format!("FROM bb\nCOPY {} /f\n", srv.url("/f.txt")), None);
    assert!(err.contains("COPY cannot take a URL: use ADD"), "{err}");
    assert!(err.contains("at Dockerfile:2:1"), "{err}");

    let err = fails(&format!("FROM bb\nADD {} /f\n", srv.url("/missing")), None);
    assert!(err.contains("HTTP 404"), "{err}");

    let err = fails("FROM bb\nADD --checksum=sha256:abc local.txt /f\n", None);
    assert!(err.contains("--checksum is only for http(s) URL sources"), "{err}");

    // Hosts not allowed are refused before any request.
    let before = srv.hits();
    let err = fails(
        &format!("FROM bb\nADD {} /f\n", srv.url("/f.txt")),
        Some(("BERTH_ALLOWED_REGISTRIES", "localhost")),
    );
    assert!(err.contains("is not allowed here"), "{err}");
    assert_eq!(srv.hits(), before);
}
