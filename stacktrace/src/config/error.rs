//! What is wrong with a setting.

use std::fmt;

/// A setting has a value it cannot take.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable holds a value of the wrong kind or out of range.
    InvalidVar {
        /// The variable (`STACKTRACE_SAMPLE_RATE`).
        var: String,
        /// Its value, as found.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A setting given in code is out of range.
    InvalidSetting {
        /// The setting (`sample_rate`).
        setting: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidVar {
                var,
                value,
                expected,
            } => write!(f, "invalid {var}={value:?}: expected {expected}"),
            ConfigError::InvalidSetting {
                setting,
                value,
                expected,
            } => write!(
                f,
                "invalid setting {setting} = {value}: expected {expected}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
