//! Events: the blocks they are stored in, queries over them, exports.

pub(crate) mod blocks;
pub(crate) mod export;
pub(crate) mod query;
