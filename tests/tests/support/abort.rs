//! The scenario program built with `panic = "abort"`, shared by the test programs that run
//! it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::scenario::run_with_limit;

/// Builds the scenario program with `panic = "abort"` in a target directory of its own (the
/// panic strategy is chosen per build, not per crate) and returns its path. The build has
/// line tables only, the least debug info a release profile commonly keeps, in which
/// functions carry bare names. Test programs that call it at once wait on cargo's lock, and
/// the later ones find the build done.
pub fn abort_build() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target").join("abort-scenario");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--offline",
            "-p",
            "stacktrace-tests",
            "--bin",
            "scenario",
        ])
        .args(["--config", "profile.dev.panic=\"abort\""])
        .args(["--config", "profile.dev.debug=\"line-tables-only\""])
        .env("CARGO_TARGET_DIR", &target);
    let run = run_with_limit(cmd, Duration::from_secs(900));
    assert_eq!(run.code, Some(0), "abort build failed: {}", run.stderr);
    target
        .join("debug")
        .join(format!("scenario{}", std::env::consts::EXE_SUFFIX))
}
