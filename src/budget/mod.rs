//! The memory a run will hold, estimated from its preset before anything is loaded or built,
//! and the check that refuses a run that cannot fit: a clear error naming the key to lower,
//! instead of the kernel killing the process halfway through the first allocation.
//!
//! Sizes are added up in `f64`: a hostile preset (`hidden = [4000000000, 4000000000]`) gives a
//! huge estimate that is refused, never an overflow. The estimate follows what the code holds:
//!
//! - data: train, validation and test features as `f32` (plus labels), and while loading, the
//!   unsplit copy and the reader's source bytes;
//! - weights, their gradients, and the optimizer state (SGD momentum 1x, Adam/AdamW 2x);
//! - at the training batch size, every layer output kept for the backward, the gradients in
//!   flight, and the buffers each conv block keeps between steps (im2col columns
//!   `batch * oh * ow * k * k * c`, pre-pooling outputs, their gradients, pooling argmax);
//! - the same buffers at the evaluation batch (500), which stay allocated alongside;
//! - the checkpoint's copy of the optimizer state at an epoch's end, and the runtime itself.

mod data;
mod machine;

pub use data::{data_size, DataSize};
pub use machine::{available, format_bytes, parse_size, Available};

use crate::config::{discriminator_error, discriminator_input, OptimizerKind, Preset};
use crate::error::{Error, Result};
use crate::model::{plan, Activation, LayerSpec, ModelInput, ModelSpec};
use crate::task::Task;

/// Memory of the process besides the run: code, the training thread, allocator arenas (the
/// release binary training iris on 2 threads peaks at 17.4 MiB) ...
const RUNTIME_BYTES: f64 = 16.0 * 1024.0 * 1024.0;
/// ... and per compute thread its stack, allocator heap and gemm's packing buffers (digits on
/// 2 threads peaks 12 MiB above iris, whose tiny matrices never leave the training thread).
const THREAD_BYTES: f64 = 8.0 * 1024.0 * 1024.0;
/// What the allocator (mimalloc) still holds of the loader's freed buffers once training runs:
/// measured 35-50 MiB over the training buffers for MNIST 5k and Fashion-MNIST CNNs, whose
/// loaders freed 77 and 337 MiB.
const LOADING_LEFTOVERS: f64 = 64.0 * 1024.0 * 1024.0;
/// The evaluation batch of `train::Session`.
const EVAL_BATCH: f64 = 500.0;
/// A layer whose single sample needs more than this is blamed itself, not the batch size.
const PER_SAMPLE_BLAME: f64 = 256.0 * 1024.0 * 1024.0;
const F32: f64 = 4.0;

/// One term of the estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub what: String,
    pub bytes: f64,
    /// The preset key that sets this term's size.
    pub key: String,
    /// What in that key makes it large, e.g. `fc2 is 4000 x 4000`.
    pub detail: String,
}

/// What a run will hold at its peak, term by term.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub parts: Vec<Part>,
}

impl Estimate {
    pub fn peak(&self) -> f64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }

    /// `estimated peak memory 180 MiB (data 30 MiB, weights 2 MiB, ...)`.
    pub fn summary(&self) -> String {
        format!("estimated peak memory {} ({})", format_bytes(self.peak()), self.breakdown())
    }

    fn breakdown(&self) -> String {
        let mut parts: Vec<&Part> = self.parts.iter().filter(|p| p.bytes >= 1.0).collect();
        parts.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
        parts
            .iter()
            .map(|p| {
                if p.detail.is_empty() {
                    format!("{} {}", p.what, format_bytes(p.bytes))
                } else {
                    format!("{} {}: {}", p.what, format_bytes(p.bytes), p.detail)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The key whose terms add up to the most: what to lower when the run does not fit.
    pub fn blame(&self) -> &str {
        let total = |key: &str| self.parts.iter().filter(|p| p.key == key).map(|p| p.bytes).sum::<f64>();
        self.parts
            .iter()
            .filter(|p| !p.key.is_empty())
            .max_by(|a, b| total(&a.key).total_cmp(&total(&b.key)))
            .map_or("train.max_memory_gb", |p| p.key.as_str())
    }
}

/// Per-sample sizes of the planned layers (in values), and their weights.
#[derive(Default)]
struct Layers {
    params: f64,
    /// The largest weight tensor: (values, key, detail).
    largest: (f64, String, String),
    /// Outputs the backward needs, per sample.
    kept: f64,
    /// The largest gradient in flight during the backward, per sample.
    widest: f64,
    /// Conv buffers kept between steps, per sample: the training ones and the evaluation ones
    /// (each layer keeps both), and those that do not grow with the batch.
    train_buffers: f64,
    eval_buffers: f64,
    fixed_buffers: f64,
    /// The layer with the largest per-sample footprint, with its key.
    heaviest: (f64, String, String),
}

impl Layers {
    /// Adds a second network (a GAN's discriminator) whose activations are held `copies` times
    /// at once (its real batch, the detached fakes, and the fakes judged for the generator).
    fn absorb(&mut self, other: Layers, copies: f64) {
        self.params += other.params;
        if other.largest.0 > self.largest.0 {
            self.largest = other.largest;
        }
        self.kept += copies * other.kept;
        self.widest = self.widest.max(other.widest);
        self.train_buffers += copies * other.train_buffers;
        self.eval_buffers += 2.0 * other.eval_buffers;
        self.fixed_buffers += other.fixed_buffers;
        if copies * other.heaviest.0 > self.heaviest.0 {
            self.heaviest = (copies * other.heaviest.0, other.heaviest.1, other.heaviest.2);
        }
    }
}

/// The generator's layers and, for a GAN, its discriminator's, whose keys are named
/// `discriminator.layers[i]`.
fn networks(preset: &Preset, input: &ModelInput, data_shape: &[usize]) -> Result<Layers> {
    let mut net = layers(&preset.model, input)?;
    if let Some(spec) = preset.discriminator.as_ref().filter(|_| preset.task == Task::Gan) {
        let rename = |key: String| match key.strip_prefix("model.") {
            Some(rest) => format!("discriminator.{rest}"),
            None => key,
        };
        let mut d = layers(spec, &discriminator_input(data_shape)).map_err(|e| discriminator_error(e, "preset"))?;
        d.largest = (d.largest.0, rename(d.largest.1), format!("the discriminator's {}", d.largest.2));
        d.heaviest = (d.heaviest.0, rename(d.heaviest.1), format!("the discriminator's {}", d.heaviest.2));
        net.absorb(d, 3.0);
    }
    Ok(net)
}

fn layers(model: &ModelSpec, input: &ModelInput) -> Result<Layers> {
    let planned = plan(model, input)?;
    let mut out = Layers::default();
    let mut input_values: f64 = input.shape.iter().map(|&d| d as f64).product();
    let mut first = true;
    // the key to blame for the width that feeds the next layer
    let mut feeding: Option<String> = None;
    let with_field = |key: &str, field: &str| {
        if key.starts_with("model.layers[") {
            format!("{key}.{field}")
        } else {
            key.to_string()
        }
    };
    for (i, layer) in planned.iter().enumerate() {
        let values: f64 = layer.output.iter().map(|&d| d as f64).product();
        let params = layer.params.iter().map(|p| p.shape.iter().map(|&d| d as f64).product::<f64>()).sum::<f64>();
        out.params += params;
        let next_gelu = |act: Option<Activation>| {
            act == Some(Activation::Gelu)
                || matches!(planned.get(i + 1).map(|n| &n.spec), Some(LayerSpec::Activation(a)) if a.activation == Activation::Gelu)
        };
        match &layer.spec {
            LayerSpec::Conv2d(c) => {
                let key = &layer.key;
                let key_of = |k: &str| format!("{key}.{k}");
                let (in_channels, out_channels, kernel) = (layer.input[0], c.channels, c.kernel);
                let (k, o) = (kernel as f64, out_channels as f64);
                let detail = format!("{} is {out_channels} x {in_channels} x {kernel} x {kernel}", layer.name);
                if params > out.largest.0 {
                    let blame = if out_channels >= in_channels { "channels" } else { "kernel" };
                    out.largest = (params, key_of(blame), detail);
                }
                let gelu = next_gelu(c.activation);
                // the pooled output, when a max-pool follows
                let pooled = planned[i + 1..]
                    .iter()
                    .take(2)
                    .find(|l| matches!(l.spec, LayerSpec::Maxpool(_)))
                    .map_or(values, |l| l.output.iter().map(|&d| d as f64).product());
                let positions = values / o; // oh * ow
                let cols = positions * k * k * in_channels as f64;
                // im2col columns, pre-pooling outputs and their gradient, input-gradient columns
                // (not for the first layer), argmax, GELU's saved pre-activations
                let train =
                    cols + 2.0 * values + if first { 0.0 } else { cols } + pooled + if gelu { values } else { 0.0 };
                let eval = cols + values + pooled + if gelu { values } else { 0.0 };
                out.train_buffers += train;
                out.eval_buffers += eval;
                out.fixed_buffers += 3.0 * k * k * in_channels as f64 * o; // w_mat, dw_mat, dw
                out.kept += pooled;
                out.widest = out.widest.max(pooled + input_values);
                let in_hw = input_values / in_channels as f64;
                let blame = if (c.padding as f64) * (c.padding as f64) > in_hw { "padding" } else { "channels" };
                let per_sample = train + eval + pooled;
                if per_sample > out.heaviest.0 {
                    let (oh_ow, kk) = (positions, k * k);
                    let detail = format!(
                        "{} has {oh_ow} output positions of {out_channels} channels and {kk}x{in_channels} patch values each",
                        layer.name
                    );
                    out.heaviest = (per_sample, key_of(blame), detail);
                }
                feeding = Some(key_of("channels"));
            }
            LayerSpec::Dense(d) => {
                let (outputs, inputs) = (layer.params[0].shape[0], layer.params[0].shape[1]);
                // blame the larger side: this layer's width, or what feeds it
                let own = d.units.map(|_| with_field(&layer.key, "units"));
                let key =
                    if inputs > outputs { feeding.clone().or(own.clone()) } else { own.clone().or(feeding.clone()) }
                        .unwrap_or_else(|| layer.key.clone());
                if params > out.largest.0 {
                    out.largest = (params, key.clone(), format!("{} is {inputs} x {outputs}", layer.name));
                }
                let per_sample = values * if next_gelu(d.activation) { 2.0 } else { 1.0 };
                out.kept += per_sample;
                out.widest = out.widest.max(values + input_values);
                if per_sample > out.heaviest.0 {
                    out.heaviest = (per_sample, key, format!("{} has {outputs} outputs", layer.name));
                }
                feeding = own;
            }
            LayerSpec::Dropout(_) => out.kept += 2.0 * values, // the mask and the output
            LayerSpec::Maxpool(_) | LayerSpec::Flatten | LayerSpec::Activation(_) => {}
            other => {
                // composed layers keep their intermediate tensors for the backward
                let time = layer.input.first().copied().unwrap_or(1) as f64;
                let kept = match other {
                    LayerSpec::Rnn(r) | LayerSpec::Lstm(r) | LayerSpec::Gru(r) => {
                        let gates = match other {
                            LayerSpec::Lstm(_) => 4.0,
                            LayerSpec::Gru(_) => 3.0,
                            _ => 1.0,
                        };
                        let dirs = if r.bidirectional { 2.0 } else { 1.0 };
                        time * r.hidden as f64 * dirs * r.layers as f64 * (gates + 3.0)
                    }
                    LayerSpec::Attention(a) => 3.0 * a.heads as f64 * time * time + 8.0 * values,
                    // centred values, their squares, the normalised values and the output
                    LayerSpec::Batchnorm(_) => 4.0 * values,
                    // the mask is per channel: the output
                    LayerSpec::Dropout2d(_) | LayerSpec::Upsample(_) => values,
                    LayerSpec::Reshape(_) => 0.0,
                    LayerSpec::ConvTranspose2d(c) => {
                        // the fused CPU op: every input pixel's contributions (kernel x kernel x
                        // channels, made in the forward and again in the backward, one at a
                        // time) and the output
                        let k = (c.kernel * c.kernel) as f64;
                        let pixels = layer.input.iter().skip(1).map(|&d| d as f64).product::<f64>();
                        pixels * k * c.channels as f64 + values
                    }
                    LayerSpec::TransformerBlock(b) => {
                        let d = layer.output.last().copied().unwrap_or(1) as f64;
                        let ff = b.ff.map_or(4.0 * d, |f| f as f64);
                        3.0 * b.heads as f64 * time * time + time * (12.0 * d + 3.0 * ff)
                    }
                    _ => 3.0 * values,
                };
                let key = with_field(&layer.key, "");
                let key = key.trim_end_matches('.').to_string();
                if params > out.largest.0 {
                    out.largest = (params, key.clone(), format!("{} has {params} weights", layer.name));
                }
                out.kept += kept;
                out.widest = out.widest.max(values + input_values);
                if kept > out.heaviest.0 {
                    out.heaviest = (kept, key.clone(), format!("{} keeps {kept} values per sample", layer.describe()));
                }
                if !layer.params.is_empty() {
                    feeding = Some(key);
                }
            }
        }
        if !layer.params.is_empty() {
            first = false;
        }
        input_values = values;
    }
    Ok(out)
}

/// The memory a run of this preset will hold at its peak, or `None` when the data's size cannot
/// be known without loading it. Errors name the key of a model that cannot be planned.
pub fn estimate(preset: &Preset) -> Result<Option<Estimate>> {
    let Some(data) = data_size(preset) else {
        return Ok(None);
    };
    let d = &preset.data;
    let features: f64 = data.input_shape.iter().map(|&x| x as f64).product();
    let text = crate::data::set_info(&d.set).is_some_and(|s| s.kind.is_text());
    let vocab = text.then(|| d.vocab_size.saturating_add(2));
    let input = ModelInput { shape: data.input_shape.clone(), classes: data.classes, vocab, task: preset.task };
    let net = networks(preset, &input, &data.input_shape)?;
    // features and the label; a streamed set keeps only the label and its row in the disk cache
    let sample_bytes = if data.streamed { F32 + 8.0 } else { (features + 1.0) * F32 };
    let n = data.samples;
    let validation = (n * d.validation_fraction).round().clamp(1.0, (n - 1.0).max(1.0));
    let mut train = (n - validation).max(0.0);
    if d.limit > 0 {
        train = train.min(d.limit as f64);
    }
    let held = (train + validation + data.test) * sample_bytes;

    let t = &preset.train;
    let batch = (t.batch_size as f64).min(train.max(1.0));
    let eval_batch = EVAL_BATCH.min(validation.max(data.test));
    let weights = net.params * F32;
    let state_per_weight = match t.optimizer {
        OptimizerKind::Sgd => 1.0,
        OptimizerKind::Adam | OptimizerKind::AdamW => 2.0,
    };
    let optimizer = state_per_weight * weights;
    let buffers = (net.train_buffers * batch + net.eval_buffers * eval_batch + net.fixed_buffers) * F32;
    // an NHWC copy of a many-channel input for the first conv
    let input_copies = if data.input_shape.len() == 3 && data.input_shape[0] > 1 { 2.0 } else { 1.0 };
    let step = (net.kept + 2.0 * net.widest + input_copies * features) * batch * F32;
    let evaluation = (net.kept + input_copies * features) * eval_batch * F32;
    let activations = step.max(evaluation);
    // at an epoch's end the checkpoint copies the optimizer state and, one at a time, the weights
    let checkpoint = (optimizer + net.largest.0 * F32 - activations).max(0.0);

    let per_sample = (net.heaviest.0 + net.kept + 2.0 * net.widest) * F32;
    let (act_key, act_detail) = if per_sample > PER_SAMPLE_BLAME {
        (net.heaviest.1.clone(), net.heaviest.2.clone())
    } else {
        ("train.batch_size".to_string(), format!("batch {batch}"))
    };
    let part =
        |what: &str, bytes: f64, key: &str, detail: String| Part { what: what.into(), bytes, key: key.into(), detail };
    let data_detail = if data.test > 0.0 {
        format!("{n} + {} test samples of {features} values", data.test)
    } else {
        format!("{n} samples of {features} values")
    };
    let threads = crate::train::resolve_threads(preset, crate::train::cores()) as f64;
    let (_, wkey, wdetail) = &net.largest;
    let mut parts = vec![
        part("runtime", RUNTIME_BYTES + threads * THREAD_BYTES, "", format!("{threads} threads")),
        part("data", held, data.key, data_detail),
    ];
    // The allocator returns freed memory to the system lazily, so part of what loading freed is
    // still resident when training allocates its own.
    let leftovers = data.temporaries.min(LOADING_LEFTOVERS);
    let training = 2.0 * weights + optimizer + buffers + activations + checkpoint + leftovers;
    if data.temporaries > training {
        parts.push(part("loading", data.temporaries, data.key, "the reader's buffers, freed before training".into()));
    } else {
        parts.extend([
            part("weights", weights, wkey, wdetail.clone()),
            part("gradients", weights, wkey, String::new()),
            part(&format!("{} state", t.optimizer.title()), optimizer, wkey, String::new()),
            part("activations and conv buffers", buffers + activations, &act_key, act_detail),
            part("checkpoint copies", checkpoint, wkey, String::new()),
            part("loading leftovers", leftovers, data.key, "freed, not yet returned to the system".into()),
        ]);
    }
    Ok(Some(Estimate { parts }))
}

/// The limit a run must fit: `train.max_memory_gb` (which `--max-memory` sets) when given, else
/// what the machine has available.
pub fn limit(preset: &Preset) -> (f64, String) {
    match preset.train.max_memory_gb {
        Some(gb) => (
            gb * 1024f64.powi(3),
            format!("the limit is {} (train.max_memory_gb / --max-memory)", format_bytes(gb * 1024f64.powi(3))),
        ),
        None => {
            let a = available();
            (a.bytes as f64, format!("the machine has {} available ({})", format_bytes(a.bytes as f64), a.source))
        }
    }
}

/// Estimates the run and refuses it when it will not fit: the error names the key of the largest
/// term (`file: \`model.hidden[1]\`: this run needs about ...`). `Ok(None)` when the data's size
/// is not known before loading (the loader then reports what is wrong with it).
pub fn check(preset: &Preset, origin: &str) -> Result<Option<Estimate>> {
    let estimate = estimate(preset).map_err(|e| match e {
        Error::Config { key, message, .. } => Error::config(origin, key, message),
        other => other,
    })?;
    let Some(estimate) = estimate else {
        return Ok(None);
    };
    let (limit, limit_text) = limit(preset);
    if estimate.peak() > limit {
        let blame = estimate.blame();
        return Err(Error::config(
            origin,
            blame,
            format!(
                "this run needs about {} ({}) but {limit_text}; lower `{blame}`, or if you know it fits, raise the limit with --max-memory or train.max_memory_gb",
                format_bytes(estimate.peak()),
                estimate.breakdown(),
            ),
        ));
    }
    Ok(Some(estimate))
}

#[cfg(test)]
mod tests;
