//! The eframe app: owns the trainer handle and the panels, turns clicks into commands and
//! events into what is shown. It never trains and never blocks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::live_view;
use super::preview::PreviewLoader;
use super::run_view::{LiveRun, Phase};
use super::setup_panel::{Action, SetupPanel};
use super::status_bar;
use crate::config::Preset;
use crate::train::{Command, RunRequest, Trainer, Waker, WorkerOptions};

/// How long one frame may spend draining training events.
const DRAIN_BUDGET: Duration = Duration::from_millis(4);

pub struct AppOptions {
    /// Where runs are recorded; `None` records nothing.
    pub runs_dir: Option<PathBuf>,
    pub preset: Preset,
    /// Compute threads when the preset says "auto": one core stays with the UI.
    pub default_threads: usize,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            runs_dir: Some(PathBuf::from("runs")),
            preset: Preset::builtin("mnist_cnn").unwrap_or_default(),
            default_threads: crate::train::cores().saturating_sub(1).max(1),
        }
    }
}

pub struct GradlabApp {
    pub preset: Preset,
    pub run: LiveRun,
    setup: SetupPanel,
    trainer: Trainer,
    preview: PreviewLoader,
    /// A problem to show above everything until dismissed (e.g. a folder that is not IDX).
    notice: Option<String>,
}

impl GradlabApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> Self {
        let ctx = cc.egui_ctx.clone();
        let waker: Waker = Arc::new(move || ctx.request_repaint());
        let trainer = Trainer::spawn(WorkerOptions {
            default_threads: options.default_threads,
            waker: Some(waker.clone()),
            runs_dir: options.runs_dir,
        });
        Self {
            preset: options.preset,
            run: LiveRun::default(),
            setup: SetupPanel::default(),
            trainer,
            preview: PreviewLoader::spawn(Some(waker)),
            notice: None,
        }
    }

    /// Whether the data preview of the current preset has arrived.
    pub fn preview_ready(&self) -> bool {
        self.preview
            .info(&self.preset.data, self.preset.seed)
            .is_some()
    }

    pub fn dropped_steps(&self) -> u64 {
        self.trainer.dropped_steps()
    }

    fn act(&mut self, action: Action) {
        let command = match action {
            Action::Start => {
                self.run = LiveRun::starting();
                RunRequest::fresh(self.preset.clone())
            }
            Action::Pause => Command::Pause,
            Action::Resume => Command::Resume,
            Action::Stop => Command::Stop,
            Action::SetLearningRate(lr) => Command::SetLearningRate(lr),
            Action::LoadBuiltin(name) => {
                match Preset::builtin(name) {
                    Ok(p) => self.preset = p,
                    Err(e) => self.notice = Some(e.to_string()),
                }
                return;
            }
            Action::PickIdxFolder => {
                // The native dialog runs on the UI thread (as the platforms want); reading the
                // files happens later on the preview and training threads.
                if let Some(dir) = rfd::FileDialog::new()
                    .set_title("Folder with IDX files")
                    .pick_folder()
                {
                    match crate::data::idx::find_in_folder(&dir) {
                        Ok(_) => self.preset.data.path = Some(dir),
                        Err(e) => self.notice = Some(e.to_string()),
                    }
                }
                return;
            }
        };
        if !self.trainer.send(command) {
            self.notice = Some("The training thread is not answering; restart Gradlab.".into());
        }
    }
}

impl eframe::App for GradlabApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let start = Instant::now();
        while start.elapsed() < DRAIN_BUDGET {
            let Some(event) = self.trainer.try_recv() else {
                break;
            };
            self.run.apply(event);
        }
        if start.elapsed() >= DRAIN_BUDGET {
            // more events wait: come back soon rather than block this frame
            ctx.request_repaint();
        }
        self.preview.poll(ctx);
        if self.run.phase == Phase::Running || self.run.phase == Phase::Starting {
            // the elapsed-time clock ticks even between events
            ctx.request_repaint_after(Duration::from_millis(500));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let mut actions = Vec::new();
        egui::Panel::top("top_bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("Gradlab");
                ui.label(
                    egui::RichText::new("pick data and a model, press Start, watch it learn")
                        .weak(),
                );
            });
        });
        egui::Panel::bottom("status_bar").show(ui, |ui| {
            status_bar::show(ui, &self.run, self.trainer.dropped_steps());
        });
        let validation = self.preset.validate("setup").err().map(|e| e.to_string());
        egui::Panel::left("setup_panel")
            .resizable(true)
            .default_size(350.0)
            .show(ui, |ui| {
                ui.add_space(4.0);
                self.setup
                    .run_controls(ui, self.run.phase, validation.as_deref(), &mut actions);
                ui.separator();
                egui::ScrollArea::vertical().show(ui, |ui| {
                    self.setup.ui(
                        ui,
                        &mut self.preset,
                        self.run.phase,
                        &mut self.preview,
                        &mut actions,
                    );
                });
            });
        egui::CentralPanel::default().show(ui, |ui| {
            if let Some(notice) = &self.notice {
                let mut close = false;
                ui.horizontal(|ui| {
                    ui.colored_label(ui.visuals().error_fg_color, notice);
                    close = ui.small_button("Dismiss").clicked();
                });
                if close {
                    self.notice = None;
                }
            }
            live_view::show(ui, &self.run);
        });
        for action in actions {
            self.act(action);
        }
    }
}
