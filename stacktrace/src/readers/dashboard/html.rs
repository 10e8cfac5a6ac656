//! HTML building blocks: the page frame with its inline style, badges, links, and the two
//! charts (a sparkline and a bar chart) drawn as inline SVG. Nothing is loaded from
//! elsewhere, so the dashboard works offline and under a strict content security policy.
//!
//! Pages are `maud` templates, which escape every value they insert; the only markup
//! inserted as it is is the style sheet below. A page's control characters (other than
//! line breaks and tabs) show as the replacement character (see [`Frame::page`]).

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::model::time::utc_text;
use crate::readers::wording::counted;
use crate::store::Trend;
use crate::{GroupStatus, Level};

pub(crate) use crate::escape::url_component;

/// A query string (`?a=1&b=2`) of the non-empty pairs, each value URL-encoded; the template
/// that inserts it escapes the `&`.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_component(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `2026-01-31 14:05:09 UTC`.
pub(crate) fn time(us: u64) -> String {
    format!("{} UTC", utc_text(us))
}

/// A status badge.
pub(crate) fn status_badge(status: GroupStatus, regressed: bool) -> Markup {
    html! {
        span class={ "badge st-" (status.as_str()) } { (status.as_str()) }
        @if regressed { " " span class="badge st-regressed" { "regressed" } }
    }
}

/// A level badge.
pub(crate) fn level_badge(level: Level) -> Markup {
    html! { span class={ "badge lv-" (level.as_str()) } { (level.as_str()) } }
}

/// A `<select>` with the current value selected.
pub(crate) fn select(name: &str, current: &str, options: &[(&str, &str)]) -> Markup {
    html! {
        select name=(name) {
            @for (value, label) in options {
                option value=(value) selected[*value == current] { (label) }
            }
        }
    }
}

/// A number with one decimal, for coordinates.
fn coord(v: f64) -> String {
    format!("{v:.1}")
}

/// A small line of a trend, for a table cell.
pub(crate) fn sparkline(trend: &Trend) -> Markup {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    let max = trend.max().max(1) as f64;
    let n = trend.counts.len().max(2) as f64 - 1.0;
    let points: Vec<String> = (trend.counts.iter().enumerate())
        .map(|(i, c)| {
            let y = H - 2.0 - (*c as f64 / max) * (H - 4.0);
            format!("{},{}", coord(i as f64 * W / n), coord(y))
        })
        .collect();
    let buckets = counted(
        trend.counts.len() as u64,
        &trend.interval.to_string(),
        &format!("{}s", trend.interval),
    );
    html! {
        svg class="spark" viewBox={ "0 0 " (W) " " (H) } width=(W) height=(H) role="img" {
            title { (trend.total()) " in the last " (buckets) }
            polyline points=(points.join(" ")) {}
        }
    }
}

/// A bar chart of a trend with its axis labels.
pub(crate) fn bar_chart(trend: &Trend) -> Markup {
    const W: f64 = 720.0;
    const H: f64 = 160.0;
    const AXIS: f64 = 18.0;
    let max = trend.max().max(1);
    let slot = W / trend.counts.len().max(1) as f64;
    let label_y = format!("{:.0}", H + AXIS - 4.0);
    html! {
        svg class="chart" viewBox={ "0 0 " (W) " " (H + AXIS) } width="100%" role="img" {
            title { "occurrences per " (trend.interval) }
            @for (i, (start, count)) in trend.buckets().enumerate() {
                @let h = (count as f64 / max as f64) * (H - 12.0);
                rect x=(coord(i as f64 * slot + 1.0)) y=(coord(H - h))
                    width=(coord((slot - 2.0).max(1.0))) height=(coord(h)) {
                    title { (utc_text(start)) ": " (count) }
                }
            }
            line x1="0" y1=(H) x2=(W) y2=(H) {}
            text x="0" y=(label_y) { (utc_text(trend.start_us)) }
            text x=(W) y=(label_y) text-anchor="end" { "now" }
            text x=(W) y="12" text-anchor="end" { "max " (max) }
        }
    }
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d232b;background:#f6f7f9}
header{background:#1d232b;color:#fff;padding:.6em 1.2em;display:flex;gap:1.4em;align-items:baseline}
header a{color:#fff;text-decoration:none}header .brand{font-weight:700}
header .stats{margin-left:auto;color:#aab}
main{padding:1em 1.2em;max-width:1200px}
h1{font-size:1.25em;margin:.2em 0 .6em;word-break:break-word}h2{font-size:1.05em;margin:1.4em 0 .4em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#eef0f3;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.title{word-break:break-word}
pre{background:#fff;border:1px solid #e3e6ea;padding:.6em;white-space:pre-wrap;word-break:break-word;margin:0}
#message{max-height:32em;overflow:auto}
.badge{display:inline-block;padding:0 .45em;border-radius:3px;font-size:.85em;background:#e3e6ea}
.st-unresolved{background:#fde2e1}.st-resolved{background:#dcf5e3}.st-ignored{background:#e8e8e8}
.st-regressed{background:#ffd9a8}
.lv-fatal{background:#b3261e;color:#fff}.lv-error{background:#f4a4a0}.lv-warning{background:#fde8a8}
.lv-info{background:#cfe3fb}.lv-debug{background:#e8e8e8}
form.filters{display:flex;gap:.5em;flex-wrap:wrap;margin-bottom:1em}
form.filters input[type=search]{min-width:18em}
form.inline{display:inline}button{cursor:pointer}
.frames tr.app td{background:#fff6d6;font-weight:600}.frames tr.lib td{color:#67707c}
.spark polyline{fill:none;stroke:#3165c9;stroke-width:1.5}
.chart{max-width:760px;display:block}.chart rect{fill:#3165c9}.chart line{stroke:#999}.chart text{font-size:11px;fill:#555}
.meta th{width:12em}.muted{color:#67707c}.pager{margin:1em 0}
pre.source{margin:0 0 .4em;padding:.4em;background:#f6f7f9;font-size:12px;overflow-x:auto}pre.source .ln{display:inline-block;width:3.5em;color:#99a;user-select:none}pre.source .current{background:#fff1b8;display:inline-block;min-width:100%}
.tags{display:flex;flex-wrap:wrap;gap:1em}.tags table.tag{width:auto;min-width:16em}td.share{min-width:8em;position:relative}td.share .bar{display:inline-block;height:.7em;background:#9db5e8;margin-right:.4em;vertical-align:middle;max-width:5em}
ol.timeline{list-style:none;padding-left:0;border-left:3px solid #c9d3e3;margin-left:.4em}ol.timeline li{padding:.2em .8em;position:relative}ol.timeline .when{display:inline-block;min-width:5.5em;color:#67707c;font-variant-numeric:tabular-nums}ol.timeline .category{font-weight:600}ol.timeline li.event{color:#b3261e;font-weight:600}
.chart.labelled .grid{stroke:#e3e6ea}.chart.labelled .axis,.chart.labelled .tick{stroke:#888}.chart.labelled text{font-size:11px;fill:#444}.chart.labelled text.x-label{text-anchor:middle}
.notice{background:#fff;border-left:4px solid #3165c9;padding:.6em 1em;margin:0 0 1em}
";

/// What every page shows in its header.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    /// Where the dashboard is mounted (`""` at the root, `/errors` when nested).
    pub(crate) base: String,
    /// Events and groups stored, for the header.
    pub(crate) summary: String,
}

impl Frame {
    /// The groups page's address (`/` at the root; `/errors`, not `/errors/`, when nested).
    pub(crate) fn home(&self) -> String {
        if self.base.is_empty() {
            "/".to_owned()
        } else {
            self.base.clone()
        }
    }

    /// A whole page around `body`, its control characters other than line breaks and tabs
    /// replaced: stored text is shown, never interpreted by a terminal or a parser.
    pub(crate) fn page(&self, title: &str, body: Markup) -> String {
        let home = self.home();
        let base = &self.base;
        let page = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width,initial-scale=1";
                    title { (title) " · stacktrace" }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    header {
                        a class="brand" href=(home) { "stacktrace" }
                        a href=(home) { "Groups" }
                        a href={ (base) "/events" } { "Events" }
                        a href={ (base) "/requests" } { "Requests" }
                        a href={ (base) "/releases" } { "Releases" }
                        a href={ (base) "/functions" } { "Functions" }
                        span class="stats" { (self.summary) }
                    }
                    main { (body) }
                }
            }
        };
        without_controls(page.into_string())
    }
}

/// `text` with its control characters other than line breaks and tabs replaced by U+FFFD.
fn without_controls(text: String) -> String {
    let kept = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if text.chars().all(kept) {
        return text;
    }
    text.chars()
        .map(|c| if kept(c) { c } else { '\u{fffd}' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Interval, Window};

    #[test]
    fn pages_escape_markup_and_quotes_and_replace_controls() {
        let frame = Frame {
            base: "/a\"b".into(),
            summary: "<b>1</b>".into(),
        };
        let text = "<script>alert('x')</script>&\"\u{1b}[31m\r\n\t";
        let page = frame.page(text, html! { p id="shown" { (text) } });
        assert!(
            page.contains(
                "<p id=\"shown\">&lt;script&gt;alert('x')&lt;/script&gt;&amp;&quot;\u{fffd}[31m\u{fffd}\n\t</p>"
            ),
            "{page}"
        );
        assert!(page.contains("<title>&lt;script&gt;alert('x')"));
        assert!(!page.contains("<script") && !page.contains('\u{1b}') && !page.contains('\r'));
        assert!(page.contains(r#"<a href="/a&quot;b/events">Events</a>"#));
        assert!(page.contains("<span class=\"stats\">&lt;b&gt;1&lt;/b&gt;</span>"));
        // The style sheet is the one text inserted as it is.
        assert!(page.contains("<style>\nbody{"));
    }

    #[test]
    fn query_strings_encode_values_and_skip_empty_ones() {
        let q = query_string(&[("q", "a b&c"), ("level", ""), ("x", "é")]);
        assert_eq!(q, "?q=a%20b%26c&x=%C3%A9");
        assert_eq!(query_string(&[("q", "")]), "");
        let link = html! { a href={ "/events" (q) } { "next" } }.into_string();
        assert_eq!(
            link,
            r#"<a href="/events?q=a%20b%26c&amp;x=%C3%A9">next</a>"#
        );
    }

    #[test]
    fn charts_have_one_mark_per_bucket() {
        let t = Trend {
            interval: Interval::Hour,
            start_us: Window::ending_at_us(Interval::Hour, 3, 0).start_us(),
            counts: vec![0, 5, 2],
        };
        assert_eq!(bar_chart(&t).into_string().matches("<rect").count(), 3);
        assert!(sparkline(&t)
            .into_string()
            .contains("<title>7 in the last 3 hours</title>"));
    }
}
