//! Files another process left for this one to read at start-up (crash records, spool and
//! journal lines, the module files they name): any file may be in their place, of any
//! size. They are opened only when they are regular files, without ever blocking; read
//! with a cap; and a file that is not what it should be is moved aside once, so that the
//! next start does not read it again.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// What an open of a path that is not a regular file fails with.
const NOT_REGULAR: &str = "not a regular file";

/// Opens the regular file at `path`, for reading (and writing with `write`); anything else
/// (a FIFO, a device, a socket, a directory) is refused, an error [`is_not_regular`] tells.
/// The path is checked before the open, and the open itself cannot block (on Unix it is
/// made with `O_NONBLOCK`, which changes nothing for a regular file) and is checked again
/// on what was opened, so that a FIFO put in its place in between is refused too.
pub(crate) fn open_regular(path: &Path, write: bool) -> std::io::Result<File> {
    let not_regular = || std::io::Error::new(std::io::ErrorKind::InvalidInput, NOT_REGULAR);
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let mut options = OpenOptions::new();
    options.read(true).write(write);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Whether `e` is [`open_regular`] refusing what is not a regular file.
pub(crate) fn is_not_regular(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::InvalidInput && e.to_string() == NOT_REGULAR
}

/// The bytes of `reader`, when there are at most `max`; `None` when there are more, of
/// which no more than `max + 1` are read.
pub(crate) fn read_capped(reader: impl Read, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader
        .take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() <= max).then_some(bytes))
}

/// One line read by [`read_line_capped`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// The bytes it took of the reader, its line end included; 0 at the end.
    pub(crate) read: u64,
    /// Whether it ended with a line end (else the reader ended first).
    pub(crate) whole: bool,
    /// Whether it was longer than the cap: then the buffer holds none of it.
    pub(crate) too_long: bool,
}

/// Reads one line of `reader` into `line` (cleared first), its `\n` included, when it is at
/// most `max` bytes long; a longer line is read past in pieces and not kept, so that a
/// file of one line without end costs the reader's buffer, not the file's size.
pub(crate) fn read_line_capped(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    line.clear();
    let mut got = Line {
        read: 0,
        whole: false,
        too_long: false,
    };
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(got);
        }
        let (piece, whole) = match buf.iter().position(|b| *b == b'\n') {
            Some(at) => (&buf[..=at], true),
            None => (buf, false),
        };
        let n = piece.len();
        if !got.too_long && line.len() + n > max {
            got.too_long = true;
            line.clear();
            line.shrink_to(max.min(1 << 16));
        }
        if !got.too_long {
            line.extend_from_slice(piece);
        }
        reader.consume(n);
        got.read += n as u64;
        if whole {
            got.whole = true;
            return Ok(got);
        }
    }
}

/// Where a file that is not what it should be is moved: `<name>.invalid` beside it.
pub(crate) fn invalid_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".invalid");
    path.with_file_name(name)
}

/// Moves the file at `path` aside to `<name>.invalid`, and says so (with `why`) once on
/// stderr: it is not read again at the next start. Nothing is deleted.
pub(crate) fn set_aside(path: &Path, why: &str) {
    let aside = invalid_path(path);
    match std::fs::rename(path, &aside) {
        Ok(()) => crate::diag::say(&format!(
            "stacktrace: {} is {why}; moved aside to {} and not read again",
            path.display(),
            aside.display()
        )),
        // Gone meanwhile (another program moved it): nothing to say.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => crate::diag::say(&format!(
            "stacktrace: {} is {why}, and could not be moved aside to {}: {e}",
            path.display(),
            aside.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_over_the_cap_is_read_past_and_not_kept() {
        let text = format!("short\n{}\nnext\ntorn", "x".repeat(100));
        let mut reader = std::io::BufReader::with_capacity(16, text.as_bytes());
        let mut line = Vec::new();
        let mut lines = Vec::new();
        loop {
            let got = read_line_capped(&mut reader, &mut line, 10).unwrap();
            if got.read == 0 {
                break;
            }
            lines.push((String::from_utf8(line.clone()).unwrap(), got));
        }
        let shown: Vec<(&str, u64, bool, bool)> = lines
            .iter()
            .map(|(l, g)| (l.as_str(), g.read, g.whole, g.too_long))
            .collect();
        assert_eq!(
            shown,
            [
                ("short\n", 6, true, false),
                ("", 101, true, true),
                ("next\n", 5, true, false),
                ("torn", 4, false, false),
            ]
        );
    }

    #[test]
    fn read_capped_stops_past_the_cap() {
        assert_eq!(read_capped(&b"abc"[..], 3).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_capped(&b"abcd"[..], 3).unwrap(), None);
    }

    // A FIFO (and a directory) is refused without blocking; a regular file opens.
    #[cfg(unix)]
    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo takes no other pointer.
        #[allow(unsafe_code)]
        let made = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(made, 0);
        let e = open_regular(&fifo, false).unwrap_err();
        assert!(is_not_regular(&e), "{e}");
        assert!(is_not_regular(
            &open_regular(dir.path(), false).unwrap_err()
        ));
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(open_regular(&file, true).is_ok());
    }
}
