//! The CPU form: one custom op with its own backward for the whole layer: the input projection
//! of every time step as one GEMM (`projection`), then the recurrence, and backprop through time.
//!
//! The sequences of a batch do not interact, so the recurrence runs blocks of batch rows as
//! parallel tasks, each stepping through time with single-threaded GEMMs. The blocks are cut
//! by a fixed row count (a function of the shape alone), and every weight gradient is one
//! thread-independent GEMM or column sum over all `batch * time` rows at the end: the numbers do
//! not depend on the thread count.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::projection;
use super::step::{self, saved_per_unit, ForwardIn};
use super::Cell;
use crate::model::fused::contiguous;
use crate::model::kernels::{column_sums, matmul, matmul_serial, View};

/// Batch rows per task. Fixed, so that the blocks (and any blocking GEMM does inside them) are
/// the same on any pool. 8 to 64 rows measured within 10% of each other on one thread at batch
/// 64; 16 leaves four tasks to share among the threads.
const ROWS_PER_TASK: usize = 16;

/// `[batch, time, input]` -> `[batch, time, hidden]`; shapes already checked by the caller.
///
/// A custom op takes three tensors: `w_hh`, `b_ih` and `b_hh` travel as one, `[w_hh | b_ih |
/// b_hh]` (`[gates * hidden, hidden + 2]`), whose gradient candle splits back.
pub(super) fn sequence(
    cell: Cell,
    x: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: &Tensor,
    b_hh: &Tensor,
    reverse: bool,
) -> candle_core::Result<Tensor> {
    let pack = Tensor::cat(&[w_hh, &b_ih.unsqueeze(1)?, &b_hh.unsqueeze(1)?], 1)?;
    x.apply_op3(&w_ih.contiguous()?, &pack, Recurrence::new(cell, reverse))
}

/// Runs `f` on a CPU tensor's values in row-major order, borrowed where they lie contiguous
/// (gradients usually do), copied otherwise.
pub(super) fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(contiguous(cpu, layout, "a recurrent layer's tensor")?)),
        _ => candle_core::bail!("recurrent layer: the CPU op got a tensor on another device"),
    }
}

/// What the forward keeps for the backward, `[batch, time, ...]` like the output.
struct Saved {
    /// `h_{t-1}` of every step (zeros at the first step in the direction of travel).
    h_prev: Vec<f32>,
    /// [`saved_per_unit`] values per hidden unit and step.
    state: Vec<f32>,
}

/// The layer over `x` (`[batch, time, input]`) with `w_ih` and the pack of `w_hh`, `b_ih` and
/// `b_hh`; the output is every `h_t`, `[batch, time, hidden]`, in time order.
pub(super) struct Recurrence {
    cell: Cell,
    reverse: bool,
    saved: Mutex<Option<Saved>>,
}

impl Recurrence {
    pub(super) fn new(cell: Cell, reverse: bool) -> Self {
        Self { cell, reverse, saved: Mutex::new(None) }
    }

    /// The time index of the `s`-th step taken.
    fn time_of(&self, s: usize, time: usize) -> usize {
        if self.reverse {
            time - 1 - s
        } else {
            s
        }
    }
}

/// Shape of a layer: batch, time, input, hidden, gates * hidden.
#[derive(Clone, Copy)]
struct Dims {
    batch: usize,
    time: usize,
    input: usize,
    hidden: usize,
    gh: usize,
}

impl Dims {
    fn new(cell: Cell, x: &Shape, w_ih: &Shape, pack: &Shape) -> candle_core::Result<Self> {
        let (batch, time, input) = x.dims3()?;
        let (gh, w_in) = w_ih.dims2()?;
        let (pack_rows, pack_cols) = pack.dims2()?;
        let hidden = pack_cols.saturating_sub(2);
        if w_in != input || pack_rows != gh || gh != cell.gates() * hidden {
            candle_core::bail!(
                "recurrent {cell:?} layer: input has {input} features, w_ih is {gh}x{w_in}, \
                 [w_hh | b_ih | b_hh] is {pack_rows}x{pack_cols}"
            );
        }
        Ok(Self { batch, time, input, hidden, gh })
    }

    /// `W_hh` inside the pack, as `[gates * hidden, hidden]` rows.
    fn w_hh<'a>(&self, pack: &'a [f32]) -> View<'a> {
        View { data: pack, rs: self.hidden + 2, cs: 1 }
    }

    /// Column `c` of the pack: `b_ih` (`hidden`) or `b_hh` (`hidden + 1`).
    fn pack_column(&self, pack: &[f32], c: usize) -> Vec<f32> {
        pack.chunks_exact(self.hidden + 2).map(|row| row[c]).collect()
    }
}

impl Recurrence {
    /// Backprop through time, block by block: the gradients of the input projection and (for
    /// the GRU, else empty) of the recurrent projection, `[batch, time, gates * hidden]`.
    fn backprop(&self, d: Dims, grad: &[f32], w_hh: View<'_>, h_prev: &[f32], state: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let Dims { batch, time, hidden, gh, .. } = d;
        let per_unit = saved_per_unit(self.cell);
        let gru = self.cell == Cell::Gru;
        let mut dgx = vec![0f32; batch * time * gh];
        let mut dgh = if gru { vec![0f32; batch * time * gh] } else { Vec::new() };
        let block = ROWS_PER_TASK * time;
        let mut dgh_blocks: Vec<Option<&mut [f32]>> =
            if gru { dgh.chunks_mut(block * gh).map(Some).collect() } else { Vec::new() };
        dgh_blocks.resize_with(batch.div_ceil(ROWS_PER_TASK), || None);
        dgx.par_chunks_mut(block * gh)
            .zip(dgh_blocks.into_par_iter())
            .zip(grad.par_chunks(block * hidden))
            .zip(h_prev.par_chunks(block * hidden))
            .zip(state.par_chunks(block * per_unit * hidden))
            .for_each(|((((dgx, mut dgh), grad), h_prev), state)| {
                let rows = grad.len() / (time * hidden);
                let mut dh_carry = vec![0f32; rows * hidden];
                let mut dc = vec![0f32; rows * hidden];
                let mut dh = vec![0f32; hidden];
                for s in (0..time).rev() {
                    let t = self.time_of(s, time);
                    for r in 0..rows {
                        let row = r * time + t;
                        let carry = &mut dh_carry[r * hidden..(r + 1) * hidden];
                        for ((d, g), c) in dh.iter_mut().zip(&grad[row * hidden..]).zip(carry.iter()) {
                            *d = g + c;
                        }
                        step::backward(
                            self.cell,
                            &dh,
                            &state[row * per_unit * hidden..(row + 1) * per_unit * hidden],
                            &h_prev[row * hidden..(row + 1) * hidden],
                            &mut dc[r * hidden..(r + 1) * hidden],
                            &mut dgx[row * gh..(row + 1) * gh],
                            dgh.as_deref_mut().map(|d| &mut d[row * gh..(row + 1) * gh]),
                            carry,
                        );
                    }
                    if s > 0 {
                        let recurrent: &[f32] = dgh.as_deref().unwrap_or(&*dgx);
                        let a = View { data: &recurrent[t * gh..], rs: time * gh, cs: 1 };
                        matmul_serial(rows, hidden, gh, &mut dh_carry, true, a, w_hh);
                    }
                }
            });
        (dgx, dgh)
    }
}

impl CustomOp3 for Recurrence {
    fn name(&self) -> &'static str {
        "gradlab-recurrence"
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
        let d = Dims::new(self.cell, xl.shape(), wl.shape(), bl.shape())?;
        let (x, w_ih, pack) = (
            contiguous(xs, xl, "recurrent x")?,
            contiguous(ws, wl, "recurrent w_ih")?,
            contiguous(bs, bl, "recurrent [w_hh | b_ih | b_hh]")?,
        );
        let Dims { batch, time, input, hidden, gh } = d;
        let xproj = projection::forward(x, w_ih, &d.pack_column(pack, hidden), batch * time, input);
        let b_hh = d.pack_column(pack, hidden + 1);
        // W_hhᵀ laid out `[hidden, gates * hidden]`: gemm then reads it in place at every step
        // instead of packing it (measured 7% of an LSTM layer's time)
        let mut w_hh_t = vec![0f32; hidden * gh];
        for (j, row) in pack.chunks_exact(hidden + 2).enumerate() {
            for (k, w) in row[..hidden].iter().enumerate() {
                w_hh_t[k * gh + j] = *w;
            }
        }
        let per_unit = saved_per_unit(self.cell);
        let mut out = vec![0f32; batch * time * hidden];
        let mut h_prev = vec![0f32; batch * time * hidden];
        let mut state = vec![0f32; batch * time * per_unit * hidden];
        let block = ROWS_PER_TASK * time;
        out.par_chunks_mut(block * hidden)
            .zip(h_prev.par_chunks_mut(block * hidden))
            .zip(state.par_chunks_mut(block * per_unit * hidden))
            .zip(xproj.par_chunks(block * gh))
            .for_each(|(((out, h_prev), state), xproj)| {
                let rows = out.len() / (time * hidden);
                let mut gh_buf = vec![0f32; rows * gh];
                let mut c = vec![0f32; rows * hidden];
                for s in 0..time {
                    let t = self.time_of(s, time);
                    if s > 0 {
                        let tp = self.time_of(s - 1, time);
                        for r in 0..rows {
                            let (from, to) = ((r * time + tp) * hidden, (r * time + t) * hidden);
                            h_prev[to..to + hidden].copy_from_slice(&out[from..from + hidden]);
                        }
                        let a = View { data: &h_prev[t * hidden..], rs: time * hidden, cs: 1 };
                        matmul_serial(rows, gh, hidden, &mut gh_buf, false, a, View::rows(&w_hh_t, gh));
                    }
                    for r in 0..rows {
                        let row = r * time + t;
                        let input = ForwardIn {
                            xp: &xproj[row * gh..(row + 1) * gh],
                            bh: &b_hh,
                            hp: &h_prev[row * hidden..(row + 1) * hidden],
                        };
                        step::forward(
                            self.cell,
                            &input,
                            &mut gh_buf[r * gh..(r + 1) * gh],
                            &mut c[r * hidden..(r + 1) * hidden],
                            &mut out[row * hidden..(row + 1) * hidden],
                            &mut state[row * per_unit * hidden..(row + 1) * per_unit * hidden],
                        );
                    }
                }
            });
        *self.saved.lock().expect("not poisoned") = Some(Saved { h_prev, state });
        Ok((CpuStorage::F32(out), Shape::from((batch, time, hidden))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w_ih: &Tensor,
        pack: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = Dims::new(self.cell, x.shape(), w_ih.shape(), pack.shape())?;
        let Dims { batch, time, input, hidden, gh } = d;
        let guard = self.saved.lock().expect("not poisoned");
        let Some(Saved { h_prev, state }) = &*guard else {
            candle_core::bail!("recurrent layer: backward without its forward");
        };
        let (dgx, dgh, dw_hh) = with_values(grad, |grad| {
            with_values(pack, |pack| {
                let (dgx, dgh) = self.backprop(d, grad, d.w_hh(pack), h_prev, state);
                let recurrent: &[f32] = if dgh.is_empty() { &dgx } else { &dgh };
                let mut dw = vec![0f32; gh * hidden];
                matmul(
                    gh,
                    hidden,
                    batch * time,
                    &mut dw,
                    false,
                    View::transposed(recurrent, gh),
                    View::rows(h_prev, hidden),
                );
                (dgx, dgh, dw)
            })
        })??;
        let db_hh = column_sums(if dgh.is_empty() { &dgx } else { &dgh }, gh);
        let input_grads = with_values(x, |xv| {
            with_values(w_ih, |w| projection::backward(&dgx, xv, w, batch * time, input, x.track_op()))
        })??;
        // [dw_hh | db_ih | db_hh], split back by candle's backward of the concatenation
        let mut dpack = Vec::with_capacity(gh * (hidden + 2));
        for j in 0..gh {
            dpack.extend_from_slice(&dw_hh[j * hidden..(j + 1) * hidden]);
            dpack.extend([input_grads.db[j], db_hh[j]]);
        }
        let cpu = Device::Cpu;
        let dx = input_grads.dx.map(|dx| Tensor::from_vec(dx, x.shape(), &cpu)).transpose()?;
        Ok((
            dx,
            Some(Tensor::from_vec(input_grads.dw, w_ih.shape(), &cpu)?),
            Some(Tensor::from_vec(dpack, pack.shape(), &cpu)?),
        ))
    }
}
