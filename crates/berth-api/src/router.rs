//! Paths to routes, as Docker's router has them: every path with or
//! without a `/v1.NN` prefix; image names that hold slashes
//! (`/images/127.0.0.1:5000/team/app:1/json`); container names and IDs
//! checked before anything looks them up; Docker's 404 `page not found`
//! for anything else.
//!
//! Pure: a method and a path in, a [`Route`] or an [`ApiError`] out.

use hyper::Method;

use crate::error::ApiError;

/// An API version (`1.43`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> ApiVersion {
        ApiVersion { major, minor }
    }

    /// `1.43` → Some; anything else None.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.').unwrap_or((s, "0"));
        Some(ApiVersion::new(a.parse().ok()?, b.parse().ok()?))
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The version berth implements and declares.
pub const API_VERSION: ApiVersion = ApiVersion::new(1, 43);
/// The oldest version berth answers.
pub const MIN_API_VERSION: ApiVersion = ApiVersion::new(1, 24);

/// What a container route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOp {
    Inspect,
    Start,
    Stop,
    Restart,
    Kill,
    Pause,
    Unpause,
    Wait,
    Rename,
    Top,
    Changes,
    Export,
    ArchiveGet,
    ArchiveHead,
    ArchivePut,
    Remove,
    Attach,
    /// `GET …/attach/ws`
    AttachWs,
    Logs,
    Resize,
    Stats,
    ExecCreate,
    Update,
}

/// What an image route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageOp {
    Inspect,
    History,
    Tag,
    Save,
    Remove,
    Push,
}

/// What an exec route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOp {
    Start,
    Resize,
    Inspect,
}

/// What a network route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkOp {
    Inspect,
    Remove,
    Connect,
    Disconnect,
}

/// Every route berth serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ping,
    Version,
    Info,
    SystemDf,
    Auth,
    ImagesList,
    /// `GET /distribution/{name}/json`: what a registry says of a name.
    Distribution(String),
    ImagesSave,
    ImagesLoad,
    ImagesPrune,
    Image(String, ImageOp),
    ContainersList,
    ContainersPrune,
    Container(String, ContainerOp),
    ContainersCreate,
    Exec(String, ExecOp),
    Commit,
    ImagesCreate,
    Build,
    BuildPrune,
    Events,
    VolumesList,
    VolumesCreate,
    VolumesPrune,
    Volume(String),
    VolumeRemove(String),
    NetworksList,
    NetworksCreate,
    NetworksPrune,
    Network(String, NetworkOp),
    /// Docker has it; berth does not serve it yet (501, naming it).
    NotYet(&'static str),
}

/// A routed request: the version it asked for (None: no prefix) and the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub version: Option<ApiVersion>,
    pub route: Route,
}

/// Strips and checks a `/v1.NN` prefix.
fn split_version(path: &str) -> Result<(Option<ApiVersion>, &str), ApiError> {
    // `/v1.43/…`; `/version`, `/volumes` are routes, not prefixes.
    let Some(rest) = path
        .strip_prefix("/v")
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    else {
        return Ok((None, path));
    };
    let (v, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(ApiError::page_not_found());
    }
    let version = ApiVersion::parse(v).ok_or_else(ApiError::page_not_found)?;
    if version > API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if version < MIN_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok((Some(version), tail))
}

/// A container name or ID as it can exist (Docker's name rule, or hex);
/// anything else cannot name a container: 404 without a lookup.
fn container_word(w: &str) -> Result<String, ApiError> {
    let name = w.strip_prefix('/').unwrap_or(w);
    let ok = !name.is_empty()
        && name.len() <= 256
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(ApiError::not_found(format!("No such container: {w}")))
    }
}

/// An exec ID (hex, as berth makes them).
fn exec_word(w: &str) -> Result<String, ApiError> {
    if !w.is_empty() && w.len() <= 128 && w.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(w.to_string())
    } else {
        Err(ApiError::not_found(format!("No such exec instance: {w}")))
    }
}

/// An image reference or ID: printable, without spaces, not absurdly long.
/// Its syntax proper is the engine's to judge (a 400 from there).
fn image_word(w: &str) -> Result<String, ApiError> {
    let ok = !w.is_empty() && w.len() <= 512 && w.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(w.to_string())
    } else {
        Err(ApiError::bad_request(format!("invalid reference format: {w:?}")))
    }
}

/// Routes `method path` (the path already percent-decoded).
pub fn route(method: &Method, path: &str) -> Result<Routed, ApiError> {
    let (version, path) = split_version(path)?;
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let m = method.clone();
    let (get, post, head, delete, put) = (
        m == Method::GET,
        m == Method::POST,
        m == Method::HEAD,
        m == Method::DELETE,
        m == Method::PUT,
    );
    let not_yet = |what: &'static str| Ok(Route::NotYet(what));
    let route: Result<Route, ApiError> = match segs.as_slice() {
        ["_ping"] if get || head => Ok(Route::Ping),
        ["version"] if get => Ok(Route::Version),
        ["info"] if get => Ok(Route::Info),
        ["system", "df"] if get => Ok(Route::SystemDf),
        ["auth"] if post => Ok(Route::Auth),
        ["events"] if get => Ok(Route::Events),
        ["images", "json"] if get => Ok(Route::ImagesList),
        ["images", "get"] if get => Ok(Route::ImagesSave),
        ["images", "load"] if post => Ok(Route::ImagesLoad),
        ["images", "prune"] if post => Ok(Route::ImagesPrune),
        ["images", "create"] if post => Ok(Route::ImagesCreate),
        ["images", "search"] if get => not_yet("image search"),
        ["build"] if post => Ok(Route::Build),
        ["build", "prune"] if post => Ok(Route::BuildPrune),
        ["commit"] if post => Ok(Route::Commit),
        ["images", rest @ ..] if !rest.is_empty() => image_route(&m, rest),
        ["containers", "json"] if get => Ok(Route::ContainersList),
        ["containers", "prune"] if post => Ok(Route::ContainersPrune),
        ["containers", "create"] if post => Ok(Route::ContainersCreate),
        ["containers", id] if delete => Ok(Route::Container(container_word(id)?, ContainerOp::Remove)),
        ["containers", id, name] => {
            let op = match *name {
                "json" if get => Some(ContainerOp::Inspect),
                "start" if post => Some(ContainerOp::Start),
                "stop" if post => Some(ContainerOp::Stop),
                "restart" if post => Some(ContainerOp::Restart),
                "kill" if post => Some(ContainerOp::Kill),
                "pause" if post => Some(ContainerOp::Pause),
                "unpause" if post => Some(ContainerOp::Unpause),
                "wait" if post => Some(ContainerOp::Wait),
                "rename" if post => Some(ContainerOp::Rename),
                "top" if get => Some(ContainerOp::Top),
                "changes" if get => Some(ContainerOp::Changes),
                "export" if get => Some(ContainerOp::Export),
                "archive" if get => Some(ContainerOp::ArchiveGet),
                "archive" if head => Some(ContainerOp::ArchiveHead),
                "archive" if put => Some(ContainerOp::ArchivePut),
                "attach" if post => Some(ContainerOp::Attach),
                "logs" if get => Some(ContainerOp::Logs),
                "resize" if post => Some(ContainerOp::Resize),
                "stats" if get => Some(ContainerOp::Stats),
                "exec" if post => Some(ContainerOp::ExecCreate),
                "update" if post => Some(ContainerOp::Update),
                _ => None,
            };
            match op {
                Some(op) => Ok(Route::Container(container_word(id)?, op)),
                None => Err(ApiError::page_not_found()),
            }
        }
        ["containers", id, "attach", "ws"] if get => Ok(Route::Container(container_word(id)?, ContainerOp::AttachWs)),
        ["exec", id, "start"] if post => Ok(Route::Exec(exec_word(id)?, ExecOp::Start)),
        ["exec", id, "resize"] if post => Ok(Route::Exec(exec_word(id)?, ExecOp::Resize)),
        ["exec", id, "json"] if get => Ok(Route::Exec(exec_word(id)?, ExecOp::Inspect)),
        ["networks"] if get => Ok(Route::NetworksList),
        ["networks", "create"] if post => Ok(Route::NetworksCreate),
        ["networks", "prune"] if post => Ok(Route::NetworksPrune),
        ["networks", id] if get => Ok(Route::Network(id.to_string(), NetworkOp::Inspect)),
        ["networks", id] if delete => Ok(Route::Network(id.to_string(), NetworkOp::Remove)),
        ["networks", id, "connect"] if post => Ok(Route::Network(id.to_string(), NetworkOp::Connect)),
        ["networks", id, "disconnect"] if post => Ok(Route::Network(id.to_string(), NetworkOp::Disconnect)),
        ["volumes"] if get => Ok(Route::VolumesList),
        ["volumes", "create"] if post => Ok(Route::VolumesCreate),
        ["volumes", "prune"] if post => Ok(Route::VolumesPrune),
        ["volumes", name] if get => Ok(Route::Volume(name.to_string())),
        ["volumes", name] if delete => Ok(Route::VolumeRemove(name.to_string())),
        ["distribution", rest @ .., "json"] if get && !rest.is_empty() => {
            Ok(Route::Distribution(image_word(&rest.join("/"))?))
        }
        _ => Err(ApiError::page_not_found()),
    };
    Ok(Routed { version, route: route? })
}

/// `/images/{name}[/op]`: the name may hold slashes, so the operation is
/// the last segment when it is one (and the method fits).
fn image_route(m: &Method, rest: &[&str]) -> Result<Route, ApiError> {
    if *m == Method::DELETE {
        return Ok(Route::Image(image_word(&rest.join("/"))?, ImageOp::Remove));
    }
    let (last, name) = rest.split_last().expect("non-empty");
    let op = match *last {
        "json" if *m == Method::GET => ImageOp::Inspect,
        "history" if *m == Method::GET => ImageOp::History,
        "get" if *m == Method::GET => ImageOp::Save,
        "tag" if *m == Method::POST => ImageOp::Tag,
        "push" if *m == Method::POST => ImageOp::Push,
        _ => return Err(ApiError::page_not_found()),
    };
    if name.is_empty() {
        return Err(ApiError::page_not_found());
    }
    Ok(Route::Image(image_word(&name.join("/"))?, op))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::StatusCode;

    fn r(m: Method, p: &str) -> Result<Route, ApiError> {
        route(&m, p).map(|x| x.route)
    }

    #[test]
    fn versions_are_optional_and_bounded() {
        let x = route(&Method::GET, "/v1.41/containers/json").unwrap();
        assert_eq!(x.version, Some(ApiVersion::new(1, 41)));
        assert_eq!(x.route, Route::ContainersList);
        assert_eq!(route(&Method::GET, "/containers/json").unwrap().version, None);
        assert_eq!(r(Method::GET, "/version").unwrap(), Route::Version);
        assert_eq!(r(Method::GET, "/volumes").unwrap(), Route::VolumesList);
        assert_eq!(
            r(Method::GET, "/v1.43/volumes/data").unwrap(),
            Route::Volume("data".into())
        );
        let e = route(&Method::GET, "/v1.99/version").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "client version 1.99 is too new. Maximum supported API version is 1.43"
        );
        let e = route(&Method::GET, "/v1.12/version").unwrap_err();
        assert!(e.message.starts_with("client version 1.12 is too old"));
        assert_eq!(
            route(&Method::GET, "/vx/version").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(r(Method::HEAD, "/v1.24/_ping").unwrap(), Route::Ping);
    }

    #[test]
    fn image_names_keep_their_slashes() {
        assert_eq!(
            r(Method::GET, "/images/127.0.0.1:5000/team/app:1/json").unwrap(),
            Route::Image("127.0.0.1:5000/team/app:1".into(), ImageOp::Inspect)
        );
        assert_eq!(
            r(Method::DELETE, "/images/a/b/json").unwrap(),
            Route::Image("a/b/json".into(), ImageOp::Remove)
        );
        assert_eq!(
            r(Method::POST, "/images/bb/tag").unwrap(),
            Route::Image("bb".into(), ImageOp::Tag)
        );
        assert_eq!(r(Method::GET, "/images/json").unwrap(), Route::ImagesList);
        assert_eq!(
            r(Method::GET, "/images/bb/get").unwrap(),
            Route::Image("bb".into(), ImageOp::Save)
        );
        assert_eq!(
            r(Method::GET, "/images/json/json").unwrap(),
            Route::Image("json".into(), ImageOp::Inspect)
        );
        assert_eq!(
            r(Method::GET, "/images/bb/frobnicate").unwrap_err().message,
            "page not found"
        );
        assert_eq!(
            r(Method::GET, "/distribution/127.0.0.1:5000/team/app:1/json").unwrap(),
            Route::Distribution("127.0.0.1:5000/team/app:1".into())
        );
        assert_eq!(
            r(Method::GET, "/distribution/json").unwrap_err().message,
            "page not found"
        );
    }

    #[test]
    fn containers_are_checked_and_unknown_paths_are_docker_404s() {
        assert_eq!(
            r(Method::POST, "/containers/web_1/start").unwrap(),
            Route::Container("web_1".into(), ContainerOp::Start)
        );
        assert_eq!(
            r(Method::HEAD, "/containers/abc/archive").unwrap(),
            Route::Container("abc".into(), ContainerOp::ArchiveHead)
        );
        let e = r(Method::GET, "/containers/..%/json").unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (StatusCode::NOT_FOUND, "No such container: ..%")
        );
        let e = r(Method::GET, "/nosuch").unwrap_err();
        assert_eq!(
            (e.status, e.body()),
            (StatusCode::NOT_FOUND, r#"{"message":"page not found"}"#.to_string())
        );
        assert_eq!(r(Method::PUT, "/version").unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(
            r(Method::POST, "/containers/x/attach").unwrap(),
            Route::Container("x".into(), ContainerOp::Attach)
        );
        assert_eq!(
            r(Method::GET, "/v1.41/containers/x/attach/ws").unwrap(),
            Route::Container("x".into(), ContainerOp::AttachWs)
        );
        assert_eq!(
            r(Method::POST, "/v1.41/exec/abc123/start").unwrap(),
            Route::Exec("abc123".into(), ExecOp::Start)
        );
        assert_eq!(
            r(Method::POST, "/exec/a.b/start").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            r(Method::POST, "/containers/x/update").unwrap(),
            Route::Container("x".into(), ContainerOp::Update)
        );
        assert_eq!(
            r(Method::GET, "/containers/x/json/").unwrap(),
            Route::Container("x".into(), ContainerOp::Inspect)
        );
    }
}
