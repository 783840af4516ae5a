//! Leases: what a process in flight is using, so that `prune`, `rmi` and
//! garbage collection running beside it leave it alone (as containerd's
//! leases do). A build takes one for its base and step images, a `run` for
//! its image until the container is recorded and for the container until
//! it ends (so a container prune never removes one still starting), a pull
//! or commit for the layers and blobs it relies on before its image is
//! recorded.
//!
//! A [`Lease`] lives as long as its value; [`Store::hold_for_process`]
//! holds something until this process's store closes (a command's end),
//! for work that spans several engine calls (`run`: create, start, wait,
//! remove). A long-lived front (an API server) must use [`Lease`]s.
//!
//! A lease is a row in the database naming its process by pid and start
//! time (`/proc/<pid>/stat`, so a recycled pid is no owner); the images,
//! layers and blobs it holds are rows that point at it. It is released
//! when its [`Lease`] drops; a lease whose process is gone (killed) counts
//! for nothing and is swept by the next reader of leases. Leasing costs
//! one small transaction; reading the live leases one query and a `stat`
//! of `/proc/<pid>` per leasing process.
//!
//! This module only records and answers; `delete_image` and `gc` consult it.

use std::collections::HashSet;
use std::sync::OnceLock;

use rusqlite::{params, OptionalExtension};

use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::{now_unix, Store};

/// What a lease can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseKind {
    Image,
    Layer,
    Blob,
    /// A container (by its full ID).
    Container,
}

impl LeaseKind {
    fn as_str(self) -> &'static str {
        match self {
            LeaseKind::Image => "image",
            LeaseKind::Layer => "layer",
            LeaseKind::Blob => "blob",
            LeaseKind::Container => "container",
        }
    }
}

/// A lease of this process; released on drop.
pub struct Lease<'s> {
    store: &'s Store,
    id: String,
}

/// The images, layers and blobs held by live processes, and who holds
/// them (for messages).
#[derive(Debug, Default, Clone)]
pub struct Leased {
    pub images: HashSet<Digest>,
    pub layers: HashSet<Digest>,
    pub blobs: HashSet<Digest>,
    /// Container IDs.
    pub containers: HashSet<String>,
    /// (what, pid) of every live lease.
    pub holders: Vec<(String, u32)>,
}

impl Leased {
    /// Whether anything of `kind` named `d` is held.
    pub fn holds(&self, kind: LeaseKind, d: &Digest) -> bool {
        match kind {
            LeaseKind::Image => self.images.contains(d),
            LeaseKind::Layer => self.layers.contains(d),
            LeaseKind::Blob => self.blobs.contains(d),
            LeaseKind::Container => self.containers.contains(d.hex()),
        }
    }
}

/// When process `pid` started (clock ticks after boot, field 22 of
/// `/proc/<pid>/stat`), None if there is no such process.
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// This process's (pid, start time).
fn me() -> (u32, u64) {
    static ME: OnceLock<(u32, u64)> = OnceLock::new();
    *ME.get_or_init(|| {
        let pid = std::process::id();
        (pid, process_start(pid).unwrap_or(0))
    })
}

/// Whether the lease owner (pid, start) is still running.
fn alive(pid: u32, start: u64) -> bool {
    process_start(pid) == Some(start)
}

impl Store {
    /// Takes a lease for this process; `what` says what for (`build`,
    /// `run`, `pull`), in messages.
    pub fn lease(&self, what: &str) -> Result<Lease<'_>> {
        let (pid, start) = me();
        let id = format!("{pid}-{start}-{:016x}", rand::random::<u64>());
        self.db().execute(
            "INSERT INTO leases (id, pid, start, what, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, pid, start as i64, what, now_unix()],
        )?;
        Ok(Lease { store: self, id })
    }

    /// A lease holding image `id`, once it is sure the image exists (it
    /// may have been removed a moment before): `ImageNotFound` otherwise.
    pub fn lease_image(&self, id: &Digest, what: &str) -> Result<Lease<'_>> {
        let lease = self.lease(what)?;
        lease.image(id)?;
        Ok(lease)
    }

    /// What live processes hold. Leases of processes that are gone are
    /// removed on the way.
    pub fn leased(&self) -> Result<Leased> {
        let rows: Vec<(String, u32, i64, String)> = {
            let db = self.db();
            let mut st = db.prepare_cached("SELECT id, pid, start, what FROM leases")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut out = Leased::default();
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for (id, pid, start, what) in rows {
            if alive(pid, start as u64) {
                out.holders.push((what, pid));
                live.push(id);
            } else {
                dead.push(id);
            }
        }
        if !dead.is_empty() {
            let mut db = self.db();
            let tx = db.transaction()?;
            for id in &dead {
                tx.execute("DELETE FROM lease_refs WHERE lease = ?1", params![id])?;
                tx.execute("DELETE FROM leases WHERE id = ?1", params![id])?;
            }
            tx.commit()?;
            log::debug!("swept {} leases of processes that are gone", dead.len());
        }
        if live.is_empty() {
            return Ok(out);
        }
        let db = self.db();
        let mut st = db.prepare_cached("SELECT lease, kind, ref FROM lease_refs")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        let live: HashSet<String> = live.into_iter().collect();
        for row in rows {
            let (lease, kind, r) = row?;
            if !live.contains(&lease) {
                continue;
            }
            if kind == "container" {
                out.containers.insert(r);
                continue;
            }
            let Ok(d) = Digest::parse(&r) else { continue };
            match kind.as_str() {
                "image" => out.images.insert(d),
                "layer" => out.layers.insert(d),
                "blob" => out.blobs.insert(d),
                _ => false,
            };
        }
        Ok(out)
    }

    /// Holds `r` (a digest, or a container ID) of `kind` until this
    /// store closes (this process's lease, taken on first use).
    pub fn hold_for_process(&self, kind: LeaseKind, r: &str) -> Result<()> {
        let id = match self.process_lease.get() {
            Some(id) => id.clone(),
            None => {
                let lease = self.lease("command")?;
                let id = std::mem::take(&mut std::mem::ManuallyDrop::new(lease).id);
                let _ = self.process_lease.set(id);
                self.process_lease.get().expect("set above").clone()
            }
        };
        self.db().execute(
            "INSERT OR IGNORE INTO lease_refs (lease, kind, ref) VALUES (?1, ?2, ?3)",
            params![id, kind.as_str(), r],
        )?;
        Ok(())
    }

    /// Releases what [`Self::hold_for_process`] held (the store does on drop).
    pub(crate) fn release_process_lease(&self) {
        if let Some(id) = self.process_lease.get() {
            if let Err(e) = release(self, id) {
                log::debug!("releasing lease {id}: {e}");
            }
        }
    }
}

impl Lease<'_> {
    /// Holds `d` whether it exists yet or not: an image about to be
    /// committed (its ID is its config's digest) is held before it is
    /// visible, so nothing can remove it between its commit and its use.
    pub fn hold(&self, kind: LeaseKind, d: &Digest) -> Result<()> {
        self.hold_ref(kind, d.as_str())
    }

    /// Holds container `id` (its full ID) for this lease's life.
    pub fn hold_container(&self, id: &str) -> Result<()> {
        self.hold_ref(LeaseKind::Container, id)
    }

    fn hold_ref(&self, kind: LeaseKind, r: &str) -> Result<()> {
        self.store.db().execute(
            "INSERT OR IGNORE INTO lease_refs (lease, kind, ref) VALUES (?1, ?2, ?3)",
            params![self.id, kind.as_str(), r],
        )?;
        Ok(())
    }

    /// Holds image `id` (and so its layers and blobs). `ImageNotFound` when
    /// it no longer exists: it was removed before the lease could hold it.
    pub fn image(&self, id: &Digest) -> Result<()> {
        self.hold(LeaseKind::Image, id)?;
        let present: Option<i64> = self
            .store
            .db()
            .query_row("SELECT 1 FROM images WHERE id = ?1", params![id.as_str()], |r| r.get(0))
            .optional()?;
        match present {
            Some(_) => Ok(()),
            None => Err(StoreError::ImageNotFound(id.to_string())),
        }
    }

    /// Holds the unpacked layer `chain` (its directory and record).
    pub fn layer(&self, chain: &Digest) -> Result<()> {
        self.hold(LeaseKind::Layer, chain)
    }

    /// Holds blob `d`.
    pub fn blob(&self, d: &Digest) -> Result<()> {
        self.hold(LeaseKind::Blob, d)
    }

    /// Holds container `id` (its full ID).
    pub fn container(&self, id: &str) -> Result<()> {
        self.store.db().execute(
            "INSERT OR IGNORE INTO lease_refs (lease, kind, ref) VALUES (?1, 'container', ?2)",
            params![self.id, id],
        )?;
        Ok(())
    }

    /// Lets go of everything now (as dropping does, but with errors).
    pub fn release(mut self) -> Result<()> {
        let id = std::mem::take(&mut self.id);
        release(self.store, &id)
    }
}

/// Who holds image `id`, if a live process does: (what, pid). Takes the
/// connection (or transaction) to ask in.
pub(crate) fn live_image_holder(db: &rusqlite::Connection, id: &Digest) -> Result<Option<(String, u32)>> {
    let mut st = db.prepare_cached(
        "SELECT l.pid, l.start, l.what FROM lease_refs r JOIN leases l ON l.id = r.lease
         WHERE r.kind = 'image' AND r.ref = ?1",
    )?;
    let rows = st.query_map(params![id.as_str()], |r| {
        Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
    })?;
    for row in rows {
        let (pid, start, what) = row?;
        if alive(pid, start as u64) {
            return Ok(Some((what, pid)));
        }
    }
    Ok(None)
}

fn release(store: &Store, id: &str) -> Result<()> {
    let mut db = store.db();
    let tx = db.transaction()?;
    tx.execute("DELETE FROM lease_refs WHERE lease = ?1", params![id])?;
    tx.execute("DELETE FROM leases WHERE id = ?1", params![id])?;
    tx.commit()?;
    Ok(())
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        if let Err(e) = release(self.store, &self.id) {
            // Harmless: a lease whose process is gone is swept later.
            log::debug!("releasing lease {}: {e}", self.id);
        }
    }
}
