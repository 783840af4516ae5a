//! Handlers: each turns a request into one engine call and the result
//! into Docker's JSON (or a stream). No policy lives here: what an
//! operation does, and when it fails, is the engine's.

mod containers;
mod create;
mod events;
mod images;
mod networks;
mod sessions;
mod system;
mod volumes;

pub use sessions::Shared;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};

use berth_engine::Engine;

use crate::body::Body;
use crate::error::ApiError;
use crate::hijack::Takeover;
use crate::query::Query;
use crate::router::{ApiVersion, ExecOp, Route};
use crate::server::Activity;

/// What a handler gets besides the request.
pub struct Ctx {
    pub engine: Arc<Engine>,
    pub query: Query,
    /// Keeps the service from idling out while a taken-over connection
    /// (attach, exec) lives on after its request.
    pub activity: Arc<Activity>,
    /// The version the client asked for (the current one without a prefix):
    /// attach and exec answer `multiplexed-stream` from 1.42 on.
    pub version: ApiVersion,
    /// Where a handler that takes the connection over leaves its claim.
    pub takeover: Takeover,
    /// What the service keeps between requests (execs, waiting attaches).
    pub shared: Arc<Shared>,
}

impl Ctx {
    /// Runs an engine call on the blocking pool.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> berth_engine::Result<T> + Send + 'static,
    {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| ApiError::internal(format!("the engine call failed: {e}")))?
            .map_err(ApiError::from)
    }
}

/// Calls the route's handler.
pub async fn dispatch(ctx: Ctx, route: Route, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    match route {
        Route::Ping => Ok(system::ping(&req)),
        Route::Version => system::version(&ctx).await,
        Route::Info => system::info(&ctx).await,
        Route::SystemDf => system::df(&ctx).await,
        Route::Auth => system::auth(&ctx, req).await,
        Route::ImagesList => images::list(&ctx).await,
        Route::Distribution(name) => images::distribution(&ctx, name).await,
        Route::ImagesSave => images::save(&ctx, ctx.query.all("names")).await,
        Route::ImagesLoad => images::load(&ctx, req).await,
        Route::ImagesPrune => images::prune(&ctx).await,
        Route::Image(name, op) => images::one(&ctx, name, op).await,
        Route::ContainersList => containers::list(&ctx).await,
        Route::ContainersPrune => containers::prune(&ctx).await,
        Route::Container(word, op) => containers::one(&ctx, word, op, req).await,
        Route::ContainersCreate => containers::create(&ctx, req).await,
        Route::Exec(id, op) => match op {
            ExecOp::Start => sessions::exec_start(&ctx, id, req).await,
            ExecOp::Resize => sessions::exec_resize(&ctx, id).await,
            ExecOp::Inspect => sessions::exec_inspect(&ctx, id).await,
        },
        Route::Commit => containers::commit(&ctx, req).await,
        Route::ImagesCreate => images::create(&ctx, req).await,
        Route::Build => images::build(&ctx, req).await,
        Route::BuildPrune => images::build_prune(&ctx).await,
        Route::Events => events::stream(&ctx).await,
        Route::VolumesList => volumes::list(&ctx).await,
        Route::VolumesCreate => volumes::create(&ctx, req).await,
        Route::VolumesPrune => volumes::prune(&ctx).await,
        Route::Volume(name) => volumes::inspect(&ctx, name).await,
        Route::VolumeRemove(name) => volumes::remove(&ctx, name).await,
        Route::NetworksList => networks::list(&ctx).await,
        Route::NetworksCreate => networks::create(&ctx, req).await,
        Route::NetworksPrune => networks::prune(&ctx).await,
        Route::Network(id, op) => networks::one(&ctx, id, op, req).await,
        Route::NotYet(what) => Err(ApiError::new(
            hyper::StatusCode::NOT_IMPLEMENTED,
            format!("berth does not serve {what} through the API yet; the berth command line does it"),
        )),
    }
}

/// Seconds since the epoch of an RFC 3339 time (0 when it is not one).
pub(crate) fn unix_time(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}
