//! Optimizers with PyTorch's update rules, state kept as tensors so a checkpoint can hold it.

use candle_core::{backprop::GradStore, Tensor, Var};

use crate::config::OptimizerKind;
use crate::error::Result;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Per-parameter state: SGD's momentum buffer in `m`; Adam's first and second moments.
#[derive(Default, Clone)]
pub struct ParamState {
    pub m: Option<Tensor>,
    pub v: Option<Tensor>,
}

pub struct Optimizer {
    pub kind: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Number of updates done so far (Adam's bias correction needs it).
    pub steps: u64,
    pub state: Vec<ParamState>,
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, momentum: f64, weight_decay: f64, params: usize) -> Self {
        Self { kind, momentum, weight_decay, steps: 0, state: vec![ParamState::default(); params] }
    }

    /// One update of every parameter that has a gradient, with learning rate `lr`.
    pub fn step(&mut self, params: &[(String, Var)], grads: &GradStore, lr: f64) -> Result<()> {
        self.steps += 1;
        let t = self.steps as i32;
        for ((_, var), state) in params.iter().zip(self.state.iter_mut()) {
            let Some(grad) = grads.get(var) else { continue };
            let p = var.as_tensor();
            match self.kind {
                OptimizerKind::Sgd => {
                    let g = if self.weight_decay > 0.0 { (grad + (p * self.weight_decay)?)? } else { grad.clone() };
                    let update = if self.momentum > 0.0 {
                        let buf = match &state.m {
                            Some(buf) => ((buf * self.momentum)? + &g)?,
                            None => g,
                        };
                        state.m = Some(buf.clone());
                        buf
                    } else {
                        g
                    };
                    var.set(&(p - (update * lr)?)?)?;
                }
                OptimizerKind::Adam | OptimizerKind::AdamW => {
                    let decoupled = self.kind == OptimizerKind::AdamW;
                    let g = if self.weight_decay > 0.0 && !decoupled {
                        (grad + (p * self.weight_decay)?)?
                    } else {
                        grad.clone()
                    };
                    let m = match &state.m {
                        Some(m) => ((m * BETA1)? + (&g * (1.0 - BETA1))?)?,
                        None => (&g * (1.0 - BETA1))?,
                    };
                    let v = match &state.v {
                        Some(v) => ((v * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?,
                        None => (g.sqr()? * (1.0 - BETA2))?,
                    };
                    let m_hat_scale = 1.0 / (1.0 - BETA1.powi(t));
                    let v_hat_scale = 1.0 / (1.0 - BETA2.powi(t));
                    let denom = ((&v * v_hat_scale)?.sqrt()? + EPS)?;
                    let update = ((&m * (lr * m_hat_scale))? / denom)?;
                    let base = if decoupled && self.weight_decay > 0.0 {
                        (p * (1.0 - lr * self.weight_decay))?
                    } else {
                        p.clone()
                    };
                    var.set(&(base - update)?)?;
                    state.m = Some(m);
                    state.v = Some(v);
                }
            }
        }
        Ok(())
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
}
