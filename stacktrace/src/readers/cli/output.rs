//! Output for people: aligned tables, colour only on a terminal, and event text made safe
//! for the terminal (a stored message cannot move the cursor or change colours).

use std::io::{self, IsTerminal, Write};

use super::args::ColorChoice;
use crate::readers::wording::{short_title, shortened};
use crate::{GroupStatus, Level};

pub(crate) use crate::readers::wording::bytes;

/// Where and how to print.
pub(crate) struct Out {
    pub(crate) w: Box<dyn Write>,
    pub(crate) color: bool,
    /// Columns available, when printing to a terminal.
    pub(crate) width: Option<usize>,
}

impl Out {
    pub(crate) fn stdout(choice: ColorChoice) -> Out {
        let tty = io::stdout().is_terminal();
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        };
        let width = tty.then(|| {
            std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.parse().ok())
                .filter(|c: &usize| *c >= 40)
                .unwrap_or(120)
        });
        Out {
            w: Box::new(io::BufWriter::new(io::stdout().lock())),
            color,
            width,
        }
    }

    /// Text in an ANSI style (`"1"` bold, `"31"` red, ...) when colouring.
    pub(crate) fn paint(&self, style: &str, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("\x1b[{style}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub(crate) fn level(&self, level: Level) -> String {
        let style = match level {
            Level::Fatal => "1;31",
            Level::Error => "31",
            Level::Warning => "33",
            Level::Info => "36",
            Level::Debug => "2",
        };
        self.paint(style, level.as_str())
    }

    pub(crate) fn status(&self, status: GroupStatus, regressed: bool) -> String {
        let style = match status {
            GroupStatus::Unresolved => "31",
            GroupStatus::Resolved => "32",
            GroupStatus::Ignored => "2",
        };
        let text = if regressed {
            format!("{status}*")
        } else {
            status.to_string()
        };
        self.paint(style, &text)
    }

    pub(crate) fn line(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.w, "{text}")
    }

    pub(crate) fn json(&mut self, value: &impl serde::Serialize) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut self.w, value).map_err(io::Error::other)?;
        writeln!(self.w)
    }
}

/// One line of event text for a table cell: the first line, controls replaced.
pub(crate) fn cell(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A title for a table cell or a heading: one line, controls replaced, at most
/// [`TITLE_CHARS`](crate::readers::wording::TITLE_CHARS) characters (the whole text is in the
/// event's message and its JSON).
pub(crate) fn title_cell(text: &str) -> String {
    short_title(&cell(text))
}

/// Multi-line event text for the terminal: line breaks kept, other controls replaced.
pub(crate) fn block(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\n' {
                c
            } else if c == '\t' {
                ' '
            } else if c.is_control() {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// Visible width, ignoring ANSI styles.
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

/// An aligned table; the last column takes what is left of the terminal's width.
pub(crate) struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns named; a name starting with `>` is right-aligned (numbers).
    pub(crate) fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.trim_start_matches('>')).collect(),
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn print(&self, out: &mut Out) -> io::Result<()> {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(visible_len(c));
            }
        }
        let last_room = out.width.map(|w| {
            let used: usize = widths[..n - 1].iter().map(|w| w + 2).sum();
            w.saturating_sub(used).max(20)
        });
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let header = self.format_row(&header, &widths, None);
        if self.headers.iter().any(|h| !h.is_empty()) {
            let header = out.paint("1", &header);
            out.line(&header)?;
        }
        for r in &self.rows {
            let line = self.format_row(r, &widths, last_room);
            out.line(&line)?;
        }
        Ok(())
    }

    fn format_row(&self, cells: &[String], widths: &[usize], last_room: Option<usize>) -> String {
        let n = self.headers.len();
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate().take(n) {
            if i + 1 == n {
                match last_room {
                    Some(room) => line.push_str(&shortened(c, room)),
                    None => line.push_str(c),
                }
                break;
            }
            let pad = widths[i].saturating_sub(visible_len(c));
            if self.right[i] {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        line.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Out {
        Out {
            w: Box::new(Vec::new()),
            color: false,
            width: None,
        }
    }

    #[test]
    fn cells_and_blocks_defuse_terminal_controls() {
        assert_eq!(cell("a\u{1b}[2Jb\nsecond"), "a [2Jb");
        assert_eq!(block("x\u{1b}]0;t\u{7}\ny"), "x\u{fffd}]0;t\u{fffd}\ny");
    }

    #[test]
    fn table_aligns_and_right_aligns_numbers() {
        let mut t = Table::new(&["NAME", ">N", "TITLE"]);
        t.row(vec!["a".into(), "5".into(), "first".into()]);
        t.row(vec!["long".into(), "12".into(), "second".into()]);
        let r: Vec<String> = t
            .rows
            .iter()
            .map(|r| t.format_row(r, &[4, 2, 6], None))
            .collect();
        assert_eq!(r, ["a      5  first", "long  12  second"]);
        let mut out = plain();
        t.print(&mut out).unwrap();
    }

    #[test]
    fn styles_do_not_count_towards_width() {
        let out = Out {
            color: true,
            ..plain()
        };
        assert_eq!(visible_len(&out.paint("31", "error")), 5);
        assert_eq!(shortened("abcdef", 4), "abc…");
        assert_eq!(bytes(2048), "2.0 KiB");
    }
}
