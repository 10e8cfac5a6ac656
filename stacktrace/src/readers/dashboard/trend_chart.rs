//! A trend as a bar chart with readable axes: counts on the left (0, half and the most),
//! times below (hours as `14:00` with the date where a day starts, days as `Jan 31`), every
//! bar titled with its time and count. Inline SVG, text escaped.

use std::fmt::Write as _;

use super::html::esc;
use crate::model::time::utc_text;
use crate::{Interval, Trend};

const W: f64 = 760.0;
const H: f64 = 200.0;
/// Room for the count labels on the left and the time labels below.
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 34.0;
const TOP: f64 = 8.0;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `2026-01-31 14:05:09` to `Jan 31`.
fn day_label(us: u64) -> String {
    let t = utc_text(us);
    let month = t
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("");
    let day = t.get(8..10).unwrap_or("").trim_start_matches('0');
    format!("{month} {day}")
}

/// `2026-01-31 14:05:09` to `14:00`.
fn hour_label(us: u64) -> String {
    format!("{}:00", utc_text(us).get(11..13).unwrap_or("00"))
}

/// The time label of a bucket, or none between labels: every 6 hours, or every 5 days. The
/// first bucket is labelled too when the next label is at least 3 buckets away (closer, the
/// two would overlap). Hour labels carry the date under midnight and under the first one.
fn label_of(
    interval: Interval,
    i: usize,
    start: u64,
    first: bool,
) -> Option<(String, Option<String>)> {
    match interval {
        Interval::Hour => {
            let hour = utc_text(start).get(11..13)?.parse::<u32>().ok()?;
            let labelled = hour.is_multiple_of(6) || (i == 0 && hour % 6 <= 3);
            labelled.then(|| {
                let date = (first || hour == 0).then(|| day_label(start));
                (hour_label(start), date)
            })
        }
        Interval::Day => i.is_multiple_of(5).then(|| (day_label(start), None)),
    }
}

/// The chart of `trend`, in UTC.
pub(crate) fn labelled_chart(trend: &Trend) -> String {
    let max = trend.max();
    let top = max.max(1);
    let n = trend.counts.len().max(1);
    let plot_w = W - LEFT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let y_of = |v: u64| TOP + plot_h - (v as f64 / top as f64) * plot_h;
    let mut s = format!(
        r#"<svg class="chart labelled" viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="events per {}, UTC"><title>events per {}, UTC</title>"#,
        trend.interval, trend.interval
    );
    // Count axis: 0, half, the most (half only when it is a whole number of events).
    let mut ticks = vec![0, top];
    if top >= 2 && top.is_multiple_of(2) {
        ticks.insert(1, top / 2);
    }
    for v in ticks {
        let y = y_of(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{W}" y2="{y:.1}"/><text class="y-label" x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"#,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let mut labelled_one = false;
    for (i, (start, count)) in trend.buckets().enumerate() {
        let x = LEFT + i as f64 * slot;
        let h = y_of(0) - y_of(count);
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{} UTC: {count}</title></rect>"#,
            x + 1.0,
            y_of(count),
            (slot - 2.0).max(1.0),
            esc(&utc_text(start)),
        );
        if let Some((label, date)) = label_of(trend.interval, i, start, !labelled_one) {
            labelled_one = true;
            let _ = write!(
                s,
                r#"<line class="tick" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/><text class="x-label" x="{x:.1}" y="{:.1}">{}</text>"#,
                y_of(0),
                y_of(0) + 4.0,
                y_of(0) + 15.0,
                esc(&label)
            );
            if let Some(date) = date {
                let _ = write!(
                    s,
                    r#"<text class="x-label date" x="{x:.1}" y="{:.1}">{}</text>"#,
                    y_of(0) + 28.0,
                    esc(&date)
                );
            }
        }
    }
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LEFT}" y1="{:.1}" x2="{W}" y2="{:.1}"/></svg>"#,
        y_of(0),
        y_of(0)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Window;

    #[test]
    fn labels_read_as_hours_and_days() {
        // 2026-01-31 00:00:00 UTC.
        let midnight = 1_769_817_600_000_000;
        let hour = 3_600_000_000;
        assert_eq!(day_label(midnight), "Jan 31");
        assert_eq!(hour_label(midnight + 14 * hour), "14:00");
        let hourly = |end: u64| Trend {
            interval: Interval::Hour,
            start_us: Window::ending_at_us(Interval::Hour, 48, end).start_us(),
            counts: vec![1; 48],
        };
        // From 02:00 two days before: the first bucket is labelled, with its date.
        let svg = labelled_chart(&hourly(midnight + hour));
        assert_eq!(svg.matches("<rect").count(), 48);
        assert!(svg.contains(">02:00<") && svg.contains(">Jan 29<"), "{svg}");
        assert!(svg.contains(">12:00<") && svg.contains(">Jan 31<"));
        assert!(svg.contains(r#"class="y-label""#));
        // From 05:00: too close to 06:00 to be labelled; the date goes under 06:00.
        let svg = labelled_chart(&hourly(midnight + 4 * hour));
        assert!(!svg.contains(">05:00<"), "{svg}");
        assert!(
            svg.contains(">06:00</text><text class=\"x-label date\""),
            "{svg}"
        );
        let daily = Trend {
            interval: Interval::Day,
            start_us: midnight,
            counts: vec![0, 4, 2],
        };
        let svg = labelled_chart(&daily);
        assert!(svg.contains(">Jan 31<") && svg.contains(">4<") && svg.contains(">2<"));
    }
}
