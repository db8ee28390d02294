//! From a sweep file to its trials: grid or random expansion, each trial's preset (the base with
//! dotted keys set, re-read through `Preset::from_toml` so every key check applies), the halving
//! rungs, the threads per local slot, and the sweep folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::{Metric, SweepSpec};
use crate::config::Preset;
use crate::error::{Error, Result};

/// One trial: its index in the plan, the values it varies, and its full preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub index: usize,
    /// Varied key → value (the keys of `[vary]`, in order).
    pub values: BTreeMap<String, toml::Value>,
    pub preset: Preset,
}

impl Trial {
    /// `train.learning_rate=0.01 model.hidden=[32, 32]`, for tables and logs.
    pub fn describe(&self) -> String {
        self.values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    }
}

/// Successive halving's rungs: rung r trains `keep[r]` trials to `epochs[r]` epochs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rungs {
    pub epochs: Vec<usize>,
    pub keep: Vec<usize>,
}

/// A sweep's trials and rungs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub spec: SweepSpec,
    pub trials: Vec<Trial>,
    /// `None` without `[halving]`: one rung, every trial to its preset's epochs.
    pub rungs: Option<Rungs>,
}

impl Plan {
    /// Expands the spec into trials (grid or random) and rungs; every trial's preset is checked.
    pub fn new(spec: SweepSpec) -> Result<Self> {
        let _ = spec;
        Err(Error::Other("sweep planning is not written yet".into()))
    }

    pub fn metric(&self) -> Metric {
        self.spec.metric
    }

    /// The varied keys, in the order trials list them.
    pub fn varied_keys(&self) -> Vec<String> {
        self.spec.vary.keys().cloned().collect()
    }

    /// How many rungs (1 without halving).
    pub fn rung_count(&self) -> usize {
        self.rungs.as_ref().map_or(1, |r| r.epochs.len())
    }

    /// The epoch rung `rung` stops at; `None` for the last rung (trained to completion).
    pub fn until_epoch(&self, rung: usize) -> Option<usize> {
        let rungs = self.rungs.as_ref()?;
        (rung + 1 < rungs.epochs.len()).then(|| rungs.epochs[rung])
    }
}

/// Sets `key` (dotted: `train.learning_rate`; a numeric segment indexes an array,
/// `model.layers.2.units`) in a preset's TOML table. A missing parent table is an error naming
/// `what` (e.g. `vary."model.foo.bar"`); a missing last key is added.
pub fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) -> std::result::Result<(), String> {
    let _ = (table, key, value);
    Err("not written yet".into())
}

/// Validates the parts of a spec that do not need its base preset (`SweepSpec::from_toml`).
pub(super) fn validate_spec(spec: &SweepSpec) -> Result<()> {
    let _ = spec;
    Ok(())
}

/// Threads per local slot: `parallel` (clamped to `1..=budget`) slots share `budget` threads,
/// each `budget / parallel`, the remainder to the first slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSplit {
    pub budget: usize,
    /// Threads of each slot; their sum never exceeds the budget.
    pub slots: Vec<usize>,
}

impl ThreadSplit {
    pub fn new(budget: usize, parallel: usize) -> Self {
        let budget = budget.max(1);
        let parallel = parallel.clamp(1, budget);
        let slots = (0..parallel).map(|i| budget / parallel + usize::from(i < budget % parallel)).collect();
        Self { budget, slots }
    }

    pub fn parallel(&self) -> usize {
        self.slots.len()
    }
}

/// A sweep's id: `<timestamp>_<slug of its name>`.
pub fn sweep_id(name: &str) -> String {
    let _ = name;
    String::new()
}

/// plan.json: what a reader of the folder needs without re-planning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub id: String,
    pub name: String,
    pub metric: Metric,
    pub keys: Vec<String>,
    pub trials: Vec<PlanTrial>,
    pub rungs: Option<Rungs>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTrial {
    pub index: usize,
    pub values: BTreeMap<String, serde_json::Value>,
    pub title: String,
}

/// Claims `<runs_dir>/sweeps/<id>/` and writes sweep.toml, plan.json, trials/NNN.toml and a
/// `planned` state.json. Returns the folder.
pub fn write_sweep_dir(runs_dir: &Path, plan: &Plan) -> Result<PathBuf> {
    let _ = (runs_dir, plan);
    Err(Error::Other("sweep folders are not written yet".into()))
}

/// The plan of a sweep folder, read back from its sweep.toml and trials/ (the presets as
/// written, so a changed base preset does not change a sweep under way).
pub fn read_plan(sweep_dir: &Path) -> Result<Plan> {
    let _ = sweep_dir;
    Err(Error::Other("sweep folders are not read yet".into()))
}
