//! What a model is trained to do. Each task owns how a batch is cut from a split (inputs and
//! targets), its loss and what counts as a correct prediction; the training loop asks the task
//! and never branches on its name.
//!
//! - `classify`: one label per sample; softmax cross-entropy over the classes, or, for two
//!   classes and a single output, the sigmoid's binary cross-entropy (Keras' `Dense(1,
//!   "sigmoid")` head): the output `z` is read as the logits `[0, z]`, whose softmax is
//!   `[1 - sigmoid(z), sigmoid(z)]`, so the loss is the binary cross-entropy exactly.
//! - `language_model`: every step predicts the next token. A sample is `len + 1` token ids; the
//!   model reads the first `len` and is scored on the last `len`. Loss is the mean cross-entropy
//!   per token (perplexity is its exponential), accuracy the share of next tokens right.
//! - `autoencode`, `vae`, `gan`: generative models (`generative`): the model rebuilds its input
//!   or makes samples of the data; their losses need more than logits and labels, so
//!   `train::generative` drives their steps. A batch's targets are the class labels, which the
//!   latent scatter colours by; these tasks have no accuracy.

pub mod generative;

use candle_core::{DType, Device, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::data::{Batch, Split};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    #[default]
    Classify,
    LanguageModel,
    /// The model rebuilds its input through a narrow layer.
    Autoencode,
    /// A variational autoencoder: encoder, `sample` layer, decoder; reconstruction + KL.
    Vae,
    /// A generator (the model, from noise) against a discriminator (`[discriminator]`).
    Gan,
}

/// A mini-batch as the task cuts it: model inputs, `u32` targets (one per sample, or one per
/// step), and how many samples and predictions it holds.
pub struct TaskBatch {
    pub inputs: Tensor,
    pub targets: Tensor,
    pub samples: usize,
    pub predictions: usize,
}

impl Task {
    pub const ALL: [Task; 5] = [Task::Classify, Task::LanguageModel, Task::Autoencode, Task::Vae, Task::Gan];

    pub fn title(self) -> &'static str {
        match self {
            Task::Classify => "classify",
            Task::LanguageModel => "language model",
            Task::Autoencode => "autoencode",
            Task::Vae => "VAE",
            Task::Gan => "GAN",
        }
    }

    /// The model makes images (or values) of the data instead of predicting labels.
    pub fn is_generative(self) -> bool {
        matches!(self, Task::Autoencode | Task::Vae | Task::Gan)
    }

    /// Whether an accuracy means anything: not for a generative model (a GAN's figure in the
    /// accuracy columns is how often its discriminator tells real from fake, see `generative`).
    pub fn has_accuracy(self) -> bool {
        !self.is_generative()
    }

    /// The samples at `indices` of a split as one batch; `input_shape` is the model's input per
    /// sample (`[len]` for a language model, whose split rows hold `len + 1` ids).
    pub fn gather(self, split: &Split, indices: &[usize], input_shape: &[usize], device: &Device) -> Result<TaskBatch> {
        let n = indices.len();
        match self {
            Task::Classify | Task::Autoencode | Task::Vae | Task::Gan => {
                let batch = Batch::gather(split, indices, input_shape, device)?;
                Ok(TaskBatch { inputs: batch.inputs, targets: batch.labels, samples: n, predictions: n })
            }
            Task::LanguageModel => {
                let len = input_shape.first().copied().unwrap_or(0);
                if split.feature_len() != len + 1 {
                    return Err(Error::Shape(format!(
                        "a language model's samples hold {} token ids, {} expected (the input length + 1)",
                        split.feature_len(),
                        len + 1
                    )));
                }
                let mut rows = Vec::with_capacity(n * (len + 1));
                split.copy_rows(indices, &mut rows)?;
                let mut inputs = Vec::with_capacity(n * len);
                let mut targets = Vec::with_capacity(n * len);
                for ids in rows.chunks_exact(len + 1) {
                    inputs.extend_from_slice(&ids[..len]);
                    // ids are exact small integers stored as f32
                    targets.extend(ids[1..].iter().map(|&t| t as u32));
                }
                Ok(TaskBatch {
                    inputs: Tensor::from_vec(inputs, (n, len), device)?,
                    targets: Tensor::from_vec(targets, n * len, device)?,
                    samples: n,
                    predictions: n * len,
                })
            }
        }
    }

    /// Logits as a matrix `[predictions, classes]`: a language model's steps become rows, a single
    /// binary output becomes `[0, z]`.
    pub fn logits_matrix(self, logits: &Tensor) -> Result<Tensor> {
        let logits = match logits.dims() {
            &[b, t, v] => logits.reshape((b * t, v))?,
            _ => logits.clone(),
        };
        if logits.dim(1)? == 1 {
            return Ok(Tensor::cat(&[logits.zeros_like()?, logits], 1)?);
        }
        Ok(logits)
    }

    /// Mean loss of a batch.
    pub fn loss(self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::loss::cross_entropy(&self.logits_matrix(logits)?, targets)?)
    }

    /// Predicted class (or next token) for every target.
    pub fn predicted(self, logits: &Tensor) -> Result<Tensor> {
        Ok(self.logits_matrix(logits)?.argmax(D::Minus1)?)
    }

    /// Predictions that match their targets.
    pub fn correct(self, logits: &Tensor, targets: &Tensor) -> Result<usize> {
        let hits = self.predicted(logits)?.eq(targets)?.to_dtype(DType::U32)?.sum_all()?;
        Ok(hits.to_scalar::<u32>()? as usize)
    }
}
