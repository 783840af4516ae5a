//! Networks: list, inspect, create, remove, prune, connect, disconnect.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

use berth_engine::networks::NetworkFilters;
use berth_net::bridge::{NetworkRequest, BRIDGE_NAME_OPTION};

use super::Ctx;
use crate::body::{self, Body};
use crate::error::ApiError;
use crate::query::{as_pairs, only_filters};
use crate::router::NetworkOp;

const KEYS: &[&str] = &["name", "id", "driver", "label", "type", "dangling"];

/// Go clients parse `Created` as a time: never an empty string. And
/// dockerd's `Options` are the ones the network was created with: the
/// bridge name berth picked itself (`br-` and the ID's first 12 digits)
/// is not one (docker-compose would see an option changed and refuse to
/// reuse its network).
fn fix_created(mut v: Value) -> Value {
    if v["Created"].as_str().is_none_or(str::is_empty) {
        v["Created"] = json!("0001-01-01T00:00:00Z");
    }
    let picked = v["Id"].as_str().and_then(|id| id.get(..12)).map(|p| format!("br-{p}"));
    if let (Some(picked), Some(opts)) = (picked, v["Options"].as_object_mut()) {
        if opts.get(BRIDGE_NAME_OPTION).and_then(Value::as_str) == Some(picked.as_str()) {
            opts.remove(BRIDGE_NAME_OPTION);
        }
    }
    v
}

/// `GET /networks?filters`: every network in inspect's shape.
pub async fn list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let f = ctx.query.filters()?;
    only_filters(&f, KEYS)?;
    let filters = NetworkFilters::parse(&as_pairs(&f, KEYS)).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let list = ctx
        .blocking(move |e| {
            let rows = e.network_list(&filters)?;
            let mut out = Vec::new();
            for r in rows {
                match e.network_inspect(&r.id).or_else(|_| e.network_inspect(&r.name)) {
                    Ok(v) => out.push(fix_created(v)),
                    // A predefined network without a record yet.
                    Err(_) => out.push(fix_created(json!({
                        "Name": r.name, "Id": r.id, "Created": r.created, "Scope": r.scope,
                        "Driver": r.driver, "EnableIPv6": false, "Internal": r.internal,
                        "IPAM": {"Driver": "default", "Options": null, "Config": []},
                        "Attachable": false, "Ingress": false, "ConfigFrom": {"Network": ""},
                        "ConfigOnly": false, "Containers": {}, "Options": {}, "Labels": r.labels,
                    }))),
                }
            }
            Ok(out)
        })
        .await?;
    Ok(body::json(StatusCode::OK, &json!(list)))
}

fn strings(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, x)| (k.clone(), x.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /networks/create`: 201 `{"Id", "Warning"}`.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let v: Value = body::read_json(req.into_body(), body::JSON_LIMIT)
        .await?
        .unwrap_or(Value::Null);
    let name = v["Name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("network name cannot be empty"))?
        .to_string();
    let ipv6 = v["EnableIPv6"].as_bool() == Some(true);
    let opt = |x: &Value| x.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    // One IPAM config per family; an IPv6 one counts only with EnableIPv6 (as Docker).
    let configs: Vec<&Value> = v["IPAM"]["Config"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let family = |v6: bool| {
        configs
            .iter()
            .find(|c| opt(&c["Subnet"]).is_some_and(|s| berth_net::ipam::is_v6(&s) == v6))
            .copied()
    };
    let null = Value::Null;
    let cfg = family(false).unwrap_or(&null);
    let cfg6 = if ipv6 { family(true).unwrap_or(&null) } else { &null };
    let req = NetworkRequest {
        name,
        driver: opt(&v["Driver"]),
        subnet: opt(&cfg["Subnet"]),
        gateway: opt(&cfg["Gateway"]),
        ip_range: opt(&cfg["IPRange"]),
        internal: v["Internal"].as_bool().unwrap_or(false),
        labels: strings(&v["Labels"]),
        options: strings(&v["Options"]),
        ipv6,
        subnet6: opt(&cfg6["Subnet"]),
        gateway6: opt(&cfg6["Gateway"]),
        ip_range6: opt(&cfg6["IPRange"]),
    };
    let rec = ctx.blocking(move |e| e.network_create(&req)).await?;
    Ok(body::json(StatusCode::CREATED, &json!({"Id": rec.id, "Warning": ""})))
}

/// `POST /networks/prune`.
pub async fn prune(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let f = ctx.query.filters()?;
    if let Some(k) = f.keys().next() {
        return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
    }
    let gone: Vec<String> = ctx.blocking(|e| e.network_prune()).await?;
    Ok(body::json(StatusCode::OK, &json!({"NetworksDeleted": gone})))
}

/// `/networks/{id}[/connect|/disconnect]`.
pub async fn one(ctx: &Ctx, id: String, op: NetworkOp, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    match op {
        NetworkOp::Inspect => {
            let v = ctx.blocking(move |e| e.network_inspect(&id)).await?;
            Ok(body::json(StatusCode::OK, &fix_created(v)))
        }
        NetworkOp::Remove => {
            ctx.blocking(move |e| e.network_remove(&id)).await?;
            Ok(body::status(StatusCode::NO_CONTENT))
        }
        NetworkOp::Connect => {
            let v: Value = body::read_json(req.into_body(), body::JSON_LIMIT)
                .await?
                .unwrap_or(Value::Null);
            let ctr = container_of(&v)?;
            let ep = &v["EndpointConfig"];
            let spec = super::create::endpoint_spec(&id, ep)?;
            let links: Vec<String> = ep["Links"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).map(str::to_string).collect())
                .unwrap_or_default();
            ctx.blocking(move |e| e.network_connect(&ctr, &spec, &links))
                .await
                .map_err(forbidden)?;
            Ok(body::status(StatusCode::OK))
        }
        NetworkOp::Disconnect => {
            let v: Value = body::read_json(req.into_body(), body::JSON_LIMIT)
                .await?
                .unwrap_or(Value::Null);
            let ctr = container_of(&v)?;
            let force = v["Force"].as_bool().unwrap_or(false);
            ctx.blocking(move |e| e.network_disconnect(&id, &ctr, force))
                .await
                .map_err(forbidden)?;
            Ok(body::status(StatusCode::OK))
        }
    }
}

/// The `Container` of a connect or disconnect body.
fn container_of(v: &Value) -> Result<String, ApiError> {
    v["Container"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("container name or ID cannot be empty"))
}

/// Docker answers a refused connect or disconnect (already connected, not
/// connected) with 403, not 409.
fn forbidden(e: ApiError) -> ApiError {
    if e.status == StatusCode::CONFLICT {
        ApiError::new(StatusCode::FORBIDDEN, e.message)
    } else {
        e
    }
}
