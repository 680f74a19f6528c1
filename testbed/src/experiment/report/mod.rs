//! `testbed experiment report DIR`: reads every finished run's
//! `outcome.json`, `samples.jsonl`, `latency.json` and `events.jsonl`, and
//! writes into DIR:
//!
//! - `report.md`: one row per topology, workload, fault and system, each
//!   number the median over repeats with its spread (min-max);
//! - `timeline-TOPOLOGY.WORKLOAD.FAULT.svg`: replies and failures per
//!   second over time, one line per system, the fault's windows shaded;
//! - `latency-cdf.svg`: the connect-latency CDF of every system;
//! - `disruptions.svg`: broken and moved connections per fault and system;
//! - `report.html`: the table and the plots on one page.
//!
//! - [`load`]: the runs of a results folder.
//! - [`table`]: medians and spreads, as Markdown and HTML.
//! - [`plots`]: the SVG plots (plotters).

pub mod load;
pub mod plots;
pub mod table;

use std::fmt::Write as _;
use std::path::Path;

/// Writes the report of results folder `dir`; returns the Markdown table.
pub fn write(dir: &Path) -> Result<String, String> {
    let runs = load::runs(dir)?;
    if runs.is_empty() {
        return Err(format!(
            "{}: no finished run (no */outcome.json)",
            dir.display()
        ));
    }
    let rows = table::rows(&runs);
    let markdown = table::markdown(&rows);
    std::fs::write(dir.join("report.md"), &markdown)
        .map_err(|e| format!("writing report.md: {e}"))?;
    let plots = plots::draw_all(dir, &runs)?;
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>experiment report</title>\n\
         <style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}</style>\n\
         </head><body>\n<h1>Experiment report</h1>\n",
    );
    html.push_str(&table::html(&rows));
    for plot in &plots {
        let _ = write!(
            html,
            "<h2>{}</h2>\n<img src=\"{}\">\n",
            table::escape(plot),
            table::escape(plot)
        );
    }
    html.push_str("</body></html>\n");
    std::fs::write(dir.join("report.html"), html)
        .map_err(|e| format!("writing report.html: {e}"))?;
    Ok(markdown)
}
