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
use crate::model::{plan, Activation, LayerPlan, ModelKind, ModelSpec};

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
}

/// A card's `layers` entry: reference layers from format version 2, readable strings before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CardLayer {
    Reference(RefLayer),
    Described(String),
}

/// The model's layers in reference terms.
pub fn reference_layers(spec: &ModelSpec, input_shape: &[usize], classes: usize) -> Result<Vec<RefLayer>> {
    let mut out = Vec::new();
    for (layer, _) in plan(spec, input_shape, classes)? {
        out.push(match layer {
            LayerPlan::Conv { name, in_channels, out_channels, kernel, stride, padding } => RefLayer::Conv2d {
                in_channels,
                out_channels,
                kernel_size: kernel,
                stride,
                padding,
                weight: format!("{name}.weight"),
                bias: format!("{name}.bias"),
            },
            LayerPlan::Activation(Activation::Relu) => RefLayer::Relu,
            LayerPlan::Activation(Activation::Tanh) => RefLayer::Tanh,
            LayerPlan::Activation(Activation::Sigmoid) => RefLayer::Sigmoid,
            LayerPlan::Activation(Activation::Gelu) => RefLayer::Gelu { approximate: "none".into() },
            LayerPlan::MaxPool { size } => RefLayer::MaxPool2d { kernel_size: size, stride: size },
            LayerPlan::Flatten => RefLayer::Flatten { start_dim: 1 },
            LayerPlan::Dense { name, inputs, outputs } => RefLayer::Linear {
                in_features: inputs,
                out_features: outputs,
                weight: format!("{name}.weight"),
                bias: format!("{name}.bias"),
            },
            LayerPlan::Dropout(p) => RefLayer::Dropout { p },
        });
    }
    Ok(out)
}

/// The dense weight that reads a channels-last flatten, and the `[c, h, w]` it flattens: only
/// when a conv layer comes first (then the network runs NHWC up to the flatten).
fn channels_last_dense(
    spec: &ModelSpec,
    input_shape: &[usize],
    classes: usize,
) -> Result<Option<(String, [usize; 3])>> {
    if spec.kind != ModelKind::Cnn || spec.conv.is_empty() {
        return Ok(None);
    }
    let layers = plan(spec, input_shape, classes)?;
    let Some(flat) = layers.iter().position(|(l, _)| *l == LayerPlan::Flatten) else { return Ok(None) };
    let &[c, h, w] = layers[flat.saturating_sub(1)].1.as_slice() else { return Ok(None) };
    let dense = layers[flat + 1..].iter().find_map(|(l, _)| match l {
        LayerPlan::Dense { name, .. } => Some(format!("{name}.weight")),
        _ => None,
    });
    Ok(dense.map(|d| (d, [c, h, w])))
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
    input_shape: &[usize],
    classes: usize,
    direction: Direction,
) -> Result<HashMap<String, Tensor>> {
    let mut out = tensors.clone();
    let Some((name, [c, h, w])) = channels_last_dense(spec, input_shape, classes)? else { return Ok(out) };
    let Some(weight) = tensors.get(&name) else { return Ok(out) };
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
    Ok(out)
}
