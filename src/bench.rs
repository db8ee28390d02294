//! Training throughput benchmark: the MLP (784-256-128-10) and the CNN
//! (conv32-pool-conv64-pool-fc128-fc10) of the Fashion-MNIST presets, on real data, and the text
//! presets' models (simple RNN, LSTM and GRU classifiers, the character LSTM, the tiny
//! transformer) on their Debian data, for a fixed number of batches. Reports samples/s, forward
//! and backward time per layer type (image models) and peak memory, and, when PyTorch is
//! installed, the same figures from `bench/reference.py` with the same models, shapes, threads
//! and batch size, with the ratio. (The reference feeds the text models random token ids of the
//! same vocabulary and length: their speed does not depend on which ids they read.)

use std::path::Path;
use std::time::Instant;

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::config::Preset;
use crate::data::{self, idx, Batch, DataSpec};
use crate::device::{Compute, DeviceChoice};
use crate::error::{Error, Result};
use crate::model::Mode;
use crate::rng::Rng;
use crate::train::Session;

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub batches: usize,
    pub warmup: usize,
    pub batch_size: usize,
    pub threads: usize,
    /// Repetitions of each layer's isolated forward and backward.
    pub layer_reps: usize,
    pub models: Vec<String>,
    /// Where to train (`--device`): the CPU, its portable path, or a GPU.
    pub device: DeviceChoice,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            batches: 60,
            warmup: 5,
            batch_size: 128,
            threads: crate::train::cores(),
            layer_reps: 20,
            models: ALL_MODELS.iter().map(|m| m.to_string()).collect(),
            device: DeviceChoice::Cpu,
        }
    }
}

/// Time per batch of one layer type, summed over the layers of that type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerTiming {
    pub kind: String,
    pub forward_ms: f64,
    pub backward_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    pub name: String,
    pub params: usize,
    pub samples_per_s: f64,
    pub layers: Vec<LayerTiming>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub engine: String,
    /// What the models trained on (`Compute::label`, or the reference's `cpu` / `cuda`).
    #[serde(default)]
    pub device: String,
    pub data: String,
    pub threads: usize,
    pub batch_size: usize,
    pub models: Vec<ModelResult>,
    pub peak_rss_mib: f64,
}

/// Every benchmark model, in the order of the table.
pub const ALL_MODELS: [&str; 11] =
    ["mlp", "cnn", "cifar", "rnn", "lstm", "gru", "char-lstm", "transformer", "vae", "gan", "dcgan"];

/// A benchmark model as its preset: the Fashion-MNIST MLP and CNN, and the text presets (the
/// IMDB LSTM reads fortune words here, 100 per sample, with a head per category, as no IMDB is
/// installed).
pub fn model_preset(name: &str) -> Result<Preset> {
    let builtin = match name {
        "mlp" => "fashion_mnist_mlp",
        "cnn" => "fashion_mnist_cnn",
        "cifar" => "cifar10_cnn",
        "rnn" => "text_rnn",
        "lstm" => "imdb_lstm",
        "gru" => "word_language_gru",
        "char-lstm" => "char_lm_fortunes",
        "transformer" => "tiny_transformer_fortunes",
        "vae" => "vae_mnist",
        "gan" => "gan_mnist_mlp",
        "dcgan" => "gan_mnist_dcgan",
        other => {
            return Err(Error::Other(format!("no benchmark model `{other}`; use {} or all", ALL_MODELS.join(", "))))
        }
    };
    let mut preset = Preset::builtin(builtin)?;
    if name == "lstm" {
        // the fortunes' 43 categories instead of a review's one sigmoid output
        preset.data.set = "fortune-categories".into();
        if let Some(crate::model::LayerSpec::Dense(d)) = preset.model.layers.last_mut() {
            d.units = None;
        }
    }
    Ok(preset)
}

/// Whether a benchmark model's data is on this machine (the text models read Debian packages).
pub fn data_installed(name: &str) -> bool {
    !is_text(name) || model_preset(name).is_ok_and(|p| crate::budget::data_size(&p).is_some())
}

/// The text models' shapes for the PyTorch reference, as `bench/reference.py --text` reads them.
#[derive(Debug, Clone, Serialize)]
struct TextModelSpec {
    name: String,
    /// `rnn`, `lstm`, `gru` or `transformer`.
    kind: String,
    vocab: usize,
    embed: usize,
    hidden: usize,
    bidirectional: bool,
    dropout: f64,
    classes: usize,
    /// One output per step (a language model) rather than per sample.
    per_step: bool,
    len: usize,
    batch: usize,
    blocks: usize,
    heads: usize,
    clip: f64,
    lr: f64,
}

/// Fashion-MNIST when Debian's package is installed, else the embedded MNIST 5k.
pub fn bench_data() -> DataSpec {
    let set = if idx::fashion_mnist_installed() { "fashion-mnist" } else { "mnist-5k" };
    DataSpec { set: set.into(), ..DataSpec::default() }
}

/// Peak resident memory of this process (Linux), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

/// Forward and backward of each layer alone on a real batch's activations, summed by kind.
fn layer_timings(session: &Session, batch: &Batch, reps: usize) -> Result<Vec<LayerTiming>> {
    let net = &session.net;
    let mut inputs = vec![batch.inputs.detach()];
    for i in 0..net.run_layers() {
        let next = net.forward_layer(i, &inputs[i], &mut Mode::Eval)?.detach();
        inputs.push(next);
    }
    let mut rng = Rng::new(7);
    let mut out: Vec<LayerTiming> = Vec::new();
    for (i, x) in inputs.iter().take(net.run_layers()).enumerate() {
        let kind = net.layer_kind(i);
        if kind == "flatten" || kind == "layout" {
            continue;
        }
        // the first layer's input is data (after the layout change for images): no gradient for
        // it, as in PyTorch
        let data_input = i == 0 || (i == 1 && net.layer_kind(0) == "layout");
        let x = if data_input { x.clone() } else { Var::from_tensor(x)?.as_tensor().clone() };
        let y_shape = inputs[i + 1].shape().clone();
        let g: Vec<f32> = (0..y_shape.elem_count()).map(|_| rng.normal()).collect();
        let g = Tensor::from_vec(g, y_shape, x.device())?;
        let (mut fwd, mut bwd) = (Vec::new(), Vec::new());
        // a GPU runs its kernels asynchronously: each timestamp waits for the queued work, or it
        // would time the launches (a no-op on the CPU)
        let device = x.device().clone();
        let now = || -> Result<Instant> {
            device.synchronize()?;
            Ok(Instant::now())
        };
        for _ in 0..reps {
            let t0 = now()?;
            let y = net.forward_layer(i, &x, &mut Mode::Eval)?;
            let t1 = now()?;
            let loss = (y * &g)?.sum_all()?;
            let t2 = now()?;
            let grads = loss.backward()?;
            let t3 = now()?;
            drop(grads);
            fwd.push((t1 - t0).as_secs_f64() * 1e3);
            bwd.push((t3 - t2).as_secs_f64() * 1e3);
        }
        let (f, b) = (median(fwd), median(bwd));
        match out.iter_mut().find(|t| t.kind == kind) {
            Some(t) => {
                t.forward_ms += f;
                t.backward_ms += b;
            }
            None => out.push(LayerTiming { kind: kind.into(), forward_ms: f, backward_ms: b }),
        }
    }
    Ok(out)
}

fn bench_model(name: &str, data: &data::Dataset, cfg: &BenchConfig, compute: &Compute) -> Result<ModelResult> {
    let mut preset = model_preset(name)?;
    if !own_data(name) {
        preset.train.batch_size = cfg.batch_size;
    }
    preset.train.epochs = 1_000_000;
    let mut session = Session::new(preset, data.clone(), compute.clone())?;
    for _ in 0..cfg.warmup {
        session.train_batch()?;
    }
    // only the training steps are timed: a preset with few batches per epoch (the VAE's 36)
    // crosses an epoch's end, whose evaluation the reference does not do
    let mut elapsed = std::time::Duration::ZERO;
    let mut samples = 0;
    for _ in 0..cfg.batches {
        if session.epoch_done() {
            session.finish_epoch(0.0)?;
        }
        let start = Instant::now();
        samples += session.train_batch()?.size;
        elapsed += start.elapsed();
    }
    let samples_per_s = samples as f64 / elapsed.as_secs_f64();
    if own_data(name) {
        // a GAN trains two networks
        let params = session.net.param_count() + session.adversary.as_ref().map_or(0, |a| a.net.param_count());
        return Ok(ModelResult { name: name.into(), params, samples_per_s, layers: vec![] });
    }
    let indices: Vec<usize> = (0..cfg.batch_size.min(data.train.len())).collect();
    let batch = Batch::gather(&data.train, &indices, &data.input_shape, &session.device)?;
    let layers = layer_timings(&session, &batch, cfg.layer_reps)?;
    Ok(ModelResult { name: name.into(), params: session.net.param_count(), samples_per_s, layers })
}

/// The benchmark's classifiers of images share its image data and batch size; the others train
/// on their preset's own data at its own batch size.
fn own_data(name: &str) -> bool {
    !matches!(name, "mlp" | "cnn" | "cifar")
}

/// The generative models (MNIST 5k scaled to [0, 1], as their presets read it): the PyTorch
/// reference builds them by name, as it does the image classifiers.
fn is_generative(name: &str) -> bool {
    matches!(name, "vae" | "gan" | "dcgan")
}

fn is_text(name: &str) -> bool {
    own_data(name) && !is_generative(name)
}

/// Records in the CIFAR fixture the benchmark trains on (per batch file; 6 files).
const CIFAR_RECORDS: usize = 2_000;

/// CIFAR-10's binary format written with random-looking images (no CIFAR is installed here;
/// the speed does not depend on what the pixels show), read back through the real loader.
fn cifar_data() -> Result<data::Dataset> {
    let dir = std::env::temp_dir().join(format!("gradlab-bench-cifar-{}", std::process::id()));
    data::cifar::write_fixture(&dir, CIFAR_RECORDS, 42)?;
    let spec = DataSpec { set: "cifar10".into(), path: Some(dir.clone()), ..DataSpec::default() };
    let loaded = data::load(&spec, 42);
    let _ = std::fs::remove_dir_all(&dir);
    loaded
}

/// The data a benchmark model trains on: Fashion-MNIST (or MNIST 5k) for the image models, the
/// preset's own text set for the text models.
fn model_data(name: &str, images: &mut Option<data::Dataset>) -> Result<data::Dataset> {
    if name == "cifar" {
        return cifar_data();
    }
    if !own_data(name) {
        if images.is_none() {
            *images = Some(data::load(&bench_data(), 42)?);
        }
        return Ok(images.clone().expect("loaded above"));
    }
    let preset = model_preset(name)?;
    data::load(&preset.data, preset.seed)
}

/// Runs the benchmark in a pool of `cfg.threads` threads.
pub fn run(cfg: &BenchConfig) -> Result<BenchReport> {
    let mut images = None;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .thread_name(|i| format!("gradlab-compute-{i}"))
        .build()
        .map_err(|e| Error::Other(e.to_string()))?;
    let compute = Compute::open(cfg.device)?;
    let mut models = Vec::new();
    for m in &cfg.models {
        let data = model_data(m, &mut images)?;
        models.push(pool.install(|| bench_model(m, &data, cfg, &compute))?);
    }
    let data = match &images {
        Some(d) => d.clone(),
        None => data::load(&bench_data(), 42)?,
    };
    Ok(BenchReport {
        engine: "gradlab (candle 0.11 + own conv/pool ops)".into(),
        device: compute.label,
        data: format!("{} ({} train samples)", data.title, data.train.len()),
        threads: cfg.threads,
        batch_size: cfg.batch_size,
        models,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Runs `bench/reference.py` with `python` on the same data and settings; `None` when PyTorch is
/// not installed there.
pub fn run_reference(python: &Path, script: &Path, cfg: &BenchConfig) -> Result<Option<BenchReport>> {
    let probe = std::process::Command::new(python).args(["-c", "import torch"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return Ok(None);
    }
    let spec = bench_data();
    let data_arg =
        if spec.set == "fashion-mnist" { idx::FASHION_MNIST_DIR.to_string() } else { "assets/mnist_5k.csv.gz".into() };
    let text: Vec<TextModelSpec> =
        cfg.models.iter().filter(|m| is_text(m)).map(|m| text_spec(m)).collect::<Result<_>>()?;
    let image_models: Vec<&str> = cfg.models.iter().map(String::as_str).filter(|m| !is_text(m)).collect();
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["--text", &serde_json::to_string(&text).expect("plain data")])
        .args(["--data", &data_arg])
        .args(["--threads", &cfg.threads.to_string()])
        .args(["--batches", &cfg.batches.to_string()])
        .args(["--warmup", &cfg.warmup.to_string()])
        .args(["--batch-size", &cfg.batch_size.to_string()])
        .args(["--layer-reps", &cfg.layer_reps.to_string()])
        .args(["--models", &image_models.join(",")])
        .args(["--device", &reference_device(cfg.device)?])
        .output()
        .map_err(|e| Error::io(script, e))?;
    if !out.status.success() {
        return Err(Error::Other(format!("the reference failed: {}", String::from_utf8_lossy(&out.stderr))));
    }
    let report = serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::format(script, format!("unreadable output ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    })?;
    Ok(Some(report))
}

/// PyTorch's device for the reference: the same GPU as ours (`cuda:N`; `auto` as it resolved),
/// the CPU otherwise (Metal has no counterpart there; the portable path is the CPU).
fn reference_device(choice: DeviceChoice) -> Result<String> {
    let choice = match choice {
        DeviceChoice::Auto => match Compute::open(choice)?.device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => DeviceChoice::Cuda(gpu_id),
            _ => DeviceChoice::Cpu,
        },
        other => other,
    };
    Ok(match choice {
        DeviceChoice::Cuda(n) => format!("cuda:{n}"),
        _ => "cpu".to_string(),
    })
}

/// A text model's shapes for the reference, from its preset and data.
fn text_spec(name: &str) -> Result<TextModelSpec> {
    use crate::model::LayerSpec;
    let preset = model_preset(name)?;
    let input = crate::config::model_input_hint(&preset)
        .ok_or_else(|| Error::Other(format!("the data of `{name}` is not installed")))?;
    // the vocabulary as loading finds it (a character set is far below `vocab_size`)
    let data = data::load(&preset.data, preset.seed)?;
    let vocab = data.text.as_ref().map_or(0, |t| t.tokens.len());
    let mut spec = TextModelSpec {
        name: name.into(),
        kind: String::new(),
        vocab,
        embed: 0,
        hidden: 0,
        bidirectional: false,
        dropout: 0.0,
        classes: data.num_classes(),
        per_step: preset.task == crate::task::Task::LanguageModel,
        len: input.shape[0],
        batch: preset.train.batch_size,
        blocks: 0,
        heads: 0,
        clip: preset.train.clip_grad_norm,
        lr: preset.train.learning_rate,
    };
    for layer in &preset.model.layers {
        match layer {
            LayerSpec::Embedding(e) => spec.embed = e.dim,
            LayerSpec::Rnn(r) | LayerSpec::Lstm(r) | LayerSpec::Gru(r) => {
                spec.kind = layer.type_name().into();
                spec.hidden = r.hidden;
                spec.bidirectional = r.bidirectional;
            }
            LayerSpec::Dropout(d) => spec.dropout = d.rate,
            LayerSpec::Dense(d) if d.units == Some(1) => spec.classes = 1,
            LayerSpec::TransformerBlock(b) => {
                spec.kind = "transformer".into();
                spec.blocks += 1;
                spec.heads = b.heads;
            }
            _ => {}
        }
    }
    Ok(spec)
}

/// The table the benchmark prints.
pub fn format_report(ours: &BenchReport, reference: Option<&BenchReport>) -> String {
    let mut s = String::new();
    s.push_str(&format!("device: gradlab {}", ours.device));
    if let Some(r) = reference {
        s.push_str(&format!(", pytorch {}", if r.device.is_empty() { "cpu" } else { &r.device }));
    }
    s.push('\n');
    s.push_str(&format!(
        "data: {} (image models, batch {}; cifar: a CIFAR-10-format folder of 12,000 generated 32x32 colour images); text models on their presets' Debian data and batch; vae, gan, dcgan on MNIST 5k at their presets' batch; {} threads\n\n",
        ours.data, ours.batch_size, ours.threads
    ));
    s.push_str(&format!(
        "{:<11} {:>9} {:>16} {:>16} {:>7}\n",
        "model", "params", "gradlab samp/s", "pytorch samp/s", "ratio"
    ));
    for m in &ours.models {
        let r = reference.and_then(|r| r.models.iter().find(|x| x.name == m.name));
        let (rs, ratio) = match r {
            Some(r) => (format!("{:.0}", r.samples_per_s), format!("{:.2}", m.samples_per_s / r.samples_per_s)),
            None => ("-".into(), "-".into()),
        };
        s.push_str(&format!("{:<11} {:>9} {:>16.0} {:>16} {:>7}\n", m.name, m.params, m.samples_per_s, rs, ratio));
    }
    s.push_str("\nper layer type, ms per batch (forward / backward), each layer timed alone:\n");
    s.push_str(&format!("{:<6} {:<11} {:>20} {:>20}\n", "model", "layer", "gradlab fwd / bwd", "pytorch fwd / bwd"));
    for m in &ours.models {
        for l in &m.layers {
            let r = reference
                .and_then(|r| r.models.iter().find(|x| x.name == m.name))
                .and_then(|r| r.layers.iter().find(|x| x.kind == l.kind));
            let rs = r.map_or("-".into(), |r| format!("{:.2} / {:.2}", r.forward_ms, r.backward_ms));
            s.push_str(&format!(
                "{:<6} {:<11} {:>20} {:>20}\n",
                m.name,
                l.kind,
                format!("{:.2} / {:.2}", l.forward_ms, l.backward_ms),
                rs
            ));
        }
    }
    s.push_str(&format!("\npeak memory: gradlab {:.0} MiB", ours.peak_rss_mib));
    if let Some(r) = reference {
        s.push_str(&format!(", pytorch {:.0} MiB ({})", r.peak_rss_mib, r.engine));
    } else {
        s.push_str(
            "; PyTorch not found (python -m venv bench/.venv && bench/.venv/bin/pip install torch) for the reference",
        );
    }
    s.push('\n');
    s
}
