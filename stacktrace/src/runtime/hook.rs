//! The panic hook: makes the panic durable before the previous hook runs and the process
//! possibly ends.
//!
//! The hook builds the finished event (symbols resolved through a cache), appends it to the
//! journal in one `write` (durable: it survives the process ending once the `write`
//! returned), and queues it for the background writer, which stores it in the database and
//! decides its mail. A panic whose frames are still addresses may take room past the
//! queue's bound; when the writer cannot take it even so, it stays in the journal, which
//! the next open resolves and stores: the panicking thread never reads debug info. A panic
//! resolved in the hook (see below) that the writer cannot take is stored by the hook
//! itself. Either way nothing is dropped for want of room.
//!
//! A `before_store` hook runs on another thread while this one waits (see
//! [`crate::pipeline::filter`]): a panic on a thread already in the panic hook aborts the
//! process, whatever would catch it.
//!
//! It cannot panic (a panic inside a panic hook aborts the process): no `unwrap`, no
//! indexing, no printing macro that panics on a closed stderr. It waits for no lock that a
//! panicking thread could hold: the chain of captured calls is read with `try_borrow`, the
//! gate is atomic, the journal's and the queue's locks are tried for a bounded time. When
//! storing fails it writes one line to stderr and the program goes on as it would without
//! this crate.

use std::cell::Cell;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::capture::pending::PendingEvent;
use crate::capture::trace::RawTrace;
use crate::diag::{panic_message, say};
use crate::model::drop::DropReason;
use crate::model::event::{CrashEvent, Level};
use crate::pipeline::build::event_from_pending;
use crate::runtime::admission::{accept, admitted, location_of};
use crate::runtime::install::{Runtime, Sink};
use crate::runtime::writer::{Journaled, IS_WRITER};

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// The hook this crate installed: it stores the panic, then calls the one it replaced.
///
/// Dropping it means the program replaced it (`set_hook` drops the hook it replaces, and a
/// hook taken with `take_hook` and not kept is dropped too): panics no longer reach it. A
/// hook that chains to it keeps it alive. Watching the drop costs nothing per panic, and
/// tells a chaining hook from a replacing one, which comparing hooks could not.
struct OurHook {
    previous: Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>,
}

impl OurHook {
    fn call(&self, info: &PanicHookInfo<'_>) {
        // Raised by a user's `Debug` while formatting a value for an event, and caught.
        if crate::capture::guarded::formatting_value() {
            return;
        }
        // Raised by a hook the program plugged in, and caught; said once by the caller.
        let location = || info.location().map(|l| l.to_string());
        if crate::capture::user_hook::caught_in_user_hook(location) {
            return;
        }
        on_panic(info);
        (self.previous)(info);
    }
}

impl Drop for OurHook {
    fn drop(&mut self) {
        HOOK_STATE.store(HOOK_DROPPED, Ordering::SeqCst);
    }
}

const HOOK_NONE: u8 = 0;
const HOOK_INSTALLED: u8 = 1;
const HOOK_DROPPED: u8 = 2;
static HOOK_STATE: AtomicU8 = AtomicU8::new(HOOK_NONE);
static SAID_REPLACED: AtomicBool = AtomicBool::new(false);

/// Installs the hook in front of the current one, which it calls after storing.
pub(crate) fn install() {
    let hook = OurHook {
        previous: std::panic::take_hook(),
    };
    std::panic::set_hook(Box::new(move |info| hook.call(info)));
    HOOK_STATE.store(HOOK_INSTALLED, Ordering::SeqCst);
}

/// Whether panics reach this crate's hook: it was installed and not replaced since. The
/// first time it finds the hook replaced, says so on stderr, with how to chain instead.
pub(crate) fn is_capturing_panics() -> bool {
    match HOOK_STATE.load(Ordering::SeqCst) {
        HOOK_INSTALLED => true,
        HOOK_DROPPED => {
            if !SAID_REPLACED.swap(true, Ordering::SeqCst) {
                say(REPLACED);
            }
            false
        }
        _ => false,
    }
}

const REPLACED: &str = "stacktrace: the panic hook was replaced after install(); panics are no \
    longer captured. Set your hook before install(), or chain to the previous one: \
    `let previous = std::panic::take_hook(); \
    std::panic::set_hook(Box::new(move |info| { /* yours */ previous(info) }));`";

fn on_panic(info: &PanicHookInfo<'_>) {
    // Thread-locals may be gone (a panic in a thread-local's destructor): then assume we
    // are not nested, which is the common case.
    let nested = IN_HOOK.try_with(|f| f.replace(true)).unwrap_or(false);
    if nested {
        return;
    }
    if IS_WRITER.try_with(Cell::get).unwrap_or(false) {
        say("stacktrace: the event writer panicked; this panic is not stored");
    } else if let Err(why) = store_panic(info) {
        say(&format!("stacktrace: could not store this panic: {why}"));
    }
    let _ = IN_HOOK.try_with(|f| f.set(false));
}

fn store_panic(info: &PanicHookInfo<'_>) -> Result<(), String> {
    crate::runtime::session::note_event(Level::Fatal);
    crate::runtime::session::note_panic();
    let Some((rt, now)) = admitted() else {
        return Ok(());
    };
    let mut p = PendingEvent::new(now, Level::Fatal, "panic").with_active_calls();
    p.error_type = "panic".to_owned();
    p.message = panic_message(info.payload());
    p.location = info.location().map(location_of);
    if let Err(reason) = accept(rt, &p, true) {
        rt.drops.add(reason);
        return Ok(());
    }
    p.breadcrumbs = crate::capture::breadcrumbs::take();
    let trace = RawTrace::capture();
    // Resolving symbols is most of a panic's cost, and the first time in a process it
    // loads debug info (tens of milliseconds to seconds). What the process could not
    // rebuild later is only the return addresses: the journal gets them relative to their
    // modules, and the writer resolves them (or, if the process ends first, the next one
    // to open the database). A `before_store` hook must see the finished event before
    // anything reaches the disk, and a spool is merged by another process: both resolve
    // here, as does a process whose modules could not be listed.
    // So does a program without a build id, whose file no later process could match.
    let journal_addresses = rt.filters.before_store.is_none()
        && matches!(*rt.sink, Sink::Store(_))
        && crate::pipeline::resolve::modules::can_journal_addresses();
    // What redaction hid (the calls' secrets, values hidden by their names, credentials),
    // kept in memory to redact the source lines of the frames the writer resolves.
    let mut secrets = Vec::new();
    let (mut event, trace) = if journal_addresses {
        let (mut event, hidden) = crate::pipeline::build::event_and_hidden(p, &rt.build);
        secrets = hidden;
        event.unresolved = Some(crate::pipeline::resolve::modules::unresolved_of(
            trace.ips(),
        ));
        (event, Some(trace))
    } else {
        p.trace = Some(trace);
        (event_from_pending(p, &rt.build), None)
    };
    if !rt.filters.keep_from_panic_hook(&mut event) {
        rt.drops.add(DropReason::Filtered);
        return Ok(());
    }
    let store = match &*rt.sink {
        Sink::Store(store) => store,
        // A spool line is written at once: it is as durable as it needs to be.
        Sink::Spool(spool) => {
            spool.append(&event).map_err(|e| {
                rt.drops.add(DropReason::StorageError);
                crate::diag::error_chain(&e)
            })?;
            notify(rt, event, None);
            return Ok(());
        }
        Sink::Nowhere => {
            rt.drops.add(DropReason::StorageError);
            return Err("no database is open".to_owned());
        }
    };
    if store.journal(&event).is_err() {
        // No journal: store the event and flush the database, the slow way.
        resolve(&mut event, trace.as_ref());
        let outcome = store
            .insert(&event)
            .and_then(|outcome| store.flush().map(|()| outcome))
            .map_err(|e| {
                rt.drops.add(DropReason::StorageError);
                crate::diag::error_chain(&e)
            })?;
        notify(rt, event, Some(outcome));
        return Ok(());
    }
    // Durable now. The writer stores it and mails; when it cannot take it, the hook does.
    let Err(journaled) = rt.writer.try_send_journaled(Box::new(Journaled {
        event,
        trace,
        secrets,
    })) else {
        return Ok(());
    };
    if journaled.trace.is_some() {
        // Its frames are still addresses, and resolving them here would read debug info on
        // the panicking thread. It is durable in the journal already: the next open
        // resolves and stores it.
        if !SAID_JOURNAL_ONLY.swap(true, Ordering::SeqCst) {
            say(JOURNAL_ONLY);
        }
        return Ok(());
    }
    let Journaled { event, .. } = *journaled;
    let outcome = store.insert(&event).map_err(|e| {
        format!(
            "{}; it is kept in the journal and stored when the database is next opened",
            crate::diag::error_chain(&e)
        )
    })?;
    store.journaled_stored(1);
    notify(rt, event, Some(outcome));
    Ok(())
}

static SAID_JOURNAL_ONLY: AtomicBool = AtomicBool::new(false);

const JOURNAL_ONLY: &str = "stacktrace: the event writer could not take a panic; it is kept \
    in the journal and stored when the database is next opened. Later such panics are not said.";

/// Resolves a panic's frames in the hook: when it could not be journaled and is stored
/// at once.
fn resolve(event: &mut CrashEvent, trace: Option<&RawTrace>) {
    crate::pipeline::resolve::modules::resolve_journaled(event, trace, &mut Default::default());
}

/// Hands a panic the hook stored itself to the mailer.
#[cfg_attr(not(feature = "mail"), allow(unused_variables))]
fn notify(rt: &Runtime, event: CrashEvent, outcome: Option<crate::store::InsertOutcome>) {
    crate::runtime::install::wake_forwarder();
    #[cfg(feature = "mail")]
    if let Some(mailer) = &rt.mail {
        mailer.notify(std::slice::from_ref(&event), outcome.as_slice());
    }
}
