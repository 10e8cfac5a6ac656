//! Forwarding to a Sentry-compatible server (feature `forward`): the database is the
//! outbox, a thread sends its events one envelope each, oldest first, and keeps each one
//! until the server took it. See [`ForwardConfig`](crate::forward::ForwardConfig).

mod backfill;
mod config;
pub(crate) mod dsn;
mod envelope;
mod event;
mod forwarder;
mod limits;
mod resolve;
mod send;

pub use crate::store::{ForwardCounts, Refusal, Unsent};
pub use backfill::{backfill, backfill_candidates};
pub use config::ForwardConfig;
pub(crate) use forwarder::Forwarder;
#[cfg(test)]
mod tests;
