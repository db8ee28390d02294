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

impl LayerPlan {
    /// Trainable values of the layer (weights and biases), `None` when the count does not fit a
    /// `usize` ([`plan`] refuses such layers, so planned layers always have one).
    pub fn param_count(&self) -> Option<usize> {
        match self {
            LayerPlan::Conv { in_channels, out_channels, kernel, .. } => {
                in_channels.checked_mul(*kernel)?.checked_mul(*kernel)?.checked_add(1)?.checked_mul(*out_channels)
            }
            LayerPlan::Dense { inputs, outputs, .. } => inputs.checked_add(1)?.checked_mul(*outputs),
            _ => Some(0),
        }
    }
}

/// Values a single tensor may hold: its bytes (4 per f32) must be addressable. Anything near this
/// is refused by the memory estimate long before; the limit only keeps the arithmetic exact.
pub const MAX_TENSOR_ELEMENTS: usize = usize::MAX / 16;

/// The layers of a spec for an input shape (`[c, h, w]` or `[features]`) and class count, with
/// the shape after each layer. Errors name the key of the spec that does not fit. All shape
/// arithmetic is checked: a size that would overflow is an error naming its key, never a
/// wrapped value.
pub fn plan(spec: &ModelSpec, input_shape: &[usize], classes: usize) -> Result<Vec<(LayerPlan, Vec<usize>)>> {
    let shape_err = |key: String, msg: String| Error::config("preset", format!("model.{key}"), msg);
    let too_large = |key: String, what: &str| {
        shape_err(key, format!("makes {what} too large to address (more than {MAX_TENSOR_ELEMENTS} values)"))
    };
    let elements = |dims: &[usize]| {
        dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= MAX_TENSOR_ELEMENTS)
    };
    let mut layers = Vec::new();
    let mut features =
        elements(input_shape).ok_or_else(|| Error::Shape(format!("the input shape {input_shape:?} is too large")))?;
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
            if conv.kernel == 0 {
                return Err(shape_err(key("kernel"), "must be at least 1".into()));
            }
            let (Some(oh), Some(ow)) = (
                conv_output_size(h, conv.kernel, conv.stride, conv.padding),
                conv_output_size(w, conv.kernel, conv.stride, conv.padding),
            ) else {
                if padded(h, conv.padding).is_none() || padded(w, conv.padding).is_none() {
                    return Err(shape_err(
                        key("padding"),
                        format!("padding {} overflows the size of the {h}x{w} input of this layer", conv.padding),
                    ));
                }
                return Err(shape_err(
                    key("kernel"),
                    format!(
                        "kernel {} does not fit the {h}x{w} input of this layer (padding {})",
                        conv.kernel, conv.padding
                    ),
                ));
            };
            let layer = LayerPlan::Conv {
                name: format!("conv{}", i + 1),
                in_channels: c,
                out_channels: conv.channels,
                kernel: conv.kernel,
                stride: conv.stride,
                padding: conv.padding,
            };
            // the weights, the output and one image's im2col patches must all be addressable
            if layer.param_count().is_none_or(|n| n > MAX_TENSOR_ELEMENTS) {
                let blame = if conv.channels > conv.kernel { "channels" } else { "kernel" };
                return Err(too_large(key(blame), "the layer's weights"));
            }
            if elements(&[conv.channels, oh, ow]).is_none() {
                let blame = if conv.padding > h.max(w) { "padding" } else { "channels" };
                return Err(too_large(key(blame), "the layer's output"));
            }
            if elements(&[oh, ow, conv.kernel, conv.kernel, c]).is_none() {
                let blame = if conv.padding > h.max(w) { "padding" } else { "kernel" };
                return Err(too_large(key(blame), "the layer's im2col patches"));
            }
            layers.push((layer, vec![conv.channels, oh, ow]));
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
        // c * h * w is at most the last conv output, checked above
        features = c * h * w;
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
        let layer = LayerPlan::Dense { name: format!("fc{}", i + 1), inputs: features, outputs: width };
        if width > MAX_TENSOR_ELEMENTS || layer.param_count().is_none_or(|n| n > MAX_TENSOR_ELEMENTS) {
            return Err(too_large(
                format!("hidden[{i}]"),
                &format!("the weights of fc{} ({features} x {width})", i + 1),
            ));
        }
        layers.push((layer, vec![width]));
        layers.push((LayerPlan::Activation(spec.activation), vec![width]));
        if spec.dropout > 0.0 {
            layers.push((LayerPlan::Dropout(spec.dropout), vec![width]));
        }
        features = width;
    }
    let last = LayerPlan::Dense { name: format!("fc{}", spec.hidden.len() + 1), inputs: features, outputs: classes };
    if last.param_count().is_none_or(|n| n > MAX_TENSOR_ELEMENTS) {
        let key = match spec.hidden.len() {
            0 => "kind".to_string(),
            n => format!("hidden[{}]", n - 1),
        };
        return Err(too_large(key, "the weights of the output layer"));
    }
    layers.push((last, vec![classes]));
    Ok(layers)
}

fn padded(size: usize, padding: usize) -> Option<usize> {
    padding.checked_mul(2)?.checked_add(size)
}

/// Output size of a convolution along one axis, `(size + 2 * padding - kernel) / stride + 1`,
/// `None` when the kernel does not fit, the stride is 0 or the arithmetic overflows.
pub fn conv_output_size(size: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let span = padded(size, padding)?.checked_sub(kernel)?;
    if kernel == 0 {
        return None;
    }
    Some(span.checked_div(stride)? + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cnn(conv: ConvSpec) -> ModelSpec {
        ModelSpec { conv: vec![conv], ..ModelSpec::default() }
    }

    fn key_of(spec: &ModelSpec) -> String {
        match plan(spec, &[1, 28, 28], 10) {
            Err(Error::Config { key, message, .. }) => format!("{key}: {message}"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    const HUGE: usize = i64::MAX as usize; // the largest integer TOML can write

    #[test]
    fn conv_sizes_that_overflow_are_errors_naming_the_key() {
        let base = ConvSpec::default();
        for (conv, key) in [
            (ConvSpec { padding: HUGE, ..base }, "model.conv[0].padding"),
            (ConvSpec { padding: HUGE / 2, ..base }, "model.conv[0].padding"),
            (ConvSpec { kernel: HUGE, ..base }, "model.conv[0].kernel"),
            (ConvSpec { kernel: HUGE / 4, padding: HUGE / 4, ..base }, "model.conv[0].kernel"),
            (ConvSpec { channels: HUGE, ..base }, "model.conv[0].channels"),
            (ConvSpec { pool: HUGE, ..base }, "model.conv[0].pool"),
            (ConvSpec { stride: 0, ..base }, "model.conv[0].stride"),
        ] {
            let got = key_of(&cnn(conv));
            assert!(got.starts_with(key), "{conv:?}: {got}");
        }
    }

    #[test]
    fn a_huge_stride_leaves_one_output_position() {
        let layers = plan(&cnn(ConvSpec { stride: HUGE, pool: 1, ..ConvSpec::default() }), &[1, 28, 28], 10).unwrap();
        assert_eq!(layers[0].1, vec![32, 1, 1]);
    }

    #[test]
    fn dense_sizes_that_overflow_are_errors_naming_the_key() {
        let got = key_of(&ModelSpec::mlp(&[HUGE]));
        assert!(got.starts_with("model.hidden[0]"), "{got}");
        let got = key_of(&ModelSpec::mlp(&[10, 1 << 40, 1 << 40]));
        assert!(got.starts_with("model.hidden[2]"), "{got}");
        let got = key_of(&ModelSpec::mlp(&[4_000_000_000, 4_000_000_000]));
        assert!(got.starts_with("model.hidden[1]") && got.contains("4000000000 x 4000000000"), "{got}");
        // large but countable layers plan; the memory estimate refuses them
        let layers = plan(&ModelSpec::mlp(&[4_000_000_000, 1000]), &[784], 10).unwrap();
        assert_eq!(layers[2].0.param_count(), Some(4_000_000_001 * 1000));
    }

    #[test]
    fn output_sizes_are_checked() {
        assert_eq!(conv_output_size(28, 3, 1, 0), Some(26));
        assert_eq!(conv_output_size(28, 3, 2, 1), Some(14));
        assert_eq!(conv_output_size(28, 31, 1, 1), None);
        assert_eq!(conv_output_size(28, 3, 0, 0), None);
        assert_eq!(conv_output_size(28, 3, 1, usize::MAX / 2), None);
    }
}
