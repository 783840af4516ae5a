//! `/_ping`, `/version`, `/info`, `/system/df`, `/auth`.

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::{containers, images, Ctx};
use crate::body::{self, Body};
use crate::error::ApiError;
use crate::router::{API_VERSION, MIN_API_VERSION};

/// `GET|HEAD /_ping`: `OK`, with the headers clients negotiate from.
/// `Builder-Version: 1`: berth builds with the classic builder protocol.
pub fn ping<B>(req: &Request<B>) -> Response<Body> {
    let mut r = if req.method() == Method::HEAD {
        body::status(StatusCode::OK)
    } else {
        Response::new(body::full("OK"))
    };
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    r
}

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Docker's `GoVersion`: berth has none.
const GO_VERSION: &str = "n/a (berth is written in Rust)";

/// `GET /version`.
pub async fn version(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let info = ctx.blocking(|e| e.info()).await?;
    let details = json!({
        "ApiVersion": API_VERSION.to_string(),
        "Arch": info.architecture,
        "BuildTime": "",
        "Experimental": "false",
        "GitCommit": "",
        "GoVersion": GO_VERSION,
        "KernelVersion": info.kernel_version,
        "MinAPIVersion": MIN_API_VERSION.to_string(),
        "Os": "linux",
    });
    let mut components = vec![json!({"Name": "Engine", "Version": VERSION, "Details": details})];
    if info.runtime.name != "none" {
        components.push(json!({
            "Name": info.runtime.name,
            "Version": "",
            "Details": {"Path": info.runtime.path, "GitCommit": ""},
        }));
    }
    Ok(body::json(
        StatusCode::OK,
        &json!({
            "Platform": {"Name": format!("berth {VERSION}")},
            "Components": components,
            "Version": VERSION,
            "ApiVersion": API_VERSION.to_string(),
            "MinAPIVersion": MIN_API_VERSION.to_string(),
            "GitCommit": "",
            "GoVersion": GO_VERSION,
            "Os": "linux",
            "Arch": info.architecture,
            "KernelVersion": info.kernel_version,
            "BuildTime": "",
        }),
    ))
}

/// A stable ID for this store (Docker shows its engine's ID): FNV-1a of
/// the root path, in Docker's `XXXX:XXXX:…` form.
fn engine_id(root: &std::path::Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in root.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let hex = format!("{h:016X}");
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// `GET /info`: the engine's info in Docker's shape.
pub async fn info(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let i = ctx.blocking(|e| e.info()).await?;
    let env = |k: &str| {
        std::env::var(k)
            .or_else(|_| std::env::var(k.to_ascii_lowercase()))
            .unwrap_or_default()
    };
    let mut security = vec!["name=seccomp,profile=builtin".to_string()];
    if i.rootless {
        security.push("name=rootless".into());
    }
    if i.cgroup_version == "2" {
        security.push("name=cgroupns".into());
    }
    let mut runtimes = serde_json::Map::new();
    if i.runtime.name != "none" {
        runtimes.insert(i.runtime.name.clone(), json!({"path": i.runtime.path}));
    }
    let mut warnings: Vec<String> = i.warnings.iter().map(|w| format!("WARNING: {w}")).collect();
    if i.runtime.name == "none" {
        warnings.push(format!("WARNING: no OCI runtime: {}", i.runtime.reason));
    }
    if i.cgroup_hybrid {
        warnings.push("WARNING: cgroups are hybrid (v1 controllers beside a cgroup2 mount)".to_string());
    }
    let v = json!({
        "ID": engine_id(std::path::Path::new(&i.root)),
        "Containers": i.containers,
        "ContainersRunning": i.containers_running,
        "ContainersPaused": i.containers_paused,
        "ContainersStopped": i.containers_stopped,
        "Images": i.images,
        "Driver": "overlay",
        "DriverStatus": [],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["host", "none"],
            "Authorization": null,
            "Log": ["json-file"],
        },
        "MemoryLimit": true,
        "SwapLimit": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "BridgeNfIptables": false,
        "BridgeNfIp6tables": false,
        "Debug": false,
        "NFd": 0,
        "OomKillDisable": false,
        "NGoroutines": 0,
        "SystemTime": berth_engine::now_rfc3339(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": i.cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": i.kernel_version,
        "OperatingSystem": i.operating_system,
        "OSVersion": i.os_version,
        "OSType": "linux",
        "Architecture": i.machine,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {
                "docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true},
            },
            "Mirrors": [],
        },
        "NCPU": i.ncpu,
        "MemTotal": i.mem_total,
        "GenericResources": null,
        "DockerRootDir": i.root,
        "HttpProxy": env("HTTP_PROXY"),
        "HttpsProxy": env("HTTPS_PROXY"),
        "NoProxy": env("NO_PROXY"),
        "Name": i.name,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": i.server_version,
        "Runtimes": runtimes,
        "DefaultRuntime": i.runtime.name,
        "Swarm": {
            "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
            "ControlAvailable": false, "Error": "", "RemoteManagers": null,
        },
        // Containers outlive this service (their monitors own them).
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": security,
        "Warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
    });
    Ok(body::json(StatusCode::OK, &v))
}

/// `GET /system/df[?type=image&type=container…]`.
pub async fn df(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let types = ctx.query.all("type");
    for t in &types {
        if !matches!(t.as_str(), "container" | "image" | "volume" | "build-cache") {
            return Err(ApiError::bad_request(format!(
                "invalid type {t:?}: use container, image, volume or build-cache"
            )));
        }
    }
    let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
    let usage = ctx.blocking(|e| e.disk_usage_detail()).await?;
    let mut v = json!({"LayersSize": usage.layers_size, "BuilderSize": 0});
    if want("image") {
        v["Images"] = usage.images.iter().map(|i| images::summary(i, true)).collect();
    }
    if want("container") {
        v["Containers"] = ctx
            .blocking(|e| {
                let list = e.ps(true, &Default::default())?;
                Ok(list.iter().map(|c| containers::summary(e, c, true)).collect::<Vec<_>>())
            })
            .await?
            .into();
    }
    if want("volume") {
        v["Volumes"] = usage
            .volumes
            .iter()
            .map(|vol| berth_engine::volumes::volume_usage_json(vol, true))
            .collect();
    }
    if want("build-cache") {
        v["BuildCache"] = json!([]);
    }
    Ok(body::json(StatusCode::OK, &v))
}

#[derive(serde::Deserialize)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "serveraddress")]
    server: String,
}

/// `POST /auth`: checks the credentials against the registry; stores
/// nothing (clients keep their own).
pub async fn auth(ctx: &Ctx, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let cfg: AuthConfig = crate::body::read_json(req.into_body(), crate::body::JSON_LIMIT)
        .await?
        .ok_or_else(|| ApiError::bad_request("the request body must hold the credentials"))?;
    if cfg.username.is_empty() {
        return Err(ApiError::bad_request("username cannot be empty"));
    }
    let server = if cfg.server.is_empty() {
        "docker.io".to_string()
    } else {
        cfg.server
    };
    ctx.blocking(move |_| berth_engine::system::check_login(&server, &cfg.username, &cfg.password))
        .await?;
    Ok(body::json(
        StatusCode::OK,
        &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_ids_look_like_dockers_and_stay_put() {
        let a = engine_id(std::path::Path::new("/var/lib/berth"));
        assert_eq!(a, engine_id(std::path::Path::new("/var/lib/berth")));
        assert_ne!(a, engine_id(std::path::Path::new("/tmp/other")));
        assert_eq!(a.split(':').count(), 4);
    }
}
