//! The centre of the window while training: headline figures, curves, confusion matrix.

use super::curve_plot::{self, PlotSettings};
use super::eval_view;
use super::generative_views;
use super::inspect::InspectState;
use super::plots::{self, Metric};
use super::run_view::{LiveRun, Phase};
use super::setup_panel::{group_thousands, Action};
use super::text_views::{self, TextViewState};
use crate::export::Which;
use crate::task::Task;

pub fn show(
    ui: &mut egui::Ui,
    run: &LiveRun,
    text_view: &mut TextViewState,
    plot_settings: &mut PlotSettings,
    inspect: &mut InspectState,
    actions: &mut Vec<Action>,
) {
    if let Some(error) = &run.error {
        egui::Frame::new().fill(ui.visuals().extreme_bg_color).inner_margin(8.0).show(ui, |ui| {
            ui.colored_label(ui.visuals().error_fg_color, format!("Training failed: {error}"));
            ui.label("What was recorded up to here is kept below and in the run's folder.");
        });
    }
    if run.phase == Phase::Idle {
        ui.vertical_centered(|ui| {
            ui.add_space(40.0);
            ui.heading("Press Start to train the experiment on the left.");
            ui.label("Loss and accuracy curves and the confusion matrix appear here as the model learns.");
        });
        return;
    }
    ui.horizontal(|ui| {
        ui.heading(&run.title);
        if !run.data.is_empty() {
            let threads = if run.threads == 1 { "1 thread".to_string() } else { format!("{} threads", run.threads) };
            ui.label(format!("on {} · {} parameters · {threads}", run.data, group_thousands(run.params)));
        }
    });
    match run.latest_epoch() {
        _ if run.task.is_generative() => generative_views::headline(ui, run),
        Some(m) => {
            let c = &m.validation.confusion;
            if run.task == Task::LanguageModel {
                // the loss is the mean cross-entropy per token: its exponential is the perplexity
                ui.label(format!(
                    "Validation perplexity {:.2}, next token right {:.1}% after epoch {}",
                    m.validation.loss.exp(),
                    100.0 * m.validation.accuracy,
                    m.epoch
                ));
            } else {
                ui.label(format!(
                    "Validation accuracy {:.1}% ({}/{}) after epoch {}",
                    100.0 * m.validation.accuracy,
                    c.correct(),
                    c.total(),
                    m.epoch
                ));
            }
        }
        None => {
            ui.label("Waiting for the first epoch…");
        }
    }
    if let Some(test) = run.summary.as_ref().and_then(|s| s.test.as_ref()).filter(|_| run.task.has_accuracy()) {
        ui.label(format!("Test accuracy {:.1}% on {} samples", 100.0 * test.accuracy, test.confusion.total()));
    }
    curve_plot::settings_bar(ui, plot_settings);
    let settings = *plot_settings;
    let plot_height = (ui.available_height() * 0.42).clamp(140.0, 320.0);
    if run.task.is_generative() {
        // no accuracy: the losses, the latent space or the GAN's two losses, the pictures
        ui.columns(2, |cols| {
            plots::show(&mut cols[0], run, Metric::Loss, plot_height, &settings, actions);
            generative_views::side_plot(&mut cols[1], run, plot_height);
        });
        ui.separator();
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_max_width(ui.available_width() * 0.75);
                generative_views::grids(ui, run);
            });
            ui.separator();
            ui.vertical(|ui| network(ui, run, actions));
        });
        return;
    }
    ui.columns(2, |cols| {
        plots::show(&mut cols[0], run, Metric::Loss, plot_height, &settings, actions);
        plots::show(&mut cols[1], run, Metric::Accuracy, plot_height, &settings, actions);
    });
    ui.separator();
    let language_model = run.task == Task::LanguageModel;
    ui.horizontal_top(|ui| {
        if language_model && run.text {
            ui.vertical(|ui| {
                ui.set_max_width(ui.available_width() * 0.55);
                text_views::samples(ui, run, text_view, actions);
            });
            ui.separator();
            ui.vertical(|ui| {
                let h = (ui.available_height() * 0.6).clamp(160.0, 420.0);
                text_views::embedding(ui, run, h);
                network(ui, run, actions);
            });
            return;
        }
        ui.vertical(|ui| eval_view::show(ui, run, inspect, actions));
        ui.separator();
        ui.vertical(|ui| {
            if run.text {
                text_views::probe(ui, run, text_view, actions);
                let h = (ui.available_height() * 0.5).clamp(140.0, 320.0);
                text_views::embedding(ui, run, h);
                ui.separator();
            }
            network(ui, run, actions);
        });
    });
}

/// The layers, the summary and the run's folder with its export buttons.
fn network(ui: &mut egui::Ui, run: &LiveRun, actions: &mut Vec<Action>) {
    ui.strong("Network");
    for layer in &run.layers {
        ui.label(egui::RichText::new(layer).monospace().small());
    }
    if let Some(s) = &run.summary {
        ui.add_space(6.0);
        ui.strong("Summary");
        ui.label(format!("{} after {} epochs in {:.1}s", s.status.title(), s.epochs_completed, s.wall_time_s));
        if let (Some(e), Some(a)) = (s.best_epoch, s.best_validation_accuracy) {
            ui.label(format!("best validation {:.2}% at epoch {e}", 100.0 * a));
        }
        ui.label(format!("{:.0} samples/s", s.samples_per_s));
    }
    if let Some(dir) = &run.run_dir {
        ui.label(egui::RichText::new(format!("recorded in {}", dir.display())).small().weak());
        if !run.epoch_metrics.is_empty() {
            ui.horizontal(|ui| {
                        if ui
                            .button("Export model…")
                            .on_hover_text("The best epoch's weights, in the format chosen in the Runs tab (safetensors + JSON by default)")
                            .clicked()
                        {
                            actions.push(Action::ExportModel(dir.clone(), Which::Best));
                        }
                        if ui.button("Export metrics…").on_hover_text("metrics.csv: every step and epoch").clicked() {
                            actions.push(Action::ExportMetrics(dir.clone()));
                        }
                    });
        }
    }
}
