//! `smtp://user:password@host:port?tls=MODE` and `smtps://...`: the SMTP server in one
//! setting.

use super::config::TlsMode;

/// The parts of an SMTP URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SmtpUrl {
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) tls: TlsMode,
}

const EXPECTED: &str =
    "an SMTP URL such as smtp://user:password@host:587?tls=required or smtps://host";

/// Splits an SMTP URL into its parts, or says what it should look like. The URL is read by
/// `url`; what it may hold beyond the host is checked here: no path but `/`, no fragment,
/// and `tls=MODE` as the only query.
pub(crate) fn smtp_url_parts(url: &str) -> Result<SmtpUrl, &'static str> {
    let parsed = url::Url::parse(url.trim()).map_err(|_| EXPECTED)?;
    let mut tls = match parsed.scheme() {
        "smtp" => TlsMode::None,
        "smtps" => TlsMode::Wrapper,
        _ => return Err(EXPECTED),
    };
    if !matches!(parsed.path(), "" | "/") || parsed.fragment().is_some() {
        return Err(EXPECTED);
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() && !d.contains('%') => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(EXPECTED),
    };
    let port = match parsed.port() {
        Some(0) => return Err(EXPECTED),
        p => p,
    };
    let credentials = match (parsed.username(), parsed.password()) {
        ("", None) => None,
        (user, pass) => Some((percent_decoded(user)?, percent_decoded(pass.unwrap_or(""))?)),
    };
    for pair in parsed
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("tls", mode)) => tls = TlsMode::parse(mode).ok_or(EXPECTED)?,
            _ => return Err(EXPECTED),
        }
    }
    Ok(SmtpUrl {
        host,
        port,
        credentials,
        tls,
    })
}

/// A user or password decoded; a `%` not followed by two hex digits, or bytes that are not
/// UTF-8, make the URL bad.
fn percent_decoded(s: &str) -> Result<String, &'static str> {
    let mut escapes = s.split('%').skip(1);
    if !escapes.all(|after| {
        after
            .get(..2)
            .is_some_and(|h| u8::from_str_radix(h, 16).is_ok())
    }) {
        return Err(EXPECTED);
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|d| d.into_owned())
        .map_err(|_| EXPECTED)
}

/// The URL with its password replaced by the placeholder, for messages.
pub(crate) fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') {
                format!("{user}:{}", crate::PLACEHOLDER)
            } else {
                user.to_owned()
            };
            format!("{scheme}://{hidden}@{host}{}", &rest[end..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_urls() {
        let u = smtp_url_parts("smtp://ann:s%3Acret@mail.test:2525?tls=required").unwrap();
        assert_eq!(u.host, "mail.test");
        assert_eq!(u.port, Some(2525));
        assert_eq!(u.credentials, Some(("ann".into(), "s:cret".into())));
        assert_eq!(u.tls, TlsMode::Required);
        let u = smtp_url_parts("smtps://mail.test").unwrap();
        assert_eq!((u.port, u.tls), (None, TlsMode::Wrapper));
        let u = smtp_url_parts("smtp://[::1]:25/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", Some(25)));
        let u = smtp_url_parts(" SMTP://a%40b:p@ss@10.0.0.1?tls=wrapper ").unwrap();
        assert_eq!(u.host, "10.0.0.1");
        assert_eq!(u.credentials, Some(("a@b".into(), "p@ss".into())));
        assert_eq!(u.tls, TlsMode::Wrapper);
        for bad in [
            "mail.test",
            "http://mail.test",
            "smtp://",
            "smtp://host:0",
            "smtp://host:port",
            "smtp://host?x=1",
            "smtp://a b",
            "smtp://u:%zz@host",
            "smtp://host/path",
            "smtp://host#part",
            "smtp://ho%20st",
        ] {
            assert!(smtp_url_parts(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            hide_password("smtp://ann:hunter2@host:25?tls=none"),
            "smtp://ann:**********@host:25?tls=none"
        );
        assert_eq!(hide_password("smtp://host"), "smtp://host");
        assert_eq!(hide_password("smtp://ann@host"), "smtp://ann@host");
    }
}
