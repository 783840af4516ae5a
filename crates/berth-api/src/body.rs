//! Bodies: small JSON answers, and the two bridges between hyper's async
//! bodies and the engine's blocking `Read`/`Write` world.
//!
//! * [`stream_from_blocking`] runs an engine call on the blocking pool with
//!   a [`BodyWriter`]; the response starts with its first bytes (so a
//!   failure before any output is still a proper error status) and then
//!   streams, chunk by chunk, with backpressure: a slow client slows the
//!   engine down instead of filling memory.
//! * [`BodyReader`] gives the engine a request body as a `Read`, a few
//!   chunks at a time: a 1 GiB upload never sits in memory.
//! * [`read_json`] reads a small JSON body with a size limit (413 above).
//!
//! Nothing here knows an endpoint.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::error::ApiError;

/// The body of every response.
pub type Body = BoxBody<Bytes, io::Error>;

/// Chunks in flight between a blocking writer and the connection (each at
/// most [`CHUNK`] bytes): the whole buffer between them.
const IN_FLIGHT: usize = 8;
/// How much a [`BodyWriter`] gathers before it sends.
pub const CHUNK: usize = 64 * 1024;
/// Limit of a JSON request body.
pub const JSON_LIMIT: usize = 16 << 20;

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A body of these bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A JSON response.
pub fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A response with a status and no body (204, 304, 201 …).
pub fn status(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = status;
    r
}

/// An error as Docker sends it.
pub fn error(e: &ApiError) -> Response<Body> {
    let mut r = Response::new(full(e.body()));
    *r.status_mut() = e.status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// What travels from a blocking writer to the connection.
enum Msg {
    Data(Bytes),
    /// The writer's work ended (with its result).
    End(Result<(), ApiError>),
}

/// A `Write` whose bytes become the response body. Buffers up to
/// [`CHUNK`] bytes; `flush` sends at once (for output someone is
/// watching: logs, progress). Blocks while the client is slow; fails
/// with `BrokenPipe` once the client is gone.
pub struct BodyWriter {
    tx: mpsc::Sender<Msg>,
    buf: Vec<u8>,
    sent: bool,
}

impl BodyWriter {
    /// Whether the client went away (nothing more will be read).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Whether bytes were sent already (the status is out: a failure can
    /// only be told in the body now).
    pub fn started(&self) -> bool {
        self.sent || !self.buf.is_empty()
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.sent = true;
        let data = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Msg::Data(data))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.tx.is_closed() {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"));
        }
        let room = CHUNK - self.buf.len();
        let n = buf.len().min(room);
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The receiving end as a response body.
struct ChannelBody {
    first: Option<Bytes>,
    rx: mpsc::Receiver<Msg>,
    done: bool,
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(b) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Msg::Data(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Msg::End(Ok(())))) => {
                self.done = true;
                Poll::Ready(None)
            }
            // Too late for a status: cutting the connection tells the
            // client the body is incomplete.
            Poll::Ready(Some(Msg::End(Err(e)))) => {
                self.done = true;
                log::warn!("response cut short: {e}");
                Poll::Ready(Some(Err(io::Error::other(e.message))))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(Some(Err(io::Error::other("the writer stopped without finishing"))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.first.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Runs `work` on the blocking pool with a [`BodyWriter`]. Returns the
/// body once `work` wrote its first bytes (or finished): an error before
/// any output is returned as the error, so the handler answers with its
/// status; an error after output cuts the body short.
pub async fn stream_from_blocking<F>(work: F) -> Result<Body, ApiError>
where
    F: FnOnce(&mut BodyWriter) -> Result<(), ApiError> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(IN_FLIGHT);
    spawn_writer(tx, work);
    match rx.recv().await {
        Some(Msg::Data(b)) => Ok(ChannelBody {
            first: Some(b),
            rx,
            done: false,
        }
        .boxed()),
        Some(Msg::End(Ok(()))) => Ok(empty()),
        Some(Msg::End(Err(e))) => Err(e),
        None => Err(ApiError::internal("the operation stopped without an answer")),
    }
}

/// [`stream_from_blocking`] for bulk output (archives, exports): the
/// engine writes through a [`CHUNK`]-sized buffer, flushed at the end.
pub async fn stream_bulk<F>(work: F) -> Result<Body, ApiError>
where
    F: FnOnce(&mut dyn Write) -> berth_engine::Result<()> + Send + 'static,
{
    stream_from_blocking(move |w| {
        let mut out = io::BufWriter::with_capacity(CHUNK, w);
        work(&mut out)?;
        out.flush()
            .map_err(|e| ApiError::internal(format!("sending the response: {e}")))
    })
    .await
}

/// Like [`stream_from_blocking`], but the body is returned at once, so
/// the status and headers go out before `work` writes anything (a `wait`
/// whose client must know the request was accepted).
pub fn stream_now<F>(work: F) -> Body
where
    F: FnOnce(&mut BodyWriter) -> Result<(), ApiError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    spawn_writer(tx, work);
    ChannelBody {
        first: None,
        rx,
        done: false,
    }
    .boxed()
}

fn spawn_writer<F>(tx: mpsc::Sender<Msg>, work: F)
where
    F: FnOnce(&mut BodyWriter) -> Result<(), ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let mut w = BodyWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
            sent: false,
        };
        let res = work(&mut w).and_then(|()| {
            w.flush()
                .map_err(|e| ApiError::internal(format!("sending the response: {e}")))
        });
        let _ = tx.blocking_send(Msg::End(res));
    });
}

/// Bytes from the connection as a blocking `Read` (a request body, or
/// what the client sends on a taken-over connection), fed by a task that
/// reads the connection only as fast as the reader consumes.
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl BodyReader {
    /// Reads what a task sends on `rx` (the task ends the stream by
    /// dropping its sender).
    pub(crate) fn from_channel(rx: mpsc::Receiver<io::Result<Bytes>>) -> BodyReader {
        BodyReader {
            rx,
            current: Bytes::new(),
        }
    }

    /// Starts reading `body` (call from within the runtime).
    pub fn new(mut body: Incoming) -> BodyReader {
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        tokio::spawn(async move {
            while let Some(frame) = body.frame().await {
                let item = match frame {
                    Ok(f) => match f.into_data() {
                        Ok(d) if d.is_empty() => continue,
                        Ok(d) => Ok(d),
                        Err(_) => continue, // trailers
                    },
                    Err(e) => Err(io::Error::other(format!("reading the request body: {e}"))),
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        BodyReader::from_channel(rx)
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Reads a JSON body of at most `limit` bytes; None when it is empty.
pub async fn read_json<T: DeserializeOwned>(body: Incoming, limit: usize) -> Result<Option<T>, ApiError> {
    let bytes = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is larger than {limit} bytes"),
                )
            } else {
                ApiError::bad_request(format!("reading the request body: {e}"))
            }
        })?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))
}
