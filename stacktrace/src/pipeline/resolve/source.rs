//! Source lines around the app's frames: read from the file the debug info names, when it
//! can be read where the program runs, each file once (cached, bounded), every line and the
//! whole kept text capped. A file that is missing, unreadable, binary, not UTF-8 or larger
//! than [`MAX_FILE_BYTES`] gives no lines, and nothing else.
//!
//! The debug info names the program's own files as the compiler was given them: relative to
//! the workspace in a cargo build. A relative path is looked for below the current
//! directory and its parents, then below the executable's directory and its parents
//! (`target/debug/app` is two levels below the workspace).
//!
//! A panic journaled by a process that ended before its writer stored it is resolved by the
//! next process to open the database, from the module files: its frames get no lines, since
//! that process does not have the secrets of the event's calls to redact them with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::model::event::Frame;
use crate::model::source::SourceContext;

/// Lines kept before and after a frame's line.
pub(crate) const AROUND: usize = 5;
/// Characters kept of a line; a longer one is cut and ends with `…`.
pub(crate) const MAX_LINE_CHARS: usize = 200;
/// Frames of one event given lines at most.
pub(crate) const MAX_FRAMES: usize = 16;
/// Bytes of source kept for one event at most.
pub(crate) const MAX_EVENT_BYTES: usize = 24 * 1024;
/// Files larger than this are not read.
pub(crate) const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// Files whose lines (or absence) are remembered; the cache is emptied when full.
const MAX_CACHED: usize = 128;
/// Parent directories tried for a relative path.
const MAX_UP: usize = 6;

type Lines = Option<Arc<[String]>>;

/// Reads and caches source lines; off when `enabled` is false.
#[derive(Debug)]
pub(crate) struct SourceLines {
    enabled: bool,
    cache: Mutex<HashMap<String, Lines>>,
}

impl Default for SourceLines {
    fn default() -> Self {
        SourceLines::new(true)
    }
}

impl SourceLines {
    pub(crate) fn new(enabled: bool) -> Self {
        SourceLines {
            enabled,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Gives the app's frames the lines around their line, innermost first, within the
    /// caps. Never fails: a frame whose file cannot be read keeps none.
    pub(crate) fn add_to(&self, frames: &mut [Frame]) {
        if !self.enabled {
            return;
        }
        let mut budget = MAX_EVENT_BYTES;
        let mut given = 0;
        for frame in frames.iter_mut().filter(|f| f.in_app) {
            if given == MAX_FRAMES {
                break;
            }
            let (Some(file), Some(line)) = (frame.file.as_deref(), frame.line) else {
                continue;
            };
            let Some(lines) = self.lines_of(file) else {
                continue;
            };
            let Some(context) = context_at(&lines, line) else {
                continue;
            };
            let size: usize = context
                .pre
                .iter()
                .chain(&context.post)
                .map(String::len)
                .sum::<usize>()
                + context.line.len();
            if size > budget {
                break;
            }
            budget -= size;
            given += 1;
            frame.source = Some(context);
        }
    }

    /// The lines of `file`, from the cache or read. The cache is only tried: on the panic
    /// hook's thread this never waits for a lock.
    fn lines_of(&self, file: &str) -> Lines {
        if let Some(cache) = crate::sync::try_lock(&self.cache).as_ref() {
            if let Some(hit) = cache.get(file) {
                return hit.clone();
            }
        }
        let read = read_lines(file);
        if let Some(mut cache) = crate::sync::try_lock(&self.cache) {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(file.to_owned(), read.clone());
        }
        read
    }
}

/// Where `file` is found: as it is when absolute, else below the current directory, the
/// executable's directory, or one of their parents.
fn located(file: &str) -> Option<PathBuf> {
    let path = Path::new(file);
    if path.is_absolute() {
        return path.is_file().then(|| path.to_path_buf());
    }
    let bases = [
        std::env::current_dir().ok(),
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf)),
    ];
    bases
        .iter()
        .flatten()
        .flat_map(|base| base.ancestors().take(MAX_UP + 1))
        .map(|dir| dir.join(path))
        .find(|candidate| candidate.is_file())
}

/// The lines of a text file, each capped; `None` when it cannot be read, is too large, or
/// is not UTF-8 text.
fn read_lines(file: &str) -> Lines {
    let path = located(file)?;
    if std::fs::metadata(&path).ok()?.len() > MAX_FILE_BYTES {
        return None;
    }
    let bytes = std::fs::read(&path).ok()?;
    if bytes.len() as u64 > MAX_FILE_BYTES || bytes.contains(&0) {
        return None;
    }
    let text = String::from_utf8(bytes).ok()?;
    Some(text.lines().map(capped).collect())
}

/// A line without its line end, cut to [`MAX_LINE_CHARS`] characters.
fn capped(line: &str) -> String {
    let line = line.trim_end_matches('\r');
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// The lines around `line` (from 1); `None` past the end of the file.
fn context_at(lines: &[String], line: u32) -> Option<SourceContext> {
    let at = (line as usize).checked_sub(1)?;
    let current = lines.get(at)?;
    let from = at.saturating_sub(AROUND);
    let to = (at + 1 + AROUND).min(lines.len());
    Some(SourceContext {
        pre: lines[from..at].to_vec(),
        line: current.clone(),
        post: lines[at + 1..to].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(file: &str, line: u32, in_app: bool) -> Frame {
        Frame {
            function: "app::f".into(),
            file: Some(file.into()),
            line: Some(line),
            in_app,
            source: None,
        }
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    #[test]
    fn five_lines_before_and_after_for_app_frames_only() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (1..=20).map(|i| format!("line {i}\r\n")).collect();
        let file = write(dir.path(), "a.rs", text.as_bytes());
        let mut frames = [frame(&file, 10, true), frame(&file, 10, false)];
        SourceLines::new(true).add_to(&mut frames);
        let s = frames[0]
            .source
            .as_ref()
            .expect("lines for the app's frame");
        assert_eq!(s.line, "line 10");
        assert_eq!(s.pre, ["line 5", "line 6", "line 7", "line 8", "line 9"]);
        assert_eq!(s.post.len(), AROUND);
        assert_eq!(s.post.last().map(String::as_str), Some("line 15"));
        assert_eq!(s.numbered(10).next(), Some((5, "line 5")));
        assert!(frames[1].source.is_none(), "a library frame gets none");
    }

    #[test]
    fn lines_near_the_edges_of_the_file_are_fewer() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.rs", b"one\ntwo\nthree");
        let mut frames = [
            frame(&file, 1, true),
            frame(&file, 3, true),
            frame(&file, 4, true),
        ];
        SourceLines::new(true).add_to(&mut frames);
        let first = frames[0].source.as_ref().unwrap();
        assert!(first.pre.is_empty());
        assert_eq!(first.post, ["two", "three"]);
        assert_eq!(frames[1].source.as_ref().unwrap().post.len(), 0);
        assert!(frames[2].source.is_none(), "past the end");
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let long = "é".repeat(MAX_LINE_CHARS + 50);
        let file = write(dir.path(), "a.rs", long.as_bytes());
        let mut frames = [frame(&file, 1, true)];
        SourceLines::new(true).add_to(&mut frames);
        let line = &frames[0].source.as_ref().unwrap().line;
        assert_eq!(line.chars().count(), MAX_LINE_CHARS + 1);
        assert!(line.ends_with('…'));
    }

    #[test]
    fn unreadable_files_give_no_lines_and_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), "good.rs", b"fn main() {}\n");
        let binary = write(dir.path(), "bin.rs", b"fn\0main\n");
        let latin1 = write(dir.path(), "latin1.rs", b"caf\xe9\n");
        let huge = dir.path().join("huge.rs");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        let missing = dir.path().join("missing.rs").display().to_string();
        let a_dir = dir.path().display().to_string();
        let mut frames = [
            frame(&binary, 1, true),
            frame(&latin1, 1, true),
            frame(&huge.display().to_string(), 1, true),
            frame(&missing, 1, true),
            frame(&a_dir, 1, true),
            frame("relative/nowhere.rs", 1, true),
            frame(&good, 1, true),
        ];
        SourceLines::new(true).add_to(&mut frames);
        for f in &frames[..6] {
            assert!(f.source.is_none(), "{:?}", f.file);
        }
        // Control: a readable file beside them gives its line.
        assert_eq!(frames[6].source.as_ref().unwrap().line, "fn main() {}");
    }

    #[test]
    fn off_by_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "a.rs", b"x\n");
        let mut frames = [frame(&file, 1, true)];
        SourceLines::new(false).add_to(&mut frames);
        assert!(frames[0].source.is_none());
        SourceLines::new(true).add_to(&mut frames);
        assert!(frames[0].source.is_some());
    }

    #[test]
    fn a_file_is_read_once_and_the_event_total_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let line = "x".repeat(MAX_LINE_CHARS);
        let text: String = (0..100).map(|_| format!("{line}\n")).collect();
        let file = write(dir.path(), "a.rs", text.as_bytes());
        let lines = SourceLines::new(true);
        let mut frames: Vec<Frame> = (0..MAX_FRAMES)
            .map(|i| frame(&file, 10 + i as u32, true))
            .collect();
        lines.add_to(&mut frames);
        let kept: usize = frames
            .iter()
            .filter_map(|f| f.source.as_ref())
            .map(|s| s.numbered(1).map(|(_, t)| t.len()).sum::<usize>())
            .sum();
        assert!(kept <= MAX_EVENT_BYTES, "{kept}");
        assert!(frames[0].source.is_some());
        assert!(frames.last().unwrap().source.is_none(), "past the budget");
        // Read once: the cached lines outlive the file.
        std::fs::remove_file(&file).unwrap();
        let mut again = [frame(&file, 1, true)];
        lines.add_to(&mut again);
        assert!(again[0].source.is_some());
    }
}
