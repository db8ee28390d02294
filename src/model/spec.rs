//! What a preset's `[model]` table says, and the shape check that turns it into layers.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Mlp,
    #[default]
    Cnn,
}

impl ModelKind {
    pub const ALL: [ModelKind; 2] = [ModelKind::Mlp, ModelKind::Cnn];

    pub fn title(self) -> &'static str {
        match self {
            ModelKind::Mlp => "MLP",
            ModelKind::Cnn => "CNN",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    Sigmoid,
    Gelu,
}

impl Activation {
    pub const ALL: [Activation; 4] = [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Gelu];

    pub fn title(self) -> &'static str {
        match self {
            Activation::Relu => "ReLU",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Gelu => "GELU",
        }
    }
}

/// One convolution block: conv, activation, then max-pool when `pool` > 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConvSpec {
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub pool: usize,
}

impl Default for ConvSpec {
    fn default() -> Self {
        Self { channels: 32, kernel: 3, stride: 1, padding: 0, pool: 2 }
    }
}

/// A model family and its hyper-parameters. An MLP is `hidden` dense layers; a CNN is `conv`
/// blocks, then `hidden` dense layers. Both end in a dense layer with one output per class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSpec {
    pub kind: ModelKind,
    /// Empty when the table does not list any (an MLP has none).
    #[serde(default)]
    pub conv: Vec<ConvSpec>,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub dropout: f64,
}

impl Default for ModelSpec {
    /// The classic MNIST CNN: conv 32 3x3, ReLU, max-pool 2, flatten, dense.
    fn default() -> Self {
        Self {
            kind: ModelKind::Cnn,
            conv: vec![ConvSpec::default()],
            hidden: vec![],
            activation: Activation::Relu,
            dropout: 0.0,
        }
    }
}

impl ModelSpec {
    pub fn mlp(hidden: &[usize]) -> Self {
        Self { kind: ModelKind::Mlp, conv: vec![], hidden: hidden.to_vec(), ..Self::default() }
    }

    /// A one-line description, e.g. `CNN conv32k3-pool2 -> 10`.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.kind == ModelKind::Cnn {
            for c in &self.conv {
                let mut s = format!("conv{}k{}", c.channels, c.kernel);
                if c.stride > 1 {
                    s.push_str(&format!("s{}", c.stride));
                }
                if c.pool > 1 {
                    s.push_str(&format!("-pool{}", c.pool));
                }
                parts.push(s);
            }
        }
        parts.extend(self.hidden.iter().map(|h| format!("fc{h}")));
        format!("{} {}", self.kind.title(), if parts.is_empty() { "linear".into() } else { parts.join("-") })
    }
}

/// A layer as planned from the spec, with its input and output shapes known.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerPlan {
    /// NHWC input `[h, w, c]`.
    Conv {
        name: String,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    },
    MaxPool {
        size: usize,
    },
    Flatten,
    Dense {
        name: String,
        inputs: usize,
        outputs: usize,
    },
    Activation(Activation),
    Dropout(f64),
}

/// The layers of a spec for an input shape (`[c, h, w]` or `[features]`) and class count, with
/// the shape after each layer. Errors name the key of the spec that does not fit.
pub fn plan(spec: &ModelSpec, input_shape: &[usize], classes: usize) -> Result<Vec<(LayerPlan, Vec<usize>)>> {
    let shape_err = |key: String, msg: String| Error::config("preset", format!("model.{key}"), msg);
    let mut layers = Vec::new();
    // hostile presets and model cards reach here: every size is checked, never wrapped
    let too_large = |key: String, what: String| shape_err(key, format!("{what} is too large to compute"));
    let mut features = input_shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::Shape(format!("input shape {input_shape:?} is too large")))?;
    if spec.kind == ModelKind::Cnn {
        let [c, h, w] = input_shape else {
            return Err(shape_err(
                "kind".into(),
                format!("a CNN needs image input (channels x height x width) but this data has {features} features; use an MLP"),
            ));
        };
        let (mut c, mut h, mut w) = (*c, *h, *w);
        for (i, conv) in spec.conv.iter().enumerate() {
            let key = |k: &str| format!("conv[{i}].{k}");
            if conv.channels == 0 {
                return Err(shape_err(key("channels"), "must be at least 1".into()));
            }
            if conv.stride == 0 {
                return Err(shape_err(key("stride"), "must be at least 1".into()));
            }
            let padded = |side: usize| conv.padding.checked_mul(2).and_then(|p| p.checked_add(side));
            let (Some(ph), Some(pw)) = (padded(h), padded(w)) else {
                return Err(too_large(key("padding"), format!("padding {}", conv.padding)));
            };
            if conv.kernel == 0 || conv.kernel > ph || conv.kernel > pw {
                return Err(shape_err(
                    key("kernel"),
                    format!(
                        "kernel {} does not fit the {h}x{w} input of this layer (padding {})",
                        conv.kernel, conv.padding
                    ),
                ));
            }
            let oh = (ph - conv.kernel) / conv.stride + 1;
            let ow = (pw - conv.kernel) / conv.stride + 1;
            layers.push((
                LayerPlan::Conv {
                    name: format!("conv{}", i + 1),
                    in_channels: c,
                    out_channels: conv.channels,
                    kernel: conv.kernel,
                    stride: conv.stride,
                    padding: conv.padding,
                },
                vec![conv.channels, oh, ow],
            ));
            layers.push((LayerPlan::Activation(spec.activation), vec![conv.channels, oh, ow]));
            (c, h, w) = (conv.channels, oh, ow);
            if conv.pool > 1 {
                if conv.pool > h || conv.pool > w {
                    return Err(shape_err(
                        key("pool"),
                        format!("pool {} is larger than the {h}x{w} feature map", conv.pool),
                    ));
                }
                (h, w) = (h / conv.pool, w / conv.pool);
                layers.push((LayerPlan::MaxPool { size: conv.pool }, vec![c, h, w]));
            }
        }
        features = c
            .checked_mul(h)
            .and_then(|ch| ch.checked_mul(w))
            .ok_or_else(|| too_large("conv".into(), format!("the flattened {c}x{h}x{w} feature map")))?;
        layers.push((LayerPlan::Flatten, vec![features]));
    } else if !spec.conv.is_empty() {
        return Err(shape_err(
            "conv".into(),
            "only CNN models have conv layers; set kind = \"cnn\" or remove them".into(),
        ));
    } else if input_shape.len() > 1 {
        layers.push((LayerPlan::Flatten, vec![features]));
    }
    if !(0.0..1.0).contains(&spec.dropout) {
        return Err(shape_err("dropout".into(), format!("{} is not a probability in [0, 1)", spec.dropout)));
    }
    for (i, &width) in spec.hidden.iter().enumerate() {
        if width == 0 {
            return Err(shape_err(format!("hidden[{i}]"), "a layer needs at least 1 unit".into()));
        }
        layers.push((LayerPlan::Dense { name: format!("fc{}", i + 1), inputs: features, outputs: width }, vec![width]));
        layers.push((LayerPlan::Activation(spec.activation), vec![width]));
        if spec.dropout > 0.0 {
            layers.push((LayerPlan::Dropout(spec.dropout), vec![width]));
        }
        features = width;
    }
    layers.push((
        LayerPlan::Dense { name: format!("fc{}", spec.hidden.len() + 1), inputs: features, outputs: classes },
        vec![classes],
    ));
    Ok(layers)
}
