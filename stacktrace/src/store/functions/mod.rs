//! Calls and failures of each `#[capture]` function, by release: the counts the writer sums
//! from the calling threads, and the last failure and the groups of its stored events.

mod stats;

pub use stats::FunctionStats;
