//! The sweep folder: claimed under `<runs>/sweeps/<id>/` and written once (sweep.toml, plan.json,
//! trials/NNN.toml, a `planned` state.json), and the plan read back from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::{sweep_id, Plan, Rungs, Trial};
use super::spec::{Metric, SweepSpec};
use super::state::{sweeps_dir, SweepState};
use crate::config::Preset;
use crate::error::{Error, Result};

/// plan.json: what a reader of the folder needs without planning again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub id: String,
    pub name: String,
    pub metric: Metric,
    /// The varied keys, in order.
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

impl PlanFile {
    pub fn read(sweep_dir: &Path) -> Result<Self> {
        let path = sweep_dir.join("plan.json");
        let text = crate::record::read_text_capped(&path, crate::record::MAX_JSON_BYTES)?;
        let file: Self = serde_json::from_str(&text).map_err(|e| Error::format(&path, e.to_string()))?;
        if let Some(r) = &file.rungs {
            // rung r is read as epochs[r] and keep[r]: a corrupt file must not index past either
            if r.epochs.is_empty() || r.epochs.len() != r.keep.len() || r.epochs.contains(&0) {
                let what = format!("rungs: {} epoch counts and {} keep counts", r.epochs.len(), r.keep.len());
                return Err(Error::format(&path, what));
            }
        }
        Ok(file)
    }
}

/// A trial's preset file in the sweep folder.
pub fn trial_file(sweep_dir: &Path, index: usize) -> PathBuf {
    sweep_dir.join("trials").join(format!("{index:03}.toml"))
}

/// Claims `<runs_dir>/sweeps/<id>/` (create_dir: two sweeps started in the same second get
/// different ids) and writes sweep.toml, trials/NNN.toml, a `planned` state.json and, last,
/// plan.json: a folder without plan.json is not listed as a sweep.
pub fn write_sweep_dir(runs_dir: &Path, plan: &Plan) -> Result<PathBuf> {
    let parent = sweeps_dir(runs_dir);
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let base = sweep_id(&plan.spec.name);
    let (id, dir) = (1..)
        .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
        .find_map(|id| match std::fs::create_dir(parent.join(&id)) {
            Ok(()) => Some(Ok((id.clone(), parent.join(&id)))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
            Err(e) => Some(Err(Error::io(parent.join(&id), e))),
        })
        .expect("some suffix is free")?;
    let trials_dir = dir.join("trials");
    std::fs::create_dir_all(&trials_dir).map_err(|e| Error::io(&trials_dir, e))?;
    crate::record::write_atomic(&dir.join("sweep.toml"), plan.spec.text.as_bytes())?;
    for t in &plan.trials {
        t.preset.save(&trial_file(&dir, t.index))?;
    }
    // trials run with paths relative to where the sweep was started; the runs folder is kept
    // absolute so a Slurm job or a later resume from elsewhere finds it
    let runs_dir = std::path::absolute(runs_dir).map_err(|e| Error::io(runs_dir, e))?;
    SweepState { id: id.clone(), runs_dir, ..SweepState::default() }.write(&dir)?;
    let file = PlanFile {
        id,
        name: plan.spec.name.clone(),
        metric: plan.spec.metric,
        keys: plan.varied_keys(),
        trials: plan
            .trials
            .iter()
            .map(|t| PlanTrial {
                index: t.index,
                values: t.values.iter().map(|(k, v)| (k.clone(), json_of(v))).collect(),
                title: t.preset.title.clone(),
            })
            .collect(),
        rungs: plan.rungs.clone(),
    };
    let json = serde_json::to_string_pretty(&file).expect("a plan serialises");
    crate::record::write_atomic(&dir.join("plan.json"), json.as_bytes())?;
    Ok(dir)
}

/// A TOML value as JSON (datetimes, which no key varies, as their text).
pub fn json_of(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        other => serde_json::to_value(other).unwrap_or(serde_json::Value::Null),
    }
}

/// The plan of a sweep folder: its sweep.toml, plan.json and the trial presets as written (a base
/// preset changed since does not change a sweep under way).
pub fn read_plan(sweep_dir: &Path) -> Result<Plan> {
    let file = PlanFile::read(sweep_dir)?;
    let spec_path = sweep_dir.join("sweep.toml");
    let text = crate::record::read_text_capped(&spec_path, super::spec::MAX_SWEEP_BYTES)?;
    let spec = SweepSpec::from_toml(&text, &spec_path.display().to_string(), sweep_dir)?;
    let plan_path = sweep_dir.join("plan.json");
    let trials = file
        .trials
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.index != i {
                return Err(Error::format(&plan_path, format!("trial {i} is numbered {}", t.index)));
            }
            let values = t
                .values
                .iter()
                .map(|(k, v)| {
                    toml::Value::try_from(v)
                        .map(|v| (k.clone(), v))
                        .map_err(|e| Error::format(&plan_path, format!("trial {i}: `{k}`: {e}")))
                })
                .collect::<Result<_>>()?;
            Ok(Trial { index: i, values, preset: Preset::load(&trial_file(sweep_dir, i))? })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Plan { spec, trials, rungs: file.rungs })
}
