//! Raw addresses to readable frames: symbols, trimming, in-app marks, module files.

pub(crate) mod frames;
pub(crate) mod in_app;
pub(crate) mod modules;
pub(crate) mod source;
