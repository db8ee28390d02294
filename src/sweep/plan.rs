//! From a sweep file to its trials: grid or random expansion, each trial's preset (the base with
//! dotted keys set, re-read through `Preset::from_toml` so every key check applies), the halving
//! rungs, the threads per local slot, and the sweep folder.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::spec::{HalvingSpec, Metric, SweepSpec, MAX_TRIALS};
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
    /// Reads a sweep file and plans it.
    pub fn load(path: &Path) -> Result<Self> {
        Self::new(SweepSpec::load(path)?)
    }

    /// Expands the spec into trials (grid or random) and rungs; every trial's preset is checked
    /// through `Preset::from_toml`, and each `set`/`vary` key alone first, so a bad key is named
    /// as the sweep file says it.
    pub fn new(spec: SweepSpec) -> Result<Self> {
        let base = spec.base_preset()?;
        let base_table: toml::Table = base.to_toml().parse().expect("a preset's TOML parses back");
        let rungs = spec.halving.map(|h| rungs_of(h, count_trials(&spec)));
        // each key alone on the base, so an error names the sweep file's key
        let mut fixed = base_table.clone();
        for (key, value) in &spec.set {
            let what = format!("set.\"{key}\"");
            set_dotted(&mut fixed, key, value.clone()).map_err(|m| spec.err(&what, m))?;
            check_alone(&spec, &base_table, key, value, &what)?;
        }
        if let Some(r) = &rungs {
            let last = *r.epochs.last().expect("at least 2 rungs");
            set_dotted(&mut fixed, "train.epochs", toml::Value::Integer(last as i64))
                .map_err(|m| spec.err("halving", m))?;
        }
        let combos = match spec.random {
            Some(random) => super::expand::random(&spec, random),
            None => super::expand::grid(&spec),
        };
        for key in spec.vary.keys() {
            let what = format!("vary.\"{key}\"");
            for value in super::expand::distinct(combos.iter().map(|c| &c[key])) {
                check_alone(&spec, &fixed, key, value, &what)?;
            }
        }
        let mut trials = Vec::with_capacity(combos.len());
        for (index, values) in combos.into_iter().enumerate() {
            let mut table = fixed.clone();
            for (key, value) in &values {
                set_dotted(&mut table, key, value.clone()).map_err(|m| spec.err(format!("vary.\"{key}\""), m))?;
            }
            table.insert("title".into(), toml::Value::String(format!("{} #{index:03}", spec.name)));
            let text = toml::to_string(&table).expect("a TOML table serialises");
            let preset = Preset::from_toml(&text, &format!("{}: trial {index}", spec.origin))?;
            trials.push(Trial { index, values, preset });
        }
        Ok(Self { spec, trials, rungs })
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
    let segments: Vec<&str> = key.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(format!("`{key}` is not a dotted key such as `train.learning_rate`"));
    }
    let (last, parents) = segments.split_last().expect("split gives one segment at least");
    let mut here = Slot::Table(table);
    for (i, segment) in parents.iter().enumerate() {
        let path = segments[..=i].join(".");
        here = match here.child(segment) {
            Some(toml::Value::Table(t)) => Slot::Table(t),
            Some(toml::Value::Array(a)) => Slot::Array(a),
            Some(_) => return Err(format!("`{path}` is a value, not a table or list, in the preset")),
            None => return Err(format!("the preset has no `{path}` to set `{key}` in")),
        };
    }
    match here {
        Slot::Table(t) => {
            t.insert((*last).to_string(), value);
            Ok(())
        }
        Slot::Array(a) => {
            let len = a.len();
            let slot =
                last.parse::<usize>().ok().and_then(|i| a.get_mut(i)).ok_or_else(|| {
                    format!("`{last}` is not an index of the {len}-element list `{}`", parents.join("."))
                })?;
            *slot = value;
            Ok(())
        }
    }
}

/// Where a dotted key's walk stands: in a table or in an array.
enum Slot<'a> {
    Table(&'a mut toml::Table),
    Array(&'a mut Vec<toml::Value>),
}

impl<'a> Slot<'a> {
    fn child(self, segment: &str) -> Option<&'a mut toml::Value> {
        match self {
            Slot::Table(t) => t.get_mut(segment),
            Slot::Array(a) => segment.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        }
    }
}

/// Sets one key on `table` and reads the result as a preset: its error names the sweep file's
/// key (`what`) with the preset's reason.
fn check_alone(spec: &SweepSpec, table: &toml::Table, key: &str, value: &toml::Value, what: &str) -> Result<()> {
    let mut table = table.clone();
    set_dotted(&mut table, key, value.clone()).map_err(|m| spec.err(what, m))?;
    let text = toml::to_string(&table).expect("a TOML table serialises");
    // the line numbers are the generated preset's, not the sweep file's: leave them out
    let unlined = |m: &str| m.rfind(" (line ").map_or(m, |at| &m[..at]).to_string();
    Preset::from_toml(&text, "trial").map(drop).map_err(|e| match e {
        Error::Config { key: k, message, .. } if k.is_empty() || k == key => {
            spec.err(what, format!("{} (value {value})", unlined(&message)))
        }
        Error::Config { key: k, message, .. } => {
            spec.err(what, format!("`{k}`: {} (value {value})", unlined(&message)))
        }
        other => spec.err(what, other.to_string()),
    })
}

/// Trials a spec plans (grid product or random samples), saturating.
fn count_trials(spec: &SweepSpec) -> usize {
    match spec.random {
        Some(r) => r.samples,
        None => spec.vary.values().map(super::expand::grid_len).fold(1usize, usize::saturating_mul),
    }
}

/// Rung r trains `min_epochs * eta^r` epochs; each rung keeps `ceil(n / eta)` of the one before.
fn rungs_of(h: HalvingSpec, trials: usize) -> Rungs {
    let epochs = (0..h.rungs).map(|r| h.min_epochs.saturating_mul(h.eta.saturating_pow(r as u32))).collect();
    let mut keep = vec![trials];
    for _ in 1..h.rungs {
        keep.push(super::rank::keep_count(*keep.last().expect("one rung at least"), h.eta));
    }
    Rungs { epochs, keep }
}

/// The most epochs a halving sweep's last rung may train.
const MAX_HALVING_EPOCHS: usize = 10_000;

/// Validates what a spec says without its base preset (`SweepSpec::from_toml`).
pub(super) fn validate_spec(spec: &SweepSpec) -> Result<()> {
    if spec.name.trim().is_empty() {
        return Err(spec.err("name", "give the sweep a name"));
    }
    for key in spec.set.keys() {
        if matches!(key.as_str(), "title" | "train.threads") {
            return Err(spec.err(format!("set.\"{key}\""), "is chosen by the sweep (trial titles; the thread split)"));
        }
        if key == "train.epochs" && spec.halving.is_some() {
            return Err(
                spec.err("set.\"train.epochs\"", "under [halving] the rungs set the epochs (min_epochs * eta^rung)")
            );
        }
    }
    if spec.vary.is_empty() {
        return Err(spec.err(
            "vary",
            "give at least one key to vary, e.g. \"train.learning_rate\" = { log = [1e-3, 1e-1], count = 3 }",
        ));
    }
    for (key, axis) in &spec.vary {
        let what = format!("vary.\"{key}\"");
        match key.as_str() {
            "title" => return Err(spec.err(what, "trials are titled `<name> #NNN`; vary something else")),
            "train.threads" => {
                return Err(spec.err(what, "threads never change a run's numbers; `-j` splits the cores among trials"))
            }
            "train.epochs" if spec.halving.is_some() => {
                return Err(spec.err(what, "under [halving] the rungs set the epochs (min_epochs * eta^rung)"))
            }
            _ => {}
        }
        super::expand::check_axis(axis, spec.random.is_some()).map_err(|m| spec.err(what, m))?;
    }
    if let Some(r) = spec.random {
        if r.samples == 0 || r.samples > MAX_TRIALS {
            return Err(spec.err("random.samples", format!("{} samples: give 1 to {MAX_TRIALS}", r.samples)));
        }
    } else if count_trials(spec) > MAX_TRIALS {
        return Err(spec.err("vary", format!("the grid has {} trials; at most {MAX_TRIALS}", count_trials(spec))));
    }
    if let Some(h) = spec.halving {
        if h.eta < 2 {
            return Err(spec.err("halving.eta", format!("{}: keep 1/eta per rung needs eta >= 2", h.eta)));
        }
        if h.rungs < 2 {
            return Err(spec.err("halving.rungs", format!("{}: halving needs 2 rungs or more", h.rungs)));
        }
        if h.min_epochs == 0 {
            return Err(spec.err("halving.min_epochs", "the first rung trains at least 1 epoch"));
        }
        let last = u32::try_from(h.rungs - 1)
            .ok()
            .and_then(|r| h.eta.checked_pow(r))
            .and_then(|f| f.checked_mul(h.min_epochs));
        if last.is_none_or(|e| e > MAX_HALVING_EPOCHS) {
            return Err(spec.err(
                "halving.rungs",
                format!("the last rung would train min_epochs * eta^(rungs - 1) > {MAX_HALVING_EPOCHS} epochs"),
            ));
        }
    }
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
    format!("{}_{}", crate::record::timestamp(), crate::record::slug(name))
}
