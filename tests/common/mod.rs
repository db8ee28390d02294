//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gradlab::record;
use gradlab::train::{Command, EpochMetrics, Event, RunOrigin, RunRequest, RunStatus, Summary, Trainer, WorkerOptions};
use gradlab::Preset;

pub struct Outcome {
    pub epochs: Vec<EpochMetrics>,
    pub summary: Option<Summary>,
    pub failure: Option<String>,
    pub steps: usize,
}

/// A fresh recorded run of `preset` in `runs_dir`, trained to completion: its folder.
pub fn completed_run(preset: &Preset, runs_dir: &Path) -> PathBuf {
    let outcome = run_request(RunRequest { preset: preset.clone(), origin: RunOrigin::Fresh }, Some(runs_dir));
    assert_eq!(outcome.summary.unwrap().status, RunStatus::Completed);
    only_run(runs_dir)
}

/// Runs a request on a real training thread and collects what it reports.
pub fn run_request(request: RunRequest, runs_dir: Option<&Path>) -> Outcome {
    let trainer = Trainer::spawn(WorkerOptions::headless(runs_dir.map(Path::to_path_buf)));
    assert!(trainer.send(Command::Start(Box::new(request))));
    collect(&trainer)
}

pub fn collect(trainer: &Trainer) -> Outcome {
    let mut out = Outcome { epochs: vec![], summary: None, failure: None, steps: 0 };
    loop {
        match trainer.recv_timeout(Duration::from_secs(600)).expect("the training thread went quiet") {
            Event::Epoch(m) => out.epochs.push(m),
            Event::Step { .. } => out.steps += 1,
            Event::Finished(s) => {
                out.summary = Some(s);
                return out;
            }
            Event::Failed { error } => {
                out.failure = Some(error);
                return out;
            }
            _ => {}
        }
    }
}

/// The one run directory in `runs_dir`.
pub fn only_run(runs_dir: &Path) -> PathBuf {
    let runs = record::list_runs(runs_dir);
    assert_eq!(runs.len(), 1, "one run in {}", runs_dir.display());
    runs[0].0.clone()
}

/// Trains `preset` into `runs_dir`, stops it at the third batch of the second epoch (its newest
/// checkpoint is then within that epoch), resumes it to its end and returns its run directory.
pub fn stop_in_second_epoch_and_resume(preset: &Preset, runs_dir: &Path) -> PathBuf {
    let trainer = Trainer::spawn(WorkerOptions::headless(Some(runs_dir.to_path_buf())));
    assert!(trainer.send(Command::Start(Box::new(RunRequest { preset: preset.clone(), origin: RunOrigin::Fresh }))));
    loop {
        match trainer.recv_timeout(Duration::from_secs(300)).expect("the training thread went quiet") {
            Event::Step { epoch: 2, batch: 3, .. } => assert!(trainer.send(Command::Stop)),
            Event::Finished(s) => {
                assert_eq!(s.status, RunStatus::Stopped);
                break;
            }
            Event::Failed { error } => panic!("{error}"),
            _ => {}
        }
    }
    let run = only_run(runs_dir);
    let latest = record::latest_checkpoint(&run).unwrap();
    assert!(latest.to_string_lossy().contains("epoch-1-batch-"), "a checkpoint within epoch 2: {}", latest.display());
    let request = RunRequest { preset: preset.clone(), origin: RunOrigin::Resume(run.clone()) };
    assert!(trainer.send(Command::Start(Box::new(request))));
    assert_eq!(collect(&trainer).summary.unwrap().status, RunStatus::Completed);
    run
}

pub fn train(preset: Preset) -> Outcome {
    run_request(RunRequest { preset, origin: RunOrigin::Fresh }, None)
}

pub fn best_accuracy(o: &Outcome) -> f64 {
    assert!(o.failure.is_none(), "training failed: {:?}", o.failure);
    o.summary.as_ref().and_then(|s| s.best_validation_accuracy).expect("a finished run has a best accuracy")
}

pub fn final_accuracy(o: &Outcome) -> f64 {
    assert!(o.failure.is_none(), "training failed: {:?}", o.failure);
    o.epochs.last().expect("at least one epoch").validation.accuracy
}

/// Epoch, train loss and accuracy, validation loss and accuracy, confusion counts.
pub type EpochFigures = (usize, f64, f64, f64, f64, Vec<u64>);

/// Every epoch's figures of a recorded run: what a resumed run must reproduce exactly (timings
/// aside).
pub fn epoch_figures(run: &Path) -> Vec<EpochFigures> {
    gradlab::record::load_run(run)
        .unwrap()
        .epochs
        .iter()
        .map(|m| {
            (
                m.epoch,
                m.train_loss,
                m.train_accuracy,
                m.validation.loss,
                m.validation.accuracy,
                m.validation.confusion.counts.clone(),
            )
        })
        .collect()
}

/// Debian's packages (word lists, fortunes): CI installs them (`.ci/run`), so there a missing
/// one fails; elsewhere the test skips with a note.
pub fn installed(what: &str, path: &str) -> bool {
    if std::path::Path::new(path).exists() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{what} is not installed under CI; .ci/run installs it");
    eprintln!("note: skipped, {what} is not installed ({path})");
    false
}
