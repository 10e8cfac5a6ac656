//! The `stacktrace` command-line tool: reading, searching, exporting and purging a
//! database, reading its request-tracking log, and serving its dashboard.

mod args;
mod commands;
mod functions;
mod maintain;
mod output;
mod progress;
mod requests;
mod run;
mod show;
mod when;

pub use run::run;
