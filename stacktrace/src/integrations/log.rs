//! The `log` integration (feature `log`): a logger that passes every record on to your
//! logger, turns records at the capture level (error, by default) into events and keeps the
//! others as breadcrumbs for the next event.
//!
//! ```no_run
//! let _guard = stacktrace::install();
//! // Wrap the logger you use (here a stand-in that drops records).
//! struct Quiet;
//! impl log::Log for Quiet {
//!     fn enabled(&self, _: &log::Metadata<'_>) -> bool { true }
//!     fn log(&self, _: &log::Record<'_>) {}
//!     fn flush(&self) {}
//! }
//! stacktrace::log::Logger::new(Quiet).install(log::LevelFilter::Info).unwrap();
//!
//! log::info!(target: "billing", "charging order 7");    // a breadcrumb
//! log::error!(target: "billing", "card declined");      // an event, logger "billing"
//! ```

use std::cell::Cell;

use crate::api::report::Report;
use crate::capture::breadcrumbs::record_with;
use crate::model::event::{Level, Location};

/// A `log::Log` that wraps another. See the [module docs](self).
pub struct Logger {
    inner: Option<Box<dyn ::log::Log>>,
    capture_level: ::log::Level,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("wraps_a_logger", &self.inner.is_some())
            .field("capture_level", &self.capture_level)
            .finish()
    }
}

thread_local! {
    static IN_LOGGER: Cell<bool> = const { Cell::new(false) };
}

/// The stored level of a log level.
pub fn level_of(level: ::log::Level) -> Level {
    match level {
        ::log::Level::Error => Level::Error,
        ::log::Level::Warn => Level::Warning,
        ::log::Level::Info => Level::Info,
        ::log::Level::Debug | ::log::Level::Trace => Level::Debug,
    }
}

impl Logger {
    /// A logger passing records on to `inner`.
    pub fn new(inner: impl ::log::Log + 'static) -> Self {
        Logger {
            inner: Some(Box::new(inner)),
            capture_level: ::log::Level::Error,
        }
    }

    /// A logger that only captures, for programs without another logger.
    pub fn standalone() -> Self {
        Logger {
            inner: None,
            capture_level: ::log::Level::Error,
        }
    }

    /// Records at this level or more severe become events (default: error).
    pub fn capture_level(mut self, level: ::log::Level) -> Self {
        self.capture_level = level;
        self
    }

    /// Sets this logger as the process's logger, with `max_level` as `log`'s global filter.
    pub fn install(self, max_level: ::log::LevelFilter) -> Result<(), ::log::SetLoggerError> {
        ::log::set_boxed_logger(Box::new(self))?;
        ::log::set_max_level(max_level);
        Ok(())
    }
}

impl ::log::Log for Logger {
    fn enabled(&self, _: &::log::Metadata<'_>) -> bool {
        // Records below the wrapped logger's level are still breadcrumbs.
        true
    }

    fn log(&self, record: &::log::Record<'_>) {
        if let Some(inner) = &self.inner {
            if inner.enabled(record.metadata()) {
                inner.log(record);
            }
        }
        // A record logged while capturing (a dependency of the capture path) is not
        // captured again.
        if IN_LOGGER.try_with(|f| f.replace(true)).unwrap_or(true) {
            return;
        }
        let level = level_of(record.level());
        if record.level() <= self.capture_level {
            let mut report = Report::message(record.args().to_string(), level)
                .logger(record.target())
                .with_backtrace(true);
            if let Some(module) = record.module_path() {
                report = report.tag("module", module);
            }
            if let Some(file) = record.file() {
                report = report.at(Location {
                    file: file.to_owned(),
                    line: record.line().unwrap_or(0),
                    column: 0,
                });
            }
            report.capture();
        } else {
            record_with(level, record.target(), |message| {
                let _ = std::fmt::Write::write_fmt(message, *record.args());
            });
        }
        let _ = IN_LOGGER.try_with(|f| f.set(false));
    }

    fn flush(&self) {
        if let Some(inner) = &self.inner {
            inner.flush();
        }
    }
}
