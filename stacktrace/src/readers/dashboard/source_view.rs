//! A frame's place and source lines as HTML: numbered, the frame's own line highlighted.

use maud::{html, Markup};

use crate::model::event::Frame;
use crate::SourceContext;

/// `file:line`, the file alone, or nothing when debug info did not have it.
pub(crate) fn place(f: &Frame) -> String {
    match (&f.file, f.line) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        (Some(file), None) => file.clone(),
        _ => String::new(),
    }
}

/// A table row holding the lines of `source` around line `at`.
pub(crate) fn source_block(source: &SourceContext, at: u32) -> Markup {
    html! {
        tr class="source" {
            td colspan="2" {
                pre class="source" {
                    @for (n, text) in source.numbered(at) {
                        span class=[(n == at).then_some("current")] {
                            span class="ln" { (n) } (text)
                        }
                        "\n"
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_escaped_and_the_current_one_marked() {
        let s = SourceContext {
            pre: vec!["let a = 1;".into()],
            line: "if a < 2 { panic!(\"<b>\") }".into(),
            post: vec![],
        };
        let html = source_block(&s, 10).into_string();
        assert!(
            html.contains(r#"<span class="ln">9</span>let a = 1;"#),
            "{html}"
        );
        assert!(html.contains(r#"<span class="current"><span class="ln">10</span>if a &lt; 2"#));
        assert!(!html.contains("<b>"));
    }
}
