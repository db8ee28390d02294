//! The live run's loss and accuracy curves (drawn by `curve_plot`): training per step, training
//! and validation per epoch.

use egui::Color32;
use egui_plot::{Corner, MarkerShape, PlotPoint};

use super::curve_plot::{self, CurvePlot, EpochLine, PlotSettings, StepLine};

use super::run_view::LiveRun;
use super::setup_panel::Action;

pub const TRAIN_COLOR: Color32 = Color32::from_rgb(90, 150, 230);
pub const VALIDATION_COLOR: Color32 = Color32::from_rgb(240, 140, 40);

/// Keeps the minimum and maximum of each of `buckets` x-ranges, so a long series draws in a
/// frame without losing its spikes.
pub fn decimate(points: &[PlotPoint], buckets: usize) -> Vec<PlotPoint> {
    if points.len() <= 2 * buckets || buckets == 0 {
        return points.to_vec();
    }
    let per = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(2 * buckets);
    for chunk in points.chunks(per) {
        let (mut lo, mut hi) = (chunk[0], chunk[0]);
        for p in chunk {
            if p.y < lo.y {
                lo = *p;
            }
            if p.y > hi.y {
                hi = *p;
            }
        }
        if lo.x <= hi.x {
            out.extend([lo, hi]);
        } else {
            out.extend([hi, lo]);
        }
    }
    out
}

/// Which figure a plot shows.
#[derive(Clone, Copy)]
pub enum Metric {
    Loss,
    Accuracy,
}

/// The live run's loss or accuracy: per step (smoothed over the faint raw curve), per epoch for
/// training and validation, with the run's markers.
pub fn show(
    ui: &mut egui::Ui,
    run: &LiveRun,
    metric: Metric,
    height: f32,
    settings: &PlotSettings,
    actions: &mut Vec<Action>,
) {
    let (id, title, steps) = match metric {
        Metric::Loss => ("loss_plot", "Loss", &run.step_loss),
        Metric::Accuracy => ("accuracy_plot", "Accuracy", &run.step_accuracy),
    };
    let pick = |m: &crate::train::EpochMetrics| match metric {
        Metric::Loss => (m.train_loss, m.validation.loss),
        Metric::Accuracy => (m.train_accuracy, m.validation.accuracy),
    };
    let bpe = run.batches_per_epoch;
    let epoch_line = |name: &str, color, joined, shape, which: fn((f64, f64)) -> f64| EpochLine {
        name: name.into(),
        color,
        points: run.epoch_metrics.iter().map(|m| (m.epoch as f64, m.elapsed_s, which(pick(m)))).collect(),
        batches_per_epoch: bpe,
        joined,
        shape,
        radius: 3.0,
    };
    let epochs = vec![
        epoch_line("train (epoch)", TRAIN_COLOR, false, MarkerShape::Square, |p| p.0),
        epoch_line("validation", VALIDATION_COLOR, true, MarkerShape::Circle, |p| p.1),
    ];
    let save = ui
        .horizontal(|ui| {
            ui.label(egui::RichText::new(title).strong());
            ui.small_button(format!("Save {} plot as PNG…", title.to_lowercase())).clicked()
        })
        .inner;
    let include: &[f64] = match metric {
        Metric::Accuracy => &[0.0, 1.0],
        Metric::Loss => &[0.0],
    };
    let plot = CurvePlot {
        id,
        link_group: "live_curves",
        y_name: match metric {
            Metric::Loss => "loss",
            Metric::Accuracy => "accuracy",
        },
        steps: vec![StepLine {
            name: "train (batch)".into(),
            series: steps,
            color: TRAIN_COLOR,
            batches_per_epoch: bpe,
        }],
        epochs,
        markers: &run.markers,
        height,
        include_y: include,
        legend: match metric {
            Metric::Loss => Corner::RightTop,
            Metric::Accuracy => Corner::RightBottom,
        },
    };
    let response = curve_plot::show(ui, plot, settings);
    if save {
        actions.push(Action::SavePlotPng(id, response.rect));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimation_keeps_extremes() {
        let pts: Vec<PlotPoint> =
            (0..10_000).map(|i| PlotPoint::new(i as f64, if i == 5_000 { 100.0 } else { (i % 7) as f64 })).collect();
        let d = decimate(&pts, 100);
        assert!(d.len() <= 200);
        assert!(d.iter().any(|p| p.y == 100.0));
        assert!(d.windows(2).all(|w| w[0].x <= w[1].x));
    }
}
