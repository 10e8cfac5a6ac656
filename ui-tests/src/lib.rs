//! Compile-pass and compile-fail tests of the attribute macros live in `tests/`.
