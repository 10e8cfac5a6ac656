//! The DSN: where a Sentry-compatible server takes events, and the key it takes them with.

use std::fmt;

/// A parsed DSN, `{scheme}://{public_key}@{host}[:{port}]/{path/}{project_id}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    scheme: String,
    public_key: String,
    host: String,
    port: Option<u16>,
    path: String,
    project_id: String,
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a secret: never shown.
        f.write_str(&self.without_key())
    }
}

impl Dsn {
    /// Parses a DSN; the error says what is wrong without quoting the key.
    pub fn parse(text: &str) -> Result<Dsn, &'static str> {
        let text = text.trim();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or("a DSN such as https://KEY@host/PROJECT_ID")?;
        if scheme != "http" && scheme != "https" {
            return Err("a DSN starting with http:// or https://");
        }
        let (userinfo, rest) = rest
            .split_once('@')
            .ok_or("a DSN with a key before the @ (https://KEY@host/PROJECT_ID)")?;
        // A secret key after a colon (an old DSN form) is not needed and not sent.
        let public_key = userinfo.split(':').next().unwrap_or_default();
        if public_key.is_empty() || !public_key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err("a DSN whose key is letters and digits");
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => return Err("a DSN ending in /PROJECT_ID"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or("a DSN with a port from 1 to 65535")?;
                (h, Some(port))
            }
            _ => (authority, None),
        };
        if host.is_empty() {
            return Err("a DSN with a host");
        }
        let path = path.trim_end_matches('/');
        let (prefix, project_id) = path.rsplit_once('/').unwrap_or(("", path));
        if project_id.is_empty() || !project_id.chars().all(|c| c.is_ascii_digit()) {
            return Err("a DSN ending in a numeric project id");
        }
        Ok(Dsn {
            scheme: scheme.to_owned(),
            public_key: public_key.to_owned(),
            host: host.to_owned(),
            port,
            path: format!("{prefix}/"),
            project_id: project_id.to_owned(),
        })
    }

    /// The key (a secret of the settings).
    pub(crate) fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Where envelopes go: `{scheme}://{host}[:{port}]{path}api/{project_id}/envelope/`.
    pub fn envelope_url(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{}{port}{}api/{}/envelope/",
            self.scheme, self.host, self.path, self.project_id
        )
    }

    /// The `X-Sentry-Auth` header: the key goes here, never in the envelope.
    pub(crate) fn auth_header(&self) -> String {
        format!(
            "Sentry sentry_version=7, sentry_client=stacktrace/{}, sentry_key={}",
            env!("CARGO_PKG_VERSION"),
            self.public_key
        )
    }

    /// The DSN with its key hidden, for messages.
    pub fn without_key(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{}@{}{port}{}{}",
            self.scheme,
            crate::PLACEHOLDER,
            self.host,
            self.path,
            self.project_id
        )
    }
}

/// A DSN text with its key hidden, for an error about a DSN that does not parse.
pub(crate) fn hide_key(text: &str) -> String {
    match text
        .split_once("://")
        .and_then(|(s, r)| Some((s, r.split_once('@')?.1)))
    {
        Some((scheme, rest)) => format!("{scheme}://{}@{rest}", crate::PLACEHOLDER),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dsn_gives_the_envelope_url_and_the_auth_header() {
        let d = Dsn::parse("https://abc123@o1.ingest.example.com/42").unwrap();
        assert_eq!(
            d.envelope_url(),
            "https://o1.ingest.example.com/api/42/envelope/"
        );
        assert!(d.auth_header().contains("sentry_key=abc123"));
        assert!(d.auth_header().contains("sentry_version=7"));
        let d = Dsn::parse("http://k1:oldsecret@127.0.0.1:8000/sub/path/7/").unwrap();
        assert_eq!(
            d.envelope_url(),
            "http://127.0.0.1:8000/sub/path/api/7/envelope/"
        );
        assert_eq!(d.public_key(), "k1");
        assert!(!format!("{d:?}").contains("k1"));
        assert!(format!("{d:?}").contains("127.0.0.1:8000"));
    }

    #[test]
    fn a_bad_dsn_says_what_is_wrong() {
        for bad in [
            "",
            "abc@host/1",
            "ftp://k@host/1",
            "https://host/1",
            "https://k@host",
            "https://k@host/abc",
            "https://k@host:0/1",
            "https://k@:80/1",
        ] {
            assert!(Dsn::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            hide_key("https://sekrit@host/x"),
            "https://**********@host/x"
        );
    }
}
