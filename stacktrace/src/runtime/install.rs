//! `install()`: the process-wide runtime, its sink, the writer and the hook (the guard it
//! returns is in the guard module).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use once_cell::sync::OnceCell;

use crate::__private::AppInfo;
use crate::config::secrets_of_settings;
use crate::config::Config;
use crate::error::ConfigError;
use crate::error::{InstallError, StoreError};
use crate::model::drop::DropCounters;
use crate::model::event::{CrashEvent, InAppSettings};
use crate::pipeline::build::BuildSettings;
use crate::pipeline::filter::{self, Filters};
use crate::pipeline::gate::{Gate, KeyedLimit};
use crate::pipeline::process::ProcessInfo;
use crate::pipeline::redact::fields::FieldRedactor;
use crate::pipeline::resolve::source::SourceLines;
use crate::runtime::guard::Guard;
use crate::runtime::worker::Worker;
use crate::runtime::writer::Writer;
use crate::store::{InsertOutcome, Spool, Store};

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

/// Where events go: the sink chosen at install, until a database held by another process
/// at install is opened later (see [`reopen_later`]); it reads as the sink in use.
#[derive(Debug)]
pub(crate) struct Sinks {
    first: Sink,
    later: OnceLock<Sink>,
}

impl Sinks {
    fn new(first: Sink) -> Sinks {
        Sinks {
            first,
            later: OnceLock::new(),
        }
    }
}

impl std::ops::Deref for Sinks {
    type Target = Sink;

    fn deref(&self) -> &Sink {
        self.later.get().unwrap_or(&self.first)
    }
}

/// Everything the capture path needs, set once per process.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) config: Config,
    pub(crate) gate: Gate,
    pub(crate) drops: Arc<DropCounters>,
    /// What building an event needs: redaction, the settings' secrets, the process.
    pub(crate) build: BuildSettings,
    pub(crate) filters: Filters,
    pub(crate) user_limit: KeyedLimit,
    pub(crate) client_limit: KeyedLimit,
    /// Where events go; read as a [`Sink`], the one in use.
    pub(crate) sink: Sinks,
    pub(crate) writer: Writer,
    /// The background thread: the writer's work, and request tracking's.
    pub(crate) worker: Worker,
    #[cfg(feature = "mail")]
    pub(crate) mail: Option<crate::notify::mail::Mailer>,
}

static RUNTIME: OnceCell<Runtime> = OnceCell::new();
/// The forwarder, started once the runtime (and so its store) is in place.
#[cfg(feature = "forward")]
pub(super) static FORWARDER: OnceCell<crate::notify::forward::Forwarder> = OnceCell::new();

/// Tells the forwarder that events were stored.
pub(crate) fn wake_forwarder() {
    #[cfg(feature = "forward")]
    if let Some(f) = FORWARDER.get() {
        f.wake();
    }
}
static INSTALL: Mutex<()> = Mutex::new(());

pub(crate) fn runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// Opens the configured database. A damaged one is moved aside and a fresh one opened in
/// its place, into which the journal and the spool are merged, so that the program stores
/// again from now on; the move is reported once.
fn open_store(
    config: &Config,
    errors: &mut Vec<InstallError>,
) -> Option<Result<Store, StoreError>> {
    let (path, cache_bytes) = (&config.db_path, config.cache_bytes);
    #[cfg(feature = "forward")]
    let marks = config.forward.as_ref().map(|f| crate::store::OutboxMarks {
        min_level: f.min_level,
    });
    #[cfg(not(feature = "forward"))]
    let marks = None;
    let open = || quiet_own_panics(|| Store::open_marking(path, cache_bytes, marks));
    match open() {
        Err(cause @ StoreError::Corrupt { .. }) => match crate::store::move_aside(path) {
            Ok((aside, held)) => {
                errors.push(InstallError::StoreReplaced { cause, aside, held });
                Some(open())
            }
            Err((aside, source)) => {
                errors.push(InstallError::MoveAside {
                    path: path.clone(),
                    aside,
                    cause,
                    source,
                });
                None
            }
        },
        other => Some(other),
    }
}

/// Runs `f` with this thread's panics kept from the program's panic hook, and restores the
/// hook after. sled panics on some damaged files; the store turns that into
/// [`StoreError::Corrupt`], said once in the tracker's own words, and the previous hook (the
/// default one, or the program's reporter) would print sled's panic above it. Panics of
/// other threads meanwhile still reach the previous hook.
fn quiet_own_panics<T>(f: impl FnOnce() -> T) -> T {
    type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;
    /// Puts the previous hook back, even if `f` unwinds.
    struct Restore(Option<Arc<Hook>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let Some(previous) = self.0.take() else {
                return;
            };
            if std::thread::panicking() {
                return; // setting a hook from a panicking thread panics
            }
            // Dropping ours releases its share of the previous one.
            drop(std::panic::take_hook());
            match Arc::try_unwrap(previous) {
                Ok(hook) => std::panic::set_hook(hook),
                Err(shared) => std::panic::set_hook(Box::new(move |info| shared(info))),
            }
        }
    }
    // Taking or setting the hook from a panicking thread panics.
    if std::thread::panicking() {
        return f();
    }
    let previous: Arc<Hook> = Arc::new(std::panic::take_hook());
    let quiet = std::thread::current().id();
    let others = previous.clone();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != quiet {
            others(info);
        }
    }));
    let _restore = Restore(Some(previous));
    f()
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
    let (config, errors) = config_from_env();
    install_inner(config, errors)
}

/// The configuration of the `STACKTRACE_*` variables, with what was wrong in them.
fn config_from_env() -> (Config, Vec<ConfigError>) {
    let vars: Vec<(String, String)> = crate::config::stacktrace_vars().collect();
    #[cfg_attr(not(any(feature = "mail", feature = "forward")), allow(unused_mut))]
    let (mut config, mut errors) = Config::from_vars_lenient(vars.iter().cloned());
    #[cfg(feature = "mail")]
    crate::config::mail_from_vars(&mut config, &mut errors, &vars);
    #[cfg(feature = "forward")]
    crate::config::forward_from_vars(&mut config, &mut errors, &vars);
    (config, errors)
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

/// [`install`] (no `config`) or [`install_with`], for the app the `install!` macros name.
pub(crate) fn install_for_app(app: AppInfo, config: Option<Config>) -> Guard {
    let (mut config, errors) = match config {
        Some(config) => config.validated(),
        None => config_from_env(),
    };
    config.app = Some(app);
    // The calling crate's version is the release unless one is set.
    if config.release.is_empty() {
        if let Some(release) = crate::model::release::of_package(app.package, app.version) {
            config.release = release;
        }
    }
    install_inner(config, errors)
}

fn install_inner(config: Config, config_errors: Vec<ConfigError>) -> Guard {
    let _serial = crate::sync::lock(&INSTALL);
    if RUNTIME.get().is_some() {
        crate::diag::say("stacktrace: already installed in this process; nothing changed");
        return Guard {
            errors: vec![InstallError::AlreadyInstalled],
            owner: false,
        };
    }
    crate::model::random::seed_random();
    crate::runtime::fork::note_installer();
    // Listed now: the panic hook must not take the loader's lock to list them.
    crate::pipeline::resolve::modules::loaded();
    let mut errors: Vec<InstallError> = config_errors
        .into_iter()
        .map(InstallError::Config)
        .collect();
    let drops = Arc::new(DropCounters::default());
    let sink = match open_store(&config, &mut errors) {
        None => Sink::Nowhere,
        Some(Ok(store)) => {
            store.prepare_journal();
            Sink::Store(Box::new(store.with_pending_drops(drops.clone())))
        }
        Some(Err(e @ StoreError::Locked { .. })) => {
            let spool =
                Spool::create_capped(&config.db_path, config.spool_max_bytes, drops.clone());
            let sink = match spool {
                Ok(spool) => Sink::Spool(spool),
                Err(spool_error) => {
                    errors.push(InstallError::Store(spool_error));
                    Sink::Nowhere
                }
            };
            errors.push(InstallError::Store(e));
            sink
        }
        Some(Err(e)) => {
            errors.push(InstallError::Store(e));
            Sink::Nowhere
        }
    };
    let worker = Worker::default();
    let writer = Writer::new(config.queue_capacity, &worker);
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
    let mail = crate::notify::mail::Mailer::from_config(config.mail.as_ref(), &mut errors);
    let redactor = FieldRedactor::with_allowed(&config.redact_fields, &config.allowed_fields);
    let secrets = secrets_of_settings(&config);
    crate::pipeline::redact::credentials::prepare();
    let runtime = Runtime {
        #[cfg(feature = "mail")]
        mail,
        filters,
        user_limit: KeyedLimit::new(config.rate_limit_per_user),
        client_limit: KeyedLimit::new(config.rate_limit_per_client),
        gate: Gate::new(config.enabled, config.sample_rate, config.rate_limit),
        drops,
        build: BuildSettings {
            process: ProcessInfo::read(&config.release, config.capture_env, &redactor, &secrets),
            redactor,
            secrets,
            max_payload_bytes: config.max_payload_bytes,
            source: SourceLines::new(config.source_context),
        },
        sink: Sinks::new(sink),
        writer,
        worker,
        config,
    };
    if RUNTIME.set(runtime).is_err() {
        // Unreachable under the install lock; report rather than panic.
        return Guard {
            errors: vec![InstallError::AlreadyInstalled],
            owner: false,
        };
    }
    // The settings the capture path reads without the runtime.
    if let Some(rt) = RUNTIME.get() {
        crate::capture::breadcrumbs::keep_at_most(rt.config.max_breadcrumbs);
        crate::pipeline::resolve::in_app::judge_by(InAppSettings {
            app_module: rt.config.app.map(|a| a.module.to_owned()),
            app_package: rt.config.app.and_then(|a| a.package).map(str::to_owned),
            include: rt.config.in_app_include.clone(),
            exclude: rt.config.in_app_exclude.clone(),
        });
    }
    crate::capture::function_error::on_function_error(
        crate::runtime::admission::capture_function_error,
    );
    #[cfg(feature = "mail")]
    crate::notify::mail::read_stats_with(|| RUNTIME.get()?.mail.as_ref().map(|m| m.stats()));
    if let Err(e) = RUNTIME
        .get()
        .map_or(Ok(()), |rt| rt.writer.spawn(&rt.worker))
    {
        errors.push(InstallError::WriterThread(e));
    }
    if let Some(rt) = RUNTIME.get() {
        rt.worker
            .add(Box::new(crate::runtime::budget::BudgetDuty::new(
                rt.config.disk_budget_bytes,
            )));
    }
    #[cfg(any(feature = "mail", feature = "forward"))]
    if let Some(rt) = RUNTIME.get() {
        notify_crashes(rt);
    }
    #[cfg(feature = "forward")]
    if let Some(rt) = RUNTIME.get() {
        start_forwarder(rt, &mut errors);
    }
    if !std::thread::panicking() {
        crate::runtime::hook::install();
    }
    if let Some(rt) = RUNTIME.get().filter(|rt| !rt.sink.is_nowhere()) {
        let session_us = match crate::runtime::session::begin(&rt.sink, &rt.config.release) {
            Ok(us) => us,
            Err(e) => {
                errors.push(InstallError::Store(e));
                0
            }
        };
        let meta = crate::crash::Meta {
            session_us,
            release: rt.config.release.clone(),
            program: std::env::current_exe()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default(),
            unclean_exit_level: rt.config.unclean_exit_level,
            redact_fields: rt.config.redact_fields.clone(),
            modules: crate::pipeline::resolve::modules::loaded().to_vec(),
        };
        // Breadcrumbs reach the record as they happen: redacted with the settings' secrets.
        let secrets = rt.build.secrets.clone();
        if let Err(why) =
            crate::crash::arm(&rt.config.db_path, &meta, secrets, rt.config.crash_handler)
        {
            errors.push(InstallError::CrashRecord(why));
        }
    }
    if let Err(why) = exit_flush::register() {
        errors.push(InstallError::ExitHandler(why));
    }
    for e in &errors {
        crate::diag::say(&format!("stacktrace: {}", crate::diag::error_chain(e)));
    }
    if let Some(
        rt @ Runtime {
            sink: Sinks {
                first: Sink::Spool(s),
                ..
            },
            ..
        },
    ) = RUNTIME.get()
    {
        crate::diag::say(&format!(
            "stacktrace: events are written to {} and merged into the database as soon as \
             it is free (tried every {} s)",
            s.path().display(),
            REOPEN_EVERY.as_secs()
        ));
        if let Err(e) = reopen_later(rt) {
            crate::diag::say(&format!(
                "stacktrace: cannot start the thread that opens the database once it is free \
                 ({e}); events are merged into it when it is next opened"
            ));
        }
    }
    Guard {
        errors,
        owner: true,
    }
}

/// How often a program that spools tries its database again.
const REOPEN_EVERY: Duration = Duration::from_secs(2);

/// Starts the thread that tries the database every [`REOPEN_EVERY`] while another process
/// holds it, and once it opens, makes it the sink (see [`adopt`]). It ends then, or when the
/// database cannot be had at all (damaged and not moved aside).
fn reopen_later(rt: &'static Runtime) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("stacktrace-reopen".into())
        .spawn(move || {
            let mut said = false;
            loop {
                std::thread::sleep(REOPEN_EVERY);
                let mut errors = Vec::new();
                match open_store(&rt.config, &mut errors) {
                    Some(Ok(store)) => return adopt(rt, store, &errors),
                    Some(Err(StoreError::Locked { .. })) => {}
                    Some(Err(e)) if !said => {
                        said = true;
                        crate::diag::say(&format!(
                            "stacktrace: {}; still spooling, tried again every {} s",
                            crate::diag::error_chain(&e),
                            REOPEN_EVERY.as_secs()
                        ));
                    }
                    Some(Err(_)) => {}
                    None => {
                        for e in &errors {
                            crate::diag::say(&format!(
                                "stacktrace: {}",
                                crate::diag::error_chain(e)
                            ));
                        }
                        return;
                    }
                }
            }
        })
        .map(drop)
}

/// Makes `store`, opened after install, the sink: events go to it from now on, the spool
/// is merged into it, and what install starts with a database (this process's session,
/// the crashes to report, forwarding; request tracking looks for it itself) starts now.
fn adopt(rt: &'static Runtime, store: Store, said: &[InstallError]) {
    for e in said {
        crate::diag::say(&format!("stacktrace: {}", crate::diag::error_chain(e)));
    }
    let Sink::Spool(spool) = &rt.sink.first else {
        return;
    };
    store.prepare_journal();
    let store = store.with_pending_drops(rt.drops.clone());
    // Most of the spool is merged before the store is seen, so that a reader who finds
    // it finds the spooled events in it; what is appended meanwhile is merged after.
    let first = crate::store::merge_spool_from(&store, spool, 0);
    if rt.sink.later.set(Sink::Store(Box::new(store))).is_err() {
        return;
    }
    let Sink::Store(store) = &*rt.sink else {
        return;
    };
    let merged = first.and_then(|(read, n)| {
        crate::store::merge_own_spool(store, spool, read).map(|rest| n + rest)
    });
    if let Err(e) = crate::runtime::session::begin_stored(store) {
        crate::diag::say(&format!(
            "stacktrace: this process's session was not stored: {}",
            crate::diag::error_chain(&e)
        ));
    }
    #[cfg(any(feature = "mail", feature = "forward"))]
    notify_crashes(rt);
    #[cfg(feature = "forward")]
    {
        let mut errors = Vec::new();
        start_forwarder(rt, &mut errors);
        for e in &errors {
            crate::diag::say(&format!("stacktrace: {}", crate::diag::error_chain(e)));
        }
    }
    crate::diag::say(&match merged {
        Ok(n) => format!(
            "stacktrace: the database {} is open: events are stored in it again, and the \
             {n} spooled events were merged into it",
            store.path().display()
        ),
        Err(e) => format!(
            "stacktrace: the database {} is open: events are stored in it again; merging the \
             spool failed ({}), so the next open merges it",
            store.path().display(),
            crate::diag::error_chain(&e)
        ),
    });
}

/// Starts the forwarder when forwarding is set and the database is open.
#[cfg(feature = "forward")]
fn start_forwarder(rt: &'static Runtime, errors: &mut Vec<InstallError>) {
    let (Sink::Store(store), Some(forward)) = (&*rt.sink, rt.config.forward.as_ref()) else {
        return;
    };
    if let Some(f) = crate::notify::forward::Forwarder::start(forward, store, errors) {
        let _ = FORWARDER.set(f);
    }
}

/// Hands the crash events stored by an earlier open, and not yet mailed or forwarded by any
/// program, to mail and the outbox as the writer hands its events; before the forwarder
/// starts. They stay waiting when this program has neither.
#[cfg(any(feature = "mail", feature = "forward"))]
fn notify_crashes(rt: &Runtime) {
    let Sink::Store(store) = &*rt.sink else {
        return;
    };
    #[cfg(feature = "mail")]
    let mail = rt.mail.as_ref();
    #[cfg(feature = "forward")]
    let forward = rt.config.forward.as_ref();
    #[cfg(not(feature = "forward"))]
    let forward: Option<&()> = None;
    #[cfg(not(feature = "mail"))]
    let mail: Option<&()> = None;
    if mail.is_none() && forward.is_none() {
        return;
    }
    use crate::store::unnotified::{FOR_FORWARDING, FOR_MAIL};
    let wanted = if mail.is_some() { FOR_MAIL } else { 0 }
        | if forward.is_some() { FOR_FORWARDING } else { 0 };
    let taken = match store.take_unnotified(wanted) {
        Ok(taken) => taken,
        Err(e) => {
            crate::diag::say(&format!(
                "stacktrace: could not read the crashes to report: {}",
                crate::diag::error_chain(&e)
            ));
            return;
        }
    };
    #[cfg(feature = "forward")]
    if let Some(f) = forward {
        let ids: Vec<_> = taken
            .iter()
            .filter(|u| u.taken_for & FOR_FORWARDING != 0 && u.event.level >= f.min_level)
            .map(|u| u.event.id)
            .collect();
        if let Err(e) = store.mark_unsent(&ids) {
            crate::diag::say(&format!(
                "stacktrace: could not put the crashes in the outbox: {}",
                crate::diag::error_chain(&e)
            ));
        }
    }
    #[cfg(feature = "mail")]
    if let Some(mailer) = mail {
        let (events, outcomes): (Vec<_>, Vec<_>) = taken
            .into_iter()
            .filter(|u| u.taken_for & FOR_MAIL != 0)
            .map(|u| (u.event, u.outcome))
            .unzip();
        mailer.notify(&events, &outcomes);
    }
}

/// Stores what is queued when the program calls `std::process::exit`, which runs no
/// destructor: without it, an error captured just before `exit` would be lost with the
/// writer's queue. Panics need no help; the hook journals them at once.
mod exit_flush {
    #[cfg(unix)]
    use super::runtime;

    /// Registers the handler; called once per process, under the install lock.
    #[cfg(unix)]
    pub(super) fn register() -> std::io::Result<()> {
        // SAFETY: `atexit` is given a plain function with the C ABI that takes nothing and
        // cannot unwind (it catches every panic), and registering it has no precondition;
        // the runtime it reads is a process-wide static that is never torn down.
        #[allow(unsafe_code)]
        let status = unsafe { libc::atexit(on_exit) };
        if status == 0 {
            Ok(())
        } else {
            Err(std::io::Error::other("atexit refused the exit handler"))
        }
    }

    #[cfg(not(unix))]
    pub(super) fn register() -> std::io::Result<()> {
        Ok(())
    }

    #[cfg(unix)]
    extern "C" fn on_exit() {
        // A panic must not unwind out of a C callback; nothing here is expected to panic.
        let _ = std::panic::catch_unwind(|| {
            // A child forked after install: the parent's session, record and writer.
            if crate::runtime::fork::in_forked_child() {
                return;
            }
            crate::runtime::session::end(false);
            crate::crash::close();
            let Some(rt) = runtime() else {
                return;
            };
            let timeout = rt.config.exit_flush_timeout;
            let unflushed = rt.writer.unflushed();
            if !rt.writer.flush_at_exit(timeout) {
                crate::diag::say(&format!(
                    "stacktrace: up to {unflushed} queued events were not stored before exit \
                     (exit_flush_timeout is {timeout:?})"
                ));
            }
        });
    }
}
