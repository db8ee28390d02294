//! The optimizer's portable path: the fused CPU rule written with candle tensor ops, so it runs
//! where the parameters are (CUDA, Metal, or the CPU for `cpu-portable`) and nothing is read back
//! to the host. Each op mirrors one operation of the fused rule, in the same order and with the
//! same f32 constants, so the two agree to rounding (the tests hold them to 1e-6).

use candle_core::{DType, Tensor, Var};

use super::Rule;
use crate::config::OptimizerKind;
use crate::error::Result;

/// `x * c`, with the f32 constant the fused rule multiplies by.
fn times(x: &Tensor, c: f32) -> candle_core::Result<Tensor> {
    x.affine(f64::from(c), 0.0)
}

impl Rule {
    /// Updates `var` from `grad`, keeping the state `m` (momentum buffer or first moment) and `v`
    /// (second moment) as tensors on the same device; `None` before the first update.
    pub(super) fn apply_tensors(
        &self,
        var: &Var,
        grad: &Tensor,
        m: &mut Option<Tensor>,
        v: &mut Option<Tensor>,
    ) -> Result<()> {
        // the new value is computed from detached copies, so no graph outlives the step
        let p = var.as_tensor().detach();
        let g = grad.detach();
        let (lr, wd) = (self.lr, self.weight_decay);
        let next = match self.kind {
            OptimizerKind::Sgd => {
                let g = if wd != 0.0 { (g + times(&p, wd)?)? } else { g };
                let update = if self.momentum > 0.0 {
                    // the buffer starts at zero: the first update is the gradient itself
                    let b = match m.take() {
                        Some(b) => (times(&b, self.momentum)? + &g)?,
                        None => g,
                    };
                    *m = Some(b.clone());
                    b
                } else {
                    g
                };
                (p - times(&update, lr)?)?
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let decoupled = self.kind == OptimizerKind::AdamW;
                let g = if !decoupled && wd != 0.0 { (g + times(&p, wd)?)? } else { g };
                let (b1, b2) = (self.b1, self.b2);
                let g_part = times(&g, 1.0 - b1)?;
                let m_next = match m.take() {
                    Some(m) => (times(&m, b1)? + g_part)?,
                    None => g_part,
                };
                // (1 - b2) * g * g, multiplied in the fused rule's order
                let g2_part = (times(&g, 1.0 - b2)? * &g)?;
                let v_next = match v.take() {
                    Some(v) => (times(&v, b2)? + g2_part)?,
                    None => g2_part,
                };
                let p = if decoupled && wd != 0.0 { times(&p, 1.0 - lr * wd)? } else { p };
                let denom = times(&v_next, self.v_scale)?.sqrt()?.affine(1.0, super::EPS)?;
                let step = (times(&times(&m_next, self.m_scale)?, lr)? / denom)?;
                *m = Some(m_next);
                *v = Some(v_next);
                (p - step)?
            }
        };
        var.set(&next)?;
        Ok(())
    }
}

/// The clipping scale `min(max_norm / (norm + 1e-6), 1)` as a 0-dimensional tensor on the
/// gradients' device, the norm's squares summed as tensors: nothing is read to the host.
/// `None` when no gradient takes part.
pub(super) fn clip_scale<'a>(grads: impl Iterator<Item = &'a Tensor>, max_norm: f64) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for g in grads {
        let squares = g.detach().sqr()?.sum_all()?;
        total = Some(match total {
            Some(t) => (t + squares)?,
            None => squares,
        });
    }
    let Some(total) = total else { return Ok(None) };
    // a device-side fill, not a scalar sent from the host as `minimum(1.0)` would
    let one = Tensor::ones((), DType::F32, total.device())?;
    let scale = total.sqrt()?.affine(1.0, 1e-6)?.recip()?.affine(max_norm, 0.0)?.minimum(&one)?;
    Ok(Some(scale))
}
