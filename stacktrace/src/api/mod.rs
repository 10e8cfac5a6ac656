//! What users call to store an event: `capture_error`, `capture_message`, `Report`.

pub(crate) mod capture;
pub(crate) mod report;
