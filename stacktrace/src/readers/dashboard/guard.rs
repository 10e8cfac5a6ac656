//! The access check in front of every page: the request's credentials and origin read,
//! the verdict of `access.rs` turned into the page or a refusal, the token remembered in a
//! cookie, and the safety headers on every answer.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::uri::Scheme;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::access::{self, Presented, Rules, Verdict, PROXY_HEADERS, TOKEN_COOKIE};
use super::html::Frame;
use super::router::{base_of, message_page, Shared};
use crate::capture::user_hook::UserHook;

/// What a proxied request is told, naming the headers that gave the proxy away.
const PROXIED: &str = "This request came through a proxy (it carries Forwarded, X-Forwarded-For, \
    X-Forwarded-Host, X-Forwarded-Proto, X-Real-IP or Via), so it may come from anywhere: \
    behind a proxy the dashboard answers only requests that present its token.";

/// The program's [`Dashboard::authorize`](super::Dashboard::authorize) check, as its
/// panics are said.
static AUTHORIZE: UserHook = UserHook::new("authorize", "the request is refused");

pub(super) async fn guard(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let proxied = PROXY_HEADERS.iter().any(|h| parts.headers.contains_key(*h));
    let verdict = {
        let h = &parts.headers;
        let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
        let presented = Presented {
            peer: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
            host: text(header::HOST),
            bearer: text(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer ")),
            cookie: text(header::COOKIE).and_then(|c| access::cookie_value(c, TOKEN_COOKIE)),
            query: parts
                .uri
                .query()
                .and_then(|q| access::query_value(q, "token")),
            proxied,
        };
        let rules = Rules {
            token: s.token.as_deref(),
            cookie: s.cookie.as_deref(),
            loopback: s.loopback,
        };
        // A check that panics refuses the request, as a check that says no.
        access::verdict(&rules, &presented, || {
            s.authorize
                .as_ref()
                .map(|check| AUTHORIZE.call(|| check(&parts)).unwrap_or(false))
        })
    };
    // The refusal pages link inside the mount path too, and the cookie is kept to it.
    let frame = Frame {
        base: match parts.extensions.get::<OriginalUri>() {
            Some(OriginalUri(original)) => base_of(original, &parts.uri),
            None => String::new(),
        },
        summary: String::new(),
    };
    let secure = proxied || parts.uri.scheme() == Some(&Scheme::HTTPS);
    let req = Request::from_parts(parts, body);
    let response = match verdict {
        Verdict::Allow => next.run(req).await,
        Verdict::AllowAndRemember => {
            let mut r = next.run(req).await;
            let cookie = s
                .cookie
                .as_deref()
                .and_then(|value| access::remember_cookie(value, &frame.base, secure))
                .and_then(|c| HeaderValue::from_str(&c).ok());
            if let Some(v) = cookie {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Verdict::TokenMissing => message_page(
            StatusCode::UNAUTHORIZED,
            &frame,
            "Token required",
            "This dashboard requires its token: open it with ?token=… in the address, or send Authorization: Bearer ….",
        ),
        Verdict::Refused => message_page(
            StatusCode::FORBIDDEN,
            &frame,
            "Not allowed",
            "The application does not let this request see the dashboard.",
        ),
        Verdict::NoWayIn => message_page(
            StatusCode::FORBIDDEN,
            &frame,
            "No access configured",
            "This dashboard is mounted in an application that gave it no way in: set a token (Dashboard::token), an authorization check (Dashboard::authorize), or allow requests from this machine (Dashboard::allow_loopback).",
        ),
        Verdict::Proxied => message_page(
            StatusCode::FORBIDDEN,
            &frame,
            "Token required behind a proxy",
            PROXIED,
        ),
        Verdict::NotLoopback => message_page(
            StatusCode::FORBIDDEN,
            &frame,
            "Loopback only",
            "Without a token this dashboard answers only requests from this machine that came through no proxy (and needs the server to record peer addresses). Set a token to expose it.",
        ),
    };
    with_safety_headers(response)
}

fn with_safety_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
