//! `berth events`: the store's events journal, as `docker events` prints
//! it: `--since`, `--until`, `--filter`, `--format`. Without `--until` it
//! follows new events until interrupted.

use anyhow::Result;
use clap::Args;

use berth_engine::events::{parse_time, EventFilter, EventMessage, EventQuery};
use berth_engine::Engine;

use crate::cli::format::Format;

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Show events created since this time (a timestamp, an RFC 3339 time or a duration like 10m)
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this time
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided (type, event, container, image, network, volume, label)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format the output using a Go template (`json` for JSON lines)
    #[arg(long)]
    pub format: Option<String>,
}

/// Docker's default line: `TIME TYPE ACTION ID (k=v, …)`.
fn default_line(ev: &EventMessage) -> String {
    let secs = ev.time_nano.div_euclid(1_000_000_000);
    let nanos = ev.time_nano.rem_euclid(1_000_000_000) as u32;
    let t = chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%dT%H:%M:%S%.9f%:z")
                .to_string()
        })
        .unwrap_or_default();
    let attrs: Vec<String> = ev.actor.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{t} {} {} {} ({})", ev.kind, ev.action, ev.actor.id, attrs.join(", "))
}

pub fn run(engine: &Engine, a: EventsArgs) -> Result<i32> {
    let now = chrono::Utc::now();
    let time = |s: &Option<String>| s.as_deref().map(|v| parse_time(v, now)).transpose();
    let q = EventQuery {
        since: time(&a.since)?,
        until: time(&a.until)?,
        follow: true,
        filter: EventFilter::parse(&a.filter)?,
    };
    let format = Format::parse(a.format.as_deref())?;
    let mut failed = None;
    engine.events(&q, &|| false, &mut |ev| {
        let line = if format.is_default() {
            Ok(default_line(ev))
        } else {
            serde_json::to_value(ev)
                .map_err(anyhow::Error::from)
                .and_then(|v| format.render_inspect(&v))
        };
        match line {
            Ok(l) => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{l}").and_then(|()| out.flush()).is_ok()
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(0),
    }
}
