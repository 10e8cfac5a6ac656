//! A breadcrumb: something that happened before an event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::event::Level;
use crate::model::time::now_us;

/// Something that happened before an event: a log record, a tracing event, a step of your
/// own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breadcrumb {
    /// When, microseconds since the epoch.
    pub timestamp_us: u64,
    /// Level of the record.
    pub level: Level,
    /// Where it came from: a log target, a tracing target, or your own category.
    pub category: String,
    /// The message.
    pub message: String,
    /// Fields of the record; names in `redact_fields` are stored as `**********`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, Value>,
}

impl Breadcrumb {
    /// A breadcrumb stamped now.
    pub fn new(level: Level, category: impl Into<String>, message: impl Into<String>) -> Self {
        Breadcrumb {
            timestamp_us: now_us(),
            level,
            category: category.into(),
            message: message.into(),
            data: BTreeMap::new(),
        }
    }

    /// Adds a field.
    pub fn with_data(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }
}
