//! Attribute macros of the stacktrace crate.
