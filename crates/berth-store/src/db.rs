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

const SCHEMA_VERSION: i64 = 1;

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
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))?;
    }
    Ok(conn)
}
