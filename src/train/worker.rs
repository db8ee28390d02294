//! The training thread: owns the device and the session, takes commands, sends events.
//!
//! Epoch and lifecycle events are sent blocking and never lost; per-step events are sent with
//! `try_send` and counted when the channel is full. Commands are read at batch boundaries.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError, TrySendError};

use super::control::{apply_views, find_learning_rate, send_boundary, unavailable, Control};
use super::event::{Command, Event, RunRequest, RunStatus, Summary};
use super::inspect::InsideInfo;
use super::prepare::{prepare, Progress};
use super::session::Session;
use super::text;
use crate::config::Preset;
use crate::error::{Error, Result};
use crate::record::CheckpointState;

/// Called after events are sent, so a GUI can request a repaint.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

const COMMAND_CAPACITY: usize = 64;
const EVENT_CAPACITY: usize = 1024;
/// Step events wake the receiver at most this often, unless the options say otherwise.
pub const STEP_WAKE_INTERVAL: Duration = Duration::from_millis(250);

pub struct WorkerOptions {
    /// Threads when the preset says 0: all cores headless, one fewer with a GUI.
    pub default_threads: usize,
    pub waker: Option<Waker>,
    /// Where run directories go; `None` records nothing.
    pub runs_dir: Option<PathBuf>,
    /// Step events wake the receiver at most this often (epoch and lifecycle events at once).
    pub step_wake_interval: Duration,
    /// A sweep trial: fresh runs are created with this tag, resumed ones get it refreshed.
    pub sweep: Option<crate::record::SweepTag>,
    /// Stop at the end of this epoch (successive halving's rungs): the run ends `stopped` at an
    /// epoch boundary, its checkpoint written, and resumes exactly as if never stopped.
    pub until_epoch: Option<usize>,
}

impl WorkerOptions {
    pub fn headless(runs_dir: Option<PathBuf>) -> Self {
        Self {
            default_threads: cores(),
            waker: None,
            runs_dir,
            step_wake_interval: STEP_WAKE_INTERVAL,
            sweep: None,
            until_epoch: None,
        }
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// How many times candle's element-wise workers spin before they sleep, unless the user set it.
const CANDLE_SPIN_LIMIT: &str = "1000";

/// Call first thing in `main`, before any thread starts (it sets an environment variable).
///
/// candle 0.11 runs its element-wise ops on a pool of its own whose workers spin 25,000 times
/// waiting for the next op before they sleep. Our compute pool keeps the same cores busy between
/// those ops, so the spinning took their time: a quarter of the CPU samples of a VAE's training
/// were a candle worker spinning. With 1,000 spins, `gradlab bench --no-reference` on the 2-core
/// machine went from 1,275 to 1,907 samples/s (DCGAN), 3,055 to 3,857 (MLP GAN), 15,100 to 18,100
/// (VAE), 4,170 to 4,940 (CNN), 1,480 to 1,910 (character LSTM); the transformer was unchanged.
pub fn tune_candle_pool() {
    const VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(VAR).is_none() {
        std::env::set_var(VAR, CANDLE_SPIN_LIMIT);
    }
}

/// The handle the GUI or CLI holds.
pub struct Trainer {
    commands: Sender<Command>,
    events: Receiver<Event>,
    dropped_steps: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Trainer {
    pub fn spawn(options: WorkerOptions) -> Self {
        let (cmd_tx, cmd_rx) = bounded(COMMAND_CAPACITY);
        let (ev_tx, ev_rx) = bounded(EVENT_CAPACITY);
        let dropped_steps = Arc::new(AtomicU64::new(0));
        let sender = EventSender {
            tx: ev_tx,
            dropped: dropped_steps.clone(),
            waker: options.waker.clone(),
            last_wake: Instant::now(),
            step_wake_interval: options.step_wake_interval,
        };
        let thread = std::thread::Builder::new()
            .name("gradlab-train".into())
            .spawn(move || worker_main(&cmd_rx, sender, options))
            .expect("spawning the training thread");
        Self { commands: cmd_tx, events: ev_rx, dropped_steps, thread: Some(thread) }
    }

    /// Sends a command without blocking; false when the queue is full or the thread is gone.
    pub fn send(&self, command: Command) -> bool {
        self.commands.try_send(command).is_ok()
    }

    pub fn try_recv(&self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Blocks for the next event (for the CLI); `None` when the thread has ended.
    pub fn recv(&self) -> Option<Event> {
        self.events.recv().ok()
    }

    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Step events dropped because the receiver was behind (dropped layer statistics and
    /// boundaries are replaced by the next ones, and not counted).
    pub fn dropped_steps(&self) -> u64 {
        self.dropped_steps.load(Ordering::Relaxed)
    }
}

impl Drop for Trainer {
    fn drop(&mut self) {
        let _ = self.commands.try_send(Command::Shutdown);
        // Hang up both channels: a worker waiting for a command, or blocked sending an event to
        // a full channel, sees the disconnection and ends (even if Shutdown did not fit).
        drop(std::mem::replace(&mut self.commands, bounded(1).0));
        drop(std::mem::replace(&mut self.events, bounded(0).1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(super) struct EventSender {
    tx: Sender<Event>,
    dropped: Arc<AtomicU64>,
    waker: Option<Waker>,
    last_wake: Instant,
    step_wake_interval: Duration,
}

/// The receiver went away: the app closed.
pub(super) struct Disconnected;

impl EventSender {
    pub(super) fn send(&mut self, event: Event) -> Result<(), Disconnected> {
        if event.is_droppable() {
            // only steps count: "step updates skipped" is what the status bar says of them
            let step = matches!(event, Event::Step { .. } | Event::GanStep { .. });
            match self.tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    if step {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(TrySendError::Disconnected(_)) => return Err(Disconnected),
            }
            if self.last_wake.elapsed() >= self.step_wake_interval {
                self.wake();
            }
        } else {
            self.send_blocking(event)?;
        }
        Ok(())
    }

    /// Sends even a droppable event, waiting for room: one that is not sent again soon (the
    /// boundary at a pause, a run's end, a subscription).
    pub(super) fn send_blocking(&mut self, event: Event) -> Result<(), Disconnected> {
        self.tx.send(event).map_err(|_| Disconnected)?;
        self.wake();
        Ok(())
    }

    fn wake(&mut self) {
        self.last_wake = Instant::now();
        if let Some(w) = &self.waker {
            w();
        }
    }
}

fn worker_main(commands: &Receiver<Command>, mut events: EventSender, mut options: WorkerOptions) {
    // a finished or stopped run's session stays to answer the views (samples, saliency, text
    // probes) until the next run starts
    let mut last: Option<Session> = None;
    // its compute pool: answers between runs take the run's threads, not rayon's global pool (all
    // the cores)
    let mut last_pool: Option<rayon::ThreadPool> = None;
    let mut idle = Control::default();
    // the commands that came while the learning-rate finder ran (a Start that ended it last)
    let mut next: VecDeque<Command> = VecDeque::new();
    // the last run failed, so there is no model for the questions (rather than none started)
    let mut last_failed = false;
    while let Some(command) = next.pop_front().or_else(|| commands.recv().ok()) {
        match command {
            Command::Start(request) => {
                last = None;
                last_pool = None;
                // the open views stay subscribed from one run to the next
                let mut control = Control { views: idle.views, ..Control::default() };
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    run(*request, commands, &mut events, &options, &mut control, &mut last, &mut last_pool)
                }));
                idle = Control { views: control.views, ..Control::default() };
                if let Some(dir) = control.runs_dir.take() {
                    options.runs_dir = Some(dir);
                }
                last_failed = matches!(outcome, Ok(Err(RunError::Failed(_))) | Err(_));
                let flow = match outcome {
                    Ok(Ok(flow)) => flow,
                    Ok(Err(RunError::Disconnected)) => Flow::Exit,
                    Ok(Err(RunError::Failed(error))) => send_failed(&mut events, error.to_string()),
                    Err(panic) => {
                        let reason = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(ToString::to_string))
                            .unwrap_or_else(|| "unknown panic".into());
                        send_failed(&mut events, format!("internal error in training: {reason}"))
                    }
                };
                if flow == Flow::Exit {
                    return;
                }
            }
            Command::Shutdown => return,
            Command::SetRunsDir(dir) => options.runs_dir = Some(dir),
            Command::Subscribe(views) => {
                idle.views = views;
                // the finished run's boundary at once, for a view opened after it
                // (a `&mut`: a session is Send, not Sync, and the answer runs on the pool's thread)
                if let (true, Some(session)) = (views.boundary, last.as_mut()) {
                    let events = &mut events;
                    if in_pool(last_pool.as_ref(), move || send_boundary(session, events, true)).is_err() {
                        return;
                    }
                }
            }
            Command::FindLearningRate(request) => match find_learning_rate(&request, commands, &mut events, &options) {
                Ok(then) => next.extend(then),
                Err(Disconnected) => return,
            },
            command @ (Command::Generate { .. } | Command::Probe(_) | Command::Inspect(_)) => {
                match (last.as_mut(), command) {
                    (Some(session), command) => in_pool(last_pool.as_ref(), || idle.apply(command, session)),
                    // every question is answered, so the GUI's one request in flight is freed
                    (None, Command::Inspect(request)) => {
                        let why = if last_failed {
                            "the last run failed: start a run to look inside"
                        } else {
                            "no model yet: start a run first"
                        };
                        idle.replies.push(unavailable(&request, why));
                    }
                    (None, _) => {}
                }
                if idle.send_replies(&mut events).is_err() {
                    return;
                }
            }
            // Nothing runs: pause, resume, stop and learning rates have nothing to act on.
            _ => {}
        }
    }
}

/// Runs `f` in the last run's compute pool when there is one.
fn in_pool<R: Send>(pool: Option<&rayon::ThreadPool>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

fn send_failed(events: &mut EventSender, error: String) -> Flow {
    match events.send(Event::Failed { error }) {
        Ok(()) => Flow::Continue,
        Err(Disconnected) => Flow::Exit,
    }
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
}

enum RunError {
    Failed(Error),
    Disconnected,
}

impl From<Error> for RunError {
    fn from(e: Error) -> Self {
        RunError::Failed(e)
    }
}

impl From<Disconnected> for RunError {
    fn from(_: Disconnected) -> Self {
        RunError::Disconnected
    }
}

impl From<candle_core::Error> for RunError {
    fn from(e: candle_core::Error) -> Self {
        RunError::Failed(e.into())
    }
}

pub fn resolve_threads(preset: &Preset, default_threads: usize) -> usize {
    let wanted = if preset.train.threads == 0 { default_threads } else { preset.train.threads };
    wanted.clamp(1, cores())
}

fn run(
    request: RunRequest,
    commands: &Receiver<Command>,
    events: &mut EventSender,
    options: &WorkerOptions,
    control: &mut Control,
    last: &mut Option<Session>,
    last_pool: &mut Option<rayon::ThreadPool>,
) -> Result<Flow, RunError> {
    let threads = resolve_threads(&request.preset, options.default_threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("gradlab-compute-{i}"))
        .build()
        .map_err(|e| Error::Other(format!("cannot start {threads} compute threads: {e}")))?;
    let flow = pool.install(|| run_in_pool(request, commands, events, options, threads, control, last));
    if last.is_some() {
        *last_pool = Some(pool);
    }
    flow
}

fn run_in_pool(
    request: RunRequest,
    commands: &Receiver<Command>,
    events: &mut EventSender,
    options: &WorkerOptions,
    threads: usize,
    control: &mut Control,
    last: &mut Option<Session>,
) -> Result<Flow, RunError> {
    let started = Instant::now();
    let prepared = prepare(request, options)?;
    let (mut session, mut recorder, mut progress) = (prepared.session, prepared.recorder, prepared.progress);
    if let Some(r) = recorder.as_mut() {
        if let Err(e) = r.started(&session, threads) {
            r.mark_failed(&e);
            return Err(e.into());
        }
    }
    events.send(Event::Started {
        title: session.preset.title.clone(),
        data: session.data.title.clone(),
        class_names: session.data.class_names.clone(),
        train_samples: session.data.train.len(),
        validation_samples: session.data.validation.len(),
        params: session.net.param_count(),
        layers: session.net.layers().iter().map(|l| frozen_mark(&session.preset, &l.description)).collect(),
        batches_per_epoch: session.batches_per_epoch,
        epochs: session.preset.train.epochs,
        first_epoch: session.epoch + 1,
        threads,
        device: session.compute.label.clone(),
        run_dir: recorder.as_ref().map(|r| r.dir().to_path_buf()),
        task: session.preset.task,
        text: session.data.text.is_some(),
        inside: InsideInfo::of(&session.net, &session.data.input_shape, session.data.kind),
    })?;
    apply_views(&mut session, control.views);
    control.boundary_now = control.views.boundary;

    let mut last_validation = None;
    let elapsed_before = progress.elapsed_s;
    let mut rate_ema: Option<f64> = None;
    let checkpoint_every = checkpoint_interval(&session.preset);
    let mut last_checkpoint = Instant::now();
    let result: Result<(), RunError> = (|| loop {
        loop {
            match commands.try_recv() {
                Ok(c) => control.apply(c, &mut session),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    control.stop = true;
                    control.exit = true;
                    break;
                }
            }
        }
        control.send_replies(events)?;
        if control.paused && !control.stop {
            events.send(Event::Paused { epoch: session.epoch + 1, batch: session.batch })?;
            control.boundary_now = true;
            control.maybe_boundary(&session, events)?;
            while control.paused && !control.stop {
                match commands.recv() {
                    Ok(c) => control.apply(c, &mut session),
                    Err(_) => {
                        control.stop = true;
                        control.exit = true;
                    }
                }
                control.send_replies(events)?;
                control.maybe_boundary(&session, events)?;
            }
            if !control.stop {
                events.send(Event::Resumed)?;
            }
        }
        let rung_done = options.until_epoch.is_some_and(|until| session.epoch >= until && session.batch == 0);
        if control.stop || session.finished() || rung_done {
            if let (Some(r), true) = (recorder.as_mut(), session.batch > 0 && !session.finished()) {
                // stopped within an epoch: keep the batches trained since the last checkpoint
                let elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
                r.checkpoint(&session, &checkpoint_state(&session, &progress, elapsed_s))?;
            }
            return Ok(());
        }
        let t0 = Instant::now();
        let step = session.train_batch()?;
        let dt = t0.elapsed().as_secs_f64();
        progress.train_time_s += dt;
        progress.samples_seen += step.size;
        let rate = step.size as f64 / dt.max(1e-9);
        let ema = rate_ema.map_or(rate, |r| 0.9 * r + 0.1 * rate);
        rate_ema = Some(ema);
        let elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
        if let Some(r) = recorder.as_mut() {
            r.step(&step, global_step(&session), ema, elapsed_s)?;
        }
        events.send(Event::Step {
            epoch: step.epoch + 1,
            batch: step.batch + 1,
            global_step: global_step(&session),
            loss: step.loss,
            accuracy: step.accuracy(),
            learning_rate: step.learning_rate,
            samples_per_s: ema,
            elapsed_s,
        })?;
        if let Some(stats) = session.layer_stats.as_mut().and_then(|s| s.take()) {
            events.send(Event::LayerStats(Box::new(stats)))?;
        }
        control.maybe_boundary(&session, events)?;
        if let Some(figures) = step.gan {
            let epochs = global_step(&session) as f64 / session.batches_per_epoch.max(1) as f64;
            events.send(Event::GanStep { global_step: global_step(&session), epochs, figures })?;
        }
        if session.epoch_done() {
            let metrics = session.finish_epoch(elapsed_before + started.elapsed().as_secs_f64())?;
            // a generative model has no accuracy to pick a best epoch by
            let scored = session.preset.task.has_accuracy();
            if scored && progress.best_validation_accuracy.is_none_or(|acc| metrics.validation.accuracy > acc) {
                progress.best_epoch = Some(metrics.epoch);
                progress.best_validation_accuracy = Some(metrics.validation.accuracy);
            }
            if let Some(r) = recorder.as_mut() {
                // finish_epoch moved the session to the next epoch's start: batch 0, no sums yet
                let state = CheckpointState {
                    validation_accuracy: metrics.validation.accuracy,
                    ..checkpoint_state(&session, &progress, metrics.elapsed_s)
                };
                r.epoch(&metrics, &session, &state)?;
            }
            last_validation = Some(metrics.validation.clone());
            last_checkpoint = Instant::now();
            events.send(Event::Epoch(metrics))?;
            if let Some(predictions) = session.predictions.take() {
                events.send(Event::Predictions(predictions))?;
            }
            // a view's sample failing is no reason to stop the training
            match text::epoch_events(&session) {
                Ok(text_events) => {
                    for event in text_events {
                        events.send(event)?;
                    }
                }
                Err(e) => eprintln!("gradlab: the epoch's text sample failed: {e}"),
            }
            match super::generative_views::epoch_events(&session) {
                Ok(views) => {
                    for event in views {
                        if let (Some(r), Event::Images(grid)) = (recorder.as_mut(), &event) {
                            r.grid(grid)?;
                        }
                        events.send(event)?;
                    }
                }
                Err(e) => eprintln!("gradlab: the epoch's generative views failed: {e}"),
            }
        } else if checkpoint_every.is_some_and(|every| last_checkpoint.elapsed() >= every) {
            if let Some(r) = recorder.as_mut() {
                let elapsed_s = elapsed_before + started.elapsed().as_secs_f64();
                r.checkpoint(&session, &checkpoint_state(&session, &progress, elapsed_s))?;
                last_checkpoint = Instant::now();
            }
        }
    })();

    let status = match &result {
        Ok(()) if session.finished() => RunStatus::Completed,
        Ok(()) => RunStatus::Stopped,
        Err(_) => RunStatus::Failed,
    };
    let test = match (&session.data.test, status) {
        (Some(test), RunStatus::Completed) => Some(session.evaluate(test)?),
        _ => None,
    };
    let summary = Summary {
        status,
        epochs_completed: session.epoch,
        best_epoch: progress.best_epoch,
        best_validation_accuracy: progress.best_validation_accuracy,
        final_validation: last_validation,
        test,
        wall_time_s: elapsed_before + started.elapsed().as_secs_f64(),
        samples_per_s: progress.samples_seen as f64 / progress.train_time_s.max(1e-9),
        params: session.net.param_count(),
        threads,
        run_dir: recorder.as_ref().map(|r| r.dir().to_path_buf()),
    };
    if let Some(r) = recorder.as_mut() {
        let error = match &result {
            Err(RunError::Failed(e)) => Some(e.to_string()),
            _ => None,
        };
        if let Err(finish_error) = r.finish(&summary, error.as_deref()) {
            // the reason the run stopped comes first; that its summary could not be written
            // either (a full disk) follows
            return Err(RunError::Failed(match error {
                Some(e) => Error::Other(format!("{e}; the run's summary could not be updated either: {finish_error}")),
                None => finish_error,
            }));
        }
    }
    result?;
    control.boundary_now = true;
    control.maybe_boundary(&session, events)?;
    events.send(Event::Finished(summary))?;
    *last = Some(session);
    Ok(if control.exit { Flow::Exit } else { Flow::Continue })
}

/// A checkpoint's state at the session's position: within an epoch, or at the start of one.
fn checkpoint_state(session: &Session, progress: &Progress, elapsed_s: f64) -> CheckpointState {
    CheckpointState {
        epoch: session.epoch,
        batch: session.batch,
        epoch_progress: session.epoch_progress().clone(),
        optimizer_steps: session.optimizer.steps,
        base_learning_rate: session.base_learning_rate,
        rng: session.rng.clone(),
        best_epoch: progress.best_epoch,
        best_validation_accuracy: progress.best_validation_accuracy,
        // no validation within an epoch (an epoch's end sets it); `best` export picks among epoch
        // checkpoints only
        validation_accuracy: 0.0,
        samples_seen: progress.samples_seen,
        train_time_s: progress.train_time_s,
        elapsed_s,
    }
}

/// How often a checkpoint is written within an epoch; `None` when the preset turns it off.
fn checkpoint_interval(preset: &Preset) -> Option<Duration> {
    let minutes = preset.train.checkpoint_minutes;
    (minutes > 0.0 && minutes.is_finite()).then(|| Duration::from_secs_f64(minutes * 60.0))
}

pub(super) fn global_step(session: &Session) -> usize {
    session.epoch * session.batches_per_epoch + session.batch
}

/// A layer's description, marked when transfer learning freezes it.
fn frozen_mark(preset: &Preset, description: &str) -> String {
    let frozen =
        preset.transfer.as_ref().is_some_and(|t| t.freeze.iter().any(|f| description.starts_with(&format!("{f}:"))));
    if frozen {
        format!("{description} (frozen)")
    } else {
        description.to_string()
    }
}
