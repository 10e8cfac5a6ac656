//! Runtime support of the attribute macros (placeholder).
