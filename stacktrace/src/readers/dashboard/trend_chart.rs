//! A trend as a bar chart with readable axes: counts on the left (0, half and the most),
//! times below (hours as `14:00` with the date where a day starts, days as `Jan 31`), every
//! bar titled with its time and count. Inline SVG, text escaped.

use maud::{html, Markup};

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

/// A number with one decimal, for coordinates.
fn coord(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart of `trend`, in UTC.
pub(crate) fn labelled_chart(trend: &Trend) -> Markup {
    let top = trend.max().max(1);
    let slot = (W - LEFT) / trend.counts.len().max(1) as f64;
    let plot_h = H - TOP - BOTTOM;
    let y_of = |v: u64| TOP + plot_h - (v as f64 / top as f64) * plot_h;
    let base = y_of(0);
    // Count axis: 0, half, the most (half only when it is a whole number of events).
    let mut ticks = vec![0, top];
    if top >= 2 && top.is_multiple_of(2) {
        ticks.insert(1, top / 2);
    }
    // The time labels: the first bucket's only when no label came before.
    let mut labelled_one = false;
    let bars: Vec<_> = (trend.buckets().enumerate())
        .map(|(i, (start, count))| {
            let label = label_of(trend.interval, i, start, !labelled_one);
            labelled_one |= label.is_some();
            (LEFT + i as f64 * slot, start, count, label)
        })
        .collect();
    html! {
        svg class="chart labelled" viewBox={ "0 0 " (W) " " (H) } width="100%" role="img"
            aria-label={ "events per " (trend.interval) ", UTC" } {
            title { "events per " (trend.interval) ", UTC" }
            @for v in ticks {
                line class="grid" x1=(LEFT) y1=(coord(y_of(v))) x2=(W) y2=(coord(y_of(v))) {}
                text class="y-label" x=(coord(LEFT - 6.0)) y=(coord(y_of(v) + 4.0)) text-anchor="end" { (v) }
            }
            @for (x, start, count, label) in bars {
                rect x=(coord(x + 1.0)) y=(coord(y_of(count))) width=(coord((slot - 2.0).max(1.0)))
                    height=(coord(base - y_of(count))) {
                    title { (utc_text(start)) " UTC: " (count) }
                }
                @if let Some((label, date)) = label {
                    line class="tick" x1=(coord(x)) y1=(coord(base)) x2=(coord(x)) y2=(coord(base + 4.0)) {}
                    text class="x-label" x=(coord(x)) y=(coord(base + 15.0)) { (label) }
                    @if let Some(date) = date {
                        text class="x-label date" x=(coord(x)) y=(coord(base + 28.0)) { (date) }
                    }
                }
            }
            line class="axis" x1=(LEFT) y1=(coord(base)) x2=(W) y2=(coord(base)) {}
        }
    }
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
        let svg = labelled_chart(&hourly(midnight + hour)).into_string();
        assert_eq!(svg.matches("<rect").count(), 48);
        assert!(svg.contains(">02:00<") && svg.contains(">Jan 29<"), "{svg}");
        assert!(svg.contains(">12:00<") && svg.contains(">Jan 31<"));
        assert!(svg.contains(r#"class="y-label""#));
        // From 05:00: too close to 06:00 to be labelled; the date goes under 06:00.
        let svg = labelled_chart(&hourly(midnight + 4 * hour)).into_string();
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
        let svg = labelled_chart(&daily).into_string();
        assert!(svg.contains(">Jan 31<") && svg.contains(">4<") && svg.contains(">2<"));
    }
}
