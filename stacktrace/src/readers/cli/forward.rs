//! `stacktrace forward`: sends a database's events to a Sentry-compatible server, for a
//! machine that was offline (feature `forward`).

use serde_json::json;

use super::args::ForwardArgs;
use super::output::Out;
use super::progress::Progress;
use super::run::CliError;
use super::when::us_of_when;
use crate::forward::{backfill, backfill_candidates, ForwardConfig};
use crate::model::time::to_us;
use crate::Store;

pub(crate) fn forward(
    store: &Store,
    a: &ForwardArgs,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    let mut config = ForwardConfig::new(&a.dsn).map_err(|why| {
        CliError::Usage(format!("invalid --dsn (its key not shown): expected {why}"))
    })?;
    if let Some(env) = &a.environment {
        config = config.environment(env);
    }
    if let Some(level) = &a.level {
        config = config.min_level(
            level
                .parse()
                .map_err(|e: crate::ParseLevelError| CliError::Usage(e.to_string()))?,
        );
    }
    let now = to_us(std::time::SystemTime::now());
    let since = match &a.since {
        Some(s) => us_of_when(s, now).map_err(CliError::Usage)?,
        None => 0,
    };
    let ids = backfill_candidates(store, &config, since)?;
    if a.dry_run {
        if json {
            out.json(&json!({ "dsn": config.dsn(), "would_send": ids.len() }))?;
        } else {
            out.line(&format!(
                "would send {} events to {}",
                ids.len(),
                config.dsn()
            ))?;
        }
        return Ok(());
    }
    let mut bar = Progress::new("forwarding", ids.len() as u64);
    let counts =
        backfill(store, &config, &ids, |done, _| bar.set(done as u64)).map_err(CliError::Failed)?;
    bar.finish();
    if json {
        out.json(&json!({ "dsn": config.dsn(), "forwarded": counts }))?;
    } else {
        out.line(&format!(
            "{}: {} sent in all, {} pending, {} failed",
            config.dsn(),
            counts.sent,
            counts.pending,
            counts.failed_total()
        ))?;
    }
    Ok(())
}
