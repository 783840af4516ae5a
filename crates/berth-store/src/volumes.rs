//! Volume records: name, creation time and labels. The data lives in
//! `volumes/<name>/_data`; the engine creates it before recording the volume,
//! so a record always has its directory.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};

use crate::error::Result;
use crate::Store;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeRecord {
    pub name: String,
    pub created: String,
    pub labels: BTreeMap<String, String>,
}

fn to_record(name: String, created: String, labels: String) -> VolumeRecord {
    VolumeRecord {
        name,
        created,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
    }
}

impl Store {
    /// Records a volume; returns false (and changes nothing) when one of
    /// that name exists already.
    pub fn insert_volume(&self, rec: &VolumeRecord) -> Result<bool> {
        let labels = serde_json::to_string(&rec.labels).expect("labels serialise");
        let n = self.db().execute(
            "INSERT OR IGNORE INTO volumes (name, created, labels) VALUES (?1, ?2, ?3)",
            params![rec.name, rec.created, labels],
        )?;
        Ok(n == 1)
    }

    pub fn volume(&self, name: &str) -> Result<Option<VolumeRecord>> {
        let db = self.db();
        let row = db
            .query_row(
                "SELECT name, created, labels FROM volumes WHERE name = ?1",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(row.map(|(n, c, l)| to_record(n, c, l)))
    }

    pub fn list_volumes(&self) -> Result<Vec<VolumeRecord>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT name, created, labels FROM volumes ORDER BY name")?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<(String, String, String)>>>()?;
        Ok(rows.into_iter().map(|(n, c, l)| to_record(n, c, l)).collect())
    }

    pub fn remove_volume(&self, name: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM volumes WHERE name = ?1", params![name])?;
        Ok(())
    }
}
