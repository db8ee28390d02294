//! Trained-model export: weights as safetensors in the layout PyTorch would hold, the
//! architecture in PyTorch's terms and everything needed to feed it (input shape, class names,
//! normalisation, the data split) as JSON, optionally the same model as ONNX, and the way back in
//! (`load_model`, `evaluate_model`).
//!
//! ```text
//! model/
//!   model.safetensors   conv1.weight, conv1.bias, fc1.weight, ... (reference layout)
//!   model.onnx          the same model as an ONNX graph (`--format onnx` or `all`)
//!   config.json         ModelCard: layout, input, layers, classes, normalisation, split, origin
//!   labels.json         class names, in output order
//!   preset.toml         the experiment that trained it
//! ```

pub mod layout;
pub mod onnx;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::Preset;
use crate::data::{self, DataSpec, Normalization, SplitInfo};
use crate::error::{Error, Result};
use crate::model::{ModelInput, ModelSpec, Network};
use crate::record::{list_checkpoints, read_checkpoint, write_atomic, DataInfo};
use crate::task::Task;
use crate::train::{evaluate, Evaluation};
pub use layout::{CardLayer, RefLayer};

pub const FORMAT: &str = "gradlab-model";
/// 2: weights in the reference (PyTorch) layout, `layers` in reference terms, `input`, `split`.
/// 1: the dense weight after a conv stack in Gradlab's channels-last order; still read.
pub const FORMAT_VERSION: u32 = 2;

/// The model's input as a graph sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputInfo {
    /// The ONNX input's name.
    pub name: String,
    /// `NCHW` for images, `NC` for feature vectors; the batch dimension `N` is free.
    pub layout: String,
    /// Without the batch dimension.
    pub shape: Vec<usize>,
    pub dtype: String,
    /// The ONNX output's name (`[N, classes]`, unnormalised scores).
    pub output: String,
}

/// config.json of an exported model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub format: String,
    pub format_version: u32,
    pub title: String,
    /// `pytorch` from version 2: weights as `nn.Conv2d` / `nn.Linear` hold them, applied in
    /// NCHW with `nn.Flatten` channel-major. Absent in version 1 (Gradlab's own layout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputInfo>,
    pub model: ModelSpec,
    /// What the model predicts; absent before language models (classify).
    #[serde(default, skip_serializing_if = "is_classify")]
    pub task: Task,
    /// Text models: the tokenizer and vocabulary (id -> token, 0 `<pad>`, 1 `<unk>`) that turn
    /// text into the input ids (and a language model's outputs back into text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<crate::data::TextInfo>,
    /// `[channels, height, width]` or `[features]`, without the batch dimension.
    pub input_shape: Vec<usize>,
    pub class_names: Vec<String>,
    /// Apply to raw inputs: `(x * scale - mean) / std`.
    pub normalization: Normalization,
    /// The data it was trained on, and the seed that split it (so `eval` can hold out the same
    /// validation samples).
    pub data: DataSpec,
    pub seed: u64,
    /// The split the run made (counts and hashes), checked by `eval`; absent before version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitInfo>,
    pub epoch: usize,
    pub validation_accuracy: Option<f64>,
    /// `run id/epoch-N`.
    pub source: String,
    /// Tensor names and shapes in model.safetensors.
    pub tensors: Vec<(String, Vec<usize>)>,
    /// Layers in order: PyTorch modules with their tensors from version 2, strings before.
    pub layers: Vec<CardLayer>,
    /// Files of the export besides config.json.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// What `export` writes besides the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// model.safetensors (what `eval` reads).
    #[default]
    Safetensors,
    /// model.onnx only.
    Onnx,
    /// Both.
    All,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 3] = [ExportFormat::Safetensors, ExportFormat::Onnx, ExportFormat::All];

    pub fn title(self) -> &'static str {
        match self {
            ExportFormat::Safetensors => "safetensors",
            ExportFormat::Onnx => "ONNX",
            ExportFormat::All => "safetensors + ONNX",
        }
    }

    fn safetensors(self) -> bool {
        self != ExportFormat::Onnx
    }

    fn onnx(self) -> bool {
        self != ExportFormat::Safetensors
    }
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "safetensors" => Ok(ExportFormat::Safetensors),
            "onnx" => Ok(ExportFormat::Onnx),
            "all" => Ok(ExportFormat::All),
            _ => Err(format!("`{s}` is not `safetensors`, `onnx` or `all`")),
        }
    }
}

/// Which checkpoint of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Last,
    Best,
    Epoch(usize),
}

impl FromStr for Which {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "last" => Ok(Which::Last),
            "best" => Ok(Which::Best),
            n => n.parse().map(Which::Epoch).map_err(|_| format!("`{s}` is not `last`, `best` or an epoch number")),
        }
    }
}

/// The checkpoint file of a run for `which`.
pub fn find_checkpoint(run_dir: &Path, which: Which) -> Result<PathBuf> {
    let all = list_checkpoints(run_dir);
    let none = || Error::format(run_dir, "this run has no checkpoint yet (one is written after each epoch)");
    match which {
        Which::Last => all.last().map(|(_, p)| p.clone()).ok_or_else(none),
        Which::Epoch(n) => all.iter().find(|(e, _)| *e == n).map(|(_, p)| p.clone()).ok_or_else(|| {
            Error::format(
                run_dir,
                format!(
                    "no checkpoint for epoch {n}; it has {}",
                    all.iter().map(|(e, _)| e.to_string()).collect::<Vec<_>>().join(", ")
                ),
            )
        }),
        Which::Best => {
            let mut best: Option<(f64, PathBuf)> = None;
            for (_, path) in &all {
                let acc = read_checkpoint_state_accuracy(path);
                if best.as_ref().is_none_or(|(b, _)| acc > *b) {
                    best = Some((acc, path.clone()));
                }
            }
            best.map(|(_, p)| p).ok_or_else(none)
        }
    }
}

fn read_checkpoint_state_accuracy(path: &Path) -> f64 {
    std::fs::read_to_string(path.with_extension("json"))
        .ok()
        .and_then(|t| serde_json::from_str::<crate::record::CheckpointState>(&t).ok())
        .map_or(f64::MIN, |s| s.validation_accuracy)
}

/// Exports a run's checkpoint into `out_dir` as safetensors. Returns the card written.
pub fn export_run(run_dir: &Path, which: Which, out_dir: &Path) -> Result<ModelCard> {
    export_run_as(run_dir, which, out_dir, ExportFormat::Safetensors)
}

/// Exports a run's checkpoint into `out_dir` in `format`. Returns the card written.
pub fn export_run_as(run_dir: &Path, which: Which, out_dir: &Path, format: ExportFormat) -> Result<ModelCard> {
    let preset = Preset::load(&run_dir.join("preset.toml"))?;
    if preset.task.is_generative() {
        // a card describes a model that reads the data and predicts its classes; a decoder's or
        // generator's card (noise in, image out) is not written yet
        return Err(Error::format(
            run_dir,
            format!("a {} model cannot be exported yet; its checkpoints hold its weights", preset.task.title()),
        ));
    }
    let info = DataInfo::read(run_dir)?;
    let ckpt_path = find_checkpoint(run_dir, which)?;
    let ckpt = read_checkpoint(&ckpt_path)?;
    let input = info.model_input(preset.task);
    let network = Network::new(&preset.model, &input, preset.seed, &Device::Cpu)?;
    network.load_params(&ckpt.tensors)?;
    let trained: HashMap<String, Tensor> =
        network.params().iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
    let reference = layout::convert(&trained, &preset.model, &input, layout::Direction::ToReference)?;
    let run_id = run_dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut files = Vec::new();
    if format.safetensors() {
        files.push("model.safetensors".to_string());
    }
    if format.onnx() {
        files.push("model.onnx".to_string());
    }
    files.extend(["labels.json".to_string(), "preset.toml".to_string()]);
    let card = ModelCard {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        title: preset.title.clone(),
        layout: Some(layout::PYTORCH.into()),
        input: Some(InputInfo {
            name: onnx::INPUT.into(),
            layout: if info.input_shape.len() == 3 { "NCHW" } else { "NC" }.into(),
            shape: info.input_shape.clone(),
            dtype: "float32".into(),
            output: onnx::OUTPUT.into(),
        }),
        model: preset.model.clone(),
        task: preset.task,
        text: info.text.clone(),
        input_shape: info.input_shape.clone(),
        class_names: info.class_names.clone(),
        normalization: info.normalization.clone(),
        data: preset.data.clone(),
        seed: preset.seed,
        split: info.split.clone(),
        epoch: ckpt.state.epoch,
        validation_accuracy: Some(ckpt.state.validation_accuracy),
        source: format!("{run_id}/epoch-{}", ckpt.state.epoch),
        tensors: network.params().iter().map(|(n, v)| (n.clone(), v.dims().to_vec())).collect(),
        layers: layout::reference_layers(&preset.model, &input)?.into_iter().map(CardLayer::Reference).collect(),
        files,
    };
    // everything that can fail before anything is written: no half-made export
    let onnx_bytes = if format.onnx() { Some(onnx::to_onnx(&card, &reference)?) } else { None };
    let reference = counters_as_int64(reference, &card.layers)?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    // a model file of an earlier export into this folder would be read with this card
    for (wanted, name) in [(format.safetensors(), "model.safetensors"), (format.onnx(), "model.onnx")] {
        let path = out_dir.join(name);
        if !wanted && path.exists() {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    if format.safetensors() {
        write_weights(&reference, &out_dir.join("model.safetensors"))?;
    }
    if let Some(bytes) = onnx_bytes {
        write_atomic(&out_dir.join("model.onnx"), &bytes)?;
    }
    write_atomic(&out_dir.join("config.json"), pretty(&card).as_bytes())?;
    write_atomic(&out_dir.join("labels.json"), pretty(&card.class_names).as_bytes())?;
    write_atomic(&out_dir.join("preset.toml"), preset.to_toml().as_bytes())?;
    Ok(card)
}

/// Batch norm's `num_batches_tracked` is an int64 scalar in PyTorch's state_dict (the network
/// counts in f32, exact far past any run's batch count), so `load_state_dict` takes the file as
/// it is.
fn counters_as_int64(mut tensors: HashMap<String, Tensor>, layers: &[CardLayer]) -> Result<HashMap<String, Tensor>> {
    for layer in layers {
        if let CardLayer::Reference(layout::RefLayer::BatchNorm { num_batches_tracked: name, .. }) = layer {
            if let Some(t) = tensors.get(name) {
                let count = t.to_dtype(candle_core::DType::I64)?;
                tensors.insert(name.clone(), count);
            }
        }
    }
    Ok(tensors)
}

fn write_weights(tensors: &HashMap<String, Tensor>, weights: &Path) -> Result<()> {
    let tmp = weights.with_extension("safetensors.tmp");
    candle_core::safetensors::save(tensors, &tmp)?;
    std::fs::rename(&tmp, weights).map_err(|e| Error::io(weights, e))?;
    // safetensors writes the file private (0600); an exported model is meant to be shared
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(weights, std::fs::Permissions::from_mode(0o644)).map_err(|e| Error::io(weights, e))?;
    }
    Ok(())
}

fn pretty<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("plain data serialises")
}

/// An exported model, loaded back.
pub struct LoadedModel {
    pub card: ModelCard,
    pub network: Network,
}

/// The largest config.json read: a card is a few KiB (its normalisation has one mean per input
/// feature at most).
const MAX_CARD_BYTES: u64 = 16 << 20;

fn is_classify(task: &Task) -> bool {
    *task == Task::Classify
}

impl ModelCard {
    /// What the model reads and predicts.
    pub fn model_input(&self) -> ModelInput {
        ModelInput {
            shape: self.input_shape.clone(),
            classes: self.class_names.len(),
            vocab: self.text.as_ref().map(|t| t.tokens.len()),
            task: self.task,
        }
    }
}

/// Parameters the card's model would have, or `None` when counting them overflows.
fn planned_params(card: &ModelCard) -> Result<Option<usize>> {
    let layers = crate::model::plan(&card.model, &card.model_input())?;
    Ok(layers.iter().try_fold(0usize, |total, layer| {
        layer.params.iter().try_fold(total, |t, p| {
            p.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).and_then(|n| t.checked_add(n))
        })
    }))
}

fn parse_card(config: &Path, text: &str) -> Result<ModelCard> {
    let card: ModelCard =
        serde_json::from_str(text).map_err(|e| Error::format(config, format!("not a Gradlab model card: {e}")))?;
    if card.format != FORMAT || card.format_version > FORMAT_VERSION {
        return Err(Error::format(
            config,
            format!("format `{}` version {} is not one this Gradlab reads", card.format, card.format_version),
        ));
    }
    Ok(card)
}

/// An export held in memory (a model shipped inside the binary); `place` names it in messages.
pub fn load_model_from(place: &Path, card_text: &str, weights: &[u8]) -> Result<LoadedModel> {
    let config = place.join("config.json");
    let card = parse_card(&config, card_text)?;
    let file = place.join("model.safetensors");
    let tensors = candle_core::safetensors::load_buffer(weights, &Device::Cpu)
        .map_err(|e| Error::format(&file, format!("cannot read the weights: {e}")))?;
    build_model(&config, &file, card, tensors)
}

pub fn load_model(dir: &Path) -> Result<LoadedModel> {
    let config = dir.join("config.json");
    let text = crate::record::read_text_capped(&config, MAX_CARD_BYTES)?;
    let card = parse_card(&config, &text)?;
    let weights = dir.join("model.safetensors");
    let listed = |f: &str| card.files.iter().any(|g| g == f);
    if !card.files.is_empty() && !listed("model.safetensors") && listed("model.onnx") {
        return Err(Error::format(
            dir,
            "this export holds only model.onnx; Gradlab reads back exports that include model.safetensors",
        ));
    }
    let tensors = candle_core::safetensors::load(&weights, &Device::Cpu)
        .map_err(|e| Error::format(&weights, format!("cannot read the weights: {e}")))?;
    build_model(&config, &weights, card, tensors)
}

/// The network a card describes with the weights given, after the checks that keep a hostile
/// card from allocating a network from its numbers.
fn build_model(
    config: &Path,
    weights: &Path,
    card: ModelCard,
    tensors: std::collections::HashMap<String, Tensor>,
) -> Result<LoadedModel> {
    if card.class_names.is_empty() {
        return Err(Error::format(config, "`class_names` is empty; a classifier needs at least one class"));
    }
    let features = card.input_shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(usize::MAX);
    card.normalization.check(features).map_err(|e| Error::format(config, e))?;
    // the weights come from the file: a card describing more parameters than the file holds
    // is refused before the network is allocated from its numbers
    let held: usize = tensors.values().map(Tensor::elem_count).sum();
    let planned = planned_params(&card).map_err(|e| Error::format(config, e.to_string()))?;
    if planned.is_none_or(|p| p > held) {
        return Err(Error::format(
            config,
            format!(
                "describes a model of {} parameters but {} holds {held}",
                planned.map_or_else(|| "too many".to_string(), |p| p.to_string()),
                weights.display()
            ),
        ));
    }
    let input = card.model_input();
    let tensors = match card.layout.as_deref() {
        // version 1: saved as trained
        None if card.format_version < 2 => tensors,
        Some(layout::PYTORCH) => layout::convert(&tensors, &card.model, &input, layout::Direction::FromReference)
            .map_err(|e| Error::format(weights, e.to_string()))?,
        other => {
            return Err(Error::format(
                config,
                format!("weight layout {other:?} is not one this Gradlab reads (expected `pytorch`)"),
            ))
        }
    };
    let network =
        Network::new(&card.model, &input, card.seed, &Device::Cpu).map_err(|e| Error::format(config, e.to_string()))?;
    network.load_params(&tensors).map_err(|e| Error::format(weights, e.to_string()))?;
    Ok(LoadedModel { card, network })
}

impl LoadedModel {
    /// Logits for raw (unnormalised) inputs, `batch` samples of the card's input shape.
    pub fn logits_raw(&self, raw: &[f32], batch: usize) -> Result<Tensor> {
        let mut x = raw.to_vec();
        self.card.normalization.apply(&mut x);
        let mut shape = vec![batch];
        shape.extend_from_slice(&self.card.input_shape);
        let x = Tensor::from_vec(x, shape, &Device::Cpu)?;
        self.network.forward(&x, &mut crate::model::Mode::Eval)
    }
}

/// Evaluates an exported model on data (its own training data's held-out split by default):
/// the test split when the set has one, else the validation split. Inputs get the model's
/// normalisation, not a new one. Returns the split's name and the figures.
pub fn evaluate_model(dir: &Path, data: Option<DataSpec>) -> Result<(String, Evaluation)> {
    let model = load_model(dir)?;
    let spec = data.unwrap_or_else(|| model.card.data.clone());
    let ds = data::load_with(&spec, model.card.seed, Some(&model.card.normalization))?;
    // on its own data, the held-out samples must be the ones the run held out, or the figures
    // would count samples the model trained on
    if spec == model.card.data {
        if let Some(diff) = model.card.split.as_ref().and_then(|was| was.differences(&ds.split)) {
            return Err(Error::format(
                dir,
                format!(
                    "the data `{}` no longer splits as it did when this model was trained ({diff}), so \
                     evaluating would not hold out the samples the run held out; restore that data or \
                     evaluate on other data with --data",
                    spec.set
                ),
            ));
        }
    }
    if ds.input_shape != model.card.input_shape {
        return Err(Error::Shape(format!(
            "the model takes inputs of shape {:?} but `{}` has {:?}",
            model.card.input_shape, spec.set, ds.input_shape
        )));
    }
    if ds.num_classes() > model.card.class_names.len() {
        return Err(Error::Shape(format!(
            "the model knows {} classes but `{}` has {}",
            model.card.class_names.len(),
            spec.set,
            ds.num_classes()
        )));
    }
    let (name, split) = match &ds.test {
        Some(t) => ("test", t),
        None => ("validation", &ds.validation),
    };
    let eval = evaluate(&model.network, split, &model.card.model_input(), &Device::Cpu)?;
    Ok((name.into(), eval))
}
