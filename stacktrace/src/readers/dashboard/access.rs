//! Who may see the dashboard. In order: a request that presents the token (when one is set)
//! is served; then the application's own check (`Dashboard::authorize`) decides, when it
//! gave one; then a token that is set and not presented refuses; last, the loopback rule,
//! when it is on: a request from a loopback address that names a loopback host (so a page
//! elsewhere cannot reach it through a DNS name rebound to 127.0.0.1) and carries no sign of
//! a proxy (a reverse proxy on the same machine makes every visitor look local).

use std::net::{IpAddr, SocketAddr};

use sha2::{Digest, Sha256};

/// The cookie that remembers the token after it was given once in the address. It holds a
/// value derived from the token ([`cookie_value_of`]), never the token itself.
pub(crate) const TOKEN_COOKIE: &str = "stacktrace_dashboard";

/// The headers a proxy adds: a request with any of them may come from anywhere, whatever
/// its peer address says.
pub(crate) const PROXY_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "via",
];

/// What the access check decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Serve the request.
    Allow,
    /// Serve it and remember the token in a cookie: it came in the query string.
    AllowAndRemember,
    /// A token is set and the request did not present it.
    TokenMissing,
    /// The application's check refused the request, and no token is set.
    Refused,
    /// The loopback rule is off, and neither a token nor a check of the application is set.
    NoWayIn,
    /// No token is set and the request came through a proxy.
    Proxied,
    /// No token is set and the request is not from this machine.
    NotLoopback,
}

/// How a dashboard lets requests in.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rules<'a> {
    /// The token, when one is set.
    pub(crate) token: Option<&'a str>,
    /// The cookie value of the token ([`cookie_value_of`]).
    pub(crate) cookie: Option<&'a str>,
    /// Whether the loopback rule is on.
    pub(crate) loopback: bool,
}

/// The parts of a request the check looks at.
#[derive(Clone, Debug, Default)]
pub(crate) struct Presented<'a> {
    /// The peer's address, when the server recorded it (`ConnectInfo`).
    pub(crate) peer: Option<SocketAddr>,
    /// The `Host` header.
    pub(crate) host: Option<&'a str>,
    /// `Authorization: Bearer ...`.
    pub(crate) bearer: Option<&'a str>,
    /// The token cookie.
    pub(crate) cookie: Option<&'a str>,
    /// `?token=...`.
    pub(crate) query: Option<&'a str>,
    /// Whether one of the [`PROXY_HEADERS`] is present.
    pub(crate) proxied: bool,
}

/// Decides whether a request may be served. `app_check` is the application's verdict
/// (`None` when it gave no check); it is asked only when the token was not presented.
pub(crate) fn verdict(
    rules: &Rules<'_>,
    p: &Presented<'_>,
    app_check: impl FnOnce() -> Option<bool>,
) -> Verdict {
    if let Some(token) = rules.token {
        let matches =
            |given: Option<&str>, expected: &str| given.is_some_and(|g| same_secret(g, expected));
        let by_cookie = rules.cookie.is_some_and(|c| matches(p.cookie, c));
        if matches(p.bearer, token) || by_cookie {
            return Verdict::Allow;
        }
        if matches(p.query, token) {
            return Verdict::AllowAndRemember;
        }
    }
    match (app_check(), rules.token) {
        (Some(true), _) => return Verdict::Allow,
        (Some(false), None) => return Verdict::Refused,
        (_, Some(_)) => return Verdict::TokenMissing,
        (None, None) => {}
    }
    if !rules.loopback {
        return Verdict::NoWayIn;
    }
    if p.proxied {
        return Verdict::Proxied;
    }
    let peer_ok = p.peer.is_some_and(|a| a.ip().is_loopback());
    let host_ok = p.host.is_none_or(is_loopback_host);
    if peer_ok && host_ok {
        Verdict::Allow
    } else {
        Verdict::NotLoopback
    }
}

/// What the cookie holds for a token: the hex SHA-256 of a fixed label and the token, so
/// that the cookie (stored by the browser, seen by whatever reads its cookies) does not
/// give the token away.
pub(crate) fn cookie_value_of(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"stacktrace dashboard cookie\n");
    h.update(token.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Set-Cookie` value that remembers the token under the mount path `base` (empty at
/// the root); `secure` when the request came over HTTPS or through a proxy. `None` when
/// the path cannot be put in a cookie as it is.
pub(crate) fn remember_cookie(value: &str, base: &str, secure: bool) -> Option<String> {
    let path = if base.is_empty() { "/" } else { base };
    if !path
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    {
        return None;
    }
    let secure = if secure { "; Secure" } else { "" };
    Some(format!(
        "{TOKEN_COOKIE}={value}; Path={path}; HttpOnly; SameSite=Strict{secure}"
    ))
}

/// Whether binding to `addr` exposes the dashboard beyond this machine.
pub(crate) fn is_exposed(addr: &SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// `localhost`, `127.0.0.1`, `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .to_ascii_lowercase()
            .strip_suffix(".localhost")
            .is_some()
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Compares without stopping at the first difference, so the time taken does not tell how
/// much of a guess was right.
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in b.iter().enumerate() {
        diff |= x ^ a.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The value of one cookie in a `Cookie` header.
pub(crate) fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The value of one parameter in a raw query string (tokens are hex or URL-safe, so no
/// decoding is needed for a match).
pub(crate) fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k == name).then_some(v)
    })
}

/// A random 128-bit value as hex: the token of a form, or a generated dashboard token.
pub(crate) fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(peer: &str, host: &str) -> Presented<'static> {
        Presented {
            peer: Some(peer.parse().unwrap()),
            host: Some(Box::leak(host.to_owned().into_boxed_str())),
            ..Presented::default()
        }
    }

    const LOOPBACK: Rules<'static> = Rules {
        token: None,
        cookie: None,
        loopback: true,
    };

    fn no_check() -> Option<bool> {
        None
    }

    #[test]
    fn without_token_only_loopback_peers_naming_loopback_hosts() {
        let v = |p: &Presented<'_>| verdict(&LOOPBACK, p, no_check);
        assert_eq!(v(&from("127.0.0.1:5000", "127.0.0.1:8080")), Verdict::Allow);
        assert_eq!(v(&from("[::1]:5000", "[::1]:8080")), Verdict::Allow);
        assert_eq!(v(&from("127.0.0.1:5000", "localhost")), Verdict::Allow);
        assert_eq!(
            v(&from("10.1.2.3:5000", "127.0.0.1:8080")),
            Verdict::NotLoopback
        );
        // A rebound name reaches the loopback address but names another host.
        assert_eq!(
            v(&from("127.0.0.1:5000", "evil.example:8080")),
            Verdict::NotLoopback
        );
        // A server that does not record peers cannot prove a request is local.
        assert_eq!(v(&Presented::default()), Verdict::NotLoopback);
    }

    // Regression: behind a reverse proxy on the same machine every request came from
    // 127.0.0.1 naming 127.0.0.1, and the loopback rule served it to anyone.
    #[test]
    fn a_proxied_request_is_not_local() {
        let mut p = from("127.0.0.1:5000", "localhost");
        assert_eq!(verdict(&LOOPBACK, &p, no_check), Verdict::Allow);
        p.proxied = true;
        assert_eq!(verdict(&LOOPBACK, &p, no_check), Verdict::Proxied);
    }

    // Regression: mounted in an app, the loopback rule was on without being asked for.
    #[test]
    fn with_the_loopback_rule_off_nothing_is_let_in_by_default() {
        let p = from("127.0.0.1:5000", "localhost");
        let off = Rules {
            loopback: false,
            ..LOOPBACK
        };
        assert_eq!(verdict(&off, &p, no_check), Verdict::NoWayIn);
        assert_eq!(verdict(&LOOPBACK, &p, no_check), Verdict::Allow);
    }

    #[test]
    fn the_application_check_decides_before_the_loopback_rule() {
        let local = from("127.0.0.1:5000", "localhost");
        let remote = from("10.1.2.3:5000", "errors.example");
        assert_eq!(verdict(&LOOPBACK, &remote, || Some(true)), Verdict::Allow);
        assert_eq!(verdict(&LOOPBACK, &local, || Some(false)), Verdict::Refused);
        let cookie = cookie_value_of("s3cret");
        let token = Rules {
            token: Some("s3cret"),
            cookie: Some(&cookie),
            loopback: false,
        };
        // With a token set, a refusal asks for the token; the token is checked first.
        assert_eq!(
            verdict(&token, &remote, || Some(false)),
            Verdict::TokenMissing
        );
        let mut with = remote.clone();
        with.bearer = Some("s3cret");
        assert_eq!(
            verdict(&token, &with, || panic!("not asked")),
            Verdict::Allow
        );
    }

    #[test]
    fn with_token_the_token_decides() {
        let cookie = cookie_value_of("s3cret");
        let rules = Rules {
            token: Some("s3cret"),
            cookie: Some(&cookie),
            loopback: true,
        };
        let mut p = from("10.1.2.3:5000", "errors.example");
        assert_eq!(verdict(&rules, &p, no_check), Verdict::TokenMissing);
        p.bearer = Some("wrong");
        assert_eq!(verdict(&rules, &p, no_check), Verdict::TokenMissing);
        p.query = Some("s3cret");
        assert_eq!(verdict(&rules, &p, no_check), Verdict::AllowAndRemember);
        p.cookie = Some(&cookie);
        assert_eq!(verdict(&rules, &p, no_check), Verdict::Allow);
        // The token itself is no cookie.
        let mut q = from("10.1.2.3:5000", "errors.example");
        q.cookie = Some("s3cret");
        assert_eq!(verdict(&rules, &q, no_check), Verdict::TokenMissing);
        // A loopback request needs the token too once one is set.
        let local = from("127.0.0.1:5000", "localhost");
        assert_eq!(verdict(&rules, &local, no_check), Verdict::TokenMissing);
    }

    // Regression: the cookie held the token itself, on `Path=/`, never `Secure`.
    #[test]
    fn the_cookie_holds_a_digest_under_the_mount_path() {
        let value = cookie_value_of("s3cret");
        assert_eq!(value.len(), 64);
        assert!(!value.contains("s3cret"));
        assert_ne!(value, cookie_value_of("s3cret2"));
        assert_eq!(
            remember_cookie(&value, "/errors", false).unwrap(),
            format!("{TOKEN_COOKIE}={value}; Path=/errors; HttpOnly; SameSite=Strict")
        );
        assert_eq!(
            remember_cookie("v", "", true).unwrap(),
            format!("{TOKEN_COOKIE}=v; Path=/; HttpOnly; SameSite=Strict; Secure")
        );
        assert_eq!(remember_cookie("v", "/a;Domain=x", false), None);
    }

    #[test]
    fn helpers_parse_headers_and_compare_secrets() {
        assert_eq!(
            cookie_value("a=1; stacktrace_dashboard=xy", TOKEN_COOKIE),
            Some("xy")
        );
        assert_eq!(query_value("q=a&token=t1", "token"), Some("t1"));
        assert!(same_secret("abc", "abc"));
        assert!(
            !same_secret("abd", "abc") && !same_secret("ab", "abc") && !same_secret("abcd", "abc")
        );
        assert!(is_exposed(&"0.0.0.0:80".parse().unwrap()));
        assert!(!is_exposed(&"127.0.0.1:80".parse().unwrap()));
        assert_eq!(random_hex().len(), 32);
    }
}
