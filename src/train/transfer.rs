//! Transfer learning: a fresh run whose weights start from another model's (an exported model,
//! a run's checkpoint, or a model shipped with Gradlab) instead of random ones. The output layer
//! (the head) starts fresh unless `keep_head` is set, so a new class count just works; the
//! layers named in `freeze` keep the loaded weights (the optimizer skips them).
//!
//! Matching is by parameter name and shape (`conv1.weight` ...), in the network's own layout:
//! an export's PyTorch layout is converted back by `export::load_model`. Every parameter the new
//! model copies must be in the source with the same shape, or the run is refused naming it, so a
//! mismatch never silently trains from random weights.

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

/// The source's tensors in the network's own layout, and what to call it in messages.
fn source_tensors(t: &TransferSpec) -> Result<(HashMap<String, Tensor>, String)> {
    if let Some(name) = t.from.strip_prefix(PRETRAINED_PREFIX) {
        let (_, card, weights) = PRETRAINED
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| Error::config("preset", "transfer.from", format!("no pretrained model `{name}`")))?;
        let place = PathBuf::from(&t.from);
        let model = crate::export::load_model_from(&place, card, weights)?;
        return Ok((params_of(&model.network)?, t.from.clone()));
    }
    let dir = PathBuf::from(&t.from);
    if dir.join("config.json").is_file() {
        let model = crate::export::load_model(&dir)?;
        return Ok((params_of(&model.network)?, dir.display().to_string()));
    }
    if dir.join("checkpoints").is_dir() {
        let mut which = t.checkpoint.parse().map_err(|e: String| Error::config("preset", "transfer.checkpoint", e))?;
        // a run without an accuracy (an autoencoder, a VAE, a GAN) has no best epoch: its last
        let scored = crate::config::Preset::load(&dir.join("preset.toml")).map_or(true, |p| p.task.has_accuracy());
        if which == crate::export::Which::Best && !scored {
            which = crate::export::Which::Last;
        }
        let path = crate::export::find_checkpoint(&dir, which)?;
        let ckpt = crate::record::read_checkpoint(&path)?;
        return Ok((ckpt.tensors, path.display().to_string()));
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
    let (tensors, source) = source_tensors(t)?;
    let input = session.data.model_input(session.preset.task);
    let layers = weighted_layers(&session.preset.model, &input)?;
    let head = if t.keep_head { None } else { layers.last().cloned() };
    let layer_of = |param: &str| param.split('.').next().unwrap_or(param).to_string();
    let (mut copied, mut fresh) = (Vec::new(), Vec::new());
    let mut values = HashMap::new();
    for (name, var) in session.net.params() {
        if head.as_deref() == Some(layer_of(name).as_str()) {
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
        values.insert(name.clone(), v.clone());
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
