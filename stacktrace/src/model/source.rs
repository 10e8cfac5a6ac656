//! The source lines kept around a frame's line.

use serde::{Deserialize, Serialize};

/// Lines of a frame's source file around its line, read when the event was built (only for
/// the app's own frames whose file could be read), redacted like every other text. The
/// same three parts as Sentry's `pre_context`, `context_line` and `post_context`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceContext {
    /// Up to five lines before the frame's line, in file order.
    pub pre: Vec<String>,
    /// The frame's line.
    pub line: String,
    /// Up to five lines after it.
    pub post: Vec<String>,
}

impl SourceContext {
    /// Every line, in file order, with its number given the frame's `line`.
    pub fn numbered(&self, line: u32) -> impl Iterator<Item = (u32, &str)> {
        let first = line.saturating_sub(self.pre.len() as u32);
        self.pre
            .iter()
            .chain(std::iter::once(&self.line))
            .chain(self.post.iter())
            .enumerate()
            .map(move |(i, text)| (first + i as u32, text.as_str()))
    }

    /// Every line, for a redaction step.
    pub(crate) fn lines_mut(&mut self) -> impl Iterator<Item = &mut String> {
        self.pre
            .iter_mut()
            .chain(std::iter::once(&mut self.line))
            .chain(self.post.iter_mut())
    }
}
