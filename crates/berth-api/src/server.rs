//! The service: accept connections on the bound sockets, speak HTTP/1.1
//! on each (hyper), route each request to its handler, and stop after the
//! idle time (no request in flight and none for that long) or on SIGTERM
//! or SIGINT. Containers are not this process's: their monitors keep them
//! running when the service ends.
//!
//! One thread runs every connection; handlers run engine calls on tokio's
//! blocking pool, with one shared [`Engine`] (its store serializes what
//! must be).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use berth_engine::Engine;

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::handlers::{self, Ctx};
use crate::hijack::{Io, RawStream, Takeover};
use crate::listen::Bound;
use crate::router::{self, API_VERSION};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests in flight and when the last one ended: what `--time` watches.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Default for Activity {
    fn default() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        }
    }
}

impl Activity {
    /// Marks a request (or a taken-over connection) in flight until the
    /// guard drops.
    pub fn begin(self: &Arc<Self>) -> ActivityGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.touch();
        ActivityGuard(self.clone())
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// How long until the service has been idle for `idle`; None when it has.
    fn remaining(&self, idle: Duration) -> Option<Duration> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Some(idle);
        }
        let since = self.last.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
        idle.checked_sub(since).filter(|d| !d.is_zero())
    }
}

/// See [`Activity::begin`].
#[derive(Debug)]
pub struct ActivityGuard(Arc<Activity>);

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted until it is sent.
struct Guarded {
    inner: Body,
    _guard: ActivityGuard,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = io::Error;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What every connection shares.
pub struct State {
    pub engine: Arc<Engine>,
    pub activity: Arc<Activity>,
    pub(crate) shared: Arc<handlers::Shared>,
}

/// Serves until idle for `idle` (None: until a signal). Blocks; runs its
/// own runtime.
pub fn serve(engine: Engine, listeners: Vec<Bound>, idle: Option<Duration>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("berth-api")
        .build()
        .context("starting the service's runtime")?;
    let res = rt.block_on(run(engine, listeners, idle));
    // Engine calls still running (a client gone mid-way) are not waited for.
    rt.shutdown_timeout(Duration::from_secs(1));
    res
}

async fn run(mut engine: Engine, listeners: Vec<Bound>, idle: Option<Duration>) -> Result<()> {
    engine.set_long_lived();
    let state = Arc::new(State {
        engine: Arc::new(engine),
        activity: Arc::new(Activity::default()),
        shared: Arc::new(handlers::Shared::default()),
    });
    let mut remove = Vec::new();
    let mut accepting = tokio::task::JoinSet::new();
    for b in listeners {
        log::info!("serving the Docker API (version {API_VERSION}) on {}", b.describe());
        match b {
            Bound::Unix { listener, remove: r } => {
                listener.set_nonblocking(true)?;
                let l = tokio::net::UnixListener::from_std(listener)?;
                remove.extend(r);
                let st = state.clone();
                accepting.spawn(async move {
                    loop {
                        match l.accept().await {
                            Ok((s, _)) => {
                                tokio::spawn(serve_connection(s, st.clone()));
                            }
                            Err(e) => accept_failed(e).await,
                        }
                    }
                });
            }
            Bound::Tcp { listener, tls } => {
                listener.set_nonblocking(true)?;
                let l = tokio::net::TcpListener::from_std(listener)?;
                let st = state.clone();
                let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
                accepting.spawn(async move {
                    loop {
                        match l.accept().await {
                            Ok((s, peer)) => {
                                let _ = s.set_nodelay(true);
                                let st = st.clone();
                                match acceptor.clone() {
                                    None => {
                                        tokio::spawn(serve_connection(s, st));
                                    }
                                    Some(a) => {
                                        tokio::spawn(async move {
                                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, a.accept(s)).await {
                                                Ok(Ok(tls)) => serve_connection(tls, st).await,
                                                Ok(Err(e)) => log::warn!("TLS handshake with {peer} failed: {e}"),
                                                Err(_) => log::warn!("TLS handshake with {peer} timed out"),
                                            }
                                        });
                                    }
                                }
                            }
                            Err(e) => accept_failed(e).await,
                        }
                    }
                });
            }
        }
    }
    let idle_done = async {
        match idle {
            Some(idle) => {
                while let Some(wait) = state.activity.remaining(idle) {
                    tokio::time::sleep(wait).await;
                }
                log::info!("no request for {} s: exiting", idle.as_secs());
            }
            None => std::future::pending().await,
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        _ = idle_done => {}
        _ = term.recv() => log::info!("SIGTERM: exiting"),
        _ = int.recv() => log::info!("SIGINT: exiting"),
    }
    accepting.abort_all();
    for p in remove {
        let _ = std::fs::remove_file(&p);
    }
    Ok(())
}

/// Too many open files and the like: wait a little rather than spin.
async fn accept_failed(e: io::Error) {
    log::warn!("accepting a connection failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// One connection: HTTP/1.1 until the client closes it or a handler takes
/// it over (then the socket goes to that handler).
async fn serve_connection<I: Io + 'static>(io: I, state: Arc<State>) {
    serve_connection_with(io, move |req, takeover| handle(state.clone(), takeover, req)).await
}

/// [`serve_connection`] with any handler (tests plug their own in):
/// each request gets the connection's [`Takeover`]; when the connection
/// ends with a takeover armed, the socket and the bytes read past the
/// request go to it.
pub async fn serve_connection_with<I, F, Fut>(io: I, handler: F)
where
    I: Io + 'static,
    F: Fn(Request<Incoming>, Takeover) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    let takeover = Takeover::default();
    let t = takeover.clone();
    let handler = Arc::new(handler);
    let svc = service_fn(move |req| {
        let fut = handler(req, t.clone());
        async move { Ok::<_, Infallible>(fut.await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    match conn.without_shutdown().await {
        Ok(parts) => {
            let raw = RawStream::new(parts.read_buf, Box::new(parts.io.into_inner()));
            if let Some(mut unused) = takeover.complete(raw) {
                let _ = unused.shutdown().await;
            }
        }
        Err(e) => log::debug!("connection ended: {e}"),
    }
}

/// Docker's headers on every answer.
fn add_headers(r: &mut Response<Body>) {
    let h = r.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(api_version_header()));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
}

fn api_version_header() -> &'static str {
    // API_VERSION as a static string (checked by a test).
    "1.43"
}

async fn handle(state: Arc<State>, takeover: Takeover, req: Request<Incoming>) -> Response<Body> {
    let guard = state.activity.begin();
    let began = std::time::Instant::now();
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let mut resp = match percent_encoding::percent_decode_str(&raw_path).decode_utf8() {
        Err(_) => body::error(&ApiError::bad_request("the path is not valid UTF-8")),
        Ok(path) => match router::route(&method, &path) {
            Err(e) => body::error(&e),
            Ok(routed) => {
                let ctx = Ctx {
                    engine: state.engine.clone(),
                    activity: state.activity.clone(),
                    version: routed.version.unwrap_or(API_VERSION),
                    query: crate::query::Query::parse(req.uri().query()),
                    takeover,
                    shared: state.shared.clone(),
                };
                match handlers::dispatch(ctx, routed.route, req).await {
                    Ok(r) => r,
                    Err(e) => {
                        if e.status.is_server_error() {
                            log::warn!("{method} {raw_path}: {e}");
                        }
                        body::error(&e)
                    }
                }
            }
        },
    };
    log::debug!(
        "{method} {raw_path} -> {} in {:.1} ms",
        resp.status().as_u16(),
        began.elapsed().as_secs_f64() * 1000.0
    );
    add_headers(&mut resp);
    resp.map(|inner| Guarded { inner, _guard: guard }.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_header_is_the_declared_version() {
        assert_eq!(api_version_header(), API_VERSION.to_string());
    }

    #[test]
    fn idle_counts_from_the_last_request_and_never_while_one_runs() {
        let a = Arc::new(Activity::default());
        let g = a.begin();
        assert_eq!(a.remaining(Duration::from_millis(1)), Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            a.remaining(Duration::from_millis(1)).is_some(),
            "a request is in flight"
        );
        drop(g);
        assert!(a.remaining(Duration::from_secs(60)).is_some());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(a.remaining(Duration::from_millis(1)), None);
    }
}
