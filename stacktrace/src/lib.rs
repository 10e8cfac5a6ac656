//! An embedded error tracker: every panic and interesting error of a program, captured with
//! its context, redacted, grouped and kept in an embedded [sled] database beside it. No
//! server, no account, no network.
//!
//! ```no_run
//! // Configuration from `STACKTRACE_*` variables; the database is `stacktrace.db`. The
//! // macro form knows this crate as the application's, for the in-app frames.
//! let guard = stacktrace::install!();
//!
//! // Errors you handle but want to know about:
//! if let Err(e) = std::fs::read_to_string("/etc/app.toml") {
//!     stacktrace::capture_error(&e);
//! }
//! stacktrace::capture_message("cache cold at start-up", stacktrace::Level::Warning);
//!
//! // Panics are stored by the hook before the program goes on (or ends).
//! let _ = std::thread::spawn(|| panic!("worker failed")).join();
//!
//! // Read back what was stored.
//! guard.flush();
//! let store = stacktrace::store().expect("installed");
//! for event in store.query().limit(10).run().unwrap().events {
//!     println!("{} {} {}", event.id, event.level, event.title());
//! }
//! ```
//!
//! # How it works
//!
//! Sources (the panic hook, [`capture_error`], [`capture_message`], the `#[capture]`
//! attribute) build an event; it is redacted, gated (enabled, sampling, rate limit),
//! fingerprinted from its in-app frames and stored with its indexes and group in the
//! database. Errors and messages cost the calling thread little: the backtrace is taken
//! unresolved and a background writer resolves and stores it. A panic is stored and flushed
//! before the hook returns, because the process may end right after.
//!
//! sled lets only one process open a database. While the program runs, read its events
//! through [`store()`]; a program that finds its database held by another process writes its
//! events to a spool file beside it, merged on the next open (see [`Store::open`]).
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

mod breadcrumbs;
mod capture;
mod chain;
/// The command-line tool (feature `cli`).
#[cfg(feature = "cli")]
mod cli;
mod config;
mod context;
mod credentials;
/// The web dashboard (feature `dashboard`).
#[cfg(feature = "dashboard")]
mod dashboard;
mod error;
mod escape;
mod event;
mod filter;
mod fingerprint;
mod frames;
mod gate;
mod guarded;
mod hook;
/// The HTTP integration (feature `http`).
#[cfg(feature = "http")]
pub mod http;
mod in_app;
mod inherit;
mod install;
#[cfg(feature = "log")]
pub mod log;
/// Mail to admins and managers (feature `mail`).
#[cfg(feature = "mail")]
pub mod mail;
mod modules;
mod pipeline;
mod redact;
mod report;
mod store;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "tracing")]
pub mod tracing;
#[cfg(feature = "dashboard")]
mod wording;
mod writer;

#[doc(hidden)]
pub mod __private;

pub use breadcrumbs::{add_breadcrumb, Breadcrumb};
pub use capture::{capture_error, capture_message};
/// The command-line tool (feature `cli`).
#[cfg(feature = "cli")]
pub use cli::run as run_cli;
pub use config::{Config, ConfigError};
/// The web dashboard (feature `dashboard`).
#[cfg(feature = "dashboard")]
pub use dashboard::{Dashboard, ServeError};
pub use error::{Error, InstallError, QueryError, StoreError};
pub use event::{
    from_us, to_us, Argument, CapturedCall, CrashEvent, EventId, Frame, InAppSettings, Level,
    Location, ParseEventIdError, ParseLevelError, RuntimeContext, UnresolvedFrames,
    UnresolvedModule,
};
pub use filter::BeforeStore;
pub use gate::{DropReason, DROP_REASONS};
#[cfg(feature = "http")]
pub use http::set_user;
pub use install::{install, install_with, store, Guard};
pub use redact::PLACEHOLDER;
pub use report::Report;
pub use stacktrace_macros::{capture, sensitive_variables};
pub use store::{Group, GroupOrder, GroupPage, GroupStatus, Page, Query, Stats, Store};
/// Trends: events per hour or day.
pub use store::{Interval, Trend, Window};
/// Request tracking (written by the `http` feature).
pub use store::{TrackedRequest, TrackingQuery};

/// Installs the tracker like [`install()`], and records the calling crate (by its module
/// path, and cargo's package name and version) as the application's: its frames are the
/// in-app ones, and frames of other crates without a source file are not.
///
/// `install!()` reads the `STACKTRACE_*` variables as [`install()`] does;
/// [`install_with!(config)`](crate::install_with!) takes a [`Config`] as [`install_with()`]
/// does.
///
/// ```no_run
/// let _guard = stacktrace::install!();
/// // ... the program ...
/// ```
#[macro_export]
macro_rules! install {
    () => {
        $crate::__private::install_for_app(
            $crate::__private::AppInfo {
                module: ::core::module_path!(),
                package: ::core::option_env!("CARGO_PKG_NAME"),
                version: ::core::option_env!("CARGO_PKG_VERSION"),
            },
            ::core::option::Option::None,
        )
    };
}

/// Installs the tracker with a configuration built in code, like [`install_with()`], and
/// records the calling crate as the application's, like [`install!`](crate::install!).
///
/// ```no_run
/// let _guard = stacktrace::install_with!(
///     stacktrace::Config::default().db_path("var/errors.db").in_app_include("billing"),
/// );
/// ```
#[macro_export]
macro_rules! install_with {
    ($config:expr $(,)?) => {
        $crate::__private::install_for_app(
            $crate::__private::AppInfo {
                module: ::core::module_path!(),
                package: ::core::option_env!("CARGO_PKG_NAME"),
                version: ::core::option_env!("CARGO_PKG_VERSION"),
            },
            ::core::option::Option::Some($config),
        )
    };
}

/// The README's code, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
