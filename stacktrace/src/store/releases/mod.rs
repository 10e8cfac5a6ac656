//! Releases and their sessions: each release's record (first and last seen, events, new
//! groups, sessions by outcome), groups resolved in a release, and the sessions of the
//! processes that installed the tracker.

pub(crate) mod record;
pub(crate) mod sessions;
