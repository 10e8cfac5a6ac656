//! The postings that find events by field without a scan.

pub(crate) mod postings;
