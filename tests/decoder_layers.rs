//! The layers decoders and modern CNNs need: batch norm (PyTorch's numbers in training and
//! evaluation, running statistics that are never trained), 2-D dropout, the transposed
//! convolution (a hand loop of PyTorch's definition and PyTorch's own numbers, on square and
//! non-square images), nearest upsampling and reshape; every gradient against finite
//! differences through whole networks; errors naming the layer's field.

mod common;

use std::time::Duration;

use candle_core::{Device, Tensor, Var};
use gradlab::model::layers::norm::BatchNormSpec;
use gradlab::model::layers::upsample::ConvTranspose2dSpec;
use gradlab::model::layers::RunLayer;
use gradlab::model::{plan, Mode, ModelInput, ModelSpec, Network};
use gradlab::rng::Rng;

fn model(toml_layers: &str) -> ModelSpec {
    toml::from_str(&format!("layers = [\n{toml_layers}\n]\n")).unwrap()
}

/// The inputs the PyTorch numbers below were computed from (exact in f32).
fn vals(n: usize, offset: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 37 + offset) % 17) as f32 * 0.25 - 2.0).collect()
}

fn tensor(values: Vec<f32>, dims: &[usize]) -> Tensor {
    Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_close(ours: &[f32], expected: &[f32], what: &str) {
    assert_eq!(ours.len(), expected.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what}[{i}]: {a} but PyTorch gives {b}");
    }
}

fn nchw_to_nhwc(t: &Tensor) -> Tensor {
    t.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap()
}

fn nhwc_to_nchw(t: &Tensor) -> Tensor {
    t.permute((0, 3, 1, 2)).unwrap().contiguous().unwrap()
}

// bench/.venv/bin/python, torch 2.15: BatchNorm1d(3, momentum=0.1, eps=1e-5) with weight
// [1.5, -0.5, 2.0] and bias [0.1, 0.2, -0.3], trained on vals(12, 0) then vals(12, 5) as [4, 3]
// (the second batch's output kept), then evaluated on vals(12, 9).
const BN1_TRAIN2: [f32; 12] = [
    -1.556466, -0.2341194, 1.436478, 1.425173, 0.7581536, -2.532614, -1.225173, -0.3581535, 1.932614, 1.756466,
    0.6341195, -2.036478,
];
const BN1_MEAN: [f32; 3] = [-0.0175, -0.0875, 0.055];
const BN1_VAR: [f32; 3] = [1.134583, 1.099167, 1.099167];
const BN1_EVAL: [f32; 12] = [
    0.4766994, -0.3186394, 2.933449, -2.339745, 0.6351802, -0.88183, 0.8287549, -0.4378669, 3.410358, -1.987689,
    0.5159528, -0.4049202,
];
// BatchNorm2d(3, momentum=0.25, eps=1e-3), same weight and bias, trained on vals(36, 1) as NCHW
// [2, 3, 2, 3], then evaluated on vals(36, 4).
const BN2_TRAIN: [f32; 36] = [
    -2.170808, -1.272466, -0.3741247, 0.5242169, 1.422559, 2.3209, 0.6930454, 0.3816483, 0.07025123, -0.2411458,
    -0.5525429, 0.9006434, -2.272182, -1.026593, 0.2189951, 1.464583, 2.710172, -3.102574, -1.272466, -0.3741247,
    0.5242169, 1.422559, 2.3209, -1.871361, 0.3816483, 0.07025123, -0.2411458, -0.5525429, 0.9006434, 0.5892463,
    -1.026593, 0.2189951, 1.464583, 2.710172, -3.102574, -1.856985,
];
const BN2_MEAN: [f32; 3] = [0.03645833, -0.078125, -0.015625];
const BN2_VAR: [f32; 3] = [1.177438, 1.145241, 1.145241];
const BN2_EVAL: [f32; 36] = [
    -1.332154, -0.2958214, 0.7405109, 1.776843, 2.813176, -2.023042, 0.5137765, 0.1635144, -0.1867478, -0.5370099,
    1.097547, 0.7472845, -1.204844, 0.1962047, 1.597253, 2.998302, -3.539925, -2.138876, -0.2958214, 0.7405109,
    1.776843, 2.813176, -2.023042, -0.9867096, 0.1635144, -0.1867478, -0.5370099, 1.097547, 0.7472845, 0.3970224,
    0.1962047, 1.597253, 2.998302, -3.539925, -2.138876, -0.7378277,
];

/// weight, bias, running mean, running variance, batches tracked.
fn batch_norm(spec: &BatchNormSpec) -> (Box<dyn RunLayer>, Vec<Var>) {
    let vars: Vec<Var> = [
        tensor(vec![1.5, -0.5, 2.0], &[3]),
        tensor(vec![0.1, 0.2, -0.3], &[3]),
        tensor(vec![0.0; 3], &[3]),
        tensor(vec![1.0; 3], &[3]),
        tensor(vec![0.0], &[]),
    ]
    .iter()
    .map(|t| Var::from_tensor(t).unwrap())
    .collect();
    (spec.build(&vars).unwrap(), vars)
}

#[test]
fn batch_norm_matches_pytorch_in_training_and_evaluation() {
    let mut rng = Rng::derive(1, "dropout", 0);
    let (bn, vars) = batch_norm(&BatchNormSpec { momentum: 0.1, eps: 1e-5 });
    bn.forward(&tensor(vals(12, 0), &[4, 3]), &mut Mode::Train(&mut rng)).unwrap();
    let y = bn.forward(&tensor(vals(12, 5), &[4, 3]), &mut Mode::Train(&mut rng)).unwrap();
    assert_close(&flat(&y), &BN1_TRAIN2, "BatchNorm1d training output");
    assert_close(&flat(vars[2].as_tensor()), &BN1_MEAN, "running_mean");
    assert_close(&flat(vars[3].as_tensor()), &BN1_VAR, "running_var (unbiased)");
    assert_eq!(flat(vars[4].as_tensor()), [2.0], "num_batches_tracked");
    let y = bn.forward(&tensor(vals(12, 9), &[4, 3]), &mut Mode::Eval).unwrap();
    assert_close(&flat(&y), &BN1_EVAL, "BatchNorm1d evaluation output");
    // evaluation leaves the statistics alone
    assert_close(&flat(vars[2].as_tensor()), &BN1_MEAN, "running_mean after evaluation");

    // per channel of a channels-last image
    let (bn, vars) = batch_norm(&BatchNormSpec { momentum: 0.25, eps: 1e-3 });
    let x = nchw_to_nhwc(&tensor(vals(36, 1), &[2, 3, 2, 3]));
    let y = bn.forward(&x, &mut Mode::Train(&mut rng)).unwrap();
    assert_close(&flat(&nhwc_to_nchw(&y)), &BN2_TRAIN, "BatchNorm2d training output");
    assert_close(&flat(vars[2].as_tensor()), &BN2_MEAN, "BatchNorm2d running_mean");
    assert_close(&flat(vars[3].as_tensor()), &BN2_VAR, "BatchNorm2d running_var");
    let y = bn.forward(&nchw_to_nhwc(&tensor(vals(36, 4), &[2, 3, 2, 3])), &mut Mode::Eval).unwrap();
    assert_close(&flat(&nhwc_to_nchw(&y)), &BN2_EVAL, "BatchNorm2d evaluation output");

    // a batch of one sample trains (PyTorch refuses it) without touching the statistics
    let (bn, vars) = batch_norm(&BatchNormSpec::default());
    let y = bn.forward(&tensor(vec![3.0, -1.0, 0.5], &[1, 3]), &mut Mode::Train(&mut rng)).unwrap();
    assert_eq!(flat(&y), [0.1, 0.2, -0.3], "a lone sample normalises to the bias");
    assert_eq!(flat(vars[2].as_tensor()), [0.0; 3]);
    assert_eq!(flat(vars[4].as_tensor()), [0.0]);
}

/// PyTorch's ConvTranspose2d by its definition: each input pixel adds its value times the
/// kernel at `(iy * stride + ky - padding, ix * stride + kx - padding)`; NCHW, weight
/// `[in, out, k, k]`.
#[allow(clippy::too_many_arguments)]
fn conv_transpose_loop(
    x: &[f32],
    (c, h, w): (usize, usize, usize),
    weight: &[f32],
    bias: &[f32],
    k: usize,
    s: usize,
    p: usize,
    op: usize,
) -> (Vec<f32>, usize, usize) {
    let o = bias.len();
    let (oh, ow) = ((h - 1) * s + k + op - 2 * p, (w - 1) * s + k + op - 2 * p);
    let mut y: Vec<f64> = (0..o * oh * ow).map(|i| f64::from(bias[i / (oh * ow)])).collect();
    for ci in 0..c {
        for iy in 0..h {
            for ix in 0..w {
                for oc in 0..o {
                    for ky in 0..k {
                        for kx in 0..k {
                            let (oy, ox) = ((iy * s + ky) as isize - p as isize, (ix * s + kx) as isize - p as isize);
                            if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                continue;
                            }
                            let v = x[(ci * h + iy) * w + ix] * weight[((ci * o + oc) * k + ky) * k + kx];
                            y[(oc * oh + oy as usize) * ow + ox as usize] += f64::from(v);
                        }
                    }
                }
            }
        }
    }
    (y.into_iter().map(|v| v as f32).collect(), oh, ow)
}

/// ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), weight vals(54, 2) * 0.5,
/// bias [0.1, -0.2, 0.3], on vals(12, 3) as [1, 2, 2, 3]: output [1, 3, 4, 6].
const CT_PYTORCH: [f32; 72] = [
    -1.0875,
    0.56875,
    -0.3375,
    0.475,
    0.4125,
    0.1625,
    -0.30625,
    0.19375,
    -1.99375,
    -0.525,
    1.63125,
    0.69375,
    1.1625,
    0.2875,
    1.9125,
    -0.86875,
    -1.5875,
    0.9125,
    -1.0875,
    0.6625,
    -1.8375,
    -0.8375,
    1.6625,
    0.44375,
    0.58125,
    0.2375,
    0.01875,
    -0.8875,
    -0.54375,
    -0.2625,
    -0.60625,
    0.45625,
    1.45625,
    -0.73125,
    -1.79375,
    0.45625,
    -1.10625,
    -3.1375,
    -1.66875,
    2.1125,
    0.95625,
    -0.2625,
    1.425,
    1.4875,
    2.55,
    -1.04375,
    -2.7,
    -0.2,
    0.925,
    -0.35625,
    0.64375,
    0.675,
    0.3625,
    0.64375,
    -0.10625,
    -2.2,
    -0.66875,
    1.9875,
    0.89375,
    -0.04374999,
    0.08125001,
    2.7375,
    -0.2,
    -0.48125,
    1.1125,
    -0.10625,
    -0.04374999,
    -1.1375,
    -0.23125,
    2.7375,
    0.64375,
    -0.575,
];

fn run_conv_transpose(spec: &ConvTranspose2dSpec, x_nchw: &Tensor, weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let (_, c, _, _) = x_nchw.dims4().unwrap();
    let (o, k) = (spec.channels, spec.kernel);
    let layer = spec.build(&[tensor(weight.to_vec(), &[c, o, k, k]), tensor(bias.to_vec(), &[o])]).unwrap();
    flat(&nhwc_to_nchw(&layer.forward(&nchw_to_nhwc(x_nchw), &mut Mode::Eval).unwrap()))
}

#[test]
fn transposed_conv_matches_pytorch_and_its_definition_on_any_image() {
    let spec =
        ConvTranspose2dSpec { channels: 3, kernel: 3, stride: 2, padding: 1, output_padding: 1, activation: None };
    let weight: Vec<f32> = vals(54, 2).iter().map(|v| v * 0.5).collect();
    let ours = run_conv_transpose(&spec, &tensor(vals(12, 3), &[1, 2, 2, 3]), &weight, &[0.1, -0.2, 0.3]);
    assert_close(&ours, &CT_PYTORCH, "ConvTranspose2d 2x3 -> 4x6");

    let mut cases = 0;
    for (h, w) in [(3usize, 3usize), (2, 5), (4, 1)] {
        for k in 1..=4 {
            for s in 1..=3 {
                for p in 0..=2 {
                    for op in 0..s {
                        // PyTorch refuses a geometry without output
                        if (h - 1) * s + k + op <= 2 * p || (w - 1) * s + k + op <= 2 * p {
                            continue;
                        }
                        let (c, o, n) = (2, 3, 2);
                        let x = vals(n * c * h * w, k + s);
                        let weight = vals(c * o * k * k, p + 7);
                        let bias = [0.5, -0.25, 0.125];
                        let spec = ConvTranspose2dSpec {
                            channels: o,
                            kernel: k,
                            stride: s,
                            padding: p,
                            output_padding: op,
                            activation: None,
                        };
                        let ours = run_conv_transpose(&spec, &tensor(x.clone(), &[n, c, h, w]), &weight, &bias);
                        let len = c * h * w;
                        let mut expected = Vec::new();
                        for sample in 0..n {
                            let (y, oh, ow) = conv_transpose_loop(
                                &x[sample * len..(sample + 1) * len],
                                (c, h, w),
                                &weight,
                                &bias,
                                k,
                                s,
                                p,
                                op,
                            );
                            assert_eq!(y.len(), o * oh * ow);
                            expected.extend(y);
                        }
                        assert_close(
                            &ours,
                            &expected,
                            &format!("{h}x{w}, kernel {k}, stride {s}, padding {p}, output padding {op}"),
                        );
                        cases += 1;
                    }
                }
            }
        }
    }
    assert!(cases > 100, "{cases} geometries checked");
}

/// d(sum(y * g))/dθ from the backward against central differences, for a few entries of every
/// trained tensor; buffers get no gradient. `train`: batch statistics and dropout masks (the
/// same mask at every evaluation, from a fresh RNG).
fn check_gradients(spec: &ModelSpec, input: &ModelInput, x: &Tensor, train: bool) {
    let net = Network::new(spec, input, 3, &Device::Cpu).unwrap();
    let forward = |net: &Network| {
        let mut rng = Rng::derive(5, "dropout", 0);
        let mut mode = if train { Mode::Train(&mut rng) } else { Mode::Eval };
        net.forward(x, &mut mode).unwrap()
    };
    let y = forward(&net);
    // a fixed weighting of the outputs: the check is the same at every run
    let g = tensor(vals(y.elem_count(), 4).iter().map(|v| v * 0.5).collect(), y.dims());
    let loss = |net: &Network| f64::from((forward(net) * &g).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap());
    let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
    for ((name, var), trainable) in net.params().iter().zip(net.trainable()) {
        if !trainable {
            if train {
                assert!(grads.get(var).is_none(), "the buffer {name} has a gradient");
            }
            continue;
        }
        let analytic = flat(grads.get(var).unwrap_or_else(|| panic!("no gradient for {name}")));
        let mut values = flat(var.as_tensor());
        let n = values.len();
        for k in [0, n / 3, n / 2, n - 1] {
            // small: batch norm over a few samples is curved enough to fool a step of 1e-2
            let h = 1e-3f32;
            let original = values[k];
            let mut at = |v: f32| {
                values[k] = v;
                var.set(&tensor(values.clone(), var.dims())).unwrap();
                loss(&net)
            };
            let numeric = (at(original + h) - at(original - h)) / f64::from(2.0 * h);
            values[k] = original;
            var.set(&tensor(values.clone(), var.dims())).unwrap();
            let a = f64::from(analytic[k]);
            let tol = 2e-2 * (1.0 + a.abs().max(numeric.abs()));
            assert!((a - numeric).abs() < tol, "{name}[{k}]: backward {a}, finite differences {numeric}");
        }
    }
}

fn batch(dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    tensor(vals(n, 3).iter().enumerate().map(|(i, v)| v + (i % 7) as f32 * 0.1).collect(), dims)
}

#[test]
fn new_layers_have_the_right_gradients_on_square_and_non_square_images() {
    // an encoder and a decoder on a non-square image, then a square one
    let image = model(
        "{ type = \"conv2d\", channels = 3, kernel = 3, padding = 1 }, { type = \"batchnorm\" },
         { type = \"activation\", activation = \"tanh\" }, { type = \"dropout2d\", rate = 0.3 },
         { type = \"conv_transpose2d\", channels = 2, kernel = 3, stride = 2, padding = 1, output_padding = 1 },
         { type = \"upsample\", scale = 2 }, { type = \"batchnorm\", momentum = 0.2 },
         { type = \"flatten\" }, { type = \"batchnorm\" }, { type = \"dense\" }",
    );
    for shape in [[1, 3, 5], [2, 4, 4]] {
        let input = ModelInput::classify(&shape, 3);
        let mut dims = vec![4];
        dims.extend(shape);
        for train in [true, false] {
            eprintln!("image {shape:?}, training {train}");
            check_gradients(&image, &input, &batch(&dims), train);
        }
    }
    // a decoder from features: dense -> reshape -> image layers, non-square and square (smooth
    // activations: a ReLU kink within the finite-difference step would fool the check)
    for shape in ["[3, 2, 3]", "[2, 3, 3]"] {
        let decoder = model(&format!(
            "{{ type = \"dense\", units = 18 }}, {{ type = \"batchnorm\" }}, {{ type = \"reshape\", shape = {shape} }},
             {{ type = \"conv_transpose2d\", channels = 2, kernel = 2, stride = 2, activation = \"tanh\" }},
             {{ type = \"upsample\", scale = 3 }}, {{ type = \"conv2d\", channels = 2, kernel = 3, stride = 2 }},
             {{ type = \"flatten\" }}, {{ type = \"dense\" }}"
        ));
        let input = ModelInput::classify(&[5], 4);
        for train in [true, false] {
            eprintln!("decoder {shape}, training {train}");
            check_gradients(&decoder, &input, &batch(&[3, 5]), train);
        }
    }
}

/// A reshape gives PyTorch's channels-first image; the image layers after it run channels-last
/// and the network converts between: upsampling a reshaped image and flattening it gives the
/// values in PyTorch's order.
#[test]
fn reshape_gives_channels_first_images_to_the_image_layers() {
    let spec = model(
        "{ type = \"reshape\", shape = [2, 2, 3] }, { type = \"upsample\", scale = 2 }, { type = \"flatten\" },
         { type = \"batchnorm\", momentum = 0.0, eps = 1e-12 }, { type = \"dense\", units = 48 }",
    );
    let input = ModelInput::classify(&[12], 48);
    let net = Network::new(&spec, &input, 1, &Device::Cpu).unwrap();
    // the dense layer as the identity, so the output is the flattened upsampled image
    for (name, var) in net.params() {
        if name == "fc1.weight" {
            let eye: Vec<f32> = (0..48 * 48).map(|i| if i / 48 == i % 48 { 1.0 } else { 0.0 }).collect();
            var.set(&tensor(eye, &[48, 48])).unwrap();
        }
        if name == "fc1.bias" {
            var.set(&tensor(vec![0.0; 48], &[48])).unwrap();
        }
    }
    let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let y = flat(&net.forward(&tensor(x.clone(), &[1, 12]), &mut Mode::Eval).unwrap());
    // PyTorch: Unflatten(1, (2, 2, 3)) then Upsample(2) then Flatten
    let mut expected = Vec::new();
    for c in 0..2 {
        for oy in 0..4 {
            for ox in 0..6 {
                expected.push(x[(c * 2 + oy / 2) * 3 + ox / 2]);
            }
        }
    }
    assert_close(&y, &expected, "reshape -> upsample -> flatten");
}

#[test]
fn dropout2d_drops_whole_channels_while_training_only() {
    let spec = model("{ type = \"dropout2d\", rate = 0.5 }, { type = \"flatten\" }, { type = \"dense\", units = 1 }");
    let input = ModelInput::classify(&[16, 3, 2], 2);
    let planned = plan(&spec, &input).unwrap();
    let layer = planned[0].spec.build(&planned[0], &[]).unwrap();
    let x = tensor(vec![1.0; 4 * 3 * 2 * 16], &[4, 3, 2, 16]); // channels-last
    let mut rng = Rng::derive(9, "dropout", 0);
    let y = flat(&layer.forward(&x, &mut Mode::Train(&mut rng)).unwrap());
    let (mut kept, mut dropped) = (0, 0);
    for sample in y.chunks(3 * 2 * 16) {
        for c in 0..16 {
            let values: Vec<f32> = sample.iter().skip(c).step_by(16).copied().collect();
            assert!(values.iter().all(|v| *v == values[0]), "channel {c} is dropped or kept whole: {values:?}");
            match values[0] {
                0.0 => dropped += 1,
                2.0 => kept += 1,
                other => panic!("kept values are scaled by 1 / (1 - rate), not {other}"),
            }
        }
    }
    assert!(kept > 10 && dropped > 10, "{kept} kept, {dropped} dropped of 64");
    let eval = flat(&layer.forward(&x, &mut Mode::Eval).unwrap());
    assert!(eval.iter().all(|v| *v == 1.0), "evaluation keeps everything");
}

#[test]
fn errors_name_the_field_and_what_fits() {
    let image = ModelInput::classify(&[1, 8, 6], 3);
    let features = ModelInput::classify(&[12], 3);
    let cases: &[(&ModelInput, &str, &str, &str)] = &[
        (&features, "{ type = \"reshape\", shape = [2, 2, 2] }, { type = \"flatten\" }, { type = \"dense\" }", "model.layers[0].shape", "multiply to 12"),
        (&image, "{ type = \"reshape\", shape = [48] }, { type = \"dense\" }", "model.layers[0]", "put a flatten"),
        (&image, "{ type = \"conv_transpose2d\", channels = 2, stride = 2, output_padding = 2 }, { type = \"flatten\" }, { type = \"dense\" }", "model.layers[0].output_padding", "smaller than the stride"),
        (&image, "{ type = \"conv_transpose2d\", channels = 2, kernel = 1, padding = 9 }, { type = \"flatten\" }, { type = \"dense\" }", "model.layers[0].padding", "no output"),
        (&features, "{ type = \"conv_transpose2d\" }, { type = \"flatten\" }, { type = \"dense\" }", "model.layers[0]", "put a reshape"),
        (&features, "{ type = \"upsample\" }, { type = \"flatten\" }, { type = \"dense\" }", "model.layers[0]", "put a reshape"),
        (&image, "{ type = \"upsample\", scale = 0 }, { type = \"flatten\" }, { type = \"dense\" }", "model.layers[0].scale", "at least 1"),
        (&features, "{ type = \"dropout2d\" }, { type = \"dense\" }", "model.layers[0]", "use dropout"),
        (&image, "{ type = \"dropout2d\", rate = 1.0 }, { type = \"flatten\" }, { type = \"dense\" }", "model.layers[0].rate", "probability"),
        (&features, "{ type = \"batchnorm\", momentum = 1.5 }, { type = \"dense\" }", "model.layers[0].momentum", "[0, 1]"),
        (&features, "{ type = \"batchnorm\", eps = 0.0 }, { type = \"dense\" }", "model.layers[0].eps", "positive"),
    ];
    for (input, layers, key, message) in cases {
        let e = match plan(&model(layers), input) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{layers} planned"),
        };
        assert!(e.contains(&format!("`{key}`")) && e.contains(message), "{layers}\n -> {e}");
    }
    // PyTorch's sizes and names
    let spec = model(
        "{ type = \"conv_transpose2d\", channels = 4, kernel = 4, stride = 2, padding = 1 }, { type = \"batchnorm\" },
         { type = \"flatten\" }, { type = \"dense\" }",
    );
    let planned = plan(&spec, &image).unwrap();
    assert_eq!(planned[0].output, [4, 16, 12]);
    assert_eq!(planned[0].params[0].shape, [1, 4, 4, 4], "weight [in, out, k, k]");
    let names: Vec<&str> = planned[1].params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"]);
    assert_eq!((planned[1].param_count(), planned[1].buffer_count()), (8, 9), "trainable vs buffers");
    let net = Network::new(&spec, &image, 1, &Device::Cpu).unwrap();
    assert_eq!(net.param_count(), 4 * 4 * 4 + 4 + 8 + (4 * 16 * 12 * 3 + 3));
    assert_eq!(net.buffer_count(), 9);
}

/// Training two batches with a large weight decay and learning rate, or with none: the running
/// statistics of a first-layer batch norm depend on the data alone, so the optimizer (weight
/// decay included) must have left them as the layer set them.
#[test]
fn the_optimizer_never_touches_the_running_statistics() {
    let stats = |weight_decay: f64| {
        let mut p = gradlab::Preset::builtin("iris_mlp").unwrap();
        p.model = model(
            "{ type = \"batchnorm\" }, { type = \"dense\", units = 8 }, { type = \"batchnorm\" }, { type = \"dense\" }",
        );
        p.train.optimizer = gradlab::config::OptimizerKind::AdamW;
        p.train.learning_rate = 0.5;
        p.train.weight_decay = weight_decay;
        let data = gradlab::data::load(&p.data, p.seed).unwrap();
        let mut session = gradlab::train::Session::new(p, data, Device::Cpu).unwrap();
        session.train_batch().unwrap();
        session.train_batch().unwrap();
        let of = |name: &str| {
            let (_, var) = session.net.params().iter().find(|(n, _)| n == name).unwrap();
            flat(var.as_tensor())
        };
        (of("bn1.running_mean"), of("bn1.running_var"), of("bn1.num_batches_tracked"), of("bn1.weight"))
    };
    let (plain, decayed) = (stats(0.0), stats(0.9));
    assert_eq!(plain.2, [2.0]);
    assert!(plain.0.iter().all(|v| *v != 0.0) && plain.1.iter().all(|v| *v != 1.0), "the statistics moved: {plain:?}");
    assert_eq!((&plain.0, &plain.1, &plain.2), (&decayed.0, &decayed.1, &decayed.2));
    assert_ne!(plain.3, decayed.3, "the weight decay does act on the trained weights");
}

/// A CNN with batch norm, 2-D dropout, a transposed conv and upsampling, trained 3 epochs on
/// MNIST.
fn batch_norm_cnn(threads: usize) -> gradlab::Preset {
    let mut p = gradlab::Preset::builtin("mnist_cnn").unwrap();
    p.title = "batch norm resume".into();
    p.data.limit = 600;
    p.train.epochs = 3;
    p.train.batch_size = 64;
    p.train.threads = threads;
    p.model = model(
        "{ type = \"conv2d\", channels = 4, kernel = 3, stride = 2, padding = 1 }, { type = \"batchnorm\" },
         { type = \"activation\", activation = \"relu\" }, { type = \"maxpool\", size = 2 },
         { type = \"dropout2d\", rate = 0.2 }, { type = \"conv_transpose2d\", channels = 4, kernel = 2, stride = 2 },
         { type = \"upsample\", scale = 2 }, { type = \"flatten\" }, { type = \"dense\", units = 16 },
         { type = \"batchnorm\" }, { type = \"activation\", activation = \"relu\" }, { type = \"dense\" }",
    );
    p
}

/// Stopped after its first epoch and resumed, a batch-norm model gives every figure of the
/// uninterrupted run: the running statistics (which evaluation uses) come back from the
/// checkpoint exactly. And the same run on two threads gives the same figures.
#[test]
fn running_statistics_survive_a_checkpoint_and_threads_change_nothing() {
    use gradlab::train::{Command as TrainCommand, Event, RunOrigin, RunRequest, RunStatus, Trainer, WorkerOptions};
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let a = common::run_request(RunRequest { preset: batch_norm_cnn(1), origin: RunOrigin::Fresh }, Some(&whole));
    assert_eq!(a.summary.unwrap().status, RunStatus::Completed);
    let two = dir.path().join("two-threads");
    let b = common::run_request(RunRequest { preset: batch_norm_cnn(2), origin: RunOrigin::Fresh }, Some(&two));
    assert_eq!(b.summary.unwrap().status, RunStatus::Completed);
    let only = |d: &std::path::Path| gradlab::record::list_runs(d)[0].0.clone();
    let figures = common::epoch_figures(&only(&whole));
    assert_eq!(figures.len(), 3);
    assert_eq!(common::epoch_figures(&only(&two)), figures, "2 threads give the 1-thread run's figures");

    let cut = dir.path().join("cut");
    let trainer = Trainer::spawn(WorkerOptions::headless(Some(cut.clone())));
    assert!(
        trainer.send(TrainCommand::Start(Box::new(RunRequest { preset: batch_norm_cnn(1), origin: RunOrigin::Fresh })))
    );
    loop {
        match trainer.recv_timeout(Duration::from_secs(300)).unwrap() {
            Event::Epoch(m) if m.epoch == 1 => assert!(trainer.send(TrainCommand::Stop)),
            Event::Finished(s) => {
                assert_eq!(s.status, RunStatus::Stopped);
                break;
            }
            Event::Failed { error } => panic!("{error}"),
            _ => {}
        }
    }
    let run = only(&cut);
    let request = RunRequest { preset: batch_norm_cnn(1), origin: RunOrigin::Resume(run.clone()) };
    assert!(trainer.send(TrainCommand::Start(Box::new(request))));
    let resumed = common::collect(&trainer);
    assert_eq!(resumed.summary.unwrap().status, RunStatus::Completed);
    assert_eq!(common::epoch_figures(&run), figures);
    // the checkpoint holds the statistics under PyTorch's names
    let ckpt = gradlab::record::read_checkpoint(
        &gradlab::export::find_checkpoint(&run, gradlab::export::Which::Last).unwrap(),
    )
    .unwrap();
    let tracked = flat(&ckpt.tensors["bn1.num_batches_tracked"]);
    assert_eq!(tracked, [30.0], "3 epochs of 10 batches of 64 (600 training samples)");
    assert!(
        ckpt.tensors.contains_key("bn2.running_var")
            && !ckpt.tensors.keys().any(|k| k.starts_with("optimizer.") && k.contains("running"))
    );
}
