//! Reading past runs back: the runs list and one run's curves.

use std::ops::Not;
use std::path::{Path, PathBuf};

use super::recorder::RunInfo;
use crate::config::Preset;
use crate::error::{Error, Result};
use crate::train::{EpochMetrics, RunStatus};

/// Whether the process that writes a `running` run still does: its lock tells, on any platform.
fn writer_alive(dir: &Path, info: &RunInfo) -> bool {
    super::lock::is_held(dir).unwrap_or_else(|| process_alive(info.pid))
}

/// For runs written before run locks existed: the pid in summary.json.
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        // a killed process can linger as a zombie until its parent reaps it: that is not alive
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']).not()))
            .unwrap_or(false)
    } else {
        true // cannot tell: trust the file
    }
}

/// Runs in `runs_dir` (each a folder with summary.json), newest first. Folders that are not
/// runs are skipped.
pub fn list_runs(runs_dir: &Path) -> Vec<(PathBuf, RunInfo)> {
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return vec![];
    };
    let mut runs: Vec<(PathBuf, RunInfo)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            // `.<id>.partial`: a run folder still being put together (or abandoned by a kill)
            if e.file_name().to_string_lossy().starts_with('.') {
                return None;
            }
            let dir = e.path();
            let mut info = RunInfo::read(&dir).ok()?;
            if info.status == RunStatus::Running && !writer_alive(&dir, &info) {
                info.status = RunStatus::Interrupted;
            }
            Some((dir, info))
        })
        .collect();
    runs.sort_by(|a, b| b.1.started_at.cmp(&a.1.started_at).then(b.1.id.cmp(&a.1.id)));
    runs
}

/// metrics.csv and epochs.jsonl grow with the run (a million steps is ~100 MB); past this they
/// are refused rather than read into memory.
const MAX_LOG_BYTES: u64 = 2 << 30;

/// One run as read from disk.
pub struct RunData {
    pub dir: PathBuf,
    pub info: RunInfo,
    pub preset: Preset,
    pub epochs: Vec<EpochMetrics>,
    /// (global step, training loss) per recorded step.
    pub steps: Vec<[f64; 2]>,
    /// Per recorded step, beside `steps`: accuracy, learning rate and the run's wall time so far
    /// (NaN where the row leaves it empty: a generative model's accuracy, runs recorded before
    /// the step rows had a time).
    pub step_accuracy: Vec<f32>,
    pub step_lr: Vec<f32>,
    pub step_elapsed_s: Vec<f32>,
    /// From the first epoch row's step.
    pub batches_per_epoch: Option<usize>,
}

pub fn load_run(dir: &Path) -> Result<RunData> {
    let mut info = RunInfo::read(dir)?;
    if info.status == RunStatus::Running && !writer_alive(dir, &info) {
        info.status = RunStatus::Interrupted;
    }
    let preset = Preset::load(&dir.join("preset.toml"))?;
    let metrics_path = dir.join("metrics.csv");
    let metrics = super::read_text_capped(&metrics_path, MAX_LOG_BYTES)?;
    // a torn last line (the process was killed mid-write) parses as garbage: skip what does not parse
    let (mut steps, mut step_accuracy, mut step_lr, mut step_elapsed_s) = (vec![], vec![], vec![], vec![]);
    let mut batches_per_epoch = None;
    for line in metrics.lines() {
        let cols: Vec<&str> = line.split(',').collect();
        let number = |i: usize| cols.get(i).and_then(|c| c.parse::<f64>().ok());
        if line.starts_with("epoch,") && batches_per_epoch.is_none() {
            // epoch e's row holds the global step e * batches_per_epoch
            batches_per_epoch = match (number(1), number(3)) {
                (Some(e), Some(step)) if e >= 1.0 && step > 0.0 => Some((step / e).round() as usize),
                _ => None,
            };
        }
        if !line.starts_with("step,") {
            continue;
        }
        let (Some(step), Some(loss)) = (number(3), number(4)) else { continue };
        steps.push([step, loss]);
        let column = |i: usize| number(i).map_or(f32::NAN, |v| v as f32);
        step_accuracy.push(column(5));
        step_lr.push(column(6));
        step_elapsed_s.push(column(10));
    }
    let epochs_path = dir.join("epochs.jsonl");
    let epochs = super::read_text_capped(&epochs_path, MAX_LOG_BYTES)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Ok(RunData {
        dir: dir.to_path_buf(),
        info,
        preset,
        epochs,
        steps,
        step_accuracy,
        step_lr,
        step_elapsed_s,
        batches_per_epoch,
    })
}

/// Gives a run a new display name (its folder keeps its name). The name goes to its own file,
/// `name.txt`, which only renaming writes: the process that writes a running run rewrites
/// summary.json every epoch and would otherwise put the old name back.
pub fn rename_run(dir: &Path, name: &str) -> Result<()> {
    RunInfo::read(dir)?; // a run folder, not any folder
    super::write_atomic(&dir.join(super::recorder::NAME_FILE), name.trim().as_bytes())
}

/// Deletes a run's folder, refusing folders that are not runs.
pub fn delete_run(dir: &Path) -> Result<()> {
    if !dir.join("summary.json").exists() || !dir.join("preset.toml").exists() {
        return Err(Error::format(dir, "is not a run folder (no summary.json and preset.toml); not deleting it"));
    }
    if super::lock::is_held(dir) == Some(true) {
        return Err(Error::format(dir, "this run is still being written; stop it before deleting it"));
    }
    std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))
}
