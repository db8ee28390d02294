//! The eframe app: owns the trainer handle and the panels, turns clicks into commands and
//! events into what is shown. It never trains, never blocks, and leaves file work to the io
//! thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::curve_plot::PlotSettings;
use super::settings::{self, Settings, Theme};
use super::shortcuts::{self, Do};

use super::dialogs::Dialogs;
use super::frame_stats::FrameStats;
use super::gallery::Gallery;
use super::inspect::InspectState;
use super::io::{user_presets_dir, Io, IoRequest};
use super::live_view;
use super::lr_view::{self, LrWindow};
use super::preview::PreviewLoader;
use super::run_view::{LiveRun, Phase};
use super::runs_panel::RunsPanel;
use super::setup_panel::{Action, SetupPanel};
use super::status_bar;
use super::sweep_panel::{Shown, SweepPanel};
use crate::config::Preset;
use crate::sweep::LocalSweep;
use crate::train::inspect::Views;
use crate::train::lr_finder::LrFinderRequest;
use crate::train::{Command, Event, RunOrigin, RunRequest, Trainer, Waker, WorkerOptions};

/// How long one frame may spend draining training events.
pub(super) const DRAIN_BUDGET: Duration = Duration::from_millis(4);
/// How often the live view refreshes while training when the GPU is a CPU.
const SOFTWARE_REFRESH: Duration = Duration::from_secs(1);
/// How often the runs folder is listed again (runs from the CLI appear on their own).
const RUNS_POLL: Duration = Duration::from_secs(2);

pub struct AppOptions {
    /// Where runs are recorded; `None` records nothing.
    pub runs_dir: Option<PathBuf>,
    /// What the settings of the last session may replace (main clears what the command line gave).
    pub keep_from_last_time: KeepFromLastTime,
    pub preset: Preset,
    /// Compute threads when the preset says "auto": one core stays with the UI.
    pub default_threads: usize,
    /// Folders whose presets fill the gallery.
    pub preset_dirs: Vec<PathBuf>,
    pub dialogs: Dialogs,
    /// Start the preset as soon as the window opens.
    pub start: bool,
    /// Close the window when that run ends (for scripted measurements).
    pub quit_when_done: bool,
}

/// See `GradlabApp::overridden`: (the command line's value, the stored one).
#[derive(Default)]
pub(super) struct Overridden {
    pub(super) preset_toml: Option<(String, String)>,
    pub(super) runs_dir: Option<(Option<PathBuf>, Option<PathBuf>)>,
}

/// Which of the options the last session's settings override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepFromLastTime {
    pub preset: bool,
    pub runs_dir: bool,
}

impl Default for KeepFromLastTime {
    fn default() -> Self {
        Self { preset: true, runs_dir: true }
    }
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            runs_dir: Some(settings::default_runs_dir()),
            keep_from_last_time: KeepFromLastTime::default(),
            preset: Preset::builtin("mnist_cnn").unwrap_or_default(),
            default_threads: crate::train::cores().saturating_sub(1).max(1),
            preset_dirs: std::iter::once(PathBuf::from("presets")).chain(user_presets_dir()).collect(),
            dialogs: Dialogs::Native,
            start: false,
            quit_when_done: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Experiments,
    Training,
    /// The network's insides: boundary, filters, layer statistics, saliency, "Try it".
    Inside,
    Runs,
    /// A sweep's trials (reached from the Runs tab).
    Sweep,
}

/// A message above the centre view until dismissed.
pub enum Notice {
    Info(String),
    Error(String),
}

pub struct GradlabApp {
    pub preset: Preset,
    /// The stored preset and runs folder the command line overrode in this session, with the
    /// overriding values: saved back as stored while the user has not changed them.
    pub(super) overridden: Overridden,
    pub run: LiveRun,
    /// What was typed into the text views (prompt, temperature, probe text).
    pub text_view: super::text_views::TextViewState,
    pub view: View,
    pub notice: Option<Notice>,
    /// Set when the next Start forks from this checkpoint (with a label to show).
    pub fork_from: Option<(PathBuf, String)>,
    pub runs: RunsPanel,
    pub gallery: Gallery,
    pub sweep_panel: SweepPanel,
    /// The local sweep under way (its trials train on their own threads).
    pub(super) sweep: Option<Box<LocalSweep>>,
    /// Start or Resume sweep was asked of the io thread, which has not answered yet.
    pub(super) sweep_starting: bool,
    /// Stop sweep was clicked while it was starting: stop it as soon as its handle arrives.
    pub(super) sweep_stop_pending: bool,
    /// A ListRuns is with the io thread: the sweep's events ask for at most one more after it.
    pub(super) runs_listing: bool,
    /// The best trial's run folder and epochs whose curves were last asked for.
    pub(super) best_requested: Option<(PathBuf, usize)>,
    /// When a Slurm sweep's queue was last asked for.
    pub(super) last_slurm_poll: Option<Instant>,
    pub(super) default_threads: usize,
    pub(super) waker: Waker,
    /// How curves are drawn (smoothing, log y, x axis); kept between sessions.
    pub plot_settings: PlotSettings,
    pub theme: Theme,
    /// The keyboard help overlay is open.
    pub help_open: bool,
    /// The learning-rate window (schedule and finder).
    pub lr_window: LrWindow,
    /// The model's insides as the training thread reports them (Inside tab, evaluation area).
    pub inspect: InspectState,
    /// The costly views the training thread was last told to compute.
    pub(super) subscribed: Views,
    setup: SetupPanel,
    pub(super) trainer: Trainer,
    preview: PreviewLoader,
    pub(super) io: Io,
    pub(super) dialogs: Dialogs,
    pub(super) runs_dir: Option<PathBuf>,
    pub(super) last_runs_poll: Option<Instant>,
    start_pending: bool,
    quit_when_done: bool,
    frame_stats: FrameStats,
    /// How often step updates repaint the window while training.
    pub(super) live_refresh: Duration,
    /// The last memory check and the preset it was for: recomputed when the preset changes or
    /// the check is older than `MEMORY_CHECK_EVERY`, not every frame (it reads /proc/meminfo and
    /// an IDX folder's headers).
    memory_check: Option<(Preset, Instant, Result<Option<String>, String>)>,
}

const MEMORY_CHECK_EVERY: Duration = Duration::from_secs(10);

impl GradlabApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> Self {
        let ctx = cc.egui_ctx.clone();
        let waker: Waker = Arc::new(move || ctx.request_repaint());
        // Drawn by the CPU (Mesa's llvmpipe on a machine without a GPU), a frame costs a good
        // part of a core: the live view then refreshes once a second, leaving the CPU to training.
        let software_rendering = cc
            .wgpu_render_state
            .as_ref()
            .is_some_and(|rs| rs.adapter.get_info().device_type == eframe::wgpu::DeviceType::Cpu);
        let live_refresh = if software_rendering { SOFTWARE_REFRESH } else { crate::train::STEP_WAKE_INTERVAL };
        let trainer = Trainer::spawn(WorkerOptions {
            default_threads: options.default_threads,
            waker: Some(waker.clone()),
            runs_dir: options.runs_dir.clone(),
            step_wake_interval: live_refresh,
            sweep: None,
            until_epoch: None,
        });
        let io = Io::spawn(Some(waker.clone()));
        let default_threads = options.default_threads;
        io.send(IoRequest::ScanPresets(options.preset_dirs));
        let keep = options.keep_from_last_time;
        let mut app = Self {
            text_view: super::text_views::TextViewState::default(),
            preset: options.preset,
            run: LiveRun::default(),
            view: View::Experiments,
            notice: None,
            fork_from: None,
            runs: RunsPanel::default(),
            gallery: Gallery::default(),
            setup: SetupPanel::default(),
            trainer,
            preview: PreviewLoader::spawn(Some(waker.clone())),
            sweep_panel: SweepPanel::default(),
            sweep: None,
            sweep_starting: false,
            sweep_stop_pending: false,
            runs_listing: false,
            best_requested: None,
            last_slurm_poll: None,
            default_threads,
            waker,
            io,
            dialogs: options.dialogs,
            runs_dir: options.runs_dir,
            last_runs_poll: None,
            live_refresh,
            start_pending: options.start,
            quit_when_done: options.quit_when_done,
            frame_stats: FrameStats::from_env(),
            memory_check: None,
            plot_settings: PlotSettings::default(),
            theme: Theme::default(),
            help_open: false,
            lr_window: LrWindow::default(),
            inspect: InspectState::default(),
            subscribed: Views::NONE,
            overridden: Overridden::default(),
        };
        // tests have no storage: they never read or write the user's settings
        if let Some(saved) = cc.storage.and_then(|s| eframe::get_value::<Settings>(s, settings::APP_KEY)) {
            app.apply_settings(saved, keep, &cc.egui_ctx);
        }
        app
    }

    /// Tells the training thread which costly views are open: only the Inside tab's, while shown.
    fn subscribe(&mut self) {
        let wanted = if self.view == View::Inside { self.inspect.views_wanted() } else { Views::NONE };
        if wanted != self.subscribed && self.trainer.send(Command::Subscribe(wanted)) {
            self.subscribed = wanted;
        }
    }

    /// Whether Start would be enabled now (for Ctrl+Enter): nothing running, a valid preset.
    fn can_start(&mut self) -> bool {
        !self.run.phase.is_active()
            && !self.sweep_running()
            && self.preset.validate("setup").is_ok()
            && self.memory_check().is_ok()
    }

    /// The memory estimate of the current preset (its summary), or why it cannot run.
    fn memory_check(&mut self) -> &Result<Option<String>, String> {
        let fresh = self
            .memory_check
            .as_ref()
            .is_some_and(|(preset, at, _)| *preset == self.preset && at.elapsed() < MEMORY_CHECK_EVERY);
        if !fresh {
            let result = crate::budget::check(&self.preset, "setup")
                .map(|estimate| estimate.map(|e| e.summary()))
                .map_err(|e| e.to_string());
            self.memory_check = Some((self.preset.clone(), Instant::now(), result));
        }
        &self.memory_check.as_ref().expect("just set").2
    }

    /// Whether the data preview of the current preset has arrived.
    pub fn preview_ready(&self) -> bool {
        self.preview.info(&self.preset.data, self.preset.seed).is_some()
    }

    /// Whether the augmentation preview of the current preset is on screen.
    pub fn augment_preview_ready(&self) -> bool {
        self.preview.augmented.ready(&self.preset.data, self.preset.seed, &self.preset.augment)
    }

    pub fn dropped_steps(&self) -> u64 {
        self.trainer.dropped_steps()
    }

    pub(super) fn error(&mut self, message: impl Into<String>) {
        self.notice = Some(Notice::Error(message.into()));
    }

    pub(super) fn start(&mut self, origin: RunOrigin) {
        self.run = LiveRun::starting();
        self.view = View::Training;
        let command = Command::Start(Box::new(RunRequest { preset: self.preset.clone(), origin }));
        if !self.trainer.send(command) {
            self.error("The training thread is not answering; restart Gradlab.");
        }
    }

    fn act(&mut self, action: Action, ctx: &egui::Context) {
        let command = match action {
            Action::Start => {
                let origin = match self.fork_from.take() {
                    Some((checkpoint, _)) => RunOrigin::Fork(checkpoint),
                    None => RunOrigin::Fresh,
                };
                self.start(origin);
                return;
            }
            Action::Pause => Command::Pause,
            Action::Resume => Command::Resume,
            Action::Stop => Command::Stop,
            Action::SetLearningRate(lr) => Command::SetLearningRate(lr),
            Action::Generate { prompt, length, temperature } => Command::Generate { prompt, length, temperature },
            Action::Probe(text) => Command::Probe(text),
            Action::OpenLrWindow => {
                self.lr_window.open = true;
                return;
            }
            Action::FindLearningRate => Command::FindLearningRate(Box::new(LrFinderRequest::new(self.preset.clone()))),
            Action::Inspect(request) => Command::Inspect(request),
            Action::ShowTab(view) => {
                self.view = view;
                return;
            }
            other => {
                self.act_on_files(other, ctx);
                return;
            }
        };
        if !self.trainer.send(command) {
            self.error("The training thread is not answering; restart Gradlab.");
        }
    }

    fn poll_runs(&mut self, ctx: &egui::Context) {
        let Some(dir) = &self.runs_dir else { return };
        // one listing at a time: a sweep's burst of events asks for one more, not one each
        if !self.runs_listing
            && self.last_runs_poll.is_none_or(|t| t.elapsed() >= RUNS_POLL)
            && self.io.send(IoRequest::ListRuns(dir.clone()))
        {
            self.runs_listing = true;
            self.last_runs_poll = Some(Instant::now());
            // the sweeps' headers (names, plan sizes, Slurm jobs) ride on the same poll
            self.io.send(IoRequest::ListSweeps(dir.clone()));
        }
        if matches!(self.view, View::Runs | View::Sweep) {
            ctx.request_repaint_after(RUNS_POLL);
        }
    }
}

impl eframe::App for GradlabApp {
    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, settings::APP_KEY, &self.settings());
    }

    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.frame_stats.begin(ctx);
        if std::mem::take(&mut self.start_pending) {
            self.start(RunOrigin::Fresh);
        }
        if self.quit_when_done && matches!(self.run.phase, super::run_view::Phase::Finished(_)) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        let start = Instant::now();
        while start.elapsed() < DRAIN_BUDGET {
            let Some(event) = self.trainer.try_recv() else { break };
            let started = matches!(event, Event::Started { .. });
            match event {
                Event::Predictions(_) | Event::Inspected { .. } | Event::LayerStats(_) | Event::Boundary(_) => {
                    self.inspect.apply(event);
                }
                Event::Started { ref inside, .. } => {
                    self.inspect.run_started(inside.clone());
                    self.run.apply(event);
                }
                Event::LrFinder(progress) => {
                    self.lr_window.running = progress.done.is_none() && progress.error.is_none();
                    self.lr_window.progress = Some(*progress);
                }
                other => self.run.apply(other),
            }
            // a resumed run's earlier history may have been read before its start arrived
            if started {
                if let Some((_, data, _)) = self.run.run_dir.as_ref().and_then(|d| self.runs.loaded.get(d)) {
                    self.run.prepend_history(data);
                }
            }
        }
        if start.elapsed() >= DRAIN_BUDGET {
            // more events wait: come back soon rather than block this frame
            ctx.request_repaint();
        }
        self.drain_sweep(ctx, start);
        if self.sweep.is_some() {
            // the sweep's waker is rate-limited: this catches the events after its last wake
            ctx.request_repaint_after(self.live_refresh);
        }
        self.preview.poll(ctx);
        self.gallery.thumbnails.poll(ctx);
        self.take_io_replies();
        if matches!(self.view, View::Runs | View::Sweep) || self.runs.listed_once {
            self.poll_runs(ctx);
        }
        self.subscribe();
        if self.run.phase.is_active() {
            // the elapsed-time clock ticks even between events
            ctx.request_repaint_after(self.live_refresh.max(Duration::from_secs(1)));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let mut actions = Vec::new();
        let mut sweep_actions = Vec::new();
        let ctx = ui.ctx().clone();
        // first, so the keys reach no widget; they push the same actions as the buttons
        for wish in shortcuts::handle(&ctx) {
            match wish {
                Do::Start if self.can_start() => actions.push(Action::Start),
                Do::Start => {}
                Do::PauseResume => match self.run.phase {
                    Phase::Running => actions.push(Action::Pause),
                    Phase::Paused => actions.push(Action::Resume),
                    _ => {}
                },
                Do::Stop if self.run.phase.is_active() => actions.push(Action::Stop),
                Do::Stop => {}
                Do::OpenPreset => actions.push(Action::OpenPreset),
                Do::SavePreset => actions.push(Action::SavePreset),
                Do::Tab(view) => self.view = view,
                Do::Help => self.help_open = !self.help_open,
            }
        }
        egui::Panel::top("top_bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("Gradlab");
                ui.separator();
                for (view, title) in [
                    (View::Experiments, "Experiments"),
                    (View::Training, "Training"),
                    (View::Inside, "Inside"),
                    (View::Runs, "Runs"),
                ] {
                    // the sweep view is part of the Runs tab
                    let shown = self.view == view || (view == View::Runs && self.view == View::Sweep);
                    if ui.selectable_label(shown, title).clicked() {
                        self.view = view;
                    }
                }
                ui.separator();
                if ui.button("Open preset…").clicked() {
                    actions.push(Action::OpenPreset);
                }
                if ui.button("Save preset…").clicked() {
                    actions.push(Action::SavePreset);
                }
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.button("Keys (F1)").on_hover_text("Keyboard shortcuts").clicked() {
                        self.help_open = true;
                    }
                    let theme = format!("Theme: {}", self.theme.title());
                    if ui.button(theme).on_hover_text("System, dark or light").clicked() {
                        self.set_theme(self.theme.next(), &ctx);
                    }
                });
            });
        });
        egui::Panel::bottom("status_bar").show(ui, |ui| {
            status_bar::show(ui, &self.run, self.trainer.dropped_steps());
        });
        // The memory check only while idle: a running run takes the memory it would compare with.
        let checked = match self.preset.validate("setup") {
            Err(e) => Err(e.to_string()),
            Ok(()) if self.sweep_running() => {
                Err("A sweep is running; Start is back when it ends or is stopped.".into())
            }
            Ok(()) if self.run.phase.is_active() => Ok(None),
            Ok(()) => self.memory_check().clone(),
        };
        let (validation, memory) = match checked {
            Ok(summary) => (None, summary),
            Err(e) => (Some(e), None),
        };
        egui::Panel::left("setup_panel").resizable(true).default_size(350.0).show(ui, |ui| {
            ui.add_space(4.0);
            self.setup.run_controls(ui, self.run.phase, validation.as_deref(), memory.as_deref(), &mut actions);
            if let Some((_, label)) = &self.fork_from {
                ui.horizontal_wrapped(|ui| {
                    ui.label(egui::RichText::new(format!("Start forks from {label}")).strong());
                    if ui.small_button("Cancel fork").clicked() {
                        actions.push(Action::CancelFork);
                    }
                });
            }
            ui.separator();
            egui::ScrollArea::vertical().show(ui, |ui| {
                self.setup.ui(
                    ui,
                    &mut self.preset,
                    self.run.phase,
                    &mut self.preview,
                    &self.gallery.entries,
                    &mut actions,
                );
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            let mut dismiss = false;
            if let Some(notice) = &self.notice {
                ui.horizontal(|ui| {
                    match notice {
                        Notice::Info(m) => ui.label(m),
                        Notice::Error(m) => ui.colored_label(ui.visuals().error_fg_color, m),
                    };
                    dismiss = ui.small_button("Dismiss").clicked();
                });
                ui.separator();
            }
            if dismiss {
                self.notice = None;
            }
            match self.view {
                View::Experiments => {
                    let can_start = !self.run.phase.is_active() && validation.is_none();
                    self.gallery.ui(ui, &self.preset, can_start, &mut actions);
                }
                View::Training => {
                    self.run.set_smoothing(self.plot_settings.smoothing);
                    live_view::show(
                        ui,
                        &self.run,
                        &mut self.text_view,
                        &mut self.plot_settings,
                        &mut self.inspect,
                        &mut actions,
                    );
                }
                View::Inside => super::inside_view::show(ui, &self.run, &mut self.inspect, &mut actions),
                View::Runs | View::Sweep => {
                    ui.horizontal(|ui| {
                        ui.selectable_value(&mut self.view, View::Runs, "All runs");
                        ui.selectable_value(&mut self.view, View::Sweep, "Sweep");
                    });
                    ui.separator();
                    if self.view == View::Runs {
                        // a sweep's trials hold the compute threads: no single run beside them
                        let busy = self.run.phase.is_active() || self.sweep_running();
                        self.runs.plot_settings = self.plot_settings;
                        self.runs.ui(ui, self.runs_dir.as_deref(), busy, &mut actions);
                        self.plot_settings = self.runs.plot_settings;
                    } else {
                        let rows = self.sweep_panel.rows(&self.runs.runs);
                        let best = self.sweep_panel.best(&rows);
                        let best_dir = rows.iter().find(|r| Some(r.index) == best).and_then(|r| r.run_dir.clone());
                        let running = self.sweep_running();
                        let can_start = !running && !self.run.phase.is_active();
                        let max_parallel = self.default_threads;
                        let shown = Shown { rows: &rows, loaded: &self.runs.loaded, running, can_start, max_parallel };
                        self.sweep_panel.ui(ui, &shown, &mut sweep_actions);
                        self.load_best_trial(best_dir);
                        self.poll_slurm();
                    }
                }
            }
        });
        if self.lr_window.open {
            let idle = !self.run.phase.is_active() && !self.sweep_running();
            lr_view::show(&ctx, &mut self.lr_window, &mut self.preset, idle, &mut actions);
        }
        if self.help_open {
            self.help_open = shortcuts::help(&ctx);
        }
        for action in actions {
            self.act(action, &ctx);
        }
        for action in sweep_actions {
            self.act_on_sweep(action);
        }
        if matches!(self.view, View::Runs | View::Sweep) && !self.runs.listed_once {
            self.poll_runs(&ctx);
        }
        self.frame_stats.end();
    }
}
