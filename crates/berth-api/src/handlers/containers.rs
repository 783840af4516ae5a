//! Containers: list, inspect, start/stop/restart/kill/pause/unpause, wait,
//! rename, top, changes, export, archive (GET/HEAD/PUT, confined as `cp`
//! is), remove, prune.

use std::io::Write;

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use berth_engine::containers::create::CreateOptions;
use berth_engine::containers::files::CpOptions;
use berth_engine::containers::view::{command_string, status_string, PsFilter};
use berth_engine::containers::Container;
use berth_engine::path_stat::PathStat;
use berth_engine::wait::WaitCondition;
use berth_engine::Engine;

use super::sessions::Transport;
use super::{unix_time, Ctx};
use crate::body::{self, Body, BodyReader};
use crate::error::ApiError;
use crate::query::{as_pairs, only_filters};
use crate::router::{ApiVersion, ContainerOp};

/// The header `archive` answers carry the path's stat in.
pub const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// Docker's `Port` entries: published ports, then exposed ones not
/// published (only while the container runs, as Docker lists them).
fn ports(e: &Engine, c: &Container) -> Value {
    if !c.state.is_running() {
        return json!([]);
    }
    let bindings = e.container_ports(c);
    let mut out: Vec<Value> = bindings
        .iter()
        .map(|b| {
            json!({
                "IP": b.host_ip.to_string(),
                "PrivatePort": b.container_port,
                "PublicPort": b.host_port,
                "Type": b.proto.to_string(),
            })
        })
        .collect();
    if let Some(exposed) = c.rec.config["Config"]["ExposedPorts"].as_object() {
        for key in exposed.keys() {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let Ok(port) = port.parse::<u16>() else { continue };
            let published = bindings
                .iter()
                .any(|b| b.container_port == port && b.proto.to_string() == proto);
            if !published {
                out.push(json!({"PrivatePort": port, "Type": proto}));
            }
        }
    }
    json!(out)
}

/// Docker's `ContainerSummary` (`/containers/json`, `system df`).
pub fn summary(e: &Engine, c: &Container, size: bool) -> Value {
    let image = c.rec.config["Config"]["Image"]
        .as_str()
        .unwrap_or(&c.cfg.image_ref)
        .to_string();
    let mode = c.rec.config["HostConfig"]["NetworkMode"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let network = json!({
        "IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": "", "EndpointID": "",
        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": null,
    });
    let net_name = if mode == "default" {
        "bridge".to_string()
    } else {
        mode.clone()
    };
    let mut v = json!({
        "Id": c.rec.id,
        "Names": [format!("/{}", c.rec.name)],
        "Image": image,
        "ImageID": c.rec.image_id,
        "Command": command_string(c),
        "Created": unix_time(&c.rec.created),
        "Ports": ports(e, c),
        "Labels": c.cfg.labels,
        "State": c.state.status,
        "Status": status_string(c),
        "HostConfig": {"NetworkMode": mode},
        "NetworkSettings": {"Networks": {net_name: network}},
        "Mounts": c.rec.config["Mounts"].as_array().cloned().unwrap_or_default(),
    });
    if size {
        if let Ok(i) = e.inspect_container(&c.rec.id, true) {
            v["SizeRw"] = i["SizeRw"].clone();
            v["SizeRootFs"] = i["SizeRootFs"].clone();
        }
    }
    v
}

/// `GET /containers/json?all&limit&size&filters`.
pub async fn list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    const KEYS: &[&str] = &[
        "status", "name", "label", "ancestor", "health", "id", "exited", "before", "since", "publish", "expose",
        "volume", "network",
    ];
    let f = ctx.query.filters()?;
    only_filters(&f, KEYS)?;
    let filter = PsFilter::parse(&as_pairs(&f, KEYS)).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let limit = ctx.query.int("limit")?.filter(|n| *n > 0).map(|n| n as usize);
    // A limit lists stopped containers too, as in Docker.
    let all = ctx.query.bool("all") || limit.is_some();
    let size = ctx.query.bool("size");
    let rows = ctx
        .blocking(move |e| {
            let mut list = e.ps(all, &filter)?;
            list.sort_by(|a, b| b.rec.created.cmp(&a.rec.created));
            if let Some(n) = limit {
                list.truncate(n);
            }
            Ok(list.iter().map(|c| summary(e, c, size)).collect::<Vec<_>>())
        })
        .await?;
    Ok(body::json(StatusCode::OK, &json!(rows)))
}

/// `POST /containers/prune?filters`: every container that is not
/// running, or those the `until`/`label`/`label!` filters let go.
pub async fn prune(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let f = ctx.query.filters()?;
    crate::query::only_filters(&f, &["until", "label", "label!"])?;
    let items = crate::query::as_pairs(&f, &["until", "label", "label!"]);
    let filter = berth_engine::containers::prune::PruneFilter::parse(&items).map_err(ApiError::from)?;
    let (removed, freed) = ctx.blocking(move |e| e.prune_containers_filtered(&filter)).await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({
            "ContainersDeleted": if removed.is_empty() { Value::Null } else { json!(removed) },
            "SpaceReclaimed": freed,
        }),
    ))
}

/// `POST /containers/create?name&platform`: 201 `{"Id", "Warnings"}`.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let mut v: Value = body::read_json(req.into_body(), body::JSON_LIMIT)
        .await?
        .ok_or_else(|| ApiError::bad_request("Config cannot be empty in order to create a container"))?;
    if ctx.version >= ApiVersion::new(1, 42) {
        // Gone from API 1.42: dockerd ignores it (and clients stop sending it).
        if let Some(h) = v.get_mut("HostConfig").and_then(Value::as_object_mut) {
            h.remove("KernelMemory");
        }
    }
    let spec = super::create::spec_of(&v, ctx.query.get("name"), ctx.query.get("platform"))?;
    let (created, hold) = ctx
        .blocking(move |e| e.create_to_hold(&spec, CreateOptions::default()))
        .await?;
    // Its start is likely next (a client's `run`): the runtime's create
    // goes on while the client gets there. A start waits for it.
    if let Some(hold) = hold {
        let engine = ctx.engine.clone();
        tokio::task::spawn_blocking(move || engine.hold_created(hold));
    }
    Ok(body::json(
        StatusCode::CREATED,
        &json!({"Id": created.id, "Warnings": created.warnings}),
    ))
}

/// `POST /commit?container&repo&tag&comment&author&pause&changes`.
pub async fn commit(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let q = &ctx.query;
    let word = q.required("container")?.to_string();
    let reference = q
        .get("repo")
        .filter(|r| !r.is_empty())
        .map(|repo| match q.get("tag").filter(|t| !t.is_empty()) {
            Some(tag) => format!("{repo}:{tag}"),
            None => repo.to_string(),
        });
    let changes = q.all("changes");
    let message = q.get("comment").filter(|c| !c.is_empty()).map(str::to_string);
    let author = q.get("author").filter(|c| !c.is_empty()).map(str::to_string);
    let pause = q.bool_or("pause", true);
    // The body (a container config to merge) is not used: Docker's CLI
    // sends the changes as `changes`.
    drop(req);
    let id = ctx
        .blocking(move |e| {
            e.commit_container(
                &word,
                reference.as_deref(),
                &changes,
                message.as_deref(),
                author.as_deref(),
                pause,
            )
        })
        .await?;
    Ok(body::json(StatusCode::CREATED, &json!({"Id": id.to_string()})))
}

/// The `X-Docker-Container-Path-Stat` value: base64 of Docker's JSON.
pub fn path_stat_header(s: &PathStat) -> String {
    let v = json!({
        "name": s.name,
        "size": s.size,
        "mode": s.mode,
        "mtime": s.mtime,
        "linkTarget": s.link_target,
    });
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

/// Timeouts of stop and restart: seconds; a negative one waits forever.
fn stop_timeout(ctx: &Ctx) -> Result<Option<u32>, ApiError> {
    Ok(ctx
        .query
        .int("t")?
        .map(|t| if t < 0 { u32::MAX } else { t.min(u32::MAX as i64) as u32 }))
}

/// `/containers/{id}/…`.
pub async fn one(ctx: &Ctx, word: String, op: ContainerOp, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let q = &ctx.query;
    match op {
        ContainerOp::Inspect => {
            let size = q.bool("size");
            let mut v = ctx.blocking(move |e| e.inspect_container(&word, size)).await?;
            short_id_aliases(&mut v);
            Ok(body::json(StatusCode::OK, &v))
        }
        ContainerOp::Start => super::sessions::start(ctx, word).await,
        ContainerOp::Stop => {
            if q.get("signal").is_some_and(|s| !s.is_empty()) {
                return Err(ApiError::bad_request(
                    "stop with a signal is not supported yet: berth stops with the container's stop signal",
                ));
            }
            let t = stop_timeout(ctx)?;
            let stopped = ctx
                .blocking(move |e| {
                    if !e.container(&word)?.state.is_running() {
                        return Ok(false);
                    }
                    e.stop_container(&word, t).map(|()| true)
                })
                .await?;
            Ok(body::status(if stopped {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_MODIFIED
            }))
        }
        ContainerOp::Restart => {
            let t = stop_timeout(ctx)?;
            ctx.blocking(move |e| e.restart_container(&word, t, None)).await?;
            Ok(body::status(StatusCode::NO_CONTENT))
        }
        ContainerOp::Kill => {
            let signal = q.get("signal").filter(|s| !s.is_empty()).unwrap_or("KILL").to_string();
            ctx.blocking(move |e| e.kill_container(&word, &signal)).await?;
            Ok(body::status(StatusCode::NO_CONTENT))
        }
        ContainerOp::Pause => {
            ctx.blocking(move |e| e.pause_container(&word)).await?;
            Ok(body::status(StatusCode::NO_CONTENT))
        }
        ContainerOp::Unpause => {
            ctx.blocking(move |e| e.unpause_container(&word)).await?;
            Ok(body::status(StatusCode::NO_CONTENT))
        }
        ContainerOp::Wait => wait(ctx, word).await,
        ContainerOp::Attach => super::sessions::attach(ctx, word, req, Transport::Hijacked).await,
        ContainerOp::AttachWs => super::sessions::attach(ctx, word, req, Transport::WebSocket).await,
        ContainerOp::Logs => super::sessions::logs(ctx, word).await,
        ContainerOp::Resize => super::sessions::resize(ctx, word).await,
        ContainerOp::Stats => super::sessions::stats(ctx, word).await,
        ContainerOp::ExecCreate => super::sessions::exec_create(ctx, word, req).await,
        ContainerOp::Update => {
            let v: Value = body::read_json(req.into_body(), body::JSON_LIMIT)
                .await?
                .unwrap_or(Value::Null);
            let u = super::create::update_of(&v)?;
            let warnings = ctx.blocking(move |e| e.update_container(&word, &u)).await?;
            Ok(body::json(StatusCode::OK, &json!({"Warnings": warnings})))
        }
        ContainerOp::Rename => {
            let name = q.required("name")?.to_string();
            ctx.blocking(move |e| e.rename_container(&word, &name)).await?;
            Ok(body::status(StatusCode::NO_CONTENT))
        }
        ContainerOp::Top => {
            let args = q.get("ps_args").unwrap_or("").to_string();
            let t = ctx.blocking(move |e| e.container_top_table(&word, &args)).await?;
            Ok(body::json(
                StatusCode::OK,
                &json!({"Titles": t.titles, "Processes": t.processes}),
            ))
        }
        ContainerOp::Changes => {
            let changes = ctx.blocking(move |e| e.container_diff(&word)).await?;
            let v: Vec<Value> = changes
                .iter()
                .map(|(kind, path)| {
                    let k = match kind {
                        'C' => 0,
                        'A' => 1,
                        _ => 2,
                    };
                    json!({"Path": path, "Kind": k})
                })
                .collect();
            // Docker answers `null` when nothing changed.
            let v = if v.is_empty() { Value::Null } else { json!(v) };
            Ok(body::json(StatusCode::OK, &v))
        }
        ContainerOp::Export => {
            let engine = ctx.engine.clone();
            let body = body::stream_bulk(move |out| engine.export_container(&word, out)).await?;
            Ok(tar_response(body))
        }
        ContainerOp::ArchiveHead => {
            let path = q.required("path")?.to_string();
            let stat = ctx.blocking(move |e| e.container_path_stat(&word, &path)).await?;
            let mut r = body::status(StatusCode::OK);
            r.headers_mut()
                .insert(PATH_STAT_HEADER, header_value(&path_stat_header(&stat))?);
            Ok(r)
        }
        ContainerOp::ArchiveGet => {
            let path = q.required("path")?.to_string();
            let (w2, p2) = (word.clone(), path.clone());
            let stat = ctx.blocking(move |e| e.container_path_stat(&w2, &p2)).await?;
            let engine = ctx.engine.clone();
            let body =
                body::stream_bulk(move |out| engine.copy_from_container(&word, &path, "-", &CpOptions::default(), out))
                    .await?;
            let mut r = tar_response(body);
            r.headers_mut()
                .insert(PATH_STAT_HEADER, header_value(&path_stat_header(&stat))?);
            Ok(r)
        }
        ContainerOp::ArchivePut => {
            let path = q.required("path")?.to_string();
            let opts = CpOptions {
                archive: q.bool("copyUIDGID"),
                follow_link: false,
            };
            let input = BodyReader::new(req.into_body());
            ctx.blocking(move |e| e.copy_into_container("-", &word, &path, &opts, Box::new(input)))
                .await?;
            Ok(body::status(StatusCode::OK))
        }
        ContainerOp::Remove => {
            if q.bool("link") {
                return Err(ApiError::bad_request("berth has no container links to remove"));
            }
            let (force, volumes) = (q.bool("force"), q.bool("v"));
            ctx.blocking(move |e| e.remove_container(&word, force, volumes)).await?;
            Ok(body::status(StatusCode::NO_CONTENT))
        }
    }
}

fn header_value(s: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(s).map_err(|e| ApiError::internal(format!("building a header: {e}")))
}

fn tar_response(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    r
}

/// `POST /containers/{id}/wait?condition=`: the status goes out at once
/// (clients wait for it before they start the container); the body when
/// the condition holds.
async fn wait(ctx: &Ctx, word: String) -> Result<Response<Body>, ApiError> {
    let cond: WaitCondition = ctx
        .query
        .get("condition")
        .unwrap_or("")
        .parse()
        .map_err(|e: berth_engine::EngineError| ApiError::bad_request(e.message()))?;
    let id = ctx.blocking(move |e| Ok(e.container(&word)?.rec.id)).await?;
    let engine = ctx.engine.clone();
    let body = body::stream_now(move |w| {
        let closed = || w.is_closed();
        let v = match engine.wait_for_condition(&id, cond, &closed) {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": ApiError::from(e).message}}),
        };
        w.write_all(format!("{v}\n").as_bytes())
            .map_err(|e| ApiError::internal(format!("sending the result: {e}")))
    });
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// Up to API 1.44 dockerd lists a container's short ID among its aliases
/// on a user-defined network (it is one of its DNS names). docker-compose
/// looks for it there: without it, every start disconnects the container
/// and connects it again.
fn short_id_aliases(v: &mut Value) {
    let Some(short) = v["Id"].as_str().and_then(|id| id.get(..12)).map(str::to_string) else {
        return;
    };
    let Some(nets) = v["NetworkSettings"]["Networks"].as_object_mut() else {
        return;
    };
    for ep in nets.values_mut() {
        let named = ep["DNSNames"]
            .as_array()
            .is_some_and(|d| d.iter().any(|n| n.as_str() == Some(short.as_str())));
        if !named {
            continue;
        }
        match ep["Aliases"].as_array_mut() {
            Some(a) if a.iter().any(|n| n.as_str() == Some(short.as_str())) => {}
            Some(a) => a.push(json!(short)),
            None => ep["Aliases"] = json!([short]),
        }
    }
}
