//! The HTTP tests' harness: an axum app served on 127.0.0.1, a real HTTP client with time
//! limits, the tracker installed once (through [`super::install`]) and flushed with its
//! request tracking.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use stacktrace::{Config, CrashEvent};

use super::install::{install_once, installed};

pub type Body = BoxBody<Bytes, Infallible>;

/// Installs the tracker once for this test program, with `config` (its database in a
/// fresh directory); returns that directory.
pub fn install(config: impl FnOnce() -> Config) -> PathBuf {
    install_once(config).dir.clone()
}

/// Waits until captured events and tracked requests are stored.
pub fn flush() {
    assert!(installed().guard.flush_timeout(Duration::from_secs(20)));
    assert!(stacktrace::http::flush_tracking(Duration::from_secs(20)));
}

/// Serves the app on a free port of 127.0.0.1, with the client's address known.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    addr
}

pub fn client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A body sent in chunks, without a length (`transfer-encoding: chunked`).
pub fn chunked(chunks: Vec<Bytes>) -> Body {
    Chunks(chunks.into_iter().rev().collect()).boxed()
}

struct Chunks(Vec<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop().map(|c| Ok(Frame::data(c))))
    }
}

/// Sends a request and reads the whole response, within 20 seconds.
pub async fn send(
    client: &Client<HttpConnector, Body>,
    req: Request<Body>,
) -> (StatusCode, HeaderMap, Bytes) {
    tokio::time::timeout(Duration::from_secs(20), async {
        let res = client.request(req).await.expect("response");
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        (parts.status, parts.headers, bytes)
    })
    .await
    .expect("answered within 20 s")
}

pub async fn get(client: &Client<HttpConnector, Body>, url: String) -> (StatusCode, Bytes) {
    let req = Request::get(url).body(empty()).expect("request");
    let (status, _, body) = send(client, req).await;
    (status, body)
}

/// What the tests' echo handlers do: stores an info event `{what} {tag}`, the tag being the
/// request's `x-tag` header (`untagged` without one), and answers the length of the body read.
pub fn echo_tagged(what: &str, headers: &HeaderMap, body: &Bytes) -> String {
    let tag = headers
        .get("x-tag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("untagged")
        .to_owned();
    stacktrace::capture_message(&format!("{what} {tag}"), stacktrace::Level::Info);
    body.len().to_string()
}

/// The events stored for a request path, newest first.
pub fn events_at(path: &str) -> Vec<CrashEvent> {
    stacktrace::store()
        .expect("store")
        .query()
        .request_path(path)
        .limit(10_000)
        .all()
        .expect("query")
}
