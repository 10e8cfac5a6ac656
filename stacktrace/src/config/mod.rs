//! Settings, with django-stacktrace's keys and defaults, from code or from the environment.

mod env;
mod error;
mod settings;

#[cfg(feature = "mail")]
pub(crate) use env::parse_list;
pub(crate) use env::stacktrace_vars;
pub use error::ConfigError;
pub use settings::Config;
