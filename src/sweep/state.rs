//! A sweep's state.json (the driver's: mode, rung, pruned trials, Slurm jobs; written under
//! state.lock) and summary.json (each trial's figures and the best trial), and finding the
//! trials' run folders in the runs folder by their tag.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::Metric;
use crate::error::{Error, Result};
use crate::record::RunInfo;
use crate::train::RunStatus;

/// The lock file a sweep's driver holds while it changes state.json.
pub const STATE_LOCK: &str = "state.lock";

/// Where a sweep's trials run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Local,
    Slurm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SweepStatus {
    /// Written, nothing started.
    #[default]
    Planned,
    Running,
    /// Stopped by the user (local), resumable.
    Stopped,
    Completed,
    /// Cancelled on Slurm (`sweep cancel`).
    Cancelled,
    Failed,
}

impl SweepStatus {
    pub fn title(self) -> &'static str {
        match self {
            SweepStatus::Planned => "planned",
            SweepStatus::Running => "running",
            SweepStatus::Stopped => "stopped",
            SweepStatus::Completed => "completed",
            SweepStatus::Cancelled => "cancelled",
            SweepStatus::Failed => "failed",
        }
    }
}

/// One submitted Slurm array (a rung) and the advance job that follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmJob {
    pub rung: usize,
    /// The array job's id (`1234`).
    pub array: String,
    /// The trial indices of the array.
    pub trials: Vec<usize>,
    /// The `sweep advance` job's id, afterany the array.
    #[serde(default)]
    pub advance: Option<String>,
}

/// state.json.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SweepState {
    pub id: String,
    pub mode: Mode,
    pub status: SweepStatus,
    /// The rung under way (0 without halving).
    pub rung: usize,
    /// The trials of the current rung.
    pub active: Vec<usize>,
    /// Trial → the rung it was pruned at.
    pub pruned: BTreeMap<usize, usize>,
    /// Local: threads per slot when started.
    pub parallel: usize,
    pub slurm_jobs: Vec<SlurmJob>,
    /// Slurm settings the sweep was submitted with (flags over `[slurm]`), for later rungs.
    pub slurm: Option<super::spec::SlurmSpec>,
    /// The absolute runs folder the trials are recorded in.
    pub runs_dir: PathBuf,
    /// The gradlab binary Slurm jobs run.
    pub gradlab: Option<PathBuf>,
    /// When the driver started (RFC 3339-ish timestamp) and the seconds it has run, for
    /// trials/min.
    pub started_at: String,
    pub wall_time_s: f64,
}

impl SweepState {
    /// state.json, its trial and rung numbers checked against plan.json beside it (when that is
    /// there: it is written last), so that no reader indexes past the plan on a corrupt or
    /// hand-edited file.
    pub fn read(sweep_dir: &Path) -> Result<Self> {
        let path = sweep_dir.join("state.json");
        let text = crate::record::read_text_capped(&path, crate::record::MAX_JSON_BYTES)?;
        let state: Self = serde_json::from_str(&text).map_err(|e| Error::format(&path, e.to_string()))?;
        if sweep_dir.join("plan.json").exists() {
            let plan = super::folder::PlanFile::read(sweep_dir)?;
            let rungs = plan.rungs.as_ref().map_or(1, |r| r.epochs.len());
            state.check(&path, plan.trials.len(), rungs)?;
        }
        Ok(state)
    }

    fn check(&self, path: &Path, trials: usize, rungs: usize) -> Result<()> {
        let refuse = |what: String| Err(Error::format(path, what));
        if self.rung >= rungs {
            return refuse(format!("rung {} is past the plan's {rungs} rungs", self.rung));
        }
        let mut seen = std::collections::BTreeSet::new();
        for &t in &self.active {
            if t >= trials || !seen.insert(t) {
                return refuse(format!("active trial {t} is repeated or past the plan's {trials} trials"));
            }
        }
        for (&t, &r) in &self.pruned {
            if t >= trials || r >= rungs {
                return refuse(format!("trial {t} pruned at rung {r}: past the plan ({trials} trials, {rungs} rungs)"));
            }
        }
        for job in &self.slurm_jobs {
            if let Some(t) = job.trials.iter().find(|&&t| t >= trials) {
                return refuse(format!("job {} lists trial {t}, past the plan's {trials} trials", job.array));
            }
        }
        Ok(())
    }

    pub fn write(&self, sweep_dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("sweep state serialises");
        crate::record::write_atomic(&sweep_dir.join("state.json"), json.as_bytes())
    }

    /// Takes state.lock, or says that another process drives the sweep.
    pub fn try_lock(sweep_dir: &Path) -> Result<std::fs::File> {
        let (path, file) = Self::lock_file(sweep_dir)?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Other(format!(
                "{}: another process drives this sweep (it holds {}); wait for it or stop it first",
                sweep_dir.display(),
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    /// Takes state.lock (blocking until a concurrent driver lets go): hold it across a read,
    /// change and write of state.json.
    pub fn lock(sweep_dir: &Path) -> Result<std::fs::File> {
        let (path, file) = Self::lock_file(sweep_dir)?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(file)
    }

    /// state.lock opened (created empty if missing, never truncated), with its path for errors.
    fn lock_file(sweep_dir: &Path) -> Result<(PathBuf, std::fs::File)> {
        let path = sweep_dir.join(STATE_LOCK);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok((path, file))
    }
}

/// One trial in summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialSummary {
    pub index: usize,
    pub values: BTreeMap<String, serde_json::Value>,
    /// The run folder's name in the runs folder, once it exists.
    pub run: Option<String>,
    pub status: Option<RunStatus>,
    pub epochs_completed: usize,
    pub epochs_planned: usize,
    pub best_validation_accuracy: Option<f64>,
    /// The metric the sweep ranks by, so far.
    pub metric: Option<f64>,
    /// Set when halving stopped it at this rung.
    pub pruned_at: Option<usize>,
    pub slurm_job: Option<String>,
}

/// summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSummary {
    pub id: String,
    pub name: String,
    pub status: SweepStatus,
    pub metric: Metric,
    pub trials: Vec<TrialSummary>,
    /// The best trial's index by the metric (among those with one).
    pub best: Option<usize>,
    pub wall_time_s: f64,
}

impl SweepSummary {
    pub fn read(sweep_dir: &Path) -> Result<Self> {
        let path = sweep_dir.join("summary.json");
        let text = crate::record::read_text_capped(&path, crate::record::MAX_JSON_BYTES)?;
        serde_json::from_str(&text).map_err(|e| Error::format(&path, e.to_string()))
    }

    pub fn write(&self, sweep_dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("sweep summary serialises");
        crate::record::write_atomic(&sweep_dir.join("summary.json"), json.as_bytes())
    }

    /// The summary as the folders stand: the plan, state.json and the trials' run folders.
    pub fn collect(sweep_dir: &Path) -> Result<Self> {
        let plan = super::folder::PlanFile::read(sweep_dir)?;
        let state = SweepState::read(sweep_dir)?;
        let mut runs = trial_runs(&state.runs_dir, &plan.id);
        let epochs_planned = plan.rungs.as_ref().and_then(|r| r.epochs.last().copied());
        let trials: Vec<TrialSummary> = plan
            .trials
            .iter()
            .map(|t| {
                let run = runs.remove(&t.index);
                let info = run.as_ref().map(|(_, info)| info);
                TrialSummary {
                    index: t.index,
                    values: t.values.clone(),
                    run: info.map(|i| i.id.clone()),
                    status: info.map(|i| i.status),
                    epochs_completed: info.map_or(0, |i| i.epochs_completed),
                    epochs_planned: info.map(|i| i.epochs_planned).or(epochs_planned).unwrap_or(0),
                    best_validation_accuracy: info.and_then(|i| i.best_validation_accuracy),
                    metric: run.as_ref().and_then(|(dir, _)| super::rank::metric_of(dir, plan.metric)),
                    pruned_at: state.pruned.get(&t.index).copied(),
                    slurm_job: info.and_then(|i| i.sweep.as_ref()?.slurm_job.clone()),
                }
            })
            .collect();
        let best = super::rank::best(trials.iter().filter_map(|t| Some((t.index, t.metric?))), plan.metric);
        Ok(Self {
            id: plan.id,
            name: plan.name,
            status: state.status,
            metric: plan.metric,
            trials,
            best,
            wall_time_s: state.wall_time_s,
        })
    }
}

/// `<runs_dir>/sweeps`.
pub fn sweeps_dir(runs_dir: &Path) -> PathBuf {
    runs_dir.join("sweeps")
}

/// Sweep folders under `<runs_dir>/sweeps/`, newest first.
pub fn list_sweeps(runs_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(sweeps_dir(runs_dir)) else {
        return vec![];
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.path().join("plan.json").is_file())
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs.reverse();
    dirs
}

/// The run folders of sweep `id`'s trials, by trial index (via `list_runs`, so a dead writer's
/// run reads `interrupted`). Two folders of one trial (should not happen): the older is kept.
pub fn trial_runs(runs_dir: &Path, id: &str) -> BTreeMap<usize, (PathBuf, RunInfo)> {
    let mut found = BTreeMap::new();
    // list_runs is newest first: the last insert per trial is its oldest run
    for (dir, info) in crate::record::list_runs(runs_dir) {
        if let Some(tag) = info.sweep.as_ref().filter(|t| t.sweep == id) {
            found.insert(tag.trial, (dir, info));
        }
    }
    found
}
