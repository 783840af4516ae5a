//! Archive bombs: small layers that unpack to something huge. Sparse files
//! are written as holes (a 10 KB tar of a 20 GiB file stays small on
//! disk); past the size or entry limit the apply stops with an error that
//! names the limit and how to raise it.

mod common;

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use berth_archive::{apply_layer, ApplyOptions, ArchiveError, LimitKind, Limits};
use common::*;
use tar::EntryType;

const SPARSE_SIZE: u64 = 20 << 30;

/// A 20 GiB file with "head" at its start and "tail" at its end, all holes
/// between, tarred by GNU tar with `--sparse` in `format` (plus `extra`).
fn sparse_tar(dir: &Path, format: &str, extra: &[&str]) -> Vec<u8> {
    let src = dir.join("src");
    fs::create_dir_all(&src).unwrap();
    let mut f = fs::File::create(src.join("disk.img")).unwrap();
    f.write_all(b"head").unwrap();
    f.seek(SeekFrom::Start(SPARSE_SIZE - 4)).unwrap();
    f.write_all(b"tail").unwrap();
    drop(f);
    let out = dir.join(format!("sparse-{format}{}.tar", extra.join("")));
    let st = Command::new("tar")
        .args(["--sparse", &format!("--format={format}")])
        .args(extra)
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(&out)
        .arg("disk.img")
        .status()
        .expect("GNU tar runs");
    assert!(st.success());
    fs::remove_dir_all(&src).unwrap();
    fs::read(out).unwrap()
}

fn assert_small_sparse_copy(root: &Path) {
    let p = root.join("disk.img");
    let m = fs::metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(m.len(), SPARSE_SIZE);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "{} bytes allocated on disk",
        m.blocks() * 512
    );
    let mut f = fs::File::open(&p).unwrap();
    let mut head = [0u8; 8];
    f.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"head\0\0\0\0");
    f.seek(SeekFrom::Start(SPARSE_SIZE - 8)).unwrap();
    f.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"\0\0\0\0tail");
    // Nothing else: a PAX sparse file lands under its real name.
    let names: Vec<_> = fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["disk.img"]);
}

#[test]
fn a_ten_kilobyte_gnu_sparse_tar_of_a_20_gib_file_stays_small_on_disk() {
    let t = tempfile::tempdir().unwrap();
    let tar = sparse_tar(t.path(), "gnu", &[]);
    assert!(tar.len() < 20 * 1024, "the tar is {} bytes", tar.len());
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    let applied = apply_layer(&tar[..], &root, &opts()).unwrap();
    assert_eq!(applied.size, tar.len() as u64);
    assert_small_sparse_copy(&root);
}

#[test]
fn pax_sparse_formats_are_written_as_holes_under_their_real_name() {
    for version in ["0.0", "0.1", "1.0"] {
        let t = tempfile::tempdir().unwrap();
        let tar = sparse_tar(t.path(), "posix", &[&format!("--sparse-version={version}")]);
        assert!(tar.len() <= 20 * 1024, "{version}: the tar is {} bytes", tar.len());
        let root = t.path().join("root");
        fs::create_dir(&root).unwrap();
        apply_layer(&tar[..], &root, &opts()).unwrap_or_else(|e| panic!("{version}: {e}"));
        assert_small_sparse_copy(&root);
    }
}

#[test]
fn a_sparse_map_past_the_file_size_is_refused() {
    let mut t = Tar::new();
    t.pax(&[
        ("GNU.sparse.major", b"1"),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.name", b"f"),
        ("GNU.sparse.realsize", b"10"),
    ]);
    let mut data = b"1\n8\n4\n".to_vec();
    data.resize(512, 0);
    data.extend_from_slice(b"abcd");
    t.raw(
        Tar::header("GNUSparseFile.0/f", EntryType::Regular, data.len() as u64, 0o644),
        &data,
    );
    let tar = t.finish();
    let dir = tempfile::tempdir().unwrap();
    let e = apply_layer(&tar[..], dir.path(), &opts()).unwrap_err();
    assert!(e.to_string().contains("past the file's size 10"), "{e}");
}

/// A tar holding one file of `size` zero bytes, gzipped as it is made.
fn gzip_of_zeros(size: u64) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let h = Tar::header("zeros", EntryType::Regular, size, 0o644);
    let mut h = h;
    h.set_cksum();
    gz.write_all(h.as_bytes()).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        gz.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_gzip_of_a_gibibyte_of_zeros_stops_at_a_lowered_size_limit() {
    let bomb = gzip_of_zeros(1 << 30);
    assert!(bomb.len() < 2 << 20, "the bomb is {} bytes", bomb.len());
    let dir = tempfile::tempdir().unwrap();
    let limited = ApplyOptions {
        limits: Limits {
            max_size: 64 << 20,
            ..Limits::default()
        },
        ..opts()
    };
    let e = apply_layer(&bomb[..], dir.path(), &limited).unwrap_err();
    assert!(
        matches!(e, ArchiveError::Limit { kind: LimitKind::Size, limit } if limit == 64 << 20),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("more than 64 MiB") && msg.contains("BERTH_MAX_LAYER_SIZE=128M"),
        "{msg}"
    );
    // It stopped there: at most the limit was written.
    let written = fs::metadata(dir.path().join("zeros")).map(|m| m.len()).unwrap_or(0);
    assert!(written <= 64 << 20, "{written} bytes written");
    // Within the default limit the same layer applies.
    let ok = tempfile::tempdir().unwrap();
    let applied = apply_layer(&bomb[..], ok.path(), &opts()).unwrap();
    assert_eq!(applied.entries, 1);
}

#[test]
fn a_layer_of_more_entries_than_the_limit_stops() {
    let mut t = Tar::new();
    for i in 0..2000 {
        t.file(&format!("f{i}"), b"");
    }
    let tar = t.finish();
    let limited = ApplyOptions {
        limits: Limits {
            max_entries: 1000,
            ..Limits::default()
        },
        ..opts()
    };
    let dir = tempfile::tempdir().unwrap();
    let e = apply_layer(&tar[..], dir.path(), &limited).unwrap_err();
    assert!(
        matches!(
            e,
            ArchiveError::Limit {
                kind: LimitKind::Entries,
                limit: 1000
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("BERTH_MAX_LAYER_ENTRIES=2000"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(apply_layer(&tar[..], dir.path(), &opts()).unwrap().entries, 2000);
}

#[test]
fn an_extended_header_of_hundreds_of_megabytes_is_refused_before_it_is_read() {
    // The tar reader reads a PAX header whole into memory: a few hundred KB
    // of gzip could ask it for gigabytes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut h = Tar::header("PaxHeaders/x", EntryType::XHeader, 256 << 20, 0o644);
    h.set_cksum();
    gz.write_all(h.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = apply_layer(&bomb[..], dir.path(), &opts()).unwrap_err();
    assert!(
        e.to_string()
            .contains("a PAX extended header of 268435456 bytes (more than 1 MiB)"),
        "{e}"
    );
}
