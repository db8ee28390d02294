//! Live loss and accuracy curves: training per step, validation per epoch.

use egui::Color32;
use egui_plot::{Corner, Legend, Line, MarkerShape, Plot, PlotPoint, PlotPoints, Points};

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

pub fn show(ui: &mut egui::Ui, run: &LiveRun, metric: Metric, height: f32, actions: &mut Vec<Action>) {
    let (id, title, steps) = match metric {
        Metric::Loss => ("loss_plot", "Loss", &run.step_loss),
        Metric::Accuracy => ("accuracy_plot", "Accuracy", &run.step_accuracy),
    };
    let pick = |m: &crate::train::EpochMetrics| match metric {
        Metric::Loss => (m.train_loss, m.validation.loss),
        Metric::Accuracy => (m.train_accuracy, m.validation.accuracy),
    };
    let train_epochs: Vec<[f64; 2]> = run.epoch_metrics.iter().map(|m| [m.epoch as f64, pick(m).0]).collect();
    let validation: Vec<[f64; 2]> = run.epoch_metrics.iter().map(|m| [m.epoch as f64, pick(m).1]).collect();
    let buckets = (ui.available_width() as usize / 2).max(50);
    let steps = decimate(steps, buckets);
    let save = ui
        .horizontal(|ui| {
            ui.label(egui::RichText::new(title).strong());
            ui.small_button(format!("Save {} plot as PNG…", title.to_lowercase())).clicked()
        })
        .inner;
    let mut plot = Plot::new(id)
        .height(height)
        .legend(Legend::default().position(match metric {
            Metric::Loss => Corner::RightTop,
            Metric::Accuracy => Corner::RightBottom,
        }))
        .x_axis_label("epoch")
        .allow_scroll(false)
        .include_x(0.0);
    plot = match metric {
        Metric::Accuracy => plot.include_y(0.0).include_y(1.0),
        Metric::Loss => plot.include_y(0.0),
    };
    let response = plot.show(ui, |p| {
        p.line(Line::new("train (batch)", PlotPoints::Owned(steps)).color(TRAIN_COLOR.gamma_multiply(0.6)).width(1.0));
        p.points(Points::new("train (epoch)", train_epochs).color(TRAIN_COLOR).radius(3.0).shape(MarkerShape::Square));
        p.line(Line::new("validation", validation.clone()).color(VALIDATION_COLOR).width(2.0));
        p.points(Points::new("validation", validation).color(VALIDATION_COLOR).radius(3.5));
    });
    if save {
        actions.push(Action::SavePlotPng(id, response.response.rect));
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
