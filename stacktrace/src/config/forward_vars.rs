//! Forwarding settings from `STACKTRACE_*` environment variables.

use std::time::Duration;

use crate::error::ConfigError;
use crate::model::event::Level;
use crate::notify::forward::dsn::{hide_key, Dsn};
use crate::notify::forward::ForwardConfig;

const SECONDS: &str = "a whole number of seconds";

/// For [`install`](crate::install): turns forwarding on when `STACKTRACE_DSN` is set (and
/// not empty). `SENTRY_DSN` is not read: a program that also runs the Sentry SDK keeps
/// the two apart. A DSN that does not parse is an error naming the variable, its key
/// hidden, and forwarding stays off.
pub(crate) fn forward_from_vars(
    config: &mut crate::Config,
    errors: &mut Vec<ConfigError>,
    vars: &[(String, String)],
) {
    let Some((_, text)) = vars
        .iter()
        .find(|(k, v)| k == "STACKTRACE_DSN" && !v.trim().is_empty())
    else {
        return;
    };
    let dsn = match Dsn::parse(text) {
        Ok(dsn) => dsn,
        Err(expected) => {
            errors.push(ConfigError::InvalidVar {
                var: "STACKTRACE_DSN".into(),
                value: hide_key(text),
                expected,
            });
            return;
        }
    };
    let mut c = ForwardConfig::with_dsn(dsn);
    for (var, value) in vars {
        let bad = |expected: &'static str| ConfigError::InvalidVar {
            var: var.clone(),
            value: value.clone(),
            expected,
        };
        let secs = |v: &str| v.trim().parse::<u64>().ok().map(Duration::from_secs);
        let result = match var.as_str() {
            "STACKTRACE_ENVIRONMENT" if !value.trim().is_empty() => {
                c.environment = Some(value.trim().to_owned());
                Ok(())
            }
            "STACKTRACE_FORWARD_LEVEL" => value
                .parse::<Level>()
                .map(|l| c.min_level = l)
                .map_err(|_| bad("debug, info, warning, error or fatal")),
            "STACKTRACE_FORWARD_CONNECT_TIMEOUT" => secs(value)
                .map(|d| c.connect_timeout = d)
                .ok_or(bad(SECONDS)),
            "STACKTRACE_FORWARD_TIMEOUT" => secs(value).map(|d| c.timeout = d).ok_or(bad(SECONDS)),
            "STACKTRACE_FORWARD_GIVE_UP_AFTER" => {
                secs(value).map(|d| c.give_up_after = d).ok_or(bad(SECONDS))
            }
            "STACKTRACE_FORWARD_DRAIN_TIMEOUT" => {
                secs(value).map(|d| c.drain_timeout = d).ok_or(bad(SECONDS))
            }
            "STACKTRACE_FORWARD_ROOT_CERT" if !value.trim().is_empty() => {
                c.root_certificate = Some(value.trim().into());
                Ok(())
            }
            "STACKTRACE_FORWARD_ROOT_CERT" => Err(bad("the path of a PEM file")),
            _ => Ok(()),
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    config.forward = Some(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> (crate::Config, Vec<ConfigError>) {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut config = crate::Config::default();
        let mut errors = Vec::new();
        forward_from_vars(&mut config, &mut errors, &vars);
        (config, errors)
    }

    #[test]
    fn a_bad_dsn_is_an_error_naming_the_variable_without_its_key() {
        let (config, errors) = parse(&[("STACKTRACE_DSN", "https://sekritkey@host/notanumber")]);
        assert!(config.forward.is_none());
        let text = errors[0].to_string();
        assert!(text.contains("STACKTRACE_DSN"), "{text}");
        assert!(text.contains("host/notanumber"), "{text}");
        assert!(!text.contains("sekritkey"), "{text}");
    }

    #[test]
    fn the_variables_set_forwarding() {
        let (config, errors) = parse(&[
            ("STACKTRACE_DSN", "http://abc@127.0.0.1:9000/4"),
            ("STACKTRACE_ENVIRONMENT", "staging"),
            ("STACKTRACE_FORWARD_LEVEL", "warning"),
            ("STACKTRACE_FORWARD_TIMEOUT", "3"),
            ("STACKTRACE_FORWARD_DRAIN_TIMEOUT", "x"),
            ("SENTRY_DSN", "http://other@127.0.0.1:9001/5"),
        ]);
        let f = config.forward.unwrap();
        assert_eq!(
            f.dsn.envelope_url(),
            "http://127.0.0.1:9000/api/4/envelope/"
        );
        assert_eq!(f.environment.as_deref(), Some("staging"));
        assert_eq!(f.min_level, Level::Warning);
        assert_eq!(f.timeout, Duration::from_secs(3));
        assert_eq!(f.drain_timeout, Duration::from_secs(2));
        assert_eq!(errors.len(), 1);
        assert!(errors[0]
            .to_string()
            .contains("STACKTRACE_FORWARD_DRAIN_TIMEOUT"));
        assert!(parse(&[("SENTRY_DSN", "http://k@h/1")]).0.forward.is_none());
    }
}
