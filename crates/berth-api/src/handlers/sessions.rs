//! The streaming container endpoints: `attach` (hijacked), `exec` (create,
//! hijacked start, inspect, resize), `resize`, `logs` and `stats`.
//!
//! The service remembers two things in memory, as dockerd does: exec
//! instances (an exec is created by one request and started by another),
//! and attach clients that came before their container's start (the docker
//! CLI's `run` attaches first, so no output is lost): the start then hands
//! them the session the engine opened before the process ran.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use berth_engine::containers::lifecycle::PendingSession;
use berth_engine::streams::{
    control_channel, multiplexed, parse_detach_keys, AttachOptions, ConsoleSize, ControlSender, ExecOptions,
    LogOptions, StreamIn, StreamOut, Streams,
};
use berth_engine::Engine;

use super::Ctx;
use crate::body::{self, Body};
use crate::error::ApiError;
use crate::hijack::{self, Frames, RawWriter, MULTIPLEXED_STREAM, RAW_STREAM};
use crate::router::ApiVersion;

/// One exec instance.
struct Exec {
    container: String,
    opts: ExecOptions,
    attach: (bool, bool, bool),
    running: bool,
    exit_code: Option<i32>,
    console: Option<ConsoleSize>,
    controls: Option<ControlSender>,
}

/// What the service keeps between requests.
#[derive(Default)]
pub struct Shared {
    execs: Mutex<HashMap<String, Exec>>,
    /// Attach clients waiting for their container's start, by container ID.
    waiting: Mutex<HashMap<String, Vec<oneshot::Sender<PendingSession>>>>,
    /// The control channels of live attach sessions, by container ID
    /// (where `resize` goes).
    controls: Mutex<HashMap<String, ControlSender>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Whether an attach client waits for `id`'s start.
    pub fn has_waiting(&self, id: &str) -> bool {
        lock(&self.waiting)
            .get(id)
            .is_some_and(|v| v.iter().any(|t| !t.is_closed()))
    }

    /// Hands the session of a container just started to the attach
    /// client waiting for it.
    pub fn hand_over(&self, id: &str, session: PendingSession) {
        let mut w = lock(&self.waiting);
        let list = w.entry(id.to_string()).or_default();
        let mut session = Some(session);
        while let Some(tx) = list.pop() {
            match tx.send(session.take().expect("present")) {
                Ok(()) => break,
                Err(back) => session = Some(back),
            }
        }
        if list.is_empty() {
            w.remove(id);
        }
    }
}

/// The console size of `?h=&w=`.
fn size_of(ctx: &Ctx) -> Result<Option<ConsoleSize>, ApiError> {
    let h = ctx.query.int("h")?;
    let w = ctx.query.int("w")?;
    Ok(match (h, w) {
        (Some(h), Some(w)) if h > 0 && w > 0 => Some(ConsoleSize {
            rows: h.min(u16::MAX as i64) as u16,
            cols: w.min(u16::MAX as i64) as u16,
        }),
        _ => None,
    })
}

fn console_of(v: &Value) -> Option<ConsoleSize> {
    let a = v.as_array()?;
    let (h, w) = (a.first()?.as_u64()?, a.get(1)?.as_u64()?);
    (h > 0 && w > 0).then(|| ConsoleSize {
        rows: h.min(u16::MAX as u64) as u16,
        cols: w.min(u16::MAX as u64) as u16,
    })
}

/// The content type of a hijacked stream: raw with a tty; multiplexed
/// (which 1.42 and later name so) without.
fn stream_type(tty: bool, v: ApiVersion) -> &'static str {
    if tty || v < ApiVersion::new(1, 42) {
        RAW_STREAM
    } else {
        MULTIPLEXED_STREAM
    }
}

/// The output half of a session: one raw stream with a tty, frames without
/// unless `mux` is off (a websocket: both streams raw on one connection,
/// as dockerd's `attach/ws` sends them).
fn outputs(w: RawWriter, tty: bool, mux: bool, want_out: bool, want_err: bool) -> (StreamOut, StreamOut) {
    let sink = || StreamOut::Writer(Box::new(std::io::sink()));
    let pick = |want: bool, w: Box<dyn Write + Send>| if want { StreamOut::Writer(w) } else { sink() };
    if tty {
        return (pick(want_out, Box::new(w)), sink());
    }
    if !mux {
        return (pick(want_out, Box::new(w.clone())), pick(want_err, Box::new(w)));
    }
    let (o, e) = multiplexed(w);
    (pick(want_out, Box::new(o)), pick(want_err, Box::new(e)))
}

/// How an attach client is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `POST …/attach`: the HTTP connection taken over (upgraded or not).
    Hijacked,
    /// `GET …/attach/ws`: a websocket.
    WebSocket,
}

/// `POST /containers/{id}/attach?stream&stdin&stdout&stderr&logs&detachKeys`,
/// and `GET /containers/{id}/attach/ws` with the same parameters: the
/// websocket carries stdout and stderr unframed, in binary messages (text
/// before 1.28), and before API 1.42 attaches all three streams whatever
/// the parameters say, as dockerd does.
pub async fn attach(
    ctx: &Ctx,
    word: String,
    req: Request<Incoming>,
    transport: Transport,
) -> Result<Response<Body>, ApiError> {
    let q = &ctx.query;
    let ws = transport == Transport::WebSocket;
    let all = ws && ctx.version < ApiVersion::new(1, 42);
    let (stream, want_in, want_out, want_err, logs) = (
        q.bool("stream"),
        all || q.bool("stdin"),
        all || q.bool("stdout"),
        all || q.bool("stderr"),
        q.bool("logs"),
    );
    let keys = parse_detach_keys(q.get("detachKeys").unwrap_or("")).map_err(ApiError::bad_request)?;
    let c = ctx.blocking(move |e| e.container(&word)).await?;
    let (id, tty, status) = (c.rec.id.clone(), c.cfg.tty, c.status());
    // The handshake is checked before anything waits for the container.
    let (resp, raw) = match transport {
        Transport::Hijacked => hijack::hijack(&req, &ctx.takeover, stream_type(tty, ctx.version)),
        Transport::WebSocket => hijack::websocket(&req, &ctx.takeover).map_err(ApiError::bad_request)?,
    };
    let frames = if ctx.version < ApiVersion::new(1, 28) {
        Frames::Text
    } else {
        Frames::Binary
    };
    // Attaching to a container that is not running waits for its next
    // start, as dockerd's attach does: `docker start -a` attaches, then
    // starts, a created container or one that ran before.
    let waiter = if stream && !status.is_up() {
        let (tx, rx) = oneshot::channel();
        lock(&ctx.shared.waiting).entry(id.clone()).or_default().push(tx);
        Some(rx)
    } else {
        None
    };
    let stream = stream && (waiter.is_some() || status.is_up());
    let engine = ctx.engine.clone();
    let shared = ctx.shared.clone();
    let guard = ctx.activity.begin();
    tokio::spawn(async move {
        let _guard = guard;
        let Ok(raw) = raw.await else { return };
        let (reader, writer) = if ws {
            raw.into_websocket(frames)
        } else {
            raw.into_blocking()
        };
        let session = match waiter {
            Some(rx) => match next_start(rx, &engine, &id).await {
                NextStart::Session(s) => Some(s),
                NextStart::Running => None,
                NextStart::Gone => return,
            },
            None => None,
        };
        let _ = tokio::task::spawn_blocking(move || {
            let keep = writer.clone();
            let (mut out, mut err) = outputs(writer, tty, !ws, want_out, want_err);
            if logs {
                let opts = LogOptions::default();
                let (mut o, mut e) = (out.into_writer(), err.into_writer());
                let _ = engine.container_logs(&id, &opts, &mut o, &mut e);
                (out, err) = (StreamOut::Writer(o), StreamOut::Writer(e));
            }
            if !stream {
                return;
            }
            let (ctl_tx, ctl_rx) = match control_channel() {
                Ok(c) => c,
                Err(e) => {
                    log::warn!("attach: {e}");
                    return;
                }
            };
            lock(&shared.controls).insert(id.clone(), ctl_tx);
            let streams = Streams {
                stdin: want_in.then(|| StreamIn::Reader(Box::new(reader))),
                stdout: out,
                stderr: err,
                tty,
                controls: Some(ctl_rx),
                console_size: None,
            };
            let opts = AttachOptions {
                detach_keys: keys,
                close_stdin_on_eof: false,
            };
            let res = match session {
                Some(s) => s.run(&opts, streams),
                None => engine.attach_container(&id, &opts, streams),
            };
            if let Err(e) = res {
                log::debug!("attach to {id} ended: {e}");
            }
            lock(&shared.controls).remove(&id);
            drop(keep);
        })
        .await;
    });
    Ok(resp)
}

/// How a wait for a container's next start ended.
enum NextStart {
    /// Started through this service: the session opened before its process ran.
    Session(PendingSession),
    /// Started another way (the CLI, a restart policy): join it as `attach` does.
    Running,
    /// Removed, or the service lost the waiter.
    Gone,
}

/// Waits for the session a start through this service hands over on
/// `rx`, looking every second whether the container was started another
/// way or removed meanwhile (then the client's stream ends).
async fn next_start(mut rx: oneshot::Receiver<PendingSession>, engine: &Arc<Engine>, id: &str) -> NextStart {
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(1), &mut rx).await {
            Ok(Ok(s)) => return NextStart::Session(s),
            Ok(Err(_)) => return NextStart::Gone,
            Err(_) => {
                let (e, id) = (engine.clone(), id.to_string());
                let now = tokio::task::spawn_blocking(move || e.container(&id).map(|c| c.status().is_up())).await;
                match now {
                    Ok(Ok(false)) => continue,
                    Ok(Ok(true)) => return NextStart::Running,
                    _ => return NextStart::Gone,
                }
            }
        }
    }
}

/// `POST /containers/{id}/start`, with the attach clients waiting for it.
pub async fn start(ctx: &Ctx, word: String) -> Result<Response<Body>, ApiError> {
    let shared = ctx.shared.clone();
    let started = ctx
        .blocking(move |e| {
            let c = e.container(&word)?;
            if c.state.is_running() {
                return Ok(false);
            }
            if shared.has_waiting(&c.rec.id) {
                let session = e.start_with_session(&c.rec.id, None)?;
                shared.hand_over(&c.rec.id, session);
            } else {
                e.start_detached(&c.rec.id, None)?;
            }
            Ok(true)
        })
        .await?;
    Ok(body::status(if started {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }))
}

/// `POST /containers/{id}/resize?h&w`: to the live attach session, if any.
pub async fn resize(ctx: &Ctx, word: String) -> Result<Response<Body>, ApiError> {
    let size = size_of(ctx)?;
    let c = ctx.blocking(move |e| e.container(&word)).await?;
    if !c.state.is_running() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", c.rec.id),
        ));
    }
    if let (Some(s), Some(tx)) = (size, lock(&ctx.shared.controls).get(&c.rec.id)) {
        tx.resize(s.rows, s.cols);
    }
    Ok(body::status(StatusCode::OK))
}

/// `POST /containers/{id}/exec`.
pub async fn exec_create(ctx: &Ctx, word: String, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let v: Value = body::read_json(req.into_body(), body::JSON_LIMIT)
        .await?
        .unwrap_or(Value::Null);
    let cmd = super::create::strings_of(&v["Cmd"], "Cmd")?;
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let c = ctx.blocking(move |e| e.container(&word)).await?;
    if c.status().as_str() == "paused" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is paused, unpause the container before exec", c.rec.id),
        ));
    }
    if !c.state.is_running() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Container {} is not running", c.rec.id),
        ));
    }
    let tty = v["Tty"].as_bool().unwrap_or(false);
    let attach = (
        v["AttachStdin"].as_bool().unwrap_or(false),
        v["AttachStdout"].as_bool().unwrap_or(false),
        v["AttachStderr"].as_bool().unwrap_or(false),
    );
    let opts = ExecOptions {
        cmd,
        env: super::create::strings_of(&v["Env"], "Env")?,
        working_dir: v["WorkingDir"].as_str().filter(|s| !s.is_empty()).map(str::to_string),
        user: v["User"].as_str().filter(|s| !s.is_empty()).map(str::to_string),
        tty,
        interactive: attach.0,
        detach: false,
        privileged: v["Privileged"].as_bool().unwrap_or(false),
    };
    let id = berth_engine::containers::random_hex(32);
    lock(&ctx.shared.execs).insert(
        id.clone(),
        Exec {
            container: c.rec.id.clone(),
            opts,
            attach,
            running: false,
            exit_code: None,
            console: console_of(&v["ConsoleSize"]),
            controls: None,
        },
    );
    Ok(body::json(StatusCode::CREATED, &json!({ "Id": id })))
}

fn no_exec(id: &str) -> ApiError {
    ApiError::not_found(format!("No such exec instance: {id}"))
}

/// `POST /exec/{id}/start`: hijacked, or detached.
pub async fn exec_start(ctx: &Ctx, id: String, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (parts, b) = req.into_parts();
    let v: Value = body::read_json(b, body::JSON_LIMIT).await?.unwrap_or(Value::Null);
    let detach = v["Detach"].as_bool().unwrap_or(false);
    let (container, mut opts, attach, console, ctl_rx) = {
        let mut execs = lock(&ctx.shared.execs);
        let x = execs.get_mut(&id).ok_or_else(|| no_exec(&id))?;
        if x.running || x.exit_code.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("Error: Exec command {id} has already run"),
            ));
        }
        x.running = true;
        if let Some(c) = console_of(&v["ConsoleSize"]) {
            x.console = Some(c);
        }
        let ctl = if detach {
            None
        } else {
            let (tx, rx) = control_channel().map_err(|e| ApiError::internal(e.to_string()))?;
            x.controls = Some(tx);
            Some(rx)
        };
        (x.container.clone(), x.opts.clone(), x.attach, x.console, ctl)
    };
    let shared = ctx.shared.clone();
    let finish = move |shared: &Shared, id: &str, code: i32| {
        if let Some(x) = lock(&shared.execs).get_mut(id) {
            x.running = false;
            x.exit_code = Some(code);
            x.controls = None;
        }
    };
    if detach {
        opts.detach = true;
        let id2 = id.clone();
        let res = ctx
            .blocking(move |e| e.exec_in_container(&container, &opts, None))
            .await;
        match res {
            Ok(_) => {
                // Detached: Docker reports it running; its code is not known.
                Ok(body::status(StatusCode::OK))
            }
            Err(e) => {
                finish(&shared, &id2, 126);
                Err(e)
            }
        }
    } else {
        let req = Request::from_parts(parts, ());
        let tty = opts.tty;
        let (resp, raw) = hijack::hijack(&req, &ctx.takeover, stream_type(tty, ctx.version));
        let engine = ctx.engine.clone();
        let guard = ctx.activity.begin();
        tokio::spawn(async move {
            let _guard = guard;
            let Ok(raw) = raw.await else {
                finish(&shared, &id, -1);
                return;
            };
            let (reader, writer) = raw.into_blocking();
            let _ = tokio::task::spawn_blocking(move || {
                // The connection closes only once the exit code is known:
                // clients inspect the exec as soon as they read its end.
                let keep = writer.clone();
                let (out, err) = outputs(writer, tty, true, attach.1, attach.2);
                let streams = Streams {
                    stdin: attach.0.then(|| StreamIn::Reader(Box::new(reader))),
                    stdout: out,
                    stderr: err,
                    tty,
                    controls: ctl_rx,
                    console_size: console,
                };
                let code = match engine.exec_in_container(&container, &opts, Some(streams)) {
                    Ok(c) => c,
                    Err(e) => {
                        let mut k = keep.clone();
                        let _ = writeln!(k, "{}", ApiError::from(e).message);
                        126
                    }
                };
                finish(&shared, &id, code);
                drop(keep);
            })
            .await;
        });
        Ok(resp)
    }
}

/// `POST /exec/{id}/resize?h&w`.
pub async fn exec_resize(ctx: &Ctx, id: String) -> Result<Response<Body>, ApiError> {
    let size = size_of(ctx)?;
    let mut execs = lock(&ctx.shared.execs);
    let x = execs.get_mut(&id).ok_or_else(|| no_exec(&id))?;
    if let Some(s) = size {
        match &x.controls {
            Some(tx) if x.running => {
                tx.resize(s.rows, s.cols);
            }
            _ => x.console = Some(s),
        }
    }
    Ok(body::status(StatusCode::OK))
}

/// `GET /exec/{id}/json`.
pub async fn exec_inspect(ctx: &Ctx, id: String) -> Result<Response<Body>, ApiError> {
    let execs = lock(&ctx.shared.execs);
    let x = execs.get(&id).ok_or_else(|| no_exec(&id))?;
    let v = json!({
        "ID": id,
        "Running": x.running,
        "ExitCode": x.exit_code,
        "ProcessConfig": {
            "tty": x.opts.tty,
            "entrypoint": x.opts.cmd[0],
            "arguments": &x.opts.cmd[1..],
            "privileged": x.opts.privileged,
            "user": x.opts.user.clone().unwrap_or_default(),
        },
        "OpenStdin": x.attach.0,
        "OpenStdout": x.attach.1,
        "OpenStderr": x.attach.2,
        "CanRemove": false,
        "ContainerID": x.container,
        "DetachKeys": "",
        "Pid": 0,
    });
    Ok(body::json(StatusCode::OK, &v))
}

/// Docker's time parameters: seconds since the epoch, with an optional
/// fraction (`1700000000.5`); 0 or absent is none.
fn time_param(ctx: &Ctx, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let Some(v) = ctx.query.get(key).map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::bad_request(format!("invalid value for {key}: {v:?}"));
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&chrono::Utc)));
    }
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s.parse().map_err(|_| bad())?;
    let mut f = frac.to_string();
    f.truncate(9);
    while f.len() < 9 {
        f.push('0');
    }
    let nanos: u32 = f.parse().map_err(|_| bad())?;
    if secs == 0 && nanos == 0 {
        return Ok(None);
    }
    Ok(chrono::DateTime::from_timestamp(secs, nanos))
}

/// `GET /containers/{id}/logs?follow&stdout&stderr&since&until&timestamps&tail`.
pub async fn logs(ctx: &Ctx, word: String) -> Result<Response<Body>, ApiError> {
    let q = &ctx.query;
    let (want_out, want_err) = (q.bool("stdout"), q.bool("stderr"));
    if !want_out && !want_err {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.get("tail").map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid value for tail: {t:?}")))?
                .max(0) as usize,
        ),
    };
    let opts = LogOptions {
        follow: q.bool("follow"),
        tail,
        timestamps: q.bool("timestamps"),
        details: q.bool("details"),
        since: time_param(ctx, "since")?,
        until: time_param(ctx, "until")?,
    };
    let c = ctx.blocking(move |e| e.container(&word)).await?;
    // Refused before the answer starts: a status, not a cut stream.
    berth_engine::containers::lifecycle::logs_readable(&c)?;
    let (id, tty) = (c.rec.id.clone(), c.cfg.tty);
    let engine = ctx.engine.clone();
    let body = body::stream_now(move |w| {
        let res = if tty {
            let mut sink = std::io::sink();
            let (o, e): (&mut dyn Write, &mut dyn Write) = match (want_out, want_err) {
                (true, _) => (w, &mut sink),
                (false, _) => (&mut sink, w),
            };
            engine.container_logs(&id, &opts, o, e)
        } else {
            let (mut o, mut e) = multiplexed(w);
            let mut so = std::io::sink();
            let mut se = std::io::sink();
            let out: &mut dyn Write = if want_out { &mut o } else { &mut so };
            let err: &mut dyn Write = if want_err { &mut e } else { &mut se };
            engine.container_logs(&id, &opts, out, err)
        };
        res.map_err(ApiError::from)
    });
    let mut r = Response::new(body);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if tty { RAW_STREAM } else { MULTIPLEXED_STREAM }),
    );
    Ok(r)
}

/// Docker's stats JSON from one sample (and the one before it).
fn stats_json(c: &berth_engine::containers::Container, now: &Sample, pre: Option<&Sample>) -> Value {
    let cpus = berth_engine::host_cpus() as u64;
    let cpu = |s: Option<&Sample>| match s {
        Some(s) => json!({
            "cpu_usage": {"total_usage": s.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": s.cpu_ns},
            "system_cpu_usage": s.system_ns,
            "online_cpus": cpus,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        }),
        None => json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}}),
    };
    let mut out = json!({
        "read": now.read,
        "preread": pre.map(|p| p.read.clone()).unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string()),
        "name": format!("/{}", c.rec.name),
        "id": c.rec.id,
        "pids_stats": {"current": now.pids, "limit": now.pids_limit},
        "blkio_stats": {
            "io_service_bytes_recursive": now.blkio_bytes,
            "io_serviced_recursive": now.blkio_ios,
            "io_queue_service_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu(Some(now)),
        "precpu_stats": cpu(pre),
        "memory_stats": {
            "usage": now.mem,
            "limit": now.mem_limit,
            "stats": {},
        },
    });
    if !now.networks.is_null() {
        out["networks"] = now.networks.clone();
    }
    out
}

struct Sample {
    read: String,
    cpu_ns: u64,
    system_ns: u64,
    mem: u64,
    mem_limit: u64,
    pids: u64,
    pids_limit: Option<u64>,
    /// Docker's arrays of `{major, minor, op, value}` (null when empty).
    blkio_bytes: Value,
    blkio_ios: Value,
    /// `{"eth0": {rx_bytes…}}`; null when not on bridge networks.
    networks: Value,
}

/// The host's CPU time in nanoseconds (`/proc/stat`'s first line), as
/// Docker's `system_cpu_usage`.
fn system_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on Linux.
    ticks * 10_000_000
}

fn sample(e: &berth_engine::Engine, c: &berth_engine::containers::Container) -> berth_engine::Result<Sample> {
    let s = e.container_stats(c)?;
    Ok(Sample {
        read: berth_engine::now_rfc3339(),
        cpu_ns: s.cpu_usage_ns,
        system_ns: system_cpu_ns(),
        mem: s.memory_usage,
        mem_limit: s.memory_limit.unwrap_or_else(berth_engine::system::host_memory),
        pids: s.pids_current,
        pids_limit: s.pids_limit,
        blkio_bytes: if s.blkio_bytes.is_empty() {
            Value::Null
        } else {
            json!(s.blkio_bytes)
        },
        blkio_ios: if s.blkio_ios.is_empty() {
            Value::Null
        } else {
            json!(s.blkio_ios)
        },
        networks: if s.networks.is_empty() {
            Value::Null
        } else {
            s.networks
                .iter()
                .map(|(n, c)| (n.clone(), json!(c)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        },
    })
}

/// `GET /containers/{id}/stats?stream&one-shot`.
pub async fn stats(ctx: &Ctx, word: String) -> Result<Response<Body>, ApiError> {
    let stream = ctx.query.bool_or("stream", true);
    let one_shot = ctx.query.bool("one-shot");
    let c = ctx.blocking(move |e| e.container(&word)).await?;
    if !c.state.is_running() {
        // Docker answers a stopped container with zeroes; so does berth.
        let zero = Sample {
            read: "0001-01-01T00:00:00Z".into(),
            cpu_ns: 0,
            system_ns: 0,
            mem: 0,
            mem_limit: 0,
            pids: 0,
            pids_limit: None,
            blkio_bytes: Value::Null,
            blkio_ios: Value::Null,
            networks: Value::Null,
        };
        return Ok(body::json(StatusCode::OK, &stats_json(&c, &zero, None)));
    }
    let engine = ctx.engine.clone();
    if !stream {
        let v = ctx
            .blocking(move |e| {
                let first = sample(e, &c)?;
                if one_shot {
                    return Ok(stats_json(&c, &first, None));
                }
                // Without one-shot Docker waits a second for a CPU delta.
                std::thread::sleep(std::time::Duration::from_secs(1));
                let second = sample(e, &c)?;
                Ok(stats_json(&c, &second, Some(&first)))
            })
            .await?;
        return Ok(body::json(StatusCode::OK, &v));
    }
    let body = body::stream_now(move |w| {
        let mut pre: Option<Sample> = None;
        loop {
            let now = match sample(&engine, &c) {
                Ok(s) => s,
                Err(_) => return Ok(()), // it stopped
            };
            let line = format!("{}\n", stats_json(&c, &now, pre.as_ref()));
            if w.write_all(line.as_bytes()).and_then(|()| w.flush()).is_err() {
                return Ok(());
            }
            pre = Some(now);
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    });
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}
