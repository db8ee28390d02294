//! `gradlab sweep …`: plan, run and resume local sweeps (core part); status, cancel, advance and
//! the Slurm submissions (Slurm part, at the end of this file).

use std::path::{Path, PathBuf};

use anyhow::bail;

/// `gradlab sweep FILE`: the trials, the rungs, the thread split and the memory estimate.
pub fn plan(file: &Path, parallel: Option<usize>) -> anyhow::Result<()> {
    let _ = (file, parallel);
    bail!("not yet")
}

/// `gradlab sweep run FILE [-j N]`: the whole sweep here, N trials at a time.
pub fn run_local(file: &Path, parallel: Option<usize>, runs_dir: &Path, quiet: bool) -> anyhow::Result<()> {
    let _ = (file, parallel, runs_dir, quiet);
    bail!("not yet")
}

/// `gradlab sweep resume DIR [-j N]`: a stopped or interrupted local sweep, where it was.
pub fn resume_local(dir: &Path, parallel: Option<usize>, quiet: bool) -> anyhow::Result<()> {
    let _ = (dir, parallel, quiet);
    bail!("not yet")
}

// ---- Slurm part -------------------------------------------------------------------------------

/// `sweep run --slurm` / `sweep resume --slurm` settings (flags over the file's `[slurm]`).
#[allow(dead_code)] // read by the Slurm part
#[derive(Debug, Clone, Default)]
pub struct SlurmArgs {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus: Option<usize>,
    pub mem: Option<String>,
    /// The gradlab binary the jobs run (default: this one).
    pub gradlab: Option<PathBuf>,
    /// Poll and print submission → first metrics → done.
    pub wait: bool,
}

/// `gradlab sweep run FILE --slurm …`.
pub fn run_slurm(file: &Path, runs_dir: &Path, args: &SlurmArgs) -> anyhow::Result<()> {
    let _ = (file, runs_dir, args);
    bail!("not yet")
}

/// `gradlab sweep resume DIR --slurm …`: resubmits the current rung's unfinished trials.
pub fn resume_slurm(dir: &Path, args: &SlurmArgs) -> anyhow::Result<()> {
    let _ = (dir, args);
    bail!("not yet")
}

/// `gradlab sweep status [DIR|ID] [--runs-dir R]`.
pub fn status(target: Option<&str>, runs_dir: &Path) -> anyhow::Result<()> {
    let _ = (target, runs_dir);
    bail!("not yet")
}

/// `gradlab sweep cancel DIR`.
pub fn cancel(dir: &Path) -> anyhow::Result<()> {
    let _ = dir;
    bail!("not yet")
}

/// `gradlab sweep advance DIR` (the advance job's command).
pub fn advance(dir: &Path) -> anyhow::Result<()> {
    let _ = dir;
    bail!("not yet")
}
