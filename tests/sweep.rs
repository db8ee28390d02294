//! Sweeps trained for real on the embedded spiral: the plan print, a local sweep's run folders
//! and summary, successive halving's promotion (exact continuation), and stop then resume.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gradlab::record::{list_runs, RunInfo};
use gradlab::sweep::{LocalOptions, LocalSweep, Plan, SweepEvent, SweepStatus, SweepSummary};
use gradlab::train::{RunOrigin, RunRequest, RunStatus};
use gradlab::Preset;

fn gradlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gradlab"))
}

fn sweep_file(dir: &Path, text: &str) -> PathBuf {
    let file = dir.join("sweep.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// Four spiral trials of 300 samples: small enough to train in well under a second each.
fn spiral(vary: &str, extra: &str) -> String {
    format!(
        "name = \"spiral test\"\nbuiltin = \"spiral_mlp\"\n[set]\n\"data.samples\" = 300\n\"train.epochs\" = 2\n\
         [vary]\n{vary}\n{extra}"
    )
}

/// Events until the sweep's end: its summary.
fn finish(sweep: &LocalSweep, mut on: impl FnMut(&SweepEvent, &LocalSweep)) -> SweepSummary {
    loop {
        let event = sweep.recv_timeout(Duration::from_secs(600)).expect("the sweep went quiet");
        on(&event, sweep);
        match event {
            SweepEvent::Finished(summary) => return summary,
            SweepEvent::Failed(e) => panic!("{e}"),
            _ => {}
        }
    }
}

fn runs_by_trial(runs_dir: &Path) -> Vec<(PathBuf, RunInfo)> {
    let mut runs = list_runs(runs_dir);
    runs.sort_by_key(|(_, info)| info.sweep.as_ref().map(|t| t.trial));
    runs
}

#[test]
fn plan_prints_a_line_per_trial_and_refuses_a_broken_file() {
    let out = gradlab().args(["sweep", "sweeps/spiral_lr.toml"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for i in 0..4 {
        assert!(stdout.contains(&format!("#{i:03}  train.learning_rate=")), "trial {i}: {stdout}");
    }
    assert!(!stdout.contains("#004"), "{stdout}");
    assert!(stdout.contains("threads:") && stdout.contains("memory:"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), &spiral("\"train.learning_rat\" = { values = [0.1, 0.01] }", ""));
    let out = gradlab().arg("sweep").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("sweep.toml") && stderr.contains("vary.\"train.learning_rat\""), "{stderr}");
}

#[test]
fn local_sweep_records_tagged_runs_and_a_summary() {
    let runs = tempfile::tempdir().unwrap();
    let out = gradlab()
        .args(["sweep", "run", "sweeps/spiral_lr.toml", "-j", "2", "-q", "--runs-dir"])
        .arg(runs.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("4 trials in ") && stdout.contains("trials/min; best trial "), "{stdout}");

    let plan = Plan::load(Path::new("sweeps/spiral_lr.toml")).unwrap();
    let found = runs_by_trial(runs.path());
    assert_eq!(found.len(), 4, "one run per trial, sweeps/ not listed");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let sweeps = gradlab::sweep::list_sweeps(runs.path());
    assert_eq!(sweeps.len(), 1);
    let summary = SweepSummary::read(&sweeps[0]).unwrap();
    assert_eq!(summary.status, SweepStatus::Completed);
    for (i, (dir, info)) in found.iter().enumerate() {
        let tag = info.sweep.as_ref().expect("tagged");
        assert_eq!((tag.sweep.as_str(), tag.trial), (summary.id.as_str(), i));
        assert_eq!(info.status, RunStatus::Completed);
        // which trial lands in the slot with the odd core's remainder depends on timing
        let slots = gradlab::sweep::ThreadSplit::new(cores, 2).slots;
        assert!(slots.contains(&info.threads), "-j 2 splits the cores: {} threads, slots {slots:?}", info.threads);
        let preset = Preset::load(&dir.join("preset.toml")).unwrap();
        assert_eq!(preset.train.learning_rate, plan.trials[i].preset.train.learning_rate);
        assert_eq!((preset.data.samples, preset.train.epochs), (300, 2));
        assert_eq!(summary.trials[i].best_validation_accuracy, info.best_validation_accuracy);
        assert_eq!(summary.trials[i].metric, info.best_validation_accuracy);
        assert_eq!(summary.trials[i].run.as_deref(), Some(info.id.as_str()));
    }
    let best = found.iter().map(|(_, i)| i.best_validation_accuracy.unwrap()).fold(f64::MIN, f64::max);
    let first_best = found.iter().position(|(_, i)| i.best_validation_accuracy == Some(best));
    assert_eq!(summary.best, first_best);

    let out = gradlab().arg("runs").arg("--runs-dir").arg(runs.path()).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
}

#[test]
fn halving_promotes_the_best_and_continues_them_exactly() {
    let work = tempfile::tempdir().unwrap();
    let runs = work.path().join("runs");
    let text = spiral(
        "\"train.learning_rate\" = { values = [0.001, 0.003, 0.01, 0.03] }",
        "[halving]\neta = 2\nrungs = 2\nmin_epochs = 1\n",
    )
    // the rungs set the epochs (a fixed count is refused under [halving])
    .replace("\"train.epochs\" = 2\n", "");
    let plan = Plan::load(&sweep_file(work.path(), &text)).unwrap();
    let mut promoted_seen = vec![];
    let sweep = LocalSweep::start(&runs, plan, LocalOptions::headless(2)).unwrap();
    let summary = finish(&sweep, |e, _| {
        if let SweepEvent::RungEnded { promoted, .. } = e {
            promoted_seen.clone_from(promoted);
        }
    });
    assert_eq!(summary.status, SweepStatus::Completed);
    let found = runs_by_trial(&runs);
    assert_eq!(found.len(), 4);
    // the top two after epoch 1 (ties to the lower index) went on
    let first_epoch: Vec<f64> = found.iter().map(|(dir, _)| common::epoch_figures(dir)[0].4).collect();
    let mut order: Vec<usize> = (0..4).collect();
    order.sort_by(|&a, &b| first_epoch[b].total_cmp(&first_epoch[a]).then(a.cmp(&b)));
    let mut top: Vec<usize> = order[..2].to_vec();
    top.sort_unstable();
    assert_eq!(promoted_seen, top, "accuracies after epoch 1: {first_epoch:?}");
    for (i, (_, info)) in found.iter().enumerate() {
        let (status, epochs) = if top.contains(&i) { (RunStatus::Completed, 2) } else { (RunStatus::Stopped, 1) };
        assert_eq!((info.status, info.epochs_completed), (status, epochs), "trial {i}");
        assert_eq!(summary.trials[i].pruned_at, (!top.contains(&i)).then_some(0));
    }
    // a promoted trial, stopped at its rung and resumed, has the numbers of one never stopped
    let (dir, _) = &found[top[0]];
    let alone = work.path().join("alone");
    let preset = Preset::load(&dir.join("preset.toml")).unwrap();
    let o = common::run_request(RunRequest { preset, origin: RunOrigin::Fresh }, Some(&alone));
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!(common::epoch_figures(dir), common::epoch_figures(&common::only_run(&alone)));
}

#[test]
fn a_stopped_sweep_resumes_to_the_end_in_the_same_folders() {
    let work = tempfile::tempdir().unwrap();
    let runs = work.path().join("runs");
    let text = spiral("\"train.learning_rate\" = { values = [0.001, 0.003, 0.01, 0.03] }", "")
        .replace("\"train.epochs\" = 2", "\"train.epochs\" = 12");
    let plan = Plan::load(&sweep_file(work.path(), &text)).unwrap();
    let sweep = LocalSweep::start(&runs, plan, LocalOptions::headless(1)).unwrap();
    let stopped = finish(&sweep, |e, s| {
        if matches!(e, SweepEvent::TrialEnded { status: RunStatus::Completed, .. }) {
            s.stop();
        }
    });
    assert_eq!(stopped.status, SweepStatus::Stopped);
    let completed = |s: &SweepSummary| s.trials.iter().filter(|t| t.status == Some(RunStatus::Completed)).count();
    assert!(completed(&stopped) < 4, "stop left trials to do: {:?}", stopped.trials);
    // the trial started after the first ended was stopped within its run: resume continues it
    assert!(stopped.trials.iter().any(|t| t.status == Some(RunStatus::Stopped)), "{:?}", stopped.trials);
    let first = runs_by_trial(&runs)[0].1.clone();
    let dir = sweep.dir().to_path_buf();
    drop(sweep);

    let resumed = LocalSweep::resume(&dir, LocalOptions::headless(2)).unwrap();
    let summary = finish(&resumed, |_, _| {});
    assert_eq!(summary.status, SweepStatus::Completed);
    assert_eq!(completed(&summary), 4);
    let found = runs_by_trial(&runs);
    assert_eq!(found.len(), 4, "resumed trials keep their folders");
    assert_eq!(found[0].1.started_at, first.started_at);
    assert_eq!(found[0].1.id, first.id);
    assert!(found.iter().all(|(_, i)| i.epochs_completed == 12));
}

#[test]
fn train_as_a_sweep_trial_continues_its_own_run_rung_by_rung() {
    let runs = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let preset = Preset::from_toml(
        "title = \"trial\"\n[data]\nset = \"spiral\"\nsamples = 300\n[model]\nkind = \"mlp\"\nhidden = [16]\n[train]\nepochs = 2\nbatch_size = 32\n",
        "trial.toml",
    )
    .unwrap();
    let file = work.path().join("trial.toml");
    preset.save(&file).unwrap();
    let train = |extra: &[&str], job: &str| {
        let out = gradlab()
            .arg("train")
            .arg(&file)
            .arg("--runs-dir")
            .arg(runs.path())
            .args(["-q", "--threads", "1", "--sweep-trial", "sw/3"])
            .args(extra)
            .env("SLURM_ARRAY_JOB_ID", job)
            .env("SLURM_ARRAY_TASK_ID", "3")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    train(&["--until-epoch", "1"], "10");
    let first = common::only_run(runs.path());
    let info = RunInfo::read(&first).unwrap();
    assert_eq!((info.status, info.epochs_completed), (RunStatus::Stopped, 1), "a rung's end is a success");
    // the same rung again (a requeued task) has nothing to do
    assert!(train(&["--until-epoch", "1"], "10").contains("nothing to do"));
    // the last rung resumes the same run to its end, tagged with the new job
    train(&[], "11");
    assert_eq!(common::only_run(runs.path()), first);
    let info = RunInfo::read(&first).unwrap();
    assert_eq!((info.status, info.epochs_completed), (RunStatus::Completed, 2));
    let tag = info.sweep.unwrap();
    assert_eq!((tag.sweep.as_str(), tag.trial, tag.slurm_job.as_deref()), ("sw", 3, Some("11_3")));
    assert!(train(&[], "12").contains("has completed"));
}
