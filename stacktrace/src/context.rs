//! The runtime context of an event: program, machine and thread.

use std::collections::BTreeMap;

use crate::redact::{is_secret_name, PLACEHOLDER};

/// What does not change while the process runs, read once at install.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProcessInfo {
    pub(crate) os: String,
    pub(crate) arch: String,
    pub(crate) hostname: String,
    pub(crate) program: String,
    pub(crate) program_version: String,
    pub(crate) pid: u32,
    pub(crate) environment: BTreeMap<String, String>,
}

impl ProcessInfo {
    pub(crate) fn read(release: &str, capture_env: bool) -> Self {
        let program = std::env::args_os()
            .next()
            .map(std::path::PathBuf::from)
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let environment = if capture_env {
            environment_from(std::env::vars_os().map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            }))
        } else {
            BTreeMap::new()
        };
        ProcessInfo {
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            hostname: hostname(),
            program,
            program_version: release.to_owned(),
            pid: std::process::id(),
            environment,
        }
    }
}

/// Environment variables with secret-looking names replaced by the placeholder.
pub(crate) fn environment_from<I: IntoIterator<Item = (String, String)>>(
    vars: I,
) -> BTreeMap<String, String> {
    vars.into_iter()
        .map(|(k, v)| {
            let v = if is_secret_name(&k) {
                PLACEHOLDER.to_owned()
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

fn hostname() -> String {
    for var in ["HOSTNAME", "COMPUTERNAME"] {
        if let Ok(h) = std::env::var(var) {
            if !h.trim().is_empty() {
                return h.trim().to_owned();
            }
        }
    }
    for file in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(h) = std::fs::read_to_string(file) {
            if !h.trim().is_empty() {
                return h.trim().to_owned();
            }
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_variables_are_hidden() {
        let env = environment_from([
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "s3cr3t".to_owned()),
            ("DATABASE_PASSWORD".to_owned(), "pw".to_owned()),
            ("HOME".to_owned(), "/home/app".to_owned()),
        ]);
        assert_eq!(env["AWS_SECRET_ACCESS_KEY"], PLACEHOLDER);
        assert_eq!(env["DATABASE_PASSWORD"], PLACEHOLDER);
        assert_eq!(env["HOME"], "/home/app");
    }

    #[test]
    fn process_info_reads_release_and_skips_env_when_asked() {
        let info = ProcessInfo::read("1.2.3", false);
        assert_eq!(info.program_version, "1.2.3");
        assert_eq!(info.pid, std::process::id());
        assert!(info.environment.is_empty());
        assert!(!info.os.is_empty() && !info.arch.is_empty());
    }
}
