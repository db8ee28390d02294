//! Preparing a run for the training thread: a fresh session (with transfer learning's weights),
//! one resumed from a run's newest readable checkpoint (taking the run's lock first), or one
//! forked from any checkpoint, with its recorder and the counters that carry over.

use std::path::Path;

use super::event::{RunOrigin, RunRequest};
use super::session::{device_for, Session};
use super::worker::WorkerOptions;
use crate::config::Preset;
use crate::data;
use crate::error::{Error, Result};
use crate::record::{read_checkpoint, RunLock, RunRecorder};

/// Counters that carry over when a run continues from a checkpoint.
#[derive(Default)]
pub(super) struct Progress {
    pub best_epoch: Option<usize>,
    pub best_validation_accuracy: Option<f64>,
    pub samples_seen: usize,
    pub train_time_s: f64,
    pub elapsed_s: f64,
}

pub(super) struct Prepared {
    pub session: Session,
    pub recorder: Option<RunRecorder>,
    pub progress: Progress,
}

/// Builds the session for a request: fresh, resumed from a run's last checkpoint, or forked from
/// a checkpoint with a changed preset.
pub(super) fn prepare(request: RunRequest, options: &WorkerOptions) -> Result<Prepared> {
    crate::budget::check(&request.preset, "preset")?; // refuse what cannot fit before allocating
    let new_session = |preset: Preset| -> Result<Session> {
        // the device first: a missing driver is named before seconds of data loading
        let device = device_for(&preset)?;
        let data = data::load(&preset.data, preset.seed)?;
        Session::new(preset, data, device)
    };
    match request.origin {
        RunOrigin::Fresh => {
            let recorder = match &options.runs_dir {
                Some(dir) => Some(RunRecorder::create_tagged(dir, &request.preset, None, options.sweep.clone())?),
                None => None,
            };
            let start = |session: Result<Session>| -> Result<Session> {
                let mut session = session?;
                if let Some(t) = session.preset.transfer.clone() {
                    super::transfer::apply(&t, &mut session)?;
                }
                Ok(session)
            };
            let session = set_up(start(new_session(request.preset)), recorder)?;
            Ok(Prepared { session: session.0, recorder: session.1, progress: Progress::default() })
        }
        RunOrigin::Resume(run_dir) => {
            // first of all: one writer per run
            let lock = RunLock::acquire(&run_dir)?;
            let preset = Preset::load(&run_dir.join("preset.toml"))?;
            let mut session = new_session(preset)?;
            let mut progress = Progress::default();
            let position = match newest_readable_checkpoint(&run_dir, &session)? {
                Some(ckpt) => {
                    ckpt.restore_into(&mut session, true)?;
                    session.seek(&ckpt.state);
                    progress = Progress {
                        best_epoch: ckpt.state.best_epoch,
                        best_validation_accuracy: ckpt.state.best_validation_accuracy,
                        samples_seen: ckpt.state.samples_seen,
                        train_time_s: ckpt.state.train_time_s,
                        elapsed_s: ckpt.state.elapsed_s,
                    };
                    (ckpt.state.epoch, session.batch)
                }
                None => (0, 0),
            };
            let mut recorder = RunRecorder::reopen(&run_dir, lock, position.0, position.1)?;
            recorder.retag(options.sweep.clone())?;
            Ok(Prepared { session, recorder: Some(recorder), progress })
        }
        RunOrigin::Fork(checkpoint_path) => {
            let ckpt = read_checkpoint(&checkpoint_path)?;
            if request.preset.train.epochs <= ckpt.state.epoch {
                return Err(Error::config(
                    "preset",
                    "train.epochs",
                    format!(
                        "{} epochs leaves nothing to train after the checkpoint's epoch {}",
                        request.preset.train.epochs, ckpt.state.epoch
                    ),
                ));
            }
            let parent = checkpoint_path
                .parent()
                .and_then(Path::parent)
                .and_then(Path::file_name)
                .map(|run| format!("{}/epoch-{}", run.to_string_lossy(), ckpt.state.epoch));
            let recorder = match &options.runs_dir {
                Some(dir) => Some(RunRecorder::create(dir, &request.preset, parent)?),
                None => None,
            };
            let same_optimizer = {
                let parent_preset = checkpoint_path
                    .parent()
                    .and_then(Path::parent)
                    .map(|run| run.join("preset.toml"))
                    .and_then(|p| Preset::load(&p).ok());
                parent_preset.is_some_and(|p| p.train.optimizer == request.preset.train.optimizer)
            };
            let fork = |session: Result<Session>| -> Result<Session> {
                let mut session = session?;
                ckpt.restore_into(&mut session, same_optimizer)?;
                let mut state = ckpt.state.clone();
                state.base_learning_rate = session.preset.train.learning_rate;
                session.seek(&state);
                Ok(session)
            };
            let (session, recorder) = set_up(fork(new_session(request.preset)), recorder)?;
            Ok(Prepared { session, recorder, progress: Progress::default() })
        }
    }
}

/// The newest checkpoint of a run that reads back and fits the run; an unreadable newest one
/// (a crash between writing its weights and the disk keeping them) falls back to the one before.
fn newest_readable_checkpoint(run_dir: &Path, session: &Session) -> Result<Option<crate::record::Checkpoint>> {
    let mut first_error = None;
    for path in crate::record::checkpoints_newest_first(run_dir) {
        let checked = read_checkpoint(&path).and_then(|ckpt| {
            let s = &ckpt.state;
            if s.batch >= session.batches_per_epoch.max(1) || s.epoch > session.preset.train.epochs {
                return Err(Error::format(
                    &path,
                    format!(
                        "position epoch {} batch {} does not fit this run ({} epochs of {} batches)",
                        s.epoch, s.batch, session.preset.train.epochs, session.batches_per_epoch
                    ),
                ));
            }
            Ok(ckpt)
        });
        match checked {
            Ok(ckpt) => return Ok(Some(ckpt)),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    first_error.map_or(Ok(None), Err)
}

/// A new run's folder exists before its data and model do: when those fail, the folder says the
/// run failed and why, instead of reading `running` (then `interrupted`) for ever.
fn set_up(session: Result<Session>, recorder: Option<RunRecorder>) -> Result<(Session, Option<RunRecorder>)> {
    match session {
        Ok(session) => Ok((session, recorder)),
        Err(error) => {
            if let Some(mut r) = recorder {
                r.mark_failed(&error);
            }
            Err(error)
        }
    }
}
