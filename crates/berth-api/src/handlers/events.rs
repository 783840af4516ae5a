//! `GET /events?since&until&filters`: the engine's journal as Docker's
//! stream of JSON messages, replayed from `since` and followed until
//! `until` (or the client leaves).

use std::io::Write;

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;

use berth_engine::events::{parse_time, EventFilter, EventQuery};

use super::Ctx;
use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::{as_pairs, only_filters};

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

pub async fn stream(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let f = ctx.query.filters()?;
    only_filters(&f, KEYS)?;
    let filter = EventFilter::parse(&as_pairs(&f, KEYS)).map_err(ApiError::from)?;
    let now = chrono::Utc::now();
    let time = |k: &str| -> Result<Option<i64>, ApiError> {
        match ctx.query.get(k).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_time(v, now).map(Some).map_err(ApiError::from),
        }
    };
    let until = time("until")?;
    // Without `since` or `until`, dockerd streams only what happens from
    // now on: no replay (docker-compose's `logs` and `up` would otherwise
    // see the starts of containers long gone).
    let since = match time("since")? {
        None if until.is_none() => now.timestamp_nanos_opt(),
        s => s,
    };
    let q = EventQuery {
        since,
        until,
        follow: true,
        filter,
    };
    let engine = ctx.engine.clone();
    let body = body::stream_now(move |w| {
        let w = std::cell::RefCell::new(w);
        let cancelled = || w.borrow().is_closed();
        let mut out = |ev: &berth_engine::events::EventMessage| {
            let line = match serde_json::to_string(ev) {
                Ok(l) => l + "\n",
                Err(_) => return true,
            };
            let mut w = w.borrow_mut();
            w.write_all(line.as_bytes()).and_then(|()| w.flush()).is_ok()
        };
        engine.events(&q, &cancelled, &mut out).map_err(ApiError::from)
    });
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}
