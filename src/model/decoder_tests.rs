//! The decoder layers' fused CPU ops (`decoder_ops`) against their composed candle forms (the
//! path other devices take), finite differences, and themselves on 1 and 3 threads.

use candle_core::{Device, Tensor, Var};

use super::layers::norm::BatchNormSpec;
use super::layers::upsample::ConvTranspose2dSpec;
use super::layers::RunLayer;
use super::network::Mode;
use super::ops::tests::random;
use super::spec::Activation;
use crate::rng::Rng;

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    flat(a).iter().zip(flat(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

/// The output and the gradients of every var for the loss `sum(y * up)`.
fn run(layer: &dyn RunLayer, x: &Var, vars: &[&Var], train: bool, up_seed: u64) -> (Tensor, Vec<Tensor>) {
    let mut rng = Rng::new(1);
    let mut mode = if train { Mode::Train(&mut rng) } else { Mode::Eval };
    let y = layer.forward(x.as_tensor(), &mut mode).unwrap();
    let up = random(y.dims(), up_seed);
    let grads = (&y * &up).unwrap().sum_all().unwrap().backward().unwrap();
    let mut all = vec![grads.get(x).expect("input gradient").clone()];
    all.extend(vars.iter().map(|v| grads.get(v).expect("parameter gradient").clone()));
    (y, all)
}

/// Central differences of `loss` at a few entries of `var` against `analytic`.
fn check_differences(var: &Var, analytic: &Tensor, loss: impl Fn() -> f64, what: &str) {
    let values = flat(var.as_tensor());
    let analytic = flat(analytic);
    let step = 1e-3f32;
    for i in (0..values.len()).step_by(values.len().div_ceil(12)) {
        let at = |delta: f32| {
            let mut v = values.clone();
            v[i] += delta;
            var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap()).unwrap();
            loss()
        };
        let numeric = ((at(step) - at(-step)) / f64::from(2.0 * step)) as f32;
        var.set(&Tensor::from_vec(values.clone(), var.dims(), &Device::Cpu).unwrap()).unwrap();
        assert!(
            (numeric - analytic[i]).abs() < 2e-2 * (1.0 + numeric.abs()),
            "{what}[{i}]: finite difference {numeric}, gradient {}",
            analytic[i]
        );
    }
}

fn var(shape: &[usize], seed: u64, scale: f64) -> Var {
    Var::from_tensor(&(random(shape, seed) * scale).unwrap()).unwrap()
}

/// A transposed conv's input, weight and bias, and the fused and composed layers over them.
fn conv_transpose(
    spec: &ConvTranspose2dSpec,
    (n, h, w, cin): (usize, usize, usize, usize),
    seed: u64,
) -> (Var, Var, Var, Box<dyn RunLayer>, Box<dyn RunLayer>) {
    let x = var(&[n, h, w, cin], seed, 1.0);
    let wt = var(&[cin, spec.channels, spec.kernel, spec.kernel], seed + 1, 0.3);
    let b = var(&[spec.channels], seed + 2, 0.3);
    let params = [wt.as_tensor().clone(), b.as_tensor().clone()];
    let (fused, composed) = (spec.build(&params).unwrap(), spec.build_composed(&params).unwrap());
    (x, wt, b, fused, composed)
}

#[test]
fn transposed_conv_matches_the_composed_form_on_any_geometry() {
    let mut cases = 0;
    for (h, w) in [(3, 5), (4, 4), (2, 1)] {
        for kernel in [3, 4, 5] {
            for stride in [1, 2, 3] {
                for padding in [0, 1, 2] {
                    for output_padding in 0..stride {
                        let activation =
                            [None, Some(Activation::Relu), Some(Activation::Tanh), Some(Activation::Gelu)][cases % 4];
                        let spec =
                            ConvTranspose2dSpec { channels: 3, kernel, stride, padding, output_padding, activation };
                        if spec.plan("t", "t", &[2, h, w]).is_err() {
                            continue; // no output
                        }
                        let (x, wt, b, fused, composed) = conv_transpose(&spec, (2, h, w, 2), cases as u64);
                        let (y1, g1) = run(fused.as_ref(), &x, &[&wt, &b], true, 7);
                        let (y2, g2) = run(composed.as_ref(), &x, &[&wt, &b], true, 7);
                        let what = format!("{h}x{w} k{kernel} s{stride} p{padding} op{output_padding} {activation:?}");
                        assert_eq!(y1.dims(), y2.dims(), "{what}");
                        assert!(max_diff(&y1, &y2) < 1e-4, "{what}: outputs differ by {}", max_diff(&y1, &y2));
                        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
                            assert!(max_diff(a, b) < 1e-3, "{what}: gradient {i} differs by {}", max_diff(a, b));
                        }
                        cases += 1;
                    }
                }
            }
        }
    }
    assert!(cases > 100, "{cases} geometries");
}

#[test]
fn transposed_conv_gradients_match_finite_differences() {
    for (stride, padding, output_padding, kernel, activation) in
        [(2, 1, 1, 3, Some(Activation::Tanh)), (3, 2, 0, 5, None), (1, 0, 0, 4, Some(Activation::Sigmoid))]
    {
        let spec = ConvTranspose2dSpec { channels: 2, kernel, stride, padding, output_padding, activation };
        let (x, wt, b, fused, _) = conv_transpose(&spec, (2, 3, 4, 3), 40);
        let (y, grads) = run(fused.as_ref(), &x, &[&wt, &b], true, 41);
        let up = random(y.dims(), 41);
        let loss = || {
            let y = fused.forward(x.as_tensor(), &mut Mode::Eval).unwrap();
            f64::from((y * &up).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap())
        };
        for (v, g, name) in [(&x, &grads[0], "input"), (&wt, &grads[1], "weight"), (&b, &grads[2], "bias")] {
            check_differences(v, g, loss, &format!("stride {stride} padding {padding}: {name}"));
        }
    }
}

#[test]
fn transposed_conv_gives_the_same_bits_on_any_thread_count() {
    // 8 x 28 x 28 pixels: the weight gradient's reduction is long enough to be split
    let spec =
        ConvTranspose2dSpec { channels: 3, kernel: 4, stride: 2, padding: 1, output_padding: 0, activation: None };
    let (x, wt, b, fused, _) = conv_transpose(&spec, (8, 28, 28, 5), 50);
    let bits = |threads| {
        in_pool(threads, || {
            let (y, grads) = run(fused.as_ref(), &x, &[&wt, &b], true, 51);
            [vec![y], grads].concat().iter().map(|t| flat(t).iter().map(|v| v.to_bits()).collect()).collect()
        })
    };
    let one: Vec<Vec<u32>> = bits(1);
    assert_eq!(one, bits(3), "output and gradients on 1 and 3 threads");
}

/// A batch norm of `features` with a non-trivial weight and bias and running statistics; the
/// layer built fused or composed, and its tensors.
fn batch_norm(features: usize, composed: bool) -> (Box<dyn RunLayer>, Vec<Var>) {
    let vars = vec![
        Var::from_tensor(&(random(&[features], 60).abs().unwrap() + 0.5).unwrap()).unwrap(),
        var(&[features], 61, 0.5),
        var(&[features], 62, 0.2),
        Var::from_tensor(&(random(&[features], 63).abs().unwrap() + 0.5).unwrap()).unwrap(),
        Var::from_tensor(&Tensor::new(3f32, &Device::Cpu).unwrap()).unwrap(),
    ];
    let spec = BatchNormSpec { momentum: 0.2, eps: 1e-3 };
    let layer = if composed { spec.build_composed(&vars) } else { spec.build(&vars) };
    (layer.unwrap(), vars)
}

#[test]
fn batch_norm_matches_the_composed_form_and_tracks_the_same_statistics() {
    for (shape, train) in [(vec![6, 4], true), (vec![3, 5, 2, 4], true), (vec![6, 4], false), (vec![2, 3, 5, 4], false)]
    {
        let x = Var::from_tensor(&((random(&shape, 64) * 2.0).unwrap() + 1.0).unwrap()).unwrap();
        let (fused, fv) = batch_norm(4, false);
        let (composed, cv) = batch_norm(4, true);
        let (y1, g1) = run(fused.as_ref(), &x, &[&fv[0], &fv[1]], train, 65);
        let (y2, g2) = run(composed.as_ref(), &x, &[&cv[0], &cv[1]], train, 65);
        let what = format!("{shape:?} training {train}");
        assert!(max_diff(&y1, &y2) < 1e-5, "{what}: outputs differ by {}", max_diff(&y1, &y2));
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            assert!(max_diff(a, b) < 1e-4, "{what}: gradient {i} differs by {}", max_diff(a, b));
        }
        for (i, (a, b)) in fv[2..].iter().zip(&cv[2..]).enumerate() {
            assert!(max_diff(a, b) < 1e-6, "{what}: buffer {i} differs by {}", max_diff(a, b));
        }
        assert_eq!(flat(fv[4].as_tensor()), [if train { 4.0 } else { 3.0 }], "{what}: batches tracked");
    }
}

#[test]
fn batch_norm_gradients_match_finite_differences() {
    for (shape, train) in [(vec![5, 3], true), (vec![2, 3, 2, 3], true), (vec![2, 3, 2, 3], false)] {
        let x = Var::from_tensor(&random(&shape, 70)).unwrap();
        let (layer, vars) = batch_norm(3, false);
        let (y, grads) = run(layer.as_ref(), &x, &[&vars[0], &vars[1]], train, 71);
        let up = random(y.dims(), 71);
        let loss = || {
            let mut rng = Rng::new(1);
            let mut mode = if train { Mode::Train(&mut rng) } else { Mode::Eval };
            let y = layer.forward(x.as_tensor(), &mut mode).unwrap();
            f64::from((y * &up).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap())
        };
        for (v, g, name) in [(&x, &grads[0], "input"), (&vars[0], &grads[1], "weight"), (&vars[1], &grads[2], "bias")] {
            check_differences(v, g, loss, &format!("{shape:?} training {train}: {name}"));
        }
    }
}

#[test]
fn batch_norm_gives_the_same_bits_on_any_thread_count() {
    // 64 x 14 x 14 pixels of 16 channels: many tasks per reduction
    let x = Var::from_tensor(&((random(&[64, 14, 14, 16], 80) * 3.0).unwrap() + 0.7).unwrap()).unwrap();
    let bits = |threads| {
        in_pool(threads, || {
            let (layer, vars) = batch_norm(16, false);
            let (y, grads) = run(layer.as_ref(), &x, &[&vars[0], &vars[1]], true, 81);
            [vec![y], grads, vec![vars[2].as_tensor().clone(), vars[3].as_tensor().clone()]]
                .concat()
                .iter()
                .map(|t| flat(t).iter().map(|v| v.to_bits()).collect())
                .collect()
        })
    };
    let one: Vec<Vec<u32>> = bits(1);
    assert_eq!(one, bits(3), "output, gradients and running statistics on 1 and 3 threads");
}

#[test]
fn upsampling_matches_the_composed_form() {
    use super::layers::upsample::Upsample;
    for (shape, scale) in [([2, 3, 5, 4], 2), ([1, 4, 2, 1], 3), ([3, 2, 2, 2], 1)] {
        let x = Var::from_tensor(&random(&shape, 90)).unwrap();
        let (y1, g1) = run(&Upsample { scale, portable: false }, &x, &[], true, 91);
        let (y2, g2) = run(&Upsample { scale, portable: true }, &x, &[], true, 91);
        assert_eq!(y1.dims(), y2.dims());
        assert_eq!(flat(&y1), flat(&y2), "{shape:?} x{scale}: outputs");
        assert!(
            max_diff(&g1[0], &g2[0]) < 1e-5,
            "{shape:?} x{scale}: gradients differ by {}",
            max_diff(&g1[0], &g2[0])
        );
    }
}
