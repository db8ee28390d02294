//! A model as a list of layers, the way Keras' `Sequential` and PyTorch's `nn.Sequential` say it.
//!
//! Each layer family lives in one file and owns everything about itself: its spec (a table in
//! `[model] layers`, tagged by `type`), its shape inference and validation (errors name
//! `model.layers[i].field` and say what would fit), its parameters (PyTorch's names and
//! initialisation), how it runs, and what PyTorch module it is in an export. This file only
//! dispatches. Fused CPU blocks (conv + activation + pool, dense + activation) are chosen by the
//! network builder for adjacent layers; presets never see them.

pub mod attention;
pub mod conv;
pub mod dense;
pub mod embedding;
pub mod norm;
pub mod recurrent;
pub mod sample;
pub mod shape;
pub mod upsample;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::network::Mode;
use super::spec::MAX_TENSOR_ELEMENTS;
use crate::error::{Error, Result};
use crate::export::layout::RefLayer;

pub use attention::{AttentionSpec, LayerNormSpec, TransformerBlockSpec};
pub use conv::{Conv2dSpec, PoolSpec};
pub use dense::DenseSpec;
pub use embedding::{EmbeddingSpec, PositionSpec};
pub use norm::{BatchNormSpec, Dropout2dSpec};
pub use recurrent::RecurrentSpec;
pub use shape::{ActivationSpec, DropoutSpec};
pub use upsample::{ConvTranspose2dSpec, ReshapeSpec, UpsampleSpec};

/// One entry of `[model] layers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    Dense(DenseSpec),
    Conv2d(Conv2dSpec),
    Maxpool(PoolSpec),
    Avgpool(PoolSpec),
    Flatten,
    Dropout(DropoutSpec),
    Activation(ActivationSpec),
    Embedding(EmbeddingSpec),
    /// Learned position embeddings added to a sequence (a transformer's second embedding).
    Position(PositionSpec),
    Rnn(RecurrentSpec),
    Lstm(RecurrentSpec),
    Gru(RecurrentSpec),
    Attention(AttentionSpec),
    Layernorm(LayerNormSpec),
    /// The mean over time of a sequence `[time, features]` -> `[features]`.
    GlobalMean,
    TransformerBlock(TransformerBlockSpec),
    /// Batch normalisation per feature or per image channel, with running statistics.
    Batchnorm(BatchNormSpec),
    /// Dropout of whole image channels.
    Dropout2d(Dropout2dSpec),
    ConvTranspose2d(ConvTranspose2dSpec),
    /// Nearest-neighbour upsampling of an image.
    Upsample(UpsampleSpec),
    /// Features to `[c, h, w]` (or any shape of as many values): a decoder's first image.
    Reshape(ReshapeSpec),
    /// A VAE's reparameterisation: `[2 * latent]` (mean, log-variance) to a sample `[latent]`.
    Sample,
}

/// The layer types in the order the GUI offers them, each with a fresh default.
pub fn catalogue() -> Vec<LayerSpec> {
    vec![
        LayerSpec::Dense(DenseSpec::default()),
        LayerSpec::Conv2d(Conv2dSpec::default()),
        LayerSpec::Maxpool(PoolSpec::default()),
        LayerSpec::Avgpool(PoolSpec::default()),
        LayerSpec::Flatten,
        LayerSpec::Dropout(DropoutSpec::default()),
        LayerSpec::Activation(ActivationSpec::default()),
        LayerSpec::Embedding(EmbeddingSpec::default()),
        LayerSpec::Position(PositionSpec::default()),
        LayerSpec::Rnn(RecurrentSpec::default()),
        LayerSpec::Lstm(RecurrentSpec::default()),
        LayerSpec::Gru(RecurrentSpec::default()),
        LayerSpec::Attention(AttentionSpec::default()),
        LayerSpec::Layernorm(LayerNormSpec::default()),
        LayerSpec::GlobalMean,
        LayerSpec::TransformerBlock(TransformerBlockSpec::default()),
        LayerSpec::Batchnorm(BatchNormSpec::default()),
        LayerSpec::Dropout2d(Dropout2dSpec::default()),
        LayerSpec::Reshape(ReshapeSpec::default()),
        LayerSpec::ConvTranspose2d(ConvTranspose2dSpec::default()),
        LayerSpec::Upsample(UpsampleSpec::default()),
        LayerSpec::Sample,
    ]
}

/// How a parameter starts (PyTorch's defaults for each module, drawn from the run's seed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    Uniform(f32),
    Normal(f32),
    Constant(f32),
}

/// A tensor of a layer: its full name (`conv1.weight`, `lstm1.weight_hh_l0`), shape and
/// initialisation.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    /// `false` for a buffer (batch norm's running statistics): saved in checkpoints and exports
    /// like a weight, but the layer updates it itself and it never takes part in a loss, so it
    /// gets no gradient and the optimizer (weight decay included) never touches it.
    pub trainable: bool,
}

impl ParamSpec {
    pub fn new(name: String, shape: Vec<usize>, init: Init) -> Self {
        Self { name, shape, init, trainable: true }
    }

    /// A buffer: state of a layer that is not trained (PyTorch's `register_buffer`).
    pub fn buffer(name: String, shape: Vec<usize>, init: Init) -> Self {
        Self { name, shape, init, trainable: false }
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// PyTorch's default for Linear, Conv2d and the recurrent layers: uniform in ±1/sqrt(fan_in).
pub fn kaiming(name: String, shape: Vec<usize>, fan_in: usize) -> ParamSpec {
    ParamSpec::new(name, shape, Init::Uniform(1.0 / (fan_in.max(1) as f32).sqrt()))
}

/// What the model is trained to do; the last layer's shape must fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One output per class (or a single sigmoid output for two classes).
    Classes(usize),
    /// One prediction over the vocabulary per time step.
    NextToken { vocab: usize },
    /// The input again (autoencoder, VAE): this many values in any shape, compared flattened;
    /// the output is logits or linear, so no activation at the end.
    Reconstruct(usize),
    /// A generator's sample of the data: this many values in any shape, compared flattened,
    /// with whatever activation brings them to the data's range.
    Generate(usize),
}

/// What a layer's plan may know about the data.
#[derive(Debug, Clone, Copy)]
pub struct PlanContext {
    pub target: Target,
    /// The input is token ids with this many distinct tokens (text data).
    pub vocab: Option<usize>,
    /// The layer is the last of the model.
    pub last: bool,
}

impl PlanContext {
    /// Outputs a layer whose width the preset leaves open should have (the last dense layer).
    pub fn outputs(&self) -> usize {
        match self.target {
            Target::Classes(c) => c,
            Target::NextToken { vocab } => vocab,
            Target::Reconstruct(n) | Target::Generate(n) => n,
        }
    }
}

/// A layer with its shapes known.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub spec: LayerSpec,
    /// The preset key it came from: `model.layers[3]`, or `model.conv[0]` / `model.hidden[1]` for
    /// the `kind = "mlp" | "cnn"` form.
    pub key: String,
    /// The name its parameters start with (`conv1`, `fc2`, `lstm1`), empty when it has none.
    pub name: String,
    /// Per-sample shapes, without the batch: `[c, h, w]`, `[time, features]`, `[features]`.
    pub input: Vec<usize>,
    pub output: Vec<usize>,
    pub params: Vec<ParamSpec>,
}

impl Planned {
    /// Trainable values (what PyTorch's `parameters()` counts).
    pub fn param_count(&self) -> usize {
        self.params.iter().filter(|p| p.trainable).map(ParamSpec::len).sum()
    }

    /// Values of buffers (running statistics): saved, never trained.
    pub fn buffer_count(&self) -> usize {
        self.params.iter().filter(|p| !p.trainable).map(ParamSpec::len).sum()
    }

    pub fn output_len(&self) -> usize {
        self.output.iter().product()
    }

    /// One line for the GUI and `preset check`, e.g. `conv1: conv 32 3x3, stride 1, padding 0`.
    pub fn describe(&self) -> String {
        let what = match &self.spec {
            // the output layer's width, as planned
            LayerSpec::Dense(d) if d.units.is_none() => {
                let width = self.output.last().copied().unwrap_or(0);
                LayerSpec::Dense(DenseSpec { units: Some(width), ..d.clone() }).describe()
            }
            spec => spec.describe(),
        };
        if self.name.is_empty() {
            what
        } else {
            format!("{}: {what}", self.name)
        }
    }

    /// The layer as PyTorch modules (usually one), for the export card.
    pub fn reference(&self) -> Result<Vec<RefLayer>> {
        self.spec.reference(self)
    }
}

/// An error about `field` of the layer at `key`.
pub fn field_error(key: &str, field: &str, message: impl Into<String>) -> Error {
    // the `kind` form's dense layers are a width in `hidden` (or the output layer): no field
    let whole = field.is_empty() || key.starts_with("model.hidden") || key == "model.kind";
    let key = if whole { key.to_string() } else { format!("{key}.{field}") };
    Error::config("preset", key, message)
}

/// Values in a tensor of these dimensions, `None` when it is not addressable.
pub fn elements(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= MAX_TENSOR_ELEMENTS)
}

/// Checks that a shape is addressable, blaming `field` of the layer.
pub fn checked(key: &str, field: &str, dims: Vec<usize>, what: &str) -> Result<Vec<usize>> {
    match elements(&dims) {
        Some(_) => Ok(dims),
        None => Err(field_error(key, field, format!("makes {what} too large to address ({dims:?})"))),
    }
}

/// A layer as it runs, built from its plan and its parameters.
pub trait RunLayer: Send + Sync {
    /// Output for a batch `[batch, shape...]`. Images arrive channels-last (`[n, h, w, c]`) from
    /// the first conv or pool on.
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor>;

    /// What it is, for grouping the benchmark's timings.
    fn kind(&self) -> &'static str;

    /// The activation its output has been through (fused blocks and the activation layer), for
    /// the dead-ReLU share and the inside views.
    fn activation(&self) -> Option<crate::model::Activation> {
        None
    }
}

impl LayerSpec {
    /// The family name as written in presets (`dense`, `lstm`).
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerSpec::Dense(_) => "dense",
            LayerSpec::Conv2d(_) => "conv2d",
            LayerSpec::Maxpool(_) => "maxpool",
            LayerSpec::Avgpool(_) => "avgpool",
            LayerSpec::Flatten => "flatten",
            LayerSpec::Dropout(_) => "dropout",
            LayerSpec::Activation(_) => "activation",
            LayerSpec::Embedding(_) => "embedding",
            LayerSpec::Position(_) => "position",
            LayerSpec::Rnn(_) => "rnn",
            LayerSpec::Lstm(_) => "lstm",
            LayerSpec::Gru(_) => "gru",
            LayerSpec::Attention(_) => "attention",
            LayerSpec::Layernorm(_) => "layernorm",
            LayerSpec::GlobalMean => "global_mean",
            LayerSpec::TransformerBlock(_) => "transformer_block",
            LayerSpec::Batchnorm(_) => "batchnorm",
            LayerSpec::Dropout2d(_) => "dropout2d",
            LayerSpec::ConvTranspose2d(_) => "conv_transpose2d",
            LayerSpec::Upsample(_) => "upsample",
            LayerSpec::Reshape(_) => "reshape",
            LayerSpec::Sample => sample::KIND,
        }
    }

    /// The prefix of its parameter names; layers of one prefix are numbered in order (`fc1`,
    /// `fc2`), as the `kind = "mlp" | "cnn"` models always named them. `None`: no parameters.
    pub fn name_prefix(&self) -> Option<&'static str> {
        match self {
            LayerSpec::Dense(_) => Some("fc"),
            LayerSpec::Conv2d(_) => Some("conv"),
            LayerSpec::Embedding(_) => Some("embedding"),
            LayerSpec::Position(_) => Some("position"),
            LayerSpec::Rnn(_) => Some("rnn"),
            LayerSpec::Lstm(_) => Some("lstm"),
            LayerSpec::Gru(_) => Some("gru"),
            LayerSpec::Attention(_) => Some("attention"),
            LayerSpec::Layernorm(_) => Some("norm"),
            LayerSpec::TransformerBlock(_) => Some("block"),
            LayerSpec::Batchnorm(_) => Some("bn"),
            LayerSpec::ConvTranspose2d(_) => Some("deconv"),
            _ => None,
        }
    }

    /// A short description: `dense 128, ReLU`, `lstm 32, bidirectional`.
    pub fn describe(&self) -> String {
        match self {
            LayerSpec::Dense(s) => s.describe(),
            LayerSpec::Conv2d(s) => s.describe(),
            LayerSpec::Maxpool(s) => format!("max-pool {0}x{0}", s.size),
            LayerSpec::Avgpool(s) => format!("avg-pool {0}x{0}", s.size),
            LayerSpec::Flatten => "flatten".into(),
            LayerSpec::Dropout(s) => format!("dropout {}", s.rate),
            LayerSpec::Activation(s) => s.activation.title().into(),
            LayerSpec::Embedding(s) => s.describe(),
            LayerSpec::Position(_) => "position embedding".into(),
            LayerSpec::Rnn(s) | LayerSpec::Lstm(s) | LayerSpec::Gru(s) => s.describe(self.type_name()),
            LayerSpec::Attention(s) => s.describe(),
            LayerSpec::Layernorm(_) => "layer norm".into(),
            LayerSpec::GlobalMean => "mean over time".into(),
            LayerSpec::TransformerBlock(s) => s.describe(),
            LayerSpec::Batchnorm(s) => s.describe(),
            LayerSpec::Dropout2d(s) => format!("dropout2d {}", s.rate),
            LayerSpec::ConvTranspose2d(s) => s.describe(),
            LayerSpec::Upsample(s) => format!("upsample x{}", s.scale),
            LayerSpec::Reshape(s) => s.describe(),
            LayerSpec::Sample => "sample (mean, log-variance)".into(),
        }
    }

    /// Output shape and parameters for a per-sample input shape. `key` is the layer's preset
    /// key, `name` its parameter prefix with its number.
    pub fn plan(
        &self,
        key: &str,
        name: &str,
        input: &[usize],
        cx: &PlanContext,
    ) -> Result<(Vec<usize>, Vec<ParamSpec>)> {
        match self {
            LayerSpec::Dense(s) => s.plan(key, name, input, cx),
            LayerSpec::Conv2d(s) => s.plan(key, name, input),
            LayerSpec::Maxpool(s) | LayerSpec::Avgpool(s) => s.plan(key, input).map(|o| (o, vec![])),
            LayerSpec::Flatten => shape::flatten(key, input).map(|o| (o, vec![])),
            LayerSpec::Dropout(s) => s.plan(key, input).map(|o| (o, vec![])),
            LayerSpec::Activation(_) => Ok((input.to_vec(), vec![])),
            LayerSpec::Embedding(s) => s.plan(key, name, input, cx),
            LayerSpec::Position(_) => embedding::plan_position(key, name, input),
            LayerSpec::Rnn(s) => s.plan(key, name, input, super::recurrent::Cell::Rnn),
            LayerSpec::Lstm(s) => s.plan(key, name, input, super::recurrent::Cell::Lstm),
            LayerSpec::Gru(s) => s.plan(key, name, input, super::recurrent::Cell::Gru),
            LayerSpec::Attention(s) => s.plan(key, name, input),
            LayerSpec::Layernorm(_) => attention::plan_layernorm(key, name, input),
            LayerSpec::GlobalMean => shape::global_mean(key, input).map(|o| (o, vec![])),
            LayerSpec::TransformerBlock(s) => s.plan(key, name, input),
            LayerSpec::Batchnorm(s) => s.plan(key, name, input),
            LayerSpec::Dropout2d(s) => s.plan(key, input).map(|o| (o, vec![])),
            LayerSpec::ConvTranspose2d(s) => s.plan(key, name, input),
            LayerSpec::Upsample(s) => s.plan(key, input).map(|o| (o, vec![])),
            LayerSpec::Reshape(s) => s.plan(key, input).map(|o| (o, vec![])),
            LayerSpec::Sample => sample::plan(key, input).map(|o| (o, vec![])),
        }
    }

    /// The layer as it runs (the network builder fuses conv and dense layers itself), in its
    /// fused CPU form where it has one.
    pub fn build(&self, p: &Planned, params: &[Tensor]) -> Result<Box<dyn RunLayer>> {
        self.build_on(p, params, false)
    }

    /// [`LayerSpec::build`]; `portable` takes the form composed from candle ops even on the CPU
    /// (what runs on CUDA and Metal; `cpu-portable` checks it here).
    pub fn build_on(&self, p: &Planned, params: &[Tensor], portable: bool) -> Result<Box<dyn RunLayer>> {
        match self {
            // batch norm updates its running statistics in place: it is built from the variables
            LayerSpec::Dense(_) | LayerSpec::Conv2d(_) | LayerSpec::Maxpool(_) | LayerSpec::Batchnorm(_) => {
                Err(Error::Other(format!("{} layers are built by the network", self.type_name())))
            }
            LayerSpec::Avgpool(s) => Ok(Box::new(conv::AvgPool { size: s.size })),
            LayerSpec::Flatten => Ok(Box::new(shape::Flatten)),
            LayerSpec::Dropout(s) => Ok(Box::new(shape::Dropout { rate: s.rate })),
            LayerSpec::Activation(s) => Ok(Box::new(shape::Activate { activation: s.activation })),
            LayerSpec::Embedding(_) => embedding::build_embedding(params),
            LayerSpec::Position(_) => embedding::build_position(params),
            LayerSpec::Rnn(s) => s.build(super::recurrent::Cell::Rnn, params, portable),
            LayerSpec::Lstm(s) => s.build(super::recurrent::Cell::Lstm, params, portable),
            LayerSpec::Gru(s) => s.build(super::recurrent::Cell::Gru, params, portable),
            LayerSpec::Attention(s) => s.build(params),
            LayerSpec::Layernorm(_) => attention::build_layernorm(params),
            LayerSpec::GlobalMean => Ok(Box::new(shape::GlobalMean)),
            LayerSpec::TransformerBlock(s) => s.build(p, params),
            LayerSpec::Dropout2d(s) => Ok(Box::new(norm::Dropout2d { rate: s.rate })),
            LayerSpec::ConvTranspose2d(s) => s.build_on(params, portable),
            LayerSpec::Upsample(s) => Ok(Box::new(upsample::Upsample { scale: s.scale, portable })),
            LayerSpec::Reshape(s) => Ok(Box::new(upsample::Reshape { shape: s.shape.clone() })),
            LayerSpec::Sample => Ok(Box::new(sample::Sample)),
        }
    }

    fn reference(&self, p: &Planned) -> Result<Vec<RefLayer>> {
        Ok(match self {
            LayerSpec::Dense(s) => s.reference(p),
            LayerSpec::Conv2d(s) => s.reference(p),
            LayerSpec::Maxpool(s) => vec![RefLayer::MaxPool2d { kernel_size: s.size, stride: s.size }],
            LayerSpec::Avgpool(s) => vec![RefLayer::AvgPool2d { kernel_size: s.size, stride: s.size }],
            LayerSpec::Flatten => vec![RefLayer::Flatten { start_dim: 1 }],
            LayerSpec::Dropout(s) => vec![RefLayer::Dropout { p: s.rate }],
            LayerSpec::Activation(s) => vec![RefLayer::activation(s.activation)],
            LayerSpec::Embedding(_) => embedding::reference_embedding(p),
            LayerSpec::Position(_) => embedding::reference_position(p),
            LayerSpec::Rnn(s) | LayerSpec::Lstm(s) | LayerSpec::Gru(s) => s.reference(self.type_name(), p),
            LayerSpec::Attention(s) => s.reference(p),
            LayerSpec::Layernorm(_) => attention::reference_layernorm(p),
            LayerSpec::GlobalMean => vec![RefLayer::MeanOverTime],
            LayerSpec::TransformerBlock(s) => s.reference(p),
            LayerSpec::Batchnorm(s) => s.reference(p),
            LayerSpec::Dropout2d(s) => vec![RefLayer::Dropout2d { p: s.rate }],
            LayerSpec::ConvTranspose2d(s) => s.reference(p),
            LayerSpec::Upsample(s) => vec![RefLayer::Upsample { scale_factor: s.scale, mode: "nearest".into() }],
            LayerSpec::Reshape(s) => vec![RefLayer::Unflatten { dim: 1, unflattened_size: s.shape.clone() }],
            LayerSpec::Sample => {
                return Err(Error::Other(format!(
                    "{}: a VAE's sample layer has no PyTorch module in an export yet",
                    p.key
                )))
            }
        })
    }
}
