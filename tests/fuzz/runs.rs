//! Run directories, checkpoints and exported models: real ones, written by a short real run,
//! then mutated file by file.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Device;
use gradlab::export::{export_run, load_model, Which};
use gradlab::model::Network;
use gradlab::record::{list_runs, load_run, read_checkpoint, DataInfo};
use gradlab::train::{RunOrigin, RunRequest};
use gradlab::Preset;
use proptest::prelude::*;
use serde_json::Value;

use crate::support::{bounded, config, hostile_text, mutated, random_bytes};

const CNN: &str = r#"
title = "fuzz cnn"
seed = 3
[data]
set = "digits"
[model]
kind = "cnn"
conv = [{ channels = 3, kernel = 3, stride = 1, padding = 1, pool = 2 }]
hidden = [8]
[train]
epochs = 1
batch_size = 64
"#;

const MLP: &str = r#"
title = "fuzz mlp"
seed = 4
[data]
set = "xor"
samples = 200
[model]
kind = "mlp"
hidden = [6]
[train]
epochs = 1
batch_size = 32
"#;

/// One real run, its last checkpoint and its export, as file names and bytes.
pub struct Base {
    _keep: tempfile::TempDir,
    pub run_files: Vec<(String, Vec<u8>)>,
    pub checkpoint: [(String, Vec<u8>); 2],
    pub model_files: Vec<(String, Vec<u8>)>,
    /// The run's network, to load a read checkpoint into.
    pub network: Network,
}

fn read_files(dir: &Path, names: &[&str]) -> Vec<(String, Vec<u8>)> {
    names.iter().map(|n| ((*n).to_string(), std::fs::read(dir.join(n)).unwrap())).collect()
}

fn make_base(preset: &str, tagged: bool) -> Base {
    let keep = tempfile::tempdir().unwrap();
    let runs = keep.path().join("runs");
    let preset = Preset::from_toml(preset, "fuzz-base.toml").unwrap();
    let request = RunRequest { preset: preset.clone(), origin: RunOrigin::Fresh };
    let out = crate::common::run_request(request, Some(&runs));
    assert!(out.failure.is_none(), "{:?}", out.failure);
    let (run, _) = list_runs(&runs).pop().expect("the run is recorded");
    let model = keep.path().join("model");
    export_run(&run, Which::Last, &model).unwrap();
    let mut run_files = read_files(&run, &["summary.json", "metrics.csv", "epochs.jsonl", "data.json", "preset.toml"]);
    if tagged {
        // a sweep trial's summary carries its tag (record::SweepTag): fuzz that field too
        let mut summary: serde_json::Value = serde_json::from_slice(&run_files[0].1).unwrap();
        summary["sweep"] =
            serde_json::json!({ "sweep": "2026-11-27T23-40-00_fuzz", "trial": 3, "slurm_job": "1234_3" });
        run_files[0].1 = serde_json::to_vec_pretty(&summary).unwrap();
    }
    let ck = read_files(&run.join("checkpoints"), &["epoch-1.json", "epoch-1.safetensors"]);
    let checkpoint = [ck[0].clone(), ck[1].clone()];
    let model_files = read_files(&model, &["config.json", "model.safetensors", "labels.json", "preset.toml"]);
    let info = DataInfo::read(&run).unwrap();
    let network = Network::new(&preset.model, &info.model_input(preset.task), preset.seed, &Device::Cpu).unwrap();
    Base { _keep: keep, run_files, checkpoint, model_files, network }
}

fn bases() -> &'static [Base; 2] {
    static BASES: OnceLock<[Base; 2]> = OnceLock::new();
    BASES.get_or_init(|| [make_base(CNN, false), make_base(MLP, true)])
}

/// A safetensors file whose JSON header is edited where it describes a tensor: shapes (huge,
/// zero, extra dimensions), dtypes, offsets. Byte edits alone rarely keep the JSON valid.
fn edit_safetensors(bytes: &[u8], tensor: usize, field: u8, value: u64) -> Vec<u8> {
    let Some(n) = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize) else {
        return bytes.to_vec();
    };
    let Some(Ok(Value::Object(mut header))) =
        bytes.get(8..8usize.saturating_add(n)).map(serde_json::from_slice::<Value>)
    else {
        return bytes.to_vec();
    };
    let names: Vec<String> = header.keys().filter(|k| *k != "__metadata__").cloned().collect();
    if names.is_empty() {
        return bytes.to_vec();
    }
    let entry = &mut header[&names[tensor % names.len()]];
    let dtypes = [
        "F32", "F16", "BF16", "F64", "U8", "I8", "U16", "I16", "U32", "I32", "I64", "BOOL", "F8_E4M3", "F8_E5M2", "F4",
        "F6_E2M3", "E8M0", "C64", "X",
    ];
    match field % 5 {
        0 => {
            if let Some(Value::Array(shape)) = entry.get_mut("shape") {
                let i = value as usize % shape.len().max(1);
                if shape.is_empty() {
                    shape.push(value.into())
                } else {
                    shape[i] = value.into()
                }
            }
        }
        1 => {
            if let Some(Value::Array(shape)) = entry.get_mut("shape") {
                shape.push((value % 4).into());
            }
        }
        2 => entry["dtype"] = dtypes[value as usize % dtypes.len()].into(),
        3 => {
            if let Some(Value::Array(off)) = entry.get_mut("data_offsets") {
                let i = value as usize % 2;
                if i < off.len() {
                    off[i] = (value >> 1).into();
                }
            }
        }
        _ => {
            if let Some(Value::Array(shape)) = entry.get_mut("shape") {
                shape.clear();
            }
        }
    }
    let head = serde_json::to_vec(&Value::Object(header)).unwrap();
    let mut out = (head.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&head);
    out.extend_from_slice(&bytes[8 + n..]); // n was checked by the get above
    out
}

fn hostile_value() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(1), Just(u64::MAX), Just(1 << 32), Just(1 << 62), Just(4_000_000_000), any::<u64>()]
}

/// One file of a set, changed: bytes edited, numbers made hostile, replaced by random bytes,
/// or (for safetensors) its header edited.
fn one_file_changed(files: Vec<(String, Vec<u8>)>) -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let n = files.len();
    (0..n).prop_flat_map(move |i| {
        let files = files.clone();
        let (name, bytes) = files[i].clone();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let change = if name.ends_with(".safetensors") {
            let b2 = bytes.clone();
            prop_oneof![
                1 => mutated(bytes.clone()),
                2 => (any::<usize>(), any::<u8>(), hostile_value()).prop_map(move |(t, f, v)| edit_safetensors(&b2, t, f, v)),
                1 => random_bytes(),
            ]
            .boxed()
        } else {
            prop_oneof![mutated(bytes), hostile_text(text).prop_map(String::into_bytes), random_bytes()].boxed()
        };
        change.prop_map(move |changed| {
            let mut out = files.clone();
            out[i].1 = changed;
            out
        })
    })
}

fn write_all(dir: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

thread_local! {
    // in memory where there is a tmpfs: ext4 flushes a truncated-and-rewritten file on close,
    // which would make a million cases take hours
    static SCRATCH: tempfile::TempDir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap();
}

fn scratch() -> PathBuf {
    SCRATCH.with(|d| d.path().to_path_buf())
}

fn which_base() -> impl Strategy<Value = usize> {
    0..2usize
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn run_directories_read_without_panic(
        files in which_base().prop_flat_map(|b| one_file_changed(bases()[b].run_files.clone()))
    ) {
        let runs = scratch().join("runs");
        let dir = runs.join("run");
        write_all(&dir, &files);
        if let Err(e) = bounded("loading a run", || load_run(&dir))? {
            prop_assert!(e.to_string().contains(&*dir.to_string_lossy()) || e.to_string().contains("preset.toml"), "{}", e);
        }
        bounded("listing runs", || list_runs(&runs))?;
        bounded("finding sweep trials", || gradlab::sweep::trial_runs(&runs, "2026-11-27T23-40-00_fuzz"))?;
        let _ = bounded("reading data.json", || DataInfo::read(&dir))?;
    }

    #[test]
    fn checkpoints_read_without_panic(
        (b, files) in which_base().prop_flat_map(|b| (Just(b), one_file_changed(bases()[b].checkpoint.to_vec())))
    ) {
        let dir = scratch().join("checkpoints");
        write_all(&dir, &files);
        match bounded("reading a checkpoint", || read_checkpoint(&dir.join("epoch-1.json")))? {
            // what reads also loads into the run's network, or is refused
            Ok(ck) => {
                let _ = bounded("loading checkpoint weights", || bases()[b].network.load_params(&ck.tensors))?;
            }
            Err(e) => prop_assert!(e.to_string().contains("epoch-1"), "{}", e),
        }
    }

    #[test]
    fn exported_models_load_without_panic(
        files in which_base().prop_flat_map(|b| one_file_changed(bases()[b].model_files.clone()))
    ) {
        let dir = scratch().join("model");
        write_all(&dir, &files);
        match bounded("loading a model", || load_model(&dir))? {
            Ok(model) => {
                // what loads also runs on one sample of its input shape
                let len: usize = model.card.input_shape.iter().product();
                let logits = bounded("running a model", || model.logits_raw(&vec![0.5; len], 1))?;
                prop_assert!(logits.is_ok(), "{:?}", logits.err());
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.contains("config.json") || e.contains("model.safetensors"), "{}", e);
            }
        }
    }
}

/// A card that describes a model far larger than its weights file (the issue's
/// `hidden = [4000000000, 4000000000]`) is refused before the network is allocated.
#[test]
fn a_card_larger_than_its_weights_is_refused_before_allocating() {
    let dir = scratch().join("huge-card");
    let mut files = bases()[1].model_files.clone();
    let card = String::from_utf8(files[0].1.clone()).unwrap();
    let card = card.replacen("\"hidden\": [\n      6\n    ]", "\"hidden\": [4000000000, 4000000000]", 1);
    assert!(card.contains("4000000000"), "the card lists hidden as expected: {card}");
    files[0].1 = card.into_bytes();
    write_all(&dir, &files);
    let (result, peak) = crate::support::peak_of(|| load_model(&dir));
    let e = result.err().expect("refused").to_string();
    // refused by the shape check (fc2 cannot be addressed) or by the parameter count
    assert!(
        e.contains("config.json")
            && (e.contains("model.hidden[1]") || (e.contains("parameters") && e.contains("model.safetensors"))),
        "{e}"
    );
    assert!(peak < 16 << 20, "held {peak} bytes");
}

/// A safetensors header claiming a tensor of 2^32 floats (or more) in its first dimension: the safetensors crate checks
/// the size against the bytes that follow, so nothing of that size is allocated.
#[test]
fn a_checkpoint_claiming_a_huge_tensor_is_refused_without_allocating_it() {
    let dir = scratch().join("huge-tensor");
    let mut files = bases()[1].checkpoint.to_vec();
    files[1].1 = edit_safetensors(&files[1].1, 0, 0, 1 << 32);
    write_all(&dir, &files);
    let (result, peak) = crate::support::peak_of(|| read_checkpoint(&dir.join("epoch-1.json")));
    let e = result.err().expect("refused").to_string();
    assert!(e.contains("epoch-1.safetensors"), "{e}");
    assert!(peak < 16 << 20, "held {peak} bytes");
}

/// Found by the long fuzz run: a dense weight of rank 3 in model.safetensors reached candle's
/// `dims2`, whose error captured a backtrace (400 MB with RUST_BACKTRACE set). Refused, cheaply.
#[test]
fn a_dense_weight_of_the_wrong_rank_is_refused_cheaply() {
    let dir = scratch().join("rank-3");
    let mut files = bases()[0].model_files.clone(); // the CNN: its fc1 follows the conv stack
    let weights = &mut files[1].1;
    let header_len = usize::try_from(u64::from_le_bytes(weights[..8].try_into().unwrap())).unwrap();
    let header = String::from_utf8(weights[8..8 + header_len].to_vec()).unwrap();
    let fc1 = header.find("\"fc1.weight\"").expect("the CNN has fc1");
    let shape = fc1 + header[fc1..].find("\"shape\":[").unwrap() + "\"shape\":[".len();
    let end = shape + header[shape..].find(']').unwrap();
    let header = format!("{},1{}", &header[..end], &header[end..]);
    let mut rebuilt = (header.len() as u64).to_le_bytes().to_vec();
    rebuilt.extend_from_slice(header.as_bytes());
    rebuilt.extend_from_slice(&weights[8 + header_len..]);
    *weights = rebuilt;
    write_all(&dir, &files);
    let (result, peak) = crate::support::peak_of(|| load_model(&dir));
    let e = result.err().expect("refused").to_string();
    assert!(e.contains("fc1.weight") && e.contains("matrix"), "{e}");
    assert!(peak < 16 << 20, "held {peak} bytes");
}
