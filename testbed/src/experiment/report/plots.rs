//! The report's plots, drawn with plotters into SVG files. Every series
//! carries a legend entry named `SYSTEM what`, which is what the tests
//! look for in the SVG text. A timeline of a workload with iperf3 streams
//! also draws `SYSTEM stream Mbit/s` against a second axis on the right.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::ranged1d::AsRangedCoord;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::load::Run;
use crate::experiment::samples::SAMPLE_MS;

type Fallible = Result<(), String>;

/// The most points of a CDF curve.
const CDF_POINTS: usize = 400;

/// The CDF's x axis is logarithmic (a SYN retransmission is 1000x a connect):
/// latencies below this are drawn at it.
const LATENCY_FLOOR_MS: f64 = 0.1;

/// A figure of a run, by its name in the legend.
type Pick = (&'static str, fn(&Run) -> f64);

fn drawing<E: std::fmt::Debug>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("drawing {what}: {e:?}")
}

/// Draws every plot into `dir`; returns their file names.
pub fn draw_all(dir: &Path, runs: &[Run]) -> Result<Vec<String>, String> {
    let systems: Vec<String> = {
        let mut names: Vec<String> = runs.iter().map(|r| r.outcome.system.clone()).collect();
        names.sort();
        names.dedup();
        names
    };
    let mut files = Vec::new();
    let mut cases: BTreeMap<(String, String, String), Vec<&Run>> = BTreeMap::new();
    for run in runs {
        let o = &run.outcome;
        cases
            .entry((o.topology.clone(), o.workload.clone(), o.fault.clone()))
            .or_default()
            .push(run);
    }
    for ((topology, workload, fault), case) in &cases {
        let name = format!("timeline-{topology}.{workload}.{fault}.svg");
        timeline(
            &dir.join(&name),
            &format!("{topology}, {workload}, fault {fault}"),
            case,
            &systems,
        )?;
        files.push(name);
    }
    latency_cdf(&dir.join("latency-cdf.svg"), runs, &systems)?;
    files.push("latency-cdf.svg".to_owned());
    disruptions(&dir.join("disruptions.svg"), runs, &systems)?;
    files.push("disruptions.svg".to_owned());
    Ok(files)
}

/// A white SVG canvas of the report's size at `path`.
fn canvas(path: &Path) -> Result<DrawingArea<SVGBackend<'_>, Shift>, String> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(drawing(&path.display().to_string()))?;
    Ok(root)
}

/// A titled chart over `x` and `y` on `root`, with room for axis labels.
#[allow(clippy::type_complexity)] // plotters' own types
fn frame<'a, X: AsRangedCoord, Y: AsRangedCoord>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    title: &str,
    x: X,
    y: Y,
) -> Result<ChartContext<'a, SVGBackend<'a>, Cartesian2d<X::CoordDescType, Y::CoordDescType>>, String>
{
    ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(x, y)
        .map_err(drawing(title))
}

/// Draws the legend at `position` and writes the file.
fn finish<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    position: SeriesLabelPosition,
    what: &str,
) -> Fallible {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(drawing(what))?;
    root.present().map_err(drawing(what))
}

fn colour(systems: &[String], system: &str) -> RGBColor {
    let index = systems.iter().position(|s| s == system).unwrap_or(0);
    let (r, g, b) = Palette99::pick(index).rgb();
    RGBColor(r, g, b)
}

/// The mean over `runs` of `figure` per sample, as (seconds, value).
fn mean_series(
    runs: &[&Run],
    figure: impl Fn(&crate::experiment::samples::Sample) -> f64,
) -> Vec<(f64, f64)> {
    let length = runs.iter().map(|r| r.samples.len()).max().unwrap_or(0);
    (0..length)
        .map(|i| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.samples.get(i))
                .map(&figure)
                .collect();
            let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
            ((i as u64 * SAMPLE_MS) as f64 / 1000.0, mean)
        })
        .collect()
}

fn timeline(path: &Path, title: &str, runs: &[&Run], systems: &[String]) -> Fallible {
    let what = path.display().to_string();
    let per_second = 1000.0 / SAMPLE_MS as f64;
    let mut series = Vec::new();
    let mut streams = Vec::new();
    for system in systems {
        let of: Vec<&Run> = runs
            .iter()
            .copied()
            .filter(|r| &r.outcome.system == system)
            .collect();
        if of.is_empty() {
            continue;
        }
        let replies = mean_series(&of, |s| s.throughput);
        let failures = mean_series(&of, |s| (s.failed + s.broken) as f64 * per_second);
        let carried = of
            .iter()
            .any(|r| r.samples.iter().any(|s| s.stream_bps > 0.0));
        if carried {
            streams.push((system.clone(), mean_series(&of, |s| s.stream_bps / 1e6)));
        }
        series.push((system.clone(), replies, failures));
    }
    let t_end = runs
        .iter()
        .map(|r| r.samples.len() as f64 * SAMPLE_MS as f64 / 1000.0)
        .fold(1.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|(_, a, b)| a.iter().chain(b).map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;
    let mbit_max = streams
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;
    let root = canvas(path)?;
    let mut chart = frame(&root, title, 0f64..t_end, 0f64..y_max)?
        .set_secondary_coord(0f64..t_end, 0f64..mbit_max);
    chart
        .configure_mesh()
        .x_desc("seconds from the start")
        .y_desc("per second")
        .draw()
        .map_err(drawing(&what))?;
    if !streams.is_empty() {
        chart
            .configure_secondary_axes()
            .y_desc("stream Mbit/s")
            .draw()
            .map_err(drawing(&what))?;
    }
    // The fault windows of the first run (all runs of a case share a schedule but its seed).
    if let Some(run) = runs.first().filter(|r| !r.windows.is_empty()) {
        let shade = RGBColor(220, 120, 120).mix(0.2).filled();
        chart
            .draw_series(
                run.windows
                    .iter()
                    .map(|&(a, b)| Rectangle::new([(a, 0.0), (b, y_max)], shade)),
            )
            .map_err(drawing(&what))?
            .label("fault window")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], shade));
    }
    for (system, replies, failures) in series {
        let c = colour(systems, &system);
        chart
            .draw_series(LineSeries::new(replies, c.stroke_width(2)))
            .map_err(drawing(&what))?
            .label(format!("{system} replies"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        let dashed = c.mix(0.6).stroke_width(1);
        chart
            .draw_series(LineSeries::new(failures, dashed))
            .map_err(drawing(&what))?
            .label(format!("{system} failures"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], dashed));
    }
    for (system, points) in streams {
        let c = colour(systems, &system);
        let thick = c.mix(0.8).stroke_width(3);
        chart
            .draw_secondary_series(LineSeries::new(points, thick))
            .map_err(drawing(&what))?
            .label(format!("{system} stream Mbit/s"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], thick));
    }
    finish(&mut chart, &root, SeriesLabelPosition::UpperRight, &what)
}

fn latency_cdf(path: &Path, runs: &[Run], systems: &[String]) -> Fallible {
    let what = path.display().to_string();
    let mut curves = Vec::new();
    for system in systems {
        let mut all: Vec<f64> = runs
            .iter()
            .filter(|r| &r.outcome.system == system)
            .flat_map(|r| r.latencies.iter().copied())
            .collect();
        all.sort_by(f64::total_cmp);
        let n = all.len().max(1) as f64;
        // At most CDF_POINTS steps: a plot of thousands of connections
        // should not weigh a point each.
        let step = all.len().div_ceil(CDF_POINTS).max(1);
        let points: Vec<(f64, f64)> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| (i + 1) % step == 0 || i + 1 == all.len())
            .map(|(i, &v)| (v.max(LATENCY_FLOOR_MS), (i + 1) as f64 / n))
            .collect();
        curves.push((system.clone(), points));
    }
    let x_max = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0, f64::max)
        * 1.05;
    let root = canvas(path)?;
    let mut chart = frame(
        &root,
        "connect latency (CDF)",
        (LATENCY_FLOOR_MS..x_max).log_scale(),
        0f64..1.0,
    )?;
    chart
        .configure_mesh()
        .x_desc("milliseconds (log scale)")
        .y_desc("fraction of connections")
        .draw()
        .map_err(drawing(&what))?;
    for (system, points) in curves {
        let c = colour(systems, &system);
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))
            .map_err(drawing(&what))?
            .label(format!("{system} connect latency"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    finish(&mut chart, &root, SeriesLabelPosition::LowerRight, &what)
}

fn disruptions(path: &Path, runs: &[Run], systems: &[String]) -> Fallible {
    let what = path.display().to_string();
    let mut faults: Vec<String> = runs.iter().map(|r| r.outcome.fault.clone()).collect();
    faults.sort();
    faults.dedup();
    // Median over repeats (and topologies, workloads) per fault and system.
    let figure = |fault: &str, system: &str, pick: fn(&Run) -> f64| {
        let values: Vec<f64> = runs
            .iter()
            .filter(|r| r.outcome.fault == fault && r.outcome.system == system)
            .map(pick)
            .collect();
        super::table::median(&values).unwrap_or(0.0)
    };
    let kinds: [Pick; 2] = [
        ("broken", |r| r.outcome.connections.broken as f64),
        ("moved", |r| r.outcome.connections.moved as f64),
    ];
    let bars = systems.len() * kinds.len();
    let mut y_max: f64 = 1.0;
    for fault in &faults {
        for system in systems {
            for (_, pick) in kinds {
                y_max = y_max.max(figure(fault, system, pick));
            }
        }
    }
    let root = canvas(path)?;
    let labels = faults.clone();
    let mut chart = frame(
        &root,
        "broken and moved connections per fault",
        0f64..faults.len().max(1) as f64,
        0f64..y_max * 1.15,
    )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(faults.len().max(1) * 2 + 1)
        .x_label_formatter(&|x| {
            #[allow(clippy::cast_sign_loss)] // the axis starts at 0
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 1e-6 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("connections (median over repeats)")
        .draw()
        .map_err(drawing(&what))?;
    let width = 0.8 / bars.max(1) as f64;
    for (s, system) in systems.iter().enumerate() {
        for (k, (kind, pick)) in kinds.iter().enumerate() {
            let slot = s * kinds.len() + k;
            let base = colour(systems, system);
            let style = if k == 0 {
                base.filled()
            } else {
                base.mix(0.4).filled()
            };
            let rectangles: Vec<Rectangle<(f64, f64)>> = faults
                .iter()
                .enumerate()
                .map(|(f, fault)| {
                    let x = f as f64 + 0.1 + slot as f64 * width;
                    Rectangle::new(
                        [(x, 0.0), (x + width * 0.9, figure(fault, system, *pick))],
                        style,
                    )
                })
                .collect();
            chart
                .draw_series(rectangles)
                .map_err(drawing(&what))?
                .label(format!("{system} {kind}"))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], style));
        }
    }
    finish(&mut chart, &root, SeriesLabelPosition::UpperRight, &what)
}
