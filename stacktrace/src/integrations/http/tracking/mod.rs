//! Request tracking: every request with its status and execution time, built and written by
//! the background worker behind a bounded queue, so the request never waits on the database
//! and a burst that outruns the worker drops entries (counted by reason) rather than memory. Entries are stored many to a block (see the store's tracking tree).

mod entry;
mod queue;
mod settings;
#[cfg(test)]
mod tests;

pub(crate) use queue::Tracker;
pub use queue::{flush_tracking, tracking_counts, tracking_dropped, TrackingCounts};
pub use settings::Tracking;
pub(crate) use settings::{regex_setting, Plan};
