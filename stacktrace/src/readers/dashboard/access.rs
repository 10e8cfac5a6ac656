//! Who may see the dashboard: without a token, only requests that come from a loopback
//! address and name a loopback host (so a page elsewhere cannot reach it through a DNS name
//! rebound to 127.0.0.1); with a token, whoever presents it.

use std::net::{IpAddr, SocketAddr};

/// The cookie that carries the token after it was given once in the address.
pub(crate) const TOKEN_COOKIE: &str = "stacktrace_dashboard";

/// What the access check decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Serve the request.
    Allow,
    /// Serve it and remember the token in a cookie: it came in the query string.
    AllowAndRemember,
    /// A token is set and the request did not present it.
    TokenMissing,
    /// No token is set and the request is not from this machine.
    NotLoopback,
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
}

/// Decides whether a request may be served.
pub(crate) fn verdict(token: Option<&str>, p: &Presented<'_>) -> Verdict {
    match token {
        Some(token) => {
            let matches = |given: Option<&str>| given.is_some_and(|g| same_secret(g, token));
            if matches(p.bearer) || matches(p.cookie) {
                Verdict::Allow
            } else if matches(p.query) {
                Verdict::AllowAndRemember
            } else {
                Verdict::TokenMissing
            }
        }
        None => {
            let peer_ok = p.peer.is_some_and(|a| a.ip().is_loopback());
            let host_ok = p.host.is_none_or(is_loopback_host);
            if peer_ok && host_ok {
                Verdict::Allow
            } else {
                Verdict::NotLoopback
            }
        }
    }
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

    #[test]
    fn without_token_only_loopback_peers_naming_loopback_hosts() {
        assert_eq!(
            verdict(None, &from("127.0.0.1:5000", "127.0.0.1:8080")),
            Verdict::Allow
        );
        assert_eq!(
            verdict(None, &from("[::1]:5000", "[::1]:8080")),
            Verdict::Allow
        );
        assert_eq!(
            verdict(None, &from("127.0.0.1:5000", "localhost")),
            Verdict::Allow
        );
        assert_eq!(
            verdict(None, &from("10.1.2.3:5000", "127.0.0.1:8080")),
            Verdict::NotLoopback
        );
        // A rebound name reaches the loopback address but names another host.
        assert_eq!(
            verdict(None, &from("127.0.0.1:5000", "evil.example:8080")),
            Verdict::NotLoopback
        );
        // A server that does not record peers cannot prove a request is local.
        assert_eq!(verdict(None, &Presented::default()), Verdict::NotLoopback);
    }

    #[test]
    fn with_token_the_token_decides() {
        let mut p = from("10.1.2.3:5000", "errors.example");
        assert_eq!(verdict(Some("s3cret"), &p), Verdict::TokenMissing);
        p.bearer = Some("wrong");
        assert_eq!(verdict(Some("s3cret"), &p), Verdict::TokenMissing);
        p.query = Some("s3cret");
        assert_eq!(verdict(Some("s3cret"), &p), Verdict::AllowAndRemember);
        p.cookie = Some("s3cret");
        assert_eq!(verdict(Some("s3cret"), &p), Verdict::Allow);
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
