//! The sweep file: what to train (a preset), what stays fixed, what varies and how, parsed and
//! checked before any trial exists. Errors name the file and the key (`vary."train.lr"`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Preset;
use crate::error::{Error, Result};

/// What ranks trials: validation accuracy (maximised) or validation loss (minimised; generative
/// tasks have no accuracy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    #[default]
    ValidationAccuracy,
    ValidationLoss,
}

impl Metric {
    pub fn key(self) -> &'static str {
        match self {
            Metric::ValidationAccuracy => "validation_accuracy",
            Metric::ValidationLoss => "validation_loss",
        }
    }

    /// Whether `a` is better than `b` under this metric.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Metric::ValidationAccuracy => a > b,
            Metric::ValidationLoss => a < b,
        }
    }
}

/// One varied key: exactly one of `values`, `linear` or `log`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Axis {
    pub values: Option<Vec<toml::Value>>,
    pub linear: Option<[f64; 2]>,
    pub log: Option<[f64; 2]>,
    /// Points of a `linear` or `log` range on a grid (ends included); unused by random sampling.
    pub count: Option<usize>,
    /// Round `linear`/`log` points to integers (batch sizes, widths).
    pub integer: bool,
}

/// `[random]`: `samples` trials drawn with `seed` instead of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSpec {
    pub samples: usize,
    #[serde(default)]
    pub seed: u64,
}

/// `[halving]`: successive halving, rung r trains to `min_epochs * eta^r` epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HalvingSpec {
    pub eta: usize,
    pub rungs: usize,
    pub min_epochs: usize,
}

/// `[slurm]`: defaults for `sweep run --slurm` (its flags override them).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmSpec {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus: Option<usize>,
    pub mem: Option<String>,
}

/// A sweep file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    pub name: String,
    /// A preset file, relative to the sweep file.
    #[serde(default)]
    pub base: Option<PathBuf>,
    /// A built-in preset by name instead.
    #[serde(default)]
    pub builtin: Option<String>,
    #[serde(default)]
    pub metric: Metric,
    /// Keys set the same in every trial.
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
    /// Keys varied across trials (a grid, in key order, unless `[random]`).
    #[serde(default)]
    pub vary: BTreeMap<String, Axis>,
    #[serde(default)]
    pub random: Option<RandomSpec>,
    #[serde(default)]
    pub halving: Option<HalvingSpec>,
    #[serde(default)]
    pub slurm: SlurmSpec,
    /// Where it came from (for errors) and the folder `base` is relative to.
    #[serde(skip)]
    pub origin: String,
    #[serde(skip)]
    pub dir: PathBuf,
    /// The file's text, copied into the sweep folder.
    #[serde(skip)]
    pub text: String,
}

/// The largest sweep file read.
pub const MAX_SWEEP_BYTES: u64 = 1 << 20;
/// Trials a sweep may plan (each is a run folder).
pub const MAX_TRIALS: usize = 10_000;

impl SweepSpec {
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::record::read_text_capped(path, MAX_SWEEP_BYTES)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_toml(&text, &path.display().to_string(), &dir)
    }

    /// Parses and validates; `origin` names the file in errors, `dir` is where `base` is found.
    pub fn from_toml(text: &str, origin: &str, dir: &Path) -> Result<Self> {
        let mut spec: SweepSpec = toml::from_str(text).map_err(|e| crate::config::toml_error(&e, text, origin))?;
        spec.origin = origin.to_string();
        spec.dir = dir.to_path_buf();
        spec.text = text.to_string();
        spec.validate()?;
        Ok(spec)
    }

    /// The preset every trial starts from.
    pub fn base_preset(&self) -> Result<Preset> {
        match (&self.base, &self.builtin) {
            (Some(_), Some(_)) => Err(self.err("base", "give `base` or `builtin`, not both")),
            (Some(file), None) => Preset::load(&self.dir.join(file)),
            (None, Some(name)) => Preset::builtin(name),
            (None, None) => Err(self.err("base", "give `base = \"preset.toml\"` or `builtin = \"name\"`")),
        }
    }

    /// An error naming this file and `key`.
    pub fn err(&self, key: impl Into<String>, message: impl Into<String>) -> Error {
        Error::config(self.origin.clone(), key, message)
    }

    fn validate(&self) -> Result<()> {
        super::plan::validate_spec(self)
    }
}
