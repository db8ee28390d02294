//! The real app, driven headless through egui_kittest (wgpu on Mesa's llvmpipe): pick data and
//! a model by their labels, Start, watch epochs arrive, Pause, Resume, Stop; the gallery, preset
//! files, the runs list and comparison, export. Snapshots of the app go to screenshots/.
#![cfg(feature = "gui")]

#[path = "../common/mod.rs"]
mod common;
mod curves;
mod device;
mod generative;
mod inside;
mod sweep;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use gradlab::gui::{AppOptions, Dialogs, GradlabApp, Notice, Phase, View};
use gradlab::model::LayerSpec;
use gradlab::train::RunStatus;
use gradlab::Preset;

const SIZE: [f32; 2] = [1360.0, 860.0];

struct Setup {
    preset: Preset,
    runs_dir: Option<PathBuf>,
    answers: Arc<Mutex<VecDeque<Option<PathBuf>>>>,
}

impl Setup {
    fn new(preset: Preset) -> Self {
        Self { preset, runs_dir: None, answers: Arc::default() }
    }

    fn harness(&self) -> Harness<'static, GradlabApp> {
        // kittest has no storage: the restart test hands one over
        self.harness_with_storage(None, gradlab::gui::KeepFromLastTime::default())
    }

    /// The harness of an app that finds `storage` at its start, as eframe hands it the
    /// settings kept from last time.
    fn harness_with_storage(
        &self,
        storage: Option<&'static dyn eframe::Storage>,
        keep: gradlab::gui::KeepFromLastTime,
    ) -> Harness<'static, GradlabApp> {
        let options = AppOptions {
            runs_dir: self.runs_dir.clone(),
            keep_from_last_time: keep,
            preset: self.preset.clone(),
            default_threads: 1,
            preset_dirs: vec![PathBuf::from("presets")],
            dialogs: Dialogs::Scripted(self.answers.clone()),
            start: false,
            quit_when_done: false,
        };
        // a few frames more than the default to settle: spinners of background loads end a frame late
        Harness::builder().with_size(SIZE).with_max_steps(12).build_eframe(move |cc| {
            cc.storage = storage;
            GradlabApp::new(cc, options)
        })
    }

    /// The next file dialog answers with this path.
    fn answer(&self, path: &Path) {
        self.answers.lock().unwrap().push_back(Some(path.to_path_buf()));
    }
}

fn harness(preset: Preset) -> Harness<'static, GradlabApp> {
    Setup::new(preset).harness()
}

/// Steps frames (the app is event-driven; the test plays the display) until `done` holds.
fn step_until(h: &mut Harness<'_, GradlabApp>, what: &str, timeout: Duration, done: impl Fn(&GradlabApp) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.step();
}

/// Waits for the data preview and the gallery (loaded on background threads), then lets the UI settle.
fn settle(h: &mut Harness<'_, GradlabApp>) {
    step_until(h, "the data preview and gallery", Duration::from_secs(60), |a| {
        a.preview_ready() && !a.gallery.entries.is_empty()
    });
    // The cards' pictures arrive from their own thread and change the cards' heights: a snapshot
    // showing the gallery must not race them.
    step_until(h, "the cards' pictures", Duration::from_secs(120), |a| a.gallery.thumbnails.ready());
    h.run();
}

fn notice(app: &GradlabApp) -> Option<String> {
    match &app.notice {
        Some(Notice::Info(m)) => Some(format!("info: {m}")),
        Some(Notice::Error(m)) => Some(format!("error: {m}")),
        None => None,
    }
}

#[test]
fn initial_screen_shows_the_default_experiment_and_the_gallery() {
    let mut h = harness(Preset::builtin("mnist_cnn").unwrap());
    settle(&mut h);
    assert_eq!(h.state().view, View::Experiments);
    h.get_by_label("Start");
    h.get_by_label_contains("4500 train / 500 validation");
    h.get_by_label("Preset Spiral MLP");
    step_until(&mut h, "the cards' pictures", Duration::from_secs(120), |a| a.gallery.thumbnails.ready());
    h.run();
    h.snapshot("initial_gallery");
}

#[test]
fn pick_data_and_model_then_start_pause_resume_stop() {
    let mut h = harness(Preset::builtin("mnist_cnn").unwrap());
    settle(&mut h);
    h.get_by_label("Data set").click();
    h.run();
    h.get_by_label("Iris").click();
    settle(&mut h);
    assert_eq!(h.state().preset.data.set, "iris");
    // the CNN cannot read a table: the editor now holds an MLP; add dropout before its output
    let layers = h.state().preset.model.layers.len();
    assert!(matches!(h.state().preset.model.layers[0], LayerSpec::Dense(_)));
    h.get_by_label("Add").click();
    h.run();
    h.get_by_label("dropout").click();
    settle(&mut h);
    let model = &h.state().preset.model;
    assert_eq!(model.layers.len(), layers + 1);
    assert!(matches!(model.layers[layers - 1], LayerSpec::Dropout(_)), "{:?}", model.layers);
    h.get_by_label_contains("out 3  (");
    {
        let p = &mut h.state_mut().preset;
        // a long run, so that Pause and Stop find it running
        p.train.epochs = 2000;
        p.train.batch_size = 8;
    }
    h.get_by_label("Start").click();
    step_until(&mut h, "the first epoch", Duration::from_secs(60), |a| !a.run.epoch_metrics.is_empty());
    assert_eq!(h.state().view, View::Training);

    let app = h.state();
    assert!(!app.run.step_loss.is_empty(), "the loss plot has points");
    let m = app.run.latest_epoch().unwrap();
    assert_eq!(m.validation.confusion.total(), 15, "the confusion matrix counts every validation sample");
    assert_eq!(app.run.class_names, ["setosa", "versicolor", "virginica"]);
    h.get_by_label_contains("Validation accuracy");

    h.get_by_label("Pause").click();
    step_until(&mut h, "the pause", Duration::from_secs(10), |a| a.run.phase == Phase::Paused);
    let steps = h.state().run.step_loss.len();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        h.step();
    }
    assert_eq!(h.state().run.step_loss.len(), steps, "no steps while paused");
    h.get_by_label("Resume").click();
    step_until(&mut h, "more steps", Duration::from_secs(10), |a| a.run.step_loss.len() > steps);
    h.get_by_label("Stop").click();
    step_until(&mut h, "the stop", Duration::from_secs(10), |a| a.run.phase == Phase::Finished(RunStatus::Stopped));
    h.step();
    h.get_by_label("Start");
}

#[test]
fn mnist_cnn_trains_and_shows_curves_and_confusion() {
    let mut preset = Preset::builtin("mnist_cnn").unwrap();
    preset.train.epochs = 3;
    let mut h = harness(preset);
    settle(&mut h);
    h.get_by_label("Start").click();
    step_until(&mut h, "the end of the run", Duration::from_secs(300), |a| matches!(a.run.phase, Phase::Finished(_)));
    let app = h.state();
    assert_eq!(app.run.phase, Phase::Finished(RunStatus::Completed), "{:?}", app.run.error);
    assert_eq!(app.run.epoch_metrics.len(), 3);
    assert!(app.run.latest_epoch().unwrap().validation.accuracy > 0.9);
    // timings differ from run to run; everything else on screen is deterministic
    h.state_mut().run.fix_timings_for_snapshot(2000.0, 7.0);
    h.run();
    h.snapshot("mnist_cnn_trained");
}

#[test]
fn spiral_preview_is_a_scatter() {
    let mut h = harness(Preset::builtin("spiral_mlp").unwrap());
    settle(&mut h);
    h.snapshot("spiral_setup");
}

#[test]
fn gallery_card_loads_on_first_click_and_starts_on_second() {
    let mut h = harness(Preset::builtin("mnist_cnn").unwrap());
    settle(&mut h);
    h.get_by_label("Preset Iris MLP").click();
    h.run();
    assert_eq!(h.state().preset, Preset::load(Path::new("presets/iris_mlp.toml")).unwrap());
    assert_eq!(h.state().run.phase, Phase::Idle);
    settle(&mut h);
    h.get_by_label("Preset Iris MLP").click();
    h.step();
    step_until(&mut h, "the run", Duration::from_secs(60), |a| matches!(a.run.phase, Phase::Finished(_)));
    assert_eq!(h.state().run.phase, Phase::Finished(RunStatus::Completed));
    assert_eq!(h.state().run.class_names.len(), 3);
}

#[test]
fn presets_save_and_open_through_the_dialogs() {
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(Preset::builtin("spiral_mlp").unwrap());
    let mut h = setup.harness();
    settle(&mut h);
    h.state_mut().preset.train.learning_rate = 0.0042;
    let saved = h.state().preset.clone();
    let file = dir.path().join("mine.toml");
    setup.answer(&file);
    h.get_by_label("Save preset…").click();
    step_until(&mut h, "the save", Duration::from_secs(10), |a| notice(a).is_some_and(|n| n.contains("Saved")));
    assert_eq!(Preset::load(&file).unwrap(), saved, "the file holds what the GUI shows");

    // change the GUI, then open the file again
    h.state_mut().preset = Preset::builtin("iris_mlp").unwrap();
    setup.answer(&file);
    h.get_by_label("Open preset…").click();
    step_until(&mut h, "the load", Duration::from_secs(10), |a| notice(a).is_some_and(|n| n.contains("Loaded")));
    assert_eq!(h.state().preset, saved);

    // a broken file names itself and the key, and changes nothing
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[train]\nlearning_rate = \"fast\"\n").unwrap();
    setup.answer(&broken);
    h.get_by_label("Open preset…").click();
    step_until(&mut h, "the error", Duration::from_secs(10), |a| notice(a).is_some_and(|n| n.starts_with("error")));
    let message = notice(h.state()).unwrap();
    assert!(message.contains("broken.toml") && message.contains("train.learning_rate"), "{message}");
    assert_eq!(h.state().preset, saved);
}

fn run_to_completion(h: &mut Harness<'_, GradlabApp>) {
    h.get_by_label("Start").click();
    h.step();
    step_until(h, "the run", Duration::from_secs(120), |a| matches!(a.run.phase, Phase::Finished(_)));
    assert_eq!(h.state().run.phase, Phase::Finished(RunStatus::Completed), "{:?}", h.state().run.error);
}

#[test]
fn runs_are_listed_compared_renamed_exported_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    // a fixed, relative folder: its name shows in the snapshot
    let runs_dir = PathBuf::from("target/gui-test-runs");
    let _ = std::fs::remove_dir_all(&runs_dir);
    let mut preset = Preset::builtin("moons_mlp").unwrap();
    preset.train.epochs = 8;
    let mut setup = Setup::new(preset);
    setup.runs_dir = Some(runs_dir.clone());
    let mut h = setup.harness();
    settle(&mut h);
    run_to_completion(&mut h);
    {
        let p = &mut h.state_mut().preset;
        p.title = "Moons, faster".into();
        p.train.learning_rate = 0.03;
    }
    std::thread::sleep(Duration::from_millis(1100)); // runs are named by the second they start
    run_to_completion(&mut h);
    // a run written by another process (the CLI) shows up too
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["train", "--builtin", "xor_mlp", "--epochs", "2", "-q", "--runs-dir"])
        .arg(&runs_dir)
        .output()
        .unwrap();
    assert!(out.status.success());

    h.get_by_label("Runs").click();
    step_until(&mut h, "three runs", Duration::from_secs(20), |a| a.runs.runs.len() == 3);
    let names: Vec<String> = h.state().runs.runs.iter().map(|(_, i)| i.name.clone()).collect();
    assert_eq!(names, ["XOR MLP", "Moons, faster", "Two moons MLP"], "newest first");

    // compare the two moons runs
    let moons: Vec<PathBuf> = h.state().runs.runs.iter().skip(1).map(|(d, _)| d.clone()).collect();
    for d in &moons {
        h.state_mut().runs.selected.insert(d.clone());
    }
    step_until(&mut h, "the curves", Duration::from_secs(20), |a| moons.iter().all(|d| a.runs.loaded.contains_key(d)));
    h.run();
    h.get_by_label_contains("Comparing 2 runs");
    h.get_by_label("train.learning_rate");
    // times and speeds differ between runs of the test; everything else is deterministic
    for (_, info) in &mut h.state_mut().runs.runs {
        info.wall_time_s = 1.0;
        info.started_at = "2026-11-26T12-00-00".into();
    }
    h.state_mut().run.fix_timings_for_snapshot(50_000.0, 1.0);
    h.run();
    h.snapshot("runs_compare");

    // save the comparison plot as PNG
    let png = dir.path().join("compare.png");
    setup.answer(&png);
    h.get_by_label("Save plot as PNG…").click();
    step_until(&mut h, "the PNG", Duration::from_secs(20), |_| png.exists());
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");

    // export the best model of the first run
    let model = dir.path().join("model");
    setup.answer(&model);
    h.state_mut().runs.selected.clear();
    h.run();
    // as safetensors and ONNX both
    h.get_by_label("safetensors + ONNX").click();
    h.run();
    assert_eq!(h.get_all_by_label("Actions").count(), 3);
    h.get_all_by_label("Actions").last().unwrap().click();
    h.run();
    h.get_by_label("Export model of the best epoch…").click();
    step_until(&mut h, "the export", Duration::from_secs(20), |a| notice(a).is_some_and(|n| n.contains("Exported")));
    assert!(gradlab::export::load_model(&model).is_ok());
    assert!(model.join("model.onnx").exists());

    // rename the oldest run
    h.get_all_by_label("Actions").last().unwrap().click();
    h.run();
    h.get_by_label("Rename").click();
    h.run();
    h.get_by_label("New name").type_text(" (first)");
    h.run();
    h.key_press(egui::Key::Enter);
    step_until(&mut h, "the rename", Duration::from_secs(20), |a| {
        a.runs.runs.iter().any(|(_, i)| i.name == "Two moons MLP (first)")
    });

    // delete the XOR run, confirming
    h.get_all_by_label("Actions").next().unwrap().click();
    h.run();
    h.get_by_label("Delete…").click();
    h.run();
    h.get_by_label("Delete run").click();
    step_until(&mut h, "the deletion", Duration::from_secs(20), |a| a.runs.runs.len() == 2);
    assert_eq!(std::fs::read_dir(&runs_dir).unwrap().count(), 2);
    let _ = std::fs::remove_dir_all(&runs_dir);
}

#[test]
fn a_stopped_run_resumes_and_a_fork_starts_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut preset = Preset::builtin("digits_mlp").unwrap();
    // long enough that Stop finds it running
    preset.train.epochs = 200;
    let mut setup = Setup::new(preset);
    setup.runs_dir = Some(dir.path().to_path_buf());
    let mut h = setup.harness();
    settle(&mut h);
    h.get_by_label("Start").click();
    step_until(&mut h, "two epochs", Duration::from_secs(60), |a| a.run.epoch_metrics.len() >= 2);
    h.get_by_label("Stop").click();
    step_until(&mut h, "the stop", Duration::from_secs(20), |a| a.run.phase == Phase::Finished(RunStatus::Stopped));

    h.get_by_label("Runs").click();
    step_until(&mut h, "the stopped run", Duration::from_secs(20), |a| {
        a.runs.runs.first().is_some_and(|(_, i)| i.status == RunStatus::Stopped)
    });
    h.run();
    h.get_by_label("Actions").click();
    h.run();
    h.get_by_label("Resume run").click();
    h.step();
    step_until(&mut h, "the resumed run", Duration::from_secs(60), |a| matches!(a.run.phase, Phase::Finished(_)));
    assert_eq!(h.state().run.phase, Phase::Finished(RunStatus::Completed));
    step_until(&mut h, "the whole history", Duration::from_secs(20), |a| a.run.epoch_metrics.len() == 200);
    assert!(h.state().run.epoch_metrics.iter().map(|m| m.epoch).eq(1..=200));

    // fork from the best epoch with more epochs and a lower learning rate
    h.get_by_label("Runs").click();
    step_until(&mut h, "the completed run", Duration::from_secs(20), |a| {
        a.runs.runs.first().is_some_and(|(_, i)| i.status == RunStatus::Completed)
    });
    h.run();
    h.get_by_label("Actions").click();
    h.run();
    h.get_by_label("Fork from the last epoch").click();
    h.run();
    assert!(h.state().fork_from.is_some());
    {
        let p = &mut h.state_mut().preset;
        p.train.epochs = 202;
        p.train.learning_rate = 1e-4;
    }
    h.run();
    h.get_by_label("Start").click();
    h.step();
    step_until(&mut h, "the fork", Duration::from_secs(60), |a| matches!(a.run.phase, Phase::Finished(_)));
    assert_eq!(h.state().run.epoch_metrics.iter().map(|m| m.epoch).collect::<Vec<_>>(), [201, 202]);
}

fn fortunes_installed() -> bool {
    common::installed("fortunes", "/usr/share/games/fortunes")
}

#[test]
fn a_language_model_writes_samples_each_epoch_and_on_request() {
    if !fortunes_installed() {
        return;
    }
    let mut preset = Preset::builtin("char_lm_fortunes").unwrap();
    preset.data.limit = 300;
    preset.data.max_len = 40;
    preset.train.epochs = 2;
    let mut h = harness(preset);
    settle(&mut h);
    run_to_completion(&mut h);
    assert_eq!(h.state().run.text_samples.len(), 2, "one sample per epoch");
    assert!(h.state().run.embedding.is_some());
    // the finished run's weights still write on request
    h.state_mut().text_view.length = 60;
    h.get_by_label("Generate").click();
    step_until(&mut h, "the requested sample", Duration::from_secs(30), |a| a.run.text_samples.len() == 3);
    let asked = h.state().run.text_samples.last().unwrap();
    assert_eq!(asked.text.chars().count(), 60);
    assert_eq!(asked.prompt, "The ");
    h.state_mut().run.fix_timings_for_snapshot(800.0, 3.0);
    h.run();
    h.snapshot("char_lm_samples");
}

#[test]
fn a_text_classifier_answers_typed_text_and_maps_its_embedding() {
    if !fortunes_installed() {
        return;
    }
    let mut preset = Preset::builtin("text_rnn").unwrap();
    preset.data.limit = 2000;
    preset.train.epochs = 2;
    let mut h = harness(preset);
    settle(&mut h);
    run_to_completion(&mut h);
    let map = h.state().run.embedding.clone().expect("the embedding map after each epoch");
    assert_eq!(map.tokens.len(), map.points.len());
    h.get_by_label("Type a word or sentence").click();
    h.run();
    h.get_by_label("Type a word or sentence").type_text("linux");
    h.run();
    step_until(&mut h, "the probe", Duration::from_secs(30), |a| a.run.probe.is_some());
    let (text, probabilities) = h.state().run.probe.clone().unwrap();
    assert_eq!(text, "linux");
    assert_eq!(probabilities.len(), h.state().run.class_names.len());
    h.state_mut().run.fix_timings_for_snapshot(9000.0, 2.0);
    h.run();
    h.snapshot("text_rnn_probe");
}

#[test]
fn a_run_starts_from_a_shipped_model_with_a_frozen_layer() {
    let mut preset = Preset::builtin("transfer_mnist_to_fashion").unwrap();
    preset.transfer = None;
    preset.data.set = "mnist-5k".into();
    preset.data.limit = 300;
    preset.train.epochs = 1;
    let mut h = harness(preset);
    settle(&mut h);
    assert!(h.query_by_label("frozen").is_none(), "random weights: nothing to freeze");
    h.get_by_label("Start from").click();
    h.run();
    h.get_by_label("pretrained:mnist-cnn").click();
    settle(&mut h);
    assert_eq!(h.state().preset.transfer.as_ref().map(|t| t.from.as_str()), Some("pretrained:mnist-cnn"));
    // one "frozen" box per layer with weights: conv1, conv2, fc1, fc2
    assert_eq!(h.get_all_by_label("frozen").count(), 4);
    h.get_all_by_label("frozen").next().unwrap().click();
    settle(&mut h);
    assert_eq!(h.state().preset.transfer.as_ref().unwrap().freeze, ["conv1"]);
    run_to_completion(&mut h);
    let layers = &h.state().run.layers;
    assert!(layers.iter().any(|l| l.starts_with("conv1:") && l.ends_with("(frozen)")), "{layers:?}");
    assert!(!layers.iter().any(|l| l.starts_with("conv2:") && l.ends_with("(frozen)")), "{layers:?}");
    h.state_mut().run.fix_timings_for_snapshot(2000.0, 1.0);
    h.run();
    h.snapshot("transfer_frozen_layer");
}

/// The editor shows batch norm with its settings, and counts its running statistics apart
/// from the trained parameters (as Keras' summary does).
#[test]
fn editor_shows_batch_norm_and_counts_its_buffers_apart() {
    let mut h = harness(Preset::builtin("iris_mlp").unwrap());
    settle(&mut h);
    assert!(h.query_by_label_contains("in buffers").is_none(), "an MLP has no buffers");
    h.state_mut().preset.model =
        toml::from_str("layers = [{ type = \"dense\", units = 8 }, { type = \"batchnorm\" }, { type = \"dense\" }]")
            .unwrap();
    settle(&mut h);
    // 4 x 8 + 8, 2 x 8, 8 x 3 + 3 trained; two running statistics of 8 and the count
    h.get_by_label_contains("Layers (83 trainable parameters, 17 in buffers)");
    assert!(h.get_all_by_label("momentum").count() >= 1 && h.get_all_by_label("eps").count() >= 1);
    // the batch norm row: its trained weight and bias only
    h.get_by_label_contains("out 8  (16 params)");
}

#[test]
fn turning_on_a_transform_shows_the_augmented_grid() {
    let mut h = harness(Preset::builtin("mnist_cnn").unwrap());
    settle(&mut h);
    assert!(h.state().preset.augment.is_off());
    // closed while augmentation is off
    assert!(h.query_by_label("Flip left-right").is_none());
    h.get_by_label("Augmentation").scroll_to_me();
    h.run();
    h.get_by_label("Augmentation").click();
    h.run();
    h.get_by_label("Flip left-right").scroll_to_me();
    h.run();
    h.get_by_label("Flip left-right").click();
    // the grid is drawn on its thread meanwhile, under a spinner
    h.step();
    assert!(h.state().preset.augment.flip, "the checkbox edits the preset");
    {
        let a = &mut h.state_mut().preset.augment;
        (a.shift, a.rotate, a.cutout) = (3, 15.0, 8);
    }
    step_until(&mut h, "the augmented grid", Duration::from_secs(60), GradlabApp::augment_preview_ready);
    h.run();
    h.get_by_label_contains("Sample 1 (");
    h.get_by_label("Sample 4 augmented, epoch 4");
    h.get_by_label("Turn augmentation off").scroll_to_me();
    h.run();
    h.snapshot("augmentation_preview");
    h.get_by_label("Turn augmentation off").click();
    h.run();
    assert!(h.state().preset.augment.is_off());
}
