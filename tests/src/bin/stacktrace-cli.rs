//! The `stacktrace` command-line tool, built inside the test package so that the tests can
//! run it as a program (`CARGO_BIN_EXE_stacktrace-cli`).

fn main() -> std::process::ExitCode {
    stacktrace::run_cli(std::env::args_os())
}
