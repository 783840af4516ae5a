//! Volume records: name, creation time, labels, and Docker's `local`
//! driver model (driver name, options such as `type=tmpfs` or
//! `type=none,device=/path,o=bind`). The data lives in
//! `volumes/<name>/_data`; the engine creates it before recording the volume,
//! so a record always has its directory. An anonymous volume carries the
//! label `com.docker.volume.anonymous`, as in Docker.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};

use crate::error::Result;
use crate::Store;

/// The label Docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeRecord {
    pub name: String,
    pub created: String,
    pub labels: BTreeMap<String, String>,
}

/// A volume with its driver and options (what `volume inspect` shows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub record: VolumeRecord,
    /// `local`.
    pub driver: String,
    /// `--opt` values: `type`, `device`, `o`.
    pub options: BTreeMap<String, String>,
}

impl Volume {
    /// Made for a container (a `VOLUME` or `-v /path`), not by name.
    pub fn anonymous(&self) -> bool {
        self.record.labels.contains_key(ANONYMOUS_LABEL)
    }
}

type Row = (String, String, String, String, String);

const COLS: &str = "name, created, labels, driver, options";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_volume(t: Row) -> Volume {
    Volume {
        record: VolumeRecord {
            name: t.0,
            created: t.1,
            labels: serde_json::from_str(&t.2).unwrap_or_default(),
        },
        driver: t.3,
        options: serde_json::from_str(&t.4).unwrap_or_default(),
    }
}

impl Store {
    /// Records a volume of the `local` driver without options; returns
    /// false (and changes nothing) when one of that name exists already.
    pub fn insert_volume(&self, rec: &VolumeRecord) -> Result<bool> {
        self.insert_volume_full(&Volume {
            record: rec.clone(),
            driver: "local".into(),
            options: BTreeMap::new(),
        })
    }

    /// Records a volume with its driver and options; false when the name is taken.
    pub fn insert_volume_full(&self, v: &Volume) -> Result<bool> {
        let labels = serde_json::to_string(&v.record.labels).expect("labels serialise");
        let options = serde_json::to_string(&v.options).expect("options serialise");
        let n = self.db().execute(
            "INSERT OR IGNORE INTO volumes (name, created, labels, driver, options) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![v.record.name, v.record.created, labels, v.driver, options],
        )?;
        Ok(n == 1)
    }

    pub fn volume(&self, name: &str) -> Result<Option<VolumeRecord>> {
        Ok(self.volume_full(name)?.map(|v| v.record))
    }

    /// The volume with its driver and options.
    pub fn volume_full(&self, name: &str) -> Result<Option<Volume>> {
        let db = self.db();
        let row = db
            .query_row(
                &format!("SELECT {COLS} FROM volumes WHERE name = ?1"),
                params![name],
                row,
            )
            .optional()?;
        Ok(row.map(to_volume))
    }

    pub fn list_volumes(&self) -> Result<Vec<VolumeRecord>> {
        Ok(self.list_volumes_full()?.into_iter().map(|v| v.record).collect())
    }

    /// Every volume with its driver and options, by name.
    pub fn list_volumes_full(&self) -> Result<Vec<Volume>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!("SELECT {COLS} FROM volumes ORDER BY name"))?;
        let rows = st.query_map([], row)?.collect::<rusqlite::Result<Vec<Row>>>()?;
        Ok(rows.into_iter().map(to_volume).collect())
    }

    pub fn remove_volume(&self, name: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM volumes WHERE name = ?1", params![name])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_anonymity_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut labels = BTreeMap::new();
        labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
        assert!(store
            .insert_volume(&VolumeRecord {
                name: "anon".into(),
                created: "t".into(),
                labels,
            })
            .unwrap());
        let v = store.volume_full("anon").unwrap().unwrap();
        assert!(v.anonymous());
        assert_eq!(v.driver, "local");
        let tmp = Volume {
            record: VolumeRecord {
                name: "scratch".into(),
                created: "t".into(),
                labels: BTreeMap::new(),
            },
            driver: "local".into(),
            options: [
                ("type".to_string(), "tmpfs".to_string()),
                ("device".into(), "tmpfs".into()),
            ]
            .into_iter()
            .collect(),
        };
        assert!(store.insert_volume_full(&tmp).unwrap());
        assert!(!store.insert_volume_full(&tmp).unwrap(), "a name is taken once");
        assert_eq!(store.volume_full("scratch").unwrap().unwrap(), tmp);
        assert!(!store.volume_full("scratch").unwrap().unwrap().anonymous());
        let names: Vec<_> = store
            .list_volumes_full()
            .unwrap()
            .into_iter()
            .map(|v| v.record.name)
            .collect();
        assert_eq!(names, ["anon", "scratch"]);
    }

    #[test]
    fn a_version_1_database_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = rusqlite::Connection::open(dir.path().join("berth.db")).unwrap();
            c.execute_batch(&format!(
                "{} INSERT INTO volumes VALUES ('old', 't', '{{}}'); PRAGMA user_version = 1;",
                crate::db::SCHEMA
            ))
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let v = store.volume_full("old").unwrap().unwrap();
        assert_eq!(v.driver, "local");
        assert!(store.list_networks().unwrap().is_empty());
    }
}
