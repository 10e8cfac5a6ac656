//! The tracker installed once per test program: the install is process-global, so every
//! test of a program shares one runtime, its database in a fresh directory.

use std::path::PathBuf;
use std::sync::OnceLock;

use stacktrace::{Config, Guard};

/// The program's one install.
pub struct Installed {
    pub guard: Guard,
    /// The directory holding the database (`events.db`).
    pub dir: PathBuf,
    _keep: tempfile::TempDir,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Installs the tracker once for this test program, with `config` (its database in a
/// fresh directory); a later call returns that install and ignores its `config`.
pub fn install_once(config: impl FnOnce() -> Config) -> &'static Installed {
    INSTALLED.get_or_init(|| {
        let keep = tempfile::tempdir().expect("temp dir");
        let dir = keep.path().to_path_buf();
        let guard = stacktrace::install_with(config().db_path(dir.join("events.db")));
        assert!(guard.errors().is_empty(), "{:?}", guard.errors());
        Installed {
            guard,
            dir,
            _keep: keep,
        }
    })
}

/// The install made by [`install_once`].
pub fn installed() -> &'static Installed {
    INSTALLED.get().expect("installed")
}
