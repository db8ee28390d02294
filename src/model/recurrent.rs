//! Recurrent cells over a whole sequence (placeholder: the candle-composed form only).

use candle_core::Tensor;

use crate::error::Result;
use crate::model::network::activate;
use crate::model::spec::Activation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Rnn,
    Lstm,
    Gru,
}

impl Cell {
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn sequence(
    cell: Cell,
    x: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: &Tensor,
    b_hh: &Tensor,
    reverse: bool,
    _portable: bool,
) -> Result<Tensor> {
    let (b, t, i) = x.dims3()?;
    let h = w_hh.dim(1)?;
    let g = cell.gates();
    let xp = x.contiguous()?.reshape((b * t, i))?.matmul(&w_ih.t()?)?.broadcast_add(b_ih)?.reshape((b, t, g * h))?;
    let sig = |v: &Tensor| activate(v, Activation::Sigmoid);
    let mut state = Tensor::zeros((b, h), x.dtype(), x.device())?;
    let mut c = state.clone();
    let mut outs: Vec<Option<Tensor>> = vec![None; t];
    let steps: Vec<usize> = if reverse { (0..t).rev().collect() } else { (0..t).collect() };
    for step in steps {
        let xt = xp.narrow(1, step, 1)?.squeeze(1)?;
        let hh = state.matmul(&w_hh.t()?)?.broadcast_add(b_hh)?;
        state = match cell {
            Cell::Rnn => (xt + hh)?.tanh()?,
            Cell::Lstm => {
                let z = (xt + hh)?;
                let gate = |k: usize| z.narrow(1, k * h, h);
                let (ig, fg, gg, og) = (sig(&gate(0)?)?, sig(&gate(1)?)?, gate(2)?.tanh()?, sig(&gate(3)?)?);
                c = ((fg * &c)? + (ig * gg)?)?;
                (og * c.tanh()?)?
            }
            Cell::Gru => {
                let r = sig(&(xt.narrow(1, 0, h)? + hh.narrow(1, 0, h)?)?)?;
                let z = sig(&(xt.narrow(1, h, h)? + hh.narrow(1, h, h)?)?)?;
                let n = (xt.narrow(1, 2 * h, h)? + (r * hh.narrow(1, 2 * h, h)?)?)?.tanh()?;
                ((n.clone() - (&z * &n)?)? + (z * &state)?)?
            }
        };
        outs[step] = Some(state.clone());
    }
    let outs: Vec<Tensor> = outs.into_iter().map(|o| o.expect("every step ran")).collect();
    Ok(Tensor::stack(&outs, 1)?)
}
