//! The `tracing` integration (feature `tracing`): a subscriber layer that turns events at
//! the capture level (error, by default) into stored events, with the event's fields and
//! the fields of its enclosing spans, and keeps the others as breadcrumbs.
//!
//! An `error` field recorded as a `dyn Error` (`error = &err as &dyn std::error::Error`)
//! gives the event its error type and source chain.
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! let _guard = stacktrace::install();
//! tracing_subscriber::registry().with(stacktrace::tracing::layer()).init();
//!
//! let span = tracing::info_span!("checkout", order = 7);
//! let _entered = span.enter();
//! tracing::info!("charging");                           // a breadcrumb
//! let err = "x".parse::<u32>().unwrap_err();
//! tracing::error!(error = &err as &dyn std::error::Error, "card declined"); // an event
//! ```

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;

use ::tracing::field::{Field, Visit};
use ::tracing::span::{Attributes, Id, Record};
use ::tracing::{Event, Subscriber};
use serde_json::{json, Value};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::api::capture::{error_type_name, sources_of};
use crate::api::report::Report;
use crate::capture::breadcrumbs::{add_breadcrumb, Breadcrumb};
use crate::model::event::{Level, Location};

/// The layer. Make it with [`layer`].
#[derive(Clone, Debug)]
pub struct Layer {
    capture_level: ::tracing::Level,
}

/// A layer capturing events at error level; add it to a `tracing_subscriber::registry()`.
pub fn layer() -> Layer {
    Layer {
        capture_level: ::tracing::Level::ERROR,
    }
}

impl Layer {
    /// Events at this level or more severe become stored events (default: error).
    pub fn capture_level(mut self, level: ::tracing::Level) -> Self {
        self.capture_level = level;
        self
    }
}

/// The stored level of a tracing level.
pub fn level_of(level: &::tracing::Level) -> Level {
    match *level {
        ::tracing::Level::ERROR => Level::Error,
        ::tracing::Level::WARN => Level::Warning,
        ::tracing::Level::INFO => Level::Info,
        _ => Level::Debug,
    }
}

/// Fields of a span, kept in its extensions.
struct SpanFields(BTreeMap<String, Value>);

#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: BTreeMap<String, Value>,
    error: Option<(String, String, Vec<String>)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            self.fields
                .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.fields.insert(field.name().to_owned(), json!(value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().to_owned(), json!(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().to_owned(), json!(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().to_owned(), json!(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().to_owned(), json!(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn StdError + 'static)) {
        let message = value.to_string();
        if field.name() == "error" && self.error.is_none() {
            self.error = Some((error_type_name(value), message.clone(), sources_of(value)));
        }
        self.fields.insert(field.name().to_owned(), json!(message));
    }
}

impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            match ext.get_mut::<SpanFields>() {
                Some(SpanFields(existing)) => existing.extend(fields.fields),
                None => ext.insert(SpanFields(fields.fields)),
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = level_of(meta.level());
        if *meta.level() > self.capture_level {
            let mut crumb =
                Breadcrumb::new(level, meta.target(), fields.message.unwrap_or_default());
            crumb.data = fields.fields;
            add_breadcrumb(crumb);
            return;
        }
        let spans: Vec<Value> = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .from_root()
                    .map(|span| {
                        let ext = span.extensions();
                        let fields = ext
                            .get::<SpanFields>()
                            .map(|f| f.0.clone())
                            .unwrap_or_default();
                        json!({ "name": span.name(), "fields": fields })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (error_type, error_message, sources) = fields.error.clone().unwrap_or_default();
        let message = fields
            .message
            .clone()
            .unwrap_or_else(|| error_message.clone());
        let mut report = Report::message(message, level)
            .logger(meta.target())
            .with_backtrace(true)
            .extra("fields", &fields.fields);
        if !spans.is_empty() {
            report = report.extra("spans", spans);
        }
        if let Some(module) = meta.module_path() {
            report = report.tag("module", module);
        }
        if let Some(file) = meta.file() {
            report = report.at(Location {
                file: file.to_owned(),
                line: meta.line().unwrap_or(0),
                column: 0,
            });
        }
        if !error_type.is_empty() {
            report = report.error_parts(error_type, sources);
        }
        report.capture();
    }
}
