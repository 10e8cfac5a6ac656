//! Breadcrumbs: the last records below the capture level (log records, tracing events, your
//! own), kept per thread, or per task for tasks spawned through [`crate::tokio`], and
//! attached to the next event of that thread or task.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) use crate::model::breadcrumb::Breadcrumb;
use crate::model::event::Level;
use crate::model::time::now_us;

/// The breadcrumbs of the current thread or task.
pub(crate) type Trail = VecDeque<Breadcrumb>;

/// `max_breadcrumbs` of the running configuration, set at install: none are kept before.
static MAX_BREADCRUMBS: AtomicUsize = AtomicUsize::new(0);

/// Keeps at most `max` breadcrumbs per thread or task from now on (0: none).
pub(crate) fn keep_at_most(max: usize) {
    MAX_BREADCRUMBS.store(max, Ordering::Relaxed);
}

/// Where each breadcrumb is also copied as it is recorded (the crash record's ring), set
/// at install.
static COPY_TO: std::sync::OnceLock<fn(&Breadcrumb)> = std::sync::OnceLock::new();

/// Copies every breadcrumb recorded from now on to `copy` too.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn copy_to(copy: fn(&Breadcrumb)) {
    let _ = COPY_TO.set(copy);
}

fn copy_out(crumb: &Breadcrumb) {
    if let Some(copy) = COPY_TO.get() {
        copy(crumb);
    }
}

thread_local! {
    static TRAIL: RefCell<Trail> = const { RefCell::new(VecDeque::new()) };
}

/// Records a breadcrumb on the current thread (or task); the oldest goes when
/// `max_breadcrumbs` (default 100) are kept. Does nothing before [`install`](crate::install())
/// or with `max_breadcrumbs = 0`.
///
/// ```no_run
/// # let _guard = stacktrace::install();
/// use stacktrace::{add_breadcrumb, Breadcrumb, Level};
/// add_breadcrumb(Breadcrumb::new(Level::Info, "cart", "item added").with_data("sku", "A-17"));
/// ```
pub fn add_breadcrumb(crumb: Breadcrumb) {
    with_trail(|trail, max| {
        while trail.len() >= max {
            trail.pop_front();
        }
        copy_out(&crumb);
        trail.push_back(crumb);
    });
}

/// Runs `f` on this thread's (or task's) trail with `max_breadcrumbs`, when breadcrumbs are
/// kept at all and the trail is not in use.
fn with_trail(f: impl FnOnce(&mut Trail, usize)) {
    let max = MAX_BREADCRUMBS.load(Ordering::Relaxed);
    if max == 0 {
        return;
    }
    let _ = TRAIL.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            f(&mut t, max);
        }
    });
}

/// Records a breadcrumb whose text is written straight into the buffers of the oldest one
/// when the trail is full, so that a steady stream of records allocates nothing (the
/// `log` integration's path for every record below the capture level).
#[cfg_attr(not(feature = "log"), allow(dead_code))]
pub(crate) fn record_with(level: Level, category: &str, write_message: impl FnOnce(&mut String)) {
    with_trail(|trail, max| {
        let reused = if trail.len() >= max {
            trail.pop_front()
        } else {
            None
        };
        while trail.len() >= max {
            trail.pop_front();
        }
        let mut crumb =
            reused.unwrap_or_else(|| Breadcrumb::new(level, String::new(), String::new()));
        crumb.timestamp_us = now_us();
        crumb.level = level;
        crumb.category.clear();
        crumb.category.push_str(category);
        crumb.message.clear();
        write_message(&mut crumb.message);
        crumb.data.clear();
        copy_out(&crumb);
        trail.push_back(crumb);
    });
}

/// Takes the current thread's (or task's) breadcrumbs, oldest first, leaving none: each is
/// attached to one event. Safe in the panic hook.
pub(crate) fn take() -> Vec<Breadcrumb> {
    TRAIL
        .try_with(|t| {
            t.try_borrow_mut()
                .map(|mut t| std::mem::take(&mut *t).into())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// Exchanges the thread's trail with a task's, around each poll of the task.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn swap(trail: &mut Trail) {
    let _ = TRAIL.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            std::mem::swap(&mut *t, trail);
        }
    });
}
