//! One envelope to the server, over HTTP(S), and what the answer means for it.

use std::time::{Duration, SystemTime};

use super::config::ForwardConfig;
use super::envelope::Gzip;
use super::limits::{error_wait_of_rate_limits, wait_of_retry_after, DEFAULT_RETRY_AFTER};
use super::resolve::KeptAddress;
use crate::error::ConfigError;

/// The bytes of an answer's body kept for a refusal.
const KEPT_ANSWER: u64 = 2048;

/// What became of one try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 2xx: the server took it (or already had it: servers drop a repeated `event_id`).
    Taken,
    /// A network error, a timeout or a 5xx: try again after a back-off.
    Retry(String),
    /// 429, or a rate limit on errors: wait this long, then try again; not a failure.
    Wait(Duration, String),
    /// 401, 403, 404, 407: the server (or a proxy before it) refuses us, whatever we send
    /// (a rotated key, a project gone, a load balancer in maintenance): pause with a long
    /// back-off and keep the events; not the event's fault.
    Shut {
        /// The HTTP status.
        status: u16,
        /// The status and the start of the body.
        answer: String,
    },
    /// Any other answer that is not 2xx, 408, 429 or 5xx (400, 413): the server will never
    /// take this event.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The status and the start of the body.
        answer: String,
    },
}

/// The HTTP client of a DSN.
#[derive(Debug)]
pub(crate) struct Sender {
    agent: ureq::Agent,
    address: KeptAddress,
    /// One deflate state for the bodies this sender sends.
    gzip: std::cell::RefCell<Gzip>,
    url: String,
    auth: String,
}

/// The CA certificates of a PEM file, read and checked.
fn root_certificates_of(
    path: &std::path::Path,
) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(format!("bad PEM: {e}"))),
        })
        .collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

impl Sender {
    /// The client of the settings; fails when the root certificate file is unusable,
    /// naming it and saying why.
    pub(crate) fn new(config: &ForwardConfig) -> Result<Sender, ConfigError> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &config.root_certificate {
            let certs = root_certificates_of(path).map_err(|why| ConfigError::InvalidSetting {
                setting: "forward root_certificate",
                value: format!("{} ({why})", path.display()),
                expected: "a readable PEM file of CA certificates",
            })?;
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let config_of_agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.timeout))
            .max_redirects(0)
            .user_agent(format!("stacktrace/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build();
        let address = KeptAddress::default();
        let agent = ureq::Agent::with_parts(
            config_of_agent,
            ureq::unversioned::transport::DefaultConnector::new(),
            address.clone(),
        );
        Ok(Sender {
            agent,
            address,
            gzip: Default::default(),
            url: config.dsn.envelope_url(),
            auth: config.dsn.auth_header(),
        })
    }

    /// Gzips and posts one envelope. `Taken` comes with the wait a rate limit on errors in
    /// the answer asks for (servers send limits with a 200 too).
    pub(crate) fn send(&self, envelope: &[u8]) -> (Answer, Option<Duration>) {
        let mut gzip = self.gzip.borrow_mut();
        let sent = self
            .agent
            .post(&self.url)
            .header("X-Sentry-Auth", &self.auth)
            .header("Content-Type", "application/x-sentry-envelope")
            .header("Content-Encoding", "gzip")
            .send(gzip.gzip(envelope));
        drop(gzip);
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => {
                // The server may have moved: look it up again at the next try.
                self.address.forget();
                return (Answer::Retry(e.to_string()), None);
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let limit = header("x-sentry-rate-limits")
            .as_deref()
            .and_then(error_wait_of_rate_limits);
        let retry_after = header("retry-after")
            .as_deref()
            .and_then(|v| wait_of_retry_after(v, SystemTime::now()));
        let body = response
            .body_mut()
            .with_config()
            .limit(KEPT_ANSWER)
            .read_to_string()
            .unwrap_or_default();
        let answer = format!("{status} {}", body.trim()).trim().to_owned();
        match status {
            200..=299 => (Answer::Taken, limit),
            429 => {
                // X-Sentry-Rate-Limits first, as the protocol says; then Retry-After.
                let wait = limit.or(retry_after).unwrap_or(DEFAULT_RETRY_AFTER);
                (Answer::Wait(wait, answer), None)
            }
            408 | 500..=599 => (Answer::Retry(answer), retry_after),
            401 | 403 | 404 | 407 => (Answer::Shut { status, answer }, None),
            _ => (Answer::Refused { status, answer }, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression: an unusable root certificate file must be a bad setting naming the
    // file, not a thread that could not start.
    #[test]
    fn a_bad_root_certificate_is_a_bad_setting_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let config = ForwardConfig::new("https://k1@errors.example.com/3")
            .unwrap()
            .root_certificate(&path);
        let text = Sender::new(&config).unwrap_err().to_string();
        assert!(
            text.contains("forward root_certificate") && text.contains("ca.pem"),
            "{text}"
        );
        let missing = config.root_certificate(dir.path().join("none.pem"));
        assert!(Sender::new(&missing)
            .unwrap_err()
            .to_string()
            .contains("none.pem"));
        let fine = ForwardConfig::new("https://k1@errors.example.com/3").unwrap();
        assert!(Sender::new(&fine).is_ok());
    }
}
