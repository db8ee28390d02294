//! What the inside views cost the training: samples/s with nothing subscribed against layer
//! statistics and the boundary subscribed plus a question (classify, saliency, activations)
//! every 100 ms, the way the Inside tab asks while open. Three alternations per model, the
//! training thread headless.
//!
//! `cargo run --example inside_cost [batches]` (300 by default).

use std::time::{Duration, Instant};

use gradlab::train::inspect::{InputRef, InspectRequest, InspectWhat, SaliencyMethod, Views};
use gradlab::train::{Command, Event, RunRequest, Trainer, WorkerOptions};
use gradlab::Preset;

/// Steps left out at the start (data loading, first-touch of buffers).
const WARM_UP: usize = 20;

/// Samples/s over steps WARM_UP..batches by the run's own clock, and the questions answered.
fn measure(preset: &Preset, batches: usize, views: bool) -> (f64, usize, usize) {
    let trainer = Trainer::spawn(WorkerOptions::headless(None));
    if views {
        trainer.send(Command::Subscribe(Views::ALL));
    }
    trainer.send(RunRequest::fresh(preset.clone()));
    let (mut from, mut answers, mut stats, mut id) = (None, 0, 0, 0u64);
    let mut last_question = Instant::now();
    let rate = loop {
        if views && last_question.elapsed() >= Duration::from_millis(100) {
            last_question = Instant::now();
            id += 1;
            let input = InputRef::Validation(id as usize % 100);
            let what = match id % 3 {
                0 => InspectWhat::Classify(input),
                1 => InspectWhat::Saliency { input, class: 0, method: SaliencyMethod::Gradient },
                _ => InspectWhat::Activations(input),
            };
            trainer.send(Command::Inspect(Box::new(InspectRequest { id, what })));
        }
        match trainer.recv_timeout(Duration::from_millis(20)) {
            Some(Event::Step { global_step, elapsed_s, .. }) => {
                if global_step >= WARM_UP && from.is_none() {
                    from = Some((global_step, elapsed_s));
                }
                if global_step >= batches {
                    let (s0, t0) = from.expect("the warm-up ended");
                    break ((global_step - s0) * preset.train.batch_size) as f64 / (elapsed_s - t0).max(1e-9);
                }
            }
            Some(Event::Inspected { .. }) => answers += 1,
            Some(Event::LayerStats(_)) => stats += 1,
            Some(Event::Failed { error }) => panic!("{error}"),
            _ => {}
        }
    };
    trainer.send(Command::Stop);
    while let Some(event) = trainer.recv_timeout(Duration::from_secs(60)) {
        if matches!(event, Event::Finished(_) | Event::Failed { .. }) {
            break;
        }
    }
    (rate, answers, stats)
}

fn main() {
    let batches: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(300);
    println!("model        | views | samples/s (3 alternations)    | mean    | answers | layer stats");
    for name in ["mnist_cnn", "mnist_mlp"] {
        let mut preset = Preset::builtin(name).expect("a built-in preset");
        preset.train.epochs = 1000; // the run is stopped after `batches` steps
        let mut rows = [Vec::new(), Vec::new()];
        let mut extra = [(0, 0), (0, 0)];
        for _ in 0..3 {
            for (i, views) in [false, true].into_iter().enumerate() {
                let (rate, answers, stats) = measure(&preset, batches, views);
                rows[i].push(rate);
                extra[i].0 += answers;
                extra[i].1 += stats;
            }
        }
        for (i, label) in ["off", "on"].iter().enumerate() {
            let mean = rows[i].iter().sum::<f64>() / rows[i].len() as f64;
            let each: Vec<String> = rows[i].iter().map(|r| format!("{r:8.0}")).collect();
            println!("{name:12} | {label:5} | {} | {mean:7.0} | {:7} | {}", each.join(" "), extra[i].0, extra[i].1);
        }
    }
}
