//! Tracked requests: the log, its blocks and codec, summaries.

pub(crate) mod block;
pub(crate) mod log;
pub(crate) mod summary;
