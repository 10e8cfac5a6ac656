//! The process singleton: install and the guard, the sink, the panic hook, the writer, and
//! the background worker that the writer and request tracking share.

pub(crate) mod admission;
pub(crate) mod budget;
pub(crate) mod fork;
pub(crate) mod functions;
pub(crate) mod guard;
pub(crate) mod hook;
pub(crate) mod install;
pub(crate) mod repeats;
pub(crate) mod session;
pub(crate) mod worker;
pub(crate) mod writer;
