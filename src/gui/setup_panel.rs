//! The left side: experiment, data set, architecture, optimizer and the run buttons.

use std::path::PathBuf;

use egui::{DragValue, Slider, Ui};

use super::io::GalleryEntry;
use super::preview::PreviewLoader;
use super::run_view::Phase;
use crate::config::{OptimizerKind, Preset, ScheduleKind};
use crate::data::{set_info, NormalizationKind, SetKind, CATALOGUE};
use crate::export::Which;
use crate::model::{plan, Activation, ConvSpec, LayerPlan, ModelKind};

/// What the user asked for this frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Start,
    Pause,
    Resume,
    Stop,
    SetLearningRate(f64),
    LoadPreset(Box<Preset>),
    OpenPreset,
    SavePreset,
    PickIdxFolder,
    CancelFork,
    RefreshRuns,
    RenameRun(PathBuf, String),
    DeleteRun(PathBuf),
    ResumeRun(PathBuf),
    Fork(PathBuf, Which),
    ExportModel(PathBuf, Which),
    ExportMetrics(PathBuf),
    /// A plot (by id) as PNG; the rect is where it is on screen.
    SavePlotPng(&'static str, egui::Rect),
}

/// Editing state that is not part of the preset itself.
#[derive(Default)]
pub struct SetupPanel {
    /// The hidden-layer widths as typed ("256, 128"), parsed into the preset when valid.
    hidden_text: String,
    hidden_text_for: Vec<usize>,
    hidden_error: Option<String>,
}

fn parse_widths(text: &str) -> Result<Vec<usize>, String> {
    text.split([',', ' '])
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<usize>().map_err(|_| format!("`{s}` is not a whole number")))
        .collect()
}

fn labelled(ui: &mut Ui, label: &str, add: impl FnOnce(&mut Ui) -> egui::Response) -> egui::Response {
    let l = ui.label(label);
    let r = add(ui).labelled_by(l.id);
    ui.end_row();
    r
}

impl SetupPanel {
    /// Draws the settings.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        preset: &mut Preset,
        phase: Phase,
        preview: &mut PreviewLoader,
        presets: &[GalleryEntry],
        actions: &mut Vec<Action>,
    ) {
        let Self { hidden_text, hidden_text_for, hidden_error } = self;
        if *hidden_text_for != preset.model.hidden {
            *hidden_text = preset.model.hidden.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            hidden_text_for.clone_from(&preset.model.hidden);
            *hidden_error = None;
        }
        let editable = !phase.is_active();

        ui.add_enabled_ui(editable, |ui| {
            ui.horizontal(|ui| {
                let l = ui.label("Experiment");
                egui::ComboBox::from_id_salt("experiment")
                    .selected_text(preset.title.clone())
                    .width(200.0)
                    .show_ui(ui, |ui| {
                        for entry in presets {
                            if let Ok(p) = &entry.preset {
                                if ui.selectable_label(preset.title == p.title, &p.title).clicked() {
                                    actions.push(Action::LoadPreset(Box::new(p.clone())));
                                }
                            }
                        }
                    })
                    .response
                    .labelled_by(l.id);
            });
            if !preset.description.is_empty() {
                ui.label(egui::RichText::new(&preset.description).small().weak());
            }

            ui.separator();
            ui.heading("Data");
            let before = preset.data.set.clone();
            ui.horizontal(|ui| {
                let l = ui.label("Data set");
                let current = set_info(&preset.data.set).map_or(preset.data.set.as_str(), |s| s.title);
                egui::ComboBox::from_id_salt("data_set")
                    .selected_text(current)
                    .width(180.0)
                    .show_ui(ui, |ui| {
                        for s in CATALOGUE {
                            ui.selectable_value(&mut preset.data.set, s.id.to_string(), s.title);
                        }
                    })
                    .response
                    .labelled_by(l.id);
            });
            if preset.data.set != before {
                on_data_set_changed(preset);
            }
            if let Some(info) = set_info(&preset.data.set) {
                ui.label(egui::RichText::new(info.description).small());
                if info.id == "idx" || info.id == "fashion-mnist" {
                    ui.horizontal(|ui| {
                        let shown = match (&preset.data.path, info.id) {
                            (Some(p), _) => p.display().to_string(),
                            (None, "fashion-mnist") => {
                                format!("{} (Debian's package)", crate::data::idx::FASHION_MNIST_DIR)
                            }
                            (None, _) => "(none chosen)".into(),
                        };
                        ui.label(format!("Folder: {shown}"));
                        if ui.button("Choose folder…").clicked() {
                            actions.push(Action::PickIdxFolder);
                        }
                    });
                }
                egui::Grid::new("data_grid").num_columns(2).show(ui, |ui| {
                    if info.kind == SetKind::Points2d {
                        labelled(ui, "Samples", |ui| {
                            ui.add(DragValue::new(&mut preset.data.samples).range(10..=100_000))
                        });
                        labelled(ui, "Noise", |ui| ui.add(Slider::new(&mut preset.data.noise, 0.0..=1.0)));
                        if matches!(info.id, "spiral" | "blobs") {
                            labelled(ui, "Classes", |ui| {
                                ui.add(DragValue::new(&mut preset.data.classes).range(2..=10))
                            });
                        }
                    }
                    labelled(ui, "Preprocessing", |ui| {
                        egui::ComboBox::from_id_salt("normalization")
                            .selected_text(preset.data.normalization.title())
                            .show_ui(ui, |ui| {
                                for n in NormalizationKind::ALL {
                                    ui.selectable_value(&mut preset.data.normalization, n, n.title());
                                }
                            })
                            .response
                    });
                    labelled(ui, "Validation share", |ui| {
                        ui.add(Slider::new(&mut preset.data.validation_fraction, 0.05..=0.5))
                    });
                });
            }
            preview.ui(ui, &preset.data, preset.seed);

            ui.separator();
            ui.heading("Model");
            ui.horizontal(|ui| {
                let l = ui.label("Architecture");
                egui::ComboBox::from_id_salt("architecture")
                    .selected_text(preset.model.kind.title())
                    .show_ui(ui, |ui| {
                        for k in ModelKind::ALL {
                            ui.selectable_value(&mut preset.model.kind, k, k.title());
                        }
                    })
                    .response
                    .labelled_by(l.id);
            });
            if preset.model.kind == ModelKind::Cnn {
                conv_blocks(ui, &mut preset.model.conv);
            } else {
                preset.model.conv.clear();
            }
            egui::Grid::new("model_grid").num_columns(2).show(ui, |ui| {
                labelled(ui, "Hidden layers", |ui| {
                    let r =
                        ui.add(egui::TextEdit::singleline(hidden_text).desired_width(120.0).hint_text("e.g. 256, 128"));
                    if r.changed() {
                        match parse_widths(hidden_text) {
                            Ok(w) => {
                                preset.model.hidden.clone_from(&w);
                                *hidden_text_for = w;
                                *hidden_error = None;
                            }
                            Err(e) => *hidden_error = Some(e),
                        }
                    }
                    r
                });
                labelled(ui, "Activation", |ui| {
                    egui::ComboBox::from_id_salt("activation")
                        .selected_text(preset.model.activation.title())
                        .show_ui(ui, |ui| {
                            for a in Activation::ALL {
                                ui.selectable_value(&mut preset.model.activation, a, a.title());
                            }
                        })
                        .response
                });
                labelled(ui, "Dropout", |ui| ui.add(Slider::new(&mut preset.model.dropout, 0.0..=0.9)));
            });
            if let Some(e) = hidden_error {
                ui.colored_label(ui.visuals().error_fg_color, format!("Hidden layers: {e}"));
            }
            layer_table(ui, preset, preview);

            ui.separator();
            ui.heading("Training");
        });

        egui::Grid::new("train_grid").num_columns(2).show(ui, |ui| {
            let l = ui.add_enabled(editable, egui::Label::new("Optimizer"));
            ui.add_enabled_ui(editable, |ui| {
                egui::ComboBox::from_id_salt("optimizer")
                    .selected_text(preset.train.optimizer.title())
                    .show_ui(ui, |ui| {
                        for o in OptimizerKind::ALL {
                            ui.selectable_value(&mut preset.train.optimizer, o, o.title());
                        }
                    })
                    .response
                    .labelled_by(l.id)
            });
            ui.end_row();
            // the learning rate stays editable while training: it is sent to the run
            let lr_before = preset.train.learning_rate;
            labelled(ui, "Learning rate", |ui| {
                ui.add(
                    Slider::new(&mut preset.train.learning_rate, 1e-5..=1.0)
                        .logarithmic(true)
                        .custom_formatter(|v, _| format!("{v:.1e}")),
                )
            });
            if preset.train.learning_rate != lr_before && phase.is_active() {
                actions.push(Action::SetLearningRate(preset.train.learning_rate));
            }
            let t = &mut preset.train;
            let l = ui.add_enabled(editable, egui::Label::new("Schedule"));
            ui.add_enabled_ui(editable, |ui| {
                egui::ComboBox::from_id_salt("schedule")
                    .selected_text(format!("{:?}", t.schedule.kind).to_lowercase())
                    .show_ui(ui, |ui| {
                        for k in [ScheduleKind::Constant, ScheduleKind::Step, ScheduleKind::Cosine] {
                            ui.selectable_value(&mut t.schedule.kind, k, format!("{k:?}").to_lowercase());
                        }
                    })
                    .response
                    .labelled_by(l.id)
            });
            ui.end_row();
            let row = |ui: &mut Ui, label: &str, add: &mut dyn FnMut(&mut Ui) -> egui::Response| {
                let l = ui.add_enabled(editable, egui::Label::new(label));
                ui.add_enabled_ui(editable, |ui| add(ui).labelled_by(l.id));
                ui.end_row();
            };
            if t.optimizer == OptimizerKind::Sgd {
                row(ui, "Momentum", &mut |ui| ui.add(Slider::new(&mut t.momentum, 0.0..=0.99)));
            }
            row(ui, "Weight decay", &mut |ui| ui.add(DragValue::new(&mut t.weight_decay).speed(1e-4).range(0.0..=1.0)));
            row(ui, "Warm-up epochs", &mut |ui| {
                ui.add(DragValue::new(&mut t.schedule.warmup_epochs).speed(0.1).range(0.0..=100.0))
            });
            row(ui, "Batch size", &mut |ui| ui.add(DragValue::new(&mut t.batch_size).range(1..=8192)));
            row(ui, "Epochs", &mut |ui| ui.add(DragValue::new(&mut t.epochs).range(1..=10_000)));
            row(ui, "Seed", &mut |ui| ui.add(DragValue::new(&mut preset.seed)));
            let t = &mut preset.train;
            let cores = crate::train::cores();
            row(ui, "Threads", &mut |ui| {
                ui.add(DragValue::new(&mut t.threads).range(0..=cores).custom_formatter(|v, _| {
                    if v == 0.0 {
                        "auto".into()
                    } else {
                        format!("{v}")
                    }
                }))
            });
        });
    }

    /// Start / Pause / Resume / Stop, each enabled only when it makes sense, and what stops a
    /// start (a memory refusal is one). Drawn above the scrolling settings so it is always in
    /// view. The memory estimate shows when hovering Start.
    pub fn run_controls(
        &self,
        ui: &mut Ui,
        phase: Phase,
        validation: Option<&str>,
        memory: Option<&str>,
        actions: &mut Vec<Action>,
    ) {
        let problem = validation
            .map(ToString::to_string)
            .or_else(|| self.hidden_error.clone().map(|e| format!("Hidden layers: {e}")));
        ui.horizontal(|ui| {
            let can_start = !phase.is_active() && problem.is_none();
            let start = ui.add_enabled(can_start, egui::Button::new("Start"));
            let start = match memory {
                Some(m) => start.on_hover_text(m),
                None => start,
            };
            if start.clicked() {
                actions.push(Action::Start);
            }
            if ui.add_enabled(phase == Phase::Running, egui::Button::new("Pause")).clicked() {
                actions.push(Action::Pause);
            }
            if ui.add_enabled(phase == Phase::Paused, egui::Button::new("Resume")).clicked() {
                actions.push(Action::Resume);
            }
            if ui.add_enabled(phase.is_active(), egui::Button::new("Stop")).clicked() {
                actions.push(Action::Stop);
            }
        });
        if let Some(problem) = problem {
            ui.colored_label(ui.visuals().error_fg_color, problem);
        }
    }
}

/// Keeps the model sensible for the new data: a CNN needs images.
fn on_data_set_changed(preset: &mut Preset) {
    preset.data.path = None;
    let is_image = set_info(&preset.data.set).is_some_and(|s| s.kind == SetKind::Image);
    if !is_image && preset.model.kind == ModelKind::Cnn {
        preset.model.kind = ModelKind::Mlp;
        preset.model.conv.clear();
        if preset.model.hidden.is_empty() {
            preset.model.hidden = vec![32, 32];
        }
    }
}

fn conv_blocks(ui: &mut Ui, conv: &mut Vec<ConvSpec>) {
    let mut remove = None;
    egui::Grid::new("conv_grid").num_columns(6).show(ui, |ui| {
        let headers: Vec<egui::Id> = ["conv", "channels", "kernel", "stride", "padding", "pool"]
            .iter()
            .map(|h| ui.label(egui::RichText::new(*h).small()).id)
            .collect();
        ui.end_row();
        for (i, c) in conv.iter_mut().enumerate() {
            ui.horizontal(|ui| {
                if ui.small_button("x").on_hover_text("Remove this block").clicked() {
                    remove = Some(i);
                }
                ui.label(format!("{}", i + 1));
            });
            ui.add(DragValue::new(&mut c.channels).range(1..=1024)).labelled_by(headers[1]);
            ui.add(DragValue::new(&mut c.kernel).range(1..=15)).labelled_by(headers[2]);
            ui.add(DragValue::new(&mut c.stride).range(1..=8)).labelled_by(headers[3]);
            ui.add(DragValue::new(&mut c.padding).range(0..=8)).labelled_by(headers[4]);
            ui.add(DragValue::new(&mut c.pool).range(1..=4))
                .labelled_by(headers[5])
                .on_hover_text("max-pool window; 1 for none");
            ui.end_row();
        }
    });
    if let Some(i) = remove {
        conv.remove(i);
    }
    if ui.button("Add conv block").clicked() {
        let channels = conv.last().map_or(32, |c| (c.channels * 2).min(512));
        conv.push(ConvSpec { channels, padding: 1, ..ConvSpec::default() });
    }
}

fn layer_params(layer: &LayerPlan) -> usize {
    // plan refuses layers whose count overflows
    layer.param_count().unwrap_or(usize::MAX)
}

/// The planned layers with their output shapes and parameter counts.
fn layer_table(ui: &mut Ui, preset: &Preset, preview: &PreviewLoader) {
    let shape = preview
        .info(&preset.data, preset.seed)
        .map(|p| (p.input_shape.clone(), p.class_names.len()))
        .or_else(|| crate::config::input_shape_hint(preset));
    let Some((shape, classes)) = shape else {
        return;
    };
    let Ok(layers) = plan(&preset.model, &shape, classes) else {
        return;
    };
    let total = layers.iter().fold(0usize, |sum, (l, _)| sum.saturating_add(layer_params(l)));
    egui::CollapsingHeader::new(format!("Layers: {} parameters", group_thousands(total))).default_open(false).show(
        ui,
        |ui| {
            egui::Grid::new("layers_grid").striped(true).show(ui, |ui| {
                for (layer, out) in &layers {
                    let name = match layer {
                        LayerPlan::Conv { name, kernel, .. } => {
                            format!("{name} conv {kernel}x{kernel}")
                        }
                        LayerPlan::Dense { name, .. } => format!("{name} dense"),
                        LayerPlan::MaxPool { size } => format!("max-pool {size}"),
                        LayerPlan::Flatten => "flatten".into(),
                        LayerPlan::Activation(a) => a.title().into(),
                        LayerPlan::Dropout(p) => format!("dropout {p:.2}"),
                    };
                    let params = layer_params(layer);
                    ui.label(name);
                    ui.label(out.iter().map(ToString::to_string).collect::<Vec<_>>().join("×"));
                    ui.label(if params > 0 { group_thousands(params) } else { String::new() });
                    ui.end_row();
                }
            });
        },
    );
}

pub fn group_thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
