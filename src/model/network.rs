//! A planned stack of layers with its weights: the model that trains.

use candle_core::{DType, Device, Tensor, Var};

use super::channels::{layouts, ToChannelsFirst, ToChannelsLast};
use super::fused;
use super::layers::{Init, LayerSpec, ParamSpec, Planned, RunLayer};
use super::ops::{conv2d_nhwc, max_pool_nhwc};
use super::spec::{plan, Activation, ModelInput, ModelSpec};
use crate::device::Compute;
use crate::error::Result;
use crate::rng::Rng;

/// Whether a forward pass trains (dropout active, drawing from the run's RNG) or evaluates.
pub enum Mode<'a> {
    Train(&'a mut Rng),
    Eval,
}

/// A conv layer with the activation and max-pool that follow it, one fused op on the CPU.
struct ConvBlock {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: usize,
    act: Option<Activation>,
    pool: usize,
    /// Buffers reused across training steps, and across evaluation batches.
    train_ws: fused::SharedWorkspace,
    eval_ws: fused::SharedWorkspace,
    /// Composed candle ops even on the CPU (`cpu-portable`), as off the CPU.
    portable: bool,
}

impl RunLayer for ConvBlock {
    fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        if x.device().is_cpu() && !self.portable {
            let ws = match mode {
                Mode::Train(_) => &self.train_ws,
                Mode::Eval => &self.eval_ws,
            };
            let op = fused::ConvBlock::new(self.stride, self.padding, self.act, self.pool, ws.clone());
            return Ok(x.contiguous()?.apply_op3(&self.weight, &self.bias, op)?);
        }
        let mut y = conv2d_nhwc(x, &self.weight, Some(&self.bias), self.stride, self.padding)?;
        if let Some(a) = self.act {
            y = activate(&y, a)?;
        }
        if self.pool > 1 {
            y = max_pool_nhwc(&y, self.pool)?;
        }
        Ok(y)
    }

    fn kind(&self) -> &'static str {
        "conv block"
    }

    fn activation(&self) -> Option<Activation> {
        self.act
    }
}

/// A dense layer with the activation after it, one fused op on the CPU; on a sequence
/// `[batch, time, features]` it runs on every step.
struct Dense {
    weight: Tensor,
    bias: Tensor,
    act: Option<Activation>,
    portable: bool,
}

impl Dense {
    fn matrix(&self, x: &Tensor) -> Result<Tensor> {
        if x.device().is_cpu() && !self.portable {
            return Ok(x.contiguous()?.apply_op3(&self.weight, &self.bias, fused::Dense::new(self.act))?);
        }
        let y = x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?;
        match self.act {
            Some(a) => activate(&y, a),
            None => Ok(y),
        }
    }
}

impl RunLayer for Dense {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        match *x.dims() {
            [b, t, f] => {
                let y = self.matrix(&x.contiguous()?.reshape((b * t, f))?)?;
                Ok(y.reshape((b, t, self.weight.dim(0)?))?)
            }
            _ => self.matrix(x),
        }
    }

    fn kind(&self) -> &'static str {
        "dense"
    }

    fn activation(&self) -> Option<Activation> {
        self.act
    }
}

/// A max-pool that does not follow a conv layer: one fused op on the CPU.
struct MaxPool {
    size: usize,
    /// The composed form even on the CPU (`cpu-portable`), as off the CPU.
    portable: bool,
}

impl RunLayer for MaxPool {
    fn forward(&self, x: &Tensor, _mode: &mut Mode<'_>) -> Result<Tensor> {
        if x.device().is_cpu() && !self.portable {
            return Ok(x.contiguous()?.apply_op1(super::fused_pool::MaxPool::new(self.size))?);
        }
        Ok(max_pool_nhwc(x, self.size)?)
    }

    fn kind(&self) -> &'static str {
        "max-pool"
    }
}

/// A layer of the network as the GUI lists it.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    pub description: String,
    pub output_shape: Vec<usize>,
    pub params: usize,
}

/// One run layer's output during [`Network::forward_tapped`].
pub struct Tap<'a> {
    /// The run layer's position (`Network::run_layers`).
    pub index: usize,
    /// Its parameters' prefix (`conv1`, `fc2`), or its type for a layer without any.
    pub name: &'a str,
    pub kind: &'static str,
    pub activation: Option<Activation>,
    /// `[batch, ...]`; images channels-last from the first conv or pool on.
    pub output: &'a Tensor,
}

pub struct Network {
    layers: Vec<Box<dyn RunLayer>>,
    /// Each run layer's name: its planned layer's parameter prefix, or its type.
    run_names: Vec<String>,
    /// Tensors with readable names (`conv1.weight`, `fc2.bias`, `bn1.running_mean`), in layer
    /// order: the weights and the buffers (checkpoints and exports hold both).
    params: Vec<(String, Var)>,
    /// Whether each of `params` is trained (`false`: a buffer, which gets no gradient).
    trainable: Vec<bool>,
    info: Vec<LayerInfo>,
    portable: bool,
}

/// A parameter drawn as PyTorch's default for its module would, from the run's seeded RNG.
fn init(p: &ParamSpec, rng: &mut Rng, device: &Device) -> Result<Var> {
    let values: Vec<f32> = match p.init {
        Init::Uniform(bound) => (0..p.len()).map(|_| rng.uniform_range(-bound, bound)).collect(),
        Init::Normal(std) => (0..p.len()).map(|_| rng.normal() * std).collect(),
        Init::Constant(v) => vec![v; p.len()],
    };
    Ok(Var::from_tensor(&Tensor::from_vec(values, p.shape.as_slice(), device)?)?)
}

/// The next planned layer when `want` accepts it: it joins the fused op of the layer before.
fn absorb<'a>(
    planned: &'a [Planned],
    i: &mut usize,
    info: &mut Vec<LayerInfo>,
    want: fn(&LayerSpec) -> bool,
) -> Option<&'a LayerSpec> {
    let next = planned.get(*i).filter(|n| want(&n.spec))?;
    info.push(LayerInfo { description: next.describe(), output_shape: next.output.clone(), params: 0 });
    *i += 1;
    Some(&next.spec)
}

impl Network {
    /// Plans the spec for this input and initialises every weight from `seed`, in plan order.
    /// On the CPU the layers take their fused CPU forms, elsewhere (and with `compute.portable`)
    /// their portable ones, composed from candle ops.
    pub fn new(spec: &ModelSpec, input: &ModelInput, seed: u64, device: &Device) -> Result<Self> {
        Self::new_on(spec, input, seed, &Compute::from(device.clone()))
    }

    /// [`Network::new`] on a device whose `portable` flag chooses the layers' forms
    /// (`cpu-portable` runs the GPU's forms on the CPU).
    pub fn new_on(spec: &ModelSpec, input: &ModelInput, seed: u64, compute: &Compute) -> Result<Self> {
        Self::build(spec, input, Rng::derive(seed, "init", 0), compute)
    }

    /// Like [`Network::new`], drawing the weights from `rng` (a GAN's discriminator has its own
    /// stream, so its layers never change the generator's weights).
    pub fn with_rng(spec: &ModelSpec, input: &ModelInput, rng: Rng, device: &Device) -> Result<Self> {
        Self::build(spec, input, rng, &Compute::from(device.clone()))
    }

    /// [`Network::with_rng`] on `compute`.
    pub fn build(spec: &ModelSpec, input: &ModelInput, mut rng: Rng, compute: &Compute) -> Result<Self> {
        let device = &compute.device;
        let portable = compute.portable;
        let planned = plan(spec, input)?;
        let mut layers: Vec<Box<dyn RunLayer>> = Vec::new();
        let mut params = Vec::new();
        let mut trainable = Vec::new();
        let mut info = Vec::new();
        let mut run_names = Vec::new();
        let layout = layouts(&planned);
        let mut channels_last = false;
        let mut i = 0;
        while i < planned.len() {
            let p = &planned[i];
            let mut tensors = Vec::with_capacity(p.params.len());
            let mut vars = Vec::with_capacity(p.params.len());
            for spec in &p.params {
                let var = init(spec, &mut rng, device)?;
                tensors.push(var.as_tensor().clone());
                vars.push(var.clone());
                params.push((spec.name.clone(), var));
                trainable.push(spec.trainable);
            }
            info.push(LayerInfo { description: p.describe(), output_shape: p.output.clone(), params: p.param_count() });
            if p.input.len() == 3 && layout[i].input_channels_last != channels_last {
                if channels_last {
                    layers.push(Box::new(ToChannelsFirst));
                } else {
                    layers.push(Box::new(ToChannelsLast));
                }
                run_names.push("layout".to_string());
            }
            run_names.push(if p.name.is_empty() { p.spec.type_name().to_string() } else { p.name.clone() });
            i += 1;
            let is_activation: fn(&LayerSpec) -> bool = |l| matches!(l, LayerSpec::Activation(_));
            let layer: Box<dyn RunLayer> = match &p.spec {
                LayerSpec::Conv2d(c) => {
                    let mut act = c.activation;
                    if act.is_none() {
                        if let Some(LayerSpec::Activation(a)) = absorb(&planned, &mut i, &mut info, is_activation) {
                            act = Some(a.activation);
                        }
                    }
                    let pool = match absorb(&planned, &mut i, &mut info, |l| matches!(l, LayerSpec::Maxpool(_))) {
                        Some(LayerSpec::Maxpool(m)) => m.size,
                        _ => 1,
                    };
                    Box::new(ConvBlock {
                        weight: tensors[0].clone(),
                        bias: tensors[1].clone(),
                        stride: c.stride,
                        padding: c.padding,
                        act,
                        pool,
                        train_ws: fused::SharedWorkspace::default(),
                        eval_ws: fused::SharedWorkspace::default(),
                        portable,
                    })
                }
                LayerSpec::Dense(d) => {
                    let mut act = d.activation;
                    if act.is_none() {
                        if let Some(LayerSpec::Activation(a)) = absorb(&planned, &mut i, &mut info, is_activation) {
                            act = Some(a.activation);
                        }
                    }
                    Box::new(Dense { weight: tensors[0].clone(), bias: tensors[1].clone(), act, portable })
                }
                LayerSpec::Maxpool(m) => Box::new(MaxPool { size: m.size, portable }),
                LayerSpec::Batchnorm(b) => b.build_on(&vars, portable)?,
                other => other.build_on(p, &tensors, portable)?,
            };
            layers.push(layer);
            // the last layer this one absorbed (an activation, a pool) leaves the layout
            channels_last = layout[i - 1].output_channels_last;
        }
        // a model that ends in an image (a decoder) gives it in the plan's [c, h, w]
        if channels_last {
            layers.push(Box::new(ToChannelsFirst));
            run_names.push("layout".to_string());
        }
        Ok(Self { layers, run_names, params, trainable, info, portable })
    }

    /// Whether the layers run in their portable forms (composed candle ops).
    pub fn portable(&self) -> bool {
        self.portable
    }

    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    pub fn layers(&self) -> &[LayerInfo] {
        &self.info
    }

    /// Whether each of `params()` is trained; `false` for buffers (running statistics).
    pub fn trainable(&self) -> &[bool] {
        &self.trainable
    }

    /// Trained values (PyTorch's `sum(p.numel() for p in model.parameters())`).
    pub fn param_count(&self) -> usize {
        self.params.iter().zip(&self.trainable).filter(|(_, t)| **t).map(|((_, v), _)| v.elem_count()).sum()
    }

    /// Values of buffers: running statistics, saved with the weights but never trained.
    pub fn buffer_count(&self) -> usize {
        self.params.iter().zip(&self.trainable).filter(|(_, t)| !**t).map(|((_, v), _)| v.elem_count()).sum()
    }

    /// The model's output for inputs `[batch, input_shape...]`: logits `[batch, classes]`, or
    /// `[batch, time, vocabulary]` for a language model.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            x = layer.forward(&x, mode)?;
        }
        Ok(x)
    }

    /// [`Network::forward`], calling `tap` with each run layer's output as it is made (no extra
    /// op: the views read what the forward computes anyway).
    pub fn forward_tapped(&self, x: &Tensor, mode: &mut Mode<'_>, tap: &mut dyn FnMut(&Tap<'_>)) -> Result<Tensor> {
        let mut x = x.clone();
        for (index, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x, mode)?;
            tap(&Tap {
                index,
                name: &self.run_names[index],
                kind: layer.kind(),
                activation: layer.activation(),
                output: &x,
            });
        }
        Ok(x)
    }

    /// Each run layer's name: its parameters' prefix (`conv1`), or its type (`flatten`).
    pub fn run_names(&self) -> &[String] {
        &self.run_names
    }

    /// The activation after run layer `i`, if it has one.
    pub fn layer_activation(&self, i: usize) -> Option<Activation> {
        self.layers[i].activation()
    }

    /// Layers as they run (fused: conv + activation + pool is one).
    pub fn run_layers(&self) -> usize {
        self.layers.len()
    }

    /// Runs layer `i` alone (the benchmark times layers one by one).
    pub fn forward_layer(&self, i: usize, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        self.layers[i].forward(x, mode)
    }

    /// The kind of running layer `i`, for grouping timings.
    pub fn layer_kind(&self, i: usize) -> &'static str {
        self.layers[i].kind()
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
        // relu(x) - 0.2 relu(-x): slope 1 above zero, 0.2 below
        Activation::LeakyRelu => (x.relu()? - (x.neg()?.relu()? * f64::from(Activation::LEAKY_SLOPE))?)?,
    })
}

/// Inverted dropout with a mask drawn from the run's seeded RNG.
pub(crate) fn dropout(x: &Tensor, p: f64, rng: &mut Rng) -> Result<Tensor> {
    let keep = (1.0 - p) as f32;
    let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.uniform() < keep { 1.0 / keep } else { 0.0 }).collect();
    Ok((x * Tensor::from_vec(mask, x.shape(), x.device())?)?)
}
