//! Evaluation and the network's insides, driven like a user: a confusion-matrix cell opens its
//! samples, the metrics table, drawing on the pad, filters and activation maps, the decision
//! boundary, layer statistics and saliency. Each trains a small run (a data limit, a few
//! epochs); snapshots go to screenshots/.

use super::*;

use gradlab::gui::{GalleryMode, InsidePanel};

/// The largest off-diagonal cell of the latest epoch's matrix: (true, predicted, count).
fn largest_mistake(app: &GradlabApp) -> (usize, usize, u64) {
    let c = &app.run.latest_epoch().unwrap().validation.confusion;
    let mut best = (0, 1, 0);
    for t in 0..c.classes {
        for p in 0..c.classes {
            if t != p && c.get(t, p) > best.2 {
                best = (t, p, c.get(t, p));
            }
        }
    }
    best
}

/// Cards showing a sample of class `truth` whose top-1 is `predicted`.
fn cards(h: &Harness<'_, GradlabApp>, truth: &str, predicted: &str) -> usize {
    h.query_all_by_label_contains(&format!(" · true {truth} · top-1 {predicted}")).count()
}

/// The gallery heading and cards agree with the predictions of the epoch on screen.
fn gallery_shows(h: &Harness<'_, GradlabApp>, t: usize, p: usize) -> Option<usize> {
    let app = h.state();
    let predictions = app.inspect.predictions.as_ref()?;
    let n = app.inspect.gallery_indices().len();
    let names = &app.run.class_names;
    let heading = format!("{n} samples: true {}, predicted {}", names[t], names[p]);
    let all_loaded = app.inspect.gallery_indices().iter().take(24).all(|i| app.inspect.samples.contains_key(i));
    let truth_ok = predictions.truth.len() == app.run.latest_epoch()?.validation.confusion.total() as usize;
    (truth_ok && all_loaded && h.query_by_label(&heading).is_some() && cards(h, &names[t], &names[p]) == n.min(24))
        .then_some(n)
}

#[test]
fn a_confusion_cell_opens_its_samples_live_and_the_table_reports_each_class() {
    let mut preset = Preset::builtin("mnist_mlp").unwrap();
    preset.data.limit = 1500;
    preset.train.epochs = 500;
    preset.train.learning_rate = 3e-4;
    let mut h = harness(preset);
    settle(&mut h);
    h.get_by_label("Start").click();
    step_until(&mut h, "the first predictions", Duration::from_secs(60), |a| a.inspect.predictions.is_some());
    let (t, p, n) = largest_mistake(h.state());
    assert!(n > 0, "an untrained model makes mistakes");
    let names = h.state().run.class_names.clone();
    h.get_by_label(&format!("true {}, predicted {}: {n}", names[t], names[p])).click();
    h.run();
    assert_eq!(h.state().inspect.gallery, Some(GalleryMode::Cell { truth: t as u32, predicted: p as u32 }));
    // the worker answers the samples while it trains
    let start = Instant::now();
    let first = loop {
        if let Some(n) = gallery_shows(&h, t, p) {
            break (n, h.state().inspect.predictions.as_ref().unwrap().epoch);
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the gallery did not fill within 10 s");
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    };
    // the next epoch's predictions re-fill the same cell
    step_until(&mut h, "the next epoch's predictions", Duration::from_secs(60), |a| {
        a.inspect.predictions.as_ref().is_some_and(|q| q.epoch > first.1)
    });
    let start = Instant::now();
    while gallery_shows(&h, t, p).is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "the gallery did not follow the epoch");
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.get_by_label("Stop").click();
    step_until(&mut h, "the stop", Duration::from_secs(20), |a| a.run.phase == Phase::Finished(RunStatus::Stopped));

    // where that run stopped depends on timing: a run of 3 epochs ends the same every time
    h.state_mut().preset.train.epochs = 3;
    run_to_completion(&mut h);
    step_until(&mut h, "the last predictions", Duration::from_secs(20), |a| {
        a.inspect.predictions.as_ref().is_some_and(|q| q.epoch == 3)
    });
    let (t, p, n) = largest_mistake(h.state());
    h.get_by_label(&format!("true {}, predicted {}: {n}", names[t], names[p])).click();
    step_until(&mut h, "the cell's samples", Duration::from_secs(10), |a| {
        a.inspect.gallery_indices().iter().take(24).all(|i| a.inspect.samples.contains_key(i))
    });
    h.run();
    assert!(gallery_shows(&h, t, p).is_some());

    // the metrics table: a row per class and the averages; the supports are the validation set
    let confusion = h.state().run.latest_epoch().unwrap().validation.confusion.clone();
    let validation = h.state().inspect.predictions.as_ref().unwrap().truth.len() as u64;
    let report = confusion.per_class();
    assert_eq!(report.rows.iter().map(|r| r.support).sum::<u64>(), validation);
    h.get_by_label("macro avg");
    h.get_by_label("weighted avg");
    for r in &report.rows {
        assert!(h.query_all_by_label(&r.support.to_string()).count() >= 1, "support {} shown", r.support);
    }
    // counts become shares of the true class
    let count = confusion.get(t, p);
    let share = 100.0 * count as f64 / confusion.row_total(t) as f64;
    h.get_by_label(&format!("true {}, predicted {}: {count}", names[t], names[p]));
    h.get_by_label("Row-normalised").click();
    h.run();
    h.get_by_label(&format!("true {}, predicted {}: {share:.1}%", names[t], names[p]));
    h.get_by_label("Counts").click();
    h.state_mut().run.fix_timings_for_snapshot(20_000.0, 5.0);
    h.run();
    h.snapshot("evaluation");

    // the most confident mistakes first
    h.get_by_label("Confidently wrong").click();
    step_until(&mut h, "the mistakes' pictures", Duration::from_secs(20), |a| {
        a.inspect.gallery_indices().iter().take(24).all(|i| a.inspect.samples.contains_key(i))
    });
    let shown = h.state().inspect.gallery_indices();
    let q = h.state().inspect.predictions.clone().unwrap();
    assert!(shown.iter().all(|&i| q.truth[i] != q.top[i][0].0), "only mistakes");
    assert!(shown.windows(2).all(|w| q.top[w[0]][0].1 >= q.top[w[1]][0].1), "the surest first");
    h.run();
    h.snapshot("confidently_wrong");
}

/// Drags the pointer from `from` to `to` (pad fractions) over the drawing pad.
fn stroke(h: &mut Harness<'_, GradlabApp>, from: [f32; 2], to: [f32; 2]) {
    let rect = h.get_by_label("Drawing pad").rect();
    let at = |f: [f32; 2]| rect.min + egui::vec2(f[0], f[1]) * rect.size();
    h.hover_at(at(from));
    h.step();
    h.drag_at(at(from));
    h.step();
    for i in 1..=12 {
        let t = i as f32 / 12.0;
        h.hover_at(at([from[0] + (to[0] - from[0]) * t, from[1] + (to[1] - from[1]) * t]));
        h.step();
    }
    h.drop_at(at(to));
    h.step();
}

/// The app after a short run of the built-in `name` (its data limited), showing the Inside tab.
fn trained_then_inside(name: &str, limit: usize, epochs: usize) -> Harness<'static, GradlabApp> {
    let mut preset = Preset::builtin(name).unwrap();
    preset.data.limit = limit;
    preset.train.epochs = epochs;
    let mut h = harness(preset);
    settle(&mut h);
    run_to_completion(&mut h);
    h.get_by_label("Inside").click();
    h.run();
    h
}

fn pad_probabilities(app: &GradlabApp) -> Option<Vec<f32>> {
    app.inspect.pad_probabilities.clone()
}

#[test]
fn drawing_on_the_pad_updates_the_probabilities() {
    let mut h = trained_then_inside("mnist_mlp", 2000, 2);
    assert_eq!(h.state().inspect.panel, InsidePanel::TryIt);
    assert!(pad_probabilities(h.state()).is_none(), "an empty pad asks nothing");
    stroke(&mut h, [0.5, 0.15], [0.5, 0.85]);
    step_until(&mut h, "the probabilities", Duration::from_secs(10), |a| {
        a.inspect.pad_settled() && pad_probabilities(a).is_some()
    });
    let vertical = pad_probabilities(h.state()).unwrap();
    assert_eq!(vertical.len(), 10);
    assert!((vertical.iter().sum::<f32>() - 1.0).abs() < 1e-3, "{vertical:?}");
    let version = h.state().inspect.pad.version;
    stroke(&mut h, [0.2, 0.5], [0.8, 0.5]);
    assert!(h.state().inspect.pad.version > version);
    // the pad asks while you draw; the last answer is for the whole cross
    step_until(&mut h, "the cross's probabilities", Duration::from_secs(10), |a| {
        a.inspect.pad_settled() && pad_probabilities(a).is_some_and(|p| p != vertical)
    });
    let cross = pad_probabilities(h.state()).unwrap();
    assert!((cross.iter().sum::<f32>() - 1.0).abs() < 1e-3);
    h.run();
    h.state_mut().run.fix_timings_for_snapshot(20_000.0, 2.0);
    h.run();
    h.snapshot("draw_pad");
    h.get_by_label("Clear").click();
    step_until(&mut h, "no probabilities", Duration::from_secs(5), |a| pad_probabilities(a).is_none());
    assert!(h.state().inspect.pad.strokes.is_empty());
}

#[test]
fn the_filters_view_shows_conv1_and_maps_of_a_sample() {
    let mut h = trained_then_inside("mnist_cnn", 1000, 1);
    h.get_by_label("Filters").click();
    step_until(&mut h, "the filters", Duration::from_secs(20), |a| a.inspect.filters.is_some());
    h.run();
    assert!(
        matches!(h.state().inspect.filters, Some(Ok(_))),
        "{:?}",
        h.state().inspect.filters.as_ref().map(|f| f.as_ref().err())
    );
    for i in 1..=32 {
        h.get_by_label(&format!("conv1 filter {i}"));
    }
    assert!(h.query_by_label("conv1 filter 33").is_none());
    h.state_mut().run.fix_timings_for_snapshot(2_000.0, 2.0);
    h.run();
    h.snapshot("filters");

    // Maps on a gallery card: the Training tab's gallery, then the Inside tab shows its maps
    h.state_mut().view = View::Training;
    h.run();
    h.get_by_label("Least confident").click();
    step_until(&mut h, "the cards", Duration::from_secs(20), |a| {
        a.inspect.gallery_indices().iter().take(24).all(|i| a.inspect.samples.contains_key(i))
    });
    h.run();
    h.get_all_by_label("Maps").next().unwrap().click();
    step_until(&mut h, "the activation maps", Duration::from_secs(20), |a| {
        a.inspect.activations.as_ref().is_some_and(|(_, r)| r.is_ok())
    });
    h.run();
    assert_eq!(h.state().view, View::Inside);
    h.get_by_label("conv1 map 1");
    h.run();
    h.snapshot("activations");
}

#[test]
fn the_spiral_boundary_follows_training_with_a_tile_per_unit() {
    // the boundary of a small MLP while it trains, with a tile per hidden unit
    let mut preset = Preset::builtin("spiral_mlp").unwrap();
    preset.model = toml::from_str("kind = \"mlp\"\nhidden = [8, 8]\nactivation = \"relu\"").unwrap();
    preset.train.epochs = 400;
    let mut h = harness(preset);
    settle(&mut h);
    h.get_by_label("Start").click();
    h.step();
    step_until(&mut h, "the run", Duration::from_secs(30), |a| a.run.phase == Phase::Running);
    h.get_by_label("Inside").click();
    h.run();
    h.get_by_label("Decision boundary").click();
    step_until(&mut h, "two boundary maps", Duration::from_secs(20), |a| a.inspect.boundaries_seen >= 2);
    h.get_by_label("Stop").click();
    step_until(&mut h, "the stop", Duration::from_secs(20), |a| matches!(a.run.phase, Phase::Finished(_)));
    // a finished run's last map is the same every time (the stopped one's is not)
    h.state_mut().preset.train.epochs = 30;
    run_to_completion(&mut h);
    // opening the tab after the run asks for its final map (an earlier one may have come at
    // its start, before the Training tab unsubscribed)
    let seen = h.state().inspect.boundaries_seen;
    h.state_mut().view = View::Inside;
    step_until(&mut h, "the final boundary", Duration::from_secs(20), |a| a.inspect.boundaries_seen > seen);
    h.run();
    h.get_by_label("fc1 unit 1");
    h.get_by_label("fc2 unit 8");
    h.state_mut().run.fix_timings_for_snapshot(20_000.0, 2.0);
    h.run();
    h.snapshot("boundary_spiral");
}

#[test]
fn layer_statistics_while_training_and_saliency_after() {
    // layer statistics of an MLP: a row per dense layer, dead shares in [0, 1]
    let mut preset = Preset::builtin("mnist_mlp").unwrap();
    preset.data.limit = 2000;
    preset.train.epochs = 300;
    let mut h = harness(preset);
    settle(&mut h);
    h.get_by_label("Start").click();
    h.step();
    step_until(&mut h, "the run", Duration::from_secs(30), |a| a.run.phase == Phase::Running);
    h.get_by_label("Inside").click();
    h.run();
    h.get_by_label("Layer statistics").click();
    step_until(&mut h, "a few statistics", Duration::from_secs(30), |a| a.inspect.layer_stats.len() >= 3);
    h.get_by_label("Pause").click();
    step_until(&mut h, "the pause", Duration::from_secs(20), |a| a.run.phase == Phase::Paused);
    h.run();
    let latest = h.state().inspect.layer_stats.last().unwrap().clone();
    let names: Vec<&str> = latest.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["fc1.weight", "fc2.weight", "fc3.weight"]);
    // each row: the layer's name, its dead share (hidden layers only) and its update ratio
    let shown = |h: &Harness<'_, GradlabApp>, label: &str| h.query_all_by_label(label).count();
    for (k, l) in latest.layers.iter().enumerate() {
        assert_eq!(shown(&h, &l.name), 1, "{}'s row", l.name);
        assert!(shown(&h, &format!("update ratio {:.1e}", l.update_ratio)) >= 1, "{}'s ratio", l.name);
        if k < 2 {
            let dead = l.dead_relu.expect("a ReLU follows the hidden layers");
            assert!((0.0..=1.0).contains(&dead), "{dead}");
            assert!(shown(&h, &format!("dead ReLU {:.1}%", 100.0 * dead)) >= 1, "{}'s dead share", l.name);
        } else {
            assert_eq!(l.dead_relu, None, "no ReLU after the output layer");
        }
    }
    let rows_with_dead = h.query_all_by_label_contains("dead ReLU").count();
    assert_eq!(rows_with_dead, 2, "a dead share for each hidden layer, none for the output");
    // the steps that get statistics follow the measured step time, so the plots differ from run
    // to run: a screenshot for people to look at, not compared
    h.state_mut().run.fix_timings_for_snapshot(20_000.0, 2.0);
    h.run();
    let picture = h.render().expect("the window renders");
    picture.save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("layer_stats.png")).unwrap();

    // saliency of a validation sample (of a run that ends the same every time): the gradient,
    // then integrated gradients
    h.get_by_label("Stop").click();
    step_until(&mut h, "the stop", Duration::from_secs(20), |a| matches!(a.run.phase, Phase::Finished(_)));
    h.state_mut().preset.train.epochs = 2;
    run_to_completion(&mut h);
    h.state_mut().view = View::Training;
    h.run();
    h.get_by_label("Confidently wrong").click();
    step_until(&mut h, "the cards", Duration::from_secs(20), |a| {
        a.inspect.gallery_indices().iter().take(24).all(|i| a.inspect.samples.contains_key(i))
    });
    h.run();
    h.get_all_by_label("Why?").next().unwrap().click();
    step_until(&mut h, "the gradient map", Duration::from_secs(20), |a| a.inspect.saliency.values().any(Result::is_ok));
    assert_eq!(h.state().view, View::Inside);
    h.get_by_label("Integrated gradients").click();
    step_until(&mut h, "both maps", Duration::from_secs(20), |a| {
        a.inspect.saliency.values().filter(|m| m.is_ok()).count() == 2
    });
    h.run();
    h.get_by_label("Gradient map");
    h.get_by_label("Integrated gradients map");
    // the completeness check: the attributions add up to the change of log p
    h.get_by_label_contains("attributions sum");
    h.get_by_label_contains("log p changed");
    h.state_mut().run.fix_timings_for_snapshot(20_000.0, 2.0);
    h.run();
    h.snapshot("saliency");
}
