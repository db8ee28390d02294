//! The app's side of a local sweep: it owns the `LocalSweep` (started and resumed on the io
//! thread, which writes the sweep folder), drains its events within the frame's budget, and
//! turns the sweep panel's buttons into requests. Nothing here blocks or touches a file.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::app::{GradlabApp, Notice, View, DRAIN_BUDGET};
use super::io::IoRequest;
use super::sweep_panel::SweepAction;
use crate::sweep::{LocalOptions, SweepEvent, SweepStatus};
use crate::train::Waker;

/// How often a shown Slurm sweep's queue is read (squeue asks the controller: not every frame).
const SLURM_POLL: Duration = Duration::from_secs(10);

impl GradlabApp {
    /// Whether a local sweep is starting or running (the single-run Start waits for it).
    pub fn sweep_running(&self) -> bool {
        self.sweep_starting || self.sweep.is_some()
    }

    /// Takes the running sweep's events until the frame's drain budget (shared with the
    /// trainer's) is spent; a finished sweep is let go.
    pub(super) fn drain_sweep(&mut self, ctx: &egui::Context, start: Instant) {
        let Some(sweep) = &self.sweep else { return };
        while start.elapsed() < DRAIN_BUDGET {
            // seen before the receive: an ended driver with nothing left to read has sent all
            let ended = !sweep.is_running();
            let Some(event) = sweep.try_recv() else {
                if ended {
                    // joins an ended thread: no wait
                    self.sweep = None;
                    self.last_runs_poll = None;
                    // a driver that ended without its Finished (it panicked) left no
                    // settled state: what it did is stopped, and resumable
                    if self.sweep_panel.status == Some(SweepStatus::Running) {
                        self.sweep_panel.status = Some(SweepStatus::Stopped);
                    }
                }
                return;
            };
            // a trial's folder came or went, or a rung ended: list the runs again now (epochs
            // come with the events, and the 2 s poll catches the records up)
            if !matches!(event, SweepEvent::TrialEpoch { .. }) {
                self.last_runs_poll = None;
            }
            if let Some(message) = self.sweep_panel.apply(event) {
                self.notice = Some(Notice::Error(message));
            }
        }
        // more events wait: come back soon rather than block this frame
        ctx.request_repaint();
    }

    fn sweep_options(&self) -> LocalOptions {
        // as the trainer's step wakes: at most one repaint per `live_refresh` (the frame then
        // drains every event waiting); `logic` asks for one after it while the sweep runs, so
        // the last events are shown too
        let inner = self.waker.clone();
        let every = self.live_refresh;
        let last: Mutex<Option<Instant>> = Mutex::new(None);
        let waker: Waker = Arc::new(move || {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed() >= every) {
                *last = Some(Instant::now());
                inner();
            }
        });
        LocalOptions { parallel: self.sweep_panel.parallel, threads: self.default_threads, waker: Some(waker) }
    }

    pub(super) fn act_on_sweep(&mut self, action: SweepAction) {
        let request = match action {
            SweepAction::Open => {
                match self.dialogs.pick_file("Open sweep (a sweep file, or a sweep folder's sweep.toml)") {
                    Some(path) => IoRequest::ReadSweep(path),
                    None => return,
                }
            }
            SweepAction::Start => {
                let Some(runs_dir) = self.runs_dir.clone() else {
                    self.error("This session records no runs; a sweep's trials are runs, so it needs a runs folder.");
                    return;
                };
                let Some(opened) = &self.sweep_panel.opened else { return };
                IoRequest::StartSweep { runs_dir, plan: Box::new(opened.plan.clone()), options: self.sweep_options() }
            }
            SweepAction::Resume => {
                let Some(dir) = self.sweep_panel.opened.as_ref().and_then(|o| o.dir.clone()) else { return };
                IoRequest::ResumeSweep { dir, options: self.sweep_options() }
            }
            SweepAction::Stop => {
                if let Some(sweep) = &self.sweep {
                    sweep.stop();
                } else if self.sweep_starting {
                    // the io thread is still starting it: stop it when the handle arrives
                    self.sweep_stop_pending = true;
                }
                return;
            }
            SweepAction::CancelSlurm => {
                let Some(dir) = self.sweep_panel.opened.as_ref().and_then(|o| o.dir.clone()) else { return };
                IoRequest::CancelSlurm(dir)
            }
            SweepAction::OpenTrial(dir) => {
                self.runs.selected.insert(dir.clone());
                self.view = View::Runs;
                IoRequest::LoadRun(dir)
            }
        };
        let starts = matches!(request, IoRequest::StartSweep { .. } | IoRequest::ResumeSweep { .. });
        if !self.io.send(request) {
            self.error("Gradlab is busy with files; try again in a moment.");
        } else if starts {
            self.sweep_starting = true;
        }
    }

    /// Asks the io thread for a Slurm sweep's queue and trials, at most every `SLURM_POLL`.
    pub(super) fn poll_slurm(&mut self) {
        let Some(dir) = self.sweep_panel.slurm_watch() else { return };
        if self.last_slurm_poll.is_none_or(|t| t.elapsed() >= SLURM_POLL) && self.io.send(IoRequest::SlurmStatus(dir)) {
            self.last_slurm_poll = Some(Instant::now());
        }
    }

    /// Asks the io thread for the best trial's curves when they are missing or behind its record.
    pub(super) fn load_best_trial(&mut self, dir: Option<PathBuf>) {
        let Some(dir) = dir else { return };
        let Some(epochs) = self.runs.runs.iter().find(|(d, _)| *d == dir).map(|(_, i)| i.epochs_completed) else {
            return;
        };
        let have = self.runs.loaded.get(&dir).map(|(n, ..)| *n);
        let asked = Some((dir.clone(), epochs));
        if have != Some(epochs) && self.best_requested != asked && self.io.send(IoRequest::LoadRun(dir)) {
            self.best_requested = asked;
        }
    }
}
