//! The commands that write or serve: export, purge and serve.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use serde_json::json;

use super::args::{ExportArgs, Format, PurgeArgs, ServeArgs};
use super::commands::query_of;
use super::output::Out;
use super::progress::Progress;
use super::run::{open, CliError};
use super::when::us_of_when;
use crate::model::time::{from_us, now_us};
use crate::readers::wording::counted;
use crate::{Dashboard, ServeError, Store};

/// Counts the lines written through it, for the progress bar.
struct CountingWriter<W> {
    inner: W,
    lines: u64,
    progress: Progress,
    header_lines: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        self.progress
            .set(self.lines.saturating_sub(self.header_lines));
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn format_of(a: &ExportArgs) -> Format {
    a.format.unwrap_or_else(|| {
        let ext = a
            .output
            .as_deref()
            .and_then(Path::extension)
            .and_then(|e| e.to_str())
            .unwrap_or("");
        match ext {
            "jsonl" | "ndjson" | "json" => Format::Jsonl,
            _ => Format::Csv,
        }
    })
}

pub(crate) fn export(
    store: &Store,
    a: &ExportArgs,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    let mut q = query_of(store, &a.filters)?;
    // 0 is no limit, as for every command.
    let limit = a.limit.filter(|n| *n > 0);
    if let Some(n) = limit {
        q = q.limit(n);
    }
    let format = format_of(a);
    // Counting first costs a pass; only worth it when a bar is drawn.
    let total = if Progress::wanted() {
        let n = q.count()?;
        limit.map_or(n, |l| n.min(l as u64))
    } else {
        0
    };
    let sink: Box<dyn Write> = match &a.output {
        Some(path) => Box::new(BufWriter::new(File::create(path).map_err(|e| {
            CliError::Failed(format!("cannot create {}: {e}", path.display()))
        })?)),
        None => Box::new(io::stdout().lock()),
    };
    let mut w = CountingWriter {
        inner: sink,
        lines: 0,
        progress: Progress::new("exporting", total),
        header_lines: u64::from(format == Format::Csv),
    };
    let result = match format {
        Format::Csv => q.export_csv(&mut w),
        Format::Jsonl => q.export_jsonl(&mut w),
    };
    w.progress.finish();
    let n = match result {
        Ok(n) => n,
        Err(crate::QueryError::Store(crate::StoreError::Export(e)))
            if e.kind() == io::ErrorKind::BrokenPipe =>
        {
            return Err(CliError::ReaderGone)
        }
        Err(e) => return Err(e.into()),
    };
    let format_name = match format {
        Format::Csv => "csv",
        Format::Jsonl => "jsonl",
    };
    match &a.output {
        Some(path) if json => out.json(&json!({
            "exported": n,
            "format": format_name,
            "output": path,
        }))?,
        Some(path) => eprintln!(
            "exported {} to {}",
            counted(n, "event", "events"),
            path.display()
        ),
        // The data is on stdout; the summary stays out of it.
        None => eprintln!("exported {}", counted(n, "event", "events")),
    }
    Ok(())
}

pub(crate) fn purge(
    store: &Store,
    a: &PurgeArgs,
    json: bool,
    out: &mut Out,
) -> Result<(), CliError> {
    if a.before.is_none() && a.keep.is_none() {
        return Err(CliError::Usage(
            "purge needs --before WHEN, --keep N or both".into(),
        ));
    }
    let before = match &a.before {
        Some(b) => Some(us_of_when(b, now_us()).map_err(CliError::Usage)?),
        None => None,
    };
    let events_before = store.stats()?.events;
    let removed = if a.dry_run {
        let by_age = match before {
            Some(t) if t > 0 => store.query().until_us(t - 1).count()?,
            _ => 0,
        };
        let left = events_before - by_age;
        by_age + a.keep.map_or(0, |k| left.saturating_sub(k as u64))
    } else {
        let mut removed = 0;
        if let Some(t) = before {
            removed += purge_before(store, t)?;
        }
        if let Some(k) = a.keep {
            removed += keep_latest(store, k)?;
        }
        removed
    };
    let remaining = events_before - removed.min(events_before);
    if json {
        out.json(&json!({
            "removed": removed,
            "remaining": remaining,
            "dry_run": a.dry_run,
        }))?;
    } else if a.dry_run {
        out.line(&format!(
            "would remove {}, keeping {remaining} (nothing removed: --dry-run)",
            counted(removed, "event", "events")
        ))?;
    } else {
        out.line(&format!(
            "removed {}, {remaining} left",
            counted(removed, "event", "events")
        ))?;
    }
    Ok(())
}

/// Steps of a purge drawn as progress.
const STEPS: u64 = 20;

/// `purge_before`, in time slices from the oldest event when a bar is drawn.
fn purge_before(store: &Store, t: u64) -> Result<u64, CliError> {
    let Some((oldest, newest)) = store.time_span()? else {
        return Ok(0);
    };
    let mut removed = 0;
    if Progress::wanted() && t > oldest {
        let end = t.min(newest.saturating_add(1));
        let mut bar = Progress::new("purging", STEPS);
        for i in 1..STEPS {
            let cut = oldest + (end - oldest) / STEPS * i;
            removed += store.purge_before(from_us(cut))?;
            bar.set(i);
        }
        bar.finish();
    }
    removed += store.purge_before(from_us(t))?;
    Ok(removed)
}

/// `keep_latest`, in slices when a bar is drawn.
fn keep_latest(store: &Store, keep: usize) -> Result<u64, CliError> {
    let total = store.stats()?.events;
    let excess = total.saturating_sub(keep as u64);
    let mut removed = 0;
    if Progress::wanted() && excess > STEPS {
        let mut bar = Progress::new("purging", excess);
        for i in 1..STEPS {
            let left = total - excess / STEPS * i;
            removed += store.keep_latest(usize::try_from(left).unwrap_or(usize::MAX))?;
            bar.set(removed);
        }
        bar.finish();
    }
    removed += store.keep_latest(keep)?;
    Ok(removed)
}

fn addr_of(bind: &str) -> Result<SocketAddr, CliError> {
    bind.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "invalid --bind {bind:?}: expected an address and port such as 127.0.0.1:8080"
            ))
        })
}

pub(crate) fn serve(db: &Path, a: &ServeArgs) -> Result<(), CliError> {
    let addr = addr_of(&a.bind)?;
    let token = a.token.clone().unwrap_or_default();
    // Checked before the database is opened or the port bound.
    if !addr.ip().is_loopback() && token.is_empty() {
        return Err(CliError::Usage(
            ServeError::TokenRequired { addr }.to_string(),
        ));
    }
    // Opened once to say now what is wrong; then for each request, and closed once idle,
    // so that a program that uses the database is not kept from it while this runs.
    match open(db) {
        Ok(store) => drop(store),
        Err(e @ (CliError::Locked(_) | CliError::NoDatabase(_))) => return Err(e),
        // Damaged or unreadable: said here, and on each page, which the server still shows.
        Err(e) => eprintln!("stacktrace: {e}"),
    }
    let dashboard = Dashboard::opening(db).token(token.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the server: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| CliError::Failed(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::Failed(e.to_string()))?;
        let query = if token.is_empty() {
            String::new()
        } else {
            format!("?token={token}")
        };
        println!("dashboard on http://{local}/{query} (Ctrl-C stops it)");
        // On stderr: a script that read the address may have closed stdout.
        eprintln!(
            "stacktrace: the database is opened for each request and closed after a second without one: \
             a program that uses it meanwhile keeps it, and these pages say so until it ends"
        );
        let _ = io::stdout().flush();
        dashboard
            .serve(listener)
            .await
            .map_err(|e| CliError::Failed(crate::diag::error_chain(&e)))
    })
}
