//! One training run in memory: data, network, optimizer and position. The worker and the
//! benchmarks drive it batch by batch; it knows nothing of channels or files.

use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::event::{EpochMetrics, Evaluation};
use super::generative::{self, Adversary, GanEpoch, GanFigures};
use super::inspect::{top3, Predictions};
use super::metrics::Confusion;
use super::optim::Optimizer;
use super::prefetch::BatchSource;
use crate::config::Preset;
use crate::data::{Augmenter, Dataset, Split};
use crate::device::Compute;
use crate::error::{Error, Result};
use crate::model::{Mode, ModelInput, Network};
use crate::rng::Rng;

const EVAL_BATCH: usize = 500;

/// Figures of one training batch.
#[derive(Debug, Clone, Copy)]
pub struct StepMetrics {
    /// 0-based epoch and batch within it.
    pub epoch: usize,
    pub batch: usize,
    pub loss: f64,
    pub correct: usize,
    /// Samples, and the predictions made on them (one per sample, one per step for a language
    /// model).
    pub size: usize,
    pub predictions: usize,
    pub learning_rate: f64,
    /// A GAN's figures of the batch (`loss` is then the discriminator's).
    pub gan: Option<GanFigures>,
}

impl StepMetrics {
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.predictions.max(1) as f64
    }
}

/// What an epoch has summed so far: a checkpoint within an epoch keeps it, so the resumed
/// epoch's figures equal an uninterrupted one's.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochProgress {
    pub loss_sum: f64,
    pub correct: usize,
    pub seen: usize,
    pub train_time_s: f64,
    /// Predictions scored (one per sample, one per step for a language model); absent in
    /// checkpoints from before language models, where it equalled `seen`.
    #[serde(default)]
    pub predictions: usize,
    /// A GAN's figures summed over the samples so far (absent before GANs, and for other tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gan: Option<GanFigures>,
}

pub struct Session {
    pub preset: Preset,
    /// Shared with the data thread, which cuts the training batches from it.
    pub data: Arc<Dataset>,
    pub net: Network,
    pub optimizer: Optimizer,
    pub device: Device,
    /// The device with how the layers run on it (`portable`) and its label for the summary.
    pub compute: Compute,
    /// Dropout masks draw from this.
    pub rng: Rng,
    /// The next batch to train: epoch (0-based) and batch within it.
    pub epoch: usize,
    pub batch: usize,
    pub batches_per_epoch: usize,
    /// Overrides the preset's base learning rate (set from the GUI while training).
    pub base_learning_rate: f64,
    /// Training batches in the epoch's order, augmented, prepared on the "gradlab-data" thread.
    pub batches: BatchSource,
    /// A GAN's discriminator and its optimizer (`None` for other tasks).
    pub adversary: Option<Adversary>,
    /// A classifier's validation predictions of the epoch just finished, for the worker to send.
    pub predictions: Option<Box<Predictions>>,
    /// Layer statistics to collect while the view is open (`None`: nothing extra is computed).
    pub layer_stats: Option<super::layer_stats::StatsCollector>,
    progress: EpochProgress,
}

/// The device the preset's `train.device` names, opened (`auto` falls back to the CPU).
pub fn device_for(preset: &Preset) -> Result<Compute> {
    Compute::open(preset.train.device)
}

impl Session {
    pub fn new(preset: Preset, data: Dataset, compute: impl Into<Compute>) -> Result<Self> {
        let compute: Compute = compute.into();
        let device = compute.device.clone();
        let net = Network::new_on(&preset.model, &data.model_input(preset.task), preset.seed, &compute)?;
        let t = &preset.train;
        let mut optimizer = Optimizer::for_preset(t, net.params().len());
        optimizer.portable = compute.portable;
        optimizer.frozen = super::transfer::frozen_params(preset.transfer.as_ref(), net.params());
        let adversary = Adversary::for_preset(&preset, &data, &compute)?;
        let batches_per_epoch = data.train.len().div_ceil(t.batch_size);
        let augmenter =
            Augmenter::new(&preset.augment, data.kind, &data.id, &data.input_shape, &data.normalization, preset.seed)?;
        let data = Arc::new(data);
        let batches =
            BatchSource::new(Arc::clone(&data), preset.task, device.clone(), t.batch_size, preset.seed, augmenter);
        Ok(Self {
            base_learning_rate: t.learning_rate,
            rng: Rng::derive(preset.seed, "dropout", 0),
            batches,
            adversary,
            preset,
            data,
            net,
            optimizer,
            device,
            compute,
            epoch: 0,
            batch: 0,
            batches_per_epoch,
            predictions: None,
            layer_stats: None,
            progress: EpochProgress::default(),
        })
    }

    /// Moves to a checkpoint's position (the start of an epoch, or a batch within one) and takes
    /// its RNG, learning rate and the epoch's sums so far.
    pub fn seek(&mut self, state: &crate::record::CheckpointState) {
        self.epoch = state.epoch;
        self.batch = state.batch.min(self.batches_per_epoch);
        // batches prepared for the old position must never be trained at the new one
        self.batches.stop();
        self.rng = state.rng.clone();
        self.base_learning_rate = state.base_learning_rate;
        self.progress = if self.batch > 0 { state.epoch_progress.clone() } else { EpochProgress::default() };
    }

    /// The current epoch's sums so far (for a checkpoint within it).
    pub fn epoch_progress(&self) -> &EpochProgress {
        &self.progress
    }

    pub fn finished(&self) -> bool {
        self.epoch >= self.preset.train.epochs
    }

    /// Learning rate at the current position.
    pub fn learning_rate(&self) -> f64 {
        let progress = self.epoch as f64 + self.batch as f64 / self.batches_per_epoch.max(1) as f64;
        self.base_learning_rate * self.preset.train.schedule.factor(progress, self.preset.train.epochs)
    }

    /// Trains the next batch and advances the position.
    pub fn train_batch(&mut self) -> Result<StepMetrics> {
        let started = Instant::now();
        let task = self.preset.task;
        let batch = self.batches.take(self.epoch, self.batch)?;
        let lr = self.learning_rate();
        let (loss_value, correct, gan) = if task.is_generative() {
            let step = generative::train_step(self, &batch, lr)?;
            (step.loss, 0, step.gan)
        } else {
            let step = self.epoch * self.batches_per_epoch + self.batch;
            // a stats step runs the same ops, reading the outputs they make on the way
            let mut stats = self.layer_stats.as_mut().filter(|s| s.due(step));
            let logits = match stats.as_mut() {
                Some(collector) => {
                    collector.begin(step);
                    self.net.forward_tapped(&batch.inputs, &mut Mode::Train(&mut self.rng), &mut |tap| {
                        collector.observe(tap);
                    })?
                }
                None => self.net.forward(&batch.inputs, &mut Mode::Train(&mut self.rng))?,
            };
            let loss = task.loss(&logits, &batch.targets)?;
            let hits = task.predicted(&logits)?.eq(&batch.targets)?.to_dtype(DType::F32)?.sum_all()?;
            // the step's one read from the device (exact: a batch has far fewer than 2^24 targets)
            let figures = read_scalars(&[&loss, &hits])?;
            let (loss_value, correct) = (figures[0], figures[1] as usize);
            if !loss_value.is_finite() {
                return Err(Error::NonFiniteLoss { value: loss_value, epoch: self.epoch + 1, batch: self.batch + 1 });
            }
            let grads = loss.backward()?;
            if let Some(collector) = stats.as_mut() {
                collector.after_backward(self.net.params(), self.net.trainable(), &grads)?;
            }
            let clip = self.preset.train.clip_grad_norm;
            self.optimizer.step_clipped(self.net.params(), &grads, lr, (clip > 0.0).then_some(clip))?;
            match stats {
                Some(collector) => collector.after_step(self.net.params())?,
                None => {
                    if let Some(collector) = self.layer_stats.as_mut() {
                        collector.step_time(started.elapsed().as_secs_f64());
                    }
                }
            }
            (f64::from(loss_value), correct, None)
        };
        let metrics = StepMetrics {
            epoch: self.epoch,
            batch: self.batch,
            loss: loss_value,
            correct,
            size: batch.samples,
            predictions: batch.predictions,
            learning_rate: lr,
            gan,
        };
        if let Some(figures) = gan {
            self.progress.gan.get_or_insert_with(GanFigures::default).add_scaled(&figures, batch.samples as f64);
        }
        self.progress.loss_sum += loss_value * batch.samples as f64;
        self.progress.correct += correct;
        self.progress.seen += batch.samples;
        self.progress.predictions += batch.predictions;
        self.batch += 1;
        self.progress.train_time_s += started.elapsed().as_secs_f64();
        Ok(metrics)
    }

    pub fn epoch_done(&self) -> bool {
        self.batch >= self.batches_per_epoch
    }

    /// Closes the epoch: evaluates on the validation split and moves to the next epoch.
    pub fn finish_epoch(&mut self, elapsed_s: f64) -> Result<EpochMetrics> {
        let (validation, gan_validation) = if self.preset.task.is_generative() {
            generative::evaluate(self, &self.data.validation)?
        } else {
            let keep = self.preset.task == crate::task::Task::Classify;
            let input = self.data.model_input(self.preset.task);
            let (validation, predictions) =
                evaluate_with_predictions(&self.net, &self.data.validation, &input, &self.device, keep)?;
            self.predictions =
                predictions.map(|(truth, top)| Box::new(Predictions { epoch: self.epoch + 1, truth, top }));
            (validation, None)
        };
        let p = &self.progress;
        let seen = p.seen.max(1) as f64;
        let gan = gan_validation
            .map(|validation| GanEpoch { train: p.gan.unwrap_or_default().scaled(1.0 / seen), validation });
        let metrics = EpochMetrics {
            epoch: self.epoch + 1,
            train_loss: p.loss_sum / seen,
            // checkpoints before `predictions` count samples only (a classifier's predictions)
            train_accuracy: p.correct as f64 / p.predictions.max(p.seen).max(1) as f64,
            validation,
            learning_rate: self.learning_rate(),
            samples_per_s: p.seen as f64 / p.train_time_s.max(1e-9),
            elapsed_s,
            gan,
        };
        self.epoch += 1;
        self.batch = 0;
        if self.finished() {
            self.batches.stop();
        }
        self.progress = EpochProgress::default();
        Ok(metrics)
    }

    /// Loss, accuracy and confusion matrix on a split, without dropout.
    pub fn evaluate(&self, split: &Split) -> Result<Evaluation> {
        if self.preset.task.is_generative() {
            return Ok(generative::evaluate(self, split)?.0);
        }
        evaluate(&self.net, split, &self.data.model_input(self.preset.task), &self.device)
    }
}

/// Confusion matrices beyond this many classes (a word-level vocabulary) are not kept: the
/// accuracy still is.
pub const MAX_CONFUSION_CLASSES: usize = 256;

/// Loss, accuracy and confusion matrix of `net` on a split, without dropout.
pub fn evaluate(net: &Network, split: &Split, input: &ModelInput, device: &Device) -> Result<Evaluation> {
    Ok(evaluate_with_predictions(net, split, input, device, false)?.0)
}

/// Each sample's truth and top-3 classes with their probabilities.
type SamplePredictions = (Vec<u32>, Vec<[(u32, f32); 3]>);

/// [`evaluate`], and when `keep` each sample's truth and top 3 (from the logits it computes
/// anyway; the top-1 is the prediction the confusion matrix counts).
pub fn evaluate_with_predictions(
    net: &Network,
    split: &Split,
    input: &ModelInput,
    device: &Device,
    keep: bool,
) -> Result<(Evaluation, Option<SamplePredictions>)> {
    let mut kept: Option<SamplePredictions> =
        keep.then(|| (Vec::with_capacity(split.len()), Vec::with_capacity(split.len())));
    let classes = input.classes;
    let mut confusion = Confusion::new(if classes <= MAX_CONFUSION_CLASSES { classes } else { 0 });
    let (mut loss_sum, mut correct, mut predictions) = (0.0, 0usize, 0usize);
    let indices: Vec<usize> = (0..split.len()).collect();
    // each batch's loss stays on the device until the end: one read per batch (the predictions,
    // with their truth) and one for all the losses
    let mut losses = Vec::with_capacity(indices.len().div_ceil(EVAL_BATCH));
    for chunk in indices.chunks(EVAL_BATCH) {
        let batch = input.task.gather(split, chunk, &input.shape, device)?;
        let logits = net.forward(&batch.inputs, &mut Mode::Eval)?.detach();
        losses.push((input.task.loss(&logits, &batch.targets)?, batch.samples));
        let predicted = input.task.predicted(&logits)?;
        let read: Vec<Vec<u32>> = Tensor::stack(&[&predicted, &batch.targets], 0)?.to_vec2()?;
        let (predicted, truth) = (&read[0], &read[1]);
        for (t, p) in truth.iter().zip(predicted) {
            confusion.add(*t, *p);
            correct += usize::from(t == p);
        }
        if let Some((all_truth, top)) = kept.as_mut() {
            let probs: Vec<Vec<f32>> =
                candle_nn::ops::softmax_last_dim(&input.task.logits_matrix(&logits)?)?.to_vec2()?;
            top.extend(probs.iter().zip(predicted).map(|(row, p)| top3(row, *p)));
            all_truth.extend_from_slice(truth);
        }
        predictions += batch.predictions;
    }
    if !losses.is_empty() {
        let values = read_scalars(&losses.iter().map(|(l, _)| l).collect::<Vec<_>>())?;
        // summed on the host in batch order, as when each loss was read at once
        for (loss, (_, samples)) in values.iter().zip(&losses) {
            loss_sum += f64::from(*loss) * *samples as f64;
        }
    }
    let evaluation = Evaluation {
        loss: loss_sum / split.len().max(1) as f64,
        accuracy: correct as f64 / predictions.max(1) as f64,
        confusion,
    };
    Ok((evaluation, kept))
}

/// Scalars (0-dimensional tensors of any float or integer type) read to the host in one copy, as
/// f32: off the CPU every read waits for the device, so a step's figures are read together.
pub(super) fn read_scalars(scalars: &[&Tensor]) -> Result<Vec<f32>> {
    let parts: Vec<Tensor> =
        scalars.iter().map(|t| t.detach().to_dtype(DType::F32)?.reshape(1)).collect::<candle_core::Result<_>>()?;
    Ok(Tensor::cat(&parts, 0)?.to_vec1()?)
}
