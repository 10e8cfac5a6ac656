//! Helpers of the mail tests.

pub mod smtp;
