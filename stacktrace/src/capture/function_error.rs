//! The error a `#[capture]` function returned, and where such errors go: the runtime
//! registers the handler at install.

use std::sync::OnceLock;

use crate::model::event::{CapturedCall, EventId, Level};

/// What a `#[capture]` function reports when it returns `Err`.
#[derive(Debug)]
pub(crate) struct FunctionError {
    pub(crate) level: Level,
    pub(crate) error_type: String,
    pub(crate) message: String,
    pub(crate) sources: Vec<String>,
    /// The failing function, its sensitive arguments already shown as the placeholder.
    pub(crate) function: CapturedCall,
    /// The captured calls around it, outermost first, without `function`.
    pub(crate) chain: Vec<CapturedCall>,
    /// Raw text of sensitive values, scrubbed from every text of the event.
    pub(crate) secrets: Vec<String>,
}

/// Where the errors of `#[capture]` functions go: set by the runtime at install. Until
/// then they are not stored, as no event is.
static FUNCTION_ERRORS: OnceLock<fn(FunctionError) -> Option<EventId>> = OnceLock::new();

/// Sends the errors of `#[capture]` functions to `store` from now on (once per process).
pub(crate) fn on_function_error(store: fn(FunctionError) -> Option<EventId>) {
    let _ = FUNCTION_ERRORS.set(store);
}

pub(crate) fn report_function_error(e: FunctionError) {
    if let Some(store) = FUNCTION_ERRORS.get() {
        store(e);
    }
}
