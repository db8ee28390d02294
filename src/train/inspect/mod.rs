//! Looking inside a model: the requests the GUI sends to the training thread (samples, class
//! probabilities, saliency, filters, activation maps), their answers, and the per-epoch
//! predictions. Everything here runs on the training thread between batches, in `Mode::Eval`,
//! drawing no RNG and updating no batch-norm statistics, so asking never changes a run's numbers.

pub mod maps;
pub mod saliency;
#[cfg(test)]
mod saliency_tests;
pub mod samples;

use crate::data::SetKind;
use crate::train::Session;

/// The costly views the GUI has open; nothing extra is computed for the ones that are off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Views {
    /// Weight and gradient histograms, update ratios, dead-ReLU shares (`Event::LayerStats`).
    pub layer_stats: bool,
    /// The decision boundary of a model of 2-D points (`Event::Boundary`).
    pub boundary: bool,
}

impl Views {
    pub const ALL: Views = Views { layer_stats: true, boundary: true };
    pub const NONE: Views = Views { layer_stats: false, boundary: false };
}

/// One question about the model; answered with `Event::Inspected` carrying the same `id`.
#[derive(Debug, Clone)]
pub struct InspectRequest {
    pub id: u64,
    pub what: InspectWhat,
}

#[derive(Debug, Clone)]
pub enum InspectWhat {
    /// Validation samples by index, as a person sees them (pictures, text, points, features).
    Samples(Vec<usize>),
    /// The model's class probabilities for one input.
    Classify(InputRef),
    /// Which input values the chosen class's log-probability is most sensitive to.
    Saliency { input: InputRef, class: usize, method: SaliencyMethod },
    /// The maps of every conv layer for one input.
    Activations(InputRef),
    /// The first conv layer's filters.
    Filters,
}

/// An input to the model.
#[derive(Debug, Clone, PartialEq)]
pub enum InputRef {
    /// A sample of the validation split, by index.
    Validation(usize),
    /// An input in raw units (0..255 pixels, as the loaders store them), `input_shape` values;
    /// the worker normalises it exactly as the training data was.
    Raw(Vec<f32>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaliencyMethod {
    /// The gradient of log p(class | x) with respect to the normalised input.
    Gradient,
    /// Integrated gradients from a black image, `steps` midpoints in one batch.
    Integrated { steps: usize },
}

/// The default number of integrated-gradient steps (one batch of 32).
pub const IG_STEPS: usize = 32;

#[derive(Debug, Clone)]
pub enum InspectReply {
    Samples(Vec<SampleView>),
    Probabilities(Vec<f32>),
    Saliency(SaliencyMap),
    Activations(Vec<LayerMaps>),
    Filters(Filters),
    /// The question does not apply to this model or input; the text says why.
    Unavailable(String),
}

/// A validation sample as a person sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleView {
    pub index: usize,
    pub truth: u32,
    /// Images: the raw pixels (normalisation undone).
    pub picture: Option<Picture>,
    /// Text sets: the decoded tokens.
    pub text: Option<String>,
    /// 2-D points in raw units.
    pub point: Option<[f32; 2]>,
    /// Tables: the raw feature values.
    pub features: Vec<f32>,
}

/// 8-bit pixels, row-major, channels interleaved (1 = grey, 3 = RGB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub w: usize,
    pub h: usize,
    pub channels: usize,
    pub bytes: Vec<u8>,
}

/// Attributions per input position.
#[derive(Debug, Clone, PartialEq)]
pub struct SaliencyMap {
    /// `h * w` values, row-major: max over channels of |gradient| (unsigned), or integrated
    /// gradients summed over channels (signed). A table or feature vector has `h = 1`.
    pub map: Vec<f32>,
    pub h: usize,
    pub w: usize,
    pub signed: bool,
    /// Integrated gradients: the sum of the attributions and log p(x) − log p(baseline), which it
    /// should approach (the completeness check). Zero for the plain gradient.
    pub sum: f32,
    pub delta_log_p: f32,
}

/// One conv layer's maps for one input: at most `MAX_MAPS` channels, each `h * w` values.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerMaps {
    pub name: String,
    pub h: usize,
    pub w: usize,
    pub channels: usize,
    /// `channels * h * w`, channel-major.
    pub values: Vec<f32>,
}

/// Channels of a layer's activations sent per request.
pub const MAX_MAPS: usize = 16;

/// The first conv layer's weights, `[out, in_channels, k, k]` as PyTorch holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct Filters {
    pub layer: String,
    pub out: usize,
    pub in_channels: usize,
    pub k: usize,
    pub values: Vec<f32>,
}

/// A classifier's predictions on the validation split at an epoch's end: each sample's truth and
/// top-3 classes with their probabilities, in split order. `top[i][0]` is the prediction the
/// epoch's confusion matrix counted; with fewer than 3 classes the missing entries are
/// `(u32::MAX, 0.0)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub epoch: usize,
    pub truth: Vec<u32>,
    pub top: Vec<[(u32, f32); 3]>,
}

/// What the GUI needs to know at a run's start to offer the inside views.
#[derive(Debug, Clone, PartialEq)]
pub struct InsideInfo {
    /// The model's input per sample: `[c, h, w]` or `[features]`.
    pub input_shape: Vec<usize>,
    pub kind: SetKind,
    /// Names of the conv layers (`conv1`, ...), in order.
    pub conv_layers: Vec<String>,
    /// Names of the layers followed by a ReLU (their dead share is reported); a ReLU layer of its
    /// own counts for the last layer with weights before it, as in the layer statistics.
    pub relu_layers: Vec<String>,
    /// Units of each hidden dense layer (the boundary's neuron maps need them all ≤ 16).
    pub hidden_units: Vec<usize>,
}

/// The decision boundary of a model of 2-D points: class probabilities on a grid over the data,
/// and optionally each hidden unit's response.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundaryMap {
    /// `[x_min, x_max, y_min, y_max]` in raw units.
    pub extent: [f32; 4],
    /// Grid cells per side.
    pub res: usize,
    pub classes: usize,
    /// `res * res * classes` probabilities scaled to 0..=255, rows from `y_min` up.
    pub probs: Vec<u8>,
    /// Up to 1,000 validation points in raw units, and their classes.
    pub points: Vec<[f32; 2]>,
    pub labels: Vec<u32>,
    pub neurons: Vec<NeuronMap>,
}

/// One hidden unit's response over the boundary's extent.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronMap {
    pub layer: String,
    pub unit: usize,
    /// `NEURON_RES²` values mapped from `lo..=hi` to 0..=255.
    pub values: Vec<u8>,
    pub lo: f32,
    pub hi: f32,
}

pub const BOUNDARY_RES: usize = 64;
pub const NEURON_RES: usize = 32;

impl InsideInfo {
    /// Read from the network as it runs (fused blocks named by their conv or dense layer).
    pub fn of(net: &crate::model::Network, input_shape: &[usize], kind: SetKind) -> Self {
        let names = net.run_names();
        let mut info = InsideInfo {
            input_shape: input_shape.to_vec(),
            kind,
            conv_layers: Vec::new(),
            relu_layers: Vec::new(),
            hidden_units: Vec::new(),
        };
        let mut dense_units = Vec::new();
        let mut owner: Option<String> = None;
        for (i, name) in names.iter().enumerate() {
            match net.layer_kind(i) {
                "conv block" => info.conv_layers.push(name.clone()),
                "dense" => {
                    let weight = format!("{name}.weight");
                    if let Some((_, w)) = net.params().iter().find(|(n, _)| *n == weight) {
                        dense_units.push(w.dims().first().copied().unwrap_or(0));
                    }
                }
                _ => {}
            }
            let weighted = net.params().iter().any(|(p, _)| p.split('.').next() == Some(name.as_str()));
            if weighted {
                owner = Some(name.clone());
            }
            // a ReLU layer of its own counts for the last layer with weights, as its stats do
            if net.layer_activation(i) == Some(crate::model::Activation::Relu) {
                if let Some(owner) = owner.clone().filter(|o| !info.relu_layers.contains(o)) {
                    info.relu_layers.push(owner);
                }
            }
        }
        // the last dense layer is the output, not hidden
        dense_units.pop();
        info.hidden_units = dense_units;
        info
    }
}

/// Answers a question from the session's current weights, in evaluation mode.
pub fn answer(session: &Session, what: &InspectWhat) -> InspectReply {
    let (net, data, task, device) = (&session.net, &*session.data, session.preset.task, &session.device);
    match what {
        InspectWhat::Samples(indices) => samples::samples(data, indices),
        InspectWhat::Classify(input) => samples::classify(net, task, data, input, device),
        InspectWhat::Saliency { input, class, method } => {
            saliency::saliency(net, task, data, input, *class, *method, device)
        }
        InspectWhat::Activations(input) => maps::activations(net, data, input, device),
        InspectWhat::Filters => maps::filters(net),
    }
}

/// The three most probable classes of a row of probabilities, most probable first; `top1` (the
/// prediction the confusion matrix counted) leads, so the two always agree. Missing entries (fewer
/// than three classes) are `(u32::MAX, 0.0)`.
pub fn top3(probs: &[f32], top1: u32) -> [(u32, f32); 3] {
    let mut out = [(u32::MAX, 0.0f32); 3];
    out[0] = (top1, probs.get(top1 as usize).copied().unwrap_or(0.0));
    let mut rest: Vec<(u32, f32)> =
        probs.iter().enumerate().filter(|(c, _)| *c as u32 != top1).map(|(c, p)| (c as u32, *p)).collect();
    // stable on ties: the lower class first, as argmax picks
    rest.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (slot, r) in out[1..].iter_mut().zip(rest) {
        *slot = r;
    }
    out
}
