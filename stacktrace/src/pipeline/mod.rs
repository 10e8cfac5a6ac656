//! From a pending event to the event stored: resolve, redact, gate, fingerprint.

pub(crate) mod build;
#[cfg(feature = "http")]
pub(crate) mod cut;
pub(crate) mod filter;
pub(crate) mod fingerprint;
pub(crate) mod gate;
pub(crate) mod process;
pub(crate) mod redact;
pub(crate) mod resolve;
