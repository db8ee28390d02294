//! Driving a sweep on Slurm: submit its first rung, advance rung by rung (what the advance job
//! runs), cancel. Each step holds state.lock across its read, its sbatch/scancel calls and its
//! write, so an advance job and a `sweep cancel` never interleave.

use std::path::{Path, PathBuf};

use super::slurm::{self, RungJob};
use super::{rank, read_plan, trial_runs, write_sweep_dir, Mode, Plan, SlurmJob, SlurmSpec};
use super::{SweepState, SweepStatus, SweepSummary};
use crate::error::{Error, Result};
use crate::train::RunStatus;

/// What `submit` did.
#[derive(Debug, Clone)]
pub struct Submission {
    pub dir: PathBuf,
    pub id: String,
    /// Rung 0's array job and the advance job after it.
    pub array: String,
    pub advance: String,
    pub tasks: usize,
}

/// What `advance` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Advanced {
    /// The sweep had already ended (completed, cancelled): nothing to do.
    Nothing(SweepStatus),
    /// The rung still has this many tasks queued or running (an advance run by hand too early).
    Waiting(usize),
    /// The next rung's array was submitted, with these trials.
    Next { rung: usize, array: String, trials: Vec<usize> },
    /// The last rung ended: summary.json says `completed`.
    Completed,
}

/// Writes the sweep folder under `runs_dir` and submits rung 0: one array task per trial and
/// the advance job after it. `chdir` is where the tasks start (relative data paths resolve
/// from it). The runs folder and the binary are made absolute: the jobs run elsewhere.
pub fn submit(plan: &Plan, runs_dir: &Path, gradlab: &Path, chdir: &Path, options: &SlurmSpec) -> Result<Submission> {
    std::fs::create_dir_all(runs_dir).map_err(|e| Error::io(runs_dir, e))?;
    let runs_dir = std::path::absolute(runs_dir).map_err(|e| Error::io(runs_dir, e))?;
    let gradlab = std::path::absolute(gradlab).map_err(|e| Error::io(gradlab, e))?;
    let chdir = std::path::absolute(chdir).map_err(|e| Error::io(chdir, e))?;
    let dir = write_sweep_dir(&runs_dir, plan)?;
    let _lock = SweepState::lock(&dir)?;
    let mut state = SweepState::read(&dir).unwrap_or_default();
    state.id = folder_id(&dir);
    state.mode = Mode::Slurm;
    state.status = SweepStatus::Running;
    state.rung = 0;
    state.active = plan.trials.iter().map(|t| t.index).collect();
    state.slurm = Some(options.clone());
    state.runs_dir = runs_dir;
    state.gradlab = Some(gradlab);
    state.started_at = crate::record::timestamp();
    // a failed first sbatch leaves a folder that says Slurm, so `sweep resume --slurm` takes it
    state.write(&dir)?;
    let trials = state.active.clone();
    let job = submit_trials(&dir, plan, &mut state, &trials, &chdir)?;
    Ok(Submission {
        id: state.id.clone(),
        dir,
        array: job.array,
        advance: job.advance.unwrap_or_default(),
        tasks: job.trials.len(),
    })
}

/// Submits `trials` of the state's current rung as an array, and its advance job, recording each
/// job in state.json as soon as it exists, so `sweep cancel` finds it even if the next sbatch
/// fails.
fn submit_trials(dir: &Path, plan: &Plan, state: &mut SweepState, trials: &[usize], chdir: &Path) -> Result<SlurmJob> {
    let options = state.slurm.clone().unwrap_or_default();
    let gradlab = state
        .gradlab
        .clone()
        .ok_or_else(|| Error::format(dir.join("state.json"), "a Slurm sweep without its `gradlab` binary"))?;
    let job = RungJob {
        sweep_id: &state.id,
        rung: state.rung,
        trials,
        until_epoch: plan.until_epoch(state.rung),
        sweep_dir: dir,
        runs_dir: &state.runs_dir,
        gradlab: &gradlab,
        chdir,
        options: &options,
    };
    let array = slurm::submit_rung(&job)?;
    state.slurm_jobs.push(SlurmJob { rung: state.rung, array: array.clone(), trials: trials.to_vec(), advance: None });
    state.write(dir)?;
    // the advance job starts where this process is, so the next rung's tasks start there too
    let advance = slurm::submit_advance(&gradlab, dir, chdir, &array, &options)?;
    let job = state.slurm_jobs.last_mut().expect("just pushed");
    job.advance = Some(advance);
    let job = job.clone();
    state.write(dir)?;
    Ok(job)
}

/// The advance job's work, idempotent: when the current rung's array has ended, rank its trials
/// and submit the survivors as the next rung (with their own advance job), or after the last
/// rung mark the sweep completed. A cancelled or ended sweep is left as it is.
pub fn advance(dir: &Path) -> Result<Advanced> {
    let _lock = lock_slurm(dir)?;
    let mut state = SweepState::read(dir)?;
    if state.mode != Mode::Slurm {
        return Err(Error::Other(format!("{}: this sweep runs locally, not on Slurm", dir.display())));
    }
    if state.status != SweepStatus::Running {
        return Ok(Advanced::Nothing(state.status));
    }
    let arrays: Vec<String> =
        state.slurm_jobs.iter().filter(|j| j.rung == state.rung).map(|j| j.array.clone()).collect();
    // a task that has ended can linger in squeue as COMPLETING (or briefly in a final state)
    // when the afterany dependency has already let this job start: it counts as ended, or
    // nothing would advance the sweep again
    let ended = |state: &str| {
        matches!(
            state,
            "COMPLETING"
                | "COMPLETED"
                | "CANCELLED"
                | "FAILED"
                | "TIMEOUT"
                | "NODE_FAIL"
                | "OUT_OF_MEMORY"
                | "PREEMPTED"
        )
    };
    let queued =
        slurm::queue(&arrays)?.into_iter().filter(|e| e.array_task().is_some() && !ended(e.state.as_str())).count();
    if queued > 0 {
        return Ok(Advanced::Waiting(queued));
    }
    let plan = read_plan(dir)?;
    if state.rung + 1 >= plan.rung_count() {
        state.status = SweepStatus::Completed;
        state.write(dir)?;
        write_summary(dir, state.status)?;
        return Ok(Advanced::Completed);
    }
    let (survivors, _pruned) = rank::promote(&plan, &mut state);
    let chdir = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let job = submit_trials(dir, &plan, &mut state, &survivors, &chdir)?;
    write_summary(dir, state.status)?;
    Ok(Advanced::Next { rung: state.rung, array: job.array, trials: survivors })
}

/// What `resume` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Resumed {
    /// These trials of the current rung were submitted again, as this array.
    Submitted { array: String, trials: Vec<usize> },
    /// The rung had no unfinished trial: what `advance` then did.
    Advanced(Advanced),
}

/// `sweep resume --slurm`: submits the current rung's unfinished trials again (a killed or
/// cancelled trial resumes its run from its last checkpoint, a trial that never started starts),
/// with `options` and `gradlab` when given instead of the sweep's. Refused while any of its jobs
/// is still queued or running; a completed sweep is left as it is.
pub fn resume(dir: &Path, options: Option<SlurmSpec>, gradlab: Option<&Path>, chdir: &Path) -> Result<Resumed> {
    {
        let _lock = lock_slurm(dir)?;
        let mut state = SweepState::read(dir)?;
        if state.mode != Mode::Slurm {
            return Err(Error::Other(format!("{}: this sweep ran locally; resume it without --slurm", dir.display())));
        }
        if state.status == SweepStatus::Completed {
            return Ok(Resumed::Advanced(Advanced::Nothing(state.status)));
        }
        if let Some(busy) = slurm::queue(&job_ids(&state))?.first() {
            return Err(Error::Other(format!(
                "{}: its job {} is still {}; cancel the sweep first or let it run",
                dir.display(),
                busy.job,
                busy.state
            )));
        }
        let plan = read_plan(dir)?;
        let until = plan.until_epoch(state.rung);
        let runs = trial_runs(&state.runs_dir, &state.id);
        let unfinished: Vec<usize> = state
            .active
            .iter()
            .copied()
            .filter(|t| {
                runs.get(t).is_none_or(|(_, info)| {
                    info.status != RunStatus::Completed && until.is_none_or(|e| info.epochs_completed < e)
                })
            })
            .collect();
        if options.is_some() {
            state.slurm = options;
        }
        if let Some(g) = gradlab {
            state.gradlab = Some(std::path::absolute(g).map_err(|e| Error::io(g, e))?);
        }
        state.status = SweepStatus::Running;
        let chdir = std::path::absolute(chdir).map_err(|e| Error::io(chdir, e))?;
        if !unfinished.is_empty() {
            let job = submit_trials(dir, &plan, &mut state, &unfinished, &chdir)?;
            write_summary(dir, state.status)?;
            return Ok(Resumed::Submitted { array: job.array, trials: unfinished });
        }
        state.write(dir)?;
    }
    Ok(Resumed::Advanced(advance(dir)?))
}

/// `sweep cancel`: state `cancelled` first (an advance job that starts now does nothing), then
/// scancel of every array and advance job, then summary.json. Killed trials read `interrupted`
/// and stay resumable; pending ones never get a folder. Returns the job ids cancelled.
pub fn cancel(dir: &Path) -> Result<Vec<String>> {
    let _lock = lock_slurm(dir)?;
    let mut state = SweepState::read(dir)?;
    if state.mode != Mode::Slurm {
        return Err(Error::Other(format!(
            "{}: this sweep runs locally; stop it where it runs (Ctrl-C or the GUI's Stop sweep)",
            dir.display()
        )));
    }
    if state.status == SweepStatus::Completed {
        return Ok(Vec::new());
    }
    state.status = SweepStatus::Cancelled;
    state.write(dir)?;
    let ids = job_ids(&state);
    slurm::cancel(&ids)?;
    write_summary(dir, SweepStatus::Cancelled)?;
    Ok(ids)
}

/// state.lock of a Slurm sweep. A local driver holds the lock for as long as it runs, so a local
/// sweep is refused before waiting for the lock (the callers check the mode again under it).
fn lock_slurm(dir: &Path) -> Result<std::fs::File> {
    if SweepState::read(dir)?.mode != Mode::Slurm {
        return Err(Error::Other(format!(
            "{}: this sweep runs locally, not on Slurm: stop it where it runs (Ctrl-C or the GUI's \
             Stop sweep) and resume it without --slurm",
            dir.display()
        )));
    }
    SweepState::lock(dir)
}

/// Every array and advance job id of the sweep, in submission order.
pub fn job_ids(state: &SweepState) -> Vec<String> {
    state.slurm_jobs.iter().flat_map(|j| std::iter::once(j.array.clone()).chain(j.advance.clone())).collect()
}

fn write_summary(dir: &Path, status: SweepStatus) -> Result<()> {
    let mut summary = SweepSummary::collect(dir)?;
    summary.status = status;
    summary.write(dir)
}

fn folder_id(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}
