//! Admission on the calling thread: whether an event captured now is kept (enable switch,
//! sampling, filters, limits), and its queueing to the writer.

use crate::capture::function_error::FunctionError;
use crate::capture::pending::PendingEvent;
use crate::model::drop::DropReason;
use crate::model::event::{EventId, Location};
use crate::model::time::now_us;
use crate::runtime::install::{runtime, Runtime};
use crate::runtime::writer::Sent;

/// Stores the error a `#[capture]` function returned; registered with the call chain at
/// install.
pub(crate) fn capture_function_error(e: FunctionError) -> Option<EventId> {
    let (rt, now) = admitted()?;
    // The chain of the task's spawner comes first, as for every other event.
    let mut p = PendingEvent::new(now, e.level, "capture").with_inherited_calls();
    p.error_type = e.error_type;
    p.message = e.message;
    p.sources = e.sources;
    p.location = Some(Location {
        file: e.function.file.clone(),
        line: e.function.line,
        column: 0,
    });
    p.calls.extend(e.chain);
    p.calls.push(e.function);
    p.secrets.extend(e.secrets);
    submit(rt, p, true)
}

/// The runtime and the time, when an event captured now passes the enable switch and
/// sampling; counts the drop otherwise. The rest of the checks need the built event
/// ([`accept`]).
pub(crate) fn admitted() -> Option<(&'static Runtime, u64)> {
    let rt = runtime()?;
    if crate::runtime::fork::drops_events() {
        return None;
    }
    crate::crash::prepare_thread();
    if rt.sink.is_nowhere() {
        // Install already said why; count quietly rather than write a line per event.
        rt.drops.add(crate::model::drop::DropReason::StorageError);
        return None;
    }
    match rt.gate.admit() {
        Ok(()) => Some((rt, now_us())),
        Err(reason) => {
            rt.drops.add(reason);
            None
        }
    }
}

/// The checks that need the event: ignore rules, then the per-user and per-client limits,
/// then the global limit last, so that events dropped earlier do not use its budget. In the
/// panic hook (`in_hook`) no lock is waited for.
pub(crate) fn accept(rt: &Runtime, p: &PendingEvent, in_hook: bool) -> Result<(), DropReason> {
    if rt.filters.ignores(p) {
        return Err(DropReason::Filtered);
    }
    if !rt.user_limit.admit(&p.user, p.timestamp_us, !in_hook)
        || !rt
            .client_limit
            .admit(&p.client_addr, p.timestamp_us, !in_hook)
    {
        return Err(DropReason::RateLimited);
    }
    rt.gate.admit_rate(p.timestamp_us)
}

/// Accepts, completes (breadcrumbs, backtrace) and queues an event; the id, or `None` when
/// it was dropped (counted).
pub(crate) fn submit(rt: &Runtime, mut p: PendingEvent, backtrace: bool) -> Option<EventId> {
    crate::runtime::session::note_event(p.level);
    if let Err(reason) = accept(rt, &p, false) {
        rt.drops.add(reason);
        return None;
    }
    p.breadcrumbs = crate::capture::breadcrumbs::take();
    if backtrace {
        p.trace = Some(crate::capture::trace::RawTrace::capture());
    }
    enqueue(rt, p)
}

fn enqueue(rt: &Runtime, p: PendingEvent) -> Option<EventId> {
    let id = p.id;
    match rt.writer.try_send(p) {
        Ok(Sent::Queued) => Some(id),
        // Counted in the group of a stored copy of its failure: it has no event of its own.
        Ok(Sent::Counted) => None,
        Err(reason) => {
            rt.drops.add(reason);
            None
        }
    }
}

pub(crate) fn location_of(l: &std::panic::Location<'_>) -> Location {
    Location {
        file: l.file().to_owned(),
        line: l.line(),
        column: l.column(),
    }
}
