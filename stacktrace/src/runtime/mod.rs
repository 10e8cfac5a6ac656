//! The process singleton: install and the guard, the sink, the panic hook, the writer.

pub(crate) mod admission;
pub(crate) mod functions;
pub(crate) mod hook;
pub(crate) mod install;
pub(crate) mod session;
pub(crate) mod writer;
