//! End-to-end: pull, push, login and manifest lists against a real
//! registry — Debian's `docker-registry` (distribution/registry v2, the code
//! of `registry:2`) started by each test on 127.0.0.1, plain HTTP or TLS with
//! htpasswd — with skopeo as the independent reader and writer.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{busybox_tar, serve_registry, stderr, stdout, Root};

const USER: &str = "alice";
const PASS: &str = "s3cret";
/// bcrypt (cost 4, cheap: the registry checks it on every request) of PASS.
const HTPASSWD: &str = "alice:$2b$04$J.FB.Ze9QpJrxLa.2A8pfujDT8fz0BrTiwd4TiWB8kDbrSS7qI52C\n";

/// A `docker-registry serve` on 127.0.0.1, killed on drop.
struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    /// The CA that signed its certificate (TLS variant).
    ca_dir: Option<PathBuf>,
}

impl Registry {
    fn plain() -> Registry {
        Registry::start(false)
    }

    fn tls_htpasswd() -> Registry {
        Registry::start(true)
    }

    /// Plain HTTP with `auth: token` (a token server's realm and the
    /// certificate its tokens are signed with).
    fn token(realm: &str, cert: &Path) -> Registry {
        Registry::start_with(
            false,
            Some(format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                cert.display()
            )),
        )
    }

    fn start(tls: bool) -> Registry {
        Registry::start_with(tls, None)
    }

    fn start_with(tls: bool, auth: Option<String>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let d = dir.path();
        let mut cfg = String::new();
        let mut ca_dir = None;
        if tls {
            make_certs(d);
            cfg.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("server.crt").display(),
                d.join("server.key").display()
            ));
            std::fs::write(d.join("htpasswd"), HTPASSWD).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                d.join("htpasswd").display()
            ));
            let cas = d.join("certs");
            std::fs::create_dir_all(&cas).unwrap();
            std::fs::copy(d.join("ca.crt"), cas.join("ca.crt")).unwrap();
            ca_dir = Some(cas);
        }
        if let Some(a) = auth {
            cfg.push_str(&a);
        }
        let (child, port) = serve_registry(d, "log:\n  level: error\n", &cfg, Stdio::null());
        Registry {
            child,
            dir,
            port,
            ca_dir,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn name(&self, repo: &str) -> String {
        format!("127.0.0.1:{}/{repo}", self.port)
    }

    /// The registry's copy of a blob.
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certs(d: &Path) {
    let run = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(d).output().unwrap();
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=berth test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// berth with its own HOME and XDG_CONFIG_HOME (so logins stay in the test).
fn berth(r: &Root, args: &[&str]) -> Output {
    let home = r.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    r.cmd(args)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .output()
        .unwrap()
}

fn ok(r: &Root, args: &[&str]) -> String {
    let o = berth(r, args);
    assert!(
        o.status.success(),
        "berth {args:?} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn skopeo(args: &[&str]) -> String {
    let o = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "skopeo {args:?} failed:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn inspect(r: &Root, name: &str, fmt: &str) -> String {
    ok(r, &["image", "inspect", "--format", fmt, name]).trim().to_string()
}

/// Every blob in the store is named by the sha256 of its content, and no
/// staging file survived.
fn assert_store_consistent(r: &Root) {
    let blobs = r.path().join("store/blobs/sha256");
    if let Ok(rd) = std::fs::read_dir(&blobs) {
        for e in rd.flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            let got = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&bytes));
            assert_eq!(got, e.file_name().to_string_lossy(), "blob {:?} is damaged", e.path());
        }
    }
}

fn blob_count(r: &Root) -> usize {
    std::fs::read_dir(r.path().join("store/blobs/sha256"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

fn layer_count(r: &Root) -> usize {
    std::fs::read_dir(r.path().join("store/layers"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

#[test]
fn push_is_read_by_skopeo_and_pulls_back_with_the_same_id() {
    let reg = Registry::plain();
    let a = Root::new();
    let name = reg.name("bb:1");
    let id = a.busybox(&name);
    let digestfile = a.path().join("digest");
    let out = ok(&a, &["push", &name, "--digestfile", digestfile.to_str().unwrap()]);
    let digest = std::fs::read_to_string(&digestfile).unwrap();
    assert!(
        out.contains(&format!("The push refers to repository [{}]", reg.name("bb"))),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    assert!(out.contains(&format!("1: digest: {digest} size: ")), "{out}");

    // skopeo reads what berth pushed.
    let v = json(&skopeo(&["inspect", "--tls-verify=false", &format!("docker://{name}")]));
    assert_eq!(v["Digest"], digest.as_str());
    assert_eq!(v["Architecture"], "amd64");
    let raw = json(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]));
    assert_eq!(raw["config"]["digest"], id.as_str(), "the config is pushed as it is");
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let oci = a.path().join("oci");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{name}"),
        &format!("oci:{}:x", oci.display()),
    ]);

    // A second push only asks (the compressed digest was remembered).
    let again = ok(&a, &["push", &name]);
    assert!(again.contains("Layer already exists"), "{again}");
    assert!(!again.contains(": Pushed"), "{again}");
    assert!(again.contains(&format!("1: digest: {digest}")), "{again}");
    // Docker records the pushed digest.
    assert!(inspect(&a, &name, "{{json .RepoDigests}}").contains(&digest));

    // A fresh store pulls the same image back and runs it.
    let b = Root::new();
    let out = ok(&b, &["pull", &name]);
    assert!(out.contains(": Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert_eq!(inspect(&b, &name, "{{.Id}}"), id);
    assert_eq!(
        inspect(&b, &name, "{{json .RepoDigests}}"),
        format!("[\"{}@{digest}\"]", reg.name("bb"))
    );
    let run = ok(&b, &["run", "--rm", &name, "echo", "pulled and running"]);
    assert_eq!(run.trim(), "pulled and running");
    // Pulling again changes nothing; by digest works too; -q prints the name.
    let again = ok(&b, &["pull", &name]);
    assert!(again.contains("Status: Image is up to date"), "{again}");
    let by_digest = format!("{}@{digest}", reg.name("bb"));
    assert_eq!(ok(&b, &["pull", "-q", &by_digest]).trim(), by_digest);
    assert_eq!(inspect(&b, &by_digest, "{{.Id}}"), id);
    assert_store_consistent(&b);

    // zstd on request: skopeo sees zstd, berth pulls the same image.
    let z = reg.name("bb:zstd");
    ok(&a, &["push", "--compression-format", "zstd", &name, &z]);
    let raw = json(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{z}"),
    ]));
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let c = Root::new();
    ok(&c, &["pull", &z]);
    assert_eq!(inspect(&c, &z, "{{.Id}}"), id);
}

#[test]
fn image_copied_in_by_skopeo_pulls_with_the_same_id() {
    let reg = Registry::plain();
    let a = Root::new();
    let id = a.busybox("bb:latest");
    let archive = a.path().join("bb.tar");
    ok(&a, &["save", "-o", archive.to_str().unwrap(), "bb:latest"]);
    for (tag, format) in [("v2s2", "v2s2"), ("oci", "oci")] {
        let dest = reg.name(&format!("sk:{tag}"));
        skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            "--format",
            format,
            &format!("docker-archive:{}", archive.display()),
            &format!("docker://{dest}"),
        ]);
        let sk = json(&skopeo(&["inspect", "--tls-verify=false", &format!("docker://{dest}")]));
        let b = Root::new();
        let out = ok(&b, &["pull", &dest]);
        assert!(out.contains("Pull complete"), "{out}");
        assert_eq!(
            inspect(&b, &dest, "{{.Id}}"),
            id,
            "{format}: same image ID as the source"
        );
        assert!(
            inspect(&b, &dest, "{{json .RepoDigests}}").contains(sk["Digest"].as_str().unwrap()),
            "{format}: RepoDigests has skopeo's digest"
        );
        assert_eq!(ok(&b, &["run", "--rm", &dest, "echo", "ok"]).trim(), "ok");
        assert_store_consistent(&b);
    }

    // -a pulls every tag of the repository.
    let b = Root::new();
    let out = ok(&b, &["pull", "-a", &reg.name("sk")]);
    assert!(out.contains("Pulling all tags"), "{out}");
    let names = ok(&b, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for t in ["oci", "v2s2"] {
        assert!(names.contains(&format!("{}:{t}", reg.name("sk"))), "{names}");
    }
    // A missing tag is a clear error.
    let o = berth(&b, &["pull", &reg.name("sk:nope")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
}

#[test]
fn auth_and_tls_with_a_custom_ca() {
    let reg = Registry::tls_htpasswd();
    let host = reg.host();
    let cert_dir = reg.ca_dir.clone().unwrap();
    let cert_dir = cert_dir.to_str().unwrap();
    let r = Root::new();
    let name = reg.name("private:1");
    r.busybox(&name);

    // Without login: refused, and told what to do.
    let o = berth(&r, &["push", &name]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("authentication required"), "{err}");
    assert!(err.contains(&format!("berth login {host}")), "{err}");

    // Wrong password: exit 125 and a clear message; nothing stored.
    let o = berth(&r, &["login", "-u", USER, "-p", "wrong", "--cert-dir", cert_dir, &host]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("incorrect username or password"), "{}", stderr(&o));
    let auth_file = r.path().join("home/.config/berth/auth.json");
    assert!(!auth_file.exists() || !std::fs::read_to_string(&auth_file).unwrap().contains(&host));

    // Verified TLS needs the CA: without it the certificate is refused.
    let o = berth(&r, &["login", "--tls-verify", "-u", USER, "-p", PASS, &host]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).to_lowercase().contains("certificate"), "{}", stderr(&o));

    // Right password, --password-stdin, verified against the test CA.
    let mut c = r.cmd(&[
        "login",
        "--tls-verify=true",
        "--cert-dir",
        cert_dir,
        "-u",
        USER,
        "--password-stdin",
        &host,
    ]);
    let home = r.path().join("home");
    c.env("HOME", &home).env("XDG_CONFIG_HOME", home.join(".config"));
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASS}\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Login Succeeded"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Now push works (verified TLS), and skopeo with the same CA reads it.
    let out = ok(&r, &["push", "--tls-verify", "--cert-dir", cert_dir, &name]);
    assert!(out.contains("1: digest: sha256:"), "{out}");
    let v = json(&skopeo(&[
        "inspect",
        "--cert-dir",
        cert_dir,
        "--creds",
        &format!("{USER}:{PASS}"),
        &format!("docker://{name}"),
    ]));
    assert!(v["Digest"].as_str().unwrap().starts_with("sha256:"));

    // Another store with the same login pulls it.
    let b = Root::new();
    std::fs::create_dir_all(b.path().join("home/.config/berth")).unwrap();
    std::fs::copy(&auth_file, b.path().join("home/.config/berth/auth.json")).unwrap();
    ok(&b, &["pull", "--cert-dir", cert_dir, &name]);

    // Docker's config.json is read too.
    let d = Root::new();
    std::fs::create_dir_all(d.path().join("home/.docker")).unwrap();
    std::fs::write(
        d.path().join("home/.docker/config.json"),
        std::fs::read_to_string(&auth_file).unwrap(),
    )
    .unwrap();
    ok(&d, &["pull", "-q", &name]);

    // Logout: refused again.
    let out = ok(&r, &["logout", &host]);
    assert!(out.contains("Removing login credentials"), "{out}");
    let o = berth(&r, &["push", &name]);
    assert!(stderr(&o).contains("authentication required"), "{}", stderr(&o));
}

#[test]
fn multi_platform_index_pushed_and_pulled_by_platform() {
    let reg = Registry::plain();
    let a = Root::new();
    let tar = busybox_tar();
    let tar = tar.to_str().unwrap();
    let amd = ok(&a, &["import", "--platform", "linux/amd64", tar, "multi:amd64"])
        .trim()
        .to_string();
    let arm = ok(&a, &["import", "--platform", "linux/arm64", tar, "multi:arm64"])
        .trim()
        .to_string();
    assert_ne!(amd, arm);
    let list = reg.name("multi:latest");
    ok(&a, &["manifest", "create", &list, "multi:amd64"]);
    ok(&a, &["manifest", "add", &list, "multi:arm64"]);
    ok(
        &a,
        &[
            "manifest",
            "annotate",
            "--annotation",
            "org.example.note=arm",
            &list,
            "multi:arm64",
        ],
    );
    let local = json(&ok(&a, &["manifest", "inspect", &list]));
    let archs: Vec<&str> = local["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    let o = berth(&a, &["manifest", "create", &list]);
    assert_eq!(o.status.code(), Some(1), "a second create is refused");

    let out = ok(&a, &["manifest", "push", &list]);
    assert!(out.contains("latest: digest: sha256:"), "{out}");
    let raw = json(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{list}"),
    ]));
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(raw["manifests"][1]["annotations"]["org.example.note"], "arm");
    // skopeo picks per platform from what berth pushed.
    let sk_arm = json(&skopeo(&[
        "inspect",
        "--override-arch",
        "arm64",
        "--tls-verify=false",
        &format!("docker://{list}"),
    ]));
    assert_eq!(sk_arm["Architecture"], "arm64");
    // Without the local list, inspect asks the registry.
    ok(&a, &["manifest", "rm", &list]);
    let remote = json(&ok(&a, &["manifest", "inspect", &list]));
    assert_eq!(remote["manifests"].as_array().unwrap().len(), 2);

    let b = Root::new();
    ok(&b, &["pull", "--platform", "linux/arm64", &list]);
    assert_eq!(inspect(&b, &list, "{{.Id}}"), arm);
    assert_eq!(inspect(&b, &list, "{{.Architecture}}"), "arm64");
    let c = Root::new();
    ok(&c, &["pull", &list]);
    assert_eq!(inspect(&c, &list, "{{.Id}}"), amd, "the host's platform by default");
    let o = berth(&c, &["pull", "--platform", "linux/s390x", &list]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no matching manifest for linux/s390x"),
        "{}",
        stderr(&o)
    );

    assert_eq!(berth(&a, &["manifest", "rm", &list]).status.code(), Some(1));
}

#[test]
fn a_tampered_layer_is_refused_and_leaves_no_trace() {
    let reg = Registry::plain();
    let a = Root::new();
    let name = reg.name("tamper:1");
    a.busybox(&name);
    ok(&a, &["push", &name]);
    let raw = json(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]));
    let layer = raw["layers"][0]["digest"].as_str().unwrap().to_string();
    let path = reg.blob_path(&layer);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();

    let b = Root::new();
    let o = berth(&b, &["pull", &name]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains(&layer), "the error names the blob: {err}");
    assert_eq!(ok(&b, &["images", "-q"]).trim(), "");
    assert_eq!(blob_count(&b), 0, "no blob of the image is kept");
    assert_eq!(layer_count(&b), 0, "no layer of the image is kept");

    // Truncated: the same.
    std::fs::write(&path, &bytes[..mid]).unwrap();
    let o = berth(&b, &["pull", &name]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("digest mismatch"), "{}", stderr(&o));
    assert_eq!(blob_count(&b), 0);
    assert_eq!(layer_count(&b), 0);
}

/// A tar with one file of `mb` MiB of incompressible bytes.
fn random_layer_tar(dir: &Path, mb: usize, seed: u64) -> PathBuf {
    let root = dir.join(format!("rootfs-{seed}"));
    std::fs::create_dir_all(&root).unwrap();
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut data = vec![0u8; mb << 20];
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(root.join("blob.bin"), &data).unwrap();
    let tar = dir.join(format!("layer-{seed}.tar"));
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["--numeric-owner", "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

fn dir_bytes(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            n += if m.is_dir() { dir_bytes(&e.path()) } else { m.len() };
        }
    }
    n
}

#[test]
fn a_pull_killed_midway_is_completed_by_the_next() {
    let reg = Registry::plain();
    let a = Root::new();
    let name = reg.name("big:1");
    let tar = random_layer_tar(a.path(), 48, 7);
    let id = ok(&a, &["import", tar.to_str().unwrap(), &name]).trim().to_string();
    ok(&a, &["push", &name]);

    let b = Root::new();
    let tmp = b.path().join("store/tmp");
    let mut killed_midway = 0;
    for round in 0..3 {
        let home = b.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut child = b
            .cmd(&["pull", &name])
            .env("HOME", &home)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill once some of the layer has arrived (or, late rounds, at once).
        let deadline = Instant::now() + Duration::from_secs(20);
        while round < 2 && dir_bytes(&tmp) < (4 << 20) && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_store_consistent(&b);
        let images = ok(&b, &["images", "-q", "--no-trunc"]);
        assert!(images.trim().is_empty() || images.trim() == id, "{images}");
        if images.trim().is_empty() {
            killed_midway += 1;
        }
    }
    let out = ok(&b, &["pull", &name]);
    assert!(out.contains(&name), "{out}");
    assert_eq!(inspect(&b, &name, "{{.Id}}"), id);
    assert_store_consistent(&b);
    // The staging left by the killed pulls is swept.
    let left = dir_bytes(&tmp);
    assert!(left < (1 << 20), "staging garbage left: {left} bytes");
    assert!(
        killed_midway > 0,
        "no pull was caught mid-way (the layer arrived too fast to interrupt)"
    );
    let size: u64 = inspect(&b, &name, "{{.Size}}").parse().unwrap();
    assert!(size >= 48 << 20, "{size}");
}

#[test]
#[ignore = "needs root"]
fn run_and_build_pull_missing_images_and_build_pushes() {
    common::need_root();
    let reg = Registry::plain();
    let src = Root::new();
    src.busybox("bb");
    let base = reg.name("base:1");
    ok(&src, &["tag", "bb", &base]);
    ok(&src, &["push", &base]);

    // run: a missing image is pulled (Docker's lines on stderr), then runs.
    let r = Root::new();
    let o = berth(&r, &["run", "--rm", &base, "echo", "ran"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ran");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Unable to find image") && err.contains("Pull complete"),
        "{err}"
    );
    // Removing a pulled image by its tag also drops its digest reference.
    let out = ok(&r, &["rmi", &base]);
    assert!(
        out.contains("Untagged: ") && out.contains("@sha256:") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    assert_eq!(ok(&r, &["images", "-a", "-q"]).trim(), "");
    // --pull never refuses a missing image.
    let o = berth(&r, &["run", "--rm", "--pull", "never", &reg.name("other:1"), "true"]);
    assert_eq!(o.status.code(), Some(125));

    // build: FROM a registry image pulls it; --push sends the result.
    let b = Root::new();
    let ctx = b.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nCMD [\"echo\", \"from the registry\"]\n"),
    )
    .unwrap();
    let built = reg.name("built:1");
    let out = ok(&b, &["build", "--push", "-t", &built, ctx.to_str().unwrap()]);
    assert!(
        out.contains("Pull complete") && out.contains("digest: sha256:"),
        "{out}"
    );
    let fresh = Root::new();
    let o = berth(&fresh, &["run", "--rm", &built]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "from the registry");

    // A built layer's blob is not written by the build (the layer is kept
    // as its directory); the push makes it, and a fresh store pulls the
    // same image.
    std::fs::write(ctx.join("note.txt"), "copied, pushed, pulled\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nCOPY note.txt /note.txt\nRUN cat /note.txt > /again\nCMD [\"cat\", \"/again\"]\n"),
    )
    .unwrap();
    let noted = reg.name("noted:1");
    ok(&b, &["build", "-t", &noted, ctx.to_str().unwrap()]);
    let id = inspect(&b, &noted, "{{.Id}}");
    let layers: Vec<String> = serde_json::from_str(&inspect(&b, &noted, "{{json .RootFS.Layers}}")).unwrap();
    let blob = |d: &str| {
        b.path()
            .join("store/blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    // (Only as root are build layers kept as directories.)
    if rustix::process::geteuid().is_root() {
        for d in &layers[layers.len() - 2..] {
            assert!(!blob(d).exists(), "a built layer's blob {d} was written by the build");
        }
    }
    let out = ok(&b, &["push", &noted]);
    assert!(out.contains(": Pushed"), "{out}");
    for d in &layers[layers.len() - 2..] {
        assert!(blob(d).exists(), "the push made the blob {d}");
    }
    assert_store_consistent(&b);
    let fresh = Root::new();
    ok(&fresh, &["pull", &noted]);
    assert_eq!(inspect(&fresh, &noted, "{{.Id}}"), id);
    let o = berth(&fresh, &["run", "--rm", &noted]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "copied, pushed, pulled");
    assert_store_consistent(&fresh);
}

/// A two-stage project: the builder stage makes a file the final stage copies.
fn cache_project(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM bb AS builder\nRUN echo built > /artifact\n\
         FROM bb\nENV GREETING=hello\nCOPY --from=builder /artifact /artifact\nCOPY note.txt /note.txt\n\
         RUN cat /artifact /note.txt > /both\nCMD [\"cat\", \"/both\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("note.txt"), "a note\n").unwrap();
    dir.to_str().unwrap().to_string()
}

fn runs(out: &str) -> usize {
    out.matches("Running in").count()
}

#[test]
#[ignore = "needs root"]
fn build_cache_in_a_registry_serves_a_fresh_store() {
    common::need_root();
    let reg = Registry::plain();
    let a = Root::new();
    a.busybox("bb");
    let base_tar = a.path().join("bb.tar");
    ok(&a, &["save", "-o", base_tar.to_str().unwrap(), "bb"]);
    let ctx = cache_project(&a.path().join("ctx"));
    let cache_max = reg.name("app:cache-max");
    let cache_min = reg.name("app:cache-min");

    // mode=max: every step of both stages.
    let out = ok(
        &a,
        &[
            "build",
            "--cache-to",
            &format!("type=registry,ref={cache_max},mode=max"),
            "-t",
            "app",
            &ctx,
        ],
    );
    assert_eq!(runs(&out), 2, "{out}");
    assert!(out.contains("Exporting the build cache (6 step images)"), "{out}");
    let id = inspect(&a, "app", "{{.Id}}");
    // mode=min (the default): the final image's own steps; served from A's
    // local cache, which is exported as well.
    let out = ok(
        &a,
        &[
            "build",
            "--cache-to",
            &format!("type=registry,ref={cache_min}"),
            "-t",
            "app",
            &ctx,
        ],
    );
    assert_eq!(runs(&out), 0, "{out}");
    assert!(out.contains("Exporting the build cache (5 step images)"), "{out}");

    // What is in the registry is an OCI index of ordinary image manifests.
    let raw = json(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{cache_max}"),
    ]));
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(raw["artifactType"], "application/vnd.berth.build-cache.v1+json");
    let entries = raw["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 6);
    assert!(entries
        .iter()
        .any(|e| e["annotations"]["io.berth.build-cache.image"] == id.as_str()));

    // A fresh store with only the base image: nothing runs, same image.
    let b = Root::new();
    ok(&b, &["load", "-i", base_tar.to_str().unwrap()]);
    let out = ok(
        &b,
        &[
            "build",
            "--cache-from",
            &format!("type=registry,ref={cache_max}"),
            "-t",
            "app",
            &ctx,
        ],
    );
    assert_eq!(runs(&out), 0, "{out}");
    assert_eq!(out.matches(" ---> Using cache").count(), 6, "{out}");
    assert_eq!(inspect(&b, "app", "{{.Id}}"), id);
    assert_eq!(ok(&b, &["run", "--rm", "app"]), "built\na note\n");
    assert_store_consistent(&b);

    // min: the builder stage was not exported, so it runs again; a COPY
    // --from step's key names the source stage's image, which is new, so
    // the final stage is served only up to that step.
    let c = Root::new();
    ok(&c, &["load", "-i", base_tar.to_str().unwrap()]);
    let out = ok(
        &c,
        &[
            "build",
            "--cache-from",
            &format!("type=registry,ref={cache_min}"),
            "-t",
            "app",
            &ctx,
        ],
    );
    assert_eq!(runs(&out), 2, "{out}");
    assert_eq!(out.matches(" ---> Using cache").count(), 1, "{out}");

    // A changed file: the steps before it still come from the cache.
    std::fs::write(Path::new(&ctx).join("note.txt"), "another note\n").unwrap();
    let d = Root::new();
    ok(&d, &["load", "-i", base_tar.to_str().unwrap()]);
    let out = ok(
        &d,
        &[
            "build",
            "--cache-from",
            &format!("type=registry,ref={cache_max}"),
            "-t",
            "app",
            &ctx,
        ],
    );
    assert_eq!(runs(&out), 1, "{out}");
    assert_eq!(out.matches(" ---> Using cache").count(), 3, "{out}");
}

#[test]
#[ignore = "needs root"]
fn build_cache_errors_are_clear() {
    common::need_root();
    let reg = Registry::plain();
    let a = Root::new();
    a.busybox("bb");
    let ctx = cache_project(&a.path().join("ctx"));
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("127.0.0.1:{dead}/app:cache");

    // cache-to: an error before anything is built.
    for (spec, want) in [
        (format!("type=registry,ref={dead}"), "cannot reach registry"),
        ("type=registry,ref=Bad/Name".to_string(), "not a valid image reference"),
        ("type=registry".to_string(), "needs ref="),
        (
            "type=registry,ref=example.com/app:cache".to_string(),
            "is not allowed here",
        ),
        ("type=s3,ref=x".to_string(), "type=s3 is not supported"),
    ] {
        let o = berth(&a, &["build", "--cache-to", &spec, "-t", "app", &ctx]);
        assert_eq!(o.status.code(), Some(1), "{spec}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{spec}: {}", stderr(&o));
        assert!(!stdout(&o).contains("Running in"), "{spec}: built anyway");
    }

    // cache-from: a warning, and the build goes on without it.
    let image = reg.name("notacache:1");
    ok(&a, &["tag", "bb", &image]);
    ok(&a, &["push", &image]);
    for (spec, want) in [
        (format!("type=registry,ref={dead}"), "cannot reach registry"),
        (format!("type=registry,ref={}", reg.name("app:nosuch")), "not found"),
        (format!("type=registry,ref={image}"), "is an image, not a build cache"),
        (
            "type=registry,ref=example.com/app:cache".to_string(),
            "is not allowed here",
        ),
    ] {
        let o = berth(&a, &["build", "--cache-from", &spec, "-t", "app", &ctx]);
        assert!(o.status.success(), "{spec}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("[Warning] --cache-from") && err.contains(want),
            "{spec}: {err}"
        );
        assert!(err.contains("building without it"), "{err}");
    }
}

#[test]
#[ignore = "needs root"]
fn build_cache_respects_registry_auth() {
    common::need_root();
    let reg = Registry::tls_htpasswd();
    let host = reg.host();
    let a = Root::new();
    a.busybox("bb");
    let base_tar = a.path().join("bb.tar");
    ok(&a, &["save", "-o", base_tar.to_str().unwrap(), "bb"]);
    let ctx = cache_project(&a.path().join("ctx"));
    let cache = reg.name("private/app:cache");
    let spec = format!("type=registry,ref={cache},mode=max");

    let o = berth(&a, &["build", "--cache-to", &spec, "-t", "app", &ctx]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("exporting the build cache") && err.contains(&format!("berth login {host}")),
        "{err}"
    );

    ok(&a, &["login", "-u", USER, "-p", PASS, &host]);
    ok(&a, &["build", "--cache-to", &spec, "-t", "app", &ctx]);
    let id = inspect(&a, "app", "{{.Id}}");

    // Another store of the same user (same login) uses it; without the
    // login the cache is skipped with a warning that says why.
    let b = Root::new();
    ok(&b, &["load", "-i", base_tar.to_str().unwrap()]);
    let o = berth(&b, &["build", "--cache-from", &spec, "-t", "app", &ctx]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("authentication required"), "{}", stderr(&o));
    assert_eq!(runs(&stdout(&o)), 2);
    let c = Root::new();
    ok(&c, &["load", "-i", base_tar.to_str().unwrap()]);
    std::fs::create_dir_all(c.path().join("home/.config/berth")).unwrap();
    std::fs::copy(
        a.path().join("home/.config/berth/auth.json"),
        c.path().join("home/.config/berth/auth.json"),
    )
    .unwrap();
    let spec = format!("type=registry,ref={cache}");
    let out = ok(&c, &["build", "--cache-from", &spec, "-t", "app", &ctx]);
    assert_eq!(runs(&out), 0, "{out}");
    assert_eq!(inspect(&c, "app", "{{.Id}}"), id);
}

const TOKEN_SERVICE: &str = "berth-test-registry";
const TOKEN_ISSUER: &str = "berth-test-issuer";

/// One request to the token server.
#[derive(Clone, Debug)]
struct TokenRequest {
    account: Option<String>,
    scopes: Vec<String>,
    /// The password was right (or none was given).
    accepted: bool,
    /// The token issued had expired already.
    expired: bool,
}

/// A token server as Docker's token auth describes it, on 127.0.0.1: Basic
/// credentials in, a JWT (RS256, signed by `openssl dgst`, its certificate
/// in the `x5c` header — what distribution verifies against its
/// rootcertbundle) out. Anonymous requests get a token granting nothing,
/// as Docker Hub does for private repositories.
struct TokenServer {
    port: u16,
    dir: tempfile::TempDir,
    log: std::sync::Arc<std::sync::Mutex<Vec<TokenRequest>>>,
    /// The next token issued is already expired (but says it lasts).
    expire_next: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn b64(data: &[u8], url: bool) -> String {
    let table: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(table[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

fn b64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | (val(*c) as u32) << (18 - 6 * i));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

impl TokenServer {
    fn start() -> TokenServer {
        let dir = tempfile::Builder::new()
            .prefix("berth-tokens-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let o = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
            ])
            .args(["-days", "2", "-subj", "/CN=berth test token issuer"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let der = Command::new("openssl")
            .args(["x509", "-in", "cert.pem", "-outform", "der"])
            .current_dir(dir.path())
            .output()
            .unwrap()
            .stdout;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let expire_next = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log2, expire2, key) = (log.clone(), expire_next.clone(), dir.path().join("key.pem"));
        let x5c = b64(&der, false);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = serve_token(&mut conn, &key, &x5c, &log2, &expire2);
            }
        });
        TokenServer {
            port,
            dir,
            log,
            expire_next,
        }
    }

    fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The requests so far, and forget them.
    fn take(&self) -> Vec<TokenRequest> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn serve_token(
    conn: &mut TcpStream,
    key: &Path,
    x5c: &str,
    log: &std::sync::Mutex<Vec<TokenRequest>>,
    expire_next: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut scopes = Vec::new();
    let mut service = String::new();
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "scope" => scopes.push(percent_decode(v)),
            "service" => service = percent_decode(v),
            _ => {}
        }
    }
    let basic = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Authorization: Basic ")
                .or_else(|| l.strip_prefix("authorization: Basic "))
        })
        .map(|b| String::from_utf8(b64_decode(b.trim())).unwrap());
    let (account, accepted) = match &basic {
        Some(up) => {
            let (u, p) = up.split_once(':').unwrap();
            (Some(u.to_string()), u == USER && p == PASS)
        }
        None => (None, true),
    };
    let expired = accepted && expire_next.swap(false, std::sync::atomic::Ordering::SeqCst);
    log.lock().unwrap().push(TokenRequest {
        account: account.clone(),
        scopes: scopes.clone(),
        accepted,
        expired,
    });
    if !accepted || service != TOKEN_SERVICE {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}"#;
        write!(
            conn,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Logged in: what was asked for; anonymous: nothing.
    let access: Vec<serde_json::Value> = if account.is_some() {
        scopes
            .iter()
            .filter_map(|s| {
                let mut p = s.splitn(3, ':');
                let (t, n, a) = (p.next()?, p.next()?, p.next()?);
                Some(serde_json::json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
            })
            .collect()
    } else {
        Vec::new()
    };
    // Expired an hour ago: past distribution's 60 s leeway.
    let exp = if expired { now - 3600 } else { now + 600 };
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": account.clone().unwrap_or_default(), "aud": TOKEN_SERVICE,
        "exp": exp, "nbf": exp - 7200, "iat": exp - 7200, "jti": format!("t{}", now),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes(), true),
        b64(claims.to_string().as_bytes(), true)
    );
    let mut sign = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    sign.stdin.take().unwrap().write_all(signing_input.as_bytes())?;
    let sig = sign.wait_with_output()?.stdout;
    let jwt = format!("{signing_input}.{}", b64(&sig, true));
    // The client is told the token lasts, whether or not it does.
    let body = serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300}).to_string();
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    Ok(())
}

/// Each scope asked for at most once: tokens are cached for the run.
fn assert_one_token_per_scope(reqs: &[TokenRequest], what: &str) {
    let mut seen = std::collections::BTreeSet::new();
    for r in reqs {
        let key = r.scopes.join(" ");
        assert!(
            seen.insert(key.clone()),
            "{what}: a second token for {key:?}: {reqs:#?}"
        );
    }
}

#[test]
#[ignore = "needs root"]
fn bearer_tokens_from_a_token_server() {
    common::need_root();
    let tokens = TokenServer::start();
    let reg = Registry::token(&tokens.realm(), &tokens.cert());
    let host = reg.host();
    let a = Root::new();
    a.busybox("bb");
    // Three layers, so the push sends requests side by side.
    let ctx = a.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM bb\nRUN echo 1 > /1\nRUN echo 2 > /2\n").unwrap();
    let name = reg.name("private/app:1");
    ok(&a, &["build", "-q", "-t", &name, ctx.to_str().unwrap()]);
    let id = inspect(&a, &name, "{{.Id}}");

    // Anonymous: the token grants nothing; refused, told to log in.
    let o = berth(&a, &["push", &name]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("authentication required for {host}")), "{err}");
    assert!(err.contains(&format!("berth login {host}")), "{err}");
    let reqs = tokens.take();
    assert!(
        !reqs.is_empty() && reqs.iter().all(|r| r.account.is_none()),
        "{reqs:#?}"
    );

    // A wrong password is refused by the token server.
    let o = berth(&a, &["login", "-u", USER, "-p", "wrong", &host]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("incorrect username or password"), "{}", stderr(&o));
    assert!(tokens.take().iter().all(|r| !r.accepted));

    ok(&a, &["login", "-u", USER, "-p", PASS, &host]);
    let reqs = tokens.take();
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    assert!(reqs[0].accepted && reqs[0].account.as_deref() == Some(USER));

    // Push: every request authorised, one token per scope for the run.
    let out = ok(&a, &["push", &name]);
    assert_eq!(out.matches(": Pushed").count(), 3, "{out}");
    let reqs = tokens.take();
    assert_one_token_per_scope(&reqs, "push");
    assert!(
        reqs.iter().any(|r| r.scopes == ["repository:private/app:pull,push"]),
        "{reqs:#?}"
    );

    // Pull into a fresh store with the same login: one token.
    let auth = a.path().join("home/.config/berth/auth.json");
    let fresh = |r: &Root| {
        std::fs::create_dir_all(r.path().join("home/.config/berth")).unwrap();
        std::fs::copy(&auth, r.path().join("home/.config/berth/auth.json")).unwrap();
    };
    let b = Root::new();
    fresh(&b);
    ok(&b, &["pull", &name]);
    assert_eq!(inspect(&b, &name, "{{.Id}}"), id);
    let reqs = tokens.take();
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    assert_eq!(reqs[0].scopes, ["repository:private/app:pull"]);

    // A token the registry finds expired is replaced, and the pull goes on.
    tokens.expire_next.store(true, std::sync::atomic::Ordering::SeqCst);
    let c = Root::new();
    fresh(&c);
    ok(&c, &["pull", &name]);
    assert_eq!(inspect(&c, &name, "{{.Id}}"), id);
    let reqs = tokens.take();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert!(reqs[0].expired && !reqs[1].expired, "{reqs:#?}");

    // Anonymous pull of the private repository: refused, told what to do.
    let d = Root::new();
    let o = berth(&d, &["pull", &name]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(&format!("authentication required for {host}")), "{err}");
    assert!(err.contains(&format!("berth login {host}")), "{err}");
    assert_eq!(ok(&d, &["images", "-q"]).trim(), "");
}

/// One request through the [`Proxy`].
#[derive(Clone, Debug)]
struct Proxied {
    path: String,
    range: Option<String>,
    status: u16,
    /// Body bytes passed on to the client.
    body: u64,
}

/// An HTTP proxy in front of a registry (berth talks to it as if it were
/// the registry): logs each request, can hold a response after some body
/// bytes (a download caught mid-way, for as long as the test wants), and
/// can drop `Range` headers (a registry that cannot resume).
struct Proxy {
    port: u16,
    log: std::sync::Arc<std::sync::Mutex<Vec<Proxied>>>,
    /// Hold every response after this many body bytes (0: never).
    stall_after: std::sync::Arc<std::sync::atomic::AtomicU64>,
    strip_range: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Connections being served (a killed client's is logged only once
    /// the proxy notices it is gone).
    busy: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        use std::sync::atomic::{AtomicBool, AtomicU64};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = Proxy {
            port,
            log: Arc::new(Mutex::new(Vec::new())),
            stall_after: Arc::new(AtomicU64::new(0)),
            strip_range: Arc::new(AtomicBool::new(false)),
            busy: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        };
        let (log, stall, strip, busy) = (
            p.log.clone(),
            p.stall_after.clone(),
            p.strip_range.clone(),
            p.busy.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (log, stall, strip, busy) = (log.clone(), stall.clone(), strip.clone(), busy.clone());
                busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = proxy_conn(conn, upstream, &log, &stall, &strip);
                    busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        p
    }

    fn name(&self, repo: &str) -> String {
        format!("127.0.0.1:{}/{repo}", self.port)
    }

    /// The requests logged so far, once every connection is done.
    fn take(&self) -> Vec<Proxied> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.busy.load(std::sync::atomic::Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn read_head(r: &mut impl std::io::Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if r.read(&mut byte)? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    Ok(Some(head))
}

fn proxy_conn(
    mut client: TcpStream,
    upstream: u16,
    log: &std::sync::Mutex<Vec<Proxied>>,
    stall_after: &std::sync::atomic::AtomicU64,
    strip_range: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    // berth tries HTTPS first: a TLS hello is refused at once, as a plain
    // HTTP registry does.
    let mut first = [0u8; 1];
    if client.peek(&mut first)? == 0 || first[0] == 0x16 {
        return Ok(());
    }
    // One request per connection: the registry is asked to close after it,
    // and so is the client.
    let Some(head) = read_head(&mut client)? else {
        return Ok(());
    };
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        let lower = line.to_ascii_lowercase();
        if line.is_empty() || lower.starts_with("connection:") {
            continue;
        }
        if lower.starts_with("range:") {
            range = Some(line[6..].trim().to_string());
            if strip_range.load(Ordering::SeqCst) {
                continue;
            }
        }
        out.push_str(line);
        out.push_str("\r\n");
        if i == 0 {
            out.push_str("Connection: close\r\n");
        }
    }
    out.push_str("\r\n");
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.write_all(out.as_bytes())?;
    let Some(resp_head) = read_head(&mut up)? else {
        return Ok(());
    };
    let resp_text = String::from_utf8_lossy(&resp_head).to_string();
    let status: u16 = resp_text.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0);
    client.write_all(&resp_head)?;
    let stall = stall_after.load(Ordering::SeqCst);
    let mut body = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    let result = loop {
        let want = if stall > 0 {
            buf.len().min((stall - body) as usize)
        } else {
            buf.len()
        };
        if want == 0 {
            // Caught mid-way: hold the connection until the client goes.
            let mut probe = [0u8; 1];
            let _ = client.read(&mut probe);
            break Ok(());
        }
        let n = match up.read(&mut buf[..want]) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        if let Err(e) = client.write_all(&buf[..n]) {
            break Err(e);
        }
        body += n as u64;
    };
    log.lock().unwrap().push(Proxied {
        path,
        range,
        status,
        body,
    });
    result
}

/// Start a pull through `proxy` (which holds the big layer part-way), wait
/// until its partial download holds some of it, kill -9 it; returns the
/// partial's size.
fn pull_killed_midway(r: &Root, name: &str, partial: &Path) -> u64 {
    let home = r.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut child = r
        .cmd(&["pull", name])
        .env("HOME", &home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The proxy holds the layer after 8 MiB: the partial grows to a few MiB
    // and stays there until the kill (the deadline only guards a hang).
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0) < (4 << 20) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended before it was caught"
        );
        assert!(Instant::now() < deadline, "the partial download never grew");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::metadata(partial).unwrap().len()
}

#[test]
fn an_interrupted_download_resumes_where_it_stopped() {
    use std::sync::atomic::Ordering;
    let reg = Registry::plain();
    let a = Root::new();
    let tar = random_layer_tar(a.path(), 24, 11);
    let id = ok(&a, &["import", tar.to_str().unwrap(), &reg.name("big:1")])
        .trim()
        .to_string();
    ok(&a, &["push", &reg.name("big:1")]);
    let raw = json(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}", reg.name("big:1")),
    ]));
    let layer = raw["layers"][0]["digest"].as_str().unwrap().to_string();
    let layer_size = raw["layers"][0]["size"].as_u64().unwrap();
    assert!(layer_size > 16 << 20, "{layer_size}");
    let proxy = Proxy::start(reg.port);
    let name = proxy.name("big:1");

    // Killed mid-layer: the bytes so far stay, outside the swept staging.
    let b = Root::new();
    let partial = b
        .path()
        .join("store/downloads")
        .join(format!("{}.partial", layer.trim_start_matches("sha256:")));
    proxy.stall_after.store(8 << 20, Ordering::SeqCst);
    let have = pull_killed_midway(&b, &name, &partial);
    assert!(have >= 4 << 20 && have < layer_size, "{have}");
    assert_store_consistent(&b);
    assert_eq!(ok(&b, &["images", "-q"]).trim(), "");

    // The next pull asks for the rest only, and gets the right image.
    proxy.stall_after.store(0, Ordering::SeqCst);
    proxy.take();
    let out = ok(&b, &["pull", &name]);
    assert!(out.contains("Resuming download at"), "{out}");
    let reqs = proxy.take();
    let blob: Vec<&Proxied> = reqs.iter().filter(|r| r.path.ends_with(&layer)).collect();
    assert_eq!(blob.len(), 1, "{reqs:#?}");
    assert_eq!(
        blob[0].range.as_deref(),
        Some(format!("bytes={have}-").as_str()),
        "{reqs:#?}"
    );
    assert_eq!(blob[0].status, 206);
    assert_eq!(blob[0].body, layer_size - have, "only the rest was sent");
    assert_eq!(inspect(&b, &name, "{{.Id}}"), id);
    assert!(!partial.exists(), "the partial became the blob");
    assert_store_consistent(&b);
    assert_eq!(std::fs::read_dir(b.path().join("store/downloads")).unwrap().count(), 0);

    // A registry that ignores ranges: the whole blob again, still right.
    let c = Root::new();
    let partial = c.path().join("store/downloads").join(partial.file_name().unwrap());
    proxy.stall_after.store(8 << 20, Ordering::SeqCst);
    pull_killed_midway(&c, &name, &partial);
    proxy.stall_after.store(0, Ordering::SeqCst);
    proxy.strip_range.store(true, Ordering::SeqCst);
    proxy.take();
    ok(&c, &["pull", &name]);
    let reqs = proxy.take();
    let blob: Vec<&Proxied> = reqs.iter().filter(|r| r.path.ends_with(&layer)).collect();
    assert_eq!(blob.len(), 1, "{reqs:#?}");
    assert!(blob[0].range.is_some() && blob[0].status == 200, "{reqs:#?}");
    assert_eq!(blob[0].body, layer_size);
    assert_eq!(inspect(&c, &name, "{{.Id}}"), id);
    assert_store_consistent(&c);

    // A partial that is not a prefix of the blob (damaged): the digest
    // check catches it and the layer is downloaded again from the start.
    let d = Root::new();
    let partial = d.path().join("store/downloads").join(partial.file_name().unwrap());
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::fs::write(&partial, vec![0x5a; 3 << 20]).unwrap();
    proxy.strip_range.store(false, Ordering::SeqCst);
    let out = ok(&d, &["pull", &name]);
    assert!(out.contains("downloading it again"), "{out}");
    assert_eq!(inspect(&d, &name, "{{.Id}}"), id);
    assert_store_consistent(&d);
}

#[test]
#[ignore = "needs root"]
fn docker_credential_helpers_are_asked() {
    common::need_root();
    use std::os::unix::fs::PermissionsExt;
    let reg = Registry::tls_htpasswd();
    let host = reg.host();
    let r = Root::new();
    let name = reg.name("helped/bb:1");
    r.busybox(&name);
    // A helper that knows one server, logs what it is asked, and says
    // "not found" (as the protocol does) for any other.
    let bin = r.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = r.path().join("asked");
    let helper = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\necho \"$server\" >> {asked}\n\
         if [ \"$server\" = \"{host}\" ]; then\n\
           printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASS}\"}}' \"$server\"\n\
         else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        asked = asked.display()
    );
    for n in ["docker-credential-berthtest", "docker-credential-empty"] {
        let p = bin.join(n);
        let text = if n.ends_with("empty") {
            "#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n".to_string()
        } else {
            helper.clone()
        };
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let home = r.path().join("home");
    let docker_config = |v: serde_json::Value| {
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::write(home.join(".docker/config.json"), v.to_string()).unwrap();
    };
    let run_in = |r: &Root, args: &[&str]| {
        r.cmd(args)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .output()
            .unwrap()
    };
    let run = |args: &[&str]| run_in(&r, args);

    // credHelpers for this registry: push with no login at all.
    docker_config(serde_json::json!({"credHelpers": {host.clone(): "berthtest"}}));
    let o = run(&["push", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&asked).unwrap().trim(), host);
    assert!(!home.join(".config/berth/auth.json").exists(), "nothing was written");

    // credsStore for every registry: a fresh store pulls it.
    docker_config(serde_json::json!({"credsStore": "berthtest", "auths": {host.clone(): {}}}));
    let r2 = Root::new();
    let o = run_in(&r2, &["pull", &name]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A helper with nothing stored: anonymous, and told to log in.
    docker_config(serde_json::json!({"credHelpers": {host.clone(): "empty"}}));
    let o = run(&["push", &name]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("berth login {host}")), "{}", stderr(&o));

    // The registry's helper missing: a clear error that names it.
    docker_config(serde_json::json!({"credHelpers": {host.clone(): "nosuch"}}));
    let o = run(&["push", &name]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("docker-credential-nosuch is not on PATH") && err.contains("credHelpers in"),
        "{err}"
    );

    // berth's own login still comes first.
    docker_config(serde_json::json!({"credHelpers": {host.clone(): "nosuch"}}));
    let mut login = r.cmd(&["login", "-u", USER, "--password-stdin", &host]);
    login
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .stdin(Stdio::piped());
    let mut child = login.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(PASS.as_bytes()).unwrap();
    }
    assert!(child.wait().unwrap().success());
    let o = run(&["push", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn login_and_logout_go_through_the_credential_store_berths_auth_file_names() {
    use std::os::unix::fs::PermissionsExt;
    let reg = Registry::tls_htpasswd();
    let host = reg.host();
    let r = Root::new();
    let name = reg.name("stored/bb:1");
    r.busybox(&name);
    // A credential store kept in a file: store / get / erase, as the
    // docker-credential-* protocol has them.
    let bin = r.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let vault = r.path().join("vault");
    let helper = format!(
        "#!/bin/sh\nv={vault}\ncase \"$1\" in\n\
         store) cat > \"$v\" ;;\n\
         get) read s; if [ -s \"$v\" ] && grep -q \"$s\" \"$v\"; then cat \"$v\"; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n\
         erase) read s; rm -f \"$v\" ;;\n\
         *) exit 2 ;;\nesac\n",
        vault = vault.display()
    );
    let p = bin.join("docker-credential-vault");
    std::fs::write(&p, helper).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = r.path().join("home");
    let auth = home.join(".config/berth/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    std::fs::write(&auth, r#"{"credsStore": "vault"}"#).unwrap();
    let run = |args: &[&str], input: Option<&str>| {
        let mut c = r.cmd(args);
        c.env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut i = child.stdin.take().unwrap();
            if let Some(t) = input {
                i.write_all(t.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    };
    let o = run(&["login", "-u", USER, "--password-stdin", &host], Some(PASS));
    assert!(o.status.success(), "{}", stderr(&o));
    // The secret went to the store, not into the file.
    let kept = std::fs::read_to_string(&vault).unwrap();
    assert!(kept.contains(PASS) && kept.contains(&host), "{kept}");
    let file = std::fs::read_to_string(&auth).unwrap();
    let v: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert!(
        v["auths"].get(&host).and_then(|a| a.get("auth")).is_none(),
        "no plain login in the file: {file}"
    );
    assert!(!file.contains(PASS), "{file}");
    let o = run(&["push", &name], None);
    assert!(o.status.success(), "{}", stderr(&o));
    // logout erases it from the store: pushing is refused again.
    let o = run(&["logout", &host], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!vault.exists(), "the store still has the login");
    let o = run(&["push", &name], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("berth login {host}")), "{}", stderr(&o));
}
