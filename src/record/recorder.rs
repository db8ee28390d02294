//! Writes a run directory while the run goes on.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoint;
use super::lock::RunLock;
use super::{timestamp, write_atomic};
use crate::config::Preset;
use crate::error::{Error, Result};
use crate::train::{EpochMetrics, RunStatus, Session, StepMetrics, Summary};

pub const METRICS_HEADER: &str =
    "kind,epoch,batch,step,loss,accuracy,learning_rate,val_loss,val_accuracy,samples_per_s,elapsed_s";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub os: String,
    pub arch: String,
    pub cores: usize,
}

/// summary.json: what the runs list shows, kept current while the run goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The directory name.
    pub id: String,
    /// Shown in the runs list; can be renamed.
    pub name: String,
    pub title: String,
    pub data: String,
    pub model: String,
    pub status: RunStatus,
    pub started_at: String,
    pub epochs_planned: usize,
    pub epochs_completed: usize,
    pub best_epoch: Option<usize>,
    pub best_validation_accuracy: Option<f64>,
    pub final_validation_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub wall_time_s: f64,
    pub samples_per_s: f64,
    pub params: usize,
    pub threads: usize,
    /// Where it computed (`Compute.label`); empty for runs from before devices were recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    pub error: Option<String>,
    /// Run this one continues (resume) or branches from (fork): `run id/epoch-N`.
    pub parent: Option<String>,
    /// Process that writes the run; a `running` run whose process is gone was interrupted.
    pub pid: u32,
    pub machine: Machine,
    pub gradlab_version: String,
    pub candle_version: String,
    /// The sweep trial this run is (absent for ordinary runs and runs from before sweeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepTag>,
}

/// Marks a run as one trial of a sweep (`sweep::`); kept here so `record` needs nothing of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepTag {
    /// The sweep's id (its folder name under `<runs>/sweeps/`).
    pub sweep: String,
    /// The trial's index in the sweep's plan.
    pub trial: usize,
    /// `<array job>_<task>` when a Slurm job runs it (refreshed on every resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
}

/// The display name a user gave the run, when renamed (see `rename_run`).
pub const NAME_FILE: &str = "name.txt";

impl RunInfo {
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("summary.json");
        let text = super::read_text_capped(&path, super::MAX_JSON_BYTES)?;
        let mut info: Self = serde_json::from_str(&text).map_err(|e| Error::format(&path, e.to_string()))?;
        if let Ok(name) = super::read_text_capped(&dir.join(NAME_FILE), 1024) {
            if !name.trim().is_empty() {
                info.name = name.trim().to_string();
            }
        }
        Ok(info)
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("summary serialises");
        write_atomic(&dir.join("summary.json"), json.as_bytes())
    }
}

/// data.json: what an exported model needs to know of its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    pub set: String,
    pub title: String,
    pub input_shape: Vec<usize>,
    pub class_names: Vec<String>,
    pub normalization: crate::data::Normalization,
    pub train_samples: usize,
    pub validation_samples: usize,
    pub test_samples: Option<usize>,
    pub source: String,
    /// How the data was split (counts and hashes); absent in runs recorded before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<crate::data::SplitInfo>,
    /// Text sets: tokenizer and vocabulary, to encode new text for the model and decode its output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<crate::data::TextInfo>,
}

impl DataInfo {
    /// What a model of this data reads and predicts for `task`.
    pub fn model_input(&self, task: crate::task::Task) -> crate::model::ModelInput {
        let vocab = self.text.as_ref().map(|t| t.tokens.len());
        crate::model::ModelInput { shape: self.input_shape.clone(), classes: self.class_names.len(), vocab, task }
    }

    pub fn of(d: &crate::data::Dataset) -> Self {
        Self {
            set: d.id.clone(),
            title: d.title.clone(),
            input_shape: d.input_shape.clone(),
            class_names: d.class_names.clone(),
            normalization: d.normalization.clone(),
            train_samples: d.train.len(),
            validation_samples: d.validation.len(),
            test_samples: d.test.as_ref().map(crate::data::Split::len),
            source: d.source.clone(),
            split: Some(d.split.clone()),
            text: d.text.clone(),
        }
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("data.json");
        let text = super::read_text_capped(&path, super::MAX_JSON_BYTES)?;
        let info: Self = serde_json::from_str(&text).map_err(|e| Error::format(&path, e.to_string()))?;
        let features = info.input_shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(usize::MAX);
        info.normalization.check(features).map_err(|e| Error::format(&path, e))?;
        Ok(info)
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("data info serialises");
        write_atomic(&dir.join("data.json"), json.as_bytes())
    }
}

pub struct RunRecorder {
    dir: PathBuf,
    metrics: File,
    epochs: File,
    info: RunInfo,
    /// The task has an accuracy; a generative model's accuracy columns stay empty.
    accuracy: bool,
    /// Held while this recorder writes the run: a second writer is refused, and readers know the
    /// run is live.
    _lock: RunLock,
}

pub(crate) fn slug(title: &str) -> String {
    let s: String = title.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let s = s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
    if s.is_empty() {
        "run".into()
    } else {
        s.chars().take(40).collect()
    }
}

fn staging_name(id: &str) -> String {
    format!(".{id}.partial")
}

/// Removes half-made run folders left by a process killed while creating one (nobody holds their
/// lock).
fn remove_abandoned_staging(runs_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // a creator locks its folder right after claiming it; one unlocked and untouched for a
        // minute was abandoned
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > std::time::Duration::from_secs(60)));
        if name.starts_with('.')
            && name.ends_with(".partial")
            && stale
            && super::lock::is_held(&entry.path()) != Some(true)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn append(path: &Path) -> Result<File> {
    OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))
}

fn write_line(file: &mut File, path: &Path, line: &str) -> Result<()> {
    // one write per line, so a kill leaves whole lines (at worst a last partial one that readers skip)
    file.write_all(format!("{line}\n").as_bytes()).map_err(|e| Error::io(path, e))
}

impl RunRecorder {
    /// Creates `runs_dir/<timestamp>_<title>/` with the preset and an empty metrics file. The
    /// folder is put together under a hidden name and renamed into place, so a run folder is
    /// never seen half made.
    pub fn create(runs_dir: &Path, preset: &Preset, parent: Option<String>) -> Result<Self> {
        Self::create_tagged(runs_dir, preset, parent, None)
    }

    /// As `create`, the run marked as a sweep's trial from its first summary.json on, so a
    /// listing never sees the trial untagged.
    pub fn create_tagged(
        runs_dir: &Path,
        preset: &Preset,
        parent: Option<String>,
        sweep: Option<SweepTag>,
    ) -> Result<Self> {
        std::fs::create_dir_all(runs_dir).map_err(|e| Error::io(runs_dir, e))?;
        remove_abandoned_staging(runs_dir);
        let base = format!("{}_{}", timestamp(), slug(&preset.title));
        // claim an id by creating its staging folder (atomic: two processes starting in the same
        // second get different ids)
        let mut n = 1;
        let (id, staging) = loop {
            let id = if n == 1 { base.clone() } else { format!("{base}-{n}") };
            n += 1;
            let staging = runs_dir.join(staging_name(&id));
            if runs_dir.join(&id).exists() {
                continue;
            }
            match std::fs::create_dir(&staging) {
                Ok(()) if runs_dir.join(&id).exists() => {
                    let _ = std::fs::remove_dir(&staging); // renamed into place meanwhile
                }
                Ok(()) => break (id, staging),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(&staging, e)),
            }
        };
        let made = Self::fill(&staging, &id, preset, parent, sweep).and_then(|(info, lock)| {
            let dir = runs_dir.join(&id);
            std::fs::rename(&staging, &dir).map_err(|e| Error::io(&dir, e))?;
            let metrics = append(&dir.join("metrics.csv"))?;
            let epochs = append(&dir.join("epochs.jsonl"))?;
            Ok(Self { dir, metrics, epochs, info, accuracy: true, _lock: lock })
        });
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        made
    }

    fn fill(
        dir: &Path,
        id: &str,
        preset: &Preset,
        parent: Option<String>,
        sweep: Option<SweepTag>,
    ) -> Result<(RunInfo, RunLock)> {
        // the lock is on the file, so it stays held when the folder is renamed
        let lock = RunLock::acquire(dir)?;
        std::fs::create_dir_all(dir.join("checkpoints")).map_err(|e| Error::io(dir, e))?;
        write_atomic(&dir.join("preset.toml"), preset.to_toml().as_bytes())?;
        let metrics_path = dir.join("metrics.csv");
        let mut metrics = append(&metrics_path)?;
        write_line(&mut metrics, &metrics_path, METRICS_HEADER)?;
        append(&dir.join("epochs.jsonl"))?;
        let info = RunInfo {
            name: preset.title.clone(),
            id: id.to_string(),
            title: preset.title.clone(),
            data: preset.data.set.clone(),
            model: preset.model.summary(),
            status: RunStatus::Running,
            started_at: timestamp(),
            epochs_planned: preset.train.epochs,
            epochs_completed: 0,
            best_epoch: None,
            best_validation_accuracy: None,
            final_validation_accuracy: None,
            test_accuracy: None,
            wall_time_s: 0.0,
            samples_per_s: 0.0,
            params: 0,
            threads: 0,
            device: String::new(),
            error: None,
            parent,
            pid: std::process::id(),
            machine: Machine {
                os: std::env::consts::OS.into(),
                arch: std::env::consts::ARCH.into(),
                cores: crate::train::cores(),
            },
            gradlab_version: env!("CARGO_PKG_VERSION").into(),
            candle_version: "0.11".into(),
            sweep,
        };
        info.write(dir)?;
        Ok((info, lock))
    }

    /// Reopens a run to continue it from a checkpoint after `epoch` completed epochs and `batch`
    /// batches of the next: rows past that point (from the interrupted part) are dropped so the
    /// files read as if it had never stopped. `lock` is the run's, taken before anything else.
    pub fn reopen(dir: &Path, lock: RunLock, epoch: usize, batch: usize) -> Result<Self> {
        let mut info = RunInfo::read(dir)?;
        let metrics_path = dir.join("metrics.csv");
        truncate_lines(&metrics_path, |line| {
            if line == METRICS_HEADER {
                return true;
            }
            let mut cols = line.split(',');
            let (kind, e, b) = (cols.next(), cols.next(), cols.next());
            let e = e.and_then(|e| e.parse::<usize>().ok());
            match (kind, e) {
                (Some("epoch"), Some(e)) => e <= epoch,
                // step rows carry the 1-based epoch and batch
                (Some("step"), Some(e)) => {
                    e <= epoch
                        || (e == epoch + 1 && b.and_then(|b| b.parse::<usize>().ok()).is_some_and(|b| b <= batch))
                }
                _ => false,
            }
        })?;
        let epochs_path = dir.join("epochs.jsonl");
        truncate_lines(&epochs_path, |line| {
            serde_json::from_str::<EpochMetrics>(line).is_ok_and(|m| m.epoch <= epoch)
        })?;
        let accuracy = crate::config::Preset::load(&dir.join("preset.toml")).map_or(true, |p| p.task.has_accuracy());
        // the summary as of the last epoch kept: a kill between an epoch's checkpoint and its
        // summary leaves the summary an epoch behind, and a resumed part may have no epoch left
        // to train that would rewrite it
        let last = std::fs::read_to_string(&epochs_path)
            .ok()
            .and_then(|text| text.lines().filter_map(|l| serde_json::from_str::<EpochMetrics>(l).ok()).next_back());
        if let Some(m) = last.filter(|m| m.epoch == epoch) {
            info.final_validation_accuracy = accuracy.then_some(m.validation.accuracy);
            info.wall_time_s = m.elapsed_s;
            info.samples_per_s = m.samples_per_s;
        }
        info.status = RunStatus::Running;
        info.error = None;
        info.pid = std::process::id();
        info.epochs_completed = epoch;
        info.write(dir)?;
        Ok(Self {
            metrics: append(&metrics_path)?,
            epochs: append(&epochs_path)?,
            dir: dir.to_path_buf(),
            info,
            accuracy,
            _lock: lock,
        })
    }

    /// A resumed trial's tag: a requeued Slurm task runs under a new job id, which replaces the
    /// old one (the sweep and trial never change). Written with the next summary.
    pub fn retag(&mut self, sweep: Option<SweepTag>) -> Result<()> {
        if let Some(tag) = sweep {
            self.info.sweep = Some(tag);
            self.info.write(&self.dir)?;
        }
        Ok(())
    }

    /// Records that the run failed and why, as far as the disk lets it.
    pub fn mark_failed(&mut self, error: &Error) {
        self.info.status = RunStatus::Failed;
        self.info.error = Some(error.to_string());
        let _ = self.info.write(&self.dir);
    }

    /// Writes a checkpoint within an epoch (the position is in `state`).
    pub fn checkpoint(&mut self, session: &Session, state: &checkpoint::CheckpointState) -> Result<()> {
        checkpoint::save(&self.dir.join("checkpoints"), session, state)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// Records what the model and data turned out to be once loaded.
    pub fn started(&mut self, session: &Session, threads: usize) -> Result<()> {
        self.info.params = session.net.param_count();
        self.info.threads = threads;
        self.info.device = session.compute.label.clone();
        self.accuracy = session.preset.task.has_accuracy();
        DataInfo::of(&session.data).write(&self.dir)?;
        self.info.write(&self.dir)
    }

    pub fn step(&mut self, s: &StepMetrics, global_step: usize, samples_per_s: f64, elapsed_s: f64) -> Result<()> {
        let line = format!(
            "step,{},{},{},{},{},{},,,{:.1},{:.3}",
            s.epoch + 1,
            s.batch + 1,
            global_step,
            s.loss,
            self.shown(s.accuracy()),
            s.learning_rate,
            samples_per_s,
            elapsed_s
        );
        write_line(&mut self.metrics, &self.dir.join("metrics.csv"), &line)
    }

    /// Records an epoch and writes its checkpoint.
    pub fn epoch(&mut self, m: &EpochMetrics, session: &Session, state: &checkpoint::CheckpointState) -> Result<()> {
        let line = format!(
            "epoch,{},,{},{},{},{},{},{},{:.1},{:.3}",
            m.epoch,
            m.epoch * session.batches_per_epoch,
            m.train_loss,
            self.shown(m.train_accuracy),
            m.learning_rate,
            m.validation.loss,
            self.shown(m.validation.accuracy),
            m.samples_per_s,
            m.elapsed_s
        );
        write_line(&mut self.metrics, &self.dir.join("metrics.csv"), &line)?;
        let json = serde_json::to_string(m).expect("epoch metrics serialise");
        write_line(&mut self.epochs, &self.dir.join("epochs.jsonl"), &json)?;
        checkpoint::save(&self.dir.join("checkpoints"), session, state)?;
        self.info.epochs_completed = m.epoch;
        self.info.final_validation_accuracy = self.accuracy.then_some(m.validation.accuracy);
        self.info.best_epoch = state.best_epoch;
        self.info.best_validation_accuracy = state.best_validation_accuracy;
        self.info.wall_time_s = m.elapsed_s;
        self.info.samples_per_s = m.samples_per_s;
        self.info.write(&self.dir)
    }

    /// An accuracy for metrics.csv: empty where the task has none.
    fn shown(&self, accuracy: f64) -> String {
        if self.accuracy {
            accuracy.to_string()
        } else {
            String::new()
        }
    }

    /// Writes a generative view's grid as `<kind>/epoch-N.pgm` (PPM for colour).
    pub fn grid(&mut self, grid: &crate::train::generative_views::ImageGrid) -> Result<()> {
        let folder = self.dir.join(grid.kind.folder());
        std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        write_atomic(&folder.join(grid.file_name()), &grid.to_pnm())
    }

    pub fn finish(&mut self, summary: &Summary, error: Option<&str>) -> Result<()> {
        self.info.status = summary.status;
        self.info.epochs_completed = summary.epochs_completed;
        self.info.best_epoch = summary.best_epoch;
        self.info.best_validation_accuracy = summary.best_validation_accuracy;
        if let Some(v) = &summary.final_validation {
            // a resumed part that completed no epoch keeps the figure of the last one
            self.info.final_validation_accuracy = self.accuracy.then_some(v.accuracy);
        }
        self.info.test_accuracy = summary.test.as_ref().filter(|_| self.accuracy).map(|t| t.accuracy);
        self.info.wall_time_s = summary.wall_time_s;
        self.info.samples_per_s = summary.samples_per_s;
        self.info.error = error.map(ToString::to_string);
        self.info.write(&self.dir)?;
        let json = serde_json::to_string_pretty(summary).expect("summary serialises");
        write_atomic(&self.dir.join("final.json"), json.as_bytes())
    }
}

/// Keeps the whole lines that `keep` accepts (a torn last line is dropped), atomically.
fn truncate_lines(path: &Path, keep: impl Fn(&str) -> bool) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let whole = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    let mut out = String::new();
    for line in whole.split('\n').filter(|l| keep(l)) {
        out.push_str(line);
        out.push('\n');
    }
    write_atomic(path, out.as_bytes())
}
