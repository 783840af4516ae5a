//! The events journal: what happened to containers, images, networks and
//! volumes, whichever front did it (the CLI, compose, the API, a
//! container's monitor), as Docker's event messages.
//!
//! The journal is `$ROOT/events.jsonl`, one JSON object per line, each
//! appended with a single `O_APPEND` write (lines from processes side by
//! side never interleave). It is rotated to `events.jsonl.1` past
//! [`ROTATE_AT`] bytes, so it stays small; readers read both. Recording is
//! best effort: an event that cannot be written never fails the operation
//! it describes.
//!
//! [`Engine::events`] replays the journal between two times, through
//! Docker's filters, and follows it while asked to.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::Engine;

/// The journal's file name in the store root.
pub const JOURNAL: &str = "events.jsonl";
/// Past this size the journal is rotated.
pub const ROTATE_AT: u64 = 4 << 20;

/// One event, in Docker's shape (`docker events --format '{{json .}}'`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMessage {
    /// `container`, `image`, `network`, `volume`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// `create`, `start`, `die`, `destroy`, `pull`, `tag`, …
    #[serde(rename = "Action")]
    pub action: String,
    /// What it happened to.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// Always `local`.
    pub scope: String,
    /// Seconds since the epoch.
    pub time: i64,
    /// Nanoseconds since the epoch.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    /// The old API's fields: the action again…
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// … the actor's ID …
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// … and, for a container, its image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
}

/// The object of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Its ID (an image's name for image events, as Docker gives it).
    #[serde(rename = "ID")]
    pub id: String,
    /// `name`, `image`, labels, `exitCode`, …
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl EventMessage {
    /// A new event, now.
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> EventMessage {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let container = kind == "container";
        EventMessage {
            kind: kind.to_string(),
            action: action.to_string(),
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
            status: if container || kind == "image" {
                action.to_string()
            } else {
                String::new()
            },
            id: if container || kind == "image" {
                id.to_string()
            } else {
                String::new()
            },
            from: if container {
                attributes.get("image").cloned().unwrap_or_default()
            } else {
                String::new()
            },
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
        }
    }
}

/// Appends one event to the journal of the store at `root` (best effort;
/// a monitor process records a container's exit with it).
pub fn append(root: &Path, ev: &EventMessage) {
    if let Err(e) = try_append(root, ev) {
        log::debug!("recording the {} {} event: {e}", ev.kind, ev.action);
    }
}

fn try_append(root: &Path, ev: &EventMessage) -> std::io::Result<()> {
    let path = root.join(JOURNAL);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > ROTATE_AT) {
        // Whoever renames first rotates; the others append to the new file.
        let _ = std::fs::rename(&path, root.join(format!("{JOURNAL}.1")));
    }
    let mut line = serde_json::to_vec(ev).map_err(std::io::Error::other)?;
    line.push(b'\n');
    // Events name containers, images and their labels: the store's own.
    let mut f = berth_archive::perms::open_append(&path, berth_archive::perms::PRIVATE_FILE)?;
    f.write_all(&line)
}

/// Docker's event filters: `type`, `event` (action), `container`,
/// `image`, `network`, `volume`, `label` (each `KEY=VALUE` item; values of
/// one key are alternatives, keys must all match).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    by_key: BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    /// Parses `KEY=VALUE` filters.
    pub fn parse(items: &[String]) -> Result<EventFilter> {
        const KEYS: &[&str] = &[
            "type",
            "event",
            "container",
            "image",
            "network",
            "volume",
            "label",
            "scope",
        ];
        let mut f = EventFilter::default();
        for item in items {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| EngineError::invalid(format!("bad format of filter (expected name=value): {item}")))?;
            if !KEYS.contains(&k) {
                return Err(EngineError::invalid(format!("invalid filter '{k}'")));
            }
            f.by_key.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(f)
    }

    /// Whether `ev` passes.
    pub fn matches(&self, ev: &EventMessage) -> bool {
        let a = &ev.actor.attributes;
        let name = a.get("name").map(String::as_str).unwrap_or("");
        let id_or_name = |want: &str| ev.actor.id.starts_with(want) || name == want;
        self.by_key.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "type" => ev.kind == *v,
                "event" => ev.action == *v || ev.action.split(':').next() == Some(v.as_str()),
                "scope" => ev.scope == *v,
                "container" => ev.kind == "container" && id_or_name(v),
                "network" => ev.kind == "network" && id_or_name(v),
                "volume" => ev.kind == "volume" && id_or_name(v),
                "image" => {
                    let img = a.get("image").map(String::as_str).unwrap_or("");
                    let bare = |s: &str| s.strip_suffix(":latest").unwrap_or(s).to_string();
                    let own = || {
                        bare(&ev.actor.id) == bare(v)
                            || ev.actor.id.starts_with(v.as_str())
                            || ev
                                .actor
                                .id
                                .strip_prefix("sha256:")
                                .is_some_and(|h| h.starts_with(v.as_str()))
                            || (!name.is_empty() && bare(name) == bare(v))
                    };
                    (ev.kind == "image" && own()) || (!img.is_empty() && bare(img) == bare(v))
                }
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => a.get(lk).is_some_and(|x| x == lv),
                    None => a.contains_key(v.as_str()),
                },
                _ => false,
            })
        })
    }
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events at or after this time (nanoseconds since the epoch).
    pub since: Option<i64>,
    /// Only events at or before this time; following stops there.
    pub until: Option<i64>,
    /// Keep reading new events as they are recorded.
    pub follow: bool,
    /// Docker's filters.
    pub filter: EventFilter,
}

/// Docker's `--since`/`--until` value: seconds since the epoch (with a
/// fraction), an RFC 3339 time, or a duration before `now` (`10m`, `1h30m`).
pub fn parse_time(s: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_nanos_opt().unwrap_or(0));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_utc().timestamp_nanos_opt())
            .unwrap_or(0));
    }
    let numeric = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if numeric {
        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
        let secs: i64 = secs
            .parse()
            .map_err(|_| EngineError::invalid(format!("invalid time {s:?}")))?;
        let mut f = frac.to_string();
        f.truncate(9);
        while f.len() < 9 {
            f.push('0');
        }
        let nanos: i64 = f.parse().unwrap_or(0);
        return Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos));
    }
    let d = crate::containers::parse_duration_ns(s)
        .map_err(|_| EngineError::invalid(format!("failed to parse value {s:?} as a time or a duration")))?;
    Ok(now.timestamp_nanos_opt().unwrap_or(0) - d as i64)
}

fn read_lines_from(path: &Path, pos: u64, mut each: impl FnMut(EventMessage) -> bool) -> std::io::Result<(u64, bool)> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, true)),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    // Rotated under us: the new file starts again.
    let pos = if pos > len { 0 } else { pos };
    f.seek(SeekFrom::Start(pos))?;
    let mut r = BufReader::new(f);
    let mut at = pos;
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            return Ok((at, true));
        }
        at += n as u64;
        if let Ok(ev) = serde_json::from_str::<EventMessage>(&line) {
            if !each(ev) {
                return Ok((at, false));
            }
        }
    }
}

/// A network event's attributes: the network's name and driver.
fn network_attributes(n: &berth_store::NetworkRecord) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("name".to_string(), n.name.clone()),
        ("type".to_string(), n.driver.clone()),
    ])
}

impl Engine {
    fn journal(&self) -> PathBuf {
        self.root().join(JOURNAL)
    }

    /// Records an event (best effort).
    pub fn record_event(&self, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        append(self.root(), &EventMessage::new(kind, action, id, attributes));
    }

    /// Records a container's event, with its name, image and labels as
    /// attributes (and `extra`).
    pub fn record_container_event(&self, action: &str, c: &crate::containers::Container, extra: &[(&str, String)]) {
        let mut a: BTreeMap<String, String> = c.cfg.labels.clone().into_iter().collect();
        a.insert("name".into(), c.rec.name.clone());
        let image = c.rec.config["Config"]["Image"]
            .as_str()
            .unwrap_or(&c.cfg.image_ref)
            .to_string();
        a.insert("image".into(), image);
        for (k, v) in extra {
            a.insert((*k).to_string(), v.clone());
        }
        self.record_event("container", action, &c.rec.id, a);
    }

    /// [`Self::record_container_event`] for a container by ID (loaded
    /// again: after a change of name, the new one).
    pub fn container_event(&self, id: &str, action: &str, extra: &[(&str, String)]) {
        if let Ok(c) = self.container(id) {
            self.record_container_event(action, &c, extra);
        }
    }

    /// Records an image's event: `id` is its actor (the image's ID, or the
    /// reference for a pull or push, as dockerd has them), `name` its
    /// `name` attribute.
    pub fn record_image_event(&self, action: &str, id: &str, name: &str) {
        let mut a = BTreeMap::new();
        a.insert("name".to_string(), name.to_string());
        self.record_event("image", action, id, a);
    }

    /// The exit code of the container's last `die` event in the journal.
    pub fn last_exit_code(&self, id: &str) -> Option<i32> {
        let mut code = None;
        let q = EventQuery {
            filter: EventFilter::parse(&[format!("container={id}"), "event=die".to_string()]).ok()?,
            ..Default::default()
        };
        self.events(&q, &|| false, &mut |ev| {
            if ev.actor.id == id {
                code = ev.actor.attributes.get("exitCode").and_then(|c| c.parse().ok());
            }
            true
        })
        .ok()?;
        code
    }

    /// Records a network's event.
    pub fn network_event(&self, action: &str, n: &berth_store::NetworkRecord) {
        self.record_event("network", action, &n.id, network_attributes(n));
    }

    /// Records a network's `connect` or `disconnect` of container `id`, as
    /// dockerd does when the container joins or leaves it (its start, its
    /// end, a live `network connect` or `disconnect`).
    pub fn network_endpoint_event(&self, action: &str, n: &berth_store::NetworkRecord, container_id: &str) {
        let mut a = network_attributes(n);
        a.insert("container".to_string(), container_id.to_string());
        self.record_event("network", action, &n.id, a);
    }

    /// Records a volume's event.
    pub fn volume_event(&self, action: &str, name: &str, driver: &str) {
        let mut a = BTreeMap::new();
        a.insert("driver".to_string(), driver.to_string());
        self.record_event("volume", action, name, a);
    }

    /// Sends the journal's events that `q` selects to `out`, oldest first;
    /// with `q.follow`, keeps sending new ones until `until` passes,
    /// `cancelled` says so, or `out` returns false.
    pub fn events(
        &self,
        q: &EventQuery,
        cancelled: &dyn Fn() -> bool,
        out: &mut dyn FnMut(&EventMessage) -> bool,
    ) -> Result<()> {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let in_range =
            |ev: &EventMessage| q.since.is_none_or(|s| ev.time_nano >= s) && q.until.is_none_or(|u| ev.time_nano <= u);
        let mut send = |ev: EventMessage| {
            if in_range(&ev) && q.filter.matches(&ev) {
                return out(&ev);
            }
            true
        };
        let old = self.root().join(format!("{JOURNAL}.1"));
        let io = |e: std::io::Error| EngineError::from(anyhow::Error::from(e).context("reading the events journal"));
        let (_, go_on) = read_lines_from(&old, 0, &mut send).map_err(io)?;
        if !go_on {
            return Ok(());
        }
        let (mut pos, go_on) = read_lines_from(&self.journal(), 0, &mut send).map_err(io)?;
        if !q.follow || !go_on {
            return Ok(());
        }
        // A past `until` ends the stream at once, as Docker's does.
        if q.until.is_some_and(|u| u <= now) {
            return Ok(());
        }
        loop {
            if cancelled() {
                return Ok(());
            }
            if q.until
                .is_some_and(|u| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) > u)
            {
                return Ok(());
            }
            let (p, go_on) = read_lines_from(&self.journal(), pos, &mut send).map_err(io)?;
            pos = p;
            if !go_on {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> EventMessage {
        let a = attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        EventMessage::new(kind, action, id, a)
    }

    #[test]
    fn filters_are_dockers() {
        let f = |items: &[&str]| EventFilter::parse(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let start = ev(
            "container",
            "start",
            "abc123",
            &[("name", "web"), ("image", "bb"), ("tier", "front")],
        );
        assert!(f(&["type=container", "event=start"]).matches(&start));
        assert!(f(&["container=web"]).matches(&start));
        assert!(f(&["container=abc"]).matches(&start));
        assert!(f(&["image=bb:latest"]).matches(&start));
        assert!(f(&["label=tier=front", "event=die", "event=start"]).matches(&start));
        assert!(!f(&["type=image"]).matches(&start));
        assert!(!f(&["label=tier=back"]).matches(&start));
        let exec = ev("container", "exec_start: sh", "abc123", &[]);
        assert!(f(&["event=exec_start"]).matches(&exec));
        assert!(EventFilter::parse(&["colour=red".into()]).is_err());
        assert_eq!(start.from, "bb");
        assert_eq!(start.status, "start");
    }

    #[test]
    fn times_are_seconds_dates_or_durations_ago() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:10:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_time("1704067200", now).unwrap(), 1_704_067_200_000_000_000);
        assert_eq!(parse_time("1704067200.5", now).unwrap(), 1_704_067_200_500_000_000);
        assert_eq!(parse_time("10m", now).unwrap(), 1_704_067_200_000_000_000);
        assert_eq!(
            parse_time("2024-01-01T00:00:00Z", now).unwrap(),
            1_704_067_200_000_000_000
        );
        assert!(parse_time("yesterday", now).is_err());
    }

    #[test]
    fn the_journal_is_appended_rotated_and_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::open(dir.path(), None).unwrap();
        e.record_event("volume", "create", "v1", BTreeMap::new());
        e.record_image_event("tag", "sha256:ab", "bb:latest");
        let mut seen = Vec::new();
        e.events(&EventQuery::default(), &|| false, &mut |ev| {
            seen.push(ev.action.clone());
            true
        })
        .unwrap();
        assert_eq!(seen, ["create", "tag"]);
        let q = EventQuery {
            filter: EventFilter::parse(&["type=image".into()]).unwrap(),
            ..Default::default()
        };
        let mut n = 0;
        e.events(&q, &|| false, &mut |_| {
            n += 1;
            true
        })
        .unwrap();
        assert_eq!(n, 1);
    }
}
