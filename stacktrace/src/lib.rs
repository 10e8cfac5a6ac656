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
//! The code runs in this order; each step names the folder of `src/` that holds it (see
//! `ARCHITECTURE.md` in the repository for what each folder may import).
//!
//! 1. **Install** (`runtime/`): [`install()`] reads the [`Config`] (`config/`), opens the
//!    [`Store`] (`store/`) or a spool file beside it, starts the background writer, puts the
//!    panic hook in front of the current one, and hands the capture path the few settings
//!    it reads (`max_breadcrumbs`, the in-app rules).
//! 2. **Capture**, on the calling thread (`capture/`): a source — [`capture_error`],
//!    [`capture_message`] and [`Report`] (`api/`), a `#[capture]` function returning `Err`,
//!    the panic hook, or an integration (`integrations/`: HTTP, `log`, `tracing`, tokio) —
//!    makes a pending event: the message, the chain of `#[capture]` calls, the breadcrumbs
//!    and the unresolved backtrace. Integrations add their context (the current request)
//!    through an enricher they registered.
//! 3. **Admit** (`runtime/`, with the gate of `pipeline/`): the enable switch and sampling,
//!    then ignore rules and rate limits. What is dropped is counted by [`DropReason`].
//! 4. **Build** (`pipeline/`), on the background writer: frames resolved, trimmed and marked
//!    in-app, fields and secrets redacted, the fingerprint computed; then the `before_store`
//!    hook. Errors and messages cost the calling thread little for this: the backtrace is
//!    taken unresolved. A panic is built and stored before the hook returns, because the
//!    process may end right after.
//! 5. **Write** (`runtime/` to `store/`): the event, its indexes and its group go into the
//!    database in one batch; notifiers (`notify/`: mail) hear of new and regressed groups.
//! 6. **Read** (`readers/`): [`store()`], the `stacktrace` tool and the dashboard read what
//!    was stored.
//!
//! sled lets only one process open a database. While the program runs, read its events
//! through [`store()`]; a program that finds its database held by another process writes its
//! events to a spool file beside it, merged on the next open (see [`Store::open`]).
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

// The modules, in the order the code runs them; a module uses only those above it
// (scripts/check-layers.py checks it). lib.rs and `__private` are the index and the macros'
// glue.

// The data every stage passes on: events, breadcrumbs, drop reasons, ids.
mod model;
// Errors, escaping, locks, stderr, files read at start-up.
mod diag;
mod error;
mod escape;
mod sync;
mod untrusted;
// What runs on the calling thread: `#[capture]` calls, inherited context, breadcrumbs, the
// pending event and its raw backtrace.
mod capture;
// From a pending event to the stored event: resolve, redact, gate, fingerprint.
mod pipeline;
// Crashes past the panic hook: the per-process crash record, the fatal-signal handler, and
// the records of gone processes as events.
mod crash;
// The database.
mod store;
// Who is told of what was stored: mail.
mod notify;
// Settings and the `STACKTRACE_*` variables.
mod config;
// The process singleton: install, the guard, the panic hook, admission, the writer.
mod runtime;
// What programs call to store an event.
mod api;
// Feature-gated sources: HTTP, `log`, `tracing`, tokio tasks.
mod integrations;
// Read-only consumers of the store: the tool and the dashboard.
mod readers;

#[doc(hidden)]
pub mod __private;

// The event and its parts.
pub use model::breadcrumb::Breadcrumb;
pub use model::drop::{DropReason, DROP_REASONS};
pub use model::event::{
    Argument, CapturedCall, CrashEvent, EventId, Frame, InAppSettings, Level, Location,
    ParseEventIdError, ParseLevelError, RuntimeContext, UnresolvedFrames, UnresolvedModule,
    PLACEHOLDER,
};
pub use model::source::SourceContext;
pub use model::time::{from_us, to_us};

// Errors.
pub use error::{ConfigError, Error, InstallError, QueryError, StoreError};

// Capture on the calling thread.
pub use capture::breadcrumbs::add_breadcrumb;
pub use stacktrace_macros::{capture, sensitive_variables};

// The pipeline's hook.
pub use pipeline::filter::BeforeStore;

// The database.
pub use store::FunctionStats;
pub use store::{Group, GroupOrder, GroupPage, GroupStatus, Page, Query, Stats, Store, Trimmed};
/// Trends: events per hour or day.
pub use store::{Interval, Trend, Window};
/// Releases: their health (sessions by outcome) and groups resolved in one.
pub use store::{Release, ResolvedIn};
/// Request tracking (written by the `http` feature).
pub use store::{TrackedRequest, TrackingQuery};

// Notifiers.
/// Forwarding to a Sentry-compatible server (feature `forward`).
#[cfg(feature = "forward")]
pub use notify::forward;
/// Mail to admins and managers (feature `mail`).
#[cfg(feature = "mail")]
pub use notify::mail;

// Settings.
pub use config::Config;

// Install and the guard.
pub use runtime::guard::{store, Guard};
pub use runtime::install::{install, install_with};

// What programs call.
pub use api::capture::{capture_error, capture_message};
pub use api::report::Report;

// Integrations, each behind its feature.
#[cfg(feature = "http")]
#[doc(no_inline)]
pub use http::set_user;
/// The HTTP integration (feature `http`).
#[cfg(feature = "http")]
pub use integrations::http;
#[cfg(feature = "log")]
pub use integrations::log;
#[cfg(feature = "tokio")]
pub use integrations::tokio;
#[cfg(feature = "tracing")]
pub use integrations::tracing;

// Readers.
/// The command-line tool (feature `cli`).
#[cfg(feature = "cli")]
pub use readers::cli::run as run_cli;
/// The web dashboard (feature `dashboard`).
#[cfg(feature = "dashboard")]
pub use readers::dashboard::{Dashboard, ServeError};

/// Installs the tracker like [`install()`], and records the calling crate (by its module
/// path, and cargo's package name and version) as the application's: its frames are the
/// in-app ones, and frames of other crates without a source file are not. Unless a release
/// is set ([`Config::release`], `STACKTRACE_RELEASE`), the crate's `name@version` is the
/// release every event and session of the process carries.
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
