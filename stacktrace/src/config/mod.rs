//! Settings, with django-stacktrace's keys and defaults, from code or from the environment.

mod env;
mod error;
mod settings;

pub use error::ConfigError;
pub use settings::Config;
