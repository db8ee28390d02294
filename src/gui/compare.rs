//! Comparing runs: their curves overlaid in one plot (best epoch marked) and their
//! hyper-parameters side by side with the differences highlighted.

use std::path::PathBuf;

use egui::{RichText, Ui};
use egui_plot::{Legend, Line, MarkerShape, Plot, Points};

use super::preview::class_color;
use super::setup_panel::Action;
use crate::record::RunData;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
fn names(runs: &[(&PathBuf, &RunData)]) -> Vec<String> {
    runs.iter()
        .map(|(dir, data)| {
            let duplicate = runs.iter().filter(|(_, d)| d.info.name == data.info.name).count() > 1;
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

/// The runs' curves of `metric` overlaid, each run's best epoch marked (also the sweep panel's
/// plot of its best trial).
pub fn plot(
    ui: &mut Ui,
    id: &str,
    runs: &[(&PathBuf, &RunData)],
    names: &[String],
    metric: CompareMetric,
    height: f32,
) -> egui::Response {
    Plot::new(id)
        .height(height)
        .legend(Legend::default())
        .x_axis_label("epoch")
        .y_axis_label(metric.title())
        .allow_scroll(false)
        .show(ui, |p| {
            for (i, ((_, data), name)) in runs.iter().zip(names).enumerate() {
                let color = class_color(i as u32);
                let pts: Vec<[f64; 2]> = data.epochs.iter().map(|m| [m.epoch as f64, metric.value(m)]).collect();
                p.line(Line::new(name.clone(), pts).color(color).width(2.0));
                // the best epoch (by validation accuracy), marked on the curve
                if let Some(best) =
                    data.epochs.iter().max_by(|a, b| a.validation.accuracy.total_cmp(&b.validation.accuracy))
                {
                    p.points(
                        Points::new(name.clone(), vec![[best.epoch as f64, metric.value(best)]])
                            .color(color)
                            .shape(MarkerShape::Diamond)
                            .radius(6.0),
                    );
                }
            }
        })
        .response
}

pub fn show(
    ui: &mut Ui,
    runs: &[(&PathBuf, &RunData)],
    metric: &mut CompareMetric,
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
    let names = names(runs);
    let height = (ui.available_height() * 0.55).clamp(160.0, 360.0);
    let response = plot(ui, "compare_plot", runs, &names, *metric, height);
    if save_png {
        actions.push(Action::SavePlotPng("compare", response.rect));
    }
    ui.label(RichText::new("The diamond on each curve marks the run's best validation accuracy.").small().weak());

    ui.add_space(6.0);
    ui.horizontal(|ui| {
        ui.strong("Hyper-parameters");
        ui.checkbox(only_differences, "only differences");
    });
    let tables: Vec<Vec<(String, String)>> = runs.iter().map(|(_, d)| flatten_preset(&d.preset)).collect();
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
