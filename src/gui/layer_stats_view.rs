//! Layer statistics while training, one row per layer: the weights' distribution over time as
//! quantile bands (from the histograms the training thread sends), the latest weight and
//! gradient histograms, the update/weight ratio on a log scale beside the 1e-3 rule of thumb,
//! and the share of dead ReLU units.

use egui::{Color32, RichText, Ui};
use egui_plot::{log_grid_spacer, Bar, BarChart, FilledArea, GridMark, HLine, Line, Plot};

use super::inspect::InspectState;
use crate::train::layer_stats::{Histogram, LayerStats};

/// The quantiles drawn as bands: 0/100, 7/93, 16/84, 31/69 % around the median (±0.5, 1, 1.5
/// standard deviations of a normal distribution, and the extremes).
const QUANTILES: [f64; 9] = [0.0, 0.07, 0.16, 0.31, 0.5, 0.69, 0.84, 0.93, 1.0];
const PLOT_HEIGHT: f32 = 110.0;
const BAND: Color32 = Color32::from_rgb(90, 150, 230);

/// Quantiles of the values a histogram counted, by linear interpolation within a bin.
pub fn quantiles(h: &Histogram, qs: &[f64]) -> Vec<f32> {
    let total: u64 = h.counts.iter().map(|&c| u64::from(c)).sum();
    let bins = h.counts.len();
    let width = (h.max - h.min) / bins as f32;
    qs.iter()
        .map(|&q| {
            if total == 0 || width <= 0.0 {
                return h.min;
            }
            let target = q.clamp(0.0, 1.0) * total as f64;
            let mut below = 0u64;
            for (i, &c) in h.counts.iter().enumerate() {
                let c = u64::from(c);
                if c > 0 && (below + c) as f64 >= target {
                    let within = ((target - below as f64) / c as f64) as f32;
                    return h.min + width * (i as f32 + within.clamp(0.0, 1.0));
                }
                below += c;
            }
            h.max
        })
        .collect()
}

pub fn show(ui: &mut Ui, inspect: &InspectState) {
    let Some(latest) = inspect.layer_stats.last() else {
        ui.label(RichText::new("Statistics arrive every few training steps while this tab is open.").weak());
        return;
    };
    ui.label(
        RichText::new(format!(
            "step {} · weights: quantile bands over time · latest weight and gradient histograms · update/weight ratio",
            latest.step
        ))
        .small(),
    );
    let width = (ui.available_width() - 160.0) / 3.0 - 8.0;
    egui::ScrollArea::vertical().id_salt("layer_stats").show(ui, |ui| {
        for (i, layer) in latest.layers.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.vertical(|ui| {
                    ui.set_width(150.0);
                    ui.strong(&layer.name);
                    if let Some(dead) = layer.dead_relu {
                        ui.label(format!("dead ReLU {:.1}%", 100.0 * dead));
                    }
                    ui.label(RichText::new(format!("update ratio {:.1e}", layer.update_ratio)).small());
                });
                bands(ui, &inspect.layer_stats, i, &layer.name, width);
                histograms(ui, &layer.weight, &layer.grad, &layer.name, width);
                ratio(ui, &inspect.layer_stats, i, &layer.name, width);
            });
            ui.separator();
        }
    });
}

fn small_plot(id: String, width: f32) -> Plot<'static> {
    Plot::new(id).height(PLOT_HEIGHT).width(width.max(80.0)).allow_scroll(false).allow_drag(false).show_x(false)
}

/// The layer's weights over time: each pair of quantiles as a band, the median as a line.
fn bands(ui: &mut Ui, history: &[LayerStats], i: usize, name: &str, width: f32) {
    let rows: Vec<(f64, Vec<f32>)> = history
        .iter()
        .filter_map(|s| {
            s.layers.get(i).filter(|l| l.name == name).map(|l| (s.step as f64, quantiles(&l.weight, &QUANTILES)))
        })
        .collect();
    let xs: Vec<f64> = rows.iter().map(|r| r.0).collect();
    // readable in light and dark themes
    let median_color = ui.visuals().strong_text_color();
    small_plot(format!("bands-{name}"), width).show(ui, |p| {
        for k in 0..4 {
            let lo: Vec<f64> = rows.iter().map(|r| f64::from(r.1[k])).collect();
            let hi: Vec<f64> = rows.iter().map(|r| f64::from(r.1[8 - k])).collect();
            let alpha = [40, 70, 100, 140][k];
            let fill = Color32::from_rgba_unmultiplied(BAND.r(), BAND.g(), BAND.b(), alpha);
            p.add(
                FilledArea::new(format!("{}–{}%", QUANTILES[k] * 100.0, QUANTILES[8 - k] * 100.0), &xs, &lo, &hi)
                    .fill_color(fill),
            );
        }
        let median: Vec<[f64; 2]> = rows.iter().map(|r| [r.0, f64::from(r.1[4])]).collect();
        p.line(Line::new("median", median).color(median_color));
    });
}

fn histogram_bars(h: &Histogram, color: Color32) -> Vec<Bar> {
    let width = f64::from((h.max - h.min) / h.counts.len() as f32).max(1e-9);
    h.counts
        .iter()
        .enumerate()
        .map(|(i, &c)| Bar::new(f64::from(h.min) + width * (i as f64 + 0.5), f64::from(c)).width(width).fill(color))
        .collect()
}

fn histograms(ui: &mut Ui, weight: &Histogram, grad: &Histogram, name: &str, width: f32) {
    ui.vertical(|ui| {
        let half = (width / 2.0 - 4.0).max(60.0);
        ui.horizontal(|ui| {
            small_plot(format!("weights-{name}"), half).show(ui, |p| {
                p.bar_chart(BarChart::new("weights", histogram_bars(weight, BAND)));
            });
            small_plot(format!("grads-{name}"), half).show(ui, |p| {
                p.bar_chart(BarChart::new("gradients", histogram_bars(grad, Color32::from_rgb(240, 140, 40))));
            });
        });
    });
}

/// The label of a mark on a log10 axis: "1e-3" at whole exponents, none between them (the
/// 0.1-decade marks would all read "1e-3").
pub fn log_label(mark: GridMark, _: &std::ops::RangeInclusive<f64>) -> String {
    let e = mark.value;
    if (e - e.round()).abs() < 1e-9 {
        format!("1e{}", e.round() as i64)
    } else {
        String::new()
    }
}

/// log10 of ‖Δw‖/‖w‖ per stats step, with the rule of thumb's 1e-3.
fn ratio(ui: &mut Ui, history: &[LayerStats], i: usize, name: &str, width: f32) {
    let points: Vec<[f64; 2]> = history
        .iter()
        .filter_map(|s| {
            s.layers
                .get(i)
                .filter(|l| l.name == name && l.update_ratio > 0.0)
                .map(|l| [s.step as f64, f64::from(l.update_ratio.log10())])
        })
        .collect();
    small_plot(format!("ratio-{name}"), width).y_grid_spacer(log_grid_spacer(10)).y_axis_formatter(log_label).show(
        ui,
        |p| {
            p.hline(HLine::new("1e-3", -3.0).color(Color32::from_gray(140)));
            p.line(Line::new("update / weight", points).color(Color32::from_rgb(44, 160, 44)));
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::layer_stats::BINS;

    #[test]
    fn quantiles_of_a_uniform_tensor_are_within_one_bin() {
        // 10,000 values spread evenly over [-2, 3]
        let values: Vec<f32> = (0..10_000).map(|i| -2.0 + 5.0 * i as f32 / 9_999.0).collect();
        let (min, max) = (-2.0f32, 3.0f32);
        let mut counts = [0u32; BINS];
        for v in &values {
            let b = (((v - min) / (max - min)) * BINS as f32) as usize;
            counts[b.min(BINS - 1)] += 1;
        }
        let h = Histogram { min, max, counts };
        let bin = (max - min) / BINS as f32;
        for (q, got) in QUANTILES.iter().zip(quantiles(&h, &QUANTILES)) {
            let want = values[((values.len() - 1) as f64 * q).round() as usize];
            assert!((got - want).abs() <= bin, "quantile {q}: {got} vs {want}");
        }
        let empty = Histogram { min: 0.0, max: 0.0, counts: [0; BINS] };
        assert_eq!(quantiles(&empty, &[0.5]), [0.0]);
    }

    #[test]
    fn log_marks_are_labelled_at_whole_decades_only() {
        let range = -4.0..=-2.0;
        let label = |value: f64| log_label(GridMark { value, step_size: 0.1 }, &range);
        assert_eq!(label(-3.0), "1e-3");
        assert_eq!(label(-2.0 - 1e-12), "1e-2");
        assert_eq!(label(-2.9), "", "a 0.1-decade mark");
        assert_eq!(label(-3.1), "");
    }
}
