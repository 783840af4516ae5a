//! The metadata database: SQLite in WAL mode at `$ROOT/berth.db`. It records
//! only what is already durable on disk. Every write is one transaction;
//! concurrent berth processes wait on SQLite's lock (busy timeout), never
//! fail or corrupt.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::Result;

const SCHEMA: &str = r#"
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

const SCHEMA_VERSION: i64 = 5;
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
        let steps = match version {
            ..=0 => format!("{SCHEMA} {MIGRATION_2} {MIGRATION_3} {MIGRATION_4} {MIGRATION_5}"),
            1 => format!("{MIGRATION_2} {MIGRATION_3} {MIGRATION_4} {MIGRATION_5}"),
            2 => format!("{MIGRATION_3} {MIGRATION_4} {MIGRATION_5}"),
            3 => format!("{MIGRATION_4} {MIGRATION_5}"),
            4 => MIGRATION_5.to_string(),
            _ => String::new(),
        };
        match conn.execute_batch(&format!("{steps} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")) {
            Ok(()) => {}
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK;");
                return Err(e);
            }
        }
    }
    Ok(conn)
}
