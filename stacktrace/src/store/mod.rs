//! The embedded database: events, indexes, groups and counters in sled trees.

mod db;
mod event_blocks;
mod event_count;
mod export;
mod group_pages;
mod groups;
mod keys;
mod manifest;
mod postings;
mod query;
mod recovery;
mod request_summary;
mod retention;
mod spool;
mod tracking;
mod tracking_block;
mod trends;

pub(crate) use db::{InsertOutcome, DEFAULT_CACHE_BYTES};
pub use db::{Stats, Store};
pub use group_pages::GroupPage;
pub use groups::{Group, GroupOrder, GroupStatus};
pub use query::{Page, Query};
pub(crate) use recovery::move_aside;
#[cfg_attr(not(feature = "dashboard"), allow(unused_imports))]
pub(crate) use request_summary::{
    duration_text, slowest_of, summaries_of, RequestSummary, SummaryKey,
};
pub(crate) use spool::Spool;
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use tracking::TrackingLog;
pub use tracking::{TrackedRequest, TrackingQuery};
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use tracking_block::{EntryParts, Fnv};
#[cfg_attr(not(feature = "dashboard"), allow(unused_imports))]
pub(crate) use trends::{days_from_civil, utc_text};
pub use trends::{Interval, Trend, Window};
