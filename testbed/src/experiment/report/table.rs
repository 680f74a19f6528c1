//! The summary table: one row per topology, workload, fault and system,
//! each figure the median over the repeats and its spread.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::load::Run;

/// The columns after the row's key, in order (the streams' figures are
/// the iperf3 streams' summed throughput over T, and its lowest 100 ms).
pub const COLUMNS: [&str; 8] = [
    "ok",
    "failed",
    "moved",
    "broken",
    "connect p50 ms",
    "disrupted ms",
    "stream Mbit/s",
    "stream min Mbit/s",
];

/// A row: its key and, per column, the values of its repeats.
#[derive(Debug, Clone)]
pub struct Row {
    pub topology: String,
    pub workload: String,
    pub fault: String,
    pub system: String,
    pub values: [Vec<f64>; 8],
}

/// The rows of `runs`, grouped and sorted by topology, workload, fault, system.
pub fn rows(runs: &[Run]) -> Vec<Row> {
    let mut groups: BTreeMap<(String, String, String, String), Row> = BTreeMap::new();
    for run in runs {
        let o = &run.outcome;
        let key = (
            o.topology.clone(),
            o.workload.clone(),
            o.fault.clone(),
            o.system.clone(),
        );
        let row = groups.entry(key).or_insert_with(|| Row {
            topology: o.topology.clone(),
            workload: o.workload.clone(),
            fault: o.fault.clone(),
            system: o.system.clone(),
            values: Default::default(),
        });
        let c = &o.connections;
        let disrupted = o.recovery.iter().map(|r| r.disrupted_ms).max().unwrap_or(0);
        let figures = [
            c.ok as f64,
            c.failed as f64,
            c.moved as f64,
            c.broken as f64,
            o.connect_latency_p50_ms.unwrap_or(f64::NAN),
            disrupted as f64,
            o.streams
                .as_ref()
                .map_or(f64::NAN, |s| megabits(s.mean_bps)),
            o.streams
                .as_ref()
                .and_then(|s| s.min_bps)
                .map_or(f64::NAN, megabits),
        ];
        for (values, figure) in row.values.iter_mut().zip(figures) {
            values.push(figure);
        }
    }
    groups.into_values().collect()
}

/// Bits per second in Mbit/s, to one decimal (what the table shows).
fn megabits(bps: f64) -> f64 {
    (bps / 1e5).round() / 10.0
}

/// The median of `values` (the mean of the middle two for an even count);
/// NaNs are left out.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])
    })
}

/// `median` or `median (min-max)` over several repeats; `-` when none.
pub fn cell(values: &[f64]) -> String {
    let Some(m) = median(values) else {
        return "-".to_owned();
    };
    let known: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let min = known.iter().copied().fold(f64::INFINITY, f64::min);
    let max = known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if known.len() > 1 && min < max {
        format!("{} ({}-{})", number(m), number(min), number(max))
    } else {
        number(m)
    }
}

/// Whole numbers without decimals, others with one.
fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The table in Markdown.
pub fn markdown(rows: &[Row]) -> String {
    let mut text = String::from("| topology | workload | fault | system | runs |");
    for column in COLUMNS {
        let _ = write!(text, " {column} |");
    }
    text.push_str("\n|---|---|---|---|---|");
    text.push_str(&"---|".repeat(COLUMNS.len()));
    text.push('\n');
    for row in rows {
        let _ = write!(
            text,
            "| {} | {} | {} | {} | {} |",
            row.topology,
            row.workload,
            row.fault,
            row.system,
            row.values[0].len()
        );
        for values in &row.values {
            let _ = write!(text, " {} |", cell(values));
        }
        text.push('\n');
    }
    text
}

/// The table in HTML.
pub fn html(rows: &[Row]) -> String {
    let mut text = String::from(
        "<table>\n<tr><th>topology</th><th>workload</th><th>fault</th><th>system</th><th>runs</th>",
    );
    for column in COLUMNS {
        let _ = write!(text, "<th>{}</th>", escape(column));
    }
    text.push_str("</tr>\n");
    for row in rows {
        let _ = write!(
            text,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            escape(&row.topology),
            escape(&row.workload),
            escape(&row.fault),
            escape(&row.system),
            row.values[0].len()
        );
        for values in &row.values {
            let _ = write!(text, "<td>{}</td>", escape(&cell(values)));
        }
        text.push_str("</tr>\n");
    }
    text.push_str("</table>\n");
    text
}

/// Text safe inside HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_the_median_and_the_spread_of_the_repeats() {
        assert_eq!(cell(&[3.0, 1.0, 2.0]), "2 (1-3)");
        assert_eq!(cell(&[4.0, 4.0]), "4");
        assert_eq!(cell(&[1.0, 2.0]), "1.5 (1-2)");
        assert_eq!(cell(&[f64::NAN]), "-");
        assert_eq!(cell(&[]), "-");
    }
}
