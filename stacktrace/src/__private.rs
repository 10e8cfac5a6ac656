//! What the attribute macros expand to. Not a public API: names and signatures change
//! without notice.
//!
//! Which formatting an argument or an error gets is chosen at the expansion site by autoref
//! specialisation: the generated code calls a method on `&&&Wrapper(value)`, and method
//! resolution picks the impl with the most references whose bounds hold (`Debug + Sync +
//! RefUnwindSafe`, kept by reference, before `Debug`, formatted at entry, before none, shown
//! as the type name). In a generic function the bounds are those the function
//! declares, so a `T` without a `Debug` bound is shown as its type name.

use std::error::Error as StdError;
use std::fmt::{Debug, Display};
use std::panic::RefUnwindSafe;

pub use crate::capture::calls::CallSlot;
pub use crate::capture::chain::{call, ArgMeta, ArgValue, ErrorParts, Frame, Instrumented, Site};
use crate::capture::guarded::{debug_text, display_text, guarded};
pub use crate::model::event::Level;

/// The program that installs the tracker, as the `install!` macros record it where they
/// are called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppInfo {
    /// `module_path!()` at the call: its first segment is the calling crate.
    pub module: &'static str,
    /// `CARGO_PKG_NAME`, when cargo built the program.
    pub package: Option<&'static str>,
    /// `CARGO_PKG_VERSION`, when cargo built the program.
    pub version: Option<&'static str>,
}

/// What `install!()` and `install_with!(config)` expand to: [`install`](crate::install()) or
/// [`install_with`](crate::install_with()), knowing the app.
pub fn install_for_app(app: AppInfo, config: Option<crate::Config>) -> crate::Guard {
    crate::runtime::install::install_for_app(app, config)
}

/// The path of the function enclosing `__stacktrace_path`, from that item's type name
/// (an item inside an `async fn` is named as inside its `{{closure}}`).
pub fn path_of<F>(_: F) -> &'static str {
    let name = std::any::type_name::<F>();
    let mut path = name.strip_suffix("::__stacktrace_path").unwrap_or(name);
    while let Some(outer) = path.strip_suffix("::{{closure}}") {
        path = outer;
    }
    path
}

/// `std::any::type_name` of a value's type.
pub fn type_name_of<E: ?Sized>(_: &E) -> &'static str {
    std::any::type_name::<E>()
}

/// Whether an `Err` is worth describing: the runtime is installed.
#[inline]
pub fn wants_errors() -> bool {
    crate::runtime::install::runtime().is_some()
}

/// Counts a call of a counted function; before its arguments are taken, so that the
/// first call's slow path never runs while they are alive.
#[inline]
pub fn count_call(site: &'static Site) {
    crate::capture::calls::count_call(site);
}

/// Counts a failure of a counted function: it returned an `Err`.
#[cold]
pub fn count_failure(site: &'static Site) {
    crate::capture::calls::count_failure(site);
}

/// Stores (or records for the outer calls) an `Err` that `frame`'s body returned.
#[cold]
pub fn report(frame: &Frame<'_>, error: ErrorParts) {
    crate::capture::chain::report_error(frame, error);
}

/// A shared-reference argument, kept as it is when its target is `Debug + Sync`.
#[derive(Debug)]
pub struct View<T>(pub T);

/// An argument formatted at entry.
#[derive(Debug)]
pub struct Eager<'b, T: ?Sized>(pub &'b T);

/// A sensitive shared-reference argument.
#[derive(Debug)]
pub struct SecretView<T>(pub T);

/// A sensitive argument formatted at entry.
#[derive(Debug)]
pub struct SecretEager<'b, T: ?Sized>(pub &'b T);

/// The value a captured function returned, to find an `Err` in.
#[derive(Debug)]
pub struct ResultProbe<'r, R>(pub &'r R);

/// An error returned by a captured function.
#[derive(Debug)]
pub struct ErrorView<'e, E: ?Sized>(pub &'e E);

/// The "error" of a return type that is not a `Result`; never produced.
#[derive(Debug)]
pub struct NotAnError;

impl Display for NotAnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an error")
    }
}

impl StdError for NotAnError {}

/// An error's source chain, or a placeholder naming the panic that listing it raised.
fn sources_guarded(list: impl FnOnce() -> Vec<String>) -> Vec<String> {
    guarded(list, |why| {
        vec![format!("<Display of error source panicked: {why}>")]
    })
}

/// The specialisation traits, glob-imported by the generated code.
pub mod spec {
    use super::*;

    pub trait ViewDebugSync<'a> {
        fn __stacktrace_arg(&self) -> ArgValue<'a>;
    }
    impl<'a, T: Debug + Sync + RefUnwindSafe> ViewDebugSync<'a> for &&View<&'a T> {
        #[inline]
        fn __stacktrace_arg(&self) -> ArgValue<'a> {
            ArgValue::Debug(self.0)
        }
    }
    pub trait ViewDebugOther {
        fn __stacktrace_arg(&self) -> ArgValue<'static>;
    }
    impl<T: ?Sized + Debug> ViewDebugOther for &View<&T> {
        fn __stacktrace_arg(&self) -> ArgValue<'static> {
            ArgValue::Text(debug_text(self.0))
        }
    }
    pub trait ViewTypeName {
        fn __stacktrace_arg(&self) -> ArgValue<'static>;
    }
    impl<T: ?Sized> ViewTypeName for View<&T> {
        #[inline]
        fn __stacktrace_arg(&self) -> ArgValue<'static> {
            ArgValue::TypeName(std::any::type_name::<T>())
        }
    }

    pub trait EagerString {
        fn __stacktrace_arg(&self) -> ArgValue<'static>;
    }
    impl EagerString for &&Eager<'_, String> {
        #[inline]
        fn __stacktrace_arg(&self) -> ArgValue<'static> {
            ArgValue::OwnedStr(self.0.clone())
        }
    }
    pub trait EagerDebug {
        fn __stacktrace_arg(&self) -> ArgValue<'static>;
    }
    impl<T: ?Sized + Debug> EagerDebug for &Eager<'_, T> {
        fn __stacktrace_arg(&self) -> ArgValue<'static> {
            ArgValue::Text(debug_text(self.0))
        }
    }
    pub trait EagerTypeName {
        fn __stacktrace_arg(&self) -> ArgValue<'static>;
    }
    impl<T: ?Sized> EagerTypeName for Eager<'_, T> {
        #[inline]
        fn __stacktrace_arg(&self) -> ArgValue<'static> {
            ArgValue::TypeName(std::any::type_name::<T>())
        }
    }

    pub trait SecretDisplaySync<'a> {
        fn __stacktrace_secret(&self) -> ArgValue<'a>;
    }
    impl<'a, T: Display + Sync + RefUnwindSafe> SecretDisplaySync<'a> for &&&&SecretView<&'a T> {
        #[inline]
        fn __stacktrace_secret(&self) -> ArgValue<'a> {
            ArgValue::Display(self.0)
        }
    }
    pub trait SecretDebugSync<'a> {
        fn __stacktrace_secret(&self) -> ArgValue<'a>;
    }
    impl<'a, T: Debug + Sync + RefUnwindSafe> SecretDebugSync<'a> for &&&SecretView<&'a T> {
        #[inline]
        fn __stacktrace_secret(&self) -> ArgValue<'a> {
            ArgValue::Debug(self.0)
        }
    }
    pub trait SecretDisplayOther {
        fn __stacktrace_secret(&self) -> ArgValue<'static>;
    }
    impl<T: ?Sized + Display> SecretDisplayOther for &&SecretView<&T> {
        fn __stacktrace_secret(&self) -> ArgValue<'static> {
            ArgValue::Text(display_text(self.0))
        }
    }
    pub trait SecretDebugOther {
        fn __stacktrace_secret(&self) -> ArgValue<'static>;
    }
    impl<T: ?Sized + Debug> SecretDebugOther for &SecretView<&T> {
        fn __stacktrace_secret(&self) -> ArgValue<'static> {
            ArgValue::Text(debug_text(self.0))
        }
    }
    pub trait SecretTypeName {
        fn __stacktrace_secret(&self) -> ArgValue<'static>;
    }
    impl<T: ?Sized> SecretTypeName for SecretView<&T> {
        fn __stacktrace_secret(&self) -> ArgValue<'static> {
            ArgValue::TypeName(std::any::type_name::<T>())
        }
    }

    pub trait SecretEagerDisplay {
        fn __stacktrace_secret(&self) -> ArgValue<'static>;
    }
    impl<T: ?Sized + Display> SecretEagerDisplay for &&SecretEager<'_, T> {
        fn __stacktrace_secret(&self) -> ArgValue<'static> {
            ArgValue::Text(display_text(self.0))
        }
    }
    pub trait SecretEagerDebug {
        fn __stacktrace_secret(&self) -> ArgValue<'static>;
    }
    impl<T: ?Sized + Debug> SecretEagerDebug for &SecretEager<'_, T> {
        fn __stacktrace_secret(&self) -> ArgValue<'static> {
            ArgValue::Text(debug_text(self.0))
        }
    }
    pub trait SecretEagerTypeName {
        fn __stacktrace_secret(&self) -> ArgValue<'static>;
    }
    impl<T: ?Sized> SecretEagerTypeName for SecretEager<'_, T> {
        fn __stacktrace_secret(&self) -> ArgValue<'static> {
            ArgValue::TypeName(std::any::type_name::<T>())
        }
    }

    pub trait ProbeResult<'r, E> {
        fn __stacktrace_err(&self) -> Option<&'r E>;
    }
    impl<'r, T, E> ProbeResult<'r, E> for &ResultProbe<'r, Result<T, E>> {
        #[inline]
        fn __stacktrace_err(&self) -> Option<&'r E> {
            self.0.as_ref().err()
        }
    }
    pub trait ProbeOther {
        fn __stacktrace_err(&self) -> Option<&'static NotAnError>;
    }
    impl<R> ProbeOther for ResultProbe<'_, R> {
        #[inline]
        fn __stacktrace_err(&self) -> Option<&'static NotAnError> {
            None
        }
    }

    pub trait MessageDisplay {
        fn __stacktrace_message(&self) -> String;
    }
    impl<E: ?Sized + Display> MessageDisplay for &&ErrorView<'_, E> {
        fn __stacktrace_message(&self) -> String {
            guarded(
                || self.0.to_string(),
                |why| format!("<Display of error panicked: {why}>"),
            )
        }
    }
    pub trait MessageDebug {
        fn __stacktrace_message(&self) -> String;
    }
    impl<E: ?Sized + Debug> MessageDebug for &ErrorView<'_, E> {
        fn __stacktrace_message(&self) -> String {
            guarded(
                || format!("{:?}", self.0),
                |why| format!("<Debug of error panicked: {why}>"),
            )
        }
    }
    pub trait MessageTypeName {
        fn __stacktrace_message(&self) -> String;
    }
    impl<E: ?Sized> MessageTypeName for ErrorView<'_, E> {
        fn __stacktrace_message(&self) -> String {
            std::any::type_name::<E>().to_owned()
        }
    }

    pub trait SourcesError {
        fn __stacktrace_sources(&self) -> Vec<String>;
    }
    impl<E: ?Sized + StdError> SourcesError for &&ErrorView<'_, E> {
        fn __stacktrace_sources(&self) -> Vec<String> {
            sources_guarded(|| crate::api::capture::sources_of(self.0))
        }
    }
    /// `Box<dyn Error>`, `anyhow::Error` and other handles that deref to an error.
    pub trait SourcesDeref {
        fn __stacktrace_sources(&self) -> Vec<String>;
    }
    impl<E> SourcesDeref for &ErrorView<'_, E>
    where
        E: ?Sized + std::ops::Deref,
        E::Target: StdError,
    {
        fn __stacktrace_sources(&self) -> Vec<String> {
            sources_guarded(|| crate::api::capture::sources_of(&**self.0))
        }
    }
    pub trait SourcesNone {
        fn __stacktrace_sources(&self) -> Vec<String>;
    }
    impl<E: ?Sized> SourcesNone for ErrorView<'_, E> {
        fn __stacktrace_sources(&self) -> Vec<String> {
            Vec::new()
        }
    }
}

/// For the benches, not an API: the writer's build of an event, reachable from outside
/// the crate.
#[doc(hidden)]
pub mod bench {
    use serde_json::Value;

    use crate::capture::pending::PendingEvent;
    use crate::model::event::{Argument, CapturedCall, CrashEvent, Level};
    use crate::pipeline::build::{event_from_pending, BuildSettings};
    use crate::pipeline::process::ProcessInfo;
    use crate::pipeline::redact::fields::FieldRedactor;
    use crate::pipeline::resolve::source::SourceLines;

    /// The settings the writer builds events with, made from a `Config` as `install` makes
    /// them. Kept for the rest of the process, as the installed ones are.
    #[derive(Clone, Copy, Debug)]
    pub struct Build(&'static BuildSettings);

    impl Build {
        /// Forgets the values the process remembered as hidden (see the README's "What is
        /// redacted"), so that a case does not scan for what the cases before it hid.
        pub fn forget_remembered() {
            crate::pipeline::redact::remembered::forget_all();
        }

        /// The settings of `config`, as `install` makes them.
        pub fn new(config: &crate::Config) -> Self {
            let redactor =
                FieldRedactor::with_allowed(&config.redact_fields, &config.allowed_fields);
            let secrets = crate::config::secrets_of_settings(config);
            crate::pipeline::redact::credentials::prepare();
            Build(Box::leak(Box::new(BuildSettings {
                process: ProcessInfo::read(
                    &config.release,
                    config.capture_env,
                    &redactor,
                    &secrets,
                ),
                redactor,
                secrets,
                max_payload_bytes: config.max_payload_bytes,
                source: SourceLines::new(config.source_context),
            })))
        }

        /// The event the writer stores for an error with this message, these `extra`
        /// texts, raised in one `#[capture]` function with these arguments (name, text).
        pub fn event(
            self,
            message: String,
            extra: Vec<(String, String)>,
            args: Vec<(String, String)>,
        ) -> CrashEvent {
            let mut p = PendingEvent::new(crate::model::time::now_us(), Level::Error, "bench");
            p.error_type = "BenchError".to_owned();
            p.message = message;
            p.extra = extra
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            p.calls.push(CapturedCall {
                function: "bench::handle".to_owned(),
                file: "src/bench.rs".to_owned(),
                line: 1,
                args: args
                    .into_iter()
                    .map(|(name, value)| Argument { name, value })
                    .collect(),
            });
            event_from_pending(p, self.0)
        }
    }
}
