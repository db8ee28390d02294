//! Sweeps: one preset trained over a grid or a random sample of hyper-parameters, each trial an
//! ordinary run tagged with its sweep (`record::SweepTag`), locally (in-process `Trainer`s, N at
//! a time) or on a Slurm cluster (one `gradlab train` job-array task per trial), optionally with
//! successive halving (rung by rung, the best `1/eta` resumed to the next rung's epochs).
//!
//! ```text
//! runs/sweeps/2026-11-27T23-40-00_spiral-lr/
//!   sweep.toml        the sweep file as given
//!   plan.json         the trials (index + varied values), metric, rungs
//!   trials/NNN.toml   each trial's full preset
//!   state.json        the driver's state (under a lock on state.lock)
//!   summary.json      per-trial figures, the best trial, once a rung or the sweep ends
//!   slurm/            rung-R.sbatch, %A_%a.out (Slurm only)
//! ```
//! The trials' run folders stay in the runs folder (listed, resumed, exported as any run);
//! `list_runs` skips `sweeps/`, which has no summary.json.
//!
//! Public API (what the CLI, the GUI and the Slurm side call):
//! - `Plan::load(path)` = `Plan::new(SweepSpec::load(path)?)`.
//! - `SweepSpec::load(path)` / `SweepSpec::from_toml(text, origin, base_dir)`: parse + validate;
//!   errors name the file and `vary."key"` etc.
//! - `Plan::new(spec)`: the trials (`Trial { index, values, preset }`) in fixed order and the
//!   halving rungs (`Rungs { epochs, keep }`); `plan.until_epoch(rung)`.
//! - `set_dotted(table, key, value)`: the dotted-key setter a trial uses.
//! - `ThreadSplit::new(budget, parallel)`: threads per local slot.
//! - `write_sweep_dir(runs_dir, &plan) -> PathBuf`: claims and fills `<runs>/sweeps/<id>/`.
//! - `read_plan(sweep_dir) -> Plan`: the plan back from a sweep folder (plan.json + trials/);
//!   `PlanFile::read(sweep_dir)`: plan.json alone (ids, values as JSON, rungs);
//!   `trial_file(sweep_dir, i)`: trials/NNN.toml.
//! - `SweepState::{read, write, lock (blocking), try_lock (refuses)}` (state.json, state.lock);
//!   `SweepSummary::{read, write, collect}` (summary.json; `collect` joins plan.json, state.json
//!   and the run folders); `trial_runs(runs_dir, id)`: the trials' run folders by index (via
//!   `list_runs`, so a dead writer reads `interrupted`); `list_sweeps(runs_dir)`: newest first.
//! - `LocalSweep::{start(runs_dir, plan, LocalOptions), resume(sweep_dir, LocalOptions), stop,
//!   try_recv, recv, recv_timeout, dir, is_running}`: events are `SweepEvent`s, ending with one
//!   `Finished(SweepSummary)` (status completed, stopped or failed).
//! - `rank::{metric_of, survivors, keep_count, best, promote}`: the metric of a run; who goes to
//!   the next rung; `promote(&plan, &mut state)` ends a halving rung (the Slurm advance job and
//!   the local driver share it).

mod expand;
mod folder;
mod plan;
pub mod rank;
mod run;
pub mod slurm;
pub mod slurm_run;
mod spec;
mod state;
pub mod status;

pub use folder::{json_of, read_plan, trial_file, write_sweep_dir, PlanFile, PlanTrial};
pub use plan::{set_dotted, sweep_id, Plan, Rungs, ThreadSplit, Trial};
pub use run::{LocalOptions, LocalSweep, SweepEvent};
pub use spec::{Axis, HalvingSpec, Metric, RandomSpec, SlurmSpec, SweepSpec, MAX_TRIALS};
pub use state::{
    list_sweeps, sweeps_dir, trial_runs, Mode, SlurmJob, SweepState, SweepStatus, SweepSummary, TrialSummary,
    STATE_LOCK,
};

#[cfg(test)]
mod tests;
