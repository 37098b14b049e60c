//! One SVG per scenario: fleet size (instances up) and queue depth (visible messages) over time,
//! a line per policy, from the first seed's run.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::{ScenarioResult, world::Sample};

const COLOURS: [RGBColor; 5] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 86, 86),
];

pub fn write_all(dir: &Path, results: &[ScenarioResult]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for r in results {
        let path = dir.join(format!("{}.svg", r.scenario.as_str()));
        write(&path, r).with_context(|| format!("plotting {}", path.display()))?;
    }
    Ok(())
}

/// (policy name, its samples) for each policy that has a first run.
type Lines<'a> = Vec<(&'static str, &'a [Sample])>;

fn write(path: &Path, r: &ScenarioResult) -> anyhow::Result<()> {
    let lines: Lines = r
        .policies
        .iter()
        .filter_map(|p| {
            p.first
                .as_ref()
                .map(|o| (p.policy.as_str(), o.series.as_slice()))
        })
        .collect();
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(320);
    panel(
        &top,
        r.scenario.as_str(),
        "fleet (instances)",
        &lines,
        |s| f64::from(s.fleet),
    )?;
    panel(&bottom, "", "queue (visible messages)", &lines, |s| {
        s.visible as f64
    })?;
    root.present()?;
    Ok(())
}

fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    caption: &str,
    y_label: &str,
    lines: &Lines,
    value: fn(&Sample) -> f64,
) -> anyhow::Result<()> {
    let minutes = |s: &Sample| s.at / 60.0;
    let x_max = lines
        .iter()
        .flat_map(|(_, s)| s.iter().map(minutes))
        .fold(1.0, f64::max);
    let y_max = lines
        .iter()
        .flat_map(|(_, s)| s.iter().map(value))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc(y_label)
        .draw()?;
    for (i, (name, samples)) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                samples.iter().map(|s| (minutes(s), value(s))),
                colour.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}
