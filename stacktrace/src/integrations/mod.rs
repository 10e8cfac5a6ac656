//! Feature-gated sources of events and context: HTTP, `log`, `tracing`, tokio tasks.

/// The HTTP integration (feature `http`).
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "tracing")]
pub mod tracing;
