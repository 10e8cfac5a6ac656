//! Turning a raw backtrace into the frames worth reading: demangled, hash suffix gone, panic
//! and capture machinery trimmed, in-app frames marked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::capture::trace::{RawTrace, MAX_ADDRESSES};
use crate::model::event::Frame;
use crate::pipeline::resolve::in_app::is_in_app;

/// Functions of the panic runtime and of this crate's capture path, above the frame that
/// failed.
const MACHINERY: &[&str] = &[
    "backtrace::",
    "stacktrace::api::capture::",
    "stacktrace::runtime::admission::",
    "stacktrace::capture::trace::",
    "stacktrace::capture::function_error::",
    "stacktrace::api::report::",
    "<stacktrace::api::report::",
    "stacktrace::runtime::hook::",
    "stacktrace::pipeline::resolve::frames::",
    "stacktrace::pipeline::build::",
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

/// The most frames an event keeps (innermost first): deep recursion would otherwise make
/// one event megabytes long.
pub(crate) const MAX_FRAMES: usize = 128;

// A raw trace keeps enough addresses that `MAX_FRAMES` remain after the machinery is cut.
const _: () = assert!(MAX_ADDRESSES >= MAX_FRAMES * 2);

/// The readable part of a dependency's or the toolchain's source path: from
/// `/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.0/src/de.rs` to
/// `serde-1.0.0/src/de.rs`, from `/rustc/<commit>/library/std/src/panicking.rs` to
/// `library/std/src/panicking.rs`. Shorter events, and no home directory in them. The
/// program's own paths are kept as the compiler gave them.
pub(crate) fn short_file(path: &str) -> String {
    let after = |marker: &str, skip_dirs: usize| -> Option<String> {
        let (_, rest) = path.split_once(marker)?;
        let mut parts = rest.splitn(skip_dirs + 1, ['/', '\\']);
        for _ in 0..skip_dirs {
            parts.next()?;
        }
        parts.next().map(str::to_owned)
    };
    after("/.cargo/registry/src/", 1)
        .or_else(|| after("\\.cargo\\registry\\src\\", 1))
        .or_else(|| after("/.cargo/git/checkouts/", 0))
        .or_else(|| {
            path.strip_prefix("/rustc/")
                .and_then(|_| after("/rustc/", 1))
        })
        .unwrap_or_else(|| path.to_owned())
}

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

/// Whether `file` is one of this crate's own sources: never the app's.
pub(crate) fn is_own_source(file: &str) -> bool {
    own_source(file).is_some()
}

/// Whether `file` is a source of this crate's capture path: a module of the crate's `src`
/// directory that [`MACHINERY`] names (`runtime/hook.rs` for `stacktrace::runtime::hook::`).
fn is_machinery_source(file: &str) -> bool {
    let Some(module) = own_source(file)
        .and_then(Path::to_str)
        .and_then(|rel| rel.strip_suffix(".rs"))
        .map(|rel| rel.replace(['/', '\\'], "::"))
    else {
        return false;
    };
    MACHINERY.iter().any(|m| {
        m.strip_prefix("stacktrace::")
            .and_then(|rest| rest.strip_suffix("::"))
            == Some(module.as_str())
    })
}

/// How many directories this file sits below the crate's `src` directory
/// (`pipeline/resolve/frames.rs`).
const DEPTH_IN_SRC: usize = 2;

/// `file`'s path inside this crate's `src` directory, if it is one of this crate's sources.
///
/// A build with line tables only (`debug = "line-tables-only"`) names functions by their
/// bare name (`on_panic`, not `stacktrace::hook::on_panic`), so the path prefixes do not
/// recognise this crate's frames; their source files do. This file's path as the compiler
/// was given it is relative in a workspace and absolute from a registry; its [`short_file`]
/// form ends both the path the debug info records and that path's own short form.
fn own_source(file: &str) -> Option<&Path> {
    static OWN_DIR: OnceLock<PathBuf> = OnceLock::new();
    let own_dir = OWN_DIR.get_or_init(|| {
        Path::new(&short_file(file!()))
            .ancestors()
            .nth(DEPTH_IN_SRC + 1)
            .map(Path::to_path_buf)
            .unwrap_or_default()
    });
    if own_dir.as_os_str().is_empty() {
        return None;
    }
    let file = Path::new(file);
    file.ancestors()
        .skip(1)
        .find(|dir| dir.ends_with(own_dir))
        .and_then(|dir| file.strip_prefix(dir).ok())
}

/// Resolved frames by instruction address. Symbols of an address never change while the
/// process runs, so repeated failures at the same places skip symbolisation, which is most
/// of a capture's cost. Bounded: cleared when full.
static SYMBOL_CACHE: Mutex<Option<HashMap<usize, Arc<[Frame]>>>> = Mutex::new(None);
const SYMBOL_CACHE_MAX: usize = 16_384;

/// When symbols were last looked up, in milliseconds since [`epoch`] plus one; 0 while
/// nothing looked up is kept (the debug info the lookups loaded, and [`SYMBOL_CACHE`]).
static LAST_LOOKUP: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn note_lookup() {
    let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX - 1);
    LAST_LOOKUP.store(now + 1, Ordering::Relaxed);
}

/// Drops what resolving symbols keeps loaded (the modules' debug info, inflated and parsed,
/// tens of megabytes; the resolved frames) once no symbol was looked up for `idle`, and
/// gives the freed memory back to the system. Says whether it dropped anything. The next
/// lookup loads the debug info again.
pub(crate) fn release_symbols_if_idle(idle: Duration) -> bool {
    let last = LAST_LOOKUP.load(Ordering::Relaxed);
    let Some(since) = last.checked_sub(1) else {
        return false;
    };
    let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
    if now.saturating_sub(since) < u64::try_from(idle.as_millis()).unwrap_or(u64::MAX) {
        return false;
    }
    // A lookup between the load and here keeps its stamp: the next look tries again.
    if LAST_LOOKUP
        .compare_exchange(last, 0, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    *crate::sync::lock(&SYMBOL_CACHE) = None;
    backtrace::clear_symbol_cache();
    give_back_freed_memory();
    true
}

/// Returns the heap's free pages to the system: the allocator keeps the freed debug info's
/// pages otherwise, and the process stays as large as at its largest.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn give_back_freed_memory() {
    // SAFETY: `malloc_trim` takes the allocator's own locks and only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back_freed_memory() {}

/// The frame of a symbol: its name demangled without the hash, its file shortened, judged
/// by the running configuration's in-app rules.
pub(crate) fn frame_of(name: Option<&str>, file: Option<String>, line: Option<u32>) -> Frame {
    frame_judged(name, file, line, &is_in_app)
}

/// The frame of a symbol, whether it is the app's decided by `in_app` (given the function
/// and the file as the debug info names them).
pub(crate) fn frame_judged(
    name: Option<&str>,
    file: Option<String>,
    line: Option<u32>,
    in_app: &dyn Fn(&str, Option<&str>) -> bool,
) -> Frame {
    let function = name
        .map(|n| match rustc_demangle::try_demangle(n) {
            Ok(d) => strip_hash(&format!("{d:#}")).to_owned(),
            Err(_) => strip_hash(n).to_owned(),
        })
        .unwrap_or_default();
    Frame {
        in_app: in_app(&function, file.as_deref()),
        function,
        file: file.map(|f| short_file(&f)),
        line,
        source: None,
    }
}

/// The frames (more than one where calls were inlined) of one address, by symbolisation.
fn frames_at(ip: *mut std::ffi::c_void) -> Arc<[Frame]> {
    let mut out = Vec::new();
    backtrace::resolve(ip, |symbol| {
        let name = symbol.name().map(|n| format!("{n:#}"));
        let file = symbol.filename().map(|p| p.display().to_string());
        out.push(frame_of(name.as_deref(), file, symbol.lineno()));
    });
    if out.is_empty() {
        out.push(Frame::default());
    }
    out.into()
}

/// Converts an unresolved stack, innermost first, resolving each address once per process.
/// Safe in the panic hook: the cache is only tried, never waited for.
pub(crate) fn frames_from_trace(trace: &RawTrace) -> Vec<Frame> {
    let mut resolved: Vec<Arc<[Frame]>> = Vec::with_capacity(trace.ips().len());
    note_lookup();
    let mut cache = crate::sync::try_lock(&SYMBOL_CACHE);
    for &key in trace.ips() {
        let ip = key as *mut std::ffi::c_void;
        let cached = cache
            .as_mut()
            .and_then(|c| c.get_or_insert_with(HashMap::new).get(&key).cloned());
        let frames = match cached {
            Some(f) => f,
            None => {
                let f = frames_at(ip);
                if let Some(map) = cache.as_mut().and_then(|c| c.as_mut()) {
                    if map.len() >= SYMBOL_CACHE_MAX {
                        map.clear();
                    }
                    map.insert(key, f.clone());
                }
                f
            }
        };
        resolved.push(frames);
    }
    drop(cache);
    note_lookup();
    frames_kept(&resolved)
}

/// The frames worth reading of a resolved stack (each address's frames, innermost first).
pub(crate) fn frames_kept(resolved: &[Arc<[Frame]>]) -> Vec<Frame> {
    // Only the frames kept are copied out of the cache.
    let mut all: Vec<&Frame> = Vec::with_capacity(resolved.iter().map(|f| f.len()).sum());
    all.extend(resolved.iter().flat_map(|f| f.iter()));
    all[kept(&all)]
        .iter()
        .take(MAX_FRAMES)
        .map(|f| (*f).clone())
        .collect()
}

/// The range of frames worth reading: below the machinery above the failing frame, above
/// the start-up below the program.
fn kept(frames: &[&Frame]) -> std::ops::Range<usize> {
    // The capture path's frames are recognised by their file too: with line tables only,
    // their names carry no path.
    let is_machinery = |f: &Frame| {
        f.function.is_empty()
            || is_hook_glue(&f.function)
            || MACHINERY.iter().any(|m| f.function.starts_with(m))
            || f.file.as_deref().is_some_and(is_machinery_source)
    };
    // Only a leading run is machinery: the same names further down (an async task polled by
    // this crate's scope) are part of the program's path.
    let mut top = frames.iter().take_while(|f| is_machinery(f)).count();
    // An empty result would hide everything; keep the frames in that case.
    if top == frames.len() {
        top = 0;
    }
    let rest = &frames[top..];
    let end = match rest
        .iter()
        .position(|f| BOTTOM.iter().any(|b| f.function.starts_with(b)))
    {
        Some(bottom) if bottom > 0 => top + bottom,
        _ => frames.len(),
    };
    top..end
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
            source: None,
        }
    }

    /// The names of the frames [`kept`] keeps.
    fn kept_names(frames: &[Frame]) -> Vec<&str> {
        let refs: Vec<&Frame> = frames.iter().collect();
        refs[kept(&refs)]
            .iter()
            .map(|f| f.function.as_str())
            .collect()
    }

    #[test]
    fn strips_legacy_hash_only() {
        assert_eq!(strip_hash("app::main::h0123456789abcdef"), "app::main");
        assert_eq!(strip_hash("app::h::hello"), "app::h::hello");
        assert_eq!(strip_hash("app::main::hxyz"), "app::main::hxyz");
    }

    #[test]
    fn shortens_dependency_and_toolchain_paths_only() {
        assert_eq!(
            short_file("/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.0/src/de.rs"),
            "serde-1.0.0/src/de.rs"
        );
        assert_eq!(
            short_file(
                "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs"
            ),
            "library/std/src/panicking.rs"
        );
        assert_eq!(
            short_file("/home/u/.cargo/git/checkouts/dep-0123/abcdef1/src/lib.rs"),
            "dep-0123/abcdef1/src/lib.rs"
        );
        assert_eq!(short_file("src/main.rs"), "src/main.rs");
        assert_eq!(short_file("/srv/app/src/main.rs"), "/srv/app/src/main.rs");
        assert_eq!(short_file("/rustc/"), "/rustc/");
    }

    #[test]
    fn trims_leading_machinery_and_startup() {
        let frames = vec![
            f("backtrace::backtrace::trace"),
            f("stacktrace::runtime::hook::on_panic"),
            f("std::panicking::rust_panic_with_hook"),
            f("core::panicking::panic_fmt"),
            f("shop::checkout"),
            f("stacktrace::__private::TaskScope::poll"),
            f("shop::main"),
            f("std::sys::backtrace::__rust_begin_short_backtrace"),
            f("std::rt::lang_start"),
        ];
        let names = kept_names(&frames);
        assert_eq!(
            names,
            [
                "shop::checkout",
                "stacktrace::__private::TaskScope::poll",
                "shop::main"
            ]
        );
    }

    /// With line tables only, functions carry bare names; this crate's are cut by their file.
    #[test]
    fn trims_own_frames_by_file_whatever_their_name() {
        let own = |name: &str, file: &str| Frame {
            function: name.into(),
            file: Some(
                Path::new(file!())
                    .ancestors()
                    .nth(DEPTH_IN_SRC + 1)
                    .unwrap()
                    .join(file)
                    .display()
                    .to_string(),
            ),
            line: Some(1),
            in_app: false,
            source: None,
        };
        let frames = [
            own("capture", "pipeline/resolve/frames.rs"),
            own("store_panic", "runtime/hook.rs"),
            own("on_panic", "runtime/hook.rs"),
            f("std::panicking::panic_with_hook"),
            f("__rustc::rust_begin_unwind"),
            f("check_total"),
            f("shop::main"),
        ];
        let names = kept_names(&frames);
        assert_eq!(names, ["check_total", "shop::main"]);

        // A panic in this crate's own code off the capture path keeps its frames.
        let frames = [
            own("on_panic", "runtime/hook.rs"),
            f("core::panicking::panic_fmt"),
            own("decode", "store/keys.rs"),
            own("open", "store/db.rs"),
            f("shop::main"),
        ];
        let names = kept_names(&frames);
        assert_eq!(names, ["decode", "open", "shop::main"]);
    }

    /// The first address is in the function that took the trace or in its caller (unwinders
    /// differ in which stack pointer they report), never in the unwinder.
    #[test]
    fn a_raw_trace_starts_at_its_taker() {
        let trace = RawTrace::capture();
        let first = frames_at(trace.ips()[0] as *mut std::ffi::c_void);
        assert!(
            first
                .iter()
                .all(|f| f.file.as_deref().is_some_and(is_own_source)
                    && !f.function.starts_with("backtrace::")
                    && !f.function.starts_with("trace")),
            "{first:#?}"
        );
    }

    /// Loaded debug info is dropped once idle for the given time only, and loaded again by
    /// the next lookup.
    #[test]
    fn symbols_are_released_once_idle_and_resolve_again() {
        let before = frames_from_trace(&RawTrace::capture());
        assert!(!before.is_empty());
        assert!(!release_symbols_if_idle(Duration::MAX));
        // Another test may look symbols up meanwhile, which keeps them a little longer.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !release_symbols_if_idle(Duration::ZERO) {
            assert!(Instant::now() < deadline, "never released");
            std::thread::sleep(Duration::from_millis(1));
        }
        let after = frames_from_trace(&RawTrace::capture());
        let names = |frames: &[Frame]| {
            frames
                .iter()
                .map(|f| f.function.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&after), names(&before));
    }

    #[test]
    fn real_backtrace_is_demangled_and_starts_after_the_machinery() {
        #[inline(never)]
        fn here() -> Vec<Frame> {
            frames_from_trace(&RawTrace::capture())
        }
        let frames = here();
        assert!(!frames.is_empty());
        // The capture machinery (and this module's own frames, which count as it) is cut.
        assert!(
            !MACHINERY.iter().any(|m| frames[0].function.starts_with(m)),
            "{:#?}",
            frames[0]
        );
        // Names are demangled and carry no `::h<16 hex>` suffix.
        for f in &frames {
            assert!(
                !f.function.starts_with("_ZN") && !f.function.starts_with("_R"),
                "{f:?}"
            );
            assert_eq!(strip_hash(&f.function), f.function, "{f:?}");
        }
        assert!(frames
            .iter()
            .any(|f| f.function.starts_with("core::") || f.function.starts_with("std::")));
    }
}
