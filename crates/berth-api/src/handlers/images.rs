//! Images: list, inspect, history, tag, remove, prune, save, load, pull
//! and import (`/images/create`), push, build.

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use berth_engine::image_archive::SaveFormat;
use berth_engine::images::{ListFilter, Removal};
use berth_engine::system::ImageEntry;

use super::{unix_time, Ctx};
use std::collections::BTreeMap;
use std::sync::Arc;

use berth_build::executor::{BuildOptions, Progress as StepView, ProgressMode};
use berth_engine::build::{BuildRequest, BuildResult, ContextSource};
use berth_engine::import::ImportOptions;
use berth_engine::progress::{Event, Progress};
use berth_engine::registry::{PullOptions, PushOptions};

use crate::body::{self, Body, BodyReader, BodyWriter};
use crate::error::ApiError;
use crate::jsonstream::JsonMessages;
use crate::query::{only_filters, Filters};
use crate::router::ImageOp;

/// Docker's `ImageSummary`. `with_usage`: the counts `system df` gives
/// (Docker's list says -1 for "not computed").
pub fn summary(i: &ImageEntry, with_usage: bool) -> Value {
    let none = i.repo_tags.is_empty() && i.repo_digests.is_empty();
    let (tags, digests) = if none {
        (json!(["<none>:<none>"]), json!(["<none>@<none>"]))
    } else {
        (
            json!(i.repo_tags),
            if i.repo_digests.is_empty() {
                Value::Null
            } else {
                json!(i.repo_digests)
            },
        )
    };
    json!({
        "Containers": if with_usage { i.containers as i64 } else { -1 },
        "Created": i.created,
        "Id": i.id,
        "Labels": if i.labels.is_empty() { Value::Null } else { json!(i.labels) },
        "ParentId": i.parent,
        "RepoDigests": digests,
        "RepoTags": tags,
        "SharedSize": if with_usage { i.shared_size as i64 } else { -1 },
        "Size": i.size,
        "VirtualSize": i.size,
    })
}

/// The engine's list filter from Docker's `filters`.
fn list_filter(all: bool, f: &Filters) -> Result<ListFilter, ApiError> {
    only_filters(f, &["dangling", "label", "before", "since", "reference"])?;
    let one = |k: &str| -> Result<Option<String>, ApiError> {
        match f.get(k).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v.clone())),
            Some(_) => Err(ApiError::bad_request(format!("filter '{k}' takes one value"))),
        }
    };
    let dangling = match one("dangling")?.as_deref() {
        None => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "invalid filter 'dangling={v}': use true or false"
            )))
        }
    };
    Ok(ListFilter {
        all,
        dangling,
        references: f.get("reference").cloned().unwrap_or_default(),
        labels: f.get("label").cloned().unwrap_or_default(),
        before: one("before")?,
        since: one("since")?,
        repository: None,
        platforms: false,
    })
}

/// `GET /images/json?all&filters`.
pub async fn list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let filter = list_filter(ctx.query.bool("all"), &ctx.query.filters()?)?;
    let entries = ctx.blocking(move |e| e.image_entries(&filter, false)).await?;
    let v: Vec<Value> = entries.iter().map(|i| summary(i, false)).collect();
    Ok(body::json(StatusCode::OK, &json!(v)))
}

/// `GET /distribution/{name}/json`: the registry's descriptor of the
/// name and the platforms it offers (nothing is pulled).
pub async fn distribution(ctx: &Ctx, name: String) -> Result<Response<Body>, ApiError> {
    // Reached as the API's pulls reach it.
    let opts = PullOptions::default().registry;
    let info = ctx.blocking(move |e| e.distribution_inspect(&name, &opts)).await?;
    let v = json!({
        "Descriptor": {"mediaType": info.media_type, "digest": info.digest.as_str(), "size": info.size},
        "Platforms": info.platforms,
    });
    Ok(body::json(StatusCode::OK, &v))
}

/// `/images/{name}/…`.
pub async fn one(ctx: &Ctx, name: String, op: ImageOp) -> Result<Response<Body>, ApiError> {
    match op {
        ImageOp::Inspect => {
            let mut v = ctx.blocking(move |e| e.image_inspect(&name)).await?;
            // Until API 1.44 images carry VirtualSize (= Size) and the
            // config of the container they were committed from (empty
            // here; the engine names the container itself).
            v["VirtualSize"] = v["Size"].clone();
            v["ContainerConfig"] = json!({
                "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
                "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false,
                "StdinOnce": false, "Env": null, "Cmd": null, "Image": "", "Volumes": null,
                "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null,
            });
            Ok(body::json(StatusCode::OK, &v))
        }
        ImageOp::History => {
            let rows = ctx.blocking(move |e| e.history(&name)).await?;
            let v: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let tags = r["Tags"].as_array().filter(|t| !t.is_empty());
                    json!({
                        "Id": r["ID"],
                        "Created": unix_time(r["Created"].as_str().unwrap_or("")),
                        "CreatedBy": r["CreatedBy"],
                        "Tags": tags,
                        "Size": r["Size"],
                        "Comment": r["Comment"],
                    })
                })
                .collect();
            Ok(body::json(StatusCode::OK, &json!(v)))
        }
        ImageOp::Tag => {
            let repo = ctx.query.required("repo")?.to_string();
            let tag = ctx.query.get("tag").filter(|t| !t.is_empty()).unwrap_or("latest");
            let target = format!("{repo}:{tag}");
            ctx.blocking(move |e| e.tag(&name, &target)).await?;
            Ok(body::status(StatusCode::CREATED))
        }
        ImageOp::Remove => {
            let force = ctx.query.bool("force");
            let prune_parents = !ctx.query.bool("noprune");
            let shown = berth_store_name(&name);
            let removed = ctx
                .blocking(move |e| e.remove_image(&name, force, prune_parents))
                .await
                .map_err(|mut e| {
                    // Docker names the reference it looked for: `nosuch:latest`.
                    if e.status == StatusCode::NOT_FOUND && e.message.starts_with("No such image: ") {
                        e.message = format!("No such image: {shown}");
                    }
                    e
                })?;
            Ok(body::json(StatusCode::OK, &removals(&removed)))
        }
        ImageOp::Save => save(ctx, vec![name]).await,
        ImageOp::Push => push(ctx, name).await,
    }
}

fn removals(list: &[Removal]) -> Value {
    list.iter()
        .map(|r| {
            let (what, id) = r.told();
            json!({ what: id })
        })
        .collect()
}

/// `GET /images/get?names=…` and `GET /images/{name}/get`: a Docker
/// archive, streamed as it is written.
pub async fn save(ctx: &Ctx, names: Vec<String>) -> Result<Response<Body>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::bad_request("names cannot be empty: name at least one image"));
    }
    let engine = ctx.engine.clone();
    let body = body::stream_bulk(move |out| engine.save(&names, SaveFormat::DockerArchive, out)).await?;
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok(r)
}

/// `POST /images/load`: a Docker or OCI archive (compressed or not) in
/// the body, read as it arrives; answers with Docker's JSON messages.
pub async fn load(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let input = BodyReader::new(req.into_body());
    let loaded = ctx
        .blocking(move |e| e.load(input, &berth_engine::progress::Progress::none()))
        .await?;
    let mut out = JsonMessages::new(Vec::new());
    for l in &loaded {
        let lines = if l.tags.is_empty() {
            vec![format!("Loaded image ID: {}\n", l.id)]
        } else {
            l.tags.iter().map(|t| format!("Loaded image: {t}\n")).collect()
        };
        for line in lines {
            out.stream(&line).map_err(|e| ApiError::internal(e.to_string()))?;
        }
    }
    let mut r = Response::new(body::full(out.into_inner()));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(crate::jsonstream::CONTENT_TYPE));
    Ok(r)
}

/// `POST /images/prune?filters`: dangling images, or every unused one
/// with `dangling=false`; `label` filters.
pub async fn prune(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let f = ctx.query.filters()?;
    only_filters(&f, &["dangling", "label"])?;
    let all = match f.get("dangling").map(Vec::as_slice) {
        None | Some([]) => false,
        Some([v]) if matches!(v.as_str(), "false" | "0") => true,
        Some([v]) if matches!(v.as_str(), "true" | "1") => false,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "invalid filter 'dangling={}'",
                v.join(",")
            )))
        }
    };
    let labels = f.get("label").cloned().unwrap_or_default();
    let (removed, freed) = ctx.blocking(move |e| e.prune_images(all, &labels)).await?;
    let deleted = if removed.is_empty() {
        Value::Null
    } else {
        removals(&removed)
    };
    Ok(body::json(
        StatusCode::OK,
        &json!({"ImagesDeleted": deleted, "SpaceReclaimed": freed}),
    ))
}

/// `POST /build/prune?all&keep-storage&filters`: forgets the build cache
/// and deletes the step images nothing else holds, as `builder prune`
/// does; `until`, `label` and `label!` filters. berth's cache holds no
/// records apart from images, so `all` changes nothing and `keep-storage`
/// (keep that many bytes) is refused rather than ignored.
pub async fn build_prune(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let f = ctx.query.filters()?;
    only_filters(&f, &["until", "label", "label!"])?;
    if ctx.query.get("keep-storage").is_some_and(|v| !v.is_empty() && v != "0") {
        return Err(ApiError::bad_request(
            "keep-storage is not supported: berth prunes the whole cache (or what the filters select)",
        ));
    }
    let items = crate::query::as_pairs(&f, &["until", "label", "label!"]);
    let filter = berth_engine::containers::prune::PruneFilter::parse(&items).map_err(ApiError::from)?;
    let (ids, freed) = ctx.blocking(move |e| e.prune_build_cache(&filter)).await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"CachesDeleted": ids, "SpaceReclaimed": freed}),
    ))
}

/// A `Write` whose text goes out as `{"stream": …}` messages (the build's
/// step lines).
struct StreamLines(std::sync::mpsc::Sender<Value>);

impl std::io::Write for StreamLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf).into_owned();
        let _ = self.0.send(json!({ "stream": text }));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How a progress event reads as Docker's JSON message; `moving` is the
/// status of byte counts (`Downloading`, `Pushing`).
fn message_of(e: &Event, moving: &str) -> Option<Value> {
    match e {
        Event::Status(s) => Some(json!({ "status": s })),
        Event::Layer { id, status } => Some(json!({ "status": status, "progressDetail": {}, "id": id })),
        Event::Bytes { id, current, total } => Some(json!({
            "status": moving,
            "progressDetail": { "current": current, "total": total },
            "progress": crate::jsonstream::progress_bar(*current, *total),
            "id": id,
        })),
        Event::ImageMissing { .. } | Event::Image { .. } | Event::Build(_) => None,
    }
}

/// Runs `work` with a [`Progress`] whose messages (made by `render`) go
/// out on `w` as they come; `work`'s own messages follow with its result.
fn with_messages<T: Send>(
    w: &mut BodyWriter,
    render: impl Fn(Event, &std::sync::mpsc::Sender<Value>) + Send + Sync + 'static,
    work: impl FnOnce(Progress, std::sync::mpsc::Sender<Value>) -> T + Send,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let tx2 = tx.clone();
    let tx3 = tx.clone();
    let progress = Progress::new(move |e| render(e, &tx2));
    drop(tx);
    std::thread::scope(|s| {
        let h = s.spawn(move || work(progress, tx3));
        let mut out = JsonMessages::new(&mut *w);
        // Ends when every sender is gone: the work is over.
        for v in rx {
            if out.message(&v).is_err() {
                // The client left; the work finishes on its own.
            }
        }
        match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

fn json_stream(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(crate::jsonstream::CONTENT_TYPE));
    r
}

/// `POST /images/create`: `fromImage` pulls (with `tag`, `platform`),
/// `fromSrc` imports (`-`: the body; else a URL) as `repo:tag`.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let q = &ctx.query;
    let tag = q.get("tag").filter(|t| !t.is_empty()).map(str::to_string);
    let platform = q.get("platform").filter(|p| !p.is_empty()).map(str::to_string);
    let engine = ctx.engine.clone();
    if let Some(image) = q.get("fromImage").filter(|i| !i.is_empty()) {
        let reference = match &tag {
            // A digest or a tag given apart, as the docker CLI sends them.
            Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
            Some(t) => format!("{image}:{t}"),
            None => image.to_string(),
        };
        let all_tags = tag.is_none() && !image.contains(':') && !image.contains('@') && q.get("tag").is_some();
        let body = body::stream_from_blocking(move |w| {
            let opts = PullOptions {
                platform,
                all_tags,
                ..Default::default()
            };
            // The name the engine states after `Status:` is the docker
            // CLI's own last line, not the daemon's: left out.
            let after_status = std::sync::atomic::AtomicBool::new(false);
            let res = with_messages(
                w,
                move |e, tx| {
                    if let Event::Status(s) = &e {
                        if after_status.swap(s.starts_with("Status: "), std::sync::atomic::Ordering::Relaxed) {
                            return;
                        }
                    }
                    if let Some(v) = message_of(&e, "Downloading") {
                        let _ = tx.send(v);
                    }
                },
                |p, _| engine.pull(&reference, &opts, &p),
            );
            finish(w, res.map(|_| ()))
        })
        .await?;
        return Ok(json_stream(body));
    }
    let Some(src) = q.get("fromSrc").filter(|s| !s.is_empty()).map(str::to_string) else {
        return Err(ApiError::bad_request("fromImage or fromSrc is required"));
    };
    let reference = q.get("repo").filter(|r| !r.is_empty()).map(|r| match &tag {
        Some(t) => format!("{r}:{t}"),
        None => r.to_string(),
    });
    let opts = ImportOptions {
        reference,
        changes: q.all("changes"),
        message: q.get("message").filter(|m| !m.is_empty()).map(str::to_string),
        platform,
        source_name: src.clone(),
    };
    let id = if src == "-" {
        let input = BodyReader::new(req.into_body());
        ctx.blocking(move |e| e.import(input, &opts)).await?
    } else {
        ctx.blocking(move |e| e.import_url(&src, &opts)).await?
    };
    let mut out = JsonMessages::new(Vec::new());
    out.status(None, &id.to_string())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json_stream(body::full(out.into_inner())))
}

/// Ends a stream of messages: nothing more on success; the error as
/// Docker's error message once output began (a status before that).
fn finish(w: &mut BodyWriter, res: berth_engine::Result<()>) -> Result<(), ApiError> {
    match res {
        Ok(()) => Ok(()),
        Err(e) => {
            let e = ApiError::from(e);
            if w.started() {
                JsonMessages::new(w)
                    .error(&e.message)
                    .map_err(|e| ApiError::internal(e.to_string()))
            } else {
                Err(e)
            }
        }
    }
}

/// `POST /images/{name}/push?tag`: progress, then `aux` with the digest.
async fn push(ctx: &Ctx, name: String) -> Result<Response<Body>, ApiError> {
    let source = match ctx.query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name,
    };
    let all_tags = ctx.query.get("tag").is_none_or(str::is_empty) && !source.contains(':');
    let engine = ctx.engine.clone();
    let body = body::stream_from_blocking(move |w| {
        let opts = PushOptions {
            all_tags,
            ..Default::default()
        };
        let res = with_messages(
            w,
            |e, tx| {
                if let Some(v) = message_of(&e, "Pushing") {
                    let _ = tx.send(v);
                }
            },
            |p, tx| {
                let pushed = engine.push(&source, None, &opts, &p)?;
                for i in &pushed {
                    let _ = tx.send(json!({"progressDetail": {}, "aux": {
                        "Tag": i.tag.clone().unwrap_or_default(),
                        "Digest": i.digest.to_string(),
                        "Size": i.size,
                    }}));
                }
                Ok(())
            },
        );
        finish(w, res)
    })
    .await?;
    Ok(json_stream(body))
}

/// A JSON object of strings in a query parameter (`buildargs`, `labels`).
fn json_map(ctx: &Ctx, key: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(text) = ctx.query.get(key).filter(|t| !t.trim().is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: BTreeMap<String, Option<String>> =
        serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}")))?;
    // A null build arg takes its value from the daemon's environment in
    // Docker; berth's service has none to give: it is left out.
    Ok(v.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
}

/// `POST /build`: a tar context in the body; the classic builder's JSON
/// stream (`stream` lines, `aux.ID`, `error` on failure).
pub async fn build(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let q = &ctx.query;
    if let Some(r) = q.get("remote").filter(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "remote build context {r:?}: berth's service fetches no git repository or URL; send the context as a tar in the request body"
        )));
    }
    // `rm` and `forcerm` ask for what berth always does: its step
    // containers never outlive their step, failed or not.
    let extra_hosts = q
        .all("extrahosts")
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|h| !h.trim().is_empty())
        .map(|h| {
            berth_net::etc::parse_add_host(h.trim(), None)
                .map(|(name, ip)| (name, ip.to_string()))
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shm_size = match q.get("shmsize").map(str::trim).filter(|s| !s.is_empty()) {
        None | Some("0") => None,
        Some(s) => Some(
            s.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::bad_request(format!("invalid shmsize {s:?}: a number of bytes above 0")))?,
        ),
    };
    // Images (pulled or loaded) whose history serves as a cache, as in
    // Docker's classic builder; the builder matches them step by step.
    let cache_from_images = match q.get("cachefrom").filter(|t| !t.trim().is_empty()) {
        Some(text) => serde_json::from_str::<Vec<String>>(text)
            .map_err(|e| ApiError::bad_request(format!("invalid cachefrom: {e}")))?,
        None => Vec::new(),
    };
    let tags = q.all("t");
    let quiet = q.bool("q");
    let network = match q.get("networkmode").unwrap_or("") {
        "" | "default" | "bridge" => "default".to_string(),
        m @ ("host" | "none") => m.to_string(),
        m => {
            return Err(ApiError::bad_request(format!(
                "network mode {m:?} is not supported for builds"
            )))
        }
    };
    let options = BuildOptions {
        target: q.get("target").filter(|t| !t.is_empty()).map(str::to_string),
        build_args: json_map(ctx, "buildargs")?,
        labels: json_map(ctx, "labels")?,
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        platform: q.get("platform").filter(|p| !p.is_empty()).map(str::to_string),
        network,
        extra_hosts,
        shm_size,
        cache_from_images,
        ..Default::default()
    };
    let file = q
        .get("dockerfile")
        .filter(|f| !f.is_empty())
        .map(|f| std::path::PathBuf::from(f.trim_start_matches("./")));
    if file
        .as_ref()
        .is_some_and(|f| f.is_absolute() || f.components().any(|c| c.as_os_str() == ".."))
    {
        return Err(ApiError::bad_request(
            "the dockerfile must be a path inside the build context",
        ));
    }
    let input = BodyReader::new(req.into_body());
    let engine = ctx.engine.clone();
    let body = body::stream_now(move |w| {
        let shown_tags = tags.clone();
        let res = with_messages(
            w,
            move |e, tx| {
                if let Event::Image { id, .. } = &e {
                    let _ = tx.send(json!({"aux": {"ID": id}}));
                }
            },
            move |p, tx| {
                // The builder's classic lines, each a `stream` message.
                let view = Arc::new(StepView::new(
                    Box::new(StreamLines(tx.clone())),
                    if quiet {
                        ProgressMode::Quiet
                    } else {
                        ProgressMode::Plain
                    },
                ));
                let v = view.clone();
                let inner = p.clone();
                let events = Progress::new(move |e| match e {
                    Event::Build(b) => v.apply(b),
                    other => inner.emit(other),
                });
                let req = BuildRequest {
                    context: ContextSource::Tar(Box::new(input)),
                    file,
                    inline: None,
                    tags: tags.clone(),
                    options,
                };
                let res = engine.build(req, &events);
                view.finish();
                drop(events);
                match res? {
                    BuildResult::Built(o) => {
                        let mut text = String::new();
                        if quiet {
                            text.push_str(&format!("{}\n", o.id));
                        } else {
                            for arg in &o.unused_args {
                                text.push_str(&format!("[Warning] One or more build-args [{arg}] were not consumed\n"));
                            }
                            text.push_str(&format!("Successfully built {}\n", o.id.short()));
                            for t in &shown_tags {
                                let full = berth_store_name(t);
                                text.push_str(&format!("Successfully tagged {full}\n"));
                            }
                        }
                        // One message per line: clients match each line alone
                        // (docker-py looks for `Successfully built ID` at an end).
                        for line in text.split_inclusive('\n') {
                            let _ = tx.send(json!({ "stream": line }));
                        }
                        Ok(())
                    }
                    BuildResult::Failed(e) => Err(berth_engine::EngineError::exit(1, e.to_string())),
                }
            },
        );
        match res {
            Ok(()) => Ok(()),
            Err(e) => JsonMessages::new(w)
                .error(&ApiError::from(e).message)
                .map_err(|e| ApiError::internal(e.to_string())),
        }
    });
    Ok(json_stream(body))
}

/// `bb` → `bb:latest`, as `Successfully tagged` shows a name.
fn berth_store_name(t: &str) -> String {
    if t.rsplit('/').next().is_some_and(|last| last.contains(':')) || t.contains('@') {
        t.to_string()
    } else {
        format!("{t}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse_filters;

    #[test]
    fn docker_filters_become_the_engines() {
        let f = parse_filters(r#"{"dangling":["true"],"reference":["bb*"],"label":{"a=b":true}}"#).unwrap();
        let l = list_filter(true, &f).unwrap();
        assert_eq!(l.dangling, Some(true));
        assert_eq!(l.references, vec!["bb*"]);
        assert_eq!(l.labels, vec!["a=b"]);
        assert!(l.all);
        let f = parse_filters(r#"{"dangling":["maybe"]}"#).unwrap();
        assert_eq!(list_filter(false, &f).unwrap_err().status, StatusCode::BAD_REQUEST);
        let f = parse_filters(r#"{"until":["1h"]}"#).unwrap();
        assert_eq!(list_filter(false, &f).unwrap_err().message, "invalid filter 'until'");
    }

    #[test]
    fn untagged_images_show_dockers_placeholders() {
        let mut e = ImageEntry {
            id: "sha256:00".into(),
            parent: String::new(),
            repo_tags: vec![],
            repo_digests: vec![],
            created: 1,
            size: 2,
            shared_size: 0,
            containers: 3,
            labels: Default::default(),
        };
        let v = summary(&e, false);
        assert_eq!(v["RepoTags"], json!(["<none>:<none>"]));
        assert_eq!(v["Containers"], -1);
        e.repo_tags = vec!["bb:latest".into()];
        let v = summary(&e, true);
        assert_eq!(v["RepoTags"], json!(["bb:latest"]));
        assert_eq!(v["RepoDigests"], Value::Null);
        assert_eq!(v["Containers"], 3);
    }
}
