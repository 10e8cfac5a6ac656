//! The embedded database: events, indexes, groups and counters in sled trees.

mod db;
mod export;
mod groups;
mod keys;
mod query;
mod retention;
mod spool;

pub(crate) use db::InsertOutcome;
pub use db::{Stats, Store};
pub use groups::{Group, GroupOrder, GroupStatus};
pub use query::{Page, Query};
pub(crate) use spool::Spool;
