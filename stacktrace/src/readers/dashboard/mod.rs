//! The local web dashboard: an axum router to mount in the program's own app, and the
//! server behind `stacktrace serve`.

mod access;
mod event_page;
mod html;
mod pages;
mod releases;
mod requests_page;
mod router;

pub use router::{Dashboard, ServeError};
