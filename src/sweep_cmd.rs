//! The `gradlab sweep …` command lines and `gradlab train --sweep-trial` (what a Slurm task runs),
//! kept out of main.rs; the work itself is in `sweep_cli` and the library's `sweep` module.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use gradlab::train::{RunOrigin, RunRequest, RunStatus, WorkerOptions};
use gradlab::Preset;

use crate::sweep_cli;

#[derive(Subcommand)]
pub enum SweepCmd {
    /// Run a sweep: here, N trials at a time, or as Slurm job arrays (--slurm).
    Run {
        file: PathBuf,
        /// Trials at once (local): the cores are split among them.
        #[arg(long, short = 'j', conflicts_with = "slurm")]
        parallel: Option<usize>,
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Print the trials' ends only.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        slurm: SlurmFlags,
    },
    /// Continue a stopped or interrupted sweep where it was.
    Resume {
        dir: PathBuf,
        #[arg(long, short = 'j', conflicts_with = "slurm")]
        parallel: Option<usize>,
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        slurm: SlurmFlags,
    },
    /// The trials of a sweep (default: the newest) with the queue, run folders and figures.
    Status {
        /// A sweep folder or id.
        target: Option<String>,
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
    },
    /// Cancel a sweep's Slurm jobs; started trials stay resumable.
    Cancel { dir: PathBuf },
    /// Rank the ended rung and submit the next (run by the sweep's own Slurm job).
    Advance { dir: PathBuf },
}

#[derive(clap::Args)]
pub struct SlurmFlags {
    /// Submit to Slurm: one job array per rung, a trial per task.
    #[arg(long)]
    slurm: bool,
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// Time limit per trial (Slurm's format, e.g. 00:30:00).
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    /// CPUs per trial.
    #[arg(long, requires = "slurm")]
    cpus: Option<usize>,
    /// Memory per trial (e.g. 4G).
    #[arg(long, requires = "slurm")]
    mem: Option<String>,
    /// The gradlab binary the jobs run (default: this one).
    #[arg(long, requires = "slurm")]
    gradlab: Option<PathBuf>,
    /// Wait and print submission → first metrics → done.
    #[arg(long, requires = "slurm")]
    wait: bool,
}

impl SlurmFlags {
    fn args(self) -> sweep_cli::SlurmArgs {
        sweep_cli::SlurmArgs {
            partition: self.partition,
            time: self.time,
            cpus: self.cpus,
            mem: self.mem,
            gradlab: self.gradlab,
            wait: self.wait,
        }
    }
}

/// Runs a `gradlab sweep <command>`.
pub fn run(action: SweepCmd) -> anyhow::Result<()> {
    match action {
        SweepCmd::Run { file, slurm, runs_dir, .. } if slurm.slurm => {
            sweep_cli::run_slurm(&file, &runs_dir, &slurm.args())
        }
        SweepCmd::Run { file, parallel, runs_dir, quiet, .. } => {
            sweep_cli::run_local(&file, parallel, &runs_dir, quiet)
        }
        SweepCmd::Resume { dir, slurm, .. } if slurm.slurm => sweep_cli::resume_slurm(&dir, &slurm.args()),
        SweepCmd::Resume { dir, parallel, quiet, .. } => sweep_cli::resume_local(&dir, parallel, quiet),
        SweepCmd::Status { target, runs_dir } => sweep_cli::status(target.as_deref(), &runs_dir),
        SweepCmd::Cancel { dir } => sweep_cli::cancel(&dir),
        SweepCmd::Advance { dir } => sweep_cli::advance(&dir),
    }
}

/// `train --sweep-trial ID/N`: trial N of sweep ID in the runs folder. Its run tagged (ID, N):
/// none → a fresh run so tagged; completed → nothing to do; else resumed. One command line thus
/// serves every rung and survives a requeue. Under Slurm the tag carries the array task.
pub fn train_trial(
    preset: Preset,
    trial: &str,
    runs_dir: PathBuf,
    until_epoch: Option<usize>,
    quiet: bool,
) -> anyhow::Result<()> {
    let (id, n) = trial
        .rsplit_once('/')
        .and_then(|(id, n)| Some((id, n.parse::<usize>().ok()?)))
        .filter(|(id, _)| !id.is_empty())
        .with_context(|| {
            format!("--sweep-trial `{trial}`: expected SWEEP_ID/TRIAL_INDEX, e.g. 2026-11-27T23-40-00_lr/3")
        })?;
    let slurm_job = match (std::env::var("SLURM_ARRAY_JOB_ID"), std::env::var("SLURM_ARRAY_TASK_ID")) {
        (Ok(job), Ok(task)) => Some(format!("{job}_{task}")),
        _ => None,
    };
    let mut options = WorkerOptions::headless(Some(runs_dir.clone()));
    options.sweep = Some(gradlab::record::SweepTag { sweep: id.to_string(), trial: n, slurm_job });
    options.until_epoch = until_epoch;
    let origin = match gradlab::sweep::trial_runs(&runs_dir, id).remove(&n) {
        None => RunOrigin::Fresh,
        Some((dir, info)) if info.status == RunStatus::Completed => {
            println!("trial {n} of {id} has completed ({}): nothing to do", dir.display());
            return Ok(());
        }
        Some((_, info)) if until_epoch.is_some_and(|e| info.epochs_completed >= e) => {
            println!("trial {n} of {id} has reached epoch {}: nothing to do", info.epochs_completed);
            return Ok(());
        }
        Some((dir, _)) => RunOrigin::Resume(dir),
    };
    let preset = match &origin {
        // the run's own preset, with this command's threads
        RunOrigin::Resume(dir) => {
            let mut own = Preset::load(&dir.join("preset.toml"))?;
            own.train.threads = preset.train.threads;
            own.train.max_memory_gb = preset.train.max_memory_gb;
            own
        }
        _ => preset,
    };
    crate::drive(RunRequest { preset, origin }, options, quiet)
}
