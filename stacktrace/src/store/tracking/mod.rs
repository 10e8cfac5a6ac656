//! Tracked requests: the log, and its blocks and codec.

pub(crate) mod block;
pub(crate) mod log;
