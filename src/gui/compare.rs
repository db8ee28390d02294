//! Comparing runs: their curves overlaid in one plot (best epoch marked) and their
//! hyper-parameters side by side with the differences highlighted.

use std::path::PathBuf;

use egui::{RichText, Ui};
use egui_plot::MarkerShape;

use super::curve_plot::{self, CurvePlot, EpochLine, Marker, PlotSettings, StepLine};
use super::lr_view;
use super::series::{Series, XKind};

use super::preview::class_color;
use super::setup_panel::Action;
use crate::record::RunData;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum CompareMetric {
    #[default]
    ValidationAccuracy,
    ValidationLoss,
    TrainAccuracy,
    TrainLoss,
}

impl CompareMetric {
    pub const ALL: [CompareMetric; 4] =
        [Self::ValidationAccuracy, Self::ValidationLoss, Self::TrainAccuracy, Self::TrainLoss];

    pub fn title(self) -> &'static str {
        match self {
            Self::ValidationAccuracy => "validation accuracy",
            Self::ValidationLoss => "validation loss",
            Self::TrainAccuracy => "train accuracy",
            Self::TrainLoss => "train loss",
        }
    }

    fn value(self, m: &crate::train::EpochMetrics) -> f64 {
        match self {
            Self::ValidationAccuracy => m.validation.accuracy,
            Self::ValidationLoss => m.validation.loss,
            Self::TrainAccuracy => m.train_accuracy,
            Self::TrainLoss => m.train_loss,
        }
    }
}

/// `key = value` pairs of a preset, with dotted keys (`train.learning_rate`).
pub fn flatten_preset(preset: &crate::config::Preset) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
        match value {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, v, out);
                }
            }
            toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = toml::Value::try_from(preset) {
        walk("", &v, &mut out);
    }
    out.retain(|(k, _)| k != "description");
    out
}

/// The legend names of runs: their names, with the folder when two share one.
fn names(runs: &[(&PathBuf, &RunData, &RunCurves)]) -> Vec<String> {
    runs.iter()
        .map(|(dir, data, _)| {
            let duplicate = runs.iter().filter(|(_, d, _)| d.info.name == data.info.name).count() > 1;
            if duplicate {
                format!(
                    "{} ({})",
                    data.info.name,
                    dir.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned())
                )
            } else {
                data.info.name.clone()
            }
        })
        .collect()
}

/// The runs' curves of `metric` overlaid by epoch, each run's best epoch marked (the sweep
/// panel's plot of its best trial).
pub fn plot(
    ui: &mut Ui,
    id: &'static str,
    runs: &[(&PathBuf, &RunData, &RunCurves)],
    names: &[String],
    metric: CompareMetric,
    height: f32,
) -> egui::Response {
    let settings = PlotSettings { smoothing: 0.0, log_y: false, x_kind: XKind::Epoch };
    plot_with(ui, id, runs, names, metric, height, &settings)
}

/// A loaded run's per-step training curves and markers, built once when its data arrive (the
/// runs panel keeps them with the run, so they drop with it); a plot only borrows them.
pub struct RunCurves {
    pub train_loss: Option<Series>,
    pub train_accuracy: Option<Series>,
    pub markers: Vec<Marker>,
}

impl RunCurves {
    pub fn new(data: &RunData, smoothing: f32) -> Self {
        let bpe = data.batches_per_epoch.unwrap_or(1).max(1);
        let loss: Vec<f32> = data.steps.iter().map(|s| s[1] as f32).collect();
        Self {
            train_loss: step_series(data, &loss, smoothing),
            train_accuracy: step_series(data, &data.step_accuracy, smoothing),
            markers: markers(data, bpe),
        }
    }

    /// A new smoothing weight for both curves (nothing is computed when it is the same).
    pub fn set_smoothing(&mut self, smoothing: f32) {
        for s in [&mut self.train_loss, &mut self.train_accuracy].into_iter().flatten() {
            s.set_smoothing(smoothing);
        }
    }

    fn series(&self, metric: CompareMetric) -> Option<&Series> {
        match metric {
            CompareMetric::TrainLoss => self.train_loss.as_ref(),
            CompareMetric::TrainAccuracy => self.train_accuracy.as_ref(),
            _ => None,
        }
    }
}

/// A run's per-step curve of a training metric (none when nothing was recorded).
fn step_series(data: &RunData, values: &[f32], smoothing: f32) -> Option<Series> {
    if values.is_empty() || values.iter().all(|v| v.is_nan()) {
        return None;
    }
    let mut series = Series::with_smoothing(smoothing);
    let mut last_time = 0.0f32;
    for (i, (s, &v)) in data.steps.iter().zip(values).enumerate() {
        // runs from before step times were recorded: their steps sit at the last known time
        let t = data.step_elapsed_s.get(i).copied().filter(|t| t.is_finite()).unwrap_or(last_time);
        last_time = t;
        series.push(s[0] as u32, t, v);
    }
    Some(series)
}

/// Where a recorded run forked from its parent and where its learning rate was set by hand.
fn markers(data: &RunData, bpe: usize) -> Vec<Marker> {
    let time_at = |i: usize| data.step_elapsed_s.get(i).copied().unwrap_or(f32::NAN);
    let mut out = Vec::new();
    if let Some(epoch) =
        data.info.parent.as_deref().and_then(|p| p.rsplit_once("epoch-")).and_then(|(_, n)| n.parse::<usize>().ok())
    {
        let time_s = data.epochs.iter().find(|m| m.epoch == epoch).map_or(f32::NAN, |m| m.elapsed_s as f32);
        out.push(Marker {
            step: (epoch * bpe) as u32,
            epoch: epoch as f64,
            time_s,
            label: format!("forked at epoch {epoch}"),
        });
    }
    let steps: Vec<u32> = data.steps.iter().map(|s| s[0] as u32).collect();
    for (step, lr) in lr_view::manual_lr_changes(&steps, &data.step_lr, bpe, &data.preset.train) {
        let i = steps.partition_point(|&s| s < step);
        out.push(Marker {
            step,
            epoch: f64::from(step) / bpe as f64,
            time_s: time_at(i),
            label: format!("lr {}", lr_view::lr_text(lr)),
        });
    }
    out
}

/// `plot` with the curve settings: a training metric gets each run's per-step curve too.
pub fn plot_with(
    ui: &mut Ui,
    id: &'static str,
    runs: &[(&PathBuf, &RunData, &RunCurves)],
    names: &[String],
    metric: CompareMetric,
    height: f32,
    settings: &PlotSettings,
) -> egui::Response {
    let bpe_of = |data: &RunData| data.batches_per_epoch.unwrap_or(1).max(1);
    let mut steps = Vec::new();
    let mut epochs = Vec::new();
    let mut marks = Vec::new();
    for (i, ((_, data, curves), name)) in runs.iter().zip(names).enumerate() {
        let color = class_color(i as u32);
        let bpe = bpe_of(data);
        if let Some(s) = curves.series(metric) {
            steps.push(StepLine { name: format!("{name} (step)"), series: s, color, batches_per_epoch: bpe });
        }
        let points = data.epochs.iter().map(|m| (m.epoch as f64, m.elapsed_s, metric.value(m))).collect();
        epochs.push(EpochLine {
            name: name.clone(),
            color,
            points,
            batches_per_epoch: bpe,
            joined: true,
            shape: MarkerShape::Circle,
            radius: 2.5,
        });
        // the best epoch (by validation accuracy), marked on the curve
        if let Some(best) = data.epochs.iter().max_by(|a, b| a.validation.accuracy.total_cmp(&b.validation.accuracy)) {
            let point = vec![(best.epoch as f64, best.elapsed_s, metric.value(best))];
            epochs.push(EpochLine {
                name: name.clone(),
                color,
                points: point,
                batches_per_epoch: bpe,
                joined: false,
                shape: MarkerShape::Diamond,
                radius: 6.0,
            });
        }
        marks.extend(curves.markers.iter().cloned());
    }
    let plot = CurvePlot {
        id,
        link_group: id,
        y_name: metric.title(),
        steps,
        epochs,
        markers: &marks,
        height,
        include_y: &[],
        legend: egui_plot::Corner::RightTop,
    };
    curve_plot::show(ui, plot, settings)
}

pub fn show(
    ui: &mut Ui,
    runs: &[(&PathBuf, &RunData, &RunCurves)],
    metric: &mut CompareMetric,
    plot_settings: &mut PlotSettings,
    only_differences: &mut bool,
    actions: &mut Vec<Action>,
) {
    let mut save_png = false;
    ui.horizontal(|ui| {
        ui.strong(format!("Comparing {} runs", runs.len()));
        let l = ui.label("Curve");
        egui::ComboBox::from_id_salt("compare_metric")
            .selected_text(metric.title())
            .show_ui(ui, |ui| {
                for m in CompareMetric::ALL {
                    ui.selectable_value(metric, m, m.title());
                }
            })
            .response
            .labelled_by(l.id);
        save_png = ui.button("Save plot as PNG…").clicked();
    });
    curve_plot::settings_bar(ui, plot_settings);
    let names = names(runs);
    let height = (ui.available_height() * 0.55).clamp(160.0, 360.0);
    let response = plot_with(ui, "compare_plot", runs, &names, *metric, height, plot_settings);
    if save_png {
        actions.push(Action::SavePlotPng("compare", response.rect));
    }
    ui.label(RichText::new("The diamond on each curve marks the run's best validation accuracy.").small().weak());

    ui.add_space(6.0);
    ui.horizontal(|ui| {
        ui.strong("Hyper-parameters");
        ui.checkbox(only_differences, "only differences");
    });
    let tables: Vec<Vec<(String, String)>> = runs.iter().map(|(_, d, _)| flatten_preset(&d.preset)).collect();
    let mut keys: Vec<String> = Vec::new();
    for t in &tables {
        for (k, _) in t {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    let value = |t: &Vec<(String, String)>, k: &str| {
        t.iter().find(|(key, _)| key == k).map_or_else(|| "-".to_string(), |(_, v)| v.clone())
    };
    egui::ScrollArea::both().id_salt("params_scroll").show(ui, |ui| {
        egui::Grid::new("params_grid").striped(true).show(ui, |ui| {
            ui.label("");
            for name in &names {
                ui.strong(name);
            }
            ui.end_row();
            for k in &keys {
                let values: Vec<String> = tables.iter().map(|t| value(t, k)).collect();
                let differs = values.iter().any(|v| *v != values[0]);
                if *only_differences && !differs {
                    continue;
                }
                ui.label(k);
                for v in values {
                    if differs {
                        ui.label(RichText::new(v).strong().color(ui.visuals().warn_fg_color));
                    } else {
                        ui.label(v);
                    }
                }
                ui.end_row();
            }
        });
    });
}
