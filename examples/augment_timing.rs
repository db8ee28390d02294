//! Training samples/s with and without augmentation, with batches cut on the "gradlab-data"
//! thread or inline, and the cost of augmenting one batch alone.
//!
//! `cargo run --release --example augment_timing -- [preset ...] [--batches N] [--limit N]`
//! (default: mnist_cnn and fashion_mnist_cnn, 60 batches after 5 of warm-up, all cores).

use std::time::Instant;

use candle_core::Device;
use gradlab::data::{self, AugmentSpec, Augmenter};
use gradlab::train::Session;
use gradlab::Preset;

fn augment() -> AugmentSpec {
    AugmentSpec {
        flip: true,
        rotate: 10.0,
        shift: 2,
        noise: 0.05,
        brightness: 0.2,
        contrast: 0.2,
        cutout: 8,
        ..AugmentSpec::default()
    }
}

fn main() -> gradlab::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (batches, limit) = (value("--batches", 60), value("--limit", 20_000));
    let mut names: Vec<&str> = args.iter().take_while(|a| !a.starts_with("--")).map(String::as_str).collect();
    if names.is_empty() {
        names = vec!["mnist_cnn", "fashion_mnist_cnn"];
    }
    let threads = gradlab::train::cores();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a compute pool");
    println!("{threads} compute threads, {batches} batches after 5 of warm-up");
    for name in names {
        let mut preset = Preset::builtin(name)?;
        preset.data.limit = limit;
        let data = data::load(&preset.data, preset.seed)?;
        let augmenter = Augmenter::new(&augment(), data.kind, &data.id, &data.input_shape, &data.normalization, 1)?
            .expect("transforms are on");
        let bs = preset.train.batch_size;
        let mut values: Vec<f32> = data.train.features[..bs * augmenter.sample_len()].to_vec();
        let started = Instant::now();
        for i in 0..20 {
            augmenter.apply_batch(&mut values, i, 0, data.train.len())?;
        }
        println!(
            "{name}: augmenting a batch of {bs} (all 7 transforms): {:.2} ms",
            started.elapsed().as_secs_f64() * 50.0
        );
        let full = augment();
        let alone = [
            ("flip", AugmentSpec { flip: true, ..AugmentSpec::default() }),
            ("rotate", AugmentSpec { rotate: full.rotate, ..AugmentSpec::default() }),
            ("shift", AugmentSpec { shift: full.shift, ..AugmentSpec::default() }),
            ("noise", AugmentSpec { noise: full.noise, ..AugmentSpec::default() }),
            ("brightness", AugmentSpec { brightness: full.brightness, ..AugmentSpec::default() }),
            ("contrast", AugmentSpec { contrast: full.contrast, ..AugmentSpec::default() }),
            ("cutout", AugmentSpec { cutout: full.cutout, ..AugmentSpec::default() }),
        ];
        for (what, spec) in alone {
            let one = Augmenter::new(&spec, data.kind, &data.id, &data.input_shape, &data.normalization, 1)?
                .expect("a transform is on");
            let started = Instant::now();
            for i in 0..20 {
                one.apply_batch(&mut values, i, 0, data.train.len())?;
            }
            println!("  {what} alone: {:.2} ms", started.elapsed().as_secs_f64() * 50.0);
        }
        for (augmented, threaded) in [(false, false), (false, true), (true, false), (true, true)] {
            let mut p = preset.clone();
            p.augment = if augmented { augment() } else { AugmentSpec::default() };
            let mut session = pool.install(|| Session::new(p, data.clone(), Device::Cpu))?;
            session.batches.threaded = threaded;
            let mut samples = 0;
            let mut started = Instant::now();
            for i in 0..batches + 5 {
                if i == 5 {
                    (samples, started) = (0, Instant::now());
                }
                if session.epoch_done() {
                    session.finish_epoch(0.0)?;
                }
                samples += pool.install(|| session.train_batch())?.size;
            }
            println!(
                "{name}: augmentation {}, batches {}: {:.0} samples/s",
                if augmented { "on " } else { "off" },
                if threaded { "on the data thread" } else { "inline" },
                samples as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
