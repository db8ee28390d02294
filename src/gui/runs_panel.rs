//! Past runs: a sortable table (name, data, model, status, best validation accuracy, epochs,
//! duration) with rename, delete, resume, fork and export; the selected runs are compared below.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use egui::{RichText, Ui};

use super::compare;
use super::setup_panel::Action;
use crate::export::{ExportFormat, Which};
use crate::record::{RunData, RunInfo};
use crate::sweep::SweepStatus;
use crate::train::RunStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    Started,
    Name,
    Data,
    Model,
    Status,
    Best,
    Epochs,
    Duration,
}

/// What the runs list shows above a sweep's trials, read from its folder by the io thread.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepHeader {
    /// The folder name under `<runs>/sweeps/`, as in each trial's `SweepTag`.
    pub id: String,
    pub name: String,
    /// Trials in its plan.
    pub trials: usize,
    /// Slurm array and advance job ids (none for a local sweep).
    pub jobs: Vec<String>,
    /// As its state.json says (`None` when it cannot be read).
    pub status: Option<SweepStatus>,
    /// Each trial's metric from its summary.json (empty until a driver wrote one).
    pub metrics: std::collections::BTreeMap<usize, f64>,
}

#[derive(Default)]
pub struct RunsPanel {
    pub runs: Vec<(PathBuf, RunInfo)>,
    pub listed_once: bool,
    sort: Option<(SortKey, bool)>,
    pub selected: BTreeSet<PathBuf>,
    /// Curves of selected runs, loaded by the io thread, with the epoch count they were read at
    /// and their per-step curves and markers (built once, when the data arrive).
    pub loaded: HashMap<PathBuf, (usize, RunData, compare::RunCurves)>,
    renaming: Option<(PathBuf, String)>,
    confirm_delete: Option<PathBuf>,
    pub(super) compare_metric: compare::CompareMetric,
    /// The app's curve settings, lent for the frame (compare draws with them).
    pub(super) plot_settings: super::curve_plot::PlotSettings,
    only_differences: bool,
    /// What "Export model" writes (here and in the live view).
    pub export_format: ExportFormat,
    /// The sweeps in the runs folder (name, plan size, Slurm jobs), listed by the io thread.
    pub sweeps: Vec<SweepHeader>,
}

/// A sweep's name from its trials' titles ("<name> #003"), else from its id
/// ("<time>_<slug>").
fn sweep_name(id: &str, runs: &[&(PathBuf, RunInfo)]) -> String {
    runs.first()
        .and_then(|(_, i)| i.title.rsplit_once(" #").map(|(name, _)| name.to_string()))
        .unwrap_or_else(|| id.split_once('_').map_or(id, |(_, slug)| slug).to_string())
}

fn duration(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl RunsPanel {
    /// Selected runs whose curves are missing or stale (more epochs on disk than loaded).
    pub fn stale_selection(&self) -> Vec<PathBuf> {
        self.runs
            .iter()
            .filter(|(dir, _)| self.selected.contains(dir))
            .filter(|(dir, info)| {
                self.loaded
                    .get(dir)
                    .is_none_or(|(n, ..)| *n != info.epochs_completed || info.status == RunStatus::Running)
            })
            .map(|(dir, _)| dir.clone())
            .collect()
    }

    pub fn set_runs(&mut self, runs: Vec<(PathBuf, RunInfo)>) {
        self.selected.retain(|d| runs.iter().any(|(r, _)| r == d));
        self.loaded.retain(|d, _| runs.iter().any(|(r, _)| r == d));
        self.runs = runs;
        self.listed_once = true;
    }

    pub fn set_loaded(&mut self, dir: PathBuf, data: RunData) {
        let curves = compare::RunCurves::new(&data, self.plot_settings.smoothing);
        self.loaded.insert(dir, (data.info.epochs_completed, data, curves));
    }

    fn sorted(&self) -> Vec<&(PathBuf, RunInfo)> {
        let mut rows: Vec<&(PathBuf, RunInfo)> = self.runs.iter().collect();
        if let Some((key, ascending)) = self.sort {
            rows.sort_by(|a, b| {
                let (a, b) = (&a.1, &b.1);
                let ord = match key {
                    SortKey::Started => a.started_at.cmp(&b.started_at),
                    SortKey::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                    SortKey::Data => a.data.cmp(&b.data),
                    SortKey::Model => a.model.cmp(&b.model),
                    SortKey::Status => a.status.title().cmp(b.status.title()),
                    SortKey::Best => a
                        .best_validation_accuracy
                        .partial_cmp(&b.best_validation_accuracy)
                        .unwrap_or(std::cmp::Ordering::Equal),
                    SortKey::Epochs => a.epochs_completed.cmp(&b.epochs_completed),
                    SortKey::Duration => a.wall_time_s.total_cmp(&b.wall_time_s),
                };
                if ascending {
                    ord
                } else {
                    ord.reverse()
                }
            });
        }
        rows
    }

    /// One table of runs (the main one, or a sweep's), with a Slurm job column when asked.
    fn table(
        &mut self,
        ui: &mut Ui,
        id: &str,
        rows: &[&(PathBuf, RunInfo)],
        with_jobs: bool,
        busy: bool,
        actions: &mut Vec<Action>,
    ) {
        egui::Grid::new(id).striped(true).num_columns(10 + usize::from(with_jobs)).show(ui, |ui| {
            ui.label("");
            self.header(ui, "Name", SortKey::Name);
            self.header(ui, "Data", SortKey::Data);
            self.header(ui, "Model", SortKey::Model);
            self.header(ui, "Status", SortKey::Status);
            self.header(ui, "Best val acc", SortKey::Best);
            self.header(ui, "Epochs", SortKey::Epochs);
            self.header(ui, "Duration", SortKey::Duration);
            self.header(ui, "Started", SortKey::Started);
            if with_jobs {
                ui.strong("Slurm job");
            }
            ui.label("");
            ui.end_row();
            for (dir, info) in rows {
                self.row(ui, dir, info, with_jobs, busy, actions);
                ui.end_row();
            }
        });
    }

    /// "Sweep <name> · 5/8 done · jobs 1234, 1240": the name, plan size and jobs from the sweep's
    /// overview when the io thread has read it, else from the trials' own records.
    fn sweep_title(&self, id: &str, runs: &[&(PathBuf, RunInfo)]) -> String {
        let done = runs.iter().filter(|(_, i)| i.status == RunStatus::Completed).count();
        let overview = self.sweeps.iter().find(|o| o.id == id);
        let name = overview.map_or_else(|| sweep_name(id, runs), |o| o.name.clone());
        let total = overview.map_or(runs.len(), |o| o.trials.max(runs.len()));
        let mut jobs: Vec<String> = match overview {
            Some(o) => o.jobs.clone(),
            None => runs
                .iter()
                .filter_map(|(_, i)| i.sweep.as_ref()?.slurm_job.as_ref())
                .map(|j| j.split('_').next().unwrap_or(j).to_string())
                .collect(),
        };
        jobs.sort();
        jobs.dedup();
        let jobs = if jobs.is_empty() { String::new() } else { format!(" · jobs {}", jobs.join(", ")) };
        format!("Sweep {name} · {done}/{total} done{jobs}")
    }

    fn header(&mut self, ui: &mut Ui, title: &str, key: SortKey) {
        let arrow = match self.sort {
            Some((k, true)) if k == key => " ^",
            Some((k, false)) if k == key => " v",
            _ => "",
        };
        if ui.button(RichText::new(format!("{title}{arrow}")).strong()).on_hover_text("Sort").clicked() {
            self.sort = match self.sort {
                Some((k, asc)) if k == key => Some((key, !asc)),
                _ => {
                    Some((key, !matches!(key, SortKey::Best | SortKey::Started | SortKey::Epochs | SortKey::Duration)))
                }
            };
        }
    }

    pub fn ui(&mut self, ui: &mut Ui, runs_dir: Option<&std::path::Path>, busy: bool, actions: &mut Vec<Action>) {
        let Some(runs_dir) = runs_dir else {
            ui.horizontal(|ui| {
                ui.label("This session records no runs.");
                if ui.button("Change…").on_hover_text("Pick a folder to record runs in").clicked() {
                    actions.push(Action::ChangeRunsDir);
                }
            });
            return;
        };
        ui.horizontal(|ui| {
            ui.label(format!(
                "{} runs in {} (newest first; runs from `gradlab train` appear here too)",
                self.runs.len(),
                runs_dir.display()
            ));
            if ui
                .add_enabled(!busy, egui::Button::new("Change…"))
                .on_hover_text("Record and list runs in another folder (kept for next time)")
                .clicked()
            {
                actions.push(Action::ChangeRunsDir);
            }
            if ui.button("Refresh").clicked() {
                actions.push(Action::RefreshRuns);
            }
        });
        // a line of its own: beside a long folder name it would run off the window
        ui.horizontal(|ui| {
            // outside the Actions menu: a click inside a menu closes it
            ui.label("Export models as")
                .on_hover_text("safetensors: weights + config.json, what `gradlab eval` and PyTorch read; ONNX: model.onnx for ONNX Runtime and other tools");
            for f in ExportFormat::ALL {
                ui.radio_value(&mut self.export_format, f, f.title());
            }
        });
        if !self.listed_once {
            ui.spinner();
            return;
        }
        if self.runs.is_empty() {
            ui.label("No runs yet: start one, or train from the command line with `gradlab train <preset>`.");
            return;
        }
        let rows: Vec<(PathBuf, RunInfo)> = self.sorted().into_iter().cloned().collect();
        // a sweep's trials go under one header per sweep, newest sweep first (ids start with
        // their time); other runs stay in the main table
        let (single, tagged): (Vec<_>, Vec<_>) = rows.iter().partition(|(_, info)| info.sweep.is_none());
        let mut sweeps: Vec<(String, Vec<&(PathBuf, RunInfo)>)> = Vec::new();
        for row in tagged {
            let id = row.1.sweep.as_ref().map_or_else(String::new, |t| t.sweep.clone());
            match sweeps.iter_mut().find(|(s, _)| *s == id) {
                Some((_, runs)) => runs.push(row),
                None => sweeps.push((id, vec![row])),
            }
        }
        sweeps.sort_by(|a, b| b.0.cmp(&a.0));
        egui::ScrollArea::vertical().id_salt("runs_table").max_height(ui.available_height() * 0.45).show(ui, |ui| {
            if !single.is_empty() {
                self.table(ui, "runs_grid", &single, false, busy, actions);
            }
            for (id, runs) in &sweeps {
                let title = self.sweep_title(id, runs);
                let with_jobs = runs.iter().any(|(_, i)| i.sweep.as_ref().is_some_and(|t| t.slurm_job.is_some()));
                egui::CollapsingHeader::new(title).id_salt(("sweep_group", id)).default_open(true).show(ui, |ui| {
                    self.table(ui, &format!("sweep_grid_{id}"), runs, with_jobs, busy, actions);
                });
            }
        });
        self.confirm_delete_modal(ui, actions);
        ui.separator();
        let smoothing = self.plot_settings.smoothing;
        for (_, _, curves) in self.loaded.values_mut() {
            curves.set_smoothing(smoothing);
        }
        let selected: Vec<(&PathBuf, &RunData, &compare::RunCurves)> = rows
            .iter()
            .filter(|(d, _)| self.selected.contains(d))
            .filter_map(|(d, _)| self.loaded.get(d).map(|(_, data, curves)| (d, data, curves)))
            .collect();
        if selected.is_empty() {
            ui.label("Tick runs to compare their curves and hyper-parameters.");
        } else {
            compare::show(
                ui,
                &selected,
                &mut self.compare_metric,
                &mut self.plot_settings,
                &mut self.only_differences,
                actions,
            );
        }
    }

    fn row(
        &mut self,
        ui: &mut Ui,
        dir: &PathBuf,
        info: &RunInfo,
        with_job: bool,
        busy: bool,
        actions: &mut Vec<Action>,
    ) {
        let mut ticked = self.selected.contains(dir);
        if ui.checkbox(&mut ticked, "").on_hover_text("Compare").changed() {
            if ticked {
                self.selected.insert(dir.clone());
            } else {
                self.selected.remove(dir);
            }
        }
        match &mut self.renaming {
            Some((d, text)) if d == dir => {
                let r = ui
                    .horizontal(|ui| {
                        let l = ui.label("New name");
                        ui.add(egui::TextEdit::singleline(text).desired_width(140.0)).labelled_by(l.id)
                    })
                    .inner;
                if r.lost_focus() {
                    if ui.input(|i| i.key_pressed(egui::Key::Enter)) && !text.trim().is_empty() {
                        actions.push(Action::RenameRun(dir.clone(), text.trim().to_string()));
                    }
                    self.renaming = None;
                } else {
                    r.request_focus();
                }
            }
            _ => {
                ui.label(&info.name).on_hover_text(dir.display().to_string());
            }
        }
        ui.label(&info.data);
        ui.label(&info.model);
        let status = RichText::new(info.status.title());
        ui.label(match info.status {
            RunStatus::Failed | RunStatus::Interrupted => status.color(ui.visuals().warn_fg_color),
            _ => status,
        })
        .on_hover_text(info.error.clone().unwrap_or_default());
        ui.label(info.best_validation_accuracy.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)));
        ui.label(format!("{}/{}", info.epochs_completed, info.epochs_planned));
        ui.label(duration(info.wall_time_s));
        // `2026-11-26T20-26-05` shown as `11-26 20:26`
        let started = match (info.started_at.get(5..10), info.started_at.get(11..16)) {
            (Some(day), Some(time)) => format!("{day} {}", time.replace('-', ":")),
            _ => info.started_at.clone(),
        };
        ui.label(started).on_hover_text(&info.started_at);
        if with_job {
            ui.label(info.sweep.as_ref().and_then(|t| t.slurm_job.clone()).unwrap_or_else(|| "-".into()));
        }
        ui.menu_button("Actions", |ui| {
            if ui.button("Rename").clicked() {
                self.renaming = Some((dir.clone(), info.name.clone()));
                ui.close();
            }
            let resumable = matches!(info.status, RunStatus::Stopped | RunStatus::Interrupted | RunStatus::Failed)
                && info.epochs_completed < info.epochs_planned;
            if ui
                .add_enabled(resumable && !busy, egui::Button::new("Resume run"))
                .on_hover_text("Continue from the last checkpoint, in this run's folder")
                .clicked()
            {
                actions.push(Action::ResumeRun(dir.clone()));
            }
            let has_checkpoint = info.epochs_completed > 0;
            ui.separator();
            if ui.add_enabled(has_checkpoint && !busy, egui::Button::new("Fork from the best epoch")).clicked() {
                actions.push(Action::Fork(dir.clone(), Which::Best));
            }
            if ui.add_enabled(has_checkpoint && !busy, egui::Button::new("Fork from the last epoch")).clicked() {
                actions.push(Action::Fork(dir.clone(), Which::Last));
            }
            ui.separator();
            if ui.add_enabled(has_checkpoint, egui::Button::new("Export model of the best epoch…")).clicked() {
                actions.push(Action::ExportModel(dir.clone(), Which::Best));
            }
            if ui.add_enabled(has_checkpoint, egui::Button::new("Export model of the last epoch…")).clicked() {
                actions.push(Action::ExportModel(dir.clone(), Which::Last));
            }
            if ui.button("Export metrics as CSV…").clicked() {
                actions.push(Action::ExportMetrics(dir.clone()));
            }
            ui.separator();
            let running_here = info.status == RunStatus::Running;
            if ui.add_enabled(!running_here, egui::Button::new("Delete…")).clicked() {
                self.confirm_delete = Some(dir.clone());
            }
        });
    }

    fn confirm_delete_modal(&mut self, ui: &mut Ui, actions: &mut Vec<Action>) {
        let Some(dir) = self.confirm_delete.clone() else { return };
        let name = self.runs.iter().find(|(d, _)| *d == dir).map_or_else(String::new, |(_, i)| i.name.clone());
        let modal = egui::Modal::new(ui.make_persistent_id("confirm_delete")).show(ui.ctx(), |ui| {
            ui.heading("Delete this run?");
            ui.label(format!("“{name}” and its folder {} (metrics, checkpoints) will be removed.", dir.display()));
            ui.horizontal(|ui| {
                if ui.button("Delete run").clicked() {
                    actions.push(Action::DeleteRun(dir.clone()));
                    self.confirm_delete = None;
                }
                if ui.button("Cancel").clicked() {
                    self.confirm_delete = None;
                }
            });
        });
        if modal.should_close() {
            self.confirm_delete = None;
        }
    }
}
