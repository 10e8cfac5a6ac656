//! Placeholder until the captured-call chain lands (owned by the macros work).

use crate::event::CapturedCall;

pub(crate) struct ChainSnapshot {
    pub(crate) calls: Vec<CapturedCall>,
    pub(crate) secrets: Vec<String>,
}

pub(crate) fn snapshot() -> ChainSnapshot {
    ChainSnapshot {
        calls: Vec::new(),
        secrets: Vec::new(),
    }
}
