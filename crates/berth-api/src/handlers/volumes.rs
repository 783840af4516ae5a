//! Volumes: list, inspect, create, remove, prune.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use berth_engine::volumes::{volume_usage_json, VolumeCreate, VolumeFilters};

use super::Ctx;
use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::{as_pairs, only_filters};
use crate::router::ApiVersion;

/// `GET /volumes?filters` (`name`, `driver`, `label`, `label!`,
/// `dangling`), filtered by the engine as `volume ls` is.
pub async fn list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    const KEYS: &[&str] = &["name", "driver", "label", "label!", "dangling"];
    let f = ctx.query.filters()?;
    only_filters(&f, KEYS)?;
    let filters = VolumeFilters::parse(&as_pairs(&f, KEYS)).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let all = ctx.blocking(move |e| e.volumes_filtered(&filters)).await?;
    let list: Vec<Value> = all.iter().map(|v| volume_usage_json(v, false)).collect();
    Ok(body::json(StatusCode::OK, &json!({"Volumes": list, "Warnings": null})))
}

/// `GET /volumes/{name}`.
pub async fn inspect(ctx: &Ctx, name: String) -> Result<Response<Body>, ApiError> {
    let v = ctx.blocking(move |e| e.volume_inspect(&name)).await?;
    Ok(body::json(StatusCode::OK, &v))
}

/// `POST /volumes/create`: `{Name, Driver, DriverOpts, Labels}`; 201 with
/// the volume.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let v: Value = body::read_json(req.into_body(), body::JSON_LIMIT)
        .await?
        .unwrap_or(Value::Null);
    let map = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, x)| (k.clone(), x.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let req = VolumeCreate {
        name: v["Name"].as_str().filter(|n| !n.is_empty()).map(str::to_string),
        driver: v["Driver"].as_str().filter(|n| !n.is_empty()).map(str::to_string),
        options: map(&v["DriverOpts"]),
        labels: map(&v["Labels"]),
    };
    let out = ctx
        .blocking(move |e| {
            let made = e.volume_create(&req)?;
            e.volume_inspect(&made.record.name)
        })
        .await?;
    Ok(body::json(StatusCode::CREATED, &out))
}

/// `DELETE /volumes/{name}?force`.
pub async fn remove(ctx: &Ctx, name: String) -> Result<Response<Body>, ApiError> {
    let force = ctx.query.bool("force");
    ctx.blocking(move |e| e.volume_remove(&name, force)).await?;
    Ok(body::status(StatusCode::NO_CONTENT))
}

/// `POST /volumes/prune?filters` (`all=true` takes named volumes too, as
/// API 1.42 does; anonymous ones only otherwise). Before 1.42 a prune
/// took every unused volume, and dockerd still does so for such clients.
pub async fn prune(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let f = ctx.query.filters()?;
    only_filters(&f, &["all", "label", "label!"])?;
    let all = ctx.version < ApiVersion::new(1, 42)
        || f.get("all")
            .is_some_and(|v| v.iter().any(|x| matches!(x.as_str(), "true" | "1")));
    let labels = VolumeFilters::parse_prune(&as_pairs(&f, &["label", "label!"]))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (gone, bytes): (Vec<String>, u64) = ctx.blocking(move |e| e.volume_prune(all, &labels)).await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"VolumesDeleted": gone, "SpaceReclaimed": bytes}),
    ))
}
