//! Settings, with django-stacktrace's keys and defaults, from code or from the environment.

mod env;
#[cfg(feature = "mail")]
mod mail_env;
mod secrets;
mod settings;

#[cfg(feature = "mail")]
pub(crate) use env::parse_list;
pub(crate) use env::stacktrace_vars;
#[cfg_attr(not(feature = "mail"), allow(unused_imports))]
pub(crate) use env::strict;
#[cfg(feature = "mail")]
pub(crate) use mail_env::mail_from_vars;
pub(crate) use secrets::secrets_of_settings;
pub use settings::Config;
