//! The `install!` forms compile in a crate that denies warnings, at the crate root and in a
//! module, and return the guard. Not run: installing is the subprocess tests' business.
#![deny(
    warnings,
    missing_docs,
    rust_2018_idioms,
    unused_qualifications,
    unreachable_pub
)]

/// The program's start-up.
pub mod startup {
    /// From the environment.
    pub fn from_env() -> stacktrace::Guard {
        stacktrace::install!()
    }

    /// From code, with a trailing comma.
    pub fn from_code() -> stacktrace::Guard {
        stacktrace::install_with!(
            stacktrace::Config::default()
                .db_path("var/errors.db")
                .in_app_include("billing")
                .in_app_exclude("billing::generated"),
        )
    }
}

fn main() {
    let _both: [fn() -> stacktrace::Guard; 2] = [startup::from_env, startup::from_code];
    let _guard = || stacktrace::install_with!(stacktrace::Config::default());
}
