//! The `stacktrace` command-line tool; see `stacktrace --help` for its commands and exit
//! codes.

fn main() -> std::process::ExitCode {
    stacktrace::run_cli(std::env::args_os())
}
