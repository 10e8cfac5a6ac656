//! Export of a query's events as CSV or JSON lines.

use std::io::Write;

use crate::error::{QueryError, StoreError};
use crate::model::event::CrashEvent;
use crate::model::time::rfc3339;
use crate::store::events::query::Query;

const CSV_HEADER: &str =
    "id,time,level,logger,error_type,message,request_path,user,fingerprint,location\n";

/// A CSV cell: quoted when needed, and defused when a spreadsheet would run it as a formula.
fn csv_cell(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = formula || value.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

pub(crate) fn csv_row(e: &CrashEvent) -> String {
    let location = e
        .location
        .as_ref()
        .map(|l| l.to_string())
        .unwrap_or_default();
    let cells = [
        e.id.to_string(),
        rfc3339(e.timestamp_us),
        e.level.to_string(),
        e.logger.clone(),
        e.error_type.clone(),
        e.message.clone(),
        e.request_path.clone(),
        e.user.clone(),
        e.fingerprint.clone(),
        location,
    ];
    let mut row = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            row.push(',');
        }
        csv_cell(&mut row, c);
    }
    row.push('\n');
    row
}

impl Query<'_> {
    /// Writes the matching events (all of them, or up to the limit when one is set) as CSV
    /// with a header row; returns how many.
    pub fn export_csv(&self, mut out: impl Write) -> Result<u64, QueryError> {
        out.write_all(CSV_HEADER.as_bytes()).map_err(export_error)?;
        self.export_with(out, |e| Ok(csv_row(e).into_bytes()))
    }

    /// Writes the matching events (all of them, or up to the limit when one is set) as JSON
    /// lines, one whole event a line; returns how many.
    pub fn export_jsonl(&self, out: impl Write) -> Result<u64, QueryError> {
        self.export_with(out, |e| {
            let mut line = serde_json::to_vec(e).map_err(|e| export_error(e.into()))?;
            line.push(b'\n');
            Ok(line)
        })
    }

    fn export_with(
        &self,
        mut out: impl Write,
        render: impl Fn(&CrashEvent) -> Result<Vec<u8>, QueryError>,
    ) -> Result<u64, QueryError> {
        let limit = self.limit_or(usize::MAX) as u64;
        let mut n = 0;
        let mut failed = None;
        self.for_each(|e| {
            match render(&e).and_then(|b| out.write_all(&b).map_err(export_error)) {
                Ok(()) => n += 1,
                Err(err) => failed = Some(err),
            }
            failed.is_none() && n < limit
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        out.flush().map_err(export_error)?;
        Ok(n)
    }
}

fn export_error(e: std::io::Error) -> QueryError {
    QueryError::Store(StoreError::Export(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        let mut s = String::new();
        csv_cell(&mut s, "a,\"b\"\nc");
        assert_eq!(s, "\"a,\"\"b\"\"\nc\"");
        let mut s = String::new();
        csv_cell(&mut s, "=HYPERLINK(\"x\")");
        assert_eq!(s, "\"'=HYPERLINK(\"\"x\"\")\"");
        let mut s = String::new();
        csv_cell(&mut s, "plain");
        assert_eq!(s, "plain");
    }
}
