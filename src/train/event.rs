//! What the training thread reports, and what it is told.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::inspect::{BoundaryMap, InsideInfo, InspectReply, InspectRequest, Predictions, Views};
use super::layer_stats::LayerStats;
use super::lr_finder::{LrFinderProgress, LrFinderRequest};
use super::metrics::Confusion;
use crate::config::Preset;

/// Commands to the training thread. They take effect at the next batch boundary.
#[derive(Debug, Clone)]
pub enum Command {
    Start(Box<RunRequest>),
    Pause,
    Resume,
    Stop,
    /// A new base learning rate (the schedule still applies on top).
    SetLearningRate(f64),
    /// A language model writes `length` tokens after `prompt` (answered with `Event::TextSample`).
    Generate {
        prompt: String,
        length: usize,
        temperature: f64,
    },
    /// A text classifier's probabilities for this text (answered with `Event::Probe`).
    Probe(String),
    /// Which costly views are open (the GUI's Inside tab); they are computed only while on.
    Subscribe(Views),
    /// A question about the model, answered with `Event::Inspected` (while training, paused or
    /// after the run, from the last session).
    Inspect(Box<InspectRequest>),
    /// Sweeps the learning rate from the preset's fresh weights, recording nothing (answered
    /// with `Event::LrFinder`); ignored while a run is active.
    FindLearningRate(Box<LrFinderRequest>),
    /// Where later runs are recorded.
    SetRunsDir(PathBuf),
    /// Ends the thread.
    Shutdown,
}

/// Where a run starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOrigin {
    Fresh,
    /// Continue the run in this directory from its last checkpoint, with its own preset.
    Resume(PathBuf),
    /// A new run from this checkpoint file, with the request's (changed) preset.
    Fork(PathBuf),
}

#[derive(Debug, Clone)]
pub struct RunRequest {
    pub preset: Preset,
    pub origin: RunOrigin,
}

impl RunRequest {
    pub fn fresh(preset: Preset) -> Command {
        Command::Start(Box::new(Self { preset, origin: RunOrigin::Fresh }))
    }
}

/// Validation (or test) figures of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    pub confusion: Confusion,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub validation: Evaluation,
    pub learning_rate: f64,
    pub samples_per_s: f64,
    pub elapsed_s: f64,
    /// A GAN's discriminator and generator figures (absent for other tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gan: Option<super::generative::GanEpoch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Completed,
    Stopped,
    Failed,
    /// Found on disk as `running` although its process is gone (killed, crashed).
    Interrupted,
}

impl RunStatus {
    pub fn title(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Stopped => "stopped",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// Final figures of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub status: RunStatus,
    pub epochs_completed: usize,
    pub best_epoch: Option<usize>,
    pub best_validation_accuracy: Option<f64>,
    pub final_validation: Option<Evaluation>,
    /// On the data set's test split, when it has one, with the final weights.
    pub test: Option<Evaluation>,
    pub wall_time_s: f64,
    pub samples_per_s: f64,
    pub params: usize,
    pub threads: usize,
    pub run_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub enum Event {
    Started {
        title: String,
        data: String,
        class_names: Vec<String>,
        train_samples: usize,
        validation_samples: usize,
        params: usize,
        layers: Vec<String>,
        batches_per_epoch: usize,
        epochs: usize,
        /// 1 for a fresh run; later when continuing from a checkpoint.
        first_epoch: usize,
        threads: usize,
        /// Where it computes (`Compute.label`: `CPU`, `CUDA 0`, `CPU (auto: no NVIDIA driver)`).
        device: String,
        run_dir: Option<PathBuf>,
        task: crate::task::Task,
        /// The input is text (the GUI offers the text views).
        text: bool,
        /// What the inside views need: input shape, data kind, conv and ReLU layers.
        inside: InsideInfo,
    },
    /// One training batch. Sent with `try_send`: may be dropped (and counted) when the
    /// receiver is behind.
    Step {
        epoch: usize,
        batch: usize,
        /// Batches done since the start of the run.
        global_step: usize,
        loss: f64,
        accuracy: f64,
        learning_rate: f64,
        samples_per_s: f64,
        /// Wall time of the run so far (earlier parts of a resumed run included).
        elapsed_s: f64,
    },
    Epoch(EpochMetrics),
    /// A classifier's validation predictions at the end of the epoch just sent.
    Predictions(Box<Predictions>),
    /// The answer to `Command::Inspect` with the same id.
    Inspected {
        id: u64,
        reply: Box<InspectReply>,
    },
    /// Layer statistics at a stats step, while subscribed (droppable).
    LayerStats(Box<LayerStats>),
    /// The decision boundary of a 2-D model, while subscribed (droppable).
    Boundary(Box<BoundaryMap>),
    /// The base learning rate was changed by `Command::SetLearningRate` at this step.
    LearningRateSet {
        global_step: usize,
        learning_rate: f64,
    },
    /// The learning-rate finder's sweep so far.
    LrFinder(Box<LrFinderProgress>),
    Paused {
        epoch: usize,
        batch: usize,
    },
    Resumed,
    Finished(Summary),
    Failed {
        error: String,
    },
    /// Text a language model wrote: at each epoch's end and on request.
    TextSample(super::text::TextSample),
    /// A text classifier's class probabilities for typed text.
    Probe {
        text: String,
        probabilities: Vec<f32>,
    },
    /// The embedding view: most frequent tokens in 2-D, at each epoch's end.
    Embedding(super::text::EmbeddingMap),
    /// A GAN's figures of one batch, sent after its `Step` (droppable like it).
    GanStep {
        global_step: usize,
        /// The position in epochs (fractional), for the curves.
        epochs: f64,
        figures: super::generative::GanFigures,
    },
    /// A generative model's picture at an epoch's end: reconstructions, samples from a fixed
    /// noise, the decoded latent plane.
    Images(super::generative_views::ImageGrid),
    /// A generative model's latent codes of validation samples in 2-D, with their classes.
    Latent(super::generative_views::LatentMap),
}

impl Event {
    /// Lifecycle, epoch and reply events are never dropped; per-step and periodic ones may be.
    pub fn is_droppable(&self) -> bool {
        matches!(self, Event::Step { .. } | Event::GanStep { .. } | Event::LayerStats(_) | Event::Boundary(_))
    }
}
