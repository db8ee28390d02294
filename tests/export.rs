//! Exports that other tools load: the ONNX file run by an independent runtime (tract), the
//! safetensors + config.json rebuilt in PyTorch's layout without Gradlab code, both giving the
//! logits of the model Gradlab trained; version-1 exports still read; `eval` refuses data that
//! no longer splits as the run's did.

mod common;
mod reference;

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{Device, Tensor};
use gradlab::data::{self, idx, NormalizationKind};
use gradlab::export::{self, ExportFormat, Which};
use gradlab::model::{Activation, ConvSpec, Mode, ModelKind, Network};
use gradlab::record::{self, DataInfo};
use gradlab::train::{RunOrigin, RunRequest};
use gradlab::Preset;
use tract_onnx::prelude::{tvec, Framework, InferenceModelExt, IntoRunnable, Tensor as TractTensor};

const SAMPLES: usize = 64;

fn gradlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gradlab"))
}

/// Trains `preset` (recorded) into `runs` and returns the run's folder.
fn train_run(preset: Preset, runs: &Path) -> PathBuf {
    let out = common::run_request(RunRequest { preset, origin: RunOrigin::Fresh }, Some(runs));
    assert!(out.failure.is_none(), "training failed: {:?}", out.failure);
    let listed = record::list_runs(runs);
    assert_eq!(listed.len(), 1);
    listed[0].0.clone()
}

fn brief(mut p: Preset, title: &str) -> Preset {
    p.title = title.into();
    p.data.limit = 600;
    p.train.epochs = 1;
    p.train.threads = 1;
    p
}

/// An MLP with GELU (composed from Erf in ONNX) and dropout (left out at inference).
fn mlp() -> Preset {
    let mut p = brief(Preset::builtin("mnist_mlp").unwrap(), "export mlp");
    p.model.hidden = vec![32, 16];
    p.model.activation = Activation::Gelu;
    p.model.dropout = 0.1;
    p
}

/// A CNN with padding and stride, then a conv with max-pool: 28 -> 14 -> 14 -> 7, so the dense
/// layer after it reads 8 x 7 x 7 features whose order matters.
fn cnn() -> Preset {
    let mut p = brief(Preset::builtin("mnist_cnn").unwrap(), "export cnn");
    p.model.kind = Some(ModelKind::Cnn);
    p.model.conv = Some(vec![
        ConvSpec { channels: 6, kernel: 3, stride: 2, padding: 1, pool: 1 },
        ConvSpec { channels: 8, kernel: 3, stride: 1, padding: 1, pool: 2 },
    ]);
    p.model.hidden = vec![16];
    p.model.activation = Activation::Relu;
    p
}

struct Exported {
    _dir: tempfile::TempDir,
    model: PathBuf,
    shape: Vec<usize>,
    /// Samples compared.
    n: usize,
    /// Raw validation samples and the same normalised as the run normalised them.
    raw: Vec<f32>,
    normalised: Vec<f32>,
    /// Logits of the network Gradlab trained, rebuilt from its checkpoint.
    ours: Vec<Vec<f32>>,
}

fn export_trained(preset: Preset) -> Exported {
    let dir = tempfile::tempdir().unwrap();
    let run = train_run(preset.clone(), &dir.path().join("runs"));
    let model = dir.path().join("model");
    export::export_run_as(&run, Which::Last, &model, ExportFormat::All).unwrap();

    let info = DataInfo::read(&run).unwrap();
    let len: usize = info.input_shape.iter().product();
    let ds = data::load(&preset.data, preset.seed).unwrap();
    let n = ds.validation.len().min(SAMPLES);
    let normalised = ds.validation.features[..n * len].to_vec();
    let mut raw_spec = preset.data.clone();
    raw_spec.normalization = NormalizationKind::None;
    let raw = data::load(&raw_spec, preset.seed).unwrap().validation.features[..n * len].to_vec();

    let ckpt = record::read_checkpoint(&export::find_checkpoint(&run, Which::Last).unwrap()).unwrap();
    let net = Network::new(&preset.model, &info.model_input(preset.task), preset.seed, &Device::Cpu).unwrap();
    net.load_params(&ckpt.tensors).unwrap();
    let mut shape = vec![n];
    shape.extend_from_slice(&info.input_shape);
    let x = Tensor::from_vec(normalised.clone(), shape.clone(), &Device::Cpu).unwrap();
    let ours = net.forward(&x, &mut Mode::Eval).unwrap().to_vec2().unwrap();
    Exported { _dir: dir, model, shape, n, raw, normalised, ours }
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs())).fold(0.0, f32::max)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

fn tract_logits(onnx: &Path, shape: &[usize], input: &[f32]) -> Vec<Vec<f32>> {
    let model = tract_onnx::onnx().model_for_path(onnx).unwrap().into_optimized().unwrap().into_runnable().unwrap();
    let x = TractTensor::from_shape(shape, input).unwrap();
    let out = model.run(tvec!(x.into())).unwrap();
    let view = out[0].to_plain_array_view::<f32>().unwrap();
    let classes = view.shape()[1];
    view.iter().copied().collect::<Vec<f32>>().chunks(classes).map(<[f32]>::to_vec).collect()
}

/// With `GRADLAB_EXPORT_DUMP=<dir>`, keeps each export with the samples and Gradlab's logits
/// (`inputs.f32`: the normalised inputs the graph takes, `logits.f32`, little-endian f32, shapes
/// in `samples.json`), so `bench/check_export.py` can load them in PyTorch and ONNX Runtime.
fn dump(name: &str, e: &Exported) {
    let Some(root) = std::env::var_os("GRADLAB_EXPORT_DUMP") else { return };
    let out = Path::new(&root).join(name.replace(' ', "_"));
    std::fs::create_dir_all(&out).unwrap();
    for entry in std::fs::read_dir(&e.model).unwrap().flatten() {
        std::fs::copy(entry.path(), out.join(entry.file_name())).unwrap();
    }
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(out.join("inputs.f32"), bytes(&e.normalised)).unwrap();
    std::fs::write(out.join("logits.f32"), bytes(&e.ours.concat())).unwrap();
    let shapes = serde_json::json!({ "inputs": e.shape, "logits": [e.n, e.ours[0].len()] });
    std::fs::write(out.join("samples.json"), shapes.to_string()).unwrap();
}

fn check_onnx(name: &str, e: &Exported) {
    dump(name, e);
    let onnx = e.model.join("model.onnx");
    let theirs = tract_logits(&onnx, &e.shape, &e.normalised);
    let diff = max_diff(&e.ours, &theirs);
    eprintln!(
        "{name}: ONNX (tract) vs Gradlab max |logit diff| = {diff:.3e}; model.onnx {} bytes, model.safetensors {} bytes",
        size(&onnx),
        size(&e.model.join("model.safetensors"))
    );
    assert!(diff <= 1e-4, "{name}: tract's logits differ by {diff}");
    // the batch dimension is free: one sample runs too
    let mut one = e.shape.clone();
    one[0] = 1;
    let len = e.normalised.len() / e.n;
    let single = tract_logits(&onnx, &one, &e.normalised[..len]);
    assert!(max_diff(&e.ours[..1], &single) <= 1e-4);
    // and the metadata carries what a user needs to feed it
    let model = tract_onnx::onnx().model_for_path(&onnx).unwrap();
    let prop = |k: &str| {
        model
            .properties
            .get(&format!("onnx.metadata_props.{k}"))
            .map(|t| t.try_as_plain_ram().unwrap().to_scalar::<String>().unwrap().clone())
    };
    let classes: Vec<String> = serde_json::from_str(&prop("class_names").expect("class names")).unwrap();
    let labels: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(e.model.join("labels.json")).unwrap()).unwrap();
    assert_eq!(classes, labels);
    assert!(prop("normalization").unwrap().contains("mean"));
    assert_eq!(prop("input_layout").unwrap(), if e.shape.len() == 4 { "NCHW" } else { "NC" });
}

fn check_reference(name: &str, e: &Exported) {
    let rebuilt = reference::ReferenceModel::load(&e.model).logits(&e.raw, e.n);
    let diff = max_diff(&e.ours, &rebuilt);
    eprintln!("{name}: reference rebuild (config.json + safetensors, no Gradlab code) vs Gradlab max |logit diff| = {diff:.3e}");
    assert!(diff <= 1e-4, "{name}: the rebuilt model's logits differ by {diff}");
    // and Gradlab reads its own export back to the same logits (`eval` stays right)
    let loaded = export::load_model(&e.model).unwrap();
    let back: Vec<Vec<f32>> = loaded.logits_raw(&e.raw, e.n).unwrap().to_vec2().unwrap();
    assert!(max_diff(&e.ours, &back) <= 1e-4);
}

/// The other activations, an 8x8 image CNN whose conv output is 4x4, and a table (`[N, features]`).
#[test]
fn tanh_cnn_and_sigmoid_table_models_export_the_same() {
    let mut digits = brief(Preset::builtin("digits_mlp").unwrap(), "digits tanh cnn");
    digits.model.kind = Some(ModelKind::Cnn);
    digits.model.conv = Some(vec![ConvSpec { channels: 4, kernel: 3, stride: 1, padding: 1, pool: 2 }]);
    digits.model.hidden = vec![];
    digits.model.activation = Activation::Tanh;
    let mut iris = brief(Preset::builtin("iris_mlp").unwrap(), "iris sigmoid");
    iris.data.limit = 0;
    iris.model.activation = Activation::Sigmoid;
    for (name, preset) in [("digits tanh CNN", digits), ("iris sigmoid MLP", iris)] {
        let e = export_trained(preset);
        check_onnx(name, &e);
        check_reference(name, &e);
    }
}

#[test]
fn mlp_export_runs_in_tract_and_rebuilds_from_the_card() {
    let e = export_trained(mlp());
    check_onnx("MLP", &e);
    check_reference("MLP", &e);
}

#[test]
fn cnn_export_runs_in_tract_and_rebuilds_from_the_card() {
    let e = export_trained(cnn());
    check_onnx("CNN", &e);
    check_reference("CNN", &e);
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.model.join("config.json")).unwrap()).unwrap();
    assert_eq!(card["format_version"], 2);
    let types: Vec<&str> = card["layers"].as_array().unwrap().iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"]);
}

/// A version-1 export (weights as trained, channels-last `fc1`) still loads to the same logits.
#[test]
fn version_1_exports_still_read() {
    let e = export_trained(cnn());
    let config = e.model.join("config.json");
    let mut card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let obj = card.as_object_mut().unwrap();
    obj.insert("format_version".into(), 1.into());
    for k in ["layout", "input", "split", "files"] {
        obj.remove(k);
    }
    obj.insert("layers".into(), serde_json::json!(["conv1: conv 6 3x3, stride 2, padding 1", "ReLU"]));
    std::fs::write(&config, serde_json::to_string(&card).unwrap()).unwrap();
    // version 1 held the trained layout: the checkpoint's tensors as they are
    let run = std::fs::read_dir(e._dir.path().join("runs")).unwrap().next().unwrap().unwrap().path();
    let ckpt = record::read_checkpoint(&export::find_checkpoint(&run, Which::Last).unwrap()).unwrap();
    let params: std::collections::HashMap<String, Tensor> =
        ckpt.tensors.into_iter().filter(|(k, _)| !k.starts_with("optimizer.")).collect();
    candle_core::safetensors::save(&params, e.model.join("model.safetensors")).unwrap();
    let loaded = export::load_model(&e.model).unwrap();
    let back: Vec<Vec<f32>> = loaded.logits_raw(&e.raw, e.n).unwrap().to_vec2().unwrap();
    assert!(max_diff(&e.ours, &back) <= 1e-4, "a version-1 export is read in its own layout");
}

fn write_idx(dir: &Path, images: &[u8], labels: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let count = labels.len();
    idx::write_images(
        &dir.join("train-images-idx3-ubyte"),
        &idx::IdxImages { count, rows: 28, cols: 28, pixels: images.to_vec() },
        false,
    )
    .unwrap();
    idx::write_labels(&dir.join("train-labels-idx1-ubyte"), labels, false).unwrap();
}

#[test]
fn eval_refuses_data_that_no_longer_splits_as_the_run_did() {
    let tmp = tempfile::tempdir().unwrap();
    let mut raw_spec = data::DataSpec { set: "mnist-5k".into(), ..Default::default() };
    raw_spec.normalization = NormalizationKind::None;
    let mnist = data::load(&raw_spec, 1).unwrap();
    let n = 400;
    let images: Vec<u8> = mnist.train.features[..n * 784].iter().map(|&v| v as u8).collect();
    let labels: Vec<u8> = mnist.train.labels[..n].iter().map(|&l| l as u8).collect();
    let folder = tmp.path().join("digits-idx");
    write_idx(&folder, &images, &labels);

    let mut p = brief(Preset::builtin("mnist_mlp").unwrap(), "split check");
    p.data.set = "idx".into();
    p.data.path = Some(folder.clone());
    p.data.limit = 0;
    p.model.hidden = vec![16];
    let run = train_run(p, &tmp.path().join("runs"));
    assert!(DataInfo::read(&run).unwrap().split.is_some(), "data.json records the split");
    let model = tmp.path().join("model");
    export::export_run(&run, Which::Last, &model).unwrap();
    let (_, before) = export::evaluate_model(&model, None).unwrap();
    assert_eq!(before.confusion.total(), 40);
    let out = gradlab().arg("eval").arg(&model).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("held out exactly the run's samples: 40 validation"));

    let refused = |expect: &str| {
        let Err(err) = export::evaluate_model(&model, None) else { panic!("eval accepted changed data") };
        let err = err.to_string();
        assert!(err.contains(&model.display().to_string()) && err.contains(expect), "{err}");
        let out = gradlab().arg("eval").arg(&model).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(expect), "{stderr}");
    };
    // one more sample: a different split
    let mut more = images.clone();
    more.extend_from_slice(&images[..784]);
    let mut more_labels = labels.clone();
    more_labels.push(labels[0]);
    write_idx(&folder, &more, &more_labels);
    refused("total samples 400 then, 401 now");
    // as many samples, other contents: the same indices are other samples
    let changed: Vec<u8> = images.iter().map(|&v| 255 - v).collect();
    write_idx(&folder, &changed, &labels);
    refused("contents changed");
    // the data restored, eval works again and gives the same figures
    write_idx(&folder, &images, &labels);
    let (_, again) = export::evaluate_model(&model, None).unwrap();
    assert_eq!(again.confusion, before.confusion);

    // a card from before splits were recorded still evaluates (unchecked, with a warning)
    let config = model.join("config.json");
    let mut card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    card.as_object_mut().unwrap().remove("split");
    std::fs::write(&config, serde_json::to_string(&card).unwrap()).unwrap();
    let out = gradlab().arg("eval").arg(&model).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));
}

#[test]
fn cli_exports_onnx_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let mut p = Preset::builtin("iris_mlp").unwrap();
    p.train.epochs = 2;
    let run = train_run(p, &tmp.path().join("runs"));
    let model = tmp.path().join("onnx-only");
    let out = gradlab().arg("export").arg(&run).arg(&model).args(["--format", "onnx"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(model.join("model.onnx").exists() && model.join("config.json").exists());
    assert!(!model.join("model.safetensors").exists());
    // a tabular model takes [N, features]
    let x: Vec<f32> = vec![0.5; 3 * 4];
    assert_eq!(tract_logits(&model.join("model.onnx"), &[3, 4], &x).len(), 3);
    // gradlab's own eval needs the safetensors, and says so
    let out = gradlab().arg("eval").arg(&model).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("only model.onnx"));
    let out = gradlab().arg("export").arg(&run).arg(&model).args(["--format", "pt"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--format"));
}

/// Batch norm (1-D and 2-D, running statistics after training), 2-D dropout, a reshape into a
/// non-square image, a transposed conv, upsampling, and both kinds of flatten (into a dense
/// layer, channels-last and permuted at export; into a batch norm, channel-major): tract runs the
/// ONNX graph, the card rebuilds the model with plain loops, PyTorch's names and dtypes.
#[test]
fn decoder_layers_export_runs_in_tract_and_rebuilds_from_the_card() {
    let mut p = brief(Preset::builtin("mnist_cnn").unwrap(), "export decoder layers");
    p.model = toml::from_str(
        "layers = [
          { type = \"conv2d\", channels = 4, kernel = 3, stride = 2, padding = 1 }, { type = \"batchnorm\" },
          { type = \"activation\", activation = \"relu\" }, { type = \"maxpool\", size = 2 },
          { type = \"flatten\" }, { type = \"dense\", units = 36, activation = \"relu\" }, { type = \"batchnorm\" },
          { type = \"reshape\", shape = [6, 2, 3] },
          { type = \"conv_transpose2d\", channels = 4, kernel = 3, stride = 2, padding = 1, output_padding = 1 },
          { type = \"upsample\", scale = 2 }, { type = \"batchnorm\", momentum = 0.3 }, { type = \"dropout2d\", rate = 0.1 },
          { type = \"flatten\" }, { type = \"batchnorm\" }, { type = \"dense\" },
        ]",
    )
    .unwrap();
    let e = export_trained(p);
    check_onnx("decoder layers", &e);
    check_reference("decoder layers", &e);
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(e.model.join("config.json")).unwrap()).unwrap();
    let types: Vec<&str> = card["layers"].as_array().unwrap().iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "Conv2d",
            "BatchNorm",
            "ReLU",
            "MaxPool2d",
            "Flatten",
            "Linear",
            "ReLU",
            "BatchNorm",
            "Unflatten",
            "ConvTranspose2d",
            "Upsample",
            "BatchNorm",
            "Dropout2d",
            "Flatten",
            "BatchNorm",
            "Linear"
        ]
    );
    let modules: Vec<&str> = card["layers"].as_array().unwrap().iter().filter_map(|l| l["module"].as_str()).collect();
    assert_eq!(modules, ["BatchNorm2d", "BatchNorm1d", "BatchNorm2d", "BatchNorm1d"]);
    let bytes = std::fs::read(e.model.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let count = st.tensor("bn3.num_batches_tracked").unwrap();
    assert_eq!((count.dtype(), count.shape()), (safetensors::Dtype::I64, &[][..]));
    // 600 training samples in batches of 128: 5 batches in the one epoch
    assert_eq!(i64::from_le_bytes(count.data().try_into().unwrap()), 5);
    assert_eq!(st.tensor("deconv1.weight").unwrap().shape(), [6, 4, 3, 3]);
    let var = st.tensor("bn1.running_var").unwrap();
    assert!(var.data().chunks_exact(4).all(|b| f32::from_le_bytes(b.try_into().unwrap()) != 1.0), "trained statistics");
}
