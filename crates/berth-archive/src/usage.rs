//! How many bytes a tree holds, counted as Docker counts a layer's or a
//! container's size (`docker images`, `history`, `ps --size`, `system
//! df`): the sizes of everything but directories (a symlink counts the
//! length of its target, a whiteout nothing), each hard-linked file once.
//! Not the bytes of the layer's tar (headers and padding) nor the blocks
//! the files take on disk.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The bytes of the tree at `dir` (0 when it cannot be read). It never
/// follows a symlink; entries that vanish while it walks are skipped.
pub fn tree_size(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    walk(dir, &mut seen)
}

fn walk(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(md) = e.metadata() else { continue };
        if md.is_dir() {
            total += walk(&e.path(), seen);
        } else if md.nlink() < 2 || seen.insert((md.dev(), md.ino())) {
            total += md.len();
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_link_targets_count_once_directories_not_at_all() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(d.join("f"), "hi\n").unwrap();
        std::os::unix::fs::symlink("/some/target/x", d.join("l")).unwrap();
        std::fs::hard_link(d.join("f"), d.join("h")).unwrap();
        std::fs::create_dir_all(d.join("d/e")).unwrap();
        std::fs::write(d.join("empty"), "").unwrap();
        std::fs::write(d.join("d/e/g"), "12345\n").unwrap();
        // dockerd 20.10 shows this layer (the same files made by a RUN) as 23B.
        assert_eq!(tree_size(d), 3 + 14 + 6);
        assert_eq!(tree_size(&d.join("nosuch")), 0);
    }
}
