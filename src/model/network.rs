//! A planned stack of layers with its weights: the model that trains.

use candle_core::{DType, Device, Tensor, Var};

use super::fused;
use super::ops::{conv2d_nhwc, max_pool_nhwc};
use super::spec::{plan, Activation, LayerPlan, ModelSpec};
use crate::error::Result;
use crate::rng::Rng;

/// Whether a forward pass trains (dropout active, drawing from the run's RNG) or evaluates.
pub enum Mode<'a> {
    Train(&'a mut Rng),
    Eval,
}

/// Layers as they run: a convolution with its activation and pooling is one layer, a dense
/// layer with its activation another, so each is a single fused op on the CPU.
enum Layer {
    ConvBlock {
        weight: Tensor,
        bias: Tensor,
        stride: usize,
        padding: usize,
        act: Option<Activation>,
        pool: usize,
        /// Buffers reused across training steps, and across evaluation batches.
        train_ws: fused::SharedWorkspace,
        eval_ws: fused::SharedWorkspace,
    },
    Flatten,
    Dense {
        weight: Tensor,
        bias: Tensor,
        act: Option<Activation>,
    },
    Dropout(f64),
}

/// A layer of the network as the GUI lists it.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    pub description: String,
    pub output_shape: Vec<usize>,
    pub params: usize,
}

pub struct Network {
    layers: Vec<Layer>,
    /// Trainable tensors with readable names (`conv1.weight`, `fc2.bias`), in layer order.
    params: Vec<(String, Var)>,
    info: Vec<LayerInfo>,
}

/// PyTorch's default initialisation for Linear and Conv2d (Kaiming uniform with a = sqrt(5)):
/// weights and biases uniform in ±1/sqrt(fan_in).
fn uniform(shape: &[usize], fan_in: usize, rng: &mut Rng, device: &Device) -> Result<Var> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.uniform_range(-bound, bound)).collect();
    Ok(Var::from_tensor(&Tensor::from_vec(values, shape, device)?)?)
}

impl Network {
    /// Plans the spec for this data and initialises every weight from `seed`.
    pub fn new(spec: &ModelSpec, input_shape: &[usize], classes: usize, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = Rng::derive(seed, "init", 0);
        let mut layers = Vec::new();
        let mut params = Vec::new();
        let mut info = Vec::new();
        for (p, out_shape) in plan(spec, input_shape, classes)? {
            // plan refuses layers whose parameter count overflows
            let count = p.param_count().ok_or_else(|| crate::Error::Shape(format!("{p:?} has too many parameters")))?;
            let description = match p {
                LayerPlan::Conv { name, in_channels, out_channels, kernel, stride, padding } => {
                    let fan_in = in_channels * kernel * kernel; // no overflow: part of `count`
                    let w = uniform(&[out_channels, in_channels, kernel, kernel], fan_in, &mut rng, device)?;
                    let b = uniform(&[out_channels], fan_in, &mut rng, device)?;
                    layers.push(Layer::ConvBlock {
                        weight: w.as_tensor().clone(),
                        bias: b.as_tensor().clone(),
                        stride,
                        padding,
                        act: None,
                        pool: 1,
                        train_ws: fused::SharedWorkspace::default(),
                        eval_ws: fused::SharedWorkspace::default(),
                    });
                    params.push((format!("{name}.weight"), w));
                    params.push((format!("{name}.bias"), b));
                    format!("{name}: conv {out_channels} {kernel}x{kernel}, stride {stride}, padding {padding}")
                }
                LayerPlan::Dense { name, inputs, outputs } => {
                    let w = uniform(&[outputs, inputs], inputs, &mut rng, device)?;
                    let b = uniform(&[outputs], inputs, &mut rng, device)?;
                    layers.push(Layer::Dense { weight: w.as_tensor().clone(), bias: b.as_tensor().clone(), act: None });
                    params.push((format!("{name}.weight"), w));
                    params.push((format!("{name}.bias"), b));
                    format!("{name}: dense {inputs} -> {outputs}")
                }
                // an activation or pooling joins the layer before it
                LayerPlan::Activation(a) => {
                    match layers.last_mut() {
                        Some(Layer::ConvBlock { act, pool: 1, .. } | Layer::Dense { act, .. }) if act.is_none() => {
                            *act = Some(a);
                        }
                        _ => {
                            return Err(crate::Error::Other(format!("{} must follow a conv or dense layer", a.title())))
                        }
                    }
                    a.title().into()
                }
                LayerPlan::MaxPool { size } => {
                    match layers.last_mut() {
                        Some(Layer::ConvBlock { pool, .. }) if *pool == 1 => *pool = size,
                        _ => return Err(crate::Error::Other("max-pool must follow a conv layer".into())),
                    }
                    format!("max-pool {size}x{size}")
                }
                LayerPlan::Flatten => {
                    layers.push(Layer::Flatten);
                    "flatten".into()
                }
                LayerPlan::Dropout(p) => {
                    layers.push(Layer::Dropout(p));
                    format!("dropout {p}")
                }
            };
            info.push(LayerInfo { description, output_shape: out_shape, params: count });
        }
        Ok(Self { layers, params, info })
    }

    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    pub fn layers(&self) -> &[LayerInfo] {
        &self.info
    }

    pub fn param_count(&self) -> usize {
        self.params.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Logits `[batch, classes]` for inputs `[batch, input_shape...]`.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let mut x = self.prepare_input(x)?;
        for i in 0..self.layers.len() {
            x = self.forward_layer(i, &x, mode)?;
        }
        Ok(x)
    }

    /// The input as the first layer takes it: NCHW data goes NHWC for convolutions (free for
    /// one channel, one copy otherwise).
    pub fn prepare_input(&self, x: &Tensor) -> Result<Tensor> {
        Ok(if matches!(self.layers.first(), Some(Layer::ConvBlock { .. })) {
            x.permute((0, 2, 3, 1))?.contiguous()?
        } else {
            x.clone()
        })
    }

    /// Layers as they run (fused: conv + activation + pool is one).
    pub fn run_layers(&self) -> usize {
        self.layers.len()
    }

    /// Runs layer `i` alone (the benchmark times layers one by one).
    pub fn forward_layer(&self, i: usize, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let cpu = x.device().is_cpu();
        Ok(match &self.layers[i] {
            Layer::ConvBlock { weight, bias, stride, padding, act, pool, train_ws, eval_ws } if cpu => {
                let ws = match mode {
                    Mode::Train(_) => train_ws,
                    Mode::Eval => eval_ws,
                };
                x.contiguous()?.apply_op3(
                    weight,
                    bias,
                    fused::ConvBlock::new(*stride, *padding, *act, *pool, ws.clone()),
                )?
            }
            Layer::ConvBlock { weight, bias, stride, padding, act, pool, .. } => {
                let mut y = conv2d_nhwc(x, weight, Some(bias), *stride, *padding)?;
                if let Some(a) = act {
                    y = activate(&y, *a)?;
                }
                if *pool > 1 {
                    y = max_pool_nhwc(&y, *pool)?;
                }
                y
            }
            Layer::Flatten => x.flatten_from(1)?,
            Layer::Dense { weight, bias, act } if cpu => {
                x.contiguous()?.apply_op3(weight, bias, fused::Dense::new(*act))?
            }
            Layer::Dense { weight, bias, act } => {
                let y = x.matmul(&weight.t()?)?.broadcast_add(bias)?;
                match act {
                    Some(a) => activate(&y, *a)?,
                    None => y,
                }
            }
            Layer::Dropout(p) => match mode {
                Mode::Train(rng) => dropout(x, *p, rng)?,
                Mode::Eval => x.clone(),
            },
        })
    }

    /// The kind of running layer `i`, for grouping timings.
    pub fn layer_kind(&self, i: usize) -> &'static str {
        match &self.layers[i] {
            Layer::ConvBlock { .. } => "conv block",
            Layer::Flatten => "flatten",
            Layer::Dense { .. } => "dense",
            Layer::Dropout(_) => "dropout",
        }
    }

    /// Copies the values of `other`'s parameters into this network's (same spec).
    pub fn load_params(&self, values: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        for (name, var) in &self.params {
            let v = values.get(name).ok_or_else(|| crate::Error::Other(format!("weights have no tensor `{name}`")))?;
            if v.dims() != var.dims() {
                return Err(crate::Error::Shape(format!(
                    "tensor `{name}` is {:?} but the model expects {:?}",
                    v.dims(),
                    var.dims()
                )));
            }
            var.set(&v.to_dtype(DType::F32)?.to_device(var.device())?)?;
        }
        Ok(())
    }
}

pub(crate) fn activate(x: &Tensor, a: Activation) -> Result<Tensor> {
    Ok(match a {
        Activation::Relu => x.relu()?,
        Activation::Tanh => x.tanh()?,
        // 1 / (1 + e^-x), from differentiable primitives
        Activation::Sigmoid => (x.neg()?.exp()? + 1.0)?.recip()?,
        Activation::Gelu => x.gelu_erf()?,
    })
}

/// Inverted dropout with a mask drawn from the run's seeded RNG.
fn dropout(x: &Tensor, p: f64, rng: &mut Rng) -> Result<Tensor> {
    let keep = (1.0 - p) as f32;
    let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.uniform() < keep { 1.0 / keep } else { 0.0 }).collect();
    Ok((x * Tensor::from_vec(mask, x.shape(), x.device())?)?)
}
