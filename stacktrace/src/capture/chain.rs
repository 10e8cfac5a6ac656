//! The chain of active captured calls: every function annotated with `#[capture]` or
//! `#[sensitive_variables]` registers a frame describing its call in a thread-local list
//! while its body runs, and removes it when the body returns or unwinds. The panic hook and
//! [`capture_error`](crate::capture_error) read the list with [`snapshot`].
//!
//! # Cost
//!
//! Registering links a node that lives on the stack of the call into a thread-local list,
//! and unlinks it after: two thread-local cell writes each way, no allocation, nothing
//! formatted. A frame
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

use std::cell::{Cell, RefCell};
use std::fmt::{self, Debug, Display};
use std::future::Future;
use std::panic::RefUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::capture::function_error::{report_function_error, FunctionError};
use crate::capture::guarded::{debug_text, guarded, on_another_thread};
use crate::model::event::{Argument, CapturedCall, Level, PLACEHOLDER};

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
    /// Its slot in the call counters, given on its first counted call.
    pub calls: crate::capture::calls::CallSlot,
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
    /// A shared reference, formatted with `Debug` when needed. `Sync` and
    /// `RefUnwindSafe` so that the frame does not make a future `!Send` or `!UnwindSafe`
    /// that was not.
    Debug(&'a (dyn Debug + Sync + RefUnwindSafe)),
    /// A shared reference to a sensitive value whose secret text is its `Display`.
    Display(&'a (dyn Display + Sync + RefUnwindSafe)),
    /// A `&str`.
    Str(&'a str),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
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
    /// An owned `String` argument, copied at entry (cheaper than formatting it).
    OwnedStr(String),
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
arg_from!(Int as i64: i8, i16, i32, i64);
arg_from!(Uint as u64: u8, u16, u32, u64);
arg_from!(F32 as f32: f32);
arg_from!(F64 as f64: f64);
arg_from!(Bool as bool: bool);
arg_from!(Char as char: char);

impl From<isize> for ArgValue<'_> {
    fn from(v: isize) -> Self {
        // isize is at most 64 bits on every supported target.
        ArgValue::Int(v as i64)
    }
}

impl From<usize> for ArgValue<'_> {
    fn from(v: usize) -> Self {
        ArgValue::Uint(v as u64)
    }
}

// Rare enough to be formatted at entry, and it keeps `ArgValue` at 8-byte alignment.
impl From<i128> for ArgValue<'_> {
    fn from(v: i128) -> Self {
        ArgValue::Text(v.to_string())
    }
}

impl From<u128> for ArgValue<'_> {
    fn from(v: u128) -> Self {
        ArgValue::Text(v.to_string())
    }
}

impl ArgValue<'_> {
    /// The text stored for a non-sensitive argument: its `Debug` text.
    fn shown_text(&self) -> String {
        match self {
            ArgValue::Debug(v) => debug_text(v),
            ArgValue::Display(_) => PLACEHOLDER.to_owned(),
            ArgValue::Str(s) => format!("{s:?}"),
            ArgValue::Int(v) => v.to_string(),
            ArgValue::Uint(v) => v.to_string(),
            ArgValue::F32(v) => format!("{v:?}"),
            ArgValue::F64(v) => format!("{v:?}"),
            ArgValue::Bool(v) => v.to_string(),
            ArgValue::Char(v) => format!("{v:?}"),
            ArgValue::Text(t) => t.clone(),
            ArgValue::OwnedStr(s) => format!("{s:?}"),
            ArgValue::TypeName(t) => (*t).to_owned(),
        }
    }

    /// The texts of a sensitive value to scrub from the event: the raw text (`Display` for
    /// strings and what has it, else `Debug`) and its escaped form, as it appears inside a
    /// `Debug` text (`"a\"b"` holds `a\"b`, not `a"b`).
    fn secret_texts(&self, out: &mut Vec<String>) {
        let raw = match self {
            // A value whose formatting panicked has no text to scrub.
            ArgValue::Debug(v) => match guarded(|| Some(format!("{v:?}")), |_| None) {
                Some(text) => text,
                None => return,
            },
            ArgValue::Display(v) => match guarded(|| Some(v.to_string()), |_| None) {
                Some(text) => text,
                None => return,
            },
            ArgValue::Str(s) => (*s).to_owned(),
            ArgValue::Int(v) => v.to_string(),
            ArgValue::Uint(v) => v.to_string(),
            ArgValue::F32(v) => v.to_string(),
            ArgValue::F64(v) => v.to_string(),
            ArgValue::Bool(v) => v.to_string(),
            ArgValue::Char(v) => v.to_string(),
            ArgValue::Text(t) | ArgValue::OwnedStr(t) => t.clone(),
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

/// A registered call: a node of an intrusive list that lives on the stack of [`call`],
/// linked from this thread's `TOP`. The frame's lifetime is erased (see
/// [`describe_registered`]).
struct Node {
    frame: *const Frame<'static>,
    below: Cell<*const Node>,
}

/// The top of this thread's list, and how many calls were registered so far. Plain cells
/// without a destructor: the cheapest thread-local there is.
struct Top {
    node: Cell<*const Node>,
    pushes: Cell<u64>,
}

thread_local! {
    static TOP: Top = const {
        Top { node: Cell::new(std::ptr::null()), pushes: Cell::new(0) }
    };
}

/// An `Err` that a captured call returned, possibly on its way out through outer calls.
struct Propagating {
    type_name: &'static str,
    message: String,
    depth: usize,
    stored: bool,
    secrets: Vec<String>,
    /// The value of `Top::pushes` when it was recorded: a call registered since means the
    /// error was handled.
    pushes: u64,
}

thread_local! {
    static PROPAGATING: RefCell<Option<Propagating>> = const { RefCell::new(None) };
}

/// Runs `body` with `frame` registered in this thread's chain; when `COUNTED`, a panic
/// unwinding out of `body` is a failure of the frame's function.
///
/// `COUNTED` is a constant of the expansion, not a field of the site read at run time: an
/// uncounted call has no counting code at all, and a counted one none on its way out but
/// the forgetting of a guard.
#[inline]
pub fn call<const COUNTED: bool, R>(frame: &Frame<'_>, body: impl FnOnce() -> R) -> R {
    let node = Node {
        frame: (frame as *const Frame<'_>).cast(),
        below: Cell::new(std::ptr::null()),
    };
    let _linked = Linked::new(&node);
    if COUNTED {
        let unwinding = FailOnUnwind(frame.site);
        let out = body();
        std::mem::forget(unwinding);
        out
    } else {
        body()
    }
}

/// Counts a failure of its site when dropped. Made before a counted body runs and forgotten
/// when it returns, it is dropped only by a panic unwinding out of the body: the success
/// path asks nothing (not `std::thread::panicking()`), a panic caught inside the body is no
/// failure, and neither is a captured call that a destructor makes during an unwind.
struct FailOnUnwind(&'static Site);

impl Drop for FailOnUnwind {
    fn drop(&mut self) {
        crate::capture::calls::count_failure(self.0);
    }
}

/// The body of a captured `async fn`, polled with the function's frame registered; when
/// `COUNTED`, a panic unwinding out of a poll is a failure of the function.
///
/// Owning the body (rather than polling it through a `&mut`) keeps the `async fn`'s future
/// `Send`, `Sync` and `UnwindSafe` exactly when it was without the attribute.
#[derive(Debug)]
pub struct Instrumented<'a, F, const COUNTED: bool> {
    frame: &'a Frame<'a>,
    body: F,
}

impl<'a, F, const COUNTED: bool> Instrumented<'a, F, COUNTED> {
    /// `body` to be polled with `frame` registered.
    #[inline]
    pub fn new(frame: &'a Frame<'a>, body: F) -> Self {
        Instrumented { frame, body }
    }
}

impl<F: Future, const COUNTED: bool> Future for Instrumented<'_, F, COUNTED> {
    type Output = F::Output;

    #[inline]
    #[allow(unsafe_code)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `body` is pinned structurally: it is never moved out of `self` nor
        // through this `&mut` (only re-pinned below), `Instrumented` has no `Drop` impl, and
        // it is `Unpin` only when `F` is (auto trait; `&Frame` is `Unpin`).
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this.body` stays where the pinned `self` put it.
        let body = unsafe { Pin::new_unchecked(&mut this.body) };
        call::<COUNTED, _>(this.frame, || body.poll(cx))
    }
}

/// Keeps a node linked while alive. Private: only [`call`] makes one, for a node (and a
/// frame) that outlive it; being locals of nested calls, they are dropped in reverse order
/// of creation, so each unlinks the node on top.
struct Linked<'n> {
    node: &'n Node,
    registered: bool,
}

impl<'n> Linked<'n> {
    #[inline]
    fn new(node: &'n Node) -> Self {
        let registered = TOP
            .try_with(|top| {
                node.below.set(top.node.get());
                top.node.set(node);
                top.pushes.set(top.pushes.get().wrapping_add(1));
            })
            .is_ok();
        Linked { node, registered }
    }
}

impl Drop for Linked<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.registered {
            let below = self.node.below.get();
            let _ = TOP.try_with(|top| top.node.set(below));
        }
    }
}

/// The active calls of the current thread (for an `async fn`, of the task being polled),
/// outermost first, with the secret texts to scrub from an event.
#[derive(Debug, Default)]
pub(crate) struct ChainSnapshot {
    pub(crate) calls: Vec<CapturedCall>,
    pub(crate) secrets: Vec<String>,
}

/// Describes the active calls. Never panics by itself; the arguments' `Debug` impls run
/// here, guarded, and on another thread while this thread panics (see
/// [`describe_registered`]).
pub(crate) fn snapshot() -> ChainSnapshot {
    let mut out = ChainSnapshot::default();
    let pushes = TOP.try_with(|t| t.pushes.get()).unwrap_or(0);
    let _ = PROPAGATING.try_with(|p| {
        if let Ok(p) = p.try_borrow() {
            if let Some(p) = p.as_ref().filter(|p| p.pushes == pushes) {
                out.secrets.extend(p.secrets.iter().cloned());
            }
        }
    });
    let top = TOP.try_with(|t| t.node.get()).unwrap_or(std::ptr::null());
    describe_registered(top, &mut out);
    out
}

/// The frames listed from `top` down, innermost first.
#[allow(unsafe_code)]
fn registered_frames(top: *const Node) -> Vec<*const Frame<'static>> {
    let mut frames = Vec::new();
    let mut next = top;
    while !next.is_null() {
        // SAFETY: `top` was read from this thread's `TOP`, which only ever points to a
        // `Node` linked by `Linked::new` in a `call` still running on this thread: the
        // matching `Linked::drop`, which runs before `call` returns or unwinds, resets
        // `TOP` to the node below. Callers run on this thread nested inside those calls,
        // so every node reachable from `top` is alive, and only shared references to it
        // exist.
        let node = unsafe { &*next };
        frames.push(node.frame);
        next = node.below.get();
    }
    frames
}

/// Describes the calls listed from `top` down, outermost first.
///
/// While this thread panics (inside a panic hook, where a second panic aborts the process
/// before anything can catch it), the arguments held by reference are formatted on the
/// formatting thread, where a panicking `Debug` is caught like anywhere else; this thread
/// waits for it. The values are `Sync`, which is why they are held by reference at all;
/// the other arguments were formatted at entry. Formatting every argument at entry instead
/// would cost each successful call far more than the call (see the macros bench); this
/// costs a hand-over to another thread per panic whose captured calls hold such arguments.
#[allow(unsafe_code)]
fn describe_registered(top: *const Node, out: &mut ChainSnapshot) {
    let frames: Vec<&Frame<'_>> = registered_frames(top)
        .into_iter()
        .rev()
        // SAFETY: as in `registered_frames`: the node pointing to this frame is linked, so
        // the `call` that borrows the frame (a local of the captured function, or of its
        // pinned future being polled) is running below us, and the frame and everything
        // it borrows are alive until this function returns: the erased lifetime is
        // shortened back to it. The thread that formats them is waited for before this
        // function returns. Calls made by the `Debug` impls on this thread link above
        // `top` and unlink before they return.
        .map(|ptr| unsafe { &*ptr })
        .collect();
    let describe_all = || {
        let mut secrets = Vec::new();
        let calls: Vec<CapturedCall> = frames.iter().map(|f| f.describe(&mut secrets)).collect();
        (calls, secrets)
    };
    let formats_references = || {
        frames.iter().any(|f| {
            f.args
                .iter()
                .any(|a| matches!(a, ArgValue::Debug(_) | ArgValue::Display(_)))
        })
    };
    let (calls, secrets) = if std::thread::panicking() && formats_references() {
        // Where no thread can be started, the values are formatted here, as a last resort.
        on_another_thread(describe_all).unwrap_or_else(describe_all)
    } else {
        describe_all()
    };
    out.calls.extend(calls);
    out.secrets.extend(secrets);
}

/// The secret texts of the sensitive arguments of the calls active on this thread (and of
/// an error propagating through them), without describing the calls: what a breadcrumb
/// copied into the crash record is scrubbed of, as an event would be. Nothing while the
/// thread panics, where formatting a value could panic again.
#[allow(unsafe_code)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn active_secret_texts(out: &mut Vec<String>) {
    if std::thread::panicking() {
        return;
    }
    let pushes = TOP.try_with(|t| t.pushes.get()).unwrap_or(0);
    let _ = PROPAGATING.try_with(|p| {
        if let Ok(p) = p.try_borrow() {
            if let Some(p) = p.as_ref().filter(|p| p.pushes == pushes) {
                out.extend(p.secrets.iter().cloned());
            }
        }
    });
    let top = TOP.try_with(|t| t.node.get()).unwrap_or(std::ptr::null());
    for ptr in registered_frames(top) {
        // SAFETY: as in `describe_registered`: every frame reachable from this thread's
        // `TOP` belongs to a `call` still running below us.
        let frame = unsafe { &*ptr };
        for (meta, value) in frame.site.args.iter().zip(frame.args) {
            if meta.sensitive {
                value.secret_texts(out);
            }
        }
    }
}

/// How many calls are registered on this thread now.
fn depth() -> usize {
    let top = TOP.try_with(|t| t.node.get()).unwrap_or(std::ptr::null());
    registered_frames(top).len()
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
    let pushes = TOP.try_with(|t| t.pushes.get()).unwrap_or(0);
    let previous = PROPAGATING
        .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take()))
        .ok()
        .flatten()
        .filter(|p| p.pushes == pushes);
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
        report_function_error(FunctionError {
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
        pushes: TOP.try_with(|t| t.pushes.get()).unwrap_or(0),
    };
    let _ = PROPAGATING.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            *p = Some(record);
        }
    });
}

#[cfg(test)]
mod tests;
