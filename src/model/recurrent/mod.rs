//! Recurrent layers (tanh RNN, LSTM, GRU) with PyTorch's equations, weights and gate order.
//!
//! [`sequence`] runs one direction of one layer over a whole sequence. On the CPU the whole layer
//! is one custom op with its own backward (`cpu`): the input projection of every time step as
//! one GEMM (`projection`), then the recurrence (`step` holds one step of each cell); backprop
//! through time ends with the recurrent weight gradient as one GEMM over every step. Elsewhere,
//! and on request for tests, it is composed from candle ops step by step (`cells`), which is
//! also what the tests check the CPU op against.

mod activations;
mod cells;
mod cpu;
mod projection;
mod step;
#[cfg(test)]
mod tests;

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};

/// The cell of a recurrent layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Elman cell, `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`.
    Rnn,
    Lstm,
    Gru,
}

impl Cell {
    /// How many gate blocks of `hidden` rows its weights hold (`w_ih` is `[gates * hidden, input]`).
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cell::Rnn => "RNN",
            Cell::Lstm => "LSTM",
            Cell::Gru => "GRU",
        }
    }
}

/// One direction of one recurrent layer over a whole sequence, PyTorch's equations, weights and
/// gate order (LSTM i,f,g,o; GRU r,z,n with n = tanh(W_in x + b_in + r * (W_hn h + b_hn))),
/// zero initial state.
///   x    `[batch, time, input]` (any layout; made contiguous)
///   w_ih `[gates*hidden, input]`, w_hh `[gates*hidden, hidden]`, b_ih, b_hh `[gates*hidden]`
///   reverse: run from the last time step to the first (for the backward direction of a
///            bidirectional layer); the output stays in time order.
///
/// Returns every hidden state, `[batch, time, hidden]`, differentiable with respect to x and the
/// four weights. On the CPU (f32) it is the fast path; on other devices, other dtypes and with
/// `portable = true` it is composed from candle ops, step by step.
#[allow(clippy::too_many_arguments)]
pub fn sequence(
    cell: Cell,
    x: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: &Tensor,
    b_hh: &Tensor,
    reverse: bool,
    portable: bool,
) -> Result<Tensor> {
    check_shapes(cell, x, w_ih, w_hh, b_ih, b_hh)?;
    let x = x.contiguous()?;
    let fast = !portable && [&x, w_ih, w_hh, b_ih, b_hh].iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
    let out = if fast {
        cpu::sequence(cell, &x, w_ih, w_hh, b_ih, b_hh, reverse)?
    } else {
        cells::sequence(cell, &x, w_ih, w_hh, b_ih, b_hh, reverse)?
    };
    Ok(out)
}

/// Refuses shapes that do not make one layer, naming the tensor and both shapes.
fn check_shapes(cell: Cell, x: &Tensor, w_ih: &Tensor, w_hh: &Tensor, b_ih: &Tensor, b_hh: &Tensor) -> Result<()> {
    let fail = |what: String| Err(Error::Shape(format!("recurrent {} layer: {what}", cell.name())));
    let &[batch, time, input] = x.dims() else {
        return fail(format!("the input is {:?}, expected [batch, time, features]", x.dims()));
    };
    if batch == 0 || time == 0 || input == 0 {
        return fail(format!("the input [{batch}, {time}, {input}] is empty"));
    }
    let &[rows, hidden] = w_hh.dims() else {
        return fail(format!("w_hh is {:?}, expected [gates * hidden, hidden]", w_hh.dims()));
    };
    let gh = cell.gates() * hidden;
    if hidden == 0 || rows != gh {
        return fail(format!("w_hh is [{rows}, {hidden}], expected [{gh}, {hidden}] ({} gates)", cell.gates()));
    }
    if w_ih.dims() != [gh, input] {
        return fail(format!("w_ih is {:?}, expected [{gh}, {input}] for inputs of {input} features", w_ih.dims()));
    }
    for (name, b) in [("b_ih", b_ih), ("b_hh", b_hh)] {
        if b.dims() != [gh] {
            return fail(format!("{name} is {:?}, expected [{gh}]", b.dims()));
        }
    }
    Ok(())
}
