//! The data every stage passes on: the event and its parts. Imports nothing of the crate.

pub(crate) mod event;
