//! `stacktrace functions`: calls, failures and failure rate of each `#[capture]` function,
//! by release, with its last failure and its groups.

use clap::Args;

use super::output::{cell, Out, Table};
use super::run::CliError;
use crate::model::time::utc_text;
use crate::readers::function_rates::{functions_listed, rate_text};
use crate::Store;

/// Arguments of `stacktrace functions`.
#[derive(Debug, Default, Args)]
pub(crate) struct FunctionsArgs {
    /// Only this release.
    #[arg(long)]
    pub(crate) release: Option<String>,
    /// Only functions whose name contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub(crate) function: Option<String>,
}

pub(crate) fn functions(
    store: &Store,
    a: &FunctionsArgs,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    let listed = functions_listed(store, a.release.as_deref(), a.function.as_deref())?;
    if json {
        let rows: Vec<serde_json::Value> = listed
            .iter()
            .map(|f| {
                let mut v = serde_json::to_value(f).unwrap_or_default();
                if let Some(map) = v.as_object_mut() {
                    map.insert("failure_rate".into(), f.failure_rate().into());
                }
                v
            })
            .collect();
        out.json(&rows)?;
        return Ok(());
    }
    let mut t = Table::new(&[
        "FUNCTION",
        "RELEASE",
        ">CALLS",
        ">FAILURES",
        ">RATE",
        "LAST FAILURE",
        "GROUPS",
    ]);
    for f in &listed {
        t.row(vec![
            cell(&f.function),
            cell(if f.release.is_empty() {
                "-"
            } else {
                &f.release
            }),
            f.calls.to_string(),
            f.failures.to_string(),
            rate_text(f),
            f.last_failure_us.map_or_else(|| "-".to_owned(), utc_text),
            f.groups
                .iter()
                .rev()
                .map(|g| g.chars().take(12).collect::<String>())
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    if listed.is_empty() {
        eprintln!("no counted functions");
    } else {
        t.print(out)?;
    }
    Ok(())
}
