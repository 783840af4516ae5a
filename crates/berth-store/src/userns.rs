//! Host ids for containers' own user namespaces (`--userns=auto`): ranges
//! handed out from a pool and recorded in the database (one row per
//! container, in one transaction), so two containers of this store never
//! hold the same host ids; a range is freed when its container is removed,
//! and one whose container never came to exist is taken back. And, for
//! kernels that cannot idmap layers, a layer's chowned copy per id shift,
//! made once and kept beside the layer (it goes with it).
//!
//! This module never changes a layer directory itself.

use std::path::{Path, PathBuf};

use berth_archive::{apply_layer, write_layer, ApplyOptions, DiffOptions};
use rusqlite::params;

use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::staging::remove_tree;
use crate::{now_unix, Store};

/// Host ids `start..start+size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IdRange {
    pub start: u32,
    pub size: u32,
}

impl IdRange {
    /// One past the last id.
    pub fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.size)
    }

    /// `START:COUNT`.
    pub fn parse(s: &str) -> Option<IdRange> {
        let (a, b) = s.trim().split_once(':')?;
        let r = IdRange {
            start: a.trim().parse().ok()?,
            size: b.trim().parse().ok()?,
        };
        (r.size > 0 && r.end() <= u64::from(u32::MAX)).then_some(r)
    }

    fn overlaps(&self, o: &IdRange) -> bool {
        u64::from(self.start) < o.end() && u64::from(o.start) < self.end()
    }
}

/// The ranges `/etc/subuid`-style `text` gives `user` (by name or uid).
pub fn subid_ranges(text: &str, user: &str, uid: Option<u32>) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().splitn(3, ':');
            let (who, rest) = (f.next()?, format!("{}:{}", f.next()?, f.next()?));
            let mine = who == user || uid.is_some_and(|u| who == u.to_string());
            mine.then(|| IdRange::parse(&rest)).flatten()
        })
        .collect()
}

/// The parts of `uids` also in `gids`: ids a container can have as both
/// its uids and its gids.
pub fn common_ranges(uids: &[IdRange], gids: &[IdRange]) -> Vec<IdRange> {
    let mut out = Vec::new();
    for u in uids {
        for g in gids {
            let start = u.start.max(g.start);
            let end = u.end().min(g.end());
            if u64::from(start) < end {
                out.push(IdRange {
                    start,
                    size: (end - u64::from(start)) as u32,
                });
            }
        }
    }
    out.sort();
    out
}

const TABLE: &str = "CREATE TABLE IF NOT EXISTS userns_ranges (
    container_id TEXT PRIMARY KEY,
    start        INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    added        INTEGER NOT NULL
)";

impl Store {
    /// Give container `id` `size` host ids from `pool` that no other
    /// container of this store holds (the lowest that fit). Its directory
    /// must exist already: a range whose container has neither a record
    /// nor a directory is taken back here.
    pub fn allocate_host_ids(&self, id: &str, size: u32, pool: &[IdRange]) -> Result<IdRange> {
        let mut db = self.db();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(TABLE, [])?;
        let rows: Vec<(String, u32, u32)> = {
            let mut st = tx.prepare(
                "SELECT u.container_id, u.start, u.size, c.id IS NOT NULL FROM userns_ranges u
                 LEFT JOIN containers c ON c.id = u.container_id",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for r in rows {
                let (cid, start, size, recorded) = r?;
                if !recorded && !self.containers_dir().join(&cid).is_dir() {
                    tx.execute("DELETE FROM userns_ranges WHERE container_id = ?1", params![cid])?;
                    continue;
                }
                out.push((cid, start, size));
            }
            out
        };
        let mut taken: Vec<IdRange> = rows
            .iter()
            .filter(|(cid, _, _)| cid != id)
            .map(|(_, start, size)| IdRange {
                start: *start,
                size: *size,
            })
            .collect();
        taken.sort();
        let found = pool.iter().find_map(|p| {
            let mut start = u64::from(p.start);
            for t in &taken {
                let cand = IdRange {
                    start: start as u32,
                    size,
                };
                if cand.overlaps(t) {
                    start = start.max(t.end());
                }
            }
            (start + u64::from(size) <= p.end()).then_some(IdRange {
                start: start as u32,
                size,
            })
        });
        let Some(r) = found else {
            let total: u64 = pool.iter().map(|p| u64::from(p.size)).sum();
            return Err(StoreError::NoHostIds {
                wanted: size,
                reason: format!(
                    "{} containers hold {} of the {total} ids of the pool; remove some, or give the pool more ids",
                    taken.len(),
                    taken.iter().map(|t| u64::from(t.size)).sum::<u64>()
                ),
            });
        };
        tx.execute(
            "INSERT OR REPLACE INTO userns_ranges (container_id, start, size, added) VALUES (?1, ?2, ?3, ?4)",
            params![id, r.start, r.size, now_unix()],
        )?;
        tx.commit()?;
        Ok(r)
    }

    /// Give back container `id`'s host ids (nothing if it holds none).
    pub fn free_host_ids(&self, id: &str) -> Result<()> {
        let db = self.db();
        db.execute(TABLE, [])?;
        db.execute("DELETE FROM userns_ranges WHERE container_id = ?1", params![id])?;
        Ok(())
    }

    /// Every container's host ids, lowest first.
    pub fn host_id_allocations(&self) -> Result<Vec<(String, IdRange)>> {
        let db = self.db();
        db.execute(TABLE, [])?;
        let mut st = db.prepare("SELECT container_id, start, size FROM userns_ranges ORDER BY start")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                IdRange {
                    start: r.get(1)?,
                    size: r.get(2)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The files of layer `key` with every owner moved up by `shift` (a
    /// container whose root is host id `shift`), made once: for kernels
    /// that cannot idmap layers.
    pub fn shifted_layer_dir(&self, key: &Digest, shift: u32) -> Result<PathBuf> {
        let target = self.layer_path(key).join(format!("shifted-{shift}"));
        if target.is_dir() {
            return Ok(target);
        }
        let _lock = self.write_lock()?;
        let staged = self.staging().path("shifted-layer")?;
        std::fs::create_dir_all(&staged).ctx("creating a shifted layer", &staged)?;
        let made = copy_shifted(&self.layer_dir(key), &staged, shift);
        let made = made.and_then(|()| {
            berth_archive::sync_tree(&staged).map_err(|source| StoreError::Layer {
                layer: key.to_string(),
                source,
            })
        });
        if let Err(e) = made {
            remove_tree(&staged);
            return Err(e);
        }
        if std::fs::rename(&staged, &target).is_err() {
            remove_tree(&staged); // another process made it meanwhile
            if !target.is_dir() {
                return Err(StoreError::Conflict(format!("could not publish {}", target.display())));
            }
        }
        Ok(target)
    }
}

/// `from` (a layer directory) into `to` with owners shifted, through the
/// layer tar format (whiteouts, opaque directories, hard links, xattrs).
fn copy_shifted(from: &Path, to: &Path, shift: u32) -> Result<()> {
    let (reader, writer) = std::io::pipe().ctx("making a pipe", from)?;
    let src = from.to_path_buf();
    let reading = std::thread::spawn(move || {
        let opts = DiffOptions {
            overlay_whiteouts: true,
            xattr_prefix: ApplyOptions::for_current_user().xattr_prefix,
            ..Default::default()
        };
        write_layer(&src, writer, &opts)
    });
    let opts = ApplyOptions {
        id_shift: shift,
        ..ApplyOptions::for_current_user()
    };
    let applied = apply_layer(reader, to, &opts);
    let read = reading
        .join()
        .map_err(|_| StoreError::Conflict("the layer reader panicked".into()))?;
    let layer = from.display().to_string();
    read.map_err(|source| StoreError::Layer {
        layer: layer.clone(),
        source,
    })?;
    applied.map_err(|source| StoreError::Layer { layer, source })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_of_a_user_in_both_files() {
        let uids = subid_ranges(
            "alice:100000:65536\nberth:200000:1000000\nberth:5000000:10\n",
            "berth",
            None,
        );
        assert_eq!(uids.len(), 2);
        let gids = subid_ranges("berth:700000:1000000\n", "berth", None);
        assert_eq!(
            common_ranges(&uids, &gids),
            vec![IdRange {
                start: 700000,
                size: 500000
            }]
        );
        assert_eq!(IdRange::parse("10:0"), None);
        assert_eq!(IdRange::parse("4294967295:2"), None);
    }

    #[test]
    fn ranges_are_disjoint_and_come_back_when_freed() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("root")).unwrap();
        let pool = [IdRange {
            start: 1_000_000,
            size: 65536 * 3,
        }];
        let mut got = Vec::new();
        for id in ["a", "b", "c"] {
            std::fs::create_dir_all(store.containers_dir().join(id)).unwrap();
            got.push(store.allocate_host_ids(id, 65536, &pool).unwrap());
        }
        assert_eq!(
            got.iter().map(|r| r.start).collect::<Vec<_>>(),
            vec![1_000_000, 1_065_536, 1_131_072]
        );
        std::fs::create_dir_all(store.containers_dir().join("d")).unwrap();
        let e = store.allocate_host_ids("d", 65536, &pool).unwrap_err();
        assert!(e.to_string().contains("3 containers hold"), "{e}");
        store.free_host_ids("b").unwrap();
        assert_eq!(store.allocate_host_ids("d", 1000, &pool).unwrap().start, 1_065_536);
        // A container that never came to be (no record, no directory).
        std::fs::remove_dir(store.containers_dir().join("c")).unwrap();
        assert_eq!(
            store.allocate_host_ids("e", 65536, &pool).unwrap().start,
            1_066_536,
            "c's range is free again"
        );
        let holders: Vec<String> = store
            .host_id_allocations()
            .unwrap()
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(holders, vec!["a", "d", "e"]);
    }
}
