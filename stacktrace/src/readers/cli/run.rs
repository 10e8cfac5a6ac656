//! Parsing, opening the database, running a command and turning its outcome into an exit
//! code and a message.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use super::args::{Cli, Command};
use super::output::Out;
use super::{commands, maintain, releases, requests};
use crate::{QueryError, Store, StoreError};

/// Why a command failed, each with its exit code.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The database or a file could not be read or written (1).
    Failed(String),
    /// Bad arguments or values (2).
    Usage(String),
    /// No such event or group (3).
    NotFound(String),
    /// Another process holds the database (4).
    Locked(PathBuf),
    /// Nothing at the database path (5).
    NoDatabase(PathBuf),
    /// The reader of the output went away (`stacktrace list | head`): not a failure.
    ReaderGone,
    /// Reading or writing ran into damaged pages (1): said naming the database once it is
    /// known (see [`dispatch`]).
    Damaged(StoreError),
}

impl CliError {
    fn code(&self) -> u8 {
        match self {
            CliError::Failed(_) | CliError::Damaged(_) => 1,
            CliError::Usage(_) => 2,
            CliError::NotFound(_) => 3,
            CliError::Locked(_) => 4,
            CliError::NoDatabase(_) => 5,
            CliError::ReaderGone => 0,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Failed(m) | CliError::Usage(m) | CliError::NotFound(m) => f.write_str(m),
            CliError::ReaderGone => f.write_str("the output was closed"),
            CliError::Damaged(e) => f.write_str(&crate::diag::error_chain(e)),
            CliError::Locked(path) => write!(
                f,
                "the database {} is held by a running program (sled lets one process open it \
                 at a time).\nSee its events through that program: the dashboard it serves \
                 (stacktrace::Dashboard mounted in its app) or stacktrace::store() in its code.\n\
                 Stop the program to use this tool on the database.",
                path.display()
            ),
            CliError::NoDatabase(path) => write!(
                f,
                "no database at {}: give its directory with --db or STACKTRACE_DB",
                path.display()
            ),
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked { path } => CliError::Locked(path),
            e @ StoreError::Corrupt { .. } => {
                CliError::Failed(format!("{e}; {}", crate::store::DAMAGE_REMEDY))
            }
            e @ StoreError::Io(sled::Error::Corruption { .. }) => CliError::Damaged(e),
            other => CliError::Failed(crate::diag::error_chain(&other)),
        }
    }
}

impl From<QueryError> for CliError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Store(e) => e.into(),
            other => CliError::Usage(other.to_string()),
        }
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return CliError::ReaderGone;
        }
        CliError::Failed(format!("writing the output failed: {e}"))
    }
}

/// Opens an existing database; a missing one is an error rather than a new empty database
/// at a mistyped path.
pub(crate) fn open(path: &Path) -> Result<Store, CliError> {
    if !path.exists() {
        return Err(CliError::NoDatabase(path.to_path_buf()));
    }
    // sled may panic on a damaged file, which the store reports as damaged: the tool says
    // that in one line, without the panic's own message.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = Store::open(path);
    std::panic::set_hook(hook);
    Ok(opened?)
}

/// Runs the `stacktrace` command-line tool with these arguments (the first one is the
/// program's name) and returns its exit code:
///
/// | code | meaning |
/// |---|---|
/// | 0 | success (an empty result is a success) |
/// | 1 | the database or a file could not be read or written |
/// | 2 | bad arguments or values |
/// | 3 | no such event or group |
/// | 4 | the database is held by a running program |
/// | 5 | no database at the path given |
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are printed to stdout with code 0, mistakes to stderr with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let mut out = Out::stdout(cli.color);
    let result = dispatch(&cli, &mut out).and_then(|()| Ok(out.w.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::ReaderGone) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stacktrace: {e}");
            ExitCode::from(e.code())
        }
    }
}

fn dispatch(cli: &Cli, out: &mut Out) -> Result<(), CliError> {
    run_command(cli, out).map_err(|e| match e {
        CliError::Damaged(e) => crate::store::named_damage(e, &cli.db).into(),
        other => other,
    })
}

fn run_command(cli: &Cli, out: &mut Out) -> Result<(), CliError> {
    let json = cli.json;
    match &cli.command {
        Command::Serve(a) => maintain::serve(&cli.db, a),
        command => {
            let store = open(&cli.db)?;
            match command {
                Command::List(a) => commands::list(&store, a, None, json, out),
                Command::Search(a) => commands::list(&store, &a.list, Some(&a.query), json, out),
                Command::Show { id } => commands::show(&store, id, json, out),
                Command::Groups(a) => commands::groups(&store, a, json, out),
                Command::Resolve(a) => releases::resolve(&store, a, json, out),
                Command::Releases(a) => releases::releases(&store, a, json, out),
                Command::Ignore(g) => commands::set_status(&store, &g.group, "ignored", json, out),
                Command::Reopen(g) => {
                    commands::set_status(&store, &g.group, "unresolved", json, out)
                }
                Command::Trends(a) => commands::trends(&store, a, json, out),
                Command::Stats => commands::stats(&store, json, out),
                Command::Functions(a) => super::functions::functions(&store, a, json, out),
                Command::Requests(a) => requests::requests(&store, a, json, out),
                Command::Export(a) => maintain::export(&store, a, json, out),
                Command::Purge(a) => maintain::purge(&store, a, json, out),
                Command::Serve(_) => Ok(()),
                #[cfg(feature = "forward")]
                Command::Forward(a) => super::forward::forward(&store, a, json, out),
            }
        }
    }
}
