//! Transfer learning: a fresh run whose weights start from another model's (an exported model,
//! a run's checkpoint, or a model shipped with Gradlab) instead of random ones. The output layer
//! (the head) starts fresh unless `keep_head` is set, so a new class count just works; the
//! layers named in `freeze` keep the loaded weights (the optimizer skips them).
//!
//! Matching is by parameter name and shape (`conv1.weight` ...), in the network's own layout:
//! an export's PyTorch layout is converted back by `export::load_model`. Every parameter the new
//! model copies must be in the source with the same shape, or the run is refused naming it, so a
//! mismatch never silently trains from random weights. A dense layer reading a flattened image
//! holds its columns in the order its model flattens (`model::channels`); where the source's and
//! the new model's orders differ the columns are permuted, and any other such layer is refused.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{ModelInput, ModelSpec};

/// `[transfer]` in a preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferSpec {
    /// An exported model's folder (config.json + model.safetensors), a run folder, or
    /// `pretrained:<name>` for a model shipped with Gradlab ([`PRETRAINED`]).
    pub from: String,
    /// For a run folder: `best` (default), `last` or an epoch number.
    #[serde(default = "best", skip_serializing_if = "is_best")]
    pub checkpoint: String,
    /// Layers whose weights stay as loaded, by name (`conv1`, `fc1`, as the layer list shows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<String>,
    /// Keep the source's output layer (same classes) instead of a fresh head.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_head: bool,
}

fn best() -> String {
    "best".into()
}

fn is_best(s: &String) -> bool {
    s == "best"
}

/// Models shipped with Gradlab: name, card, weights. `assets/models/<name>/` says how each was
/// trained (its preset.toml); `gradlab export` wrote the files.
pub const PRETRAINED: &[(&str, &str, &[u8])] = &[(
    "mnist-cnn",
    include_str!("../../assets/models/mnist_cnn/config.json"),
    include_bytes!("../../assets/models/mnist_cnn/model.safetensors"),
)];

const PRETRAINED_PREFIX: &str = "pretrained:";

/// The layers of `spec` that have weights, by name, in order; the last is the head.
pub fn weighted_layers(spec: &ModelSpec, input: &ModelInput) -> Result<Vec<String>> {
    Ok(crate::model::plan(spec, input)?.into_iter().filter(|p| !p.params.is_empty()).map(|p| p.name).collect())
}

/// Checks `[transfer]` against the model: frozen layers exist, something is left to train.
/// Reads no file (the GUI calls it as the preset changes); the source is read at Start.
pub fn validate(t: &TransferSpec, spec: &ModelSpec, input: &ModelInput, origin: &str) -> Result<()> {
    let err = |key: &str, msg: String| Err(Error::config(origin, key, msg));
    if t.from.trim().is_empty() {
        return err(
            "transfer.from",
            "name the model to start from: an export's folder, a run folder or pretrained:<name>".into(),
        );
    }
    if let Some(name) = t.from.strip_prefix(PRETRAINED_PREFIX) {
        if !PRETRAINED.iter().any(|(n, _, _)| *n == name) {
            return err(
                "transfer.from",
                format!(
                    "no pretrained model `{name}`; Gradlab ships {}",
                    PRETRAINED.iter().map(|(n, _, _)| format!("pretrained:{n}")).collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
    if t.checkpoint.parse::<crate::export::Which>().is_err() {
        return err("transfer.checkpoint", format!("`{}` is not `best`, `last` or an epoch number", t.checkpoint));
    }
    let layers = weighted_layers(spec, input)?;
    for name in &t.freeze {
        if !layers.contains(name) {
            return err(
                "transfer.freeze",
                format!("the model has no layer `{name}` with weights; it has {}", layers.join(", ")),
            );
        }
    }
    if let Some(head) = layers.last() {
        if !t.keep_head && t.freeze.contains(head) {
            return err(
                "transfer.freeze",
                format!("`{head}` is the new head: it starts from random weights and must train (or set keep_head)"),
            );
        }
        if layers.iter().all(|l| t.freeze.contains(l)) {
            return err("transfer.freeze", "every layer is frozen: nothing would train".into());
        }
    }
    Ok(())
}

/// Where the weights come from, as the run's summary says it.
pub fn describe(t: &TransferSpec) -> String {
    let mut s = format!("weights from {}", t.from);
    if !t.freeze.is_empty() {
        s.push_str(&format!(", frozen: {}", t.freeze.join(", ")));
    }
    s.push_str(if t.keep_head { ", head kept" } else { ", new head" });
    s
}

/// A source's tensors in its network's own layout, what to call it in messages, and in which
/// order each of its layers reads a flattened image (see [`flatten_orders`]).
struct Source {
    tensors: HashMap<String, Tensor>,
    name: String,
    orders: HashMap<String, FlattenOrder>,
}

/// A layer's flattened-image order: `Some([c, h, w])` when it reads (h, w, c) order.
type FlattenOrder = Option<[usize; 3]>;

/// Each weighted layer's flattened-image order and whether it is a dense layer, by name: a
/// dense weight's columns are held in the order its input comes in (`model::channels`).
fn flatten_orders(spec: &ModelSpec, input: &ModelInput) -> Result<HashMap<String, (FlattenOrder, bool)>> {
    let planned = crate::model::plan(spec, input)?;
    let orders = crate::model::channels::flattened_channels_last(&planned);
    Ok(planned
        .iter()
        .zip(orders)
        .filter(|(p, _)| !p.params.is_empty())
        .map(|(p, o)| (p.name.clone(), (o, matches!(p.spec, crate::model::LayerSpec::Dense(_)))))
        .collect())
}

fn source_tensors(t: &TransferSpec) -> Result<Source> {
    let from_export = |model: crate::export::LoadedModel, name: String| -> Result<Source> {
        let orders = flatten_orders(&model.card.model, &model.card.model_input())?;
        Ok(Source {
            tensors: params_of(&model.network)?,
            name,
            orders: orders.into_iter().map(|(k, (o, _))| (k, o)).collect(),
        })
    };
    if let Some(name) = t.from.strip_prefix(PRETRAINED_PREFIX) {
        let (_, card, weights) = PRETRAINED
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| Error::config("preset", "transfer.from", format!("no pretrained model `{name}`")))?;
        let place = PathBuf::from(&t.from);
        let model = crate::export::load_model_from(&place, card, weights)?;
        return from_export(model, t.from.clone());
    }
    let dir = PathBuf::from(&t.from);
    if dir.join("config.json").is_file() {
        let model = crate::export::load_model(&dir)?;
        return from_export(model, dir.display().to_string());
    }
    if dir.join("checkpoints").is_dir() {
        let mut which = t.checkpoint.parse().map_err(|e: String| Error::config("preset", "transfer.checkpoint", e))?;
        // the run's model says in which order its layers read a flattened image
        let preset = crate::config::Preset::load(&dir.join("preset.toml"))?;
        let info = crate::record::DataInfo::read(&dir)?;
        let orders = flatten_orders(&preset.model, &info.model_input(preset.task)).map_err(|e| {
            Error::Other(format!("the source run {}: its preset's model does not fit its data: {e}", dir.display()))
        })?;
        // a run without an accuracy (an autoencoder, a VAE, a GAN) has no best epoch: its last
        if which == crate::export::Which::Best && !preset.task.has_accuracy() {
            which = crate::export::Which::Last;
        }
        let path = crate::export::find_checkpoint(&dir, which)?;
        let ckpt = crate::record::read_checkpoint(&path)?;
        return Ok(Source {
            tensors: ckpt.tensors,
            name: path.display().to_string(),
            orders: orders.into_iter().map(|(k, (o, _))| (k, o)).collect(),
        });
    }
    Err(Error::format(
        &dir,
        if dir.exists() {
            "transfer.from is neither an exported model (no config.json) nor a run folder (no checkpoints/)"
        } else {
            "transfer.from does not exist"
        },
    ))
}

/// `weight` (a dense layer's `[rows, c * h * w]`) with its columns from the order `from` gives
/// to the order `to` wants, through PyTorch's (c, h, w) order.
fn reorder_columns(weight: &Tensor, from: FlattenOrder, to: FlattenOrder) -> Result<Tensor> {
    let &[rows, cols] = weight.dims() else { return Ok(weight.clone()) };
    let mut w = weight.clone();
    if let Some([c, h, wd]) = from {
        // columns (y, x, ch) -> (ch, y, x)
        w = w.reshape((rows, h, wd, c))?.permute((0, 3, 1, 2))?.contiguous()?.reshape((rows, cols))?;
    }
    if let Some([c, h, wd]) = to {
        w = w.reshape((rows, c, h, wd))?.permute((0, 2, 3, 1))?.contiguous()?.reshape((rows, cols))?;
    }
    Ok(w)
}

/// Whether `order` flattens an image of `cols` values.
fn fits(order: FlattenOrder, cols: usize) -> bool {
    order.is_none_or(|[c, h, w]| c * h * w == cols)
}

fn params_of(net: &crate::model::Network) -> Result<HashMap<String, Tensor>> {
    Ok(net.params().iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect())
}

/// What [`apply`] did, for the run's log and summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub source: String,
    /// Parameters copied, and those left at their fresh initialisation (the head's).
    pub copied: Vec<String>,
    pub fresh: Vec<String>,
}

/// Copies the source's weights into a freshly built network. Call once, on a fresh run (a
/// resume or fork takes its checkpoint's weights; `Session::new` marks the frozen parameters in
/// every case).
pub fn apply(t: &TransferSpec, session: &mut super::Session) -> Result<Applied> {
    let Source { tensors, name: source, orders: source_orders } = source_tensors(t)?;
    let input = session.data.model_input(session.preset.task);
    let layers = weighted_layers(&session.preset.model, &input)?;
    let orders = flatten_orders(&session.preset.model, &input)?;
    let head = if t.keep_head { None } else { layers.last().cloned() };
    let layer_of = |param: &str| param.split('.').next().unwrap_or(param).to_string();
    let (mut copied, mut fresh) = (Vec::new(), Vec::new());
    let mut values = HashMap::new();
    for (name, var) in session.net.params() {
        let layer = layer_of(name);
        if head.as_deref() == Some(layer.as_str()) {
            fresh.push(name.clone());
            continue;
        }
        let Some(v) = tensors.get(name) else {
            let mut has: Vec<String> =
                tensors.keys().filter(|k| !k.starts_with("optimizer.")).map(|k| layer_of(k)).collect();
            has.sort();
            has.dedup();
            return Err(Error::config(
                "preset",
                "transfer.from",
                format!(
                    "`{name}` is not in {source} (its layers: {}); the layers before the head must match the source's",
                    has.join(", ")
                ),
            ));
        };
        if v.dims() != var.dims() {
            return Err(Error::config(
                "preset",
                "transfer.from",
                format!(
                    "`{name}` is {:?} here but {:?} in {source}; the layers before the head must match the source's (same input size too)",
                    var.dims(),
                    v.dims()
                ),
            ));
        }
        // a layer reading a flattened image holds its weights in the order the values come in,
        // which the layers before it decide (a flatten before a batch norm is channel-major, one
        // before a dense layer channels-last): a dense weight's columns are put in this model's
        // order, anything else that differs is refused rather than copied scrambled
        let (from, to) = (source_orders.get(&layer).copied().flatten(), orders.get(&layer).and_then(|o| o.0));
        let value = if from == to {
            v.clone()
        } else {
            let cols = v.dims().get(1).copied().unwrap_or(0);
            let dense = orders.get(&layer).is_some_and(|o| o.1);
            if name.ends_with(".weight") && dense && v.rank() == 2 && fits(from, cols) && fits(to, cols) {
                reorder_columns(v, from, to)?
            } else if name.ends_with(".bias") && dense {
                v.clone()
            } else {
                let order = |o: FlattenOrder| match o {
                    Some([c, h, w]) => format!("a {c}x{h}x{w} image flattened channels-last"),
                    None => "its values in PyTorch's (channel, row, column) order".to_string(),
                };
                return Err(Error::config(
                    "preset",
                    "transfer.from",
                    format!(
                        "`{layer}` reads {} here but {} in {source}, so `{name}` cannot be copied in order; give `{layer}` the same layers before it as the source has",
                        order(to),
                        order(from)
                    ),
                ));
            }
        };
        values.insert(name.clone(), value);
        copied.push(name.clone());
    }
    for (name, var) in session.net.params() {
        if let Some(v) = values.get(name) {
            var.set(&v.to_dtype(candle_core::DType::F32)?.to_device(var.device())?)?;
        }
    }
    Ok(Applied { source, copied, fresh })
}

/// Which of `params` (by position) belong to frozen layers.
pub fn frozen_params(t: Option<&TransferSpec>, params: &[(String, candle_core::Var)]) -> Vec<bool> {
    let Some(t) = t else { return Vec::new() };
    params.iter().map(|(name, _)| t.freeze.iter().any(|f| name.split('.').next() == Some(f.as_str()))).collect()
}
