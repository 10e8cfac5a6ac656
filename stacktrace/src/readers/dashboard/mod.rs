//! The local web dashboard: an axum router to mount in the program's own app, and the
//! server behind `stacktrace serve`.

mod access;
mod event_page;
mod functions;
mod group_page;
mod guard;
#[cfg(test)]
mod hostile_text;
mod html;
mod opened;
mod pages;
mod releases;
mod requests_page;
mod router;
mod source_view;
mod trend_chart;

pub use router::{Dashboard, ServeError};
