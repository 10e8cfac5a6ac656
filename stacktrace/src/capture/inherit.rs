//! Context inherited by a task from the code that spawned it: the chain of captured calls
//! (already formatted) and the secrets to scrub. A task spawned through [`crate::tokio`]
//! installs its inherited context around each poll, so its events carry the spawner's
//! context and never another task's.

use std::cell::RefCell;
use std::sync::Arc;

use crate::model::event::CapturedCall;

/// What a spawned task inherits.
#[derive(Debug, Default)]
pub(crate) struct Inherited {
    pub(crate) calls: Vec<CapturedCall>,
    pub(crate) secrets: Vec<String>,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Inherited>>> = const { RefCell::new(None) };
}

/// The inherited context active on this thread now (the task being polled), plus the
/// captured calls active around the spawn point: what a task spawned here inherits.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn capture_here() -> Arc<Inherited> {
    let mut calls = Vec::new();
    let mut secrets = Vec::new();
    if let Some(parent) = current() {
        calls.extend(parent.calls.iter().cloned());
        secrets.extend(parent.secrets.iter().cloned());
    }
    let snap = crate::capture::chain::snapshot();
    calls.extend(snap.calls);
    secrets.extend(snap.secrets);
    Arc::new(Inherited { calls, secrets })
}

/// The inherited context of the task being polled on this thread. Safe in the panic hook.
pub(crate) fn current() -> Option<Arc<Inherited>> {
    CURRENT
        .try_with(|c| c.try_borrow().ok().and_then(|c| c.clone()))
        .ok()
        .flatten()
}

/// Makes `ctx` current until the returned guard drops (which restores the previous one).
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn enter(ctx: Arc<Inherited>) -> EnterGuard {
    let previous = CURRENT
        .try_with(|c| c.try_borrow_mut().ok().map(|mut c| c.replace(ctx)))
        .ok()
        .flatten()
        .flatten();
    EnterGuard { previous }
}

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) struct EnterGuard {
    previous: Option<Arc<Inherited>>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                *c = previous;
            }
        });
    }
}
