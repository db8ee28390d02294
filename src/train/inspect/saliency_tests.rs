//! Saliency against finite differences (the first layer's input gradient of the fused dense and
//! conv ops had never been exercised: training's input takes no gradient), and integrated
//! gradients' completeness.

use candle_core::{Device, Tensor};

use super::saliency::{gradient, integrated, log_p};
use crate::model::{Mode, ModelInput, ModelSpec, Network};
use crate::rng::Rng;
use crate::task::Task;

fn network(layers: &str, shape: &[usize], classes: usize, seed: u64) -> Network {
    let spec: ModelSpec = toml::from_str(&format!("layers = [\n{layers}\n]\n")).unwrap();
    let net = Network::new(&spec, &ModelInput::classify(shape, classes), seed, &Device::Cpu).unwrap();
    // running statistics away from their start (mean 0, variance 1), so evaluation's affine map
    // is not the identity
    let mut rng = Rng::new(seed + 100);
    for (name, var) in net.params() {
        let n = var.elem_count();
        let values: Vec<f32> = if name.ends_with("running_mean") {
            (0..n).map(|_| rng.normal() * 0.5).collect()
        } else if name.ends_with("running_var") {
            (0..n).map(|_| 0.5 + rng.uniform()).collect()
        } else {
            continue;
        };
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap()).unwrap();
    }
    net
}

fn random_input(shape: &[usize], rng: &mut Rng) -> Vec<f32> {
    (0..shape.iter().product::<usize>()).map(|_| rng.normal()).collect()
}

fn batch(values: &[f32], shape: &[usize]) -> Tensor {
    let dims: Vec<usize> = [1].iter().chain(shape).copied().collect();
    Tensor::from_vec(values.to_vec(), dims, &Device::Cpu).unwrap()
}

/// d log p_c / dx at 6 random inputs against central differences, every input value.
fn check(name: &str, layers: &str, shape: &[usize], classes: usize) {
    let net = network(layers, shape, classes, 3);
    let mut rng = Rng::new(11);
    let (mut kinks, mut values) = (0, 0);
    for trial in 0..6 {
        let x = random_input(shape, &mut rng);
        let class = trial % classes;
        let g = gradient(&net, Task::Classify, &batch(&x, shape), class).unwrap();
        assert_eq!(g.len(), x.len(), "{name}");
        assert!(g.iter().any(|v| *v != 0.0), "{name}: an all-zero gradient");
        let eps = 1e-2f32;
        let (mut diff2, mut norm2) = (0f64, 0f64);
        values += x.len();
        for i in 0..x.len() {
            let at = |d: f32| {
                let mut v = x.clone();
                v[i] += d;
                log_p(&net, Task::Classify, &batch(&v, shape), class).unwrap()[0]
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            let tol = 2e-2 * (1.0 + g[i].abs().max(numeric.abs()));
            assert!(
                (g[i] - numeric).abs() < tol,
                "{name} trial {trial} input {i}: gradient {}, finite differences {numeric}",
                g[i]
            );
            // a ReLU or a max-pool switching within ±eps shows as the half step disagreeing:
            // central differences say nothing there
            let half = (at(eps / 2.0) - at(-eps / 2.0)) / eps;
            if (half - numeric).abs() > 2e-3 * (numeric.abs() + 1e-2) {
                kinks += 1;
                continue;
            }
            diff2 += f64::from(g[i] - numeric).powi(2);
            norm2 += f64::from(numeric).powi(2);
        }
        // gradients of log p are small: the per-value tolerance alone would let a gradient a few
        // percent off pass, the whole vector's relative error does not
        let relative = (diff2 / norm2.max(1e-30)).sqrt();
        assert!(relative < 1e-2, "{name} trial {trial}: relative error {relative}");
    }
    // a hidden unit near its kink spoils every input of a trial: most values must still count
    assert!(kinks * 4 <= values, "{name}: {kinks} of {values} values near a kink");
}

#[test]
fn dense_input_gradient_matches_finite_differences() {
    check("tanh MLP", "{ type = \"dense\", units = 16, activation = \"tanh\" }, { type = \"dense\" }", &[6], 3);
    check("ReLU MLP", "{ type = \"dense\", units = 16, activation = \"relu\" }, { type = \"dense\" }", &[6], 3);
}

#[test]
fn conv_input_gradient_matches_finite_differences() {
    let cnn =
        "{ type = \"conv2d\", channels = 4, kernel = 3, activation = \"relu\" }, { type = \"maxpool\", size = 2 },
               { type = \"flatten\" }, { type = \"dense\" }";
    check("CNN 1x12x12", cnn, &[1, 12, 12], 3);
    check("CNN 3x8x8", cnn, &[3, 8, 8], 4);
    // not square: candle's own conv backward is wrong there, ours must not be
    check("CNN 2x6x10", cnn, &[2, 6, 10], 3);
}

#[test]
fn batch_norm_in_evaluation_passes_the_gradient() {
    check(
        "dense + batch norm",
        "{ type = \"dense\", units = 8 }, { type = \"batchnorm\" }, { type = \"activation\", activation = \"tanh\" }, { type = \"dense\" }",
        &[5],
        3,
    );
    check(
        "conv + batch norm",
        "{ type = \"conv2d\", channels = 3, kernel = 3, padding = 1 }, { type = \"batchnorm\" },
         { type = \"activation\", activation = \"tanh\" }, { type = \"flatten\" }, { type = \"dense\" }",
        &[2, 5, 5],
        3,
    );
}

#[test]
fn the_single_sigmoid_output_has_a_gradient_for_both_classes() {
    let layers = "{ type = \"dense\", units = 8, activation = \"tanh\" }, { type = \"dense\", units = 1 }";
    check("sigmoid head", layers, &[4], 2);
}

#[test]
fn evaluation_forward_in_between_does_not_make_the_gradient_stale() {
    // the conv's evaluation workspace is shared with every evaluation forward; a forward of
    // another batch between ours and its backward must not change our gradient
    let cnn =
        "{ type = \"conv2d\", channels = 4, kernel = 3, activation = \"relu\" }, { type = \"maxpool\", size = 2 },
               { type = \"flatten\" }, { type = \"dense\" }";
    let shape = [1, 8, 8];
    let net = network(cnn, &shape, 3, 5);
    let mut rng = Rng::new(2);
    let x = batch(&random_input(&shape, &mut rng), &shape);
    let before = gradient(&net, Task::Classify, &x, 1).unwrap();
    let var = candle_core::Var::from_tensor(&x).unwrap();
    let logits = net.forward(var.as_tensor(), &mut Mode::Eval).unwrap();
    let other = Tensor::randn(0f32, 1.0, (7, 1, 8, 8), &Device::Cpu).unwrap();
    net.forward(&other, &mut Mode::Eval).unwrap();
    let lp = candle_nn::ops::log_softmax(&logits, 1).unwrap().narrow(1, 1, 1).unwrap().sum_all().unwrap();
    let after: Vec<f32> =
        lp.backward().unwrap().get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(before, after);
}

fn completeness(name: &str, layers: &str, shape: &[usize]) {
    let net = network(layers, shape, 3, 9);
    let mut rng = Rng::new(4);
    let x = batch(&random_input(shape, &mut rng), shape);
    let baseline = batch(&vec![-1.0; shape.iter().product()], shape);
    let (attribution, delta) = integrated(&net, Task::Classify, &x, &baseline, 2, 64).unwrap();
    let sum: f32 = attribution.iter().sum();
    assert!(delta.abs() > 1e-2, "{name}: the input and the baseline should score differently ({delta})");
    assert!((sum - delta).abs() <= 0.02 * delta.abs() + 1e-3, "{name}: attributions sum {sum}, log p changed {delta}");
    // an input equal to the baseline gets nothing
    let (zero, d0) = integrated(&net, Task::Classify, &baseline, &baseline, 2, 8).unwrap();
    assert!(zero.iter().all(|a| *a == 0.0) && d0 == 0.0, "{name}");
}

#[test]
fn integrated_gradients_add_up_to_the_change_in_log_p() {
    completeness("MLP", "{ type = \"dense\", units = 16, activation = \"tanh\" }, { type = \"dense\" }", &[6]);
    completeness(
        "CNN",
        "{ type = \"conv2d\", channels = 4, kernel = 3, activation = \"tanh\" }, { type = \"maxpool\", size = 2 },
         { type = \"flatten\" }, { type = \"dense\" }",
        &[1, 10, 10],
    );
}

#[test]
fn one_integrated_gradient_step_is_the_gradient_at_the_midpoint() {
    let shape = [6];
    let net = network("{ type = \"dense\", units = 16, activation = \"tanh\" }, { type = \"dense\" }", &shape, 3, 1);
    let mut rng = Rng::new(8);
    let (xv, bv) = (random_input(&shape, &mut rng), random_input(&shape, &mut rng));
    let (attribution, _) = integrated(&net, Task::Classify, &batch(&xv, &shape), &batch(&bv, &shape), 0, 1).unwrap();
    let mid: Vec<f32> = xv.iter().zip(&bv).map(|(x, b)| b + 0.5 * (x - b)).collect();
    let g = gradient(&net, Task::Classify, &batch(&mid, &shape), 0).unwrap();
    for i in 0..6 {
        let want = (xv[i] - bv[i]) * g[i];
        assert!((attribution[i] - want).abs() <= 1e-5 * (1.0 + want.abs()), "input {i}: {} vs {want}", attribution[i]);
    }
}
