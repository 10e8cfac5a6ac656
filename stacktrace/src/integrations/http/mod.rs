//! The HTTP integration (feature `http`): a [`tower::Layer`] that makes each request known
//! to the captures made while it is handled, turns panics into `500`s, stores server
//! errors and broken links, and tracks requests. See [`StacktraceLayer`](crate::http::StacktraceLayer).

mod body;
mod broken_links;
mod events;
mod headers;
mod layer;
mod limit;
mod request;
mod request_redaction;
mod route;
mod scope;
mod sensitive;
mod tracking;

pub use body::{RequestBody, ResponseBody};
pub use events::ResponseError;
pub use layer::{ResponseFuture, StacktraceLayer, StacktraceService};
pub use scope::{in_current_request, sensitive_post_parameters, set_user, track, InRequest};
pub use sensitive::{SensitivePostParameters, SensitiveService};
pub use tracking::{flush_tracking, tracking_counts, tracking_dropped, Tracking, TrackingCounts};
