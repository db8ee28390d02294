//! `x W_ihᵀ + b_ih` for every time step as one GEMM, on `[batch, time, input]` directly.
//!
//! The fused dense op would do the same on `[batch * time, input]`, but the two reshapes around
//! it are graph nodes too, and candle's backward gives every node a zero-filled gradient buffer
//! and an addition: for these shapes that was a fifth of an LSTM layer's time.

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Shape, Tensor};

use super::cpu::{contiguous, with_values};
use crate::model::kernels::{column_sums, matmul, View};

pub(super) struct Projection;

/// Rows (`batch * time`), inputs and outputs of a projection.
fn dims(x: &Shape, w: &Shape) -> candle_core::Result<(usize, usize, usize)> {
    let (batch, time, inputs) = x.dims3()?;
    let (outputs, w_in) = w.dims2()?;
    if w_in != inputs {
        candle_core::bail!("recurrent layer: input has {inputs} features, w_ih is {outputs}x{w_in}");
    }
    Ok((batch * time, inputs, outputs))
}

impl CustomOp3 for Projection {
    fn name(&self) -> &'static str {
        "gradlab-recurrent-projection"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, inputs, outputs) = dims(xl.shape(), wl.shape())?;
        let (x, w, b) = (contiguous(xs, xl, "x")?, contiguous(ws, wl, "w_ih")?, contiguous(bs, bl, "b_ih")?);
        if b.len() != outputs {
            candle_core::bail!("recurrent layer: b_ih has {} values, w_ih {outputs} rows", b.len());
        }
        let mut y = vec![0f32; rows * outputs];
        matmul(rows, outputs, inputs, &mut y, false, View::rows(x, inputs), View::transposed(w, inputs));
        for row in y.chunks_exact_mut(outputs) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
        let (batch, time, _) = xl.shape().dims3()?;
        Ok((CpuStorage::F32(y), Shape::from((batch, time, outputs))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, inputs, outputs) = dims(x.shape(), w.shape())?;
        let cpu = Device::Cpu;
        with_values(grad, |g| {
            let db = column_sums(g, outputs);
            let mut dw = vec![0f32; outputs * inputs];
            with_values(x, |x| {
                matmul(outputs, inputs, rows, &mut dw, false, View::transposed(g, outputs), View::rows(x, inputs))
            })?;
            // the first layer's input is data: no gradient for it
            let dx = if x.track_op() {
                let mut dx = vec![0f32; rows * inputs];
                with_values(w, |w| {
                    matmul(rows, inputs, outputs, &mut dx, false, View::rows(g, outputs), View::rows(w, inputs))
                })?;
                Some(Tensor::from_vec(dx, x.shape(), &cpu)?)
            } else {
                None
            };
            Ok((dx, Some(Tensor::from_vec(dw, w.shape(), &cpu)?), Some(Tensor::from_vec(db, b.shape(), &cpu)?)))
        })?
    }
}
