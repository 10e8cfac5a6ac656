//! `show`: one event's full report as text for the terminal.

use std::io;

use serde_json::Value;

use super::output::{block, cell, title_cell, Out};
use crate::model::time::utc_text;
use crate::readers::wording::counted;
use crate::{CrashEvent, Group};

fn field(out: &mut Out, name: &str, value: &str) -> io::Result<()> {
    if value.is_empty() {
        return Ok(());
    }
    let name = out.paint("2", &format!("{name:<13}"));
    out.line(&format!("{name}{}", cell(value)))
}

fn heading(out: &mut Out, title: &str) -> io::Result<()> {
    let t = out.paint("1", title);
    out.line("")?;
    out.line(&t)
}

fn indented(out: &mut Out, text: &str) -> io::Result<()> {
    for line in block(text).lines() {
        out.line(&format!("  {line}"))?;
    }
    Ok(())
}

fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints the report of an event (and of its group, when it has one).
pub(crate) fn print(out: &mut Out, e: &CrashEvent, group: Option<&Group>) -> io::Result<()> {
    let title = out.paint("1", &title_cell(&e.title()));
    out.line(&title)?;
    field(out, "event", &e.id.to_string())?;
    field(out, "time", &format!("{} UTC", utc_text(e.timestamp_us)))?;
    let level = out.level(e.level);
    out.line(&format!(
        "{}{level}",
        out.paint("2", &format!("{:<13}", "level"))
    ))?;
    field(out, "logger", &e.logger)?;
    field(out, "error type", &e.error_type)?;
    if let Some(l) = &e.location {
        field(out, "location", &l.to_string())?;
    }
    match group {
        Some(g) => field(
            out,
            "group",
            &format!(
                "{} ({}, {})",
                g.fingerprint,
                g.status,
                counted(g.count, "event", "events")
            ),
        )?,
        None => field(out, "group", &e.fingerprint)?,
    }
    field(out, "user", &e.user)?;
    field(out, "request path", &e.request_path)?;

    heading(out, "Message")?;
    indented(out, &e.message)?;

    if !e.sources.is_empty() {
        heading(out, "Caused by")?;
        for (i, s) in e.sources.iter().enumerate() {
            let first = block(s);
            let mut lines = first.lines();
            out.line(&format!("  {i}: {}", lines.next().unwrap_or("")))?;
            for l in lines {
                out.line(&format!("     {l}"))?;
            }
        }
    }

    if !e.frames.is_empty() {
        heading(out, "Frames (innermost first; in-app marked >)")?;
        for f in &e.frames {
            let place = match (&f.file, f.line) {
                (Some(file), Some(line)) => format!("{file}:{line}"),
                (Some(file), None) => file.clone(),
                _ => String::new(),
            };
            let line = if f.in_app {
                format!("> {}", out.paint("1", &cell(&f.function)))
            } else {
                out.paint("2", &format!("  {}", cell(&f.function)))
            };
            out.line(&line)?;
            if !place.is_empty() {
                out.line(&format!("      at {}", cell(&place)))?;
            }
            if let (Some(source), Some(at)) = (&f.source, f.line) {
                for (n, text) in source.numbered(at) {
                    let mark = if n == at { ">" } else { " " };
                    let text = format!("      {mark} {n:>5} | {}", cell(text));
                    out.line(&if n == at { out.paint("1", &text) } else { text })?;
                }
            }
        }
    }

    if !e.calls.is_empty() {
        heading(out, "Captured calls (outermost first)")?;
        for c in &e.calls {
            let args: Vec<String> = c
                .args
                .iter()
                .map(|a| format!("{} = {}", cell(&a.name), cell(&a.value)))
                .collect();
            out.line(&format!("  {}({})", cell(&c.function), args.join(", ")))?;
            out.line(&format!("      at {}:{}", cell(&c.file), c.line))?;
        }
    }

    if let Some(req) = e.payload.get("request").and_then(Value::as_object) {
        heading(out, "Request")?;
        for (k, v) in req {
            match v {
                Value::Object(map) => {
                    out.line(&format!("  {}:", cell(k)))?;
                    for (hk, hv) in map {
                        out.line(&format!("    {}: {}", cell(hk), cell(&json_text(hv))))?;
                    }
                }
                other => out.line(&format!("  {}: {}", cell(k), cell(&json_text(other))))?,
            }
        }
    }

    if !e.tags.is_empty() {
        heading(out, "Tags")?;
        for (k, v) in &e.tags {
            out.line(&format!("  {} = {}", cell(k), cell(v)))?;
        }
    }
    if !e.extra.is_empty() {
        heading(out, "Extra")?;
        for (k, v) in &e.extra {
            out.line(&format!("  {} = {}", cell(k), cell(&json_text(v))))?;
        }
    }
    if let Value::Object(m) = &e.payload {
        let rest: Vec<_> = m.iter().filter(|(k, _)| k.as_str() != "request").collect();
        if !rest.is_empty() {
            heading(out, "Payload")?;
            for (k, v) in rest {
                out.line(&format!("  {} = {}", cell(k), cell(&json_text(v))))?;
            }
        }
    }

    let c = &e.context;
    heading(out, "Environment")?;
    let program = format!("{} {}", c.program, c.program_version);
    field(out, "program", program.trim())?;
    field(out, "host", &c.hostname)?;
    field(out, "system", &format!("{} {}", c.os, c.arch))?;
    let thread = match &c.thread_name {
        Some(n) => format!("{n} ({})", c.thread_id),
        None => c.thread_id.clone(),
    };
    field(out, "thread", &thread)?;
    field(out, "process", &c.pid.to_string())?;
    for (k, v) in c.environment.iter() {
        out.line(&format!("  {}={}", cell(k), cell(v)))?;
    }
    Ok(())
}
