//! Read-only consumers of the store: the command-line tool and the dashboard.

/// The command-line tool (feature `cli`).
#[cfg(feature = "cli")]
pub(crate) mod cli;
/// The web dashboard (feature `dashboard`).
#[cfg(feature = "dashboard")]
pub(crate) mod dashboard;
#[cfg(feature = "dashboard")]
pub(crate) mod function_rates;
#[cfg(feature = "dashboard")]
pub(crate) mod request_summary;
#[cfg(feature = "dashboard")]
pub(crate) mod wording;
