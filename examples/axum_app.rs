//! A small axum app with the HTTP integration: a panicking route, a failing `#[capture]`
//! handler, a login route with sensitive post parameters, and request tracking.
//!
//! ```sh
//! cargo run -p stacktrace-examples --example axum_app            # serves 127.0.0.1:3000
//! cargo run -p stacktrace-examples --example axum_app -- --demo  # sends requests to itself, prints what was stored
//! ```
//!
//! Then look at `/events` (the captured events, with their requests) and `/tracked` (every
//! request with its status and execution time).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Form};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use stacktrace::http::{ResponseError, SensitivePostParameters, StacktraceLayer, Tracking};
use stacktrace::{capture, Config, Level};

#[derive(Debug)]
struct PaymentError(String);

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "payment refused: {}", self.0)
    }
}

impl std::error::Error for PaymentError {}

impl IntoResponse for PaymentError {
    fn into_response(self) -> Response {
        let mut res = (StatusCode::BAD_GATEWAY, "payment failed\n").into_response();
        // Stored with the 5xx when nothing captured the error on its way.
        res.extensions_mut().insert(ResponseError::new(&self));
        res
    }
}

/// Fails, and `#[capture]` stores the error with its arguments and the request.
#[capture]
async fn charge_card(order: u32, amount_cents: u64) -> Result<String, PaymentError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    Err(PaymentError(format!(
        "order {order}: {amount_cents} cents over the limit"
    )))
}

async fn checkout() -> Result<String, PaymentError> {
    stacktrace::set_user(serde_json::json!({"id": 42, "username": "ann"}));
    stacktrace::http::track("cart_items", 3);
    charge_card(1001, 250_000).await
}

async fn explode() -> &'static str {
    let stock: Vec<u32> = Vec::new();
    // A bug: the handler panics, the client gets a 500, the server serves on.
    let first = stock[0];
    let _ = first;
    "unreachable"
}

#[derive(serde::Deserialize)]
struct Login {
    username: String,
    pass_word: String,
}

async fn login(Form(form): Form<Login>) -> StatusCode {
    stacktrace::set_user(form.username.as_str());
    if form.pass_word != "open sesame" {
        // The body is stored with `pass_word` as **********.
        stacktrace::capture_message("login refused", Level::Warning);
        return StatusCode::UNAUTHORIZED;
    }
    StatusCode::OK
}

async fn events() -> String {
    let Some(store) = stacktrace::store() else {
        return "no database\n".into();
    };
    let mut out = String::new();
    for e in store.query().limit(20).all().unwrap_or_default() {
        out.push_str(&format!(
            "{} {:7} {} user={:?}\n    request: {}\n",
            e.id,
            e.level,
            e.title(),
            e.user,
            e.payload.get("request").cloned().unwrap_or_default()
        ));
    }
    out
}

async fn tracked() -> String {
    let Some(store) = stacktrace::store() else {
        return "no database\n".into();
    };
    let mut out = String::new();
    for r in store.tracked().limit(20).run().unwrap_or_default() {
        out.push_str(&format!(
            "{} {} {} -> {} in {:?} user={:?} data={}\n",
            r.timestamp_us,
            r.method,
            r.path,
            r.status,
            r.duration(),
            r.user,
            serde_json::Value::Object(r.data.clone())
        ));
    }
    out
}

fn app() -> Result<Router, stacktrace::ConfigError> {
    let tracking = Tracking::new()
        .exclude("^/(events|tracked)$")?
        .max_body_length(1024);
    Ok(Router::new()
        .route("/", get(|| async { "hello\n" }))
        .route("/panic", get(explode))
        .route("/checkout", post(checkout))
        .route(
            "/login",
            post(login).layer(SensitivePostParameters::new(["pass_word"])),
        )
        .route("/events", get(events))
        .route("/tracked", get(tracked))
        .layer(
            StacktraceLayer::new()
                .client_addr(|req| {
                    req.extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|c| c.0.ip())
                })
                .tracking(tracking),
        ))
}

/// One HTTP/1.1 request over a fresh connection; the response's status line.
async fn request(addr: SocketAddr, head: &str, body: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let msg = format!(
        "{head} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(msg.as_bytes()).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?.capture_body(true);
    let guard = stacktrace::install_with(config);
    let demo = std::env::args().any(|a| a == "--demo");
    let port = if demo { 0 } else { 3000 };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let app = app()?.into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    if !demo {
        println!("listening on http://{addr}; try:");
        println!("  curl http://{addr}/panic");
        println!("  curl -X POST http://{addr}/checkout");
        println!("  curl -d 'username=ann&pass_word=hunter2' http://{addr}/login");
        println!("  curl http://{addr}/events; curl http://{addr}/tracked");
        server.await??;
        return Ok(());
    }
    for (head, body) in [
        ("GET /", ""),
        ("GET /panic", ""),
        ("GET /", ""),
        ("POST /checkout", ""),
        ("POST /login", "username=ann&pass_word=hunter2"),
    ] {
        println!("{head:16} -> {}", request(addr, head, body).await?);
    }
    guard.flush();
    stacktrace::http::flush_tracking(Duration::from_secs(5));
    println!("\n# events\n{}", events().await);
    println!("# tracked requests\n{}", tracked().await);
    Ok(())
}
