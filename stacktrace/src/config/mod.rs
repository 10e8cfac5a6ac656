//! Settings, with django-stacktrace's keys and defaults, from code or from the environment.

#[cfg(feature = "forward")]
mod forward_vars;
#[cfg(feature = "mail")]
mod mail_vars;
mod secrets;
mod settings;
pub(crate) mod vars;

#[cfg(feature = "forward")]
pub(crate) use forward_vars::forward_from_vars;
#[cfg(feature = "mail")]
pub(crate) use mail_vars::mail_from_vars;
pub(crate) use secrets::secrets_of_settings;
pub use settings::Config;
pub(crate) use vars::stacktrace_vars;
#[cfg_attr(not(feature = "mail"), allow(unused_imports))]
pub(crate) use vars::strict;
