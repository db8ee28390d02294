//! The sweep view: a local sweep started, stopped and resumed; Slurm trials grouped in the runs
//! list; successive halving's pruned trials; a cancelled Slurm sweep opened from its folder.

use super::*;

/// The app on the spiral preset, recording into `runs_dir`, showing its Runs tab.
fn spiral_app_on_runs_tab(runs_dir: PathBuf) -> (Setup, Harness<'static, GradlabApp>) {
    let mut setup = Setup::new(Preset::builtin("spiral_mlp").unwrap());
    setup.runs_dir = Some(runs_dir);
    let mut h = setup.harness();
    settle(&mut h);
    h.get_by_label("Runs").click();
    h.run();
    (setup, h)
}

/// Switches the Runs tab to its Sweep view and opens `file` there (the dialog answered), until
/// `done`.
fn open_sweep(
    h: &mut Harness<'_, GradlabApp>,
    setup: &Setup,
    file: &Path,
    what: &str,
    done: impl Fn(&GradlabApp) -> bool,
) {
    h.get_by_label("Sweep").click();
    h.run();
    setup.answer(file);
    h.get_by_label("Open sweep…").click();
    step_until(h, what, Duration::from_secs(20), done);
}

/// A sweep from its file: Open sweep… (a scripted dialog), Start; Stop once the first trial has
/// ended, Resume, and every trial completes, each a row with its learning rate; Open on the best
/// trial selects its run for the comparison.
#[test]
fn a_sweep_starts_stops_resumes_and_opens_its_best_trial() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spiral_lr.toml");
    std::fs::write(
        &file,
        "name = \"spiral lr\"\nbuiltin = \"spiral_mlp\"\n\
         [set]\n\"data.samples\" = 300\n\"train.epochs\" = 40\n\
         [vary]\n\"train.learning_rate\" = { log = [1e-3, 1e-1], count = 3 }\n",
    )
    .unwrap();
    let (setup, mut h) = spiral_app_on_runs_tab(dir.path().join("runs"));
    open_sweep(&mut h, &setup, &file, "the sweep file", |a| a.sweep_panel.opened.is_some());
    assert_eq!(h.state().sweep_panel.rows(&[]).len(), 3);
    h.get_by_label("Start sweep").click();
    // trial 1 under way, trial 2 not: Stop then always leaves something unfinished (both would
    // have to train to the end before the next frame)
    step_until(&mut h, "the first trial and the second's start", Duration::from_secs(120), |a| {
        let rows = a.sweep_panel.rows(&a.runs.runs);
        rows[0].status == "completed" && rows[1].status != "pending" && rows[2].status == "pending"
    });
    {
        use egui_kittest::kittest::NodeT;
        assert!(h.get_by_label("Start").accesskit_node().is_disabled(), "one run or one sweep at a time");
    }
    h.get_by_label("Stop sweep").click();
    step_until(&mut h, "the stop", Duration::from_secs(60), |a| !a.sweep_running());
    let stopped = h.state().sweep_panel.rows(&h.state().runs.runs);
    assert!(stopped.iter().any(|r| r.status != "completed"), "Stop ended the sweep early: {stopped:?}");

    h.get_by_label("Resume sweep").click();
    step_until(&mut h, "every trial", Duration::from_secs(300), |a| {
        !a.sweep_running() && a.sweep_panel.rows(&a.runs.runs).iter().all(|r| r.status == "completed")
    });
    // the listing catches up with the last trial's record, and the best trial's curves load
    step_until(&mut h, "the runs and curves", Duration::from_secs(30), |a| {
        let rows = a.sweep_panel.rows(&a.runs.runs);
        let best = a.sweep_panel.best(&rows).and_then(|i| rows[i].run_dir.clone());
        a.runs.runs.len() == 3 && best.is_some_and(|d| a.runs.loaded.contains_key(&d))
    });
    h.run();
    let rows = h.state().sweep_panel.rows(&h.state().runs.runs);
    for (row, lr) in rows.iter().zip(["0.001", "0.01", "0.1"]) {
        assert_eq!(gradlab::gui::format_value(&row.values[0]), lr);
        h.get_by_label(lr);
        let preset = Preset::load(&row.run_dir.as_ref().unwrap().join("preset.toml")).unwrap();
        assert!((preset.train.learning_rate - lr.parse::<f64>().unwrap()).abs() < 1e-12, "trial {}", row.index);
    }
    assert_eq!(h.get_all_by_label("completed").count(), 3);
    // the notice names the temporary folder; the pointer then rests on a fixed widget
    h.get_by_label("Dismiss").click();
    h.run();
    h.get_by_label("Sweep").hover();
    h.run();
    h.snapshot("sweep");

    let best = h.state().sweep_panel.best(&rows).unwrap();
    let best_dir = rows[best].run_dir.clone().unwrap();
    h.get_all_by_label("Open").nth(best).unwrap().click();
    h.run();
    assert!(h.state().runs.selected.contains(&best_dir));
    assert_eq!(h.state().view, View::Runs);
    // the runs list holds the trials under their sweep's header
    h.get_by_label_contains("Sweep spiral lr · 3/3 done");

    // Start again: a new sweep in a new folder, none of the finished one's trials shown as its own
    h.get_by_label("Sweep").click();
    h.run();
    let old = h.state().sweep_panel.id();
    h.get_by_label("Start sweep").click();
    step_until(&mut h, "the new sweep's start", Duration::from_secs(60), |a| a.sweep_panel.id() != old);
    let rows = h.state().sweep_panel.rows(&h.state().runs.runs);
    assert!(rows.iter().all(|r| r.status != "completed"), "the old sweep's rows: {rows:?}");
    h.get_by_label_contains("· 0/3 done ·");
    h.get_by_label("Stop sweep").click();
    step_until(&mut h, "the second sweep's stop", Duration::from_secs(60), |a| !a.sweep_running());
}

/// Trials recorded by Slurm jobs (`train --sweep-trial` in a job array's environment) are listed
/// under their sweep's header with the job id, apart from the ordinary runs.
#[test]
fn a_sweeps_trials_are_grouped_with_their_slurm_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let train = |extra: &[&str], task: Option<usize>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"));
        cmd.args(["train", "--builtin", "xor_mlp", "--epochs", "2", "-q", "--runs-dir"]).arg(&runs).args(extra);
        if let Some(task) = task {
            cmd.env("SLURM_ARRAY_JOB_ID", "1234").env("SLURM_ARRAY_TASK_ID", task.to_string());
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    train(&["--sweep-trial", "2026-11-27T23-40-00_xor/0"], Some(0));
    // a halving rung's end: stopped at epoch 1
    train(&["--sweep-trial", "2026-11-27T23-40-00_xor/1", "--until-epoch", "1"], Some(1));
    train(&[], None);
    let mut setup = Setup::new(Preset::builtin("xor_mlp").unwrap());
    setup.runs_dir = Some(runs);
    let mut h = setup.harness();
    settle(&mut h);
    h.get_by_label("Runs").click();
    step_until(&mut h, "three runs", Duration::from_secs(20), |a| a.runs.runs.len() == 3);
    h.run();
    h.get_by_label("Sweep xor · 1/2 done · jobs 1234");
    h.get_by_label("Slurm job");
    h.get_by_label("1234_0");
    h.get_by_label("1234_1");
    assert_eq!(h.get_all_by_label("Name").count(), 2, "the ordinary runs' table and the sweep's");
}

/// Successive halving in the sweep view: after the first rung the better half goes on, the rest
/// show as pruned.
#[test]
fn a_halving_sweep_shows_its_pruned_trials() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("halving.toml");
    std::fs::write(
        &file,
        "name = \"spiral halving\"\nbuiltin = \"spiral_mlp\"\n\
         [set]\n\"data.samples\" = 300\n\
         [vary]\n\"train.learning_rate\" = { values = [0.0001, 0.001, 0.01, 0.03] }\n\
         [halving]\neta = 2\nrungs = 2\nmin_epochs = 1\n",
    )
    .unwrap();
    let (setup, mut h) = spiral_app_on_runs_tab(dir.path().join("runs"));
    open_sweep(&mut h, &setup, &file, "the sweep file", |a| a.sweep_panel.opened.is_some());
    h.get_by_label("Start sweep").click();
    step_until(&mut h, "both rungs", Duration::from_secs(120), |a| {
        !a.sweep_running() && a.sweep_panel.rows(&a.runs.runs).iter().all(|r| r.status != "pending")
    });
    step_until(&mut h, "the records", Duration::from_secs(20), |a| a.runs.runs.len() == 4);
    h.run();
    let rows = h.state().sweep_panel.rows(&h.state().runs.runs);
    let status: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(status.iter().filter(|s| **s == "completed").count(), 2, "{status:?}");
    assert_eq!(status.iter().filter(|s| **s == "pruned at rung 1").count(), 2, "{status:?}");
    // the promoted trials were the better two after one epoch, and trained on to the last rung
    assert_eq!(h.get_all_by_label("pruned at rung 1").count(), 2);
    assert_eq!(h.get_all_by_label("rung 2/2 · 2/2").count(), 2);
    assert_eq!(h.get_all_by_label("rung 1/2 · 1/2").count(), 2);
    h.get_by_label_contains("successive halving over 2 rungs");
    // pruned trials are settled: the finished sweep is all done
    h.get_by_label_contains("4/4 done (2 completed, 2 pruned)");
    // the promoted two had the best validation accuracy after epoch 1 (the sweep's metric)
    let first_epoch = |row: &gradlab::gui::TrialRow| {
        let text = std::fs::read_to_string(row.run_dir.as_ref().unwrap().join("epochs.jsonl")).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        line["validation"]["accuracy"].as_f64().unwrap()
    };
    let (promoted, pruned): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.status == "completed");
    let worst_promoted = promoted.iter().map(|r| first_epoch(r)).fold(f64::INFINITY, f64::min);
    let best_pruned = pruned.iter().map(|r| first_epoch(r)).fold(f64::NEG_INFINITY, f64::max);
    assert!(worst_promoted >= best_pruned, "promoted {worst_promoted} < pruned {best_pruned}");
}

/// A Slurm sweep opened from its folder (`sweep.toml` there): trials with a run show it, those
/// without show what the folder says (here `cancelled`) with the array task they were given;
/// Cancel on Slurm is there but has nothing left to cancel, and a local Resume is off.
#[test]
fn a_cancelled_slurm_sweep_opens_from_its_folder() {
    use egui_kittest::kittest::NodeT;
    use gradlab::sweep::{Mode, Plan, SlurmJob, SweepSpec, SweepState, SweepStatus};
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let file = dir.path().join("lr.toml");
    std::fs::write(
        &file,
        "name = \"xor lr\"\nbuiltin = \"xor_mlp\"\n[set]\n\"train.epochs\" = 2\n\
         [vary]\n\"train.learning_rate\" = { values = [0.01, 0.02, 0.03] }\n",
    )
    .unwrap();
    let plan = Plan::new(SweepSpec::load(&file).unwrap()).unwrap();
    let sweep = gradlab::sweep::write_sweep_dir(&runs, &plan).unwrap();
    let mut state = SweepState::read(&sweep).unwrap();
    state.mode = Mode::Slurm;
    state.status = SweepStatus::Cancelled;
    state.slurm_jobs =
        vec![SlurmJob { rung: 0, array: "1234".into(), trials: vec![0, 1, 2], advance: Some("1235".into()) }];
    state.write(&sweep).unwrap();
    // trial 0 ran as array task 1234_0 (what the job's command line does)
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .arg("train")
        .arg(gradlab::sweep::trial_file(&sweep, 0))
        .arg("--runs-dir")
        .arg(&runs)
        .args(["-q", "--sweep-trial", &format!("{}/0", state.id)])
        .env("SLURM_ARRAY_JOB_ID", "1234")
        .env("SLURM_ARRAY_TASK_ID", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut setup = Setup::new(Preset::builtin("xor_mlp").unwrap());
    setup.runs_dir = Some(runs);
    let mut h = setup.harness();
    settle(&mut h);
    h.get_by_label("Runs").click();
    step_until(&mut h, "the trial's run", Duration::from_secs(20), |a| a.runs.runs.len() == 1);
    h.run();
    h.get_by_label_contains("Sweep xor lr · 1/3 done · jobs 1234, 1235");
    open_sweep(&mut h, &setup, &sweep.join("sweep.toml"), "the sweep's trials", |a| {
        a.sweep_panel.rows(&a.runs.runs).iter().filter(|r| r.status == "cancelled").count() == 2
    });
    h.run();
    let rows = h.state().sweep_panel.rows(&h.state().runs.runs);
    let status: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(status, ["completed", "cancelled", "cancelled"]);
    for job in ["1234_0", "1234_1", "1234_2"] {
        h.get_by_label(job);
    }
    assert!(h.get_by_label("Cancel on Slurm").accesskit_node().is_disabled(), "nothing left to cancel");
    assert!(h.get_by_label("Resume sweep").accesskit_node().is_disabled(), "it resumes on the cluster");
}
