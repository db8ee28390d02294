//! One training run in memory: data, network, optimizer and position. The worker and the
//! benchmarks drive it batch by batch; it knows nothing of channels or files.

use std::time::Instant;

use candle_core::{Device, Tensor, D};

use super::event::{EpochMetrics, Evaluation};
use super::metrics::Confusion;
use super::optim::Optimizer;
use crate::config::Preset;
use crate::data::{epoch_order, Batch, Dataset, Split};
use crate::error::{Error, Result};
use crate::model::{Mode, Network};
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
    pub size: usize,
    pub learning_rate: f64,
}

/// What an epoch has summed so far: a checkpoint within an epoch keeps it, so the resumed
/// epoch's figures equal an uninterrupted one's.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochProgress {
    pub loss_sum: f64,
    pub correct: usize,
    pub seen: usize,
    pub train_time_s: f64,
}

pub struct Session {
    pub preset: Preset,
    pub data: Dataset,
    pub net: Network,
    pub optimizer: Optimizer,
    pub device: Device,
    /// Dropout masks draw from this.
    pub rng: Rng,
    /// The next batch to train: epoch (0-based) and batch within it.
    pub epoch: usize,
    pub batch: usize,
    pub batches_per_epoch: usize,
    /// Overrides the preset's base learning rate (set from the GUI while training).
    pub base_learning_rate: f64,
    order: Vec<usize>,
    progress: EpochProgress,
}

pub fn device_for(preset: &Preset) -> Result<Device> {
    use crate::config::DeviceKind;
    Ok(match preset.train.device {
        DeviceKind::Cpu => Device::Cpu,
        DeviceKind::Cuda => Device::new_cuda(0)?,
        DeviceKind::Metal => Device::new_metal(0)?,
    })
}

impl Session {
    pub fn new(preset: Preset, data: Dataset, device: Device) -> Result<Self> {
        let net = Network::new(&preset.model, &data.input_shape, data.num_classes(), preset.seed, &device)?;
        let t = &preset.train;
        let optimizer = Optimizer::new(t.optimizer, t.momentum, t.weight_decay, net.params().len());
        let batches_per_epoch = data.train.len().div_ceil(t.batch_size);
        Ok(Self {
            base_learning_rate: t.learning_rate,
            rng: Rng::derive(preset.seed, "dropout", 0),
            order: epoch_order(data.train.len(), preset.seed, 0),
            preset,
            data,
            net,
            optimizer,
            device,
            epoch: 0,
            batch: 0,
            batches_per_epoch,
            progress: EpochProgress::default(),
        })
    }

    /// Moves to a checkpoint's position (the start of an epoch, or a batch within one) and takes
    /// its RNG, learning rate and the epoch's sums so far.
    pub fn seek(&mut self, state: &crate::record::CheckpointState) {
        self.epoch = state.epoch;
        self.batch = state.batch.min(self.batches_per_epoch);
        self.order = epoch_order(self.data.train.len(), self.preset.seed, self.epoch);
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
        let bs = self.preset.train.batch_size;
        let start = self.batch * bs;
        let end = start.saturating_add(bs).min(self.order.len());
        let batch = Batch::gather(&self.data.train, &self.order[start..end], &self.data.input_shape, &self.device)?;
        let lr = self.learning_rate();
        let logits = self.net.forward(&batch.inputs, &mut Mode::Train(&mut self.rng))?;
        let loss = candle_nn::loss::cross_entropy(&logits, &batch.labels)?;
        let loss_value = loss.to_scalar::<f32>()?;
        if !loss_value.is_finite() {
            return Err(Error::NonFiniteLoss { value: loss_value, epoch: self.epoch + 1, batch: self.batch + 1 });
        }
        let grads = loss.backward()?;
        self.optimizer.step(self.net.params(), &grads, lr)?;
        let correct = count_correct(&logits, &batch.labels)?;
        let metrics = StepMetrics {
            epoch: self.epoch,
            batch: self.batch,
            loss: f64::from(loss_value),
            correct,
            size: batch.size,
            learning_rate: lr,
        };
        self.progress.loss_sum += f64::from(loss_value) * batch.size as f64;
        self.progress.correct += correct;
        self.progress.seen += batch.size;
        self.batch += 1;
        self.progress.train_time_s += started.elapsed().as_secs_f64();
        Ok(metrics)
    }

    pub fn epoch_done(&self) -> bool {
        self.batch >= self.batches_per_epoch
    }

    /// Closes the epoch: evaluates on the validation split and moves to the next epoch.
    pub fn finish_epoch(&mut self, elapsed_s: f64) -> Result<EpochMetrics> {
        let validation = self.evaluate(&self.data.validation)?;
        let p = &self.progress;
        let seen = p.seen.max(1) as f64;
        let metrics = EpochMetrics {
            epoch: self.epoch + 1,
            train_loss: p.loss_sum / seen,
            train_accuracy: p.correct as f64 / seen,
            validation,
            learning_rate: self.learning_rate(),
            samples_per_s: p.seen as f64 / p.train_time_s.max(1e-9),
            elapsed_s,
        };
        self.epoch += 1;
        self.batch = 0;
        self.order = epoch_order(self.data.train.len(), self.preset.seed, self.epoch);
        self.progress = EpochProgress::default();
        Ok(metrics)
    }

    /// Loss, accuracy and confusion matrix on a split, without dropout.
    pub fn evaluate(&self, split: &Split) -> Result<Evaluation> {
        evaluate(&self.net, split, &self.data.input_shape, self.data.num_classes(), &self.device)
    }
}

/// Loss, accuracy and confusion matrix of `net` on a split, without dropout.
pub fn evaluate(
    net: &Network,
    split: &Split,
    input_shape: &[usize],
    classes: usize,
    device: &Device,
) -> Result<Evaluation> {
    let mut confusion = Confusion::new(classes);
    let mut loss_sum = 0.0;
    for batch in Batch::sequential(split, EVAL_BATCH, input_shape, device) {
        let batch = batch?;
        let logits = net.forward(&batch.inputs, &mut Mode::Eval)?.detach();
        let loss = candle_nn::loss::cross_entropy(&logits, &batch.labels)?.to_scalar::<f32>()?;
        loss_sum += f64::from(loss) * batch.size as f64;
        let predicted: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
        let truth: Vec<u32> = batch.labels.to_vec1()?;
        for (t, p) in truth.iter().zip(&predicted) {
            confusion.add(*t, *p);
        }
    }
    Ok(Evaluation { loss: loss_sum / split.len().max(1) as f64, accuracy: confusion.accuracy(), confusion })
}

fn count_correct(logits: &Tensor, labels: &Tensor) -> Result<usize> {
    let predicted = logits.argmax(D::Minus1)?;
    Ok(predicted.eq(labels)?.to_dtype(candle_core::DType::U32)?.sum_all()?.to_scalar::<u32>()? as usize)
}
