//! Optimizers with PyTorch's update rules (SGD with momentum, Adam, AdamW).
//!
//! Two paths compute the same rule. On the CPU each parameter is updated in place in one pass
//! (an in-place candle op) rather than through a dozen tensor operations, each allocating, with
//! the state in plain vectors. On the portable path (`portable`: always off the CPU, and on the
//! CPU for `cpu-portable`) the rule is written with candle tensor ops (`portable.rs`), the state
//! stays on the parameter's device as tensors and the parameter is replaced with `Var::set`, so a
//! step never copies anything to the host; the state crosses to the host only when a checkpoint
//! is written or read (`host_state`, `load_host_state`).

mod portable;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use candle_core::{backprop::GradStore, CpuStorage, InplaceOp2, Layout, Tensor, Var};
use rayon::prelude::*;

use crate::config::OptimizerKind;
use crate::error::{Error, Result};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Per-parameter state as a checkpoint holds it: SGD's momentum buffer in `m`; Adam's first and
/// second moments. Empty before the first update (equivalent to zeros).
#[derive(Default, Clone, Debug, PartialEq)]
pub struct ParamState {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

/// Where a parameter's state lives.
#[derive(Clone, Debug)]
enum Moments {
    /// Plain vectors the fused CPU rule updates in place.
    Host(ParamState),
    /// Tensors on the parameter's device (the portable path); `None` before the first update.
    Device { m: Option<Tensor>, v: Option<Tensor> },
}

impl Default for Moments {
    fn default() -> Self {
        Moments::Host(ParamState::default())
    }
}

pub struct Optimizer {
    pub kind: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Number of updates done so far (Adam's bias correction needs it).
    pub steps: u64,
    state: Vec<Moments>,
    /// Parameters that never change (transfer learning's frozen layers), by position; empty or
    /// shorter than the parameters: the rest train.
    pub frozen: Vec<bool>,
    /// Adam's moment decay rates (`train.beta1`, `train.beta2`; a GAN takes beta1 = 0.5).
    pub betas: (f64, f64),
    /// Update with tensor ops on the parameters' device (`Compute::portable`). Parameters off the
    /// CPU take this path whatever it says: the fused rule only runs on host memory.
    pub portable: bool,
    /// Tensors copied between the host and the state's device (either way) so far: only
    /// `host_state` and `load_host_state` copy, never a step.
    host_copies: AtomicU64,
}

/// One update rule with its hyper-parameters for this step, as the f32 values both paths use
/// (so the portable path computes with the very same constants as the fused one).
#[derive(Clone, Copy)]
struct Rule {
    kind: OptimizerKind,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    /// Adam's bias corrections 1 / (1 - beta^t).
    m_scale: f32,
    v_scale: f32,
    b1: f32,
    b2: f32,
}

/// Elements per parallel task: big layers update on all threads, biases stay on one.
const CHUNK: usize = 1 << 14;

impl Rule {
    fn apply(&self, p: &mut [f32], g: &[f32], state: &mut ParamState) {
        let n = p.len();
        state.m.resize(n, 0.0);
        match self.kind {
            OptimizerKind::Sgd => {
                p.par_chunks_mut(CHUNK)
                    .zip(g.par_chunks(CHUNK))
                    .zip(state.m.par_chunks_mut(CHUNK))
                    .for_each(|((p, g), m)| self.sgd(p, g, m));
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                state.v.resize(n, 0.0);
                p.par_chunks_mut(CHUNK)
                    .zip(g.par_chunks(CHUNK))
                    .zip(state.m.par_chunks_mut(CHUNK).zip(state.v.par_chunks_mut(CHUNK)))
                    .for_each(|((p, g), (m, v))| self.adam(p, g, m, v));
            }
        }
    }

    fn sgd(&self, p: &mut [f32], g: &[f32], buf: &mut [f32]) {
        let (lr, mu, wd) = (self.lr, self.momentum, self.weight_decay);
        for ((p, g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
            let g = g + wd * *p;
            let update = if mu > 0.0 {
                *b = mu * *b + g;
                *b
            } else {
                g
            };
            *p -= lr * update;
        }
    }

    fn adam(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let decoupled = self.kind == OptimizerKind::AdamW;
        let (b1, b2) = (self.b1, self.b2);
        let (lr, wd, ms, vs, eps) = (self.lr, self.weight_decay, self.m_scale, self.v_scale, EPS as f32);
        for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = if decoupled { *g } else { g + wd * *p };
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            if decoupled {
                *p *= 1.0 - lr * wd;
            }
            *p -= lr * (*m * ms) / ((*v * vs).sqrt() + eps);
        }
    }
}

/// The update as an in-place op on the parameter, with the gradient as its source.
struct InPlace<'a> {
    rule: Rule,
    state: Mutex<&'a mut ParamState>,
}

impl InplaceOp2 for InPlace<'_> {
    fn name(&self) -> &'static str {
        "gradlab-optimizer-step"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        src: &CpuStorage,
        src_l: &Layout,
    ) -> candle_core::Result<()> {
        let (Some((d0, d1)), Some((s0, s1))) = (dst_l.contiguous_offsets(), src_l.contiguous_offsets()) else {
            candle_core::bail!("optimizer step: parameter and gradient must be contiguous");
        };
        let g = &src.as_slice::<f32>()?[s0..s1];
        let p = match dst {
            CpuStorage::F32(v) => &mut v[d0..d1],
            _ => candle_core::bail!("optimizer step: parameters are f32"),
        };
        let mut state = self.state.lock().expect("not poisoned");
        self.rule.apply(p, g, &mut state);
        Ok(())
    }
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, momentum: f64, weight_decay: f64, params: usize) -> Self {
        Self {
            kind,
            momentum,
            weight_decay,
            steps: 0,
            state: vec![Moments::default(); params],
            betas: (BETA1, BETA2),
            frozen: Vec::new(),
            portable: false,
            host_copies: AtomicU64::new(0),
        }
    }

    /// The optimizer a preset's `[train]` table asks for, for `params` parameters.
    pub fn for_preset(t: &crate::config::TrainSpec, params: usize) -> Self {
        Self { betas: (t.beta1, t.beta2), ..Self::new(t.optimizer, t.momentum, t.weight_decay, params) }
    }

    /// One update of every parameter that has a gradient, with learning rate `lr`.
    pub fn step(&mut self, params: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<()> {
        self.step_clipped(params, grads, lr, None)
    }

    /// Like [`Optimizer::step`], with the gradients first scaled so that their global L2 norm
    /// is at most `max_norm` (PyTorch's `clip_grad_norm_`: scale `max_norm / (norm + 1e-6)` when
    /// below 1). The norm sums each gradient's squares in parameter order, so it does not depend
    /// on the thread count.
    pub fn step_clipped(
        &mut self,
        params: &[(String, Var)],
        grads: &GradStore,
        lr: f64,
        max_norm: Option<f64>,
    ) -> Result<()> {
        if self.state.len() < params.len() {
            self.state.resize(params.len(), Moments::default());
        }
        let portable = self.portable || params.iter().any(|(_, var)| !var.device().is_cpu());
        let trained: Vec<(&Var, &Tensor)> = params
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.is_frozen(*i))
            .filter_map(|(_, (_, var))| Some((var, grads.get(var)?)))
            .collect();
        self.steps += 1;
        let rule = self.rule(lr);
        if portable {
            let scale = match max_norm {
                Some(max_norm) => portable::clip_scale(trained.iter().map(|(_, g)| *g), max_norm)?,
                None => None,
            };
            for (i, (_, var)) in params.iter().enumerate() {
                let Some(grad) = grads.get(var).filter(|_| !self.is_frozen(i)) else { continue };
                let grad = match &scale {
                    Some(scale) => grad.broadcast_mul(scale)?,
                    None => grad.clone(),
                };
                let (m, v) = self.device_moments(i, var)?;
                rule.apply_tensors(var, &grad, m, v)?;
            }
            return Ok(());
        }
        let scale = match max_norm {
            Some(max_norm) => host_clip_scale(trained.iter().map(|(_, g)| *g), max_norm)?,
            None => 1.0,
        };
        for (i, (_, var)) in params.iter().enumerate() {
            let Some(grad) = grads.get(var).filter(|_| !self.is_frozen(i)) else { continue };
            let grad = if scale < 1.0 { (grad * scale)? } else { grad.contiguous()? };
            let state = self.host_moments(i)?;
            var.as_tensor().inplace_op2(&grad, &InPlace { rule, state: Mutex::new(state) })?;
        }
        Ok(())
    }

    /// This step's rule, its constants computed in f32 exactly as both paths use them.
    fn rule(&self, lr: f64) -> Rule {
        let t = self.steps as i32;
        Rule {
            kind: self.kind,
            lr: lr as f32,
            momentum: self.momentum as f32,
            weight_decay: self.weight_decay as f32,
            m_scale: (1.0 / (1.0 - self.betas.0.powi(t))) as f32,
            v_scale: (1.0 / (1.0 - self.betas.1.powi(t))) as f32,
            b1: self.betas.0 as f32,
            b2: self.betas.1 as f32,
        }
    }

    fn is_frozen(&self, i: usize) -> bool {
        self.frozen.get(i).copied().unwrap_or(false)
    }

    /// Parameter `i`'s state as host vectors (brought back once if it was on a device).
    fn host_moments(&mut self, i: usize) -> Result<&mut ParamState> {
        if let Moments::Device { m, v } = &self.state[i] {
            let copies = &self.host_copies;
            let host = ParamState { m: to_host(m.as_ref(), copies)?, v: to_host(v.as_ref(), copies)? };
            self.state[i] = Moments::Host(host);
        }
        match &mut self.state[i] {
            Moments::Host(state) => Ok(state),
            Moments::Device { .. } => unreachable!("converted above"),
        }
    }

    /// Parameter `i`'s state as tensors on `var`'s device (sent there once if it was on the host).
    fn device_moments(&mut self, i: usize, var: &Var) -> Result<(&mut Option<Tensor>, &mut Option<Tensor>)> {
        if let Moments::Host(host) = &self.state[i] {
            let copies = &self.host_copies;
            let (m, v) = (to_device(&host.m, var, copies)?, to_device(&host.v, var, copies)?);
            self.state[i] = Moments::Device { m, v };
        }
        match &mut self.state[i] {
            Moments::Device { m, v } => Ok((m, v)),
            Moments::Host(_) => unreachable!("converted above"),
        }
    }

    /// Every parameter's state on the host, in parameter order, for a checkpoint: the one place
    /// the portable path's state is read back.
    pub fn host_state(&self) -> Result<Vec<ParamState>> {
        let mut out = Vec::with_capacity(self.state.len());
        let copies = &self.host_copies;
        for state in &self.state {
            out.push(match state {
                Moments::Host(state) => state.clone(),
                Moments::Device { m, v } => {
                    ParamState { m: to_host(m.as_ref(), copies)?, v: to_host(v.as_ref(), copies)? }
                }
            });
        }
        Ok(out)
    }

    /// Takes a checkpoint's state (one entry per parameter, in order), placing it where this
    /// optimizer updates: host vectors, or tensors on each parameter's device. A moment whose
    /// length is not its parameter's is refused, naming the parameter.
    pub fn load_host_state(&mut self, params: &[(String, Var)], state: Vec<ParamState>) -> Result<()> {
        if state.len() != params.len() {
            return Err(Error::Other(format!(
                "optimizer state for {} parameters, the network has {}",
                state.len(),
                params.len()
            )));
        }
        let portable = self.portable || params.iter().any(|(_, var)| !var.device().is_cpu());
        let mut placed = Vec::with_capacity(params.len());
        for ((name, var), st) in params.iter().zip(state) {
            let n = var.elem_count();
            for (which, values) in [("m", &st.m), ("v", &st.v)] {
                if !values.is_empty() && values.len() != n {
                    return Err(Error::Other(format!(
                        "the optimizer's `{which}` for `{name}` has {} values; the parameter has {n}",
                        values.len()
                    )));
                }
            }
            let copies = &self.host_copies;
            placed.push(if portable {
                Moments::Device { m: to_device(&st.m, var, copies)?, v: to_device(&st.v, var, copies)? }
            } else {
                Moments::Host(st)
            });
        }
        self.state = placed;
        Ok(())
    }

    /// Tensors copied between the host and the state's device so far (tests: a step copies none).
    pub fn host_copies(&self) -> u64 {
        self.host_copies.load(Ordering::Relaxed)
    }

    /// Whether every parameter's state that exists is held as device tensors (the portable path).
    pub fn state_on_device(&self) -> bool {
        self.state.iter().all(|s| match s {
            Moments::Device { .. } => true,
            Moments::Host(st) => st.m.is_empty() && st.v.is_empty(),
        })
    }
}

/// A state tensor's values on the host (empty for no tensor), counted in `copies`.
fn to_host(t: Option<&Tensor>, copies: &AtomicU64) -> Result<Vec<f32>> {
    let Some(t) = t else { return Ok(Vec::new()) };
    copies.fetch_add(1, Ordering::Relaxed);
    Ok(t.flatten_all()?.to_vec1()?)
}

/// Host values as a state tensor shaped and placed like `var` (none for no values), counted.
fn to_device(values: &[f32], var: &Var, copies: &AtomicU64) -> Result<Option<Tensor>> {
    if values.is_empty() {
        return Ok(None);
    }
    copies.fetch_add(1, Ordering::Relaxed);
    Ok(Some(Tensor::from_slice(values, var.shape(), var.device())?))
}

/// PyTorch's clipping scale, `min(max_norm / (norm + 1e-6), 1)`, with the norm's squares summed
/// per gradient in f32 and over the gradients in f64 in parameter order, as the CPU path always
/// has (its runs reproduce their numbers).
fn host_clip_scale<'a>(grads: impl Iterator<Item = &'a Tensor>, max_norm: f64) -> Result<f64> {
    let mut sum = 0.0f64;
    for g in grads {
        sum += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
    }
    Ok((max_norm / (sum.sqrt() + 1e-6)).min(1.0))
}
