//! Mail to admins and managers (feature `mail`): reports of new errors, regressions and
//! server errors to `admins`, broken links to `managers`, throttled per group, long
//! reports in parts, sent over SMTP by a background thread. See [`MailConfig`](crate::mail::MailConfig).

mod checks;
mod chunk;
mod compose;
pub(crate) mod config;
mod notify;
mod reporter;
mod sender;
mod subject;
mod throttle;
pub(crate) mod url;

pub(crate) use notify::{read_stats_with, Mailer};

pub use config::{MailConfig, TlsMode};
pub use notify::stats;
pub use reporter::{MailReason, Notice, Reporter, StandardReporter};
pub use sender::MailStats;
