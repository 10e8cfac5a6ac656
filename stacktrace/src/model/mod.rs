//! The data every stage passes on: the event and its parts, drop reasons, the random
//! source of ids. Imports nothing of the crate.

pub(crate) mod breadcrumb;
pub(crate) mod drop;
pub(crate) mod event;
pub(crate) mod random;
pub(crate) mod release;
pub(crate) mod source;
pub(crate) mod time;
