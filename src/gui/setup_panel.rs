//! The left side: experiment, data set, architecture, optimizer and the run buttons.

use std::path::PathBuf;

use egui::{DragValue, Slider, Ui};

use super::io::GalleryEntry;
use super::preview::PreviewLoader;
use super::run_view::Phase;
use crate::config::{OptimizerKind, Preset, ScheduleKind};
use crate::data::{set_info, NormalizationKind, SetKind, CATALOGUE};
use crate::export::Which;
use crate::model::LayerSpec;
use crate::task::Task;

/// What the user asked for this frame.
#[derive(Debug, Clone)]
pub enum Action {
    Start,
    Pause,
    Resume,
    Stop,
    SetLearningRate(f64),
    /// The language model writes from its current weights.
    Generate {
        prompt: String,
        length: usize,
        temperature: f64,
    },
    /// The text classifier's probabilities for this text.
    Probe(String),
    LoadPreset(Box<Preset>),
    OpenPreset,
    SavePreset,
    /// The folder (IDX files, a text folder) or file (a text to model) the data set reads.
    PickDataPath,
    /// The exported model or run folder a transfer-learning run starts from.
    PickTransferSource,
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
    /// Pick another folder to record runs in (and list).
    ChangeRunsDir,
    /// The learning-rate window (schedule and finder).
    OpenLrWindow,
    /// Run the learning-rate finder on the current preset.
    FindLearningRate,
    /// A question about the model for the training thread (id from `InspectState::next_id`).
    Inspect(Box<crate::train::inspect::InspectRequest>),
    /// Pick an image file and decode it to the model's input shape `[c, h, w]` ("Try it").
    OpenImageFile([usize; 3]),
    /// Switch to a tab (e.g. a gallery card's "Why?" opens Inside).
    ShowTab(super::app::View),
}

/// Editing state that is not part of the preset itself.
#[derive(Default)]
pub struct SetupPanel {
    /// What the layer editor found wrong with the model, shown by the run controls.
    model_error: Option<String>,
    /// A text folder or file set whose path is not chosen yet.
    missing_path: Option<String>,
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
            task_picker(ui, preset);
            self.missing_path = match (preset.data.set.as_str(), &preset.data.path) {
                ("text-folder", None) => Some("Choose the text folder (train/<class>/*.txt) first.".into()),
                ("text-file", None) => Some("Choose the text file to model first.".into()),
                ("cifar10" | "cifar100", None) => Some("Choose the folder with the CIFAR binary files first.".into()),
                ("image-folder", None) => Some("Choose the folder with one sub-folder per class first.".into()),
                ("csv", None) => Some("Choose the CSV file first.".into()),
                _ => None,
            };
            if let Some(info) = set_info(&preset.data.set) {
                ui.label(egui::RichText::new(info.description).small());
                let user_set = matches!(info.id, "cifar10" | "cifar100" | "image-folder" | "csv");
                if user_set || matches!(info.id, "idx" | "fashion-mnist" | "text-folder" | "text-file") {
                    ui.horizontal(|ui| {
                        let shown = match (&preset.data.path, info.id) {
                            (Some(p), _) => p.display().to_string(),
                            (None, "fashion-mnist") => {
                                format!("{} (Debian's package)", crate::data::idx::FASHION_MNIST_DIR)
                            }
                            (None, _) => "(none chosen)".into(),
                        };
                        let file = matches!(info.id, "text-file" | "csv");
                        ui.label(format!("{}: {shown}", if file { "File" } else { "Folder" }));
                        if ui.button(if file { "Choose file…" } else { "Choose folder…" }).clicked() {
                            actions.push(Action::PickDataPath);
                        }
                    });
                }
                egui::Grid::new("data_grid").num_columns(2).show(ui, |ui| {
                    if info.kind.is_text() {
                        let what = if info.kind == SetKind::Text { "Tokens per sample" } else { "Tokens per window" };
                        labelled(ui, what, |ui| ui.add(DragValue::new(&mut preset.data.max_len).range(1..=4096)));
                        labelled(ui, "Vocabulary", |ui| {
                            ui.add(DragValue::new(&mut preset.data.vocab_size).range(1..=1_000_000))
                                .on_hover_text("the most frequent tokens of the training part; the rest read <unk>")
                        });
                    }
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
                    user_data_keys(ui, preset, info.id);
                    // token ids are never normalised
                    if !info.kind.is_text() {
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
                    }
                    labelled(ui, "Validation share", |ui| {
                        ui.add(Slider::new(&mut preset.data.validation_fraction, 0.05..=0.5))
                    });
                });
            }
            preview.ui(ui, &preset.data, preset.seed);
            let (side, classes) = preview
                .info(&preset.data, preset.seed)
                .map(|p| (p.input_shape.get(1..3).map(|s| s[0].min(s[1])), p.class_names.clone()))
                .unwrap_or_default();
            super::augment_panel::ui(ui, preset, side, &classes, &mut preview.augmented);

            ui.separator();
            ui.heading("Model");
            let known =
                preview.info(&preset.data, preset.seed).map(|p| (p.input_shape.clone(), p.class_names.len(), p.vocab));
            let input = super::layer_editor::model_input(preset, known);
            super::transfer_panel::ui(ui, preset, actions);
            self.model_error = super::layer_editor::ui(ui, preset, input.as_ref());

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
                ui.horizontal(|ui| {
                    let slider = ui.add(
                        Slider::new(&mut preset.train.learning_rate, 1e-5..=1.0)
                            .logarithmic(true)
                            // a rate outside the slider's span (the finder's 1e-7..10, a
                            // preset's) is kept, not clamped when the slider is shown
                            .clamping(egui::SliderClamping::Never)
                            .custom_formatter(|v, _| format!("{v:.1e}")),
                    );
                    if ui
                        .small_button("Finder…")
                        .on_hover_text("The schedule's curve and the learning-rate finder")
                        .clicked()
                    {
                        actions.push(Action::OpenLrWindow);
                    }
                    slider
                })
                .inner
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
            row(ui, "Device", &mut |ui| super::device_combo::show(ui, &mut t.device));
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
            .or_else(|| self.model_error.clone())
            .or_else(|| self.missing_path.clone());
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

/// Keeps the model sensible for the new data: image layers need images, an embedding needs
/// text.
/// The keys of the sets a user brings: an image folder's size and colour, CIFAR-100's labels,
/// a table's label column (a name or a 0-based position; empty: the last).
fn user_data_keys(ui: &mut egui::Ui, preset: &mut Preset, id: &str) {
    use crate::data::{cifar::LabelKind, image_folder, table::LabelColumn};
    let d = &mut preset.data;
    match id {
        "image-folder" => {
            let mut side = d.image_size.map_or(image_folder::DEFAULT_SIDE, |s| s.hw().0);
            labelled(ui, "Image size", |ui| {
                let r = ui.add(DragValue::new(&mut side).range(1..=image_folder::MAX_SIDE).suffix(" px"));
                if r.changed() {
                    d.image_size = Some(image_folder::ImageSize::Side(side));
                }
                r.on_hover_text("images are resized to this square (bilinear)")
            });
            labelled(ui, "Colour", |ui| {
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut d.color, image_folder::ColorMode::Rgb, "RGB");
                    ui.selectable_value(&mut d.color, image_folder::ColorMode::Grey, "grey");
                })
                .response
            });
        }
        "cifar100" => {
            labelled(ui, "Labels", |ui| {
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut d.labels, LabelKind::Fine, "fine (100)");
                    ui.selectable_value(&mut d.labels, LabelKind::Coarse, "coarse (20)");
                })
                .response
            });
        }
        "csv" => {
            let mut text = match &d.label_column {
                Some(LabelColumn::Position(p)) => p.to_string(),
                Some(LabelColumn::Name(n)) => n.clone(),
                None => String::new(),
            };
            labelled(ui, "Label column", |ui| {
                let r = ui.add(egui::TextEdit::singleline(&mut text).hint_text("last").desired_width(90.0));
                if r.changed() {
                    let t = text.trim();
                    d.label_column = match t.parse::<usize>() {
                        _ if t.is_empty() => None,
                        Ok(p) => Some(LabelColumn::Position(p)),
                        Err(_) => Some(LabelColumn::Name(t.to_string())),
                    };
                }
                r.on_hover_text("a header name or a 0-based position")
            });
        }
        _ => {}
    }
}

fn on_data_set_changed(preset: &mut Preset) {
    preset.data.path = None;
    let Some(info) = set_info(&preset.data.set) else { return };
    let model = &preset.model;
    let reads_images = match model.kind {
        Some(kind) => kind == crate::model::ModelKind::Cnn,
        None if model.layers.is_empty() => true,
        None => model
            .layers
            .iter()
            .any(|l| matches!(l, LayerSpec::Conv2d(_) | LayerSpec::Maxpool(_) | LayerSpec::Avgpool(_))),
    };
    let reads_tokens = model.layers.iter().any(|l| matches!(l, LayerSpec::Embedding(_)));
    let image = info.kind == SetKind::Image;
    if !image {
        // augmentation transforms images only
        preset.augment = crate::data::AugmentSpec::default();
    }
    let task = match info.kind {
        SetKind::TextStream => Task::LanguageModel,
        // a generative model of numbers stays one on other numbers (its layers adapt to them)
        SetKind::Text => Task::Classify,
        _ if preset.task.is_generative() => preset.task,
        _ => Task::Classify,
    };
    if preset.task.is_generative() && task == preset.task {
        return;
    }
    if (reads_images && !image) || reads_tokens != info.kind.is_text() || task != preset.task {
        preset.model = super::layer_editor::default_model_for(info.kind);
    }
    preset.task = task;
    if !task.is_generative() {
        super::generative_views::on_task_changed(preset);
    }
}

/// The task: what the data allows (text: its own task; numbers: classify or a generative model).
fn task_picker(ui: &mut Ui, preset: &mut Preset) {
    let Some(info) = set_info(&preset.data.set) else { return };
    let offered: Vec<Task> = if info.kind.is_text() {
        vec![preset.task]
    } else {
        Task::ALL.into_iter().filter(|t| *t != Task::LanguageModel).collect()
    };
    let before = preset.task;
    ui.horizontal(|ui| {
        let l = ui.label("Task");
        egui::ComboBox::from_id_salt("task")
            .selected_text(preset.task.title())
            .width(140.0)
            .show_ui(ui, |ui| {
                for task in offered {
                    ui.selectable_value(&mut preset.task, task, task.title());
                }
            })
            .response
            .labelled_by(l.id);
    });
    if preset.task != before {
        super::generative_views::on_task_changed(preset);
    }
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
