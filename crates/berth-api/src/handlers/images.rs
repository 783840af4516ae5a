//! Images: list, inspect, history, tag, remove, prune, save, load.

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use berth_engine::image_archive::SaveFormat;
use berth_engine::images::{ListFilter, Removal};
use berth_engine::system::ImageEntry;

use super::{unix_time, Ctx};
use crate::body::{self, Body, BodyReader};
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

/// `/images/{name}/…`.
pub async fn one(ctx: &Ctx, name: String, op: ImageOp) -> Result<Response<Body>, ApiError> {
    match op {
        ImageOp::Inspect => {
            let mut v = ctx.blocking(move |e| e.image_inspect(&name)).await?;
            // Until API 1.44 images carry VirtualSize (= Size) and the
            // config of the container they were committed from (none here).
            v["VirtualSize"] = v["Size"].clone();
            v["Container"] = json!("");
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
            let removed = ctx
                .blocking(move |e| e.remove_image(&name, force, prune_parents))
                .await?;
            Ok(body::json(StatusCode::OK, &removals(&removed)))
        }
        ImageOp::Save => save(ctx, vec![name]).await,
    }
}

fn removals(list: &[Removal]) -> Value {
    list.iter()
        .map(|r| match r {
            Removal::Untagged(n) => json!({"Untagged": n}),
            Removal::Deleted(d) => json!({"Deleted": d.to_string()}),
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
