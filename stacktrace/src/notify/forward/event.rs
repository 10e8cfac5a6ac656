//! A stored event as Sentry's event payload (protocol v7), fields mapped one by one.

use serde_json::{json, Map, Value};

use crate::model::event::{CrashEvent, Frame, Level};

/// What the sender adds to every event.
#[derive(Clone, Debug, Default)]
pub(crate) struct Additions {
    pub(crate) environment: Option<String>,
}

fn level_name(level: Level) -> &'static str {
    // Sentry's names are ours: fatal, error, warning, info, debug.
    level.as_str()
}

fn seconds(us: u64) -> f64 {
    us as f64 / 1_000_000.0
}

fn frame_json(f: &Frame) -> Value {
    let mut m = Map::new();
    m.insert("function".into(), Value::String(f.function.clone()));
    if let Some(file) = &f.file {
        m.insert("filename".into(), Value::String(file.clone()));
        m.insert("abs_path".into(), Value::String(file.clone()));
    }
    if let Some(line) = f.line {
        m.insert("lineno".into(), json!(line));
    }
    m.insert("in_app".into(), Value::Bool(f.in_app));
    if let Some(source) = &f.source {
        m.insert("pre_context".into(), json!(source.pre));
        m.insert("context_line".into(), json!(source.line));
        m.insert("post_context".into(), json!(source.post));
    }
    Value::Object(m)
}

/// Frames oldest first, as Sentry wants them (ours are innermost first); the return
/// addresses of a trace that could not be resolved, when that is all there is.
fn stacktrace_json(e: &CrashEvent) -> Option<Value> {
    let frames: Vec<Value> = if !e.frames.is_empty() {
        e.frames.iter().rev().map(frame_json).collect()
    } else if let Some(u) = &e.unresolved {
        u.addresses
            .iter()
            .rev()
            .map(|(module, addr)| {
                let package = u
                    .modules
                    .get(*module as usize)
                    .map(|m| m.path.clone())
                    .unwrap_or_default();
                json!({
                    "instruction_addr": format!("{addr:#x}"),
                    "package": package,
                    "in_app": false,
                })
            })
            .collect()
    } else {
        return None;
    };
    Some(json!({ "frames": frames }))
}

/// The exception and its `source()` chain in Sentry's order: the innermost cause first,
/// the error itself last, with its stack and its mechanism (`panic` unhandled, `error`
/// handled).
fn exception_json(e: &CrashEvent) -> Value {
    let panic = e.logger == "panic" || e.error_type == "panic";
    let n = e.sources.len();
    let mut values = Vec::with_capacity(n + 1);
    for (i, source) in e.sources.iter().enumerate().rev() {
        values.push(json!({
            "type": "source",
            "value": source,
            "mechanism": {
                "type": "chained",
                "source": "source",
                "exception_id": i + 1,
                "parent_id": i,
                "handled": !panic,
            },
        }));
    }
    let mut top = json!({
        "type": if e.error_type.is_empty() { "Error" } else { e.error_type.as_str() },
        "value": e.message,
        "mechanism": {
            "type": if panic { "panic" } else { "error" },
            "handled": !panic,
            "exception_id": 0,
            "is_exception_group": false,
        },
    });
    if let (Some(st), Some(obj)) = (stacktrace_json(e), top.as_object_mut()) {
        obj.insert("stacktrace".into(), st);
    }
    values.push(top);
    json!({ "values": values })
}

/// The request of an HTTP event, from what the HTTP layer kept (already redacted).
fn request_json(payload: &Value) -> Option<Value> {
    let r = payload.get("request")?.as_object()?;
    let text = |k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut m = Map::new();
    m.insert("method".into(), Value::String(text("method")));
    // Sentry wants an absolute URL: the path under the Host the client asked for; with
    // no Host header kept, the path alone, as CGI's PATH_INFO.
    let host = r
        .get("headers")
        .and_then(Value::as_object)
        .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")))
        .and_then(|(_, v)| v.as_str())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '*']));
    let mut env = Map::new();
    match host {
        Some(host) => {
            m.insert(
                "url".into(),
                Value::String(format!("http://{host}{}", text("path"))),
            );
        }
        None => {
            env.insert("PATH_INFO".into(), Value::String(text("path")));
        }
    }
    let query = text("query");
    if !query.is_empty() {
        m.insert("query_string".into(), Value::String(query));
    }
    if let Some(h) = r.get("headers") {
        m.insert("headers".into(), h.clone());
    }
    if let Some(b) = r.get("body") {
        m.insert("data".into(), b.clone());
    }
    if let Some(addr) = r.get("client_addr") {
        env.insert("REMOTE_ADDR".into(), addr.clone());
    }
    if !env.is_empty() {
        m.insert("env".into(), Value::Object(env));
    }
    Some(Value::Object(m))
}

/// The event as Sentry's JSON payload.
pub(crate) fn event_json(e: &CrashEvent, add: &Additions) -> Value {
    let c = &e.context;
    let mut m = Map::new();
    m.insert("event_id".into(), Value::String(e.id.to_string()));
    m.insert("timestamp".into(), json!(seconds(e.timestamp_us)));
    m.insert("platform".into(), Value::String("native".into()));
    m.insert("level".into(), Value::String(level_name(e.level).into()));
    if !e.logger.is_empty() {
        m.insert("logger".into(), Value::String(e.logger.clone()));
    }
    if !c.program_version.is_empty() {
        m.insert(
            "release".into(),
            Value::String(c.program_version.to_string()),
        );
    }
    if let Some(env) = &add.environment {
        m.insert("environment".into(), Value::String(env.clone()));
    }
    if !c.hostname.is_empty() {
        m.insert("server_name".into(), Value::String(c.hostname.to_string()));
    }
    if e.error_type.is_empty() && e.sources.is_empty() {
        m.insert("message".into(), json!({ "formatted": e.message }));
        if let Some(st) = stacktrace_json(e) {
            m.insert(
                "threads".into(),
                json!({ "values": [{ "id": c.thread_id, "name": c.thread_name, "current": true, "stacktrace": st }] }),
            );
        }
    } else {
        m.insert("exception".into(), exception_json(e));
    }
    if let Some(frame) = e.culprit() {
        m.insert("culprit".into(), Value::String(frame.function.clone()));
    }
    m.insert("fingerprint".into(), json!([e.fingerprint]));
    let mut tags: Map<String, Value> = e
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    if let Some(name) = &c.thread_name {
        tags.entry("thread").or_insert(Value::String(name.clone()));
    }
    if !tags.is_empty() {
        m.insert("tags".into(), Value::Object(tags));
    }
    let mut extra: Map<String, Value> = e
        .extra
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(obj) = e.payload.as_object() {
        for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != "request") {
            extra.entry(k.clone()).or_insert(v.clone());
        }
    }
    if !extra.is_empty() {
        m.insert("extra".into(), Value::Object(extra));
    }
    if !e.user.is_empty() {
        m.insert("user".into(), json!({ "id": e.user }));
    }
    if let Some(r) = request_json(&e.payload) {
        m.insert("request".into(), r);
    }
    if !e.breadcrumbs.is_empty() {
        let values: Vec<Value> = e
            .breadcrumbs
            .iter()
            .map(|b| {
                json!({
                    "timestamp": seconds(b.timestamp_us),
                    "level": level_name(b.level),
                    "category": b.category,
                    "message": b.message,
                    "data": b.data,
                })
            })
            .collect();
        m.insert("breadcrumbs".into(), json!({ "values": values }));
    }
    let mut contexts = Map::new();
    contexts.insert("os".into(), json!({ "type": "os", "name": c.os }));
    contexts.insert("device".into(), json!({ "type": "device", "arch": c.arch }));
    contexts.insert(
        "runtime".into(),
        json!({ "type": "runtime", "name": "rust" }),
    );
    contexts.insert(
        "app".into(),
        json!({ "type": "app", "app_name": c.program, "app_version": c.program_version }),
    );
    contexts.insert(
        "process".into(),
        json!({ "pid": c.pid, "thread_id": c.thread_id, "thread_name": c.thread_name }),
    );
    if let Some(loc) = &e.location {
        contexts.insert(
            "location".into(),
            json!({ "file": loc.file, "line": loc.line, "column": loc.column }),
        );
    }
    if !e.calls.is_empty() {
        // The `#[capture]` call chain, outermost first, its arguments as stored (redacted).
        let calls: Vec<Value> = e
            .calls
            .iter()
            .map(|call| {
                let args: Map<String, Value> = call
                    .args
                    .iter()
                    .map(|a| (a.name.clone(), Value::String(a.value.clone())))
                    .collect();
                json!({ "function": call.function, "file": call.file, "line": call.line, "args": args })
            })
            .collect();
        contexts.insert("captured_calls".into(), json!({ "calls": calls }));
    }
    if !c.environment.is_empty() {
        contexts.insert("environment".into(), json!(c.environment));
    }
    m.insert("contexts".into(), Value::Object(contexts));
    m.insert(
        "sdk".into(),
        json!({ "name": "stacktrace", "version": env!("CARGO_PKG_VERSION") }),
    );
    Value::Object(m)
}
