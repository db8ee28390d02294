//! Optimizers with PyTorch's update rules (SGD with momentum, Adam, AdamW). On the CPU each
//! parameter is updated in place in one pass (an in-place candle op) rather than through a dozen
//! tensor operations, each allocating; the state lives in plain vectors so checkpoints can hold it.

use std::sync::Mutex;

use candle_core::{backprop::GradStore, CpuStorage, InplaceOp2, Layout, Tensor, Var};
use rayon::prelude::*;

use crate::config::OptimizerKind;
use crate::error::Result;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Per-parameter state: SGD's momentum buffer in `m`; Adam's first and second moments. Empty
/// before the first update (equivalent to zeros).
#[derive(Default, Clone, Debug, PartialEq)]
pub struct ParamState {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

pub struct Optimizer {
    pub kind: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Number of updates done so far (Adam's bias correction needs it).
    pub steps: u64,
    pub state: Vec<ParamState>,
    /// Parameters that never change (transfer learning's frozen layers), by position; empty or
    /// shorter than the parameters: the rest train.
    pub frozen: Vec<bool>,
    /// Adam's moment decay rates (`train.beta1`, `train.beta2`; a GAN takes beta1 = 0.5).
    pub betas: (f64, f64),
}

/// One update rule with its hyper-parameters for this step.
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
            state: vec![ParamState::default(); params],
            betas: (BETA1, BETA2),
            frozen: Vec::new(),
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
        let mut scale = 1.0f64;
        if let Some(max_norm) = max_norm {
            let mut sum = 0.0f64;
            for (i, (_, var)) in params.iter().enumerate() {
                if self.is_frozen(i) {
                    continue;
                }
                if let Some(g) = grads.get(var) {
                    sum += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
                }
            }
            let norm = sum.sqrt();
            scale = (max_norm / (norm + 1e-6)).min(1.0);
        }
        self.steps += 1;
        let t = self.steps as i32;
        let rule = Rule {
            kind: self.kind,
            lr: lr as f32,
            momentum: self.momentum as f32,
            weight_decay: self.weight_decay as f32,
            m_scale: (1.0 / (1.0 - self.betas.0.powi(t))) as f32,
            v_scale: (1.0 / (1.0 - self.betas.1.powi(t))) as f32,
            b1: self.betas.0 as f32,
            b2: self.betas.1 as f32,
        };
        let frozen = &self.frozen;
        for (i, ((_, var), state)) in params.iter().zip(self.state.iter_mut()).enumerate() {
            if frozen.get(i).copied().unwrap_or(false) {
                continue;
            }
            let Some(grad) = grads.get(var) else { continue };
            let grad = if scale < 1.0 { (grad * scale)? } else { grad.contiguous()? };
            if var.device().is_cpu() {
                var.as_tensor().inplace_op2(&grad, &InPlace { rule, state: Mutex::new(state) })?;
            } else {
                // other devices: the same rule on the host
                let mut p: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
                let g: Vec<f32> = grad.flatten_all()?.to_vec1()?;
                rule.apply(&mut p, &g, state);
                var.set(&Tensor::from_vec(p, var.shape(), var.device())?)?;
            }
        }
        Ok(())
    }

    fn is_frozen(&self, i: usize) -> bool {
        self.frozen.get(i).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Minimises (p - 3)^2 and checks every optimizer gets there.
    #[test]
    fn optimizers_minimise_a_quadratic() {
        for (kind, lr) in [(OptimizerKind::Sgd, 0.1), (OptimizerKind::Adam, 0.1), (OptimizerKind::AdamW, 0.1)] {
            let var = Var::new(&[0f32, 10.0], &Device::Cpu).unwrap();
            let params = vec![("p".to_string(), var.clone())];
            let mut opt = Optimizer::new(kind, 0.9, 0.0, 1);
            for _ in 0..300 {
                let loss = (var.as_tensor() - 3.0).unwrap().sqr().unwrap().sum_all().unwrap();
                let grads = loss.backward().unwrap();
                opt.step(&params, &grads, lr).unwrap();
            }
            let v: Vec<f32> = var.as_tensor().to_vec1().unwrap();
            assert!(v.iter().all(|x| (x - 3.0).abs() < 0.05), "{kind:?}: {v:?}");
        }
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        // With bias correction, Adam's first update is lr * sign(grad).
        let var = Var::new(&[1f32, -1.0], &Device::Cpu).unwrap();
        let params = vec![("p".to_string(), var.clone())];
        let mut opt = Optimizer::new(OptimizerKind::Adam, 0.0, 0.0, 1);
        let grads = (var.as_tensor() * 5.0).unwrap().sum_all().unwrap().backward().unwrap();
        opt.step(&params, &grads, 0.01).unwrap();
        let v: Vec<f32> = var.as_tensor().to_vec1().unwrap();
        assert!((v[0] - 0.99).abs() < 1e-5 && (v[1] + 1.01).abs() < 1e-5, "{v:?}");
    }

    /// The fused update equals the textbook formulas written with tensor operations.
    #[test]
    fn matches_the_formulas_step_by_step() {
        let p0 = [0.5f32, -1.5, 2.0, 0.0];
        let grads_seq = [[0.1f32, -0.2, 0.3, 0.0], [-0.3, 0.1, 0.2, 0.5], [0.05, 0.05, -0.4, 0.1]];
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW] {
            let (lr, mu, wd) = (0.1f64, 0.9f64, 0.01f64);
            let var = Var::new(&p0, &Device::Cpu).unwrap();
            let params = vec![("p".to_string(), var.clone())];
            let mut opt = Optimizer::new(kind, mu, wd, 1);
            let (mut p, mut m, mut v) = (p0.map(f64::from), [0f64; 4], [0f64; 4]);
            for (t, g) in grads_seq.iter().enumerate() {
                // d/dp sum(p * g) = g
                let gt = Tensor::new(g, &Device::Cpu).unwrap();
                let grads = (var.as_tensor() * &gt).unwrap().sum_all().unwrap().backward().unwrap();
                opt.step(&params, &grads, lr).unwrap();
                let t = t as i32 + 1;
                for i in 0..4 {
                    let g = f64::from(g[i]);
                    match kind {
                        OptimizerKind::Sgd => {
                            let g = g + wd * p[i];
                            m[i] = mu * m[i] + g;
                            p[i] -= lr * m[i];
                        }
                        _ => {
                            let adamw = kind == OptimizerKind::AdamW;
                            let g = if adamw { g } else { g + wd * p[i] };
                            m[i] = BETA1 * m[i] + (1.0 - BETA1) * g;
                            v[i] = BETA2 * v[i] + (1.0 - BETA2) * g * g;
                            if adamw {
                                p[i] *= 1.0 - lr * wd;
                            }
                            let mh = m[i] / (1.0 - BETA1.powi(t));
                            let vh = v[i] / (1.0 - BETA2.powi(t));
                            p[i] -= lr * mh / (vh.sqrt() + EPS);
                        }
                    }
                }
            }
            let got: Vec<f32> = var.as_tensor().to_vec1().unwrap();
            for i in 0..4 {
                assert!((f64::from(got[i]) - p[i]).abs() < 1e-5, "{kind:?} [{i}]: {} vs {}", got[i], p[i]);
            }
        }
    }
}
