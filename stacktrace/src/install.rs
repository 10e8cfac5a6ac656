//! `install()`: the process-wide runtime, its sink, the writer and the hook; and the guard.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use once_cell::sync::OnceCell;

use crate::config::{Config, ConfigError};
use crate::context::ProcessInfo;
use crate::error::{InstallError, StoreError};
use crate::event::CrashEvent;
use crate::filter::{self, Filters};
use crate::gate::{DropCounters, Gate, KeyedLimit};
use crate::redact::FieldRedactor;
use crate::store::{InsertOutcome, Spool, Store};
use crate::writer::Writer;

/// Where events go.
#[derive(Debug)]
pub(crate) enum Sink {
    /// The database, opened by this process.
    Store(Box<Store>),
    /// Another process holds the database: a spool file beside it.
    Spool(Spool),
    /// Nothing could be opened; events are counted as storage errors.
    Nowhere,
}

impl Sink {
    /// Stores events in one batch (not flushed). On failure, says how many were lost.
    pub(crate) fn persist_batch(
        &self,
        events: &[CrashEvent],
    ) -> Result<Vec<InsertOutcome>, (usize, StoreError)> {
        match self {
            Sink::Store(s) => s.insert_batch(events).map_err(|e| (events.len(), e)),
            Sink::Spool(s) => {
                for (i, e) in events.iter().enumerate() {
                    s.append(e).map_err(|err| (events.len() - i, err))?;
                }
                Ok(Vec::new())
            }
            Sink::Nowhere => Err((
                events.len(),
                StoreError::Io(sled::Error::Unsupported("no database is open".into())),
            )),
        }
    }

    /// Flushes when the panic journal holds events, so that it is emptied while idle.
    pub(crate) fn settle(&self) {
        if let Sink::Store(s) = self {
            if s.journal_pending() {
                let _ = s.flush();
            }
        }
    }

    pub(crate) fn is_nowhere(&self) -> bool {
        matches!(self, Sink::Nowhere)
    }

    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        match self {
            Sink::Store(s) => s.flush(),
            _ => Ok(()),
        }
    }

    /// Moves the in-memory drop counts into the database.
    pub(crate) fn persist_drops(&self, drops: &DropCounters) {
        if let Sink::Store(s) = self {
            let counts = drops.take();
            if s.add_drops(counts).is_err() {
                // Put them back rather than lose them; the next try may succeed.
                drops.put_back(counts);
            }
        }
    }
}

/// Everything the capture path needs, set once per process.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) config: Config,
    pub(crate) gate: Gate,
    pub(crate) drops: Arc<DropCounters>,
    pub(crate) process: ProcessInfo,
    pub(crate) redactor: FieldRedactor,
    pub(crate) filters: Filters,
    pub(crate) user_limit: KeyedLimit,
    pub(crate) client_limit: KeyedLimit,
    pub(crate) sink: Sink,
    pub(crate) writer: Writer,
    #[cfg(feature = "mail")]
    pub(crate) mail: Option<crate::mail::Mailer>,
}

static RUNTIME: OnceCell<Runtime> = OnceCell::new();
static INSTALL: Mutex<()> = Mutex::new(());

pub(crate) fn runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// Opens the configured database. A damaged one is moved aside and a fresh one opened in
/// its place, into which the journal and the spool are merged, so that the program stores
/// again from now on; the move is reported once.
fn open_store(config: &Config, errors: &mut Vec<InstallError>) -> Result<Store, StoreError> {
    let (path, cache_bytes) = (&config.db_path, config.cache_bytes);
    let open = || Store::open_with_cache(path, cache_bytes);
    match open() {
        Err(cause @ StoreError::Corrupt { .. }) => match crate::store::move_aside(path) {
            Ok((aside, held)) => {
                errors.push(InstallError::StoreReplaced { cause, aside, held });
                open()
            }
            Err(source) => Err(StoreError::Spool {
                path: path.clone(),
                source: std::io::Error::new(
                    source.kind(),
                    format!("{cause}; moving it aside failed: {source}"),
                ),
            }),
        },
        other => other,
    }
}

/// Installs the tracker with the configuration of the `STACKTRACE_*` environment variables
/// (see [`Config`]): opens the database, starts the background writer and puts the panic
/// hook in front of the current one. Keep the returned [`Guard`] alive for the life of the
/// program: dropping it flushes what is queued.
///
/// It never fails the host program: a bad variable or a database that cannot be opened is
/// said once on stderr and reported by [`Guard::errors`], and the program runs on. A second
/// call changes nothing and says so.
///
/// ```no_run
/// let _guard = stacktrace::install();
/// // ... the program ...
/// ```
pub fn install() -> Guard {
    let vars: Vec<(String, String)> = crate::config::stacktrace_vars().collect();
    #[cfg_attr(not(feature = "mail"), allow(unused_mut))]
    let (mut config, mut errors) = Config::from_vars_lenient(vars.iter().cloned());
    #[cfg(feature = "mail")]
    crate::mail::mail_from_vars(&mut config, &mut errors, &vars);
    install_inner(config, errors)
}

/// Installs the tracker with a configuration built in code; see [`install`].
///
/// ```no_run
/// let _guard = stacktrace::install_with(
///     stacktrace::Config::default().db_path("var/errors.db").rate_limit(60),
/// );
/// ```
pub fn install_with(config: Config) -> Guard {
    let (config, errors) = config.validated();
    install_inner(config, errors)
}

fn install_inner(config: Config, config_errors: Vec<ConfigError>) -> Guard {
    let _serial = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if RUNTIME.get().is_some() {
        crate::hook::say("stacktrace: already installed in this process; nothing changed");
        return Guard {
            errors: vec![InstallError::AlreadyInstalled],
            owner: false,
        };
    }
    crate::gate::seed_random();
    let mut errors: Vec<InstallError> = config_errors
        .into_iter()
        .map(InstallError::Config)
        .collect();
    let drops = Arc::new(DropCounters::default());
    let opened = open_store(&config, &mut errors);
    let sink = match opened {
        Ok(store) => Sink::Store(Box::new(store.with_pending_drops(drops.clone()))),
        Err(e @ StoreError::Locked { .. }) => {
            let sink = match Spool::create(&config.db_path) {
                Ok(spool) => Sink::Spool(spool),
                Err(spool_error) => {
                    errors.push(InstallError::Store(spool_error));
                    Sink::Nowhere
                }
            };
            errors.push(InstallError::Store(e));
            sink
        }
        Err(e) => {
            errors.push(InstallError::Store(e));
            Sink::Nowhere
        }
    };
    let writer = Writer::new(config.queue_capacity);
    let mut regex_errors = Vec::new();
    let filters = Filters::new(
        config.ignore_error_types.clone(),
        filter::compile("ignore_paths", &config.ignore_paths, &mut regex_errors),
        filter::compile(
            "ignore_messages",
            &config.ignore_messages,
            &mut regex_errors,
        ),
        config.before_store.clone(),
    );
    errors.extend(regex_errors.into_iter().map(InstallError::Config));
    #[cfg(feature = "mail")]
    let mail = crate::mail::Mailer::from_config(config.mail.as_ref(), &mut errors);
    let runtime = Runtime {
        #[cfg(feature = "mail")]
        mail,
        filters,
        user_limit: KeyedLimit::new(config.rate_limit_per_user),
        client_limit: KeyedLimit::new(config.rate_limit_per_client),
        gate: Gate::new(config.enabled, config.sample_rate, config.rate_limit),
        drops,
        process: ProcessInfo::read(&config.release, config.capture_env),
        redactor: FieldRedactor::new(&config.redact_fields),
        sink,
        writer,
        config,
    };
    if RUNTIME.set(runtime).is_err() {
        // Unreachable under the install lock; report rather than panic.
        return Guard {
            errors: vec![InstallError::AlreadyInstalled],
            owner: false,
        };
    }
    if let Err(e) = RUNTIME.get().map_or(Ok(()), |rt| rt.writer.spawn()) {
        errors.push(InstallError::Store(StoreError::Spool {
            path: "stacktrace-writer thread".into(),
            source: e,
        }));
    }
    if !std::thread::panicking() {
        crate::hook::install();
    }
    for e in &errors {
        crate::hook::say(&format!("stacktrace: {e}"));
    }
    if let Some(Runtime {
        sink: Sink::Spool(s),
        ..
    }) = RUNTIME.get()
    {
        crate::hook::say(&format!(
            "stacktrace: events are written to {} and merged into the database when it is next opened",
            s.path().display()
        ));
    }
    Guard {
        errors,
        owner: true,
    }
}

/// The running program's database handle, when [`install`] opened one. Read events through
/// it while the program runs (sled lets only one process open a database). Events, panics
/// included, are in it once the background writer stored them: call
/// [`Guard::flush`] first to read what was just captured.
pub fn store() -> Option<&'static Store> {
    match &runtime()?.sink {
        Sink::Store(s) => Some(s),
        _ => None,
    }
}

/// Returned by [`install`]: reports what went wrong at install, and flushes queued events
/// when dropped. Keep it alive for the life of the program (`let _guard = ...`).
#[derive(Debug)]
#[must_use = "dropping the guard at once flushes at once; bind it: `let _guard = stacktrace::install();`"]
pub struct Guard {
    errors: Vec<InstallError>,
    owner: bool,
}

/// How long dropping the guard waits for queued events.
const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

impl Guard {
    /// What went wrong at install; empty when all went well.
    pub fn errors(&self) -> &[InstallError] {
        &self.errors
    }

    /// Whether events are kept: in the database, or in a spool file beside a database held
    /// by another process.
    pub fn is_storing(&self) -> bool {
        runtime().is_some_and(|rt| !rt.sink.is_nowhere())
    }

    /// The spool file events go to while another process holds the database.
    pub fn spool_path(&self) -> Option<&'static Path> {
        match &runtime()?.sink {
            Sink::Spool(s) => Some(s.path()),
            _ => None,
        }
    }

    /// Waits until every event captured before the call is stored and flushed to disk (at
    /// most 30 seconds); says whether it finished.
    pub fn flush(&self) -> bool {
        self.flush_timeout(Duration::from_secs(30))
    }

    /// Like [`Guard::flush`], waiting at most `timeout`.
    pub fn flush_timeout(&self, timeout: Duration) -> bool {
        runtime().is_some_and(|rt| rt.writer.flush(timeout))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.owner && !self.flush_timeout(DROP_FLUSH_TIMEOUT) {
            crate::hook::say("stacktrace: some queued events were not stored before exit");
        }
        #[cfg(feature = "mail")]
        if let Some(mailer) = runtime()
            .and_then(|rt| rt.mail.as_ref())
            .filter(|_| self.owner)
        {
            mailer.drain_on_exit();
        }
    }
}
