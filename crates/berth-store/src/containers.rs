//! Container records: ID, unique name, image, and the engine's JSON config.
//! Runtime state (pid, status, exit code) is not here: the monitor keeps it
//! in the container's directory, so a monitor never needs the database.

use rusqlite::{params, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::Store;

#[derive(Clone, Debug)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub created: String,
    pub config: serde_json::Value,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_record(t: (String, String, String, String, String)) -> ContainerRecord {
    ContainerRecord {
        id: t.0,
        name: t.1,
        image_id: t.2,
        created: t.3,
        config: serde_json::from_str(&t.4).unwrap_or(serde_json::Value::Null),
    }
}

impl Store {
    pub fn insert_container(&self, rec: &ContainerRecord) -> Result<()> {
        let r = self.db().execute(
            "INSERT INTO containers (id, name, image_id, created, config) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![rec.id, rec.name, rec.image_id, rec.created, rec.config.to_string()],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(self.name_in_use(&rec.name))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// By full ID, name (with or without a leading `/`), or unique ID prefix.
    pub fn container(&self, word: &str) -> Result<ContainerRecord> {
        let db = self.db();
        let name = word.strip_prefix('/').unwrap_or(word);
        let exact = db
            .query_row(
                "SELECT id, name, image_id, created, config FROM containers WHERE id = ?1 OR name = ?2",
                params![word, name],
                row,
            )
            .optional()?;
        if let Some(t) = exact {
            return Ok(to_record(t));
        }
        if !word.is_empty() && word.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut st =
                db.prepare_cached("SELECT id, name, image_id, created, config FROM containers WHERE id LIKE ?1")?;
            let found: Vec<_> = st
                .query_map(params![format!("{word}%")], row)?
                .collect::<rusqlite::Result<_>>()?;
            match found.len() {
                1 => return Ok(to_record(found.into_iter().next().expect("one"))),
                0 => {}
                n => {
                    return Err(StoreError::AmbiguousContainer {
                        reference: word.to_string(),
                        count: n,
                    })
                }
            }
        }
        Err(StoreError::ContainerNotFound(word.to_string()))
    }

    pub fn list_containers(&self) -> Result<Vec<ContainerRecord>> {
        let db = self.db();
        let mut st =
            db.prepare_cached("SELECT id, name, image_id, created, config FROM containers ORDER BY created DESC")?;
        let out = st.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(out.into_iter().map(to_record).collect())
    }

    pub fn update_container_config(&self, id: &str, config: &serde_json::Value) -> Result<()> {
        self.db().execute(
            "UPDATE containers SET config = ?2 WHERE id = ?1",
            params![id, config.to_string()],
        )?;
        Ok(())
    }

    /// The conflict of a name another container has.
    fn name_in_use(&self, name: &str) -> StoreError {
        let id = self.container(name).map(|r| r.id).unwrap_or_default();
        StoreError::NameInUse(name.to_string(), id)
    }

    pub fn rename_container(&self, id: &str, new_name: &str) -> Result<()> {
        // The lock is released before a conflict looks up the name's owner.
        let r = self
            .db()
            .execute("UPDATE containers SET name = ?2 WHERE id = ?1", params![id, new_name]);
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(self.name_in_use(new_name))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn remove_container(&self, id: &str) -> Result<()> {
        self.db().execute("DELETE FROM containers WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// Containers created from `image_id`.
    pub fn containers_using(&self, image_id: &str) -> Result<Vec<ContainerRecord>> {
        Ok(self
            .list_containers()?
            .into_iter()
            .filter(|c| c.image_id == image_id)
            .collect())
    }
}
