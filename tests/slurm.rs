//! Sweeps on a real Slurm cluster: `.ci/run` starts a one-node one (.ci/slurm) and sets
//! `GRADLAB_SLURM`. Without it, and outside CI, these tests skip with a note; under either, a
//! missing `sinfo` or a node that is not idle fails them.
//!
//! The tests take turns (`CLUSTER`): two sweeps at once would wait on each other's CPUs. Each
//! scancels its own jobs when it ends, however it ends (`Jobs`). Polls are capped; speed is
//! printed, never asserted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gradlab::record::{list_runs, run_is_locked, RunInfo};
use gradlab::sweep::{slurm, slurm_run, SweepState, SweepStatus, SweepSummary};
use gradlab::train::RunStatus;

static CLUSTER: Mutex<()> = Mutex::new(());

/// The cluster, once no other test here uses it; `None` (skip) where there is none to use.
fn cluster() -> Option<MutexGuard<'static, ()>> {
    let required = std::env::var_os("GRADLAB_SLURM").is_some() || std::env::var_os("CI").is_some();
    let guard = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    // a node still finishing the previous test's jobs reads `completing` or `mixed` for a moment
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = match Command::new("sinfo").args(["-h", "-N", "-o", "%T"]).output() {
            Err(e) => format!("sinfo cannot run ({e})"),
            Ok(out) => {
                let states = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let ready = !states.is_empty() && states.lines().all(|s| s == "idle" || s == "mixed");
                if ready {
                    return Some(guard);
                }
                format!("the nodes are `{states}` {}", String::from_utf8_lossy(&out.stderr).trim())
            }
        };
        if !required {
            eprintln!("note: skipped, no Slurm cluster here: {answer} (.ci/run starts one)");
            return None;
        }
        assert!(Instant::now() < deadline, "GRADLAB_SLURM or CI is set but {answer}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Cancels the sweep's jobs when dropped, so a failed assertion leaves nothing queued.
struct Jobs(PathBuf);

impl Drop for Jobs {
    fn drop(&mut self) {
        if let Ok(state) = SweepState::read(&self.0) {
            let _ = slurm::cancel(&slurm_run::job_ids(&state));
        }
    }
}

fn gradlab(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_gradlab")).current_dir(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "gradlab {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Writes a sweep of 4 learning rates over a built-in preset (and `more` tables) and submits
/// it, `cpus` CPUs a trial.
fn submit(tmp: &Path, builtin: &str, set: &str, more: &str, cpus: usize) -> (PathBuf, Jobs, Instant) {
    let file = tmp.join("sweep.toml");
    let text = format!(
        "name = \"slurm {builtin}\"\nbuiltin = \"{builtin}\"\nmetric = \"validation_accuracy\"\n\
         [set]\n{set}\n[vary]\n\"train.learning_rate\" = {{ log = [1e-3, 1e-1], count = 4 }}\n{more}"
    );
    std::fs::write(&file, text).unwrap();
    let runs = tmp.join("runs");
    let submitted = Instant::now();
    let out = gradlab(
        tmp,
        &[
            "sweep",
            "run",
            "sweep.toml",
            "--slurm",
            "--cpus",
            &cpus.to_string(),
            "--runs-dir",
            "runs",
            "--gradlab",
            env!("CARGO_BIN_EXE_gradlab"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("submitted job") && stdout.contains("(4 tasks)"), "{stdout}");
    let sweeps: Vec<PathBuf> = std::fs::read_dir(runs.join("sweeps")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(sweeps.len(), 1, "{sweeps:?}");
    let dir = sweeps[0].clone();
    let jobs = Jobs(dir.clone());
    (runs, jobs, submitted)
}

/// The CPUs of the cluster's node, as Slurm counts them.
fn node_cpus() -> usize {
    let out = Command::new("sinfo").args(["-h", "-o", "%c"]).output().expect("sinfo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().trim_end_matches('+').parse().unwrap_or_else(|_| panic!("sinfo's CPU count: {text:?}"))
}

fn has_step_row(run: &Path) -> bool {
    std::fs::read_to_string(run.join("metrics.csv")).is_ok_and(|t| t.lines().any(|l| l.starts_with("step,")))
}

/// What the sweep left to read when a poll gives up.
fn diagnose(dir: &Path) -> String {
    let mut text = std::fs::read_to_string(dir.join("state.json")).unwrap_or_default();
    for entry in std::fs::read_dir(dir.join("slurm")).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "out") {
            text += &format!("\n--- {}\n{}", path.display(), std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
    text
}

#[test]
fn a_sweep_runs_as_job_arrays_and_its_advance_job_completes_it() {
    let Some(_cluster) = cluster() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (runs, jobs, submitted) =
        submit(tmp.path(), "spiral_mlp", "\"train.epochs\" = 3\n\"data.samples\" = 300", "", 1);
    let dir = jobs.0.clone();

    // summary.json `completed` is written by the advance job alone: the afterany path is tested
    let mut first_metrics = None;
    loop {
        if first_metrics.is_none() && list_runs(&runs).iter().any(|(run, _)| has_step_row(run)) {
            first_metrics = Some(submitted.elapsed());
        }
        if SweepSummary::read(&dir).is_ok_and(|s| s.status == SweepStatus::Completed) {
            break;
        }
        assert!(submitted.elapsed() < Duration::from_secs(180), "not completed in 180 s:\n{}", diagnose(&dir));
        std::thread::sleep(Duration::from_millis(250));
    }
    let done = submitted.elapsed();
    eprintln!(
        "slurm sweep of 4 trials: submission -> first metrics {:.1} s, -> completed {:.1} s",
        first_metrics.unwrap_or(done).as_secs_f64(),
        done.as_secs_f64()
    );

    let state = SweepState::read(&dir).unwrap();
    let array = state.slurm_jobs[0].array.clone();
    let advance = state.slurm_jobs[0].advance.clone().expect("an advance job");
    let mut trials: Vec<(usize, PathBuf, RunInfo)> = list_runs(&runs)
        .into_iter()
        .map(|(run, info)| {
            let tag = info.sweep.clone().expect("every run is a tagged trial");
            assert_eq!(tag.sweep, state.id);
            assert_eq!(tag.slurm_job, Some(format!("{array}_{}", tag.trial)), "{}", run.display());
            (tag.trial, run, info)
        })
        .collect();
    trials.sort_by_key(|t| t.0);
    assert_eq!(trials.iter().map(|t| t.0).collect::<Vec<_>>(), [0, 1, 2, 3], "one run per trial");
    for (trial, run, info) in &trials {
        assert_eq!(info.status, RunStatus::Completed, "trial {trial}");
        let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        assert_eq!(metrics.lines().filter(|l| l.starts_with("epoch,")).count(), 3, "trial {trial}");
        assert!(dir.join("slurm").join(format!("{array}_{trial}.out")).is_file(), "trial {trial}'s Slurm output");
    }
    let accuracy = |t: &(usize, PathBuf, RunInfo)| t.2.best_validation_accuracy.unwrap();
    let best = trials.iter().fold(&trials[0], |b, t| if accuracy(t) > accuracy(b) { t } else { b });
    let summary = SweepSummary::read(&dir).unwrap();
    assert_eq!(summary.best, Some(best.0), "the best trial is the argmax");

    let status = gradlab(tmp.path(), &["sweep", "status", "--runs-dir", "runs"]);
    let status = String::from_utf8_lossy(&status.stdout);
    for want in [array.as_str(), advance.as_str(), "completed"] {
        assert!(status.contains(want), "{want} missing:\n{status}");
    }
    drop(jobs);
}

#[test]
fn cancel_stops_every_job_and_leaves_started_trials_resumable() {
    let Some(_cluster) = cluster() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // half the node's CPUs a trial: at most three of the four run (two on an even count), the
    // rest wait, whatever the node's size
    let (runs, jobs, submitted) =
        submit(tmp.path(), "mnist_mlp", "\"train.epochs\" = 50", "", (node_cpus() / 2).max(1));
    let dir = jobs.0.clone();
    while !list_runs(&runs).iter().any(|(run, _)| has_step_row(run)) {
        assert!(submitted.elapsed() < Duration::from_secs(180), "no training step in 180 s:\n{}", diagnose(&dir));
        std::thread::sleep(Duration::from_millis(250));
    }
    let state = SweepState::read(&dir).unwrap();
    let ids = slurm_run::job_ids(&state);
    let pending: Vec<usize> = slurm::queue(&ids)
        .unwrap()
        .iter()
        .filter(|e| e.state == "PENDING")
        .filter_map(|e| e.array_task().map(|(_, task)| task))
        .collect();

    let out = gradlab(tmp.path(), &["sweep", "cancel", dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("cancelled jobs"));
    let cancelled = Instant::now();
    while !slurm::queue(&ids).unwrap().is_empty() {
        assert!(cancelled.elapsed() < Duration::from_secs(60), "jobs still queued 60 s after cancel");
        std::thread::sleep(Duration::from_millis(250));
    }
    // the killed processes' locks go with them; give the last one a moment to be reaped
    std::thread::sleep(Duration::from_millis(500));

    let started = list_runs(&runs);
    assert!(!started.is_empty(), "a trial had started");
    for (run, info) in &started {
        let trial = info.sweep.as_ref().unwrap().trial;
        assert_eq!(info.status, RunStatus::Interrupted, "trial {trial} ({})", run.display());
        assert_eq!(run_is_locked(run), Some(false), "trial {trial}'s run.lock is free: resumable");
        assert!(!pending.contains(&trial), "trial {trial} was pending at the cancel, yet has a run");
    }
    assert!(!pending.is_empty(), "some trials waited for a CPU");
    assert_eq!(SweepSummary::read(&dir).unwrap().status, SweepStatus::Cancelled);
    let status = gradlab(tmp.path(), &["sweep", "status", dir.to_str().unwrap()]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.lines().next().unwrap().contains("cancelled"), "{status}");

    // resume: the killed trials continue in their own runs, as tasks of a new array
    let out = gradlab(tmp.path(), &["sweep", "resume", dir.to_str().unwrap(), "--slurm"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("resubmitted job") && stdout.contains("(4 tasks)"), "{stdout}");
    let array = SweepState::read(&dir).unwrap().slurm_jobs.last().unwrap().array.clone();
    let (run, info) = &started[0];
    let trial = info.sweep.as_ref().unwrap().trial;
    let resumed = Instant::now();
    loop {
        let now = RunInfo::read(run).unwrap();
        let job = now.sweep.and_then(|t| t.slurm_job);
        if job == Some(format!("{array}_{trial}")) && run_is_locked(run) == Some(true) {
            break;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(180),
            "trial {trial} not resumed in 180 s:\n{}",
            diagnose(&dir)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut tagged: Vec<usize> = list_runs(&runs).iter().map(|(_, i)| i.sweep.as_ref().unwrap().trial).collect();
    let count = tagged.len();
    tagged.sort_unstable();
    tagged.dedup();
    assert_eq!(tagged.len(), count, "one run per trial after the resume");
    gradlab(tmp.path(), &["sweep", "cancel", dir.to_str().unwrap()]);
    drop(jobs);
}

#[test]
fn halving_on_slurm_submits_the_next_rung_from_the_advance_job() {
    let Some(_cluster) = cluster() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let halving = "[halving]\neta = 2\nrungs = 2\nmin_epochs = 1\n";
    let (runs, jobs, submitted) = submit(tmp.path(), "spiral_mlp", "\"data.samples\" = 300", halving, 1);
    let dir = jobs.0.clone();
    while !SweepSummary::read(&dir).is_ok_and(|s| s.status == SweepStatus::Completed) {
        assert!(submitted.elapsed() < Duration::from_secs(180), "not completed in 180 s:\n{}", diagnose(&dir));
        std::thread::sleep(Duration::from_millis(250));
    }
    let state = SweepState::read(&dir).unwrap();
    assert_eq!(state.slurm_jobs.len(), 2, "one array per rung");
    let second = &state.slurm_jobs[1];
    assert_eq!((second.rung, second.trials.len()), (1, 2), "the best half goes on");
    assert!(dir.join("slurm/rung-1.sbatch").is_file());
    let runs = list_runs(&runs);
    assert_eq!(runs.len(), 4, "a promoted trial continues in its own run");
    for (run, info) in &runs {
        let tag = info.sweep.as_ref().unwrap();
        if second.trials.contains(&tag.trial) {
            assert_eq!((info.status, info.epochs_completed), (RunStatus::Completed, 2), "{}", run.display());
            assert_eq!(tag.slurm_job, Some(format!("{}_{}", second.array, tag.trial)), "the tag follows the task");
        } else {
            assert_eq!((info.status, info.epochs_completed), (RunStatus::Stopped, 1), "{}", run.display());
            assert_eq!(state.pruned.get(&tag.trial), Some(&0));
        }
    }
    drop(jobs);
}
