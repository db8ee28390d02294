//! Issue 11's manners and curves: log y and smoothing, keyboard shortcuts and their help,
//! settings that survive a restart (through eframe's storage), the learning-rate window.

use std::collections::HashMap;

use egui::{Key, Modifiers};
use gradlab::gui::curve_plot::{cached_points, PlotSettings};
use gradlab::gui::series::XKind;
use gradlab::gui::settings::{Settings, Theme, APP_KEY};
use gradlab::gui::KeepFromLastTime;

use super::*;

/// A small run that finishes in a few seconds.
fn spiral(epochs: usize) -> Preset {
    let mut preset = Preset::builtin("spiral_mlp").unwrap();
    preset.train.epochs = epochs;
    preset
}

#[test]
fn log_axis_and_smoothing_change_what_the_loss_plot_draws() {
    let mut h = harness(spiral(3));
    settle(&mut h);
    run_to_completion(&mut h);
    h.run();
    assert_eq!(h.state().plot_settings, PlotSettings::default());
    h.get_by_label("log y").click();
    h.run();
    // the slider takes arrow keys once focused, as a keyboard user would move it
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "Smoothing").focus();
    h.run();
    for _ in 0..30 {
        h.key_press(Key::ArrowRight);
        h.step();
    }
    h.run();
    let app = h.state();
    assert!(app.plot_settings.log_y);
    let smoothing = app.plot_settings.smoothing;
    assert!(smoothing > 0.85, "smoothing {smoothing}");
    assert_eq!(app.run.step_loss.smoothing(), smoothing, "the series were smoothed again");

    // what the plot drew this frame: log10 of the loss, raw and smoothed
    let series = &app.run.step_loss;
    let raw = cached_points(&h.ctx, "loss_plot", 0, false).expect("the raw loss line is cached");
    let smooth = cached_points(&h.ctx, "loss_plot", 0, true).expect("the smoothed loss line is cached");
    assert!(!raw.is_empty() && !smooth.is_empty());
    let bpe = app.run.batches_per_epoch;
    for (points, values) in [(&raw, &series.y), (&smooth, &series.smoothed)] {
        for p in points {
            let i = series.index_at(XKind::Epoch, bpe, p.x).unwrap();
            assert!((p.y - f64::from(values[i]).log10()).abs() < 1e-5, "{p:?} vs {}", values[i]);
        }
    }
    // smoothing flattens the curve: its spread is smaller than the raw one's
    let spread = |v: &[egui_plot::PlotPoint]| {
        let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.y), hi.max(p.y)));
        hi - lo
    };
    assert!(spread(&smooth) < spread(&raw), "smoothed {} raw {}", spread(&smooth), spread(&raw));
    h.state_mut().run.fix_timings_for_snapshot(5000.0, 2.0);
    h.remove_cursor();
    h.run();
    h.snapshot("curves_log_smoothed");
}

#[test]
fn shortcuts_switch_tabs_show_help_start_and_stop() {
    let mut preset = spiral(2000);
    preset.train.batch_size = 8;
    let mut h = harness(preset);
    settle(&mut h);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num2);
    h.run();
    assert_eq!(h.state().view, View::Training);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num4);
    h.run();
    assert_eq!(h.state().view, View::Runs);
    h.key_press(Key::F1);
    h.run();
    assert!(h.state().help_open);
    h.get_by_label("Keyboard shortcuts");
    h.get_by_label("Ctrl+Enter");
    h.get_by_label("Ctrl+.");
    // the help's row beside the Start button it stands for
    assert_eq!(h.query_all_by_label("Start").count(), 2);
    h.snapshot("help_overlay");
    h.key_press(Key::Escape);
    h.run();
    assert!(!h.state().help_open, "Escape closes the help");
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    step_until(&mut h, "the run to start", Duration::from_secs(60), |a| a.run.phase == Phase::Running);
    assert_eq!(h.state().view, View::Training, "Start shows the training view");
    h.key_press_modifiers(Modifiers::COMMAND, Key::Period);
    step_until(&mut h, "the stop", Duration::from_secs(30), |a| matches!(a.run.phase, Phase::Finished(_)));
    assert_eq!(h.state().run.phase, Phase::Finished(RunStatus::Stopped));
}

/// eframe's storage, in memory.
#[derive(Default)]
struct Storage(HashMap<String, String>);

impl eframe::Storage for Storage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.into(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn settings_survive_a_restart() {
    let first_dir = tempfile::tempdir().unwrap();
    let chosen = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(spiral(1));
    setup.runs_dir = Some(first_dir.path().to_path_buf());
    let mut h = setup.harness();
    settle(&mut h);
    // the runs folder, through Change… and its (scripted) dialog
    h.get_by_label("Runs").click();
    h.run();
    setup.answer(chosen.path());
    h.get_by_label("Change…").click();
    h.run();
    assert_eq!(h.state().runs_dir(), Some(chosen.path()));
    h.state_mut().preset.train.learning_rate = 0.0123;
    h.state_mut().plot_settings = PlotSettings { smoothing: 0.9, log_y: true, x_kind: XKind::Step };
    h.get_by_label("Theme: System").click();
    h.run();
    h.get_by_label("Theme: Dark").click();
    h.run();
    assert_eq!(h.state().theme, Theme::Light);

    let mut storage = Storage::default();
    eframe::App::save(h.state_mut(), &mut storage);
    assert!(eframe::get_value::<Settings>(&storage, APP_KEY).is_some(), "settings were stored");
    drop(h);

    // a new window finds them in its storage, as eframe hands them over
    let stored: &'static Storage = Box::leak(Box::new(storage));
    let mut h = Setup::new(Preset::builtin("mnist_cnn").unwrap())
        .harness_with_storage(Some(stored), KeepFromLastTime::default());
    settle(&mut h);
    let app = h.state();
    assert_eq!(app.view, View::Runs);
    assert_eq!(app.preset.train.learning_rate, 0.0123);
    assert_eq!(app.preset.data.set, "spiral");
    assert_eq!(app.plot_settings, PlotSettings { smoothing: 0.9, log_y: true, x_kind: XKind::Step });
    assert_eq!(app.theme, Theme::Light);
    // kittest sets its own theme on the context after the app is built: apply the app's again
    let ctx = h.ctx.clone();
    h.state_mut().set_theme(Theme::Light, &ctx);
    assert_eq!(h.ctx.options(|o| o.theme_preference), egui::ThemePreference::Light);
    h.get_by_label_contains(&format!("runs in {}", chosen.path().display()));
    // the gallery, in light colours (the runs list would show a temporary folder's name)
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num1);
    step_until(&mut h, "the cards' pictures", Duration::from_secs(120), |a| a.gallery.thumbnails.ready());
    h.run();
    h.snapshot("light_theme");
    // the worker was told too: a new run lands in the chosen folder
    run_to_completion(&mut h);
    let runs: Vec<_> = std::fs::read_dir(chosen.path()).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1, "one run in the chosen folder");
    assert_eq!(std::fs::read_dir(first_dir.path()).unwrap().count(), 0, "nothing in the first folder");

    // what the command line gives wins over what was kept
    let keep = KeepFromLastTime { preset: false, runs_dir: false };
    let saved = Settings {
        preset_toml: Preset::builtin("iris_mlp").unwrap().to_toml(),
        runs_dir: Some(chosen.path().to_path_buf()),
        ..Settings::default()
    };
    let mut kept = Storage::default();
    eframe::set_value(&mut kept, APP_KEY, &saved);
    let mut h = Setup::new(spiral(1)).harness_with_storage(Some(Box::leak(Box::new(kept))), keep);
    let ctx = h.ctx.clone();
    assert_eq!(h.state().preset.data.set, "spiral");
    assert_eq!(h.state().runs_dir(), None);
    // ... for this session only: unchanged, the stored values are saved back
    let mut storage = Storage::default();
    eframe::App::save(h.state_mut(), &mut storage);
    let resaved: Settings = eframe::get_value(&storage, APP_KEY).unwrap();
    assert_eq!((resaved.preset_toml, resaved.runs_dir), (saved.preset_toml.clone(), saved.runs_dir.clone()));
    // what the user changes in the session is saved
    h.state_mut().preset.train.learning_rate = 0.0321;
    eframe::App::save(h.state_mut(), &mut storage);
    let resaved: Settings = eframe::get_value(&storage, APP_KEY).unwrap();
    assert!(resaved.preset_toml.contains("0.0321"), "{}", resaved.preset_toml);
    assert_eq!(resaved.runs_dir, saved.runs_dir);
    // a kept preset that no longer parses leaves the default, with a notice
    let broken = Settings { preset_toml: "[train]\nlearning_rate = \"fast\"\n".into(), ..Settings::default() };
    h.state_mut().apply_settings(broken, KeepFromLastTime::default(), &ctx);
    assert_eq!(h.state().preset.data.set, "spiral");
    assert!(notice(h.state()).is_some_and(|n| n.contains("kept from last time")), "{:?}", notice(h.state()));
}

#[test]
fn the_learning_rate_finder_suggests_a_rate_and_records_nothing() {
    let runs = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(spiral(3));
    setup.runs_dir = Some(runs.path().to_path_buf());
    let mut h = setup.harness();
    settle(&mut h);
    h.get_by_label("Finder…").click();
    h.run();
    h.get_by_label_contains("Schedule:");
    h.get_by_label("Find").click();
    step_until(&mut h, "the finder's suggestion", Duration::from_secs(60), |a| {
        a.lr_window.progress.as_ref().is_some_and(|p| p.done.is_some() || p.error.is_some())
    });
    let progress = h.state().lr_window.progress.clone().unwrap();
    assert_eq!(progress.error, None);
    assert!(progress.points.len() >= 10, "{} points", progress.points.len());
    let steep = progress.done.unwrap().steep;
    let label = format!("Use {}", gradlab::gui::lr_view::lr_text(steep));
    h.get_by_label(&label).click();
    h.run();
    let lr = h.state().preset.train.learning_rate;
    assert_eq!(lr, steep, "the button set the preset's rate");
    step_until(&mut h, "the cards' pictures", Duration::from_secs(120), |a| a.gallery.thumbnails.ready());
    h.remove_cursor();
    h.run();
    h.snapshot("lr_finder");
    assert_eq!(std::fs::read_dir(runs.path()).unwrap().count(), 0, "the finder records no run");
}
