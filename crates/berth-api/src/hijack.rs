//! Taking a connection over from HTTP, as `attach` and `exec start` do:
//! after the response head, the connection is a raw, bidirectional byte
//! stream between the client and the container.
//!
//! Two ways in, both Docker's:
//!
//! * the client asks for it (`Connection: Upgrade`, `Upgrade: tcp`): the
//!   answer is `101 Switching Protocols` with the same headers (what the
//!   `docker` CLI and docker-py send);
//! * the client just posts (older docker-py, other old clients): the
//!   answer is `200` with `Content-Type: application/vnd.docker.raw-stream`
//!   and no length, and the connection is raw from there. hyper cannot
//!   hijack a 200, so that head is sent as HTTP/1.0 with a close-delimited
//!   body that ends at once: no `Content-Length`, no chunking — the bytes
//!   that follow on the connection are the stream, which is what a client
//!   reading "the body until the connection closes" expects too.
//!
//! `attach/ws` takes a connection over the same way, after a websocket
//! handshake (RFC 6455): [`websocket`] answers it with `101` and
//! [`RawStream::into_websocket`] reads the client's messages as one byte
//! stream and sends what the container writes as messages, binary (text
//! before API 1.28, as dockerd does), and a close frame at the end.
//!
//! Either way hyper finishes the connection without shutting it down
//! (`without_shutdown`), and the connection task hands the socket, with
//! any bytes hyper had read past the request, to the handler through the
//! connection's [`Takeover`] slot. [`RawStream`] is that socket;
//! [`RawStream::into_blocking`] gives the engine a blocking reader and
//! writer on it.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use hyper::{Request, Response, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::body::{Body, BodyReader};

/// Raw stream with a tty: bytes as they are.
pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
/// Raw stream without a tty: stdcopy frames (API 1.42 and later say so).
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// Any socket a connection can run on (unix, TCP, TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The connection after the takeover.
pub struct RawStream {
    /// Bytes the client sent after the request that hyper had already read.
    pending: Bytes,
    io: Box<dyn Io>,
}

impl RawStream {
    pub fn new(pending: Bytes, io: Box<dyn Io>) -> RawStream {
        RawStream { pending, io }
    }

    /// A blocking reader (what the client sends) and writer (what it
    /// receives), for the engine's threads. Dropping the writer half-closes
    /// the connection (the client reads EOF); the reader sees EOF when the
    /// client closes or half-closes its side. Call within the runtime.
    pub fn into_blocking(self) -> (RawReader, RawWriter) {
        let (mut rd, mut wr) = tokio::io::split(self);
        let (in_tx, in_rx) = mpsc::channel::<io::Result<Bytes>>(8);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let item = match rd.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if in_tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(8);
        tokio::spawn(async move {
            while let Some(b) = out_rx.recv().await {
                if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        });
        (BodyReader::from_channel(in_rx), RawWriter { tx: out_tx })
    }

    /// As [`RawStream::into_blocking`], over a websocket: the reader yields
    /// the payloads of the client's messages (text or binary) until its
    /// close frame; each write goes out as one message (`frames`); once
    /// every writer is dropped the server closes with 1000 and lets the
    /// connection go when the client answers, or after [`CLOSE_GRACE`].
    /// Pings are answered by the websocket layer. Call within the runtime.
    pub fn into_websocket(self, frames: Frames) -> (RawReader, RawWriter) {
        let (in_tx, in_rx) = mpsc::channel::<io::Result<Bytes>>(8);
        let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(8);
        tokio::spawn(async move {
            use futures_util::{SinkExt, StreamExt};
            let ws = WebSocketStream::from_raw_socket(self, Role::Server, None).await;
            let (mut sink, mut incoming) = ws.split();
            let mut reading = tokio::spawn(async move {
                while let Some(msg) = incoming.next().await {
                    let item = match msg {
                        Ok(Message::Binary(b)) => Ok(b),
                        Ok(Message::Text(t)) => Ok(Bytes::from(t)),
                        Ok(Message::Close(_)) => break,
                        Ok(_) => continue,
                        Err(e) => Err(io::Error::other(e)),
                    };
                    let failed = item.is_err();
                    if in_tx.send(item).await.is_err() || failed {
                        break;
                    }
                }
            });
            while let Some(b) = out_rx.recv().await {
                if sink.send(frames.message(b)).await.is_err() {
                    reading.abort();
                    return;
                }
            }
            let bye = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            if sink.send(Message::Close(Some(bye))).await.is_ok()
                && tokio::time::timeout(CLOSE_GRACE, &mut reading).await.is_ok()
            {
                return;
            }
            reading.abort();
        });
        (BodyReader::from_channel(in_rx), RawWriter { tx: out_tx })
    }
}

/// How long a websocket server waits for the client to answer its close
/// frame before it drops the connection.
pub const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The kind of message a websocket session sends its output in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frames {
    Binary,
    /// Text where the bytes are UTF-8, binary where they are not (a text
    /// message must be UTF-8).
    Text,
}

impl Frames {
    fn message(self, b: Bytes) -> Message {
        match self {
            Frames::Binary => Message::Binary(b),
            Frames::Text => match b.clone().try_into() {
                Ok(t) => Message::Text(t),
                Err(_) => Message::Binary(b),
            },
        }
    }
}

impl AsyncRead for RawStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() {
            let n = buf.remaining().min(self.pending.len());
            buf.put_slice(&self.pending[..n]);
            self.pending.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for RawStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The client's side of a taken-over connection, as a blocking `Read`.
pub type RawReader = BodyReader;

/// What the client receives on a taken-over connection, as a blocking
/// `Write`; each write is sent as it is (interactive output). Clones share
/// the connection, which is closed once every clone is dropped.
#[derive(Clone)]
pub struct RawWriter {
    tx: mpsc::Sender<Bytes>,
}

impl Write for RawWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.tx
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One per connection: where a handler leaves the promise of a takeover
/// for the connection task to keep once hyper has let go of the socket.
#[derive(Clone, Default)]
pub struct Takeover {
    slot: Arc<Mutex<Option<oneshot::Sender<RawStream>>>>,
}

impl Takeover {
    /// Called by the connection task when hyper returned the socket: hands
    /// it to the waiting handler, or gives it back when none waits.
    pub fn complete(&self, stream: RawStream) -> Option<RawStream> {
        let waiting = self.slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        match waiting {
            Some(tx) => tx.send(stream).err(),
            None => Some(stream),
        }
    }

    fn arm(&self) -> oneshot::Receiver<RawStream> {
        let (tx, rx) = oneshot::channel();
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }
}

/// Does a header of `req` named `name` list `token` (case aside)?
fn lists<B>(req: &Request<B>, name: HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// Did the client ask to upgrade to a raw TCP stream?
pub fn wants_upgrade<B>(req: &Request<B>) -> bool {
    lists(req, CONNECTION, "upgrade") && lists(req, UPGRADE, "tcp")
}

/// A body of unknown length that ends at once: hyper sends no length for
/// it, so an HTTP/1.0 head with it is close-delimited.
struct EndsAtOnce;

impl HttpBody for EndsAtOnce {
    type Data = Bytes;
    type Error = io::Error;
    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Poll::Ready(None)
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Prepares the takeover of `req`'s connection: the response to send (101
/// or the legacy 200, with `content_type`), and the raw stream, which
/// arrives once that response is on the wire.
pub fn hijack<B>(
    req: &Request<B>,
    takeover: &Takeover,
    content_type: &'static str,
) -> (Response<Body>, oneshot::Receiver<RawStream>) {
    let rx = takeover.arm();
    let mut r;
    if wants_upgrade(req) {
        r = Response::new(crate::body::empty());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut().insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        r.headers_mut().insert(UPGRADE, HeaderValue::from_static("tcp"));
    } else {
        r = Response::new(EndsAtOnce.boxed());
        *r.version_mut() = Version::HTTP_10;
    }
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    (r, rx)
}

/// Prepares the takeover of `req`'s connection for a websocket: checks
/// the client's handshake (RFC 6455 §4.2.1: a GET asking to upgrade to
/// `websocket`, version 13, with a key) and makes the `101` that accepts
/// it; the raw stream arrives once that is on the wire. A request that is
/// not a websocket handshake gets the reason back, for a 400.
pub fn websocket<B>(
    req: &Request<B>,
    takeover: &Takeover,
) -> Result<(Response<Body>, oneshot::Receiver<RawStream>), String> {
    if !lists(req, CONNECTION, "upgrade") || !lists(req, UPGRADE, "websocket") {
        return Err("this endpoint speaks websocket: send Connection: Upgrade and Upgrade: websocket".into());
    }
    let version = req.headers().get(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes());
    if version != Some(b"13".as_slice()) {
        return Err("unsupported websocket version: Sec-WebSocket-Version must be 13".into());
    }
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY) else {
        return Err("the websocket handshake has no Sec-WebSocket-Key".into());
    };
    let accept = HeaderValue::from_str(&accept_key(key.as_bytes())).expect("base64 is a header value");
    let rx = takeover.arm();
    let mut r = Response::new(crate::body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    r.headers_mut().insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    r.headers_mut().insert(UPGRADE, HeaderValue::from_static("websocket"));
    r.headers_mut().insert(SEC_WEBSOCKET_ACCEPT, accept);
    Ok((r, rx))
}

/// `Sec-WebSocket-Accept` for a client's key (RFC 6455 §4.2.2): base64 of
/// the SHA-1 of the key followed by the protocol's fixed GUID.
fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(ctx.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_rfc_6455s() {
        // The example of RFC 6455 §1.3.
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
}
