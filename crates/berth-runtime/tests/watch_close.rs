//! A dropped `DirWatch` is closed by the process's closer thread, not by
//! the dropping thread: the close must still happen, or a long-lived
//! process (the API service) would run out of inotify instances. Its own
//! test binary, so no other test's watches are counted.

use std::time::{Duration, Instant};

use berth_runtime::watch::DirWatch;

/// The inotify instances this process holds open.
fn inotify_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.to_string_lossy() == "anon_inode:inotify")
        .count()
}

#[test]
fn dropped_watches_are_all_closed() {
    let d = tempfile::tempdir().unwrap();
    let before = inotify_fds();
    for i in 0..64 {
        let w = DirWatch::new(d.path());
        assert!(w.is_watching());
        // An event queued, as a wait that saw a change has had.
        std::fs::write(d.path().join(format!("f{i}")), b"x").unwrap();
        assert!(w.wait(Duration::from_secs(30)));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while inotify_fds() > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(inotify_fds(), before, "every dropped watch is closed");
}
