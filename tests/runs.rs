//! Runs on disk: a killed process leaves a readable directory, resume and fork continue from
//! checkpoints with the same numbers as an uninterrupted run, exported models reload equal.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use gradlab::data::{self, NormalizationKind};
use gradlab::model::Mode;
use gradlab::record::{self, list_checkpoints, load_run, RunRecorder};
use gradlab::train::{
    Command as TrainCommand, Event, RunOrigin, RunRequest, RunStatus, Session, Trainer, WorkerOptions,
};
use gradlab::Preset;

fn small_preset() -> Preset {
    let mut p = Preset::builtin("mnist_cnn").unwrap();
    p.title = "resume test".into();
    p.data.limit = 1200;
    p.train.epochs = 4;
    p.train.threads = 1;
    p
}

fn gradlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gradlab"))
}

fn only_run(runs_dir: &Path) -> PathBuf {
    let runs = record::list_runs(runs_dir);
    assert_eq!(runs.len(), 1, "one run in {}", runs_dir.display());
    runs[0].0.clone()
}

fn step_losses(run: &Path) -> Vec<[f64; 2]> {
    load_run(run).unwrap().steps
}

#[test]
fn killed_run_is_readable_and_resumes_to_the_uninterrupted_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let preset_file = dir.path().join("small.toml");
    small_preset().save(&preset_file).unwrap();

    let whole = dir.path().join("whole");
    let out = gradlab().arg("train").arg(&preset_file).arg("--runs-dir").arg(&whole).arg("-q").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let whole_run = only_run(&whole);

    // the same preset, killed once it has written its second checkpoint
    let cut = dir.path().join("cut");
    let mut child = gradlab()
        .arg("train")
        .arg(&preset_file)
        .arg("--runs-dir")
        .arg(&cut)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let run = loop {
        if let Some((dir, _)) = record::list_runs(&cut).first() {
            if list_checkpoints(dir).len() >= 2 {
                break dir.clone();
            }
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();

    // what is there reads back
    let data = load_run(&run).unwrap();
    assert_eq!(data.info.status, RunStatus::Interrupted);
    assert!(data.epochs.len() >= 2);
    assert!(!data.steps.is_empty());
    assert_eq!(data.preset, small_preset());
    assert!(record::read_checkpoint(&record::latest_checkpoint(&run).unwrap()).is_ok());

    // resume it (a second process) and compare with the run that was never interrupted
    let started = Instant::now();
    let out = gradlab().arg("resume").arg(&run).arg("-q").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("resume of the remaining epochs took {:.1}s", started.elapsed().as_secs_f64());
    assert_eq!(common::epoch_figures(&run), common::epoch_figures(&whole_run));
    assert_eq!(step_losses(&run), step_losses(&whole_run));
    assert_eq!(load_run(&run).unwrap().info.status, RunStatus::Completed);
}

#[test]
fn stopped_run_resumes_in_process_to_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let a = common::run_request(RunRequest { preset: small_preset(), origin: RunOrigin::Fresh }, Some(&whole));
    assert_eq!(a.summary.unwrap().status, RunStatus::Completed);

    let cut = dir.path().join("cut");
    let trainer = Trainer::spawn(WorkerOptions::headless(Some(cut.clone())));
    assert!(
        trainer.send(TrainCommand::Start(Box::new(RunRequest { preset: small_preset(), origin: RunOrigin::Fresh })))
    );
    loop {
        match trainer.recv_timeout(Duration::from_secs(120)).unwrap() {
            Event::Epoch(m) if m.epoch == 1 => {
                assert!(trainer.send(TrainCommand::Stop));
            }
            Event::Finished(s) => {
                assert_eq!(s.status, RunStatus::Stopped);
                break;
            }
            Event::Failed { error } => panic!("{error}"),
            _ => {}
        }
    }
    let run = only_run(&cut);
    assert!(trainer.send(TrainCommand::Start(Box::new(RunRequest {
        preset: small_preset(),
        origin: RunOrigin::Resume(run.clone())
    }))));
    let b = common::collect(&trainer);
    assert_eq!(b.summary.unwrap().status, RunStatus::Completed);
    assert_eq!(common::epoch_figures(&run), common::epoch_figures(&only_run(&whole)));
}

#[test]
fn fork_continues_from_a_checkpoint_with_changed_hyper_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let mut p = small_preset();
    p.train.epochs = 2;
    common::run_request(RunRequest { preset: p.clone(), origin: RunOrigin::Fresh }, Some(&runs));
    let parent = only_run(&runs);
    let ckpt = gradlab::export::find_checkpoint(&parent, gradlab::export::Which::Epoch(1)).unwrap();

    let mut changed = p.clone();
    changed.train.epochs = 3;
    changed.train.learning_rate = 3e-4;
    let out =
        common::run_request(RunRequest { preset: changed.clone(), origin: RunOrigin::Fork(ckpt.clone()) }, Some(&runs));
    assert_eq!(out.epochs.iter().map(|m| m.epoch).collect::<Vec<_>>(), vec![2, 3]);
    assert!(out.epochs.iter().all(|m| (m.learning_rate - 3e-4).abs() < 1e-12));
    let child = record::list_runs(&runs).into_iter().find(|(d, _)| *d != parent).unwrap();
    assert_eq!(
        child.1.parent.as_deref(),
        Some(format!("{}/epoch-1", parent.file_name().unwrap().to_string_lossy()).as_str())
    );
    assert_eq!(load_run(&child.0).unwrap().preset, changed);

    // a fork that would train nothing is refused with the key
    let mut nothing = p;
    nothing.train.epochs = 1;
    let out = common::run_request(RunRequest { preset: nothing, origin: RunOrigin::Fork(ckpt) }, None);
    assert!(out.failure.unwrap().contains("train.epochs"));
}

#[test]
fn exported_model_reloads_with_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let preset = small_preset();
    let ds = data::load(&preset.data, preset.seed).unwrap();
    let mut session = Session::new(preset.clone(), ds, Device::Cpu).unwrap();
    let mut recorder = RunRecorder::create(&dir.path().join("runs"), &preset, None).unwrap();
    recorder.started(&session, 1).unwrap();
    while !session.epoch_done() {
        session.train_batch().unwrap();
    }
    let metrics = session.finish_epoch(1.0).unwrap();
    let state = record::CheckpointState {
        epoch: session.epoch,
        batch: 0,
        epoch_progress: Default::default(),
        optimizer_steps: session.optimizer.steps,
        base_learning_rate: session.base_learning_rate,
        rng: session.rng.clone(),
        best_epoch: Some(1),
        best_validation_accuracy: Some(metrics.validation.accuracy),
        validation_accuracy: metrics.validation.accuracy,
        samples_seen: 0,
        train_time_s: 0.0,
        elapsed_s: 0.0,
    };
    recorder.epoch(&metrics, &session, &state).unwrap();

    let model_dir = dir.path().join("model");
    let card = gradlab::export::export_run(recorder.dir(), gradlab::export::Which::Best, &model_dir).unwrap();
    assert_eq!(
        card.tensors.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["conv1.weight", "conv1.bias", "fc1.weight", "fc1.bias"]
    );
    for f in ["model.safetensors", "config.json", "labels.json", "preset.toml"] {
        assert!(model_dir.join(f).exists(), "{f}");
    }
    let loaded = gradlab::export::load_model(&model_dir).unwrap();

    // the in-memory model on normalised inputs ...
    let n = 64;
    let split = &session.data.validation;
    let x = Tensor::from_vec(split.features[..n * 784].to_vec(), (n, 1, 28, 28), &Device::Cpu).unwrap();
    let ours: Vec<Vec<f32>> = session.net.forward(&x, &mut Mode::Eval).unwrap().to_vec2().unwrap();
    // ... equals the reloaded model on the same samples, raw, with its stored normalisation
    let mut raw_spec = preset.data.clone();
    raw_spec.normalization = NormalizationKind::None;
    let raw = data::load(&raw_spec, preset.seed).unwrap();
    let theirs: Vec<Vec<f32>> = loaded.logits_raw(&raw.validation.features[..n * 784], n).unwrap().to_vec2().unwrap();
    for (a, b) in ours.iter().flatten().zip(theirs.iter().flatten()) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
    }
    // and `eval` reports the accuracy the run recorded
    let (split_name, eval) = gradlab::export::evaluate_model(&model_dir, None).unwrap();
    assert_eq!(split_name, "validation");
    assert_eq!(eval.accuracy, metrics.validation.accuracy);
    assert_eq!(eval.confusion, metrics.validation.confusion);
}

#[test]
fn export_and_eval_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let mut p = Preset::builtin("iris_mlp").unwrap();
    p.train.epochs = 20;
    common::run_request(RunRequest { preset: p, origin: RunOrigin::Fresh }, Some(&runs));
    let run = only_run(&runs);
    let model = dir.path().join("model");
    let out = gradlab().arg("export").arg(&run).arg(&model).args(["--epoch", "best"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("fc1.weight"));
    let out = gradlab().arg("eval").arg(&model).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("accuracy") && stdout.contains("setosa"), "{stdout}");
    // a missing epoch is an error naming the run
    let out = gradlab().arg("export").arg(&run).arg(&model).args(["--epoch", "99"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("epoch 99"));
}

#[test]
fn runs_can_be_listed_renamed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let mut p = Preset::builtin("xor_mlp").unwrap();
    p.train.epochs = 1;
    common::run_request(RunRequest { preset: p.clone(), origin: RunOrigin::Fresh }, Some(&runs));
    std::thread::sleep(Duration::from_millis(1100));
    p.title = "second".into();
    common::run_request(RunRequest { preset: p, origin: RunOrigin::Fresh }, Some(&runs));
    let listed = record::list_runs(&runs);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].1.title, "second", "newest first");
    record::rename_run(&listed[1].0, "my first run").unwrap();
    assert_eq!(record::list_runs(&runs)[1].1.name, "my first run");
    record::delete_run(&listed[0].0).unwrap();
    assert_eq!(record::list_runs(&runs).len(), 1);
    assert!(record::delete_run(dir.path()).is_err(), "refuses a folder that is not a run");
    // the CLI lists runs written by anyone
    let out = gradlab().arg("runs").arg("--runs-dir").arg(&runs).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("completed"));
}
