//! `gradlab sweep …`: plan, run and resume local sweeps (core part); status, cancel, advance and
//! the Slurm submissions (Slurm part, at the end of this file).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use gradlab::sweep::{LocalOptions, LocalSweep, Metric, Plan, SweepEvent, SweepStatus, SweepSummary, ThreadSplit};
use gradlab::train::RunStatus;

/// `gradlab sweep FILE`: the trials, the rungs, the thread split and the memory estimate.
pub fn plan(file: &Path, parallel: Option<usize>) -> anyhow::Result<()> {
    let plan = Plan::load(file)?;
    let mode = match plan.spec.random {
        Some(r) => format!("{} random samples (seed {})", r.samples, r.seed),
        None => "a grid".into(),
    };
    println!(
        "{} ({}): {} trials, {mode} over {}; ranked by {}",
        plan.spec.name,
        file.display(),
        plan.trials.len(),
        plan.varied_keys().join(", "),
        plan.metric().key()
    );
    for t in &plan.trials {
        println!("  #{:03}  {}", t.index, t.describe());
    }
    match &plan.rungs {
        Some(r) => println!(
            "rungs: {} epochs for {} trials (the best 1/{} go on)",
            list(&r.epochs),
            list(&r.keep),
            plan.spec.halving.map_or(2, |h| h.eta)
        ),
        None => println!(
            "no rungs: every trial trains its {} epochs",
            plan.trials.first().map_or(0, |t| t.preset.train.epochs)
        ),
    }
    let split = ThreadSplit::new(gradlab::train::cores(), parallel.unwrap_or(1));
    println!("{}", describe_split(&split));
    if let Some(first) = plan.trials.first() {
        println!("{}", memory(&first.preset, split.parallel(), &format!("{}: trial 0", file.display()))?);
    }
    Ok(())
}

fn list(v: &[usize]) -> String {
    v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn describe_split(split: &ThreadSplit) -> String {
    format!(
        "threads: {} cores, {} trial{} at once with {} threads",
        split.budget,
        split.parallel(),
        if split.parallel() == 1 { "" } else { "s" },
        list(&split.slots)
    )
}

/// One trial's estimate times the trials at once, against the limit: per-trial checks do not
/// add up, so the sweep checks the sum.
fn memory(preset: &gradlab::Preset, parallel: usize, origin: &str) -> anyhow::Result<String> {
    let Some(estimate) = gradlab::budget::check(preset, origin)? else {
        return Ok("memory not estimated: the data's size is known only once it is read".into());
    };
    let (limit, limit_text) = gradlab::budget::limit(preset);
    let total = estimate.peak() * parallel as f64;
    let fmt = gradlab::budget::format_bytes;
    if total > limit {
        bail!(
            "{origin}: {parallel} trials at once need about {} ({} each) but {limit_text}; use a smaller -j",
            fmt(total),
            fmt(estimate.peak())
        );
    }
    Ok(format!(
        "memory: {} per trial, {} for {parallel} at once, of {} available",
        fmt(estimate.peak()),
        fmt(total),
        fmt(limit)
    ))
}

/// Before any thread starts: candle's element-wise pool is process-wide, so trials side by side
/// would each fan out over every core; one thread each keeps them within their slots.
fn one_candle_thread(parallel: usize) {
    if parallel > 1 && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// `gradlab sweep run FILE [-j N]`: the whole sweep here, N trials at a time.
pub fn run_local(file: &Path, parallel: Option<usize>, runs_dir: &Path, quiet: bool) -> anyhow::Result<()> {
    let plan = Plan::load(file)?;
    let parallel = parallel.unwrap_or(1);
    let split = ThreadSplit::new(gradlab::train::cores(), parallel);
    if let Some(first) = plan.trials.first() {
        memory(&first.preset, split.parallel(), &format!("{}: trial 0", file.display()))?;
    }
    one_candle_thread(split.parallel());
    let sweep = LocalSweep::start(runs_dir, plan, LocalOptions::headless(parallel))?;
    follow(&sweep, &split, quiet)
}

/// `gradlab sweep resume DIR [-j N]`: a stopped or interrupted local sweep, where it was.
pub fn resume_local(dir: &Path, parallel: Option<usize>, quiet: bool) -> anyhow::Result<()> {
    let state = gradlab::sweep::SweepState::read(dir)?;
    let parallel = parallel.unwrap_or(state.parallel.max(1));
    let split = ThreadSplit::new(gradlab::train::cores(), parallel);
    one_candle_thread(split.parallel());
    let sweep = LocalSweep::resume(dir, LocalOptions::headless(parallel))?;
    follow(&sweep, &split, quiet)
}

/// Prints a local sweep's events until it ends, then its table and throughput.
fn follow(sweep: &LocalSweep, split: &ThreadSplit, quiet: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut ended = 0usize;
    let mut failed = vec![];
    while let Some(event) = sweep.recv() {
        match event {
            SweepEvent::Started { dir, trials, rungs } => {
                println!("sweep {}: {trials} trials, {rungs} rung(s); {}", dir.display(), describe_split(split));
            }
            SweepEvent::TrialStarted { trial, rung, run_dir, threads } if !quiet => {
                let dir = run_dir.map_or_else(String::new, |d| format!(" → {}", d.display()));
                println!("trial {trial} started (rung {rung}, {threads} threads){dir}");
            }
            SweepEvent::TrialEpoch { trial, epoch, epochs, validation_loss, validation_accuracy } if !quiet => {
                println!(
                    "  trial {trial} epoch {epoch}/{epochs}: val loss {validation_loss:.4} acc {:.2}%",
                    100.0 * validation_accuracy
                );
            }
            SweepEvent::TrialStarted { .. } | SweepEvent::TrialEpoch { .. } => {}
            SweepEvent::TrialEnded { trial, status, run_dir, error } => {
                if status == RunStatus::Completed {
                    ended += 1;
                }
                let dir = run_dir.map_or_else(String::new, |d| format!(" ({})", d.display()));
                match &error {
                    Some(e) => println!("trial {trial} failed{dir}: {e}"),
                    None => println!("trial {trial} {}{dir}", status.title()),
                }
                if status == RunStatus::Failed {
                    failed.push(trial);
                }
            }
            SweepEvent::RungEnded { rung, promoted, pruned } => {
                ended += pruned.len();
                println!("rung {rung} ended: trials {} go on; {} pruned", list(&promoted), list(&pruned));
            }
            SweepEvent::Failed(e) => bail!("the sweep failed: {e}"),
            SweepEvent::Finished(summary) => {
                print_table(&summary);
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{ended} trials in {secs:.2} s: {:.1} trials/min; {}",
                    ended as f64 * 60.0 / secs.max(1e-9),
                    best_line(&summary)
                );
                if summary.status != SweepStatus::Completed {
                    bail!(
                        "the sweep is {}; continue it with `gradlab sweep resume {}`",
                        summary.status.title(),
                        sweep.dir().display()
                    );
                }
                if !failed.is_empty() {
                    bail!("trial(s) {} failed (see above)", list(&failed));
                }
                return Ok(());
            }
        }
    }
    Err(anyhow::anyhow!("the sweep's thread ended unexpectedly")).context("sweep")
}

/// `best trial 2 (93.10%)`, or by loss `best trial 2 (val loss 0.1234)`.
fn best_line(summary: &SweepSummary) -> String {
    let Some(best) = summary.best else {
        return "no trial has a result".into();
    };
    let metric = summary.trials.get(best).and_then(|t| t.metric).unwrap_or(f64::NAN);
    match summary.metric {
        Metric::ValidationAccuracy => format!("best trial {best} ({:.2}%)", 100.0 * metric),
        Metric::ValidationLoss => format!("best trial {best} (val loss {metric:.4})"),
    }
}

fn print_table(summary: &SweepSummary) {
    println!(
        "{:>5}  {:11} {:>9} {:>9}  values",
        "trial",
        "status",
        "epochs",
        summary.metric.key().trim_start_matches("validation_")
    );
    for t in &summary.trials {
        let status = match (t.pruned_at, t.status) {
            (Some(r), _) => format!("pruned r{r}"),
            (None, Some(s)) => s.title().to_string(),
            (None, None) => "not run".into(),
        };
        let metric = t.metric.map_or("-".into(), |m| match summary.metric {
            Metric::ValidationAccuracy => format!("{:.2}%", 100.0 * m),
            Metric::ValidationLoss => format!("{m:.4}"),
        });
        let values: Vec<String> = t.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{:>5}  {status:11} {:>9} {metric:>9}  {}",
            t.index,
            format!("{}/{}", t.epochs_completed, t.epochs_planned),
            values.join(" ")
        );
    }
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
    use gradlab::sweep::slurm_run::{self, Advanced, Resumed};
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
        let state = SweepState::read(dir)?;
        let given = args.partition.is_some() || args.time.is_some() || args.cpus.is_some() || args.mem.is_some();
        let options = given.then(|| slurm_options(&state.slurm.clone().unwrap_or_default(), args));
        let cwd = std::env::current_dir().context("reading the current folder")?;
        let submitted = Instant::now();
        match slurm_run::resume(dir, options, args.gradlab.as_deref(), &cwd)? {
            Resumed::Submitted { array, trials } => {
                println!("resubmitted job {array} ({} tasks): trials {trials:?}", trials.len());
            }
            Resumed::Advanced(Advanced::Nothing(status)) => println!("sweep is {}: nothing to do", status.title()),
            Resumed::Advanced(done) => print_advanced(&done),
        }
        if args.wait {
            wait_slurm(dir, submitted)?;
        }
        Ok(())
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
        print_advanced(&slurm_run::advance(dir)?);
        Ok(())
    }

    fn print_advanced(done: &Advanced) {
        match done {
            Advanced::Nothing(status) => println!("sweep is {}: nothing to do", status.title()),
            Advanced::Waiting(n) => println!("the rung still has {n} tasks queued or running"),
            Advanced::Next { rung, array, trials } => {
                println!("rung {} submitted as job {array}: trials {trials:?}", rung + 1);
            }
            Advanced::Completed => println!("sweep completed"),
        }
    }
}
