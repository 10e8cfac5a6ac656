//! Attribute macros of the [`stacktrace`](https://docs.rs/stacktrace) crate:
//! `#[capture]` and `#[sensitive_variables]`. Use them through `stacktrace`, which
//! re-exports them with their documentation; the code they expand to names the runtime only
//! through `::stacktrace::__private`.
//!
//! The expansion runs in phases, one file each: `args` parses the attribute arguments,
//! `valid` checks them against the function, `expand` writes the instrumented function,
//! and `fallback` writes what is emitted on error (the user's function unchanged, followed
//! by the errors).

use proc_macro::TokenStream;

mod args;
mod expand;
mod fallback;
mod valid;

/// Captures a function: an `Err` it returns is stored as an event, and a panic inside it
/// lists the call, with its arguments.
///
/// ```
/// use stacktrace::capture;
///
/// #[derive(Debug)]
/// struct Basket { items: Vec<u32> }
///
/// #[capture]
/// fn total(customer: &str, basket: &Basket) -> Result<u32, String> {
///     if basket.items.is_empty() {
///         return Err(format!("empty basket for {customer}"));
///     }
///     Ok(basket.items.iter().sum())
/// }
///
/// assert_eq!(total("ann", &Basket { items: vec![2, 3] }), Ok(5));
/// assert!(total("bob", &Basket { items: vec![] }).is_err()); // stored, then returned
/// ```
///
/// # When the function returns `Err`
///
/// The `Err` is returned unchanged after an event is queued (when the runtime is installed,
/// enabled and the event passes sampling and rate limits): level `error` (see `level`), the
/// error's type name, its message (`Display`, else `Debug`, else the type name), its
/// `source()` chain when it is a `std::error::Error`, the function's full path, file and
/// line, the backtrace, the arguments by name, and the captured calls around it. Any
/// `Result<T, E>` counts, however it is spelled (`io::Result<T>`, `anyhow::Result<T>`, your
/// own alias); other return types are never reported.
///
/// # Arguments
///
/// Each argument is stored by name with its `Debug` text; a type without `Debug` is stored
/// as its type name, without a compile error (in a generic function, a `T` without a `Debug`
/// bound is stored as the name of the type it was called with). Arguments bound by a pattern
/// are stored by the names the pattern binds.
///
/// Nothing is formatted on the success path when it can be avoided: shared references
/// (`&T`, `&str`, `&self`) and `Copy` primitives (`u64`, `bool`, `char`, ...) are kept as
/// they are and formatted only when an event needs them, so they show the value at the time
/// of the event. Owned values, `&mut` references and `self` by value are formatted when the
/// call starts (the body may move or change them), and so are references to types that are
/// not `Sync + RefUnwindSafe` (the frame must not make an `async fn` future lose `Send` or
/// `UnwindSafe`).
///
/// The `Debug` impls of arguments run when an event is built, in a panic's case inside the
/// panic hook: like any code in a panic hook, they must not panic.
///
/// # Panics
///
/// While the body runs, the call is registered in a per-thread chain; a panic's event lists
/// the captured calls active on the panicking thread, outermost first, each with its
/// arguments. An `async fn` registers its call while its body is polled, so the chain is the
/// one of the task being polled (its own nested captured calls, and the synchronous ones
/// around the poll), never that of another task that ran on the same thread. A function
/// that returns `impl Future` without being an `async fn` is registered only while it
/// builds the future.
///
/// # Errors propagated with `?`
///
/// An error is stored once, by the innermost captured function that returns it: a captured
/// function that returns an `Err` of the same type and with the same message as the one a
/// captured call inside it has just returned does not store it again (that event already
/// lists the outer calls in its chain). An error converted on the way (`?` through `From`
/// into another type or message) is a new error and is stored again. An error that was
/// handled, followed by another captured call, and then returned again is stored again.
///
/// # Options
///
/// - `level = "warning"`: the level of the stored errors: `debug`, `info`, `warning`,
///   `error` (the default) or `fatal`. Checked at compile time.
/// - `skip(a, b)`: leaves these arguments out of events.
/// - `skip_all`: leaves every argument out.
/// - `name = "checkout.pay"`: the name events show instead of the function's path.
/// - `uncounted`: its calls and failures are not counted (see below).
///
/// # Calls and failures
///
/// Each call of a captured function is counted, and so is each failure (an `Err` returned
/// or a panic unwinding through it), by release, whether or not its event is stored: the
/// counts are kept per thread, summed by the background writer now and then and when the
/// guard is dropped, and read with `Store::functions`, `stacktrace functions` and the
/// dashboard. A count costs a few nanoseconds; `uncounted` leaves it out of a function
/// that runs in the hottest loops.
///
/// ```
/// #[stacktrace::capture(level = "warning", skip(payload), name = "sync.push")]
/// async fn push(batch: u32, payload: Vec<u8>) -> std::io::Result<()> {
///     let _ = (batch, payload);
///     Ok(())
/// }
/// ```
///
/// # Compile errors
///
/// An unknown or repeated option, a `skip` name that is not a parameter, an unknown level,
/// `const fn`, and use on anything but a function with a body are compile errors at the
/// offending token; the function is still emitted as written, so the rest of the crate
/// compiles. The attribute works on free functions, methods (`&self`, `&mut self`, `self`),
/// associated functions, generic functions, `impl Trait` arguments and returns, `unsafe fn`
/// and `async fn`, and combines with `#[sensitive_variables]` in either order.
#[proc_macro_attribute]
pub fn capture(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args::Kind::Capture, args.into(), item.into()).into()
}

/// Hides arguments: the named ones (or, without names, all of them) are stored as
/// `**********` in every event, and their values are scrubbed from every other text of the
/// event. Django's `@sensitive_variables`, without its ordering rule.
///
/// ```
/// use stacktrace::{capture, sensitive_variables};
///
/// #[capture]
/// #[sensitive_variables("card_number", cvv)] // strings or identifiers
/// fn pay(order: u64, card_number: &str, cvv: &str) -> Result<(), String> {
///     // The message repeats the card number; the stored event shows `**********`.
///     Err(format!("card {card_number} declined for order {order}"))
/// }
/// # let _ = pay(1, "4111", "123");
///
/// #[sensitive_variables] // every argument
/// fn derive_key(passphrase: &str, salt: &[u8]) -> Vec<u8> {
///     passphrase.bytes().chain(salt.iter().copied()).collect()
/// }
/// # let _ = derive_key("x", b"y");
/// ```
///
/// - It goes above or below `#[capture]`; both orders expand the same way.
/// - On a function without `#[capture]`, the call still joins the chain of captured calls,
///   so a panic inside it lists the call with the sensitive arguments hidden and the others
///   shown; an `Err` it returns is not stored by it.
/// - The value of a sensitive argument (its `Display` text for strings and other types
///   that have one, else its `Debug` text; and that text as it appears escaped inside a
///   `Debug` text) is scrubbed from the error message, its sources, the panic message and
///   every other argument of the event. The values travel with an `Err` the function
///   returns, so an outer captured function storing that error, or a panic on
///   `.unwrap()` of it, scrubs them too; they are kept until the next captured call
///   starts on the thread.
/// - A name that is not a parameter, or a name given twice, is a compile error at that
///   name; the function is still emitted as written.
#[proc_macro_attribute]
pub fn sensitive_variables(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args::Kind::Sensitive, args.into(), item.into()).into()
}
