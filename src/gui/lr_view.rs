//! The learning-rate window, opened from the setup panel's learning-rate row: the schedule the
//! preset will follow, and the learning-rate finder (a short sweep on the training thread from
//! the preset's fresh weights, recording nothing) with a button that takes its suggestion.

use egui::{Color32, Ui};
use egui_plot::{log_grid_spacer, Legend, Line, LineStyle, Plot, VLine};

use super::plots::{TRAIN_COLOR, VALIDATION_COLOR};
use super::setup_panel::Action;
use crate::config::{Preset, TrainSpec};
use crate::train::lr_finder::LrFinderProgress;

/// The window's state; the finder's progress arrives as events.
#[derive(Default)]
pub struct LrWindow {
    pub open: bool,
    /// Find… was clicked and the sweep has not ended.
    pub running: bool,
    pub progress: Option<LrFinderProgress>,
}

/// The learning rate the schedule gives at `points` epochs spread over the run: (epoch, lr).
pub fn schedule_curve(train: &TrainSpec, points: usize) -> Vec<[f64; 2]> {
    let epochs = train.epochs.max(1);
    let points = points.max(2);
    (0..points)
        .map(|i| {
            let epoch = epochs as f64 * i as f64 / (points - 1) as f64;
            [epoch, train.learning_rate * train.schedule.factor(epoch, epochs)]
        })
        .collect()
}

/// Where a recorded run's base learning rate was changed by hand: the steps at which the
/// recorded rate, divided by the schedule's factor, moves by more than one part in 10^6.
/// `steps` and `lrs` are metrics.csv's step rows (global step, rate used).
pub fn manual_lr_changes(steps: &[u32], lrs: &[f32], batches_per_epoch: usize, train: &TrainSpec) -> Vec<(u32, f64)> {
    // whether a row's rate is the one before or after its step is the recorder's business:
    // the reading under which the base rate stays put is the right one
    let a = changes_at(steps, lrs, batches_per_epoch, train, 0.0);
    let b = changes_at(steps, lrs, batches_per_epoch, train, 1.0);
    if b.len() < a.len() {
        b
    } else {
        a
    }
}

fn changes_at(steps: &[u32], lrs: &[f32], batches_per_epoch: usize, train: &TrainSpec, back: f64) -> Vec<(u32, f64)> {
    let bpe = batches_per_epoch.max(1) as f64;
    let mut out = Vec::new();
    let mut base: Option<f64> = None;
    for (&step, &lr) in steps.iter().zip(lrs) {
        let factor = train.schedule.factor((f64::from(step) - back).max(0.0) / bpe, train.epochs);
        // a factor near 0 (cosine's end, warm-up's start) says nothing about the base
        if !lr.is_finite() || factor < 1e-6 {
            continue;
        }
        let b = f64::from(lr) / factor;
        if let Some(prev) = base {
            if (b - prev).abs() > 1e-6 * prev.abs().max(1e-12) {
                out.push((step, b));
            }
        }
        base = Some(b);
    }
    out
}

/// "3.2e-3"
pub fn lr_text(lr: f64) -> String {
    format!("{lr:.1e}").replace("e-0", "e-").replace(".0e", "e")
}

fn log_x_plot(id: &str, height: f32) -> Plot<'_> {
    Plot::new(id)
        .height(height)
        .legend(Legend::default())
        .allow_scroll(false)
        .x_grid_spacer(log_grid_spacer(10))
        .x_axis_formatter(super::layer_stats_view::log_label)
}

/// The window. `idle`: no run is active, so the finder may run.
pub fn show(ctx: &egui::Context, state: &mut LrWindow, preset: &mut Preset, idle: bool, actions: &mut Vec<Action>) {
    let mut open = state.open;
    egui::Window::new("Learning rate").open(&mut open).default_width(560.0).resizable(true).show(ctx, |ui| {
        schedule(ui, &preset.train);
        ui.separator();
        finder(ui, state, preset, idle, actions);
    });
    state.open = open;
}

fn schedule(ui: &mut Ui, train: &TrainSpec) {
    ui.strong(format!("Schedule: {:?}, base rate {}", train.schedule.kind, lr_text(train.learning_rate)));
    let curve = schedule_curve(train, 200);
    Plot::new("lr_schedule_plot").height(140.0).allow_scroll(false).x_axis_label("epoch").include_y(0.0).show(
        ui,
        |p| {
            p.line(Line::new("learning rate", curve).color(TRAIN_COLOR).width(2.0));
        },
    );
}

fn finder(ui: &mut Ui, state: &mut LrWindow, preset: &mut Preset, idle: bool, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.strong("Learning-rate finder");
        let find = ui
            .add_enabled(idle && !state.running, egui::Button::new("Find"))
            .on_hover_text("Trains up to 100 steps from the preset's fresh weights with the rate growing from 1e-7 to 10, recording nothing; the loss against the rate shows where learning is fastest");
        if find.clicked() {
            state.running = true;
            state.progress = None;
            actions.push(Action::FindLearningRate);
        }
        if state.running {
            ui.spinner();
        }
    });
    let Some(progress) = &state.progress else {
        if !idle {
            ui.label("Available when no run is training.");
        }
        return;
    };
    // the sweep ends where the loss explodes: values far above where it started would squash
    // the useful part of the curve into a line, so they are left out
    let first = progress.points.first().map_or(f64::INFINITY, |p| p.smoothed);
    let cap = if first.is_finite() { 1.5 * first } else { f64::INFINITY };
    let shown = |v: f64| v.is_finite() && v <= cap;
    let raw: Vec<[f64; 2]> = progress.points.iter().filter(|p| shown(p.loss)).map(|p| [p.lr.log10(), p.loss]).collect();
    let smooth: Vec<[f64; 2]> =
        progress.points.iter().filter(|p| shown(p.smoothed)).map(|p| [p.lr.log10(), p.smoothed]).collect();
    let done = progress.done;
    log_x_plot("lr_finder_plot", 200.0).x_axis_label("learning rate").show(ui, |p| {
        p.line(Line::new("loss", raw).color(TRAIN_COLOR.gamma_multiply(0.35)).width(1.0));
        p.line(Line::new("smoothed", smooth).color(TRAIN_COLOR).width(2.0));
        if let Some(s) = done {
            p.vline(VLine::new("steepest", s.steep.log10()).color(VALIDATION_COLOR).width(1.5));
            p.vline(
                VLine::new("min / 10", s.min_over_10.log10()).color(Color32::GRAY).style(LineStyle::dashed_loose()),
            );
        }
    });
    if let Some(error) = &progress.error {
        ui.colored_label(ui.visuals().warn_fg_color, error);
    }
    if let Some(s) = done {
        ui.horizontal(|ui| {
            for (lr, why) in [
                (s.steep, "where the smoothed loss falls fastest"),
                (s.min_over_10, "a tenth of the rate at the loss's minimum"),
            ] {
                // during a run the preset's rate would change without reaching the run
                let button = ui.add_enabled(idle, egui::Button::new(format!("Use {}", lr_text(lr))));
                if button.on_hover_text(why).on_disabled_hover_text("Stop the run first").clicked() {
                    preset.train.learning_rate = lr;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Schedule, ScheduleKind};

    fn train(kind: ScheduleKind, warmup: f64) -> TrainSpec {
        TrainSpec {
            learning_rate: 0.1,
            epochs: 10,
            schedule: Schedule { kind, warmup_epochs: warmup, ..Schedule::default() },
            ..TrainSpec::default()
        }
    }

    #[test]
    fn schedule_curve_warms_up_and_cosine_ends_at_zero() {
        let c = schedule_curve(&train(ScheduleKind::Cosine, 2.0), 101);
        assert!(c[0][1] < 1e-6, "warm-up starts near 0: {:?}", c[0]);
        let peak = c.iter().map(|p| p[1]).fold(0.0, f64::max);
        assert!((peak - 0.1).abs() < 1e-3, "peak {peak}");
        assert!(c.last().unwrap()[1].abs() < 1e-9, "cosine ends at 0: {:?}", c.last());
        assert_eq!(c.last().unwrap()[0], 10.0);
        let constant = schedule_curve(&train(ScheduleKind::Constant, 0.0), 5);
        assert!(constant.iter().all(|p| (p[1] - 0.1).abs() < 1e-12));
    }

    #[test]
    fn one_manual_change_gives_one_marker() {
        let t = train(ScheduleKind::Cosine, 1.0);
        let bpe = 10;
        let steps: Vec<u32> = (1..=100).collect();
        // the base rate is 0.1 until step 40, then 0.03 (a SetLearningRate there)
        let lrs: Vec<f32> = steps
            .iter()
            .map(|&s| {
                let base = if s < 40 { 0.1 } else { 0.03 };
                (base * t.schedule.factor(f64::from(s) / bpe as f64, t.epochs)) as f32
            })
            .collect();
        let changes = manual_lr_changes(&steps, &lrs, bpe, &t);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].0, 40);
        assert!((changes[0].1 - 0.03).abs() < 1e-4, "{changes:?}");
        assert!(manual_lr_changes(&steps[..30], &lrs[..30], bpe, &t).is_empty());
    }

    #[test]
    fn rates_read_short() {
        assert_eq!(lr_text(3.2e-3), "3.2e-3");
        assert_eq!(lr_text(1e-4), "1e-4");
        assert_eq!(lr_text(0.1), "1e-1");
    }
}
