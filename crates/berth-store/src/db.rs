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

pub fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}
