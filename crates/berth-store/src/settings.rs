//! `$ROOT/berth.toml`: settings an administrator gives a store. Read when
//! needed (a missing file means the defaults); berth never writes it.
//!
//! ```toml
//! # --userns of a container run as root that names none: "host"
//! # (Docker's behaviour, the default), "auto" or "auto:size=N"
//! userns = "auto"
//! # Host ids --userns=auto hands out, START:COUNT (default: the ranges
//! # of user "berth" in both /etc/subuid and /etc/subgid)
//! userns_range = "2147483647:2147483648"
//! # How containers of different mappings share layers: "auto" (idmapped
//! # layers where the kernel takes them, else a chowned copy per mapping)
//! # or "copy" (always the copy)
//! userns_idmap = "auto"
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Result, StoreError};
use crate::Store;

/// The settings file's name in the store root.
pub const SETTINGS_FILE: &str = "berth.toml";

/// What `berth.toml` says (`None`: not set).
#[derive(Deserialize, Default, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The default `--userns` for containers run as root.
    pub userns: Option<String>,
    /// Host ids for `--userns=auto`, `START:COUNT`.
    pub userns_range: Option<String>,
    /// `auto` or `copy`.
    pub userns_idmap: Option<String>,
}

impl Settings {
    /// Parses the text of a settings file (`path` names it in errors).
    pub fn parse(text: &str, path: PathBuf) -> Result<Settings> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
                format!("line {line}, column {col}: ")
            });
            StoreError::BadSettings {
                path,
                reason: format!("{}{}", at.unwrap_or_default(), e.message()),
            }
        })
    }
}

impl Store {
    /// `$ROOT/berth.toml`.
    pub fn settings_path(&self) -> PathBuf {
        self.root().join(SETTINGS_FILE)
    }

    /// The store's settings; defaults when the file does not exist.
    pub fn settings(&self) -> Result<Settings> {
        let path = self.settings_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Settings::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(source) => Err(StoreError::Io {
                context: "reading the store's settings",
                path,
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_and_typos_named() {
        let s = Settings::parse("userns = \"auto\"\nuserns_range = \"1000:2000\"\n", "berth.toml".into()).unwrap();
        assert_eq!(s.userns.as_deref(), Some("auto"));
        assert_eq!(s.userns_range.as_deref(), Some("1000:2000"));
        let e = Settings::parse("usrens = \"auto\"\n", "/r/berth.toml".into()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("/r/berth.toml: line 1, column 1: unknown field `usrens`"),
            "{text}"
        );
    }
}
