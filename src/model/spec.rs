//! What a preset's `[model]` table says, and the shape check that turns it into layers.

use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use super::layers::{
    self, ActivationSpec, Conv2dSpec, DenseSpec, DropoutSpec, LayerSpec, PlanContext, Planned, PoolSpec, Target,
};
use crate::error::{Error, Result};
use crate::task::Task;

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
    /// `max(x, 0.2 x)`: the DCGAN discriminator's activation (PyTorch's `LeakyReLU(0.2)`).
    #[serde(rename = "leaky_relu")]
    LeakyRelu,
}

impl Activation {
    pub const ALL: [Activation; 5] =
        [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Gelu, Activation::LeakyRelu];

    /// LeakyReLU's slope below zero.
    pub const LEAKY_SLOPE: f32 = 0.2;

    pub fn title(self) -> &'static str {
        match self {
            Activation::Relu => "ReLU",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Gelu => "GELU",
            Activation::LeakyRelu => "LeakyReLU",
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

/// A model: a list of layers (`[model] layers = [...]`), or the older form, a family (`kind =
/// "mlp" | "cnn"`) with `conv` blocks, `hidden` dense layers, one activation and one dropout,
/// which expands to the same layers (same names, same weights, same numbers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ModelKind>,
    /// The `kind = "cnn"` form's blocks; a table without `conv` has none (as it always had).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<Vec<ConvSpec>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<usize>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub activation: Activation,
    #[serde(default, skip_serializing_if = "is_default")]
    pub dropout: f64,
    /// A GAN's generator reads this many noise values (`task = "gan"`; 64 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent: Option<usize>,
}

/// A generator's noise values when `[model] latent` is unset.
pub const DEFAULT_LATENT: usize = 64;

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl Default for ModelSpec {
    /// The classic MNIST CNN: conv 32 3x3, ReLU, max-pool 2, flatten, dense.
    fn default() -> Self {
        Self::from_layers(vec![
            LayerSpec::Conv2d(Conv2dSpec { activation: Some(Activation::Relu), ..Conv2dSpec::default() }),
            LayerSpec::Maxpool(PoolSpec { size: 2 }),
            LayerSpec::Flatten,
            LayerSpec::Dense(DenseSpec { units: None, activation: None }),
        ])
    }
}

/// What the model reads and predicts: the data's per-sample shape, its class count (the
/// vocabulary for a language model), whether the input is token ids, and the task.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInput {
    pub shape: Vec<usize>,
    pub classes: usize,
    /// Distinct token ids of text input (with `<pad>` and `<unk>`), `None` for numbers.
    pub vocab: Option<usize>,
    pub task: Task,
}

impl ModelInput {
    /// Numeric input classified into `classes` (images, tables, points).
    pub fn classify(shape: &[usize], classes: usize) -> Self {
        Self { shape: shape.to_vec(), classes, vocab: None, task: Task::Classify }
    }

    fn target(&self) -> Target {
        match self.task {
            Task::Classify => Target::Classes(self.classes),
            Task::LanguageModel => Target::NextToken { vocab: self.classes },
            Task::Autoencode | Task::Vae => Target::Reconstruct(self.shape.iter().product()),
            Task::Gan => Target::Generate(self.shape.iter().product()),
        }
    }

    /// What the model reads: the data, or for a GAN's generator `latent` noise values.
    pub fn model_reads(&self, spec: &ModelSpec) -> Vec<usize> {
        match self.task {
            Task::Gan => vec![spec.latent.unwrap_or(DEFAULT_LATENT)],
            _ => self.shape.clone(),
        }
    }
}

impl ModelSpec {
    pub fn from_layers(layers: Vec<LayerSpec>) -> Self {
        Self {
            layers,
            kind: None,
            conv: None,
            hidden: vec![],
            activation: Activation::Relu,
            dropout: 0.0,
            latent: None,
        }
    }

    /// The older form of an MLP.
    pub fn mlp(hidden: &[usize]) -> Self {
        Self { kind: Some(ModelKind::Mlp), hidden: hidden.to_vec(), ..Self::from_layers(vec![]) }
    }

    /// The layers with the preset key each came from. The `kind` form expands as it always ran:
    /// conv, activation, max-pool per block, flatten, then dense + activation (+ dropout) per
    /// hidden width, then the output layer.
    pub fn expanded(&self, input_shape: &[usize]) -> Result<Vec<(String, LayerSpec)>> {
        let kind = match self.kind {
            Some(kind) => kind,
            // a `[model]` table with neither: the older form's default, a CNN
            None if self.layers.is_empty() => ModelKind::Cnn,
            None => {
                if self.conv.is_some()
                    || !self.hidden.is_empty()
                    || self.activation != Activation::Relu
                    || self.dropout != 0.0
                {
                    return Err(Error::config(
                        "preset",
                        "model.layers",
                        "conv, hidden, activation and dropout belong to the `kind = \"mlp\" | \"cnn\"` form; with a layer list, write them as layers",
                    ));
                }
                let keyed = self.layers.iter().enumerate().map(|(i, l)| (format!("model.layers[{i}]"), l.clone()));
                return Ok(keyed.collect());
            }
        };
        if !self.layers.is_empty() {
            return Err(Error::config(
                "preset",
                "model.layers",
                "give either `layers` or `kind` (with conv and hidden), not both",
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(
                "preset",
                "model.dropout",
                format!("{} is not a probability in [0, 1)", self.dropout),
            ));
        }
        let mut out = Vec::new();
        let act = LayerSpec::Activation(ActivationSpec { activation: self.activation });
        match (kind, &self.conv) {
            (ModelKind::Cnn, conv) => {
                if input_shape.len() != 3 {
                    let features: usize = input_shape.iter().product();
                    return Err(Error::config(
                        "preset",
                        "model.kind",
                        format!("a CNN needs image input (channels x height x width) but this data has {features} features; use an MLP"),
                    ));
                }
                for (i, c) in conv.as_deref().unwrap_or(&[]).iter().enumerate() {
                    let key = format!("model.conv[{i}]");
                    let conv = Conv2dSpec {
                        channels: c.channels,
                        kernel: c.kernel,
                        stride: c.stride,
                        padding: c.padding,
                        activation: None,
                    };
                    out.push((key.clone(), LayerSpec::Conv2d(conv)));
                    out.push((key.clone(), act.clone()));
                    if c.pool > 1 {
                        out.push((key, LayerSpec::Maxpool(PoolSpec { size: c.pool })));
                    }
                }
                out.push(("model.conv".into(), LayerSpec::Flatten));
            }
            (ModelKind::Mlp, Some(conv)) if !conv.is_empty() => {
                return Err(Error::config(
                    "preset",
                    "model.conv",
                    "only CNN models have conv layers; set kind = \"cnn\" or remove them",
                ));
            }
            (ModelKind::Mlp, _) if input_shape.len() > 1 => out.push(("model.kind".into(), LayerSpec::Flatten)),
            (ModelKind::Mlp, _) => {}
        }
        for (i, &width) in self.hidden.iter().enumerate() {
            let key = format!("model.hidden[{i}]");
            out.push((key.clone(), LayerSpec::Dense(DenseSpec { units: Some(width), activation: None })));
            out.push((key, act.clone()));
            if self.dropout != 0.0 {
                out.push(("model.dropout".into(), LayerSpec::Dropout(DropoutSpec { rate: self.dropout })));
            }
        }
        let key = match self.hidden.len() {
            0 => "model.kind".to_string(),
            n => format!("model.hidden[{}]", n - 1),
        };
        out.push((key, LayerSpec::Dense(DenseSpec { units: None, activation: None })));
        Ok(out)
    }

    /// The same model as a layer list (what the GUI edits): same layers, same names, same numbers.
    pub fn to_layer_list(&self, input_shape: &[usize]) -> Result<Self> {
        if self.kind.is_none() && !self.layers.is_empty() {
            return Ok(self.clone());
        }
        // the expansion's separate activations fold into their conv or dense layer
        let mut folded: Vec<LayerSpec> = Vec::new();
        for (_, l) in self.expanded(input_shape)? {
            match (folded.last_mut(), &l) {
                (Some(LayerSpec::Conv2d(c)), LayerSpec::Activation(a)) if c.activation.is_none() => {
                    c.activation = Some(a.activation)
                }
                (Some(LayerSpec::Dense(d)), LayerSpec::Activation(a)) if d.activation.is_none() => {
                    d.activation = Some(a.activation)
                }
                _ => folded.push(l),
            }
        }
        Ok(Self::from_layers(folded))
    }

    /// A one-line description, e.g. `CNN conv32k3-pool2-fc` or `embedding32-lstm32-fc`.
    pub fn summary(&self) -> String {
        let Ok(layers) = self.expanded(&[1, 28, 28]).or_else(|_| self.expanded(&[2])) else {
            return "invalid model".into();
        };
        let parts: Vec<String> = layers
            .iter()
            .filter_map(|(_, l)| match l {
                LayerSpec::Conv2d(c) => {
                    let stride = if c.stride > 1 { format!("s{}", c.stride) } else { String::new() };
                    Some(format!("conv{}k{}{stride}", c.channels, c.kernel))
                }
                LayerSpec::Maxpool(p) => Some(format!("pool{}", p.size)),
                LayerSpec::Avgpool(p) => Some(format!("avgpool{}", p.size)),
                LayerSpec::Dense(d) => Some(d.units.map_or("fc".to_string(), |u| format!("fc{u}"))),
                LayerSpec::Embedding(e) => Some(format!("embedding{}", e.dim)),
                LayerSpec::Rnn(r) | LayerSpec::Lstm(r) | LayerSpec::Gru(r) => {
                    Some(format!("{}{}{}", if r.bidirectional { "bi" } else { "" }, l.type_name(), r.hidden))
                }
                LayerSpec::Attention(a) => Some(format!("attention{}", a.heads)),
                LayerSpec::TransformerBlock(_) => Some("block".into()),
                _ => None,
            })
            .collect();
        let family = self.kind.map_or(String::new(), |k| format!("{} ", k.title()));
        format!("{family}{}", parts.join("-"))
    }
}

/// Values a single tensor may hold: its bytes (4 per f32) must be addressable. Anything near this
/// is refused by the memory estimate long before; the limit only keeps the arithmetic exact.
pub const MAX_TENSOR_ELEMENTS: usize = usize::MAX / 16;

/// The layers of a model for its input, with the shape after each, their parameters and names.
/// Errors name the preset key that does not fit (`model.layers[2].kernel`) and what would. All
/// shape arithmetic is checked: a size that would overflow is an error naming its key.
pub fn plan(spec: &ModelSpec, input: &ModelInput) -> Result<Vec<Planned>> {
    let (layers, error) = plan_partial(spec, input);
    match error {
        Some(e) => Err(e),
        None => Ok(layers),
    }
}

/// The layers that plan, up to the first that does not fit, and its error (the GUI shows the
/// shapes so far and marks that layer).
pub fn plan_partial(spec: &ModelSpec, input: &ModelInput) -> (Vec<Planned>, Option<Error>) {
    let mut out: Vec<Planned> = Vec::new();
    if layers::elements(&input.shape).is_none() {
        return (out, Some(Error::Shape(format!("the input shape {:?} is too large", input.shape))));
    }
    let reads = input.model_reads(spec);
    if input.task == Task::Gan && !(1..=4096).contains(&reads[0]) {
        let e = Error::config("preset", "model.latent", format!("{} noise values; use 1 to 4096", reads[0]));
        return (out, Some(e));
    }
    let expanded = match spec.expanded(&reads) {
        Ok(e) => e,
        Err(e) => return (out, Some(e)),
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut shape = reads;
    let n = expanded.len();
    for (i, (key, layer)) in expanded.into_iter().enumerate() {
        let name = match layer.name_prefix() {
            Some(prefix) => {
                let c = counts.entry(prefix).or_insert(0);
                *c += 1;
                format!("{prefix}{c}")
            }
            None => String::new(),
        };
        if matches!(layer, LayerSpec::Embedding(_)) && i > 0 {
            let e = layers::field_error(&key, "", "an embedding reads the token ids, so it must be the first layer");
            return (out, Some(e));
        }
        let cx =
            PlanContext { target: input.target(), vocab: if i == 0 { input.vocab } else { None }, last: i + 1 == n };
        match layer.plan(&key, &name, &shape, &cx) {
            Ok((output, params)) => {
                out.push(Planned { spec: layer, key, name, input: shape, output: output.clone(), params });
                shape = output;
            }
            Err(e) => return (out, Some(e)),
        }
    }
    let error = check_output(&out, input).err();
    (out, error)
}

/// The last layer must give what the task predicts.
fn check_output(layers: &[Planned], input: &ModelInput) -> Result<()> {
    let Some(last) = layers.last() else { return Ok(()) };
    // the loss applies the softmax (or a single output's sigmoid) to the logits itself
    let logits_note = "the output layer gives logits and the loss applies the softmax (or, for one output, the sigmoid) itself; leave the activation out";
    let samples = layers.iter().filter(|l| l.spec == LayerSpec::Sample).count();
    if (samples == 1) != (input.task == Task::Vae) {
        let message = if input.task == Task::Vae {
            format!(
                "a VAE needs exactly one `sample` layer between its encoder and its decoder; the model has {samples}"
            )
        } else {
            "a `sample` layer belongs to a VAE (task = \"vae\"), whose loss holds its KL term".to_string()
        };
        let key = layers.iter().find(|l| l.spec == LayerSpec::Sample).map_or("model.layers", |l| l.key.as_str());
        return Err(layers::field_error(key, "", message));
    }
    if let Target::Generate(n) | Target::Reconstruct(n) = input.target() {
        if let (Target::Reconstruct(_), LayerSpec::Activation(_)) = (input.target(), &last.spec) {
            return Err(layers::field_error(&last.key, "", RECONSTRUCT_NOTE));
        }
        if let (Target::Reconstruct(_), LayerSpec::Dense(d)) = (input.target(), &last.spec) {
            if d.activation.is_some() {
                return Err(layers::field_error(&last.key, "activation", RECONSTRUCT_NOTE));
            }
        }
        let got = last.output_len();
        if got == n {
            return Ok(());
        }
        let what = if input.task == Task::Gan {
            "a generator makes a sample of the data"
        } else {
            "the model rebuilds its input"
        };
        return Err(layers::field_error(
            &last.key,
            "",
            format!("the model gives {:?} ({got} values) but {what}, {n} values {:?}; end with a dense layer and leave its units out", last.output, input.shape),
        ));
    }
    match &last.spec {
        LayerSpec::Dense(d) if d.activation.is_some() => {
            return Err(layers::field_error(&last.key, "activation", logits_note))
        }
        LayerSpec::Activation(_) => return Err(layers::field_error(&last.key, "", logits_note)),
        _ => {}
    }
    let got = &last.output;
    let steps = input.shape.first().copied().unwrap_or(0);
    let (fits, wanted) = match input.target() {
        Target::Classes(c) => (*got == [c] || (c == 2 && *got == [1]), format!("{c} outputs, one per class")),
        Target::NextToken { vocab } => {
            (*got == [steps, vocab], format!("a prediction over the {vocab} tokens at each of the {steps} steps"))
        }
        // answered above
        Target::Reconstruct(_) | Target::Generate(_) => (true, String::new()),
    };
    if fits {
        return Ok(());
    }
    let hint = match (input.target(), got.len()) {
        (Target::Classes(_), 2) => {
            "; the model ends with a sequence: add a global_mean, or set return_sequences = false on the last recurrent layer"
        }
        (Target::Classes(_), _) => "; end with a dense layer and leave its units out",
        (Target::NextToken { .. }, _) => {
            "; end with a dense layer (units left out) after layers that keep every step (return_sequences = true)"
        }
        (Target::Reconstruct(_) | Target::Generate(_), _) => "",
    };
    Err(layers::field_error(&last.key, "", format!("the model gives {got:?} but the task needs {wanted}{hint}")))
}

/// Why an autoencoder's or VAE's last layer takes no activation.
const RECONSTRUCT_NOTE: &str = "the output layer gives logits (pixels scaled to [0, 1]: the loss applies the sigmoid itself) or linear values (standardised data); leave the activation out";

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
        ModelSpec { kind: Some(ModelKind::Cnn), conv: Some(vec![conv]), ..ModelSpec::from_layers(vec![]) }
    }

    fn key_of(spec: &ModelSpec) -> String {
        match plan(spec, &ModelInput::classify(&[1, 28, 28], 10)) {
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
        let spec = cnn(ConvSpec { stride: HUGE, pool: 1, ..ConvSpec::default() });
        let layers = plan(&spec, &ModelInput::classify(&[1, 28, 28], 10)).unwrap();
        assert_eq!(layers[0].output, vec![32, 1, 1]);
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
        let layers = plan(&ModelSpec::mlp(&[4_000_000_000, 1000]), &ModelInput::classify(&[784], 10)).unwrap();
        assert_eq!(layers[2].param_count(), 4_000_000_001 * 1000);
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
