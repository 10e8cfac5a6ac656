//! Settings from `STACKTRACE_*` variables, and the checks of settings given in code.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::Config;
use crate::error::{ConfigError, POSITIVE};

const BOOL: &str = "true or false (also 1/0, yes/no, on/off)";
const RATE: &str = "a number from 0.0 to 1.0";
const COUNT: &str = "a whole number from 0";
const LEVEL_OR_OFF: &str = "debug, info, warning, error, fatal or off";
const PATHS: &str = "crate or module paths (`app`, `app::billing`), comma-separated";

/// Whether `prefix` is a crate or module path: identifiers joined by `::`, a trailing `::`
/// allowed.
fn is_path_prefix(prefix: &str) -> bool {
    let prefix = prefix.strip_suffix("::").unwrap_or(prefix);
    !prefix.is_empty()
        && prefix.split("::").all(|segment| {
            !segment.is_empty()
                && !segment.starts_with(|c: char| c.is_ascii_digit())
                && segment.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// The settings of a lenient parse, or its first error.
pub(crate) fn strict<T>((parsed, errors): (T, Vec<ConfigError>)) -> Result<T, ConfigError> {
    match errors.into_iter().next() {
        None => Ok(parsed),
        Some(first) => Err(first),
    }
}

// The value parsers, shared by `Config` and `MailConfig`: each kind of value is read one way.

/// A whole number, surrounding blanks ignored.
pub(crate) fn parse_count<T: FromStr>(s: &str) -> Option<T> {
    s.trim().parse().ok()
}

/// A whole number other than 0, surrounding blanks ignored.
pub(crate) fn parse_positive<T: FromStr + PartialEq + Default>(s: &str) -> Option<T> {
    parse_count(s).filter(|n| *n != T::default())
}

/// A whole number of seconds.
#[cfg_attr(not(feature = "mail"), allow(dead_code))]
pub(crate) fn parse_seconds(s: &str) -> Option<Duration> {
    parse_count(s).map(Duration::from_secs)
}

/// The value trimmed, unless nothing is left.
pub(crate) fn parse_non_empty(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_rate(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
}

fn parse_lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `STACKTRACE_*` variables of the process environment (values read lossily).
pub(crate) fn stacktrace_vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| {
        let k = k.into_string().ok()?;
        k.starts_with("STACKTRACE_")
            .then(|| (k, v.to_string_lossy().into_owned()))
    })
}

/// A comma-separated list, items trimmed, empty items dropped.
/// A comma-separated list of names (empty items skipped): `None` when it holds no name,
/// which would otherwise be read silently as nothing to add.
fn parse_names(s: &str) -> Option<Vec<String>> {
    let names = parse_list(s);
    (!names.is_empty()).then_some(names)
}

const NAMES: &str = "comma-separated names, at least one (added to the built-in names)";

pub(crate) fn parse_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

impl Config {
    /// The defaults, overridden by the `STACKTRACE_*` environment variables that are set.
    ///
    /// The first bad value is an error naming the variable and the value:
    ///
    /// ```
    /// let err = stacktrace::Config::from_vars([("STACKTRACE_SAMPLE_RATE", "1.5")]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"invalid STACKTRACE_SAMPLE_RATE="1.5": expected a number from 0.0 to 1.0"#
    /// );
    /// ```
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_vars(stacktrace_vars())
    }

    /// Like [`Config::from_env`], over the given variables instead of the process
    /// environment.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        strict(Self::from_vars_lenient(vars))
    }

    /// Every variable that parses is applied; each bad one is reported and its default kept.
    pub(crate) fn from_vars_lenient<I, K, V>(vars: I) -> (Config, Vec<ConfigError>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut c = Config::default();
        let mut errors = Vec::new();
        for (k, v) in vars {
            let (var, value) = (k.as_ref(), v.as_ref());
            let bad = |expected| ConfigError::InvalidVar {
                var: var.to_owned(),
                value: value.to_owned(),
                expected,
            };
            let result = match var {
                "STACKTRACE_ENABLED" => parse_bool(value).map(|b| c.enabled = b).ok_or(bad(BOOL)),
                "STACKTRACE_SAMPLE_RATE" => parse_rate(value)
                    .map(|r| c.sample_rate = r)
                    .ok_or(bad(RATE)),
                "STACKTRACE_RATE_LIMIT" => parse_count(value)
                    .map(|n| c.rate_limit = n)
                    .ok_or(bad(COUNT)),
                "STACKTRACE_CAPTURE_HEADERS" => parse_bool(value)
                    .map(|b| c.capture_headers = b)
                    .ok_or(bad(BOOL)),
                "STACKTRACE_CAPTURE_BODY" => parse_bool(value)
                    .map(|b| c.capture_body = b)
                    .ok_or(bad(BOOL)),
                "STACKTRACE_CAPTURE_ENV" => parse_bool(value)
                    .map(|b| c.capture_env = b)
                    .ok_or(bad(BOOL)),
                "STACKTRACE_SOURCE_CONTEXT" => parse_bool(value)
                    .map(|b| c.source_context = b)
                    .ok_or(bad(BOOL)),
                "STACKTRACE_CRASH_HANDLER" => parse_bool(value)
                    .map(|b| c.crash_handler = b)
                    .ok_or(bad(BOOL)),
                "STACKTRACE_UNCLEAN_EXIT_LEVEL" => match value.trim() {
                    "off" | "none" => {
                        c.unclean_exit_level = None;
                        Ok(())
                    }
                    v => v
                        .parse()
                        .map(|l| c.unclean_exit_level = Some(l))
                        .map_err(|_| bad(LEVEL_OR_OFF)),
                },
                "STACKTRACE_MAX_PAYLOAD_BYTES" => parse_count(value)
                    .map(|n| c.max_payload_bytes = n)
                    .ok_or(bad(COUNT)),
                "STACKTRACE_QUEUE_CAPACITY" => parse_positive(value)
                    .map(|n| c.queue_capacity = n)
                    .ok_or(bad(POSITIVE)),
                "STACKTRACE_EXIT_FLUSH_MS" => parse_count(value)
                    .map(|ms| c.exit_flush_timeout = Duration::from_millis(ms))
                    .ok_or(bad(COUNT)),
                "STACKTRACE_SYMBOLS_IDLE_MS" => parse_count(value)
                    .map(|ms| c.symbols_idle = Duration::from_millis(ms))
                    .ok_or(bad(COUNT)),
                "STACKTRACE_CACHE_BYTES" => parse_positive(value)
                    .map(|n| c.cache_bytes = n)
                    .ok_or(bad(POSITIVE)),
                "STACKTRACE_SPOOL_MAX_BYTES" => parse_positive(value)
                    .map(|n| c.spool_max_bytes = n)
                    .ok_or(bad(POSITIVE)),
                "STACKTRACE_DISK_BUDGET_BYTES" => parse_count(value)
                    .map(|n| c.disk_budget_bytes = n)
                    .ok_or(bad(COUNT)),
                "STACKTRACE_REDACT_FIELDS" => parse_names(value)
                    .map(|names| c.redact_fields.extend(names))
                    .ok_or(bad(NAMES)),
                "STACKTRACE_REDACT_HEADERS" => parse_names(value)
                    .map(|names| c.redact_headers.extend(names))
                    .ok_or(bad(NAMES)),
                "STACKTRACE_USER_FIELD" => {
                    c.user_field = value.trim().to_owned();
                    Ok(())
                }
                "STACKTRACE_DB" => parse_non_empty(value)
                    .map(|_| c.db_path = PathBuf::from(value))
                    .ok_or(bad("a path")),
                "STACKTRACE_MAX_BREADCRUMBS" => parse_count(value)
                    .map(|n| c.max_breadcrumbs = n)
                    .ok_or(bad(COUNT)),
                "STACKTRACE_RATE_LIMIT_PER_USER" => parse_count(value)
                    .map(|n| c.rate_limit_per_user = n)
                    .ok_or(bad(COUNT)),
                "STACKTRACE_RATE_LIMIT_PER_CLIENT" => parse_count(value)
                    .map(|n| c.rate_limit_per_client = n)
                    .ok_or(bad(COUNT)),
                "STACKTRACE_IGNORE_ERROR_TYPES" => {
                    c.ignore_error_types = parse_list(value);
                    Ok(())
                }
                "STACKTRACE_IGNORE_PATHS" | "STACKTRACE_IGNORE_MESSAGES" => {
                    let patterns = parse_lines(value);
                    match patterns.iter().find(|p| regex::Regex::new(p).is_err()) {
                        Some(_) => Err(bad("regular expressions, one a line")),
                        None => {
                            if var == "STACKTRACE_IGNORE_PATHS" {
                                c.ignore_paths = patterns;
                            } else {
                                c.ignore_messages = patterns;
                            }
                            Ok(())
                        }
                    }
                }
                "STACKTRACE_IN_APP_INCLUDE" | "STACKTRACE_IN_APP_EXCLUDE" => {
                    let paths = parse_list(value);
                    if paths.iter().all(|p| is_path_prefix(p)) {
                        if var == "STACKTRACE_IN_APP_INCLUDE" {
                            c.in_app_include = paths;
                        } else {
                            c.in_app_exclude = paths;
                        }
                        Ok(())
                    } else {
                        Err(bad(PATHS))
                    }
                }
                "STACKTRACE_RELEASE" => {
                    // Set but empty: no release, as when unset.
                    if value.trim().is_empty() {
                        c.release.clear();
                        Ok(())
                    } else if crate::model::release::is_valid(value) {
                        c.release = value.trim().to_owned();
                        Ok(())
                    } else {
                        Err(ConfigError::InvalidVar {
                            var: var.to_owned(),
                            value: crate::model::release::cut(value),
                            expected: crate::model::release::EXPECTED,
                        })
                    }
                }
                // Variables of integrations are read by them.
                _ => Ok(()),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        (c, errors)
    }

    /// Checks settings given in code. Each bad one is reported and reset to its default.
    pub(crate) fn validated(mut self) -> (Config, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let d = Config::default();
        if !(0.0..=1.0).contains(&self.sample_rate) {
            errors.push(ConfigError::InvalidSetting {
                setting: "sample_rate",
                value: self.sample_rate.to_string(),
                expected: RATE,
            });
            self.sample_rate = d.sample_rate;
        }
        if self.queue_capacity == 0 {
            errors.push(ConfigError::InvalidSetting {
                setting: "queue_capacity",
                value: "0".into(),
                expected: POSITIVE,
            });
            self.queue_capacity = d.queue_capacity;
        }
        if self.cache_bytes == 0 {
            errors.push(ConfigError::InvalidSetting {
                setting: "cache_bytes",
                value: "0".into(),
                expected: POSITIVE,
            });
            self.cache_bytes = d.cache_bytes;
        }
        if self.spool_max_bytes == 0 {
            errors.push(ConfigError::InvalidSetting {
                setting: "spool_max_bytes",
                value: "0".into(),
                expected: POSITIVE,
            });
            self.spool_max_bytes = d.spool_max_bytes;
        }
        // Empty is no release; anything else must be a name the store and the tool can show.
        if !self.release.is_empty() {
            if crate::model::release::is_valid(&self.release) {
                self.release = self.release.trim().to_owned();
            } else {
                errors.push(ConfigError::InvalidSetting {
                    setting: "release",
                    value: format!("{:?}", crate::model::release::cut(&self.release)),
                    expected: crate::model::release::EXPECTED,
                });
                self.release = d.release.clone();
            }
        }
        if self.db_path.as_os_str().is_empty() {
            errors.push(ConfigError::InvalidSetting {
                setting: "db_path",
                value: "\"\"".into(),
                expected: "a path",
            });
            self.db_path = d.db_path;
        }
        for (setting, names) in [
            ("redact_fields", &mut self.redact_fields),
            ("redact_headers", &mut self.redact_headers),
            ("allow_field", &mut self.allowed_fields),
        ] {
            names.retain(|n| {
                let good = n.chars().any(char::is_alphanumeric);
                if !good {
                    errors.push(ConfigError::InvalidSetting {
                        setting,
                        value: format!("{n:?}"),
                        expected: "a name with a letter or digit",
                    });
                }
                good
            });
        }
        for (setting, paths) in [
            ("in_app_include", &mut self.in_app_include),
            ("in_app_exclude", &mut self.in_app_exclude),
        ] {
            paths.retain(|p| {
                let good = is_path_prefix(p.trim());
                if !good {
                    errors.push(ConfigError::InvalidSetting {
                        setting,
                        value: format!("{p:?}"),
                        expected: "a crate or module path (`app`, `app::billing`)",
                    });
                }
                good
            });
        }
        (self, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_settings_read_their_variables_and_name_a_bad_level() {
        let c = Config::default();
        assert!(c.crash_handler);
        assert_eq!(
            c.unclean_exit_level,
            Some(crate::model::event::Level::Warning)
        );
        let c = Config::from_vars([
            ("STACKTRACE_CRASH_HANDLER", "off"),
            ("STACKTRACE_UNCLEAN_EXIT_LEVEL", "off"),
        ])
        .unwrap();
        assert!(!c.crash_handler);
        assert_eq!(c.unclean_exit_level, None);
        let c = Config::from_vars([("STACKTRACE_UNCLEAN_EXIT_LEVEL", "error")]).unwrap();
        assert_eq!(
            c.unclean_exit_level,
            Some(crate::model::event::Level::Error)
        );
        let err = Config::from_vars([("STACKTRACE_UNCLEAN_EXIT_LEVEL", "loud")]).unwrap_err();
        assert!(err.to_string().contains("\"loud\""), "{err}");
    }

    #[test]
    fn env_values_apply() {
        let c = Config::from_vars([
            ("STACKTRACE_ENABLED", "off"),
            ("STACKTRACE_SAMPLE_RATE", "0.25"),
            ("STACKTRACE_RATE_LIMIT", "5"),
            ("STACKTRACE_DB", "x/y.db"),
            ("STACKTRACE_CACHE_BYTES", "4194304"),
            ("STACKTRACE_SPOOL_MAX_BYTES", "1048576"),
            ("STACKTRACE_DISK_BUDGET_BYTES", "2097152"),
            ("STACKTRACE_REDACT_FIELDS", "pin, ssn,,"),
            ("STACKTRACE_EXIT_FLUSH_MS", "250"),
            ("PATH", "/bin"),
        ])
        .unwrap();
        assert!(!c.enabled);
        assert_eq!(c.sample_rate, 0.25);
        assert_eq!(c.rate_limit, 5);
        assert_eq!(c.db_path, PathBuf::from("x/y.db"));
        assert_eq!(c.cache_bytes, 4 << 20);
        assert_eq!(c.spool_max_bytes, 1 << 20);
        assert_eq!(c.disk_budget_bytes, 2 << 20);
        assert_eq!(Config::default().disk_budget_bytes, 512 << 20);
        let none = Config::from_vars([("STACKTRACE_DISK_BUDGET_BYTES", "0")]).unwrap();
        assert_eq!(none.disk_budget_bytes, 0);
        assert_eq!(c.redact_fields, ["pin", "ssn"]);
        assert_eq!(c.exit_flush_timeout, std::time::Duration::from_millis(250));
    }

    #[test]
    fn bad_env_values_name_variable_and_value_and_keep_defaults() {
        for (var, value) in [
            ("STACKTRACE_SAMPLE_RATE", "1.5"),
            ("STACKTRACE_SAMPLE_RATE", "abc"),
            ("STACKTRACE_SAMPLE_RATE", "NaN"),
            ("STACKTRACE_RATE_LIMIT", "-1"),
            ("STACKTRACE_ENABLED", "maybe"),
            ("STACKTRACE_QUEUE_CAPACITY", "0"),
            ("STACKTRACE_EXIT_FLUSH_MS", "2s"),
            ("STACKTRACE_CACHE_BYTES", "0"),
            ("STACKTRACE_CACHE_BYTES", "32MB"),
            ("STACKTRACE_DB", " "),
            // Regression: an empty list was read as no name at all, silently.
            ("STACKTRACE_REDACT_FIELDS", ""),
            ("STACKTRACE_REDACT_FIELDS", ",,"),
            ("STACKTRACE_REDACT_HEADERS", " , "),
        ] {
            let (c, errors) = Config::from_vars_lenient([(var, value)]);
            assert_eq!(c, Config::default(), "{var}={value}");
            assert_eq!(errors.len(), 1);
            let text = errors[0].to_string();
            assert!(text.contains(var) && text.contains(value), "{text}");
        }
    }

    #[test]
    fn in_app_paths_come_from_comma_separated_variables() {
        let c = Config::from_vars([
            ("STACKTRACE_IN_APP_INCLUDE", "billing, shop::core::,,"),
            ("STACKTRACE_IN_APP_EXCLUDE", "shop::generated"),
        ])
        .unwrap();
        assert_eq!(c.in_app_include, ["billing", "shop::core::"]);
        assert_eq!(c.in_app_exclude, ["shop::generated"]);

        for value in [
            "<shop::X as core::fmt::Debug>",
            "shop:::x",
            "9lives",
            "a b",
            "::",
        ] {
            let (c, errors) = Config::from_vars_lenient([("STACKTRACE_IN_APP_EXCLUDE", value)]);
            assert_eq!(c.in_app_exclude, Vec::<String>::new(), "{value}");
            assert!(errors[0].to_string().contains(value), "{errors:?}");
        }
        let (c, errors) = Config::default()
            .in_app_include("billing")
            .in_app_include("bill ing")
            .validated();
        assert_eq!(c.in_app_include, ["billing"]);
        assert!(
            errors[0].to_string().contains("in_app_include"),
            "{errors:?}"
        );
    }

    // Regression: the settings' lists replaced the built-in ones, so adding `ssn` showed
    // `password` and adding one header showed `Authorization` and `Cookie`.
    #[test]
    fn redaction_lists_add_to_the_built_in_names() {
        let c = Config::from_vars([
            ("STACKTRACE_REDACT_FIELDS", "ssn"),
            ("STACKTRACE_REDACT_HEADERS", "x-internal"),
        ])
        .unwrap();
        let c = c.redact_fields(["pin_code"]);
        assert_eq!(c.redact_fields, ["ssn", "pin_code"]);
        assert_eq!(c.redact_headers, ["x-internal"]);
        let names = crate::pipeline::redact::fields::FieldRedactor::with_allowed(
            &c.redact_fields,
            &c.allowed_fields,
        );
        assert!(names.matches("user_ssn") && names.matches("pinCode"));
        assert!(names.matches("password") && names.matches("Authorization"));
        assert!(names.matches("cookie") && !names.matches("username"));

        let (c, errors) = Config::default()
            .redact_field("")
            .redact_headers(["x-a", " "])
            .allow_field("-")
            .validated();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(c.redact_fields.is_empty() && c.allowed_fields.is_empty());
        assert_eq!(c.redact_headers, ["x-a"]);
        assert!(
            errors[0].to_string().contains("redact_fields"),
            "{errors:?}"
        );
    }

    #[test]
    fn bad_code_settings_are_reset_and_reported() {
        let (c, errors) = Config::default()
            .sample_rate(2.0)
            .queue_capacity(0)
            .validated();
        assert_eq!(c.sample_rate, 1.0);
        assert_eq!(c.queue_capacity, 1024);
        assert_eq!(errors.len(), 2);
        assert!(errors[0].to_string().contains("sample_rate = 2"));
    }
}
