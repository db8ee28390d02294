//! The portable path (every layer composed from candle ops, as it runs on CUDA and Metal), forced
//! on the CPU with `Compute::cpu_portable()`, against the fused CPU forms: every layer family's
//! outputs and gradients (of every parameter and of the input), and whole short training runs
//! (per-step losses and the final validation accuracy). No GPU exists here, so this is how the
//! GPU path is checked.

use std::path::Path;

use candle_core::{Device, Tensor, Var};
use gradlab::device::Compute;
use gradlab::model::{Mode, ModelInput, ModelSpec, Network};
use gradlab::rng::Rng;
use gradlab::task::Task;
use gradlab::train::Session;
use gradlab::Preset;

fn model(toml_layers: &str) -> ModelSpec {
    toml::from_str(&format!("layers = [\n{toml_layers}\n]\n")).unwrap()
}

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let v: Vec<f32> = (0..shape.iter().product()).map(|_| rng.normal()).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// `max |a - b| <= tolerance * (1 + max |a|)`, naming the case and the tensor when not.
fn close(case: &str, what: &str, a: &[f32], b: &[f32], tolerance: f32) {
    assert_eq!(a.len(), b.len(), "{case}: {what} has {} values on the CPU path, {} on the portable", a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let (at, diff) = a.iter().zip(b).map(|(x, y)| (x - y).abs()).enumerate().fold((0, 0f32), |m, (i, d)| {
        if d > m.1 || d.is_nan() {
            (i, d)
        } else {
            m
        }
    });
    assert!(
        diff <= tolerance * (1.0 + scale),
        "{case}: {what}[{at}] is {} on the CPU path and {} on the portable one (max |value| {scale})",
        a[at],
        b[at]
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Run {
    /// A training forward (dropout and sampling draw from one seeded RNG on both paths).
    Train,
    /// An evaluation forward after one training forward (batch norm's running statistics moved).
    Eval,
}

/// Output, gradients of every trainable parameter and of a float input, and every parameter's
/// value after the pass (buffers move in training), for one path.
struct Pass {
    output: Vec<f32>,
    grads: Vec<(String, Vec<f32>)>,
    input_grad: Option<Vec<f32>>,
    after: Vec<(String, Vec<f32>)>,
}

fn pass(case: &str, spec: &ModelSpec, input: &ModelInput, x: &Tensor, run: Run, compute: &Compute) -> Pass {
    let fail = |e: gradlab::Error| -> ! { panic!("{case} on {}: {e}", compute.label) };
    let net = Network::new_on(spec, input, 7, compute).unwrap_or_else(|e| fail(e));
    assert_eq!(net.portable(), compute.portable);
    let float_input = input.vocab.is_none();
    let x_var = Var::from_tensor(x).unwrap();
    let x_in = if float_input { x_var.as_tensor().clone() } else { x.clone() };
    let mut rng = Rng::new(99);
    if run == Run::Eval {
        net.forward(&x_in, &mut Mode::Train(&mut rng)).unwrap_or_else(|e| fail(e));
    }
    let y = match run {
        Run::Train => net.forward(&x_in, &mut Mode::Train(&mut rng)).unwrap_or_else(|e| fail(e)),
        Run::Eval => net.forward(&x_in, &mut Mode::Eval).unwrap_or_else(|e| fail(e)),
    };
    let g = random(y.dims(), 4);
    let grads = (&y * &g).and_then(|l| l.sum_all()?.backward()).unwrap_or_else(|e| fail(e.into()));
    let trained = net.params().iter().zip(net.trainable()).filter(|(_, t)| **t);
    Pass {
        output: values(&y),
        grads: trained
            .map(|((name, var), _)| {
                let grad = grads.get(var).unwrap_or_else(|| panic!("no gradient for {name}"));
                (name.clone(), values(grad))
            })
            .collect(),
        input_grad: float_input.then(|| values(grads.get(&x_var).expect("a gradient for the input"))),
        after: net.params().iter().map(|(name, var)| (name.clone(), values(var.as_tensor()))).collect(),
    }
}

/// Builds `layers` twice from one seed, on the CPU path and the portable one, and compares
/// within `1e-4 * (1 + max |value|)`.
fn compare(case: &str, layers: &str, input: &ModelInput, x: &Tensor, run: Run) {
    compare_within(case, layers, input, x, run, 1e-4);
}

fn compare_within(case: &str, layers: &str, input: &ModelInput, x: &Tensor, run: Run, tolerance: f32) {
    let spec = model(layers);
    let cpu = pass(case, &spec, input, x, run, &Compute::cpu());
    let portable = pass(case, &spec, input, x, run, &Compute::cpu_portable());
    close(case, "output", &cpu.output, &portable.output, tolerance);
    for ((name, a), (_, b)) in cpu.grads.iter().zip(&portable.grads) {
        close(case, &format!("gradient of {name}"), a, b, tolerance);
    }
    if let (Some(a), Some(b)) = (&cpu.input_grad, &portable.input_grad) {
        close(case, "input gradient", a, b, tolerance);
    }
    for ((name, a), (_, b)) in cpu.after.iter().zip(&portable.after) {
        close(case, &format!("{name} after the pass"), a, b, tolerance);
    }
}

fn image(c: usize, h: usize, w: usize) -> ModelInput {
    ModelInput::classify(&[c, h, w], 3)
}

#[test]
fn dense_layers_match_with_every_activation() {
    let input = ModelInput::classify(&[6], 3);
    let x = random(&[4, 6], 1);
    for act in ["relu", "tanh", "sigmoid", "gelu", "leaky_relu"] {
        let layers = format!("{{ type = \"dense\", units = 5, activation = \"{act}\" }}, {{ type = \"dense\" }}");
        compare(&format!("dense, {act}"), &layers, &input, &x, Run::Train);
        let layers =
            format!("{{ type = \"dense\", units = 5 }}, {{ type = \"activation\", activation = \"{act}\" }}, {{ type = \"dense\" }}");
        compare(&format!("dense + activation layer {act}"), &layers, &input, &x, Run::Train);
    }
}

#[test]
fn conv_blocks_match_on_square_and_non_square_images() {
    for (h, w) in [(8, 8), (7, 8), (9, 7)] {
        let x = random(&[2, 2, h, w], 2);
        for stride in [1, 2, 3] {
            for padding in [0, 1] {
                for pool in [false, true] {
                    let conv = format!(
                        "{{ type = \"conv2d\", channels = 3, kernel = 3, stride = {stride}, padding = {padding}, activation = \"relu\" }}"
                    );
                    let pooled = if pool { ", { type = \"maxpool\", size = 2 }" } else { "" };
                    let layers = format!("{conv}{pooled}, {{ type = \"flatten\" }}, {{ type = \"dense\" }}");
                    let case = format!("conv {h}x{w}, stride {stride}, padding {padding}, pool {pool}");
                    let spec = model(&layers);
                    if gradlab::model::plan(&spec, &image(2, h, w)).is_err() {
                        continue; // a pool larger than the map
                    }
                    compare(&case, &layers, &image(2, h, w), &x, Run::Train);
                }
            }
        }
    }
    // a flat background (most of an MNIST digit) gives tied maxima in the pools
    let flat: Vec<f32> = (0..2 * 2 * 12 * 10)
        .map(|i| {
            let (c, h, w) = ((i / 120) % 2, (i / 10) % 12, i % 10);
            if h < 3 && (w + c) % 3 == 0 {
                2.0
            } else {
                0.5
            }
        })
        .collect();
    let flat = Tensor::from_vec(flat, (2, 2, 12, 10), &Device::Cpu).unwrap();
    for (stride, padding) in [(1, 0), (2, 1)] {
        for act in ["relu", "tanh"] {
            let layers = format!(
                "{{ type = \"conv2d\", channels = 3, kernel = 3, stride = {stride}, padding = {padding}, activation = \"{act}\" }},
                 {{ type = \"maxpool\", size = 2 }}, {{ type = \"flatten\" }}, {{ type = \"dense\" }}"
            );
            let case = format!("conv stride {stride} + pool on a flat background, {act}");
            compare(&case, &layers, &image(2, 12, 10), &flat, Run::Train);
        }
    }
    // two convs, the second without an activation, on a non-square map
    let layers = "{ type = \"conv2d\", channels = 4, kernel = 3, stride = 2, padding = 1 },
        { type = \"conv2d\", channels = 2, kernel = 2, stride = 1, activation = \"tanh\" },
        { type = \"flatten\" }, { type = \"dense\" }";
    compare("two convs 11x8", layers, &image(1, 11, 8), &random(&[3, 1, 11, 8], 3), Run::Train);
}

#[test]
fn pools_match() {
    let x = random(&[2, 3, 7, 9], 5);
    for pool in ["maxpool", "avgpool"] {
        let layers = format!("{{ type = \"{pool}\", size = 2 }}, {{ type = \"flatten\" }}, {{ type = \"dense\" }}");
        compare(pool, &layers, &image(3, 7, 9), &x, Run::Train);
        let layers = format!(
            "{{ type = \"conv2d\", channels = 2, kernel = 3, padding = 1 }}, {{ type = \"{pool}\", size = 3 }}, {{ type = \"flatten\" }}, {{ type = \"dense\" }}"
        );
        compare(&format!("conv then {pool} 3"), &layers, &image(3, 7, 9), &x, Run::Train);
    }
}

#[test]
fn batch_norm_and_dropouts_match_in_training_and_evaluation() {
    let features = ModelInput::classify(&[6], 3);
    let x = random(&[5, 6], 6);
    let bn1 =
        "{ type = \"dense\", units = 4 }, { type = \"batchnorm\" }, { type = \"activation\" }, { type = \"dense\" }";
    let pic = random(&[3, 2, 6, 5], 7);
    let bn2 = "{ type = \"conv2d\", channels = 3, kernel = 3, padding = 1 }, { type = \"batchnorm\", momentum = 0.3 },
        { type = \"maxpool\", size = 2 }, { type = \"flatten\" }, { type = \"dense\" }";
    for (name, run) in [("training", Run::Train), ("evaluation", Run::Eval)] {
        compare(&format!("batch norm 1-D, {name}"), bn1, &features, &x, run);
        compare(&format!("batch norm 2-D, {name}"), bn2, &image(2, 6, 5), &pic, run);
    }
    // a large batch of flat images: the statistics sum 21,632 values per channel
    let mut rng = Rng::new(17);
    let flat: Vec<f32> =
        (0..32 * 28 * 28).map(|_| if rng.uniform() < 0.8 { -0.42 } else { 2.0 * rng.uniform() }).collect();
    let flat = Tensor::from_vec(flat, (32, 1, 28, 28), &Device::Cpu).unwrap();
    let bn = "{ type = \"conv2d\", channels = 8, kernel = 3 }, { type = \"batchnorm\" }, { type = \"activation\" },
        { type = \"maxpool\", size = 2 }, { type = \"flatten\" }, { type = \"dense\" }";
    // conv1.bias's true gradient is 0 here (batch norm removes a constant), and each path gives
    // the rounding of 21,632 cancelling terms (-3e-6 fused, 1.6e-4 composed, whose candle sums
    // run in order in f32): that one value is noise, so the bound is 2e-4
    compare_within("batch norm 2-D on 32 flat 28x28 images", bn, &image(1, 28, 28), &flat, Run::Train, 2e-4);
    let dropout = "{ type = \"dense\", units = 8 }, { type = \"dropout\", rate = 0.5 }, { type = \"dense\" }";
    compare("dropout", dropout, &features, &x, Run::Train);
    let dropout2d = "{ type = \"conv2d\", channels = 4, kernel = 3 }, { type = \"dropout2d\", rate = 0.5 },
        { type = \"flatten\" }, { type = \"dense\" }";
    compare("dropout2d", dropout2d, &image(2, 6, 5), &pic, Run::Train);
}

#[test]
fn decoder_layers_match() {
    let input = ModelInput::classify(&[10], 3);
    let x = random(&[3, 10], 8);
    for (stride, padding, out_pad) in [(2, 1, 0), (2, 1, 1), (1, 0, 0), (3, 1, 2)] {
        let layers = format!(
            "{{ type = \"dense\", units = 24 }}, {{ type = \"reshape\", shape = [2, 3, 4] }},
             {{ type = \"conv_transpose2d\", channels = 3, kernel = 3, stride = {stride}, padding = {padding}, output_padding = {out_pad}, activation = \"relu\" }},
             {{ type = \"flatten\" }}, {{ type = \"dense\" }}"
        );
        compare(
            &format!("conv_transpose2d stride {stride} padding {padding} output padding {out_pad}"),
            &layers,
            &input,
            &x,
            Run::Train,
        );
    }
    let layers = "{ type = \"dense\", units = 24 }, { type = \"reshape\", shape = [2, 3, 4] },
        { type = \"upsample\", scale = 2 }, { type = \"conv2d\", channels = 2, kernel = 3, stride = 2 },
        { type = \"flatten\" }, { type = \"dense\" }";
    compare("reshape + upsample + conv", layers, &input, &x, Run::Train);
    // a decoder that ends in an image, as an autoencoder's does
    let ae = ModelInput { shape: vec![1, 6, 4], classes: 0, vocab: None, task: Task::Autoencode };
    let layers = "{ type = \"flatten\" }, { type = \"dense\", units = 6 }, { type = \"reshape\", shape = [1, 3, 2] },
        { type = \"conv_transpose2d\", channels = 1, kernel = 4, stride = 2, padding = 1 }";
    compare("autoencoder decoder", layers, &ae, &random(&[2, 1, 6, 4], 9), Run::Train);
}

#[test]
fn vae_sample_matches_with_one_rng() {
    let input = ModelInput { shape: vec![6], classes: 0, vocab: None, task: Task::Vae };
    let layers = "{ type = \"dense\", units = 8 }, { type = \"sample\" }, { type = \"dense\" }";
    compare("sample, training", layers, &input, &random(&[4, 6], 10), Run::Train);
    compare("sample, evaluation", layers, &input, &random(&[4, 6], 10), Run::Eval);
}

#[test]
fn sequence_layers_match() {
    let lm = ModelInput { shape: vec![6], classes: 11, vocab: Some(11), task: Task::LanguageModel };
    let ids: Vec<f32> = (0..3 * 6).map(|i| ((i * 7 + 3) % 11) as f32).collect();
    let tokens = Tensor::from_vec(ids, (3, 6), &Device::Cpu).unwrap();
    let layers = "{ type = \"embedding\", dim = 8 }, { type = \"position\" },
        { type = \"attention\", heads = 2, causal = true }, { type = \"layernorm\" },
        { type = \"transformer_block\", heads = 2, ff = 12 }, { type = \"dense\" }";
    compare("embedding, position, attention, layernorm, transformer block", layers, &lm, &tokens, Run::Train);
    let seq = ModelInput::classify(&[5, 4], 3);
    let x = random(&[3, 5, 4], 11);
    for cell in ["rnn", "lstm", "gru"] {
        for (bi, layers, every) in [(false, 1, false), (true, 1, false), (true, 2, true), (false, 2, false)] {
            let spec = format!(
                "{{ type = \"{cell}\", hidden = 5, bidirectional = {bi}, layers = {layers}, return_sequences = {every} }},
                 {}{{ type = \"dense\" }}",
                if every { "{ type = \"global_mean\" }, " } else { "" }
            );
            compare(&format!("{cell}, bidirectional {bi}, {layers} layers"), &spec, &seq, &x, Run::Train);
        }
    }
    let seq = ModelInput::classify(&[5, 8], 3);
    let layers = "{ type = \"attention\", heads = 2 }, { type = \"layernorm\" }, { type = \"dense\", units = 6, activation = \"gelu\" },
        { type = \"global_mean\" }, { type = \"dense\" }";
    compare("attention on floats, per-step dense", layers, &seq, &random(&[2, 5, 8], 12), Run::Train);
}

/// Every family of the catalogue is built and run above on both devices, which is all this
/// checks (its type name appears in a case here). Only the families with a fused CPU form (conv
/// block, dense, standalone max-pool, batch norm, transposed conv, upsample, rnn, lstm, gru) run
/// different code on the two paths and are really compared; the others (attention, layernorm,
/// transformer_block, embedding, position, dropout, dropout2d, global_mean, avgpool, activation,
/// flatten, reshape, sample) have a single composed form that runs both ways, so their cases
/// check that they build and run under `cpu-portable`, beside the fused layers around them.
#[test]
fn every_catalogue_family_is_run_both_ways() {
    let source = include_str!("portable.rs");
    for layer in gradlab::model::layers::catalogue() {
        let name = layer.type_name();
        let named = source.contains(&format!("\\\"{name}\\\"")) || source.contains(&format!("\"{name}\""));
        assert!(named, "layer type {name} has no case run on both paths");
    }
}

#[path = "portable/runs.rs"]
mod runs;
