//! What a load run measured, written down: the summary lines, the JSON report and the SVG
//! chart of throughput and p99 latency per second.

use super::{LoadArgs, Measured};
use anyhow::Context;
use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde_json::json;
use std::path::PathBuf;

/// The first line `orderctl load` prints.
pub fn headline(args: &LoadArgs, measured: &Measured) -> String {
    let placing = args.duration.min(measured.elapsed);
    format!(
        "placed {} orders in {:.1} s ({:.1}/s), {} shipped, errors {:?}",
        measured.placed,
        placing.as_secs_f64(),
        measured.throughput(placing),
        measured.shipped,
        measured.errors
    )
}

/// `p50 … max` of a histogram in milliseconds, as JSON.
pub fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    #[allow(clippy::cast_precision_loss)]
    let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p99_9_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

/// One line of percentiles for people.
pub fn summary(name: &str, h: &Histogram<u64>) -> String {
    #[allow(clippy::cast_precision_loss)]
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    #[allow(clippy::cast_precision_loss)]
    let max = h.max() as f64 / 1000.0;
    format!(
        "{name:<22} n={:<7} p50 {:>8.2} ms  p90 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms  max {:>8.2} ms",
        h.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        max
    )
}

/// The JSON report of a run.
pub fn report(args: &LoadArgs, measured: &Measured) -> serde_json::Value {
    let placing = args.duration.min(measured.elapsed);
    json!({
        "mode": match args.concurrency { Some(c) => json!({"concurrency": c}), None => json!({"rate_per_s": args.rate.unwrap_or(100.0)}) },
        "duration_s": args.duration.as_secs_f64(),
        "placed": measured.placed,
        "shipped": measured.shipped,
        "throughput_per_s": measured.throughput(placing),
        "errors": measured.errors,
        "place_order": percentiles(&measured.place),
        "placed_to_shipped": percentiles(&measured.to_ship),
        "per_second": measured.timeline.iter().enumerate().map(|(s, (placed, shipped, p99, ship_p99))| json!({
            "second": s, "placed": placed, "shipped": shipped,
            "place_order_p99_ms": *p99 as f64 / 1000.0, "placed_to_shipped_p99_ms": *ship_p99 as f64 / 1000.0,
        })).collect::<Vec<_>>(),
    })
}

/// Writes the JSON report and the chart of a run.
pub fn write_report(args: &LoadArgs, measured: &Measured) -> anyhow::Result<()> {
    std::fs::write(&args.report, serde_json::to_string_pretty(&report(args, measured))?)
        .with_context(|| format!("writing {}", args.report.display()))?;
    chart(&args.svg, &measured.timeline).with_context(|| format!("drawing {}", args.svg.display()))?;
    Ok(())
}

/// One line of a chart: its name, colour and value per second.
type Line<'a> = (&'a str, RGBColor, Vec<f64>);

/// Throughput (placed and shipped per second) above, p99 latencies per second below.
#[allow(clippy::cast_precision_loss)]
fn chart(path: &PathBuf, timeline: &[(u64, u64, u64, u64)]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(350);
    let per_second = |pick: fn(&(u64, u64, u64, u64)) -> u64, scale: f64| {
        timeline.iter().map(|t| pick(t) as f64 / scale).collect::<Vec<_>>()
    };
    panel(
        &top,
        "throughput (orders/s)",
        vec![("placed", BLUE, per_second(|t| t.0, 1.0)), ("shipped", GREEN, per_second(|t| t.1, 1.0))],
    )?;
    panel(
        &bottom,
        "p99 latency per second (ms)",
        vec![
            ("PlaceOrder", RED, per_second(|t| t.2, 1000.0)),
            ("placed -> shipped", MAGENTA, per_second(|t| t.3, 1000.0)),
        ],
    )?;
    root.present()?;
    Ok(())
}

/// One chart of `lines` over the seconds of the run, with a legend.
#[allow(clippy::cast_precision_loss)]
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    lines: Vec<Line<'_>>,
) -> anyhow::Result<()> {
    let seconds = lines.iter().map(|(_, _, v)| v.len()).max().unwrap_or(0).max(1) as f64;
    let top = lines.iter().flat_map(|(_, _, v)| v.iter().copied()).fold(1.0_f64, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..seconds, 0f64..top * 1.1)?;
    chart.configure_mesh().x_desc("second").draw()?;
    for (name, color, values) in lines {
        let points = values.into_iter().enumerate().map(|(s, v)| (s as f64, v));
        chart
            .draw_series(LineSeries::new(points, color))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart.configure_series_labels().border_style(BLACK).draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::histogram;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn args(name: &str) -> LoadArgs {
        let dir = std::env::temp_dir().join(format!("orderctl-report-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        LoadArgs {
            rate: Some(50.0),
            concurrency: None,
            duration: Duration::from_secs(2),
            count: None,
            drain: Duration::ZERO,
            sku: "LOAD-1".into(),
            report: dir.join("r.json"),
            svg: dir.join("r.svg"),
            quiet: true,
        }
    }

    fn measured() -> Measured {
        let (mut place, mut to_ship) = (histogram(), histogram());
        for us in [1_000, 2_000, 3_000, 4_000] {
            place.record(us).unwrap();
            to_ship.record(us * 100).unwrap();
        }
        Measured {
            elapsed: Duration::from_secs(3),
            placed: 100,
            shipped: 99,
            errors: BTreeMap::from([("Unavailable".to_owned(), 1)]),
            place,
            to_ship,
            timeline: vec![(50, 49, 3_000, 300_000), (50, 50, 4_000, 400_000)],
        }
    }

    #[test]
    fn the_headline_counts_over_the_placing_time() {
        assert_eq!(
            headline(&args("headline"), &measured()),
            "placed 100 orders in 2.0 s (50.0/s), 99 shipped, errors {\"Unavailable\": 1}"
        );
    }

    #[test]
    fn percentiles_are_in_milliseconds() {
        let h = measured().place;
        assert_eq!(
            summary("PlaceOrder", &h),
            "PlaceOrder             n=4       p50     2.00 ms  p90     4.00 ms  p99     4.00 ms  p99.9     4.00 ms  max     4.00 ms"
        );
        let json = percentiles(&h);
        assert_eq!(
            (json["count"].as_u64(), json["p50_ms"].as_f64(), json["max_ms"].as_f64()),
            (Some(4), Some(2.0), Some(4.001)),
            "hdr precision: 3 digits"
        );
    }

    #[test]
    fn the_report_has_the_run_and_every_second() {
        let report = report(&args("json"), &measured());
        assert_eq!(report["mode"]["rate_per_s"].as_f64(), Some(50.0));
        assert_eq!(report["throughput_per_s"].as_f64(), Some(50.0));
        assert_eq!(report["placed_to_shipped"]["p99_ms"].as_f64(), Some(400.127), "hdr precision: 3 digits");
        assert_eq!(report["per_second"][1]["placed_to_shipped_p99_ms"].as_f64(), Some(400.0));
        let mut closed = args("closed");
        (closed.rate, closed.concurrency) = (None, Some(32));
        assert_eq!(super::report(&closed, &measured())["mode"]["concurrency"].as_u64(), Some(32));
    }

    #[test]
    fn write_report_writes_the_json_and_the_chart() {
        let args = args("files");
        write_report(&args, &measured()).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&args.report).unwrap()).unwrap();
        assert_eq!(json["placed"].as_u64(), Some(100));
        assert!(std::fs::read_to_string(&args.svg).unwrap().starts_with("<svg"));
        std::fs::remove_dir_all(args.report.parent().unwrap()).unwrap();
    }
}
