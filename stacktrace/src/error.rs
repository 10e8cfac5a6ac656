//! Errors, one enum per family of operations, and an umbrella [`Error`].

use std::fmt;
use std::path::PathBuf;

/// Opening, writing or maintaining the database failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the database (sled allows one process at a time).
    Locked {
        /// The database path.
        path: PathBuf,
    },
    /// The database could not be opened: missing permissions, a read-only or full file
    /// system, a file where a directory should be. Damage is [`StoreError::Corrupt`].
    Open {
        /// The database path.
        path: PathBuf,
        /// What sled or the file system said.
        source: sled::Error,
    },
    /// A read or write of an open database failed (full disk, I/O error).
    Io(sled::Error),
    /// The database is damaged: sled cannot read it, or it holds less than its manifest
    /// (the record of what it held, kept beside sled's files and updated with each flush)
    /// says was made durable. [`install`](crate::install()) moves such a database aside and
    /// starts a fresh one.
    Corrupt {
        /// The database path.
        path: PathBuf,
        /// What the database should hold (from its manifest), or "a database sled can read".
        expected: String,
        /// What was found.
        found: String,
    },
    /// A stored value could not be decoded: written by a newer version, or damaged.
    Undecodable {
        /// Which tree and key.
        what: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The spool file beside a locked database could not be written or read.
    Spool {
        /// The spool path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing an export failed.
    Export(std::io::Error),
    /// A write was asked for by a thread whose own earlier write failed part way (a panic
    /// inside it reached the panic hook): it is refused rather than waiting for itself.
    WriteReentered,
    /// A release name given to resolve a group in cannot name a release, or none is known.
    InvalidRelease {
        /// The name given (its start, when it is long).
        release: String,
        /// What it should be.
        expected: &'static str,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Locked { path } => write!(
                f,
                "database {} is held by another process (sled allows one at a time); \
                 read it through that program's stacktrace::store() or its dashboard",
                path.display()
            ),
            StoreError::Open { path, .. } => write!(f, "cannot open database {}", path.display()),
            StoreError::Io(_) => f.write_str("database I/O failed"),
            StoreError::Corrupt {
                path,
                expected,
                found,
            } => write!(
                f,
                "database {} is damaged: expected {expected}, found {found}",
                path.display()
            ),
            StoreError::Undecodable { what, reason } => {
                write!(f, "stored value {what} cannot be decoded: {reason}")
            }
            StoreError::Spool { path, .. } => write!(f, "spool file {} failed", path.display()),
            StoreError::Export(_) => f.write_str("export failed"),
            StoreError::WriteReentered => f.write_str(
                "a write to the database was refused: this thread's own earlier write \
                 failed part way (a panic's event stays in the journal for the next open)",
            ),
            StoreError::InvalidRelease { release, expected } => {
                write!(f, "invalid release {release:?}: expected {expected}")
            }
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Open { source, .. } | StoreError::Io(source) => Some(source),
            StoreError::Spool { source, .. } | StoreError::Export(source) => Some(source),
            _ => None,
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e)
    }
}

/// A query could not be answered.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueryError {
    /// The cursor given is not one this store produced.
    BadCursor(String),
    /// The time range is inverted: its start is after its end (both ends are inclusive).
    BadRange {
        /// Start, microseconds since the epoch.
        since_us: u64,
        /// End, microseconds since the epoch.
        until_us: u64,
    },
    /// Reading the database failed.
    Store(StoreError),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::BadCursor(c) => write!(f, "invalid cursor {c:?}: pass a page's `next`"),
            QueryError::BadRange { since_us, until_us } => write!(
                f,
                "invalid time range: since ({since_us} µs) is after until ({until_us} µs)"
            ),
            QueryError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for QueryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Displayed as the store error itself: its cause comes next.
            QueryError::Store(e) => e.source(),
            _ => None,
        }
    }
}

impl From<StoreError> for QueryError {
    fn from(e: StoreError) -> Self {
        QueryError::Store(e)
    }
}

impl From<sled::Error> for QueryError {
    fn from(e: sled::Error) -> Self {
        QueryError::Store(StoreError::Io(e))
    }
}

/// The name of the background writer's thread.
pub(crate) const WRITER_THREAD: &str = "stacktrace-writer";
/// The name of the mail sender's thread.
#[cfg(feature = "mail")]
pub(crate) const MAIL_THREAD: &str = "stacktrace-mail";

/// [`install`](crate::install()) could not do all it was asked. The program keeps running
/// either way; the [`Guard`](crate::Guard) reports these.
#[derive(Debug)]
#[non_exhaustive]
pub enum InstallError {
    /// Already installed in this process; the second call changed nothing.
    AlreadyInstalled,
    /// A `STACKTRACE_*` variable had a bad value; the defaults were kept for it.
    Config(ConfigError),
    /// The database could not be opened; panics and errors are not stored.
    Store(StoreError),
    /// The database was damaged: it was moved aside and a fresh one started in its place,
    /// into which the journal and the spool were merged. Events are stored from now on.
    StoreReplaced {
        /// What was wrong with it (a [`StoreError::Corrupt`], naming its path).
        cause: StoreError,
        /// Where it was moved: `<db>.corrupt-<seconds since the epoch>`.
        aside: PathBuf,
        /// How many events it held at its last flush, when its manifest said.
        held: Option<u64>,
    },
    /// The database was damaged and could not be moved aside; events are not stored.
    MoveAside {
        /// The database path.
        path: PathBuf,
        /// Where it was to be moved.
        aside: PathBuf,
        /// What was wrong with it (a [`StoreError::Corrupt`]).
        cause: StoreError,
        /// Why the move failed.
        source: std::io::Error,
    },
    /// The background writer thread could not be started: queued events are not stored.
    WriterThread(std::io::Error),
    /// The mail sender's thread could not be started: no mail is sent.
    MailThread(std::io::Error),
    /// The forwarder's thread could not be started: events stay in the outbox and are
    /// sent by the next start.
    ForwardThread(std::io::Error),
    /// The handler that stores queued events when the program calls `std::process::exit`
    /// could not be registered: events captured just before such an exit may be lost.
    ExitHandler(std::io::Error),
    /// The crash record or the fatal-signal handler could not be set up: crashes that
    /// skip the panic hook are not reported. Says what failed, with its path.
    CrashRecord(String),
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::AlreadyInstalled => {
                f.write_str("stacktrace is already installed in this process; nothing changed")
            }
            InstallError::Config(e @ ConfigError::CleartextCredentials { .. }) => {
                write!(f, "{e}; mail is off")
            }
            InstallError::Config(e) => write!(f, "{e}; the default is kept"),
            InstallError::Store(e) => write!(f, "{e}; events will not be stored"),
            InstallError::StoreReplaced { cause, aside, held } => {
                write!(f, "{cause}; moved it to {}", aside.display())?;
                if let Some(n) = held {
                    write!(f, " (it held {n} events at its last flush)")?;
                }
                f.write_str(" and started a fresh database; events are stored again")
            }
            InstallError::MoveAside {
                path, aside, cause, ..
            } => write!(
                f,
                "{cause}; moving {} to {} failed; events will not be stored",
                path.display(),
                aside.display()
            ),
            InstallError::WriterThread(_) => f.write_str(
                "the background writer thread could not be started; queued events will not \
                 be stored",
            ),
            InstallError::MailThread(_) => {
                f.write_str("the mail sender thread could not be started; no mail will be sent")
            }
            InstallError::ForwardThread(_) => f.write_str(
                "the forwarding thread could not be started; events stay in the outbox for \
                 the next start",
            ),
            InstallError::CrashRecord(why) => {
                write!(f, "{why}; crashes past the panic hook will not be reported")
            }
            InstallError::ExitHandler(_) => f.write_str(
                "the exit handler could not be registered; events captured just before \
                 std::process::exit may be lost",
            ),
        }
    }
}

impl std::error::Error for InstallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // These are displayed with the error they wrap: its cause comes next.
            InstallError::Config(e) => e.source(),
            InstallError::Store(e) | InstallError::StoreReplaced { cause: e, .. } => e.source(),
            InstallError::MoveAside { source, .. }
            | InstallError::WriterThread(source)
            | InstallError::MailThread(source)
            | InstallError::ForwardThread(source)
            | InstallError::ExitHandler(source) => Some(source),
            InstallError::AlreadyInstalled | InstallError::CrashRecord(_) => None,
        }
    }
}

/// Any error of this crate.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// See [`InstallError`].
    Install(InstallError),
    /// See [`ConfigError`].
    Config(ConfigError),
    /// See [`StoreError`].
    Store(StoreError),
    /// See [`QueryError`].
    Query(QueryError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Install(e) => e.fmt(f),
            Error::Config(e) => e.fmt(f),
            Error::Store(e) => e.fmt(f),
            Error::Query(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Install(e) => e.source(),
            Error::Config(e) => e.source(),
            Error::Store(e) => e.source(),
            Error::Query(e) => e.source(),
        }
    }
}

macro_rules! umbrella_from {
    ($($t:ident => $v:ident),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::$v(e)
            }
        }
    )*};
}
umbrella_from!(InstallError => Install, StoreError => Store, QueryError => Query, ConfigError => Config);

/// The `expected` of a [`ConfigError`] for a count that cannot be 0, in code settings and
/// variables alike.
pub(crate) const POSITIVE: &str = "a whole number from 1";

/// A setting has a value it cannot take.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable holds a value of the wrong kind or out of range.
    InvalidVar {
        /// The variable (`STACKTRACE_SAMPLE_RATE`).
        var: String,
        /// Its value, as found.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A setting given in code is out of range.
    InvalidSetting {
        /// The setting (`sample_rate`).
        setting: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// SMTP credentials would go to a server on another machine over a connection that is
    /// not surely encrypted: no TLS, or `STARTTLS` only when the server offers it (which
    /// anyone on the path can strip). Mail is off.
    CleartextCredentials {
        /// The setting that chose the TLS mode (`smtp_url` or `smtp_tls`).
        setting: &'static str,
        /// Its variable (`STACKTRACE_SMTP_URL` or `STACKTRACE_SMTP_TLS`).
        var: &'static str,
        /// The SMTP server.
        host: String,
        /// The TLS mode (`none` or `opportunistic`).
        tls: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidVar {
                var,
                value,
                expected,
            } => write!(f, "invalid {var}={value:?}: expected {expected}"),
            ConfigError::InvalidSetting {
                setting,
                value,
                expected,
            } => write!(
                f,
                "invalid setting {setting} = {value}: expected {expected}"
            ),
            ConfigError::CleartextCredentials {
                setting,
                var,
                host,
                tls,
            } => {
                let why = if *tls == "opportunistic" {
                    "STARTTLS only when the server offers it, which anyone on the path can strip"
                } else {
                    "they would cross the network in the clear"
                };
                let fix = if *var == "STACKTRACE_SMTP_URL" {
                    "use smtps://... or add ?tls=required to STACKTRACE_SMTP_URL"
                } else {
                    "set STACKTRACE_SMTP_TLS=required or wrapper"
                };
                write!(
                    f,
                    "refusing to send SMTP credentials to {host} with TLS {tls} ({var}, or \
                     {setting} in code): {why}; {fix}, or send through a relay on this machine"
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::error_chain;

    // Regression: variants that return their cause from `source()` printed it in `Display`
    // too, so a report that walks the chain said the cause twice.
    #[test]
    fn a_cause_returned_by_source_is_said_once_in_the_chain() {
        let io = || std::io::Error::other("disk on fire");
        let sled = || sled::Error::Unsupported("disk on fire".into());
        let spool = || StoreError::Spool {
            path: "events.db.spool".into(),
            source: io(),
        };
        let corrupt = StoreError::Corrupt {
            path: "events.db".into(),
            expected: "20 events".into(),
            found: "3".into(),
        };
        let errors: Vec<(Box<dyn std::error::Error>, &str)> = vec![
            (
                Box::new(StoreError::Open {
                    path: "events.db".into(),
                    source: sled(),
                }),
                "cannot open database events.db",
            ),
            (Box::new(StoreError::Io(sled())), "database I/O failed"),
            (Box::new(spool()), "spool file events.db.spool failed"),
            (Box::new(StoreError::Export(io())), "export failed"),
            (
                Box::new(InstallError::MoveAside {
                    path: "events.db".into(),
                    aside: "events.db.corrupt-1".into(),
                    cause: corrupt,
                    source: io(),
                }),
                "moving events.db to events.db.corrupt-1 failed",
            ),
            (Box::new(QueryError::Store(spool())), "events.db.spool"),
            (Box::new(InstallError::Store(spool())), "events.db.spool"),
            (
                Box::new(InstallError::WriterThread(io())),
                "writer thread could not be started",
            ),
            (
                Box::new(InstallError::MailThread(io())),
                "mail sender thread could not be started",
            ),
            (Box::new(InstallError::ExitHandler(io())), "exit handler"),
            (Box::new(Error::Store(spool())), "events.db.spool"),
        ];
        for (e, context) in &errors {
            let chain = error_chain(&**e);
            assert_eq!(chain.matches("disk on fire").count(), 1, "{chain}");
            assert!(e.to_string().contains(context), "{e}");
        }
    }

    // Pins: a failed exit-handler registration and a writer thread that did not start were
    // reported as failed spool files named "exit handler" and "stacktrace-writer thread",
    // saying that events would not be stored; both halves were false.
    #[test]
    fn install_steps_that_fail_say_which_step_failed() {
        let why = || std::io::Error::other("refused by the system");
        let exit = InstallError::ExitHandler(why()).to_string();
        assert!(
            exit.contains("exit handler could not be registered"),
            "{exit}"
        );
        assert!(
            error_chain(&InstallError::ExitHandler(why())).contains("refused by the system"),
            "{exit}"
        );
        assert!(
            !exit.contains("spool") && !exit.contains("will not be stored"),
            "{exit}"
        );
        let thread = InstallError::WriterThread(why()).to_string();
        assert!(
            thread.contains("writer thread could not be started"),
            "{thread}"
        );
        assert!(
            error_chain(&InstallError::WriterThread(why())).contains("refused by the system"),
            "{thread}"
        );
        assert!(!thread.contains("spool"), "{thread}");
        for e in [
            InstallError::ExitHandler(why()),
            InstallError::WriterThread(why()),
        ] {
            let source = std::error::Error::source(&e).map(ToString::to_string);
            assert_eq!(source.as_deref(), Some("refused by the system"));
        }
    }
}
