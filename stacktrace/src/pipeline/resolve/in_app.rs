//! Whether a frame is the application's: by the crates its function names (the type's and
//! the trait's in `<T as path::Trait>::f`), the app's own crates, the `in_app_include` and
//! `in_app_exclude` settings, and where its source file lives.
//!
//! The first rule that speaks decides: an excluded path, then an included path or one of
//! the app's crates, then what is known not to be the app's (the toolchain's crates and
//! sources, the registry's sources, this crate), then the default: a frame with a source
//! file of its own is the app's; one without is judged by its crate, and counts as the
//! app's only while the app's crates are unknown.

use std::sync::OnceLock;

use crate::__private::AppInfo;
use crate::model::event::InAppSettings;
use crate::pipeline::resolve::frames::is_own_source;

/// Crates of the toolchain, and of the runtimes this crate works with: never the app's.
const NOT_APP_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "backtrace",
    "stacktrace",
    "stacktrace_macros",
    "sled",
    "tokio",
    "futures",
    "futures_core",
    "futures_util",
    "futures_executor",
    "futures_task",
    "futures_channel",
];

/// Symbols of the C runtime, the thread start and the unwinder, which name no crate.
const NOT_APP_SYMBOLS: &[&str] = &["_start", "clone", "clone3", "__clone", "start_thread"];

/// Prefixes of such symbols (`__libc_start_main`, `__rust_try`, `rust_begin_unwind`).
const NOT_APP_SYMBOL_PREFIXES: &[&str] = &["__libc_", "__rust", "rust_"];

/// Types that belong to no crate: their impls are the toolchain's.
const PRIMITIVES: &[&str] = &[
    "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64",
    "i128", "isize", "f16", "f32", "f64", "f128", "!",
];

/// What one path named by a function says about it, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Unknown,
    NotApp,
    App,
    Excluded,
}

/// The app's crate, as `install!` recorded it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AppCrate<'a> {
    /// `module_path!()` at the `install!` call: its first segment is the crate.
    module: &'a str,
    /// The package name, `my-app` for crate `my_app`.
    package: Option<&'a str>,
}

impl<'a> From<&'a AppInfo> for AppCrate<'a> {
    fn from(app: &'a AppInfo) -> Self {
        AppCrate {
            module: app.module,
            package: app.package,
        }
    }
}

/// The settings that decide, borrowed from the running configuration or from the rules a
/// journaled panic carries.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct InAppRules<'a> {
    app: Option<AppCrate<'a>>,
    include: &'a [String],
    exclude: &'a [String],
}

impl<'a> InAppRules<'a> {
    /// The rules of `settings`: the running configuration's, or those a program journaled
    /// with its panic's addresses.
    pub(crate) fn of_settings(settings: &'a InAppSettings) -> Self {
        InAppRules {
            app: settings.app_module.as_deref().map(|module| AppCrate {
                module,
                package: settings.app_package.as_deref(),
            }),
            include: &settings.include,
            exclude: &settings.exclude,
        }
    }

    /// Whether the frame of `function`, compiled from `file`, is the application's.
    pub(crate) fn judge(&self, function: &str, file: Option<&str>) -> bool {
        if function.is_empty() {
            return false;
        }
        let (subjects, qualified) = subjects_of(function);
        let verdicts = subjects.iter().flatten().map(|s| self.verdict(s));
        match verdicts.clone().max() {
            Some(Verdict::Excluded) => return false,
            Some(Verdict::App) => return true,
            _ => {}
        }
        if file.is_some_and(|f| is_dependency_source(f) || is_own_source(f)) {
            return false;
        }
        // `<usize as core::slice::index::SliceIndex<[T]>>::index`, `<[T]>::len`: a primitive
        // type's impls are the trait's crate's, or the toolchain's.
        let any_subject = subjects.iter().any(Option::is_some);
        if (any_subject && verdicts.clone().all(|v| v == Verdict::NotApp))
            || (qualified && !any_subject)
            || is_runtime_symbol(function)
        {
            return false;
        }
        match file {
            Some(_) => true,
            None => !self.knows_app(),
        }
    }

    /// Whether the app's crates are known: an `install!` call or an `in_app_include` list.
    /// When they are, a frame without a source file of an unknown crate is a dependency's.
    fn knows_app(&self) -> bool {
        self.app.is_some() || !self.include.is_empty()
    }

    fn verdict(&self, path: &str) -> Verdict {
        let krate = crate_of(path);
        if self.exclude.iter().any(|p| has_prefix(path, p)) {
            Verdict::Excluded
        } else if self.include.iter().any(|p| has_prefix(path, p)) || self.is_app_crate(krate) {
            Verdict::App
        } else if NOT_APP_CRATES.contains(&krate) {
            Verdict::NotApp
        } else {
            Verdict::Unknown
        }
    }

    /// The crate that called `install!`, and its package's library. Never this crate.
    fn is_app_crate(&self, krate: &str) -> bool {
        let Some(app) = self.app else {
            return false;
        };
        krate != "stacktrace"
            && (crate_of(app.module) == krate
                || app.package.is_some_and(|p| {
                    // Package `my-app`, crate `my_app`.
                    p.len() == krate.len()
                        && p.bytes()
                            .zip(krate.bytes())
                            .all(|(p, k)| p == k || (p == b'-' && k == b'_'))
                }))
    }
}

/// The running configuration's settings, set once at install.
static RUNNING: OnceLock<InAppSettings> = OnceLock::new();

/// Judges frames by `settings` from now on (once per process; install calls it).
pub(crate) fn judge_by(settings: InAppSettings) {
    let _ = RUNNING.set(settings);
}

/// The running configuration's rules, to journal with a panic's addresses: whoever
/// resolves them later judges its frames as this program would. The defaults before
/// `install`.
pub(crate) fn running_settings() -> InAppSettings {
    RUNNING.get().cloned().unwrap_or_default()
}

/// Whether the frame of `function`, compiled from `file`, is the application's, by the
/// running configuration (the defaults before `install`).
pub(crate) fn is_in_app(function: &str, file: Option<&str>) -> bool {
    match RUNNING.get() {
        Some(settings) => InAppRules::of_settings(settings).judge(function, file),
        None => InAppRules::default().judge(function, file),
    }
}

/// The paths a function's crate is read from, and whether it is the qualified form: the
/// type and the trait of `<T as Trait>::f`, the type of `<T>::f`, else the function's own
/// path. A primitive or compound type names no crate (`None`).
fn subjects_of(function: &str) -> ([Option<&str>; 2], bool) {
    let Some(inner) = function.strip_prefix('<').and_then(qualified_inner) else {
        return ([Some(function), None], false);
    };
    match split_as(inner) {
        Some((ty, tr)) => ([type_path(ty), Some(tr.trim())], true),
        None => ([type_path(inner), None], true),
    }
}

/// `T as Trait` of `<T as Trait>::f` (given without its `<`): up to the matching `>`.
fn qualified_inner(rest: &str) -> Option<&str> {
    let mut depth = 1usize;
    let mut prev = '\0';
    for (i, c) in rest.char_indices() {
        match c {
            '<' => depth += 1,
            // The arrow of `fn() -> T` closes nothing.
            '>' if prev != '-' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&rest[..i]);
                }
            }
            _ => {}
        }
        prev = c;
    }
    None
}

/// `T` and `Trait` of `T as Trait`, split at the ` as ` outside any brackets.
fn split_as(inner: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    let mut prev = '\0';
    for (i, c) in inner.char_indices() {
        match c {
            '<' | '[' | '(' => depth += 1,
            '>' if prev == '-' => {}
            '>' | ']' | ')' => depth = depth.saturating_sub(1),
            ' ' if depth == 0 && inner[i..].starts_with(" as ") => {
                return Some((&inner[..i], &inner[i + 4..]));
            }
            _ => {}
        }
        prev = c;
    }
    None
}

/// The path of a type that may name a crate: references, pointers and `dyn` taken off;
/// `None` for primitives, slices, arrays, tuples, function pointers and nested qualified
/// paths.
fn type_path(ty: &str) -> Option<&str> {
    let mut ty = ty.trim();
    loop {
        let before = ty;
        for prefix in ["&", "mut ", "*const ", "*mut ", "dyn ", "impl "] {
            ty = ty.strip_prefix(prefix).unwrap_or(ty).trim_start();
        }
        if let Some(rest) = ty.strip_prefix('\'') {
            // A lifetime: `&'a T`.
            ty = rest.split_once(' ').map_or("", |(_, t)| t).trim_start();
        }
        if ty == before {
            break;
        }
    }
    let starts_compound = ty.starts_with(['[', '(', '<', '!']) || ty.starts_with("fn(");
    let krate = crate_of(ty);
    (!ty.is_empty() && !starts_compound && !PRIMITIVES.contains(&krate)).then_some(ty)
}

/// The first segment of a path (`core` of `core::slice::index::SliceIndex<[T]>`).
fn crate_of(path: &str) -> &str {
    let end = path.find(['<', ':', ' ', '(']).unwrap_or(path.len());
    &path[..end]
}

/// Whether `path` is `prefix` or inside it, by whole segments (`app` covers `app::x` and
/// `app::X<T>`, not `app_core::x`).
fn has_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim().trim_end_matches("::");
    if prefix.is_empty() {
        return false;
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::") || rest.starts_with('<'))
}

fn is_runtime_symbol(function: &str) -> bool {
    NOT_APP_SYMBOLS.contains(&function)
        || NOT_APP_SYMBOL_PREFIXES
            .iter()
            .any(|p| function.starts_with(p))
}

/// Whether `file` is a source of the toolchain (`/rustc/<commit>/library/...`, a `rustlib`
/// directory) or of a dependency from a registry or a git repository, wherever the cargo
/// home is (`~/.cargo/registry/src/<index>-<hash>/...`, `/usr/local/cargo/registry/...`).
fn is_dependency_source(file: &str) -> bool {
    let mut before = ["", ""];
    for part in file.split(['/', '\\']) {
        let found = match (before[0], before[1], part) {
            (_, "rustc", commit) => {
                commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit())
            }
            (_, _, "rustlib") => true,
            (".cargo", "registry" | "git", _) => true,
            ("registry", "src", index) => is_index_dir(index),
            (_, "git", "checkouts") => true,
            _ => false,
        };
        if found {
            return true;
        }
        before = [before[1], part];
    }
    false
}

/// A registry's source directory: `index.crates.io-1949cf8c6b5b557f`.
fn is_index_dir(name: &str) -> bool {
    name.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn app(module: &'static str, package: Option<&'static str>) -> AppInfo {
        AppInfo {
            module,
            package,
            version: Some("1.0.0"),
        }
    }

    fn with_app(app: &AppInfo) -> InAppRules<'_> {
        InAppRules {
            app: Some(app.into()),
            ..InAppRules::default()
        }
    }

    /// Pins: `<usize as core::slice::index::SliceIndex<[T]>>::index`, with no source file,
    /// counted as the app's (a qualified path was judged by its first characters, and a
    /// frame without a file was the app's), and so named an index panic's culprit.
    #[test]
    fn qualified_paths_are_judged_by_the_type_and_the_trait() {
        let myapp = app("myapp", Some("myapp"));
        for rules in [InAppRules::default(), with_app(&myapp)] {
            let judge = |f: &str| rules.judge(f, None);
            assert!(!judge(
                "<usize as core::slice::index::SliceIndex<[T]>>::index"
            ));
            assert!(!judge("<[T]>::len"));
            assert!(!judge("<&str as core::fmt::Display>::fmt"));
            assert!(!judge(
                "<alloc::vec::Vec<T,A> as core::ops::index::Index<I>>::index"
            ));
            assert!(!judge(
                "<fn() -> T as core::ops::function::FnOnce<()>>::call_once"
            ));
            // The app's type with a foreign trait, and a foreign type with the app's trait.
            assert!(judge("<myapp::Thing as core::fmt::Display>::fmt"));
            assert!(judge("<&mut myapp::Thing as core::fmt::Display>::fmt"));
            assert!(judge("<alloc::vec::Vec<T> as myapp::Trait>::f"));
            assert!(judge("<myapp::Thing>::total::{{closure}}"));
            assert!(judge("myapp::orders::checkout"));
        }
    }

    #[test]
    fn frames_without_a_file_are_judged_by_their_crate() {
        let myapp = app("myapp::startup", Some("my-app"));
        let rules = with_app(&myapp);
        // The crate that called `install!` and its package's library.
        assert!(rules.judge("myapp::main", None));
        assert!(rules.judge("my_app::billing::charge", None));
        // A dependency built without debug info, and the toolchain.
        assert!(!rules.judge("serde_json::de::from_str", None));
        assert!(!rules.judge("<serde_json::Value as core::fmt::Display>::fmt", None));
        assert!(!rules.judge("std::thread::spawn", None));
        assert!(!rules.judge("__libc_start_main", None));
        assert!(!rules.judge("clone3", None));
        // The same frames with a local source file are the app's (a workspace member).
        assert!(rules.judge("billing_core::charge", Some("billing-core/src/lib.rs")));
        // Without knowing the app, an unknown crate keeps the benefit of the doubt.
        let unknown = InAppRules::default();
        assert!(unknown.judge("serde_json::de::from_str", None));
        assert!(!unknown.judge("std::thread::spawn", None));
        assert!(!unknown.judge("", None));
        // This crate never counts as the app, even when it calls `install!` itself.
        let own = app("stacktrace::x", Some("stacktrace"));
        assert!(!with_app(&own).judge("stacktrace::runtime::hook::on_panic", None));
    }

    #[test]
    fn exclude_wins_over_include_and_the_app_crate() {
        let myapp = app("myapp", Some("myapp"));
        let include = vec!["billing".to_owned(), "vendored::".to_owned()];
        let exclude = vec!["myapp::generated".to_owned(), "billing::mocks".to_owned()];
        let rules = InAppRules {
            app: Some((&myapp).into()),
            include: &include,
            exclude: &exclude,
        };
        let judge = |f: &str| rules.judge(f, None);
        assert!(judge("myapp::orders::checkout"));
        assert!(!judge("myapp::generated::parse"));
        assert!(!judge("<myapp::generated::Row as core::fmt::Debug>::fmt"));
        assert!(judge("billing::charge"));
        assert!(judge("vendored::x::y"));
        assert!(judge("<billing::Cart<T>>::total"));
        assert!(!judge("billing::mocks::charge"));
        // Prefixes match whole segments.
        assert!(!judge("billing_core::charge"));
        assert!(!judge("myapp_generated::x"));
        // An include list alone makes other crates without files dependencies.
        let rules = InAppRules {
            include: &include,
            ..InAppRules::default()
        };
        assert!(rules.judge("billing::charge", None));
        assert!(!rules.judge("serde_json::de::from_str", None));
        // Include beats the registry path of a vendored crate's source.
        let registry =
            "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/billing-1.0.0/src/lib.rs";
        assert!(rules.judge("billing::charge", Some(registry)));
        assert!(!rules.judge("other::charge", Some(registry)));
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
    fn toolchain_and_registry_sources_are_never_in_app() {
        let rules = InAppRules::default();
        for file in [
            "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde_json-1.0.0/src/de.rs",
            "/usr/local/cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.0/src/de.rs",
            "C:\\Users\\u\\.cargo\\registry\\src\\index.crates.io-1949cf8c6b5b557f\\serde-1.0.0\\src\\de.rs",
            "/opt/cargo/git/checkouts/dep-0123/abcdef1/src/lib.rs",
            "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/slice/index.rs",
            "/home/u/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/lib/rustlib/src/rust/library/core/src/slice/index.rs",
        ] {
            assert!(!rules.judge("from_str", Some(file)), "{file}");
        }
        // The app's own sources, whatever their directory is called.
        for file in [
            "src/main.rs",
            "/srv/registry/src/main.rs",
            "/srv/rustc/src/main.rs",
        ] {
            assert!(rules.judge("shop::checkout", Some(file)), "{file}");
        }
    }

    #[test]
    fn own_sources_are_never_in_app() {
        let rules = InAppRules::default();
        let own = Path::new(file!()).with_file_name("hook.rs");
        let own = own.to_str().unwrap();
        assert!(!rules.judge("on_panic", Some(own)));
        let nested = Path::new(file!()).with_file_name("http").join("layer.rs");
        assert!(!rules.judge("call", nested.to_str()));
        // The short form a dependency's path is stored in, and a path under a build directory.
        assert!(!rules.judge(
            "on_panic",
            Some(&crate::pipeline::resolve::frames::short_file(own))
        ));
        if Path::new(own).is_relative() {
            assert!(!rules.judge("on_panic", Some(&format!("/srv/build/{own}"))));
        }
        // Another crate's file of the same name, or a directory that only ends alike.
        assert!(rules.judge("on_panic", Some("/srv/app/src/hook.rs")));
        assert!(rules.judge("on_panic", Some(&format!("/srv/my{own}"))));
    }

    #[test]
    fn subjects_are_read_from_qualified_paths() {
        assert_eq!(
            subjects_of("<usize as core::slice::index::SliceIndex<[T]>>::index"),
            ([None, Some("core::slice::index::SliceIndex<[T]>")], true)
        );
        assert_eq!(
            subjects_of("<core::pin::Pin<P> as core::future::Future>::poll"),
            (
                [Some("core::pin::Pin<P>"), Some("core::future::Future")],
                true
            )
        );
        assert_eq!(
            subjects_of("<&'a dyn app::Store as app::Read>::get"),
            ([Some("app::Store"), Some("app::Read")], true)
        );
        assert_eq!(
            subjects_of("<(A, B) as app::Pair>::left"),
            ([None, Some("app::Pair")], true)
        );
        assert_eq!(
            subjects_of("app::f::<u8>"),
            ([Some("app::f::<u8>"), None], false)
        );
        // Not closed: read as a plain path rather than guessed at.
        assert_eq!(
            subjects_of("<app::X as"),
            ([Some("<app::X as"), None], false)
        );
    }
}
