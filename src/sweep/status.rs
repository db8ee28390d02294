//! The status of a sweep's trials: the plan joined with the trials' run folders and, for a
//! Slurm sweep, the queue. The run folders are the truth about a trial (Slurm forgets a finished
//! job after `MinJobAge`, and without accounting `sacct` cannot tell); the queue only says what
//! is still waiting or running, and why.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::slurm::{self, QueueEntry};
use super::{read_plan, trial_runs, Mode, Plan, SweepState, SweepStatus};
use crate::error::Result;
use crate::record::RunInfo;
use crate::train::RunStatus;

/// What the plan says of a trial, as the table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTrial {
    pub index: usize,
    /// `train.learning_rate=0.01 model.hidden=[32, 32]`.
    pub values: String,
    /// The epochs its preset trains (the last rung's, under halving).
    pub epochs: usize,
}

/// The plan's trials for `join`.
pub fn planned_trials(plan: &Plan) -> Vec<PlannedTrial> {
    plan.trials
        .iter()
        .map(|t| PlannedTrial { index: t.index, values: t.describe(), epochs: t.preset.train.epochs })
        .collect()
}

/// Where a trial stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrialState {
    /// Not started, nothing queued (a local sweep's later trials, a later rung's).
    Planned,
    /// Waiting in the queue; Slurm's reason (`Resources`, `Priority`, ...).
    Queued(String),
    Running,
    /// Stopped at a rung's end or by the user, resumable.
    Stopped,
    /// Stopped by halving at this rung (0-based; shown 1-based, as the header counts rungs): a
    /// `stopped` run, resumable and forkable.
    Pruned(usize),
    Completed,
    Failed,
    /// Its process died (killed, a time limit): the run is resumable.
    Interrupted,
    /// The sweep was cancelled before this trial ended (started ones are resumable runs).
    Cancelled,
    /// Submitted, no longer queued, and no run folder: its job died before training; the file
    /// is its Slurm output, relative to the sweep folder.
    Lost(String),
}

impl TrialState {
    pub fn title(&self) -> String {
        match self {
            TrialState::Planned => "planned".into(),
            TrialState::Queued(reason) if reason.is_empty() || reason == "None" => "queued".into(),
            TrialState::Queued(reason) => format!("queued ({reason})"),
            TrialState::Running => "running".into(),
            TrialState::Stopped => "stopped".into(),
            TrialState::Pruned(rung) => format!("pruned at rung {}", rung + 1),
            TrialState::Completed => "completed".into(),
            TrialState::Failed => "failed".into(),
            TrialState::Interrupted => "interrupted".into(),
            TrialState::Cancelled => "cancelled".into(),
            TrialState::Lost(out) => format!("lost (see {out})"),
        }
    }
}

/// One line of the status table.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRow {
    pub index: usize,
    pub values: String,
    /// `1236_2 PENDING` while Slurm has the task.
    pub queue: Option<String>,
    /// The run folder's name, once it exists.
    pub run: Option<String>,
    pub state: TrialState,
    pub epochs_completed: usize,
    pub epochs_planned: usize,
    pub best_validation_accuracy: Option<f64>,
    /// `1236_2`: the array task that last ran it.
    pub slurm_job: Option<String>,
}

/// Joins the plan, the trials' run folders (`trial_runs`) and the queue (`slurm::queue` of the
/// sweep's jobs; empty for a local sweep).
pub fn join(
    trials: &[PlannedTrial],
    state: &SweepState,
    runs: &BTreeMap<usize, (PathBuf, RunInfo)>,
    queue: &[QueueEntry],
) -> Vec<TrialRow> {
    let mut tasks: BTreeMap<(&str, usize), &QueueEntry> = BTreeMap::new();
    for entry in queue {
        if let Some(key) = entry.array_task() {
            tasks.insert(key, entry);
        }
    }
    trials
        .iter()
        .map(|t| {
            // the newest array that holds the trial is the one that matters
            let submitted = state.slurm_jobs.iter().rev().find(|j| j.trials.contains(&t.index));
            let queued = submitted.and_then(|j| tasks.get(&(j.array.as_str(), t.index)).copied());
            let run = runs.get(&t.index);
            let cancelled = state.status == SweepStatus::Cancelled;
            let state_now = match (run.map(|(_, info)| info.status), queued) {
                (Some(RunStatus::Completed), _) => TrialState::Completed,
                (Some(RunStatus::Failed), _) => TrialState::Failed,
                (_, Some(e)) if e.state == "PENDING" => TrialState::Queued(e.reason.clone()),
                (_, Some(_)) => TrialState::Running,
                (Some(RunStatus::Running), None) => TrialState::Running,
                (Some(_), None) if cancelled => TrialState::Cancelled,
                (Some(_), None) if state.pruned.contains_key(&t.index) => TrialState::Pruned(state.pruned[&t.index]),
                (Some(RunStatus::Stopped), None) => TrialState::Stopped,
                (Some(_), None) => TrialState::Interrupted,
                (None, None) if cancelled => TrialState::Cancelled,
                (None, None) => match submitted {
                    Some(j) if state.mode == Mode::Slurm => {
                        TrialState::Lost(format!("slurm/{}_{}.out", j.array, t.index))
                    }
                    _ => TrialState::Planned,
                },
            };
            let info = run.map(|(_, info)| info);
            TrialRow {
                index: t.index,
                values: t.values.clone(),
                queue: queued.map(|e| format!("{} {}", e.job, e.state)),
                run: run.map(|(dir, _)| dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())),
                state: state_now,
                epochs_completed: info.map_or(0, |i| i.epochs_completed),
                epochs_planned: info.map_or(t.epochs, |i| i.epochs_planned),
                best_validation_accuracy: info.and_then(|i| i.best_validation_accuracy),
                slurm_job: info
                    .and_then(|i| i.sweep.as_ref()?.slurm_job.clone())
                    .or_else(|| submitted.map(|j| format!("{}_{}", j.array, t.index))),
            }
        })
        .collect()
}

/// The status table under a header with the mode, the sweep's status, the rung and the jobs.
pub fn render(name: &str, state: &SweepState, rung_count: usize, rows: &[TrialRow]) -> String {
    let mut out = String::new();
    let mode = match state.mode {
        Mode::Local => "local",
        Mode::Slurm => "slurm",
    };
    let _ =
        write!(out, "{name} ({}): {mode}, {}, rung {}/{rung_count}", state.id, state.status.title(), state.rung + 1);
    for job in &state.slurm_jobs {
        let _ = write!(out, "; rung {}: job {}", job.rung + 1, job.array);
        if let Some(advance) = &job.advance {
            let _ = write!(out, " (advance {advance})");
        }
    }
    out.push('\n');
    let header = ["trial", "values", "queue", "run", "status", "epochs", "best acc"];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                format!("{:03}", r.index),
                r.values.clone(),
                r.queue.clone().unwrap_or_else(|| "-".into()),
                r.run.clone().unwrap_or_else(|| "-".into()),
                r.state.title(),
                format!("{}/{}", r.epochs_completed, r.epochs_planned),
                r.best_validation_accuracy.map_or_else(|| "-".into(), |a| format!("{:.1}%", a * 100.0)),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut line = |cols: &[String]| {
        let text: Vec<String> = cols.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for row in &cells {
        line(row);
    }
    out
}

/// `gradlab sweep status`: reads the sweep folder, its trials' runs and (for a Slurm sweep
/// still under way) the queue, and renders the table. A queue that cannot be read is a note
/// under the table, not an error: the run folders still tell most of it.
pub fn sweep_status(dir: &Path) -> Result<String> {
    let state = SweepState::read(dir)?;
    let plan = read_plan(dir)?;
    let runs = trial_runs(&state.runs_dir, &state.id);
    let mut note = None;
    let queue = if state.mode == Mode::Slurm && state.status == SweepStatus::Running {
        slurm::queue(&super::slurm_run::job_ids(&state)).unwrap_or_else(|e| {
            note = Some(format!("note: the queue could not be read ({e}); the run folders are shown"));
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let rows = join(&planned_trials(&plan), &state, &runs, &queue);
    let mut out = render(&plan.spec.name, &state, plan.rung_count(), &rows);
    if let Some(note) = note {
        out.push_str(&note);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
