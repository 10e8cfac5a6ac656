//! Which stored events are mailed, to whom: the capture path's only contact with mail,
//! which decides and queues and never waits on SMTP.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde_json::Value;

use super::checks::MailSettings;
use super::compose::Job;
use super::config::MailConfig;
use super::reporter::MailReason;
use super::sender::{MailStats, Sender};
use super::throttle::{Audience, Throttle};
use crate::error::InstallError;
use crate::model::event::{CrashEvent, Level};
use crate::store::InsertOutcome;
use crate::sync::lock_briefly;

/// The mail side of the runtime.
#[derive(Debug)]
pub(crate) struct Mailer {
    settings: Arc<MailSettings>,
    throttle: Mutex<Throttle>,
    sender: Sender,
}

/// The logger of the HTTP layer's broken-link events.
const BROKEN_LINK_LOGGER: &str = "http.404";

/// One of the HTTP layer's own events (broken links and its `5xx` events), whose number
/// clients decide.
fn from_http_layer(e: &CrashEvent) -> bool {
    e.logger == BROKEN_LINK_LOGGER || e.logger == "http"
}

/// A server error of the HTTP layer: its own `5xx` event (logger `http`, tag `status`), or
/// an error or panic captured while a request was handled (the request became a `500`).
fn is_server_error(e: &CrashEvent) -> bool {
    let status_5xx = e.tags.get("status").is_some_and(|s| s.starts_with('5'));
    (e.logger == "http" && status_5xx)
        || (e.level >= Level::Error
            && e.logger != BROKEN_LINK_LOGGER
            && e.payload.get("request").is_some_and(Value::is_object))
}

/// Who is mailed about an event and why, before the throttle; `None`: nobody, though the
/// occurrence still counts for the next mail of its group.
fn route(e: &CrashEvent, new_group: bool, regressed: bool) -> (Audience, Option<MailReason>) {
    if e.logger == BROKEN_LINK_LOGGER {
        return (Audience::Managers, Some(MailReason::BrokenLink));
    }
    let reason = if regressed {
        Some(MailReason::Regression)
    } else if new_group {
        Some(MailReason::NewGroup)
    } else if is_server_error(e) {
        Some(MailReason::ServerError)
    } else {
        None
    };
    (Audience::Admins, reason)
}

impl Mailer {
    /// The mailer of the settings, if mail is configured and usable; each bad setting is
    /// added to `errors`.
    pub(crate) fn from_config(
        config: Option<&MailConfig>,
        errors: &mut Vec<InstallError>,
    ) -> Option<Mailer> {
        let (settings, bad) = config?.settings();
        errors.extend(bad.into_iter().map(InstallError::Config));
        match Mailer::start(settings?) {
            Ok(m) => Some(m),
            Err(e) => {
                errors.push(InstallError::MailThread(e));
                None
            }
        }
    }

    fn start(settings: MailSettings) -> std::io::Result<Mailer> {
        let settings = Arc::new(settings);
        Ok(Mailer {
            throttle: Mutex::new(Throttle::new(settings.throttle, settings.http_mail_limit)),
            sender: Sender::start(settings.clone())?,
            settings,
        })
    }

    /// Stored events and what storing did to their groups (one outcome per group, in any
    /// order; none when the database is held elsewhere and the events were spooled).
    pub(crate) fn notify(&self, events: &[CrashEvent], outcomes: &[InsertOutcome]) {
        let now = Instant::now();
        let mut seen: Vec<&str> = Vec::new();
        for e in events {
            let outcome = outcomes
                .iter()
                .find(|o| o.group.fingerprint == e.fingerprint);
            // The outcome's flags belong to the first event of its group in the batch.
            let first = !seen.contains(&e.fingerprint.as_str());
            if first {
                seen.push(&e.fingerprint);
            }
            let (new_group, regressed) = match outcome {
                Some(o) if first => (o.new_group, o.regressed),
                _ => (false, false),
            };
            let (audience, reason) = route(e, new_group, regressed);
            if audience == Audience::Managers && self.settings.managers.is_empty()
                || audience == Audience::Admins && self.settings.admins.is_empty()
            {
                continue;
            }
            let Some(mut throttle) = lock_briefly(&self.throttle) else {
                continue;
            };
            let verdict = throttle.occurrence(
                &e.fingerprint,
                audience,
                reason.is_some(),
                regressed,
                from_http_layer(e),
                now,
            );
            let (Some(unmailed), Some(reason)) = (verdict, reason) else {
                continue;
            };
            let job = Job {
                audience,
                reason,
                event: e.clone(),
                group: outcome.map(|o| o.group.clone()),
                unmailed,
            };
            if !self.sender.try_send(job) {
                throttle.not_sent(&e.fingerprint, audience);
            }
        }
    }

    pub(crate) fn stats(&self) -> MailStats {
        let mut stats = self.sender.stats();
        stats.limited = lock_briefly(&self.throttle).map_or(0, |t| t.limited);
        stats
    }

    /// At exit: waits for queued mails at most `drain_timeout` and says what was left.
    pub(crate) fn drain_on_exit(&self) {
        let left = self.sender.drain(self.settings.drain_timeout);
        if left > 0 {
            crate::diag::say(&format!(
                "stacktrace: {left} report mail{} not sent before exit (SMTP {}:{})",
                if left == 1 { " was" } else { "s were" },
                self.settings.host,
                self.settings.port
            ));
        }
    }
}

/// Counts of the mail sender (feature `mail`): `None` when mail is off.
///
/// ```no_run
/// # let _guard = stacktrace::install();
/// if let Some(s) = stacktrace::mail::stats() {
///     println!("{} sent, {} queued, {} dropped", s.sent, s.queued, s.dropped);
/// }
/// ```
pub fn stats() -> Option<MailStats> {
    RUNNING_STATS.get().and_then(|stats| stats())
}

/// How [`stats`] reads the running mailer: set at install.
static RUNNING_STATS: OnceLock<fn() -> Option<MailStats>> = OnceLock::new();

/// Makes [`stats`] read the running mailer through `read` (once per process).
pub(crate) fn read_stats_with(read: fn() -> Option<MailStats>) {
    let _ = RUNNING_STATS.set(read);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(logger: &str, level: Level) -> CrashEvent {
        serde_json::from_value(serde_json::json!({
            "id": "0000000000000000000000000000000a",
            "timestamp_us": 1,
            "level": level,
            "logger": logger,
            "error_type": "",
            "message": "m",
            "fingerprint": "f",
            "context": {"os": "", "arch": "", "hostname": "", "program": "",
                        "program_version": "", "thread_id": "", "pid": 1},
        }))
        .unwrap()
    }

    #[test]
    fn routes() {
        let panic = event("panic", Level::Fatal);
        assert_eq!(route(&panic, true, false).1, Some(MailReason::NewGroup));
        assert_eq!(route(&panic, false, true).1, Some(MailReason::Regression));
        assert_eq!(route(&panic, false, false).1, None);
        let mut e500 = event("http", Level::Error);
        e500.tags.insert("status".into(), "503".into());
        assert_eq!(route(&e500, false, false).1, Some(MailReason::ServerError));
        let link = event("http.404", Level::Warning);
        assert_eq!(
            route(&link, true, false),
            (Audience::Managers, Some(MailReason::BrokenLink))
        );
        let mut in_request = event("capture", Level::Error);
        in_request.payload = serde_json::json!({"request": {"method": "GET"}});
        assert_eq!(
            route(&in_request, false, false).1,
            Some(MailReason::ServerError)
        );
    }
}
