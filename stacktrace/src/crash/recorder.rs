//! This process's crash record, mapped for the life of the process: the flight recorder
//! (breadcrumbs copied in as they happen) and the room the fatal-signal handler writes
//! the crash into. Only Linux keeps one; elsewhere nothing is recorded.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

use serde_json::Value;

use crate::crash::layout::{self, state, Meta};
use crate::model::breadcrumb::Breadcrumb;
use crate::pipeline::redact::credentials::{redact_credentials, redact_credentials_json};
use crate::pipeline::redact::fields::{FieldRedactor, Secrets};

/// The record of this process, once armed.
pub(crate) struct Recorder {
    /// Kept open, and locked: the lock tells readers the process still runs.
    _file: File,
    /// Kept for the life of the process: the handler and breadcrumbs write into it.
    map: memmap2::MmapMut,
    /// The start of `map`, for writes through a shared reference.
    base: *mut u8,
    /// How a breadcrumb's texts are redacted before they are copied in: no secret reaches
    /// the disk, the record included.
    redaction: Redaction,
    /// The process that made the record: a child forked from it without `exec` shares the
    /// mapping, and writes nothing into it.
    pid: u32,
}

/// The redaction the pipeline applies to an event's breadcrumbs, by value: `redact_fields`
/// for `name=value` pairs, and the values of the settings that hold secrets.
pub(crate) struct Redaction {
    pub(crate) fields: FieldRedactor,
    pub(crate) secrets: Secrets,
}

impl Redaction {
    /// A breadcrumb's category and message as they may reach the disk: credentials found by
    /// their form hidden, and what they hid, what its data hides (values by their names,
    /// credentials by their form) and the settings' secrets scrubbed from both texts
    /// wherever quoted, as an event's redaction scrubs them. Texts that hold no candidate
    /// stay borrowed: without data and secrets, one cheap scan each and no allocation.
    pub(crate) fn apply<'t>(&self, crumb: &'t Breadcrumb) -> (Cow<'t, str>, Cow<'t, str>) {
        let mut found = Vec::new();
        if !crumb.data.is_empty() {
            // The data is not copied in, but a text may quote what it holds.
            let mut data = Value::Object(
                crumb
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            self.fields.redact_json_keeping(&mut data, &mut found);
            redact_credentials_json(&mut data, &self.fields, &mut found);
        }
        // The values an event made now would be scrubbed of: the active calls' sensitive
        // arguments and the current request's credentials.
        crate::capture::pending::current_secrets(&mut found);
        let mut texts = [
            redact_credentials(&crumb.category, &self.fields, &mut found),
            redact_credentials(&crumb.message, &self.fields, &mut found),
        ];
        if found.is_empty() && self.secrets.is_empty() {
            let [category, message] = texts;
            return (category, message);
        }
        let secrets = self.secrets.extended(found);
        if !secrets.is_empty() {
            for text in &mut texts {
                if secrets.found_in(text) {
                    secrets.scrub(text.to_mut());
                }
            }
        }
        let [category, message] = texts;
        (category, message)
    }
}

// SAFETY: `base` points into `map`, which the recorder owns and never remaps; every write
// through it goes to a fixed offset inside the mapping, and the words written by more than
// one thread at a time are atomics.
#[allow(unsafe_code)]
unsafe impl Send for Recorder {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl Sync for Recorder {}

static RECORDER: OnceLock<Recorder> = OnceLock::new();

/// The armed recorder, if any.
pub(crate) fn recorder() -> Option<&'static Recorder> {
    RECORDER.get()
}

impl Recorder {
    /// Creates, sizes, locks and maps this process's record in `dir`; breadcrumbs copied in
    /// go through `redaction` first.
    pub(crate) fn arm(
        dir: &Path,
        meta: &Meta,
        redaction: Redaction,
    ) -> std::io::Result<&'static Recorder> {
        if let Some(r) = RECORDER.get() {
            return Ok(r);
        }
        std::fs::create_dir_all(dir)?;
        let pid = std::process::id();
        let started = crate::model::time::now_us();
        // Made whole under another name, locked, then renamed: a reader never finds it
        // empty and unlocked.
        let making = dir.join(format!("{pid}-{started}.making"));
        let path = dir.join(format!("{pid}-{started}.rec"));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&making)?;
        file.try_lock()
            .map_err(|e| std::io::Error::other(format!("{}: {e}", making.display())))?;
        std::io::Write::write_all(&mut file, &layout::fresh(pid, started, meta))?;
        std::fs::rename(&making, &path)?;
        // SAFETY: the file is this process's own, created just now and locked; no one else
        // writes it while the process runs (readers skip a locked record), and its size is
        // fixed, so the mapping never points past its end.
        #[allow(unsafe_code)]
        let mut map = unsafe { memmap2::MmapMut::map_mut(&file)? };
        let base = map.as_mut_ptr();
        if map.len() < layout::SIZE {
            return Err(std::io::Error::other(format!(
                "{}: mapped {} bytes of {}",
                path.display(),
                map.len(),
                layout::SIZE
            )));
        }
        let recorder = Recorder {
            _file: file,
            map,
            base,
            redaction,
            pid,
        };
        let _ = RECORDER.set(recorder);
        RECORDER
            .get()
            .ok_or_else(|| std::io::Error::other("crash record not kept"))
    }

    fn u32_word(&self, at: usize) -> &AtomicU32 {
        debug_assert!(at.is_multiple_of(4) && at + 4 <= self.map.len());
        // SAFETY: `at` is one of the layout's offsets, 4-aligned (the mapping is
        // page-aligned) and inside the mapping, which lives as long as `self`.
        #[allow(unsafe_code)]
        unsafe {
            &*self.base.add(at).cast::<AtomicU32>()
        }
    }

    fn u64_word(&self, at: usize) -> &AtomicU64 {
        debug_assert!(at.is_multiple_of(8) && at + 8 <= self.map.len());
        // SAFETY: as in `u32_word`, 8-aligned.
        #[allow(unsafe_code)]
        unsafe {
            &*self.base.add(at).cast::<AtomicU64>()
        }
    }

    /// Copies `bytes` to `at`, cut to `max`; returns how many were copied.
    fn copy_to(&self, at: usize, bytes: &[u8], max: usize) -> usize {
        let n = bytes.len().min(max);
        debug_assert!(at + n <= self.map.len());
        // SAFETY: `at..at + n` lies inside the mapping (the layout's offsets and sizes);
        // the bytes written are plain data no reference in this process points to.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(at), n);
        }
        n
    }

    /// Whether the calling process is the one whose record this is, and not a child forked
    /// from it (`getpid`, which a signal handler may call).
    pub(crate) fn is_own_process(&self) -> bool {
        std::process::id() == self.pid
    }

    /// Copies a breadcrumb into the ring, redacted: a slot claimed by a counter, its
    /// sequence number cleared while it is written and set last, so a reader takes only
    /// whole slots.
    pub(crate) fn breadcrumb(&self, crumb: &Breadcrumb) {
        if !self.is_own_process() {
            return;
        }
        // Redacted whole, then cut: a cut first could leave a secret its pattern no longer
        // finds (a URL's password without its `@`).
        let (category, message) = self.redaction.apply(crumb);
        let (level, at_us) = (crumb.level, crumb.timestamp_us);
        let seq = self
            .u64_word(layout::CRUMB_COUNT)
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        let at = layout::RING + (seq as usize % layout::SLOTS) * layout::SLOT;
        let stamp = self.u64_word(at);
        stamp.store(0, Ordering::Relaxed);
        self.u64_word(at + layout::SLOT_TIME)
            .store(at_us, Ordering::Relaxed);
        let c = self.copy_to(
            at + layout::SLOT_CATEGORY,
            cut(&category, layout::CATEGORY_MAX),
            layout::CATEGORY_MAX,
        );
        let m = self.copy_to(
            at + layout::SLOT_MESSAGE,
            cut(&message, layout::MESSAGE_MAX),
            layout::MESSAGE_MAX,
        );
        let lengths = [
            level.as_byte(),
            c as u8,
            (m as u16).to_ne_bytes()[0],
            (m as u16).to_ne_bytes()[1],
        ];
        self.copy_to(at + layout::SLOT_LEVEL, &lengths, 4);
        stamp.store(seq, Ordering::Release);
    }

    /// Writes how the process's session ended (see `layout::outcome`), before it closes.
    pub(crate) fn set_outcome(&self, outcome: u32) {
        if !self.is_own_process() {
            return;
        }
        self.u32_word(layout::OUTCOME)
            .store(outcome, Ordering::Release);
    }

    /// Marks the process as ended cleanly, unless it crashed.
    pub(crate) fn close(&self) {
        if !self.is_own_process() {
            return;
        }
        let _ = self.u32_word(layout::STATE).compare_exchange(
            state::OPEN,
            state::CLOSED,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// Writes a crash into the record: no allocation, no lock, no system call but the
    /// process id, the thread's name and the clock. Only the first crash of the process is
    /// written, and none of a child forked from it. Returns the state it replaced, when
    /// it wrote.
    pub(crate) fn write_crash(&self, c: &CrashWrite<'_>) -> Option<u32> {
        if !self.is_own_process() {
            return None;
        }
        let state = self.u32_word(layout::STATE);
        let was = [state::OPEN, state::CLOSED].into_iter().find(|from| {
            state
                .compare_exchange(*from, state::CRASHING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        self.u32_word(layout::SIGNAL)
            .store(c.signal as u32, Ordering::Relaxed);
        self.u32_word(layout::CODE)
            .store(c.code as u32, Ordering::Relaxed);
        self.u64_word(layout::FAULT)
            .store(c.fault, Ordering::Relaxed);
        self.u64_word(layout::TID).store(c.tid, Ordering::Relaxed);
        self.u64_word(layout::SP).store(c.sp, Ordering::Relaxed);
        self.u64_word(layout::PC).store(c.pc, Ordering::Relaxed);
        self.u64_word(layout::CRASHED_US)
            .store(c.time_us, Ordering::Relaxed);
        self.copy_to(layout::THREAD_NAME, c.thread_name, layout::THREAD_NAME_LEN);
        self.u32_word(layout::PANICKING)
            .store(u32::from(c.panicking), Ordering::Relaxed);
        let mut n = 0;
        (c.walk)(&mut |ip| {
            if n >= layout::MAX_IPS {
                return false;
            }
            self.u64_word(layout::IPS + 8 * n)
                .store(ip as u64, Ordering::Relaxed);
            n += 1;
            self.u32_word(layout::IP_COUNT)
                .store(n as u32, Ordering::Relaxed);
            true
        });
        std::sync::atomic::fence(Ordering::Release);
        self.copy_to(layout::DONE, &layout::DONE_MARK, 8);
        Some(was)
    }

    /// Takes back a crash written when the handler that was there before mended the
    /// signal: the crash words cleared (a reader takes a record with a signal for a crash),
    /// then the state it had (`was`, from [`Recorder::write_crash`]) put back.
    pub(crate) fn unwrite_crash(&self, was: u32) {
        self.copy_to(layout::DONE, &[0; 8], 8);
        self.u32_word(layout::SIGNAL).store(0, Ordering::Relaxed);
        self.u32_word(layout::IP_COUNT).store(0, Ordering::Relaxed);
        let _ = self.u32_word(layout::STATE).compare_exchange(
            state::CRASHING,
            was,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

/// What the handler knows of a crash, without allocating.
pub(crate) struct CrashWrite<'a> {
    pub(crate) signal: i32,
    pub(crate) code: i32,
    pub(crate) fault: u64,
    pub(crate) tid: u64,
    pub(crate) sp: u64,
    pub(crate) pc: u64,
    pub(crate) time_us: u64,
    pub(crate) thread_name: &'a [u8],
    pub(crate) panicking: bool,
    /// Walks the stack, giving each return address to the callback until it says stop.
    pub(crate) walk: &'a dyn Fn(&mut EachAddress<'_>),
}

/// Takes one return address; says whether to go on.
pub(crate) type EachAddress<'a> = dyn FnMut(usize) -> bool + 'a;

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> &[u8] {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s.as_bytes()[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::event::{Level, PLACEHOLDER};

    fn redaction() -> Redaction {
        Redaction {
            fields: FieldRedactor::new(&["password".into(), "token".into()]),
            secrets: Secrets::new(vec!["smtp-set-7".into()]),
        }
    }

    // Regression: a value the breadcrumb's data hid by its name (or a credential in it) was
    // copied into the record where the message quoted it, though an event of the same
    // breadcrumb scrubs it. Secrets in each part: the category, the message, and the data
    // (not copied in, but quoted by the message), by name, by form and by value.
    #[test]
    fn a_breadcrumb_reaches_the_record_without_its_secrets() {
        let crumb = Breadcrumb::new(
            Level::Info,
            "db postgres://u:cat-pw-1@h smtp-set-7",
            "login Bearer msg-tok-2 token=pair-tok-3 as data-pw-4 via data-url-pw-5 \
             nested nest-tok-6 control-text",
        )
        .with_data("password", "data-pw-4")
        .with_data("url", "redis://:data-url-pw-5@cache")
        .with_data("inner", serde_json::json!({ "api_token": "nest-tok-6" }));
        let (category, message) = redaction().apply(&crumb);
        for canary in [
            "cat-pw-1",
            "msg-tok-2",
            "pair-tok-3",
            "data-pw-4",
            "data-url-pw-5",
            "nest-tok-6",
            "smtp-set-7",
        ] {
            assert!(!category.contains(canary), "{canary} in {category}");
            assert!(!message.contains(canary), "{canary} in {message}");
        }
        assert_eq!(
            category,
            format!("db postgres://u:{PLACEHOLDER}@h {PLACEHOLDER}")
        );
        assert!(
            message.starts_with("login Bearer ") && message.ends_with(" control-text"),
            "{message}"
        );
        assert!(
            message.contains(&format!("as {PLACEHOLDER} via")),
            "{message}"
        );
    }

    // The fast path: texts that hold no candidate, beside data that hides nothing, are
    // copied as they are, without a copy made; a secret of the settings is still found.
    #[test]
    fn plain_texts_are_not_copied_and_settings_secrets_still_scrubbed() {
        let plain = Breadcrumb::new(Level::Info, "cart", "a breadcrumb of a usual length")
            .with_data("sku", "A-17");
        let (category, message) = redaction().apply(&plain);
        assert!(matches!(category, Cow::Borrowed("cart")));
        assert!(matches!(
            message,
            Cow::Borrowed("a breadcrumb of a usual length")
        ));
        let quoting = Breadcrumb::new(Level::Info, "cart", "a long text then smtp-set-7 too");
        let (_, message) = redaction().apply(&quoting);
        assert_eq!(message, format!("a long text then {PLACEHOLDER} too"));
    }

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("héllo", 2), b"h");
        assert_eq!(cut("abc", 10), b"abc");
    }
}
