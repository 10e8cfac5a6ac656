//! The panic hook: stores the panic, durably, before the previous hook runs and the process
//! possibly ends.
//!
//! It cannot panic (a panic inside a panic hook aborts the process): no `unwrap`, no
//! indexing, no printing macro that panics on a closed stderr. It takes no lock that a
//! panicking thread could hold: the chain of captured calls is read with `try_borrow`, the
//! gate is atomic, the spool file lock is tried for a bounded time. When storing fails it
//! writes one line to stderr and the program goes on as it would without this crate.

use std::any::Any;
use std::cell::Cell;
use std::io::Write;
use std::panic::PanicHookInfo;

use crate::capture::{accept, admitted, location_of};
use crate::event::Level;
use crate::gate::DropReason;
use crate::pipeline::{event_from_pending, PendingEvent};
use crate::writer::IS_WRITER;

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Writes one line to stderr, ignoring a closed or broken stderr.
pub(crate) fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
}

/// Installs the hook in front of the current one, which it calls after storing.
pub(crate) fn install() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        on_panic(info);
        previous(info);
    }));
}

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

/// The panic's message: the `&str` or `String` payload, or a placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any> (a panic payload that is not a string)".to_owned()
    }
}

fn store_panic(info: &PanicHookInfo<'_>) -> Result<(), String> {
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
    p.breadcrumbs = crate::breadcrumbs::take();
    p.backtrace = Some(backtrace::Backtrace::new_unresolved());
    let mut event = event_from_pending(p, rt);
    if !rt.filters.keep(&mut event) {
        rt.drops.add(DropReason::Filtered);
        return Ok(());
    }
    let outcome = rt.sink.persist(&event, true).map_err(|e| {
        rt.drops.add(DropReason::StorageError);
        e.to_string()
    })?;
    #[cfg(feature = "mail")]
    if let Some(mailer) = &rt.mail {
        mailer.notify(std::slice::from_ref(&event), outcome.as_slice());
    }
    let _ = outcome;
    Ok(())
}
