//! A frame's source lines as HTML: numbered, the frame's own line highlighted, escaped.

use std::fmt::Write as _;

use super::html::esc;
use crate::SourceContext;

/// A table row holding the lines of `source` around line `at`.
pub(crate) fn source_block(source: &SourceContext, at: u32) -> String {
    let mut b = String::from(r#"<tr class="source"><td colspan="2"><pre class="source">"#);
    for (n, text) in source.numbered(at) {
        let class = if n == at { " class=\"current\"" } else { "" };
        let _ = write!(
            b,
            r#"<span{class}><span class="ln">{n}</span>{}</span>"#,
            esc(text)
        );
        b.push('\n');
    }
    b.push_str("</pre></td></tr>");
    b
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
        let html = source_block(&s, 10);
        assert!(
            html.contains(r#"<span class="ln">9</span>let a = 1;"#),
            "{html}"
        );
        assert!(html.contains(r#"<span class="current"><span class="ln">10</span>if a &lt; 2"#));
        assert!(!html.contains("<b>"));
    }
}
