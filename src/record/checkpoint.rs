//! Checkpoints: weights, optimizer moments and everything else a run needs to continue exactly
//! (position, RNG, learning rate, best so far), at each epoch's end and, every
//! `train.checkpoint_minutes`, within an epoch (so a kill loses minutes, not an epoch).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::write_atomic;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::train::{EpochProgress, Session};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Completed epochs; the run continues with the next.
    pub epoch: usize,
    /// Batches already trained in the next epoch: 0 for a checkpoint at an epoch's end, more for
    /// one written within an epoch (every `train.checkpoint_minutes`).
    #[serde(default)]
    pub batch: usize,
    /// The sums of that partly trained epoch.
    #[serde(default)]
    pub epoch_progress: EpochProgress,
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

/// `epoch-N` at an epoch's end; `epoch-N-batch-B` within epoch N + 1.
fn stem(state: &CheckpointState) -> String {
    if state.batch == 0 {
        format!("epoch-{}", state.epoch)
    } else {
        format!("epoch-{}-batch-{}", state.epoch, state.batch)
    }
}

/// Parses a checkpoint file's stem (`epoch-N` or `epoch-N-batch-B`) into its position
/// (completed epochs, batches into the next).
fn position(stem: &str) -> Option<(usize, usize)> {
    let stem = stem.strip_prefix("epoch-")?;
    match stem.split_once("-batch-") {
        Some((e, b)) => Some((e.parse().ok()?, b.parse().ok()?)),
        None => Some((stem.parse().ok()?, 0)),
    }
}

/// Writes `<stem>.safetensors` then `<stem>.json`; the JSON, written last, marks it complete.
/// Older within-epoch checkpoints are removed once a newer checkpoint is complete: only epoch
/// checkpoints are kept for good (export and fork pick among them).
pub fn save(dir: &Path, session: &Session, state: &CheckpointState) -> Result<()> {
    let mut tensors = HashMap::new();
    // the optimizers' state comes to the host here, and only here (the portable path keeps it on
    // the device between checkpoints)
    let moments = session.optimizer.host_state()?;
    insert_network(&mut tensors, "", session.net.params(), moments)?;
    if let Some(adversary) = &session.adversary {
        // a GAN's discriminator and its optimizer, under their own prefix
        let moments = adversary.optimizer.host_state()?;
        insert_network(&mut tensors, crate::train::generative::DISCRIMINATOR_PREFIX, adversary.net.params(), moments)?;
    }
    let stem = stem(state);
    let (weights, meta) = (dir.join(format!("{stem}.safetensors")), dir.join(format!("{stem}.json")));
    let tmp = weights.with_extension("safetensors.tmp");
    if let Err(e) = candle_core::safetensors::save(&tensors, &tmp) {
        // a full disk leaves a partial file: do not leave it taking the space
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::format(&weights, format!("cannot write the checkpoint: {e}")));
    }
    // on disk before the JSON that marks it complete is (write_atomic syncs the JSON)
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &weights).map_err(|e| Error::io(&weights, e))?;
    let json = serde_json::to_string_pretty(state).expect("checkpoint state serialises");
    write_atomic(&meta, json.as_bytes())?;
    remove_older_within_epoch(dir, (state.epoch, state.batch));
    Ok(())
}

/// A network's weights and, where there is some, its optimizer's state, named `prefix` + the
/// parameter's name (the state under `optimizer.m.` / `optimizer.v.` before that).
fn insert_network(
    tensors: &mut HashMap<String, Tensor>,
    prefix: &str,
    params: &[(String, candle_core::Var)],
    moments: Vec<crate::train::optim::ParamState>,
) -> Result<()> {
    for ((name, var), st) in params.iter().zip(moments) {
        let name = format!("{prefix}{name}");
        tensors.insert(name.clone(), var.as_tensor().clone());
        if !st.m.is_empty() {
            tensors.insert(format!("{M_PREFIX}{name}"), Tensor::from_vec(st.m, var.shape(), &Device::Cpu)?);
        }
        if !st.v.is_empty() {
            tensors.insert(format!("{V_PREFIX}{name}"), Tensor::from_vec(st.v, var.shape(), &Device::Cpu)?);
        }
    }
    Ok(())
}

/// Removes within-epoch checkpoints before `now`, complete or left half-written by a kill.
fn remove_older_within_epoch(dir: &Path, now: (usize, usize)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut doomed: Vec<PathBuf> = entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let pos = position(name.split('.').next()?)?;
            (pos.1 > 0 && pos < now).then_some(path)
        })
        .collect();
    // JSON files first: without its JSON a checkpoint is incomplete and never read
    doomed.sort_by_key(|p| p.extension().is_none_or(|e| e != "json"));
    for path in doomed {
        let _ = std::fs::remove_file(path);
    }
}

/// Every complete checkpoint in a checkpoints folder (JSON path), by position.
fn all_checkpoints(dir: &Path) -> Vec<((usize, usize), PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut found: Vec<((usize, usize), PathBuf)> = entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            let pos = position(path.file_name()?.to_str()?.strip_suffix(".json")?)?;
            path.with_extension("safetensors").exists().then_some((pos, path))
        })
        .collect();
    found.sort();
    found
}

/// Reads a checkpoint given either of its two files.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint> {
    let weights = path.with_extension("safetensors");
    let meta = path.with_extension("json");
    let text = super::read_text_capped(&meta, super::MAX_JSON_BYTES)?;
    let state: CheckpointState = serde_json::from_str(&text).map_err(|e| Error::format(&meta, e.to_string()))?;
    let tensors = candle_core::safetensors::load(&weights, &Device::Cpu)
        .map_err(|e| Error::format(&weights, format!("cannot read the checkpoint's weights: {e}")))?;
    Ok(Checkpoint { path: weights, state, tensors })
}

/// All complete checkpoints at an epoch's end, by epoch.
pub fn list_checkpoints(run_dir: &Path) -> Vec<(usize, PathBuf)> {
    all_checkpoints(&run_dir.join("checkpoints"))
        .into_iter()
        .filter(|((_, batch), _)| *batch == 0)
        .map(|((epoch, _), path)| (epoch, path))
        .collect()
}

/// The furthest complete checkpoint, within an epoch or at its end: where a resume continues.
pub fn latest_checkpoint(run_dir: &Path) -> Option<PathBuf> {
    all_checkpoints(&run_dir.join("checkpoints")).pop().map(|(_, p)| p)
}

/// Every complete checkpoint, furthest first (resume falls back along it).
pub fn checkpoints_newest_first(run_dir: &Path) -> Vec<PathBuf> {
    all_checkpoints(&run_dir.join("checkpoints")).into_iter().rev().map(|(_, p)| p).collect()
}

impl Checkpoint {
    /// Puts weights (and, when `with_optimizer`, the optimizer's moments and step count) into a
    /// session built from the same preset.
    pub fn restore_into(&self, session: &mut Session, with_optimizer: bool) -> Result<()> {
        session.net.load_params(&self.tensors)?;
        if with_optimizer {
            let moments = self.moments("", session.net.params())?;
            session.optimizer.load_host_state(session.net.params(), moments).map_err(|e| self.error(e))?;
            session.optimizer.steps = self.state.optimizer_steps;
        }
        if let Some(adversary) = session.adversary.as_mut() {
            let prefix = crate::train::generative::DISCRIMINATOR_PREFIX;
            let own: HashMap<String, Tensor> = self
                .tensors
                .iter()
                .filter_map(|(k, t)| Some((k.strip_prefix(prefix)?.to_string(), t.clone())))
                .collect();
            adversary
                .net
                .load_params(&own)
                .map_err(|e| Error::format(&self.path, format!("the discriminator: {e}")))?;
            if with_optimizer {
                let moments = self.moments(prefix, adversary.net.params())?;
                adversary.optimizer.load_host_state(adversary.net.params(), moments).map_err(|e| self.error(e))?;
                // both networks step once per batch
                adversary.optimizer.steps = self.state.optimizer_steps;
            }
        }
        Ok(())
    }

    /// The optimizer's state this checkpoint holds for `params` (named `prefix` + name), on the
    /// host; a parameter without it gets none (as before its first update).
    fn moments(
        &self,
        prefix: &str,
        params: &[(String, candle_core::Var)],
    ) -> Result<Vec<crate::train::optim::ParamState>> {
        let get = |key: String| -> Result<Vec<f32>> {
            match self.tensors.get(&key) {
                Some(t) => Ok(t.flatten_all()?.to_vec1()?),
                None => Ok(Vec::new()),
            }
        };
        params
            .iter()
            .map(|(name, _)| {
                Ok(crate::train::optim::ParamState {
                    m: get(format!("{M_PREFIX}{prefix}{name}"))?,
                    v: get(format!("{V_PREFIX}{prefix}{name}"))?,
                })
            })
            .collect()
    }

    /// An error about this checkpoint's contents, naming its file.
    fn error(&self, e: Error) -> Error {
        Error::format(&self.path, e.to_string())
    }
}
