//! The portable form: the same layer composed from candle ops, one time step after another.
//! CUDA and Metal run it (candle's autograd gives the backward), and the tests check the CPU op
//! against it.

use candle_core::Tensor;

use super::Cell;

fn sigmoid(x: &Tensor) -> candle_core::Result<Tensor> {
    (x.neg()?.exp()? + 1.0)?.recip()
}

/// The gate block `k` of `[batch, gates * hidden]`.
fn gate(a: &Tensor, k: usize, hidden: usize) -> candle_core::Result<Tensor> {
    a.narrow(1, k * hidden, hidden)
}

pub(super) fn sequence(
    cell: Cell,
    x: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: &Tensor,
    b_hh: &Tensor,
    reverse: bool,
) -> candle_core::Result<Tensor> {
    let (batch, time, input) = x.dims3()?;
    let hidden = w_hh.dim(1)?;
    let gh = cell.gates() * hidden;
    let xproj =
        x.reshape((batch * time, input))?.matmul(&w_ih.t()?)?.broadcast_add(b_ih)?.reshape((batch, time, gh))?;
    let w_hh_t = w_hh.t()?;
    let mut h = Tensor::zeros((batch, hidden), x.dtype(), x.device())?;
    let mut c = h.clone();
    let mut outputs = Vec::with_capacity(time);
    for s in 0..time {
        let t = if reverse { time - 1 - s } else { s };
        let xp = xproj.narrow(1, t, 1)?.squeeze(1)?;
        let hp = h.matmul(&w_hh_t)?.broadcast_add(b_hh)?;
        h = match cell {
            Cell::Rnn => (xp + hp)?.tanh()?,
            Cell::Lstm => {
                let a = (xp + hp)?;
                let i = sigmoid(&gate(&a, 0, hidden)?)?;
                let f = sigmoid(&gate(&a, 1, hidden)?)?;
                let g = gate(&a, 2, hidden)?.tanh()?;
                let o = sigmoid(&gate(&a, 3, hidden)?)?;
                c = ((f * &c)? + (i * g)?)?;
                (o * c.tanh()?)?
            }
            Cell::Gru => {
                let r = sigmoid(&(gate(&xp, 0, hidden)? + gate(&hp, 0, hidden)?)?)?;
                let z = sigmoid(&(gate(&xp, 1, hidden)? + gate(&hp, 1, hidden)?)?)?;
                let n = (gate(&xp, 2, hidden)? + (r * gate(&hp, 2, hidden)?)?)?.tanh()?;
                // (1 - z) * n + z * h
                ((&n - (&z * &n)?)? + (z * &h)?)?
            }
        };
        outputs.push(h.clone());
    }
    if reverse {
        outputs.reverse();
    }
    Tensor::stack(&outputs, 1)
}
