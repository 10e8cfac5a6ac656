//! Turning a raw backtrace into the frames worth reading: demangled, hash suffix gone, panic
//! and capture machinery trimmed, in-app frames marked.

use crate::event::Frame;

/// Functions of the panic runtime and of this crate's capture path, above the frame that
/// failed.
const MACHINERY: &[&str] = &[
    "backtrace::",
    "stacktrace::capture::",
    "stacktrace::report::",
    "<stacktrace::report::",
    "stacktrace::hook::",
    "stacktrace::frames::",
    "stacktrace::pipeline::",
    "stacktrace::__private::",
    "std::panicking::",
    "std::panic::",
    "core::panicking::",
    "std::sys::backtrace::__rust_end_short_backtrace",
    "std::sys_common::backtrace::__rust_end_short_backtrace",
    "rust_begin_unwind",
    "__rustc::rust_begin_unwind",
];

/// Call glue that only appears above the failing frame when it calls the panic hook.
fn is_hook_glue(function: &str) -> bool {
    function.starts_with("<alloc::boxed::Box<")
        && (function.contains("PanicHookInfo") || function.contains("Fn<Args>>::call"))
}

/// Frames at and below these are the runtime's start-up, not the program.
const BOTTOM: &[&str] = &[
    "std::sys::backtrace::__rust_begin_short_backtrace",
    "std::sys_common::backtrace::__rust_begin_short_backtrace",
    "std::rt::lang_start",
    "__libc_start_main",
    "__libc_start_call_main",
];

/// Function paths that belong to the toolchain or common runtimes, never to the app.
const NOT_APP_PREFIXES: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "<std::",
    "<core::",
    "<alloc::",
    "backtrace::",
    "stacktrace::",
    "<stacktrace::",
    "sled::",
    "tokio::",
    "<tokio::",
    "futures",
    "<futures",
    "test::",
    "__rust",
    "rust_",
    "_start",
    "__libc",
    "clone",
    "start_thread",
];

/// Where sources of dependencies and of the standard library live.
const NOT_APP_PATHS: &[&str] = &[
    "/rustc/",
    "/.cargo/registry/",
    "/.cargo/git/",
    "/rustlib/",
    "\\rustc\\",
    "\\.cargo\\registry\\",
];

/// `app::f::h0123456789abcdef` to `app::f` (legacy mangling leaves the hash when printed
/// without `{:#}`; some tools print it anyway).
pub(crate) fn strip_hash(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    }
}

pub(crate) fn is_in_app(function: &str, file: Option<&str>) -> bool {
    if function.is_empty() || NOT_APP_PREFIXES.iter().any(|p| function.starts_with(p)) {
        return false;
    }
    !file.is_some_and(|f| NOT_APP_PATHS.iter().any(|p| f.contains(p)))
}

/// Resolves (when not yet) and converts a backtrace, innermost first.
pub(crate) fn frames_from_backtrace(bt: &mut backtrace::Backtrace) -> Vec<Frame> {
    bt.resolve();
    let mut raw = Vec::new();
    for frame in bt.frames() {
        for symbol in frame.symbols() {
            let function = symbol
                .name()
                .map(|n| strip_hash(&format!("{n:#}")).to_owned())
                .unwrap_or_default();
            let file = symbol.filename().map(|p| p.display().to_string());
            raw.push(Frame {
                in_app: is_in_app(&function, file.as_deref()),
                function,
                file,
                line: symbol.lineno(),
            });
        }
    }
    trim(raw)
}

/// Drops the machinery above the failing frame and the start-up below the program.
pub(crate) fn trim(mut frames: Vec<Frame>) -> Vec<Frame> {
    let is_machinery = |f: &Frame| {
        f.function.is_empty()
            || is_hook_glue(&f.function)
            || MACHINERY.iter().any(|m| f.function.starts_with(m))
    };
    // Only a leading run is machinery: the same names further down (an async task polled by
    // this crate's scope) are part of the program's path.
    let top = frames.iter().take_while(|f| is_machinery(f)).count();
    // An empty result would hide everything; keep the frames in that case.
    if top < frames.len() {
        frames.drain(..top);
    }
    if let Some(bottom) = frames
        .iter()
        .position(|f| BOTTOM.iter().any(|b| f.function.starts_with(b)))
    {
        if bottom > 0 {
            frames.truncate(bottom);
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> Frame {
        Frame {
            function: name.into(),
            file: None,
            line: None,
            in_app: is_in_app(name, None),
        }
    }

    #[test]
    fn strips_legacy_hash_only() {
        assert_eq!(strip_hash("app::main::h0123456789abcdef"), "app::main");
        assert_eq!(strip_hash("app::h::hello"), "app::h::hello");
        assert_eq!(strip_hash("app::main::hxyz"), "app::main::hxyz");
    }

    #[test]
    fn in_app_excludes_std_deps_and_registry_sources() {
        assert!(is_in_app("shop::checkout", Some("src/main.rs")));
        assert!(!is_in_app("std::thread::spawn", None));
        assert!(!is_in_app(
            "serde_json::de::from_str",
            Some("/home/u/.cargo/registry/src/x/serde_json-1.0.0/src/de.rs")
        ));
        assert!(!is_in_app("", None));
    }

    #[test]
    fn trims_leading_machinery_and_startup() {
        let frames = vec![
            f("backtrace::backtrace::trace"),
            f("stacktrace::hook::on_panic"),
            f("std::panicking::rust_panic_with_hook"),
            f("core::panicking::panic_fmt"),
            f("shop::checkout"),
            f("stacktrace::__private::TaskScope::poll"),
            f("shop::main"),
            f("std::sys::backtrace::__rust_begin_short_backtrace"),
            f("std::rt::lang_start"),
        ];
        let names: Vec<_> = trim(frames).into_iter().map(|f| f.function).collect();
        assert_eq!(
            names,
            [
                "shop::checkout",
                "stacktrace::__private::TaskScope::poll",
                "shop::main"
            ]
        );
    }

    #[test]
    fn real_backtrace_starts_at_the_caller() {
        #[inline(never)]
        fn here() -> Vec<Frame> {
            frames_from_backtrace(&mut backtrace::Backtrace::new_unresolved())
        }
        let frames = here();
        assert!(!frames.is_empty());
        assert!(frames
            .iter()
            .all(|f| !f.function.contains("::h") || strip_hash(&f.function) == f.function));
    }
}
