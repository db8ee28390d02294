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

pub use slurm_part::{advance, cancel, resume_slurm, run_slurm, status};

/// The Slurm commands, in their own module so their imports stay apart from the local ones.
mod slurm_part {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use anyhow::{bail, Context};
    use gradlab::sweep::slurm_run::{self, Advanced};
    use gradlab::sweep::{list_sweeps, slurm, status, sweeps_dir, trial_runs};
    use gradlab::sweep::{Plan, SlurmSpec, SweepSpec, SweepState, SweepStatus};

    use super::SlurmArgs;

    /// `gradlab sweep run FILE --slurm …`: writes the sweep folder and submits rung 0 and its
    /// advance job; nothing waits here unless `--wait`.
    pub fn run_slurm(file: &Path, runs_dir: &Path, args: &SlurmArgs) -> anyhow::Result<()> {
        let spec = SweepSpec::load(file)?;
        let options = slurm_options(&spec.slurm, args);
        let plan = Plan::new(spec)?;
        let gradlab = match &args.gradlab {
            Some(path) => path.clone(),
            None => std::env::current_exe().context("finding this gradlab binary for the jobs (give --gradlab)")?,
        };
        let cwd = std::env::current_dir().context("reading the current folder")?;
        let submitted = Instant::now();
        let sub = slurm_run::submit(&plan, runs_dir, &gradlab, &cwd, &options)?;
        println!("submitted job {} ({} tasks), then advance job {}", sub.array, sub.tasks, sub.advance);
        println!("sweep folder {}", sub.dir.display());
        println!(
            "follow it: gradlab sweep status {}    cancel it: gradlab sweep cancel {}",
            sub.dir.display(),
            sub.dir.display()
        );
        if args.wait {
            wait_slurm(&sub.dir, submitted)?;
        }
        Ok(())
    }

    /// `[slurm]` from the file with the command's flags over it.
    fn slurm_options(file: &SlurmSpec, args: &SlurmArgs) -> SlurmSpec {
        SlurmSpec {
            partition: args.partition.clone().or_else(|| file.partition.clone()),
            time: args.time.clone().or_else(|| file.time.clone()),
            cpus: args.cpus.or(file.cpus),
            mem: args.mem.clone().or_else(|| file.mem.clone()),
        }
    }

    /// `--wait`: polls the run folders and state.json (no Slurm calls but one squeue per 5 s, to
    /// notice a sweep whose jobs all ended without finishing it) and prints when the first metrics
    /// row appears and when the sweep ends.
    fn wait_slurm(dir: &Path, submitted: Instant) -> anyhow::Result<()> {
        let mut first_metrics = false;
        let mut last_queue_check = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let state = SweepState::read(dir)?;
            if !first_metrics && trial_runs(&state.runs_dir, &state.id).values().any(|(run, _)| has_step_row(run)) {
                first_metrics = true;
                println!("first metrics after {:.1} s", submitted.elapsed().as_secs_f64());
            }
            if state.status != SweepStatus::Running {
                println!("{} after {:.1} s", state.status.title(), submitted.elapsed().as_secs_f64());
                return Ok(());
            }
            if last_queue_check.elapsed() > Duration::from_secs(5) {
                last_queue_check = Instant::now();
                if slurm::queue(&slurm_run::job_ids(&state))?.is_empty()
                    && SweepState::read(dir)?.status == SweepStatus::Running
                {
                    let advance = state.slurm_jobs.last().and_then(|j| j.advance.clone()).unwrap_or_default();
                    bail!(
                        "every job of the sweep has ended but it is still running: see {}",
                        dir.join("slurm").join(format!("advance-{advance}.out")).display()
                    );
                }
            }
        }
    }

    /// Whether a run's metrics.csv has a training step yet (its first few KiB are enough).
    fn has_step_row(run_dir: &Path) -> bool {
        use std::io::Read;
        let mut head = String::new();
        std::fs::File::open(run_dir.join("metrics.csv"))
            .and_then(|f| f.take(16 << 10).read_to_string(&mut head))
            .is_ok_and(|_| head.lines().any(|l| l.starts_with("step,")))
    }

    /// `gradlab sweep resume DIR --slurm …`: resubmits the current rung's unfinished trials.
    pub fn resume_slurm(dir: &Path, args: &SlurmArgs) -> anyhow::Result<()> {
        let _ = args;
        bail!(
            "{}: resuming a Slurm sweep is not supported yet; its trials are ordinary runs: `gradlab resume RUN_DIR` continues one",
            dir.display()
        )
    }

    /// `gradlab sweep status [DIR|ID] [--runs-dir R]`.
    pub fn status(target: Option<&str>, runs_dir: &Path) -> anyhow::Result<()> {
        let dir = match target {
            Some(t) if Path::new(t).join("state.json").is_file() => PathBuf::from(t),
            Some(id) => {
                let dir = sweeps_dir(runs_dir).join(id);
                if !dir.join("state.json").is_file() {
                    bail!("no sweep `{id}`: neither a sweep folder nor a sweep in {}", sweeps_dir(runs_dir).display());
                }
                dir
            }
            None => list_sweeps(runs_dir)
                .into_iter()
                .next()
                .with_context(|| format!("no sweeps in {}", sweeps_dir(runs_dir).display()))?,
        };
        print!("{}", status::sweep_status(&dir)?);
        Ok(())
    }

    /// `gradlab sweep cancel DIR`.
    pub fn cancel(dir: &Path) -> anyhow::Result<()> {
        let ids = slurm_run::cancel(dir)?;
        if ids.is_empty() {
            println!("{}: nothing to cancel", dir.display());
        } else {
            println!("cancelled jobs {}; started trials are resumable runs", ids.join(" "));
        }
        Ok(())
    }

    /// `gradlab sweep advance DIR` (the advance job's command).
    pub fn advance(dir: &Path) -> anyhow::Result<()> {
        match slurm_run::advance(dir)? {
            Advanced::Nothing(status) => println!("sweep is {}: nothing to do", status.title()),
            Advanced::Waiting(n) => println!("the rung still has {n} tasks queued or running"),
            Advanced::Next { rung, array, trials } => {
                println!("rung {} submitted as job {array}: trials {trials:?}", rung + 1);
            }
            Advanced::Completed => println!("sweep completed"),
        }
        Ok(())
    }
}
