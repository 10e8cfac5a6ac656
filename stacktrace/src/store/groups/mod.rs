//! Groups of events by fingerprint: their records, pages of them, trends.

pub(crate) mod group;
pub(crate) mod pages;
pub(crate) mod repeats;
pub(crate) mod trends;
