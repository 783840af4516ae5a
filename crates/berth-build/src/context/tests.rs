//! Tests of the build context against real directories.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::pattern::go_match;
use super::*;

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn rels(srcs: &[Source]) -> Vec<String> {
    srcs.iter().map(|s| s.rel.display().to_string()).collect()
}

/// A context directory with a Dockerfile at its root.
fn ctx_dir(ignore: Option<&str>) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "Dockerfile", "FROM scratch\n");
    if let Some(i) = ignore {
        write(d.path(), ".dockerignore", i);
    }
    d
}

fn ctx(d: &tempfile::TempDir) -> BuildContext {
    BuildContext::from_dir(d.path(), &d.path().join("Dockerfile")).unwrap()
}

/// Every file below `root`, relative, sorted (directories end in `/`).
fn tree(root: &Path) -> Vec<String> {
    fn go(root: &Path, rel: &Path, out: &mut Vec<String>) {
        let mut v: Vec<_> = fs::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        for n in v {
            let r = rel.join(&n);
            let m = fs::symlink_metadata(root.join(&r)).unwrap();
            if m.is_dir() {
                out.push(format!("{}/", r.display()));
                go(root, &r, out);
            } else {
                out.push(r.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    go(root, Path::new(""), &mut out);
    out
}

fn copy(ctx: &BuildContext, src: &[&str], dest_root: &Path, dest: &str) -> CopyStats {
    let sources = ctx.resolve(&s(src), &[]).unwrap();
    copy_sources(&ctx.root, &sources, dest_root, dest, "/", &CopyOptions::default()).unwrap()
}

// ---------------------------------------------------------------- patterns

#[test]
fn go_filepath_match_semantics() {
    assert!(go_match("*.txt", "a.txt").unwrap());
    assert!(!go_match("*.txt", "d/a.txt").unwrap(), "* must not cross /");
    assert!(go_match("*/*.txt", "d/a.txt").unwrap());
    assert!(go_match("hom?.txt", "home.txt").unwrap());
    assert!(!go_match("hom?.txt", "hom.txt").unwrap());
    assert!(go_match("[a-c]x", "bx").unwrap());
    assert!(!go_match("[a-c]x", "dx").unwrap());
    assert!(go_match("[^a-c]x", "dx").unwrap());
    assert!(!go_match("[^a-c]x", "ax").unwrap());
    assert!(go_match("\\*x", "*x").unwrap());
    assert!(!go_match("\\*x", "ax").unwrap());
    assert!(go_match("a*b*c", "aXXbYYc").unwrap());
    assert!(!go_match("a*b*c", "aXXbYY").unwrap());
    assert!(go_match("é?", "éü").unwrap(), "? is one character, not one byte");
    for bad in ["[", "a\\", "[]", "[a-]", "x[^]"] {
        assert!(go_match(bad, "x").is_err(), "{bad} should be a bad pattern");
    }
}

// ------------------------------------------------------- context creation

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let d = ctx_dir(Some("root-ignored.txt\n"));
    write(d.path(), "root-ignored.txt", "1");
    write(d.path(), "df-ignored.txt", "2");
    let other = tempfile::tempdir().unwrap();
    let df = other.path().join("app.Dockerfile");
    write(other.path(), "app.Dockerfile", "FROM scratch\n");
    write(other.path(), "app.Dockerfile.dockerignore", "df-ignored.txt\n");
    let c = BuildContext::from_dir(d.path(), &df).unwrap();
    assert!(c.is_ignored("df-ignored.txt"));
    assert!(!c.is_ignored("root-ignored.txt"));
    assert_eq!(
        c.ignore_file.as_deref(),
        Some(other.path().join("app.Dockerfile.dockerignore").as_path())
    );
    // Without the specific file the root one is used.
    let df2 = other.path().join("Other.Dockerfile");
    let c2 = BuildContext::from_dir(d.path(), &df2).unwrap();
    assert!(c2.is_ignored("root-ignored.txt"));
    assert!(!c2.is_ignored("df-ignored.txt"));
}

#[test]
fn from_dir_refuses_a_file_root() {
    let d = ctx_dir(None);
    let e = BuildContext::from_dir(&d.path().join("Dockerfile"), Path::new("Dockerfile")).unwrap_err();
    assert!(matches!(e, ContextError::Invalid(_)), "{e}");
}

#[test]
fn from_tar_extracts_and_applies_ignore() {
    let src = ctx_dir(Some("secret\n"));
    write(src.path(), "app/main.rs", "fn main() {}");
    write(src.path(), "secret", "pw");
    let mut tar = Vec::new();
    berth_archive::write_layer(src.path(), &mut tar, &berth_archive::DiffOptions::default()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let c = BuildContext::from_tar(&gz[..], staging.path(), "Dockerfile").unwrap();
    assert_eq!(
        fs::read_to_string(staging.path().join("app/main.rs")).unwrap(),
        "fn main() {}"
    );
    assert!(c.is_ignored("secret"));
    assert!(matches!(
        c.resolve(&s(&["secret"]), &[]),
        Err(ContextError::NotFound { .. })
    ));
    assert_eq!(rels(&c.resolve(&s(&["app"]), &[]).unwrap()), ["app"]);
}

// -------------------------------------------------------------- resolving

#[test]
fn not_found_has_dockers_message() {
    let d = ctx_dir(None);
    let e = ctx(&d).resolve(&s(&["nosuch.txt"]), &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch.txt: file does not exist"
    );
    let e = ctx(&d).resolve(&s(&["nosuch*"]), &[]).unwrap_err();
    assert!(
        matches!(e, ContextError::NotFound { ref path } if path == "nosuch*"),
        "{e}"
    );
}

#[test]
fn wildcards_expand_sorted_and_per_segment() {
    let d = ctx_dir(None);
    for f in [
        "b.txt",
        "a.txt",
        "c.md",
        "home.txt",
        "hom.txt",
        "src/x/a.txt",
        "src/y/a.txt",
        "src/y/b.txt",
    ] {
        write(d.path(), f, f);
    }
    let c = ctx(&d);
    let r = c.resolve(&s(&["*.txt"]), &[]).unwrap();
    assert_eq!(rels(&r), ["a.txt", "b.txt", "hom.txt", "home.txt"]);
    assert!(r.iter().all(|x| x.wildcard && !x.is_dir));
    assert_eq!(rels(&c.resolve(&s(&["hom?.txt"]), &[]).unwrap()), ["home.txt"]);
    assert_eq!(rels(&c.resolve(&s(&["[ab].txt"]), &[]).unwrap()), ["a.txt", "b.txt"]);
    assert_eq!(
        rels(&c.resolve(&s(&["src/*/a.txt"]), &[]).unwrap()),
        ["src/x/a.txt", "src/y/a.txt"]
    );
    let dirs = c.resolve(&s(&["sr?"]), &[]).unwrap();
    assert_eq!(rels(&dirs), ["src"]);
    assert!(dirs[0].is_dir);
    let plain = c.resolve(&s(&["a.txt"]), &[]).unwrap();
    assert!(!plain[0].wildcard);
    assert!(matches!(
        c.resolve(&s(&["[x"]), &[]),
        Err(ContextError::BadPattern { .. })
    ));
}

#[test]
fn dotdot_and_symlinks_cannot_leave_the_root() {
    let d = ctx_dir(None);
    write(d.path(), "a.txt", "inside");
    write(d.path(), "etc/hostname", "ctx-hostname");
    symlink("/etc/hostname", d.path().join("abs")).unwrap();
    symlink("../../../../../../a.txt", d.path().join("up")).unwrap();
    let c = ctx(&d);
    assert_eq!(rels(&c.resolve(&s(&["../../a.txt"]), &[]).unwrap()), ["a.txt"]);
    assert_eq!(rels(&c.resolve(&s(&["/a.txt"]), &[]).unwrap()), ["a.txt"]);
    let abs = c.resolve(&s(&["abs"]), &[]).unwrap();
    assert_eq!(
        rels(&abs),
        ["etc/hostname"],
        "absolute symlink resolved inside the context"
    );
    assert_eq!(abs[0].name, "abs");
    assert_eq!(rels(&c.resolve(&s(&["up"]), &[]).unwrap()), ["a.txt"]);
    // The digest reads the in-root target, not the host's /etc/hostname.
    let mut cache = StatCache::new();
    let via_link = c.digest(&abs, None, &mut cache).unwrap();
    write(d.path(), "etc/hostname", "changed");
    assert_ne!(via_link, c.digest(&abs, None, &mut cache).unwrap());
}

#[test]
fn ignored_files_are_invisible() {
    let d = ctx_dir(Some("*.md\n!README.md\nsecret/\nDockerfile\n.dockerignore\n**/*.log\n"));
    for f in [
        "README.md",
        "NOTES.md",
        "docs/guide.md",
        "secret/key",
        "src/app.rs",
        "src/debug.log",
        "x.log",
    ] {
        write(d.path(), f, f);
    }
    let c = ctx(&d);
    assert!(matches!(
        c.resolve(&s(&["NOTES.md"]), &[]),
        Err(ContextError::NotFound { .. })
    ));
    assert!(matches!(
        c.resolve(&s(&["secret/key"]), &[]),
        Err(ContextError::NotFound { .. })
    ));
    assert!(matches!(
        c.resolve(&s(&["secret"]), &[]),
        Err(ContextError::NotFound { .. })
    ));
    assert_eq!(rels(&c.resolve(&s(&["*.md"]), &[]).unwrap()), ["README.md"]);
    // COPY . copies only what is visible: not even the Dockerfile or the
    // ignore file, since they are listed.
    let dest = tempfile::tempdir().unwrap();
    copy(&c, &["."], dest.path(), "/app/");
    assert_eq!(
        tree(&dest.path().join("app")),
        ["README.md", "docs/", "docs/guide.md", "src/", "src/app.rs"]
    );
}

#[test]
fn partly_ignored_directory_copies_the_rest() {
    let d = ctx_dir(Some("dir/\n!dir/keep\n"));
    for f in ["dir/drop.txt", "dir/keep/a.txt", "dir/keep/sub/b.txt", "other/c.txt"] {
        write(d.path(), f, f);
    }
    let c = ctx(&d);
    let dest = tempfile::tempdir().unwrap();
    copy(&c, &["dir"], dest.path(), "/out");
    assert_eq!(
        tree(&dest.path().join("out")),
        ["keep/", "keep/a.txt", "keep/sub/", "keep/sub/b.txt"]
    );
    let dest2 = tempfile::tempdir().unwrap();
    copy(&c, &["."], dest2.path(), "/");
    let t = tree(dest2.path());
    assert!(t.contains(&"dir/keep/sub/b.txt".to_string()), "{t:?}");
    assert!(!t.contains(&"dir/drop.txt".to_string()), "{t:?}");
    assert!(t.contains(&"other/c.txt".to_string()), "{t:?}");
}

#[test]
fn exclude_patterns_are_relative_to_the_source() {
    let d = ctx_dir(None);
    for f in ["hom.txt", "home.md", "app/a.rs", "app/b.txt", "app/sub/c.txt"] {
        write(d.path(), f, f);
    }
    let c = ctx(&d);
    assert_eq!(rels(&c.resolve(&s(&["hom*"]), &s(&["*.txt"])).unwrap()), ["home.md"]);
    let srcs = c.resolve(&s(&["app"]), &s(&["*.txt"])).unwrap();
    let dest = tempfile::tempdir().unwrap();
    copy_sources(&c.root, &srcs, dest.path(), "/x/", "/", &CopyOptions::default()).unwrap();
    assert_eq!(tree(&dest.path().join("x")), ["a.rs", "sub/", "sub/c.txt"]);
    let srcs = c.resolve(&s(&["app"]), &s(&["**/*.txt"])).unwrap();
    let dest = tempfile::tempdir().unwrap();
    copy_sources(&c.root, &srcs, dest.path(), "/x/", "/", &CopyOptions::default()).unwrap();
    assert_eq!(tree(&dest.path().join("x")), ["a.rs", "sub/"]);
}

#[test]
fn resolve_in_has_no_ignore_rules() {
    let d = ctx_dir(Some("*.txt\n"));
    write(d.path(), "a.txt", "a");
    assert!(ctx(&d).resolve(&s(&["a.txt"]), &[]).is_err());
    assert_eq!(rels(&resolve_in(d.path(), &s(&["a.txt"]), &[]).unwrap()), ["a.txt"]);
}

// --------------------------------------------------------------- digests

#[test]
fn digest_covers_content_mode_names_links_and_owner() {
    let d = ctx_dir(Some("ignored.txt\n"));
    write(d.path(), "app/a.txt", "a");
    write(d.path(), "app/b.txt", "b");
    symlink("a.txt", d.path().join("app/link")).unwrap();
    let c = ctx(&d);
    let srcs = c.resolve(&s(&["app"]), &[]).unwrap();
    let dg = |c: &BuildContext, chown| digest_in(&c.root, &srcs, chown, None).unwrap();
    let base = dg(&c, None);
    assert!(base.starts_with("sha256:") && base.len() == 71, "{base}");
    assert_eq!(base, dg(&c, None), "stable");
    assert_ne!(base, dg(&c, Some((1000, 1000))), "owner counts");

    write(d.path(), "app/a.txt", "A");
    let content = dg(&c, None);
    assert_ne!(base, content, "content counts");
    fs::set_permissions(d.path().join("app/a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    let mode = dg(&c, None);
    assert_ne!(content, mode, "mode counts");
    fs::remove_file(d.path().join("app/link")).unwrap();
    symlink("b.txt", d.path().join("app/link")).unwrap();
    let link = dg(&c, None);
    assert_ne!(mode, link, "symlink target counts");
    fs::rename(d.path().join("app/b.txt"), d.path().join("app/c.txt")).unwrap();
    let renamed = dg(&c, None);
    assert_ne!(link, renamed, "names count");
    // mtime alone does not count, and neither do ignored files.
    let f = fs::File::options()
        .write(true)
        .open(d.path().join("app/a.txt"))
        .unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1000))
        .unwrap();
    write(
        d.path(),
        "app/ignored.txt",
        "not in the context? it is: only the root one is ignored",
    );
    let with_nested = dg(&c, None);
    assert_ne!(
        renamed, with_nested,
        "app/ignored.txt is not ignored (pattern is anchored)"
    );
    fs::remove_file(d.path().join("app/ignored.txt")).unwrap();
    assert_eq!(renamed, dg(&c, None));
    // Files outside the sources do not count.
    write(d.path(), "elsewhere.txt", "x");
    assert_eq!(renamed, dg(&c, None));
}

#[test]
fn ignored_files_do_not_change_the_digest() {
    let d = ctx_dir(Some("**/*.tmp\n"));
    write(d.path(), "src/a.rs", "a");
    let c = ctx(&d);
    let srcs = c.resolve(&s(&["."]), &[]).unwrap();
    let mut cache = StatCache::new();
    let before = c.digest(&srcs, None, &mut cache).unwrap();
    write(d.path(), "src/junk.tmp", "junk");
    assert_eq!(before, c.digest(&srcs, None, &mut cache).unwrap());
    write(d.path(), "src/b.rs", "b");
    assert_ne!(before, c.digest(&srcs, None, &mut cache).unwrap());
}

#[test]
fn warm_digest_only_stats() {
    let d = ctx_dir(None);
    for i in 0..200 {
        write(d.path(), &format!("src/m{}/f{i}.txt", i % 7), &format!("content {i}"));
    }
    // Files must be older than the racy window to be cached.
    std::thread::sleep(Duration::from_millis(150));
    let c = ctx(&d);
    let srcs = c.resolve(&s(&["."]), &[]).unwrap();
    let mut cache = StatCache::new();
    let cold = c.digest(&srcs, None, &mut cache).unwrap();
    assert_eq!(cache.misses(), 201, "every file read once (200 + Dockerfile)");
    assert_eq!(cache.hits(), 0);
    assert_eq!(cache.len(), 201);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statcache/ctx.bin");
    cache.save(&path).unwrap();
    let mut warm_cache = StatCache::load(&path);
    assert_eq!(warm_cache.len(), 201);
    let warm = c.digest(&srcs, None, &mut warm_cache).unwrap();
    assert_eq!(cold, warm);
    assert_eq!(warm_cache.hits(), 201);
    assert_eq!(warm_cache.misses(), 0, "a warm digest reads nothing");
    assert!(!warm_cache.is_dirty());

    // One changed file: exactly one read, and a different digest.
    write(d.path(), "src/m0/f0.txt", "changed");
    let changed = c.digest(&srcs, None, &mut warm_cache).unwrap();
    assert_ne!(cold, changed);
    assert_eq!(warm_cache.misses(), 1);
}

#[test]
fn just_modified_files_are_hashed_but_not_cached() {
    let d = ctx_dir(None);
    write(d.path(), "fresh.txt", "fresh");
    let c = ctx(&d);
    let srcs = c.resolve(&s(&["fresh.txt"]), &[]).unwrap();
    let mut cache = StatCache::new();
    c.digest(&srcs, None, &mut cache).unwrap();
    assert_eq!(cache.len(), 0, "a file younger than the racy window must not be cached");
}

#[test]
fn big_context_digest_parallel_matches_cached() {
    let d = ctx_dir(None);
    let blob: String = (0..200_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    for i in 0..40 {
        write(d.path(), &format!("data/{i:02}.bin"), &format!("{i}{blob}"));
    }
    std::thread::sleep(Duration::from_millis(150));
    let c = ctx(&d);
    let srcs = c.resolve(&s(&["data"]), &[]).unwrap();
    let uncached = digest_in(&c.root, &srcs, None, None).unwrap();
    let mut cache = StatCache::new();
    let cold = c.digest(&srcs, None, &mut cache).unwrap();
    let warm = c.digest(&srcs, None, &mut cache).unwrap();
    assert_eq!(uncached, cold);
    assert_eq!(cold, warm);
    assert_eq!(cache.hits(), 40);
    // Swapping two files' contents changes the digest (order is kept).
    let a = fs::read(d.path().join("data/00.bin")).unwrap();
    let b = fs::read(d.path().join("data/01.bin")).unwrap();
    fs::write(d.path().join("data/00.bin"), b).unwrap();
    fs::write(d.path().join("data/01.bin"), a).unwrap();
    assert_ne!(cold, digest_in(&c.root, &srcs, None, None).unwrap());
}

#[test]
fn stat_cache_corrupt_or_missing_loads_empty_and_saves_fast() {
    let dir = tempfile::tempdir().unwrap();
    assert!(StatCache::load(&dir.path().join("nope")).is_empty());
    let mut c = StatCache::new();
    let key = |i: u64| statcache::StatKey {
        size: i,
        mtime_ns: i as i64 * 7,
        ino: i + 1,
        ctime_ns: i as i64 * 11,
    };
    for i in 0..20_000u64 {
        c.insert(
            format!("src/module{}/file{i}.rs", i % 100).into_bytes(),
            key(i),
            [i as u8; 32],
        );
    }
    let p = dir.path().join("cache.bin");
    let t = Instant::now();
    c.save(&p).unwrap();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(2), "saving 20k entries took {took:?}");
    let mut back = StatCache::load(&p);
    assert_eq!(back.len(), 20_000);
    assert_eq!(back.lookup(b"src/module42/file42.rs", &key(42)), Some([42; 32]));
    assert_eq!(
        back.lookup(b"src/module42/file42.rs", &key(43)),
        None,
        "any stat change misses"
    );
    // Flip one byte: the checksum refuses the whole file.
    let mut bytes = fs::read(&p).unwrap();
    bytes[100] ^= 1;
    fs::write(&p, &bytes).unwrap();
    assert!(StatCache::load(&p).is_empty());
    fs::write(&p, &bytes[..50]).unwrap();
    assert!(StatCache::load(&p).is_empty());
    // No temporary file left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

// ------------------------------------------------------------------ copy

#[test]
fn single_file_destinations() {
    let d = ctx_dir(None);
    write(d.path(), "a.txt", "A");
    let c = ctx(&d);
    let dest = tempfile::tempdir().unwrap();
    copy(&c, &["a.txt"], dest.path(), "/app/renamed.txt");
    assert_eq!(fs::read_to_string(dest.path().join("app/renamed.txt")).unwrap(), "A");
    copy(&c, &["a.txt"], dest.path(), "/dir/");
    assert_eq!(fs::read_to_string(dest.path().join("dir/a.txt")).unwrap(), "A");
    // Existing directory without a trailing slash: into it.
    copy(&c, &["a.txt"], dest.path(), "/app");
    assert_eq!(fs::read_to_string(dest.path().join("app/a.txt")).unwrap(), "A");
    // Relative to the workdir, `.` is a directory.
    let srcs = c.resolve(&s(&["a.txt"]), &[]).unwrap();
    copy_sources(&c.root, &srcs, dest.path(), ".", "/work/dir", &CopyOptions::default()).unwrap();
    assert_eq!(fs::read_to_string(dest.path().join("work/dir/a.txt")).unwrap(), "A");
    copy_sources(&c.root, &srcs, dest.path(), "sub/f", "/work", &CopyOptions::default()).unwrap();
    assert_eq!(fs::read_to_string(dest.path().join("work/sub/f")).unwrap(), "A");
    // Overwriting an existing file replaces it.
    write(d.path(), "a.txt", "B");
    copy(&c, &["a.txt"], dest.path(), "/app/renamed.txt");
    assert_eq!(fs::read_to_string(dest.path().join("app/renamed.txt")).unwrap(), "B");
}

#[test]
fn directory_sources_copy_contents_and_several_sources_need_a_dir() {
    let d = ctx_dir(None);
    for f in ["src/a.rs", "src/sub/b.rs", "x.txt", "y.txt"] {
        write(d.path(), f, f);
    }
    symlink("a.rs", d.path().join("src/alias")).unwrap();
    let c = ctx(&d);
    let dest = tempfile::tempdir().unwrap();
    let st = copy(&c, &["src"], dest.path(), "/app");
    assert_eq!(tree(&dest.path().join("app")), ["a.rs", "alias", "sub/", "sub/b.rs"]);
    assert_eq!(
        fs::read_link(dest.path().join("app/alias")).unwrap(),
        PathBuf::from("a.rs")
    );
    assert_eq!((st.files, st.symlinks), (2, 1));
    copy(&c, &["x.txt", "y.txt"], dest.path(), "/multi");
    assert_eq!(tree(&dest.path().join("multi")), ["x.txt", "y.txt"]);
    copy(&c, &["?.txt"], dest.path(), "/wild");
    assert_eq!(tree(&dest.path().join("wild")), ["x.txt", "y.txt"]);
    // A single wildcard match to a name is written as that name.
    copy(&c, &["x.t?t"], dest.path(), "/one");
    assert_eq!(fs::read_to_string(dest.path().join("one")).unwrap(), "x.txt");
    // A file onto an existing directory name is refused.
    fs::create_dir_all(dest.path().join("busy/x.txt/inner")).unwrap();
    let srcs = c.resolve(&s(&["x.txt"]), &[]).unwrap();
    let e = copy_sources(&c.root, &srcs, dest.path(), "/busy/", "/", &CopyOptions::default()).unwrap_err();
    assert!(matches!(e, ContextError::Conflict { .. }), "{e}");
}

#[test]
#[ignore = "needs root (as a user, copying the 0700 bin/ of this context fails with Permission denied)"]
fn modes_times_owner_and_chmod() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root: run it as root with --include-ignored (scripts/test does)"
    );
    let d = ctx_dir(None);
    write(d.path(), "bin/run.sh", "#!/bin/sh\n");
    fs::set_permissions(d.path().join("bin/run.sh"), fs::Permissions::from_mode(0o4750)).unwrap();
    fs::set_permissions(d.path().join("bin"), fs::Permissions::from_mode(0o700)).unwrap();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(d.path().join("bin/run.sh"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let c = ctx(&d);
    let root = rustix::process::geteuid().is_root();

    let dest = tempfile::tempdir().unwrap();
    copy(&c, &["."], dest.path(), "/app/");
    let m = fs::metadata(dest.path().join("app/bin/run.sh")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4750);
    assert_eq!(m.mtime(), 1_000_000_000);
    assert_eq!(
        fs::metadata(dest.path().join("app/bin")).unwrap().mode() & 0o7777,
        0o700
    );
    if root {
        assert_eq!((m.uid(), m.gid()), (0, 0));
    }

    let dest = tempfile::tempdir().unwrap();
    let srcs = c.resolve(&s(&["bin"]), &[]).unwrap();
    let opts = CopyOptions {
        chown: Some((1234, 5678)),
        chmod: Some(0o640),
        source_date_epoch: Some(999),
        ..Default::default()
    };
    copy_sources(&c.root, &srcs, dest.path(), "/deep/new/dir", "/", &opts).unwrap();
    let f = fs::metadata(dest.path().join("deep/new/dir/run.sh")).unwrap();
    assert_eq!(f.mode() & 0o7777, 0o640);
    assert_eq!(f.mtime(), 999, "clamped to SOURCE_DATE_EPOCH");
    let parent = fs::metadata(dest.path().join("deep")).unwrap();
    assert_eq!(parent.mode() & 0o7777, 0o755, "created parents are 0755");
    if root {
        assert_eq!((f.uid(), f.gid()), (1234, 5678));
        assert_eq!(
            (parent.uid(), parent.gid()),
            (1234, 5678),
            "created parents get the chown user"
        );
    }
}

#[test]
fn copy_never_leaves_the_destination_root() {
    let d = ctx_dir(None);
    write(d.path(), "payload", "pwned?");
    write(d.path(), "tree/inner/file", "deep");
    let c = ctx(&d);
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "victim", "original");
    let dest = tempfile::tempdir().unwrap();
    // The image has hostile symlinks.
    symlink("/", dest.path().join("app")).unwrap();
    symlink(outside.path(), dest.path().join("out")).unwrap();
    symlink("../../../../../..", dest.path().join("up")).unwrap();
    symlink(outside.path().join("victim"), dest.path().join("victim")).unwrap();

    copy(&c, &["payload"], dest.path(), "/app/payload");
    assert_eq!(fs::read_to_string(dest.path().join("payload")).unwrap(), "pwned?");
    copy(&c, &["payload"], dest.path(), "/out/victim");
    copy(&c, &["payload"], dest.path(), "/up/");
    copy(&c, &["tree"], dest.path(), "/out/");
    copy(&c, &["payload"], dest.path(), "/victim");
    // The final symlink was replaced, not followed.
    assert!(fs::symlink_metadata(dest.path().join("victim")).unwrap().is_file());
    assert_eq!(fs::read_to_string(outside.path().join("victim")).unwrap(), "original");
    assert_eq!(tree(outside.path()), ["victim"], "nothing written outside");
    // `/out` resolved in-root: to `<root><outside path>`.
    let inner = dest.path().join(outside.path().strip_prefix("/").unwrap());
    assert_eq!(fs::read_to_string(inner.join("victim")).unwrap(), "pwned?");
    assert_eq!(fs::read_to_string(inner.join("inner/file")).unwrap(), "deep");
}

#[test]
fn existing_symlinked_directory_is_followed_in_root() {
    let d = ctx_dir(None);
    write(d.path(), "rootfs/lib/x.so", "x");
    let c = ctx(&d);
    let dest = tempfile::tempdir().unwrap();
    fs::create_dir_all(dest.path().join("usr/lib")).unwrap();
    symlink("usr/lib", dest.path().join("lib")).unwrap();
    copy(&c, &["rootfs"], dest.path(), "/");
    assert!(fs::symlink_metadata(dest.path().join("lib"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(dest.path().join("usr/lib/x.so")).unwrap(), "x");
}

#[test]
fn add_extracts_local_archives() {
    let payload = tempfile::tempdir().unwrap();
    write(payload.path(), "pkg/bin/tool", "tool");
    write(payload.path(), "pkg/README", "readme");
    let mut tar = Vec::new();
    berth_archive::write_layer(payload.path(), &mut tar, &berth_archive::DiffOptions::default()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let d = ctx_dir(None);
    fs::write(d.path().join("plain.tar"), &tar).unwrap();
    fs::write(d.path().join("pkg.tgz"), gz.finish().unwrap()).unwrap();
    write(d.path(), "notes.tar", "not really a tar");
    let c = ctx(&d);
    let add = CopyOptions {
        extract_archives: true,
        ..Default::default()
    };
    let dest = tempfile::tempdir().unwrap();
    for (src, to) in [("plain.tar", "/a/"), ("pkg.tgz", "/b"), ("notes.tar", "/c/")] {
        let srcs = c.resolve(&s(&[src]), &[]).unwrap();
        copy_sources(&c.root, &srcs, dest.path(), to, "/", &add).unwrap();
    }
    assert_eq!(fs::read_to_string(dest.path().join("a/pkg/bin/tool")).unwrap(), "tool");
    assert_eq!(fs::read_to_string(dest.path().join("b/pkg/README")).unwrap(), "readme");
    assert_eq!(
        fs::read_to_string(dest.path().join("c/notes.tar")).unwrap(),
        "not really a tar"
    );
    // COPY never extracts.
    let srcs = c.resolve(&s(&["plain.tar"]), &[]).unwrap();
    copy_sources(&c.root, &srcs, dest.path(), "/d/", "/", &CopyOptions::default()).unwrap();
    assert_eq!(fs::read(dest.path().join("d/plain.tar")).unwrap(), tar);
}

// ------------------------------------------------------ chown and chmod

#[test]
fn chown_names_come_from_the_image() {
    let rootfs = tempfile::tempdir().unwrap();
    write(
        rootfs.path(),
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n",
    );
    write(rootfs.path(), "etc/group", "root:x:0:\nstaff:x:50:app\n");
    let r = rootfs.path();
    assert_eq!(resolve_chown(r, "app").unwrap(), (1001, 1001));
    assert_eq!(resolve_chown(r, "app:staff").unwrap(), (1001, 50));
    assert_eq!(resolve_chown(r, "55:66").unwrap(), (55, 66));
    assert_eq!(resolve_chown(r, "77").unwrap(), (77, 77));
    assert_eq!(resolve_chown(r, "app:7").unwrap(), (1001, 7));
    assert_eq!(
        resolve_chown(r, "nobody").unwrap_err().to_string(),
        "unable to find user nobody: no matching entries in passwd file"
    );
    assert_eq!(
        resolve_chown(r, "app:wheel").unwrap_err().to_string(),
        "unable to find group wheel: no matching entries in group file"
    );
    assert!(matches!(resolve_chown(r, ":5"), Err(ContextError::InvalidChown(_))));
}

#[test]
fn chown_lookup_is_confined_to_the_rootfs() {
    // /etc in the image points at the host's /etc: resolved in-root, the
    // host's passwd (which knows root) is never read.
    let rootfs = tempfile::tempdir().unwrap();
    symlink("/etc", rootfs.path().join("etc")).unwrap();
    // In-root, `/etc` is the link itself: a loop, never the host file.
    assert!(resolve_chown(rootfs.path(), "root").is_err());
    // A link to a host directory that the image lacks: nothing found.
    let rootfs = tempfile::tempdir().unwrap();
    symlink("/usr/share/hostdata", rootfs.path().join("etc")).unwrap();
    let e = resolve_chown(rootfs.path(), "root").unwrap_err();
    assert!(matches!(e, ContextError::UnknownUser(ref u) if u == "root"), "{e}");
}

#[test]
fn chmod_values() {
    assert_eq!(parse_chmod("755").unwrap(), 0o755);
    assert_eq!(parse_chmod("0644").unwrap(), 0o644);
    assert_eq!(parse_chmod("4755").unwrap(), 0o4755);
    for bad in ["", "8", "u+x", "+755", "17777", "-1"] {
        assert!(matches!(parse_chmod(bad), Err(ContextError::InvalidChmod(_))), "{bad}");
    }
}

#[test]
fn error_type_stays_small() {
    assert!(
        std::mem::size_of::<ContextError>() <= 64,
        "{}",
        std::mem::size_of::<ContextError>()
    );
}

#[test]
fn urls_are_recognised() {
    assert!(is_url("https://example.com/a.tgz"));
    assert!(is_url("git@github.com:a/b.git"));
    assert!(!is_url("http.txt"));
}
