//! A preset reproduces its run at any thread count: a run started in the CLI with 2 threads and
//! resumed in the GUI with 1 must go on to the same figures. Each run here trains in its own
//! rayon pool (1, 2, and more threads than the machine has cores) and every step loss, every
//! validation loss and the final weights must agree to the bit.

use candle_core::Device;
use gradlab::train::{cores, Session};
use gradlab::Preset;
use rayon::{ThreadPool, ThreadPoolBuilder};

/// Two conv blocks on real MNIST digits: at 64 images of 26x26 outputs, conv1's weight gradient
/// reduces over 43,264 rows and conv2's over 7,744, the long reductions the kernels split.
const CNN: &str = r#"
title = "determinism CNN"
seed = 11
[data]
set = "mnist-5k"
limit = 448
validation_fraction = 0.15
[model]
kind = "cnn"
conv = [{ channels = 16, kernel = 3, pool = 2 }, { channels = 32, kernel = 3, padding = 1, pool = 2 }]
hidden = [32]
activation = "relu"
dropout = 0.25
[train]
optimizer = "adam"
learning_rate = 0.002
batch_size = 64
epochs = 2
"#;

/// An MLP wide enough that its GEMMs run on several threads, with dropout drawing from the RNG.
const MLP: &str = r#"
title = "determinism MLP"
seed = 5
[data]
set = "mnist-5k"
limit = 600
validation_fraction = 0.15
[model]
kind = "mlp"
hidden = [256, 128]
activation = "gelu"
dropout = 0.2
[train]
optimizer = "sgd"
momentum = 0.9
weight_decay = 0.0001
learning_rate = 0.05
batch_size = 100
epochs = 2
"#;

/// Everything a user sees of a run, as bits.
#[derive(Debug, PartialEq)]
struct Trace {
    step_losses: Vec<u64>,
    validation_losses: Vec<u64>,
    weights: Vec<(String, Vec<u32>)>,
}

fn pool(threads: usize) -> ThreadPool {
    ThreadPoolBuilder::new().num_threads(threads).build().expect("a compute pool")
}

/// Trains the preset to the end, running batch `i` in `pools[i % pools.len()]`.
fn train(preset: &Preset, pools: &[ThreadPool]) -> Trace {
    let data = gradlab::data::load(&preset.data, preset.seed).expect("the data loads");
    let mut session = pools[0].install(|| Session::new(preset.clone(), data, Device::Cpu)).expect("the session starts");
    let mut trace = Trace { step_losses: vec![], validation_losses: vec![], weights: vec![] };
    let mut i = 0;
    while !session.finished() {
        while !session.epoch_done() {
            let step = pools[i % pools.len()].install(|| session.train_batch()).expect("the batch trains");
            trace.step_losses.push(step.loss.to_bits());
            i += 1;
        }
        let epoch = pools[i % pools.len()].install(|| session.finish_epoch(0.0)).expect("the epoch closes");
        trace.validation_losses.push(epoch.validation.loss.to_bits());
    }
    for (name, var) in session.net.params() {
        let values = var.as_tensor().flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("weights");
        trace.weights.push((name.clone(), values.iter().map(|v| v.to_bits()).collect()));
    }
    trace
}

fn first_difference(a: &Trace, b: &Trace) -> String {
    if let Some(i) = a.step_losses.iter().zip(&b.step_losses).position(|(x, y)| x != y) {
        return format!(
            "step {}: loss {} vs {}",
            i + 1,
            f64::from_bits(a.step_losses[i]),
            f64::from_bits(b.step_losses[i])
        );
    }
    if a.validation_losses != b.validation_losses {
        return "validation losses differ".into();
    }
    for ((name, x), (_, y)) in a.weights.iter().zip(&b.weights) {
        if let Some(j) = x.iter().zip(y).position(|(p, q)| p != q) {
            return format!("{name}[{j}]: {} vs {}", f32::from_bits(x[j]), f32::from_bits(y[j]));
        }
    }
    "lengths differ".into()
}

fn check_thread_counts(toml: &str) {
    let preset = Preset::from_toml(toml, "determinism test").expect("the preset parses");
    let many = 5.max(cores() + 1);
    let reference = train(&preset, &[pool(1)]);
    assert!(reference.step_losses.len() >= 10, "{} steps", reference.step_losses.len());
    for pools in [vec![pool(2)], vec![pool(many)], vec![pool(2), pool(1), pool(many)]] {
        let threads: Vec<usize> = pools.iter().map(ThreadPool::current_num_threads).collect();
        let other = train(&preset, &pools);
        assert!(
            reference == other,
            "{}: 1 thread vs {threads:?}: {}",
            preset.title,
            first_difference(&reference, &other)
        );
    }
}

#[test]
fn cnn_trains_to_the_same_bits_at_any_thread_count() {
    check_thread_counts(CNN);
}

#[test]
fn mlp_trains_to_the_same_bits_at_any_thread_count() {
    check_thread_counts(MLP);
}

/// The CNN trained on augmented images: every transform draws from the sample's own stream,
/// on the data thread, so the bits still do not depend on the threads.
#[test]
fn augmented_cnn_trains_to_the_same_bits_at_any_thread_count() {
    let toml = format!(
        "{CNN}[augment]\nflip = true\nrotate = 12.0\nshift = 2\nnoise = 0.1\nbrightness = 0.3\ncontrast = 0.3\ncutout = 5\n"
    );
    check_thread_counts(&toml);
}
