//! What runs on the calling thread: the `#[capture]` call chain, the context a task
//! inherits, breadcrumbs, the pending event and its unresolved trace.

pub(crate) mod breadcrumbs;
pub(crate) mod calls;
pub(crate) mod chain;
pub(crate) mod function_error;
pub(crate) mod guarded;
pub(crate) mod inherit;
pub(crate) mod pending;
pub(crate) mod trace;
pub(crate) mod user_hook;
