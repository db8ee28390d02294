//! Local sweeps: the "gradlab-sweep" thread drives up to N in-process `Trainer`s (one per running
//! trial, each with its own compute pool), fills free slots in trial order, promotes halving's
//! survivors rung by rung, and stops or resumes the whole sweep.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::plan::Plan;
use super::state::SweepSummary;
use crate::error::{Error, Result};
use crate::train::{RunStatus, Waker};

/// How a local sweep runs.
#[derive(Clone)]
pub struct LocalOptions {
    /// Trials at once (clamped to `1..=threads`).
    pub parallel: usize,
    /// Threads shared among the slots (`ThreadSplit`): all cores headless, the GUI's
    /// `default_threads` with a window.
    pub threads: usize,
    /// Called after each event is sent (a GUI's repaint).
    pub waker: Option<Waker>,
}

impl LocalOptions {
    pub fn headless(parallel: usize) -> Self {
        Self { parallel, threads: crate::train::cores(), waker: None }
    }
}

/// What a local sweep reports (epoch-level; steps stay inside the trials).
#[derive(Debug, Clone)]
pub enum SweepEvent {
    /// The sweep folder exists and the driver runs.
    Started {
        dir: PathBuf,
        trials: usize,
        rungs: usize,
    },
    TrialStarted {
        trial: usize,
        rung: usize,
        run_dir: Option<PathBuf>,
        threads: usize,
    },
    TrialEpoch {
        trial: usize,
        epoch: usize,
        epochs: usize,
        validation_loss: f64,
        validation_accuracy: f64,
    },
    /// A trial's Trainer ended: completed, stopped (a rung's end or Stop), or failed.
    TrialEnded {
        trial: usize,
        status: RunStatus,
        run_dir: Option<PathBuf>,
        error: Option<String>,
    },
    /// A halving rung ended: these trials go on, these stay stopped (pruned).
    RungEnded {
        rung: usize,
        promoted: Vec<usize>,
        pruned: Vec<usize>,
    },
    /// The sweep ended (completed, or stopped): summary.json as written.
    Finished(SweepSummary),
    /// The driver could not go on (a sweep folder it cannot write).
    Failed(String),
}

enum Control {
    Stop,
}

/// A running local sweep. Dropping it stops the trials (each keeps a checkpoint) and waits.
pub struct LocalSweep {
    dir: PathBuf,
    commands: Sender<Control>,
    events: Receiver<SweepEvent>,
    thread: Option<JoinHandle<()>>,
}

impl LocalSweep {
    /// Writes `plan`'s sweep folder under `runs_dir` and starts it.
    pub fn start(runs_dir: &Path, plan: Plan, options: LocalOptions) -> Result<Self> {
        let _ = (runs_dir, plan, options);
        Err(Error::Other("local sweeps are not written yet".into()))
    }

    /// Continues the sweep in `sweep_dir`: completed trials are skipped, stopped or interrupted
    /// ones resume from their checkpoints, ones never started start fresh.
    pub fn resume(sweep_dir: &Path, options: LocalOptions) -> Result<Self> {
        let _ = (sweep_dir, options);
        Err(Error::Other("local sweeps are not written yet".into()))
    }

    /// Asks every running trial to stop (each writes a checkpoint); the sweep ends `stopped`.
    pub fn stop(&self) {
        let _ = self.commands.try_send(Control::Stop);
    }

    pub fn try_recv(&self) -> Option<SweepEvent> {
        self.events.try_recv().ok()
    }

    /// Blocks for the next event; `None` once the driver has ended and every event was read.
    pub fn recv(&self) -> Option<SweepEvent> {
        self.events.recv().ok()
    }

    pub fn recv_timeout(&self, timeout: Duration) -> Option<SweepEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// The sweep folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the driver thread still runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for LocalSweep {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
