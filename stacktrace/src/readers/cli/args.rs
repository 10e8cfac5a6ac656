//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  success (an empty result is a success)
  1  the database or a file could not be read or written
  2  bad arguments or values
  3  no such event or group
  4  the database is held by a running program
  5  no database at the path given";

/// Read, search, export and maintain a stacktrace error database, and serve its dashboard.
#[derive(Debug, Parser)]
#[command(name = "stacktrace", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// The database directory.
    #[arg(
        long,
        env = "STACKTRACE_DB",
        default_value = "stacktrace.db",
        global = true
    )]
    pub(crate) db: PathBuf,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// When to colour the output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub(crate) color: ColorChoice,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// When to colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// When standard output is a terminal and `NO_COLOR` is not set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Events, newest first, with filters.
    List(ListArgs),
    /// One event's full report: message, sources, frames, arguments, request, environment.
    Show {
        /// The event id (32 hex digits, as `list` shows it).
        id: String,
    },
    /// Groups of events with the same fingerprint.
    Groups(GroupsArgs),
    /// Mark a group fixed (a new occurrence reopens it as a regression; with
    /// --in-release, only one of a newer release does).
    Resolve(ResolveArgs),
    /// Mark a group ignored.
    Ignore(GroupArg),
    /// Reopen a group.
    Reopen(GroupArg),
    /// Events whose message or error type contains TEXT (`list --text`).
    Search(SearchArgs),
    /// Events per hour or day, drawn in the terminal.
    Trends(TrendsArgs),
    /// Write events as CSV or JSON lines.
    Export(ExportArgs),
    /// Remove old events (groups keep their counts).
    Purge(PurgeArgs),
    /// Events, groups, dropped events by reason and size on disk.
    Stats,
    /// Calls, failures and failure rate of each `#[capture]` function, by release.
    Functions(super::functions::FunctionsArgs),
    /// Tracked HTTP requests (the request-tracking log), newest or slowest first, or summed
    /// up by path or status.
    Requests(RequestsArgs),
    /// Serve the web dashboard over this database.
    Serve(ServeArgs),
    /// Send the events to a Sentry-compatible server, for a machine that was offline
    /// (those sent before go again; servers drop a repeated event id).
    #[cfg(feature = "forward")]
    Forward(ForwardArgs),
    /// Releases with their health: sessions, crash-free and errored rates, new groups;
    /// or two compared side by side.
    Releases(ReleasesArgs),
}

/// `forward`'s arguments.
#[cfg(feature = "forward")]
#[derive(Debug, Args)]
pub(crate) struct ForwardArgs {
    /// The server's DSN (`https://KEY@host/PROJECT_ID`).
    #[arg(long, env = "STACKTRACE_DSN", hide_env_values = true)]
    pub(crate) dsn: String,
    /// Only events at or after: `2h` (ago), `7d`, `2026-01-31`, `@UNIX`.
    #[arg(long, value_name = "WHEN")]
    pub(crate) since: Option<String>,
    /// The environment the events are sent with.
    #[arg(long)]
    pub(crate) environment: Option<String>,
    /// The lowest level sent (default error).
    #[arg(long)]
    pub(crate) level: Option<String>,
    /// Count what would be sent; send nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ResolveArgs {
    /// The group's fingerprint, or a unique prefix of it (at least 4 characters).
    pub(crate) group: String,
    /// Fixed in this release (without a value: the newest release seen): an event of an
    /// older build is counted and leaves the group resolved, one of a newer release
    /// reopens it. Releases compare by semantic version, else by when first seen.
    #[arg(long, value_name = "RELEASE", num_args = 0..=1)]
    pub(crate) in_release: Option<Option<String>>,
}

#[derive(Debug, Args)]
pub(crate) struct ReleasesArgs {
    /// Two releases side by side.
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    pub(crate) compare: Option<Vec<String>>,
}

/// The read API's filters.
#[derive(Debug, Default, Args)]
pub(crate) struct Filters {
    /// Only this level (debug, info, warning, error, fatal).
    #[arg(long)]
    pub(crate) level: Option<String>,
    /// Only this error type (`panic`, `std::io::error::Error`, ...).
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) error_type: Option<String>,
    /// Only events of requests to this path.
    #[arg(long)]
    pub(crate) path: Option<String>,
    /// Only events of this user.
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Only events of this group (fingerprint or a unique prefix of it).
    #[arg(long)]
    pub(crate) group: Option<String>,
    /// Only events at or after (inclusive): `2h` (ago), `7d`, `2026-01-31`,
    /// `2026-01-31T14:00Z`, `@UNIX`.
    #[arg(long, value_name = "WHEN")]
    pub(crate) since: Option<String>,
    /// Only events at or before (inclusive; same forms as --since).
    #[arg(long, value_name = "WHEN")]
    pub(crate) until: Option<String>,
    /// Only events whose message or error type contains this, in any case.
    #[arg(long)]
    pub(crate) text: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) filters: Filters,
    /// Events on the page (0: all).
    #[arg(long, default_value_t = 50, value_parser = limit_of, allow_negative_numbers = true)]
    pub(crate) limit: usize,
    /// Continue after a previous page (the cursor it printed).
    #[arg(long, value_name = "CURSOR")]
    pub(crate) after: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// The text to look for.
    #[arg(value_name = "TEXT")]
    pub(crate) query: String,
    #[command(flatten)]
    pub(crate) list: ListArgs,
}

/// How to order groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OrderArg {
    /// Most events first.
    Count,
    /// Most recently seen first.
    LastSeen,
}

#[derive(Debug, Args)]
pub(crate) struct GroupsArgs {
    /// Order.
    #[arg(long, value_enum, default_value_t = OrderArg::LastSeen)]
    pub(crate) order: OrderArg,
    /// Only groups of this status (unresolved, resolved, ignored).
    #[arg(long)]
    pub(crate) status: Option<String>,
    /// At most this many groups (0: all).
    #[arg(long, default_value_t = 50, value_parser = limit_of, allow_negative_numbers = true)]
    pub(crate) limit: usize,
}

#[derive(Debug, Args)]
pub(crate) struct GroupArg {
    /// The group's fingerprint, or a unique prefix of it (at least 4 characters).
    pub(crate) group: String,
}

#[derive(Debug, Args)]
pub(crate) struct TrendsArgs {
    /// Bucket width: hour or day.
    #[arg(long, default_value = "hour")]
    pub(crate) interval: String,
    /// How many buckets (default: 24 hours or 14 days).
    #[arg(long)]
    pub(crate) buckets: Option<usize>,
    #[command(flatten)]
    pub(crate) filters: Filters,
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON event a line.
    Jsonl,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Format (default: from the output's extension, else CSV).
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
    /// At most this many events, newest first (0: all).
    #[arg(long, value_parser = limit_of, allow_negative_numbers = true)]
    pub(crate) limit: Option<usize>,
    #[command(flatten)]
    pub(crate) filters: Filters,
}

#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    /// Remove the events captured before this time (`30d` ago, `2026-01-01`, ...).
    #[arg(long, value_name = "WHEN")]
    pub(crate) before: Option<String>,
    /// Keep only the newest N events.
    #[arg(long, value_name = "N")]
    pub(crate) keep: Option<usize>,
    /// Count what would be removed, and remove nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// What `requests --by` sums up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ByArg {
    /// One row per path.
    Path,
    /// One row per status.
    Status,
}

#[derive(Debug, Args)]
pub(crate) struct RequestsArgs {
    /// Only requests that took longer than this: `1s`, `250ms`, `1.5s`, `2m`.
    #[arg(long, value_name = "DURATION")]
    pub(crate) slower_than: Option<String>,
    /// Only requests that started between two times, both included (forms as
    /// `list --since`: `2h`, `2026-01-31T14:00Z`, `now`, ...).
    #[arg(long, num_args = 2, value_names = ["START", "END"], conflicts_with = "since")]
    pub(crate) between: Option<Vec<String>>,
    /// Only requests that started at or after this time (inclusive).
    #[arg(long, value_name = "WHEN")]
    pub(crate) since: Option<String>,
    /// Only requests to exactly this path (without the query).
    #[arg(long)]
    pub(crate) path: Option<String>,
    /// Only requests answered with this status (`404`) or class of status (`5xx`).
    #[arg(long)]
    pub(crate) status: Option<String>,
    /// The slowest first instead of the newest first.
    #[arg(long, conflicts_with = "by")]
    pub(crate) slowest: bool,
    /// Sum the requests up by path or status instead of listing them.
    #[arg(long, value_enum)]
    pub(crate) by: Option<ByArg>,
    /// Rows shown (0: all).
    #[arg(long, default_value_t = 50, value_parser = limit_of, allow_negative_numbers = true)]
    pub(crate) limit: usize,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; a non-loopback address requires --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) bind: String,
    /// Token every request must present (`?token=` once, or `Authorization: Bearer`).
    #[arg(long, env = "STACKTRACE_DASHBOARD_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

/// A `--limit`: a whole number, 0 or more (0: no limit).
fn limit_of(text: &str) -> Result<usize, String> {
    let text = text.trim();
    match text.parse::<usize>() {
        Ok(n) => Ok(n),
        Err(_) if text.parse::<i128>().is_ok_and(|n| n < 0) => Err(format!(
            "{text:?}: the limit must be 0 or more (0 shows all)"
        )),
        Err(_) => Err(format!(
            "{text:?} is not a whole number; the limit must be 0 or more (0 shows all)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_whole_numbers_from_zero() {
        assert_eq!(limit_of("0"), Ok(0));
        assert_eq!(limit_of("25"), Ok(25));
        assert!(limit_of("-1").unwrap_err().contains("must be 0 or more"));
        assert!(limit_of("many").unwrap_err().contains("\"many\""));
    }

    #[test]
    fn the_command_line_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
