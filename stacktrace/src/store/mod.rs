//! The embedded database: events, indexes, groups and counters in sled trees.

mod budget;
mod db;
mod event_count;
mod events;
mod functions;
mod groups;
mod index;
mod keys;
mod manifest;
mod outbox;
mod pending;
mod probe;
mod recovery;
mod releases;
mod retention;
mod spool;
mod tracking;
pub(crate) mod unnotified;

pub use budget::Trimmed;
pub(crate) use budget::{low_water, SLICE as BUDGET_SLICE};
pub(crate) use db::{InsertOutcome, DEFAULT_CACHE_BYTES};
pub use db::{Stats, Store};
pub use events::query::{Page, Query};
pub use functions::FunctionStats;
pub use groups::group::{Group, GroupOrder, GroupStatus};
pub use groups::pages::GroupPage;
pub(crate) use groups::repeats::Repeated;
pub use groups::trends::{Interval, Trend, Window};
#[cfg_attr(not(feature = "forward"), allow(unused_imports))]
pub(crate) use outbox::OutboxMarks;
#[cfg_attr(not(feature = "forward"), allow(unused_imports))]
pub use outbox::{ForwardCounts, Refusal, Unsent};
pub(crate) use recovery::move_aside;
#[cfg(any(feature = "cli", feature = "dashboard"))]
pub(crate) use recovery::{named_damage, DAMAGE_REMEDY};
pub use releases::record::{Release, ResolvedIn};
pub(crate) use releases::sessions::{claim_own, Outcome, SessionKey};
pub(crate) use spool::{merge_own as merge_own_spool, merge_own_from as merge_spool_from, Spool};
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use tracking::block::{EntryParts, Fnv, Own};
#[cfg_attr(not(feature = "http"), allow(unused_imports))]
pub(crate) use tracking::log::{OpenBlock, TrackingLog};
pub use tracking::log::{TrackedRequest, TrackingQuery};
