//! A progress bar on standard error, drawn only when standard error is a terminal, so that
//! scripts and logs never see it.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A bar for a long export or purge.
pub(crate) struct Progress {
    label: &'static str,
    total: u64,
    done: u64,
    visible: bool,
    drawn_at: Option<Instant>,
}

impl Progress {
    /// Whether a bar would be drawn: work that costs extra only for the bar can be skipped.
    pub(crate) fn wanted() -> bool {
        std::io::stderr().is_terminal()
    }

    pub(crate) fn new(label: &'static str, total: u64) -> Progress {
        Progress {
            label,
            total,
            done: 0,
            visible: total > 0 && Progress::wanted(),
            drawn_at: None,
        }
    }

    pub(crate) fn set(&mut self, done: u64) {
        self.done = done.min(self.total);
        if !self.visible {
            return;
        }
        // Drawn ten times a second at most.
        if self
            .drawn_at
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
            && self.done < self.total
        {
            return;
        }
        self.drawn_at = Some(Instant::now());
        let _ = write!(
            std::io::stderr(),
            "\r{}",
            bar(self.label, self.done, self.total)
        );
    }

    pub(crate) fn finish(self) {
        if self.visible && self.drawn_at.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// `exporting [#########-----------]  45% 4500/10000`.
fn bar(label: &str, done: u64, total: u64) -> String {
    const WIDTH: u64 = 30;
    let total = total.max(1);
    let filled = (done * WIDTH / total) as usize;
    format!(
        "{label} [{}{}] {:3}% {done}/{total}",
        "#".repeat(filled),
        "-".repeat(WIDTH as usize - filled),
        done * 100 / total
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_fills_in_proportion() {
        assert_eq!(
            bar("x", 5, 10),
            format!("x [{}{}]  50% 5/10", "#".repeat(15), "-".repeat(15))
        );
        assert!(bar("x", 0, 0).contains("0%"));
    }
}
