//! Tokio tasks that carry the context of the code that spawned them (feature `tokio`).
//!
//! A task spawned with [`spawn`] or [`spawn_blocking`] inherits the chain of captured calls
//! active where it was spawned (with their sensitive values, still scrubbed), and keeps its
//! own breadcrumbs. A panic in it is stored with that context, and with no other task's:
//! the context is installed around each poll of the task only. A task spawned with
//! `tokio::spawn` directly carries only its own context.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let handle = stacktrace::tokio::spawn(async { 6 * 7 });
//! assert_eq!(handle.await.unwrap(), 42);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::capture::breadcrumbs::{self, Trail};
use crate::capture::inherit::{self, Inherited};

/// A future run with the context captured where it was created. Made by [`with_context`].
#[must_use = "futures do nothing unless polled"]
pub struct WithContext<F> {
    inner: Pin<Box<F>>,
    context: Arc<Inherited>,
    trail: Trail,
}

impl<F> std::fmt::Debug for WithContext<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithContext")
            .field("inherited_calls", &self.context.calls.len())
            .finish_non_exhaustive()
    }
}

/// Wraps a future so that it runs with the context active here, for spawners other than
/// tokio's.
pub fn with_context<F: Future>(future: F) -> WithContext<F> {
    WithContext {
        inner: Box::pin(future),
        context: inherit::capture_here(),
        trail: Trail::new(),
    }
}

/// Puts the task's breadcrumbs back when a poll ends, by return or by unwinding.
struct TrailSwap<'a>(&'a mut Trail);

impl Drop for TrailSwap<'_> {
    fn drop(&mut self) {
        breadcrumbs::swap(self.0);
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Every field is Unpin (the inner future is boxed).
        let this = self.get_mut();
        let _context = inherit::enter(this.context.clone());
        breadcrumbs::swap(&mut this.trail);
        let _swap_back = TrailSwap(&mut this.trail);
        this.inner.as_mut().poll(cx)
    }
}

/// `tokio::spawn`, with the spawning context inherited by the task.
pub fn spawn<F>(future: F) -> ::tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    ::tokio::spawn(with_context(future))
}

/// `tokio::task::spawn_blocking`, with the spawning context inherited by the closure.
pub fn spawn_blocking<F, R>(f: F) -> ::tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let context = inherit::capture_here();
    ::tokio::task::spawn_blocking(move || {
        let _context = inherit::enter(context);
        let mut trail = Trail::new();
        breadcrumbs::swap(&mut trail);
        let _swap_back = TrailSwap(&mut trail);
        f()
    })
}
