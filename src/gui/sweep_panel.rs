//! The Sweep view: open a sweep file, start, stop and resume it locally, and watch its trials
//! (a live table, parallel coordinates of the varied values against the result, and the best
//! trial's curves). The trials are ordinary runs: the table joins the plan with the sweep's
//! events and with the runs the io thread lists (tagged with the sweep's id), so a sweep opened
//! from its folder, or run by the CLI or on Slurm, shows the same rows.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use egui::Ui;

use super::compare::{self, CompareMetric};
use crate::record::{RunData, RunInfo};
use crate::sweep::{Metric, Mode, Plan, SweepEvent, SweepState, SweepStatus};
use crate::train::RunStatus;

/// What the panel asks the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepAction {
    Open,
    Start,
    Stop,
    Resume,
    /// `sweep cancel` of a Slurm sweep (its jobs scancelled; started trials stay resumable).
    CancelSlurm,
    /// Select this trial's run and show it in the runs view.
    OpenTrial(PathBuf),
}

/// A sweep read from a file (or a sweep folder's sweep.toml) by the io thread.
pub struct OpenedSweep {
    pub file: PathBuf,
    pub plan: Plan,
    /// The sweep folder, when opened from one (its state too) or once started.
    pub dir: Option<PathBuf>,
    pub state: Option<SweepState>,
    /// Each trial's metric as the folder's summary.json last said (absent until a driver ends).
    pub metrics: BTreeMap<usize, f64>,
}

/// What the events said about one trial.
#[derive(Debug, Clone, Default)]
struct Live {
    run_dir: Option<PathBuf>,
    status: Option<RunStatus>,
    rung: usize,
    epoch: usize,
    epochs: usize,
    best_accuracy: Option<f64>,
    best_loss: Option<f64>,
    error: Option<String>,
}

/// What the app hands the panel each frame.
pub struct Shown<'a> {
    pub rows: &'a [TrialRow],
    /// Runs whose curves the io thread has read (the best trial's among them, when asked).
    pub loaded: &'a HashMap<PathBuf, (usize, RunData, super::compare::RunCurves)>,
    /// A local sweep is starting or running.
    pub running: bool,
    /// Neither a sweep nor a single run is under way.
    pub can_start: bool,
    pub max_parallel: usize,
}

/// One row of the trial table.
#[derive(Debug, Clone)]
pub struct TrialRow {
    pub index: usize,
    /// The varied values, in the plan's key order.
    pub values: Vec<toml::Value>,
    pub status: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// "rung r/R · e/E" (halving) or "e/E".
    pub progress: String,
    pub best_accuracy: Option<f64>,
    /// The sweep's metric so far (accuracy or loss).
    pub result: Option<f64>,
    pub slurm_job: Option<String>,
    pub run_dir: Option<PathBuf>,
}

pub struct SweepPanel {
    pub opened: Option<OpenedSweep>,
    /// Trials at once for Start.
    pub parallel: usize,
    /// The sweep's state as the events left it.
    pub status: Option<SweepStatus>,
    live: BTreeMap<usize, Live>,
    /// Trial → the rung halving stopped it at.
    pruned: BTreeMap<usize, usize>,
    curve: CompareMetric,
    /// A Slurm sweep's trials as its folder and the queue last said (status title, job), from
    /// the io thread: `queued (Resources)`, `lost (see …)`, `cancelled` are not in the runs.
    slurm: BTreeMap<usize, (String, Option<String>)>,
    /// Each trial's metric from summary.json: the result where no event gave one (a sweep
    /// opened from its folder, or one ranked by loss, which the run records do not hold).
    metrics: BTreeMap<usize, f64>,
}

impl Default for SweepPanel {
    fn default() -> Self {
        Self {
            opened: None,
            parallel: 1,
            status: None,
            live: BTreeMap::new(),
            pruned: BTreeMap::new(),
            slurm: BTreeMap::new(),
            metrics: BTreeMap::new(),
            curve: CompareMetric::ValidationAccuracy,
        }
    }
}

impl SweepPanel {
    /// A newly read sweep replaces the shown one (and what its events said).
    pub fn set_opened(&mut self, mut opened: OpenedSweep) {
        self.status = opened.state.as_ref().map(|s| s.status);
        self.pruned = opened.state.as_ref().map(|s| s.pruned.clone()).unwrap_or_default();
        self.live.clear();
        self.slurm.clear();
        self.metrics = std::mem::take(&mut opened.metrics);
        self.opened = Some(opened);
    }

    /// The shown sweep's id (its folder's name), once it has a folder.
    pub fn id(&self) -> Option<String> {
        let dir = self.opened.as_ref()?.dir.as_ref()?;
        dir.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    /// The shown sweep's folder when it runs on Slurm and may still change, or has not been
    /// read yet (its queue is worth asking).
    pub fn slurm_watch(&self) -> Option<PathBuf> {
        let opened = self.opened.as_ref()?;
        let on_slurm = opened.state.as_ref().is_some_and(|s| s.mode == Mode::Slurm);
        let settled =
            matches!(self.status, Some(SweepStatus::Completed | SweepStatus::Cancelled | SweepStatus::Failed));
        // a settled sweep is read once, for what its folder says of trials without a run
        (on_slurm && (!settled || self.slurm.is_empty())).then(|| opened.dir.clone()).flatten()
    }

    /// A Slurm sweep's status joined with its queue (`sweep::status::join`), for the shown sweep.
    pub fn set_slurm_status(&mut self, dir: &Path, status: SweepStatus, rows: &[crate::sweep::status::TrialRow]) {
        if self.opened.as_ref().and_then(|o| o.dir.as_deref()) != Some(dir) {
            return;
        }
        self.status = Some(status);
        self.slurm = rows.iter().map(|r| (r.index, (r.state.title(), r.slurm_job.clone()))).collect();
    }

    /// The shown sweep's per-trial metrics from its summary.json, as the Sweeps poll read them.
    pub fn set_metrics(&mut self, id: &str, metrics: &BTreeMap<usize, f64>) {
        if self.id().as_deref() == Some(id) {
            self.metrics.clone_from(metrics);
        }
    }

    /// Takes one event of the running sweep; returns an error message for the user, if any.
    pub fn apply(&mut self, event: SweepEvent) -> Option<String> {
        match event {
            SweepEvent::Started { dir, .. } => {
                if let Some(o) = &mut self.opened {
                    // a new folder is a new sweep (Start after a finished or stopped one, or
                    // on a Slurm folder's plan): nothing of the old one's trials carries over
                    if o.dir.as_ref() != Some(&dir) {
                        o.state = None;
                        self.live.clear();
                        self.pruned.clear();
                        self.slurm.clear();
                        self.metrics.clear();
                    }
                    o.dir = Some(dir);
                }
                self.status = Some(SweepStatus::Running);
            }
            SweepEvent::TrialStarted { trial, rung, run_dir, .. } => {
                let live = self.live.entry(trial).or_default();
                live.rung = rung;
                live.status = Some(RunStatus::Running);
                live.run_dir = run_dir.or(live.run_dir.take());
                live.error = None;
            }
            SweepEvent::TrialEpoch { trial, epoch, epochs, validation_loss, validation_accuracy } => {
                let live = self.live.entry(trial).or_default();
                live.epoch = epoch;
                live.epochs = epochs;
                if validation_accuracy.is_finite() {
                    live.best_accuracy =
                        Some(live.best_accuracy.map_or(validation_accuracy, |b| b.max(validation_accuracy)));
                }
                if validation_loss.is_finite() {
                    live.best_loss = Some(live.best_loss.map_or(validation_loss, |b| b.min(validation_loss)));
                }
            }
            SweepEvent::TrialEnded { trial, status, run_dir, error } => {
                let live = self.live.entry(trial).or_default();
                live.status = Some(status);
                live.run_dir = run_dir.or(live.run_dir.take());
                live.error = error;
            }
            SweepEvent::RungEnded { rung, pruned, .. } => {
                for t in pruned {
                    self.pruned.insert(t, rung);
                }
            }
            SweepEvent::Finished(summary) => {
                self.status = Some(summary.status);
                for t in &summary.trials {
                    if let Some(r) = t.pruned_at {
                        self.pruned.insert(t.index, r);
                    }
                    if let Some(m) = t.metric.filter(|m| m.is_finite()) {
                        self.metrics.insert(t.index, m);
                    }
                }
            }
            SweepEvent::Failed(message) => {
                self.status = Some(SweepStatus::Failed);
                return Some(format!("The sweep stopped: {message}"));
            }
        }
        None
    }

    /// The table's rows: the plan's trials, each with what its events said, else its listed run.
    pub fn rows(&self, runs: &[(PathBuf, RunInfo)]) -> Vec<TrialRow> {
        let Some(opened) = &self.opened else { return vec![] };
        let plan = &opened.plan;
        let id = self.id();
        let listed: HashMap<usize, &(PathBuf, RunInfo)> = runs
            .iter()
            .filter_map(|run| {
                let tag = run.1.sweep.as_ref()?;
                (Some(&tag.sweep) == id.as_ref()).then_some((tag.trial, run))
            })
            .collect();
        let rung_epochs = plan.rungs.as_ref().map(|r| r.epochs.clone());
        plan.trials
            .iter()
            .map(|trial| {
                let live = self.live.get(&trial.index);
                let run = listed.get(&trial.index);
                let info = run.map(|(_, i)| i);
                let status = live.and_then(|l| l.status).or(info.map(|i| i.status));
                let epochs_planned = info
                    .map(|i| i.epochs_planned)
                    .or(live.map(|l| l.epochs).filter(|e| *e > 0))
                    .unwrap_or(trial.preset.train.epochs);
                let epoch = info.map_or(0, |i| i.epochs_completed).max(live.map_or(0, |l| l.epoch));
                let slurm = self.slurm.get(&trial.index);
                let status_text = match (self.pruned.get(&trial.index), status) {
                    // the queue knows what the run folders cannot: waiting, lost, cancelled
                    _ if slurm.is_some() => slurm.map_or_else(String::new, |(title, _)| title.clone()),
                    (Some(r), Some(RunStatus::Stopped)) => format!("pruned at rung {}", r + 1),
                    (_, Some(s)) => s.title().to_string(),
                    (_, None) => "pending".into(),
                };
                let progress = match &rung_epochs {
                    Some(e) => {
                        let rung = e.iter().position(|&stop| epoch <= stop).unwrap_or(e.len() - 1);
                        let rung = rung.max(live.map_or(0, |l| l.rung));
                        format!("rung {}/{} · {epoch}/{epochs_planned}", rung + 1, e.len())
                    }
                    None => format!("{epoch}/{epochs_planned}"),
                };
                let best_accuracy = info
                    .and_then(|i| i.best_validation_accuracy)
                    .into_iter()
                    .chain(live.and_then(|l| l.best_accuracy))
                    .reduce(f64::max);
                let result = match plan.metric() {
                    Metric::ValidationAccuracy => best_accuracy,
                    Metric::ValidationLoss => live.and_then(|l| l.best_loss),
                }
                .or_else(|| self.metrics.get(&trial.index).copied());
                TrialRow {
                    index: trial.index,
                    values: plan.varied_keys().iter().filter_map(|k| trial.values.get(k).cloned()).collect(),
                    status: status_text,
                    error: live.and_then(|l| l.error.clone()).or_else(|| info.and_then(|i| i.error.clone())),
                    progress,
                    best_accuracy,
                    result,
                    slurm_job: info
                        .and_then(|i| i.sweep.as_ref()?.slurm_job.clone())
                        .or_else(|| slurm.and_then(|(_, job)| job.clone())),
                    run_dir: run.map(|(d, _)| d.clone()).or_else(|| live.and_then(|l| l.run_dir.clone())),
                }
            })
            .collect()
    }

    /// The best trial so far by the sweep's metric (ties to the lower index).
    pub fn best(&self, rows: &[TrialRow]) -> Option<usize> {
        let metric = self.opened.as_ref()?.plan.metric();
        let mut best: Option<(usize, f64)> = None;
        for row in rows {
            if let Some(r) = row.result {
                if best.is_none_or(|(_, b)| metric.better(r, b)) {
                    best = Some((row.index, r));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    pub fn ui(&mut self, ui: &mut Ui, shown: &Shown<'_>, actions: &mut Vec<SweepAction>) {
        let Shown { rows, loaded, running, can_start, max_parallel } = *shown;
        let best_index = self.best(rows);
        let Self { opened, parallel, status, curve, .. } = self;
        ui.horizontal(|ui| {
            if ui.add_enabled(!running, egui::Button::new("Open sweep…")).clicked() {
                actions.push(SweepAction::Open);
            }
            let has_plan = opened.is_some();
            ui.separator();
            let l = ui.label("Parallel trials");
            ui.add_enabled(!running, egui::Slider::new(parallel, 1..=max_parallel.max(1)))
                .labelled_by(l.id)
                .on_hover_text("Trials trained at once; they share the compute threads");
            if ui.add_enabled(has_plan && can_start, egui::Button::new("Start sweep")).clicked() {
                actions.push(SweepAction::Start);
            }
            if ui.add_enabled(running, egui::Button::new("Stop sweep")).clicked() {
                actions.push(SweepAction::Stop);
            }
            let on_slurm = opened.as_ref().and_then(|o| o.state.as_ref()).is_some_and(|s| s.mode == Mode::Slurm);
            let resumable = opened.as_ref().is_some_and(|o| o.dir.is_some())
                && !matches!(status, Some(SweepStatus::Completed | SweepStatus::Running));
            let resume = ui.add_enabled(resumable && can_start && !on_slurm, egui::Button::new("Resume sweep"));
            let resume = if on_slurm {
                resume.on_disabled_hover_text("A Slurm sweep resumes on the cluster: gradlab sweep resume DIR --slurm")
            } else {
                resume.on_hover_text("Finished trials stay; stopped ones continue from their checkpoints")
            };
            if resume.clicked() {
                actions.push(SweepAction::Resume);
            }
            if on_slurm {
                let cancellable = !matches!(status, Some(SweepStatus::Completed | SweepStatus::Cancelled));
                if ui
                    .add_enabled(cancellable, egui::Button::new("Cancel on Slurm"))
                    .on_hover_text("scancel its jobs; started trials stay resumable runs")
                    .clicked()
                {
                    actions.push(SweepAction::CancelSlurm);
                }
            }
        });
        let Some(opened) = opened.as_ref() else {
            ui.add_space(8.0);
            ui.label("Open a sweep file (a preset plus the values to vary, see sweeps/) to train its trials here.");
            return;
        };
        let plan = &opened.plan;
        let completed = rows.iter().filter(|r| r.status == "completed").count();
        // a pruned trial is settled too: a finished halving sweep is all done
        let pruned = rows.iter().filter(|r| r.status.starts_with("pruned")).count();
        let done = if pruned > 0 {
            format!("{}/{} done ({completed} completed, {pruned} pruned)", completed + pruned, rows.len())
        } else {
            format!("{completed}/{} done", rows.len())
        };
        let mode = match (&plan.rungs, &plan.spec.random) {
            (Some(r), _) => format!("successive halving over {} rungs (epochs {:?})", r.epochs.len(), r.epochs),
            (None, Some(_)) => "random sample".into(),
            (None, None) => "grid".into(),
        };
        ui.horizontal_wrapped(|ui| {
            ui.strong(&plan.spec.name);
            ui.label(format!(
                "· {} trials, {mode}, ranked by {} · {done} · {}",
                rows.len(),
                plan.metric().key().replace('_', " "),
                status.map_or("not started", |s| s.title())
            ));
        })
        .response
        .on_hover_text(opened.file.display().to_string());
        ui.separator();
        let keys = plan.varied_keys();
        let loss = plan.metric() == Metric::ValidationLoss;
        super::sweep_table::trial_table(ui, &keys, rows, loss, actions);
        ui.separator();
        if let Some(i) = super::sweep_table::chart(ui, plan, rows) {
            if let Some(dir) = rows.get(i).and_then(|r| r.run_dir.clone()) {
                actions.push(SweepAction::OpenTrial(dir));
            }
        }
        let best = best_index.and_then(|i| rows.iter().find(|r| r.index == i));
        let best_run = best
            .and_then(|r| r.run_dir.as_ref())
            .and_then(|d| loaded.get(d).map(|(_, data, curves)| (d, data, curves)));
        if let (Some(row), Some((dir, data, curves))) = (best, best_run) {
            ui.horizontal(|ui| {
                ui.strong(format!("Best trial: #{} ({})", row.index, data.info.name));
                let l = ui.label("Curve");
                egui::ComboBox::from_id_salt("sweep_best_metric")
                    .selected_text(curve.title())
                    .show_ui(ui, |ui| {
                        for m in CompareMetric::ALL {
                            ui.selectable_value(curve, m, m.title());
                        }
                    })
                    .response
                    .labelled_by(l.id);
            });
            let height = ui.available_height().clamp(120.0, 300.0);
            compare::plot(
                ui,
                "sweep_best_plot",
                &[(dir, data, curves)],
                std::slice::from_ref(&data.info.name),
                *curve,
                height,
            );
        }
    }
}

/// The sweep folder a file belongs to: a sweep folder's own `sweep.toml` (next to plan.json).
pub fn sweep_folder_of(file: &Path) -> Option<PathBuf> {
    let dir = file.parent()?;
    (file.file_name()? == "sweep.toml" && dir.join("plan.json").is_file()).then(|| dir.to_path_buf())
}
