//! A model rebuilt from an export's config.json and model.safetensors alone, with no Gradlab code:
//! what a PyTorch user does with `nn.Sequential`, written as plain loops over NCHW data.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

pub struct ReferenceModel {
    layers: Vec<Value>,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    input_shape: Vec<usize>,
    scale: f32,
    mean: Vec<f32>,
    std: Vec<f32>,
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number") as f32).collect()
}

fn usize_of(layer: &Value, key: &str) -> usize {
    layer[key].as_u64().unwrap_or_else(|| panic!("layer {layer} has no `{key}`")) as usize
}

/// erf to ~1e-7 (Abramowitz & Stegun 7.1.26 is 1.5e-7 absolute; good enough for 1e-4 checks).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t + 0.254_829_592)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

impl ReferenceModel {
    pub fn load(dir: &Path) -> Self {
        let card: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(card["layout"], "pytorch", "the card says its layout");
        assert_eq!(
            card["input"]["layout"],
            if card["input_shape"].as_array().unwrap().len() == 3 { "NCHW" } else { "NC" }
        );
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            // batch norm's count is int64 in PyTorch's state_dict; everything else f32
            let data = if name.ends_with(".num_batches_tracked") {
                assert_eq!(view.dtype(), safetensors::Dtype::I64, "{name}");
                view.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32).collect()
            } else {
                assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
                view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            };
            tensors.insert(name.to_string(), (view.shape().to_vec(), data));
        }
        let n = &card["normalization"];
        Self {
            layers: card["layers"].as_array().unwrap().clone(),
            tensors,
            input_shape: card["input_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect(),
            scale: n["scale"].as_f64().unwrap() as f32,
            mean: floats(&n["mean"]),
            std: floats(&n["std"]),
        }
    }

    fn tensor(&self, layer: &Value, key: &str) -> &(Vec<usize>, Vec<f32>) {
        let name = layer[key].as_str().unwrap_or_else(|| panic!("layer {layer} names no `{key}`"));
        self.tensors.get(name).unwrap_or_else(|| panic!("model.safetensors has no `{name}`"))
    }

    /// Logits of raw samples (`n` of the input shape), normalised as the card says.
    pub fn logits(&self, raw: &[f32], n: usize) -> Vec<Vec<f32>> {
        let len: usize = self.input_shape.iter().product();
        (0..n)
            .map(|s| {
                let x: Vec<f32> = raw[s * len..(s + 1) * len]
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v * self.scale - self.mean[i % self.mean.len()]) / self.std[i % self.std.len()])
                    .collect();
                self.forward(x)
            })
            .collect()
    }

    fn forward(&self, mut x: Vec<f32>) -> Vec<f32> {
        let mut shape = self.input_shape.clone();
        for layer in &self.layers {
            match layer["type"].as_str().expect("a layer type") {
                "Conv2d" => {
                    let (ws, w) = self.tensor(layer, "weight");
                    let (_, b) = self.tensor(layer, "bias");
                    let (k, s, p) =
                        (usize_of(layer, "kernel_size"), usize_of(layer, "stride"), usize_of(layer, "padding"));
                    let (ci, h, wd) = (shape[0], shape[1], shape[2]);
                    let co = usize_of(layer, "out_channels");
                    assert_eq!(ws, &vec![co, ci, k, k], "Conv2d weight is [out, in, kh, kw]");
                    let (oh, ow) = ((h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1);
                    let mut y = vec![0f32; co * oh * ow];
                    for o in 0..co {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let mut acc = f64::from(b[o]);
                                for c in 0..ci {
                                    for ky in 0..k {
                                        for kx in 0..k {
                                            let (iy, ix) = (
                                                (oy * s + ky) as isize - p as isize,
                                                (ox * s + kx) as isize - p as isize,
                                            );
                                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                                continue;
                                            }
                                            let xv = x[(c * h + iy as usize) * wd + ix as usize];
                                            acc += f64::from(w[((o * ci + c) * k + ky) * k + kx]) * f64::from(xv);
                                        }
                                    }
                                }
                                y[(o * oh + oy) * ow + ox] = acc as f32;
                            }
                        }
                    }
                    (x, shape) = (y, vec![co, oh, ow]);
                }
                "ReLU" => x.iter_mut().for_each(|v| *v = v.max(0.0)),
                "Tanh" => x.iter_mut().for_each(|v| *v = v.tanh()),
                "Sigmoid" => x.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
                "GELU" => {
                    assert_eq!(layer["approximate"], "none");
                    x.iter_mut().for_each(|v| {
                        let f = f64::from(*v);
                        *v = (0.5 * f * (1.0 + erf(f / std::f64::consts::SQRT_2))) as f32;
                    });
                }
                "MaxPool2d" => {
                    let (k, s) = (usize_of(layer, "kernel_size"), usize_of(layer, "stride"));
                    let (c, h, w) = (shape[0], shape[1], shape[2]);
                    let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
                    let mut y = vec![f32::NEG_INFINITY; c * oh * ow];
                    for ch in 0..c {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let v = x[(ch * h + oy * s + ky) * w + ox * s + kx];
                                        let o = &mut y[(ch * oh + oy) * ow + ox];
                                        *o = o.max(v);
                                    }
                                }
                            }
                        }
                    }
                    (x, shape) = (y, vec![c, oh, ow]);
                }
                "Flatten" => {
                    assert_eq!(usize_of(layer, "start_dim"), 1);
                    shape = vec![x.len()];
                }
                "Linear" => {
                    let (ws, w) = self.tensor(layer, "weight");
                    let (_, b) = self.tensor(layer, "bias");
                    let (i, o) = (usize_of(layer, "in_features"), usize_of(layer, "out_features"));
                    assert_eq!(ws, &vec![o, i], "Linear weight is [out, in]");
                    assert_eq!(x.len(), i);
                    x = (0..o)
                        .map(|r| {
                            let dot: f64 =
                                w[r * i..(r + 1) * i].iter().zip(&x).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
                            (dot + f64::from(b[r])) as f32
                        })
                        .collect();
                    shape = vec![o];
                }
                "Dropout" | "Dropout2d" => {}
                "BatchNorm" => {
                    // evaluation: the running statistics, per feature or per channel (NCHW)
                    let module = layer["module"].as_str().unwrap();
                    assert_eq!(module, if shape.len() == 3 { "BatchNorm2d" } else { "BatchNorm1d" });
                    let (_, w) = self.tensor(layer, "weight");
                    let (_, b) = self.tensor(layer, "bias");
                    let (_, mean) = self.tensor(layer, "running_mean");
                    let (_, var) = self.tensor(layer, "running_var");
                    let (count_shape, _) = self.tensor(layer, "num_batches_tracked");
                    assert!(count_shape.is_empty(), "num_batches_tracked is a scalar");
                    let eps = layer["eps"].as_f64().unwrap();
                    let c = usize_of(layer, "num_features");
                    let per = x.len() / c;
                    for (i, v) in x.iter_mut().enumerate() {
                        let ch = i / per;
                        let norm = (f64::from(*v) - f64::from(mean[ch])) / (f64::from(var[ch]) + eps).sqrt();
                        *v = (norm * f64::from(w[ch]) + f64::from(b[ch])) as f32;
                    }
                }
                "ConvTranspose2d" => {
                    let (ws, w) = self.tensor(layer, "weight");
                    let (_, b) = self.tensor(layer, "bias");
                    let (k, s, p) =
                        (usize_of(layer, "kernel_size"), usize_of(layer, "stride"), usize_of(layer, "padding"));
                    let op = usize_of(layer, "output_padding");
                    let (ci, h, wd) = (shape[0], shape[1], shape[2]);
                    let co = usize_of(layer, "out_channels");
                    assert_eq!(ws, &vec![ci, co, k, k], "ConvTranspose2d weight is [in, out, kh, kw]");
                    let (oh, ow) = ((h - 1) * s + k + op - 2 * p, (wd - 1) * s + k + op - 2 * p);
                    let mut y: Vec<f64> = (0..co * oh * ow).map(|i| f64::from(b[i / (oh * ow)])).collect();
                    for c in 0..ci {
                        for iy in 0..h {
                            for ix in 0..wd {
                                let xv = f64::from(x[(c * h + iy) * wd + ix]);
                                for o in 0..co {
                                    for ky in 0..k {
                                        for kx in 0..k {
                                            let (oy, ox) = (
                                                (iy * s + ky) as isize - p as isize,
                                                (ix * s + kx) as isize - p as isize,
                                            );
                                            if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                                continue;
                                            }
                                            y[(o * oh + oy as usize) * ow + ox as usize] +=
                                                f64::from(w[((c * co + o) * k + ky) * k + kx]) * xv;
                                        }
                                    }
                                }
                            }
                        }
                    }
                    (x, shape) = (y.into_iter().map(|v| v as f32).collect(), vec![co, oh, ow]);
                }
                "Upsample" => {
                    assert_eq!(layer["mode"], "nearest");
                    let f = usize_of(layer, "scale_factor");
                    let (c, h, w) = (shape[0], shape[1], shape[2]);
                    let (oh, ow) = (h * f, w * f);
                    let y = (0..c * oh * ow)
                        .map(|i| {
                            let (ch, oy, ox) = (i / (oh * ow), i / ow % oh, i % ow);
                            x[(ch * h + oy / f) * w + ox / f]
                        })
                        .collect();
                    (x, shape) = (y, vec![c, oh, ow]);
                }
                "Unflatten" => {
                    assert_eq!(usize_of(layer, "dim"), 1);
                    shape = layer["unflattened_size"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_u64().unwrap() as usize)
                        .collect();
                    assert_eq!(shape.iter().product::<usize>(), x.len());
                }
                other => panic!("unknown layer type {other}"),
            }
        }
        x
    }
}
