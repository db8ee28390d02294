//! The reference layout of an export: what PyTorch's `nn.Conv2d`, `nn.MaxPool2d`, `nn.Flatten`
//! and `nn.Linear` would hold, and the layers in those terms.
//!
//! Gradlab runs convolutions channels-last (NHWC), so the dense layer after the conv stack
//! learns its columns in (h, w, c) order. PyTorch's `nn.Flatten` of an NCHW tensor gives
//! (c, h, w). Exports permute that one weight's columns; loading an export permutes them back.
//! Conv weights are `[out, in, kh, kw]` in both, dense weights `[out, in]`.

use std::collections::HashMap;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{plan, Activation, LayerSpec, ModelInput, ModelSpec};

/// `layout` of a card from format version 2 on.
pub const PYTORCH: &str = "pytorch";

/// A layer as PyTorch names it; the card lists them in order, so the card alone rebuilds the
/// model (`nn.Sequential` of these, in NCHW).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RefLayer {
    Conv2d {
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        stride: usize,
        padding: usize,
        weight: String,
        bias: String,
    },
    #[serde(rename = "ReLU")]
    Relu,
    Tanh,
    Sigmoid,
    #[serde(rename = "LeakyReLU")]
    LeakyRelu {
        negative_slope: f32,
    },
    #[serde(rename = "GELU")]
    Gelu {
        /// `none`: the exact, erf-based GELU (PyTorch's default).
        approximate: String,
    },
    /// Floor division of the size, as PyTorch's default `ceil_mode = False`.
    MaxPool2d {
        kernel_size: usize,
        stride: usize,
    },
    /// Flattens everything after the batch dimension (NCHW: channel-major).
    Flatten {
        start_dim: usize,
    },
    Linear {
        in_features: usize,
        out_features: usize,
        weight: String,
        bias: String,
    },
    /// Identity at inference.
    Dropout {
        p: f64,
    },
    AvgPool2d {
        kernel_size: usize,
        stride: usize,
    },
    /// `nn.Embedding`: token ids `[N, T]` (integers) to `[N, T, embedding_dim]`.
    Embedding {
        num_embeddings: usize,
        embedding_dim: usize,
        weight: String,
    },
    /// Adds `weight[:T]` (`[max_T, D]`) to a sequence `[N, T, D]` (learned positions; PyTorch has
    /// no module for it: `x + weight[: x.shape[1]]`).
    PositionEmbedding {
        weight: String,
    },
    /// `nn.LSTM` / `nn.GRU` / `nn.RNN` (tanh) with `batch_first`, its tensors under `prefix`
    /// (`prefix.weight_ih_l0`, ...). `output`: `sequence` (the module's output) or `last` (the
    /// last step's state, and for the backward direction the first step's: `h_n` of the top
    /// layer, directions concatenated).
    Recurrent {
        module: String,
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        bidirectional: bool,
        batch_first: bool,
        output: String,
        prefix: String,
    },
    /// `nn.MultiheadAttention` as self-attention (query = key = value), tensors under `prefix`;
    /// `causal`: an upper-triangular mask.
    MultiheadAttention {
        embed_dim: usize,
        num_heads: usize,
        causal: bool,
        batch_first: bool,
        prefix: String,
    },
    LayerNorm {
        normalized_shape: usize,
        eps: f64,
        weight: String,
        bias: String,
    },
    /// `nn.TransformerEncoderLayer` with `norm_first` (pre-norm), tensors under `prefix`.
    TransformerEncoderLayer {
        d_model: usize,
        nhead: usize,
        dim_feedforward: usize,
        dropout: f64,
        activation: String,
        norm_first: bool,
        batch_first: bool,
        causal: bool,
        prefix: String,
    },
    /// The mean over the time dimension of `[N, T, D]`.
    MeanOverTime,
    /// `nn.BatchNorm1d` (features `[N, C]`) or `nn.BatchNorm2d` (`[N, C, H, W]`), `module` says
    /// which; the running statistics and `num_batches_tracked` (int64) are its buffers.
    BatchNorm {
        module: String,
        num_features: usize,
        eps: f64,
        momentum: f64,
        weight: String,
        bias: String,
        running_mean: String,
        running_var: String,
        num_batches_tracked: String,
    },
    /// Zeroes whole channels while training; the identity at inference.
    Dropout2d {
        p: f64,
    },
    /// Weight `[in_channels, out_channels, k, k]`, as PyTorch holds it.
    ConvTranspose2d {
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        stride: usize,
        padding: usize,
        output_padding: usize,
        weight: String,
        bias: String,
    },
    /// `nn.Upsample(scale_factor, mode = "nearest")`.
    Upsample {
        scale_factor: usize,
        mode: String,
    },
    /// `nn.Unflatten(dim, unflattened_size)`.
    Unflatten {
        dim: usize,
        unflattened_size: Vec<usize>,
    },
}

impl RefLayer {
    pub fn activation(a: Activation) -> Self {
        match a {
            Activation::Relu => RefLayer::Relu,
            Activation::Tanh => RefLayer::Tanh,
            Activation::Sigmoid => RefLayer::Sigmoid,
            Activation::Gelu => RefLayer::Gelu { approximate: "none".into() },
            Activation::LeakyRelu => RefLayer::LeakyRelu { negative_slope: Activation::LEAKY_SLOPE },
        }
    }
}

/// A card's `layers` entry: reference layers from format version 2, readable strings before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CardLayer {
    Reference(RefLayer),
    Described(String),
}

/// The model's layers in reference terms.
pub fn reference_layers(spec: &ModelSpec, input: &ModelInput) -> Result<Vec<RefLayer>> {
    let mut out = Vec::new();
    for layer in plan(spec, input)? {
        out.extend(layer.reference()?);
    }
    Ok(out)
}

/// The dense weights that read a channels-last flatten, each with the `[c, h, w]` it flattens
/// (`model::channels` says where the network runs images channels-last).
fn channels_last_dense(spec: &ModelSpec, input: &ModelInput) -> Result<Vec<(String, [usize; 3])>> {
    let layers = plan(spec, input)?;
    let layouts = crate::model::channels::layouts(&layers);
    let mut found = Vec::new();
    'flattens: for (i, l) in layers.iter().enumerate() {
        match l.spec {
            LayerSpec::Flatten if layouts[i].input_channels_last => {
                let &[c, h, w] = l.input.as_slice() else { continue };
                // the next dense layer reads the flattened values (dropout and activations
                // between keep their order); a layer with per-feature weights between would need
                // them permuted too
                for next in &layers[i + 1..] {
                    match next.spec {
                        LayerSpec::Dropout(_) | LayerSpec::Activation(_) => {}
                        LayerSpec::Dense(_) => {
                            found.push((next.params[0].name.clone(), [c, h, w]));
                            continue 'flattens;
                        }
                        ref other => {
                            return Err(crate::Error::Other(format!(
                                "export: a {} layer between a conv stack's flatten and its dense layer is not supported yet",
                                other.type_name()
                            )))
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// Which way a weight goes between Gradlab's training layout and the reference layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToReference,
    FromReference,
}

/// Renames nothing, copies everything, and permutes the columns of the dense weight after a
/// conv stack between (h, w, c) order (Gradlab) and (c, h, w) order (reference).
pub fn convert(
    tensors: &HashMap<String, Tensor>,
    spec: &ModelSpec,
    input: &ModelInput,
    direction: Direction,
) -> Result<HashMap<String, Tensor>> {
    let mut out = tensors.clone();
    for (name, [c, h, w]) in channels_last_dense(spec, input)? {
        let Some(weight) = tensors.get(&name) else { continue };
        // checked here, not with candle's `dims2`: a candle error captures a backtrace (hundreds of MB
        // with RUST_BACKTRACE set) and a hostile file must cost no more than its bytes
        let &[rows, cols] = weight.dims() else {
            return Err(crate::Error::Shape(format!("`{name}` is {:?}; a dense weight is a matrix", weight.dims())));
        };
        if cols != c * h * w {
            return Err(crate::Error::Shape(format!(
                "`{name}` has {cols} columns but the conv stack gives {c}x{h}x{w} = {} features",
                c * h * w
            )));
        }
        let permuted = match direction {
            // columns (y, x, ch) -> (ch, y, x)
            Direction::ToReference => weight.reshape((rows, h, w, c))?.permute((0, 3, 1, 2))?,
            Direction::FromReference => weight.reshape((rows, c, h, w))?.permute((0, 2, 3, 1))?,
        };
        out.insert(name, permuted.contiguous()?.reshape((rows, cols))?);
    }
    Ok(out)
}
