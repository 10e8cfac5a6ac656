//! The chain of active captured calls: every function annotated with `#[capture]` or
//! `#[sensitive_variables]` registers a frame describing its call in a thread-local list
//! while its body runs, and removes it when the body returns or unwinds. The panic hook and
//! [`capture_error`](crate::capture_error) read the list with [`snapshot`].
//!
//! # Cost
//!
//! Registering is a push and a pop on a thread-local vector; nothing is formatted. A frame
//! holds the arguments as [`ArgValue`]s: shared references and `Copy` primitives as they
//! are (formatted only when an event needs them), other values as their text formatted at
//! entry, because the body may move or mutate them.
//!
//! # Async
//!
//! An `async fn` registers its frame around each poll of its body, not for its whole life.
//! Polls nest like calls, so a task being polled sees exactly the captured calls on its own
//! poll path: its own nested captured `async fn`s and the synchronous captured calls around
//! the poll, never the frames of a task that ran before it on the same thread.
//!
//! # Errors propagated through several captured calls
//!
//! When a captured call returns `Err`, it records here what it returned (type name,
//! message, its depth, the secrets of its frame). A captured call further out that returns
//! an `Err` of the same type and message right after is the same error propagated with `?`:
//! it is not stored again (the first event already lists the outer calls in its chain).
//! The record is cleared when any captured call starts, so an error handled and then
//! returned again later is stored again. The secrets of the frames the error came through
//! are kept with the record, so an outer event (or a panic on `unwrap()`) scrubs them too,
//! even when they came from a function with `#[sensitive_variables]` only.

use std::cell::RefCell;
use std::fmt::{self, Debug, Display};

use crate::event::{Argument, CapturedCall, Level};
use crate::redact::PLACEHOLDER;

/// What a captured function is, fixed at compile time.
#[derive(Debug)]
pub struct Site {
    /// The function's path, read from the type name of an item nested in it.
    pub path: fn() -> &'static str,
    /// `#[capture(name = "...")]`, shown instead of the path.
    pub name: Option<&'static str>,
    /// Source file of the signature.
    pub file: &'static str,
    /// Line of the signature.
    pub line: u32,
    /// Level of the events stored for its errors.
    pub level: Level,
    /// `#[capture]` is on the function: an `Err` it returns is stored.
    pub reports_errors: bool,
    /// The arguments kept in a frame, in signature order.
    pub args: &'static [ArgMeta],
}

/// One kept argument.
#[derive(Debug)]
pub struct ArgMeta {
    /// Parameter name as written.
    pub name: &'static str,
    /// Listed in `#[sensitive_variables]`: shown as the placeholder, its value scrubbed.
    pub sensitive: bool,
    /// Not skipped: listed in the event's arguments.
    pub shown: bool,
}

/// An argument's value as kept while the call runs.
pub enum ArgValue<'a> {
    /// A shared reference, formatted with `Debug` when needed.
    Debug(&'a (dyn Debug + Sync)),
    /// A shared reference to a sensitive value whose secret text is its `Display`.
    Display(&'a (dyn Display + Sync)),
    /// A `&str`.
    Str(&'a str),
    /// A signed integer.
    Int(i128),
    /// An unsigned integer.
    Uint(u128),
    /// An `f32`.
    F32(f32),
    /// An `f64`.
    F64(f64),
    /// A `bool`.
    Bool(bool),
    /// A `char`.
    Char(char),
    /// Text formatted at entry.
    Text(String),
    /// The type name of a value that has neither `Debug` nor (when sensitive) `Display`.
    TypeName(&'static str),
}

impl Debug for ArgValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown_text())
    }
}

macro_rules! arg_from {
    ($variant:ident as $wide:ty: $($t:ty),*) => {$(
        impl From<$t> for ArgValue<'_> {
            fn from(v: $t) -> Self {
                ArgValue::$variant(<$wide>::from(v))
            }
        }
    )*};
}
arg_from!(Int as i128: i8, i16, i32, i64, i128);
arg_from!(Uint as u128: u8, u16, u32, u64, u128);
arg_from!(F32 as f32: f32);
arg_from!(F64 as f64: f64);
arg_from!(Bool as bool: bool);
arg_from!(Char as char: char);

impl From<isize> for ArgValue<'_> {
    fn from(v: isize) -> Self {
        // isize is at most 64 bits on every supported target.
        ArgValue::Int(v as i128)
    }
}

impl From<usize> for ArgValue<'_> {
    fn from(v: usize) -> Self {
        ArgValue::Uint(v as u128)
    }
}

impl ArgValue<'_> {
    /// The text stored for a non-sensitive argument: its `Debug` text.
    fn shown_text(&self) -> String {
        match self {
            ArgValue::Debug(v) => format!("{v:?}"),
            ArgValue::Display(_) => PLACEHOLDER.to_owned(),
            ArgValue::Str(s) => format!("{s:?}"),
            ArgValue::Int(v) => v.to_string(),
            ArgValue::Uint(v) => v.to_string(),
            ArgValue::F32(v) => format!("{v:?}"),
            ArgValue::F64(v) => format!("{v:?}"),
            ArgValue::Bool(v) => v.to_string(),
            ArgValue::Char(v) => format!("{v:?}"),
            ArgValue::Text(t) => t.clone(),
            ArgValue::TypeName(t) => (*t).to_owned(),
        }
    }

    /// The texts of a sensitive value to scrub from the event: the raw text (`Display` for
    /// strings and what has it, else `Debug`) and its escaped form, as it appears inside a
    /// `Debug` text (`"a\"b"` holds `a\"b`, not `a"b`).
    fn secret_texts(&self, out: &mut Vec<String>) {
        let raw = match self {
            ArgValue::Debug(v) => format!("{v:?}"),
            ArgValue::Display(v) => v.to_string(),
            ArgValue::Str(s) => (*s).to_owned(),
            ArgValue::Int(v) => v.to_string(),
            ArgValue::Uint(v) => v.to_string(),
            ArgValue::F32(v) => v.to_string(),
            ArgValue::F64(v) => v.to_string(),
            ArgValue::Bool(v) => v.to_string(),
            ArgValue::Char(v) => v.to_string(),
            ArgValue::Text(t) => t.clone(),
            ArgValue::TypeName(_) => return,
        };
        // Exactly what `{:?}` of a string writes, without its quotes.
        let debug = format!("{raw:?}");
        let escaped = debug
            .strip_prefix('"')
            .and_then(|d| d.strip_suffix('"'))
            .unwrap_or(&debug);
        if escaped != raw {
            out.push(escaped.to_owned());
        }
        out.push(raw);
    }
}

/// One call of a captured function: its site and its arguments.
#[derive(Debug)]
pub struct Frame<'a> {
    site: &'static Site,
    args: &'a [ArgValue<'a>],
}

impl<'a> Frame<'a> {
    /// A frame of `site` with `args` (one per entry of `site.args`).
    #[inline]
    pub fn new(site: &'static Site, args: &'a [ArgValue<'a>]) -> Self {
        Frame { site, args }
    }

    pub(crate) fn site(&self) -> &'static Site {
        self.site
    }

    /// The call as stored, and the secret texts of its sensitive arguments.
    pub(crate) fn describe(&self, secrets: &mut Vec<String>) -> CapturedCall {
        let mut args = Vec::with_capacity(self.args.len());
        for (meta, value) in self.site.args.iter().zip(self.args) {
            if meta.sensitive {
                value.secret_texts(secrets);
            }
            if meta.shown {
                args.push(Argument {
                    name: meta.name.to_owned(),
                    value: if meta.sensitive {
                        PLACEHOLDER.to_owned()
                    } else {
                        value.shown_text()
                    },
                });
            }
        }
        CapturedCall {
            function: match self.site.name {
                Some(name) => name.to_owned(),
                None => (self.site.path)().to_owned(),
            },
            file: self.site.file.to_owned(),
            line: self.site.line,
            args,
        }
    }
}

/// A registered frame, its lifetime erased (see [`describe_registered`]).
type FramePtr = *const Frame<'static>;

/// An `Err` that a captured call returned, possibly on its way out through outer calls.
struct Propagating {
    type_name: &'static str,
    message: String,
    depth: usize,
    stored: bool,
    secrets: Vec<String>,
}

struct State {
    frames: Vec<FramePtr>,
    propagating: Option<Propagating>,
}

thread_local! {
    static STATE: RefCell<State> = const {
        RefCell::new(State { frames: Vec::new(), propagating: None })
    };
}

/// Keeps a frame registered while alive. Private: only [`call`] makes one, and drops it
/// before the frame it points to can go away.
struct Entered {
    ptr: FramePtr,
    registered: bool,
}

impl Entered {
    #[inline]
    fn new(frame: &Frame<'_>) -> Self {
        let ptr: FramePtr = (frame as *const Frame<'_>).cast();
        // Fails only while this thread's state is borrowed (a `Debug` impl run by
        // `snapshot` calling a captured function) or destroyed: the call is then not listed.
        let registered = STATE
            .try_with(|s| match s.try_borrow_mut() {
                Ok(mut s) => {
                    s.propagating = None;
                    s.frames.push(ptr);
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        Entered { ptr, registered }
    }
}

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        if !self.registered {
            return;
        }
        let ptr = self.ptr;
        // The state is never borrowed while user code runs (snapshot copies the list out),
        // so this borrow succeeds whenever the thread-local is alive.
        let _ = STATE.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if s.frames.last() == Some(&ptr) {
                    s.frames.pop();
                } else if let Some(i) = s.frames.iter().rposition(|p| *p == ptr) {
                    s.frames.remove(i);
                }
            }
        });
    }
}

/// Runs `body` with `frame` registered in this thread's chain.
#[inline]
pub fn call<R>(frame: &Frame<'_>, body: impl FnOnce() -> R) -> R {
    let _entered = Entered::new(frame);
    body()
}

/// The active calls of the current thread (for an `async fn`, of the task being polled),
/// outermost first, with the secret texts to scrub from an event.
#[derive(Debug, Default)]
pub(crate) struct ChainSnapshot {
    pub(crate) calls: Vec<CapturedCall>,
    pub(crate) secrets: Vec<String>,
}

/// Describes the active calls. Never panics by itself and never blocks; the arguments'
/// `Debug` impls run here (a `Debug` impl that panics inside the panic hook aborts the
/// process, as any panic in a panic hook does).
pub(crate) fn snapshot() -> ChainSnapshot {
    let mut out = ChainSnapshot::default();
    let frames = STATE
        .try_with(|s| match s.try_borrow() {
            Ok(s) => {
                if let Some(p) = &s.propagating {
                    out.secrets.extend(p.secrets.iter().cloned());
                }
                s.frames.clone()
            }
            Err(_) => Vec::new(),
        })
        .unwrap_or_default();
    describe_registered(&frames, &mut out);
    out
}

/// Describes frames read from this thread's list.
#[allow(unsafe_code)]
fn describe_registered(frames: &[FramePtr], out: &mut ChainSnapshot) {
    for &ptr in frames {
        // SAFETY: `ptr` was read from this thread's list, which holds only pointers pushed
        // by `Entered::new` from a `&Frame` borrowed by `call` for the whole time its
        // `Entered` lives; `Entered::drop` removes the pointer before `call` returns or
        // unwinds. `snapshot` runs on the same thread, nested inside those `call`s (the
        // frames are on the stack below it, or in a future pinned and being polled below
        // it), so each frame and everything it borrows is alive, and only shared
        // references to it exist. The erased lifetime is shortened back to this loop.
        let frame: &Frame<'_> = unsafe { &*ptr };
        let call = frame.describe(&mut out.secrets);
        out.calls.push(call);
    }
}

/// How many calls are registered on this thread now.
fn depth() -> usize {
    STATE
        .try_with(|s| s.try_borrow().map(|s| s.frames.len()).unwrap_or(0))
        .unwrap_or(0)
}

/// What an `Err` returned by a captured function is made of.
#[derive(Debug)]
pub struct ErrorParts {
    /// `std::any::type_name` of the error type.
    pub type_name: &'static str,
    /// Its `Display` text, else its `Debug` text, else its type name.
    pub message: String,
    /// Its `source()` chain, outermost first, when it is an `std::error::Error`.
    pub sources: Vec<String>,
}

/// Called after `frame`'s body returned `Err` (the frame is no longer registered): stores
/// the error unless it is one a call further in already stored, and records it for the
/// calls further out.
pub(crate) fn report_error(frame: &Frame<'_>, error: ErrorParts) {
    let site = frame.site();
    let depth = depth() + 1;
    let previous = STATE
        .try_with(|s| {
            s.try_borrow_mut()
                .ok()
                .and_then(|mut s| s.propagating.take())
        })
        .ok()
        .flatten();
    let mut secrets = Vec::new();
    let mut already_stored = false;
    if let Some(p) = previous.filter(|p| p.depth > depth) {
        already_stored = p.stored && p.type_name == error.type_name && p.message == error.message;
        secrets = p.secrets;
    }
    let function = frame.describe(&mut secrets);
    if site.reports_errors && !already_stored {
        let chain = snapshot();
        secrets.extend(chain.secrets);
        crate::capture::capture_function_error(crate::capture::FunctionError {
            level: site.level,
            error_type: error.type_name.to_owned(),
            message: error.message.clone(),
            sources: error.sources,
            function,
            chain: chain.calls,
            secrets: secrets.clone(),
        });
    }
    let record = Propagating {
        type_name: error.type_name,
        message: error.message,
        depth,
        stored: already_stored || site.reports_errors,
        secrets,
    };
    let _ = STATE.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.propagating = Some(record);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    static SITE: Site = Site {
        path: || "app::login",
        name: None,
        file: "src/app.rs",
        line: 7,
        level: Level::Error,
        reports_errors: true,
        args: &[
            ArgMeta {
                name: "user",
                sensitive: false,
                shown: true,
            },
            ArgMeta {
                name: "pw",
                sensitive: true,
                shown: true,
            },
            ArgMeta {
                name: "n",
                sensitive: false,
                shown: true,
            },
        ],
    };

    #[test]
    fn frames_are_listed_while_their_call_runs() {
        let args = [
            ArgValue::Str("ann"),
            ArgValue::Str("hun\"ter2"),
            ArgValue::from(3u8),
        ];
        let frame = Frame::new(&SITE, &args);
        let inside = call(&frame, || call(&frame, snapshot));
        assert_eq!(inside.calls.len(), 2);
        let c = &inside.calls[0];
        assert_eq!(c.function, "app::login");
        assert_eq!(c.args[0].value, "\"ann\"");
        assert_eq!(c.args[1].value, PLACEHOLDER);
        assert_eq!(c.args[2].value, "3");
        assert!(inside.secrets.contains(&"hun\"ter2".to_owned()));
        assert!(inside.secrets.contains(&"hun\\\"ter2".to_owned()));
        assert!(snapshot().calls.is_empty());
    }

    #[test]
    fn a_panicking_body_leaves_no_frame_behind() {
        let args = [ArgValue::Str("a"), ArgValue::Str("b"), ArgValue::from(1u8)];
        let frame = Frame::new(&SITE, &args);
        let r = std::panic::catch_unwind(|| call(&frame, || panic!("boom")));
        assert!(r.is_err());
        assert!(snapshot().calls.is_empty());
    }
}
