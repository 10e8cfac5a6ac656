//! HTML building blocks: escaping, the page frame with its inline style, links, and the two
//! charts (a sparkline and a bar chart) drawn as inline SVG. Nothing is loaded from
//! elsewhere, so the dashboard works offline and under a strict content security policy.

use std::fmt::Write as _;

use crate::model::time::utc_text;
use crate::readers::wording::counted;
use crate::store::Trend;
use crate::{GroupStatus, Level};

pub(crate) use crate::escape::escape_html as esc;
pub(crate) use crate::escape::url_component;

/// A query string (`?a=1&b=2`, escaped for an attribute) of the non-empty pairs.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_component(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        esc(&format!("?{}", parts.join("&")))
    }
}

/// `2026-01-31 14:05:09 UTC`.
pub(crate) fn time(us: u64) -> String {
    format!("{} UTC", utc_text(us))
}

/// A status badge.
pub(crate) fn status_badge(status: GroupStatus, regressed: bool) -> String {
    let mut s = format!(r#"<span class="badge st-{0}">{0}</span>"#, status.as_str());
    if regressed {
        s.push_str(r#" <span class="badge st-regressed">regressed</span>"#);
    }
    s
}

/// A level badge.
pub(crate) fn level_badge(level: Level) -> String {
    format!(r#"<span class="badge lv-{0}">{0}</span>"#, level.as_str())
}

/// A `<select>` with the current value selected.
pub(crate) fn select(name: &str, current: &str, options: &[(&str, &str)]) -> String {
    let mut s = format!(r#"<select name="{}">"#, esc(name));
    for (value, label) in options {
        let sel = if *value == current { " selected" } else { "" };
        let _ = write!(
            s,
            r#"<option value="{}"{sel}>{}</option>"#,
            esc(value),
            esc(label)
        );
    }
    s.push_str("</select>");
    s
}

/// A small line of a trend, for a table cell.
pub(crate) fn sparkline(trend: &Trend) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    let max = trend.max().max(1) as f64;
    let n = trend.counts.len().max(2) as f64 - 1.0;
    let mut points = String::new();
    for (i, c) in trend.counts.iter().enumerate() {
        let x = i as f64 * W / n;
        let y = H - 2.0 - (*c as f64 / max) * (H - 4.0);
        let _ = write!(points, "{x:.1},{y:.1} ");
    }
    format!(
        r#"<svg class="spark" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img"><title>{} in the last {}</title><polyline points="{}"/></svg>"#,
        trend.total(),
        counted(
            trend.counts.len() as u64,
            &trend.interval.to_string(),
            &format!("{}s", trend.interval)
        ),
        points.trim_end()
    )
}

/// A bar chart of a trend with its axis labels.
pub(crate) fn bar_chart(trend: &Trend) -> String {
    const W: f64 = 720.0;
    const H: f64 = 160.0;
    const AXIS: f64 = 18.0;
    let max = trend.max().max(1);
    let n = trend.counts.len().max(1);
    let slot = W / n as f64;
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {}" width="100%" role="img"><title>occurrences per {}</title>"#,
        H + AXIS,
        trend.interval
    );
    for (i, (start, count)) in trend.buckets().enumerate() {
        let h = (count as f64 / max as f64) * (H - 12.0);
        let x = i as f64 * slot;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{}: {count}</title></rect>"#,
            x + 1.0,
            H - h,
            (slot - 2.0).max(1.0),
            esc(&utc_text(start)),
        );
    }
    let _ = write!(
        s,
        r#"<line x1="0" y1="{H}" x2="{W}" y2="{H}"/><text x="0" y="{:.0}">{}</text><text x="{W}" y="{:.0}" text-anchor="end">now</text><text x="{W}" y="12" text-anchor="end">max {max}</text></svg>"#,
        H + AXIS - 4.0,
        esc(&utc_text(trend.start_us)),
        H + AXIS - 4.0,
    );
    s
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

    /// A whole page around `body`.
    pub(crate) fn page(&self, title: &str, body: &str) -> String {
        format!(
            r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{} · stacktrace</title><style>{STYLE}</style></head>
<body><header><a class="brand" href="{home}">stacktrace</a><a href="{home}">Groups</a><a href="{base}/events">Events</a><a href="{base}/requests">Requests</a><a href="{base}/releases">Releases</a><a href="{base}/functions">Functions</a><span class="stats">{}</span></header>
<main>{body}</main></body></html>"#,
            esc(title),
            esc(&self.summary),
            base = esc(&self.base),
            home = esc(&self.home()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Interval, Window};

    #[test]
    fn escaping_covers_markup_quotes_and_controls() {
        assert_eq!(
            esc("<script>alert('x')</script>&\"\u{1b}[31m\n"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\u{fffd}[31m\n"
        );
    }

    #[test]
    fn query_strings_encode_values_and_skip_empty_ones() {
        assert_eq!(
            query_string(&[("q", "a b&c"), ("level", ""), ("x", "é")]),
            "?q=a%20b%26c&amp;x=%C3%A9"
        );
        assert_eq!(query_string(&[("q", "")]), "");
    }

    #[test]
    fn charts_have_one_mark_per_bucket() {
        let t = Trend {
            interval: Interval::Hour,
            start_us: Window::ending_at_us(Interval::Hour, 3, 0).start_us(),
            counts: vec![0, 5, 2],
        };
        assert_eq!(bar_chart(&t).matches("<rect").count(), 3);
        assert!(sparkline(&t).contains("7 in the last 3 hours"));
    }
}
