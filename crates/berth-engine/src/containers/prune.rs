//! `container prune --filter`: which stopped containers a prune removes
//! (`until=` a time, `label=`/`label!=`), and how much space it frees.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::error::{bail, Result};
use crate::Engine;

/// `--filter` of `container prune` (and of `system prune` for containers).
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    /// `until=`: only containers created before this time.
    pub until: Option<DateTime<Utc>>,
    /// `label=KEY` or `label=KEY=VALUE`: all must match.
    pub labels: Vec<String>,
    /// `label!=KEY` or `label!=KEY=VALUE`: none may match.
    pub not_labels: Vec<String>,
}

impl PruneFilter {
    /// Parses `KEY=VALUE` items (Docker's keys: `until`, `label`, `label!`).
    pub fn parse(items: &[String]) -> Result<PruneFilter> {
        let mut f = PruneFilter::default();
        for it in items {
            let Some((k, v)) = it.split_once('=') else {
                bail!("bad format of filter (expected name=value): {it}");
            };
            match k {
                "until" => f.until = Some(parse_time(v)?),
                "label" => f.labels.push(v.to_string()),
                "label!" => f.not_labels.push(v.to_string()),
                _ => bail!("Invalid filter '{k}'"),
            }
        }
        Ok(f)
    }

    /// Whether an object with these labels, created at `created` (RFC
    /// 3339), is one the filter lets a prune remove.
    pub fn matches(&self, labels: &BTreeMap<String, String>, created: &str) -> bool {
        let has = |l: &String| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l.as_str()),
        };
        if !self.labels.iter().all(has) || self.not_labels.iter().any(has) {
            return false;
        }
        match self.until {
            Some(t) => DateTime::parse_from_rfc3339(created).is_ok_and(|c| c.with_timezone(&Utc) < t),
            None => true,
        }
    }
}

/// A time as Docker's `--since`, `--until` and `until=` take it: RFC 3339
/// (with or without a zone, or a date alone, taken as UTC), a unix
/// timestamp (with fractions), or a Go duration before now (`10m`, `1h30m`).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t.and_utc());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(f) = s.parse::<f64>() {
        let secs = f.trunc() as i64;
        let ns = ((f - f.trunc()) * 1e9) as u32;
        return match DateTime::from_timestamp(secs, ns) {
            Some(t) => Ok(t),
            None => bail!("invalid timestamp {s:?}"),
        };
    }
    match super::parse_duration_ns(s) {
        Ok(ns) => Ok(Utc::now() - chrono::Duration::nanoseconds(ns as i64)),
        Err(_) => Err(crate::EngineError::invalid(format!(
            "invalid time {s:?}: use RFC 3339 (2013-01-02T13:23:37Z), a unix timestamp or a duration like 42m"
        ))),
    }
}

impl Engine {
    /// `container prune --filter …`: removes the stopped containers the
    /// filter lets go; returns their IDs and the bytes their writable
    /// layers held.
    pub fn prune_containers_filtered(&self, f: &PruneFilter) -> Result<(Vec<String>, u64)> {
        let mut out = Vec::new();
        let mut freed = 0;
        let all = self.list_all_containers()?;
        // Containers a command is still creating, starting or running. Read
        // after the list: a container is leased before it is recorded.
        let leased = self.store.leased()?.containers;
        for c in all {
            if c.state.is_running() || leased.contains(&c.rec.id) || !f.matches(&c.cfg.labels, &c.rec.created) {
                continue;
            }
            let size = berth_archive::tree_size(&c.dir.join(super::UPPER));
            match self.remove_container(&c.rec.id, false, false) {
                Ok(()) => {
                    out.push(c.rec.id.clone());
                    freed += size;
                }
                // Removed meanwhile (its own `run --rm`), or started since
                // the list was read (a `run` whose lease ended between the
                // two reads): not prune's to take, as Docker skips it.
                Err(e) if matches!(e.kind(), crate::ErrorKind::NotFound | crate::ErrorKind::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((out, freed))
    }
}

impl Engine {
    /// `builder prune`: forgets the build cache (every cached step, or with
    /// a filter the steps whose images it lets go) and deletes the step
    /// images nothing else holds (untagged, unused, no child); returns the
    /// step images forgotten and the bytes freed.
    pub fn prune_build_cache(&self, f: &PruneFilter) -> Result<(Vec<String>, u64)> {
        let mut forgotten = Vec::new();
        for (key, id) in self.store.cache_entries()? {
            let Ok(img) = self.store.image(&id) else {
                self.store.cache_remove(&key)?;
                continue;
            };
            if f.until.is_some() || !f.labels.is_empty() || !f.not_labels.is_empty() {
                let labels = self
                    .store
                    .image_config(&id)
                    .ok()
                    .and_then(|c| c.config.labels)
                    .unwrap_or_default();
                if !f.matches(&labels.into_iter().collect(), &img.created) {
                    continue;
                }
            }
            self.store.cache_remove(&key)?;
            forgotten.push(id.to_string());
        }
        // The forgotten steps' images that nothing holds now go, children
        // first (a parent is free once its child is gone).
        let before = self.disk_usage_images()?;
        let used: std::collections::HashSet<String> =
            self.store.list_containers()?.into_iter().map(|c| c.image_id).collect();
        loop {
            let mut progress = false;
            for id in &forgotten {
                let Ok(d) = berth_store::Digest::parse(id) else {
                    continue;
                };
                let Ok(img) = self.store.image(&d) else { continue };
                if !img.tags.is_empty()
                    || !img.repo_digests.is_empty()
                    || used.contains(id)
                    || !self.store.children(&d)?.is_empty()
                {
                    continue;
                }
                // Refused (leased, named meanwhile): it stays.
                if self.store.delete_dangling_image(&d).unwrap_or(false) {
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        self.store.gc()?;
        let after = self.disk_usage_images()?;
        forgotten.sort();
        forgotten.dedup();
        Ok((forgotten, before.saturating_sub(after)))
    }
}
