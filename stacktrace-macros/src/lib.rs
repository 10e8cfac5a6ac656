//! Attribute macros of the [`stacktrace`](https://docs.rs/stacktrace) crate:
//! `#[capture]` and `#[sensitive_variables]`. Use them through `stacktrace`, which
//! re-exports them with their documentation; the code they expand to names the runtime only
//! through `::stacktrace::__private`.
//!
//! The expansion runs in phases, one file each: [`args`] parses the attribute arguments,
//! [`valid`] checks them against the function, [`expand`] writes the instrumented function,
//! and [`fallback`] writes what is emitted on error (the user's function unchanged, followed
//! by the errors).

use proc_macro::TokenStream;

mod args;
mod expand;
mod fallback;
mod valid;

/// Stores an event when the function returns `Err`, and records its call (with its
/// arguments) in the chain shown by panics inside it. See `stacktrace::capture`.
#[proc_macro_attribute]
pub fn capture(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args::Kind::Capture, args.into(), item.into()).into()
}

/// Hides the named arguments (or all of them) of the function in every event, and scrubs
/// their values from every text of the event. See `stacktrace::sensitive_variables`.
#[proc_macro_attribute]
pub fn sensitive_variables(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args::Kind::Sensitive, args.into(), item.into()).into()
}
