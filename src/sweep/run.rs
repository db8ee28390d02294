//! Local sweeps: the "gradlab-sweep" thread drives up to N in-process `Trainer`s (one per running
//! trial, each with its own compute pool), fills free slots in trial order, promotes halving's
//! survivors rung by rung, and stops or resumes the whole sweep.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, Sender};

use super::plan::{Plan, ThreadSplit};
use super::rank::promote;
use super::state::{trial_runs, Mode, SweepState, SweepStatus, SweepSummary};
use crate::error::{Error, Result};
use crate::record::SweepTag;
use crate::train::{Command, Event, RunOrigin, RunRequest, RunStatus, Trainer, Waker, WorkerOptions};

const COMMAND_CAPACITY: usize = 64;
const EVENT_CAPACITY: usize = 1024;

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
        let dir = super::folder::write_sweep_dir(runs_dir, &plan)?;
        Self::launch(dir, plan, options)
    }

    /// Continues the sweep in `sweep_dir`: completed trials are skipped, stopped or interrupted
    /// ones resume from their checkpoints, ones never started start fresh.
    pub fn resume(sweep_dir: &Path, options: LocalOptions) -> Result<Self> {
        let plan = super::folder::read_plan(sweep_dir)?;
        Self::launch(sweep_dir.to_path_buf(), plan, options)
    }

    fn launch(dir: PathBuf, plan: Plan, options: LocalOptions) -> Result<Self> {
        // one driver per sweep, for as long as it drives
        let lock = SweepState::try_lock(&dir)?;
        let mut state = SweepState::read(&dir)?;
        if state.mode == Mode::Slurm {
            return Err(Error::Other(format!(
                "{}: this sweep runs on Slurm; resume it with `gradlab sweep resume --slurm`",
                dir.display()
            )));
        }
        let split = ThreadSplit::new(options.threads, options.parallel);
        state.status = SweepStatus::Running;
        state.parallel = split.parallel();
        if state.started_at.is_empty() {
            state.started_at = crate::record::timestamp();
        }
        if state.active.is_empty() && state.rung == 0 {
            state.active = (0..plan.trials.len()).collect();
        }
        state.write(&dir)?;
        let (cmd_tx, cmd_rx) = bounded(COMMAND_CAPACITY);
        let (ev_tx, ev_rx) = bounded(EVENT_CAPACITY);
        let driver = Driver {
            dir: dir.clone(),
            plan,
            state,
            split,
            events: ev_tx,
            waker: options.waker,
            commands: cmd_rx,
            started: Instant::now(),
            stopping: false,
            _lock: lock,
        };
        let thread = std::thread::Builder::new()
            .name("gradlab-sweep".into())
            .spawn(move || driver.main())
            .map_err(|e| Error::Other(format!("cannot start the sweep's thread: {e}")))?;
        Ok(Self { dir, commands: cmd_tx, events: ev_rx, thread: Some(thread) })
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
        // hang up the events, so a driver blocked sending one sees that nobody listens
        drop(std::mem::replace(&mut self.events, bounded(0).1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A trial training in a slot.
struct Running {
    trial: usize,
    trainer: Trainer,
    run_dir: Option<PathBuf>,
}

/// The "gradlab-sweep" thread's state.
struct Driver {
    dir: PathBuf,
    plan: Plan,
    state: SweepState,
    split: ThreadSplit,
    events: Sender<SweepEvent>,
    waker: Option<Waker>,
    commands: Receiver<Control>,
    started: Instant,
    stopping: bool,
    _lock: std::fs::File,
}

/// The receiver of events went away: stop the trials and end.
struct Gone;

impl Driver {
    fn main(mut self) {
        let wall_before = self.state.wall_time_s;
        let outcome = self.drive(wall_before);
        self.state.wall_time_s = wall_before + self.started.elapsed().as_secs_f64();
        if let Err(e) = &outcome {
            self.state.status = SweepStatus::Failed;
            let _ = self.send(SweepEvent::Failed(e.to_string()));
        }
        let _ = self.state.write(&self.dir);
        if let Ok(summary) = self.summary() {
            let _ = self.send(SweepEvent::Finished(summary));
        }
    }

    fn send(&self, event: SweepEvent) -> Result<(), Gone> {
        self.events.send(event).map_err(|_| Gone)?;
        if let Some(w) = &self.waker {
            w();
        }
        Ok(())
    }

    fn summary(&self) -> Result<SweepSummary> {
        let summary = SweepSummary::collect(&self.dir)?;
        summary.write(&self.dir)?;
        Ok(summary)
    }

    /// Rung by rung until the last ends or Stop; the state written at each change.
    fn drive(&mut self, wall_before: f64) -> Result<()> {
        let rungs = self.plan.rung_count();
        let started = self.send(SweepEvent::Started { dir: self.dir.clone(), trials: self.plan.trials.len(), rungs });
        if started.is_err() {
            return Ok(());
        }
        loop {
            let rung = self.state.rung;
            let ended = self.run_rung(rung);
            self.state.wall_time_s = wall_before + self.started.elapsed().as_secs_f64();
            if ended.is_err() || self.stopping {
                self.state.status = SweepStatus::Stopped;
                return Ok(());
            }
            if rung + 1 >= rungs {
                self.state.status = SweepStatus::Completed;
                return Ok(());
            }
            // rank by the metric so far; the rest stay `stopped` runs, pruned at this rung
            let (promoted, pruned) = promote(&self.plan, &mut self.state);
            self.state.write(&self.dir)?;
            self.summary()?;
            if self.send(SweepEvent::RungEnded { rung, promoted, pruned }).is_err() {
                self.state.status = SweepStatus::Stopped;
                return Ok(());
            }
        }
    }

    /// Where a trial stands for this rung: done, or the origin it starts from.
    fn origin(&self, trial: usize, until: Option<usize>) -> Option<RunOrigin> {
        match trial_runs(&self.state.runs_dir, &self.state.id).remove(&trial) {
            None => Some(RunOrigin::Fresh),
            Some((_, info)) if info.status == RunStatus::Completed => None,
            Some((_, info)) if until.is_some_and(|e| info.epochs_completed >= e) => None,
            // a failed trial is not retried on its own: its error stays in its folder
            Some((_, info)) if info.status == RunStatus::Failed => None,
            Some((dir, _)) => Some(RunOrigin::Resume(dir)),
        }
    }

    /// Trains the rung's unfinished trials, `split.parallel()` at a time, until all have ended
    /// or Stop; `Err(Gone)` when nobody listens any more.
    fn run_rung(&mut self, rung: usize) -> Result<(), Gone> {
        let until = self.plan.until_epoch(rung);
        let mut queue: std::collections::VecDeque<usize> = self.state.active.iter().copied().collect();
        let mut slots: Vec<Option<Running>> = (0..self.split.parallel()).map(|_| None).collect();
        // every trainer's waker ticks this, so the driver sleeps until something happened
        let (tick_tx, tick_rx) = bounded::<()>(1);
        let tick: Waker = Arc::new(move || {
            let _ = tick_tx.try_send(());
        });
        loop {
            if !self.stopping {
                for (slot, threads) in slots.iter_mut().zip(self.split.slots.clone()) {
                    while slot.is_none() {
                        let Some(trial) = queue.pop_front() else { break };
                        let Some(origin) = self.origin(trial, until) else { continue };
                        *slot = Some(self.launch(trial, origin, until, threads, tick.clone()));
                    }
                }
            }
            if slots.iter().all(Option::is_none) {
                return Ok(());
            }
            // once stopping, a hung-up command channel (the handle dropped) must not wake us
            // in a loop while the trials finish their batch
            let commands = if self.stopping { crossbeam_channel::never() } else { self.commands.clone() };
            select! {
                recv(commands) -> c => {
                    if matches!(c, Ok(Control::Stop) | Err(_)) && !self.stopping {
                        self.stopping = true;
                        for r in slots.iter().flatten() {
                            r.trainer.send(Command::Stop);
                        }
                    }
                }
                recv(tick_rx) -> _ => {}
                default(Duration::from_millis(500)) => {}
            }
            for slot in &mut slots {
                if let Some(ended) = slot.as_mut().and_then(|r| self.drain(r, rung).transpose()) {
                    *slot = None;
                    self.send(ended?)?;
                    let _ = self.summary();
                }
            }
        }
    }

    /// Starts one trial's Trainer in a slot of `threads` threads.
    fn launch(&self, trial: usize, origin: RunOrigin, until: Option<usize>, threads: usize, tick: Waker) -> Running {
        let mut preset = self.plan.trials[trial].preset.clone();
        preset.train.threads = threads;
        let options = WorkerOptions {
            default_threads: threads,
            waker: Some(tick),
            runs_dir: Some(self.state.runs_dir.clone()),
            step_wake_interval: crate::train::STEP_WAKE_INTERVAL,
            sweep: Some(SweepTag { sweep: self.state.id.clone(), trial, slurm_job: None }),
            until_epoch: until,
        };
        let trainer = Trainer::spawn(options);
        trainer.send(Command::Start(Box::new(RunRequest { preset, origin })));
        Running { trial, trainer, run_dir: None }
    }

    /// Forwards a trial's events; `Some(TrialEnded)` once it has ended.
    fn drain(&self, r: &mut Running, rung: usize) -> Result<Option<SweepEvent>, Gone> {
        while let Some(event) = r.trainer.try_recv() {
            match event {
                Event::Started { run_dir, threads, .. } => {
                    r.run_dir.clone_from(&run_dir);
                    self.send(SweepEvent::TrialStarted { trial: r.trial, rung, run_dir, threads })?;
                }
                Event::Epoch(m) => self.send(SweepEvent::TrialEpoch {
                    trial: r.trial,
                    epoch: m.epoch,
                    epochs: self.plan.trials[r.trial].preset.train.epochs,
                    validation_loss: m.validation.loss,
                    validation_accuracy: m.validation.accuracy,
                })?,
                Event::Finished(s) => {
                    let run_dir = s.run_dir.or_else(|| r.run_dir.clone());
                    return Ok(Some(SweepEvent::TrialEnded { trial: r.trial, status: s.status, run_dir, error: None }));
                }
                Event::Failed { error } => {
                    return Ok(Some(SweepEvent::TrialEnded {
                        trial: r.trial,
                        status: RunStatus::Failed,
                        run_dir: r.run_dir.clone(),
                        error: Some(error),
                    }))
                }
                _ => {}
            }
        }
        Ok(None)
    }
}
