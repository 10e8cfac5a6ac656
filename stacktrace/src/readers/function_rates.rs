//! The functions' failure rates as both readers list them.

use crate::{FunctionStats, Store, StoreError};

/// The records asked for, the highest failure rate first (then most failures, then name).
pub(crate) fn functions_listed(
    store: &Store,
    release: Option<&str>,
    function: Option<&str>,
) -> Result<Vec<FunctionStats>, StoreError> {
    let mut all: Vec<FunctionStats> = store
        .functions()?
        .into_iter()
        .filter(|f| release.is_none_or(|r| f.release == r))
        .filter(|f| function.is_none_or(|t| f.function.contains(t)))
        .collect();
    all.sort_by(|a, b| {
        b.failure_rate()
            .total_cmp(&a.failure_rate())
            .then(b.failures.cmp(&a.failures))
            .then_with(|| a.function.cmp(&b.function))
            .then_with(|| a.release.cmp(&b.release))
    });
    Ok(all)
}

/// A failure rate as a percentage with one decimal (`12.5%`).
pub(crate) fn rate_text(f: &FunctionStats) -> String {
    format!("{:.1}%", f.failure_rate() * 100.0)
}
