//! The embedded database: events, indexes, groups and counters in sled trees.

mod db;
mod events;
mod groups;
mod index;
mod keys;
mod manifest;
mod outbox;
mod recovery;
mod retention;
mod spool;
mod tracking;

pub(crate) use db::{InsertOutcome, DEFAULT_CACHE_BYTES};
pub use db::{Stats, Store};
#[cfg_attr(not(feature = "forward"), allow(unused_imports))]
pub(crate) use events::export::rfc3339;
pub use events::query::{Page, Query};
pub use groups::group::{Group, GroupOrder, GroupStatus};
pub use groups::pages::GroupPage;
#[cfg(all(test, feature = "forward"))]
pub(crate) use groups::trends::civil_from_days;
#[cfg_attr(
    not(any(feature = "dashboard", feature = "forward")),
    allow(unused_imports)
)]
pub(crate) use groups::trends::days_from_civil;
#[cfg_attr(not(feature = "dashboard"), allow(unused_imports))]
pub(crate) use groups::trends::utc_text;
pub use groups::trends::{Interval, Trend, Window};
#[cfg_attr(not(feature = "forward"), allow(unused_imports))]
pub(crate) use outbox::OutboxMarks;
#[cfg_attr(not(feature = "forward"), allow(unused_imports))]
pub use outbox::{ForwardCounts, Refusal, Unsent};
pub(crate) use recovery::move_aside;
pub(crate) use spool::Spool;
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use tracking::block::{EntryParts, Fnv};
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use tracking::log::TrackingLog;
pub use tracking::log::{TrackedRequest, TrackingQuery};
#[cfg_attr(not(feature = "dashboard"), allow(unused_imports))]
pub(crate) use tracking::summary::{
    duration_text, slowest_of, summaries_of, RequestSummary, SummaryKey,
};
