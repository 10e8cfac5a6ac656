//! Helpers shared by the integration tests, one folder for all of them: each test file
//! declares `mod support;` and uses the parts it needs.
//!
//! - [`abort`]: the scenario program built with `panic = "abort"`;
//! - [`crash`]: the crash scenario program, run to its end or killed once ready;
//! - [`browser`]: a headless chromium driven through chromedriver, with screenshots;
//! - [`scenario`]: scenario programs run with a time limit, fresh database directories;
//! - [`install`]: the tracker installed once per test program (the install is process-global);
//! - [`http`]: an axum app served on 127.0.0.1 and a real HTTP client with time limits;
//! - [`cli`]: databases for the command-line and dashboard tests, the tool run as a program;
//! - [`mail`]: an SMTP server on 127.0.0.1, with the test-only TLS certificates of `mail/tls/`;
//! - [`sink`]: a Sentry-compatible server on 127.0.0.1 that takes and keeps every envelope.

// Every test program compiles all of this module and uses only a part of it.
#![allow(dead_code)]

pub mod abort;
pub mod browser;
pub mod cli;
#[cfg(target_os = "linux")]
pub mod crash;
pub mod http;
pub mod install;
pub mod mail;
pub mod scenario;
pub mod sink;
