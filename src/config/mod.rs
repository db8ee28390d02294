//! Presets: TOML files that fully describe an experiment, and their validation.

mod validate;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::error::{Error, Result};
use crate::model::ModelSpec;

pub(crate) use validate::toml_error;
pub use validate::{discriminator_error, discriminator_input, input_shape_hint, model_input_hint};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    #[default]
    Adam,
    AdamW,
}

impl OptimizerKind {
    pub const ALL: [OptimizerKind; 3] = [OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW];

    pub fn title(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "SGD (momentum)",
            OptimizerKind::Adam => "Adam",
            OptimizerKind::AdamW => "AdamW",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    #[default]
    Constant,
    /// Multiply by `gamma` every `step_epochs` epochs.
    Step,
    /// Cosine decay to zero over the run.
    Cosine,
}

/// Learning-rate schedule: an optional linear warm-up, then `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub warmup_epochs: f64,
    pub step_epochs: usize,
    pub gamma: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Self { kind: ScheduleKind::Constant, warmup_epochs: 0.0, step_epochs: 10, gamma: 0.1 }
    }
}

impl Schedule {
    /// Factor on the base learning rate at a (fractional) epoch of a run of `epochs` epochs.
    pub fn factor(&self, epoch: f64, epochs: usize) -> f64 {
        let warm = if self.warmup_epochs > 0.0 && epoch < self.warmup_epochs {
            (epoch + 1e-9) / self.warmup_epochs
        } else {
            1.0
        };
        let decay = match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Step => self.gamma.powi((epoch / self.step_epochs.max(1) as f64).floor() as i32),
            ScheduleKind::Cosine => {
                let span = (epochs as f64 - self.warmup_epochs).max(1e-9);
                let t = ((epoch - self.warmup_epochs).max(0.0) / span).min(1.0);
                0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        };
        warm * decay
    }
}

/// `train.device`: see [`crate::device`].
pub use crate::device::DeviceChoice as DeviceKind;

/// The `[train]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSpec {
    pub optimizer: OptimizerKind,
    pub learning_rate: f64,
    /// SGD momentum; ignored by Adam.
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub epochs: usize,
    pub schedule: Schedule,
    /// Compute threads; 0 chooses (all cores headless, one fewer with the GUI open). More than
    /// the machine has are clamped to its cores.
    pub threads: usize,
    pub device: DeviceKind,
    /// A checkpoint is also written within an epoch when this many minutes have passed since the
    /// last one, so a killed run loses minutes, not an epoch. 0 keeps only epoch checkpoints.
    pub checkpoint_minutes: f64,
    /// Memory a run may take, in GiB; unset: what the machine has available. A run whose
    /// estimate (`budget`) exceeds it is refused before anything is loaded. `--max-memory` sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_gb: Option<f64>,
    /// Gradients are scaled down so that their global L2 norm is at most this (0: no clipping),
    /// as PyTorch's `clip_grad_norm_`; recurrent networks need it.
    pub clip_grad_norm: f64,
    /// Adam's and AdamW's decay rates of the gradient's mean and square (PyTorch's `betas`);
    /// the DCGAN recipe takes beta1 = 0.5.
    #[serde(skip_serializing_if = "is_default_beta1")]
    pub beta1: f64,
    #[serde(skip_serializing_if = "is_default_beta2")]
    pub beta2: f64,
}

const DEFAULT_BETAS: (f64, f64) = (0.9, 0.999);

fn is_default_beta1(b: &f64) -> bool {
    *b == DEFAULT_BETAS.0
}

fn is_default_beta2(b: &f64) -> bool {
    *b == DEFAULT_BETAS.1
}

impl Default for TrainSpec {
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Adam,
            learning_rate: 1e-3,
            momentum: 0.9,
            weight_decay: 0.0,
            batch_size: 128,
            epochs: 10,
            schedule: Schedule::default(),
            threads: 0,
            device: DeviceKind::Cpu,
            checkpoint_minutes: 5.0,
            max_memory_gb: None,
            clip_grad_norm: 0.0,
            beta1: DEFAULT_BETAS.0,
            beta2: DEFAULT_BETAS.1,
        }
    }
}

fn is_classify(task: &crate::task::Task) -> bool {
    *task == crate::task::Task::Classify
}

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Preset {
    pub title: String,
    pub description: String,
    pub seed: u64,
    /// `classify` (the default) or `language_model`.
    #[serde(skip_serializing_if = "is_classify")]
    pub task: crate::task::Task,
    pub data: DataSpec,
    pub model: ModelSpec,
    pub train: TrainSpec,
    /// Start from another model's weights (transfer learning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<crate::train::transfer::TransferSpec>,
    /// Random transforms of the training images (`[augment]`); all off when left out.
    #[serde(skip_serializing_if = "crate::data::AugmentSpec::is_off")]
    pub augment: crate::data::AugmentSpec,
    /// A GAN's discriminator (`task = "gan"`): it reads a sample of the data and ends in one
    /// logit, real or fake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discriminator: Option<ModelSpec>,
}

impl Default for Preset {
    /// The default experiment: the classic MNIST CNN on embedded MNIST 5k.
    fn default() -> Self {
        Self {
            title: "MNIST CNN".into(),
            description: "The classic first CNN: conv 32 3x3, ReLU, max-pool 2, dense 10, Adam.".into(),
            seed: 42,
            task: crate::task::Task::Classify,
            data: DataSpec::default(),
            model: ModelSpec::default(),
            train: TrainSpec::default(),
            transfer: None,
            augment: crate::data::AugmentSpec::default(),
            discriminator: None,
        }
    }
}

/// The largest preset file read (the built-in ones are under 1 KiB).
pub const MAX_PRESET_BYTES: u64 = 1 << 20;

/// The ready-made presets, compiled in so `--builtin` and the gallery work from any folder.
pub const BUILTIN: &[(&str, &str)] = &[
    ("mnist_cnn", include_str!("../../presets/mnist_cnn.toml")),
    ("mnist_mlp", include_str!("../../presets/mnist_mlp.toml")),
    ("fashion_mnist_cnn", include_str!("../../presets/fashion_mnist_cnn.toml")),
    ("fashion_mnist_cnn_augmented", include_str!("../../presets/fashion_mnist_cnn_augmented.toml")),
    ("fashion_mnist_mlp", include_str!("../../presets/fashion_mnist_mlp.toml")),
    ("digits_mlp", include_str!("../../presets/digits_mlp.toml")),
    ("iris_mlp", include_str!("../../presets/iris_mlp.toml")),
    ("wine_mlp", include_str!("../../presets/wine_mlp.toml")),
    ("breast_cancer_mlp", include_str!("../../presets/breast_cancer_mlp.toml")),
    ("spiral_mlp", include_str!("../../presets/spiral_mlp.toml")),
    ("moons_mlp", include_str!("../../presets/moons_mlp.toml")),
    ("circles_mlp", include_str!("../../presets/circles_mlp.toml")),
    ("xor_mlp", include_str!("../../presets/xor_mlp.toml")),
    ("text_rnn", include_str!("../../presets/text_rnn.toml")),
    ("fortune_category_lstm", include_str!("../../presets/fortune_category_lstm.toml")),
    ("word_language_gru", include_str!("../../presets/word_language_gru.toml")),
    ("imdb_lstm", include_str!("../../presets/imdb_lstm.toml")),
    ("char_lm_fortunes", include_str!("../../presets/char_lm_fortunes.toml")),
    ("tiny_transformer_fortunes", include_str!("../../presets/tiny_transformer_fortunes.toml")),
    ("transfer_mnist_to_fashion", include_str!("../../presets/transfer_mnist_to_fashion.toml")),
    ("cifar10_cnn", include_str!("../../presets/cifar10_cnn.toml")),
    ("autoencoder_mnist", include_str!("../../presets/autoencoder_mnist.toml")),
    ("vae_mnist", include_str!("../../presets/vae_mnist.toml")),
    ("vae_fashion_mnist", include_str!("../../presets/vae_fashion_mnist.toml")),
    ("gan_mnist_mlp", include_str!("../../presets/gan_mnist_mlp.toml")),
    ("gan_mnist_dcgan", include_str!("../../presets/gan_mnist_dcgan.toml")),
];

impl Preset {
    /// Parses and validates TOML; errors name `origin` (a file name) and the key.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let preset = Self::parse_toml(text, origin)?;
        preset.validate(origin)?;
        Ok(preset)
    }

    /// Reads a preset without validating it: the GUI keeps a stored preset whose data folder
    /// is missing for now (an unmounted drive) and names the problem instead.
    pub fn parse_toml(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| validate::toml_error(&e, text, origin))
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::record::read_text_capped(path, MAX_PRESET_BYTES)?;
        Self::from_toml(&text, &path.display().to_string())
    }

    pub fn builtin(name: &str) -> Result<Self> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            Error::Other(format!(
                "no built-in preset `{name}`; the built-in presets are {}",
                BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ))
        })?;
        Self::from_toml(text, &format!("presets/{name}.toml"))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a preset always serialises")
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::record::write_atomic(path, self.to_toml().as_bytes())
    }

    /// Checks every value that TOML's types cannot: ranges, the data set, and that the model fits
    /// the data's shape.
    pub fn validate(&self, origin: &str) -> Result<()> {
        validate::validate(self, origin)
    }
}
