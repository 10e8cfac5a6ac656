//! The `stacktrace` command-line tool: reading, searching, exporting and purging a
//! database, reading its request-tracking log, and serving its dashboard.

mod args;
mod commands;
#[cfg(feature = "forward")]
mod forward;
mod functions;
mod maintain;
mod output;
mod progress;
mod releases;
mod requests;
mod run;
mod show;
mod when;

pub use run::run;
