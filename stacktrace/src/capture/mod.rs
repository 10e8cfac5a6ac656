//! What runs on the calling thread: the `#[capture]` call chain, the context a task
//! inherits, breadcrumbs.

pub(crate) mod breadcrumbs;
pub(crate) mod chain;
pub(crate) mod inherit;
