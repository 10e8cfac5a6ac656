//! Notifiers: what is told to people when an event is stored.

#[cfg(feature = "forward")]
pub mod forward;
#[cfg(feature = "mail")]
pub mod mail;
