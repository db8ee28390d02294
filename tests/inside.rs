//! Looking inside a model from the training thread: per-epoch predictions, inspect questions
//! answered during and after a run, the views never changing a run's numbers, the learning-rate
//! finder, and the step rows' wall time.

mod common;

use std::path::Path;
use std::time::Duration;

use gradlab::model::ModelSpec;
use gradlab::train::inspect::{InputRef, InspectReply, InspectRequest, InspectWhat, SaliencyMethod, Views};
use gradlab::train::lr_finder::LrFinderRequest;
use gradlab::train::{Command, Confusion, Event, RunOrigin, RunRequest, RunStatus, Trainer, WorkerOptions};
use gradlab::Preset;

fn recv(trainer: &Trainer) -> Event {
    trainer.recv_timeout(Duration::from_secs(300)).expect("the training thread went quiet")
}

fn small(name: &str, limit: usize, epochs: usize) -> Preset {
    let mut p = Preset::builtin(name).unwrap();
    p.data.limit = limit;
    p.train.epochs = epochs;
    p
}

#[test]
fn each_epochs_predictions_reproduce_its_confusion_matrix() {
    let trainer = Trainer::spawn(WorkerOptions::headless(None));
    assert!(trainer.send(RunRequest::fresh(small("mnist_mlp", 1500, 2))));
    let mut epoch = None;
    let mut checked = 0;
    loop {
        match recv(&trainer) {
            Event::Epoch(m) => epoch = Some(m),
            Event::Predictions(p) => {
                let m = epoch.take().expect("predictions follow their epoch");
                assert_eq!(p.epoch, m.epoch);
                let mut confusion = Confusion::new(m.validation.confusion.classes);
                for (t, top) in p.truth.iter().zip(&p.top) {
                    confusion.add(*t, top[0].0);
                    assert!(top[0].1 >= top[1].1 && top[1].1 >= top[2].1, "{top:?}");
                    assert!(top.iter().map(|(_, q)| q).sum::<f32>() <= 1.0 + 1e-5, "{top:?}");
                }
                assert_eq!(confusion.counts, m.validation.confusion.counts, "epoch {}", m.epoch);
                checked += 1;
            }
            Event::Finished(s) => {
                assert_eq!(s.status, RunStatus::Completed);
                break;
            }
            Event::Failed { error } => panic!("{error}"),
            _ => {}
        }
    }
    assert_eq!(checked, 2);
}

fn ask(trainer: &Trainer, id: u64, what: InspectWhat) -> InspectReply {
    assert!(trainer.send(Command::Inspect(Box::new(InspectRequest { id, what }))));
    loop {
        match recv(trainer) {
            Event::Inspected { id: got, reply } if got == id => return *reply,
            Event::Inspected { id: got, .. } => panic!("answer {got} to question {id}"),
            _ => {}
        }
    }
}

fn finish(trainer: &Trainer) {
    let out = common::collect(trainer);
    assert_eq!(out.summary.expect("finished").status, RunStatus::Completed, "{:?}", out.failure);
}

#[test]
fn a_finished_runs_model_answers_questions() {
    let trainer = Trainer::spawn(WorkerOptions::headless(None));
    assert!(trainer.send(RunRequest::fresh(small("mnist_cnn", 600, 1))));
    finish(&trainer);
    let InspectReply::Samples(samples) = ask(&trainer, 1, InspectWhat::Samples(vec![3, 0])) else { panic!() };
    assert_eq!(samples.iter().map(|s| s.index).collect::<Vec<_>>(), [3, 0]);
    let picture = samples[0].picture.clone().expect("an image set's sample has a picture");
    assert_eq!((picture.w, picture.h, picture.channels, picture.bytes.len()), (28, 28, 1, 784));
    assert!(picture.bytes.iter().any(|b| *b > 200) && picture.bytes.contains(&0), "undone normalisation");
    // the picture's raw pixels are read exactly as training read the sample
    let InspectReply::Probabilities(by_index) = ask(&trainer, 2, InspectWhat::Classify(InputRef::Validation(3))) else {
        panic!()
    };
    let raw: Vec<f32> = picture.bytes.iter().map(|b| f32::from(*b)).collect();
    let InspectReply::Probabilities(by_pixels) = ask(&trainer, 3, InspectWhat::Classify(InputRef::Raw(raw))) else {
        panic!()
    };
    assert_eq!(by_index.len(), 10);
    assert!((by_index.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    for (a, b) in by_index.iter().zip(&by_pixels) {
        assert!((a - b).abs() < 1e-4, "{by_index:?} vs {by_pixels:?}");
    }
    let class = samples[0].truth as usize;
    let gradient = InspectWhat::Saliency { input: InputRef::Validation(3), class, method: SaliencyMethod::Gradient };
    let InspectReply::Saliency(map) = ask(&trainer, 4, gradient) else { panic!() };
    assert_eq!((map.h, map.w, map.map.len(), map.signed), (28, 28, 784, false));
    assert!(map.map.iter().any(|v| *v > 0.0));
    let ig = InspectWhat::Saliency {
        input: InputRef::Validation(3),
        class,
        method: SaliencyMethod::Integrated { steps: 32 },
    };
    let InspectReply::Saliency(map) = ask(&trainer, 5, ig) else { panic!() };
    assert!(map.signed && map.delta_log_p.is_finite() && map.sum.is_finite());
    let InspectReply::Filters(f) = ask(&trainer, 6, InspectWhat::Filters) else { panic!() };
    assert_eq!((f.layer.as_str(), f.in_channels), ("conv1", 1));
    assert_eq!(f.values.len(), f.out * f.in_channels * f.k * f.k);
    let InspectReply::Activations(maps) = ask(&trainer, 7, InspectWhat::Activations(InputRef::Validation(3))) else {
        panic!()
    };
    assert_eq!(maps[0].name, "conv1");
    // bad input is refused naming what is wrong, never a panic
    let InspectReply::Unavailable(why) = ask(&trainer, 8, InspectWhat::Classify(InputRef::Raw(vec![0.0; 5]))) else {
        panic!()
    };
    assert!(why.contains("5 values") && why.contains("784"), "{why}");
    let InspectReply::Unavailable(why) = ask(&trainer, 9, InspectWhat::Samples(vec![1_000_000])) else { panic!() };
    assert!(why.contains("1000000"), "{why}");

    assert!(trainer.send(RunRequest::fresh(small("mnist_mlp", 600, 1))));
    finish(&trainer);
    let InspectReply::Unavailable(why) = ask(&trainer, 10, InspectWhat::Filters) else { panic!() };
    assert!(why.contains("no conv layer"), "{why}");
}

/// Trains into `runs` with the views subscribed and a question every 2nd step when `inspect`
/// (every kind of question several times in these short runs).
fn run_with_views(preset: &Preset, runs: &Path, inspect: bool) -> std::path::PathBuf {
    let trainer = Trainer::spawn(WorkerOptions::headless(Some(runs.to_path_buf())));
    if inspect {
        assert!(trainer.send(Command::Subscribe(Views::ALL)));
    }
    assert!(trainer.send(RunRequest::fresh(preset.clone())));
    let (mut stats, mut boundaries, mut answers, mut id) = (0, 0, 0, 0u64);
    loop {
        match recv(&trainer) {
            Event::Step { global_step, .. } if inspect && global_step % 2 == 0 => {
                id += 1;
                let input = InputRef::Validation(id as usize % 50);
                let what = match id % 4 {
                    0 => InspectWhat::Classify(input),
                    1 => InspectWhat::Saliency { input, class: 1, method: SaliencyMethod::Gradient },
                    2 => InspectWhat::Samples(vec![1, 2, 3]),
                    // integrated gradients are for images and tables, not points
                    _ if preset.data.set == "spiral" => InspectWhat::Activations(input),
                    _ => InspectWhat::Saliency { input, class: 0, method: SaliencyMethod::Integrated { steps: 8 } },
                };
                assert!(trainer.send(Command::Inspect(Box::new(InspectRequest { id, what }))));
            }
            Event::Inspected { reply, .. } => {
                // a 2-D model has no activation maps: the question is still answered
                let refused = matches!(&*reply, InspectReply::Unavailable(why) if !why.contains("image models"));
                assert!(!refused, "{reply:?}");
                answers += 1;
            }
            Event::LayerStats(_) => stats += 1,
            Event::Boundary(_) => boundaries += 1,
            Event::Finished(s) => {
                assert_eq!(s.status, RunStatus::Completed);
                break;
            }
            Event::Failed { error } => panic!("{error}"),
            _ => {}
        }
    }
    if inspect {
        assert!(answers >= 8 && stats > 0, "{answers} answers, {stats} layer stats");
        if preset.data.set == "spiral" {
            assert!(boundaries > 0);
        }
    } else {
        assert_eq!((answers, stats, boundaries), (0, 0, 0));
    }
    common::only_run(runs)
}

fn same_numbers_with_and_without_views(preset: &Preset) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let plain = run_with_views(preset, a.path(), false);
    let viewed = run_with_views(preset, b.path(), true);
    assert_eq!(common::epoch_figures(&plain), common::epoch_figures(&viewed));
    let (p, v) = (gradlab::record::load_run(&plain).unwrap(), gradlab::record::load_run(&viewed).unwrap());
    assert!(!p.steps.is_empty());
    assert_eq!(p.steps, v.steps);
}

#[test]
fn the_views_never_change_a_runs_numbers() {
    // dropout draws from the run's RNG and batch norm updates its statistics in training: the
    // views must do neither
    let mut mlp = small("mnist_mlp", 1500, 2);
    mlp.model = toml::from_str::<ModelSpec>(
        "layers = [{ type = \"flatten\" }, { type = \"dense\", units = 64, activation = \"relu\" }, { type = \"batchnorm\" },
                   { type = \"dropout\", rate = 0.3 }, { type = \"dense\" }]",
    )
    .unwrap();
    same_numbers_with_and_without_views(&mlp);
    let mut spiral = small("spiral_mlp", 0, 3);
    spiral.model = toml::from_str::<ModelSpec>(
        "layers = [{ type = \"dense\", units = 8, activation = \"tanh\" }, { type = \"dense\", units = 8, activation = \"relu\" },
                   { type = \"dense\" }]",
    )
    .unwrap();
    same_numbers_with_and_without_views(&spiral);
    // conv workspaces, stats steps over a fused conv + pool, activations and integrated gradients
    // between conv batches; small batches for enough questions
    let mut cnn = small("mnist_cnn", 600, 1);
    cnn.train.batch_size = 16;
    same_numbers_with_and_without_views(&cnn);
}

#[test]
fn the_learning_rate_finder_sweeps_without_recording_and_stops() {
    let runs = tempfile::tempdir().unwrap();
    let trainer = Trainer::spawn(WorkerOptions::headless(Some(runs.path().to_path_buf())));
    let preset = Preset::builtin("spiral_mlp").unwrap();
    assert!(trainer.send(Command::FindLearningRate(Box::new(LrFinderRequest::new(preset.clone())))));
    let done = finder_end(&trainer);
    assert!(done.error.is_none(), "{:?}", done.error);
    assert!(done.points.len() >= 10, "{} points", done.points.len());
    assert!(done.points.windows(2).all(|w| w[1].lr > w[0].lr));
    let s = done.done.unwrap();
    assert!(s.steep > 1e-7 && s.steep < 10.0 && s.min_over_10 > 1e-8 && s.min_over_10 < 1.0, "{s:?}");
    assert!(gradlab::record::list_runs(runs.path()).is_empty(), "the finder records nothing");
    // the next run trains as if the finder had never run
    let mut run = preset.clone();
    run.train.epochs = 2;
    assert!(trainer.send(RunRequest::fresh(run)));
    let out = common::collect(&trainer);
    assert_eq!(out.epochs.len(), 2);
    let mut again = preset.clone();
    again.train.epochs = 2;
    let alone = common::train(again);
    assert_eq!(out.epochs[1].train_loss, alone.epochs[1].train_loss);

    // a small set is gone through more than once for all the steps asked for (spiral: 37 batches
    // an epoch); rates too low to blow up, so the sweep runs to its end
    let request = LrFinderRequest { max_lr: 1e-2, ..LrFinderRequest::new(preset.clone()) };
    assert!(trainer.send(Command::FindLearningRate(Box::new(request))));
    let done = finder_end(&trainer);
    assert!(done.error.is_none(), "{:?}", done.error);
    assert_eq!(done.points.len(), 100);

    // Stop ends a sweep
    assert!(trainer.send(Command::FindLearningRate(Box::new(long_sweep()))));
    let mut stopped = false;
    let last = loop {
        match recv(&trainer) {
            Event::LrFinder(p) if p.done.is_some() || p.error.is_some() => break p,
            Event::LrFinder(_) if !stopped => {
                stopped = true;
                assert!(trainer.send(Command::Stop));
            }
            _ => {}
        }
    };
    assert!(stopped);
    assert_eq!(last.error.as_deref(), Some("stopped"));
    assert!(last.points.len() < 3000);
}

/// A sweep long and tame enough (no blow-up) that a command sent at its first progress always
/// lands while it runs.
fn long_sweep() -> LrFinderRequest {
    let mut long = Preset::builtin("mnist_mlp").unwrap();
    long.train.batch_size = 16;
    LrFinderRequest { steps: 3000, max_lr: 1e-3, ..LrFinderRequest::new(long) }
}

fn finder_end(trainer: &Trainer) -> Box<gradlab::train::lr_finder::LrFinderProgress> {
    loop {
        match recv(trainer) {
            Event::LrFinder(p) if p.done.is_some() || p.error.is_some() => break p,
            Event::LrFinder(_) => {}
            other => panic!("the finder sends only its own events, not {other:?}"),
        }
    }
}

#[test]
fn during_the_finder_questions_are_answered_and_a_runs_folder_set_is_kept() {
    let runs = tempfile::tempdir().unwrap();
    let trainer = Trainer::spawn(WorkerOptions::headless(None));
    assert!(trainer.send(Command::FindLearningRate(Box::new(long_sweep()))));
    let Event::LrFinder(first) = recv(&trainer) else { panic!("the finder's progress first") };
    assert!(first.done.is_none() && first.error.is_none(), "{first:?}");
    assert!(trainer.send(Command::SetRunsDir(runs.path().to_path_buf())));
    // the question is answered at once (the GUI frees its one request in flight)
    let InspectReply::Unavailable(why) = ask(&trainer, 1, InspectWhat::Filters) else { panic!() };
    assert!(why.contains("learning-rate finder"), "{why}");
    assert!(trainer.send(Command::Stop));
    assert_eq!(finder_end(&trainer).error.as_deref(), Some("stopped"));
    // the folder set during the sweep takes the next run
    assert!(trainer.send(RunRequest::fresh(small("spiral_mlp", 0, 1))));
    finish(&trainer);
    common::only_run(runs.path());
}

#[test]
fn a_slow_receiver_keeps_the_final_boundary_and_counts_only_skipped_steps() {
    // one long epoch: no blocking epoch event lets the receiver catch up before the run's end
    let mut xor = Preset::builtin("xor_mlp").unwrap();
    xor.data.samples = 10_000;
    xor.train.batch_size = 4;
    xor.train.epochs = 1;
    let trainer = Trainer::spawn(WorkerOptions::headless(None));
    assert!(trainer.send(Command::Subscribe(Views::ALL)));
    assert!(trainer.send(RunRequest::fresh(xor)));
    // do not read for a while: the channel fills
    std::thread::sleep(Duration::from_secs(5));
    let (mut steps, mut stats, mut last_was_boundary) = (0u64, 0, false);
    loop {
        // a slow receiver: the channel stays full until the run's end
        std::thread::sleep(Duration::from_millis(4));
        let event = recv(&trainer);
        match &event {
            Event::Step { .. } => steps += 1,
            Event::LayerStats(_) => stats += 1,
            Event::Finished(s) => {
                assert_eq!(s.status, RunStatus::Completed);
                break;
            }
            Event::Failed { error } => panic!("{error}"),
            _ => {}
        }
        last_was_boundary = matches!(event, Event::Boundary(_));
    }
    assert!(trainer.dropped_steps() > 0 && stats > 0, "the test did not fill the channel");
    // dropped layer statistics and boundaries are not step updates
    assert_eq!(steps + trainer.dropped_steps(), 9_000u64.div_ceil(4));
    // the boundary of the trained model comes right before Finished, never dropped
    assert!(last_was_boundary, "the run's final boundary was lost");
}

#[test]
fn after_a_failed_run_questions_say_so() {
    let trainer = Trainer::spawn(WorkerOptions::headless(None));
    let mut broken = small("spiral_mlp", 0, 1);
    broken.data.set = "no_such_set".into();
    assert!(trainer.send(RunRequest::fresh(broken)));
    assert!(common::collect(&trainer).failure.is_some());
    let InspectReply::Unavailable(why) = ask(&trainer, 1, InspectWhat::Filters) else { panic!() };
    assert!(why.contains("the last run failed"), "{why}");
}

#[test]
fn step_rows_carry_the_runs_wall_time() {
    let runs = tempfile::tempdir().unwrap();
    let request = RunRequest { preset: small("mnist_mlp", 1500, 2), origin: RunOrigin::Fresh };
    let out = common::run_request(request, Some(runs.path()));
    assert!(out.failure.is_none());
    let run = gradlab::record::load_run(&common::only_run(runs.path())).unwrap();
    let n = run.steps.len();
    assert!(n > 10);
    assert_eq!((run.step_accuracy.len(), run.step_lr.len(), run.step_elapsed_s.len()), (n, n, n));
    assert!(run.step_elapsed_s.iter().all(|t| t.is_finite() && *t >= 0.0));
    assert!(run.step_elapsed_s.windows(2).all(|w| w[1] >= w[0]), "non-decreasing");
    assert!(run.step_accuracy.iter().all(|a| (0.0..=1.0).contains(a)));
    assert!(run.step_lr.iter().all(|lr| (*lr - 0.001).abs() < 1e-9));
    assert_eq!(run.batches_per_epoch, Some(n / 2));
    let epochs = &run.epochs;
    assert!(*run.step_elapsed_s.last().unwrap() as f64 <= epochs.last().unwrap().elapsed_s + 1e-3);
}

#[test]
fn a_2d_models_boundary_covers_its_points_with_probabilities_and_neuron_maps() {
    let trainer = Trainer::spawn(WorkerOptions::headless(None));
    let mut spiral = small("spiral_mlp", 0, 2);
    spiral.model = toml::from_str::<ModelSpec>(
        "layers = [{ type = \"dense\", units = 8, activation = \"tanh\" }, { type = \"dense\", units = 6, activation = \"relu\" },
                   { type = \"dense\" }]",
    )
    .unwrap();
    assert!(trainer.send(RunRequest::fresh(spiral)));
    finish(&trainer);
    // opened after the run: the last session's boundary comes at once
    assert!(trainer.send(Command::Subscribe(Views { layer_stats: false, boundary: true })));
    let map = loop {
        if let Event::Boundary(map) = recv(&trainer) {
            break map;
        }
    };
    let res = map.res;
    assert_eq!(map.probs.len(), res * res * map.classes);
    for cell in map.probs.chunks_exact(map.classes) {
        let total: u32 = cell.iter().map(|p| u32::from(*p)).sum();
        assert!(total.abs_diff(255) <= map.classes as u32, "{cell:?}");
    }
    let [x0, x1, y0, y1] = map.extent;
    assert!(!map.points.is_empty() && map.points.len() == map.labels.len());
    assert!(map.points.iter().all(|p| p[0] > x0 && p[0] < x1 && p[1] > y0 && p[1] < y1));
    // one map per hidden unit, 8 + 6
    assert_eq!(map.neurons.len(), 14);
    assert_eq!((map.neurons[0].layer.as_str(), map.neurons[13].unit), ("fc1", 5));
    assert!(map.neurons.iter().all(|n| n.values.len() == 32 * 32 && n.lo <= n.hi));
}
