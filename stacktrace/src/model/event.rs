//! The stored event and its parts.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::model::time::from_us;

/// How serious an event is.
///
/// Levels are ordered: `Debug < Info < Warning < Error < Fatal`. A panic is `Fatal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Diagnostic detail.
    Debug,
    /// Something worth knowing.
    Info,
    /// Something went wrong but was handled.
    Warning,
    /// An operation failed.
    Error,
    /// The thread or the program could not go on (panics).
    Fatal,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Fatal,
    ];

    /// The lower-case name used in storage, the CLI and the environment.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    pub(crate) fn as_byte(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text given to [`Level::from_str`] is not a level name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseLevelError(pub String);

impl fmt::Display for ParseLevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown level {:?}: expected debug, info, warning, error or fatal",
            self.0
        )
    }
}

impl std::error::Error for ParseLevelError {}

impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" | "trace" => Ok(Level::Debug),
            "info" => Ok(Level::Info),
            "warning" | "warn" => Ok(Level::Warning),
            "error" => Ok(Level::Error),
            "fatal" | "critical" => Ok(Level::Fatal),
            _ => Err(ParseLevelError(s.to_owned())),
        }
    }
}

/// What a redacted value is stored as.
pub const PLACEHOLDER: &str = "**********";

/// A time-ordered event identifier: microseconds since the Unix epoch in the high 64 bits,
/// random bits in the low 64 (for tracked requests stored together, a run counted up from
/// one random number), so ids from several processes sort by time and, short of odds like
/// those of two random 64-bit draws meeting, never collide.
///
/// Displayed and parsed as 32 lower-case hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub(crate) u128);

impl EventId {
    pub(crate) fn new(timestamp_us: u64) -> Self {
        let low = crate::model::random::random_u64();
        EventId((u128::from(timestamp_us) << 64) | u128::from(low))
    }

    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    /// The id of this time with these bits in place of random ones: for a run of ids
    /// counted up from one random number.
    pub(crate) fn with_low(timestamp_us: u64, low: u64) -> Self {
        EventId((u128::from(timestamp_us) << 64) | u128::from(low))
    }

    /// The smallest id at the given time: the start of a range that begins then.
    pub(crate) fn floor(timestamp_us: u64) -> Self {
        EventId(u128::from(timestamp_us) << 64)
    }

    /// When the event was captured, in microseconds since the Unix epoch.
    pub fn timestamp_us(self) -> u64 {
        (self.0 >> 64) as u64
    }

    /// The id as the 16 big-endian bytes it is stored under.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// The id stored under these 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        EventId(u128::from_be_bytes(bytes))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The text given to [`EventId::from_str`] is not 32 hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseEventIdError(pub String);

impl fmt::Display for ParseEventIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid event id {:?}: expected 32 hex digits", self.0)
    }
}

impl std::error::Error for ParseEventIdError {}

impl FromStr for EventId {
    type Err = ParseEventIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.len() != 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseEventIdError(s.to_owned()));
        }
        u128::from_str_radix(t, 16)
            .map(EventId)
            .map_err(|_| ParseEventIdError(s.to_owned()))
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where in the source something happened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Source file, as the compiler names it.
    pub file: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1 (0 when unknown).
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One frame of a resolved backtrace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Demangled function path without the hash suffix (`app::orders::checkout`).
    pub function: String,
    /// Source file, when debug info has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Line, when debug info has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Whether the frame belongs to the application rather than the standard library or a
    /// dependency.
    pub in_app: bool,
    /// Source lines around `line`, for the app's frames whose file could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::model::source::SourceContext>,
}

/// Return addresses of a backtrace not yet resolved to frames, each relative to the module
/// (executable or shared library) it falls in, which the module's GNU build id names for
/// good. A panic is journaled in this form; the program resolves it right after, or the
/// next process that opens the database does from the module's file. An event stored with
/// it could not be resolved: [`UnresolvedFrames::reason`] says why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnresolvedFrames {
    /// The modules the addresses fall in.
    pub modules: Vec<UnresolvedModule>,
    /// Innermost first: an index into `modules` and the address as the module's file
    /// gives it (`u32::MAX` and the address in memory when it fell in no known module).
    pub addresses: Vec<(u32, u64)>,
    /// Why the addresses were not resolved, once that was tried and failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The in-app rules of the program that took the addresses: the frames resolved from
    /// them by another process are judged by these, as that program judges its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<InAppSettings>,
}

/// Which frames a program counts as its own: the crate that called `install!` and the
/// `in_app_include` and `in_app_exclude` settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InAppSettings {
    /// `module_path!()` where `install!` was called, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_module: Option<String>,
    /// The calling package's name, when cargo built the program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_package: Option<String>,
    /// `in_app_include`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// `in_app_exclude`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// A module of [`UnresolvedFrames`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnresolvedModule {
    /// The module's file when the event was captured.
    pub path: String,
    /// Its GNU build id, hex (empty when it has none).
    pub build_id: String,
}

/// One argument of a captured function, by name, as stored: its `Debug` text, its type name
/// when the type is not `Debug`, or `**********` when it is sensitive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argument {
    /// Parameter name as written in the signature.
    pub name: String,
    /// Stored text of the value.
    pub value: String,
}

/// A function annotated with `#[capture]` (or `#[sensitive_variables]`) that was active
/// when the event happened, with its arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturedCall {
    /// Full path of the function (`app::orders::checkout`).
    pub function: String,
    /// Source file of the function.
    pub file: String,
    /// Line of the function's signature.
    pub line: u32,
    /// Arguments in signature order; skipped arguments are absent.
    pub args: Vec<Argument>,
}

/// What the program and machine were when the event happened.
///
/// The values that are the same for every event of a process (system, host, program,
/// environment) are borrowed from one copy the tracker keeps for the life of the process, so
/// building an event copies none of them; events read back from a database own theirs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeContext {
    /// Operating system (`linux`, `macos`, `windows`, ...).
    pub os: Cow<'static, str>,
    /// CPU architecture (`x86_64`, `aarch64`, ...).
    pub arch: Cow<'static, str>,
    /// Host name, when it could be read.
    pub hostname: Cow<'static, str>,
    /// Program name (the executable's file name).
    pub program: Cow<'static, str>,
    /// Program version, as set in [`Config::release`](crate::Config::release).
    pub program_version: Cow<'static, str>,
    /// Name of the thread the event came from, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_name: Option<String>,
    /// Id of the thread the event came from (`ThreadId(N)`).
    pub thread_id: String,
    /// Process id.
    pub pid: u32,
    /// Environment variables, those with secret-looking names as `**********`.
    #[serde(default, skip_serializing_if = "no_variables")]
    pub environment: Cow<'static, BTreeMap<String, String>>,
}

fn no_variables(vars: &BTreeMap<String, String>) -> bool {
    vars.is_empty()
}

/// A captured event: what failed, where, in which context. Everything in it is already
/// redacted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrashEvent {
    /// Time-ordered unique id.
    pub id: EventId,
    /// Capture time, microseconds since the Unix epoch.
    pub timestamp_us: u64,
    /// Severity.
    pub level: Level,
    /// Where the event came from: `panic`, `error`, `message`, `capture` (a `#[capture]`
    /// function), or an integration's name (`http`, `log`, `tracing`, ...).
    pub logger: String,
    /// Type name of the error (`std::io::error::Error`), `panic` for panics, empty for
    /// messages.
    pub error_type: String,
    /// The error's or panic's message.
    pub message: String,
    /// Messages of the error's `source()` chain, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Where it happened: the panic location, or the captured function's signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Request path, when it happened while a request was handled.
    #[serde(default)]
    pub request_path: String,
    /// User, when known.
    #[serde(default)]
    pub user: String,
    /// Grouping key: SHA-256 hex of the error type and the in-app frames.
    pub fingerprint: String,
    /// Resolved backtrace, innermost first, machinery trimmed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<Frame>,
    /// The backtrace as return addresses, when it could not be resolved to [`frames`]
    /// (the program's file changed before the event was stored).
    ///
    /// [`frames`]: CrashEvent::frames
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<UnresolvedFrames>,
    /// The chain of captured functions active at the time, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CapturedCall>,
    /// Short indexed-free labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Structured extra data; fields named in `redact_fields` are `**********`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// What happened before, on the same thread or task, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breadcrumbs: Vec<crate::model::breadcrumb::Breadcrumb>,
    /// Program, machine and thread.
    pub context: RuntimeContext,
    /// Everything else (request details and integration data), as JSON.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub payload: serde_json::Value,
}

impl CrashEvent {
    /// A minimal event for tests: the given id and message, level error, group `fp`.
    #[cfg(test)]
    pub(crate) fn sample(id: u128, message: &str) -> CrashEvent {
        CrashEvent {
            id: EventId(id),
            timestamp_us: 1,
            level: Level::Error,
            logger: "test".into(),
            error_type: String::new(),
            message: message.into(),
            sources: Vec::new(),
            location: None,
            request_path: String::new(),
            user: String::new(),
            fingerprint: "fp".into(),
            frames: Vec::new(),
            unresolved: None,
            calls: Vec::new(),
            tags: BTreeMap::new(),
            extra: BTreeMap::new(),
            breadcrumbs: Vec::new(),
            context: RuntimeContext::default(),
            payload: serde_json::Value::Null,
        }
    }

    /// Capture time as a [`SystemTime`].
    pub fn time(&self) -> SystemTime {
        from_us(self.timestamp_us)
    }

    /// The innermost in-app frame: the application's code closest to the failure, which
    /// shows where to look (for an index out of bounds, the function that indexed, not the
    /// standard library's indexing).
    pub fn culprit(&self) -> Option<&Frame> {
        self.frames.iter().find(|f| f.in_app)
    }

    /// The release of the program that captured the event (empty when none was set).
    pub fn release(&self) -> &str {
        &self.context.program_version
    }

    /// A one-line title: the error type and message, or the message alone.
    pub fn title(&self) -> String {
        let first_line = self.message.lines().next().unwrap_or("");
        if self.error_type.is_empty() {
            first_line.to_owned()
        } else {
            format!("{}: {}", self.error_type, first_line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_round_trips_through_text_and_bytes() {
        let id = EventId::new(1_700_000_000_000_000);
        assert_eq!(id.to_string().parse::<EventId>().unwrap(), id);
        assert_eq!(EventId::from_bytes(id.to_bytes()), id);
        assert_eq!(id.timestamp_us(), 1_700_000_000_000_000);
    }

    #[test]
    fn event_ids_sort_by_time() {
        let a = EventId::new(5);
        let b = EventId::new(6);
        assert!(a < b);
        assert!(a.to_bytes() < b.to_bytes());
        assert!(EventId::floor(6) <= b);
    }

    #[test]
    fn bad_event_id_is_an_error_naming_it() {
        let err = "xyz".parse::<EventId>().unwrap_err();
        assert!(err.to_string().contains("\"xyz\""));
        assert!("g".repeat(32).parse::<EventId>().is_err());
    }

    #[test]
    fn level_parses_names_and_rejects_others() {
        assert_eq!("WARN".parse::<Level>().unwrap(), Level::Warning);
        assert!("loud"
            .parse::<Level>()
            .unwrap_err()
            .to_string()
            .contains("loud"));
        assert!(Level::Debug < Level::Fatal);
    }
}
