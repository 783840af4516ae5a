//! The metadata database: SQLite in WAL mode at `$ROOT/berth.db`. It records
//! only what is already durable on disk. Every write is one transaction;
//! concurrent berth processes wait on SQLite's lock (busy timeout), never
//! fail or corrupt.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::Result;

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS images (
    id          TEXT PRIMARY KEY,      -- sha256:<config digest>
    manifest    TEXT NOT NULL,         -- our OCI manifest blob for it
    created     TEXT NOT NULL,         -- from the config
    size        INTEGER NOT NULL,      -- sum of unpacked layer sizes
    parent      TEXT,                  -- the build step it grew from
    added       INTEGER NOT NULL,      -- unix seconds
    layers      TEXT NOT NULL          -- JSON array of chain IDs, bottom first
);
CREATE TABLE IF NOT EXISTS tags (
    name        TEXT PRIMARY KEY,      -- docker.io/library/bb:latest
    image_id    TEXT NOT NULL,
    added       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS repo_digests (
    name        TEXT PRIMARY KEY,      -- docker.io/library/bb@sha256:...
    image_id    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS layers (
    chain_id    TEXT PRIMARY KEY,
    diff_id     TEXT NOT NULL,
    parent      TEXT,
    size        INTEGER NOT NULL,      -- unpacked bytes (uncompressed tar size)
    blob        TEXT NOT NULL,         -- digest of the stored (maybe compressed) blob
    media_type  TEXT NOT NULL,
    blob_size   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS containers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    image_id    TEXT NOT NULL,
    created     TEXT NOT NULL,
    config      TEXT NOT NULL          -- JSON, owned by the engine
);
CREATE TABLE IF NOT EXISTS build_cache (
    key         TEXT PRIMARY KEY,      -- sha256 of the step's inputs
    image_id    TEXT NOT NULL,
    added       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS volumes (
    name        TEXT PRIMARY KEY,
    created     TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}'
);
"#;

/// Version 2: networks and their endpoints (address leases), and Docker's
/// volume model (driver, options). Added to a version-1 database in place.
const MIGRATION_2: &str = r#"
CREATE TABLE IF NOT EXISTS networks (
    id          TEXT PRIMARY KEY,      -- 64 hex digits
    name        TEXT NOT NULL UNIQUE,
    driver      TEXT NOT NULL,         -- bridge
    subnet      TEXT NOT NULL,         -- 172.18.0.0/16
    gateway     TEXT NOT NULL,         -- 172.18.0.1
    ip_range    TEXT NOT NULL DEFAULT '', -- addresses handed out come from here ('' = the subnet)
    internal    INTEGER NOT NULL DEFAULT 0,
    dns         INTEGER NOT NULL DEFAULT 1, -- containers resolve each other by name
    bridge      TEXT NOT NULL UNIQUE,  -- the Linux bridge's name
    labels      TEXT NOT NULL DEFAULT '{}',
    options     TEXT NOT NULL DEFAULT '{}',
    created     TEXT NOT NULL,
    next_ip     INTEGER NOT NULL DEFAULT 0  -- where the next allocation starts looking (u32 address)
);
CREATE TABLE IF NOT EXISTS endpoints (
    network_id  TEXT NOT NULL REFERENCES networks(id),
    container_id TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',   -- the container's name, for DNS
    ip          TEXT NOT NULL,
    mac         TEXT NOT NULL DEFAULT '',
    aliases     TEXT NOT NULL DEFAULT '[]',
    host_veth   TEXT NOT NULL DEFAULT '',   -- the bridge side of the veth pair, once plugged
    netns       TEXT NOT NULL DEFAULT '',   -- the namespace it was plugged into
    created     INTEGER NOT NULL,
    PRIMARY KEY (network_id, container_id),
    UNIQUE (network_id, ip)
);
CREATE INDEX IF NOT EXISTS endpoints_container ON endpoints(container_id);
ALTER TABLE volumes ADD COLUMN driver TEXT NOT NULL DEFAULT 'local';
ALTER TABLE volumes ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
"#;
/// Version 3: leases, which keep what a live process uses from prune,
/// rmi and gc (see `leases.rs`).
const MIGRATION_3: &str = r#"
CREATE TABLE IF NOT EXISTS leases (
    id          TEXT PRIMARY KEY,
    pid         INTEGER NOT NULL,      -- the holding process...
    start       INTEGER NOT NULL,      -- ...and its start time (/proc/<pid>/stat)
    what        TEXT NOT NULL,         -- build, run, pull, … (for messages)
    created     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lease_refs (
    lease       TEXT NOT NULL,
    kind        TEXT NOT NULL,         -- image, layer, blob
    ref         TEXT NOT NULL,         -- its digest
    PRIMARY KEY (lease, kind, ref)
);
CREATE INDEX IF NOT EXISTS lease_refs_ref ON lease_refs(kind, ref);
"#;

/// Version 5: IPv6 on bridge networks (dual stack): a network's IPv6
/// subnet, gateway and range ('' when it has none), and an endpoint's IPv6
/// lease (NULL when none; unique per network like the IPv4 one).
const MIGRATION_5: &str = r#"
ALTER TABLE networks ADD COLUMN subnet6 TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN gateway6 TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN ip_range6 TEXT NOT NULL DEFAULT '';
ALTER TABLE endpoints ADD COLUMN ip6 TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS endpoints_ip6 ON endpoints(network_id, ip6);
"#;

/// Version 6: the sizes Docker shows (`images`, `history`, `system df`):
/// the bytes of a layer's files ([`berth_archive::tree_size`]), beside the
/// bytes of its tar (`size`, which `save` and the registry need), and an
/// image's sum of them. An older store's rows are filled in by
/// [`fill_content_sizes`] from the layer directories it has.
const MIGRATION_6: &str = r#"
ALTER TABLE layers ADD COLUMN content_size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE images ADD COLUMN content_size INTEGER NOT NULL DEFAULT 0;
"#;

/// Version 7: whether a network's inspect shows each gateway. dockerd
/// shows the IPAM config as it was asked for: a gateway it chose for a
/// subnet the user gave is not shown; one for a subnet it chose is.
/// Older networks keep showing theirs.
const MIGRATION_7: &str = r#"
ALTER TABLE networks ADD COLUMN show_gateway INTEGER NOT NULL DEFAULT 1;
ALTER TABLE networks ADD COLUMN show_gateway6 INTEGER NOT NULL DEFAULT 1;
"#;

const SCHEMA_VERSION: i64 = 7;
use crate::variants::MIGRATION_4;

pub fn open(path: &Path) -> Result<Connection> {
    // Opening races with other berth processes creating or checkpointing
    // the same database; SQLite reports those as BUSY or a short read. Retry
    // a few times before giving up.
    let mut delay = Duration::from_millis(5);
    let mut attempt = 0;
    loop {
        match try_open(path) {
            Ok(c) => return Ok(c),
            Err(rusqlite::Error::SqliteFailure(e, msg))
                if attempt < 8
                    && matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy
                            | rusqlite::ErrorCode::DatabaseLocked
                            | rusqlite::ErrorCode::SystemIoFailure
                    ) =>
            {
                log::debug!("opening {}: {e} {msg:?}; retrying", path.display());
                std::thread::sleep(delay);
                delay *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Keeps the `-wal` and `-shm` files when the last connection closes.
/// SQLite deletes them by default, so every berth command created and
/// deleted two files; on ext4 without a journal each recently deleted
/// inode slows the creation of later files in its group for minutes
/// (`recently_deleted` in the inode allocator), and containers create
/// many. The files' content stays checkpointed as before.
fn keep_wal_files(conn: &Connection) {
    let mut on: std::ffi::c_int = 1;
    // SAFETY: the handle is this open connection's; "main" names its main
    // database; SQLITE_FCNTL_PERSIST_WAL reads and writes one int through
    // the pointer, which lives for the call.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::ffi::c_int).cast(),
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        log::debug!("SQLITE_FCNTL_PERSIST_WAL: code {rc}");
    }
}

fn try_open(path: &Path) -> rusqlite::Result<Connection> {
    // Made 0600 before SQLite sees it: SQLite gives its -wal and -shm files
    // the database's mode, and the database holds containers' environments.
    if let Err(e) = berth_archive::perms::open_rw(path, berth_archive::perms::PRIVATE_FILE) {
        log::debug!("{}: {e}", path.display());
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    keep_wal_files(&conn);
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Set up once: later opens only read the version (no write lock taken).
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < SCHEMA_VERSION {
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        log::debug!("journal mode {mode}");
        conn.execute_batch("BEGIN IMMEDIATE;")?;
        // Another process may have migrated while we waited for the lock.
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        // Each version's steps from the one after it (version 0: none yet).
        let all = [
            SCHEMA,
            MIGRATION_2,
            MIGRATION_3,
            MIGRATION_4,
            MIGRATION_5,
            MIGRATION_6,
            MIGRATION_7,
        ];
        let steps = all[version.clamp(0, SCHEMA_VERSION) as usize..].join(" ");
        let migrated = conn.execute_batch(&steps).and_then(|()| {
            if version < 6 {
                let root = path.parent().unwrap_or(Path::new("."));
                fill_content_sizes(&conn, root)?;
            }
            conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
        });
        if let Err(e) = migrated {
            let _ = conn.execute_batch("ROLLBACK;");
            return Err(e);
        }
    }
    Ok(conn)
}

/// Migration 6's data: each layer's content size from its directory under
/// `root` (a layer without one of its own shares the files of a layer with
/// the same diff ID; one with neither keeps its tar size), then each
/// image's as the sum of its layers'.
fn fill_content_sizes(conn: &Connection, root: &Path) -> rusqlite::Result<()> {
    let layers: Vec<(String, String, i64)> = {
        let mut st = conn.prepare("SELECT chain_id, diff_id, size FROM layers")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut by_diff = std::collections::HashMap::new();
    for (chain, diff, _) in &layers {
        let hex = chain.strip_prefix("sha256:").unwrap_or(chain);
        let dir = crate::layers::layer_path_in(root, hex).join("diff");
        if dir.is_dir() && !by_diff.contains_key(diff) {
            by_diff.insert(diff.clone(), berth_archive::tree_size(&dir) as i64);
        }
    }
    let mut content = std::collections::HashMap::new();
    for (chain, diff, tar_size) in &layers {
        let n = by_diff.get(diff).copied().unwrap_or(*tar_size);
        conn.execute(
            "UPDATE layers SET content_size = ?1 WHERE chain_id = ?2",
            rusqlite::params![n, chain],
        )?;
        content.insert(chain.clone(), n);
    }
    let images: Vec<(String, String)> = {
        let mut st = conn.prepare("SELECT id, layers FROM images")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, chains) in images {
        let chains: Vec<String> = serde_json::from_str(&chains).unwrap_or_default();
        let total: i64 = chains.iter().filter_map(|c| content.get(c)).sum();
        conn.execute(
            "UPDATE images SET content_size = ?1 WHERE id = ?2",
            rusqlite::params![total, id],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-5 store (no content sizes) gets them from its layer
    /// directories when it is opened: a layer with its own directory, one
    /// sharing another's files (same diff ID), one without any (its tar
    /// size stays), and an image summing its layers.
    #[test]
    fn version_6_counts_the_files_of_an_older_store_s_layers() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (a, b, c) = ("sha256:aa", "sha256:bb", "sha256:cc");
        {
            let conn = Connection::open(root.join("berth.db")).unwrap();
            conn.execute_batch(&format!(
                "{SCHEMA} {MIGRATION_2} {MIGRATION_3} {MIGRATION_4} {MIGRATION_5} PRAGMA user_version = 5;"
            ))
            .unwrap();
            for (chain, diff, size) in [(a, "sha256:d1", 3072), (b, "sha256:d1", 3072), (c, "sha256:d2", 2048)] {
                conn.execute(
                    "INSERT INTO layers (chain_id, diff_id, size, blob, media_type, blob_size) VALUES (?1, ?2, ?3, ?2, 'tar', ?3)",
                    rusqlite::params![chain, diff, size],
                )
                .unwrap();
            }
            conn.execute(
                "INSERT INTO images (id, manifest, created, size, added, layers) VALUES ('sha256:i', 'sha256:m', '', 8192, 0, ?1)",
                rusqlite::params![format!(r#"["{a}","{c}"]"#)],
            )
            .unwrap();
        }
        let files = root.join("layers/aa/diff");
        std::fs::create_dir_all(files.join("etc")).unwrap();
        std::fs::write(files.join("etc/f"), "hello").unwrap();
        std::os::unix::fs::symlink("f", files.join("etc/l")).unwrap();

        let conn = open(&root.join("berth.db")).unwrap();
        let content = |chain: &str| -> i64 {
            conn.query_row("SELECT content_size FROM layers WHERE chain_id = ?1", [chain], |r| {
                r.get(0)
            })
            .unwrap()
        };
        assert_eq!(content(a), 6, "its files: 5 bytes and a 1-byte link");
        assert_eq!(content(b), 6, "the same files, under another stack");
        assert_eq!(content(c), 2048, "no files here: its tar size");
        let image: i64 = conn
            .query_row("SELECT content_size FROM images WHERE id = 'sha256:i'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(image, 6 + 2048);
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
