//! The background sender: a bounded queue of reports and one thread that renders and sends
//! them over SMTP, retrying temporary failures with back-off, in order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use super::checks::MailSettings;
use super::compose::{messages_of, Job};
use crate::sync::{lock, lock_briefly};

/// Whether this build can speak TLS to the SMTP server.
pub(crate) const TLS_AVAILABLE: bool = cfg!(feature = "mail-tls");

/// How long an idle sender waits before looking at the queue again.
const IDLE_WAIT: Duration = Duration::from_millis(250);

/// Counts of the sender, since install.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailStats {
    /// Reports waiting or being sent now.
    pub queued: usize,
    /// Mails the server accepted (a report in parts counts each part).
    pub sent: u64,
    /// Reports dropped because the queue was full.
    pub dropped: u64,
    /// Mails given up: a permanent (`5xx`) reply, or temporary failures past `max_attempts`.
    pub failed: u64,
    /// Sends tried again after a temporary failure.
    pub retries: u64,
    /// Reports about the HTTP layer's events held back by `http_mail_limit` (each is told
    /// in the group's next mail).
    pub limited: u64,
}

#[derive(Debug, Default)]
struct State {
    jobs: VecDeque<Job>,
    /// A job taken from the queue and not yet finished.
    busy: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
}

/// The sending side of the mail queue.
#[derive(Debug)]
pub(crate) struct Sender {
    shared: Arc<Shared>,
    capacity: usize,
}

impl Sender {
    /// Starts the sender thread; it runs for the life of the process.
    pub(crate) fn start(settings: Arc<MailSettings>) -> std::io::Result<Sender> {
        let shared = Arc::new(Shared::default());
        let capacity = settings.queue_capacity;
        let for_thread = shared.clone();
        std::thread::Builder::new()
            .name(crate::error::MAIL_THREAD.into())
            .spawn(move || run(&settings, &for_thread))?;
        Ok(Sender { shared, capacity })
    }

    /// Queues a report, or drops and counts it when the queue is full. Never waits on SMTP.
    pub(crate) fn try_send(&self, job: Job) -> bool {
        let Some(mut st) = lock_briefly(&self.shared.state) else {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        if st.jobs.len() >= self.capacity {
            drop(st);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        st.jobs.push_back(job);
        drop(st);
        self.shared.work.notify_one();
        true
    }

    pub(crate) fn stats(&self) -> MailStats {
        let queued = {
            let st = lock(&self.shared.state);
            st.jobs.len() + usize::from(st.busy)
        };
        MailStats {
            queued,
            sent: self.shared.sent.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            retries: self.shared.retries.load(Ordering::Relaxed),
            limited: 0,
        }
    }

    /// Waits until the queue is empty and nothing is being sent, at most `timeout`; returns
    /// how many reports are left.
    pub(crate) fn drain(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.shared.state);
        loop {
            let left = st.jobs.len() + usize::from(st.busy);
            let now = Instant::now();
            if left == 0 || now >= deadline {
                return left;
            }
            st = match self.shared.done.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// The TLS of the settings, checked at install so that sending never downgrades; a root
/// certificate is trusted besides the webpki roots.
#[cfg(feature = "mail-tls")]
pub(crate) fn tls_of(
    host: &str,
    mode: super::config::TlsMode,
    root: Option<&lettre::transport::smtp::client::Certificate>,
) -> Result<lettre::transport::smtp::client::Tls, lettre::transport::smtp::Error> {
    use super::config::TlsMode;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    let params = || {
        let mut b = TlsParameters::builder(host.to_owned());
        if let Some(cert) = root {
            b = b.add_root_certificate(cert.clone());
        }
        b.build_rustls()
    };
    Ok(match mode {
        TlsMode::None => Tls::None,
        TlsMode::Opportunistic => Tls::Opportunistic(params()?),
        TlsMode::Required => Tls::Required(params()?),
        TlsMode::Wrapper => Tls::Wrapper(params()?),
    })
}

/// The CA certificates of a PEM file (`smtp_root_certificate`), read and checked: at least
/// one certificate, each one a certificate rustls can trust.
#[cfg(feature = "mail-tls")]
pub(crate) fn root_certificate_of(
    path: &std::path::Path,
) -> Result<lettre::transport::smtp::client::Certificate, String> {
    use lettre::transport::smtp::client::{Certificate, CertificateStore, TlsParameters};
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    let pem = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    if !pem.windows(BEGIN.len()).any(|w| w == BEGIN) {
        return Err("no PEM certificate in it".into());
    }
    let cert = Certificate::from_pem(&pem).map_err(|e| format!("bad PEM: {e}"))?;
    // Adding a certificate to a root store parses it: a broken one fails here, not when
    // the first mail goes out.
    TlsParameters::builder("localhost".into())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(cert.clone())
        .build_rustls()
        .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    Ok(cert)
}

/// The SMTP client of the settings (`builder_dangerous` starts without TLS; the TLS mode,
/// when there is one, was checked at install).
fn transport_of(s: &MailSettings) -> SmtpTransport {
    #[allow(unused_mut)]
    let mut b = SmtpTransport::builder_dangerous(s.host.clone())
        .port(s.port)
        .timeout(Some(s.smtp_timeout));
    #[cfg(feature = "mail-tls")]
    if let Ok(tls) = tls_of(&s.host, s.tls, s.root_certificate.as_ref()) {
        b = b.tls(tls);
    }
    if let Some((user, password)) = &s.credentials {
        b = b.credentials(Credentials::new(user.clone(), password.clone()));
    }
    b.build()
}

fn run(s: &MailSettings, shared: &Shared) {
    let transport = transport_of(s);
    let mut said_failure = false;
    loop {
        let job = {
            let mut st = lock(&shared.state);
            st.busy = false;
            shared.done.notify_all();
            match st.jobs.pop_front() {
                Some(j) => {
                    st.busy = true;
                    Some(j)
                }
                None => {
                    let _ = shared.work.wait_timeout(st, IDLE_WAIT);
                    None
                }
            }
        };
        let Some(job) = job else { continue };
        // A panic while rendering or sending loses this report, not the sender.
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for m in &messages_of(s, &job) {
                send_with_retries(s, shared, &transport, m, &mut said_failure);
            }
        }));
        if done.is_err() {
            shared.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends one mail: a temporary failure (a `4xx` reply, a refused or broken connection, a
/// timeout) is tried again after a back-off that doubles; a permanent one (`5xx`) is final.
fn send_with_retries(
    s: &MailSettings,
    shared: &Shared,
    transport: &SmtpTransport,
    message: &Message,
    said_failure: &mut bool,
) {
    let mut wait = s.backoff_initial;
    for attempt in 1..=s.max_attempts {
        let e = match transport.send(message) {
            Ok(_) => {
                shared.sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => e,
        };
        let permanent = e.is_permanent() || e.is_client();
        if permanent || attempt == s.max_attempts {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            if !*said_failure {
                *said_failure = true;
                let why = if permanent {
                    "the server refused it".to_owned()
                } else {
                    format!("still failing after {attempt} tries")
                };
                crate::diag::say(&format!(
                    "stacktrace: a report mail was given up ({why}): {e}; \
                     later ones are counted in stacktrace::mail::stats()"
                ));
            }
            return;
        }
        shared.retries.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(wait);
        wait = (wait * 2).min(s.backoff_max);
    }
}
