//! What the GUI knows of the current run, built from the training thread's events.

use std::time::{Duration, Instant};

use super::curve_plot::Marker;
use super::series::Series;
use crate::task::Task;
use crate::train::generative::GanFigures;
use crate::train::generative_views::{GridKind, ImageGrid, LatentMap};
use crate::train::text::{EmbeddingMap, TextSample};
use crate::train::{EpochMetrics, Event, RunStatus, Summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    /// Start was sent; the thread is loading data and building the model.
    Starting,
    Running,
    Paused,
    Finished(RunStatus),
}

impl Phase {
    pub fn is_active(self) -> bool {
        matches!(self, Phase::Starting | Phase::Running | Phase::Paused)
    }
}

/// The live run: curves, epochs, progress.
pub struct LiveRun {
    pub phase: Phase,
    pub title: String,
    pub data: String,
    pub class_names: Vec<String>,
    pub layers: Vec<String>,
    pub params: usize,
    pub threads: usize,
    /// Where the run computes (`Compute.label`), shown in the status bar.
    pub device: String,
    pub train_samples: usize,
    pub batches_per_epoch: usize,
    pub epochs: usize,
    /// The batches' loss and accuracy by global step and wall time (with their smoothing).
    pub step_loss: Series,
    pub step_accuracy: Series,
    /// Where the run paused, resumed, forked or had its learning rate set.
    pub markers: Vec<Marker>,
    /// The last step seen and its wall time (where a pause marker goes).
    last_step: (u32, f32),
    pub epoch_metrics: Vec<EpochMetrics>,
    /// Current position: epoch (1-based), batches done in it, samples/s.
    pub epoch: usize,
    pub batch: usize,
    pub samples_per_s: f64,
    pub learning_rate: f64,
    pub started_at: Option<Instant>,
    /// Time spent paused, not counted as elapsed.
    paused_for: Duration,
    paused_at: Option<Instant>,
    finished_elapsed: Option<Duration>,
    pub summary: Option<Summary>,
    pub error: Option<String>,
    pub run_dir: Option<std::path::PathBuf>,
    pub task: Task,
    /// The run reads text: the text views show.
    pub text: bool,
    /// What the language model wrote, newest last (at most `MAX_SAMPLES`).
    pub text_samples: Vec<TextSample>,
    /// The classifier's answer for typed text.
    pub probe: Option<(String, Vec<f32>)>,
    pub embedding: Option<EmbeddingMap>,
    /// A GAN's figures per batch: x in epochs (fractional).
    pub gan_steps: Vec<(f64, GanFigures)>,
    /// A generative model's grids, one per kind and epoch, in arrival order (the views browse
    /// past epochs).
    pub grids: Vec<ImageGrid>,
    pub latent: Option<LatentMap>,
}

/// Text samples kept for the sample panel.
const MAX_SAMPLES: usize = 50;

impl Default for LiveRun {
    fn default() -> Self {
        Self {
            phase: Phase::Idle,
            title: String::new(),
            data: String::new(),
            class_names: vec![],
            layers: vec![],
            params: 0,
            threads: 0,
            device: String::new(),
            train_samples: 0,
            batches_per_epoch: 0,
            epochs: 0,
            step_loss: Series::default(),
            step_accuracy: Series::default(),
            markers: vec![],
            last_step: (0, 0.0),
            epoch_metrics: vec![],
            epoch: 0,
            batch: 0,
            samples_per_s: 0.0,
            learning_rate: 0.0,
            started_at: None,
            paused_for: Duration::ZERO,
            paused_at: None,
            finished_elapsed: None,
            summary: None,
            error: None,
            run_dir: None,
            task: Task::Classify,
            text: false,
            text_samples: vec![],
            probe: None,
            embedding: None,
            gan_steps: vec![],
            grids: vec![],
            latent: None,
        }
    }
}

impl LiveRun {
    /// A fresh view for a run about to start.
    pub fn starting() -> Self {
        Self { phase: Phase::Starting, started_at: Some(Instant::now()), ..Self::default() }
    }

    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Started {
                title,
                data,
                class_names,
                train_samples,
                params,
                layers,
                batches_per_epoch,
                epochs,
                first_epoch,
                threads,
                device,
                run_dir,
                task,
                text,
                ..
            } => {
                self.task = task;
                self.text = text;
                self.phase = Phase::Running;
                self.title = title;
                self.data = data;
                self.class_names = class_names;
                self.train_samples = train_samples;
                self.params = params;
                self.layers = layers;
                self.batches_per_epoch = batches_per_epoch;
                self.epochs = epochs;
                self.epoch = first_epoch;
                self.threads = threads;
                self.device = device;
                self.run_dir = run_dir;
                self.started_at = Some(Instant::now());
                if first_epoch > 1 {
                    // a resumed or forked run: its curve goes on from the checkpoint's step
                    let step = ((first_epoch - 1) * batches_per_epoch) as u32;
                    self.last_step = (step, self.last_step.1);
                    self.markers.push(Marker {
                        step,
                        epoch: (first_epoch - 1) as f64,
                        time_s: f32::NAN,
                        label: format!("from epoch {}", first_epoch - 1),
                    });
                }
            }
            Event::Step { epoch, batch, global_step, loss, accuracy, learning_rate, samples_per_s, elapsed_s } => {
                let (step, time) = (global_step as u32, elapsed_s as f32);
                self.step_loss.push(step, time, loss as f32);
                self.step_accuracy.push(step, time, accuracy as f32);
                self.last_step = (step, time);
                // a fork's marker learns its time with the first step after it
                for m in self.markers.iter_mut().filter(|m| m.time_s.is_nan()) {
                    m.time_s = time;
                }
                self.epoch = epoch;
                self.batch = batch;
                self.samples_per_s = samples_per_s;
                self.learning_rate = learning_rate;
            }
            Event::Epoch(m) => {
                self.epoch = m.epoch;
                self.batch = self.batches_per_epoch;
                self.epoch_metrics.push(m);
            }
            Event::Paused { .. } => {
                self.phase = Phase::Paused;
                self.paused_at = Some(Instant::now());
                self.marker("paused");
            }
            Event::Resumed => {
                self.phase = Phase::Running;
                self.marker("resumed");
                if let Some(at) = self.paused_at.take() {
                    self.paused_for += at.elapsed();
                }
            }
            Event::Finished(summary) => {
                self.finished_elapsed = Some(Duration::from_secs_f64(summary.wall_time_s));
                self.phase = Phase::Finished(summary.status);
                self.summary = Some(summary);
            }
            Event::Failed { error } => {
                self.finished_elapsed = Some(self.elapsed());
                self.phase = Phase::Finished(RunStatus::Failed);
                self.error = Some(error);
            }
            Event::TextSample(sample) => {
                if self.text_samples.len() >= MAX_SAMPLES {
                    self.text_samples.remove(0);
                }
                self.text_samples.push(sample);
            }
            Event::Probe { text, probabilities } => self.probe = Some((text, probabilities)),
            Event::Embedding(map) => self.embedding = Some(map),
            Event::GanStep { epochs, figures, .. } => self.gan_steps.push((epochs, figures)),
            Event::Images(grid) => {
                // a resumed epoch's grid replaces the one sent before
                self.grids.retain(|g| (g.kind, g.epoch) != (grid.kind, grid.epoch));
                self.grids.push(grid);
            }
            Event::Latent(map) => self.latent = Some(map),
            Event::LearningRateSet { global_step, learning_rate } => {
                let step = global_step as u32;
                // the time of the step it takes effect at: the last one seen, or the next
                let time_s = if step <= self.last_step.0 { self.last_step.1 } else { f32::NAN };
                let epoch = f64::from(step) / self.batches_per_epoch.max(1) as f64;
                let label = format!("lr {}", super::lr_view::lr_text(learning_rate));
                self.markers.push(Marker { step, epoch, time_s, label });
            }
            // the app routes these to the inside views and the learning-rate window
            Event::Predictions(_)
            | Event::Inspected { .. }
            | Event::LayerStats(_)
            | Event::Boundary(_)
            | Event::LrFinder(_) => {}
        }
    }

    fn marker(&mut self, label: &str) {
        let (step, time_s) = self.last_step;
        let epoch = f64::from(step) / self.batches_per_epoch.max(1) as f64;
        self.markers.push(Marker { step, epoch, time_s, label: label.into() });
    }

    /// The smoothing of both step curves (recomputed only when it changes).
    pub fn set_smoothing(&mut self, smoothing: f32) {
        self.step_loss.set_smoothing(smoothing);
        self.step_accuracy.set_smoothing(smoothing);
    }

    /// The grids of one kind, by epoch.
    pub fn grids_of(&self, kind: GridKind) -> Vec<&ImageGrid> {
        let mut out: Vec<&ImageGrid> = self.grids.iter().filter(|g| g.kind == kind).collect();
        out.sort_by_key(|g| g.epoch);
        out
    }

    /// Adds what a resumed run did before this session (epochs and steps before the first new
    /// one), so its curves show the whole run.
    pub fn prepend_history(&mut self, data: &crate::record::RunData) {
        let first_new = self.epoch_metrics.first().map_or(self.epoch, |m| m.epoch);
        let bpe = self.batches_per_epoch.max(1) as f64;
        let old_epochs: Vec<EpochMetrics> = data.epochs.iter().filter(|m| m.epoch < first_new).cloned().collect();
        let cut = (first_new.saturating_sub(1)) as f64;
        if old_epochs.is_empty() || self.epoch_metrics.iter().any(|m| m.epoch < first_new) {
            return;
        }
        self.epoch_metrics.splice(0..0, old_epochs);
        let mut old_loss = Series::default();
        let mut old_accuracy = Series::default();
        for (i, s) in data.steps.iter().enumerate().filter(|(_, s)| s[0] / bpe <= cut) {
            // runs recorded before step times were kept have none: their steps sit at 0:00
            let time = data.step_elapsed_s.get(i).copied().filter(|t| t.is_finite()).unwrap_or(0.0);
            old_loss.push(s[0] as u32, time, s[1] as f32);
            if let Some(&a) = data.step_accuracy.get(i) {
                old_accuracy.push(s[0] as u32, time, a);
            }
        }
        self.step_loss.prepend(&old_loss);
        if !old_accuracy.is_empty() {
            self.step_accuracy.prepend(&old_accuracy);
        }
    }

    pub fn elapsed(&self) -> Duration {
        if let Some(d) = self.finished_elapsed {
            return d;
        }
        let Some(start) = self.started_at else {
            return Duration::ZERO;
        };
        let paused_now = self.paused_at.map_or(Duration::ZERO, |p| p.elapsed());
        start.elapsed().saturating_sub(self.paused_for + paused_now)
    }

    /// Estimated time left, from the samples/s of the last steps.
    pub fn eta(&self) -> Option<Duration> {
        if self.phase != Phase::Running || self.samples_per_s <= 0.0 || self.batches_per_epoch == 0 {
            return None;
        }
        let batches_left = (self.epochs.saturating_sub(self.epoch)) * self.batches_per_epoch
            + self.batches_per_epoch.saturating_sub(self.batch);
        let per_batch = self.train_samples as f64 / self.batches_per_epoch as f64;
        Some(Duration::from_secs_f64(batches_left as f64 * per_batch / self.samples_per_s))
    }

    /// Replaces the measured speed and time, which differ between runs, so that a snapshot of
    /// a finished run is the same every time. For tests.
    #[doc(hidden)]
    pub fn fix_timings_for_snapshot(&mut self, samples_per_s: f64, elapsed_s: f64) {
        self.samples_per_s = samples_per_s;
        self.finished_elapsed = Some(Duration::from_secs_f64(elapsed_s));
        if let Some(s) = &mut self.summary {
            s.samples_per_s = samples_per_s;
            s.wall_time_s = elapsed_s;
        }
        for s in &mut self.text_samples {
            s.millis = 100.0;
        }
        for m in &mut self.epoch_metrics {
            m.samples_per_s = samples_per_s;
            m.elapsed_s = elapsed_s * m.epoch as f64 / self.epochs.max(1) as f64;
        }
    }

    pub fn latest_epoch(&self) -> Option<&EpochMetrics> {
        self.epoch_metrics.last()
    }
}
