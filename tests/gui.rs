//! The real app, driven headless through egui_kittest (wgpu on Mesa's llvmpipe): pick data and
//! a model by their labels, Start, watch epochs arrive, Pause, Resume, Stop. Snapshots of the
//! app go to screenshots/.
#![cfg(feature = "gui")]

use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use gradlab::gui::{AppOptions, GradlabApp, Phase};
use gradlab::train::RunStatus;
use gradlab::Preset;

const SIZE: [f32; 2] = [1360.0, 860.0];

fn harness(preset: Preset) -> Harness<'static, GradlabApp> {
    Harness::builder().with_size(SIZE).build_eframe(move |cc| {
        GradlabApp::new(
            cc,
            AppOptions {
                runs_dir: None,
                preset,
                default_threads: 1,
            },
        )
    })
}

/// Steps frames (the app is event-driven; the test plays the display) until `done` holds.
fn step_until(
    h: &mut Harness<'_, GradlabApp>,
    what: &str,
    timeout: Duration,
    done: impl Fn(&GradlabApp) -> bool,
) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.step();
}

fn preview_ready(app: &GradlabApp) -> bool {
    app.preview_ready()
}

/// Waits for the data preview (its spinner repaints), then lets the UI settle.
fn settle(h: &mut Harness<'_, GradlabApp>) {
    step_until(
        h,
        "the data preview",
        Duration::from_secs(60),
        preview_ready,
    );
    h.run();
}

#[test]
fn initial_screen_shows_the_default_experiment() {
    let mut h = harness(Preset::builtin("mnist_cnn").unwrap());
    step_until(
        &mut h,
        "the data preview",
        Duration::from_secs(60),
        preview_ready,
    );
    h.run();
    assert!(h.query_by_label("Start").is_some());
    h.get_by_label_contains("4500 train / 500 validation");
    h.snapshot("initial_mnist_cnn");
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
    h.get_by_label("Architecture").click();
    h.run();
    h.get_by_label("MLP").click();
    h.run();
    {
        let p = &mut h.state_mut().preset;
        // a long run, so that Pause and Stop find it running
        p.train.epochs = 2000;
        p.train.batch_size = 8;
    }
    h.get_by_label("Start").click();
    step_until(&mut h, "the first epoch", Duration::from_secs(60), |a| {
        !a.run.epoch_metrics.is_empty()
    });

    let app = h.state();
    assert!(!app.run.step_loss.is_empty(), "the loss plot has points");
    let m = app.run.latest_epoch().unwrap();
    assert_eq!(
        m.validation.confusion.total(),
        15,
        "the confusion matrix counts every validation sample"
    );
    assert_eq!(app.run.class_names, ["setosa", "versicolor", "virginica"]);
    h.get_by_label_contains("Validation accuracy");

    h.get_by_label("Pause").click();
    step_until(&mut h, "the pause", Duration::from_secs(10), |a| {
        a.run.phase == Phase::Paused
    });
    let steps = h.state().run.step_loss.len();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        h.step();
    }
    assert_eq!(
        h.state().run.step_loss.len(),
        steps,
        "no steps while paused"
    );
    h.get_by_label("Resume").click();
    step_until(&mut h, "more steps", Duration::from_secs(10), |a| {
        a.run.step_loss.len() > steps
    });
    h.get_by_label("Stop").click();
    step_until(&mut h, "the stop", Duration::from_secs(10), |a| {
        a.run.phase == Phase::Finished(RunStatus::Stopped)
    });
    // Start is offered again
    h.step();
    h.get_by_label("Start");
}

#[test]
fn mnist_cnn_trains_and_shows_curves_and_confusion() {
    let mut preset = Preset::builtin("mnist_cnn").unwrap();
    preset.train.epochs = 3;
    let mut h = harness(preset);
    step_until(
        &mut h,
        "the data preview",
        Duration::from_secs(60),
        preview_ready,
    );
    h.get_by_label("Start").click();
    step_until(
        &mut h,
        "the end of the run",
        Duration::from_secs(300),
        |a| matches!(a.run.phase, Phase::Finished(_)),
    );
    let app = h.state();
    assert_eq!(
        app.run.phase,
        Phase::Finished(RunStatus::Completed),
        "{:?}",
        app.run.error
    );
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
    step_until(
        &mut h,
        "the data preview",
        Duration::from_secs(30),
        preview_ready,
    );
    h.run();
    h.snapshot("spiral_setup");
}
