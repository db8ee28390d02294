//! Checkpoints: weights, optimizer moments and everything else a run needs to continue exactly
//! (position, RNG, learning rate, best so far).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::write_atomic;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::train::Session;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Completed epochs; the run continues with the next.
    pub epoch: usize,
    pub optimizer_steps: u64,
    pub base_learning_rate: f64,
    pub rng: Rng,
    pub best_epoch: Option<usize>,
    pub best_validation_accuracy: Option<f64>,
    pub validation_accuracy: f64,
    pub samples_seen: usize,
    pub train_time_s: f64,
    pub elapsed_s: f64,
}

pub struct Checkpoint {
    pub path: PathBuf,
    pub state: CheckpointState,
    pub tensors: HashMap<String, Tensor>,
}

const M_PREFIX: &str = "optimizer.m.";
const V_PREFIX: &str = "optimizer.v.";

fn paths(dir: &Path, epoch: usize) -> (PathBuf, PathBuf) {
    (dir.join(format!("epoch-{epoch}.safetensors")), dir.join(format!("epoch-{epoch}.json")))
}

/// Writes `epoch-N.safetensors` then `epoch-N.json`; the JSON, written last, marks it complete.
pub fn save(dir: &Path, session: &Session, state: &CheckpointState) -> Result<()> {
    let mut tensors = HashMap::new();
    for ((name, var), st) in session.net.params().iter().zip(&session.optimizer.state) {
        tensors.insert(name.clone(), var.as_tensor().clone());
        if !st.m.is_empty() {
            tensors.insert(format!("{M_PREFIX}{name}"), Tensor::from_vec(st.m.clone(), var.shape(), &Device::Cpu)?);
        }
        if !st.v.is_empty() {
            tensors.insert(format!("{V_PREFIX}{name}"), Tensor::from_vec(st.v.clone(), var.shape(), &Device::Cpu)?);
        }
    }
    let (weights, meta) = paths(dir, state.epoch);
    let tmp = weights.with_extension("safetensors.tmp");
    candle_core::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, &weights).map_err(|e| Error::io(&weights, e))?;
    let json = serde_json::to_string_pretty(state).expect("checkpoint state serialises");
    write_atomic(&meta, json.as_bytes())
}

/// Reads a checkpoint given either of its two files.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint> {
    let weights = path.with_extension("safetensors");
    let meta = path.with_extension("json");
    let text = std::fs::read_to_string(&meta).map_err(|e| Error::io(&meta, e))?;
    let state: CheckpointState = serde_json::from_str(&text).map_err(|e| Error::format(&meta, e.to_string()))?;
    let tensors = candle_core::safetensors::load(&weights, &Device::Cpu)
        .map_err(|e| Error::format(&weights, format!("cannot read the checkpoint's weights: {e}")))?;
    Ok(Checkpoint { path: weights, state, tensors })
}

/// All complete checkpoints of a run, by epoch.
pub fn list_checkpoints(run_dir: &Path) -> Vec<(usize, PathBuf)> {
    let dir = run_dir.join("checkpoints");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return vec![];
    };
    let mut found: Vec<(usize, PathBuf)> = entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let epoch = name.strip_prefix("epoch-")?.strip_suffix(".json")?.parse().ok()?;
            path.with_extension("safetensors").exists().then_some((epoch, path))
        })
        .collect();
    found.sort();
    found
}

pub fn latest_checkpoint(run_dir: &Path) -> Option<PathBuf> {
    list_checkpoints(run_dir).pop().map(|(_, p)| p)
}

impl Checkpoint {
    /// Puts weights (and, when `with_optimizer`, the optimizer's moments and step count) into a
    /// session built from the same preset.
    pub fn restore_into(&self, session: &mut Session, with_optimizer: bool) -> Result<()> {
        session.net.load_params(&self.tensors)?;
        if with_optimizer {
            let get = |key: String| -> Result<Vec<f32>> {
                match self.tensors.get(&key) {
                    Some(t) => Ok(t.flatten_all()?.to_vec1()?),
                    None => Ok(Vec::new()),
                }
            };
            for ((name, _), st) in session.net.params().iter().zip(session.optimizer.state.iter_mut()) {
                st.m = get(format!("{M_PREFIX}{name}"))?;
                st.v = get(format!("{V_PREFIX}{name}"))?;
            }
            session.optimizer.steps = self.state.optimizer_steps;
        }
        Ok(())
    }
}
