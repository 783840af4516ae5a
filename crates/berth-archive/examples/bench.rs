//! Rough throughput check: `cargo run --release -p berth-archive --example
//! bench -- /tmp/somewhere [MiB]`. Builds a tree, writes it as a layer,
//! applies the layer, and prints timings to compare with `tar -x` and
//! `sha256sum` on the same files. Never run by tests; writes only under the
//! directory given.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use berth_archive::{apply_layer, write_layer, ApplyOptions, DiffOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = Path::new(args.get(1).map(String::as_str).unwrap_or("/tmp/berth-archive-bench"));
    let mib: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let src = base.join("src");
    let dst = base.join("dst");
    let tar = base.join("layer.tar");
    if args.get(3).map(String::as_str) == Some("apply") {
        // Re-apply an existing layer.tar only.
        let _ = fs::remove_dir_all(&dst);
        fs::create_dir_all(&dst).unwrap();
        let t = Instant::now();
        let f = fs::File::open(&tar).unwrap();
        let a = apply_layer(f, &dst, &ApplyOptions::for_current_user()).unwrap();
        println!("apply_layer: {:.2}s, {}", t.elapsed().as_secs_f64(), a.diff_id);
        return;
    }
    let _ = fs::remove_dir_all(base);
    fs::create_dir_all(&src).unwrap();
    fs::create_dir_all(&dst).unwrap();

    // 80% in large files, 20% in 16 KiB files.
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut fill = |buf: &mut [u8]| {
        for chunk in buf.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
        }
    };
    let big = 64 << 20;
    let mut buf = vec![0u8; big];
    for i in 0..(mib * 8 / 10) / 64 {
        fill(&mut buf);
        fs::write(src.join(format!("big{i}")), &buf).unwrap();
    }
    let small = 16 << 10;
    for i in 0..(mib * 2 / 10) * 64 {
        let d = src.join(format!("d{}", i / 500));
        if i % 500 == 0 {
            fs::create_dir(&d).unwrap();
        }
        fill(&mut buf[..small]);
        fs::write(d.join(format!("f{i}")), &buf[..small]).unwrap();
    }

    let t = Instant::now();
    let out = BufWriter::new(fs::File::create(&tar).unwrap());
    let d = write_layer(&src, out, &DiffOptions::default()).unwrap();
    println!(
        "write_layer: {:.2}s, {} MiB, {} entries, {}",
        t.elapsed().as_secs_f64(),
        d.size >> 20,
        d.entries,
        d.diff_id
    );
    rustix::fs::sync();

    let t = Instant::now();
    let a = apply_layer(fs::File::open(&tar).unwrap(), &dst, &ApplyOptions::for_current_user()).unwrap();
    println!(
        "apply_layer: {:.2}s, {} MiB, {} entries, {}",
        t.elapsed().as_secs_f64(),
        a.size >> 20,
        a.entries,
        a.diff_id
    );
    assert_eq!(a.diff_id, d.diff_id);
    std::io::stdout().flush().unwrap();
}
